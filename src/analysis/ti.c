/* ti.c — trapezoid thermodynamic integration with propagated errors. */
#include "ti.h"

#include <math.h>

/* w_k: half the λ interval on each side of window k. */
static double trapezoid_weight(int k, int n_windows, const double *lambda)
{
    double left = k > 0 ? lambda[k] - lambda[k - 1] : 0.0;
    double right = k + 1 < n_windows ? lambda[k + 1] - lambda[k] : 0.0;
    return 0.5 * (left + right);
}

void trapezoid_weights(int n_windows, const double *lambda, double *w)
{
    for (int k = 0; k < n_windows; k++) w[k] = trapezoid_weight(k, n_windows, lambda);
}

void ti_trapezoid(int n_windows, const double *lambda, const double *mean, const double *sem,
                  double *delta_f, double *sigma)
{
    double f = 0.0, var = 0.0;
    for (int k = 0; k < n_windows; k++) {
        double w = trapezoid_weight(k, n_windows, lambda);
        f += w * mean[k];
        var += w * w * sem[k] * sem[k];
    }
    *delta_f = f;
    *sigma = sqrt(var);
}
