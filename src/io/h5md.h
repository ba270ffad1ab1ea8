/* h5md.h — trajectories in H5MD 1.1 (HDF5), one particles group per replica.
 *
 *   /h5md                     version [1,1]; author/name; creator/name, version
 *   /particles/replica_NNNN/  box (dimension 3, boundary none),
 *                             species, mass (fixed),
 *                             position [, velocity, force]: step, time, value [F][N][3]
 *   /observables/potential_energy, kinetic_energy, total_energy,
 *                temperature: step, time, value [F][R] (column r: replica r)
 *   /observables/<extra>      the layout's extra observables: step, time,
 *                             value [F][R] (or [F][R][K]) of float64 or int64
 *   /parameters/<group>/...   time-independent datasets (h5md_write_parameters)
 * One step and one time dataset per file (those of replica_0000/position);
 * every other element's step and time are hard links to them.
 * Units as `unit` attributes: Angstrom, ps, Angstrom ps-1, kJ mol-1
 * Angstrom-1 (forces, converted from eV/Å), eV, K, amu. Time is written in
 * ps. MDAnalysis reads the files as they are (replica_0000; see h5md.c). */
#ifndef DISTILMD_H5MD_H
#define DISTILMD_H5MD_H

#include "../core/error.h"

typedef struct h5md_writer h5md_writer;

/* The stored type of an extra observable or a fixed dataset. */
typedef enum h5md_type { H5MD_FLOAT64, H5MD_INT64 } h5md_type;

/* An observable beyond the standard four: /observables/<name>, one value
 * (or a row of `columns` values) per replica and frame, written as given (no
 * unit conversion). */
typedef struct h5md_series_spec {
    const char *name;   /* 1-100 characters, no '/', not a standard observable */
    const char *unit;   /* NULL: no unit attribute (counts, indices) */
    h5md_type type;     /* frames give double (H5MD_FLOAT64) or int64_t values */
    int columns;        /* 0 or 1: value [F][R]; K > 1: value [F][R][K], a frame
                           gives R*K values, replica r's at [r*K, r*K + K) */
} h5md_series_spec;

typedef struct h5md_layout {
    int n_replicas;
    const int *n_atoms;        /* [n_replicas] */
    const int *species;        /* all replicas' atoms concatenated */
    const double *masses;      /* amu, same layout */
    int write_velocity, write_force;
    const char *author;        /* may be NULL */
    int n_extra;               /* extra observables (0: none) */
    const h5md_series_spec *extra; /* [n_extra] */
} h5md_layout;

/* One output frame: arrays cover all replicas, atoms concatenated in replica
 * order (positions Å, velocities Å/fs, forces eV/Å; energies eV, T in K). */
typedef struct h5md_frame {
    long step;
    double time_fs;
    const double *positions, *velocities, *forces;
    const double *potential_energy, *kinetic_energy, *temperature; /* [n_replicas] */
    /* [n_extra]: extra[i] points to n_replicas (x columns) values of the
     * layout's extra[i], double or int64_t as its type says */
    const void *const *extra;
} h5md_frame;

/* A time-independent dataset: rank 1 or 2, dims[0] (x dims[1]) values,
 * row-major, double or int64_t as `type` says. */
typedef struct h5md_fixed {
    const char *name;   /* 1-100 characters, no '/' */
    const char *unit;   /* NULL: no unit attribute */
    h5md_type type;
    int rank;
    long dims[2];
    const void *data;
} h5md_fixed;

/* Creates (truncates) path. */
int h5md_create(h5md_writer **w, const char *path, const h5md_layout *layout, dm_error *err);
/* Opens an existing file for a restart: checks that it matches the layout
 * (extra observables included), drops frames with step > last_step (written
 * after the checkpoint), and appends after them. /parameters is kept. */
int h5md_open_append(h5md_writer **w, const char *path, const h5md_layout *layout, long last_step,
                     dm_error *err);
int h5md_write_frame(h5md_writer *w, const h5md_frame *frame, dm_error *err);
/* Writes the n datasets as /parameters/<group>/<name>, replacing the whole
 * group when it exists (call again to update it). Not under /observables:
 * MDAnalysis reads every member of /observables as a time series and fails
 * on any other. */
int h5md_write_parameters(h5md_writer *w, const char *group, const h5md_fixed *datasets, int n,
                          dm_error *err);
int h5md_flush(h5md_writer *w, dm_error *err);
/* Flushes, closes and frees (w may be NULL). */
int h5md_close(h5md_writer *w, dm_error *err);

#endif
