/* ti.h — thermodynamic integration over λ windows by the trapezoid rule.
 *
 *     ΔF = ∫_0^1 <∂u/∂λ>_λ dλ ≈ sum_k w_k <∂u/∂λ>_k
 * with the trapezoid weights of the window grid λ_0 .. λ_{K-1} (strictly
 * monotonic; a decreasing grid gives negative weights, the integral from
 * λ_0 to λ_{K-1}):
 *     w_0 = (λ_1 - λ_0)/2,  w_k = (λ_{k+1} - λ_{k-1})/2,  w_{K-1} = (λ_{K-1} - λ_{K-2})/2.
 * The window means are independent, so
 *     σ²(ΔF) = sum_k w_k² σ²_k,
 * σ_k the standard error of window k's mean (e.g. from var·g/N or from
 * block averages). u is the reduced potential (kT units). */
#ifndef DISTILMD_ANALYSIS_TI_H
#define DISTILMD_ANALYSIS_TI_H

/* w[K], K >= 2. */
void trapezoid_weights(int n_windows, const double *lambda, double *w);

/* ΔF = sum w_k mean_k and σ = sqrt(sum w_k² sem_k²). */
void ti_trapezoid(int n_windows, const double *lambda, const double *mean, const double *sem,
                  double *delta_f, double *sigma);

#endif
