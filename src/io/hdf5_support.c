/* hdf5_support.c — see hdf5_support.h. */
#include "hdf5_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hdf5_quiet_begin(hdf5_quiet *q)
{
    q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void hdf5_quiet_end(const hdf5_quiet *q)
{
    if (q->saved) H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* The walk goes from the innermost record (n = 0, where the error was
 * detected) outwards; the innermost description is the most specific. */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *record, void *client)
{
    char *desc = client;
    if (n == 0 && record->desc) snprintf(desc, 512, "%s", record->desc);
    return 0;
}

int hdf5_fail(dm_error *err, const char *fmt, ...)
{
    char desc[512] = "";
    if (H5Eget_num(H5E_DEFAULT) > 0)
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, desc);
    if (!err) return -1;
    char what[DM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (desc[0])
        return dm_fail(err, "%s (HDF5: %s)", what, desc);
    return dm_fail(err, "%s", what);
}

herr_t hdf5_close(hid_t id)
{
    if (id < 0) return 0;
    hid_t pending = H5Eget_current_stack(); /* takes the stack, leaves it empty */
    herr_t status;
    switch (H5Iget_type(id)) {
    case H5I_FILE: status = H5Fclose(id); break;
    case H5I_GROUP: status = H5Gclose(id); break;
    case H5I_DATASET: status = H5Dclose(id); break;
    case H5I_DATASPACE: status = H5Sclose(id); break;
    case H5I_DATATYPE: status = H5Tclose(id); break;
    case H5I_ATTR: status = H5Aclose(id); break;
    case H5I_GENPROP_LST: status = H5Pclose(id); break;
    default: status = -1; break;
    }
    if (pending >= 0) H5Eset_current_stack(pending); /* puts it back, frees the copy */
    return status;
}

/* ---- attributes ---- */

/* Creates attribute `name` of type file_type over `space` and writes `data`
 * given in mem_type. */
static herr_t write_attribute(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                              hid_t space, const void *data)
{
    if (space < 0) return -1;
    hid_t attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t status = attr < 0 ? -1 : H5Awrite(attr, mem_type, data);
    if (hdf5_close(attr) < 0) status = -1;
    return status;
}

herr_t hdf5_write_int_attribute(hid_t obj, const char *name, int value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    herr_t status = write_attribute(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, space, &value);
    if (hdf5_close(space) < 0) status = -1;
    return status;
}

herr_t hdf5_write_int_array_attribute(hid_t obj, const char *name, const int *values, int n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    herr_t status = write_attribute(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, space, values);
    if (hdf5_close(space) < 0) status = -1;
    return status;
}

/* A fixed-length C string type of `size` bytes (NUL included). */
static hid_t fixed_string_type(size_t size)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0) return -1;
    if (H5Tset_size(type, size) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(type, H5T_CSET_ASCII) < 0) {
        hdf5_close(type);
        return -1;
    }
    return type;
}

herr_t hdf5_write_fixed_string_attribute(hid_t obj, const char *name, const char *value)
{
    hid_t type = fixed_string_type(strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    herr_t status = type < 0 ? -1 : write_attribute(obj, name, type, type, space, value);
    if (hdf5_close(space) < 0 || hdf5_close(type) < 0) status = -1;
    return status;
}

herr_t hdf5_write_fixed_string_array_attribute(hid_t obj, const char *name,
                                               const char *const *values, int n)
{
    /* n strings in n slots of (longest length + 1) bytes, NUL-padded */
    enum { MAX_STRINGS = 16, MAX_WIDTH = 64 };
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(values[i]) + 1 > width) width = strlen(values[i]) + 1;
    if (n < 1 || n > MAX_STRINGS || width > MAX_WIDTH) return -1;
    char flat[MAX_STRINGS * MAX_WIDTH];
    memset(flat, 0, sizeof flat);
    for (int i = 0; i < n; i++) memcpy(flat + (size_t)i * width, values[i], strlen(values[i]));

    hsize_t dims[1] = {(hsize_t)n};
    hid_t type = fixed_string_type(width);
    hid_t space = H5Screate_simple(1, dims, NULL);
    herr_t status = type < 0 ? -1 : write_attribute(obj, name, type, type, space, flat);
    if (hdf5_close(space) < 0 || hdf5_close(type) < 0) status = -1;
    return status;
}

herr_t hdf5_write_vl_string_attribute(hid_t obj, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    herr_t status = type < 0 ? -1 : 0;
    if (status >= 0 && (H5Tset_size(type, H5T_VARIABLE) < 0 ||
                        H5Tset_cset(type, H5T_CSET_ASCII) < 0))
        status = -1;
    hid_t space = H5Screate(H5S_SCALAR);
    if (status >= 0) status = write_attribute(obj, name, type, type, space, &value);
    if (hdf5_close(space) < 0 || hdf5_close(type) < 0) status = -1;
    return status;
}

herr_t hdf5_read_int_attribute(hid_t obj, const char *name, int *value)
{
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    herr_t status = space < 0 ? -1 : 0;
    if (status >= 0 && H5Sget_simple_extent_npoints(space) != 1) status = -1;
    if (status >= 0) status = H5Aread(attr, H5T_NATIVE_INT, value);
    if (hdf5_close(space) < 0 || hdf5_close(attr) < 0) status = -1;
    return status;
}

herr_t hdf5_read_int_array_attribute(hid_t obj, const char *name, int *values, int n)
{
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    herr_t status = space < 0 ? -1 : 0;
    if (status >= 0 && H5Sget_simple_extent_npoints(space) != n) status = -1;
    if (status >= 0) status = H5Aread(attr, H5T_NATIVE_INT, values);
    if (hdf5_close(space) < 0 || hdf5_close(attr) < 0) status = -1;
    return status;
}

/* Reads a scalar string attribute whose file type is `type` into buf. */
static herr_t read_string(hid_t attr, hid_t type, char *buf, size_t size)
{
    htri_t variable = H5Tis_variable_str(type);
    if (variable < 0) return -1;
    hid_t mem = H5Tcopy(H5T_C_S1);
    if (mem < 0) return -1;
    herr_t status = 0;
    if (variable) {
        char *value = NULL;
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &value) < 0) {
            status = -1;
        } else {
            snprintf(buf, size, "%s", value ? value : "");
            H5free_memory(value);
        }
    } else {
        size_t length = H5Tget_size(type);
        char stored[4096];
        if (length == 0 || length >= sizeof stored || H5Tset_size(mem, length + 1) < 0 ||
            H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0 || H5Aread(attr, mem, stored) < 0) {
            status = -1;
        } else {
            stored[length] = '\0';
            snprintf(buf, size, "%s", stored);
        }
    }
    if (hdf5_close(mem) < 0) status = -1;
    return status;
}

herr_t hdf5_read_string_attribute(hid_t obj, const char *name, char *buf, size_t size)
{
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = attr < 0 ? -1 : H5Aget_type(attr);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    herr_t status = (type < 0 || space < 0) ? -1 : 0;
    if (status >= 0 && (H5Tget_class(type) != H5T_STRING ||
                        H5Sget_simple_extent_npoints(space) != 1))
        status = -1;
    if (status >= 0) status = read_string(attr, type, buf, size);
    if (hdf5_close(space) < 0 || hdf5_close(type) < 0 || hdf5_close(attr) < 0) status = -1;
    return status;
}

htri_t hdf5_link_exists(hid_t loc, const char *name)
{
    /* H5Lexists fails (rather than answering 0) when an intermediate group
     * of a path is missing, so test the path one component at a time. */
    char prefix[1024];
    size_t length = strlen(name);
    if (length >= sizeof prefix) return -1;
    for (size_t i = 0; i <= length; i++) {
        if (i > 0 && (name[i] == '/' || name[i] == '\0') && name[i - 1] != '/') {
            memcpy(prefix, name, i);
            prefix[i] = '\0';
            htri_t exists = H5Lexists(loc, prefix, H5P_DEFAULT);
            if (exists <= 0) return exists;
        }
    }
    return 1;
}
