/* painn_cuda_filter_table.cu — the pair filters phi_l(d) from a spline table.
 *
 * The filter of layer l depends on the pair distance alone:
 *   phi_l(d) = W2 silu(W1 e(d) + b1) + b2   (3H outputs; e_k = rbf_k(d) fc(d)).
 * A function of one variable on [0, rc] is tabulated once per context, in
 * float64 on the GPU, at N + 1 nodes x_i = i h (h = rc / N) with its exact
 * derivative phi'(x_i) = W2 (silu'(h1) W1 e'(x_i)). Each interval
 * [x_i, x_i+1] stores, rounded to float32 once,
 *   (y_i, D_i = y_i+1 - y_i, h m_i, h m_i+1)      (m = phi', D formed in float64)
 * and an evaluation at d = (i + t) h is the cubic Hermite interpolant
 *   phi    = y_i + t^2 (3 - 2t) D_i + t (1 - t)^2 h m_i - t^2 (1 - t) h m_i+1
 *   dphi/dd = [6 t (1 - t) D_i + (1 - t)(1 - 3t) h m_i + t (3t - 2) h m_i+1] / h
 * which is C1 in d, and whose derivative is exactly what the forces use, so
 * forces are the exact gradient of the energy the engine computes.
 *
 * Table size: the smallest N in {512, ..., 4096} whose interpolation error,
 * measured in float64 against the direct evaluation at t = 1/2 (worst point
 * for phi) and t = 1/2 -+ 1/sqrt(12) (worst points for phi') of every interval,
 * column and layer, is at most 2^-22 of max|phi| and of max|phi'|: below
 * float32 resolution (2^-23 relative is one unit in the last place). For the
 * trained models: N = 2048 (427k, 38 MB), 1024 (77k, 21k).
 *
 * Evaluation replaces the per-pair filter MLP (4KH + 12H^2 FLOP per pair and
 * layer) by one 16-byte table read per output and a few FLOPs. Output layout
 * as before: filter_out[2l][pair][3H] = phi, filter_out[2l+1][pair][3H] =
 * dphi/dd; in layer 0 the columns of phi_v1, which multiplies v = 0, are
 * neither formed nor read (1/9 of the filters' memory traffic). */
#include "painn_cuda_internal.cuh"

#include <math.h>
#include <string.h>
#include <vector>

namespace {

/* Sample points per interval for the table build: the node and the three
 * points where the cubic Hermite errors of phi and phi' peak. */
constexpr int SAMPLES = 4;
__device__ __constant__ double SAMPLE_T[SAMPLES] = {0.0, 0.21132486540518713, 0.5,
                                                     0.78867513459481287};

struct filter_weights64 {
    const double *centers, *widths; /* [K] */
    const double *W1, *b1;          /* [L][H][K], [L][H] */
    const double *W2T, *b2;         /* [L][H][3H] (transposed), [L][3H] */
};

/* phi and phi' at the samples x = (i + SAMPLE_T[q]) h, point index 4i + q
 * (the last node: point 4N); block (H threads) per point and layer:
 * out[l][point][3H] = (phi, phi') */
__global__ void filter_exact_kernel(int H, int K, double rc, double h, int n_points,
                                    filter_weights64 w, double2 *__restrict__ out)
{
    extern __shared__ double act[]; /* a [H], a' [H] */
    const int pt = blockIdx.x, l = blockIdx.y, c = threadIdx.x;
    const double x = ((pt / SAMPLES) + SAMPLE_T[pt % SAMPLES]) * h;
    const double fc = x < rc ? 0.5 * (cos(M_PI * x / rc) + 1.0) : 0.0;
    const double dfc = x < rc ? -0.5 * M_PI / rc * sin(M_PI * x / rc) : 0.0;
    const double *W1 = w.W1 + ((size_t)l * H + c) * K;
    double z = w.b1[(size_t)l * H + c], zd = 0.0;
    for (int k = 0; k < K; k++) {
        const double t = (x - w.centers[k]) / w.widths[k], rbf = exp(-t * t);
        const double e = rbf * fc;
        const double de = rbf * (-2.0 * (x - w.centers[k]) / (w.widths[k] * w.widths[k])) * fc +
                          rbf * dfc;
        z += W1[k] * e;
        zd += W1[k] * de;
    }
    const double sig = 1.0 / (1.0 + exp(-z));
    act[c] = z * sig;
    act[H + c] = sig * (1.0 + z * (1.0 - sig)) * zd;
    __syncthreads();
    const int N3 = 3 * H;
    const double *W2T = w.W2T + (size_t)l * H * N3;
    for (int col = c; col < N3; col += H) {
        double y = w.b2[(size_t)l * N3 + col], m = 0.0;
        for (int j = 0; j < H; j++) {
            y += W2T[(size_t)j * N3 + col] * act[j];
            m += W2T[(size_t)j * N3 + col] * act[H + j];
        }
        out[((size_t)l * n_points + pt) * N3 + col] = make_double2(y, m);
    }
}

/* Cubic Hermite on one interval, in float64 (for the error check). */
__device__ void hermite64(double t, double h, double y0, double D, double m0, double m1,
                          double *p, double *dp)
{
    *p = y0 + t * t * (3.0 - 2.0 * t) * D + t * (1.0 - t) * (1.0 - t) * h * m0 -
         t * t * (1.0 - t) * h * m1;
    *dp = (6.0 * t * (1.0 - t) * D + (1.0 - t) * (1.0 - 3.0 * t) * h * m0 +
           t * (3.0 * t - 2.0) * h * m1) /
          h;
}

/* Non-negative doubles order like their bit patterns: a deterministic max. */
__device__ void atomic_max_nonneg(unsigned long long *a, double v)
{
    atomicMax(a, (unsigned long long)__double_as_longlong(v));
}

/* Thread per (layer, interval, column): pack the interval and record
 * max |error| of phi and phi' at the samples, and max |phi|, |phi'|. */
__global__ void filter_pack_kernel(int N, int N3, int L, double h, const double2 *__restrict__ ex,
                                   float4 *__restrict__ table, unsigned long long *stats)
{
    const long total = (long)L * N * N3;
    const int n_points = SAMPLES * N + 1;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total;
         t += (long)gridDim.x * blockDim.x) {
        const int col = (int)(t % N3), i = (int)(t / N3 % N), l = (int)(t / N3 / N);
        const double2 *row = ex + (size_t)l * n_points * N3 + col;
        const double2 a = row[(size_t)SAMPLES * i * N3], b = row[(size_t)SAMPLES * (i + 1) * N3];
        const double D = b.x - a.x;
        table[t] = make_float4((float)a.x, (float)D, (float)(h * a.y), (float)(h * b.y));
        double err_v = 0.0, err_d = 0.0;
        for (int q = 1; q < SAMPLES; q++) {
            const double2 s = row[(size_t)(SAMPLES * i + q) * N3];
            double p, dp;
            hermite64(SAMPLE_T[q], h, a.x, D, a.y, b.y, &p, &dp);
            err_v = fmax(err_v, fabs(p - s.x));
            err_d = fmax(err_d, fabs(dp - s.y));
        }
        atomic_max_nonneg(&stats[0], err_v);
        atomic_max_nonneg(&stats[1], err_d);
        atomic_max_nonneg(&stats[2], fmax(fabs(a.x), fabs(b.x)));
        atomic_max_nonneg(&stats[3], fmax(fabs(a.y), fabs(b.y)));
    }
}

/* Block of 3H / CPT threads per group of BP pairs of one layer; thread owns
 * columns tid + k blockDim (coalesced table reads and output writes). */
constexpr int TABLE_BP = 8;

__global__ void filter_table_kernel(int N3, int N, float inv_h, const painn_cuda_counts *counts,
                                    const float4 *__restrict__ pair_u,
                                    const float4 *__restrict__ table,
                                    float *__restrict__ filter_out, long pair_rows)
{
    painn_grid_begin();
    const int n_pairs = counts->n_pairs, l = blockIdx.y, H = N3 / 3;
    const float4 *tl = table + (size_t)l * N * N3;
    float *phi = filter_out + (size_t)(2 * l) * pair_rows * N3;
    float *dphi = phi + (size_t)pair_rows * N3;
    for (long p0 = (long)blockIdx.x * TABLE_BP; p0 < n_pairs; p0 += (long)gridDim.x * TABLE_BP) {
        const int np = (int)min((long)TABLE_BP, n_pairs - p0);
        for (int q = 0; q < np; q++) {
            const long p = p0 + q;
            const painn_hermite w = painn_hermite_at(pair_u[p].w, inv_h, N);
            const float4 *ti = tl + (size_t)w.i * N3;
            for (int col = threadIdx.x; col < N3; col += blockDim.x) {
                if (l == 0 && col >= H && col < 2 * H) continue; /* phi_v1 acts on v = 0 */
                const float4 v = ti[col];
                phi[p * N3 + col] = painn_hermite_phi(w, v);
                dphi[p * N3 + col] = painn_hermite_dphi(w, v);
            }
        }
    }
}

/* Device copies of the filter weights in float64 (W2 transposed). */
struct weights64_upload {
    std::vector<double *> ptrs;
    ~weights64_upload()
    {
        for (double *p : ptrs) cudaFree(p);
    }
    int put(const double *const *src, int count, int rows, int cols, bool transpose,
            const double **dst, dm_error *err)
    {
        const std::vector<double> host = pack_matrices<double>(src, count, rows, cols, transpose);
        double *d = nullptr;
        CUDA_TRY(cudaMalloc(&d, sizeof(double) * host.size()));
        ptrs.push_back(d);
        CUDA_TRY(cudaMemcpy(d, host.data(), sizeof(double) * host.size(), cudaMemcpyHostToDevice));
        *dst = d;
        return 0;
    }
};

/* Builds the table with N intervals; stats = max err phi, max err phi',
 * max |phi|, max |phi'|. */
int build_table(painn_cuda *c, const filter_weights64 &w, double rc, int N, float4 **table,
                double stats[4], dm_error *err)
{
    const int H = c->H, L = c->L, N3 = 3 * H, n_points = SAMPLES * N + 1;
    const double h = rc / N;
    double2 *exact = nullptr;
    unsigned long long *dstats = nullptr;
    CUDA_TRY(cudaMalloc(&exact, sizeof(double2) * (size_t)L * n_points * N3));
    cudaError_t e = cudaMalloc(&dstats, 4 * sizeof *dstats);
    if (e == cudaSuccess) e = cudaMemset(dstats, 0, 4 * sizeof *dstats);
    if (e == cudaSuccess) e = cudaMalloc(table, sizeof(float4) * (size_t)L * N * N3);
    if (e == cudaSuccess) {
        filter_exact_kernel<<<dim3(n_points, L), H, 2 * H * sizeof(double)>>>(
            H, c->K, rc, h, n_points, w, exact);
        filter_pack_kernel<<<c->sm_count * 8, 256>>>(N, N3, L, h, exact, *table, dstats);
        e = cudaGetLastError();
    }
    unsigned long long s[4] = {0, 0, 0, 0};
    if (e == cudaSuccess) e = cudaMemcpy(s, dstats, sizeof s, cudaMemcpyDeviceToHost);
    cudaFree(exact);
    cudaFree(dstats);
    if (e != cudaSuccess) {
        cudaFree(*table);
        *table = nullptr;
        return dm_fail(err, "building the filter table: %s", cudaGetErrorString(e));
    }
    for (int k = 0; k < 4; k++) memcpy(&stats[k], &s[k], sizeof(double));
    return 0;
}

} // namespace

int painn_filter_table_create(painn_cuda *c, const painn_model *m, dm_error *err)
{
    const int L = m->L, H = m->H, K = m->K;
    std::vector<const double *> W1(L), b1(L), W2(L), b2(L);
    for (int l = 0; l < L; l++)
        W1[l] = m->layers[l].W1, b1[l] = m->layers[l].b1, W2[l] = m->layers[l].W2,
        b2[l] = m->layers[l].b2;
    weights64_upload up;
    filter_weights64 w = {};
    const double *one[1];
    if ((one[0] = m->rbf_centers, up.put(one, 1, 1, K, false, &w.centers, err)) ||
        (one[0] = m->rbf_widths, up.put(one, 1, 1, K, false, &w.widths, err)) ||
        up.put(W1.data(), L, H, K, false, &w.W1, err) ||
        up.put(b1.data(), L, 1, H, false, &w.b1, err) ||
        up.put(W2.data(), L, 3 * H, H, true, &w.W2T, err) ||
        up.put(b2.data(), L, 1, 3 * H, false, &w.b2, err))
        return -1;
    const double limit = ldexp(1.0, -22);
    double stats[4] = {0, 0, 0, 0};
    for (int N = 512; N <= 4096; N *= 2) {
        float4 *table = nullptr;
        if (build_table(c, w, m->cutoff, N, &table, stats, err)) return -1;
        if (stats[0] <= limit * stats[2] && stats[1] <= limit * stats[3]) {
            c->filter_table = table;
            c->device_bytes += sizeof(float4) * (size_t)c->L * N * 3 * c->H;
            c->table_n = N;
            c->table_inv_h = (float)(N / m->cutoff);
            c->table_error[0] = stats[0] / stats[2];
            c->table_error[1] = stats[1] / stats[3];
            return 0;
        }
        cudaFree(table);
    }
    return dm_fail(err,
                   "%s: the filter table does not reach float32 accuracy with 4096 intervals "
                   "(relative error %.2g in phi, %.2g in dphi/dd; limit %.2g): radial basis "
                   "too narrow for the CUDA platform",
                   m->path, stats[0] / stats[2], stats[1] / stats[3], limit);
}

cudaError_t painn_launch_pair_filters(const painn_cuda *c, cudaStream_t s)
{
    if (c->pair_messages) return cudaSuccess; /* evaluated inside the pair kernels */
    const int N3 = 3 * c->H;
    const int threads = N3 >= 384 ? 128 : N3 >= 192 ? 64 : 32;
    dim3 grid(painn_grid(c->pair_cap, TABLE_BP, c->sm_count, 16), c->L);
    painn_launch(c->use_pdl, filter_table_kernel, grid, threads, 0, s, N3, c->table_n,
                 c->table_inv_h, c->counts, c->pair_u, c->filter_table, c->filter_out,
                 c->pair_rows);
    return cudaGetLastError();
}
