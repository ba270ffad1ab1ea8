/* h5md_fixture.c — writes H5MD files with the engine's writer for
 * tests/python/test_h5md_readers.py, which opens them with h5py and
 * MDAnalysis. Not a test itself (no test_ prefix).
 *
 * Usage: h5md_fixture OUTDIR
 * Writes
 *   OUTDIR/traj.h5md        2 replicas (3 and 4 atoms), positions,
 *                           velocities and forces, 6 frames. Written the way
 *                           a restarted run writes it: 5 frames, closed,
 *                           reopened with h5md_open_append at the step of
 *                           frame 3 (dropping frame 4), then frames 4 and 5
 *                           with new contents appended.
 *   OUTDIR/traj_nf.h5md     the same 6 frames without forces.
 *   OUTDIR/expected.json    what was given to the writer, in the engine's
 *                           units (Å, fs, Å/fs, eV/Å, eV, K, amu), numbers
 *                           printed with 17 significant digits (exact):
 *     {"author": str, "n_atoms": [..], "species": [..], "masses": [..],
 *      "frames": [{"step", "time_fs", "positions", "velocities", "forces",
 *                  "potential_energy", "kinetic_energy", "temperature"}]}
 *     (per-atom arrays flat, all replicas' atoms concatenated). */
#define _POSIX_C_SOURCE 200809L

#include "io/h5md.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_REPLICAS 2
#define N_ATOMS_TOTAL 7
#define N_FRAMES 6
#define STEP_STRIDE 50
#define TIMESTEP_FS 0.5

static const int N_ATOMS[N_REPLICAS] = {3, 4};
static const int SPECIES[N_ATOMS_TOTAL] = {8, 1, 1, 6, 1, 1, 8};
static const double MASSES[N_ATOMS_TOTAL] = {15.999, 1.008, 1.008, 12.011, 1.008, 1.008, 15.999};
static const char *AUTHOR = "distilmd test fixture";

typedef struct frame_data {
    long step;
    double time_fs;
    double pos[N_ATOMS_TOTAL * 3], vel[N_ATOMS_TOTAL * 3], force[N_ATOMS_TOTAL * 3];
    double pe[N_REPLICAS], ke[N_REPLICAS], temp[N_REPLICAS];
} frame_data;

/* xorshift64 in [0, 1) */
static double uniform(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_frame(frame_data *f, int index, unsigned long long seed)
{
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + (unsigned long long)index + 1;
    f->step = (long)index * STEP_STRIDE;
    f->time_fs = TIMESTEP_FS * (double)f->step;
    for (int j = 0; j < N_ATOMS_TOTAL * 3; j++) {
        f->pos[j] = 4.0 * (uniform(&s) - 0.5) + (double)(j / 3);
        f->vel[j] = 0.02 * (uniform(&s) - 0.5);
        f->force[j] = 2.0 * (uniform(&s) - 0.5);
    }
    for (int r = 0; r < N_REPLICAS; r++) {
        f->pe[r] = -2000.0 - 10.0 * uniform(&s);
        f->ke[r] = 0.5 * uniform(&s);
        f->temp[r] = 250.0 + 100.0 * uniform(&s);
    }
}

static h5md_frame view(const frame_data *f, int with_force)
{
    h5md_frame frame = {.step = f->step, .time_fs = f->time_fs, .positions = f->pos,
                        .velocities = f->vel, .forces = with_force ? f->force : NULL,
                        .potential_energy = f->pe, .kinetic_energy = f->ke,
                        .temperature = f->temp};
    return frame;
}

static h5md_layout layout_of(int with_force)
{
    h5md_layout layout = {.n_replicas = N_REPLICAS, .n_atoms = N_ATOMS, .species = SPECIES,
                          .masses = MASSES, .write_velocity = 1, .write_force = with_force,
                          .author = AUTHOR};
    return layout;
}

/* The restart sequence described at the top. */
static int write_trajectory(const char *path, const frame_data *frames,
                            const frame_data *dropped, int with_force, dm_error *err)
{
    h5md_layout layout = layout_of(with_force);
    h5md_writer *w = NULL;
    if (h5md_create(&w, path, &layout, err)) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        h5md_frame frame = view(&frames[i], with_force);
        rc = h5md_write_frame(w, &frame, err);
    }
    h5md_frame lost = view(dropped, with_force); /* written after the "checkpoint" */
    if (rc == 0) rc = h5md_write_frame(w, &lost, err);
    if (h5md_close(w, rc ? NULL : err)) rc = -1;
    if (rc) return -1;

    if (h5md_open_append(&w, path, &layout, frames[3].step, err)) return -1;
    for (int i = 4; rc == 0 && i < N_FRAMES; i++) {
        h5md_frame frame = view(&frames[i], with_force);
        rc = h5md_write_frame(w, &frame, err);
    }
    if (h5md_close(w, rc ? NULL : err)) rc = -1;
    return rc;
}

static void print_array(FILE *f, const char *key, const double *x, int n, int last)
{
    fprintf(f, "\"%s\": [", key);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.17g", i ? ", " : "", x[i]);
    fprintf(f, "]%s", last ? "" : ", ");
}

static int write_expected(const char *path, const frame_data *frames)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"author\": \"%s\", \"n_atoms\": [%d, %d], \"species\": [", AUTHOR, N_ATOMS[0],
            N_ATOMS[1]);
    for (int i = 0; i < N_ATOMS_TOTAL; i++) fprintf(f, "%s%d", i ? ", " : "", SPECIES[i]);
    fprintf(f, "], ");
    print_array(f, "masses", MASSES, N_ATOMS_TOTAL, 0);
    fprintf(f, "\"frames\": [\n");
    for (int i = 0; i < N_FRAMES; i++) {
        const frame_data *d = &frames[i];
        fprintf(f, "  {\"step\": %ld, \"time_fs\": %.17g, ", d->step, d->time_fs);
        print_array(f, "positions", d->pos, N_ATOMS_TOTAL * 3, 0);
        print_array(f, "velocities", d->vel, N_ATOMS_TOTAL * 3, 0);
        print_array(f, "forces", d->force, N_ATOMS_TOTAL * 3, 0);
        print_array(f, "potential_energy", d->pe, N_REPLICAS, 0);
        print_array(f, "kinetic_energy", d->ke, N_REPLICAS, 0);
        print_array(f, "temperature", d->temp, N_REPLICAS, 1);
        fprintf(f, "}%s\n", i + 1 < N_FRAMES ? "," : "");
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    static frame_data frames[N_FRAMES], dropped;
    for (int i = 0; i < N_FRAMES; i++) fill_frame(&frames[i], i, 1);
    fill_frame(&dropped, 4, 2); /* step of frame 4, other contents */

    char path[4096];
    dm_error err;
    snprintf(path, sizeof path, "%s/traj.h5md", argv[1]);
    if (write_trajectory(path, frames, &dropped, 1, &err)) {
        fprintf(stderr, "h5md_fixture: %s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/traj_nf.h5md", argv[1]);
    if (write_trajectory(path, frames, &dropped, 0, &err)) {
        fprintf(stderr, "h5md_fixture: %s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/expected.json", argv[1]);
    if (write_expected(path, frames)) {
        fprintf(stderr, "h5md_fixture: cannot write %s\n", path);
        return 1;
    }
    return 0;
}
