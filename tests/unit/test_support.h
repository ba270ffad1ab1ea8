/* test_support.h — what every CUnit test program shares: finding ../shared,
 * skipping (exit 77, which CTest reports as skipped) with a clear reason, and
 * running the registered suites. */
#ifndef DISTILMD_TEST_SUPPORT_H
#define DISTILMD_TEST_SUPPORT_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <hdf5.h>

#define TEST_SKIP_CODE 77

/* $DISTILMD_SHARED, else $DISTILMD_SOURCE_DIR/../shared, else ../shared. */
const char *test_shared_dir(void);
/* Builds "<shared>/<relative>" into a static buffer (one at a time). */
const char *test_shared_path(const char *relative);
/* Exits with TEST_SKIP_CODE and "skipped: ..." when shared/ is absent. */
void test_require_shared(void);
/* Loads shared/models/student_<size>.onnx ("427k", "77k", "21k"); on failure
 * prints the loader's message and returns -1. */
struct painn_model;
int test_load_model(const char *size, struct painn_model *m);
/* Reads shared/molecules/<name>.xyz; on failure prints the reader's message
 * and returns -1. */
struct xyz_trajectory;
int test_read_molecule(const char *name, struct xyz_trajectory *t);
/* Exits with TEST_SKIP_CODE and "skipped: <why>". */
void test_skip(const char *why);
/* Runs all registered suites in basic mode; returns the exit code (0 when
 * every assertion passed). Call after adding suites to the registry. */
int test_run_all(void);

/* The platform (or its dynamics) named by argv[1], "reference" by default.
 * "cuda" without a usable GPU exits with "skipped: no GPU (why)"; any other
 * failure (an unknown name) exits with status 2. Prints "platform: NAME". */
struct platform_ops;
struct dynamics_ops;
const struct platform_ops *test_platform_from_args(int argc, char **argv);
const struct dynamics_ops *test_dynamics_from_args(int argc, char **argv);

/* Adds a suite with the given tests (NULL-terminated names/functions). */
#define TEST_SUITE(name, ...)                                                        \
    do {                                                                             \
        CU_pSuite s_ = CU_add_suite(name, NULL, NULL);                               \
        CU_TestInfo t_[] = {__VA_ARGS__, CU_TEST_INFO_NULL};                         \
        for (int i_ = 0; t_[i_].pName; i_++) CU_add_test(s_, t_[i_].pName, t_[i_].pTestFunc); \
    } while (0)
#define TEST_CASE(fn) {#fn, fn}

/* A temporary folder for one test: /tmp/distilmd_test_XXXXXX, removed with
 * the files in it (one level: tests make no subfolders). */
typedef struct temp_dir {
    char path[256];
} temp_dir;
int temp_dir_make(temp_dir *d);     /* 0 on success */
void temp_dir_remove(temp_dir *d);

/* HDF5 identifiers open in the process (files, groups, datasets, ...): equal
 * before and after a call means the call closed everything it opened. */
long test_open_hdf5_ids(void);

/* Checks that code under test neither prints HDF5's error stack nor changes
 * the automatic error handler: _begin installs a handler that only counts
 * its calls (keeping the previous one), _end asserts that it is still
 * installed and was never called, then restores the previous one. */
typedef struct hdf5_error_probe {
    H5E_auto2_t old_func;
    void *old_data;
    int calls;
} hdf5_error_probe;
void hdf5_error_probe_begin(hdf5_error_probe *p);
void hdf5_error_probe_end(hdf5_error_probe *p);

/* A per-test random generator (xorshift), deterministic by seed. */
typedef struct test_rng { unsigned long long s; } test_rng;
double test_uniform(test_rng *r);   /* [0,1) */
double test_normal(test_rng *r);    /* N(0,1) */

#endif
