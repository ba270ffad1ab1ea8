/* painn_cuda_forward.cu — the forward pass, and the readout's reverse pass.
 *
 * Filters (once per unordered pair, per layer, one fused kernel): e_k =
 * rbf_k(d) fc(d) and its derivative de_k/dd, h = W1 e + b1, then a = silu(h)
 * and, forward mode, a' = silu'(h) (W1 de/dd), kept in shared memory; the
 * GEMM [phi ; dphi/dd] = [a ; a'] W2^T (+ b2) follows in the same block. The
 * reverse pass then needs only <dE/dphi, dphi/dd> per edge to get dE/dd: no
 * reverse pass through the filter MLP.
 * Message (block per receiving atom j, thread per channel and edge group,
 * partial sums added in a fixed order):
 *   s_mid = s_j + sum_i s_i phi_s,  v_mid = v_j + sum_i v_i phi_v1 + u phi_v2
 * Update: [a, g1, g2] = W4 silu(W3 [s_mid; |v_mid|] + b3) + b4 (two GEMMs),
 *   s = s_mid + a, v = v_mid g1 + (M v_mid) g2.
 * Readout (block per atom): E_j = W7 silu(W6 silu(W5 s + b5) + b6) + b7 and
 *   its gradient dE/ds, which starts the reverse pass. */
#include "painn_cuda_gemm.cuh"

#include <math.h>

namespace {

/* ---- pair filters ---- */

/* e_k = exp(-((d - c_k)/w_k)^2) fc(d) and de_k/dd. */
__device__ __forceinline__ void radial_basis(float d, float rc, float center, float width, float *e,
                                             float *de)
{
    const float fc = d < rc ? 0.5f * (cosf((float)M_PI * d / rc) + 1.0f) : 0.0f;
    const float dfc = d < rc ? -0.5f * (float)M_PI / rc * sinf((float)M_PI * d / rc) : 0.0f;
    const float t = (d - center) / width;
    const float rbf = expf(-t * t);
    *e = rbf * fc;
    *de = rbf * (-2.0f * (d - center) / (width * width)) * fc + rbf * dfc;
}

/* Shared memory of the filter kernel, in floats: A tile [H][2BP + PAD],
 * B slices [2][BK][BN + PAD], basis [BP][2K + 1], W1 of the layer [H][K + 1]. */
template <int BP, int BN, int BK>
static size_t filter_smem_floats(int H, int K)
{
    return (size_t)H * (2 * BP + 4) + 2 * BK * (BN + 4) + (size_t)BP * (2 * K + 1) +
           (size_t)H * (K + 1);
}

/* One block: BP pairs of layer l = blockIdx.z. In shared memory, the basis
 * and the A tile [a ; a'] (2 BP rows, H deep) computed from it; then
 * [phi ; dphi/dd] = A W2^T (+ b2 for phi) for NSUB column tiles of BN. */
template <int BP, int BN, int BK, int TM, int TN, int NSUB>
__global__ void __launch_bounds__(gemm_tile<2 * BP, BN, BK, TM, TN>::THREADS,
                                  gemm_tile<2 * BP, BN, BK, TM, TN>::MIN_BLOCKS)
    filter_kernel(int H, int K, float rc, const painn_cuda_counts *__restrict__ counts,
                  const float4 *__restrict__ pair_u, const float *__restrict__ centers,
                  const float *__restrict__ widths, const float *__restrict__ W1,
                  const float *__restrict__ b1, const float *__restrict__ W2,
                  const float *__restrict__ b2, float *__restrict__ filter_out, long pair_rows)
{
    painn_grid_begin();
    using T = gemm_tile<2 * BP, BN, BK, TM, TN>;
    constexpr int ALD = 2 * BP + T::PAD, BLD = BN + T::PAD;
    extern __shared__ __align__(16) float smem[];
    float *As = smem;                      /* [H][ALD] */
    float *Bs = As + (size_t)H * ALD;      /* [2][BK][BLD] */
    float *basis = Bs + 2 * BK * BLD;      /* [BP][2K + 1] */
    float *w1s = basis + BP * (2 * K + 1); /* [H][K + 1] */
    const int bstride = 2 * K + 1;

    const int n_pairs = counts->n_pairs;
    const long p0 = (long)blockIdx.x * BP;
    if (p0 >= n_pairs) return;
    const int l = blockIdx.z, tid = threadIdx.x;
    const int valid = (int)min((long)BP, n_pairs - p0);

    for (int idx = tid; idx < BP * K; idx += T::THREADS) {
        const int pp = idx / K, k = idx % K;
        const float d = pp < valid ? pair_u[p0 + pp].w : 0.0f;
        radial_basis(d, rc, centers[k], widths[k], &basis[pp * bstride + k],
                     &basis[pp * bstride + K + k]);
    }
    const float *w1 = W1 + (size_t)l * H * K, *bias1 = b1 + (size_t)l * H;
#pragma unroll 4
    for (int idx = tid; idx < H * K; idx += T::THREADS)
        w1s[(idx / K) * (K + 1) + idx % K] = w1[idx];
    __syncthreads();
    /* a = silu(h), a' = silu'(h) (W1 de/dd), h = W1 e + b1; consecutive
     * threads take consecutive pairs (conflict-free shared memory) */
    for (int idx = tid; idx < BP * H; idx += T::THREADS) {
        const int pp = idx % BP, c = idx / BP;
        const float *e = basis + pp * bstride, *de = e + K, *w = w1s + c * (K + 1);
        float h = bias1[c], hd = 0.0f;
        for (int k = 0; k < K; k++) {
            h = fmaf(w[k], e[k], h);
            hd = fmaf(w[k], de[k], hd);
        }
        const float sig = 1.0f / (1.0f + expf(-h));
        As[c * ALD + pp] = h * sig;
        As[c * ALD + BP + pp] = sig * (1.0f + h * (1.0f - sig)) * hd;
    }
    __syncthreads();

    /* the GEMM: NSUB column tiles of n_slices BK-deep slices each, as one
     * pipeline (the next slice, possibly of the next tile, loads while the
     * current one is used); each tile's epilogue follows its last slice */
    const int tx = tid % T::TX, ty = tid / T::TX, N = 3 * H;
    const float *W2l = W2 + (size_t)l * N * H;
    const int n_slices = H / BK, total = NSUB * n_slices;
    auto slice_source = [&](int g) {
        return W2l + (size_t)((blockIdx.y * NSUB + g / n_slices) * BN) * H;
    };
    slice_stream<BN, BK, T::THREADS> b_in;
    float acc[TM][TN];
    b_in.load(slice_source(0), H, 0, BN, tid);
    b_in.template store<BLD>(Bs, tid);
    __syncthreads();
    int buf = 0;
    for (int g = 0; g < total; g++) {
        const int t = g % n_slices;
        if (t == 0) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
        }
        if (g + 1 < total) b_in.load(slice_source(g + 1), H, ((g + 1) % n_slices) * BK, BN, tid);
        const float *a_slice = As + (size_t)t * BK * ALD, *b_slice = Bs + buf * BK * BLD;
#pragma unroll
        for (int k = 0; k < BK; k++) tile_fma<T>(acc, a_slice + k * ALD, b_slice + k * BLD, tx, ty);
        if (g + 1 < total) b_in.template store<BLD>(Bs + (buf ^ 1) * BK * BLD, tid);
        __syncthreads();
        buf ^= 1;
        if (t + 1 < n_slices) continue;
        const int col0 = (blockIdx.y * NSUB + g / n_slices) * BN;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int r = T::row(i, ty), half = r >= BP, pp = r - half * BP;
            if (pp >= valid) continue;
            float *out = filter_out + ((size_t)(2 * l + half) * pair_rows + p0 + pp) * N;
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const int col = col0 + T::col(j, tx);
                out[col] = half ? acc[i][j] : acc[i][j] + b2[(size_t)l * N + col];
            }
        }
    }
}

/* ---- message ---- */

/* Block (H, G) per atom j: thread (c, g) sums channel c of the messages of
 * edges g, g + G, g + 2G, ... of j (in CSR order; each warp fetches 32 of
 * its group's edge indices at a time, one per lane); the G partial sums are
 * then added in the order g = 0, 1, ..., G-1: a fixed order. */
__global__ void message_forward_kernel(int n, int H, const int *__restrict__ row_start,
                                       const int *__restrict__ edge_src,
                                       const int *__restrict__ edge_pair,
                                       const float4 *__restrict__ pair_u,
                                       const float *__restrict__ phi,
                                       const float *__restrict__ s_in,
                                       const float *__restrict__ v_in, /* NULL in layer 0 */
                                       float *__restrict__ X, float *__restrict__ v_mid)
{
    painn_grid_begin();
    extern __shared__ float part[]; /* [G][4][H]: s, vx, vy, vz */
    const int c = threadIdx.x, g = threadIdx.y, G = blockDim.y, lane = threadIdx.x & 31;
    for (int j = blockIdx.x; j < n; j += gridDim.x) {
        float ss = 0.0f, vx = 0.0f, vy = 0.0f, vz = 0.0f;
        const int e_end = row_start[j + 1];
        for (int e0 = row_start[j] + g; e0 < e_end; e0 += 32 * G) {
            int my_i = 0, my_p = 0;
            if (e0 + G * lane < e_end) {
                my_i = edge_src[e0 + G * lane];
                my_p = edge_pair[e0 + G * lane];
            }
            const int chunk = min(32, (e_end - e0 + G - 1) / G);
            for (int q = 0; q < chunk; q++) {
                const int i = __shfl_sync(0xffffffffu, my_i, q),
                          p = __shfl_sync(0xffffffffu, my_p, q);
                const float4 u = pair_u[p];
                const float sg = i < j ? 1.0f : -1.0f;
                const float *ph = phi + (size_t)p * 3 * H;
                const float ps = ph[c], pv1 = ph[H + c], pv2 = ph[2 * H + c];
                ss = fmaf(s_in[(size_t)i * H + c], ps, ss);
                if (v_in) {
                    const float *vi = v_in + (size_t)i * 3 * H + c;
                    vx = fmaf(vi[0], pv1, vx);
                    vy = fmaf(vi[H], pv1, vy);
                    vz = fmaf(vi[2 * H], pv1, vz);
                }
                vx = fmaf(sg * u.x, pv2, vx);
                vy = fmaf(sg * u.y, pv2, vy);
                vz = fmaf(sg * u.z, pv2, vz);
            }
        }
        if (G > 1) {
            float *mine = part + (size_t)g * 4 * H;
            mine[c] = ss;
            mine[H + c] = vx;
            mine[2 * H + c] = vy;
            mine[3 * H + c] = vz;
            __syncthreads();
        }
        if (g == 0) {
            for (int k = 1; k < G; k++) {
                const float *other = part + (size_t)k * 4 * H;
                ss += other[c];
                vx += other[H + c];
                vy += other[2 * H + c];
                vz += other[3 * H + c];
            }
            const float sm = s_in[(size_t)j * H + c] + ss;
            if (v_in) {
                const float *vj = v_in + (size_t)j * 3 * H + c;
                vx += vj[0];
                vy += vj[H];
                vz += vj[2 * H];
            }
            float *vm = v_mid + (size_t)j * 3 * H + c;
            vm[0] = vx;
            vm[H] = vy;
            vm[2 * H] = vz;
            X[(size_t)j * 2 * H + c] = sm;
            X[(size_t)j * 2 * H + H + c] = sqrtf(vx * vx + vy * vy + vz * vz);
        }
        if (G > 1) __syncthreads();
    }
}

/* ---- update ---- */

/* h3 = acc + b3, a3 = silu(h3) */
struct epi_silu_store {
    float *h3, *a3;
    const float *b3;
    int H;
    __device__ void operator()(int, int row, int col, float acc) const
    {
        float h = acc + b3[col];
        h3[(size_t)row * H + col] = h;
        a3[(size_t)row * H + col] = painn_silu(h);
    }
};

/* out = acc + bias, row length N */
struct epi_bias {
    float *out;
    const float *bias;
    int N;
    __device__ void operator()(int, int row, int col, float acc) const
    {
        out[(size_t)row * N + col] = acc + bias[col];
    }
};

/* s = s_mid + a, v = v_mid g1 + (M v_mid) g2, thread per (atom, channel). */
__global__ void update_apply_kernel(int n, int H, const float *__restrict__ X,
                                    const float *__restrict__ v_mid, const float *__restrict__ upd,
                                    painn_mixing M, float *__restrict__ s_next,
                                    float *__restrict__ v_next)
{
    painn_grid_begin();
    const long total = (long)n * H;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total;
         t += (long)gridDim.x * blockDim.x) {
        const long j = t / H;
        const int c = (int)(t % H);
        const float *u = upd + j * 3 * H;
        s_next[j * H + c] = X[j * 2 * H + c] + u[c];
        const float g1 = u[H + c], g2 = u[2 * H + c];
        const float *vm = v_mid + j * 3 * H + c;
        const float v0 = vm[0], v1 = vm[H], v2 = vm[2 * H];
        float *vn = v_next + j * 3 * H + c;
        vn[0] = v0 * g1 + (M.m[0] * v0 + M.m[1] * v1 + M.m[2] * v2) * g2;
        vn[H] = v1 * g1 + (M.m[3] * v0 + M.m[4] * v1 + M.m[5] * v2) * g2;
        vn[2 * H] = v2 * g1 + (M.m[6] * v0 + M.m[7] * v1 + M.m[8] * v2) * g2;
    }
}

/* ---- readout ---- */

constexpr int READOUT_THREADS = 128;

static size_t readout_smem_floats(int H)
{
    return (size_t)H + READOUT_THREADS + 3 * (H / 2) + 2 * (H / 4);
}

/* Block per atom (128 threads; H/2 and H/4 divide 128). Each dot product is
 * split into 128 / outputs segments of its inputs, summed per thread in order
 * and then over segments in order (fixed order). In: X (s_mid) and upd (a) of
 * the last layer. Out: the atom's energy (final dot in float64) and the start
 * of the reverse pass for the last layer: Gout = [dE/ds, 0, 0] (v after the
 * last update is unused) and gvp = 0. W5T = W5^T [H][H/2], W6T = W6^T. */
__global__ void __launch_bounds__(READOUT_THREADS)
    readout_kernel(int n, int H, const float *__restrict__ X, const float *__restrict__ upd,
                   const float *__restrict__ W5, const float *__restrict__ W5T,
                   const float *__restrict__ b5, const float *__restrict__ W6,
                   const float *__restrict__ W6T, const float *__restrict__ b6,
                   const float *__restrict__ W7, const float *__restrict__ b7,
                   double *__restrict__ atom_energy, float *__restrict__ Gout,
                   float *__restrict__ gvp)
{
    painn_grid_begin();
    extern __shared__ float sm[];
    const int H2 = H / 2, H4 = H / 4, tid = threadIdx.x;
    float *s = sm, *part = s + H, *z5 = part + READOUT_THREADS, *a5 = z5 + H2, *g5 = a5 + H2;
    float *z6 = g5 + H2, *g6 = z6 + H4;
    const int seg5 = READOUT_THREADS / H2, seg6 = READOUT_THREADS / H4;
    for (int j = blockIdx.x; j < n; j += gridDim.x) {
        for (int c = tid; c < H; c += READOUT_THREADS)
            s[c] = X[(size_t)j * 2 * H + c] + upd[(size_t)j * 3 * H + c];
        __syncthreads();
        { /* z5 = W5 s + b5: output tid % H2, inputs of segment tid / H2 */
            const int o = tid % H2, len = H / seg5, c0 = (tid / H2) * len;
            float z = 0.0f;
            for (int c = c0; c < c0 + len; c++) z = fmaf(W5T[(size_t)c * H2 + o], s[c], z);
            part[tid] = z;
        }
        __syncthreads();
        if (tid < H2) {
            float z = b5[tid];
            for (int g = 0; g < seg5; g++) z += part[g * H2 + tid];
            z5[tid] = z;
            a5[tid] = painn_silu(z);
        }
        __syncthreads();
        { /* z6 = W6 a5 + b6 */
            const int o = tid % H4, len = H2 / seg6, q0 = (tid / H4) * len;
            float z = 0.0f;
            for (int q = q0; q < q0 + len; q++) z = fmaf(W6T[(size_t)q * H4 + o], a5[q], z);
            part[tid] = z;
        }
        __syncthreads();
        if (tid < H4) {
            float z = b6[tid];
            for (int g = 0; g < seg6; g++) z += part[g * H4 + tid];
            z6[tid] = z;
            g6[tid] = W7[tid] * painn_silu_grad(z);
        }
        __syncthreads();
        if (tid < 32) { /* E_j = W7 silu(z6) + b7, in float64 */
            double e = 0.0;
            for (int o = tid; o < H4; o += 32) e += (double)W7[o] * (double)painn_silu(z6[o]);
            e = painn_warp_sum_double(e);
            if (tid == 0) atom_energy[j] = e + (double)b7[0];
        }
        { /* g5 = silu'(z5) (W6^T g6) */
            const int q = tid % H2, len = H4 / seg5, o0 = (tid / H2) * len;
            float g = 0.0f;
            for (int o = o0; o < o0 + len; o++) g = fmaf(W6[(size_t)o * H2 + q], g6[o], g);
            part[tid] = g;
        }
        __syncthreads();
        if (tid < H2) {
            float g = part[tid];
            for (int k = 1; k < seg5; k++) g += part[k * H2 + tid];
            g5[tid] = g * painn_silu_grad(z5[tid]);
        }
        __syncthreads();
        for (int c = tid; c < H; c += READOUT_THREADS) { /* dE/ds = W5^T g5 */
            float g = 0.0f;
            for (int q = 0; q < H2; q++) g = fmaf(W5[(size_t)q * H + c], g5[q], g);
            float *go = Gout + (size_t)j * 3 * H;
            go[c] = g;
            go[H + c] = 0.0f;
            go[2 * H + c] = 0.0f;
            float *gv = gvp + (size_t)j * 3 * H + c;
            gv[0] = 0.0f;
            gv[H] = 0.0f;
            gv[2 * H] = 0.0f;
        }
        __syncthreads();
    }
}

} // namespace

template <int BP, int BN, int BK, int TM, int TN, int NSUB>
static cudaError_t filter_launch(const painn_cuda *c, cudaStream_t s)
{
    using T = gemm_tile<2 * BP, BN, BK, TM, TN>;
    const int H = c->H;
    dim3 grid((unsigned)((c->pair_cap + BP - 1) / BP), (unsigned)(3 * H / (BN * NSUB)),
              (unsigned)c->L);
    size_t smem = sizeof(float) * filter_smem_floats<BP, BN, BK>(H, c->K);
    painn_launch(c->use_pdl, filter_kernel<BP, BN, BK, TM, TN, NSUB>, grid, T::THREADS, smem, s, H,
                 c->K, c->cutoff, c->counts, c->pair_u, c->w.centers, c->w.widths, c->w.W1, c->w.b1,
                 c->w.W2, c->w.b2, c->filter_out, c->pair_rows);
    return cudaGetLastError();
}

template <int BP, int BN, int BK, int TM, int TN, int NSUB>
static cudaError_t filter_configure(const painn_cuda *c)
{
    size_t smem = sizeof(float) * filter_smem_floats<BP, BN, BK>(c->H, c->K);
    return cudaFuncSetAttribute(filter_kernel<BP, BN, BK, TM, TN, NSUB>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
}

/* The filter kernel's tile shapes, largest first: big (64 pairs), mid (32
 * pairs), small (16 pairs), each block computing its A tile once for all 3H
 * columns; tiny (8 pairs, 64-deep slices, one column tile per block, for
 * latency). The largest of big, small, tiny that still gives the GPU enough
 * blocks is used (mid measured slower than small for 16 molecules: 68 vs 61
 * us); the environment variable PAINN_CUDA_TILES=big|small|mid|tiny forces
 * one ("mid": mid filters and small GEMMs). Op is filter_launch or
 * filter_configure. */
enum filter_shape_t { FILTER_TINY, FILTER_SMALL, FILTER_MID, FILTER_BIG };

#define FILTER_DISPATCH(Op, c, ...)                                                                \
    switch (filter_shape(c)) {                                                                     \
    case FILTER_BIG:                                                                               \
        if ((c)->H == 256) return Op<64, 128, 16, 8, 8, 6>(c, ##__VA_ARGS__);                      \
        if ((c)->H == 128) return Op<64, 128, 16, 8, 8, 3>(c, ##__VA_ARGS__);                      \
        if ((c)->H == 64) return Op<64, 64, 16, 8, 8, 3>(c, ##__VA_ARGS__);                        \
        return Op<64, 32, 16, 8, 8, 3>(c, ##__VA_ARGS__);                                          \
    case FILTER_MID:                                                                               \
        if ((c)->H == 256) return Op<32, 128, 16, 4, 8, 6>(c, ##__VA_ARGS__);                      \
        if ((c)->H == 128) return Op<32, 128, 16, 4, 8, 3>(c, ##__VA_ARGS__);                      \
        if ((c)->H == 64) return Op<32, 64, 16, 4, 8, 3>(c, ##__VA_ARGS__);                        \
        return Op<32, 32, 16, 4, 8, 3>(c, ##__VA_ARGS__);                                          \
    case FILTER_SMALL:                                                                             \
        if ((c)->H == 256) return Op<16, 64, 32, 4, 4, 12>(c, ##__VA_ARGS__);                      \
        if ((c)->H == 128) return Op<16, 64, 32, 4, 4, 6>(c, ##__VA_ARGS__);                       \
        if ((c)->H == 64) return Op<16, 64, 32, 4, 4, 3>(c, ##__VA_ARGS__);                        \
        return Op<16, 32, 32, 4, 4, 3>(c, ##__VA_ARGS__);                                          \
    default:                                                                                       \
        if ((c)->H >= 64) return Op<8, 64, 64, 1, 4, 1>(c, ##__VA_ARGS__);                         \
        return Op<8, 32, 32, 1, 4, 1>(c, ##__VA_ARGS__);                                           \
    }

static filter_shape_t filter_shape(const painn_cuda *c)
{
    const char *env = getenv("PAINN_CUDA_TILES");
    if (env && !strcmp(env, "mid")) return FILTER_MID;
    if (env) {
        gemm_shape g = gemm_choose(0, 0, 0, c->H, c->sm_count);
        return g == GEMM_BIG ? FILTER_BIG : g == GEMM_SMALL ? FILTER_SMALL : FILTER_TINY;
    }
    const long sm = c->sm_count;
    if ((c->pair_cap + 63) / 64 * c->L >= 2 * sm) return FILTER_BIG;
    if ((c->pair_cap + 15) / 16 * c->L >= 2 * sm) return FILTER_SMALL;
    return FILTER_TINY;
}

cudaError_t painn_launch_pair_filters(const painn_cuda *c, cudaStream_t s)
{
    FILTER_DISPATCH(filter_launch, c, s);
}

cudaError_t painn_launch_message_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    /* (channels, edge groups): groups shorten each atom's chain of edges when
     * there are few atoms; with many, one group and more blocks per SM */
    dim3 block(H, n >= 2048 ? 1 : H <= 128 ? 4 : 2);
    unsigned blocks = painn_grid(n, 1, c->sm_count, 2048 / (block.x * block.y));
    const size_t nH = (size_t)n * H, smem = sizeof(float) * 4 * H * block.y;
    painn_launch(c->use_pdl, message_forward_kernel, blocks, block, smem, s, n, H, c->row_start,
                 c->edge_src, c->edge_pair, c->pair_u,
                 c->filter_out + (size_t)(2 * l) * c->pair_rows * 3 * H, c->s_in + l * nH,
                 l > 0 ? c->v_in + l * 3 * nH : nullptr, c->X + l * 2 * nH, c->v_mid + l * 3 * nH);
    return cudaGetLastError();
}

cudaError_t painn_launch_update_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    const size_t nH = (size_t)n * H;
    const gemm_shape g1 = gemm_choose(n, H, 1, H, c->sm_count);
    const gemm_shape g2 = gemm_choose(n, 3 * H, 1, H, c->sm_count);
    gemm_operands op1 = {c->X + l * 2 * nH, 0, 2 * H, c->w.W3 + (size_t)l * 2 * H * H, 0, 1, 2 * H,
                         nullptr,           n};
    epi_silu_store e1 = {c->h3 + l * nH, c->a3, c->w.b3 + (size_t)l * H, H};
    cudaError_t err = gemm_launch(op1, H, H, 1, n, g1, e1, c->use_pdl, s);
    if (err != cudaSuccess) return err;
    gemm_operands op2 = {c->a3, 0, H, c->w.W4 + (size_t)l * 3 * H * H, 0, 1, H, nullptr, n};
    epi_bias e2 = {c->upd + l * 3 * nH, c->w.b4 + (size_t)l * 3 * H, 3 * H};
    err = gemm_launch(op2, H, 3 * H, 1, n, g2, e2, c->use_pdl, s);
    if (err != cudaSuccess || l + 1 == c->L) return err; /* the readout applies the last one */
    unsigned blocks = painn_grid((long)nH, 256, c->sm_count, 16);
    painn_launch(c->use_pdl, update_apply_kernel, blocks, 256, 0, s, n, H, c->X + l * 2 * nH,
                 c->v_mid + l * 3 * nH, c->upd + l * 3 * nH, c->w.mixing[l], c->s_in + (l + 1) * nH,
                 c->v_in + (l + 1) * 3 * nH);
    return cudaGetLastError();
}

cudaError_t painn_launch_readout(const painn_cuda *c, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms, l = c->L - 1;
    const size_t nH = (size_t)n * H;
    size_t smem = sizeof(float) * readout_smem_floats(H);
    unsigned blocks = painn_grid(n, 1, c->sm_count, 16);
    painn_launch(c->use_pdl, readout_kernel, blocks, READOUT_THREADS, smem, s, n, H,
                 c->X + l * 2 * nH, c->upd + l * 3 * nH, c->w.W5, c->w.W5T, c->w.b5, c->w.W6,
                 c->w.W6T, c->w.b6, c->w.W7, c->w.b7, c->atom_energy, c->Gout, c->gvp);
    return cudaGetLastError();
}

static cudaError_t configure_filters(const painn_cuda *c)
{
    FILTER_DISPATCH(filter_configure, c);
}

cudaError_t painn_configure_kernels(const painn_cuda *c)
{
    cudaError_t e = configure_filters(c);
    if (e == cudaSuccess) e = gemm_configure<epi_silu_store>(c->H);
    if (e == cudaSuccess) e = gemm_configure<epi_bias>(c->H);
    if (e == cudaSuccess) e = painn_configure_backward_kernels(c);
    return e;
}
