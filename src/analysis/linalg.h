/* linalg.h — the small dense linear algebra the free-energy estimators need
 * (no LAPACK): matrices are row-major n x n arrays of double, n up to a few
 * hundred (the number of λ windows). */
#ifndef DISTILMD_ANALYSIS_LINALG_H
#define DISTILMD_ANALYSIS_LINALG_H

#include "../core/error.h"

/* Eigen-decomposition of a symmetric matrix A = V diag(w) V^T by cyclic
 * Jacobi rotations, to full double precision. a is not changed; w[n] gets
 * the eigenvalues (ascending), v[n*n] the orthonormal eigenvectors as
 * columns (v[i*n + j]: component i of eigenvector j). */
int symmetric_eigen(int n, const double *a, double *w, double *v, dm_error *err);

/* Moore-Penrose pseudo-inverse of a symmetric matrix A:
 * A^+ = sum over eigenpairs with |w_j| > rcond * max|w| of v_j v_j^T / w_j
 * (as numpy.linalg.pinv(A, rcond): the singular values of a symmetric
 * matrix are |w_j|). */
int symmetric_pseudoinverse(int n, const double *a, double rcond, double *a_plus,
                            dm_error *err);

/* Solves A x = b (A n x n, general) by Gaussian elimination with partial
 * pivoting; fails when A is singular to working precision. a and b are not
 * changed. */
int solve_linear(int n, const double *a, const double *b, double *x, dm_error *err);

#endif
