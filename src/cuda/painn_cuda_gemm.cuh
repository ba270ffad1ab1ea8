/* painn_cuda_gemm.cuh — C = epilogue(A B^T) for the model's dense layers, on
 * the float64 tensor cores.
 *
 * A is [M][K] float32 row-major (M rows of per-atom activations), B is [N][K]
 * float32 row-major (a PyTorch Linear weight [out][in], or its transpose),
 * and C[m][n] = sum_k A[m][k] B[n][k], both operands widened to float64:
 *   acc = 0;  acc = A[m][k0:k0+16] . B[n][k0:k0+16] + acc  for k0 = 0, 16, ..., K-16
 * with one mma.m16n8k16.f64 per step, then C = (float)acc, once. Each
 * product of two float32 numbers is exact in float64 and the sum is carried
 * in float64, so C is the exact dot product to within its float32 rounding
 * (a float32 FFMA chain over K terms is not).
 *
 * Determinism: every C element is that same chain of steps whatever the
 * tensor-core tile shape, batch or launch configuration (a tensor-core result
 * depends only on its row of A, column of B and accumulator), so a row's
 * result never depends on which of those tiles computed it; the tiny shape
 * (few rows) sums in float32 and agrees to float32 rounding.
 *
 * Tiles: BM x BN per block, BK-deep slices of A and B (float32) copied
 * asynchronously into shared memory, STAGES of them in flight; each warp
 * owns 16 MT rows x 8 NT columns. Fragments are widened to float64 as they
 * are read from shared memory. Three shapes, chosen per launch from the row
 * capacity: "big" (128 x 64, 8 warps of 32 x 32) for throughput, "small"
 * (64 x 32, 4 warps of 16 x 32) for batches of a few thousand atoms, and for
 * latency when only a few rows exist "tiny", a float32 FFMA kernel (below).
 * Measured on an H200, MD of 256 alanine dipeptides (5,632 rows, 427k
 * model): the N = 384 GEMM 19.0 -> 16.5 us with big tiles of 128 x 64
 * instead of 128 x 32 (8 warps of 16 x 32); B held in float64 in shared
 * memory (as before) or in float32 made no difference. */
#ifndef DISTILMD_PAINN_CUDA_GEMM_CUH
#define DISTILMD_PAINN_CUDA_GEMM_CUH

#include "painn_cuda_internal.cuh"

#include <cuda_pipeline.h>
#include <stdlib.h>
#include <string.h>

/* 16-byte loads and stores of four consecutive floats (epilogues) */
__device__ __forceinline__ float4 load4(const float *p)
{
    return *reinterpret_cast<const float4 *>(p);
}

__device__ __forceinline__ void store4(float *p, float4 v)
{
    *reinterpret_cast<float4 *>(p) = v;
}

/* f(x) applied to each component */
template <class F> __device__ __forceinline__ float4 map4(float4 x, F f)
{
    return make_float4(f(x.x), f(x.y), f(x.z), f(x.w));
}

__device__ __forceinline__ float4 add4(float4 a, float4 b)
{
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

__device__ __forceinline__ float4 mul4(float4 a, float4 b)
{
    return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w);
}

/* f(row, c) for every row < n and every four channels c = 0, 4, ..., H - 4,
 * spread over the grid (grid-stride): the elementwise kernels that follow
 * the GEMMs (16-byte loads and stores; H a multiple of 4). */
template <class F> __device__ __forceinline__ void for_each_row_quad(int n, int H, F f)
{
    const int quads = H / 4;
    const long total = (long)n * quads;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total;
         t += (long)gridDim.x * blockDim.x) {
        const long row = t / quads;
        f(row, 4 * (int)(t - row * quads));
    }
}

/* A: [rows][lda] float32 (lda and A 16-byte aligned); B: [N][ldb] float32,
 * K columns used (K a multiple of 32). Valid rows: *m_device when set (a
 * count that lives on the GPU), else m_host; the grid is sized for the
 * capacity and tiles past the valid rows return. */
struct gemm_operands {
    const float *A;
    int lda;
    const float *B;
    int ldb;
    int K;
    const int *m_device;
    int m_host;
};

/* d = a b + d on a 16 x 8 x 16 float64 tile. Fragments of lane (g, t) =
 * (lane / 4, lane % 4): a[i] = A[g + 8 (i % 2)][t + 4 (i / 2)],
 * b[i] = B[t + 4 i][g], d = {D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]}. */
__device__ __forceinline__ void mma_16x8x16_f64(double (&d)[4], const double (&a)[8],
                                                const double (&b)[4])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm("mma.sync.aligned.m16n8k16.row.col.f64.f64.f64.f64 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7,%8,%9,%10,%11}, {%12,%13,%14,%15}, {%0,%1,%2,%3};\n"
                 : "+d"(d[0]), "+d"(d[1]), "+d"(d[2]), "+d"(d[3])
                 : "d"(a[0]), "d"(a[1]), "d"(a[2]), "d"(a[3]), "d"(a[4]), "d"(a[5]), "d"(a[6]),
                   "d"(a[7]), "d"(b[0]), "d"(b[1]), "d"(b[2]), "d"(b[3]));
#else
    __trap(); /* the CUDA platform is built for sm_90 */
#endif
}

template <int BM_, int BN_, int WARPS_M, int WARPS_N, int STAGES_>
struct gemm_tile {
    static constexpr int BM = BM_, BN = BN_, BK = 32, STAGES = STAGES_;
    static constexpr int WN = WARPS_N, WARPS = WARPS_M * WARPS_N, THREADS = 32 * WARPS;
    static constexpr int MT = BM / (16 * WARPS_M), NT = BN / (8 * WARPS_N);
    static constexpr int MIN_BLOCKS = 512 / THREADS; /* up to 128 registers a thread */
    static constexpr int ALD = BK + 4, BLD = BK + 4; /* conflict-free fragment reads */
    static constexpr size_t A_BYTES = sizeof(float) * BM * ALD;
    static constexpr size_t STAGE_BYTES = A_BYTES + sizeof(float) * BN * BLD;
    static constexpr size_t SMEM = STAGES * STAGE_BYTES;
    static_assert(MT * 16 * WARPS_M == BM && NT * 8 * WARPS_N == BN, "tile shape");
};

using gemm_big = gemm_tile<128, 64, 4, 2, 3>;
using gemm_small = gemm_tile<64, 32, 4, 1, 3>;

/* Slice [k0, k0 + BK) of the block's rows of A and columns of B into one
 * stage: 16-byte asynchronous copies; rows of A at or past `valid` are zero. */
template <class T>
__device__ __forceinline__ void gemm_load_stage(const gemm_operands &op, const float *A,
                                                const float *B, int valid, int k0,
                                                unsigned char *stage, int tid)
{
    float *As = reinterpret_cast<float *>(stage);
    float *Bs = reinterpret_cast<float *>(stage + T::A_BYTES);
    constexpr int QUADS = T::BK / 4; /* 16-byte copies per row */
    for (int i = tid; i < T::BM * QUADS; i += T::THREADS) {
        const int r = i / QUADS, k = 4 * (i % QUADS);
        if (r < valid)
            __pipeline_memcpy_async(As + r * T::ALD + k, A + (size_t)r * op.lda + k0 + k, 16);
        else
            *reinterpret_cast<float4 *>(As + r * T::ALD + k) = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    for (int i = tid; i < T::BN * QUADS; i += T::THREADS) {
        const int r = i / QUADS, k = 4 * (i % QUADS);
        __pipeline_memcpy_async(Bs + r * T::BLD + k, B + (size_t)r * op.ldb + k0 + k, 16);
    }
}

/* acc += the warp's A rows x B columns over one stage (BK / 16 mma steps) */
template <class T>
__device__ __forceinline__ void gemm_stage_mma(double (&acc)[T::MT][T::NT][4],
                                               const unsigned char *stage, int wm0, int wn0,
                                               int g, int t)
{
    const float *As = reinterpret_cast<const float *>(stage);
    const float *Bs = reinterpret_cast<const float *>(stage + T::A_BYTES);
#pragma unroll
    for (int kk = 0; kk < T::BK; kk += 16) {
        double a[T::MT][8];
#pragma unroll
        for (int mt = 0; mt < T::MT; mt++) {
            const float *p = As + (wm0 + 16 * mt + g) * T::ALD + kk + t;
#pragma unroll
            for (int i = 0; i < 8; i++) a[mt][i] = (double)p[(i % 2) * 8 * T::ALD + (i / 2) * 4];
        }
#pragma unroll
        for (int nt = 0; nt < T::NT; nt++) {
            const float *q = Bs + (wn0 + 8 * nt + g) * T::BLD + kk + t;
            const double b[4] = {(double)q[0], (double)q[4], (double)q[8], (double)q[12]};
#pragma unroll
            for (int mt = 0; mt < T::MT; mt++) mma_16x8x16_f64(acc[mt][nt], a[mt], b);
        }
    }
}

template <class T, class Epi>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS) gemm_abt_kernel(gemm_operands op, Epi epi)
{
    painn_grid_begin();
    extern __shared__ __align__(16) unsigned char gemm_smem[];
    const int m_valid = op.m_device ? *op.m_device : op.m_host;
    const int row0 = blockIdx.x * T::BM;
    if (row0 >= m_valid) return;
    const int col0 = blockIdx.y * T::BN;
    const float *A = op.A + (size_t)row0 * op.lda;
    const float *B = op.B + (size_t)col0 * op.ldb;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const int wrow = (warp / T::WN) * 16 * T::MT, wcol = (warp % T::WN) * 8 * T::NT;
    const int valid = m_valid - row0, n_slices = op.K / T::BK;

#pragma unroll
    for (int s = 0; s < T::STAGES - 1; s++) {
        if (s < n_slices)
            gemm_load_stage<T>(op, A, B, valid, s * T::BK, gemm_smem + s * T::STAGE_BYTES, tid);
        __pipeline_commit();
    }
    double acc[T::MT][T::NT][4];
#pragma unroll
    for (int mt = 0; mt < T::MT; mt++)
#pragma unroll
        for (int nt = 0; nt < T::NT; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mt][nt][i] = 0.0;
    for (int s = 0; s < n_slices; s++) {
        __pipeline_wait_prior(T::STAGES - 2); /* slice s has landed */
        __syncthreads();                      /* and every warp is done with slice s - 1 */
        const int next = s + T::STAGES - 1;
        if (next < n_slices)
            gemm_load_stage<T>(op, A, B, valid, next * T::BK,
                               gemm_smem + (next % T::STAGES) * T::STAGE_BYTES, tid);
        __pipeline_commit();
        gemm_stage_mma<T>(acc, gemm_smem + (s % T::STAGES) * T::STAGE_BYTES, wrow, wcol, g, t);
    }

    /* Lanes t and t^1 trade halves so that each holds four consecutive
     * columns of one row: even t row g, columns 2t..2t+3; odd t row g + 8,
     * columns 2t-2..2t+1. */
    const bool odd = t & 1;
#pragma unroll
    for (int mt = 0; mt < T::MT; mt++)
#pragma unroll
        for (int nt = 0; nt < T::NT; nt++) {
            const double *d = acc[mt][nt];
            const float give0 = (float)(odd ? d[0] : d[2]), give1 = (float)(odd ? d[1] : d[3]);
            const float got0 = __shfl_xor_sync(0xffffffffu, give0, 1);
            const float got1 = __shfl_xor_sync(0xffffffffu, give1, 1);
            const float4 c = odd ? make_float4(got0, got1, (float)d[2], (float)d[3])
                                 : make_float4((float)d[0], (float)d[1], got0, got1);
            const int row = row0 + wrow + 16 * mt + g + (odd ? 8 : 0);
            const int col = col0 + wcol + 8 * nt + 2 * (t & ~1);
            if (row < m_valid) epi(row, col, c);
        }
}

/* Few rows (latency): float32 FFMA, C[m][n] = fma(A[m][k], B[n][k], acc)
 * for k = 0..K-1 in order. A block of 64 threads owns 16 rows x 16 columns;
 * it stages its rows of A and of B, all of K, into shared memory with one
 * asynchronous copy (one round trip to L2 instead of one per slice), then
 * thread (tx, ty) forms C[row0 + ty][col0 + 4 tx + j], reading the operands
 * of step k + 4 before the FMAs of step k (measured on an H200: one alanine
 * dipeptide's MD step 0.118 ms with the plain loop, 0.114 ms with this). Shared memory:
 * 2 x 16 x (K + 4) floats. Measured on an H200, the tensor-core kernel with
 * 16 x 16 tiles made one alanine dipeptide's MD step 0.114 -> 0.172 ms, so
 * few rows keep this one: its results differ from the tensor-core shapes'
 * by float32 rounding (a float32 sum over K instead of a float64 one). */
constexpr int TINY_ROWS = 16, TINY_COLS = 16, TINY_THREADS = 64;

static inline size_t gemm_tiny_smem(int K)
{
    return sizeof(float) * 2 * TINY_ROWS * (size_t)(K + 4);
}

template <class Epi>
__global__ void __launch_bounds__(TINY_THREADS) gemm_tiny_kernel(gemm_operands op, Epi epi)
{
    painn_grid_begin();
    extern __shared__ __align__(16) float tile[];
    const int K = op.K, LD = K + 4;
    float *As = tile, *Bs = tile + TINY_ROWS * LD;
    const int m_valid = op.m_device ? *op.m_device : op.m_host;
    const int row0 = blockIdx.x * TINY_ROWS;
    if (row0 >= m_valid) return;
    const int col0 = blockIdx.y * TINY_COLS, tid = threadIdx.x;
    const float *A = op.A + (size_t)row0 * op.lda;
    const float *B = op.B + (size_t)col0 * op.ldb;
    const int rows = min(TINY_ROWS, m_valid - row0), quads = K / 4;
    for (int idx = tid; idx < TINY_ROWS * quads; idx += TINY_THREADS) {
        const int r = idx / quads, k = 4 * (idx % quads);
        if (r < rows)
            __pipeline_memcpy_async(As + r * LD + k, A + (size_t)r * op.lda + k, 16);
        else
            *reinterpret_cast<float4 *>(As + r * LD + k) = make_float4(0.f, 0.f, 0.f, 0.f);
        __pipeline_memcpy_async(Bs + r * LD + k, B + (size_t)r * op.ldb + k, 16);
    }
    __pipeline_commit();
    __pipeline_wait_prior(0);
    __syncthreads();
    const int tx = tid % 4, ty = tid / 4;
    const float *a = As + ty * LD;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float4 av = *reinterpret_cast<const float4 *>(a), bv[4];
#pragma unroll
    for (int j = 0; j < 4; j++) bv[j] = *reinterpret_cast<const float4 *>(Bs + (4 * tx + j) * LD);
    for (int k = 0; k < K; k += 4) {
        const int kn = k + 4 < K ? k + 4 : k;
        const float4 an = *reinterpret_cast<const float4 *>(a + kn);
        float4 bn[4];
#pragma unroll
        for (int j = 0; j < 4; j++) bn[j] = *reinterpret_cast<const float4 *>(Bs + (4 * tx + j) * LD + kn);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            acc[j] = fmaf(av.x, bv[j].x, acc[j]);
            acc[j] = fmaf(av.y, bv[j].y, acc[j]);
            acc[j] = fmaf(av.z, bv[j].z, acc[j]);
            acc[j] = fmaf(av.w, bv[j].w, acc[j]);
        }
        av = an;
#pragma unroll
        for (int j = 0; j < 4; j++) bv[j] = bn[j];
    }
    if (ty < rows) epi(row0 + ty, col0 + 4 * tx, make_float4(acc[0], acc[1], acc[2], acc[3]));
}

enum gemm_shape { GEMM_TINY = 0, GEMM_SMALL = 1, GEMM_BIG = 2 };

/* Largest tensor-core shape that still gives every SM two blocks, else tiny, for m_capacity rows of
 * N columns (big only where N is a multiple of its 64); the environment
 * variable PAINN_CUDA_TILES=big|small|mid|tiny forces one (tests and
 * benchmarks; mid means small). */
static inline gemm_shape gemm_choose(long m_capacity, int N, int sm_count)
{
    const char *env = getenv("PAINN_CUDA_TILES");
    const bool big_fits = N % gemm_big::BN == 0;
    if (env && !strcmp(env, "big")) return big_fits ? GEMM_BIG : GEMM_SMALL;
    if (env && (!strcmp(env, "small") || !strcmp(env, "mid"))) return GEMM_SMALL;
    if (env && !strcmp(env, "tiny")) return GEMM_TINY;
    const long big =
        big_fits ? (m_capacity + gemm_big::BM - 1) / gemm_big::BM * (N / gemm_big::BN) : 0;
    const long small = (m_capacity + gemm_small::BM - 1) / gemm_small::BM * (N / gemm_small::BN);
    if (big >= 2L * sm_count) return GEMM_BIG;
    if (small >= 2L * sm_count) return GEMM_SMALL;
    return GEMM_TINY;
}

template <class T, class Epi>
static cudaError_t gemm_launch_tile(const gemm_operands &op, int N, long m_capacity, Epi epi,
                                    bool pdl, cudaStream_t s)
{
    dim3 grid((unsigned)((m_capacity + T::BM - 1) / T::BM), (unsigned)(N / T::BN));
    if (grid.x == 0) grid.x = 1;
    painn_launch(pdl, gemm_abt_kernel<T, Epi>, grid, T::THREADS, T::SMEM, s, op, epi);
    return cudaGetLastError();
}

/* N a multiple of 32, K a multiple of 32. */
template <class Epi>
static cudaError_t gemm_launch(const gemm_operands &op, int N, long m_capacity, gemm_shape shape,
                               Epi epi, bool pdl, cudaStream_t s)
{
    switch (shape) {
    case GEMM_BIG: return gemm_launch_tile<gemm_big>(op, N, m_capacity, epi, pdl, s);
    case GEMM_SMALL: return gemm_launch_tile<gemm_small>(op, N, m_capacity, epi, pdl, s);
    default: {
        dim3 grid((unsigned)((m_capacity + TINY_ROWS - 1) / TINY_ROWS), (unsigned)(N / TINY_COLS));
        if (grid.x == 0) grid.x = 1;
        painn_launch(pdl, gemm_tiny_kernel<Epi>, grid, TINY_THREADS, gemm_tiny_smem(op.K), s, op,
                     epi);
        return cudaGetLastError();
    }
    }
}

/* Shared memory above 48 KB must be allowed once per kernel, before any
 * launch or capture (the tiny kernel's for K up to 3H). */
template <class Epi>
static cudaError_t gemm_configure(int H)
{
    cudaError_t e = cudaFuncSetAttribute(gemm_abt_kernel<gemm_big, Epi>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)gemm_big::SMEM);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(gemm_abt_kernel<gemm_small, Epi>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)gemm_small::SMEM);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(gemm_tiny_kernel<Epi>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)gemm_tiny_smem(3 * H));
    return e;
}

#endif
