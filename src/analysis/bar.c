/* bar.c — Bennett acceptance ratio: the self-consistent equation solved by
 * safeguarded Newton iteration, and its asymptotic variance. */
#include "bar.h"

#include <float.h>
#include <math.h>

#define BAR_MAX_ITERATIONS 500
#define BAR_MAX_EXPANSIONS 200

/* ln f(x) = -ln(1 + e^x), without overflow. */
static double log_fermi(double x)
{
    return -(fmax(x, 0.0) + log1p(exp(-fabs(x))));
}

/* For the terms ln f(a_i + s) (s a shift): L = ln sum_i f(a_i + s) and
 * D = sum_i p_i (1 - f(a_i + s)), p_i = f_i / sum f, which is
 * -dL/ds. */
static void log_sum_fermi(const double *a, long n, double s, double *log_sum, double *slope)
{
    double m = -INFINITY;
    for (long i = 0; i < n; i++) m = fmax(m, log_fermi(a[i] + s));
    double total = 0.0, weighted = 0.0;
    for (long i = 0; i < n; i++) {
        double l = log_fermi(a[i] + s);
        double p = exp(l - m);
        total += p;
        weighted += p * (1.0 - exp(l));
    }
    *log_sum = m + log(total);
    *slope = weighted / total;
}

/* h(ΔF) and dh/dΔF > 0. The forward terms are f(M + w_F - ΔF) and the
 * reverse ones f(-M + w_R + ΔF); M is folded into the shifts. */
static double bar_h(const double *w_f, long n_f, const double *w_r, long n_r, double delta_f,
                    double *dh)
{
    double m = log((double)n_f / (double)n_r);
    double lf, sf, lr, sr;
    log_sum_fermi(w_f, n_f, m - delta_f, &lf, &sf);
    log_sum_fermi(w_r, n_r, -m + delta_f, &lr, &sr);
    if (dh) *dh = sf + sr;
    return lf - lr;
}

double bar_zero(const double *w_f, long n_f, const double *w_r, long n_r, double delta_f)
{
    return bar_h(w_f, n_f, w_r, n_r, delta_f, NULL);
}

/* sum e^{2 l_i} / (sum e^{l_i})², l_i = ln f(a_i + s): scale-free in e^{l}. */
static double fermi_square_ratio(const double *a, long n, double s)
{
    double m = -INFINITY;
    for (long i = 0; i < n; i++) m = fmax(m, log_fermi(a[i] + s));
    double s1 = 0.0, s2 = 0.0;
    for (long i = 0; i < n; i++) {
        double p = exp(log_fermi(a[i] + s) - m);
        s1 += p;
        s2 += p * p;
    }
    return s2 / (s1 * s1);
}

/* sum f(a_i + s) (1 - f(a_i + s)) = sum f(x) f(-x). */
static double fermi_variance_sum(const double *a, long n, double s)
{
    double total = 0.0;
    for (long i = 0; i < n; i++) {
        double x = a[i] + s;
        total += exp(log_fermi(x) + log_fermi(-x));
    }
    return total;
}

/* The mean of the finite values (a work of +inf, a configuration impossible
 * in the other state, contributes f = 0 to the BAR sums). */
static double finite_mean(const double *x, long n)
{
    double s = 0.0;
    long count = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i];
            count++;
        }
    return s / (double)count;
}

/* An interval [lo, hi] with h(lo) <= 0 <= h(hi), grown from the
 * mean-work bounds -<w_R> and <w_F> (Jensen: -<w_R> <= ΔF <= <w_F> in the
 * large-sample limit). */
static int bar_bracket(const double *w_f, long n_f, const double *w_r, long n_r, double *lo,
                       double *hi, dm_error *err)
{
    double a = -finite_mean(w_r, n_r), b = finite_mean(w_f, n_f);
    *lo = fmin(a, b) - 0.5;
    *hi = fmax(a, b) + 0.5;
    for (int k = 0; k < BAR_MAX_EXPANSIONS; k++) {
        double h_lo = bar_zero(w_f, n_f, w_r, n_r, *lo);
        double h_hi = bar_zero(w_f, n_f, w_r, n_r, *hi);
        if (h_lo <= 0.0 && h_hi >= 0.0) return 0;
        double width = *hi - *lo;
        if (h_lo > 0.0) *lo -= width;
        if (h_hi < 0.0) *hi += width;
    }
    return dm_fail(err, "BAR: could not bracket the root of the BAR equation (from %g to %g kT)",
                   *lo, *hi);
}

/* The root of h in [lo, hi]: Newton steps, bisection when a step leaves the
 * bracket; stops when the step is below the resolution of ΔF. */
static int bar_solve(const double *w_f, long n_f, const double *w_r, long n_r, double lo,
                     double hi, double *root, int *iterations, dm_error *err)
{
    double x = 0.5 * (lo + hi);
    for (int it = 1; it <= BAR_MAX_ITERATIONS; it++) {
        double dh, h = bar_h(w_f, n_f, w_r, n_r, x, &dh);
        *iterations = it;
        if (h == 0.0) {
            *root = x;
            return 0;
        }
        if (h < 0.0) lo = x;
        else hi = x;
        double next = x - h / dh, scale = fmax(1.0, fabs(x));
        int newton = dh > 0.0 && next > lo && next < hi;
        if (!newton) next = 0.5 * (lo + hi);
        double step = fabs(next - x);
        x = next;
        /* Newton converges quadratically: after a step of 1e-8 the error of
         * x is at the rounding level of h, and further steps only chase
         * that noise. */
        if ((newton && step <= 1e-8 * scale) || hi - lo <= 4.0 * DBL_EPSILON * scale) {
            *root = x;
            return 0;
        }
    }
    return dm_fail(err, "BAR: the iteration did not converge in %d steps (ΔF in "
                   "[%.17g, %.17g] kT)", BAR_MAX_ITERATIONS, lo, hi);
}

/* Work values are numbers or +inf, at least one finite. */
static int check_work(const double *w, long n, const char *side, dm_error *err)
{
    long finite = 0;
    for (long i = 0; i < n; i++) {
        if (isnan(w[i]) || w[i] == -INFINITY)
            return dm_fail(err, "BAR: %s work value %ld is %g, expected a number or +inf", side,
                           i, w[i]);
        if (isfinite(w[i])) finite++;
    }
    if (finite == 0)
        return dm_fail(err, "BAR: every %s work value is +inf: the states do not overlap", side);
    return 0;
}

int bar_estimate(const double *w_f, long n_f, const double *w_r, long n_r, bar_result *out,
                 dm_error *err)
{
    if (n_f < 1 || n_r < 1)
        return dm_fail(err, "BAR: %ld forward and %ld reverse work values, expected at least "
                       "one of each", n_f, n_r);
    if (check_work(w_f, n_f, "forward", err) || check_work(w_r, n_r, "reverse", err)) return -1;
    double lo, hi;
    if (bar_bracket(w_f, n_f, w_r, n_r, &lo, &hi, err)) return -1;
    if (bar_solve(w_f, n_f, w_r, n_r, lo, hi, &out->delta_f, &out->iterations, err)) return -1;
    double m = log((double)n_f / (double)n_r);
    double shift_f = m - out->delta_f, shift_r = -m + out->delta_f;
    double nrat = 1.0 / (double)n_f + 1.0 / (double)n_r;
    double var = fermi_square_ratio(w_f, n_f, shift_f) + fermi_square_ratio(w_r, n_r, shift_r) -
                 nrat;
    double var_mbar = 1.0 / (fermi_variance_sum(w_f, n_f, shift_f) +
                             fermi_variance_sum(w_r, n_r, shift_r)) - nrat;
    out->sigma = sqrt(fmax(var, 0.0));
    out->sigma_mbar = sqrt(fmax(var_mbar, 0.0));
    return 0;
}

/* ln <f(a + s)> = ln (1/n) sum_i f(a_i + s). */
static double log_mean_fermi(const double *a, long n, double s)
{
    double m = -INFINITY, total = 0.0;
    for (long i = 0; i < n; i++) m = fmax(m, log_fermi(a[i] + s));
    for (long i = 0; i < n; i++) total += exp(log_fermi(a[i] + s) - m);
    return m + log(total / (double)n);
}

double bar_chain_covariance(const double *w_r, const double *w_f, long n_s, long n_a, long n_b,
                            double delta_f_as, double delta_f_sb)
{
    double m_as = log((double)n_a / (double)n_s), m_sb = log((double)n_s / (double)n_b);
    double shift_r = -m_as + delta_f_as, shift_f = m_sb - delta_f_sb;
    double log_mean_r = log_mean_fermi(w_r, n_s, shift_r);
    double log_mean_f = log_mean_fermi(w_f, n_s, shift_f);
    double sum = 0.0; /* sum_i ρ_R,i ρ_F,i, ρ = f / <f> */
    for (long i = 0; i < n_s; i++)
        sum += exp(log_fermi(w_r[i] + shift_r) - log_mean_r + log_fermi(w_f[i] + shift_f) -
                   log_mean_f);
    return -(sum / (double)n_s - 1.0) / (double)n_s;
}
