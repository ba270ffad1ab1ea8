/* mbar.h — the multistate Bennett acceptance ratio (Shirts & Chodera,
 * J. Chem. Phys. 129, 124105, 2008).
 *
 * N samples x_n were drawn from K states, n_k of them from state k (which
 * sample came from which state does not enter the equations, only the
 * counts). u[n*K + k] = u_k(x_n) is the reduced potential of sample n in
 * state k. The dimensionless free energies f_k solve
 *     f_i = -ln sum_n exp(-u_i(x_n)) / sum_k n_k exp(f_k - u_k(x_n)),
 * determined up to a constant; they are reported with f_0 = 0. The
 * normalised weights are
 *     W_nk = exp(f_k - u_k(x_n)) / sum_l n_l exp(f_l - u_l(x_n)),
 * with sum_n W_nk = 1 for every state at the solution.
 *
 * Solver (pymbar's "adaptive"): the f_k of the sampled states minimise the
 * convex function
 *     A(f) = sum_n ln sum_k n_k exp(f_k - u_nk) - sum_k n_k f_k,
 * gradient g_i = n_i (sum_n W_ni - 1), Hessian
 *     H_ij = n_i sum_n W_ni δ_ij - n_i n_j sum_n W_ni W_nj.
 * Each iteration computes both the self-consistent update
 * f_i <- f_i - ln sum_n W_ni and the Newton step (H restricted to the states
 * other than the first sampled one, whose f is held at 0) and keeps the one
 * with the smaller |g|; all sums over states are log-sum-exp. It stops when
 * a Newton step is below 1e-10 (quadratic convergence: the error is then at
 * the rounding level, ~1e-14 kT), when any step is below 1e-12 (pymbar's
 * criterion; for a self-consistent step, max_i |ln sum_n W_ni| — the
 * equations hold to 1e-12 — which is what stops it when the states barely
 * overlap and Newton steps are rounding noise), or when every
 * |sum_n W_ni - 1| <= 1e-14. (Steps are relative to max(1, max_k |f_k|).)
 * States without samples get f_k = -ln sum_n exp(-u_nk) / D_n afterwards.
 *
 * Uncertainty: the asymptotic covariance of the f_k (Shirts & Chodera
 * 2008, eq. D4/D5; pymbar's method 'svd-ew'): with W^T W = V S² V^T (its
 * eigen-decomposition, negative rounding in S² set to 0), Σ = diag(S),
 * N = diag(n_k),
 *     Θ = V Σ (I - Σ V^T N V Σ)^+ Σ V^T,
 * ^+ the pseudo-inverse with relative cutoff 1e-10; then
 *     δ²(f_j - f_i) = Θ_ii + Θ_jj - 2 Θ_ij
 * (a negative rounding residue above -1e-10 is set to 0).
 *
 * Overlap (pymbar's computeOverlap): O_ij = n_j sum_n W_ni W_nj, the
 * probability that a sample of state i is observed in state j; every row
 * sums to 1. */
#ifndef DISTILMD_ANALYSIS_MBAR_H
#define DISTILMD_ANALYSIS_MBAR_H

#include "../core/error.h"

/* The f_k (f_0 = 0). f_init (may be NULL: zeros) is a starting guess, e.g.
 * cumulative BAR estimates. Fails when no state has samples, a u value is
 * NaN or -inf, the counts do not add up to N, or the iteration does not
 * converge. *iterations (may be NULL) gets the number of iterations. */
int mbar_solve(int n_states, long n_samples, const double *u, const long *n_k,
               const double *f_init, double *f, int *iterations, dm_error *err);

/* W[n*K + k] at the given f. */
int mbar_weights(int n_states, long n_samples, const double *u, const long *n_k, const double *f,
                 double *w, dm_error *err);

/* Θ[K*K] from the weights. */
int mbar_covariance(int n_states, long n_samples, const double *w, const long *n_k, double *theta,
                    dm_error *err);

/* Δf_ij = f_j - f_i and its standard deviation δ_ij, both [K*K]. */
void mbar_differences(int n_states, const double *f, const double *theta, double *df,
                      double *ddf);

/* O[K*K]. */
void mbar_overlap(int n_states, long n_samples, const double *w, const long *n_k, double *o);

#endif
