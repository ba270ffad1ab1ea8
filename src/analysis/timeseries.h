/* timeseries.h — correlated time series: statistical inefficiency,
 * decorrelated subsampling and block averages.
 *
 * The statistical inefficiency g of a stationary series is the factor by
 * which correlation inflates the variance of its mean:
 *     σ²(mean) = σ² g / N,   g = 1 + 2 τ,
 * so that N / g samples are "effectively independent". */
#ifndef DISTILMD_ANALYSIS_TIMESERIES_H
#define DISTILMD_ANALYSIS_TIMESERIES_H

/* The smallest lag at which the sum of the autocorrelation function may stop
 * (pymbar's `mintime`): C(t) <= 0 ends the sum only once t > this. */
#define STATISTICAL_INEFFICIENCY_MINTIME 3

/* g of one series x[0..n) (pymbar's timeseries.statisticalInefficiency with
 * fast=False, mintime=3):
 *     δx_i = x_i - mean(x),  σ² = mean(δx²),
 *     C(t) = sum_{i<n-t} δx_i δx_{i+t} / ((n - t) σ²),
 *     g = 1 + 2 sum_{t=1}^{t_stop-1} (1 - t/n) C(t),
 * where t_stop is the first lag t > mintime with C(t) <= 0 (or n - 1);
 * g >= 1. A constant series (σ² = 0) has g = 1. */
double statistical_inefficiency(const double *x, long n);

/* g of m series of the same stationary process (pymbar's
 * statisticalInefficiencyMultiple, with mintime 3): the mean and σ² are
 * pooled over all samples, C(t) sums the lag-t products of every series
 * long enough and divides by their number of pairs, and (1 - t/n) uses the
 * average length. With m = 1 this is statistical_inefficiency. */
double statistical_inefficiency_multiple(int m, const double *const *series, const long *length);

/* The indices of decorrelated samples of a series of n samples with
 * statistical inefficiency g (pymbar's subsampleCorrelatedData, conservative
 * = False): i_k = round(k g) for k = 0, 1, ... while i_k < n, repeats dropped
 * (round half to even, as Python's round). Writes them to indices (room for n)
 * and returns their number. */
long uncorrelated_indices(long n, double g, long *indices);

/* Mean and unbiased sample variance sum (x - mean)² / (n - 1) (0 for n < 2). */
double series_mean(const double *x, long n);
double series_variance(const double *x, long n);

/* Standard error of the mean of x[0..n) from n_blocks block averages: the
 * last n_blocks*b samples (b = n / n_blocks; the n mod n_blocks oldest ones
 * are left out) make blocks of b consecutive samples with means m_j, and
 *     σ²(mean) = sum_j (m_j - mean(m))² / (n_blocks (n_blocks - 1)).
 * NaN when n_blocks < 2 or there are fewer than n_blocks samples. */
double block_standard_error(const double *x, long n, int n_blocks);

#endif
