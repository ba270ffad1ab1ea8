/* h5md.c — trajectories in H5MD 1.1 (de Buyl, Colberg, Höfling, Comp. Phys.
 * Comm. 185, 1546 (2014); https://www.nongnu.org/h5md/h5md.html), one
 * particles group per replica.
 *
 * Layout (N atoms of the replica, F frames so far):
 *   /h5md                         +version int32[2] = {1, 1}
 *        author                   +name   (fixed-length string; "unknown" when not given)
 *        creator                  +name "distilmd", +version (fixed-length strings)
 *   /particles/replica_NNNN       (NNNN: replica index, zero-padded to 4 digits)
 *        box                      +dimension int32 = 3
 *                                 +boundary fixed-length string[3] = {none, none, none}
 *                                 (no edges: an open system, H5MD allows omitting them)
 *        species                  int32[N], atomic numbers, fixed in time
 *        mass                     float64[N], fixed in time, +unit "amu"
 *        position                 step int64[F]; time float64[F] +unit "ps";
 *                                 value float64[F][N][3] +unit "Angstrom"
 *        velocity   (optional)    same, value +unit "Angstrom ps-1"
 *        force      (optional)    same, value +unit "eV Angstrom-1"
 *   /observables/replica_NNNN/potential_energy, kinetic_energy, total_energy:
 *                                 step int64[F]; time float64[F] +unit "ps";
 *                                 value float64[F] +unit "eV"
 *                            temperature: the same, value +unit "K"
 * Every time series of a file has the same frames (one row per
 * h5md_write_frame); step values increase strictly.
 *
 * Units. The engine works in Å, fs, eV, amu, K. The file stores
 *   time [ps]             = time [fs] / 1000
 *   velocity [Å/ps]       = velocity [Å/fs] × 1000
 * and everything else as the engine gives it (positions Å, forces eV/Å,
 * energies eV, temperature K, masses amu); total_energy = potential + kinetic.
 * `unit` attributes are variable-length ASCII strings, as the H5MD units
 * module prescribes; we do not declare that module (its system spells
 * Ångström "Ang" and amu "u"), and use the spellings MDAnalysis recognises.
 *
 * Reading with MDAnalysis (checked against MDAnalysis 2.4.2, Debian's
 * python3-mdanalysis; see tests/python/test_h5md_readers.py):
 *   - It reads the first group of /particles (replica_0000) only.
 *   - Its units table knows "Angstrom", "ps" and "Angstrom ps-1" but no
 *     eV-based force unit: a file with forces must be opened with
 *     convert_units=False (all values are then as stored, i.e. in the units
 *     above; MDAnalysis's own units are Å and ps, so positions, velocities
 *     and times need no conversion anyway). A file without forces opens
 *     with the default convert_units=True.
 *   - It cannot build a topology from the file (it looks for
 *     /particles/trajectory): use Universe.empty(n_atoms) + load_new(file,
 *     format="H5MD"), or give a topology file.
 *   - Versions before 2.8 fail on observables kept in subgroups of
 *     /observables (MDAnalysis issue #4598, fixed by pull request #4615),
 *     which H5MD 1.1 allows and this layout uses; the test shows the
 *     two-line workaround for those versions.
 *
 * Storage. Time series are chunked along the frame axis: a per-atom value
 * chunk holds about 32 KiB of frames (1 to 1024 frames), step/time and
 * observable chunks hold 256 frames. No compression.
 *
 * Crash safety. h5md_flush (H5Fflush) writes all data and metadata to the
 * file (to the operating system; no fsync): a process killed afterwards
 * leaves a valid file holding every frame written before the flush. Frames
 * written after the last flush may or may not survive. The file is created
 * with HDF5's default (earliest) format, so a killed writer leaves no
 * "file is open for writing" mark that a reader would refuse.
 *
 * Errors: every function returns 0 or -1 with a message naming the file and
 * the HDF5 object. HDF5's automatic error printing is switched off during
 * our calls and the caller's handler restored afterwards. */
#define _POSIX_C_SOURCE 200809L

#include "h5md.h"
#include "hdf5_support.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef DISTILMD_VERSION
#define DISTILMD_VERSION "0.1.0"
#endif

/* ------------------------------------------------------------------------ */
/* The time series of one replica. */

enum series_kind {
    SERIES_POSITION,
    SERIES_VELOCITY,
    SERIES_FORCE,
    SERIES_POTENTIAL_ENERGY,
    SERIES_KINETIC_ENERGY,
    SERIES_TOTAL_ENERGY,
    SERIES_TEMPERATURE,
    N_SERIES
};

typedef struct series_spec {
    const char *name;
    const char *unit;   /* of value */
    int per_atom;       /* 1: /particles, value [F][N][3]; 0: /observables, value [F] */
} series_spec;

static const series_spec SERIES[N_SERIES] = {
    {"position", "Angstrom", 1},
    {"velocity", "Angstrom ps-1", 1},
    {"force", "eV Angstrom-1", 1},
    {"potential_energy", "eV", 0},
    {"kinetic_energy", "eV", 0},
    {"total_energy", "eV", 0},
    {"temperature", "K", 0},
};

#define TIME_UNIT "ps"
#define MASS_UNIT "amu"
#define FS_PER_PS 1000.0
#define SCALAR_CHUNK_FRAMES 256
#define VALUE_CHUNK_BYTES 32768
#define VALUE_CHUNK_MAX_FRAMES 1024
#define OBJECT_PATH_MAX 160

typedef struct time_series {
    hid_t step, time, value; /* datasets; -1 when not open */
    hsize_t n_frames;        /* rows written */
} time_series;

struct h5md_writer {
    char *path;
    hid_t file;
    int n_replicas;
    int *n_atoms;          /* [n_replicas] */
    long *first_atom;      /* [n_replicas]: offset of the replica's atoms in frame arrays */
    int max_atoms;
    int enabled[N_SERIES];
    time_series *series;   /* [n_replicas][N_SERIES] */
    double *scratch;       /* [3 * max_atoms]: velocities converted to Å/ps */
    int has_frames;
    long last_step;        /* step of the last frame in the file (when has_frames) */
    int broken;            /* a write failed midway: the file may hold a partial frame */
};

static time_series *series_of(h5md_writer *w, int replica, int kind)
{
    return &w->series[(size_t)replica * N_SERIES + (size_t)kind];
}

static void replica_group_path(char *buf, size_t size, const char *root, int replica)
{
    snprintf(buf, size, "/%s/replica_%04d", root, replica);
}

static void series_path(char *buf, size_t size, int replica, int kind)
{
    char group[OBJECT_PATH_MAX];
    replica_group_path(group, sizeof group, SERIES[kind].per_atom ? "particles" : "observables",
                       replica);
    snprintf(buf, size, "%s/%s", group, SERIES[kind].name);
}

/* Frames per chunk of a per-atom value dataset: about VALUE_CHUNK_BYTES. */
static hsize_t value_chunk_frames(int n_atoms)
{
    hsize_t frame_bytes = (hsize_t)n_atoms * 3 * sizeof(double);
    hsize_t frames = VALUE_CHUNK_BYTES / frame_bytes;
    if (frames < 1) frames = 1;
    if (frames > VALUE_CHUNK_MAX_FRAMES) frames = VALUE_CHUNK_MAX_FRAMES;
    return frames;
}

/* ------------------------------------------------------------------------ */
/* Writer allocation. */

static int check_layout(const char *path, const h5md_layout *layout, dm_error *err)
{
    if (!path || !*path) return dm_fail(err, "h5md: no output file name given");
    if (!layout) return dm_fail(err, "%s: no layout given", path);
    if (layout->n_replicas < 1)
        return dm_fail(err, "%s: expected at least one replica, got %d", path, layout->n_replicas);
    if (!layout->n_atoms || !layout->species || !layout->masses)
        return dm_fail(err, "%s: the layout lacks n_atoms, species or masses", path);
    for (int r = 0; r < layout->n_replicas; r++)
        if (layout->n_atoms[r] < 1)
            return dm_fail(err, "%s: replica %d has %d atoms, expected at least 1", path, r,
                           layout->n_atoms[r]);
    return 0;
}

static void writer_free(h5md_writer *w)
{
    if (!w) return;
    free(w->path);
    free(w->n_atoms);
    free(w->first_atom);
    free(w->series);
    free(w->scratch);
    free(w);
}

static h5md_writer *writer_new(const char *path, const h5md_layout *layout, dm_error *err)
{
    h5md_writer *w = calloc(1, sizeof *w);
    int n = layout->n_replicas;
    if (w) {
        w->file = -1;
        w->n_replicas = n;
        w->path = malloc(strlen(path) + 1);
        w->n_atoms = malloc((size_t)n * sizeof *w->n_atoms);
        w->first_atom = malloc((size_t)n * sizeof *w->first_atom);
        w->series = malloc((size_t)n * N_SERIES * sizeof *w->series);
    }
    if (!w || !w->path || !w->n_atoms || !w->first_atom || !w->series) {
        writer_free(w);
        dm_fail(err, "%s: out of memory for the H5MD writer (%d replicas)", path, n);
        return NULL;
    }
    strcpy(w->path, path);
    long offset = 0;
    for (int r = 0; r < n; r++) {
        w->n_atoms[r] = layout->n_atoms[r];
        w->first_atom[r] = offset;
        offset += layout->n_atoms[r];
        if (layout->n_atoms[r] > w->max_atoms) w->max_atoms = layout->n_atoms[r];
        for (int k = 0; k < N_SERIES; k++)
            *series_of(w, r, k) = (time_series){.step = -1, .time = -1, .value = -1};
    }
    for (int k = 0; k < N_SERIES; k++) w->enabled[k] = !SERIES[k].per_atom;
    w->enabled[SERIES_POSITION] = 1;
    w->enabled[SERIES_VELOCITY] = layout->write_velocity != 0;
    w->enabled[SERIES_FORCE] = layout->write_force != 0;
    w->scratch = malloc((size_t)w->max_atoms * 3 * sizeof *w->scratch);
    if (!w->scratch) {
        writer_free(w);
        dm_fail(err, "%s: out of memory for the H5MD writer", path);
        return NULL;
    }
    return w;
}

/* Closes every dataset and the file; the first failure goes into err (when
 * rc is still 0). Returns the updated rc. */
static int writer_close_handles(h5md_writer *w, int rc, dm_error *err)
{
    for (int r = 0; r < w->n_replicas; r++) {
        for (int k = 0; k < N_SERIES; k++) {
            time_series *s = series_of(w, r, k);
            hid_t ids[3] = {s->step, s->time, s->value};
            for (int i = 0; i < 3; i++)
                if (hdf5_close(ids[i]) < 0 && rc == 0) {
                    char path[OBJECT_PATH_MAX];
                    series_path(path, sizeof path, r, k);
                    rc = hdf5_fail(err, "%s: cannot close a dataset of %s", w->path, path);
                }
            s->step = s->time = s->value = -1;
        }
    }
    if (hdf5_close(w->file) < 0 && rc == 0)
        rc = hdf5_fail(err, "%s: cannot close the file", w->path);
    w->file = -1;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Creating a file. */

static hid_t create_group(h5md_writer *w, hid_t loc, const char *name, const char *full_path,
                          dm_error *err)
{
    hid_t group = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0) hdf5_fail(err, "%s: cannot create group %s", w->path, full_path);
    return group;
}

static int write_unit(h5md_writer *w, hid_t obj, const char *unit, const char *full_path,
                      dm_error *err)
{
    if (hdf5_write_vl_string_attribute(obj, "unit", unit) < 0)
        return hdf5_fail(err, "%s: cannot write attribute unit of %s", w->path, full_path);
    return 0;
}

/* /h5md with version, author and creator. */
static int create_metadata(h5md_writer *w, const char *author, dm_error *err)
{
    static const int version[2] = {1, 1};
    hid_t h5md = create_group(w, w->file, "h5md", "/h5md", err);
    if (h5md < 0) return -1;
    int rc = 0;
    hid_t author_group = -1, creator = -1;
    if (hdf5_write_int_array_attribute(h5md, "version", version, 2) < 0)
        rc = hdf5_fail(err, "%s: cannot write attribute version of /h5md", w->path);
    if (rc == 0 && (author_group = create_group(w, h5md, "author", "/h5md/author", err)) < 0)
        rc = -1;
    if (rc == 0 && hdf5_write_fixed_string_attribute(author_group, "name",
                                                     author && *author ? author : "unknown") < 0)
        rc = hdf5_fail(err, "%s: cannot write attribute name of /h5md/author", w->path);
    if (rc == 0 && (creator = create_group(w, h5md, "creator", "/h5md/creator", err)) < 0)
        rc = -1;
    if (rc == 0 && (hdf5_write_fixed_string_attribute(creator, "name", "distilmd") < 0 ||
                    hdf5_write_fixed_string_attribute(creator, "version", DISTILMD_VERSION) < 0))
        rc = hdf5_fail(err, "%s: cannot write the attributes of /h5md/creator", w->path);
    hdf5_close(creator);
    hdf5_close(author_group);
    hdf5_close(h5md);
    return rc;
}

/* A fixed-in-time 1-D dataset of n values. */
static int write_fixed_dataset(h5md_writer *w, hid_t group, const char *name,
                               const char *full_path, hid_t file_type, hid_t mem_type, int n,
                               const void *data, const char *unit, dm_error *err)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dset = space < 0 ? -1
                           : H5Dcreate2(group, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT);
    int rc = 0;
    if (dset < 0)
        rc = hdf5_fail(err, "%s: cannot create dataset %s", w->path, full_path);
    else if (H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = hdf5_fail(err, "%s: cannot write dataset %s", w->path, full_path);
    if (rc == 0 && unit) rc = write_unit(w, dset, unit, full_path, err);
    hdf5_close(dset);
    hdf5_close(space);
    return rc;
}

/* /particles/replica_NNNN with box, species and mass. */
static int create_particles_group(h5md_writer *w, hid_t particles, int r,
                                  const h5md_layout *layout, dm_error *err)
{
    static const char *const boundary[3] = {"none", "none", "none"};
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    replica_group_path(path, sizeof path, "particles", r);
    hid_t group = create_group(w, particles, strrchr(path, '/') + 1, path, err);
    if (group < 0) return -1;
    int rc = 0;
    snprintf(object, sizeof object, "%s/box", path);
    hid_t box = create_group(w, group, "box", object, err);
    if (box < 0) rc = -1;
    if (rc == 0 && (hdf5_write_int_attribute(box, "dimension", 3) < 0 ||
                    hdf5_write_fixed_string_array_attribute(box, "boundary", boundary, 3) < 0))
        rc = hdf5_fail(err, "%s: cannot write the attributes of %s", w->path, object);
    if (rc == 0) {
        snprintf(object, sizeof object, "%s/species", path);
        rc = write_fixed_dataset(w, group, "species", object, H5T_STD_I32LE, H5T_NATIVE_INT,
                                 w->n_atoms[r], layout->species + w->first_atom[r], NULL, err);
    }
    if (rc == 0) {
        snprintf(object, sizeof object, "%s/mass", path);
        rc = write_fixed_dataset(w, group, "mass", object, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                 w->n_atoms[r], layout->masses + w->first_atom[r], MASS_UNIT,
                                 err);
    }
    hdf5_close(box);
    hdf5_close(group);
    return rc;
}

/* An empty dataset of shape [0][item...], extendable along the first axis,
 * chunked by chunk_frames along it. */
static hid_t create_extendable(hid_t group, const char *name, hid_t file_type, int rank,
                               const hsize_t *item, hsize_t chunk_frames)
{
    hsize_t dims[3] = {0, 0, 0}, max_dims[3] = {H5S_UNLIMITED, 0, 0}, chunk[3] = {chunk_frames};
    for (int d = 1; d < rank; d++) dims[d] = max_dims[d] = chunk[d] = item[d - 1];
    hid_t space = H5Screate_simple(rank, dims, max_dims);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = -1;
    if (space >= 0 && plist >= 0 && H5Pset_chunk(plist, rank, chunk) >= 0)
        dset = H5Dcreate2(group, name, file_type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    if (hdf5_close(plist) < 0 || hdf5_close(space) < 0) {
        hdf5_close(dset);
        dset = -1;
    }
    return dset;
}

/* One time-dependent element: group with step, time and value. `parent`
 * is the replica's particles or observables group. */
static int create_series(h5md_writer *w, hid_t parent, int r, int kind, dm_error *err)
{
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    series_path(path, sizeof path, r, kind);
    time_series *s = series_of(w, r, kind);
    hid_t group = create_group(w, parent, SERIES[kind].name, path, err);
    if (group < 0) return -1;

    int per_atom = SERIES[kind].per_atom;
    hsize_t item[2] = {(hsize_t)w->n_atoms[r], 3};
    int rc = 0;
    s->step = create_extendable(group, "step", H5T_STD_I64LE, 1, NULL, SCALAR_CHUNK_FRAMES);
    if (s->step < 0) rc = hdf5_fail(err, "%s: cannot create dataset %s/step", w->path, path);
    if (rc == 0) {
        s->time = create_extendable(group, "time", H5T_IEEE_F64LE, 1, NULL, SCALAR_CHUNK_FRAMES);
        snprintf(object, sizeof object, "%s/time", path);
        if (s->time < 0) rc = hdf5_fail(err, "%s: cannot create dataset %s", w->path, object);
        else rc = write_unit(w, s->time, TIME_UNIT, object, err);
    }
    if (rc == 0) {
        s->value = per_atom ? create_extendable(group, "value", H5T_IEEE_F64LE, 3, item,
                                                value_chunk_frames(w->n_atoms[r]))
                            : create_extendable(group, "value", H5T_IEEE_F64LE, 1, NULL,
                                                SCALAR_CHUNK_FRAMES);
        snprintf(object, sizeof object, "%s/value", path);
        if (s->value < 0) rc = hdf5_fail(err, "%s: cannot create dataset %s", w->path, object);
        else rc = write_unit(w, s->value, SERIES[kind].unit, object, err);
    }
    s->n_frames = 0;
    hdf5_close(group);
    return rc;
}

/* /particles/replica_NNNN and /observables/replica_NNNN with all their
 * time series, for every replica. */
static int create_replicas(h5md_writer *w, const h5md_layout *layout, dm_error *err)
{
    hid_t particles = create_group(w, w->file, "particles", "/particles", err);
    hid_t observables = particles < 0 ? -1 : create_group(w, w->file, "observables",
                                                          "/observables", err);
    int rc = observables < 0 ? -1 : 0;
    for (int r = 0; rc == 0 && r < w->n_replicas; r++) {
        rc = create_particles_group(w, particles, r, layout, err);
        char path[OBJECT_PATH_MAX];
        replica_group_path(path, sizeof path, "observables", r);
        hid_t replica_observables = -1, replica_particles = -1;
        if (rc == 0) {
            replica_observables = create_group(w, observables, strrchr(path, '/') + 1, path, err);
            if (replica_observables < 0) rc = -1;
        }
        if (rc == 0) {
            replica_group_path(path, sizeof path, "particles", r);
            replica_particles = H5Gopen2(particles, strrchr(path, '/') + 1, H5P_DEFAULT);
            if (replica_particles < 0) rc = hdf5_fail(err, "%s: cannot open %s", w->path, path);
        }
        for (int k = 0; rc == 0 && k < N_SERIES; k++)
            if (w->enabled[k])
                rc = create_series(w, SERIES[k].per_atom ? replica_particles : replica_observables,
                                   r, k, err);
        hdf5_close(replica_particles);
        hdf5_close(replica_observables);
    }
    hdf5_close(observables);
    hdf5_close(particles);
    return rc;
}

int h5md_create(h5md_writer **out, const char *path, const h5md_layout *layout, dm_error *err)
{
    *out = NULL;
    if (check_layout(path, layout, err)) return -1;
    h5md_writer *w = writer_new(path, layout, err);
    if (!w) return -1;

    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = 0;
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) rc = hdf5_fail(err, "%s: cannot create the H5MD file", path);
    if (rc == 0) rc = create_metadata(w, layout->author, err);
    if (rc == 0) rc = create_replicas(w, layout, err);
    if (rc == 0 && H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        rc = hdf5_fail(err, "%s: cannot flush the new file", path);
    if (rc != 0) writer_close_handles(w, -1, NULL);
    hdf5_quiet_end(&quiet);

    if (rc != 0) {
        writer_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reopening a file for a restart. */

static int check_h5md_version(h5md_writer *w, dm_error *err)
{
    hid_t h5md = H5Gopen2(w->file, "/h5md", H5P_DEFAULT);
    if (h5md < 0) return hdf5_fail(err, "%s: not an H5MD file (no group /h5md)", w->path);
    int version[2] = {0, 0};
    int rc = 0;
    if (hdf5_read_int_array_attribute(h5md, "version", version, 2) < 0)
        rc = hdf5_fail(err, "%s: cannot read attribute version of /h5md (expected 2 integers)",
                       w->path);
    else if (version[0] != 1)
        rc = dm_fail(err, "%s: H5MD version %d.%d, expected 1.x", w->path, version[0],
                     version[1]);
    hdf5_close(h5md);
    return rc;
}

/* The number of replica groups in /particles must be the run's. */
static int check_replica_count(h5md_writer *w, dm_error *err)
{
    hid_t particles = H5Gopen2(w->file, "/particles", H5P_DEFAULT);
    if (particles < 0) return hdf5_fail(err, "%s: cannot open group /particles", w->path);
    H5G_info_t info;
    int rc = 0;
    if (H5Gget_info(particles, &info) < 0)
        rc = hdf5_fail(err, "%s: cannot list group /particles", w->path);
    else if (info.nlinks != (hsize_t)w->n_replicas)
        rc = dm_fail(err, "%s: the file has %llu particle groups (replicas), the run has %d",
                     w->path, (unsigned long long)info.nlinks, w->n_replicas);
    hdf5_close(particles);
    return rc;
}

/* Opens the 1-D dataset `path` and checks it has n values; reads them. */
static int read_fixed_dataset(h5md_writer *w, const char *path, hid_t mem_type, int n, void *data,
                              dm_error *err)
{
    hid_t dset = H5Dopen2(w->file, path, H5P_DEFAULT);
    if (dset < 0) return hdf5_fail(err, "%s: cannot open dataset %s", w->path, path);
    hid_t space = H5Dget_space(dset);
    int rc = 0;
    hsize_t dims[1] = {0};
    if (space < 0 || H5Sget_simple_extent_ndims(space) != 1 ||
        H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        rc = hdf5_fail(err, "%s: dataset %s is not one-dimensional", w->path, path);
    else if (dims[0] != (hsize_t)n)
        rc = dm_fail(err, "%s: dataset %s has %llu atoms, the run's replica has %d", w->path,
                     path, (unsigned long long)dims[0], n);
    else if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = hdf5_fail(err, "%s: cannot read dataset %s", w->path, path);
    hdf5_close(space);
    hdf5_close(dset);
    return rc;
}

/* Species and masses of replica r must be the run's. */
static int check_particles(h5md_writer *w, int r, const h5md_layout *layout, dm_error *err)
{
    char group[OBJECT_PATH_MAX], path[OBJECT_PATH_MAX + 16];
    replica_group_path(group, sizeof group, "particles", r);
    int n = w->n_atoms[r];
    int *species = malloc((size_t)n * sizeof *species);
    double *masses = malloc((size_t)n * sizeof *masses);
    int rc = (!species || !masses) ? dm_fail(err, "%s: out of memory", w->path) : 0;
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/species", group);
        rc = read_fixed_dataset(w, path, H5T_NATIVE_INT, n, species, err);
    }
    const int *want_species = layout->species + w->first_atom[r];
    for (int i = 0; rc == 0 && i < n; i++)
        if (species[i] != want_species[i])
            rc = dm_fail(err, "%s: %s[%d] is %d, the run's atom has species %d", w->path, path, i,
                         species[i], want_species[i]);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/mass", group);
        rc = read_fixed_dataset(w, path, H5T_NATIVE_DOUBLE, n, masses, err);
    }
    const double *want_masses = layout->masses + w->first_atom[r];
    for (int i = 0; rc == 0 && i < n; i++)
        if (masses[i] != want_masses[i])
            rc = dm_fail(err, "%s: %s[%d] is %.17g amu, the run's atom has mass %.17g amu",
                         w->path, path, i, masses[i], want_masses[i]);
    free(species);
    free(masses);
    return rc;
}

/* The dimensions of an open dataset (rank must equal `rank`). */
static int dataset_dims(hid_t dset, int rank, hsize_t *dims)
{
    hid_t space = H5Dget_space(dset);
    int ok = space >= 0 && H5Sget_simple_extent_ndims(space) == rank &&
             H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
    hdf5_close(space);
    return ok ? 0 : -1;
}

/* Opens step, time and value of an existing series and checks their shapes. */
static int open_series(h5md_writer *w, int r, int kind, dm_error *err)
{
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    series_path(path, sizeof path, r, kind);
    time_series *s = series_of(w, r, kind);
    hid_t *ids[3] = {&s->step, &s->time, &s->value};
    static const char *const names[3] = {"step", "time", "value"};
    int per_atom = SERIES[kind].per_atom;
    hsize_t frames[3];
    for (int i = 0; i < 3; i++) {
        snprintf(object, sizeof object, "%s/%s", path, names[i]);
        htri_t exists = hdf5_link_exists(w->file, object);
        if (exists <= 0)
            return dm_fail(err, "%s: dataset %s is missing", w->path, object);
        *ids[i] = H5Dopen2(w->file, object, H5P_DEFAULT);
        if (*ids[i] < 0) return hdf5_fail(err, "%s: cannot open dataset %s", w->path, object);
        int rank = (i == 2 && per_atom) ? 3 : 1;
        hsize_t dims[3] = {0, 0, 0};
        if (dataset_dims(*ids[i], rank, dims) < 0)
            return dm_fail(err, "%s: dataset %s is not %d-dimensional", w->path, object, rank);
        if (rank == 3 && (dims[1] != (hsize_t)w->n_atoms[r] || dims[2] != 3))
            return dm_fail(err, "%s: dataset %s holds frames of %llu x %llu values, the run's "
                           "replica has %d atoms x 3", w->path, object,
                           (unsigned long long)dims[1], (unsigned long long)dims[2],
                           w->n_atoms[r]);
        frames[i] = dims[0];
    }
    if (frames[0] != frames[1] || frames[0] != frames[2])
        return dm_fail(err, "%s: %s has %llu steps, %llu times and %llu values; expected equal "
                       "counts", w->path, path, (unsigned long long)frames[0],
                       (unsigned long long)frames[1], (unsigned long long)frames[2]);
    s->n_frames = frames[0];
    return 0;
}

/* Sets the number of frames of dataset dset (first axis) to n. */
static herr_t set_frames(hid_t dset, int rank, hsize_t n)
{
    hsize_t dims[3] = {0, 0, 0};
    if (dataset_dims(dset, rank, dims) < 0) return -1;
    dims[0] = n;
    return H5Dset_extent(dset, dims);
}

/* Drops the frames of a series whose step is greater than last_step (the
 * steps increase, so they are a suffix). Raises *kept_last to the step of
 * the last frame kept. */
static int truncate_series(h5md_writer *w, int r, int kind, long last_step, int *kept_any,
                           long *kept_last, dm_error *err)
{
    char path[OBJECT_PATH_MAX];
    series_path(path, sizeof path, r, kind);
    time_series *s = series_of(w, r, kind);
    if (s->n_frames == 0) return 0;
    int64_t *steps = malloc(s->n_frames * sizeof *steps);
    if (!steps) return dm_fail(err, "%s: out of memory reading %s/step", w->path, path);
    int rc = 0;
    if (H5Dread(s->step, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) < 0)
        rc = hdf5_fail(err, "%s: cannot read dataset %s/step", w->path, path);
    hsize_t keep = 0;
    while (rc == 0 && keep < s->n_frames && steps[keep] <= last_step) keep++;
    if (rc == 0 && keep > 0) {
        if (!*kept_any || steps[keep - 1] > *kept_last) *kept_last = (long)steps[keep - 1];
        *kept_any = 1;
    }
    if (rc == 0 && keep < s->n_frames) {
        int value_rank = SERIES[kind].per_atom ? 3 : 1;
        if (set_frames(s->step, 1, keep) < 0 || set_frames(s->time, 1, keep) < 0 ||
            set_frames(s->value, value_rank, keep) < 0)
            rc = hdf5_fail(err, "%s: cannot truncate %s to %llu frames", w->path, path,
                           (unsigned long long)keep);
        else
            s->n_frames = keep;
    }
    free(steps);
    return rc;
}

/* The time series in the file must be the ones the run writes. */
static int check_series_present(h5md_writer *w, int r, dm_error *err)
{
    for (int k = 0; k < N_SERIES; k++) {
        char path[OBJECT_PATH_MAX];
        series_path(path, sizeof path, r, k);
        htri_t exists = hdf5_link_exists(w->file, path);
        if (exists < 0) return hdf5_fail(err, "%s: cannot look up %s", w->path, path);
        if (exists && !w->enabled[k])
            return dm_fail(err, "%s: the file has %s, but the run does not write %s", w->path,
                           path, SERIES[k].name);
        if (!exists && w->enabled[k])
            return dm_fail(err, "%s: the file has no %s, but the run writes %s", w->path, path,
                           SERIES[k].name);
    }
    return 0;
}

static int open_existing(h5md_writer *w, const h5md_layout *layout, long last_step,
                         dm_error *err)
{
    struct stat st;
    if (stat(w->path, &st) != 0)
        return dm_fail(err, "%s: cannot open the trajectory to append to it: %s", w->path,
                       strerror(errno));
    htri_t is_hdf5 = H5Fis_hdf5(w->path);
    if (is_hdf5 < 0) return hdf5_fail(err, "%s: cannot open the file to append to it", w->path);
    if (is_hdf5 == 0) return dm_fail(err, "%s: not an HDF5 file", w->path);
    w->file = H5Fopen(w->path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (w->file < 0) return hdf5_fail(err, "%s: cannot open the file for appending", w->path);
    if (check_h5md_version(w, err) || check_replica_count(w, err)) return -1;
    for (int r = 0; r < w->n_replicas; r++) {
        char group[OBJECT_PATH_MAX];
        replica_group_path(group, sizeof group, "particles", r);
        htri_t exists = hdf5_link_exists(w->file, group);
        if (exists <= 0)
            return dm_fail(err, "%s: group %s is missing (the run has %d replicas)", w->path,
                           group, w->n_replicas);
        if (check_particles(w, r, layout, err) || check_series_present(w, r, err)) return -1;
        for (int k = 0; k < N_SERIES; k++)
            if (w->enabled[k] && open_series(w, r, k, err)) return -1;
    }
    int kept_any = 0;
    long kept_last = 0;
    for (int r = 0; r < w->n_replicas; r++)
        for (int k = 0; k < N_SERIES; k++)
            if (w->enabled[k] &&
                truncate_series(w, r, k, last_step, &kept_any, &kept_last, err))
                return -1;
    w->has_frames = kept_any;
    w->last_step = kept_last;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        return hdf5_fail(err, "%s: cannot flush the truncated file", w->path);
    return 0;
}

int h5md_open_append(h5md_writer **out, const char *path, const h5md_layout *layout,
                     long last_step, dm_error *err)
{
    *out = NULL;
    if (check_layout(path, layout, err)) return -1;
    h5md_writer *w = writer_new(path, layout, err);
    if (!w) return -1;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = open_existing(w, layout, last_step, err);
    if (rc != 0) writer_close_handles(w, -1, NULL);
    hdf5_quiet_end(&quiet);
    if (rc != 0) {
        writer_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing frames. */

/* Writes `data` (one frame: item dims rank-1 of them) as row `row` of dset,
 * extending it to row + 1 rows. */
static herr_t append_row(hid_t dset, hsize_t row, int rank, const hsize_t *item, hid_t mem_type,
                         const void *data)
{
    hsize_t extent[3] = {row + 1}, start[3] = {row, 0, 0}, count[3] = {1};
    for (int d = 1; d < rank; d++) extent[d] = count[d] = item[d - 1];
    if (H5Dset_extent(dset, extent) < 0) return -1;
    hid_t file_space = H5Dget_space(dset);
    hid_t mem_space = H5Screate_simple(rank, count, NULL);
    herr_t status = (file_space < 0 || mem_space < 0) ? -1 : 0;
    if (status >= 0)
        status = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (status >= 0) status = H5Dwrite(dset, mem_type, mem_space, file_space, H5P_DEFAULT, data);
    if (hdf5_close(mem_space) < 0 || hdf5_close(file_space) < 0) status = -1;
    return status;
}

static int append_to_series(h5md_writer *w, int r, int kind, int64_t step, double time_ps,
                            const double *value, dm_error *err)
{
    time_series *s = series_of(w, r, kind);
    hsize_t item[2] = {(hsize_t)w->n_atoms[r], 3};
    int value_rank = SERIES[kind].per_atom ? 3 : 1;
    const char *failed = NULL;
    if (append_row(s->value, s->n_frames, value_rank, item, H5T_NATIVE_DOUBLE, value) < 0)
        failed = "value";
    else if (append_row(s->time, s->n_frames, 1, NULL, H5T_NATIVE_DOUBLE, &time_ps) < 0)
        failed = "time";
    else if (append_row(s->step, s->n_frames, 1, NULL, H5T_NATIVE_INT64, &step) < 0)
        failed = "step";
    if (failed) {
        char path[OBJECT_PATH_MAX];
        series_path(path, sizeof path, r, kind);
        return hdf5_fail(err, "%s: cannot append frame %llu (step %lld) to %s/%s", w->path,
                         (unsigned long long)s->n_frames, (long long)step, path, failed);
    }
    s->n_frames++;
    return 0;
}

static int check_frame(const h5md_writer *w, const h5md_frame *frame, dm_error *err)
{
    if (!frame) return dm_fail(err, "%s: no frame given", w->path);
    if (!frame->positions || (w->enabled[SERIES_VELOCITY] && !frame->velocities) ||
        (w->enabled[SERIES_FORCE] && !frame->forces))
        return dm_fail(err, "%s: frame at step %ld lacks positions%s%s", w->path, frame->step,
                       w->enabled[SERIES_VELOCITY] ? ", velocities" : "",
                       w->enabled[SERIES_FORCE] ? " or forces" : "");
    if (!frame->potential_energy || !frame->kinetic_energy || !frame->temperature)
        return dm_fail(err, "%s: frame at step %ld lacks energies or temperatures", w->path,
                       frame->step);
    if (w->has_frames && frame->step <= w->last_step)
        return dm_fail(err, "%s: frame at step %ld follows step %ld; H5MD steps must increase",
                       w->path, frame->step, w->last_step);
    return 0;
}

/* Every series of replica r gets one row. */
static int write_replica_frame(h5md_writer *w, int r, const h5md_frame *frame, double time_ps,
                               dm_error *err)
{
    long atom3 = 3 * w->first_atom[r];
    int n3 = 3 * w->n_atoms[r];
    int64_t step = frame->step;
    double total = frame->potential_energy[r] + frame->kinetic_energy[r];
    for (int k = 0; k < N_SERIES; k++) {
        if (!w->enabled[k]) continue;
        const double *value = NULL;
        switch (k) {
        case SERIES_POSITION: value = frame->positions + atom3; break;
        case SERIES_VELOCITY:
            for (int i = 0; i < n3; i++) w->scratch[i] = frame->velocities[atom3 + i] * FS_PER_PS;
            value = w->scratch;
            break;
        case SERIES_FORCE: value = frame->forces + atom3; break;
        case SERIES_POTENTIAL_ENERGY: value = &frame->potential_energy[r]; break;
        case SERIES_KINETIC_ENERGY: value = &frame->kinetic_energy[r]; break;
        case SERIES_TOTAL_ENERGY: value = &total; break;
        case SERIES_TEMPERATURE: value = &frame->temperature[r]; break;
        }
        if (append_to_series(w, r, k, step, time_ps, value, err)) return -1;
    }
    return 0;
}

int h5md_write_frame(h5md_writer *w, const h5md_frame *frame, dm_error *err)
{
    if (!w) return dm_fail(err, "h5md: no writer");
    if (w->broken)
        return dm_fail(err, "%s: an earlier frame failed to write; no further frames accepted",
                       w->path);
    if (check_frame(w, frame, err)) return -1;
    double time_ps = frame->time_fs / FS_PER_PS;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = 0;
    for (int r = 0; rc == 0 && r < w->n_replicas; r++)
        rc = write_replica_frame(w, r, frame, time_ps, err);
    hdf5_quiet_end(&quiet);
    if (rc != 0) {
        w->broken = 1;
        return -1;
    }
    w->has_frames = 1;
    w->last_step = frame->step;
    return 0;
}

int h5md_flush(h5md_writer *w, dm_error *err)
{
    if (!w) return dm_fail(err, "h5md: no writer");
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = 0;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        rc = hdf5_fail(err, "%s: cannot flush the file", w->path);
    hdf5_quiet_end(&quiet);
    return rc;
}

int h5md_close(h5md_writer *w, dm_error *err)
{
    if (!w) return 0;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = 0;
    if (w->file >= 0 && H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        rc = hdf5_fail(err, "%s: cannot flush the file", w->path);
    rc = writer_close_handles(w, rc, err);
    hdf5_quiet_end(&quiet);
    writer_free(w);
    return rc;
}
