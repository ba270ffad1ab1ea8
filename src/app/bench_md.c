/* bench_md.c — `distilmd bench --md`: MD throughput of the batched engine.
 *
 * For each replica count R: R replicas (molecule i mod len(molecules)) of
 * Langevin dynamics advanced together, timed over many steps after warm-up;
 * the force evaluation alone, for the ratio step/force; and, with
 * --one-at-a-time, the same R replicas as R separate single-replica contexts
 * advanced in turn (as engines that keep one context per replica do). */
#include "commands.h"

#include "bench_molecules.h"

#include "engine/dynamics.h"
#include "integrators/integrators.h"
#include "io/xyz.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct md_bench {
    const dynamics_ops *dyn;
    const painn_model *model;
    int n_molecules;
    xyz_trajectory *molecules;
    long steps;
} md_bench;

/* R replicas cycling through the molecules, and their masses. */
static int make_batch(const md_bench *b, int R, int first, molecule_batch *batch, double **masses,
                      dm_error *err)
{
    if (bench_batch(b->molecules, b->n_molecules, R, first, batch, err)) return -1;
    *masses = malloc(sizeof(double) * batch->n_atoms);
    if (!*masses) return dm_fail(err, "out of memory");
    for (int a = 0; a < batch->n_atoms; a++) (*masses)[a] = element_mass(batch->species[a]);
    return 0;
}

typedef struct md_context {
    molecule_batch batch;
    double *masses;
    hamiltonian h;
    void *impl;
} md_context;

static void context_free(const md_bench *b, md_context *c)
{
    if (c->impl) b->dyn->destroy(c->impl);
    molecule_batch_free(&c->batch);
    free(c->masses);
}

/* A context of R replicas at 300 K with Maxwell-Boltzmann velocities and forces. */
static int context_make(const md_bench *b, int R, int first, md_context *c, dm_error *err)
{
    memset(c, 0, sizeof *c);
    if (make_batch(b, R, first, &c->batch, &c->masses, err)) return -1;
    c->h = (hamiltonian){.n_terms = 1, .terms = {term_model(b->model, 1, 0)}};
    double *T = malloc(sizeof(double) * R), *v = malloc(sizeof(double) * 3 * c->batch.n_atoms);
    int rc = T && v ? 0 : dm_fail(err, "out of memory");
    for (int r = 0; rc == 0 && r < R; r++) T[r] = 300.0;
    if (rc == 0) {
        maxwell_boltzmann(&c->batch, c->masses, T, 1, v);
        rc = b->dyn->create(&c->impl, &c->h, &c->batch, c->masses, err);
    }
    if (rc == 0) rc = b->dyn->set_positions(c->impl, c->batch.positions, err);
    if (rc == 0) rc = b->dyn->set_velocities(c->impl, v, err);
    if (rc == 0) rc = b->dyn->set_temperatures(c->impl, T, err);
    if (rc == 0) rc = b->dyn->compute_forces(c->impl, err);
    free(T);
    free(v);
    return rc;
}

/* Seconds per call of n Langevin steps (synchronised by reading energies). */
static int time_steps(const md_bench *b, md_context *c, uint64_t *step, long n, double *seconds,
                      dm_error *err)
{
    double *e = malloc(sizeof(double) * c->batch.n_molecules);
    if (!e) return dm_fail(err, "out of memory");
    double t0 = now();
    int rc = b->dyn->langevin(c->impl, *step, n, 0.5, 1.0, 7, err);
    if (rc == 0) rc = b->dyn->get_state(c->impl, NULL, NULL, NULL, e, NULL, err);
    *seconds = now() - t0;
    *step += (uint64_t)n;
    free(e);
    return rc;
}

static int time_forces(const md_bench *b, md_context *c, long n, double *seconds, dm_error *err)
{
    double t0 = now();
    for (long k = 0; k < n; k++)
        if (b->dyn->compute_forces(c->impl, err)) return -1;
    *seconds = (now() - t0) / n;
    return 0;
}

typedef struct md_result {
    int replicas, atoms;
    double step_ms, force_ms, one_at_a_time_ms; /* per step of all R replicas */
} md_result;

static int bench_replicas(const md_bench *b, int R, int one_at_a_time, md_result *res, dm_error *err)
{
    md_context c;
    uint64_t step = 0;
    double t;
    int rc = context_make(b, R, 0, &c, err);
    if (rc == 0) rc = time_steps(b, &c, &step, 20, &t, err); /* warm-up, graph capture */
    if (rc == 0) rc = time_steps(b, &c, &step, b->steps, &t, err);
    if (rc == 0) {
        res->replicas = R;
        res->atoms = c.batch.n_atoms;
        res->step_ms = 1e3 * t / b->steps;
        rc = time_forces(b, &c, b->steps / 4 + 1, &t, err);
        res->force_ms = 1e3 * t;
    }
    context_free(b, &c);
    res->one_at_a_time_ms = 0;
    if (rc || !one_at_a_time) return rc;
    /* R contexts of one replica each, advanced in turn */
    md_context *single = calloc(R, sizeof *single);
    uint64_t *steps = calloc(R, sizeof *steps);
    long n = b->steps / 10 > 10 ? b->steps / 10 : 10;
    if (!single || !steps) rc = dm_fail(err, "out of memory");
    for (int r = 0; rc == 0 && r < R; r++) {
        rc = context_make(b, 1, r, &single[r], err);
        if (rc == 0) rc = time_steps(b, &single[r], &steps[r], 20, &t, err);
    }
    double total = 0;
    for (int r = 0; rc == 0 && r < R; r++) {
        rc = time_steps(b, &single[r], &steps[r], n, &t, err);
        total += t;
    }
    if (rc == 0) res->one_at_a_time_ms = 1e3 * total / n;
    for (int r = 0; single && r < R; r++) context_free(b, &single[r]);
    free(single);
    free(steps);
    return rc;
}

static void bench_md_usage(FILE *f)
{
    fprintf(f, "usage: distilmd bench --md --model FILE --molecules A.xyz[,B.xyz...]\n"
               "                      [--replicas 1,16,256,1024] [--steps N] [--platform P]\n"
               "                      [--one-at-a-time] [--json FILE]\n");
}

int cmd_bench_md(int argc, char **argv)
{
    static const struct option opts[] = {
        {"md", no_argument, 0, 'M'},           {"model", required_argument, 0, 'm'},
        {"molecules", required_argument, 0, 'x'}, {"replicas", required_argument, 0, 'r'},
        {"steps", required_argument, 0, 'n'},  {"platform", required_argument, 0, 'p'},
        {"one-at-a-time", no_argument, 0, 'o'}, {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *model_path = NULL, *molecules = NULL, *replicas = "1,16,256,1024";
    const char *platform = "cuda", *json = NULL;
    long steps = 200;
    int one_at_a_time = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "Mm:x:r:n:p:oj:h", opts, NULL)) != -1) {
        switch (c) {
        case 'M': break;
        case 'm': model_path = optarg; break;
        case 'x': molecules = optarg; break;
        case 'r': replicas = optarg; break;
        case 'n': steps = atol(optarg); break;
        case 'p': platform = optarg; break;
        case 'o': one_at_a_time = 1; break;
        case 'j': json = optarg; break;
        case 'h': bench_md_usage(stdout); return 0;
        default: bench_md_usage(stderr); return 2;
        }
    }
    if (!model_path || !molecules || steps < 1) {
        bench_md_usage(stderr);
        return 2;
    }
    dm_error err = {{0}};
    painn_model model = {0};
    md_bench b = {.steps = steps, .model = &model};
    char note[256];
    int rc = (b.dyn = dynamics_find(platform, note, sizeof note, &err)) ? 0 : -1;
    if (rc == 0) rc = painn_model_load(model_path, &model, &err);
    if (rc == 0) rc = bench_read_molecules(molecules, &b.molecules, &b.n_molecules, &err);
    FILE *out = NULL;
    if (rc == 0 && json && !(out = fopen(json, "w")))
        rc = dm_fail(&err, "%s: cannot open for writing", json);
    if (rc == 0) {
        printf("MD throughput, Langevin 0.5 fs, %s platform, model %s (%d molecule kinds)\n",
               b.dyn->platform, model_path, b.n_molecules);
        printf("%9s %7s %12s %12s %10s %16s %14s\n", "replicas", "atoms", "ms/step", "force ms",
               "step/force", "replica-steps/s", "one-at-a-time");
        if (out) fprintf(out, "[\n");
    }
    const char *p = replicas;
    for (int first = 1; rc == 0 && *p; first = 0) {
        int R = (int)strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
        md_result res = {0};
        rc = bench_replicas(&b, R, one_at_a_time, &res, &err);
        if (rc) break;
        double speedup = res.one_at_a_time_ms > 0 ? res.one_at_a_time_ms / res.step_ms : 0;
        printf("%9d %7d %12.4f %12.4f %10.2f %16.0f", R, res.atoms, res.step_ms, res.force_ms,
               res.step_ms / res.force_ms, R * 1e3 / res.step_ms);
        if (speedup > 0) printf(" %13.1fx", speedup);
        printf("\n");
        if (out)
            fprintf(out,
                    "%s  {\"replicas\": %d, \"atoms\": %d, \"step_ms\": %.6f, \"force_ms\": %.6f, "
                    "\"one_at_a_time_step_ms\": %.6f}",
                    first ? "" : ",\n", R, res.atoms, res.step_ms, res.force_ms, res.one_at_a_time_ms);
    }
    if (out) {
        fprintf(out, "\n]\n");
        if (fclose(out) != 0 && rc == 0) rc = dm_fail(&err, "%s: write error", json);
    }
    if (rc) fprintf(stderr, "distilmd bench --md: error: %s\n", err.msg);
    bench_molecules_free(b.molecules, b.n_molecules);
    painn_model_free(&model);
    return rc ? 1 : 0;
}
