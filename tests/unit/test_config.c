/* test_config.c — the YAML configuration reader (src/io/config_yaml.c).
 *
 * Needs no shared data: each test writes its YAML into a fresh mkdtemp
 * directory that also holds empty stand-ins for the model and structure
 * files (the reader only checks that they exist; `frames: all` reads a
 * five-frame XYZ file that the test writes). Expected values are the
 * literals written in the YAML and the defaults documented in
 * src/engine/run_config.h and docs/config.md; expected line numbers are
 * counted by hand in the YAML text. */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, setenv */

#include "engine/run_config.h"
#include "test_support.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The scratch directory of this test program (CUnit tests take no
 * arguments, so they share it through this one record). */
static struct {
    char dir[256];       /* as made by mkdtemp */
    char real[PATH_MAX]; /* the same, with symbolic links resolved */
    char config[512];    /* <dir>/config.yaml */
} scratch;

/* The files the scratch directory holds, removed at the end. */
static const char *const SCRATCH_FILES[] = {"config.yaml",   "model.onnx", "mol.xyz",
                                            "sub/config.yaml", "models/m.onnx", "frames.xyz",
                                            "pair.xyz",        NULL};
static const char *const SCRATCH_DIRS[] = {"sub", "models", NULL};

static void scratch_path(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", scratch.dir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void make_scratch(void)
{
    snprintf(scratch.dir, sizeof scratch.dir, "/tmp/distilmd_test_config_XXXXXX");
    if (!mkdtemp(scratch.dir) || !realpath(scratch.dir, scratch.real)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(scratch.config, sizeof scratch.config, "%s/config.yaml", scratch.dir);
    char path[600];
    for (int i = 0; SCRATCH_DIRS[i]; i++) {
        scratch_path(SCRATCH_DIRS[i], path, sizeof path);
        mkdir(path, 0700);
    }
    const char *stand_ins[] = {"model.onnx", "mol.xyz", "models/m.onnx", NULL};
    for (int i = 0; stand_ins[i]; i++) {
        scratch_path(stand_ins[i], path, sizeof path);
        FILE *f = fopen(path, "w");
        if (!f) {
            perror(path);
            exit(1);
        }
        fclose(f);
    }
}

static void remove_scratch(void)
{
    char path[600];
    for (int i = 0; SCRATCH_FILES[i]; i++) {
        scratch_path(SCRATCH_FILES[i], path, sizeof path);
        remove(path);
    }
    for (int i = 0; SCRATCH_DIRS[i]; i++) {
        scratch_path(SCRATCH_DIRS[i], path, sizeof path);
        rmdir(path);
    }
    rmdir(scratch.dir);
}

/* Writes `yaml` to the scratch config.yaml and loads it. */
static int load_text(const char *yaml, run_config *cfg, dm_error *err)
{
    write_text(scratch.config, yaml);
    return run_config_load(scratch.config, cfg, err);
}

/* "<real scratch dir>/<name>": where a relative path in config.yaml leads. */
static const char *resolved(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", scratch.real, name);
    return out;
}

static int is_zeroed(const run_config *cfg)
{
    static const run_config zero;
    return memcmp(cfg, &zero, sizeof zero) == 0;
}

/* Loads `yaml` (or, with yaml NULL, the file `path`); true when loading
 * fails, the config is left zeroed, and the message starts with
 * "<file>:<line>:" (just "<file>:" when line is 0) and contains every
 * string of `parts`. Prints the message when it does not match. */
static int fails_with(const char *yaml, const char *path, int line, const char *const *parts)
{
    run_config cfg;
    dm_error err = {{0}};
    int rc = yaml ? load_text(yaml, &cfg, &err) : run_config_load(path, &cfg, &err);
    if (rc == 0) {
        printf("\n  expected an error, but the configuration loaded\n");
        run_config_free(&cfg);
        return 0;
    }
    char prefix[700];
    if (line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", yaml ? scratch.config : path, line);
    else
        snprintf(prefix, sizeof prefix, "%s: ", yaml ? scratch.config : path);
    int ok = strncmp(err.msg, prefix, strlen(prefix)) == 0 && is_zeroed(&cfg);
    for (int i = 0; parts[i]; i++) ok = ok && strstr(err.msg, parts[i]) != NULL;
    if (!ok) printf("\n  unexpected message: %s\n", err.msg);
    return ok;
}

#define EXPECT_ERROR(yaml, line, ...)                                                              \
    CU_ASSERT(fails_with(yaml, NULL, line, (const char *const[]){__VA_ARGS__, NULL}))

/* The smallest valid configuration: lines 1-4. */
#define BASE "model: model.onnx\nsystems:\n  - structure: mol.xyz\nsteps: 10\n"
/* BASE without steps: lines 1-3. */
#define BASE_NO_STEPS "model: model.onnx\nsystems:\n  - structure: mol.xyz\n"

/* ---- valid configurations ---- */

static void test_every_key(void)
{
    setenv("DM_TEST_CONFIG_DIR", scratch.dir, 1);
    const char *yaml = "# a full configuration\n"
                       "model: model.onnx\n"
                       "platform: reference\n"
                       "seed: 18446744073709551615\n"
                       "steps: 2500\n"
                       "systems:\n"
                       "  - structure: mol.xyz\n"
                       "    frame: 2\n"
                       "    copies: 3\n"
                       "    temperature: [280, 300.5, 320]\n"
                       "  - structure: ${DM_TEST_CONFIG_DIR}/mol.xyz\n"
                       "    copies: 2\n"
                       "    temperature: 350\n"
                       "  - structure: mol.xyz\n"
                       "integrator:\n"
                       "  type: langevin\n"
                       "  timestep: 1.25\n"
                       "  friction: 0.5\n"
                       "  temperature: 310\n"
                       "velocities:\n"
                       "  temperature: 290\n"
                       "remove_com_interval: 50\n"
                       "output:\n"
                       "  file: traj.h5\n"
                       "  interval: 20\n"
                       "  fields: [velocity, force]\n"
                       "  flush_interval: 200\n"
                       "checkpoint:\n"
                       "  file: run.chk\n"
                       "  interval: 5000\n"
                       "progress_interval: 250\n";
    run_config cfg;
    dm_error err = {{0}};
    int rc = load_text(yaml, &cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char want[PATH_MAX + 64], direct[700];
    CU_ASSERT_STRING_EQUAL(cfg.source, scratch.config);
    CU_ASSERT_STRING_EQUAL(cfg.model, resolved("model.onnx", want, sizeof want));
    CU_ASSERT_STRING_EQUAL(cfg.platform, "reference");
    CU_ASSERT(cfg.seed == 18446744073709551615ull);
    CU_ASSERT_EQUAL(cfg.steps, 2500);
    CU_ASSERT_EQUAL_FATAL(cfg.n_systems, 3);
    CU_ASSERT_STRING_EQUAL(cfg.systems[0].structure, resolved("mol.xyz", want, sizeof want));
    CU_ASSERT_EQUAL(cfg.systems[0].frame, 2);
    CU_ASSERT_EQUAL(cfg.systems[0].copies, 3);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_temperatures, 3);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[0], 280.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[1], 300.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[2], 320.0, 0.0);
    scratch_path("mol.xyz", direct, sizeof direct);
    CU_ASSERT_STRING_EQUAL(cfg.systems[1].structure, direct);
    CU_ASSERT_EQUAL(cfg.systems[1].frame, 0);
    CU_ASSERT_EQUAL(cfg.systems[1].copies, 2);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[1].n_temperatures, 2);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[1].temperatures[0], 350.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[1].temperatures[1], 350.0, 0.0);
    CU_ASSERT_EQUAL(cfg.systems[2].copies, 1);
    CU_ASSERT_EQUAL(cfg.systems[2].n_temperatures, 0);
    CU_ASSERT_PTR_NULL(cfg.systems[2].temperatures);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 6);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_LANGEVIN);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.timestep_fs, 1.25, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.friction_per_ps, 0.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.temperature_K, 310.0, 0.0);
    CU_ASSERT_EQUAL(cfg.velocities.set, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.velocities.temperature_K, 290.0, 0.0);
    CU_ASSERT_EQUAL(cfg.remove_com_interval, 50);
    CU_ASSERT_STRING_EQUAL(cfg.output.file, resolved("traj.h5", want, sizeof want));
    CU_ASSERT_EQUAL(cfg.output.interval, 20);
    CU_ASSERT_EQUAL(cfg.output.position, 0);
    CU_ASSERT_EQUAL(cfg.output.velocity, 1);
    CU_ASSERT_EQUAL(cfg.output.force, 1);
    CU_ASSERT_EQUAL(cfg.output.flush_interval, 200);
    CU_ASSERT_STRING_EQUAL(cfg.checkpoint.file, resolved("run.chk", want, sizeof want));
    CU_ASSERT_EQUAL(cfg.checkpoint.interval, 5000);
    CU_ASSERT_EQUAL(cfg.progress_interval, 250);
    run_config_free(&cfg);
    CU_ASSERT(is_zeroed(&cfg));
    unsetenv("DM_TEST_CONFIG_DIR");
}

static void test_fire_keys(void)
{
    const char *yaml = BASE_NO_STEPS "integrator:\n"
                                     "  type: fire\n"
                                     "  timestep: 2\n"
                                     "  force_tolerance: 0.005\n"
                                     "  max_step: 0.2\n";
    run_config cfg;
    dm_error err = {{0}};
    int rc = load_text(yaml, &cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_FIRE);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.timestep_fs, 2.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.force_tolerance, 0.005, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.max_step, 0.2, 0.0);
    CU_ASSERT_EQUAL(cfg.steps, 1000); /* FIRE: at most 1000 iterations by default */
    run_config_free(&cfg);
}

static void test_defaults(void)
{
    run_config cfg;
    dm_error err = {{0}};
    int rc = load_text(BASE, &cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg.platform, "auto");
    CU_ASSERT(cfg.seed == 1);
    CU_ASSERT_EQUAL(cfg.steps, 10);
    CU_ASSERT_EQUAL_FATAL(cfg.n_systems, 1);
    CU_ASSERT_EQUAL(cfg.systems[0].frame, 0);
    CU_ASSERT_EQUAL(cfg.systems[0].n_frames, 1);
    CU_ASSERT_EQUAL(cfg.systems[0].copies, 1);
    CU_ASSERT_EQUAL(cfg.systems[0].n_temperatures, 0);
    CU_ASSERT_PTR_NULL(cfg.systems[0].temperatures);
    CU_ASSERT_EQUAL(cfg.systems[0].n_rungs, 0);
    CU_ASSERT_PTR_NULL(cfg.systems[0].ladder);
    CU_ASSERT_EQUAL(cfg.systems[0].groups, 1);
    CU_ASSERT_EQUAL(cfg.replica_exchange.interval, 0);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 1);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_VERLET);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.timestep_fs, 0.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.friction_per_ps, 1.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.force_tolerance, 0.01, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.max_step, 0.1, 0.0);
    CU_ASSERT_EQUAL(cfg.velocities.set, 0);
    CU_ASSERT_EQUAL(cfg.remove_com_interval, 0);
    CU_ASSERT_STRING_EQUAL(cfg.output.file, "");
    CU_ASSERT_EQUAL(cfg.output.interval, 100);
    CU_ASSERT_EQUAL(cfg.output.position, 1);
    CU_ASSERT_EQUAL(cfg.output.velocity, 0);
    CU_ASSERT_EQUAL(cfg.output.force, 0);
    CU_ASSERT_EQUAL(cfg.output.flush_interval, 1000); /* 10 x interval */
    CU_ASSERT_STRING_EQUAL(cfg.checkpoint.file, "");
    CU_ASSERT_EQUAL(cfg.checkpoint.interval, 10000);
    CU_ASSERT_EQUAL(cfg.progress_interval, 0);
    run_config_free(&cfg);

    /* flush_interval follows a given output interval */
    rc = load_text(BASE "output:\n  interval: 7\n", &cfg, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.output.flush_interval, 70);
    run_config_free(&cfg);
}

static void test_number_forms(void)
{
    run_config cfg;
    dm_error err = {{0}};
    int rc = load_text(BASE_NO_STEPS "steps: 1_000_000\nseed: 0\n", &cfg, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.steps, 1000000);
    CU_ASSERT(cfg.seed == 0);
    run_config_free(&cfg);
    rc = load_text(BASE_NO_STEPS "steps: 2e6\n", &cfg, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.steps, 2000000);
    run_config_free(&cfg);
    /* flow style and a quoted path read the same as block style */
    rc = load_text(
        "{model: 'model.onnx', steps: 3, systems: [{structure: \"mol.xyz\", copies: 4}]}\n", &cfg,
        &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.steps, 3);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 4);
    run_config_free(&cfg);
}

/* ${VAR} expansion, and relative paths taken from the YAML file's
 * directory, not the working directory. */
static void test_paths(void)
{
    char sub_config[600], want_model[PATH_MAX + 64], got[PATH_MAX], want[PATH_MAX];
    scratch_path("sub/config.yaml", sub_config, sizeof sub_config);
    write_text(sub_config, "model: ../models/m.onnx\n"
                           "systems:\n"
                           "  - structure: ${DM_TEST_MOLECULE_DIR}/mol.xyz\n"
                           "steps: 5\n"
                           "output:\n"
                           "  file: out/../traj.h5\n");
    /* out/ does not exist: the output directory is checked */
    CU_ASSERT(fails_with(NULL, sub_config, 3,
                         (const char *const[]){"key 'systems[0].structure'", "DM_TEST_MOLECULE_DIR",
                                               "not set", NULL}));
    setenv("DM_TEST_MOLECULE_DIR", scratch.dir, 1);
    CU_ASSERT(fails_with(
        NULL, sub_config, 6,
        (const char *const[]){"key 'output.file'", "directory", "does not exist", NULL}));
    write_text(sub_config, "model: ../models/m.onnx\n"
                           "systems:\n"
                           "  - structure: ${DM_TEST_MOLECULE_DIR}/mol.xyz\n"
                           "steps: 5\n"
                           "output:\n"
                           "  file: traj.h5\n");
    run_config cfg;
    dm_error err = {{0}};
    int rc = run_config_load(sub_config, &cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.model[0], '/');
    CU_ASSERT_PTR_NOT_NULL(realpath(cfg.model, got));
    CU_ASSERT_PTR_NOT_NULL(
        realpath(resolved("models/m.onnx", want_model, sizeof want_model), want));
    CU_ASSERT_STRING_EQUAL(got, want);
    char direct[700];
    scratch_path("mol.xyz", direct, sizeof direct);
    CU_ASSERT_STRING_EQUAL(cfg.systems[0].structure, direct);
    CU_ASSERT_STRING_EQUAL(cfg.output.file, resolved("sub/traj.h5", want_model, sizeof want_model));
    run_config_free(&cfg);

    /* the same file named relative to a different working directory */
    char cwd[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(scratch.dir), 0);
    rc = run_config_load("sub/config.yaml", &cfg, &err);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, "sub/config.yaml");
    CU_ASSERT_EQUAL(cfg.model[0], '/');
    CU_ASSERT_PTR_NOT_NULL(realpath(cfg.model, got));
    CU_ASSERT_STRING_EQUAL(got, want);
    run_config_free(&cfg);
    unsetenv("DM_TEST_MOLECULE_DIR");
}

/* ---- errors ---- */

static void test_unknown_keys(void)
{
    EXPECT_ERROR(BASE "integrator:\n  type: langevin\n  temprature: 300\n", 7,
                 "unknown key 'temprature' in 'integrator'", "did you mean 'temperature'?");
    /* two swapped pairs: 2 edits when a swap counts as one */
    EXPECT_ERROR(BASE "integrator:\n  type: langevin\n  tmeperatrue: 300\n", 7,
                 "unknown key 'tmeperatrue' in 'integrator'", "did you mean 'temperature'?");
    EXPECT_ERROR(BASE_NO_STEPS "stpes: 10\n", 4, "unknown key 'stpes' at the top level",
                 "did you mean 'steps'?");
    EXPECT_ERROR(BASE "output:\n  file: t.h5\n  flush_intreval: 10\n", 7,
                 "unknown key 'flush_intreval' in 'output'", "did you mean 'flush_interval'?");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - structure: mol.xyz\n    copise: 2\nsteps: 1\n",
                 4, "unknown key 'copise' in 'systems[0]'", "did you mean 'copies'?");
    /* a key of another level */
    EXPECT_ERROR(BASE "temperature: 300\n", 5, "unknown key 'temperature' at the top level",
                 "belongs in", "'integrator'", "'velocities'", "valid keys here: model,");
    /* nothing close: the valid keys are listed */
    EXPECT_ERROR(BASE "checkpoint:\n  xyzzy: 1\n", 6, "unknown key 'xyzzy' in 'checkpoint'",
                 "valid keys here: file, interval");
}

static void test_wrong_types(void)
{
    EXPECT_ERROR(BASE "integrator:\n  timestep: abc\n", 6, "key 'integrator.timestep'",
                 "expected a positive number of femtoseconds, got 'abc'");
    EXPECT_ERROR(BASE_NO_STEPS "steps:\n  value: 10\n", 4, "key 'steps'",
                 "expected a positive whole number of steps, got a mapping");
    EXPECT_ERROR(BASE "platform: [cuda]\n", 5, "key 'platform'", "got a list");
    EXPECT_ERROR(BASE "integrator: verlet\n", 5, "key 'integrator'", "expected a mapping",
                 "type: verlet");
    EXPECT_ERROR(BASE "velocities: 300\n", 5, "key 'velocities'",
                 "expected a mapping with 'temperature: KELVIN', got '300'");
    EXPECT_ERROR("model: model.onnx\nsystems: mol.xyz\nsteps: 1\n", 2, "key 'systems'",
                 "expected a list of systems", "got 'mol.xyz'");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - mol.xyz\nsteps: 1\n", 3, "key 'systems[0]'",
                 "expected a mapping with structure", "got 'mol.xyz'");
    EXPECT_ERROR("model:\nsystems:\n  - structure: mol.xyz\nsteps: 1\n", 1, "key 'model'",
                 "expected the path of model file, got nothing");
    EXPECT_ERROR(BASE "output:\n  fields: position\n", 6, "key 'output.fields'",
                 "expected a list of fields", "got 'position'");
    EXPECT_ERROR("- model: model.onnx\n", 1, "the configuration: expected a mapping", "got a list");
}

static void test_out_of_range(void)
{
    EXPECT_ERROR(BASE "integrator:\n  timestep: -0.5\n", 6, "key 'integrator.timestep'",
                 "expected a positive number of femtoseconds, got '-0.5'");
    EXPECT_ERROR(BASE "integrator:\n  timestep: 0\n", 6, "key 'integrator.timestep'", "positive",
                 "got '0'");
    EXPECT_ERROR(BASE_NO_STEPS "steps: 0\n", 4, "key 'steps'",
                 "expected a positive whole number of steps, got '0'");
    EXPECT_ERROR(BASE_NO_STEPS "steps: 10.5\n", 4, "key 'steps'", "whole number", "got '10.5'");
    EXPECT_ERROR(BASE_NO_STEPS "steps: 1"
                               "0000000000"
                               "0000000000"
                               "0000000000"
                               "0000000000"
                               "0000000000"
                               "0000000000"
                               "0000000000\n",
                 4, "key 'steps'", "whole number");
    EXPECT_ERROR(BASE_NO_STEPS "steps: 99999999999999999999\n", 4, "key 'steps'", "whole number");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - structure: mol.xyz\n    copies: 0\nsteps: 1\n",
                 4, "key 'systems[0].copies'",
                 "expected a positive whole number of copies, got '0'");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - structure: mol.xyz\n    frame: -1\nsteps: 1\n",
                 4, "key 'systems[0].frame'", "expected a frame index", "got '-1'");
    EXPECT_ERROR(BASE "integrator:\n  type: langevin\n  temperature: 300\n  friction: -1\n", 8,
                 "key 'integrator.friction'", "expected a positive friction coefficient in 1/ps",
                 "got '-1'");
    EXPECT_ERROR(BASE "integrator:\n  type: langevin\n  temperature: -10\n", 7,
                 "key 'integrator.temperature'", "expected a temperature in kelvin", "got '-10'");
    EXPECT_ERROR(BASE "seed: -3\n", 5, "key 'seed'", "expected a whole number from 0", "got '-3'");
    EXPECT_ERROR(BASE "output:\n  interval: 0\n", 6, "key 'output.interval'",
                 "positive whole number of steps", "got '0'");
    EXPECT_ERROR(BASE "remove_com_interval: -1\n", 5, "key 'remove_com_interval'", "got '-1'");
    EXPECT_ERROR(BASE "integrator:\n  timestep: .inf\n", 6, "key 'integrator.timestep'",
                 "got '.inf'");
}

static void test_unknown_choices(void)
{
    EXPECT_ERROR(BASE "integrator:\n  type: verlett\n", 6, "key 'integrator.type'",
                 "unknown integrator 'verlett'", "expected one of verlet, langevin, fire",
                 "did you mean 'verlet'?");
    EXPECT_ERROR(BASE "integrator:\n  type: nose-hoover\n", 6, "key 'integrator.type'",
                 "unknown integrator 'nose-hoover'", "expected one of verlet, langevin, fire");
    EXPECT_ERROR(BASE "platform: gpu\n", 5, "key 'platform'", "unknown platform 'gpu'",
                 "expected one of auto, reference, cuda");
    EXPECT_ERROR(BASE "platform: refrence\n", 5, "key 'platform'", "did you mean 'reference'?");
    EXPECT_ERROR(BASE "output:\n  fields: [position, velocitys]\n", 6, "key 'output.fields[1]'",
                 "unknown output field 'velocitys'", "did you mean 'velocity'?");
    EXPECT_ERROR(BASE "output:\n  fields: [force, force]\n", 6, "key 'output.fields[1]'",
                 "listed twice");
}

static void test_duplicates(void)
{
    EXPECT_ERROR(BASE "platform: cuda\nsteps: 20\n", 6, "duplicate key 'steps'",
                 "first given on line 4");
    EXPECT_ERROR(BASE "integrator:\n  timestep: 1\n\n  timestep: 2\n", 8,
                 "duplicate key 'integrator.timestep'", "first given on line 6");
}

static void test_temperatures(void)
{
    const char *head = "model: model.onnx\nsteps: 5\nintegrator:\n  type: langevin\n"
                       "systems:\n  - structure: mol.xyz\n    copies: 3\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s    temperature: [300, 310]\n", head);
    EXPECT_ERROR(yaml, 8, "key 'systems[0].temperature'",
                 "expected 3 temperatures (one per copy, copies: 3), got 2");
    snprintf(yaml, sizeof yaml, "%s    temperature:\n      - 300\n      - hot\n      - 320\n",
             head);
    EXPECT_ERROR(yaml, 10, "key 'systems[0].temperature[1]'", "temperature in kelvin", "got 'hot'");
    /* Langevin without any temperature */
    EXPECT_ERROR(head, 3, "key 'integrator.temperature'", "needs a temperature",
                 "systems[0] has none");
    /* temperatures on every system stand in for integrator.temperature */
    snprintf(yaml, sizeof yaml, "%s    temperature: [300, 310, 320]\n", head);
    run_config cfg;
    dm_error err = {{0}};
    int rc = load_text(yaml, &cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.systems[0].n_temperatures, 3);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[2], 320.0, 0.0);
    run_config_free(&cfg);
}

/* Keys that the chosen integrator would ignore are errors. */
static void test_keys_for_other_integrators(void)
{
    EXPECT_ERROR(BASE "integrator:\n  friction: 2\n", 6, "key 'integrator.friction'",
                 "only used by the langevin integrator", "integrator.type is 'verlet'");
    EXPECT_ERROR(BASE "integrator:\n  type: langevin\n  temperature: 300\n  max_step: 0.1\n", 8,
                 "key 'integrator.max_step'", "only used by the fire integrator");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - structure: mol.xyz\n    temperature: 300\n"
                 "steps: 5\n",
                 4, "key 'systems[0].temperature'", "only used by the langevin integrator");
    EXPECT_ERROR(BASE "integrator:\n  type: fire\nvelocities:\n  temperature: 300\n", 7,
                 "key 'velocities'", "only used by the verlet and langevin integrators", "'fire'");
}

static void test_missing_keys(void)
{
    EXPECT_ERROR("systems:\n  - structure: mol.xyz\nsteps: 10\n", 1,
                 "missing required key 'model'");
    EXPECT_ERROR("# no systems\nmodel: model.onnx\nsteps: 10\n", 2,
                 "missing required key 'systems'");
    EXPECT_ERROR(BASE_NO_STEPS, 1, "missing required key 'steps'");
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nsystems: []\n", 3, "key 'systems'",
                 "at least one system", "empty list");
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nsystems:\n  - copies: 2\n", 4,
                 "key 'systems[0]': missing required key 'structure'");
    EXPECT_ERROR(BASE "velocities:\n  {}\n", 5,
                 "key 'velocities': missing required key 'temperature'");
}

static void test_missing_files(void)
{
    char want[PATH_MAX + 64];
    EXPECT_ERROR("model: nothere.onnx\nsystems:\n  - structure: mol.xyz\nsteps: 1\n", 1,
                 "key 'model'", resolved("nothere.onnx", want, sizeof want), "No such file",
                 "written 'nothere.onnx'");
    EXPECT_ERROR("model: model.onnx\nsystems:\n  - structure: mol.xyz\n  - structure: gone.xyz\n"
                 "steps: 1\n",
                 4, "key 'systems[1].structure'", resolved("gone.xyz", want, sizeof want),
                 "No such file");
    EXPECT_ERROR("model: models\nsystems:\n  - structure: mol.xyz\nsteps: 1\n", 1, "key 'model'",
                 "is not a regular file");
    unsetenv("DM_TEST_UNSET_VARIABLE");
    EXPECT_ERROR("model: ${DM_TEST_UNSET_VARIABLE}/m.onnx\nsystems:\n  - structure: mol.xyz\n"
                 "steps: 1\n",
                 1, "key 'model'", "environment variable 'DM_TEST_UNSET_VARIABLE' is not set");
    EXPECT_ERROR("model: ${HOME/m.onnx\nsystems:\n  - structure: mol.xyz\nsteps: 1\n", 1,
                 "key 'model'", "unterminated '${'");
    EXPECT_ERROR(BASE "checkpoint:\n  file: no_such_dir/run.chk\n", 6, "key 'checkpoint.file'",
                 "directory", "no_such_dir", "does not exist");
    /* the configuration itself */
    char missing[600];
    scratch_path("absent.yaml", missing, sizeof missing);
    CU_ASSERT(
        fails_with(NULL, missing, 0,
                   (const char *const[]){"cannot open the configuration", "No such file", NULL}));
}

static void test_yaml_syntax(void)
{
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nsystems: [a, b: c: d\n", 3, "YAML syntax error");
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nsystems:\n  - structure: mol.xyz\n"
                 "  integrator: verlet\n",
                 5, "YAML syntax error");
    EXPECT_ERROR("model: 'model.onnx\nsteps: 10\n", 3, "YAML syntax error", "quoted scalar");
    EXPECT_ERROR("", 1, "the configuration is empty", "'model', 'systems' and 'steps'");
    EXPECT_ERROR("# only a comment\n\n", 1, "the configuration is empty");
    EXPECT_ERROR(BASE "---\nsteps: 3\n", 6, "a second YAML document");
}

/* ---- replica exchange, ensembles ---- */

/* A langevin run with replica exchange every 50 steps; systems[0] starts on
 * line 8, so its keys are on lines 9, 10, ... */
#define REMD_HEAD                                                                                  \
    "model: model.onnx\n"                                                                          \
    "steps: 10\n"                                                                                  \
    "integrator:\n"                                                                                \
    "  type: langevin\n"                                                                           \
    "replica_exchange:\n"                                                                          \
    "  interval: 50\n"                                                                             \
    "systems:\n"                                                                                   \
    "  - structure: mol.xyz\n"

/* Loads `yaml`, which must be valid; prints the message when it is not. */
static int load_valid(const char *yaml, run_config *cfg)
{
    dm_error err = {{0}};
    int rc = load_text(yaml, cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    return rc;
}

/* T_k = min (max/min)^(k/(n-1)), evaluated here as exp of a linear
 * interpolation of log T, to compare within a relative 1e-12. */
static int ladder_is_geometric(const double *ladder, int n, double t_min, double t_max)
{
    int ok = 1;
    for (int k = 0; k < n; k++) {
        double want = exp(log(t_min) + (double)k / (n - 1) * (log(t_max) - log(t_min)));
        if (fabs(ladder[k] - want) > 1e-12 * want) {
            printf("\n  rung %d: %.17g, expected %.17g\n", k, ladder[k], want);
            ok = 0;
        }
    }
    return ok;
}

static void test_geometric_ladder(void)
{
    run_config cfg;
    /* no integrator.temperature: the ladder gives systems[0] its
     * temperatures, systems[1] has its own */
    const char *yaml = REMD_HEAD "    ladder:\n"
                                 "      min: 300\n"
                                 "      max: 600\n"
                                 "      count: 8\n"
                                 "    groups: 3\n"
                                 "  - structure: mol.xyz\n"
                                 "    copies: 2\n"
                                 "    temperature: 310\n";
    CU_ASSERT_EQUAL_FATAL(load_valid(yaml, &cfg), 0);
    CU_ASSERT_EQUAL(cfg.replica_exchange.interval, 50);
    CU_ASSERT_EQUAL_FATAL(cfg.n_systems, 2);
    const system_spec *s = &cfg.systems[0];
    CU_ASSERT_EQUAL_FATAL(s->n_rungs, 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->ladder);
    CU_ASSERT(ladder_is_geometric(s->ladder, 8, 300.0, 600.0));
    CU_ASSERT_DOUBLE_EQUAL(s->ladder[0], 300.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s->ladder[7], 600.0, 0.0);
    CU_ASSERT_EQUAL(s->groups, 3);
    CU_ASSERT_EQUAL(s->n_temperatures, 0);
    CU_ASSERT_PTR_NULL(s->temperatures);
    CU_ASSERT_EQUAL(cfg.systems[1].n_rungs, 0);
    CU_ASSERT_PTR_NULL(cfg.systems[1].ladder);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 3 * 8 + 2);
    run_config_free(&cfg);
    CU_ASSERT(is_zeroed(&cfg));

    /* flow style; 250 * 4^(1/2) = 500 */
    CU_ASSERT_EQUAL_FATAL(
        load_valid(REMD_HEAD "    ladder: {count: 3, max: 1000, min: 250}\n", &cfg), 0);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_rungs, 3);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[0], 250.0, 250.0 * 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[1], 500.0, 500.0 * 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[2], 1000.0, 1000.0 * 1e-12);
    CU_ASSERT_EQUAL(cfg.systems[0].groups, 1);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 3);
    run_config_free(&cfg);

    /* a wide ladder of many rungs, from a given frame */
    CU_ASSERT_EQUAL_FATAL(load_valid(REMD_HEAD "    frame: 4\n"
                                               "    ladder: {min: 1.5, max: 2500, count: 64}\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_rungs, 64);
    CU_ASSERT(ladder_is_geometric(cfg.systems[0].ladder, 64, 1.5, 2500.0));
    CU_ASSERT_EQUAL(cfg.systems[0].frame, 4);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 64);
    run_config_free(&cfg);
}

static void test_list_ladder(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_valid(REMD_HEAD "    ladder: [300, 350.5, 410, 5e2]\n", &cfg), 0);
    const double want[] = {300.0, 350.5, 410.0, 500.0};
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_rungs, 4);
    for (int k = 0; k < 4; k++) CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[k], want[k], 0.0);
    CU_ASSERT_EQUAL(cfg.systems[0].groups, 1);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 4);
    run_config_free(&cfg);

    /* block list, two exchange groups, and a second laddered system: each
     * group holds the whole ladder of its system */
    CU_ASSERT_EQUAL_FATAL(load_valid(REMD_HEAD "    groups: 2\n"
                                               "    ladder:\n"
                                               "      - 280\n"
                                               "      - 320\n"
                                               "  - structure: mol.xyz\n"
                                               "    ladder: [300, 330, 360]\n"
                                               "    groups: 5\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_rungs, 2);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[0], 280.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].ladder[1], 320.0, 0.0);
    CU_ASSERT_EQUAL(cfg.systems[0].groups, 2);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[1].n_rungs, 3);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[1].ladder[2], 360.0, 0.0);
    CU_ASSERT_EQUAL(cfg.systems[1].groups, 5);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 2 * 2 + 5 * 3);
    run_config_free(&cfg);
}

/* Writes frames.xyz: five frames of a water molecule. */
static void write_five_frames(void)
{
    char path[600];
    scratch_path("frames.xyz", path, sizeof path);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 5; i++)
        fprintf(f,
                "3\nframe %d\nO 0.0 0.0 %.2f\nH 0.757 0.586 %.2f\nH -0.757 0.586 %.2f\n", i,
                0.01 * i, 0.01 * i, 0.01 * i);
    fclose(f);
}

static void test_frames_all(void)
{
    write_five_frames();
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_valid("model: model.onnx\nsteps: 5\nsystems:\n"
                                     "  - structure: frames.xyz\n"
                                     "    frames: all\n"
                                     "    copies: 2\n"
                                     "  - structure: frames.xyz\n"
                                     "    frame: 3\n"
                                     "    frames: all\n"
                                     "  - structure: frames.xyz\n"
                                     "    frame: 1\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL(cfg.systems[0].frame, 0);
    CU_ASSERT_EQUAL(cfg.systems[0].n_frames, 5);
    CU_ASSERT_EQUAL(cfg.systems[0].copies, 2);
    CU_ASSERT_EQUAL(cfg.systems[1].frame, 3);
    CU_ASSERT_EQUAL(cfg.systems[1].n_frames, 2);
    CU_ASSERT_EQUAL(cfg.systems[2].frame, 1);
    CU_ASSERT_EQUAL(cfg.systems[2].n_frames, 1); /* without frames: all, one frame */
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 5 * 2 + 2 + 1);
    run_config_free(&cfg);

    /* with langevin, one temperature per copy applies to every frame */
    CU_ASSERT_EQUAL_FATAL(load_valid("model: model.onnx\nsteps: 5\n"
                                     "integrator: {type: langevin}\nsystems:\n"
                                     "  - structure: frames.xyz\n"
                                     "    frames: all\n"
                                     "    copies: 3\n"
                                     "    temperature: [250, 300, 350]\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL(cfg.systems[0].n_frames, 5);
    CU_ASSERT_EQUAL(cfg.systems[0].n_temperatures, 3);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 15);
    run_config_free(&cfg);

    const char *head = "model: model.onnx\nsteps: 5\nsystems:\n  - structure: frames.xyz\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s    frame: 5\n    frames: all\n", head);
    EXPECT_ERROR(yaml, 6, "key 'systems[0].frames'", "expected frames from frame 5 on",
                 "has 5 frame(s)");
    snprintf(yaml, sizeof yaml, "%s    frames: 3\n", head);
    EXPECT_ERROR(yaml, 5, "key 'systems[0].frames'", "expected 'all'", "got '3'");
    snprintf(yaml, sizeof yaml, "%s    frames: [0, 2]\n", head);
    EXPECT_ERROR(yaml, 5, "key 'systems[0].frames'", "expected 'all'", "got a list");
    snprintf(yaml, sizeof yaml, "%s    frames: All\n", head);
    EXPECT_ERROR(yaml, 5, "key 'systems[0].frames'", "expected 'all'", "got 'All'");
    /* mol.xyz is empty */
    EXPECT_ERROR("model: model.onnx\nsteps: 5\nsystems:\n  - structure: mol.xyz\n"
                 "    frames: all\n",
                 5, "key 'systems[0].frames'", "cannot count the frames", "no frames found");
}

/* With a ladder, copies/temperature/frames are errors; groups needs one. */
static void test_ladder_exclusive_keys(void)
{
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 400]\n    copies: 2\n", 10,
                 "key 'systems[0].copies'",
                 "not allowed together with 'systems[0].ladder' (line 9)",
                 "the ladder defines the replicas");
    EXPECT_ERROR(REMD_HEAD "    temperature: 300\n    ladder: [300, 400]\n", 9,
                 "key 'systems[0].temperature'",
                 "not allowed together with 'systems[0].ladder' (line 10)",
                 "temperatures");
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 400]\n    frames: all\n", 10,
                 "key 'systems[0].frames'", "not allowed together with 'systems[0].ladder'");
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nsystems:\n  - structure: mol.xyz\n    groups: 2\n",
                 5, "key 'systems[0].groups'", "only valid together with 'ladder'");
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 400]\n    groups: 0\n", 10,
                 "key 'systems[0].groups'",
                 "expected a positive whole number of exchange groups, got '0'");
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 400]\n    groups: 10000000\n", 8,
                 "key 'systems[0]'", "more than 10000000 replicas in all");
}

static void test_ladder_values(void)
{
    EXPECT_ERROR(REMD_HEAD "    ladder: [300]\n", 9, "key 'systems[0].ladder'",
                 "expected at least 2 temperatures", "got 1");
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 300]\n", 9, "key 'systems[0].ladder[1]'",
                 "above 300 K", "strictly increasing", "got '300'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      - 300\n      - 450\n      - 400\n", 12,
                 "key 'systems[0].ladder[2]'", "above 450 K", "got '400'");
    EXPECT_ERROR(REMD_HEAD "    ladder: [0, 300]\n", 9, "key 'systems[0].ladder[0]'", "> 0",
                 "got '0'");
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, hot]\n", 9, "key 'systems[0].ladder[1]'",
                 "temperature in kelvin", "got 'hot'");
    EXPECT_ERROR(REMD_HEAD "    ladder: 300\n", 9, "key 'systems[0].ladder'",
                 "expected a list of temperatures in kelvin", "{min: K, max: K, count: N}",
                 "got '300'");
    /* geometric */
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 200\n      count: 8\n", 11,
                 "key 'systems[0].ladder.max'", "above min (300 K)", "got '200'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 300\n      count: 8\n", 11,
                 "key 'systems[0].ladder.max'", "above min (300 K)", "got '300'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 0\n      max: 600\n      count: 8\n", 10,
                 "key 'systems[0].ladder.min'", "> 0", "got '0'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 600\n      count: 1\n", 12,
                 "key 'systems[0].ladder.count'", "rungs >= 2", "got '1'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 600\n      count: 2.5\n", 12,
                 "key 'systems[0].ladder.count'", "whole number", "got '2.5'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 600\n", 9,
                 "key 'systems[0].ladder': missing required key 'count'");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 600\n      cuont: 8\n", 12,
                 "unknown key 'cuont' in 'systems[0].ladder'", "did you mean 'count'?");
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 600\n      n: 8\n", 12,
                 "unknown key 'n' in 'systems[0].ladder'", "valid keys here: min, max, count");
    /* neighbouring rungs that round to the same double */
    EXPECT_ERROR(REMD_HEAD "    ladder:\n      min: 300\n      max: 300.00000000001\n"
                           "      count: 100000\n",
                 12, "key 'systems[0].ladder.count'", "too close");
}

/* replica_exchange and its ties to the ladder and the integrator. */
static void test_replica_exchange_rules(void)
{
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nreplica_exchange:\n  interval: 5\nsystems:\n"
                 "  - structure: mol.xyz\n    ladder: [300, 400]\n",
                 7, "key 'systems[0].ladder'", "langevin", "integrator.type is 'verlet'");
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nintegrator:\n  type: fire\nsystems:\n"
                 "  - structure: mol.xyz\n    ladder: [300, 400]\n",
                 7, "key 'systems[0].ladder'", "langevin", "integrator.type is 'fire'");
    EXPECT_ERROR("model: model.onnx\nsteps: 1\nintegrator:\n  type: langevin\n"
                 "  temperature: 300\nsystems:\n  - structure: mol.xyz\n  - structure: mol.xyz\n"
                 "    ladder: [300, 400]\n",
                 9, "key 'systems[1].ladder'", "needs the top-level key 'replica_exchange'",
                 "interval");
    EXPECT_ERROR(BASE "replica_exchange:\n  interval: 10\n", 5, "key 'replica_exchange'",
                 "no system has a 'ladder'");
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nintegrator:\n  type: langevin\n"
                 "replica_exchange:\n  {}\nsystems:\n  - structure: mol.xyz\n"
                 "    ladder: [300, 400]\n",
                 5, "key 'replica_exchange': missing required key 'interval'");
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nintegrator:\n  type: langevin\n"
                 "replica_exchange:\n  interval: 0\nsystems:\n  - structure: mol.xyz\n"
                 "    ladder: [300, 400]\n",
                 6, "key 'replica_exchange.interval'",
                 "expected a positive whole number of steps, got '0'");
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nintegrator:\n  type: langevin\n"
                 "replica_exchange: 100\nsystems:\n  - structure: mol.xyz\n"
                 "    ladder: [300, 400]\n",
                 5, "key 'replica_exchange'", "expected a mapping with 'interval: STEPS'",
                 "got '100'");
    EXPECT_ERROR("model: model.onnx\nsteps: 10\nintegrator:\n  type: langevin\n"
                 "replica_exchange:\n  intervall: 100\nsystems:\n  - structure: mol.xyz\n"
                 "    ladder: [300, 400]\n",
                 6, "unknown key 'intervall' in 'replica_exchange'", "did you mean 'interval'?");
    /* a ladder on one system does not give the others a temperature */
    EXPECT_ERROR(REMD_HEAD "    ladder: [300, 400]\n  - structure: mol.xyz\n", 3,
                 "key 'integrator.temperature'", "needs a temperature", "systems[1] has none");
    /* keys of the new levels written elsewhere */
    EXPECT_ERROR(BASE "interval: 100\n", 5, "unknown key 'interval' at the top level",
                 "belongs in", "'replica_exchange'");
    EXPECT_ERROR(BASE "ladder: [300, 400]\n", 5, "unknown key 'ladder' at the top level",
                 "'ladder' belongs in 'systems[]'");
    EXPECT_ERROR(REMD_HEAD "    count: 8\n", 9, "unknown key 'count' in 'systems[0]'",
                 "'count' belongs in 'systems[].ladder'");
}

/* ---- alchemical: λ-window sweeps; restraint ---- */

/* Writes pair.xyz: two water molecules (6 atoms). */
static void write_pair(void)
{
    char path[600];
    scratch_path("pair.xyz", path, sizeof path);
    write_text(path, "6\ntwo waters\n"
                     "O 0.0 0.0 0.0\nH 0.757 0.586 0.0\nH -0.757 0.586 0.0\n"
                     "O 0.0 0.0 3.0\nH 0.757 0.586 3.0\nH -0.757 0.586 3.0\n");
}

/* Lines 1-5; a sweep's system and integrator. */
#define SWEEP_HEAD                                                                                 \
    "platform: reference\nsteps: 10\nintegrator: {type: langevin, temperature: 300}\n"             \
    "systems:\n  - structure: pair.xyz\n"
/* Lines 1-9: interpolate from the model to a harmonic restraint. */
#define INTERPOLATE_HEAD                                                                           \
    SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"                      \
               "  b: {harmonic: {k: 4, structure: pair.xyz}}\n"
/* Lines 1-8: decouple, before the solute. */
#define DECOUPLE_HEAD SWEEP_HEAD "model: model.onnx\nalchemical:\n  mode: decouple\n"

static void test_alchemical_interpolate(void)
{
    write_pair();
    run_config cfg;
    char want[PATH_MAX + 64];
    CU_ASSERT_EQUAL_FATAL(load_valid(INTERPOLATE_HEAD "  lambdas: [0, 0.25, 1]\n"
                                                      "  exchange_interval: 20\n"
                                                      "restraint: {k: 2.5, radius: 6}\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL(cfg.alchemical.mode, ALCHEMICAL_INTERPOLATE);
    CU_ASSERT_EQUAL(cfg.model[0], '\0'); /* the end states name their models */
    CU_ASSERT_EQUAL(cfg.alchemical.a.harmonic, 0);
    CU_ASSERT_STRING_EQUAL(cfg.alchemical.a.model, resolved("model.onnx", want, sizeof want));
    CU_ASSERT_EQUAL(cfg.alchemical.b.harmonic, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.b.k, 4.0, 0.0);
    CU_ASSERT_STRING_EQUAL(cfg.alchemical.b.structure, resolved("pair.xyz", want, sizeof want));
    CU_ASSERT_EQUAL_FATAL(cfg.alchemical.n_lambdas, 3);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.lambdas[0], 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.lambdas[1], 0.25, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.lambdas[2], 1.0, 0.0);
    CU_ASSERT_EQUAL(cfg.alchemical.exchange_interval, 20);
    CU_ASSERT_EQUAL(cfg.systems[0].copies, 3); /* one replica per window */
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 3);
    CU_ASSERT_EQUAL(cfg.restraint.set, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.restraint.k, 2.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.restraint.radius, 6.0, 0.0);
    run_config_free(&cfg);

    /* {count: 5}: 0, 1/4, 1/2, 3/4, 1 (exact in binary); no exchange */
    CU_ASSERT_EQUAL_FATAL(load_valid(INTERPOLATE_HEAD "  lambdas: {count: 5}\n", &cfg), 0);
    CU_ASSERT_EQUAL_FATAL(cfg.alchemical.n_lambdas, 5);
    for (int k = 0; k < 5; k++) CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.lambdas[k], 0.25 * k, 0.0);
    CU_ASSERT_EQUAL(cfg.alchemical.exchange_interval, 0);
    CU_ASSERT_EQUAL(cfg.restraint.set, 0);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 5);
    run_config_free(&cfg);

    /* a restraint on a plain run */
    CU_ASSERT_EQUAL_FATAL(load_valid(BASE "restraint:\n  k: 1\n  radius: 4.5\n", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.alchemical.mode, ALCHEMICAL_NONE);
    CU_ASSERT_EQUAL(cfg.restraint.set, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.restraint.radius, 4.5, 0.0);
    run_config_free(&cfg);
}

static void test_alchemical_decouple(void)
{
    write_pair();
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_valid(DECOUPLE_HEAD "  solute: [5, 3, 4]\n  lambdas: [0, 1]\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL(cfg.alchemical.mode, ALCHEMICAL_DECOUPLE);
    CU_ASSERT_EQUAL_FATAL(cfg.alchemical.n_solute, 3);
    for (int k = 0; k < 3; k++) CU_ASSERT_EQUAL(cfg.alchemical.solute[k], 3 + k); /* sorted */
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 2);
    run_config_free(&cfg);
    CU_ASSERT_EQUAL_FATAL(load_valid(DECOUPLE_HEAD "  solute: {first: 1, count: 2}\n"
                                                   "  lambdas: {count: 3}\n",
                                     &cfg),
                          0);
    CU_ASSERT_EQUAL_FATAL(cfg.alchemical.n_solute, 2);
    CU_ASSERT_EQUAL(cfg.alchemical.solute[0], 1);
    CU_ASSERT_EQUAL(cfg.alchemical.solute[1], 2);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.lambdas[1], 0.5, 0.0);
    run_config_free(&cfg);
}

static void test_alchemical_errors(void)
{
    write_pair();
    /* the mode and the model */
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  lambdas: [0, 1]\n", 6,
                 "key 'alchemical': missing required key 'mode'");
    EXPECT_ERROR(SWEEP_HEAD "model: model.onnx\nalchemical:\n  mode: decoupel\n", 8,
                 "key 'alchemical.mode'", "unknown alchemical mode 'decoupel'",
                 "did you mean 'decouple'?");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: decouple\n  solute: [0]\n  lambdas: [0, 1]\n",
                 1, "missing required key 'model'");
    EXPECT_ERROR("model: model.onnx\n" INTERPOLATE_HEAD "  lambdas: [0, 1]\n", 1,
                 "key 'model': not used by alchemical.mode 'interpolate'", "alchemical.a.model");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lamdbas: [0, 1]\n", 10,
                 "unknown key 'lamdbas' in 'alchemical'", "did you mean 'lambdas'?");
    /* the windows */
    EXPECT_ERROR(INTERPOLATE_HEAD, 6, "key 'alchemical': missing required key 'lambdas'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [0.5]\n", 10, "key 'alchemical.lambdas'",
                 "expected at least 2 λ windows, got 1");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [0, 0.5, 0.5]\n", 10,
                 "key 'alchemical.lambdas[2]'", "above 0.5", "strictly increasing", "got '0.5'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [0, 1.5]\n", 10, "key 'alchemical.lambdas[1]'",
                 "at most 1", "got '1.5'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [-0.1, 1]\n", 10, "key 'alchemical.lambdas[0]'",
                 "from 0 to 1", "got '-0.1'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: {count: 1}\n", 10,
                 "key 'alchemical.lambdas.count'", "windows >= 2", "got '1'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: 8\n", 10, "key 'alchemical.lambdas'",
                 "{count: N}", "got '8'");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: {n: 8}\n", 10,
                 "unknown key 'n' in 'alchemical.lambdas'", "valid keys here: count");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [0, 1]\n  exchange_interval: 0\n", 11,
                 "key 'alchemical.exchange_interval'", "positive whole number", "got '0'");
    /* the end states */
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"
                            "  lambdas: [0, 1]\n",
                 6, "key 'alchemical': missing required key 'b'");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a: model.onnx\n", 8,
                 "key 'alchemical.a'", "expected an end state", "got 'model.onnx'");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n"
                            "  a: {model: model.onnx, harmonic: {k: 1, structure: pair.xyz}}\n",
                 8, "key 'alchemical.a.harmonic'", "either a model or a harmonic restraint");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a:\n    harmonic:\n"
                            "      structure: pair.xyz\n",
                 9, "key 'alchemical.a.harmonic': missing required key 'k'");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a:\n    harmonic:\n"
                            "      k: -1\n      structure: pair.xyz\n",
                 10, "key 'alchemical.a.harmonic.k'", "positive spring constant", "got '-1'");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a:\n    harmonic:\n"
                            "      k: 1\n      structure: nothere.xyz\n",
                 11, "key 'alchemical.a.harmonic.structure'", "No such file");
    EXPECT_ERROR(SWEEP_HEAD "alchemical:\n  mode: interpolate\n  a:\n    harmonc: {}\n", 9,
                 "unknown key 'harmonc' in 'alchemical.a'", "did you mean 'harmonic'?");
    EXPECT_ERROR(INTERPOLATE_HEAD "  solute: [0]\n  lambdas: [0, 1]\n", 10,
                 "key 'alchemical.solute'", "only used by alchemical.mode 'decouple'");
    /* the solute */
    EXPECT_ERROR(DECOUPLE_HEAD "  lambdas: [0, 1]\n", 7,
                 "key 'alchemical': missing required key 'solute'");
    EXPECT_ERROR(DECOUPLE_HEAD "  solute: [0, 6]\n  lambdas: [0, 1]\n", 9,
                 "key 'alchemical.solute[1]'", "an atom index from 0 to 5", "got '6'");
    EXPECT_ERROR(DECOUPLE_HEAD "  solute: [1, 2, 1]\n  lambdas: [0, 1]\n", 9,
                 "key 'alchemical.solute[2]'", "atom 1 is listed twice");
    EXPECT_ERROR(DECOUPLE_HEAD "  solute: {first: 4, count: 3}\n  lambdas: [0, 1]\n", 9,
                 "key 'alchemical.solute'", "atoms 4..6 requested", "has 6 atoms");
    EXPECT_ERROR(DECOUPLE_HEAD "  solute: {first: 0, count: 6}\n  lambdas: [0, 1]\n", 9,
                 "key 'alchemical.solute'", "the solute is every atom");
    EXPECT_ERROR(DECOUPLE_HEAD "  solute: []\n  lambdas: [0, 1]\n", 9,
                 "key 'alchemical.solute'", "expected the solute's atoms", "got a list");
    EXPECT_ERROR(DECOUPLE_HEAD "  a: {model: model.onnx}\n", 9, "key 'alchemical.a'",
                 "only used by alchemical.mode 'interpolate'");
    /* the system, the integrator, replica exchange */
    EXPECT_ERROR("platform: reference\nsteps: 10\nintegrator: {type: langevin, temperature: 300}\n"
                 "systems:\n  - structure: pair.xyz\n  - structure: pair.xyz\n"
                 "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"
                 "  b: {model: model.onnx}\n  lambdas: [0, 1]\n",
                 7, "key 'alchemical': a λ sweep has exactly one system",
                 "'systems' (line 4) has 2");
    EXPECT_ERROR("platform: reference\nsteps: 10\nintegrator: {type: langevin, temperature: 300}\n"
                 "systems:\n  - structure: pair.xyz\n    copies: 2\n"
                 "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"
                 "  b: {model: model.onnx}\n  lambdas: [0, 1]\n",
                 6, "key 'systems[0].copies'", "not allowed in a λ sweep (alchemical, line 7)");
    EXPECT_ERROR("platform: reference\nsteps: 10\n"
                 "systems:\n  - structure: pair.xyz\n"
                 "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"
                 "  b: {model: model.onnx}\n  lambdas: [0, 1]\n",
                 5, "key 'alchemical'", "Langevin", "integrator.type is 'verlet'");
    EXPECT_ERROR("platform: reference\nsteps: 10\nintegrator: {type: langevin}\n"
                 "systems:\n  - structure: pair.xyz\n"
                 "alchemical:\n  mode: interpolate\n  a: {model: model.onnx}\n"
                 "  b: {model: model.onnx}\n  lambdas: [0, 1]\n",
                 3, "key 'integrator.temperature'", "needs a temperature");
    EXPECT_ERROR(INTERPOLATE_HEAD "  lambdas: [0, 1]\nreplica_exchange: {interval: 5}\n", 11,
                 "key 'replica_exchange'", "alchemical.exchange_interval");
}

static void test_restraint_errors(void)
{
    EXPECT_ERROR(BASE "restraint: {k: 1}\n", 5, "key 'restraint': missing required key 'radius'");
    EXPECT_ERROR(BASE "restraint: {radius: 5}\n", 5, "key 'restraint': missing required key 'k'");
    EXPECT_ERROR(BASE "restraint: {k: 1, radius: 0}\n", 5, "key 'restraint.radius'",
                 "positive radius", "got '0'");
    EXPECT_ERROR(BASE "restraint: {k: 0, radius: 5}\n", 5, "key 'restraint.k'",
                 "positive spring constant", "got '0'");
    EXPECT_ERROR(BASE "restraint:\n  k: 1\n  radious: 5\n", 7,
                 "unknown key 'radious' in 'restraint'", "did you mean 'radius'?");
    EXPECT_ERROR(BASE "restraint: 5\n", 5, "key 'restraint'", "expected a mapping", "got '5'");
    EXPECT_ERROR(BASE "radius: 5\n", 5, "unknown key 'radius' at the top level",
                 "'radius' belongs in 'restraint'");
}

/* ---- the example configurations in configs/ ---- */

/* Loads configs/<name> against the shared data; returns the config. */
static int load_example(const char *name, run_config *cfg)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/configs/%s", getenv("DISTILMD_SOURCE_DIR"), name);
    dm_error err = {{0}};
    int rc = run_config_load(path, cfg, &err);
    if (rc) printf("\n  %s\n", err.msg);
    return rc;
}

static void test_example_nve_benzene(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("nve_benzene.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_VERLET);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.timestep_fs, 0.5, 0.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.model, "/models/student_427k.onnx"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/benzene.xyz"));
    CU_ASSERT_EQUAL(cfg.velocities.set, 1);
    run_config_free(&cfg);
}

static void test_example_langevin_aspirin(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("langevin_aspirin.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_LANGEVIN);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.temperature_K, 300.0, 0.0);
    CU_ASSERT(run_config_replicas(&cfg) > 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/aspirin.xyz"));
    run_config_free(&cfg);
}

static void test_example_minimize_caffeine(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("minimize_caffeine.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_FIRE);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/caffeine.xyz"));
    run_config_free(&cfg);
}

static void test_example_remd_alanine_dipeptide(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("remd_alanine_dipeptide.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_LANGEVIN);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.timestep_fs, 0.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.friction_per_ps, 1.0, 0.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.model, "/models/student_427k.onnx"));
    CU_ASSERT_EQUAL_FATAL(cfg.n_systems, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/alanine_dipeptide.xyz"));
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_rungs, 8);
    CU_ASSERT(ladder_is_geometric(cfg.systems[0].ladder, 8, 300.0, 600.0));
    CU_ASSERT_EQUAL(cfg.systems[0].groups, 1);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 8);
    CU_ASSERT_EQUAL(cfg.replica_exchange.interval, 100);
    CU_ASSERT_EQUAL(cfg.velocities.set, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.velocities.temperature_K, 300.0, 0.0);
    CU_ASSERT_EQUAL(cfg.steps, 20000);
    CU_ASSERT_EQUAL(cfg.output.interval, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.output.file, "/remd_alanine_dipeptide.h5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.checkpoint.file, "/remd_alanine_dipeptide.chk"));
    CU_ASSERT_EQUAL(cfg.checkpoint.interval, 5000);
    run_config_free(&cfg);
}

static void test_example_ensemble(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("ensemble.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_LANGEVIN);
    CU_ASSERT_EQUAL(cfg.replica_exchange.interval, 0);
    CU_ASSERT_EQUAL_FATAL(cfg.n_systems, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/ethanol.xyz"));
    CU_ASSERT_EQUAL(cfg.systems[0].n_frames, 1); /* the shared ethanol.xyz has one frame */
    CU_ASSERT_EQUAL(cfg.systems[0].copies, 8);
    CU_ASSERT_EQUAL_FATAL(cfg.systems[0].n_temperatures, 8);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[0], 250.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.systems[0].temperatures[7], 400.0, 0.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[1].structure, "/molecules/aspirin.xyz"));
    CU_ASSERT_EQUAL(cfg.systems[1].copies, 4);
    CU_ASSERT_EQUAL(cfg.systems[1].n_temperatures, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.integrator.temperature_K, 300.0, 0.0);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 12);
    run_config_free(&cfg);
}

static void test_example_fe_harmonic(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("fe_harmonic.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.alchemical.mode, ALCHEMICAL_INTERPOLATE);
    CU_ASSERT_EQUAL(cfg.model[0], '\0');
    CU_ASSERT_EQUAL(cfg.alchemical.a.harmonic, 1);
    CU_ASSERT_EQUAL(cfg.alchemical.b.harmonic, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.a.k, 1.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.alchemical.b.k, 4.0, 0.0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.alchemical.a.structure, "/molecules/water.xyz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/molecules/water.xyz"));
    CU_ASSERT_EQUAL(cfg.alchemical.n_lambdas, 12);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 12);
    CU_ASSERT(cfg.alchemical.exchange_interval > 0);
    CU_ASSERT_EQUAL(cfg.integrator.kind, INTEGRATOR_LANGEVIN);
    run_config_free(&cfg);
}

static void test_example_fe_decouple_ethanol(void)
{
    run_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_example("fe_decouple_ethanol.yaml", &cfg), 0);
    CU_ASSERT_EQUAL(cfg.alchemical.mode, ALCHEMICAL_DECOUPLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.model, "/models/student_427k.onnx"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.systems[0].structure, "/examples/ethanol_in_water10.xyz"));
    CU_ASSERT_EQUAL_FATAL(cfg.alchemical.n_solute, 9); /* ethanol: atoms 0-8 */
    for (int k = 0; k < 9; k++) CU_ASSERT_EQUAL(cfg.alchemical.solute[k], k);
    CU_ASSERT_EQUAL(cfg.alchemical.n_lambdas, 16);
    CU_ASSERT_EQUAL(run_config_replicas(&cfg), 16);
    CU_ASSERT_EQUAL(cfg.restraint.set, 1);
    run_config_free(&cfg);
}

/* The example suite needs the source tree and shared/; without them it is
 * left out (and says so) while the other suites still run. */
static void add_example_suite(void)
{
    const char *src = getenv("DISTILMD_SOURCE_DIR");
    char shared[PATH_MAX], models[PATH_MAX + 16];
    struct stat st;
    snprintf(models, sizeof models, "%s/models", test_shared_dir());
    if (!src || !*src || stat(models, &st) != 0 || !realpath(test_shared_dir(), shared)) {
        printf("note: example configurations not checked (needs DISTILMD_SOURCE_DIR and the "
               "shared data)\n");
        return;
    }
    /* ${DISTILMD_SHARED} must be absolute: a relative one would be taken
     * from the configs/ folder. */
    setenv("DISTILMD_SHARED", shared, 1);
    TEST_SUITE("config_examples", TEST_CASE(test_example_nve_benzene),
               TEST_CASE(test_example_langevin_aspirin), TEST_CASE(test_example_minimize_caffeine),
               TEST_CASE(test_example_remd_alanine_dipeptide), TEST_CASE(test_example_ensemble),
               TEST_CASE(test_example_fe_harmonic), TEST_CASE(test_example_fe_decouple_ethanol));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    make_scratch();
    TEST_SUITE("config_valid", TEST_CASE(test_every_key), TEST_CASE(test_fire_keys),
               TEST_CASE(test_defaults), TEST_CASE(test_number_forms), TEST_CASE(test_paths));
    TEST_SUITE("config_errors", TEST_CASE(test_unknown_keys), TEST_CASE(test_wrong_types),
               TEST_CASE(test_out_of_range), TEST_CASE(test_unknown_choices),
               TEST_CASE(test_duplicates), TEST_CASE(test_temperatures),
               TEST_CASE(test_keys_for_other_integrators), TEST_CASE(test_missing_keys),
               TEST_CASE(test_missing_files), TEST_CASE(test_yaml_syntax));
    TEST_SUITE("config_replica_exchange_ensembles", TEST_CASE(test_geometric_ladder),
               TEST_CASE(test_list_ladder), TEST_CASE(test_frames_all),
               TEST_CASE(test_ladder_exclusive_keys), TEST_CASE(test_ladder_values),
               TEST_CASE(test_replica_exchange_rules));
    TEST_SUITE("config_alchemical", TEST_CASE(test_alchemical_interpolate),
               TEST_CASE(test_alchemical_decouple), TEST_CASE(test_alchemical_errors),
               TEST_CASE(test_restraint_errors));
    add_example_suite();
    int rc = test_run_all();
    remove_scratch();
    return rc;
}
