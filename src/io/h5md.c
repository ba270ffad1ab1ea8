/* h5md.c — trajectories in H5MD 1.1 (de Buyl, Colberg, Höfling, Comp. Phys.
 * Comm. 185, 1546 (2014); https://www.nongnu.org/h5md/h5md.html), one
 * particles group per replica.
 *
 * Layout (R replicas, N atoms of a replica, F frames so far):
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
 *        force      (optional)    same, value +unit "kJ mol-1 Angstrom-1"
 *   /observables/potential_energy, kinetic_energy, total_energy:
 *                                 step int64[F]; time float64[F] +unit "ps";
 *                                 value float64[F][R] +unit "eV"
 *                temperature:     the same, value +unit "K"
 *                <extra>:         the layout's extra observables (h5md_series_spec):
 *                                 the same, value float64[F][R] or int64[F][R]
 *                                 ([F][R][K] with K = columns > 1),
 *                                 +unit when the spec gives one
 *   /parameters/<group>/<name>    time-independent datasets (h5md_write_parameters),
 *                                 float64 or int64, rank 1 or 2, +unit when given
 * An observable is one flat time series whose value has one column per
 * replica: column r belongs to /particles/replica_NNNN with NNNN = r.
 *
 * Time-independent data go to /parameters, which H5MD 1.1 leaves to the
 * application, not to /observables (where H5MD would allow a plain dataset):
 * MDAnalysis (2.4.2) reads observables[name]["value"][frame] for every member
 * of /observables and fails on anything else. h5md_write_parameters replaces
 * the whole group, so a restarted run rewrites it; h5md_open_append leaves
 * /parameters as it is.
 *
 * Shared step and time. Every time series of a file has the same frames (one
 * row per h5md_write_frame). H5MD 1.1 allows elements sampled at equal times
 * to share them: "step and time of one element may be hard links to the step
 * and time datasets of a different element". So a file holds ONE step and ONE
 * time dataset, those of /particles/replica_0000/position (position is always
 * written, so that element always exists); the step and time
 * of every other element (position, velocity and force of every replica, and
 * every observable) are HDF5 hard links to them. A reader sees an ordinary
 * step and time in every group; a frame extends those two datasets once.
 * Step values increase strictly. h5md_open_append checks the links and
 * refuses a file that lacks them, or that has the per-replica observable
 * groups of earlier versions (it names the missing /observables/<name>), or
 * whose /observables holds a series the run does not write (extra
 * observables are part of the layout) or lacks one it writes.
 *
 * Units. The engine works in Å, fs, eV, amu, K. The file stores
 *   time [ps]            = time [fs] / 1000
 *   velocity [Å/ps]      = velocity [Å/fs] × 1000
 *   force [kJ/(mol Å)]   = force [eV/Å] × 96.4853321233100184
 *                          (1 eV = e N_A / 1000 kJ/mol, exact with the SI
 *                          (CODATA 2018) values e = 1.602176634e-19 C and
 *                          N_A = 6.02214076e23 /mol)
 * and everything else as the engine gives it (positions Å, energies eV,
 * temperature K, masses amu); total_energy = potential + kinetic.
 * `unit` attributes are variable-length ASCII strings, as the H5MD units
 * module prescribes; we do not declare that module (its system spells
 * Ångström "Ang" and amu "u"), and use the spellings MDAnalysis recognises.
 * Forces are not in eV/Å because MDAnalysis knows no eV-based force unit and
 * refuses a file that uses one, even with convert_units=False.
 *
 * Reading with MDAnalysis (checked against MDAnalysis 2.4.2, Debian's
 * python3-mdanalysis; see tests/python/test_h5md_readers.py):
 *   - It opens the files as they are: no unit registration, no patches.
 *     It cannot build a topology from them (it looks for
 *     /particles/trajectory): use Universe.empty(n_atoms) + load_new(file,
 *     format="H5MD"), or give a topology file. Positions, velocities and
 *     times are in its own units (Å, Å/ps, ps), and so are forces
 *     (kJ/(mol Å)): convert_units=True (the default) leaves them unchanged.
 *   - ts.data["potential_energy"] etc. hold the frame's row: one value per
 *     replica.
 *   - It reads the first group of /particles (replica_0000) only. To read
 *     replica k, give it a small file that holds a copy of /h5md, an
 *     external link /observables to this file's, and, as its only particles
 *     group, an external link to /particles/replica_k of this file (with
 *     h5py: v["particles/replica_k"] = h5py.ExternalLink(path,
 *     "/particles/replica_k"); tests/python/test_h5md_readers.py,
 *     replica_view).
 *
 * Storage. Time series are chunked along the frame axis: a chunk holds about
 * 32 KiB of frames (1 to 1024 frames). No compression.
 *
 * Crash safety. h5md_flush (H5Fflush) writes all data and metadata to the
 * file (to the operating system; no fsync): a process killed afterwards
 * leaves a valid file holding every frame written before the flush. Frames
 * written after the last flush may survive, wholly or in part (a frame
 * writes every value first, then time, then step); h5md_open_append counts
 * only the frames that every dataset holds. The file is created with HDF5's
 * default (earliest) format, so a killed writer leaves no "file is open for
 * writing" mark that a reader would refuse.
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
/* The time series of a file. */

enum series_kind {
    SERIES_POSITION, /* per atom, one element per replica in /particles */
    SERIES_VELOCITY,
    SERIES_FORCE,
    SERIES_POTENTIAL_ENERGY, /* per replica, one element in /observables */
    SERIES_KINETIC_ENERGY,
    SERIES_TOTAL_ENERGY,
    SERIES_TEMPERATURE,
    N_SERIES
};
#define N_PER_ATOM_SERIES 3 /* SERIES_POSITION .. SERIES_FORCE */

typedef struct series_spec {
    const char *name;
    const char *unit;   /* of value */
    int per_atom;       /* 1: /particles/replica_NNNN/<name>, value [F][N][3];
                           0: /observables/<name>, value [F][R] */
    double scale;       /* value in the file = value from the engine × scale */
} series_spec;

#define FS_PER_PS 1000.0
/* kJ/mol per eV: e N_A / 1000 with e = 1.602176634e-19 C, N_A = 6.02214076e23
 * /mol (exact since SI 2019), rounded to 18 significant digits. */
#define KJ_PER_MOL_PER_EV 96.4853321233100184

static const series_spec SERIES[N_SERIES] = {
    {"position", "Angstrom", 1, 1.0},
    {"velocity", "Angstrom ps-1", 1, FS_PER_PS},
    {"force", "kJ mol-1 Angstrom-1", 1, KJ_PER_MOL_PER_EV},
    {"potential_energy", "eV", 0, 1.0},
    {"kinetic_energy", "eV", 0, 1.0},
    {"total_energy", "eV", 0, 1.0},
    {"temperature", "K", 0, 1.0},
};

#define TIME_UNIT "ps"
#define MASS_UNIT "amu"
#define CHUNK_BYTES 32768
#define CHUNK_MAX_FRAMES 1024
#define OBJECT_PATH_MAX 160
/* The one step and time dataset of a file (the others are hard links). */
#define SHARED_ELEMENT "/particles/replica_0000/position"
#define SHARED_STEP SHARED_ELEMENT "/step"
#define SHARED_TIME SHARED_ELEMENT "/time"

struct h5md_writer {
    char *path;
    hid_t file;
    int n_replicas;
    int *n_atoms;          /* [n_replicas] */
    long *first_atom;      /* [n_replicas]: offset of the replica's atoms in frame arrays */
    int max_atoms;
    int enabled[N_SERIES];
    int n_extra;
    h5md_series_spec *extra; /* [n_extra], names and units copied */
    hid_t *extra_value;    /* [n_extra]; -1 when not open */
    hid_t step, time;      /* the shared datasets; -1 when not open */
    hid_t *value;          /* [n_replicas][N_PER_ATOM_SERIES], then [N_SERIES - N_PER_ATOM_SERIES]
                              for the observables; -1 when not open */
    hsize_t n_frames;      /* rows of every dataset */
    double *scratch;       /* [max(3 max_atoms, n_replicas)]: a row converted to file units */
    int has_frames;
    long last_step;        /* step of the last frame in the file (when has_frames) */
    int broken;            /* a write failed midway: the file may hold a partial frame */
};

/* The value dataset of series `kind` (of replica r when per atom). */
static hid_t *value_of(h5md_writer *w, int r, int kind)
{
    if (SERIES[kind].per_atom) return &w->value[(size_t)r * N_PER_ATOM_SERIES + (size_t)kind];
    return &w->value[(size_t)w->n_replicas * N_PER_ATOM_SERIES + (size_t)(kind - N_PER_ATOM_SERIES)];
}

static size_t n_value_datasets(const h5md_writer *w)
{
    return (size_t)w->n_replicas * N_PER_ATOM_SERIES + (N_SERIES - N_PER_ATOM_SERIES);
}

static void replica_group_path(char *buf, size_t size, int replica)
{
    snprintf(buf, size, "/particles/replica_%04d", replica);
}

/* The element (group) of series `kind`; r is ignored for observables. */
static void element_path(char *buf, size_t size, int r, int kind)
{
    if (SERIES[kind].per_atom)
        snprintf(buf, size, "/particles/replica_%04d/%s", r, SERIES[kind].name);
    else
        snprintf(buf, size, "/observables/%s", SERIES[kind].name);
}

static void extra_path(const h5md_writer *w, char *buf, size_t size, int i)
{
    snprintf(buf, size, "/observables/%s", w->extra[i].name);
}

/* The shape of one row of extra observable i: [R] (rank 2) or [R][K] (rank 3). */
static int extra_row_shape(const h5md_writer *w, int i, hsize_t item[2])
{
    item[0] = (hsize_t)w->n_replicas;
    item[1] = (hsize_t)w->extra[i].columns;
    return w->extra[i].columns > 1 ? 3 : 2;
}

static hid_t file_type_of(h5md_type type)
{
    return type == H5MD_INT64 ? H5T_STD_I64LE : H5T_IEEE_F64LE;
}

static hid_t mem_type_of(h5md_type type)
{
    return type == H5MD_INT64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
}

/* Frames per chunk for rows of frame_bytes bytes: about CHUNK_BYTES. */
static hsize_t chunk_frames(hsize_t frame_bytes)
{
    hsize_t frames = CHUNK_BYTES / frame_bytes;
    if (frames < 1) frames = 1;
    if (frames > CHUNK_MAX_FRAMES) frames = CHUNK_MAX_FRAMES;
    return frames;
}

/* The shape of one row of a value dataset: rank - 1 dimensions in item. */
static int row_shape(const h5md_writer *w, int r, int kind, hsize_t item[2])
{
    if (SERIES[kind].per_atom) {
        item[0] = (hsize_t)w->n_atoms[r];
        item[1] = 3;
        return 3;
    }
    item[0] = (hsize_t)w->n_replicas;
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Writer allocation. */

#define NAME_MAX_CHARS 100

/* A name of a dataset or group we create below a fixed parent: 1 to
 * NAME_MAX_CHARS characters, no '/', not "." or "..". */
static int valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= NAME_MAX_CHARS && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* Extra observables: valid, distinct names that are not standard ones. */
static int check_extra(const char *path, const h5md_layout *layout, dm_error *err)
{
    if (layout->n_extra < 0 || (layout->n_extra > 0 && !layout->extra))
        return dm_fail(err, "%s: the layout declares %d extra observables but gives none", path,
                       layout->n_extra);
    for (int i = 0; i < layout->n_extra; i++) {
        const h5md_series_spec *e = &layout->extra[i];
        if (!valid_name(e->name))
            return dm_fail(err, "%s: extra observable %d: expected a name of 1 to %d characters "
                           "without '/', got '%s'", path, i, NAME_MAX_CHARS,
                           e->name ? e->name : "(null)");
        if (e->type != H5MD_FLOAT64 && e->type != H5MD_INT64)
            return dm_fail(err, "%s: extra observable '%s': unknown type %d", path, e->name,
                           (int)e->type);
        if (e->columns < 0)
            return dm_fail(err, "%s: extra observable '%s': expected columns >= 0, got %d", path,
                           e->name, e->columns);
        for (int k = N_PER_ATOM_SERIES; k < N_SERIES; k++)
            if (strcmp(e->name, SERIES[k].name) == 0)
                return dm_fail(err, "%s: extra observable '%s' is a standard observable", path,
                               e->name);
        for (int j = 0; j < i; j++)
            if (strcmp(e->name, layout->extra[j].name) == 0)
                return dm_fail(err, "%s: extra observable '%s' is declared twice", path, e->name);
    }
    return 0;
}

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
    return check_extra(path, layout, err);
}

static void writer_free(h5md_writer *w)
{
    if (!w) return;
    free(w->path);
    free(w->n_atoms);
    free(w->first_atom);
    free(w->value);
    free(w->scratch);
    for (int i = 0; w->extra && i < w->n_extra; i++) {
        free((char *)w->extra[i].name);
        free((char *)w->extra[i].unit);
    }
    free(w->extra);
    free(w->extra_value);
    free(w);
}

static char *copy_string(const char *s)
{
    char *c = malloc(strlen(s) + 1);
    if (c) strcpy(c, s);
    return c;
}

/* The layout's extra observables, copied into the writer. */
static int copy_extra(h5md_writer *w, const h5md_layout *layout)
{
    int n = layout->n_extra;
    w->extra = calloc((size_t)n + 1, sizeof *w->extra);
    w->extra_value = malloc(((size_t)n + 1) * sizeof *w->extra_value);
    if (!w->extra || !w->extra_value) return -1;
    w->n_extra = n;
    for (int i = 0; i < n; i++) w->extra_value[i] = -1;
    for (int i = 0; i < n; i++) {
        const h5md_series_spec *e = &layout->extra[i];
        w->extra[i].type = e->type;
        w->extra[i].columns = e->columns > 1 ? e->columns : 1;
        w->extra[i].name = copy_string(e->name);
        w->extra[i].unit = e->unit ? copy_string(e->unit) : NULL;
        if (!w->extra[i].name || (e->unit && !w->extra[i].unit)) return -1;
    }
    return 0;
}

static h5md_writer *writer_new(const char *path, const h5md_layout *layout, dm_error *err)
{
    h5md_writer *w = calloc(1, sizeof *w);
    int n = layout->n_replicas;
    if (w) {
        w->file = w->step = w->time = -1;
        w->n_replicas = n;
        w->path = malloc(strlen(path) + 1);
        w->n_atoms = malloc((size_t)n * sizeof *w->n_atoms);
        w->first_atom = malloc((size_t)n * sizeof *w->first_atom);
        w->value = malloc(n_value_datasets(w) * sizeof *w->value);
    }
    if (!w || !w->path || !w->n_atoms || !w->first_atom || !w->value) {
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
    }
    for (size_t i = 0; i < n_value_datasets(w); i++) w->value[i] = -1;
    for (int k = 0; k < N_SERIES; k++) w->enabled[k] = !SERIES[k].per_atom;
    w->enabled[SERIES_POSITION] = 1;
    w->enabled[SERIES_VELOCITY] = layout->write_velocity != 0;
    w->enabled[SERIES_FORCE] = layout->write_force != 0;
    size_t scratch = 3 * (size_t)w->max_atoms > (size_t)n ? 3 * (size_t)w->max_atoms : (size_t)n;
    w->scratch = malloc(scratch * sizeof *w->scratch);
    if (!w->scratch || copy_extra(w, layout)) {
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
    for (size_t i = 0; i < n_value_datasets(w); i++) {
        if (hdf5_close(w->value[i]) < 0 && rc == 0)
            rc = hdf5_fail(err, "%s: cannot close a value dataset", w->path);
        w->value[i] = -1;
    }
    for (int i = 0; i < w->n_extra; i++) {
        if (hdf5_close(w->extra_value[i]) < 0 && rc == 0)
            rc = hdf5_fail(err, "%s: cannot close a value dataset", w->path);
        w->extra_value[i] = -1;
    }
    if ((hdf5_close(w->step) < 0 || hdf5_close(w->time) < 0) && rc == 0)
        rc = hdf5_fail(err, "%s: cannot close %s or %s", w->path, SHARED_STEP, SHARED_TIME);
    w->step = w->time = -1;
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

/* /particles/replica_NNNN with box, species and mass; returns the open group. */
static hid_t create_particles_group(h5md_writer *w, hid_t particles, int r,
                                    const h5md_layout *layout, dm_error *err)
{
    static const char *const boundary[3] = {"none", "none", "none"};
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    replica_group_path(path, sizeof path, r);
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
    if (rc != 0) {
        hdf5_close(group);
        return -1;
    }
    return group;
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

/* The shared step and time datasets, in the element `group`
 * (SHARED_ELEMENT). */
static int create_shared_step_time(h5md_writer *w, hid_t group, dm_error *err)
{
    hsize_t chunk = chunk_frames(sizeof(int64_t));
    w->step = create_extendable(group, "step", H5T_STD_I64LE, 1, NULL, chunk);
    if (w->step < 0) return hdf5_fail(err, "%s: cannot create dataset %s", w->path, SHARED_STEP);
    w->time = create_extendable(group, "time", H5T_IEEE_F64LE, 1, NULL, chunk);
    if (w->time < 0) return hdf5_fail(err, "%s: cannot create dataset %s", w->path, SHARED_TIME);
    return write_unit(w, w->time, TIME_UNIT, SHARED_TIME, err);
}

/* step and time of an element as hard links to the shared datasets. */
static int link_shared_step_time(h5md_writer *w, hid_t group, const char *path, dm_error *err)
{
    if (H5Lcreate_hard(w->file, SHARED_STEP, group, "step", H5P_DEFAULT, H5P_DEFAULT) < 0)
        return hdf5_fail(err, "%s: cannot link %s/step to %s", w->path, path, SHARED_STEP);
    if (H5Lcreate_hard(w->file, SHARED_TIME, group, "time", H5P_DEFAULT, H5P_DEFAULT) < 0)
        return hdf5_fail(err, "%s: cannot link %s/time to %s", w->path, path, SHARED_TIME);
    return 0;
}

/* One time-dependent element `path` (group `name` in `parent`): step, time
 * and an empty value [0][item...] of file_type (8-byte values), opened into
 * *value; unit NULL: none. The first element created (replica 0's position)
 * owns the shared step and time. */
static int create_element(h5md_writer *w, hid_t parent, const char *name, const char *path,
                          hid_t file_type, int rank, const hsize_t *item, const char *unit,
                          hid_t *value, dm_error *err)
{
    char object[OBJECT_PATH_MAX + 16];
    hid_t group = create_group(w, parent, name, path, err);
    if (group < 0) return -1;
    int rc = w->step < 0 ? create_shared_step_time(w, group, err)
                         : link_shared_step_time(w, group, path, err);
    if (rc == 0) {
        hsize_t row_bytes = item[0] * (rank == 3 ? item[1] : 1) * 8;
        *value = create_extendable(group, "value", file_type, rank, item,
                                   chunk_frames(row_bytes));
        snprintf(object, sizeof object, "%s/value", path);
        if (*value < 0) rc = hdf5_fail(err, "%s: cannot create dataset %s", w->path, object);
        else if (unit) rc = write_unit(w, *value, unit, object, err);
    }
    hdf5_close(group);
    return rc;
}

/* A standard series (of replica r when per atom); `parent` is the replica's
 * particles group or /observables. */
static int create_series(h5md_writer *w, hid_t parent, int r, int kind, dm_error *err)
{
    char path[OBJECT_PATH_MAX];
    element_path(path, sizeof path, r, kind);
    hsize_t item[2];
    int rank = row_shape(w, r, kind, item);
    return create_element(w, parent, SERIES[kind].name, path, H5T_IEEE_F64LE, rank, item,
                          SERIES[kind].unit, value_of(w, r, kind), err);
}

/* Extra observable i in /observables: value [F][R] or [F][R][K]. */
static int create_extra_series(h5md_writer *w, hid_t observables, int i, dm_error *err)
{
    char path[OBJECT_PATH_MAX];
    extra_path(w, path, sizeof path, i);
    hsize_t item[2];
    int rank = extra_row_shape(w, i, item);
    return create_element(w, observables, w->extra[i].name, path, file_type_of(w->extra[i].type),
                          rank, item, w->extra[i].unit, &w->extra_value[i], err);
}

/* /particles/replica_NNNN with its time series, for every replica. */
static int create_particles(h5md_writer *w, const h5md_layout *layout, dm_error *err)
{
    hid_t particles = create_group(w, w->file, "particles", "/particles", err);
    int rc = particles < 0 ? -1 : 0;
    for (int r = 0; rc == 0 && r < w->n_replicas; r++) {
        hid_t group = create_particles_group(w, particles, r, layout, err);
        if (group < 0) rc = -1;
        for (int k = 0; rc == 0 && k < N_PER_ATOM_SERIES; k++)
            if (w->enabled[k]) rc = create_series(w, group, r, k, err);
        hdf5_close(group);
    }
    hdf5_close(particles);
    return rc;
}

/* /observables/<name> for every observable. */
static int create_observables(h5md_writer *w, dm_error *err)
{
    hid_t observables = create_group(w, w->file, "observables", "/observables", err);
    int rc = observables < 0 ? -1 : 0;
    for (int k = N_PER_ATOM_SERIES; rc == 0 && k < N_SERIES; k++)
        rc = create_series(w, observables, 0, k, err);
    for (int i = 0; rc == 0 && i < w->n_extra; i++)
        rc = create_extra_series(w, observables, i, err);
    hdf5_close(observables);
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
    if (rc == 0) rc = create_particles(w, layout, err);
    if (rc == 0) rc = create_observables(w, err);
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
    replica_group_path(group, sizeof group, r);
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

/* The time series in the file must be the ones the run writes. */
static int check_series_present(h5md_writer *w, int r, int first_kind, int end_kind,
                                dm_error *err)
{
    for (int k = first_kind; k < end_kind; k++) {
        char path[OBJECT_PATH_MAX];
        element_path(path, sizeof path, r, k);
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

/* The dimensions of an open dataset (rank must equal `rank`). */
static int dataset_dims(hid_t dset, int rank, hsize_t *dims)
{
    hid_t space = H5Dget_space(dset);
    int ok = space >= 0 && H5Sget_simple_extent_ndims(space) == rank &&
             H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
    hdf5_close(space);
    return ok ? 0 : -1;
}

/* Which object a path names: its address (HDF5 1.10) or token (1.12+). */
typedef struct object_identity {
#if H5_VERSION_GE(1, 12, 0)
    H5O_token_t token;
#else
    haddr_t addr;
#endif
} object_identity;

static herr_t identify_object(hid_t file, const char *path, object_identity *id)
{
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info_by_name3(file, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
    id->token = info.token;
#else
    H5O_info_t info;
    if (H5Oget_info_by_name2(file, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
    id->addr = info.addr;
#endif
    return 0;
}

static int same_object(hid_t file, const object_identity *a, const object_identity *b)
{
#if H5_VERSION_GE(1, 12, 0)
    int cmp = 1;
    return H5Otoken_cmp(file, &a->token, &b->token, &cmp) >= 0 && cmp == 0;
#else
    (void)file;
    return a->addr == b->addr;
#endif
}

/* Opens the shared step and time; *frames receives the smaller length. */
static int open_shared_step_time(h5md_writer *w, object_identity ids[2], hsize_t *frames,
                                 dm_error *err)
{
    static const char *const paths[2] = {SHARED_STEP, SHARED_TIME};
    hid_t *dsets[2] = {&w->step, &w->time};
    *frames = 0;
    for (int i = 0; i < 2; i++) {
        htri_t exists = hdf5_link_exists(w->file, paths[i]);
        if (exists <= 0) return dm_fail(err, "%s: dataset %s is missing", w->path, paths[i]);
        *dsets[i] = H5Dopen2(w->file, paths[i], H5P_DEFAULT);
        if (*dsets[i] < 0) return hdf5_fail(err, "%s: cannot open dataset %s", w->path, paths[i]);
        hsize_t dims[1] = {0};
        if (dataset_dims(*dsets[i], 1, dims) < 0)
            return dm_fail(err, "%s: dataset %s is not one-dimensional", w->path, paths[i]);
        if (i == 0 || dims[0] < *frames) *frames = dims[0];
        if (identify_object(w->file, paths[i], &ids[i]) < 0)
            return hdf5_fail(err, "%s: cannot inspect dataset %s", w->path, paths[i]);
    }
    return 0;
}

/* An element's step and time must be the shared ones (hard links to them):
 * truncating and extending those then covers the element. */
static int check_shares_step_time(h5md_writer *w, const char *path, const object_identity ids[2],
                                  dm_error *err)
{
    static const char *const names[2] = {"step", "time"};
    static const char *const shared[2] = {SHARED_STEP, SHARED_TIME};
    for (int i = 0; i < 2; i++) {
        char object[OBJECT_PATH_MAX + 16];
        snprintf(object, sizeof object, "%s/%s", path, names[i]);
        object_identity id;
        htri_t exists = hdf5_link_exists(w->file, object);
        if (exists <= 0) return dm_fail(err, "%s: dataset %s is missing", w->path, object);
        if (identify_object(w->file, object, &id) < 0)
            return hdf5_fail(err, "%s: cannot inspect dataset %s", w->path, object);
        if (!same_object(w->file, &id, &ids[i]))
            return dm_fail(err, "%s: %s is not a hard link to %s (the files distilmd writes share "
                           "one %s dataset)", w->path, object, shared[i], names[i]);
    }
    return 0;
}

/* Opens the value of an existing element and checks its row shape; lowers
 * *frames to its length when shorter. */
static int open_value(h5md_writer *w, int r, int kind, hsize_t *frames, dm_error *err)
{
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    element_path(path, sizeof path, r, kind);
    snprintf(object, sizeof object, "%s/value", path);
    htri_t exists = hdf5_link_exists(w->file, object);
    if (exists <= 0) return dm_fail(err, "%s: dataset %s is missing", w->path, object);
    hid_t *value = value_of(w, r, kind);
    *value = H5Dopen2(w->file, object, H5P_DEFAULT);
    if (*value < 0) return hdf5_fail(err, "%s: cannot open dataset %s", w->path, object);
    hsize_t item[2], dims[3] = {0, 0, 0};
    int rank = row_shape(w, r, kind, item);
    if (dataset_dims(*value, rank, dims) < 0)
        return dm_fail(err, "%s: dataset %s is not %d-dimensional", w->path, object, rank);
    if (rank == 3 && (dims[1] != item[0] || dims[2] != 3))
        return dm_fail(err, "%s: dataset %s holds frames of %llu x %llu values, the run's "
                       "replica has %d atoms x 3", w->path, object, (unsigned long long)dims[1],
                       (unsigned long long)dims[2], w->n_atoms[r]);
    if (rank == 2 && dims[1] != item[0])
        return dm_fail(err, "%s: dataset %s has %llu replica columns, the run has %d replicas",
                       w->path, object, (unsigned long long)dims[1], w->n_replicas);
    if (dims[0] < *frames) *frames = dims[0];
    return 0;
}

/* Opens the value of extra observable i and checks its shape [F][R] (or
 * [F][R][K]) and type (integer or floating point); lowers *frames to its
 * length. */
static int open_extra_value(h5md_writer *w, int i, hsize_t *frames, dm_error *err)
{
    char path[OBJECT_PATH_MAX], object[OBJECT_PATH_MAX + 16];
    extra_path(w, path, sizeof path, i);
    snprintf(object, sizeof object, "%s/value", path);
    htri_t exists = hdf5_link_exists(w->file, object);
    if (exists <= 0) return dm_fail(err, "%s: dataset %s is missing", w->path, object);
    hid_t value = w->extra_value[i] = H5Dopen2(w->file, object, H5P_DEFAULT);
    if (value < 0) return hdf5_fail(err, "%s: cannot open dataset %s", w->path, object);
    hsize_t item[2], dims[3] = {0, 0, 0};
    int rank = extra_row_shape(w, i, item);
    if (dataset_dims(value, rank, dims) < 0)
        return dm_fail(err, "%s: dataset %s is not %d-dimensional", w->path, object, rank);
    if (dims[1] != (hsize_t)w->n_replicas)
        return dm_fail(err, "%s: dataset %s has %llu replica columns, the run has %d replicas",
                       w->path, object, (unsigned long long)dims[1], w->n_replicas);
    if (rank == 3 && dims[2] != item[1])
        return dm_fail(err, "%s: dataset %s has %llu values per replica, the run writes %llu",
                       w->path, object, (unsigned long long)dims[2],
                       (unsigned long long)item[1]);
    hid_t type = H5Dget_type(value);
    H5T_class_t class = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    hdf5_close(type);
    H5T_class_t want = w->extra[i].type == H5MD_INT64 ? H5T_INTEGER : H5T_FLOAT;
    if (class != want)
        return dm_fail(err, "%s: dataset %s does not hold %s values, which the run writes",
                       w->path, object, want == H5T_INTEGER ? "integer" : "floating-point");
    if (dims[0] < *frames) *frames = dims[0];
    return 0;
}

/* Every element of the file: step and time shared, value of the right shape.
 * *frames: the number of frames that every dataset holds. */
static int open_elements(h5md_writer *w, hsize_t *frames, dm_error *err)
{
    object_identity ids[2];
    if (open_shared_step_time(w, ids, frames, err)) return -1;
    for (int r = 0; r < w->n_replicas; r++)
        for (int k = 0; k < N_SERIES; k++) {
            if (!w->enabled[k] || (!SERIES[k].per_atom && r > 0)) continue;
            char path[OBJECT_PATH_MAX];
            element_path(path, sizeof path, r, k);
            if (check_shares_step_time(w, path, ids, err) || open_value(w, r, k, frames, err))
                return -1;
        }
    for (int i = 0; i < w->n_extra; i++) {
        char path[OBJECT_PATH_MAX];
        extra_path(w, path, sizeof path, i);
        if (check_shares_step_time(w, path, ids, err) || open_extra_value(w, i, frames, err))
            return -1;
    }
    return 0;
}

/* The members of /observables must be the series the run writes: a series
 * left out would not be truncated and extended with the others. */
static int check_observables_known(h5md_writer *w, dm_error *err)
{
    hid_t observables = H5Gopen2(w->file, "/observables", H5P_DEFAULT);
    if (observables < 0) return hdf5_fail(err, "%s: cannot open group /observables", w->path);
    H5G_info_t info;
    int rc = 0;
    if (H5Gget_info(observables, &info) < 0)
        rc = hdf5_fail(err, "%s: cannot list group /observables", w->path);
    for (hsize_t k = 0; rc == 0 && k < info.nlinks; k++) {
        char name[NAME_MAX_CHARS + 2] = "";
        ssize_t n = H5Lget_name_by_idx(observables, ".", H5_INDEX_NAME, H5_ITER_INC, k, name,
                                       sizeof name, H5P_DEFAULT);
        if (n < 0) {
            rc = hdf5_fail(err, "%s: cannot list group /observables", w->path);
            break;
        }
        int known = 0;
        for (int s = N_PER_ATOM_SERIES; s < N_SERIES; s++) known |= !strcmp(name, SERIES[s].name);
        for (int i = 0; i < w->n_extra; i++) known |= !strcmp(name, w->extra[i].name);
        if (!known)
            rc = dm_fail(err, "%s: the file has /observables/%s%s, but the run does not write it",
                         w->path, name, (size_t)n > NAME_MAX_CHARS ? "..." : "");
    }
    hdf5_close(observables);
    return rc;
}

/* Sets the number of frames of dataset dset (first axis) to n. */
static herr_t set_frames(hid_t dset, hsize_t n)
{
    hsize_t dims[3] = {0, 0, 0};
    hid_t space = H5Dget_space(dset);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    herr_t status = (rank < 1 || rank > 3 || H5Sget_simple_extent_dims(space, dims, NULL) < 0)
                        ? -1
                        : 0;
    hdf5_close(space);
    if (status < 0) return -1;
    if (dims[0] == n) return 0;
    dims[0] = n;
    return H5Dset_extent(dset, dims);
}

/* Keeps the first `keep` frames of every dataset. */
static int truncate_all(h5md_writer *w, hsize_t keep, dm_error *err)
{
    for (size_t i = 0; i < n_value_datasets(w); i++)
        if (w->value[i] >= 0 && set_frames(w->value[i], keep) < 0)
            return hdf5_fail(err, "%s: cannot truncate a value dataset to %llu frames", w->path,
                             (unsigned long long)keep);
    for (int i = 0; i < w->n_extra; i++)
        if (set_frames(w->extra_value[i], keep) < 0)
            return hdf5_fail(err, "%s: cannot truncate /observables/%s/value to %llu frames",
                             w->path, w->extra[i].name, (unsigned long long)keep);
    if (set_frames(w->time, keep) < 0 || set_frames(w->step, keep) < 0)
        return hdf5_fail(err, "%s: cannot truncate %s and %s to %llu frames", w->path,
                         SHARED_STEP, SHARED_TIME, (unsigned long long)keep);
    return 0;
}

/* Drops the frames whose step is greater than last_step (the steps
 * increase, so they are a suffix) and any frame that not every dataset
 * holds (the first `complete` frames are whole). */
static int truncate_after(h5md_writer *w, hsize_t complete, long last_step, dm_error *err)
{
    int64_t *steps = malloc((complete + 1) * sizeof *steps);
    if (!steps) return dm_fail(err, "%s: out of memory reading %s", w->path, SHARED_STEP);
    int rc = 0;
    hsize_t keep = 0;
    if (complete > 0) {
        hsize_t start[1] = {0}, count[1] = {complete};
        hid_t file_space = H5Dget_space(w->step);
        hid_t mem_space = H5Screate_simple(1, count, NULL);
        if (file_space < 0 || mem_space < 0 ||
            H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(w->step, H5T_NATIVE_INT64, mem_space, file_space, H5P_DEFAULT, steps) < 0)
            rc = hdf5_fail(err, "%s: cannot read dataset %s", w->path, SHARED_STEP);
        hdf5_close(mem_space);
        hdf5_close(file_space);
    }
    while (rc == 0 && keep < complete && steps[keep] <= last_step) keep++;
    if (rc == 0) rc = truncate_all(w, keep, err);
    if (rc == 0) {
        w->n_frames = keep;
        w->has_frames = keep > 0;
        w->last_step = keep > 0 ? (long)steps[keep - 1] : 0;
    }
    free(steps);
    return rc;
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
        replica_group_path(group, sizeof group, r);
        htri_t exists = hdf5_link_exists(w->file, group);
        if (exists <= 0)
            return dm_fail(err, "%s: group %s is missing (the run has %d replicas)", w->path,
                           group, w->n_replicas);
        if (check_particles(w, r, layout, err) ||
            check_series_present(w, r, 0, N_PER_ATOM_SERIES, err))
            return -1;
    }
    htri_t has_observables = hdf5_link_exists(w->file, "/observables");
    if (has_observables <= 0)
        return dm_fail(err, "%s: group /observables is missing", w->path);
    if (check_series_present(w, 0, N_PER_ATOM_SERIES, N_SERIES, err) ||
        check_observables_known(w, err))
        return -1;
    for (int i = 0; i < w->n_extra; i++) {
        char path[OBJECT_PATH_MAX];
        extra_path(w, path, sizeof path, i);
        htri_t exists = hdf5_link_exists(w->file, path);
        if (exists < 0) return hdf5_fail(err, "%s: cannot look up %s", w->path, path);
        if (!exists)
            return dm_fail(err, "%s: the file has no %s, but the run writes %s", w->path, path,
                           w->extra[i].name);
    }
    hsize_t complete = 0;
    if (open_elements(w, &complete, err) || truncate_after(w, complete, last_step, err))
        return -1;
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

/* Writes `data` (one row: item dims rank-1 of them) as row `row` of dset,
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
    for (int i = 0; i < w->n_extra; i++)
        if (!frame->extra || !frame->extra[i])
            return dm_fail(err, "%s: frame at step %ld lacks the values of /observables/%s",
                           w->path, frame->step, w->extra[i].name);
    if (w->has_frames && frame->step <= w->last_step)
        return dm_fail(err, "%s: frame at step %ld follows step %ld; H5MD steps must increase",
                       w->path, frame->step, w->last_step);
    return 0;
}

/* The frame's row of series `kind` (of replica r when per atom), in the
 * file's units: points into the frame or into w->scratch. */
static const double *row_values(h5md_writer *w, const h5md_frame *frame, int r, int kind)
{
    const double *source = NULL;
    size_t n = 0;
    if (SERIES[kind].per_atom) {
        const double *all = kind == SERIES_POSITION   ? frame->positions
                            : kind == SERIES_VELOCITY ? frame->velocities
                                                      : frame->forces;
        source = all + 3 * w->first_atom[r];
        n = 3 * (size_t)w->n_atoms[r];
    } else if (kind == SERIES_TOTAL_ENERGY) {
        for (int q = 0; q < w->n_replicas; q++)
            w->scratch[q] = frame->potential_energy[q] + frame->kinetic_energy[q];
        return w->scratch;
    } else {
        source = kind == SERIES_POTENTIAL_ENERGY ? frame->potential_energy
                 : kind == SERIES_KINETIC_ENERGY ? frame->kinetic_energy
                                                 : frame->temperature;
        n = (size_t)w->n_replicas;
    }
    if (SERIES[kind].scale == 1.0) return source;
    for (size_t i = 0; i < n; i++) w->scratch[i] = source[i] * SERIES[kind].scale;
    return w->scratch;
}

static int append_value(h5md_writer *w, const h5md_frame *frame, int r, int kind, dm_error *err)
{
    hsize_t item[2];
    int rank = row_shape(w, r, kind, item);
    const double *row = row_values(w, frame, r, kind);
    if (append_row(*value_of(w, r, kind), w->n_frames, rank, item, H5T_NATIVE_DOUBLE, row) < 0) {
        char path[OBJECT_PATH_MAX];
        element_path(path, sizeof path, r, kind);
        return hdf5_fail(err, "%s: cannot append frame %llu (step %ld) to %s/value", w->path,
                         (unsigned long long)w->n_frames, frame->step, path);
    }
    return 0;
}

/* Every value dataset gets one row, then the shared time and step. */
static int append_frame(h5md_writer *w, const h5md_frame *frame, dm_error *err)
{
    for (int r = 0; r < w->n_replicas; r++)
        for (int k = 0; k < N_PER_ATOM_SERIES; k++)
            if (w->enabled[k] && append_value(w, frame, r, k, err)) return -1;
    for (int k = N_PER_ATOM_SERIES; k < N_SERIES; k++)
        if (append_value(w, frame, 0, k, err)) return -1;
    for (int i = 0; i < w->n_extra; i++) {
        hsize_t item[2];
        int rank = extra_row_shape(w, i, item);
        if (append_row(w->extra_value[i], w->n_frames, rank, item, mem_type_of(w->extra[i].type),
                       frame->extra[i]) < 0)
            return hdf5_fail(err, "%s: cannot append frame %llu (step %ld) to "
                             "/observables/%s/value", w->path, (unsigned long long)w->n_frames,
                             frame->step, w->extra[i].name);
    }
    double time_ps = frame->time_fs / FS_PER_PS;
    int64_t step = frame->step;
    if (append_row(w->time, w->n_frames, 1, NULL, H5T_NATIVE_DOUBLE, &time_ps) < 0)
        return hdf5_fail(err, "%s: cannot append frame %llu (step %ld) to %s", w->path,
                         (unsigned long long)w->n_frames, frame->step, SHARED_TIME);
    if (append_row(w->step, w->n_frames, 1, NULL, H5T_NATIVE_INT64, &step) < 0)
        return hdf5_fail(err, "%s: cannot append frame %llu (step %ld) to %s", w->path,
                         (unsigned long long)w->n_frames, frame->step, SHARED_STEP);
    w->n_frames++;
    return 0;
}

int h5md_write_frame(h5md_writer *w, const h5md_frame *frame, dm_error *err)
{
    if (!w) return dm_fail(err, "h5md: no writer");
    if (w->broken)
        return dm_fail(err, "%s: an earlier frame failed to write; no further frames accepted",
                       w->path);
    if (check_frame(w, frame, err)) return -1;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = append_frame(w, frame, err);
    hdf5_quiet_end(&quiet);
    if (rc != 0) {
        w->broken = 1;
        return -1;
    }
    w->has_frames = 1;
    w->last_step = frame->step;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Time-independent datasets. */

static int check_fixed(const h5md_writer *w, const char *group, const h5md_fixed *d, int n,
                       dm_error *err)
{
    if (!valid_name(group))
        return dm_fail(err, "%s: expected a group name of 1 to %d characters without '/', got "
                       "'%s'", w->path, NAME_MAX_CHARS, group ? group : "(null)");
    if (n < 0 || (n > 0 && !d))
        return dm_fail(err, "%s: /parameters/%s: %d datasets declared but none given", w->path,
                       group, n);
    for (int i = 0; i < n; i++) {
        if (!valid_name(d[i].name))
            return dm_fail(err, "%s: /parameters/%s: dataset %d: expected a name of 1 to %d "
                           "characters without '/', got '%s'", w->path, group, i, NAME_MAX_CHARS,
                           d[i].name ? d[i].name : "(null)");
        int bad_dims = d[i].rank < 1 || d[i].rank > 2 || d[i].dims[0] < 0 ||
                       (d[i].rank == 2 && d[i].dims[1] < 0);
        if (bad_dims || (d[i].type != H5MD_FLOAT64 && d[i].type != H5MD_INT64))
            return dm_fail(err, "%s: /parameters/%s/%s: expected rank 1 or 2, sizes >= 0 and a "
                           "float64 or int64 type", w->path, group, d[i].name);
        long size = d[i].dims[0] * (d[i].rank == 2 ? d[i].dims[1] : 1);
        if (size > 0 && !d[i].data)
            return dm_fail(err, "%s: /parameters/%s/%s: no data given", w->path, group, d[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(d[i].name, d[j].name) == 0)
                return dm_fail(err, "%s: /parameters/%s/%s is given twice", w->path, group,
                               d[i].name);
    }
    return 0;
}

/* Opens /parameters, creating it when the file has none. */
static hid_t open_parameters(h5md_writer *w, dm_error *err)
{
    htri_t exists = hdf5_link_exists(w->file, "/parameters");
    if (exists < 0) {
        hdf5_fail(err, "%s: cannot look up /parameters", w->path);
        return -1;
    }
    if (!exists) return create_group(w, w->file, "parameters", "/parameters", err);
    hid_t g = H5Gopen2(w->file, "/parameters", H5P_DEFAULT);
    if (g < 0) hdf5_fail(err, "%s: cannot open group /parameters", w->path);
    return g;
}

/* One dataset of /parameters/<group> (contiguous, not extendable). */
static int write_fixed(h5md_writer *w, hid_t group, const char *group_path, const h5md_fixed *d,
                       dm_error *err)
{
    char path[2 * OBJECT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", group_path, d->name);
    hsize_t dims[2] = {(hsize_t)d->dims[0], d->rank == 2 ? (hsize_t)d->dims[1] : 1};
    hid_t space = H5Screate_simple(d->rank, dims, NULL);
    hid_t dset = space < 0 ? -1
                           : H5Dcreate2(group, d->name, file_type_of(d->type), space, H5P_DEFAULT,
                                        H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (dset < 0)
        rc = hdf5_fail(err, "%s: cannot create dataset %s", w->path, path);
    else if (dims[0] * dims[1] > 0 &&
             H5Dwrite(dset, mem_type_of(d->type), H5S_ALL, H5S_ALL, H5P_DEFAULT, d->data) < 0)
        rc = hdf5_fail(err, "%s: cannot write dataset %s", w->path, path);
    if (rc == 0 && d->unit) rc = write_unit(w, dset, d->unit, path, err);
    hdf5_close(dset);
    hdf5_close(space);
    return rc;
}

static int replace_parameters(h5md_writer *w, const char *name, const h5md_fixed *d, int n,
                              dm_error *err)
{
    char path[OBJECT_PATH_MAX];
    snprintf(path, sizeof path, "/parameters/%s", name);
    hid_t parameters = open_parameters(w, err);
    if (parameters < 0) return -1;
    int rc = 0;
    htri_t exists = hdf5_link_exists(parameters, name);
    if (exists < 0) rc = hdf5_fail(err, "%s: cannot look up %s", w->path, path);
    if (rc == 0 && exists > 0 && H5Ldelete(parameters, name, H5P_DEFAULT) < 0)
        rc = hdf5_fail(err, "%s: cannot remove the old %s", w->path, path);
    hid_t group = rc == 0 ? create_group(w, parameters, name, path, err) : -1;
    if (group < 0) rc = -1;
    for (int i = 0; rc == 0 && i < n; i++) rc = write_fixed(w, group, path, &d[i], err);
    hdf5_close(group);
    hdf5_close(parameters);
    return rc;
}

int h5md_write_parameters(h5md_writer *w, const char *group, const h5md_fixed *datasets, int n,
                          dm_error *err)
{
    if (!w) return dm_fail(err, "h5md: no writer");
    if (check_fixed(w, group, datasets, n, err)) return -1;
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = replace_parameters(w, group, datasets, n, err);
    hdf5_quiet_end(&quiet);
    return rc;
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
