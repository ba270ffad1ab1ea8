/* cmd_eval.c — `distilmd eval`: a single-point calculator.
 *
 *   structures (XYZ files) -> one batch -> platform -> energies, forces
 *   -> extended XYZ (energy= and a forces column), one frame per input
 *      structure, in input order. */
#include "commands.h"

#include "core/platform.h"
#include "io/xyz.h"
#include "model/painn_model.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: distilmd eval --model FILE [--output FILE] [--platform P] XYZ...\n"
            "\n"
            "Energy (eV) and forces (eV/A) of every structure in the XYZ / extended XYZ\n"
            "files, evaluated as one batch. Writes extended XYZ (readable by ASE) with\n"
            "energy= and a forces column, one frame per input structure, in input order.\n"
            "\n"
            "  -m, --model FILE     student model (.onnx; only its weights are used)\n"
            "  -o, --output FILE    output file (default: standard output)\n"
            "  -p, --platform P     reference, cuda or auto (default: auto)\n");
}

/* All frames of all files, in order. */
typedef struct structure_set {
    int n_files;
    xyz_trajectory *files;
    int n_frames;
    const xyz_frame **frames;
} structure_set;

static void structure_set_free(structure_set *s)
{
    for (int f = 0; f < s->n_files; f++) xyz_trajectory_free(&s->files[f]);
    free(s->files);
    free(s->frames);
}

static int read_structures(int n_paths, char **paths, structure_set *s, dm_error *err)
{
    memset(s, 0, sizeof *s);
    s->files = calloc((size_t)n_paths, sizeof *s->files);
    if (!s->files) return dm_fail(err, "out of memory");
    for (int f = 0; f < n_paths; f++) {
        if (xyz_read_file(paths[f], &s->files[f], err)) return -1;
        s->n_files = f + 1;
        s->n_frames += s->files[f].n_frames;
    }
    s->frames = malloc(sizeof *s->frames * ((size_t)s->n_frames + 1));
    if (!s->frames) return dm_fail(err, "out of memory");
    int k = 0;
    for (int f = 0; f < s->n_files; f++)
        for (int i = 0; i < s->files[f].n_frames; i++) s->frames[k++] = &s->files[f].frames[i];
    return 0;
}

static int batch_from_frames(const structure_set *s, molecule_batch *b, dm_error *err)
{
    int *sizes = malloc(sizeof(int) * ((size_t)s->n_frames + 1));
    if (!sizes) return dm_fail(err, "out of memory");
    for (int i = 0; i < s->n_frames; i++) sizes[i] = s->frames[i]->n_atoms;
    int rc = molecule_batch_alloc(b, s->n_frames, sizes, err);
    free(sizes);
    if (rc) return -1;
    for (int i = 0; i < s->n_frames; i++) {
        const xyz_frame *fr = s->frames[i];
        memcpy(b->species + b->offset[i], fr->species, sizeof(int) * (size_t)fr->n_atoms);
        memcpy(b->positions + 3 * (size_t)b->offset[i], fr->positions,
               sizeof(double) * 3 * (size_t)fr->n_atoms);
    }
    return 0;
}

/* Evaluates the batch on the chosen platform. */
static int evaluate(const char *platform_name, const painn_model *model, const molecule_batch *b,
                    double *energies, double *forces, dm_error *err)
{
    char note[256];
    const platform_ops *p = platform_find(platform_name, note, sizeof note, err);
    if (!p) return -1;
    if (note[0]) fprintf(stderr, "distilmd: %s\n", note);
    void *impl = NULL;
    if (p->model_create(&impl, model, b, err)) return -1;
    int rc = p->model_compute(impl, b->positions, energies, forces, err);
    p->model_destroy(impl);
    return rc;
}

static int write_results(const char *path, const structure_set *s, const molecule_batch *b,
                         const double *energies, const double *forces, dm_error *err)
{
    FILE *f = path ? fopen(path, "w") : stdout;
    const char *label = path ? path : "standard output";
    if (!f) return dm_fail(err, "%s: cannot open for writing (%s)", path, strerror(errno));
    int rc = 0;
    for (int i = 0; i < s->n_frames && rc == 0; i++) {
        const xyz_frame *fr = s->frames[i];
        rc = xyz_write_frame(f, label, fr->n_atoms, fr->species, fr->positions,
                             forces + 3 * (size_t)b->offset[i], 1, energies[i], fr->name, err);
    }
    if (path) {
        if (fclose(f) != 0 && rc == 0) rc = dm_fail(err, "%s: error closing the file", path);
    } else if (fflush(f) != 0 && rc == 0) {
        rc = dm_fail(err, "standard output: write error");
    }
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"output", required_argument, 0, 'o'},
                                         {"platform", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model_path = NULL, *output = NULL, *platform_name = "auto";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': output = optarg; break;
        case 'p': platform_name = optarg; break;
        case 'h': eval_usage(stdout); return 0;
        default: eval_usage(stderr); return 2;
        }
    }
    if (!model_path || optind >= argc) {
        fprintf(stderr, "distilmd eval: %s\n\n",
                !model_path ? "--model FILE is required" : "no XYZ file given");
        eval_usage(stderr);
        return 2;
    }

    dm_error err = {{0}};
    painn_model model = {0};
    structure_set structures = {0};
    molecule_batch batch = {0};
    double *energies = NULL, *forces = NULL;
    int rc = painn_model_load(model_path, &model, &err);
    if (rc == 0) rc = read_structures(argc - optind, argv + optind, &structures, &err);
    if (rc == 0) rc = batch_from_frames(&structures, &batch, &err);
    if (rc == 0) {
        energies = calloc((size_t)batch.n_molecules + 1, sizeof(double));
        forces = calloc(3 * (size_t)batch.n_atoms + 1, sizeof(double));
        if (!energies || !forces) rc = dm_fail(&err, "out of memory");
    }
    if (rc == 0) rc = evaluate(platform_name, &model, &batch, energies, forces, &err);
    if (rc == 0) rc = write_results(output, &structures, &batch, energies, forces, &err);
    if (rc) fprintf(stderr, "distilmd eval: error: %s\n", err.msg);

    free(energies);
    free(forces);
    molecule_batch_free(&batch);
    structure_set_free(&structures);
    painn_model_free(&model);
    return rc ? 1 : 0;
}
