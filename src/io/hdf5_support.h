/* hdf5_support.h — private helpers shared by the HDF5 files of src/io
 * (h5md.c, checkpoint.c); not part of the engine's public interface.
 *
 * Error handling: HDF5 keeps a per-thread error stack and, by default, prints
 * it to stderr whenever a call fails. The library functions of src/io report
 * failures as dm_error messages instead, so they bracket their HDF5 calls with
 * hdf5_quiet_begin/hdf5_quiet_end (which save and restore the caller's
 * automatic error handler) and turn a failed call into a message with
 * hdf5_fail, which appends the innermost HDF5 error description. */
#ifndef DISTILMD_HDF5_SUPPORT_H
#define DISTILMD_HDF5_SUPPORT_H

#include "../core/error.h"

#include <hdf5.h>

typedef struct hdf5_quiet {
    H5E_auto2_t func;   /* the caller's automatic error handler */
    void *data;
    int saved;          /* 1 when func/data were read and must be restored */
} hdf5_quiet;

/* Saves the current automatic error handler and switches printing off. */
void hdf5_quiet_begin(hdf5_quiet *q);
/* Restores the handler saved by hdf5_quiet_begin. */
void hdf5_quiet_end(const hdf5_quiet *q);

/* dm_fail, with " (HDF5: <innermost error description>)" appended when the
 * HDF5 error stack holds an error. Call it right after the failing HDF5
 * call, before any other HDF5 call clears the stack (hdf5_close keeps it). */
int hdf5_fail(dm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Closes an identifier of any kind (file, group, dataset, dataspace,
 * datatype, attribute, property list); negative ids are ignored. The error
 * stack is left as it was, so a pending failure can still be reported.
 * Returns a negative value when the close itself fails. */
herr_t hdf5_close(hid_t id);

/* Attributes on a group or dataset. All return a negative value on failure. */
herr_t hdf5_write_int_attribute(hid_t obj, const char *name, int value);            /* scalar */
herr_t hdf5_write_int_array_attribute(hid_t obj, const char *name, const int *values, int n);
/* Fixed-length, NUL-terminated ASCII strings (H5MD metadata, boundary). */
herr_t hdf5_write_fixed_string_attribute(hid_t obj, const char *name, const char *value);
herr_t hdf5_write_fixed_string_array_attribute(hid_t obj, const char *name,
                                               const char *const *values, int n);
/* Variable-length ASCII string (the H5MD `unit` attribute). */
herr_t hdf5_write_vl_string_attribute(hid_t obj, const char *name, const char *value);

/* Reads a scalar integer attribute into *value. */
herr_t hdf5_read_int_attribute(hid_t obj, const char *name, int *value);
/* Reads an integer array attribute of exactly n elements. */
herr_t hdf5_read_int_array_attribute(hid_t obj, const char *name, int *values, int n);
/* Reads a scalar string attribute (fixed or variable length) into buf,
 * truncated to size-1 characters and NUL-terminated. */
herr_t hdf5_read_string_attribute(hid_t obj, const char *name, char *buf, size_t size);

/* 1 when the link `name` exists in loc, 0 when it does not, negative on error
 * (intermediate groups of a path must exist). */
htri_t hdf5_link_exists(hid_t loc, const char *name);

#endif
