/* painn_cuda_gemm.cuh — C = epilogue(A B^T) for the model's dense layers.
 *
 * A is [M][K] row-major (M rows of activations: pairs or atoms), B is [N][K]
 * row-major (a PyTorch Linear weight [out][in]), so C[m][n] = sum_k A[m][k]
 * B[n][k]. Plain float32 FFMA, register tiles of TM x TN per thread, BK-deep
 * slices of A and B staged through shared memory (double-buffered).
 *
 * Determinism: each C element is accumulated by one thread with
 * acc = fma(A[m][k], B[n][k], acc) for k = 0, 1, ..., K-1 in order, whatever
 * the tile shape, so a row's result never depends on which tile, batch or
 * launch configuration computed it.
 *
 * Batched over blockIdx.z: A_z = A + z a_stride_z, B_z = B + (z / b_every)
 * b_stride_z. Valid rows: *m_device when set (a count that lives on the GPU),
 * else m_host; the grid is sized for the capacity and tiles past the valid
 * rows return. The epilogue functor receives (z, row, col, acc) for every
 * valid element.
 *
 * Three tile shapes, chosen per launch from the row capacity: "big" (128 x
 * 128, 8 x 8 per thread) for throughput, "small" (32 x 64) for mid-sized
 * batches, "tiny" (16 x 16, all of K staged at once) for latency when only
 * a few rows exist. */
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

struct gemm_operands {
    const float *A;
    size_t a_stride_z;
    int lda;
    const float *B; /* row stride ldb (>= K) */
    size_t b_stride_z;
    int b_every;
    int K;
    const int *m_device;
    int m_host;
    int ldb;
};

/* Thread (tx, ty) owns columns g*4*TX + tx*4 + j (g < TN/4, j < 4) and rows
 * g*4*TY + ty*4 + i (TM a multiple of 4) or ty*TM + i (TM < 4): 16-byte
 * shared-memory reads of B, and of A when TM >= 4. */
template <int BM, int BN, int BK, int TM, int TN>
struct gemm_tile {
    static_assert(TN % 4 == 0 && BK % 4 == 0 && (TM % 4 == 0 || TM < 4), "tile shape");
    static constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
    static constexpr int PAD = 4;
    static constexpr int A_VEC = BM * BK / 4, B_VEC = BN * BK / 4;
    static constexpr int A_PER = (A_VEC + THREADS - 1) / THREADS;
    static constexpr int B_PER = (B_VEC + THREADS - 1) / THREADS;
    static constexpr int MIN_BLOCKS = THREADS >= 256 ? 2 : 1;
    __device__ static int row(int i, int ty)
    {
        return TM >= 4 ? (i / 4) * 4 * TY + ty * 4 + (i % 4) : ty * TM + i;
    }
    __device__ static int col(int j, int tx) { return (j / 4) * 4 * TX + tx * 4 + (j % 4); }
};

/* acc += a b^T for one k: a_row = &As[k][0], b_row = &Bs[k][0]. */
template <class T, int TM, int TN>
__device__ __forceinline__ void tile_fma(float (&acc)[TM][TN], const float *a_row,
                                         const float *b_row, int tx, int ty)
{
    float a[TM], b[TN];
    if constexpr (TM >= 4) {
#pragma unroll
        for (int g = 0; g < TM / 4; g++) {
            float4 v = *reinterpret_cast<const float4 *>(a_row + g * 4 * T::TY + ty * 4);
            a[4 * g] = v.x, a[4 * g + 1] = v.y, a[4 * g + 2] = v.z, a[4 * g + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < TM; i++) a[i] = a_row[ty * TM + i];
    }
#pragma unroll
    for (int g = 0; g < TN / 4; g++) {
        float4 v = *reinterpret_cast<const float4 *>(b_row + g * 4 * T::TX + tx * 4);
        b[4 * g] = v.x, b[4 * g + 1] = v.y, b[4 * g + 2] = v.z, b[4 * g + 3] = v.w;
    }
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
}

/* A BK-deep slice of `rows` rows of a row-major [.][ld] matrix, through
 * registers into shared memory transposed: S[k][row] (row stride SLD).
 * Rows at or past `valid` read as zero. */
template <int ROWS, int BK, int THREADS>
struct slice_stream {
    static constexpr int VEC = ROWS * BK / 4, PER = (VEC + THREADS - 1) / THREADS;
    float4 reg[PER];
    __device__ __forceinline__ void load(const float *M, int ld, int k0, int valid, int tid)
    {
#pragma unroll
        for (int r = 0; r < PER; r++) {
            int idx = tid + r * THREADS;
            if (idx < VEC) {
                int row = idx / (BK / 4), kq = idx % (BK / 4);
                reg[r] = row < valid
                             ? *reinterpret_cast<const float4 *>(M + (size_t)row * ld + k0 + 4 * kq)
                             : make_float4(0.f, 0.f, 0.f, 0.f);
            }
        }
    }
    template <int SLD>
    __device__ __forceinline__ void store(float *S, int tid) const
    {
#pragma unroll
        for (int r = 0; r < PER; r++) {
            int idx = tid + r * THREADS;
            if (idx < VEC) {
                int row = idx / (BK / 4), k = 4 * (idx % (BK / 4));
                S[(k + 0) * SLD + row] = reg[r].x;
                S[(k + 1) * SLD + row] = reg[r].y;
                S[(k + 2) * SLD + row] = reg[r].z;
                S[(k + 3) * SLD + row] = reg[r].w;
            }
        }
    }
};

template <int BM, int BN, int BK, int TM, int TN, class Epi>
__global__ void __launch_bounds__(gemm_tile<BM, BN, BK, TM, TN>::THREADS,
                                  gemm_tile<BM, BN, BK, TM, TN>::MIN_BLOCKS)
    gemm_abt_kernel(gemm_operands op, Epi epi)
{
    painn_grid_begin();
    using T = gemm_tile<BM, BN, BK, TM, TN>;
    constexpr int ALD = BM + T::PAD, BLD = BN + T::PAD;
    __shared__ __align__(16) float As[2][BK * ALD];
    __shared__ __align__(16) float Bs[2][BK * BLD];

    const int m_valid = op.m_device ? *op.m_device : op.m_host;
    const int row0 = blockIdx.x * BM;
    if (row0 >= m_valid) return;
    const int col0 = blockIdx.y * BN;
    const int z = blockIdx.z;
    const float *A = op.A + (size_t)z * op.a_stride_z + (size_t)row0 * op.lda;
    const float *B = op.B + (size_t)(z / op.b_every) * op.b_stride_z + (size_t)col0 * op.ldb;
    const int tid = threadIdx.x, tx = tid % T::TX, ty = tid / T::TX;
    const int a_valid = m_valid - row0;

    slice_stream<BM, BK, T::THREADS> a_in;
    slice_stream<BN, BK, T::THREADS> b_in;
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

    const int n_slices = op.K / BK;
    a_in.load(A, op.lda, 0, a_valid, tid);
    b_in.load(B, op.ldb, 0, BN, tid);
    a_in.template store<ALD>(As[0], tid);
    b_in.template store<BLD>(Bs[0], tid);
    __syncthreads();
    int buf = 0;
    for (int t = 0; t < n_slices; t++) {
        if (t + 1 < n_slices) {
            a_in.load(A, op.lda, (t + 1) * BK, a_valid, tid);
            b_in.load(B, op.ldb, (t + 1) * BK, BN, tid);
        }
#pragma unroll
        for (int k = 0; k < BK; k++) tile_fma<T>(acc, As[buf] + k * ALD, Bs[buf] + k * BLD, tx, ty);
        if (t + 1 < n_slices) {
            a_in.template store<ALD>(As[buf ^ 1], tid);
            b_in.template store<BLD>(Bs[buf ^ 1], tid);
        }
        __syncthreads();
        buf ^= 1;
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        int row = row0 + T::row(i, ty);
        if (row >= m_valid) continue;
#pragma unroll
        for (int j = 0; j < TN; j += 4)
            epi(z, row, col0 + T::col(j, tx),
                make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]));
    }
}

/* Few rows (latency): a block of 64 threads owns 16 rows x 16 columns; it
 * stages its rows of A and of B, all of K, into shared memory with one
 * asynchronous copy (one round trip to L2 instead of one per slice), then
 * thread (tx, ty) forms C[row0 + ty][col0 + 4 tx + j] with k = 0..K-1 in
 * order, like the other shapes. Shared memory: 2 x 16 x (K + 4) floats. */
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
    const int col0 = blockIdx.y * TINY_COLS, z = blockIdx.z, tid = threadIdx.x;
    const float *A = op.A + (size_t)z * op.a_stride_z + (size_t)row0 * op.lda;
    const float *B = op.B + (size_t)(z / op.b_every) * op.b_stride_z + (size_t)col0 * op.ldb;
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
    for (int k = 0; k < K; k += 4) {
        const float4 av = *reinterpret_cast<const float4 *>(a + k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const float4 bv = *reinterpret_cast<const float4 *>(Bs + (4 * tx + j) * LD + k);
            acc[j] = fmaf(av.x, bv.x, acc[j]);
            acc[j] = fmaf(av.y, bv.y, acc[j]);
            acc[j] = fmaf(av.z, bv.z, acc[j]);
            acc[j] = fmaf(av.w, bv.w, acc[j]);
        }
    }
    if (ty < rows) epi(z, row0 + ty, col0 + 4 * tx, make_float4(acc[0], acc[1], acc[2], acc[3]));
}

enum gemm_shape { GEMM_TINY = 0, GEMM_SMALL = 1, GEMM_BIG = 2 };

/* Tile shapes (BN = min(H, 128) for big tiles, min(H, 64) otherwise, so every
 * N of the model, a multiple of H, is a multiple of BN). */
struct gemm_big {
    static constexpr int BM = 128, BK = 16, TM = 8, TN = 8;
};
struct gemm_small {
    static constexpr int BM = 32, BK = 32, TM = 4, TN = 4;
};

static inline int gemm_bn(int H, gemm_shape s)
{
    return s == GEMM_BIG ? (H < 128 ? H : 128) : (H < 64 ? H : 64);
}

/* Largest shape that still gives every SM two blocks, for m_capacity rows of
 * N columns in Z planes; the environment variable PAINN_CUDA_TILES=big|small|
 * mid|tiny forces one (tests and benchmarks; mid means small for GEMMs). */
static inline gemm_shape gemm_choose(long m_capacity, int N, int Z, int H, int sm_count)
{
    const char *env = getenv("PAINN_CUDA_TILES");
    if (env && !strcmp(env, "big")) return GEMM_BIG;
    if (env && (!strcmp(env, "small") || !strcmp(env, "mid"))) return GEMM_SMALL;
    if (env && !strcmp(env, "tiny")) return GEMM_TINY;
    long big = (m_capacity + 127) / 128 * (N / gemm_bn(H, GEMM_BIG)) * Z;
    long small = (m_capacity + 31) / 32 * (N / gemm_bn(H, GEMM_SMALL)) * Z;
    if (big >= 2L * sm_count) return GEMM_BIG;
    if (small >= 2L * sm_count) return GEMM_SMALL;
    return GEMM_TINY;
}

template <class Tile, int BN, class Epi>
static cudaError_t gemm_launch_tile(const gemm_operands &op, int N, int Z, long m_capacity, Epi epi,
                                    bool pdl, cudaStream_t s)
{
    using T = gemm_tile<Tile::BM, BN, Tile::BK, Tile::TM, Tile::TN>;
    dim3 grid((unsigned)((m_capacity + Tile::BM - 1) / Tile::BM), (unsigned)(N / BN), (unsigned)Z);
    if (grid.x == 0) grid.x = 1;
    painn_launch(pdl, gemm_abt_kernel<Tile::BM, BN, Tile::BK, Tile::TM, Tile::TN, Epi>, grid,
                 T::THREADS, 0, s, op, epi);
    return cudaGetLastError();
}

template <class Epi>
static cudaError_t gemm_launch(const gemm_operands &op, int H, int N, int Z, long m_capacity,
                               gemm_shape shape, Epi epi, bool pdl, cudaStream_t s)
{
    switch (shape) {
    case GEMM_BIG:
        if (H >= 128) return gemm_launch_tile<gemm_big, 128>(op, N, Z, m_capacity, epi, pdl, s);
        if (H == 64) return gemm_launch_tile<gemm_big, 64>(op, N, Z, m_capacity, epi, pdl, s);
        return gemm_launch_tile<gemm_big, 32>(op, N, Z, m_capacity, epi, pdl, s);
    case GEMM_SMALL:
        if (H >= 64) return gemm_launch_tile<gemm_small, 64>(op, N, Z, m_capacity, epi, pdl, s);
        return gemm_launch_tile<gemm_small, 32>(op, N, Z, m_capacity, epi, pdl, s);
    default: {
        dim3 grid((unsigned)((m_capacity + TINY_ROWS - 1) / TINY_ROWS), (unsigned)(N / TINY_COLS),
                  (unsigned)Z);
        if (grid.x == 0) grid.x = 1;
        painn_launch(pdl, gemm_tiny_kernel<Epi>, grid, TINY_THREADS, gemm_tiny_smem(op.K), s, op,
                     epi);
        return cudaGetLastError();
    }
    }
}

/* The tiny kernel's shared memory above 48 KB (K up to 3H) must be allowed
 * once per epilogue type, before any launch or capture. */
template <class Epi>
static cudaError_t gemm_configure(int H)
{
    return cudaFuncSetAttribute(gemm_tiny_kernel<Epi>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)gemm_tiny_smem(3 * H));
}

#endif
