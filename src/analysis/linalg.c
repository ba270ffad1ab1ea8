/* linalg.c — symmetric eigen-decomposition (cyclic Jacobi), symmetric
 * pseudo-inverse, and a pivoted Gaussian elimination. */
#include "linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JACOBI_MAX_SWEEPS 100

/* Sum of squares of the strictly upper off-diagonal elements. */
static double off_diagonal_norm2(int n, const double *a)
{
    double s = 0.0;
    for (int p = 0; p < n; p++)
        for (int q = p + 1; q < n; q++) s += a[p * n + q] * a[p * n + q];
    return s;
}

/* The Jacobi rotation J (J_pp = J_qq = c, J_pq = s, J_qp = -s) that zeroes
 * a_pq of J^T A J: t = tan(angle) is the smaller root of
 * t^2 + 2θ t - 1 = 0, θ = (a_qq - a_pp) / (2 a_pq). */
static void jacobi_angle(double app, double aqq, double apq, double *c, double *s)
{
    double theta = (aqq - app) / (2.0 * apq);
    double t;
    if (fabs(theta) > 1e150)
        t = 0.5 / theta;
    else
        t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
    *c = 1.0 / sqrt(t * t + 1.0);
    *s = t * *c;
}

/* A <- J^T A J and V <- V J for the rotation in the (p, q) plane. */
static void jacobi_rotate(int n, double *a, double *v, int p, int q, double c, double s)
{
    for (int k = 0; k < n; k++) { /* A J: columns p and q */
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (int k = 0; k < n; k++) { /* J^T (A J): rows p and q */
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
    a[p * n + q] = a[q * n + p] = 0.0;
    for (int k = 0; k < n; k++) { /* V J */
        double vkp = v[k * n + p], vkq = v[k * n + q];
        v[k * n + p] = c * vkp - s * vkq;
        v[k * n + q] = s * vkp + c * vkq;
    }
}

/* Eigenvalues ascending, eigenvector columns permuted with them. */
static void sort_eigenpairs(int n, double *w, double *v)
{
    for (int i = 0; i < n; i++) {
        int m = i;
        for (int j = i + 1; j < n; j++)
            if (w[j] < w[m]) m = j;
        if (m == i) continue;
        double t = w[i];
        w[i] = w[m];
        w[m] = t;
        for (int k = 0; k < n; k++) {
            t = v[k * n + i];
            v[k * n + i] = v[k * n + m];
            v[k * n + m] = t;
        }
    }
}

int symmetric_eigen(int n, const double *a, double *w, double *v, dm_error *err)
{
    if (n < 1) return dm_fail(err, "symmetric_eigen: matrix order %d, expected >= 1", n);
    double *b = malloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!b) return dm_fail(err, "symmetric_eigen: out of memory (order %d)", n);
    double total = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double x = a[i * n + j];
            if (!isfinite(x)) {
                free(b);
                return dm_fail(err, "symmetric_eigen: element (%d, %d) is %g, expected a "
                               "finite number", i, j, x);
            }
            b[i * n + j] = 0.5 * (x + a[j * n + i]); /* symmetrise rounding */
            v[i * n + j] = i == j ? 1.0 : 0.0;
            total += x * x;
        }
    int converged = 0;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; sweep++) {
        double off = off_diagonal_norm2(n, b);
        if (off == 0.0 || off <= 1e-36 * total) {
            converged = 1;
            break;
        }
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = b[p * n + q];
                if (apq == 0.0) continue;
                /* negligible next to both diagonal elements: drop it */
                if (sweep > 3 && fabs(b[p * n + p]) + 1e3 * fabs(apq) == fabs(b[p * n + p]) &&
                    fabs(b[q * n + q]) + 1e3 * fabs(apq) == fabs(b[q * n + q])) {
                    b[p * n + q] = b[q * n + p] = 0.0;
                    continue;
                }
                double c, s;
                jacobi_angle(b[p * n + p], b[q * n + q], apq, &c, &s);
                jacobi_rotate(n, b, v, p, q, c, s);
            }
    }
    if (!converged && off_diagonal_norm2(n, b) > 1e-30 * total) {
        free(b);
        return dm_fail(err, "symmetric_eigen: Jacobi iteration did not converge in %d sweeps "
                       "(order %d)", JACOBI_MAX_SWEEPS, n);
    }
    for (int i = 0; i < n; i++) w[i] = b[i * n + i];
    free(b);
    sort_eigenpairs(n, w, v);
    return 0;
}

int symmetric_pseudoinverse(int n, const double *a, double rcond, double *a_plus,
                            dm_error *err)
{
    double *w = malloc(sizeof(double) * (size_t)n);
    double *v = malloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!w || !v) {
        free(w);
        free(v);
        return dm_fail(err, "symmetric_pseudoinverse: out of memory (order %d)", n);
    }
    if (symmetric_eigen(n, a, w, v, err)) {
        free(w);
        free(v);
        return -1;
    }
    double largest = 0.0;
    for (int j = 0; j < n; j++)
        if (fabs(w[j]) > largest) largest = fabs(w[j]);
    double cutoff = rcond * largest;
    memset(a_plus, 0, sizeof(double) * (size_t)n * (size_t)n);
    for (int j = 0; j < n; j++) {
        if (!(fabs(w[j]) > cutoff)) continue;
        double inv = 1.0 / w[j];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) a_plus[r * n + c] += v[r * n + j] * inv * v[c * n + j];
    }
    free(w);
    free(v);
    return 0;
}

int solve_linear(int n, const double *a, const double *b, double *x, dm_error *err)
{
    if (n < 1) return 0;
    double *m = malloc(sizeof(double) * (size_t)n * (size_t)(n + 1)); /* [A | b] */
    if (!m) return dm_fail(err, "solve_linear: out of memory (order %d)", n);
    double scale = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            m[i * (n + 1) + j] = a[i * n + j];
            if (fabs(a[i * n + j]) > scale) scale = fabs(a[i * n + j]);
        }
        m[i * (n + 1) + n] = b[i];
    }
    for (int col = 0; col < n; col++) {
        int pivot = col;
        for (int i = col + 1; i < n; i++)
            if (fabs(m[i * (n + 1) + col]) > fabs(m[pivot * (n + 1) + col])) pivot = i;
        double p = m[pivot * (n + 1) + col];
        if (!(fabs(p) > n * DBL_EPSILON * scale)) {
            free(m);
            return dm_fail(err, "solve_linear: the %dx%d matrix is singular to working "
                           "precision (pivot %g in column %d)", n, n, p, col);
        }
        if (pivot != col)
            for (int j = 0; j <= n; j++) {
                double t = m[col * (n + 1) + j];
                m[col * (n + 1) + j] = m[pivot * (n + 1) + j];
                m[pivot * (n + 1) + j] = t;
            }
        for (int i = col + 1; i < n; i++) {
            double f = m[i * (n + 1) + col] / p;
            if (f == 0.0) continue;
            for (int j = col; j <= n; j++) m[i * (n + 1) + j] -= f * m[col * (n + 1) + j];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = m[i * (n + 1) + n];
        for (int j = i + 1; j < n; j++) s -= m[i * (n + 1) + j] * x[j];
        x[i] = s / m[i * (n + 1) + i];
    }
    free(m);
    return 0;
}
