/* test_platform_run.c — whole runs from YAML on one platform (argv[1]):
 *   - restart: N steps, checkpoint, N more from the checkpoint gives a
 *     trajectory bit-identical to 2N steps straight through (Langevin and
 *     velocity Verlet), and the file holds each frame exactly once;
 *   - SIGTERM: the `distilmd run` process writes a checkpoint and exits, and
 *     the restart from it continues the same trajectory;
 *   - every example configuration in configs/ runs (a few steps). */
#include "test_support.h"

#include "engine/dynamics.h"
#include "engine/run.h"

#include <dirent.h>
#include <limits.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *PLATFORM;
static temp_dir TMP_DIR;
static const char *TMP = TMP_DIR.path;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A config: two systems, three replicas; integrator block given. */
static void write_config(const char *path, const char *integrator, const char *out,
                         const char *checkpoint, long steps)
{
    char text[4096];
    snprintf(text, sizeof text,
             "model: ${DISTILMD_SHARED}/models/student_21k.onnx\n"
             "platform: %s\n"
             "seed: 77\n"
             "steps: %ld\n"
             "systems:\n"
             "  - structure: ${DISTILMD_SHARED}/molecules/water.xyz\n"
             "    copies: 2\n"
             "  - structure: ${DISTILMD_SHARED}/molecules/ethanol.xyz\n"
             "%s"
             "velocities:\n"
             "  temperature: 300\n"
             "output:\n"
             "  file: %s\n"
             "  interval: 5\n"
             "  fields: [position, velocity, force]\n"
             "checkpoint:\n"
             "  file: %s\n"
             "  interval: 10\n",
             PLATFORM, steps, integrator, out, checkpoint);
    write_text(path, text);
}

/* Reads a whole dataset as doubles (or int64 for `step`) into a new buffer. */
static double *read_dataset(const char *file, const char *name, hsize_t *count)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    double *buf = NULL;
    if (s >= 0) {
        hssize_t n = H5Sget_simple_extent_npoints(s);
        buf = malloc(sizeof(double) * (n + 1));
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            free(buf);
            buf = NULL;
        }
        *count = (hsize_t)n;
        H5Sclose(s);
    }
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return buf;
}

static int run_config_file(const char *config, const char *restart, long steps)
{
    run_config cfg;
    dm_error err = {{0}};
    if (run_config_load(config, &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    if (steps >= 0) cfg.steps = steps;
    run_options opt = {.restart = restart, .quiet = 1};
    run_summary sum;
    int rc = run_simulation(&cfg, &opt, &sum, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    run_config_free(&cfg);
    return rc;
}

/* Every dataset of the straight run equals the restarted run's. */
static void assert_same_series(const char *a, const char *b, const char *dataset)
{
    hsize_t na = 0, nb = 0;
    double *x = read_dataset(a, dataset, &na), *y = read_dataset(b, dataset, &nb);
    CU_ASSERT_FATAL(x != NULL && y != NULL);
    CU_ASSERT(na == nb);
    if (na == nb) CU_ASSERT(memcmp(x, y, sizeof(double) * na) == 0);
    free(x);
    free(y);
}

static void restart_matches_straight_run(const char *integrator, const char *tag)
{
    char cfg1[512], cfg2[512], out1[512], out2[512], chk1[512], chk2[512];
    snprintf(cfg1, sizeof cfg1, "%s/%s_straight.yaml", TMP, tag);
    snprintf(cfg2, sizeof cfg2, "%s/%s_restart.yaml", TMP, tag);
    snprintf(out1, sizeof out1, "%s/%s_straight.h5", TMP, tag);
    snprintf(out2, sizeof out2, "%s/%s_restart.h5", TMP, tag);
    snprintf(chk1, sizeof chk1, "%s/%s_straight.chk", TMP, tag);
    snprintf(chk2, sizeof chk2, "%s/%s_restart.chk", TMP, tag);
    write_config(cfg1, integrator, out1, chk1, 40);
    write_config(cfg2, integrator, out2, chk2, 40);
    CU_ASSERT_FATAL(run_config_file(cfg1, NULL, 40) == 0);
    /* 20 steps, then the restart from the final checkpoint to 40 */
    CU_ASSERT_FATAL(run_config_file(cfg2, NULL, 20) == 0);
    CU_ASSERT_FATAL(run_config_file(cfg2, chk2, 40) == 0);
    static const char *series[] = {"particles/replica_0000/position/value",
                                   "particles/replica_0002/position/value",
                                   "particles/replica_0002/velocity/value",
                                   "particles/replica_0001/force/value",
                                   "particles/replica_0002/position/step",
                                   "observables/total_energy/value"};
    for (size_t k = 0; k < sizeof series / sizeof *series; k++) assert_same_series(out1, out2, series[k]);
    hsize_t n = 0;
    double *steps = read_dataset(out2, "particles/replica_0000/position/step", &n);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(n == 9); /* steps 0, 5, ..., 40: each once */
    for (hsize_t k = 0; k < n; k++) CU_ASSERT(steps[k] == 5.0 * k);
    free(steps);
    /* the run moved: the test compares trajectories, not constants */
    double *x = read_dataset(out1, "particles/replica_0002/position/value", &n);
    CU_ASSERT_FATAL(x != NULL && n == 9 * 9 * 3);
    CU_ASSERT(fabs(x[8 * 27] - x[0]) > 1e-4);
    free(x);
}

static void test_restart_langevin(void)
{
    restart_matches_straight_run("integrator:\n  type: langevin\n  timestep: 0.5\n"
                                 "  friction: 5\n  temperature: 300\n",
                                 "langevin");
}

static void test_restart_verlet(void)
{
    restart_matches_straight_run("integrator:\n  type: verlet\n  timestep: 0.5\n", "verlet");
}

/* SIGTERM while `distilmd run` works: a checkpoint and a clean exit. */
static void test_sigterm_writes_checkpoint(void)
{
    const char *bin = getenv("DISTILMD_BINARY");
    if (!bin || access(bin, X_OK) != 0) {
        printf("\n  (DISTILMD_BINARY not set: SIGTERM test not run) ");
        CU_FAIL("DISTILMD_BINARY must point to the distilmd executable");
        return;
    }
    char cfg[512], out[512], chk[512];
    snprintf(cfg, sizeof cfg, "%s/signal.yaml", TMP);
    snprintf(out, sizeof out, "%s/signal.h5", TMP);
    snprintf(chk, sizeof chk, "%s/signal.chk", TMP);
    write_config(cfg, "integrator:\n  type: langevin\n  timestep: 0.5\n  temperature: 300\n",
                 out, chk, 100000000L);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "run", cfg, "--quiet", (char *)NULL);
        _exit(127);
    }
    /* wait for the run to have written its first frames, then stop it */
    struct stat st;
    for (int k = 0; k < 300 && stat(out, &st) != 0; k++) usleep(100000);
    usleep(500000);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM);
    CU_ASSERT(stat(chk, &st) == 0);
    /* the run stopped at a frame; the restart appends 10 more steps to it */
    hsize_t n = 0;
    double *steps = read_dataset(out, "particles/replica_0000/position/step", &n);
    CU_ASSERT_FATAL(steps != NULL && n > 1);
    long last = (long)steps[n - 1];
    free(steps);
    CU_ASSERT_FATAL(run_config_file(cfg, chk, last + 10) == 0);
    steps = read_dataset(out, "particles/replica_0000/position/step", &n);
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(steps[n - 1] == last + 10);
    for (hsize_t k = 1; k < n; k++) CU_ASSERT(steps[k] == steps[k - 1] + 5);
    free(steps);
}

/* Every YAML file in configs/ runs (one step, output to the temp folder). */
static void test_example_configs_run(void)
{
    const char *src = getenv("DISTILMD_SOURCE_DIR");
    CU_ASSERT_FATAL(src != NULL);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/configs", src);
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    struct dirent *e;
    int ran = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        char path[2048], out[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(out, sizeof out, "%s/example_%d.h5", TMP, ran);
        run_config cfg;
        dm_error err = {{0}};
        int rc = run_config_load(path, &cfg, &err);
        if (rc == 0) {
            cfg.steps = 1; /* the largest example (16 windows x 3 model terms of the
                             427k model) costs seconds per step on the reference */
            snprintf(cfg.platform, sizeof cfg.platform, "%s", PLATFORM);
            snprintf(cfg.output.file, sizeof cfg.output.file, "%s", out);
            cfg.output.interval = 1;
            cfg.checkpoint.file[0] = '\0';
            run_options opt = {.quiet = 1};
            run_summary sum;
            rc = run_simulation(&cfg, &opt, &sum, &err);
            run_config_free(&cfg);
        }
        printf("\n  %s: %s ", e->d_name, rc ? err.msg : "ran");
        CU_ASSERT(rc == 0);
        ran++;
    }
    closedir(d);
    CU_ASSERT(ran >= 3);
}

int main(int argc, char **argv)
{
    PLATFORM = argc > 1 ? argv[1] : "reference";
    test_require_shared();
    /* configs name the shared folder through ${DISTILMD_SHARED}, absolute */
    char shared[PATH_MAX];
    if (!realpath(test_shared_dir(), shared)) test_skip("shared data folder not found");
    setenv("DISTILMD_SHARED", shared, 1);
    test_dynamics_from_args(argc, argv);
    if (temp_dir_make(&TMP_DIR)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("restart", TEST_CASE(test_restart_langevin), TEST_CASE(test_restart_verlet),
               TEST_CASE(test_sigterm_writes_checkpoint));
    TEST_SUITE("examples", TEST_CASE(test_example_configs_run));
    int rc = test_run_all();
    temp_dir_remove(&TMP_DIR);
    return rc;
}
