/* test_h5md.c — the H5MD trajectory writer (src/io/h5md.c).
 *
 * Files are read back with the plain HDF5 API (not with the writer's code)
 * and compared exactly with the frames given: positions, energies and
 * temperatures as given, velocities × 1000 (Å/fs -> Å/ps), forces × e N_A /
 * 1000 (eV/Å -> kJ/(mol Å), with the SI values of e and N_A), time / 1000
 * (fs -> ps), total energy = potential + kinetic; observables as one column
 * per replica. Covered: the H5MD metadata and units, round trip of frames,
 * one step and one time dataset per file that every element hard-links,
 * reopening for a restart (truncation after the checkpoint's step, then
 * appending; a partly written frame dropped), layouts that do not match on
 * reopening, a writer killed (SIGKILL) after a flush, and that the caller's
 * HDF5 error handler survives our calls. Extra observables (integer and
 * floating-point columns per replica, sharing step and time) round trip, are
 * truncated and appended to on reopening, and must match the layout;
 * /parameters datasets round trip, are replaced when rewritten, and survive
 * reopening. */
#define _POSIX_C_SOURCE 200809L

#include "test_support.h"

#include "io/h5md.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void temp_file(const temp_dir *d, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", d->path, name);
}

/* ------------------------------------------------------------------------ */
/* The system written: two replicas (water-like, 3 atoms; CO, 2 atoms). */

#define N_REPLICAS 2
#define N_ATOMS_TOTAL 5
#define MAX_FRAMES 8

/* 1 eV in kJ/mol: e [C] × N_A [1/mol] / 1000, SI 2019 exact values. */
#define EV_IN_KJ_PER_MOL (1.602176634e-19 * 6.02214076e23 / 1000.0)

static const int N_ATOMS[N_REPLICAS] = {3, 2};
static const int SPECIES[N_ATOMS_TOTAL] = {8, 1, 1, 6, 8};
static const double MASSES[N_ATOMS_TOTAL] = {15.999, 1.008, 1.008, 12.011, 15.999};

static h5md_layout make_layout(int write_velocity, int write_force)
{
    h5md_layout layout = {.n_replicas = N_REPLICAS, .n_atoms = N_ATOMS, .species = SPECIES,
                          .masses = MASSES, .write_velocity = write_velocity,
                          .write_force = write_force, .author = "Test Author"};
    return layout;
}

/* Frames with random contents. */
typedef struct frames {
    int n;
    long step[MAX_FRAMES];
    double time_fs[MAX_FRAMES];
    double pos[MAX_FRAMES][N_ATOMS_TOTAL * 3], vel[MAX_FRAMES][N_ATOMS_TOTAL * 3],
        force[MAX_FRAMES][N_ATOMS_TOTAL * 3];
    double pe[MAX_FRAMES][N_REPLICAS], ke[MAX_FRAMES][N_REPLICAS], temp[MAX_FRAMES][N_REPLICAS];
} frames;

/* n frames at steps first_step, first_step + stride, ...; dt 0.5 fs. */
static void make_frames(frames *f, int n, long first_step, long stride, unsigned long long seed)
{
    test_rng rng = {seed};
    f->n = n;
    for (int i = 0; i < n; i++) {
        f->step[i] = first_step + stride * i;
        f->time_fs[i] = 0.5 * (double)f->step[i];
        for (int j = 0; j < N_ATOMS_TOTAL * 3; j++) {
            f->pos[i][j] = 3.0 * test_normal(&rng);
            f->vel[i][j] = 0.01 * test_normal(&rng);
            f->force[i][j] = test_normal(&rng);
        }
        for (int r = 0; r < N_REPLICAS; r++) {
            f->pe[i][r] = -100.0 + test_normal(&rng);
            f->ke[i][r] = 0.3 + 0.1 * test_uniform(&rng);
            f->temp[i][r] = 300.0 + 10.0 * test_normal(&rng);
        }
    }
}

static h5md_frame frame_view(const frames *f, int i)
{
    h5md_frame frame = {.step = f->step[i], .time_fs = f->time_fs[i], .positions = f->pos[i],
                        .velocities = f->vel[i], .forces = f->force[i],
                        .potential_energy = f->pe[i], .kinetic_energy = f->ke[i],
                        .temperature = f->temp[i]};
    return frame;
}

static int write_frames(h5md_writer *w, const frames *f, int first, int count, dm_error *err)
{
    for (int i = first; i < first + count; i++) {
        h5md_frame frame = frame_view(f, i);
        if (h5md_write_frame(w, &frame, err)) return -1;
    }
    return 0;
}

/* Writes a new file with frames [0, count) of f. */
static int write_file(const char *path, h5md_layout layout, const frames *f, int count,
                      dm_error *err)
{
    h5md_writer *w = NULL;
    if (h5md_create(&w, path, &layout, err)) return -1;
    int rc = write_frames(w, f, 0, count, err);
    if (h5md_close(w, rc ? NULL : err)) rc = -1;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading back with HDF5. */

/* Reads a whole dataset as doubles (or int64 when as_int); returns the
 * number of elements (-1 on failure); dims receives up to 3 dimensions. */
static long read_dataset(hid_t file, const char *path, int as_int, void *buf, long capacity,
                         hsize_t dims[3], int *rank)
{
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    *rank = H5Sget_simple_extent_ndims(s);
    long n = (long)H5Sget_simple_extent_npoints(s);
    dims[0] = dims[1] = dims[2] = 0;
    if (*rank > 3 || H5Sget_simple_extent_dims(s, dims, NULL) < 0 || n > capacity) n = -1;
    if (n > 0 && H5Dread(d, as_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                         H5P_DEFAULT, buf) < 0)
        n = -1;
    H5Sclose(s);
    H5Dclose(d);
    return n;
}

/* A string attribute (variable or fixed length) of object `path`. */
static int read_string_attribute(hid_t file, const char *path, const char *name, char *buf,
                                 size_t size, int *is_variable)
{
    hid_t a = H5Aopen_by_name(file, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int rc = -1;
    *is_variable = H5Tis_variable_str(t) > 0;
    if (H5Tget_class(t) == H5T_STRING) {
        if (*is_variable) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, size, "%s", s);
                H5free_memory(s);
                rc = 0;
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(t);
            char tmp[256] = {0};
            if (n < sizeof tmp && H5Aread(a, t, tmp) >= 0) {
                snprintf(buf, size, "%s", tmp);
                rc = 0;
            }
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

static void expect_unit(hid_t file, const char *path, const char *unit)
{
    char buf[64] = "";
    int variable = 0;
    int rc = read_string_attribute(file, path, "unit", buf, sizeof buf, &variable);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(variable); /* H5MD units module: variable-length string */
    if (strcmp(buf, unit) != 0) printf("\n  %s: unit '%s', expected '%s'\n", path, buf, unit);
    CU_ASSERT_STRING_EQUAL(buf, unit);
}

/* One time series of replica r: frames [from, to) of the file equal frames
 * [first, first + (to - from)) of f. */
typedef enum series { POS, VEL, FORCE, PE, KE, TOTAL, TEMP } series;

static double expected_value(const frames *f, series s, int frame, int r, int j)
{
    int atom0 = r == 0 ? 0 : N_ATOMS[0];
    switch (s) {
    case POS: return f->pos[frame][3 * atom0 + j];
    case VEL: return f->vel[frame][3 * atom0 + j] * 1000.0;
    case FORCE: return f->force[frame][3 * atom0 + j] * EV_IN_KJ_PER_MOL;
    case PE: return f->pe[frame][r];
    case KE: return f->ke[frame][r];
    case TOTAL: return f->pe[frame][r] + f->ke[frame][r];
    case TEMP: return f->temp[frame][r];
    }
    return 0.0;
}

/* The element of series s (of replica r for per-atom series). */
static const char *SERIES_PATH[] = {"particles/replica_%04d/position",
                                    "particles/replica_%04d/velocity",
                                    "particles/replica_%04d/force",
                                    "observables/potential_energy",
                                    "observables/kinetic_energy",
                                    "observables/total_energy",
                                    "observables/temperature"};

static void series_group(char *buf, size_t size, series s, int r)
{
    if (s <= FORCE)
        snprintf(buf, size, SERIES_PATH[s], r);
    else
        snprintf(buf, size, "%s", SERIES_PATH[s]);
}

/* Checks that series s of replica r holds exactly n_file frames and that
 * file frame k equals frame source[k] of f. Observables: value [F][R], the
 * replica's column r. */
static void expect_series(hid_t file, series s, int r, const frames *f, const int *source,
                          int n_file)
{
    char group[128], path[160];
    series_group(group, sizeof group, s, r);
    int per_atom = s <= FORCE;
    int values_per_frame = per_atom ? 3 * N_ATOMS[r] : N_REPLICAS;

    static double values[MAX_FRAMES * N_ATOMS_TOTAL * 3], times[MAX_FRAMES];
    static int64_t steps[MAX_FRAMES];
    hsize_t dims[3];
    int rank = 0;

    snprintf(path, sizeof path, "%s/step", group);
    CU_ASSERT_EQUAL(read_dataset(file, path, 1, steps, MAX_FRAMES, dims, &rank), n_file);
    CU_ASSERT_EQUAL(rank, 1);
    snprintf(path, sizeof path, "%s/time", group);
    CU_ASSERT_EQUAL(read_dataset(file, path, 0, times, MAX_FRAMES, dims, &rank), n_file);
    snprintf(path, sizeof path, "%s/value", group);
    long n = read_dataset(file, path, 0, values, MAX_FRAMES * N_ATOMS_TOTAL * 3, dims, &rank);
    CU_ASSERT_EQUAL(n, (long)n_file * values_per_frame);
    CU_ASSERT_EQUAL(rank, per_atom ? 3 : 2);
    CU_ASSERT_EQUAL(dims[0], (hsize_t)n_file);
    if (per_atom) {
        CU_ASSERT_EQUAL(dims[1], (hsize_t)N_ATOMS[r]);
        CU_ASSERT_EQUAL(dims[2], 3);
    } else {
        CU_ASSERT_EQUAL(dims[1], (hsize_t)N_REPLICAS);
    }
    if (n != (long)n_file * values_per_frame) return;

    int mismatches = 0;
    for (int k = 0; k < n_file; k++) {
        int i = source[k];
        if (steps[k] != f->step[i] || times[k] != f->time_fs[i] / 1000.0) mismatches++;
        if (per_atom) {
            for (int j = 0; j < values_per_frame; j++)
                if (values[(size_t)k * values_per_frame + j] != expected_value(f, s, i, r, j))
                    mismatches++;
        } else if (values[(size_t)k * N_REPLICAS + r] != expected_value(f, s, i, r, 0)) {
            mismatches++;
        }
    }
    if (mismatches) printf("\n  %s: %d values differ\n", group, mismatches);
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* Every series of every replica. */
static void expect_all_series(hid_t file, const frames *f, const int *source, int n_file,
                              int with_velocity, int with_force)
{
    for (int r = 0; r < N_REPLICAS; r++)
        for (series s = POS; s <= TEMP; s++) {
            if ((s == VEL && !with_velocity) || (s == FORCE && !with_force)) continue;
            expect_series(file, s, r, f, source, n_file);
        }
}

static const int IDENTITY[MAX_FRAMES] = {0, 1, 2, 3, 4, 5, 6, 7};

/* ------------------------------------------------------------------------ */
/* Tests. */

static void test_metadata_and_units(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "meta.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 2, 0, 10, 11);
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(write_file(path, make_layout(1, 1), f, 2, &err), 0);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    int version[2] = {0, 0};
    hid_t a = H5Aopen_by_name(file, "h5md", "version", H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_INT, version) >= 0);
    H5Aclose(a);
    CU_ASSERT(version[0] == 1 && version[1] == 1);

    char buf[128];
    int variable = 1;
    CU_ASSERT_EQUAL(read_string_attribute(file, "h5md/author", "name", buf, sizeof buf,
                                          &variable), 0);
    CU_ASSERT_STRING_EQUAL(buf, "Test Author");
    CU_ASSERT_FALSE(variable); /* H5MD: fixed-length strings */
    CU_ASSERT_EQUAL(read_string_attribute(file, "h5md/creator", "name", buf, sizeof buf,
                                          &variable), 0);
    CU_ASSERT_STRING_EQUAL(buf, "distilmd");
    CU_ASSERT_EQUAL(read_string_attribute(file, "h5md/creator", "version", buf, sizeof buf,
                                          &variable), 0);
    CU_ASSERT(strlen(buf) > 0);

    for (int r = 0; r < N_REPLICAS; r++) {
        char group[64], object[192];
        snprintf(group, sizeof group, "particles/replica_%04d", r);
        /* box: dimension 3, boundary none x3 (fixed-length strings) */
        snprintf(object, sizeof object, "%s/box", group);
        int dimension = 0;
        a = H5Aopen_by_name(file, object, "dimension", H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &dimension) >= 0);
        H5Aclose(a);
        CU_ASSERT_EQUAL(dimension, 3);
        a = H5Aopen_by_name(file, object, "boundary", H5P_DEFAULT, H5P_DEFAULT);
        hid_t t = H5Aget_type(a), s = H5Aget_space(a);
        CU_ASSERT_EQUAL(H5Tget_class(t), H5T_STRING);
        CU_ASSERT(H5Tis_variable_str(t) == 0);
        CU_ASSERT_EQUAL(H5Sget_simple_extent_npoints(s), 3);
        size_t width = H5Tget_size(t);
        char boundary[3 * 16] = {0};
        CU_ASSERT(width <= 16 && H5Aread(a, t, boundary) >= 0);
        for (int k = 0; k < 3; k++) CU_ASSERT_NSTRING_EQUAL(boundary + k * width, "none", 5);
        H5Sclose(s);
        H5Tclose(t);
        H5Aclose(a);

        /* species and mass, fixed in time */
        int64_t species[3];
        double mass[3];
        hsize_t dims[3];
        int rank, atom0 = r == 0 ? 0 : N_ATOMS[0];
        snprintf(object, sizeof object, "%s/species", group);
        CU_ASSERT_EQUAL(read_dataset(file, object, 1, species, 3, dims, &rank), N_ATOMS[r]);
        snprintf(object, sizeof object, "%s/mass", group);
        CU_ASSERT_EQUAL(read_dataset(file, object, 0, mass, 3, dims, &rank), N_ATOMS[r]);
        for (int i = 0; i < N_ATOMS[r]; i++) {
            CU_ASSERT_EQUAL(species[i], SPECIES[atom0 + i]);
            CU_ASSERT_EQUAL(mass[i], MASSES[atom0 + i]);
        }
        expect_unit(file, object, "amu");

        /* units of every series */
        static const char *units[] = {"Angstrom", "Angstrom ps-1", "kJ mol-1 Angstrom-1", "eV",
                                      "eV", "eV", "K"};
        for (series ss = POS; ss <= TEMP; ss++) {
            char path_fmt[128];
            series_group(path_fmt, sizeof path_fmt, ss, r);
            snprintf(object, sizeof object, "%s/value", path_fmt);
            expect_unit(file, object, units[ss]);
            snprintf(object, sizeof object, "%s/time", path_fmt);
            expect_unit(file, object, "ps");
        }
    }
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_round_trip(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "traj.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 5, 0, 10, 42);
    dm_error err = {{0}};
    int rc = write_file(path, make_layout(1, 1), f, 5, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, f, IDENTITY, 5, 1, 1);
    H5Fclose(file);

    /* positions only: no velocity or force groups */
    rc = write_file(path, make_layout(0, 0), f, 3, &err);
    CU_ASSERT_EQUAL(rc, 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, f, IDENTITY, 3, 0, 0);
    CU_ASSERT_EQUAL(H5Lexists(file, "particles/replica_0000/velocity", H5P_DEFAULT), 0);
    CU_ASSERT_EQUAL(H5Lexists(file, "particles/replica_0001/force", H5P_DEFAULT), 0);
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* The object info API changed in HDF5 1.12 (H5O_info2_t); type and rc
 * (the number of hard links to the object) exist in both. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t object_info;
#define get_object_info(loc, name, info) \
    H5Oget_info_by_name3(loc, name, info, H5O_INFO_BASIC, H5P_DEFAULT)
#define visit_objects(loc, cb, data) \
    H5Ovisit3(loc, H5_INDEX_NAME, H5_ITER_NATIVE, cb, data, H5O_INFO_BASIC)
#else
typedef H5O_info_t object_info;
#define get_object_info(loc, name, info) \
    H5Oget_info_by_name2(loc, name, info, H5O_INFO_BASIC, H5P_DEFAULT)
#define visit_objects(loc, cb, data) \
    H5Ovisit2(loc, H5_INDEX_NAME, H5_ITER_NATIVE, cb, data, H5O_INFO_BASIC)
#endif

/* Counts the datasets of a file: H5Ovisit visits each object once, however
 * many hard links lead to it. */
static herr_t count_dataset(hid_t obj, const char *name, const object_info *info, void *data)
{
    (void)obj;
    (void)name;
    if (info->type == H5O_TYPE_DATASET) ++*(int *)data;
    return 0;
}

/* The length of the 1-D dataset `path`, -1 when it cannot be read. */
static long dataset_length(hid_t file, const char *path)
{
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hsize_t dims[1] = {0};
    long n = H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, dims, NULL) >= 0
                 ? (long)dims[0]
                 : -1;
    H5Sclose(s);
    H5Dclose(d);
    return n;
}

/* One step and one time dataset per file, hard-linked into every element. */
static void expect_shared_step_time(const char *path, int with_velocity, int with_force,
                                    int n_frames)
{
    int per_replica = 1 + with_velocity + with_force;
    int n_elements = N_REPLICAS * per_replica + 4; /* + 4 observables */
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);

    /* every element has a step and a time link; the file holds only one
     * dataset for each: species and mass per replica, a value per element,
     * one step, one time */
    int datasets = 0;
    CU_ASSERT(visit_objects(file, count_dataset, &datasets) >= 0);
    CU_ASSERT_EQUAL(datasets, 2 * N_REPLICAS + n_elements + 2);
    static const char *const names[2] = {"step", "time"};
    for (int i = 0; i < 2; i++) {
        char shared[96];
        snprintf(shared, sizeof shared, "particles/replica_0000/position/%s", names[i]);
        object_info info;
        CU_ASSERT_FATAL(get_object_info(file, shared, &info) >= 0);
        CU_ASSERT_EQUAL(info.type, H5O_TYPE_DATASET);
        if ((int)info.rc != n_elements)
            printf("\n  %s has %u links, expected %d\n", shared, info.rc, n_elements);
        CU_ASSERT_EQUAL((int)info.rc, n_elements);

        /* extending the shared dataset extends every element's */
        hid_t d = H5Dopen2(file, shared, H5P_DEFAULT);
        hsize_t longer[1] = {(hsize_t)n_frames + 3};
        CU_ASSERT(d >= 0 && H5Dset_extent(d, longer) >= 0);
        H5Dclose(d);
        for (int r = 0; r < N_REPLICAS; r++)
            for (series s = POS; s <= TEMP; s++) {
                if ((s == VEL && !with_velocity) || (s == FORCE && !with_force)) continue;
                char group[128], object[160];
                series_group(group, sizeof group, s, r);
                snprintf(object, sizeof object, "%s/%s", group, names[i]);
                CU_ASSERT_EQUAL(dataset_length(file, object), n_frames + 3);
            }
    }
    H5Fclose(file);
}

static void test_shared_step_time(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "shared.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 3, 0, 10, 23);
    dm_error err = {{0}};
    CU_ASSERT_FATAL(write_file(path, make_layout(1, 1), f, 3, &err) == 0);
    expect_shared_step_time(path, 1, 1, 3);
    CU_ASSERT_FATAL(write_file(path, make_layout(0, 0), f, 3, &err) == 0);
    expect_shared_step_time(path, 0, 0, 3);
    CU_ASSERT_FATAL(write_file(path, make_layout(0, 1), f, 0, &err) == 0);
    expect_shared_step_time(path, 0, 1, 0);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* Many frames: several chunks along the frame axis. */
static void test_many_frames(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "long.h5", path, sizeof path);
    int n_atoms[1] = {1};
    int species[1] = {18};
    double masses[1] = {39.948};
    h5md_layout layout = {.n_replicas = 1, .n_atoms = n_atoms, .species = species,
                          .masses = masses};
    enum { N = 3000 };
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    int rc = 0;
    for (int i = 0; i < N && rc == 0; i++) {
        double pos[3] = {i, -i, 0.5 * i}, zero = 0.0, e = -i;
        h5md_frame frame = {.step = 2 * i, .time_fs = i, .positions = pos,
                            .potential_energy = &e, .kinetic_energy = &zero,
                            .temperature = &zero};
        rc = h5md_write_frame(w, &frame, &err);
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    double *pos = malloc(N * 3 * sizeof *pos), *energy = malloc(N * sizeof *energy);
    int64_t *steps = malloc(N * sizeof *steps);
    hsize_t dims[3];
    int rank, bad = 0;
    CU_ASSERT_EQUAL(read_dataset(file, "particles/replica_0000/position/value", 0, pos, N * 3,
                                 dims, &rank), N * 3);
    CU_ASSERT_EQUAL(read_dataset(file, "particles/replica_0000/position/step", 1, steps, N, dims,
                                 &rank), N);
    CU_ASSERT_EQUAL(read_dataset(file, "observables/total_energy/value", 0, energy, N, dims,
                                 &rank), N);
    CU_ASSERT(rank == 2 && dims[0] == N && dims[1] == 1);
    for (int i = 0; i < N; i++)
        if (pos[3 * i] != i || pos[3 * i + 1] != -i || pos[3 * i + 2] != 0.5 * i ||
            steps[i] != 2 * i || energy[i] != -i)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    free(pos);
    free(energy);
    free(steps);
    H5Fclose(file);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_steps_must_increase(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "order.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 2, 100, 10, 5);
    h5md_layout layout = make_layout(0, 0);
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    h5md_frame frame = frame_view(f, 1);
    CU_ASSERT_EQUAL(h5md_write_frame(w, &frame, &err), 0);
    frame = frame_view(f, 0); /* step 100 after step 110 */
    CU_ASSERT_EQUAL(h5md_write_frame(w, &frame, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "step 100 follows step 110"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    frame = frame_view(f, 1); /* the same step again */
    CU_ASSERT_EQUAL(h5md_write_frame(w, &frame, &err), -1);
    /* a frame without velocities when velocities are written */
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    layout = make_layout(1, 0);
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    frame = frame_view(f, 0);
    frame.velocities = NULL;
    CU_ASSERT_EQUAL(h5md_write_frame(w, &frame, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "lacks"));
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_append_after_truncation(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "restart.h5", path, sizeof path);
    /* the first run wrote steps 0..40; its checkpoint was at step 25 */
    frames *all = calloc(1, sizeof *all), *rerun = calloc(1, sizeof *rerun);
    make_frames(all, 5, 0, 10, 7);
    make_frames(rerun, 3, 30, 10, 8); /* the restarted run: steps 30, 40, 50 */
    dm_error err = {{0}};
    h5md_layout layout = make_layout(1, 1);
    CU_ASSERT_FATAL(write_file(path, layout, all, 5, &err) == 0);

    h5md_writer *w = NULL;
    int rc = h5md_open_append(&w, path, &layout, 25, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    /* the kept frames end at step 20: a frame at step 20 is refused */
    h5md_frame old = frame_view(all, 2);
    CU_ASSERT_EQUAL(h5md_write_frame(w, &old, &err), -1);
    CU_ASSERT_EQUAL(write_frames(w, rerun, 0, 3, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    /* expected: frames 0, 10, 20 of the first run, 30, 40, 50 of the second */
    frames *merged = calloc(1, sizeof *merged);
    *merged = *all;
    for (int k = 0; k < 3; k++) {
        merged->step[3 + k] = rerun->step[k];
        merged->time_fs[3 + k] = rerun->time_fs[k];
        memcpy(merged->pos[3 + k], rerun->pos[k], sizeof rerun->pos[k]);
        memcpy(merged->vel[3 + k], rerun->vel[k], sizeof rerun->vel[k]);
        memcpy(merged->force[3 + k], rerun->force[k], sizeof rerun->force[k]);
        memcpy(merged->pe[3 + k], rerun->pe[k], sizeof rerun->pe[k]);
        memcpy(merged->ke[3 + k], rerun->ke[k], sizeof rerun->ke[k]);
        memcpy(merged->temp[3 + k], rerun->temp[k], sizeof rerun->temp[k]);
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, merged, IDENTITY, 6, 1, 1);
    H5Fclose(file);

    /* a checkpoint before the first frame keeps nothing; after the last, everything */
    CU_ASSERT_FATAL(h5md_open_append(&w, path, &layout, 1000, &err) == 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    expect_all_series(file, merged, IDENTITY, 6, 1, 1);
    H5Fclose(file);
    CU_ASSERT_FATAL(h5md_open_append(&w, path, &layout, -1, &err) == 0);
    CU_ASSERT_EQUAL(write_frames(w, rerun, 0, 2, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    expect_all_series(file, rerun, IDENTITY, 2, 1, 1);
    H5Fclose(file);

    free(all);
    free(rerun);
    free(merged);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* h5md_open_append must fail with message `expect` (and the file name). */
static void expect_append_error(const char *path, h5md_layout layout, const char *expect)
{
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    int rc = h5md_open_append(&w, path, &layout, 100, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NULL(w);
    if (rc == 0) h5md_close(w, NULL);
    int named = strstr(err.msg, path) != NULL, says = strstr(err.msg, expect) != NULL;
    if (!named || !says) printf("\n  message '%s' lacks '%s'\n", err.msg, expect);
    CU_ASSERT_TRUE(named);
    CU_ASSERT_TRUE(says);
}

static void test_append_mismatched_layout(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300], other[300];
    temp_file(&d, "run.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 2, 0, 10, 3);
    dm_error err = {{0}};
    CU_ASSERT_FATAL(write_file(path, make_layout(1, 0), f, 2, &err) == 0);

    h5md_layout layout = make_layout(1, 0);
    layout.n_replicas = 1;
    expect_append_error(path, layout, "2 particle groups (replicas), the run has 1");

    static const int more_atoms[N_REPLICAS] = {3, 3};
    static const int species6[6] = {8, 1, 1, 6, 8, 1};
    static const double masses6[6] = {15.999, 1.008, 1.008, 12.011, 15.999, 1.008};
    layout = make_layout(1, 0);
    layout.n_atoms = more_atoms;
    layout.species = species6;
    layout.masses = masses6;
    expect_append_error(path, layout, "has 2 atoms, the run's replica has 3");

    static const int other_species[N_ATOMS_TOTAL] = {8, 1, 1, 7, 8};
    layout = make_layout(1, 0);
    layout.species = other_species;
    expect_append_error(path, layout, "species[0] is 6, the run's atom has species 7");

    static const double other_masses[N_ATOMS_TOTAL] = {15.999, 2.014, 1.008, 12.011, 15.999};
    layout = make_layout(1, 0);
    layout.masses = other_masses;
    expect_append_error(path, layout, "mass[1]");

    expect_append_error(path, make_layout(0, 0), "but the run does not write velocity");
    expect_append_error(path, make_layout(1, 1), "has no /particles/replica_0000/force");

    temp_file(&d, "missing.h5", other, sizeof other);
    expect_append_error(other, make_layout(1, 0), "No such file");

    temp_file(&d, "text.h5", other, sizeof other);
    FILE *text = fopen(other, "w");
    CU_ASSERT_FATAL(text != NULL);
    fputs("not an HDF5 file\n", text);
    fclose(text);
    expect_append_error(other, make_layout(1, 0), "not an HDF5 file");

    /* an HDF5 file without /h5md */
    temp_file(&d, "plain.h5", other, sizeof other);
    hid_t plain = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(plain >= 0);
    H5Fclose(plain);
    expect_append_error(other, make_layout(1, 0), "not an H5MD file");

    /* the file itself is unchanged and still opens */
    h5md_writer *w = NULL;
    CU_ASSERT_EQUAL(h5md_open_append(&w, path, &(h5md_layout){0}, 0, &err), -1);
    layout = make_layout(1, 0);
    CU_ASSERT_FATAL(h5md_open_append(&w, path, &layout, 1000, &err) == 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    expect_all_series(file, f, IDENTITY, 2, 1, 0);
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* A frame that only some datasets hold (a writer killed within a frame) is
 * dropped on reopening, whatever the checkpoint's step. */
static void test_partial_frame_dropped(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "partial.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 5, 0, 10, 31);
    dm_error err = {{0}};
    h5md_layout layout = make_layout(1, 1);
    CU_ASSERT_FATAL(write_file(path, layout, f, 3, &err) == 0);

    /* a fourth row in two value datasets only */
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    hid_t v = H5Dopen2(file, "particles/replica_0001/velocity/value", H5P_DEFAULT);
    hsize_t dims3[3] = {4, (hsize_t)N_ATOMS[1], 3};
    CU_ASSERT(v >= 0 && H5Dset_extent(v, dims3) >= 0);
    H5Dclose(v);
    hid_t t = H5Dopen2(file, "observables/temperature/value", H5P_DEFAULT);
    hsize_t dims2[2] = {4, N_REPLICAS};
    CU_ASSERT(t >= 0 && H5Dset_extent(t, dims2) >= 0);
    H5Dclose(t);
    H5Fclose(file);

    h5md_writer *w = NULL;
    int rc = h5md_open_append(&w, path, &layout, 1000, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_EQUAL(write_frames(w, f, 3, 2, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, f, IDENTITY, 5, 1, 1);
    H5Fclose(file);

    /* step and time longer than the values: the same */
    CU_ASSERT_FATAL(write_file(path, layout, f, 3, &err) == 0);
    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    static const char *const shared[2] = {"particles/replica_0000/position/step",
                                          "particles/replica_0000/position/time"};
    for (int i = 0; i < 2; i++) {
        hid_t s = H5Dopen2(file, shared[i], H5P_DEFAULT);
        hsize_t dims1[1] = {4};
        CU_ASSERT(s >= 0 && H5Dset_extent(s, dims1) >= 0);
        H5Dclose(s);
    }
    H5Fclose(file);
    CU_ASSERT_FATAL(h5md_open_append(&w, path, &layout, 1000, &err) == 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    expect_all_series(file, f, IDENTITY, 3, 1, 1);
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* An element with a step of its own (not the shared one) is refused on
 * reopening: truncating the shared step would not truncate it. */
static void test_append_unshared_step(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "unshared.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 2, 0, 10, 37);
    dm_error err = {{0}};
    CU_ASSERT_FATAL(write_file(path, make_layout(1, 0), f, 2, &err) == 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    CU_ASSERT(H5Ldelete(file, "particles/replica_0001/velocity/step", H5P_DEFAULT) >= 0);
    hsize_t dims[1] = {2};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t own = H5Dcreate2(file, "particles/replica_0001/velocity/step", H5T_STD_I64LE, space,
                           H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int64_t steps[2] = {0, 10};
    CU_ASSERT(own >= 0 && H5Dwrite(own, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                   steps) >= 0);
    H5Dclose(own);
    H5Sclose(space);
    H5Fclose(file);
    expect_append_error(path, make_layout(1, 0),
                        "/particles/replica_0001/velocity/step is not a hard link to "
                        "/particles/replica_0000/position/step");
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_create_errors(void)
{
    long ids = test_open_hdf5_ids();
    dm_error err = {{0}};
    h5md_writer *w = (h5md_writer *)&err; /* must be reset to NULL */
    h5md_layout layout = make_layout(0, 0);
    const char *path = "/nonexistent-dir-distilmd/traj.h5";
    CU_ASSERT_EQUAL(h5md_create(&w, path, &layout, &err), -1);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot create"));

    layout.n_replicas = 0;
    CU_ASSERT_EQUAL(h5md_create(&w, "/tmp/unused.h5", &layout, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "at least one replica"));
    CU_ASSERT_EQUAL(h5md_close(NULL, &err), 0);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
}

/* A writer killed by SIGKILL after a flush leaves the flushed frames. */
static void test_killed_after_flush(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "killed.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 5, 0, 10, 99);
    enum { FLUSHED = 3 };

    fflush(stdout);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        /* the writer: 3 frames, flush, 2 frames that are never flushed */
        h5md_layout layout = make_layout(1, 1);
        h5md_writer *w = NULL;
        dm_error err;
        if (h5md_create(&w, path, &layout, &err) || write_frames(w, f, 0, FLUSHED, &err) ||
            h5md_flush(w, &err) || write_frames(w, f, FLUSHED, 2, &err))
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* at least the flushed frames are there, exactly as written */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    hid_t dset = H5Dopen2(file, "particles/replica_0000/position/value", H5P_DEFAULT);
    hid_t space = H5Dget_space(dset);
    hsize_t dims[3] = {0};
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    H5Dclose(dset);
    CU_ASSERT(dims[0] >= FLUSHED && dims[0] <= 5);
    printf(" [%llu frames after the kill] ", (unsigned long long)dims[0]);
    H5Fclose(file);

    /* the flushed frames, read through a hyperslab of the first FLUSHED */
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    dset = H5Dopen2(file, "particles/replica_0001/force/value", H5P_DEFAULT);
    space = H5Dget_space(dset);
    hsize_t start[3] = {0, 0, 0}, count[3] = {FLUSHED, (hsize_t)N_ATOMS[1], 3};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mem = H5Screate_simple(3, count, NULL);
    double forces[FLUSHED][2][3];
    CU_ASSERT(H5Dread(dset, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, forces) >= 0);
    int bad = 0;
    for (int k = 0; k < FLUSHED; k++)
        for (int j = 0; j < 6; j++)
            if (forces[k][j / 3][j % 3] != f->force[k][3 * N_ATOMS[0] + j] * EV_IN_KJ_PER_MOL)
                bad++;
    CU_ASSERT_EQUAL(bad, 0);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);

    /* a restart from a checkpoint at step 20 reopens it and appends */
    h5md_layout layout = make_layout(1, 1);
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    int rc = h5md_open_append(&w, path, &layout, 20, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_EQUAL(write_frames(w, f, FLUSHED, 2, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, f, IDENTITY, 5, 1, 1);
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* Our calls neither print HDF5's error stack nor change the handler. */
static void test_error_handler_restored(void)
{
    hdf5_error_probe probe;
    hdf5_error_probe_begin(&probe);

    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "text.h5", path, sizeof path);
    FILE *text = fopen(path, "w");
    fputs("text\n", text);
    fclose(text);
    h5md_layout layout = make_layout(0, 0);
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(h5md_open_append(&w, path, &layout, 0, &err), -1);
    CU_ASSERT_EQUAL(h5md_create(&w, "/nonexistent-dir-distilmd/x.h5", &layout, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "HDF5:"));

    hdf5_error_probe_end(&probe);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* ------------------------------------------------------------------------ */
/* Extra observables and time-independent datasets (/parameters). */

/* Two extra observables as replica exchange writes them: the rung each
 * replica holds (integers, no unit) and its thermostat temperature (K). */
static const h5md_series_spec EXTRA[2] = {{"replica_state", NULL, H5MD_INT64, 1},
                                          {"thermostat_temperature", "K", H5MD_FLOAT64, 1}};

typedef struct extra_frames {
    int64_t state[MAX_FRAMES][N_REPLICAS];
    double thermostat[MAX_FRAMES][N_REPLICAS];
} extra_frames;

/* Distinct values per frame and replica: the state a permutation that
 * changes with the frame, the temperature random. */
static void make_extra(extra_frames *e, int n, unsigned long long seed)
{
    test_rng rng = {seed};
    for (int i = 0; i < n; i++)
        for (int r = 0; r < N_REPLICAS; r++) {
            e->state[i][r] = (r + i + (long)seed) % N_REPLICAS;
            e->thermostat[i][r] = 300.0 + 300.0 * test_uniform(&rng);
        }
}

static h5md_layout make_extra_layout(void)
{
    h5md_layout layout = make_layout(1, 0);
    layout.n_extra = 2;
    layout.extra = EXTRA;
    return layout;
}

/* Frames [first, first + count) of f with the extra values of e. */
static int write_extra_frames(h5md_writer *w, const frames *f, const extra_frames *e, int first,
                              int count, dm_error *err)
{
    for (int i = first; i < first + count; i++) {
        const void *extra[2] = {e->state[i], e->thermostat[i]};
        h5md_frame frame = frame_view(f, i);
        frame.extra = extra;
        if (h5md_write_frame(w, &frame, err)) return -1;
    }
    return 0;
}

/* The class (H5T_INTEGER, H5T_FLOAT) of dataset `path`. */
static H5T_class_t dataset_class(hid_t file, const char *path)
{
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t t = d < 0 ? -1 : H5Dget_type(d);
    H5T_class_t c = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return c;
}

/* The file's extra observables hold exactly n_file frames, frame k equal to
 * frame source[k] of e (and of f for step and time), with integer and
 * floating-point storage, units as declared, step and time the shared ones. */
static void expect_extra(hid_t file, const frames *f, const extra_frames *e, const int *source,
                         int n_file)
{
    static const char *const value[2] = {"observables/replica_state/value",
                                         "observables/thermostat_temperature/value"};
    CU_ASSERT_EQUAL(dataset_class(file, value[0]), H5T_INTEGER);
    CU_ASSERT_EQUAL(dataset_class(file, value[1]), H5T_FLOAT);
    CU_ASSERT_EQUAL(H5Aexists_by_name(file, value[0], "unit", H5P_DEFAULT), 0);
    expect_unit(file, value[1], "K");
    int64_t state[MAX_FRAMES * N_REPLICAS], steps[MAX_FRAMES];
    double thermostat[MAX_FRAMES * N_REPLICAS];
    hsize_t dims[3];
    int rank = 0, mismatches = 0;
    CU_ASSERT_EQUAL(read_dataset(file, value[0], 1, state, MAX_FRAMES * N_REPLICAS, dims, &rank),
                    n_file * N_REPLICAS);
    CU_ASSERT(rank == 2 && dims[0] == (hsize_t)n_file && dims[1] == N_REPLICAS);
    CU_ASSERT_EQUAL(read_dataset(file, value[1], 0, thermostat, MAX_FRAMES * N_REPLICAS, dims,
                                 &rank), n_file * N_REPLICAS);
    CU_ASSERT(rank == 2 && dims[0] == (hsize_t)n_file && dims[1] == N_REPLICAS);
    CU_ASSERT_EQUAL(read_dataset(file, "observables/replica_state/step", 1, steps, MAX_FRAMES,
                                 dims, &rank), n_file);
    for (int k = 0; k < n_file; k++) {
        if (steps[k] != f->step[source[k]]) mismatches++;
        for (int r = 0; r < N_REPLICAS; r++)
            if (state[k * N_REPLICAS + r] != e->state[source[k]][r] ||
                thermostat[k * N_REPLICAS + r] != e->thermostat[source[k]][r])
                mismatches++;
    }
    if (mismatches) printf("\n  extra observables: %d values differ\n", mismatches);
    CU_ASSERT_EQUAL(mismatches, 0);
    /* step and time are the shared datasets: same object as replica_0000's */
    for (int i = 0; i < 2; i++) {
        static const char *const names[2] = {"step", "time"};
        char mine[96], shared[96];
        object_info a, b;
        snprintf(shared, sizeof shared, "particles/replica_0000/position/%s", names[i]);
        for (int x = 0; x < 2; x++) {
            snprintf(mine, sizeof mine, "%.*s/%s", (int)(strlen(value[x]) - 6), value[x],
                     names[i]);
            CU_ASSERT_FATAL(get_object_info(file, mine, &a) >= 0);
            CU_ASSERT_FATAL(get_object_info(file, shared, &b) >= 0);
#if H5_VERSION_GE(1, 12, 0)
            int cmp = 1;
            CU_ASSERT(H5Otoken_cmp(file, &a.token, &b.token, &cmp) >= 0 && cmp == 0);
#else
            CU_ASSERT_EQUAL(a.addr, b.addr);
#endif
        }
    }
}

static void test_extra_observables_round_trip(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "extra.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    extra_frames *e = calloc(1, sizeof *e);
    make_frames(f, 4, 0, 10, 51);
    make_extra(e, 4, 52);
    h5md_layout layout = make_extra_layout();
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    int rc = write_extra_frames(w, f, e, 0, 4, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    /* a frame without the extra values is refused, naming the observable */
    frames *later = calloc(1, sizeof *later);
    make_frames(later, 1, 100, 10, 53);
    h5md_frame missing = frame_view(later, 0);
    CU_ASSERT_EQUAL(h5md_write_frame(w, &missing, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/observables/replica_state"));
    const void *half[2] = {e->state[0], NULL};
    missing.extra = half;
    CU_ASSERT_EQUAL(h5md_write_frame(w, &missing, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/observables/thermostat_temperature"));
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_all_series(file, f, IDENTITY, 4, 1, 0);
    expect_extra(file, f, e, IDENTITY, 4);
    H5Fclose(file);
    free(f);
    free(e);
    free(later);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* h5md_create must refuse the layout with a message containing `expect`. */
static void expect_create_error(const char *path, h5md_layout layout, const char *expect)
{
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(h5md_create(&w, path, &layout, &err), -1);
    CU_ASSERT_PTR_NULL(w);
    if (!strstr(err.msg, expect)) printf("\n  message '%s' lacks '%s'\n", err.msg, expect);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, expect));
}

static void test_extra_observables_invalid(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "invalid.h5", path, sizeof path);
    h5md_layout layout = make_extra_layout();
    static const h5md_series_spec standard[1] = {{"temperature", "K", H5MD_FLOAT64, 1}};
    layout.n_extra = 1;
    layout.extra = standard;
    expect_create_error(path, layout, "'temperature' is a standard observable");
    static const h5md_series_spec twice[2] = {{"a", NULL, H5MD_INT64, 1},
                                              {"a", NULL, H5MD_INT64, 1}};
    layout.n_extra = 2;
    layout.extra = twice;
    expect_create_error(path, layout, "'a' is declared twice");
    static const h5md_series_spec slash[1] = {{"a/b", NULL, H5MD_INT64, 1}};
    layout.n_extra = 1;
    layout.extra = slash;
    expect_create_error(path, layout, "got 'a/b'");
    static const h5md_series_spec empty[1] = {{"", NULL, H5MD_INT64, 1}};
    layout.extra = empty;
    expect_create_error(path, layout, "got ''");
    layout.extra = NULL;
    expect_create_error(path, layout, "declares 1 extra observables but gives none");
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* What test_parameters writes: a vector of doubles with a NaN and a unit,
 * a vector of integers, a 2-D integer array, an empty vector. */
static const double LADDER[3] = {300.0, 424.26406871192853, 600.0};
static const double ACCEPTANCE[3] = {0.25, 0.75, NAN};
static const int64_t COUNTS[3] = {4, -1, 1LL << 40};
static const int64_t OCCUPANCY[3][2] = {{1, 2}, {3, 4}, {5, 6}};

static void expect_parameters(hid_t file)
{
    double real[8];
    int64_t integer[8];
    hsize_t dims[3];
    int rank = 0;
    CU_ASSERT_EQUAL(read_dataset(file, "parameters/demo/ladder", 0, real, 8, dims, &rank), 3);
    CU_ASSERT(rank == 1 && memcmp(real, LADDER, sizeof LADDER) == 0);
    CU_ASSERT_EQUAL(dataset_class(file, "parameters/demo/ladder"), H5T_FLOAT);
    expect_unit(file, "parameters/demo/ladder", "K");
    CU_ASSERT_EQUAL(read_dataset(file, "parameters/demo/acceptance", 0, real, 8, dims, &rank), 3);
    CU_ASSERT(real[0] == 0.25 && real[1] == 0.75 && isnan(real[2]));
    CU_ASSERT_EQUAL(H5Aexists_by_name(file, "parameters/demo/acceptance", "unit", H5P_DEFAULT), 0);
    CU_ASSERT_EQUAL(read_dataset(file, "parameters/demo/counts", 1, integer, 8, dims, &rank), 3);
    CU_ASSERT(rank == 1 && memcmp(integer, COUNTS, sizeof COUNTS) == 0);
    CU_ASSERT_EQUAL(dataset_class(file, "parameters/demo/counts"), H5T_INTEGER);
    CU_ASSERT_EQUAL(read_dataset(file, "parameters/demo/occupancy", 1, integer, 8, dims, &rank),
                    6);
    CU_ASSERT(rank == 2 && dims[0] == 3 && dims[1] == 2);
    CU_ASSERT(memcmp(integer, OCCUPANCY, sizeof OCCUPANCY) == 0);
    CU_ASSERT_EQUAL(dataset_length(file, "parameters/demo/none"), 0);
}

static int write_demo_parameters(h5md_writer *w, dm_error *err)
{
    h5md_fixed d[] = {
        {"ladder", "K", H5MD_FLOAT64, 1, {3, 0}, LADDER},
        {"acceptance", NULL, H5MD_FLOAT64, 1, {3, 0}, ACCEPTANCE},
        {"counts", NULL, H5MD_INT64, 1, {3, 0}, COUNTS},
        {"occupancy", NULL, H5MD_INT64, 2, {3, 2}, OCCUPANCY},
        {"none", NULL, H5MD_INT64, 1, {0, 0}, NULL},
    };
    return h5md_write_parameters(w, "demo", d, 5, err);
}

static void test_parameters(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "parameters.h5", path, sizeof path);
    frames *f = calloc(1, sizeof *f);
    make_frames(f, 2, 0, 10, 61);
    h5md_layout layout = make_layout(1, 0);
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    /* written before the frames, replaced by a different group, then written again */
    CU_ASSERT_EQUAL(write_demo_parameters(w, &err), 0);
    CU_ASSERT_EQUAL(write_frames(w, f, 0, 1, &err), 0);
    static const int64_t one[1] = {7};
    h5md_fixed other = {"other", NULL, H5MD_INT64, 1, {1, 0}, one};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", &other, 1, &err), 0);
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "second", &other, 1, &err), 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    CU_ASSERT_EQUAL(H5Lexists(file, "parameters/demo/ladder", H5P_DEFAULT), 0);
    CU_ASSERT_EQUAL(H5Lexists(file, "parameters/demo/other", H5P_DEFAULT), 1);
    CU_ASSERT_EQUAL(H5Lexists(file, "parameters/second/other", H5P_DEFAULT), 1);
    H5Fclose(file);
    CU_ASSERT_EQUAL(write_demo_parameters(w, &err), 0);
    CU_ASSERT_EQUAL(write_frames(w, f, 1, 1, &err), 0);

    /* refused: bad names, ranks, missing data, a name given twice */
    h5md_fixed bad = {"x/y", NULL, H5MD_INT64, 1, {1, 0}, one};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", &bad, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "got 'x/y'"));
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "a/b", &other, 1, &err), -1);
    bad = (h5md_fixed){"x", NULL, H5MD_INT64, 3, {1, 1}, one};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", &bad, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/parameters/demo/x: expected rank 1 or 2"));
    bad = (h5md_fixed){"x", NULL, H5MD_INT64, 1, {1, 0}, NULL};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", &bad, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no data"));
    h5md_fixed twice[2] = {other, other};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", twice, 2, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "given twice"));
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_parameters(file); /* the refused calls left the group as it was */
    expect_all_series(file, f, IDENTITY, 2, 1, 0);
    H5Fclose(file);
    free(f);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* A restart: extra observables are truncated after the checkpoint's step
 * with the other series and appended to; /parameters survives reopening
 * and is rewritten. */
static void test_extra_append_after_truncation(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    temp_file(&d, "restart_extra.h5", path, sizeof path);
    frames *all = calloc(1, sizeof *all), *rerun = calloc(1, sizeof *rerun);
    extra_frames *e_all = calloc(1, sizeof *e_all), *e_rerun = calloc(1, sizeof *e_rerun);
    make_frames(all, 5, 0, 10, 71);     /* steps 0..40 */
    make_extra(e_all, 5, 72);
    make_frames(rerun, 3, 30, 10, 73);  /* the restarted run: steps 30, 40, 50 */
    make_extra(e_rerun, 3, 74);
    h5md_layout layout = make_extra_layout();
    h5md_writer *w = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(h5md_create(&w, path, &layout, &err) == 0);
    CU_ASSERT_EQUAL(write_extra_frames(w, all, e_all, 0, 5, &err), 0);
    CU_ASSERT_EQUAL(write_demo_parameters(w, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    /* checkpoint at step 25: frames 0, 10, 20 kept */
    int rc = h5md_open_append(&w, path, &layout, 25, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_extra(file, all, e_all, IDENTITY, 3);
    expect_parameters(file);
    H5Fclose(file);
    CU_ASSERT_EQUAL(write_extra_frames(w, rerun, e_rerun, 0, 3, &err), 0);
    static const int64_t updated[1] = {99};
    h5md_fixed one = {"counts", NULL, H5MD_INT64, 1, {1, 0}, updated};
    CU_ASSERT_EQUAL(h5md_write_parameters(w, "demo", &one, 1, &err), 0);
    CU_ASSERT_EQUAL(h5md_close(w, &err), 0);

    frames *merged = calloc(1, sizeof *merged);
    extra_frames *e_merged = calloc(1, sizeof *e_merged);
    *merged = *all;
    *e_merged = *e_all;
    for (int k = 0; k < 3; k++) {
        merged->step[3 + k] = rerun->step[k];
        merged->time_fs[3 + k] = rerun->time_fs[k];
        memcpy(e_merged->state[3 + k], e_rerun->state[k], sizeof e_rerun->state[k]);
        memcpy(e_merged->thermostat[3 + k], e_rerun->thermostat[k],
               sizeof e_rerun->thermostat[k]);
    }
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    expect_extra(file, merged, e_merged, IDENTITY, 6);
    int64_t counts[4];
    hsize_t dims[3];
    int rank;
    CU_ASSERT_EQUAL(read_dataset(file, "parameters/demo/counts", 1, counts, 4, dims, &rank), 1);
    CU_ASSERT_EQUAL(counts[0], 99);
    CU_ASSERT_EQUAL(H5Lexists(file, "parameters/demo/ladder", H5P_DEFAULT), 0);
    H5Fclose(file);

    /* layouts that do not match the file's extra observables */
    expect_append_error(path, make_layout(1, 0),
                        "the file has /observables/replica_state, but the run does not write it");
    h5md_layout fewer = make_extra_layout();
    fewer.n_extra = 1;
    expect_append_error(path, fewer, "the file has /observables/thermostat_temperature, but the "
                                     "run does not write it");
    static const h5md_series_spec more[3] = {{"replica_state", NULL, H5MD_INT64, 1},
                                             {"thermostat_temperature", "K", H5MD_FLOAT64, 1},
                                             {"round_trips", NULL, H5MD_INT64, 1}};
    h5md_layout three = make_extra_layout();
    three.n_extra = 3;
    three.extra = more;
    expect_append_error(path, three, "has no /observables/round_trips");
    static const h5md_series_spec swapped[2] = {{"replica_state", NULL, H5MD_FLOAT64, 1},
                                                {"thermostat_temperature", "K", H5MD_FLOAT64, 1}};
    h5md_layout types = make_extra_layout();
    types.extra = swapped;
    expect_append_error(path, types, "/observables/replica_state/value does not hold "
                                     "floating-point values");

    free(all);
    free(rerun);
    free(merged);
    free(e_all);
    free(e_rerun);
    free(e_merged);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("h5md", TEST_CASE(test_metadata_and_units), TEST_CASE(test_round_trip),
               TEST_CASE(test_many_frames), TEST_CASE(test_steps_must_increase),
               TEST_CASE(test_append_after_truncation), TEST_CASE(test_append_mismatched_layout),
               TEST_CASE(test_shared_step_time), TEST_CASE(test_partial_frame_dropped),
               TEST_CASE(test_append_unshared_step),
               TEST_CASE(test_create_errors), TEST_CASE(test_killed_after_flush),
               TEST_CASE(test_error_handler_restored),
               TEST_CASE(test_extra_observables_round_trip),
               TEST_CASE(test_extra_observables_invalid), TEST_CASE(test_parameters),
               TEST_CASE(test_extra_append_after_truncation));
    return test_run_all();
}
