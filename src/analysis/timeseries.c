/* timeseries.c — statistical inefficiency, subsampling, block averages. */
#include "timeseries.h"

#include <math.h>

double series_mean(const double *x, long n)
{
    if (n < 1) return NAN;
    double s = 0.0;
    for (long i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

double series_variance(const double *x, long n)
{
    if (n < 2) return 0.0;
    double mu = series_mean(x, n), s = 0.0;
    for (long i = 0; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return s / (double)(n - 1);
}

/* sum over the series long enough of sum_{i<len-t} δx_i δx_{i+t}, and the
 * number of such pairs. */
static double lag_products(int m, const double *const *series, const long *length, double mu,
                           long t, double *pairs)
{
    double s = 0.0;
    *pairs = 0.0;
    for (int k = 0; k < m; k++) {
        const double *x = series[k];
        for (long i = 0; i + t < length[k]; i++) s += (x[i] - mu) * (x[i + t] - mu);
        if (length[k] > t) *pairs += (double)(length[k] - t);
    }
    return s;
}

double statistical_inefficiency_multiple(int m, const double *const *series, const long *length)
{
    long total = 0, longest = 0;
    double sum = 0.0;
    for (int k = 0; k < m; k++) {
        total += length[k];
        if (length[k] > longest) longest = length[k];
        for (long i = 0; i < length[k]; i++) sum += series[k][i];
    }
    if (total < 2) return 1.0;
    double mu = sum / (double)total, pairs;
    double sigma2 = lag_products(m, series, length, mu, 0, &pairs) / (double)total;
    if (!(sigma2 > 0.0)) return 1.0;
    double average_length = (double)total / (double)m;
    double g = 1.0;
    for (long t = 1; t < longest - 1; t++) {
        double c = lag_products(m, series, length, mu, t, &pairs) / (pairs * sigma2);
        if (c <= 0.0 && t > STATISTICAL_INEFFICIENCY_MINTIME) break;
        g += 2.0 * c * (1.0 - (double)t / average_length);
    }
    return g < 1.0 ? 1.0 : g;
}

double statistical_inefficiency(const double *x, long n)
{
    const double *series[1] = {x};
    long length[1] = {n};
    return statistical_inefficiency_multiple(1, series, length);
}

long uncorrelated_indices(long n, double g, long *indices)
{
    if (!(g >= 1.0)) g = 1.0;
    long count = 0;
    for (long k = 0;; k++) {
        double t = nearbyint((double)k * g); /* default rounding: half to even */
        if (t >= (double)n) break;
        if (count == 0 || (long)t != indices[count - 1]) indices[count++] = (long)t;
    }
    return count;
}

double block_standard_error(const double *x, long n, int n_blocks)
{
    if (n_blocks < 2 || n < n_blocks) return NAN;
    long b = n / n_blocks, first = n - b * n_blocks;
    double mu = series_mean(x + first, b * n_blocks); /* = the mean of the block means */
    double sq = 0.0;
    for (int j = 0; j < n_blocks; j++) {
        double m = series_mean(x + first + (long)j * b, b);
        sq += (m - mu) * (m - mu);
    }
    return sqrt(sq / ((double)n_blocks * (n_blocks - 1)));
}
