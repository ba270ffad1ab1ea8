/* h5md.h — trajectories in H5MD 1.1 (HDF5), one particles group per replica.
 *
 *   /h5md                     version [1,1]; author/name; creator/name, version
 *   /particles/replica_NNNN/  box (dimension 3, boundary none),
 *                             species, mass (fixed),
 *                             position [, velocity, force]: step, time, value [F][N][3]
 *   /observables/potential_energy, kinetic_energy, total_energy,
 *                temperature: step, time, value [F][R] (column r: replica r)
 * One step and one time dataset per file (those of replica_0000/position);
 * every other element's step and time are hard links to them.
 * Units as `unit` attributes: Angstrom, ps, Angstrom ps-1, kJ mol-1
 * Angstrom-1 (forces, converted from eV/Å), eV, K, amu. Time is written in
 * ps. MDAnalysis reads the files as they are (replica_0000; see h5md.c). */
#ifndef DISTILMD_H5MD_H
#define DISTILMD_H5MD_H

#include "../core/error.h"

typedef struct h5md_writer h5md_writer;

typedef struct h5md_layout {
    int n_replicas;
    const int *n_atoms;        /* [n_replicas] */
    const int *species;        /* all replicas' atoms concatenated */
    const double *masses;      /* amu, same layout */
    int write_velocity, write_force;
    const char *author;        /* may be NULL */
} h5md_layout;

/* One output frame: arrays cover all replicas, atoms concatenated in replica
 * order (positions Å, velocities Å/fs, forces eV/Å; energies eV, T in K). */
typedef struct h5md_frame {
    long step;
    double time_fs;
    const double *positions, *velocities, *forces;
    const double *potential_energy, *kinetic_energy, *temperature; /* [n_replicas] */
} h5md_frame;

/* Creates (truncates) path. */
int h5md_create(h5md_writer **w, const char *path, const h5md_layout *layout, dm_error *err);
/* Opens an existing file for a restart: checks that it matches the layout,
 * drops frames with step > last_step (written after the checkpoint), and
 * appends after them. */
int h5md_open_append(h5md_writer **w, const char *path, const h5md_layout *layout, long last_step,
                     dm_error *err);
int h5md_write_frame(h5md_writer *w, const h5md_frame *frame, dm_error *err);
int h5md_flush(h5md_writer *w, dm_error *err);
/* Flushes, closes and frees (w may be NULL). */
int h5md_close(h5md_writer *w, dm_error *err);

#endif
