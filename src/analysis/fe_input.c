/* fe_input.c — reads the λ-window samples (fe_input.h) with the HDF5 API. */
#define _POSIX_C_SOURCE 200809L

#include "fe_input.h"

#include "../io/hdf5_support.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An open dataset and its shape. */
typedef struct dataset_info {
    int rank;
    hsize_t dims[3];
    H5T_class_t type_class;
} dataset_info;

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "floating-point";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    default: return "non-numeric";
    }
}

/* The rank (must be `rank`), dimensions and type class of dataset `name`. */
static int dataset_shape(hid_t file, const char *path, const char *name, int rank,
                         dataset_info *info, dm_error *err)
{
    memset(info, 0, sizeof *info);
    /* hdf5_link_exists needs the intermediate groups: check them one by one */
    char prefix[256];
    for (const char *slash = strchr(name + 1, '/'); ; slash = strchr(slash + 1, '/')) {
        size_t len = slash ? (size_t)(slash - name) : strlen(name);
        if (len >= sizeof prefix) return dm_fail(err, "%s: dataset name %s too long", path, name);
        memcpy(prefix, name, len);
        prefix[len] = '\0';
        htri_t exists = hdf5_link_exists(file, prefix);
        if (exists < 0) return hdf5_fail(err, "%s: cannot look up %s", path, prefix);
        if (!exists && !slash) return dm_fail(err, "%s: dataset %s is missing", path, name);
        if (!exists)
            return dm_fail(err, "%s: dataset %s is missing (no group %s)", path, name, prefix);
        if (!slash) break;
    }
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return hdf5_fail(err, "%s: cannot open dataset %s", path, name);
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    int ok = s >= 0 && t >= 0;
    if (ok) {
        info->rank = H5Sget_simple_extent_ndims(s);
        info->type_class = H5Tget_class(t);
        ok = info->rank >= 0 && info->rank <= 3 &&
             H5Sget_simple_extent_dims(s, info->dims, NULL) >= 0;
    }
    hdf5_close(t);
    hdf5_close(s);
    hdf5_close(d);
    if (!ok && info->rank <= 3) return hdf5_fail(err, "%s: cannot read the shape of dataset %s", path, name);
    if (info->rank != rank)
        return dm_fail(err, "%s: dataset %s has %d dimensions, expected %d", path, name,
                       info->rank, rank);
    if (info->type_class != H5T_INTEGER && info->type_class != H5T_FLOAT)
        return dm_fail(err, "%s: dataset %s holds %s values, expected numbers", path, name,
                       class_name(info->type_class));
    return 0;
}

/* Rows first .. first + count[0] of dataset `name` (all of the other
 * dimensions, given in count) as mem_type. */
static int read_rows(hid_t file, const char *path, const char *name, int rank, hsize_t first,
                     const hsize_t *count, hid_t mem_type, void *buf, dm_error *err)
{
    hsize_t start[3] = {first, 0, 0};
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t file_space = d < 0 ? -1 : H5Dget_space(d);
    hid_t mem_space = H5Screate_simple(rank, count, NULL);
    int rc = 0;
    if (d < 0 || file_space < 0 || mem_space < 0 ||
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, mem_type, mem_space, file_space, H5P_DEFAULT, buf) < 0)
        rc = hdf5_fail(err, "%s: cannot read dataset %s", path, name);
    hdf5_close(mem_space);
    hdf5_close(file_space);
    hdf5_close(d);
    return rc;
}

static int open_file(const char *path, hid_t *file, dm_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return dm_fail(err, "%s: %s", path, strerror(errno));
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 < 0) return hdf5_fail(err, "%s: cannot open the file", path);
    if (is_hdf5 == 0) return dm_fail(err, "%s: not an HDF5 file", path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) return hdf5_fail(err, "%s: cannot open the file", path);
    return 0;
}

/* λ and temperature, [K] each. */
static int read_parameters(hid_t file, const char *path, fe_samples *s, dm_error *err)
{
    dataset_info lam, temp;
    if (dataset_shape(file, path, FE_LAMBDAS, 1, &lam, err) ||
        dataset_shape(file, path, FE_TEMPERATURE, 1, &temp, err))
        return -1;
    if (lam.dims[0] < 2)
        return dm_fail(err, "%s: dataset %s has %llu windows, expected at least 2", path,
                       FE_LAMBDAS, (unsigned long long)lam.dims[0]);
    if (temp.dims[0] != lam.dims[0])
        return dm_fail(err, "%s: dataset %s has %llu values, expected %llu (one per window of %s)",
                       path, FE_TEMPERATURE, (unsigned long long)temp.dims[0],
                       (unsigned long long)lam.dims[0], FE_LAMBDAS);
    if (lam.dims[0] > 100000)
        return dm_fail(err, "%s: dataset %s has %llu windows, expected at most 100000", path,
                       FE_LAMBDAS, (unsigned long long)lam.dims[0]);
    s->n_windows = (int)lam.dims[0];
    s->lambda = malloc(sizeof(double) * (size_t)s->n_windows);
    s->temperature = malloc(sizeof(double) * (size_t)s->n_windows);
    if (!s->lambda || !s->temperature) return dm_fail(err, "%s: out of memory", path);
    hsize_t count[1] = {lam.dims[0]};
    return read_rows(file, path, FE_LAMBDAS, 1, 0, count, H5T_NATIVE_DOUBLE, s->lambda, err) ||
           read_rows(file, path, FE_TEMPERATURE, 1, 0, count, H5T_NATIVE_DOUBLE, s->temperature,
                     err);
}

/* The whole frames: the step dataset's length when it exists, else the
 * common length of the three value datasets; checks their shapes. */
static int frame_layout(hid_t file, const char *path, fe_samples *s, dm_error *err)
{
    dataset_info win, u, du;
    if (dataset_shape(file, path, FE_WINDOW, 2, &win, err) ||
        dataset_shape(file, path, FE_REDUCED_POTENTIAL, 3, &u, err) ||
        dataset_shape(file, path, FE_DU_DLAMBDA, 2, &du, err))
        return -1;
    if (win.type_class != H5T_INTEGER)
        return dm_fail(err, "%s: dataset %s holds floating-point values, expected integer "
                       "window indices", path, FE_WINDOW);
    s->n_replicas = (long)win.dims[1];
    if (u.dims[1] != win.dims[1] || du.dims[1] != win.dims[1])
        return dm_fail(err, "%s: datasets %s, %s and %s have %llu, %llu and %llu replicas "
                       "(second dimension), expected the same", path, FE_WINDOW,
                       FE_REDUCED_POTENTIAL, FE_DU_DLAMBDA, (unsigned long long)win.dims[1],
                       (unsigned long long)u.dims[1], (unsigned long long)du.dims[1]);
    if (u.dims[2] != (hsize_t)s->n_windows)
        return dm_fail(err, "%s: dataset %s has %llu windows (third dimension), expected %d "
                       "(the length of %s)", path, FE_REDUCED_POTENTIAL,
                       (unsigned long long)u.dims[2], s->n_windows, FE_LAMBDAS);
    htri_t has_step = hdf5_link_exists(file, "/observables/dU_dlambda");
    if (has_step > 0) has_step = hdf5_link_exists(file, FE_STEP);
    if (has_step < 0) return hdf5_fail(err, "%s: cannot look up %s", path, FE_STEP);
    if (has_step) {
        dataset_info step;
        if (dataset_shape(file, path, FE_STEP, 1, &step, err)) return -1;
        s->file_frames = (long)step.dims[0];
        const char *names[3] = {FE_WINDOW, FE_REDUCED_POTENTIAL, FE_DU_DLAMBDA};
        const hsize_t rows[3] = {win.dims[0], u.dims[0], du.dims[0]};
        for (int k = 0; k < 3; k++)
            if (rows[k] < step.dims[0])
                return dm_fail(err, "%s: dataset %s has %llu frames, expected at least %llu "
                               "(the length of %s)", path, names[k], (unsigned long long)rows[k],
                               (unsigned long long)step.dims[0], FE_STEP);
    } else {
        if (u.dims[0] != win.dims[0] || du.dims[0] != win.dims[0])
            return dm_fail(err, "%s: datasets %s, %s and %s have %llu, %llu and %llu frames "
                           "(first dimension), expected the same", path, FE_WINDOW,
                           FE_REDUCED_POTENTIAL, FE_DU_DLAMBDA, (unsigned long long)win.dims[0],
                           (unsigned long long)u.dims[0], (unsigned long long)du.dims[0]);
        s->file_frames = (long)win.dims[0];
    }
    if (s->file_frames < 1 || s->n_replicas < 1)
        return dm_fail(err, "%s: dataset %s has %ld frames of %ld replicas, expected samples",
                       path, FE_WINDOW, s->file_frames, s->n_replicas);
    return 0;
}

/* The first frame kept: discard->frames, or the first with
 * time - time[0] >= discard->ps. */
static int first_kept_frame(hid_t file, const char *path, fe_samples *s, const fe_discard *discard,
                            dm_error *err)
{
    s->first_frame = 0;
    if (!discard) return 0;
    if (discard->frames < 0)
        return dm_fail(err, "%s: cannot discard %ld frames", path, discard->frames);
    s->first_frame = discard->frames;
    if (discard->ps >= 0.0) {
        dataset_info t;
        if (dataset_shape(file, path, FE_TIME, 1, &t, err)) return -1;
        if (t.dims[0] < (hsize_t)s->file_frames)
            return dm_fail(err, "%s: dataset %s has %llu values, expected %ld (one per frame)",
                           path, FE_TIME, (unsigned long long)t.dims[0], s->file_frames);
        char unit[32] = "";
        hid_t d = H5Dopen2(file, FE_TIME, H5P_DEFAULT);
        herr_t has_unit = d < 0 ? -1 : hdf5_read_string_attribute(d, "unit", unit, sizeof unit);
        hdf5_close(d);
        H5Eclear2(H5E_DEFAULT);
        if (has_unit >= 0 && strcmp(unit, "ps") != 0)
            return dm_fail(err, "%s: dataset %s is in '%s', expected 'ps'", path, FE_TIME, unit);
        double *time = malloc(sizeof(double) * (size_t)s->file_frames);
        if (!time) return dm_fail(err, "%s: out of memory", path);
        hsize_t count[1] = {(hsize_t)s->file_frames};
        if (read_rows(file, path, FE_TIME, 1, 0, count, H5T_NATIVE_DOUBLE, time, err)) {
            free(time);
            return -1;
        }
        long first = 0;
        while (first < s->file_frames && time[first] - time[0] < discard->ps) first++;
        free(time);
        s->first_frame = first;
    }
    if (s->first_frame >= s->file_frames)
        return dm_fail(err, "%s: discarding %ld frames leaves none of the %ld frames of %s",
                       path, s->first_frame, s->file_frames, FE_DU_DLAMBDA);
    return 0;
}

static int read_frames(hid_t file, const char *path, fe_samples *s, dm_error *err)
{
    long F = s->file_frames - s->first_frame, R = s->n_replicas, K = s->n_windows;
    s->n_frames = F;
    size_t fr = (size_t)F * (size_t)R;
    s->window = malloc(sizeof(int64_t) * fr);
    s->du_dlambda = malloc(sizeof(double) * fr);
    s->reduced_potential = malloc(sizeof(double) * fr * (size_t)K);
    if (!s->window || !s->du_dlambda || !s->reduced_potential)
        return dm_fail(err, "%s: out of memory for %ld frames x %ld replicas x %ld windows",
                       path, F, R, K);
    hsize_t first = (hsize_t)s->first_frame;
    hsize_t c2[2] = {(hsize_t)F, (hsize_t)R}, c3[3] = {(hsize_t)F, (hsize_t)R, (hsize_t)K};
    return read_rows(file, path, FE_WINDOW, 2, first, c2, H5T_NATIVE_INT64, s->window, err) ||
           read_rows(file, path, FE_DU_DLAMBDA, 2, first, c2, H5T_NATIVE_DOUBLE, s->du_dlambda,
                     err) ||
           read_rows(file, path, FE_REDUCED_POTENTIAL, 3, first, c3, H5T_NATIVE_DOUBLE,
                     s->reduced_potential, err);
}

int fe_samples_read(fe_samples *s, const char *path, const fe_discard *discard, dm_error *err)
{
    memset(s, 0, sizeof *s);
    hdf5_quiet quiet;
    hdf5_quiet_begin(&quiet);
    hid_t file = -1;
    int rc = open_file(path, &file, err);
    if (rc == 0) rc = read_parameters(file, path, s, err);
    if (rc == 0) rc = frame_layout(file, path, s, err);
    if (rc == 0) rc = first_kept_frame(file, path, s, discard, err);
    if (rc == 0) rc = read_frames(file, path, s, err);
    hdf5_close(file);
    hdf5_quiet_end(&quiet);
    if (rc == 0) rc = fe_samples_check(s, path, err);
    return rc;
}

int fe_samples_check(const fe_samples *s, const char *source, dm_error *err)
{
    int K = s->n_windows;
    long F = s->n_frames, R = s->n_replicas;
    if (K < 2) return dm_fail(err, "%s: %s has %d windows, expected at least 2", source, FE_LAMBDAS, K);
    for (int k = 0; k < K; k++) {
        if (!isfinite(s->lambda[k]))
            return dm_fail(err, "%s: %s[%d] is %g, expected a finite λ", source, FE_LAMBDAS, k,
                           s->lambda[k]);
        if (!(s->temperature[k] > 0.0) || !isfinite(s->temperature[k]))
            return dm_fail(err, "%s: %s[%d] is %g K, expected a positive temperature", source,
                           FE_TEMPERATURE, k, s->temperature[k]);
    }
    double direction = s->lambda[1] - s->lambda[0];
    for (int k = 1; k < K; k++) {
        double step = s->lambda[k] - s->lambda[k - 1];
        if (!(step * direction > 0.0))
            return dm_fail(err, "%s: %s is not strictly monotonic (λ[%d] = %g, λ[%d] = %g); the "
                           "windows must be in λ order", source, FE_LAMBDAS, k - 1,
                           s->lambda[k - 1], k, s->lambda[k]);
    }
    for (long t = 0; t < F; t++)
        for (long r = 0; r < R; r++) {
            long i = t * R + r, frame = s->first_frame + t;
            if (s->window[i] < 0 || s->window[i] >= K)
                return dm_fail(err, "%s: %s at frame %ld, replica %ld is %lld, expected a window "
                               "0..%d", source, FE_WINDOW, frame, r, (long long)s->window[i],
                               K - 1);
            if (!isfinite(s->du_dlambda[i]))
                return dm_fail(err, "%s: %s at frame %ld, replica %ld is %g, expected a finite "
                               "number", source, FE_DU_DLAMBDA, frame, r, s->du_dlambda[i]);
            for (int l = 0; l < K; l++) {
                double u = s->reduced_potential[i * K + l];
                if (isnan(u) || u == -INFINITY)
                    return dm_fail(err, "%s: %s at frame %ld, replica %ld, window %d is %g, "
                                   "expected a number or +inf", source, FE_REDUCED_POTENTIAL,
                                   frame, r, l, u);
            }
            if (!isfinite(s->reduced_potential[i * K + s->window[i]]))
                return dm_fail(err, "%s: %s at frame %ld, replica %ld is %g in its own window "
                               "%lld, expected a finite number", source, FE_REDUCED_POTENTIAL,
                               frame, r, s->reduced_potential[i * K + s->window[i]],
                               (long long)s->window[i]);
        }
    return 0;
}

void fe_samples_free(fe_samples *s)
{
    free(s->lambda);
    free(s->temperature);
    free(s->window);
    free(s->reduced_potential);
    free(s->du_dlambda);
    memset(s, 0, sizeof *s);
}
