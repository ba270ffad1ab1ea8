/* bar.h — the Bennett acceptance ratio between two states 0 and 1.
 *
 * Work values in kT: w_F,i = u_1(x_i) - u_0(x_i) for the n_F samples x_i of
 * state 0, w_R,j = u_0(x_j) - u_1(x_j) for the n_R samples x_j of state 1.
 * With f(x) = 1 / (1 + e^x) (the Fermi function) and M = ln(n_F / n_R),
 * ΔF = f_1 - f_0 is the root of (Shirts et al., PRL 91, 140601, 2003)
 *     h(ΔF) = ln sum_i f(M + w_F,i - ΔF) - ln sum_j f(-M + w_R,j + ΔF) = 0,
 * which is strictly increasing in ΔF, so the root is unique; it is found by
 * a bracketed Newton iteration (bisection when Newton leaves the bracket),
 * in log-sum-exp form, to full precision.
 *
 * Asymptotic variance (Bennett 1976, eq. 10a; pymbar's BAR with
 * uncertainty_method='BAR'), with fF_i = f(M + w_F,i - ΔF),
 * fR_j = f(-M + w_R,j + ΔF):
 *     σ² = sum fF² / (sum fF)² + sum fR² / (sum fR)² - 1/n_F - 1/n_R.
 * The form that two-state MBAR gives (pymbar's uncertainty_method='MBAR'):
 *     σ²_MBAR = 1 / (sum fF (1 - fF) + sum fR (1 - fR)) - 1/n_F - 1/n_R. */
#ifndef DISTILMD_ANALYSIS_BAR_H
#define DISTILMD_ANALYSIS_BAR_H

#include "../core/error.h"

typedef struct bar_result {
    double delta_f;     /* f_1 - f_0, kT */
    double sigma;       /* Bennett's asymptotic standard deviation, kT */
    double sigma_mbar;  /* the two-state MBAR form, kT */
    int iterations;
} bar_result;

/* h(ΔF) of the BAR equation above (0 at the BAR estimate). */
double bar_zero(const double *w_f, long n_f, const double *w_r, long n_r, double delta_f);

/* Solves the BAR equation and computes both variances. Fails (naming what)
 * when a side has no samples, a work value is NaN or -inf (+inf, a sample
 * impossible in the other state, is allowed), or the iteration
 * does not converge. */
int bar_estimate(const double *w_f, long n_f, const double *w_r, long n_r, bar_result *out,
                 dm_error *err);

/* The covariance of the BAR estimates of two neighbouring pairs (a, s) and
 * (s, b) that share the n_s samples x of state s (the reverse side of the
 * first pair, the forward side of the second; all other samples are
 * independent). To first order (the delta method that gives Bennett's σ²
 * above), with f_R(x) = f(-M_as + w_R(x) + ΔF_as), w_R = u_a - u_s, and
 * f_F(x) = f(M_sb + w_F(x) - ΔF_sb), w_F = u_b - u_s,
 *     δΔF_as ∋ +δ<f_R>_s / <f_R>_s,   δΔF_sb ∋ -δ<f_F>_s / <f_F>_s,
 * so
 *     Cov(ΔF_as, ΔF_sb) = -(1/n_s) [<f_R f_F>_s / (<f_R>_s <f_F>_s) - 1]
 * (averages over the samples of s). It is positive for a smooth λ path,
 * so adding the pairs' variances alone underestimates the σ of the sum. */
double bar_chain_covariance(const double *w_r, const double *w_f, long n_s, long n_a, long n_b,
                            double delta_f_as, double delta_f_sb);

#endif
