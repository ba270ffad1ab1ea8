/* cmd_demux.c — `distilmd demux FILE.h5 [--output-prefix PREFIX]`: one H5MD
 * trajectory per thermodynamic state of a replica-exchange run.
 *
 * In the trajectory `distilmd run` writes (docs/config.md), replica r moves
 * continuously and the temperatures move between replicas:
 * /observables/replica_state/value[f][r] is the rung (0 = lowest) of its
 * exchange group that replica r held at frame f. Group g covers replicas
 * and states [first_g, first_g + size_g) (/parameters/replica_exchange:
 * group_first, group_size; ladder[first_g + k] is the temperature of rung k).
 *
 * For every group g and rung k this writes PREFIX_g{g}_T{T:.2f}K.h5 (for the
 * windows of a λ sweep, whose states have a λ, /parameters/replica_exchange/
 * lambda: PREFIX_g{g}_lambda{λ:.4f}.h5), with one
 * particles group (replica_0000) whose frame f is replica r's frame f, r the
 * replica of group g with replica_state[f][r] = k:
 *   position [, velocity, force]     as in the input
 *   observables potential_energy, kinetic_energy, total_energy, temperature
 *                                    (the replica's instantaneous kinetic
 *                                    temperature), thermostat_temperature (K,
 *                                    the rung's), source_replica (r)
 *   species, mass                    of the group's first replica (every
 *                                    replica of a group is the same molecule;
 *                                    checked)
 * The same steps and times as the input. The files are written with the
 * engine's H5MD writer (src/io/h5md.c), so MDAnalysis reads them; values go
 * through its unit conversion back to the file's units (velocity Å/ps ->
 * Å/fs -> Å/ps, force kJ/(mol Å) -> eV/Å -> kJ/(mol Å), time ps -> fs -> ps),
 * which may change them in the last bit; positions and energies are copied
 * exactly.
 *
 * The input is read with the HDF5 API, a block of frames of one group at a
 * time; every error names the file and the dataset. */
#define _POSIX_C_SOURCE 200809L

#include "commands.h"

#include "io/h5md.h"
#include "io/hdf5_support.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_CHARS 4096
#define OBJECT_CHARS 192
/* file units -> engine units (src/io/h5md.c) */
#define FS_PER_PS 1000.0
#define KJ_PER_MOL_PER_EV 96.4853321233100184
/* the input read per block: about this many bytes of per-atom values */
#define BLOCK_BYTES (16L << 20)

static void demux_usage(FILE *f)
{
    fprintf(f,
            "usage: distilmd demux FILE.h5 [--output-prefix PREFIX]\n"
            "\n"
            "Splits the trajectory of a replica-exchange run (FILE.h5, written by\n"
            "`distilmd run` with replica_exchange) into one H5MD trajectory per\n"
            "temperature: PREFIX_g<G>_T<T>K.h5 for exchange group G and temperature T\n"
            "(K, two decimals), or per λ window of a free-energy sweep with exchange:\n"
            "PREFIX_g<G>_lambda<L>.h5 (four decimals). Frame f of each holds the replica\n"
            "that was in that state at frame f: positions (velocities, forces when present),\n"
            "energies, temperature, thermostat_temperature and source_replica (the\n"
            "replica's index). MDAnalysis reads them (docs/config.md).\n"
            "  -o, --output-prefix PREFIX  default: FILE without its .h5 ending\n"
            "  -h, --help                  this text\n");
}

/* ------------------------------------------------------------------------ */
/* The input. */

enum { POSITION, VELOCITY, FORCE, N_FIELDS };
static const char *const FIELD[N_FIELDS] = {"position", "velocity", "force"};
static const char *const FIELD_UNIT[N_FIELDS] = {"Angstrom", "Angstrom ps-1",
                                                 "kJ mol-1 Angstrom-1"};
/* engine value = file value / FIELD_SCALE */
static const double FIELD_SCALE[N_FIELDS] = {1.0, FS_PER_PS, KJ_PER_MOL_PER_EV};

/* Per-replica observables copied to the output, [F][R] in the input. */
enum { PE, KE, TEMPERATURE, THERMOSTAT, N_OBSERVABLES };
static const char *const OBSERVABLE[N_OBSERVABLES] = {
    "/observables/potential_energy/value", "/observables/kinetic_energy/value",
    "/observables/temperature/value", "/observables/thermostat_temperature/value"};
#define REPLICA_STATE "/observables/replica_state/value"
#define SHARED_STEP "/particles/replica_0000/position/step"
#define SHARED_TIME "/particles/replica_0000/position/time"
#define EXCHANGE "/parameters/replica_exchange"

typedef struct demux_input {
    const char *path;
    hid_t file;
    long n_replicas, n_frames;
    int n_groups;
    int64_t *group_first, *group_size; /* [n_groups] */
    double *ladder;                    /* [n_replicas] */
    double *lambda;                    /* [n_replicas]; NULL: the states have no λ */
    int has[N_FIELDS];                 /* velocity, force written (position always) */
    char author[256];
} demux_input;

/* The dimensions of dataset `name` (rank must be `rank`). */
static int dataset_shape(const demux_input *in, const char *name, int rank, hsize_t *dims,
                         dm_error *err)
{
    htri_t exists = hdf5_link_exists(in->file, name);
    if (exists < 0) return hdf5_fail(err, "%s: cannot look up %s", in->path, name);
    if (!exists) return dm_fail(err, "%s: dataset %s is missing", in->path, name);
    hid_t d = H5Dopen2(in->file, name, H5P_DEFAULT);
    if (d < 0) return hdf5_fail(err, "%s: cannot open dataset %s", in->path, name);
    hid_t s = H5Dget_space(d);
    int ok = s >= 0 && H5Sget_simple_extent_ndims(s) == rank &&
             H5Sget_simple_extent_dims(s, dims, NULL) >= 0;
    hdf5_close(s);
    hdf5_close(d);
    return ok ? 0 : dm_fail(err, "%s: dataset %s is not %d-dimensional", in->path, name, rank);
}

/* The box start[d] .. start[d] + count[d] of dataset `name` (rank `rank`),
 * read as mem_type into buf; fails when the dataset is smaller. */
static int read_box(const demux_input *in, const char *name, int rank, const hsize_t *start,
                    const hsize_t *count, hid_t mem_type, void *buf, dm_error *err)
{
    hsize_t dims[3] = {0, 0, 0};
    if (dataset_shape(in, name, rank, dims, err)) return -1;
    for (int k = 0; k < rank; k++)
        if (start[k] + count[k] > dims[k])
            return dm_fail(err, "%s: dataset %s has %llu entries along axis %d, expected at "
                           "least %llu", in->path, name, (unsigned long long)dims[k], k,
                           (unsigned long long)(start[k] + count[k]));
    hid_t d = H5Dopen2(in->file, name, H5P_DEFAULT);
    hid_t file_space = d < 0 ? -1 : H5Dget_space(d);
    hid_t mem_space = H5Screate_simple(rank, count, NULL);
    int rc = 0;
    if (d < 0 || file_space < 0 || mem_space < 0 ||
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, mem_type, mem_space, file_space, H5P_DEFAULT, buf) < 0)
        rc = hdf5_fail(err, "%s: cannot read dataset %s", in->path, name);
    hdf5_close(mem_space);
    hdf5_close(file_space);
    hdf5_close(d);
    return rc;
}

/* A whole 1-D dataset of n values. */
static int read_vector(const demux_input *in, const char *name, long n, hid_t mem_type,
                       void *buf, dm_error *err)
{
    hsize_t dims[1] = {0}, start[1] = {0}, count[1] = {(hsize_t)n};
    if (dataset_shape(in, name, 1, dims, err)) return -1;
    if (dims[0] != (hsize_t)n)
        return dm_fail(err, "%s: dataset %s has %llu values, expected %ld", in->path, name,
                       (unsigned long long)dims[0], n);
    return n > 0 ? read_box(in, name, 1, start, count, mem_type, buf, err) : 0;
}

static int expect_unit(const demux_input *in, const char *name, const char *unit,
                       dm_error *err)
{
    char found[64] = "";
    hid_t d = H5Dopen2(in->file, name, H5P_DEFAULT);
    int rc = 0;
    if (d < 0) rc = hdf5_fail(err, "%s: cannot open dataset %s", in->path, name);
    else if (hdf5_read_string_attribute(d, "unit", found, sizeof found) < 0)
        rc = hdf5_fail(err, "%s: dataset %s has no unit attribute (expected '%s')", in->path,
                       name, unit);
    else if (strcmp(found, unit) != 0)
        rc = dm_fail(err, "%s: dataset %s is in '%s', expected '%s'", in->path, name, found,
                     unit);
    hdf5_close(d);
    return rc;
}

static void replica_field_path(char *buf, size_t size, long r, int field, const char *what)
{
    snprintf(buf, size, "/particles/replica_%04ld/%s/%s", r, FIELD[field], what);
}

/* Which fields the file has (those of replica_0000; the writer writes the
 * same for every replica) and that their units are the writer's. */
static int find_fields(demux_input *in, dm_error *err)
{
    for (int k = 0; k < N_FIELDS; k++) {
        char name[OBJECT_CHARS];
        replica_field_path(name, sizeof name, 0, k, "value");
        htri_t exists = hdf5_link_exists(in->file, name);
        if (exists < 0) return hdf5_fail(err, "%s: cannot look up %s", in->path, name);
        if (!exists && k == POSITION)
            return dm_fail(err, "%s: dataset %s is missing", in->path, name);
        in->has[k] = exists > 0;
        if (in->has[k] && expect_unit(in, name, FIELD_UNIT[k], err)) return -1;
    }
    return expect_unit(in, SHARED_TIME, "ps", err);
}

/* The exchange groups: ranges of replicas within [0, R), in order, and a
 * ladder of R temperatures. */
static int read_exchange_layout(demux_input *in, dm_error *err)
{
    hsize_t dims[1] = {0};
    if (dataset_shape(in, EXCHANGE "/group_first", 1, dims, err)) return -1;
    in->n_groups = (int)dims[0];
    in->group_first = malloc(sizeof(int64_t) * (dims[0] + 1));
    in->group_size = malloc(sizeof(int64_t) * (dims[0] + 1));
    in->ladder = malloc(sizeof(double) * (in->n_replicas + 1));
    if (!in->group_first || !in->group_size || !in->ladder)
        return dm_fail(err, "%s: out of memory", in->path);
    if (read_vector(in, EXCHANGE "/group_first", in->n_groups, H5T_NATIVE_INT64,
                    in->group_first, err) ||
        read_vector(in, EXCHANGE "/group_size", in->n_groups, H5T_NATIVE_INT64, in->group_size,
                    err) ||
        read_vector(in, EXCHANGE "/ladder", in->n_replicas, H5T_NATIVE_DOUBLE, in->ladder, err))
        return -1;
    htri_t has_lambda = hdf5_link_exists(in->file, EXCHANGE "/lambda");
    if (has_lambda < 0) return dm_fail(err, "%s: cannot look up %s/lambda", in->path, EXCHANGE);
    if (has_lambda) {
        if (!(in->lambda = malloc(sizeof(double) * (in->n_replicas + 1))))
            return dm_fail(err, "%s: out of memory", in->path);
        if (read_vector(in, EXCHANGE "/lambda", in->n_replicas, H5T_NATIVE_DOUBLE, in->lambda,
                        err))
            return -1;
    }
    long end = 0;
    for (int g = 0; g < in->n_groups; g++) {
        if (in->group_first[g] < end || in->group_size[g] < 1 ||
            in->group_first[g] + in->group_size[g] > in->n_replicas)
            return dm_fail(err, "%s: %s/group_first and group_size: group %d covers replicas "
                           "%lld..%lld, expected a range within 0..%ld after the previous group",
                           in->path, EXCHANGE, g, (long long)in->group_first[g],
                           (long long)(in->group_first[g] + in->group_size[g] - 1),
                           in->n_replicas - 1);
        end = (long)(in->group_first[g] + in->group_size[g]);
    }
    return 0;
}

static void input_close(demux_input *in)
{
    hdf5_close(in->file);
    free(in->group_first);
    free(in->group_size);
    free(in->ladder);
    free(in->lambda);
    memset(in, 0, sizeof *in);
    in->file = -1;
}

static int input_open(demux_input *in, const char *path, dm_error *err)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->file = -1;
    struct stat st;
    if (stat(path, &st) != 0) return dm_fail(err, "%s: %s", path, strerror(errno));
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 < 0) return hdf5_fail(err, "%s: cannot open the file", path);
    if (is_hdf5 == 0) return dm_fail(err, "%s: not an HDF5 file", path);
    in->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (in->file < 0) return hdf5_fail(err, "%s: cannot open the file", path);
    htri_t h5md = hdf5_link_exists(in->file, "/h5md");
    if (h5md <= 0) return dm_fail(err, "%s: not an H5MD file (no group /h5md)", path);
    htri_t remd = hdf5_link_exists(in->file, "/observables/replica_state");
    if (remd < 0) return hdf5_fail(err, "%s: cannot look up /observables/replica_state", path);
    if (!remd)
        return dm_fail(err, "%s: not a replica-exchange trajectory (no /observables/replica_state; "
                       "`distilmd run` writes it when the configuration has replica_exchange)",
                       path);
    hsize_t dims[2] = {0, 0};
    if (dataset_shape(in, REPLICA_STATE, 2, dims, err)) return -1;
    in->n_replicas = (long)dims[1];
    /* the step is written last in a frame: its length counts whole frames */
    if (dataset_shape(in, SHARED_STEP, 1, dims, err)) return -1;
    in->n_frames = (long)dims[0];
    hid_t author = H5Gopen2(in->file, "/h5md/author", H5P_DEFAULT);
    if (author < 0 || hdf5_read_string_attribute(author, "name", in->author,
                                                  sizeof in->author) < 0)
        in->author[0] = '\0'; /* optional in H5MD */
    hdf5_close(author);
    H5Eclear2(H5E_DEFAULT);
    if (find_fields(in, err)) return -1;
    return read_exchange_layout(in, err);
}

/* ------------------------------------------------------------------------ */
/* One exchange group. */

typedef struct group_data {
    int g;
    long first, size, n_atoms;
    int *species;
    double *masses;
    long block;                      /* frames per block */
    double *field[N_FIELDS];         /* [size][block][n_atoms * 3], engine units */
    double *observable[N_OBSERVABLES]; /* [block][size] */
    int64_t *state;                  /* [block][size] */
    int64_t *step;                   /* [block] */
    double *time;                    /* [block], ps */
    h5md_writer **out;               /* [size], by rung */
    char **out_path;                 /* [size] */
} group_data;

static void group_free(group_data *gd)
{
    dm_error ignored;
    for (long k = 0; gd->out && k < gd->size; k++) h5md_close(gd->out[k], &ignored);
    for (long k = 0; gd->out_path && k < gd->size; k++) free(gd->out_path[k]);
    free(gd->out);
    free(gd->out_path);
    free(gd->species);
    free(gd->masses);
    for (int k = 0; k < N_FIELDS; k++) free(gd->field[k]);
    for (int k = 0; k < N_OBSERVABLES; k++) free(gd->observable[k]);
    free(gd->state);
    free(gd->step);
    free(gd->time);
    memset(gd, 0, sizeof *gd);
}

/* Species and masses of the group's first replica; every other replica of
 * the group must have the same. */
static int read_molecule(const demux_input *in, group_data *gd, dm_error *err)
{
    char name[OBJECT_CHARS];
    hsize_t dims[1] = {0};
    snprintf(name, sizeof name, "/particles/replica_%04ld/species", gd->first);
    if (dataset_shape(in, name, 1, dims, err)) return -1;
    gd->n_atoms = (long)dims[0];
    long n = gd->n_atoms;
    gd->species = malloc(sizeof(int) * (n + 1));
    gd->masses = malloc(sizeof(double) * (n + 1));
    int *species = malloc(sizeof(int) * (n + 1));
    double *masses = malloc(sizeof(double) * (n + 1));
    int rc = gd->species && gd->masses && species && masses ? 0
                                                             : dm_fail(err, "%s: out of memory",
                                                                       in->path);
    for (long r = gd->first; rc == 0 && r < gd->first + gd->size; r++) {
        int *s = r == gd->first ? gd->species : species;
        double *m = r == gd->first ? gd->masses : masses;
        snprintf(name, sizeof name, "/particles/replica_%04ld/species", r);
        rc = read_vector(in, name, n, H5T_NATIVE_INT, s, err);
        if (rc == 0) {
            snprintf(name, sizeof name, "/particles/replica_%04ld/mass", r);
            rc = read_vector(in, name, n, H5T_NATIVE_DOUBLE, m, err);
        }
        if (rc == 0 && r > gd->first &&
            (memcmp(s, gd->species, sizeof(int) * n) || memcmp(m, gd->masses, sizeof(double) * n)))
            rc = dm_fail(err, "%s: /particles/replica_%04ld has other species or masses than "
                         "/particles/replica_%04ld, in the same exchange group %d", in->path, r,
                         gd->first, gd->g);
    }
    free(species);
    free(masses);
    return rc;
}

static int alloc_blocks(const demux_input *in, group_data *gd, dm_error *err)
{
    long per_frame = gd->size * gd->n_atoms * 3 * (long)sizeof(double);
    gd->block = BLOCK_BYTES / (per_frame > 0 ? per_frame : 1);
    if (gd->block < 1) gd->block = 1;
    if (gd->block > in->n_frames) gd->block = in->n_frames > 0 ? in->n_frames : 1;
    size_t b = (size_t)gd->block, rows = b * (size_t)gd->size;
    int ok = 1;
    for (int k = 0; k < N_FIELDS; k++)
        if (in->has[k])
            ok &= (gd->field[k] = malloc(sizeof(double) * rows * 3 * gd->n_atoms)) != NULL;
    for (int k = 0; k < N_OBSERVABLES; k++)
        ok &= (gd->observable[k] = malloc(sizeof(double) * rows)) != NULL;
    ok &= (gd->state = malloc(sizeof(int64_t) * rows)) != NULL;
    ok &= (gd->step = malloc(sizeof(int64_t) * b)) != NULL;
    ok &= (gd->time = malloc(sizeof(double) * b)) != NULL;
    ok &= (gd->out = calloc((size_t)gd->size, sizeof *gd->out)) != NULL;
    ok &= (gd->out_path = calloc((size_t)gd->size, sizeof *gd->out_path)) != NULL;
    return ok ? 0 : dm_fail(err, "%s: out of memory for exchange group %d", in->path, gd->g);
}

/* The outputs of the group's rungs; two rungs whose names would be the same
 * (temperatures within 0.005 K, or λ within 0.00005) are an error rather
 * than one file. */
static int open_outputs(const demux_input *in, group_data *gd, const char *prefix,
                        dm_error *err)
{
    static const h5md_series_spec extra[2] = {{"thermostat_temperature", "K", H5MD_FLOAT64, 1},
                                              {"source_replica", NULL, H5MD_INT64, 1}};
    int n_atoms[1] = {(int)gd->n_atoms};
    h5md_layout layout = {.n_replicas = 1,
                          .n_atoms = n_atoms,
                          .species = gd->species,
                          .masses = gd->masses,
                          .write_velocity = in->has[VELOCITY],
                          .write_force = in->has[FORCE],
                          .author = in->author[0] ? in->author : NULL,
                          .n_extra = 2,
                          .extra = extra};
    for (long k = 0; k < gd->size; k++) {
        double T = in->ladder[gd->first + k];
        size_t size = strlen(prefix) + 64;
        if (!(gd->out_path[k] = malloc(size))) return dm_fail(err, "out of memory");
        if (in->lambda)
            snprintf(gd->out_path[k], size, "%s_g%d_lambda%.4f.h5", prefix, gd->g,
                     in->lambda[gd->first + k]);
        else
            snprintf(gd->out_path[k], size, "%s_g%d_T%.2fK.h5", prefix, gd->g, T);
        if (k > 0 && strcmp(gd->out_path[k], gd->out_path[k - 1]) == 0 && in->lambda)
            return dm_fail(err, "%s: states %ld and %ld of exchange group %d (%s/lambda: %.17g "
                           "and %.17g) would both be written to %s", in->path, k - 1, k, gd->g,
                           EXCHANGE, in->lambda[gd->first + k - 1], in->lambda[gd->first + k],
                           gd->out_path[k]);
        if (k > 0 && strcmp(gd->out_path[k], gd->out_path[k - 1]) == 0)
            return dm_fail(err, "%s: rungs %ld and %ld of exchange group %d (%s/ladder: %.17g "
                           "and %.17g K) would both be written to %s", in->path, k - 1, k,
                           gd->g, EXCHANGE, in->ladder[gd->first + k - 1], T, gd->out_path[k]);
        if (h5md_create(&gd->out[k], gd->out_path[k], &layout, err)) return -1;
    }
    return 0;
}

/* Frames [f0, f0 + n) of every replica of the group into the block buffers
 * (per-atom values converted to the engine's units). */
static int read_block(const demux_input *in, group_data *gd, long f0, long n, dm_error *err)
{
    hsize_t start2[2] = {(hsize_t)f0, (hsize_t)gd->first}, count2[2] = {(hsize_t)n,
                                                                         (hsize_t)gd->size};
    hsize_t start1[1] = {(hsize_t)f0}, count1[1] = {(hsize_t)n};
    if (read_box(in, REPLICA_STATE, 2, start2, count2, H5T_NATIVE_INT64, gd->state, err) ||
        read_box(in, SHARED_STEP, 1, start1, count1, H5T_NATIVE_INT64, gd->step, err) ||
        read_box(in, SHARED_TIME, 1, start1, count1, H5T_NATIVE_DOUBLE, gd->time, err))
        return -1;
    for (int k = 0; k < N_OBSERVABLES; k++)
        if (read_box(in, OBSERVABLE[k], 2, start2, count2, H5T_NATIVE_DOUBLE,
                     gd->observable[k], err))
            return -1;
    size_t values = (size_t)n * 3 * gd->n_atoms;
    hsize_t start3[3] = {(hsize_t)f0, 0, 0}, count3[3] = {(hsize_t)n, (hsize_t)gd->n_atoms, 3};
    for (int k = 0; k < N_FIELDS; k++) {
        if (!in->has[k]) continue;
        for (long i = 0; i < gd->size; i++) {
            char name[OBJECT_CHARS];
            double *dst = gd->field[k] + (size_t)i * (size_t)gd->block * 3 * gd->n_atoms;
            replica_field_path(name, sizeof name, gd->first + i, k, "value");
            if (read_box(in, name, 3, start3, count3, H5T_NATIVE_DOUBLE, dst, err)) return -1;
            if (FIELD_SCALE[k] != 1.0)
                for (size_t j = 0; j < values; j++) dst[j] /= FIELD_SCALE[k];
        }
    }
    return 0;
}

/* holder[k]: the replica (index within the group) in rung k at block frame
 * j; every rung must be held by exactly one replica. */
static int rung_holders(const demux_input *in, const group_data *gd, long f0, long j,
                        long *holder, dm_error *err)
{
    for (long k = 0; k < gd->size; k++) holder[k] = -1;
    for (long i = 0; i < gd->size; i++) {
        int64_t k = gd->state[(size_t)j * gd->size + i];
        if (k < 0 || k >= gd->size || holder[k] >= 0)
            return dm_fail(err, "%s: %s: at frame %ld (step %lld) replica %ld of exchange group "
                           "%d is in rung %lld, expected each of the rungs 0..%ld once in the "
                           "group", in->path, REPLICA_STATE, f0 + j, (long long)gd->step[j],
                           gd->first + i, gd->g, (long long)k, gd->size - 1);
        holder[k] = i;
    }
    return 0;
}

/* Block frame j to every rung's output. */
static int write_block_frame(const demux_input *in, group_data *gd, long f0, long j,
                             long *holder, dm_error *err)
{
    if (rung_holders(in, gd, f0, j, holder, err)) return -1;
    size_t atoms3 = 3 * (size_t)gd->n_atoms;
    for (long k = 0; k < gd->size; k++) {
        long i = holder[k];
        size_t row = (size_t)j * gd->size + i;
        size_t at = ((size_t)i * gd->block + j) * atoms3;
        double pe = gd->observable[PE][row], ke = gd->observable[KE][row];
        double temperature = gd->observable[TEMPERATURE][row];
        double thermostat = gd->observable[THERMOSTAT][row];
        int64_t source = gd->first + i;
        const void *extra[2] = {&thermostat, &source};
        h5md_frame frame = {.step = (long)gd->step[j],
                            .time_fs = gd->time[j] * FS_PER_PS,
                            .positions = gd->field[POSITION] + at,
                            .velocities = in->has[VELOCITY] ? gd->field[VELOCITY] + at : NULL,
                            .forces = in->has[FORCE] ? gd->field[FORCE] + at : NULL,
                            .potential_energy = &pe,
                            .kinetic_energy = &ke,
                            .temperature = &temperature,
                            .extra = extra};
        if (h5md_write_frame(gd->out[k], &frame, err)) return -1;
    }
    return 0;
}

static int demux_group(const demux_input *in, int g, const char *prefix, dm_error *err)
{
    group_data gd = {.g = g, .first = (long)in->group_first[g], .size = (long)in->group_size[g]};
    long *holder = malloc(sizeof(long) * (gd.size + 1));
    int rc = holder ? 0 : dm_fail(err, "out of memory");
    if (rc == 0) rc = read_molecule(in, &gd, err);
    if (rc == 0) rc = alloc_blocks(in, &gd, err);
    if (rc == 0) rc = open_outputs(in, &gd, prefix, err);
    for (long f0 = 0; rc == 0 && f0 < in->n_frames; f0 += gd.block) {
        long n = in->n_frames - f0 < gd.block ? in->n_frames - f0 : gd.block;
        rc = read_block(in, &gd, f0, n, err);
        for (long j = 0; rc == 0 && j < n; j++) rc = write_block_frame(in, &gd, f0, j, holder, err);
    }
    for (long k = 0; rc == 0 && k < gd.size; k++) {
        rc = h5md_close(gd.out[k], err);
        gd.out[k] = NULL;
        if (rc == 0)
            fprintf(stderr, "distilmd demux: %s: group %d, rung %ld (%.2f K), %ld frames\n",
                    gd.out_path[k], g, k, in->ladder[gd.first + k], in->n_frames);
    }
    free(holder);
    group_free(&gd);
    return rc;
}

/* ------------------------------------------------------------------------ */

/* FILE without a trailing ".h5". */
static int default_prefix(const char *file, char *prefix, size_t size)
{
    size_t n = strlen(file);
    if (n >= 3 && strcmp(file + n - 3, ".h5") == 0) n -= 3;
    if (n + 1 > size) return -1;
    memcpy(prefix, file, n);
    prefix[n] = '\0';
    return 0;
}

static int demux(const char *file, const char *prefix, dm_error *err)
{
    demux_input in;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = input_open(&in, file, err);
    if (rc == 0 && in.n_groups == 0)
        rc = dm_fail(err, "%s: %s/group_first is empty: no exchange groups", file, EXCHANGE);
    for (int g = 0; rc == 0 && g < in.n_groups; g++) rc = demux_group(&in, g, prefix, err);
    input_close(&in);
    hdf5_quiet_end(&quiet);
    return rc;
}

int cmd_demux(int argc, char **argv)
{
    static const struct option opts[] = {{"output-prefix", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *prefix_option = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': prefix_option = optarg; break;
        case 'h': demux_usage(stdout); return 0;
        default: demux_usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "distilmd demux: expected exactly one trajectory FILE.h5\n\n");
        demux_usage(stderr);
        return 2;
    }
    const char *file = argv[optind];
    char prefix[PATH_CHARS];
    if (prefix_option ? strlen(prefix_option) + 1 > sizeof prefix
                      : default_prefix(file, prefix, sizeof prefix) != 0) {
        fprintf(stderr, "distilmd demux: the output prefix is too long\n");
        return 2;
    }
    if (prefix_option) strcpy(prefix, prefix_option);
    if (!prefix[0]) {
        fprintf(stderr, "distilmd demux: the output prefix is empty\n");
        return 2;
    }
    dm_error err = {{0}};
    if (demux(file, prefix, &err)) {
        fprintf(stderr, "distilmd demux: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
