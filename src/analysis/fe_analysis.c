/* fe_analysis.c — per-window statistics, TI, BAR and MBAR from the samples
 * of a λ-window run (the method is described in fe_analysis.h). */
#include "fe_analysis.h"

#include "../integrators/units.h"
#include "mbar.h"
#include "ti.h"
#include "timeseries.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The samples of one window: their indices t*R + r in (frame, replica)
 * order, and, when every frame has m of them, the m series (series j,
 * frame t: index at[t*m + j]). */
typedef struct window_samples {
    long *at;      /* [n] */
    long n;
    int m;         /* samples per frame; 0 when it varies (one series: at) */
    long *used;    /* [n_used] the samples for BAR/MBAR */
    long n_used;
} window_samples;

void fe_options_default(fe_options *o)
{
    o->subsample = 1;
    o->n_blocks = FE_DEFAULT_BLOCKS;
}

static void window_samples_free(window_samples *w)
{
    free(w->at);
    free(w->used);
    memset(w, 0, sizeof *w);
}

/* Collects window k's samples and finds whether each frame has the same
 * number of them. */
static int collect_window(const fe_samples *s, int k, window_samples *w, dm_error *err)
{
    long F = s->n_frames, R = s->n_replicas;
    memset(w, 0, sizeof *w);
    for (long i = 0; i < F * R; i++) w->n += s->window[i] == k;
    if (w->n < 2)
        return dm_fail(err, "window %d (λ = %g) has %ld samples in the %ld frames analysed, "
                       "expected at least 2 (discard fewer frames or sample longer)", k,
                       s->lambda[k], w->n, F);
    w->at = malloc(sizeof(long) * (size_t)w->n);
    w->used = malloc(sizeof(long) * (size_t)w->n);
    if (!w->at || !w->used) return dm_fail(err, "window %d: out of memory", k);
    long n = 0;
    w->m = -1;
    for (long t = 0; t < F; t++) {
        int in_frame = 0;
        for (long r = 0; r < R; r++)
            if (s->window[t * R + r] == k) {
                w->at[n++] = t * R + r;
                in_frame++;
            }
        if (w->m == -1) w->m = in_frame;
        else if (w->m != in_frame) w->m = 0;
    }
    if (w->m < 0) w->m = 0;
    return 0;
}

/* g of the window's dU/dλ: over its m series of F frames, or over the one
 * series of all its samples (NaN after a failure). */
static double window_g(const fe_samples *s, const window_samples *w, dm_error *err)
{
    long F = s->n_frames;
    int m = w->m > 0 ? w->m : 1;
    long length = w->m > 0 ? F : w->n;
    double *values = malloc(sizeof(double) * (size_t)w->n);
    const double **series = malloc(sizeof(double *) * (size_t)m);
    long *lengths = malloc(sizeof(long) * (size_t)m);
    if (!values || !series || !lengths) {
        free(values);
        free(series);
        free(lengths);
        dm_fail(err, "out of memory");
        return NAN;
    }
    for (int j = 0; j < m; j++) {
        series[j] = values + (long)j * length;
        lengths[j] = length;
        for (long t = 0; t < length; t++)
            values[(long)j * length + t] = s->du_dlambda[w->m > 0 ? w->at[t * m + j] : w->at[t]];
    }
    double g = statistical_inefficiency_multiple(m, series, lengths);
    free(values);
    free(series);
    free(lengths);
    return g;
}

/* The samples BAR and MBAR use: every one, or each series subsampled at
 * round(n g). */
static int choose_used(const fe_samples *s, window_samples *w, double g, int subsample,
                       dm_error *err)
{
    if (!subsample) {
        memcpy(w->used, w->at, sizeof(long) * (size_t)w->n);
        w->n_used = w->n;
        return 0;
    }
    int m = w->m > 0 ? w->m : 1;
    long length = w->m > 0 ? s->n_frames : w->n;
    long *indices = malloc(sizeof(long) * (size_t)length);
    if (!indices) return dm_fail(err, "out of memory");
    w->n_used = 0;
    for (int j = 0; j < m; j++) {
        long count = uncorrelated_indices(length, g, indices);
        for (long i = 0; i < count; i++)
            w->used[w->n_used++] = w->m > 0 ? w->at[indices[i] * m + j] : w->at[indices[i]];
    }
    free(indices);
    return 0;
}

/* Mean, g-based and block standard errors of the window's dU/dλ (eV),
 * over all its samples in (frame, replica) order. */
static int window_statistics(const fe_samples *s, const window_samples *w, int n_blocks,
                             fe_window *out, dm_error *err)
{
    double *x = malloc(sizeof(double) * (size_t)w->n);
    if (!x) return dm_fail(err, "out of memory");
    for (long i = 0; i < w->n; i++) x[i] = s->du_dlambda[w->at[i]];
    out->mean_ev = series_mean(x, w->n);
    out->sem_ev = sqrt(series_variance(x, w->n) * out->g / (double)w->n);
    out->block_sem_ev = block_standard_error(x, w->n, n_blocks);
    free(x);
    return 0;
}

static int all_same_temperature(const fe_samples *s)
{
    for (int k = 1; k < s->n_windows; k++)
        if (fabs(s->temperature[k] - s->temperature[0]) > 1e-9 * s->temperature[0]) return 0;
    return 1;
}

/* The TI integrand of each frame, A_t = sum_k w_k <dU/dλ>_{k,t} / (k_B T_k),
 * <>_{k,t} the mean over the replicas in window k at frame t (w_k the
 * trapezoid weights), when every window has the same number of replicas in
 * every frame (then TI = mean_t A_t exactly). NULL otherwise. *failed is set
 * when the allocation fails. */
static double *frame_integrand(const fe_samples *s, const window_samples *ws, int *failed)
{
    int K = s->n_windows;
    long F = s->n_frames;
    *failed = 0;
    for (int k = 0; k < K; k++)
        if (ws[k].m <= 0) return NULL;
    double *a = calloc((size_t)F, sizeof(double)), *w = malloc(sizeof(double) * (size_t)K);
    if (!a || !w) {
        free(a);
        free(w);
        *failed = 1;
        return NULL;
    }
    trapezoid_weights(K, s->lambda, w);
    for (int k = 0; k < K; k++) {
        double scale = w[k] / (BOLTZMANN_EV_PER_K * s->temperature[k] * ws[k].m);
        for (long t = 0; t < F; t++)
            for (int j = 0; j < ws[k].m; j++) a[t] += scale * s->du_dlambda[ws[k].at[t * ws[k].m + j]];
    }
    free(w);
    return a;
}

/* TI from the window means in kT (one temperature). σ: from the frame
 * series A_t when there is one (σ² = var(A) g_A / F, blocks of A_t), which
 * includes the correlation between windows that replica exchange brings;
 * else the window errors through the trapezoid weights. The latter is
 * always kept as ti_sigma_windows. */
static void thermodynamic_integration(const fe_samples *s, fe_result *r, const double *a,
                                      int n_blocks)
{
    int K = s->n_windows;
    long F = s->n_frames;
    if (!r->single_temperature) {
        snprintf(r->ti.note, sizeof r->ti.note,
                 "not computed: the windows are at different temperatures");
        snprintf(r->ti_block.note, sizeof r->ti_block.note, "%s", r->ti.note);
        return;
    }
    double *mean = malloc(sizeof(double) * (size_t)K), *sem = malloc(sizeof(double) * (size_t)K);
    double *bsem = malloc(sizeof(double) * (size_t)K);
    if (mean && sem && bsem) {
        int blocks_ok = 1;
        for (int k = 0; k < K; k++) {
            const fe_window *w = &r->window[k];
            mean[k] = w->mean_ev / w->kt_ev;
            sem[k] = w->sem_ev / w->kt_ev;
            bsem[k] = w->block_sem_ev / w->kt_ev;
            blocks_ok = blocks_ok && isfinite(bsem[k]);
        }
        ti_trapezoid(K, s->lambda, mean, sem, &r->ti.delta_f, &r->ti_sigma_windows);
        r->ti.available = 1;
        r->ti_block.delta_f = r->ti.delta_f;
        if (a) {
            r->ti.sigma = sqrt(series_variance(a, F) * r->g_frames / (double)F);
            r->ti_block.sigma = block_standard_error(a, F, n_blocks);
        } else {
            double same_delta_f;
            r->ti.sigma = r->ti_sigma_windows;
            ti_trapezoid(K, s->lambda, mean, bsem, &same_delta_f, &r->ti_block.sigma);
        }
        r->ti_block.available = isfinite(r->ti_block.sigma) && blocks_ok;
        if (!r->ti_block.available)
            snprintf(r->ti_block.note, sizeof r->ti_block.note,
                     "not computed: fewer samples than blocks");
    } else {
        snprintf(r->ti.note, sizeof r->ti.note, "not computed: out of memory");
    }
    free(mean);
    free(sem);
    free(bsem);
}

/* 1 when some replica is in different windows at different frames. */
static int replicas_change_windows(const fe_samples *s)
{
    for (long t = 1; t < s->n_frames; t++)
        for (long r = 0; r < s->n_replicas; r++)
            if (s->window[t * s->n_replicas + r] != s->window[r]) return 1;
    return 0;
}

/* BAR between windows k and k+1 from their used samples. */
static int bar_pair(const fe_samples *s, const window_samples *ws, int k, bar_result *out,
                    dm_error *err)
{
    int K = s->n_windows;
    const window_samples *a = &ws[k], *b = &ws[k + 1];
    double *w_f = malloc(sizeof(double) * (size_t)a->n_used);
    double *w_r = malloc(sizeof(double) * (size_t)b->n_used);
    if (!w_f || !w_r) {
        free(w_f);
        free(w_r);
        return dm_fail(err, "BAR %d-%d: out of memory", k, k + 1);
    }
    const double *u = s->reduced_potential;
    for (long i = 0; i < a->n_used; i++) /* w_F = u_{k+1} - u_k on samples of k */
        w_f[i] = u[a->used[i] * K + k + 1] - u[a->used[i] * K + k];
    for (long j = 0; j < b->n_used; j++) /* w_R = u_k - u_{k+1} on samples of k+1 */
        w_r[j] = u[b->used[j] * K + k] - u[b->used[j] * K + k + 1];
    int rc = bar_estimate(w_f, a->n_used, w_r, b->n_used, out, err);
    if (rc) dm_error_prefix(err, "BAR between windows %d and %d", k, k + 1);
    free(w_f);
    free(w_r);
    return rc;
}

/* Cov(ΔF_{k-1,k}, ΔF_{k,k+1}) from the used samples of window k. */
static int neighbour_covariance(const fe_samples *s, const window_samples *ws, int k,
                                const bar_result *pair, double *cov, dm_error *err)
{
    int K = s->n_windows;
    const window_samples *w = &ws[k];
    double *w_r = malloc(sizeof(double) * (size_t)w->n_used);
    double *w_f = malloc(sizeof(double) * (size_t)w->n_used);
    if (!w_r || !w_f) {
        free(w_r);
        free(w_f);
        return dm_fail(err, "BAR: out of memory");
    }
    const double *u = s->reduced_potential;
    for (long i = 0; i < w->n_used; i++) {
        const double *ui = u + w->used[i] * K;
        w_r[i] = ui[k - 1] - ui[k]; /* reverse work of pair (k-1, k) */
        w_f[i] = ui[k + 1] - ui[k]; /* forward work of pair (k, k+1) */
    }
    *cov = bar_chain_covariance(w_r, w_f, w->n_used, ws[k - 1].n_used, ws[k + 1].n_used,
                                pair[k - 1].delta_f, pair[k].delta_f);
    free(w_r);
    free(w_f);
    return 0;
}

/* The pairs, their sum, and its σ with and without the covariance of
 * neighbouring pairs: σ² = sum_k σ_k² + 2 sum_k Cov(ΔF_{k-1,k}, ΔF_{k,k+1}). */
static int bennett(const fe_samples *s, const window_samples *ws, fe_result *r, dm_error *err)
{
    double total = 0.0, var = 0.0, cov_sum = 0.0;
    for (int k = 0; k + 1 < s->n_windows; k++) {
        if (bar_pair(s, ws, k, &r->pair[k], err)) return -1;
        total += r->pair[k].delta_f;
        var += r->pair[k].sigma * r->pair[k].sigma;
    }
    for (int k = 1; k + 1 < s->n_windows; k++) {
        double cov = 0.0;
        if (neighbour_covariance(s, ws, k, r->pair, &cov, err)) return -1;
        cov_sum += cov;
    }
    r->bar.available = 1;
    r->bar.delta_f = total;
    r->bar.sigma = sqrt(fmax(var + 2.0 * cov_sum, 0.0));
    r->bar_sigma_independent = sqrt(var);
    return 0;
}

/* MBAR on the used samples, grouped by window; starts from the cumulative
 * BAR estimates. */
static int multistate(const fe_samples *s, const window_samples *ws, fe_result *r, dm_error *err)
{
    int K = s->n_windows;
    long N = 0;
    for (int k = 0; k < K; k++) N += ws[k].n_used;
    double *u = malloc(sizeof(double) * (size_t)N * (size_t)K);
    double *w = malloc(sizeof(double) * (size_t)N * (size_t)K);
    long *n_k = malloc(sizeof(long) * (size_t)K);
    double *f_init = malloc(sizeof(double) * (size_t)K);
    double *theta = malloc(sizeof(double) * (size_t)K * (size_t)K);
    int rc = -1;
    if (!u || !w || !n_k || !f_init || !theta) {
        dm_fail(err, "MBAR: out of memory for %ld samples x %d windows", N, K);
        goto done;
    }
    long n = 0;
    for (int k = 0; k < K; k++) {
        n_k[k] = ws[k].n_used;
        for (long i = 0; i < ws[k].n_used; i++, n++)
            memcpy(u + n * K, s->reduced_potential + ws[k].used[i] * K, sizeof(double) * (size_t)K);
    }
    f_init[0] = 0.0;
    for (int k = 0; k + 1 < K; k++) f_init[k + 1] = f_init[k] + r->pair[k].delta_f;
    if (mbar_solve(K, N, u, n_k, f_init, r->mbar_f, &r->mbar_iterations, err) ||
        mbar_weights(K, N, u, n_k, r->mbar_f, w, err) ||
        mbar_covariance(K, N, w, n_k, theta, err))
        goto done;
    mbar_differences(K, r->mbar_f, theta, r->mbar_df, r->mbar_ddf);
    mbar_overlap(K, N, w, n_k, r->overlap);
    r->mbar.available = 1;
    r->mbar.delta_f = r->mbar_df[K - 1];           /* (0, K-1) */
    r->mbar.sigma = r->mbar_ddf[K - 1];
    for (int k = 0; k + 1 < K; k++)
        if (r->overlap[k * K + k + 1] < FE_POOR_OVERLAP ||
            r->overlap[(k + 1) * K + k] < FE_POOR_OVERLAP)
            r->n_poor_overlap++;
    rc = 0;
done:
    free(u);
    free(w);
    free(n_k);
    free(f_init);
    free(theta);
    return rc;
}

static int result_alloc(fe_result *r, int K, dm_error *err)
{
    size_t kk = (size_t)K * (size_t)K;
    r->n_windows = K;
    r->window = calloc((size_t)K, sizeof(fe_window));
    r->pair = calloc((size_t)K, sizeof(bar_result));
    r->mbar_f = calloc((size_t)K, sizeof(double));
    r->mbar_df = calloc(kk, sizeof(double));
    r->mbar_ddf = calloc(kk, sizeof(double));
    r->overlap = calloc(kk, sizeof(double));
    if (!r->window || !r->pair || !r->mbar_f || !r->mbar_df || !r->mbar_ddf || !r->overlap)
        return dm_fail(err, "out of memory for %d windows", K);
    return 0;
}

int fe_analyze(const fe_samples *s, const fe_options *o, fe_result *r, dm_error *err)
{
    memset(r, 0, sizeof *r);
    int K = s->n_windows;
    if (o->n_blocks < 2) return dm_fail(err, "%d blocks for block averages, expected >= 2", o->n_blocks);
    if (fe_samples_check(s, "the samples", err) || result_alloc(r, K, err)) return -1;
    r->single_temperature = all_same_temperature(s);
    r->temperature = s->temperature[0];
    r->exchange = replicas_change_windows(s);
    window_samples *ws = calloc((size_t)K, sizeof(window_samples));
    if (!ws) return dm_fail(err, "out of memory for %d windows", K);
    int rc = 0;
    for (int k = 0; k < K && rc == 0; k++) {
        fe_window *w = &r->window[k];
        w->lambda = s->lambda[k];
        w->temperature = s->temperature[k];
        w->kt_ev = BOLTZMANN_EV_PER_K * s->temperature[k];
        rc = collect_window(s, k, &ws[k], err);
        if (rc) break;
        w->n_samples = ws[k].n;
        w->regular = ws[k].m > 0;
        w->n_series = ws[k].m > 0 ? ws[k].m : 1;
        w->g = window_g(s, &ws[k], err);
        if (isnan(w->g)) rc = -1;
        if (rc == 0) rc = window_statistics(s, &ws[k], o->n_blocks, w, err);
        if (rc) dm_error_prefix(err, "window %d", k);
    }
    int failed = 0;
    double *a = rc == 0 ? frame_integrand(s, ws, &failed) : NULL;
    if (failed) rc = dm_fail(err, "out of memory for %ld frames", s->n_frames);
    r->frame_series = a != NULL;
    r->g_frames = a ? statistical_inefficiency(a, s->n_frames) : NAN;
    for (int k = 0; k < K && rc == 0; k++) {
        fe_window *w = &r->window[k];
        /* under exchange a window's own series decorrelates faster than the
         * samples do (the replica leaves, and comes back): no stride below
         * the frame series' g */
        w->stride = r->exchange && a ? fmax(w->g, r->g_frames) : w->g;
        rc = choose_used(s, &ws[k], w->stride, o->subsample, err);
        w->n_used = ws[k].n_used;
    }
    if (rc == 0) {
        thermodynamic_integration(s, r, a, o->n_blocks);
        rc = bennett(s, ws, r, err);
    }
    if (rc == 0) rc = multistate(s, ws, r, err);
    free(a);
    for (int k = 0; k < K; k++) window_samples_free(&ws[k]);
    free(ws);
    return rc;
}

void fe_result_free(fe_result *r)
{
    free(r->window);
    free(r->pair);
    free(r->mbar_f);
    free(r->mbar_df);
    free(r->mbar_ddf);
    free(r->overlap);
    memset(r, 0, sizeof *r);
}
