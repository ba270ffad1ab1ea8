/* mbar.c — MBAR free energies (adaptive self-consistent/Newton solver), weights,
 * asymptotic covariance and overlap (the formulas are in mbar.h). */
#include "mbar.h"

#include "linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MBAR_MAX_ITERATIONS 1000
#define MBAR_NEWTON_STEP_TOL 1e-10
#define MBAR_STEP_TOL 1e-12
#define MBAR_GRADIENT_TOL 1e-14
#define MBAR_PINV_RCOND 1e-10
#define MBAR_NEGATIVE_VARIANCE_TOL 1e-10

/* The workspace of one solve. */
typedef struct mbar_work {
    int K;
    long N;
    const double *u;
    const long *n_k;
    double *log_n;    /* [K] ln n_k (-inf for unsampled states) */
    double *log_d;    /* [N] ln D_n = ln sum_k n_k exp(f_k - u_nk) */
    double *colsum;   /* [K] sum_n W_nk */
    int *sampled;     /* [n_sampled] the state indices with n_k > 0 */
    int n_sampled;
} mbar_work;

/* ln D_n = LSE_k (ln n_k + f_k - u_nk) over the sampled states. */
static void log_denominators(const mbar_work *m, const double *f, double *log_d)
{
    for (long n = 0; n < m->N; n++) {
        const double *un = m->u + n * m->K;
        double top = -INFINITY;
        for (int s = 0; s < m->n_sampled; s++) {
            int k = m->sampled[s];
            top = fmax(top, m->log_n[k] + f[k] - un[k]);
        }
        double sum = 0.0;
        for (int s = 0; s < m->n_sampled; s++) {
            int k = m->sampled[s];
            sum += exp(m->log_n[k] + f[k] - un[k] - top);
        }
        log_d[n] = top + log(sum);
    }
}

/* colsum_k = sum_n W_nk for the sampled states (each term <= 1/n_k: no
 * overflow), given ln D at f. */
static void weight_column_sums(const mbar_work *m, const double *f, const double *log_d,
                               double *colsum)
{
    for (int s = 0; s < m->n_sampled; s++) colsum[m->sampled[s]] = 0.0;
    for (long n = 0; n < m->N; n++) {
        const double *un = m->u + n * m->K;
        for (int s = 0; s < m->n_sampled; s++) {
            int k = m->sampled[s];
            colsum[k] += exp(f[k] - un[k] - log_d[n]);
        }
    }
}

/* |g|² = sum_i (n_i (sum_n W_ni - 1))² at f; fills m->log_d and m->colsum. */
static double gradient_norm2(mbar_work *m, const double *f)
{
    log_denominators(m, f, m->log_d);
    weight_column_sums(m, f, m->log_d, m->colsum);
    double s = 0.0;
    for (int j = 0; j < m->n_sampled; j++) {
        int k = m->sampled[j];
        double g = (double)m->n_k[k] * (m->colsum[k] - 1.0);
        s += g * g;
    }
    return s;
}

/* max_i |sum_n W_ni - 1| from m->colsum. */
static double worst_normalisation(const mbar_work *m)
{
    double worst = 0.0;
    for (int j = 0; j < m->n_sampled; j++) worst = fmax(worst, fabs(m->colsum[m->sampled[j]] - 1.0));
    return worst;
}

/* f_i <- f_i - ln sum_n W_ni (= -ln sum_n exp(-u_ni) / D_n), shifted so
 * that the first sampled state has f = 0; uses m->colsum at f. */
static void self_consistent_update(const mbar_work *m, const double *f, double *f_new)
{
    memcpy(f_new, f, sizeof(double) * (size_t)m->K);
    for (int j = 0; j < m->n_sampled; j++) {
        int k = m->sampled[j];
        f_new[k] = f[k] - log(m->colsum[k]);
    }
    double ref = f_new[m->sampled[0]];
    for (int j = 0; j < m->n_sampled; j++) f_new[m->sampled[j]] -= ref;
}

/* f_new = f - H^-1 g over the sampled states but the first (held at 0);
 * uses m->log_d and m->colsum at f. Fails when H is singular (states
 * without overlap). */
static int newton_update(const mbar_work *m, const double *f, double *f_new, dm_error *err)
{
    int p = m->n_sampled - 1;
    memcpy(f_new, f, sizeof(double) * (size_t)m->K);
    if (p == 0) return 0;
    double *h = calloc((size_t)p * (size_t)p, sizeof(double));
    double *g = malloc(sizeof(double) * (size_t)p);
    double *delta = malloc(sizeof(double) * (size_t)p);
    double *wn = malloc(sizeof(double) * (size_t)p);
    if (!h || !g || !delta || !wn) {
        free(h);
        free(g);
        free(delta);
        free(wn);
        return dm_fail(err, "MBAR: out of memory (%d states)", m->K);
    }
    /* H_ij = n_i colsum_i δ_ij - n_i n_j sum_n W_ni W_nj */
    for (long n = 0; n < m->N; n++) {
        const double *un = m->u + n * m->K;
        for (int a = 0; a < p; a++) {
            int k = m->sampled[a + 1];
            wn[a] = exp(f[k] - un[k] - m->log_d[n]);
        }
        for (int a = 0; a < p; a++)
            for (int b = a; b < p; b++) h[a * p + b] -= wn[a] * wn[b];
    }
    for (int a = 0; a < p; a++) {
        int ka = m->sampled[a + 1];
        double na = (double)m->n_k[ka];
        for (int b = a; b < p; b++) {
            double nb = (double)m->n_k[m->sampled[b + 1]];
            h[a * p + b] *= na * nb;
            h[b * p + a] = h[a * p + b];
        }
        h[a * p + a] += na * m->colsum[ka];
        g[a] = -na * (m->colsum[ka] - 1.0);
    }
    int rc = solve_linear(p, h, g, delta, err);
    if (rc == 0)
        for (int a = 0; a < p; a++) f_new[m->sampled[a + 1]] = f[m->sampled[a + 1]] + delta[a];
    free(h);
    free(g);
    free(delta);
    free(wn);
    return rc;
}

/* max_k |a_k - b_k| over the sampled states. */
static double largest_change(const mbar_work *m, const double *a, const double *b)
{
    double d = 0.0;
    for (int j = 0; j < m->n_sampled; j++) d = fmax(d, fabs(a[m->sampled[j]] - b[m->sampled[j]]));
    return d;
}

/* max_k |f_k| over the sampled states. */
static double largest_magnitude(const mbar_work *m, const double *f)
{
    double d = 0.0;
    for (int j = 0; j < m->n_sampled; j++) d = fmax(d, fabs(f[m->sampled[j]]));
    return d;
}

static int check_inputs(int K, long N, const double *u, const long *n_k, dm_error *err)
{
    if (K < 1 || N < 1)
        return dm_fail(err, "MBAR: %d states and %ld samples, expected at least one of each", K,
                       N);
    long total = 0;
    for (int k = 0; k < K; k++) {
        if (n_k[k] < 0)
            return dm_fail(err, "MBAR: state %d has %ld samples, expected >= 0", k, n_k[k]);
        total += n_k[k];
    }
    if (total != N)
        return dm_fail(err, "MBAR: the states' sample counts add up to %ld, expected the %ld "
                       "samples given", total, N);
    for (long n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double x = u[n * K + k];
            if (isnan(x) || x == -INFINITY)
                return dm_fail(err, "MBAR: reduced potential of sample %ld in state %d is %g, "
                               "expected a number or +inf", n, k, x);
        }
    return 0;
}

static void work_free(mbar_work *m)
{
    free(m->log_n);
    free(m->log_d);
    free(m->colsum);
    free(m->sampled);
}

static int work_init(mbar_work *m, int K, long N, const double *u, const long *n_k,
                     dm_error *err)
{
    memset(m, 0, sizeof *m);
    m->K = K;
    m->N = N;
    m->u = u;
    m->n_k = n_k;
    m->log_n = malloc(sizeof(double) * (size_t)K);
    m->log_d = malloc(sizeof(double) * (size_t)N);
    m->colsum = calloc((size_t)K, sizeof(double));
    m->sampled = malloc(sizeof(int) * (size_t)K);
    if (!m->log_n || !m->log_d || !m->colsum || !m->sampled) {
        work_free(m);
        return dm_fail(err, "MBAR: out of memory (%ld samples, %d states)", N, K);
    }
    for (int k = 0; k < K; k++) {
        m->log_n[k] = n_k[k] > 0 ? log((double)n_k[k]) : -INFINITY;
        if (n_k[k] > 0) m->sampled[m->n_sampled++] = k;
    }
    return 0;
}

/* The adaptive iteration over the sampled states' f (f[first sampled] = 0). */
static int solve_sampled(mbar_work *m, double *f, int *iterations, dm_error *err)
{
    int K = m->K;
    double *f_sc = malloc(sizeof(double) * (size_t)K);
    double *f_nr = malloc(sizeof(double) * (size_t)K);
    if (!f_sc || !f_nr) {
        free(f_sc);
        free(f_nr);
        return dm_fail(err, "MBAR: out of memory (%d states)", K);
    }
    int rc = -1;
    double g2 = gradient_norm2(m, f);
    for (int it = 1; it <= MBAR_MAX_ITERATIONS; it++) {
        if (iterations) *iterations = it - 1;
        if (worst_normalisation(m) <= MBAR_GRADIENT_TOL) {
            rc = 0;
            break;
        }
        self_consistent_update(m, f, f_sc);
        dm_error newton_err;
        int have_newton = newton_update(m, f, f_nr, &newton_err) == 0;
        double step_nr = have_newton ? largest_change(m, f, f_nr) : INFINITY;
        double g2_sc = gradient_norm2(m, f_sc);
        double g2_nr = have_newton && isfinite(step_nr) ? gradient_norm2(m, f_nr) : INFINITY;
        int take_newton = g2_nr < g2_sc;
        double step = take_newton ? step_nr : largest_change(m, f, f_sc);
        memcpy(f, take_newton ? f_nr : f_sc, sizeof(double) * (size_t)K);
        g2 = gradient_norm2(m, f); /* leaves log_d and colsum at the new f */
        if (iterations) *iterations = it;
        double scale = fmax(1.0, largest_magnitude(m, f));
        if ((take_newton && step <= MBAR_NEWTON_STEP_TOL * scale) ||
            step <= MBAR_STEP_TOL * scale) {
            rc = 0;
            break;
        }
    }
    if (rc != 0)
        rc = dm_fail(err, "MBAR: the free energies did not converge in %d iterations (|gradient| "
                     "%g, worst sum_n W_nk - 1 = %g); the states may not overlap",
                     MBAR_MAX_ITERATIONS, sqrt(g2), worst_normalisation(m));
    free(f_sc);
    free(f_nr);
    return rc;
}

int mbar_solve(int n_states, long n_samples, const double *u, const long *n_k,
               const double *f_init, double *f, int *iterations, dm_error *err)
{
    int K = n_states;
    if (check_inputs(K, n_samples, u, n_k, err)) return -1;
    mbar_work m;
    if (work_init(&m, K, n_samples, u, n_k, err)) return -1;
    for (int k = 0; k < K; k++) f[k] = f_init ? f_init[k] : 0.0;
    double ref = f[m.sampled[0]];
    for (int k = 0; k < K; k++) f[k] = isfinite(f[k] - ref) ? f[k] - ref : 0.0;
    int rc = solve_sampled(&m, f, iterations, err);
    if (rc == 0) {
        /* unsampled states: f_k = -LSE_n (-u_nk - ln D_n) */
        log_denominators(&m, f, m.log_d);
        for (int k = 0; k < K; k++) {
            if (n_k[k] > 0) continue;
            double top = -INFINITY, sum = 0.0;
            for (long n = 0; n < n_samples; n++) top = fmax(top, -u[n * K + k] - m.log_d[n]);
            for (long n = 0; n < n_samples; n++) sum += exp(-u[n * K + k] - m.log_d[n] - top);
            f[k] = -(top + log(sum));
        }
        double f0 = f[0];
        for (int k = 0; k < K; k++) f[k] -= f0;
    }
    work_free(&m);
    return rc;
}

int mbar_weights(int n_states, long n_samples, const double *u, const long *n_k, const double *f,
                 double *w, dm_error *err)
{
    int K = n_states;
    mbar_work m;
    if (work_init(&m, K, n_samples, u, n_k, err)) return -1;
    if (m.n_sampled == 0) {
        work_free(&m);
        return dm_fail(err, "MBAR: no state has samples");
    }
    log_denominators(&m, f, m.log_d);
    for (long n = 0; n < n_samples; n++)
        for (int k = 0; k < K; k++) w[n * K + k] = exp(f[k] - u[n * K + k] - m.log_d[n]);
    work_free(&m);
    return 0;
}

/* A = W^T W, [K*K]. */
static void weight_gram(int K, long N, const double *w, double *a)
{
    memset(a, 0, sizeof(double) * (size_t)K * (size_t)K);
    for (long n = 0; n < N; n++) {
        const double *wn = w + n * K;
        for (int i = 0; i < K; i++)
            for (int j = i; j < K; j++) a[i * K + j] += wn[i] * wn[j];
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < i; j++) a[i * K + j] = a[j * K + i];
}

int mbar_covariance(int n_states, long n_samples, const double *w, const long *n_k, double *theta,
                    dm_error *err)
{
    int K = n_states;
    size_t kk = (size_t)K * (size_t)K;
    double *a = malloc(sizeof(double) * kk), *v = malloc(sizeof(double) * kk);
    double *s = malloc(sizeof(double) * (size_t)K), *inner = malloc(sizeof(double) * kk);
    double *inner_plus = malloc(sizeof(double) * kk), *b = malloc(sizeof(double) * kk);
    int rc = -1;
    if (!a || !v || !s || !inner || !inner_plus || !b) {
        dm_fail(err, "MBAR: out of memory (%d states)", K);
        goto done;
    }
    weight_gram(K, n_samples, w, a);
    if (symmetric_eigen(K, a, s, v, err)) goto done; /* W^T W = V S² V^T */
    for (int j = 0; j < K; j++) s[j] = sqrt(fmax(s[j], 0.0));
    /* inner = I - Σ V^T N V Σ */
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double vnv = 0.0;
            for (int k = 0; k < K; k++) vnv += v[k * K + i] * (double)n_k[k] * v[k * K + j];
            inner[i * K + j] = (i == j ? 1.0 : 0.0) - s[i] * vnv * s[j];
        }
    for (int i = 0; i < K; i++) /* symmetrise rounding */
        for (int j = 0; j < i; j++)
            inner[i * K + j] = inner[j * K + i] = 0.5 * (inner[i * K + j] + inner[j * K + i]);
    if (symmetric_pseudoinverse(K, inner, MBAR_PINV_RCOND, inner_plus, err)) goto done;
    /* Θ = (V Σ) inner^+ (V Σ)^T */
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) b[i * K + j] = v[i * K + j] * s[j]; /* V Σ */
    for (int p = 0; p < K; p++) /* a <- inner^+ (V Σ)^T */
        for (int j = 0; j < K; j++) {
            double t = 0.0;
            for (int q = 0; q < K; q++) t += inner_plus[p * K + q] * b[j * K + q];
            a[p * K + j] = t;
        }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double t = 0.0;
            for (int p = 0; p < K; p++) t += b[i * K + p] * a[p * K + j];
            theta[i * K + j] = t;
        }
    rc = 0;
done:
    free(a);
    free(v);
    free(s);
    free(inner);
    free(inner_plus);
    free(b);
    return rc;
}

void mbar_differences(int n_states, const double *f, const double *theta, double *df,
                      double *ddf)
{
    int K = n_states;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            df[i * K + j] = f[j] - f[i];
            double d2 = theta[i * K + i] + theta[j * K + j] - 2.0 * theta[i * K + j];
            if (d2 < 0.0 && d2 > -MBAR_NEGATIVE_VARIANCE_TOL) d2 = 0.0;
            ddf[i * K + j] = sqrt(d2); /* NaN for a clearly negative d2 */
        }
}

void mbar_overlap(int n_states, long n_samples, const double *w, const long *n_k, double *o)
{
    int K = n_states;
    weight_gram(K, n_samples, w, o);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) o[i * K + j] *= (double)n_k[j];
}
