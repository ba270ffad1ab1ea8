#include "test_support.h"

#include "core/platform.h"
#include "engine/dynamics.h"
#include "io/xyz.h"
#include "model/painn_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

const char *test_shared_dir(void)
{
    static char dir[1024];
    const char *env = getenv("DISTILMD_SHARED");
    if (env && *env) return env;
    const char *src = getenv("DISTILMD_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/../shared", src && *src ? src : ".");
    return dir;
}

const char *test_shared_path(const char *relative)
{
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", test_shared_dir(), relative);
    return path;
}

int test_load_model(const char *size, painn_model *m)
{
    char rel[64];
    snprintf(rel, sizeof rel, "models/student_%s.onnx", size);
    dm_error err = {{0}};
    if (painn_model_load(test_shared_path(rel), m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

int test_read_molecule(const char *name, xyz_trajectory *t)
{
    char rel[128];
    snprintf(rel, sizeof rel, "molecules/%s.xyz", name);
    dm_error err = {{0}};
    if (xyz_read_file(test_shared_path(rel), t, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

void test_skip(const char *why)
{
    printf("skipped: %s\n", why);
    fflush(stdout);
    exit(TEST_SKIP_CODE);
}

void test_require_shared(void)
{
    struct stat st;
    const char *models = test_shared_path("models");
    if (stat(models, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char why[1200];
        snprintf(why, sizeof why,
                 "shared data not found at %s (set DISTILMD_SHARED to the shared/ folder)",
                 test_shared_dir());
        test_skip(why);
    }
}

int test_run_all(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        printf("no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

double test_uniform(test_rng *r)
{
    unsigned long long x = r->s ? r->s : 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

double test_normal(test_rng *r)
{
    double u1 = test_uniform(r), u2 = test_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Not found: a skip for a missing GPU, an error for anything else. */
static void platform_unavailable(const char *name, const dm_error *err)
{
    if (!strcmp(name, "cuda")) {
        char why[1100];
        snprintf(why, sizeof why, "no GPU (%s)", err->msg);
        test_skip(why);
    }
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
}

const platform_ops *test_platform_from_args(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "reference";
    dm_error err = {{0}};
    const platform_ops *p = platform_find(name, NULL, 0, &err);
    if (!p) platform_unavailable(name, &err);
    printf("platform: %s\n", p->name);
    return p;
}

const dynamics_ops *test_dynamics_from_args(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "reference";
    dm_error err = {{0}};
    const dynamics_ops *d = dynamics_find(name, NULL, 0, &err);
    if (!d) platform_unavailable(name, &err);
    printf("platform: %s\n", d->platform);
    return d;
}

int temp_dir_make(temp_dir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/distilmd_test_XXXXXX");
    return mkdtemp(d->path) ? 0 : -1;
}

void temp_dir_remove(temp_dir *d)
{
    DIR *dir = opendir(d->path);
    if (dir) {
        struct dirent *e;
        char file[512];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(file, sizeof file, "%s/%s", d->path, e->d_name);
            unlink(file);
        }
        closedir(dir);
    }
    rmdir(d->path);
}

long test_open_hdf5_ids(void)
{
    return (long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

static herr_t count_error_reports(hid_t stack, void *data)
{
    (void)stack;
    ((hdf5_error_probe *)data)->calls++;
    return 0;
}

void hdf5_error_probe_begin(hdf5_error_probe *p)
{
    H5Eget_auto2(H5E_DEFAULT, &p->old_func, &p->old_data);
    p->calls = 0;
    H5Eset_auto2(H5E_DEFAULT, count_error_reports, p);
}

void hdf5_error_probe_end(hdf5_error_probe *p)
{
    H5E_auto2_t func;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    CU_ASSERT(func == count_error_reports && data == p);
    CU_ASSERT_EQUAL(p->calls, 0);
    H5Eset_auto2(H5E_DEFAULT, p->old_func, p->old_data);
}
