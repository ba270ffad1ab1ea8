/* checkpoint.c — restart files: named 1-D arrays in one HDF5 file.
 *
 * Layout:
 *   /checkpoint              +format  "distilmd-checkpoint" (fixed-length string)
 *                            +version int32 = 1
 *        <name>              float64[count] (CHECKPOINT_F64) or int64[count]
 *                            (CHECKPOINT_I64), one dataset per entry
 *
 * Atomic replacement: the file is written to PATH.tmp, flushed and closed,
 * fsync'ed, then renamed over PATH (rename is atomic within a file system),
 * and the directory is fsync'ed so the rename itself is durable. A run
 * killed at any moment leaves PATH either old or new, never half written;
 * at worst a stale PATH.tmp stays behind, which the next write replaces.
 *
 * Reading checks, in order: the file exists, is HDF5, has /checkpoint with
 * the format attribute and version 1, and for every entry a dataset of the
 * entry's type (64-bit float or 64-bit signed integer) holding exactly
 * `count` values. Every error names the file and, where there is one, the
 * dataset. HDF5's automatic error printing is off during our calls (the
 * caller's handler is restored afterwards). */
#define _POSIX_C_SOURCE 200809L

#include "checkpoint.h"
#include "hdf5_support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECKPOINT_FORMAT "distilmd-checkpoint"
#define CHECKPOINT_VERSION 1
#define CHECKPOINT_GROUP "/checkpoint"

static const char *type_name(checkpoint_type type)
{
    return type == CHECKPOINT_F64 ? "64-bit float" : "64-bit signed integer";
}

/* Dataset names are single HDF5 link names: no '/', not "." or empty. */
static int check_entries(const char *path, const checkpoint_entry *entries, int n_entries,
                         dm_error *err)
{
    if (n_entries < 0 || (n_entries > 0 && !entries))
        return dm_fail(err, "%s: invalid checkpoint entry list (%d entries)", path, n_entries);
    for (int i = 0; i < n_entries; i++) {
        const checkpoint_entry *e = &entries[i];
        if (!e->name || !*e->name || strchr(e->name, '/') || strcmp(e->name, ".") == 0)
            return dm_fail(err, "%s: checkpoint entry %d has an invalid name '%s' (expected a "
                           "non-empty name without '/')", path, i, e->name ? e->name : "(null)");
        if (e->type != CHECKPOINT_F64 && e->type != CHECKPOINT_I64)
            return dm_fail(err, "%s: checkpoint entry '%s' has an unknown type %d", path,
                           e->name, (int)e->type);
        if (e->count < 0 || (e->count > 0 && !e->data))
            return dm_fail(err, "%s: checkpoint entry '%s' has count %ld and %s data", path,
                           e->name, e->count, e->data ? "some" : "no");
    }
    return 0;
}

static hid_t file_type_of(checkpoint_type type)
{
    return type == CHECKPOINT_F64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
}

static hid_t memory_type_of(checkpoint_type type)
{
    return type == CHECKPOINT_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
}

/* ------------------------------------------------------------------------ */
/* Writing. */

static int write_entry(const char *file, hid_t group, const checkpoint_entry *e, dm_error *err)
{
    hsize_t dims[1] = {(hsize_t)e->count};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dset = space < 0 ? -1
                           : H5Dcreate2(group, e->name, file_type_of(e->type), space, H5P_DEFAULT,
                                        H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (dset < 0)
        rc = hdf5_fail(err, "%s: cannot create dataset %s/%s", file, CHECKPOINT_GROUP, e->name);
    else if (e->count > 0 &&
             H5Dwrite(dset, memory_type_of(e->type), H5S_ALL, H5S_ALL, H5P_DEFAULT, e->data) < 0)
        rc = hdf5_fail(err, "%s: cannot write dataset %s/%s", file, CHECKPOINT_GROUP, e->name);
    hdf5_close(dset);
    hdf5_close(space);
    return rc;
}

/* Writes the whole checkpoint into `file` (the temporary name), closed on return. */
static int write_hdf5_file(const char *file, const checkpoint_entry *entries, int n_entries,
                           dm_error *err)
{
    hid_t h5 = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h5 < 0) return hdf5_fail(err, "%s: cannot create the checkpoint file", file);
    int rc = 0;
    hid_t group = H5Gcreate2(h5, CHECKPOINT_GROUP, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0)
        rc = hdf5_fail(err, "%s: cannot create group %s", file, CHECKPOINT_GROUP);
    else if (hdf5_write_fixed_string_attribute(group, "format", CHECKPOINT_FORMAT) < 0 ||
             hdf5_write_int_attribute(group, "version", CHECKPOINT_VERSION) < 0)
        rc = hdf5_fail(err, "%s: cannot write the format attributes of %s", file,
                       CHECKPOINT_GROUP);
    for (int i = 0; rc == 0 && i < n_entries; i++) rc = write_entry(file, group, &entries[i], err);
    if (rc == 0 && H5Fflush(h5, H5F_SCOPE_GLOBAL) < 0)
        rc = hdf5_fail(err, "%s: cannot flush the checkpoint file", file);
    if (hdf5_close(group) < 0 && rc == 0)
        rc = hdf5_fail(err, "%s: cannot close group %s", file, CHECKPOINT_GROUP);
    if (hdf5_close(h5) < 0 && rc == 0)
        rc = hdf5_fail(err, "%s: cannot close the checkpoint file", file);
    return rc;
}

/* fsync of a file (or directory) by name. EINVAL means the file system
 * cannot sync (e.g. some special file systems): nothing more to do then. */
static int sync_path(const char *path, int flags, dm_error *err)
{
    int fd = open(path, flags);
    if (fd < 0) return dm_fail(err, "%s: cannot open to sync it: %s", path, strerror(errno));
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = dm_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* The directory part of path ("." when there is none). */
static void directory_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, size, ".");
    } else if (slash == path) {
        snprintf(dir, size, "/");
    } else {
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
    }
}

int checkpoint_write(const char *path, const checkpoint_entry *entries, int n_entries,
                     dm_error *err)
{
    if (!path || !*path) return dm_fail(err, "checkpoint: no file name given");
    if (check_entries(path, entries, n_entries, err)) return -1;
    size_t length = strlen(path);
    char *tmp = malloc(length + 5);
    if (!tmp) return dm_fail(err, "%s: out of memory", path);
    snprintf(tmp, length + 5, "%s.tmp", path);

    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = write_hdf5_file(tmp, entries, n_entries, err);
    hdf5_quiet_end(&quiet);
    if (rc == 0) rc = sync_path(tmp, O_RDONLY, err);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = dm_fail(err, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
    if (rc == 0) {
        /* best effort: the new checkpoint is complete whether or not the
         * directory entry reaches the disk now */
        char dir[4096];
        directory_of(path, dir, sizeof dir);
        sync_path(dir, O_RDONLY | O_DIRECTORY, NULL);
    }
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading. */

static int check_format(const char *path, hid_t h5, dm_error *err)
{
    htri_t exists = H5Lexists(h5, CHECKPOINT_GROUP, H5P_DEFAULT);
    if (exists < 0) return hdf5_fail(err, "%s: cannot look up group %s", path, CHECKPOINT_GROUP);
    if (!exists)
        return dm_fail(err, "%s: not a distilmd checkpoint (no group %s)", path, CHECKPOINT_GROUP);
    hid_t group = H5Gopen2(h5, CHECKPOINT_GROUP, H5P_DEFAULT);
    if (group < 0) return hdf5_fail(err, "%s: cannot open group %s", path, CHECKPOINT_GROUP);
    char format[128] = "";
    int version = 0, rc = 0;
    if (hdf5_read_string_attribute(group, "format", format, sizeof format) < 0)
        rc = hdf5_fail(err, "%s: not a distilmd checkpoint (group %s has no string attribute "
                       "format)", path, CHECKPOINT_GROUP);
    else if (strcmp(format, CHECKPOINT_FORMAT) != 0)
        rc = dm_fail(err, "%s: not a distilmd checkpoint (format is '%s', expected '%s')", path,
                     format, CHECKPOINT_FORMAT);
    else if (hdf5_read_int_attribute(group, "version", &version) < 0)
        rc = hdf5_fail(err, "%s: cannot read the integer attribute version of %s", path,
                       CHECKPOINT_GROUP);
    else if (version != CHECKPOINT_VERSION)
        rc = dm_fail(err, "%s: checkpoint format version %d, this build reads version %d", path,
                     version, CHECKPOINT_VERSION);
    hdf5_close(group);
    return rc;
}

/* Describes an HDF5 datatype for messages ("32-bit integer", ...). */
static void describe_type(hid_t type, char *buf, size_t size)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t bits = 8 * H5Tget_size(type);
    if (cls == H5T_FLOAT)
        snprintf(buf, size, "%zu-bit float", bits);
    else if (cls == H5T_INTEGER)
        snprintf(buf, size, "%zu-bit %s integer", bits,
                 H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed");
    else if (cls == H5T_STRING)
        snprintf(buf, size, "string");
    else
        snprintf(buf, size, "non-numeric type (class %d)", (int)cls);
}

static int type_matches(hid_t type, checkpoint_type want)
{
    H5T_class_t cls = H5Tget_class(type);
    if (H5Tget_size(type) != 8) return 0;
    if (want == CHECKPOINT_F64) return cls == H5T_FLOAT;
    return cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
}

static int read_entry(const char *path, hid_t group, const checkpoint_entry *e, dm_error *err)
{
    htri_t exists = H5Lexists(group, e->name, H5P_DEFAULT);
    if (exists < 0)
        return hdf5_fail(err, "%s: cannot look up dataset %s/%s", path, CHECKPOINT_GROUP,
                         e->name);
    if (!exists)
        return dm_fail(err, "%s: dataset %s/%s is missing", path, CHECKPOINT_GROUP, e->name);
    hid_t dset = H5Dopen2(group, e->name, H5P_DEFAULT);
    if (dset < 0)
        return hdf5_fail(err, "%s: cannot open dataset %s/%s", path, CHECKPOINT_GROUP, e->name);
    hid_t type = H5Dget_type(dset);
    hid_t space = H5Dget_space(dset);
    int rc = 0;
    char found[64];
    hsize_t dims[1] = {0};
    if (type < 0 || space < 0) {
        rc = hdf5_fail(err, "%s: cannot inspect dataset %s/%s", path, CHECKPOINT_GROUP, e->name);
    } else if (!type_matches(type, e->type)) {
        describe_type(type, found, sizeof found);
        rc = dm_fail(err, "%s: dataset %s/%s is %s, expected %s", path, CHECKPOINT_GROUP,
                     e->name, found, type_name(e->type));
    } else if (H5Sget_simple_extent_ndims(space) != 1 ||
               H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        rc = dm_fail(err, "%s: dataset %s/%s is not one-dimensional", path, CHECKPOINT_GROUP,
                     e->name);
    } else if (dims[0] != (hsize_t)e->count) {
        rc = dm_fail(err, "%s: dataset %s/%s has %llu values, expected %ld", path,
                     CHECKPOINT_GROUP, e->name, (unsigned long long)dims[0], e->count);
    } else if (e->count > 0 && H5Dread(dset, memory_type_of(e->type), H5S_ALL, H5S_ALL,
                                       H5P_DEFAULT, e->data) < 0) {
        rc = hdf5_fail(err, "%s: cannot read dataset %s/%s", path, CHECKPOINT_GROUP, e->name);
    }
    hdf5_close(space);
    hdf5_close(type);
    hdf5_close(dset);
    return rc;
}

static int read_hdf5_file(const char *path, const checkpoint_entry *entries, int n_entries,
                          dm_error *err)
{
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 < 0) return hdf5_fail(err, "%s: cannot open the checkpoint", path);
    if (is_hdf5 == 0) return dm_fail(err, "%s: not an HDF5 file (not a distilmd checkpoint)", path);
    hid_t h5 = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h5 < 0) return hdf5_fail(err, "%s: cannot open the checkpoint", path);
    int rc = check_format(path, h5, err);
    hid_t group = -1;
    if (rc == 0 && (group = H5Gopen2(h5, CHECKPOINT_GROUP, H5P_DEFAULT)) < 0)
        rc = hdf5_fail(err, "%s: cannot open group %s", path, CHECKPOINT_GROUP);
    for (int i = 0; rc == 0 && i < n_entries; i++) rc = read_entry(path, group, &entries[i], err);
    hdf5_close(group);
    if (hdf5_close(h5) < 0 && rc == 0) rc = hdf5_fail(err, "%s: cannot close the file", path);
    return rc;
}

int checkpoint_read(const char *path, const checkpoint_entry *entries, int n_entries,
                    dm_error *err)
{
    if (!path || !*path) return dm_fail(err, "checkpoint: no file name given");
    if (check_entries(path, entries, n_entries, err)) return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return dm_fail(err, "%s: cannot open the checkpoint: %s", path, strerror(errno));
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    int rc = read_hdf5_file(path, entries, n_entries, err);
    hdf5_quiet_end(&quiet);
    return rc;
}
