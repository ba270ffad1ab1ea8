/* run_config.h — what a `distilmd run` is asked to do, as read from YAML
 * (src/io/config_yaml.c) and overridden from the command line. Documented
 * key by key in docs/config.md. Units: Å, fs, eV, amu, K; friction in 1/ps. */
#ifndef DISTILMD_RUN_CONFIG_H
#define DISTILMD_RUN_CONFIG_H

#include "../core/error.h"

#define CONFIG_PATH_MAX 1024

typedef enum integrator_kind {
    INTEGRATOR_VERLET,   /* velocity Verlet, NVE */
    INTEGRATOR_LANGEVIN, /* BAOAB Langevin, NVT */
    INTEGRATOR_FIRE      /* FIRE energy minimisation */
} integrator_kind;

typedef enum alchemical_mode {
    ALCHEMICAL_NONE,        /* a plain run */
    ALCHEMICAL_INTERPOLATE, /* U_λ = (1 - λ) U_A + λ U_B */
    ALCHEMICAL_DECOUPLE     /* U_λ = U(solute) + U(rest) + λ [U(all) - U(solute) - U(rest)] */
} alchemical_mode;

/* An end state of `interpolate`: a model, or a harmonic restraint
 * Σ_i k/2 |x_i - x0_i|^2 to the positions x0 of a reference structure. */
typedef struct alchemical_endpoint {
    int harmonic;                     /* 0: model */
    char model[CONFIG_PATH_MAX];      /* .onnx file (resolved path) */
    double k;                         /* eV/Å^2 */
    char structure[CONFIG_PATH_MAX];  /* XYZ file (resolved); its first frame is x0 */
} alchemical_endpoint;

/* One entry of `systems:`: a structure file and the replicas made of it.
 *   plain:            n_frames * copies replicas; replica (f, c) starts from
 *                     frame `frame + f` with temperature temperatures[c]
 *   replica exchange: groups * n_rungs replicas (when n_rungs > 0); replica
 *                     (g, k) starts from frame `frame` in rung k of group g's
 *                     ladder, and exchanges move rungs between the replicas
 *                     of one group. */
typedef struct system_spec {
    char structure[CONFIG_PATH_MAX]; /* XYZ file (resolved path) */
    int frame;                       /* first frame used (default 0) */
    int n_frames;                    /* frames used: 1, or with `frames: all` every
                                        frame of the file from `frame` on */
    int copies;                      /* replicas per frame (default 1) */
    int n_temperatures;              /* 0: use the run's temperature */
    double *temperatures;            /* [copies] or a single value repeated */
    int n_rungs;                     /* temperature ladder (replica exchange); 0: none */
    double *ladder;                  /* [n_rungs] K, strictly increasing */
    int groups;                      /* independent exchange groups (default 1) */
} system_spec;

typedef struct run_config {
    char source[CONFIG_PATH_MAX];    /* the YAML file this came from */
    char model[CONFIG_PATH_MAX];     /* .onnx file (resolved path); "" for an
                                        interpolate sweep (its end states name theirs) */
    char platform[32];               /* reference | cuda | auto (default auto) */
    unsigned long long seed;         /* default 1 */
    long steps;                      /* MD steps, or FIRE iterations at most */

    int n_systems;
    system_spec *systems;

    struct {
        integrator_kind kind;
        double timestep_fs;          /* default 0.5 */
        double friction_per_ps;      /* Langevin, default 1.0 */
        double temperature_K;        /* default for every replica (Langevin) */
        /* FIRE */
        double force_tolerance;      /* eV/Å, max |F| component to stop; default 0.01 */
        double max_step;             /* Å per iteration; default 0.1 */
    } integrator;

    struct {
        int set;                     /* 0: start from zero (or file) velocities */
        double temperature_K;        /* Maxwell-Boltzmann initial velocities */
    } velocities;
    long remove_com_interval;        /* 0: never; else every N steps */

    struct {
        char file[CONFIG_PATH_MAX];  /* H5MD output; "" = none */
        long interval;               /* steps between frames (default 100) */
        int position, velocity, force; /* fields written (position default on) */
        long flush_interval;         /* steps between H5Fflush (default = interval * 10) */
    } output;

    struct {
        char file[CONFIG_PATH_MAX];  /* "" = no checkpoints */
        long interval;               /* steps (default 10000); also on SIGINT/SIGTERM */
    } checkpoint;

    struct {
        long interval;               /* steps between exchange attempts; 0: no exchange */
    } replica_exchange;

    /* A λ-window sweep (mode != NONE): systems[0] is the only system and has
     * copies = n_lambdas, one replica per window (replica k starts in window
     * k, at λ = lambdas[k], at integrator.temperature). */
    struct {
        alchemical_mode mode;
        alchemical_endpoint a, b;    /* interpolate */
        int n_solute;                /* decouple: the solute's atoms (0-based, */
        int *solute;                 /* distinct, increasing), [n_solute] */
        int n_lambdas;
        double *lambdas;             /* [n_lambdas], 0 <= λ <= 1, increasing */
        long exchange_interval;      /* Hamiltonian exchange between neighbouring
                                        windows every N steps; 0: none */
    } alchemical;

    /* A flat-bottom spherical restraint on every atom of every replica
     * (hamiltonian.h, TERM_FLAT_BOTTOM) about the replica's initial centroid. */
    struct {
        int set;
        double k;                    /* eV/Å^2 */
        double radius;               /* Å */
    } restraint;

    long progress_interval;          /* steps between status lines (default: ~1 s) */
} run_config;

/* Parses the YAML file. Errors read "FILE:LINE: key 'a.b': expected ...;
 * did you mean 'c'?" for misspelt keys. Relative paths in the file are
 * resolved against the directory of the YAML file, and ${VAR} is replaced by
 * the environment variable VAR (an unset one is an error naming it). */
int run_config_load(const char *path, run_config *cfg, dm_error *err);
void run_config_free(run_config *cfg);

/* The total number of replicas: per system n_frames * copies, or
 * groups * n_rungs with a ladder. */
int run_config_replicas(const run_config *cfg);

#endif
