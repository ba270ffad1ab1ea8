/* test_checkpoint.c — restart files (src/io/checkpoint.c): exact round trip
 * of float64 and int64 arrays (including extreme values and empty arrays),
 * atomic replacement (no PATH.tmp left, a failed write keeps the old file),
 * and every error of checkpoint_read naming the file and the dataset:
 * missing file, not HDF5, HDF5 but no checkpoint, wrong format or version,
 * missing dataset, wrong count, wrong type. Foreign files for the error
 * cases are made with the plain HDF5 API. */
#define _POSIX_C_SOURCE 200809L

#include "test_support.h"

#include "io/checkpoint.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------------ */
/* A checkpoint's contents. */

#define N_POS 7

typedef struct state {
    double positions[N_POS];
    int64_t step[1];
    int64_t rng[4];
    double empty[1];
} state;

static void make_state(state *s, unsigned long long seed)
{
    test_rng rng = {seed};
    for (int i = 0; i < N_POS; i++) s->positions[i] = 10.0 * test_normal(&rng);
    s->positions[0] = -0.0;
    s->positions[1] = 1e-310; /* subnormal */
    s->positions[2] = INFINITY;
    s->step[0] = 123456789012LL + (int64_t)seed;
    s->rng[0] = INT64_MIN;
    s->rng[1] = INT64_MAX;
    s->rng[2] = -1;
    s->rng[3] = (int64_t)(test_uniform(&rng) * 9e18);
}

/* The entries for s, in a caller-provided array of 4. */
static void entries_of(state *s, checkpoint_entry e[4])
{
    e[0] = (checkpoint_entry){"positions", CHECKPOINT_F64, N_POS, s->positions};
    e[1] = (checkpoint_entry){"step", CHECKPOINT_I64, 1, s->step};
    e[2] = (checkpoint_entry){"rng_state", CHECKPOINT_I64, 4, s->rng};
    e[3] = (checkpoint_entry){"nothing", CHECKPOINT_F64, 0, s->empty};
}

/* checkpoint_read must fail with a message holding the file name and
 * `expect`. */
static void expect_read_error(const char *path, const checkpoint_entry *e, int n,
                              const char *expect)
{
    dm_error err = {{0}};
    int rc = checkpoint_read(path, e, n, &err);
    CU_ASSERT_EQUAL(rc, -1);
    int named = strstr(err.msg, path) != NULL, says = strstr(err.msg, expect) != NULL;
    if (!named || !says) printf("\n  message '%s' lacks '%s'\n", err.msg, expect);
    CU_ASSERT_TRUE(named);
    CU_ASSERT_TRUE(says);
}

/* ------------------------------------------------------------------------ */

static void test_round_trip(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300], tmp[310];
    snprintf(path, sizeof path, "%s/run.chk", d.path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    state written, read;
    make_state(&written, 1);
    memset(&read, 0x5a, sizeof read);
    checkpoint_entry out[4], in[4];
    entries_of(&written, out);
    entries_of(&read, in);
    dm_error err = {{0}};
    int rc = checkpoint_write(path, out, 4, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_FALSE(file_exists(tmp));
    rc = checkpoint_read(path, in, 4, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    /* bit-exact, including -0.0, subnormals and infinity */
    CU_ASSERT_EQUAL(memcmp(read.positions, written.positions, sizeof read.positions), 0);
    CU_ASSERT_EQUAL(memcmp(read.step, written.step, sizeof read.step), 0);
    CU_ASSERT_EQUAL(memcmp(read.rng, written.rng, sizeof read.rng), 0);

    /* the format attributes, read with plain HDF5 */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    int version = 0;
    hid_t a = H5Aopen_by_name(file, "checkpoint", "version", H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &version) >= 0);
    H5Aclose(a);
    CU_ASSERT_EQUAL(version, 1);
    a = H5Aopen_by_name(file, "checkpoint", "format", H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char format[64] = {0};
    CU_ASSERT(H5Tget_size(t) < sizeof format && H5Aread(a, t, format) >= 0);
    CU_ASSERT_STRING_EQUAL(format, "distilmd-checkpoint");
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(file);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_replace_existing(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300], tmp[310];
    snprintf(path, sizeof path, "%s/run.chk", d.path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    state first, second, read;
    make_state(&first, 1);
    make_state(&second, 2);
    checkpoint_entry e1[4], e2[4], in[4];
    entries_of(&first, e1);
    entries_of(&second, e2);
    entries_of(&read, in);
    dm_error err = {{0}};

    /* a stale PATH.tmp from a killed run is simply replaced */
    FILE *stale = fopen(tmp, "w");
    CU_ASSERT_FATAL(stale != NULL);
    fputs("half a checkpoint", stale);
    fclose(stale);
    CU_ASSERT_EQUAL(checkpoint_write(path, e1, 4, &err), 0);
    CU_ASSERT_EQUAL(checkpoint_write(path, e2, 4, &err), 0);
    CU_ASSERT_FALSE(file_exists(tmp));
    CU_ASSERT_EQUAL(checkpoint_read(path, in, 4, &err), 0);
    CU_ASSERT_EQUAL(memcmp(read.positions, second.positions, sizeof read.positions), 0);
    CU_ASSERT_EQUAL(read.step[0], second.step[0]);

    /* a write that fails (two datasets of one name) keeps the old file */
    checkpoint_entry twice[2] = {e1[0], e1[0]};
    CU_ASSERT_EQUAL(checkpoint_write(path, twice, 2, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/checkpoint/positions"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, tmp));
    CU_ASSERT_FALSE(file_exists(tmp));
    memset(&read, 0, sizeof read);
    CU_ASSERT_EQUAL(checkpoint_read(path, in, 4, &err), 0);
    CU_ASSERT_EQUAL(memcmp(read.positions, second.positions, sizeof read.positions), 0);
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_write_errors(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    snprintf(path, sizeof path, "%s/bad.chk", d.path);
    double x[2] = {1, 2};
    dm_error err = {{0}};

    checkpoint_entry slash = {"a/b", CHECKPOINT_F64, 2, x};
    CU_ASSERT_EQUAL(checkpoint_write(path, &slash, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "invalid name 'a/b'"));
    CU_ASSERT_FALSE(file_exists(path));

    checkpoint_entry no_data = {"x", CHECKPOINT_F64, 2, NULL};
    CU_ASSERT_EQUAL(checkpoint_write(path, &no_data, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'x'"));

    const char *nowhere = "/nonexistent-dir-distilmd/run.chk";
    checkpoint_entry ok = {"x", CHECKPOINT_F64, 2, x};
    CU_ASSERT_EQUAL(checkpoint_write(nowhere, &ok, 1, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, nowhere));
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

/* Writes an HDF5 file with /checkpoint carrying the given format and
 * version attributes (format NULL: no attribute), a dataset "step" of
 * 32-bit integers and a dataset "rng_state" of 4 unsigned 64-bit integers. */
static void write_foreign(const char *path, const char *format, int version)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t group = H5Gcreate2(file, "checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t scalar = H5Screate(H5S_SCALAR);
    if (format) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(format) + 1);
        hid_t a = H5Acreate2(group, "format", t, scalar, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, format);
        H5Aclose(a);
        H5Tclose(t);
    }
    hid_t a = H5Acreate2(group, "version", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &version);
    H5Aclose(a);
    hsize_t dims[1] = {1};
    hid_t space = H5Screate_simple(1, dims, NULL);
    int value = 7;
    hid_t dset = H5Dcreate2(group, "step", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value);
    H5Dclose(dset);
    H5Sclose(space);
    dims[0] = 4;
    space = H5Screate_simple(1, dims, NULL);
    unsigned long long rng[4] = {1, 2, 3, 4};
    dset = H5Dcreate2(group, "rng_state", H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                      H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_ULLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, rng);
    H5Dclose(dset);
    H5Sclose(space);
    H5Sclose(scalar);
    H5Gclose(group);
    H5Fclose(file);
}

static void test_read_errors(void)
{
    long ids = test_open_hdf5_ids();
    temp_dir d;
    CU_ASSERT_FATAL(temp_dir_make(&d) == 0);
    char path[300];
    state s;
    make_state(&s, 3);
    checkpoint_entry e[4];
    entries_of(&s, e);

    snprintf(path, sizeof path, "%s/missing.chk", d.path);
    expect_read_error(path, e, 4, "No such file or directory");

    snprintf(path, sizeof path, "%s/text.chk", d.path);
    FILE *text = fopen(path, "w");
    CU_ASSERT_FATAL(text != NULL);
    fputs("positions 1 2 3\n", text);
    fclose(text);
    expect_read_error(path, e, 4, "not an HDF5 file");

    snprintf(path, sizeof path, "%s/empty.h5", d.path);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(file);
    expect_read_error(path, e, 4, "not a distilmd checkpoint (no group /checkpoint)");

    snprintf(path, sizeof path, "%s/noformat.h5", d.path);
    write_foreign(path, NULL, 1);
    expect_read_error(path, e, 4, "no string attribute format");
    snprintf(path, sizeof path, "%s/otherformat.h5", d.path);
    write_foreign(path, "someone-elses-checkpoint", 1);
    expect_read_error(path, e, 4, "format is 'someone-elses-checkpoint'");
    snprintf(path, sizeof path, "%s/version2.h5", d.path);
    write_foreign(path, "distilmd-checkpoint", 2);
    expect_read_error(path, e, 4, "version 2, this build reads version 1");
    /* right format, but "step" holds 32-bit integers */
    snprintf(path, sizeof path, "%s/int32.h5", d.path);
    write_foreign(path, "distilmd-checkpoint", 1);
    expect_read_error(path, &e[1], 1,
                      "/checkpoint/step is 32-bit signed integer, expected 64-bit signed integer");
    expect_read_error(path, &e[2], 1,
                      "/checkpoint/rng_state is 64-bit unsigned integer, expected 64-bit signed "
                      "integer");

    /* a real checkpoint read with entries that do not match it */
    snprintf(path, sizeof path, "%s/run.chk", d.path);
    dm_error err = {{0}};
    CU_ASSERT_FATAL(checkpoint_write(path, e, 4, &err) == 0);
    double velocities[N_POS];
    checkpoint_entry extra = {"velocities", CHECKPOINT_F64, N_POS, velocities};
    expect_read_error(path, &extra, 1, "dataset /checkpoint/velocities is missing");
    checkpoint_entry fewer = e[0];
    fewer.count = N_POS - 1;
    expect_read_error(path, &fewer, 1, "/checkpoint/positions has 7 values, expected 6");
    checkpoint_entry as_float = e[1];
    as_float.type = CHECKPOINT_F64;
    expect_read_error(path, &as_float, 1,
                      "/checkpoint/step is 64-bit signed integer, expected 64-bit float");
    checkpoint_entry as_int = e[0];
    as_int.type = CHECKPOINT_I64;
    expect_read_error(path, &as_int, 1,
                      "/checkpoint/positions is 64-bit float, expected 64-bit signed integer");
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);
    temp_dir_remove(&d);
}

static void test_error_handler_restored(void)
{
    hdf5_error_probe probe;
    hdf5_error_probe_begin(&probe);
    long ids = test_open_hdf5_ids();

    double x = 1;
    checkpoint_entry twice[2] = {{"x", CHECKPOINT_F64, 1, &x}, {"x", CHECKPOINT_F64, 1, &x}};
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(checkpoint_write("/tmp/distilmd_unused_checkpoint.chk", twice, 2, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "HDF5:"));
    CU_ASSERT_FALSE(file_exists("/tmp/distilmd_unused_checkpoint.chk"));
    CU_ASSERT_FALSE(file_exists("/tmp/distilmd_unused_checkpoint.chk.tmp"));
    CU_ASSERT_EQUAL(test_open_hdf5_ids(), ids);

    hdf5_error_probe_end(&probe);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("checkpoint", TEST_CASE(test_round_trip), TEST_CASE(test_replace_existing),
               TEST_CASE(test_write_errors), TEST_CASE(test_read_errors),
               TEST_CASE(test_error_handler_restored));
    return test_run_all();
}
