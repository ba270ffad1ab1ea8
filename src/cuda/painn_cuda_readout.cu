/* painn_cuda_readout.cu — the energy readout and the start of the reverse pass.
 *
 * Per atom j, from the last layer's s = s_mid + a:
 *   z5 = W5 s + b5,  z6 = W6 silu(z5) + b6,  E_j = W7 silu(z6) + b7 (float64)
 * and its gradient, which starts the reverse pass:
 *   g6 = W7 * silu'(z6),  g5 = silu'(z5) (W6^T g6),  dE/ds = W5^T g5,
 *   Gout = [dE/ds, 0, 0] (v after the last update is unused), gvp = 0;
 *   only dE/ds is written into Gout and nothing into gvp: the last layer's
 *   update backward reads nothing else of them (painn_cuda_backward.cu).
 * A block takes RA atoms at a time (16 for many atoms, so that each weight
 * read serves 16 atoms; 1 for few, for latency); every output is one thread's
 * sum over its inputs in increasing order (bias first), whatever the batch.
 * Each weight matrix passes through shared memory in 8 KB chunks whose loads
 * are all in flight at once: read row by row from global memory it cost one
 * L2 round trip per few rows, since every block reads the weights once. The
 * inputs are read four at a time (16-byte shared-memory loads), and blocks
 * of many atoms are held to 170 registers (three per SM), so that 256
 * alanine dipeptides run in one wave. Measured on an H200, MD of 256 alanine
 * dipeptides, per readout: weights row by row 32.5 us; 8 atoms a block, 16
 * KB chunks, 166 registers 26.9 us; 8 atoms, 8 KB chunks, inputs four at a
 * time, 80 registers 22.7 us; 16 atoms, 170 registers 21.0 us. */
#include "painn_cuda_internal.cuh"

namespace {

constexpr int READOUT_THREADS = 128;
/* Floats of a weight matrix staged in shared memory at a time (8 KB). */
constexpr int READOUT_W_CHUNK = 2048;

/* component ii (0-3) of x (ii known at compile time) */
__device__ __forceinline__ float component(const float4 &x, int ii)
{
    return ii == 0 ? x.x : ii == 1 ? x.y : ii == 2 ? x.z : x.w;
}

/* out[a][o] = bias[o] + sum_i W[i][o] in[a][i] for a < RA, o < NO (W stored
 * transposed: [NI][NO], in global memory). Thread t owns outputs o = t % COLS,
 * o + COLS, ... for atoms t / COLS, t / COLS + G, ... (G = 128 / COLS thread
 * groups). W is staged in shared memory KC rows at a time, all loads of a
 * chunk issued together, the next chunk's while this one is summed (one
 * memory latency per stage, not one per row); the sum over i runs in
 * increasing order, bias first. Called by every thread of the block (it
 * synchronises). */
template <int RA, int NI, int NO>
__device__ __forceinline__ void dense_rows(const float *__restrict__ WT, const float *bias,
                                           const float (*in)[NI], float (*out)[NO], float *Wsh,
                                           int tid)
{
    constexpr int COLS = NO < READOUT_THREADS ? NO : READOUT_THREADS;
    constexpr int G = READOUT_THREADS / COLS, PER = G < RA ? RA / G : 1, NOC = NO / COLS;
    constexpr int KC = NI < READOUT_W_CHUNK / NO ? NI : READOUT_W_CHUNK / NO;
    constexpr int N4 = KC * NO / 4, LOADS = (N4 + READOUT_THREADS - 1) / READOUT_THREADS;
    static_assert(G >= RA || RA % G == 0, "RA atoms over the thread groups");
    static_assert(NI % KC == 0 && NO % 4 == 0 && KC % 4 == 0, "whole chunks of float4");
    const int a0 = tid / COLS, o0 = tid % COLS;
    float acc[NOC][PER];
#pragma unroll
    for (int m = 0; m < NOC; m++)
#pragma unroll
        for (int k = 0; k < PER; k++) acc[m][k] = bias ? bias[o0 + m * COLS] : 0.0f;
    const float4 *W4 = reinterpret_cast<const float4 *>(WT);
    float4 *Wsh4 = reinterpret_cast<float4 *>(Wsh);
    float4 w[LOADS];
    auto load_chunk = [&](int i0) {
#pragma unroll
        for (int r = 0; r < LOADS; r++) {
            const int q = tid + r * READOUT_THREADS;
            if (q < N4) w[r] = __ldg(W4 + (size_t)i0 * (NO / 4) + q);
        }
    };
    load_chunk(0);
    for (int i0 = 0; i0 < NI; i0 += KC) {
        __syncthreads(); /* the previous chunk is no longer read; `in` is written */
#pragma unroll
        for (int r = 0; r < LOADS; r++) {
            const int q = tid + r * READOUT_THREADS;
            if (q < N4) Wsh4[q] = w[r];
        }
        __syncthreads();
        if (i0 + KC < NI) load_chunk(i0 + KC); /* in flight during this chunk's sums */
        if (a0 < RA)
            for (int i = 0; i < KC; i += 4) {
                /* four inputs of each atom by one 16-byte read */
                float4 x[PER];
#pragma unroll
                for (int k = 0; k < PER; k++)
                    x[k] = *reinterpret_cast<const float4 *>(&in[a0 + k * G][i0 + i]);
#pragma unroll
                for (int ii = 0; ii < 4; ii++)
#pragma unroll
                    for (int m = 0; m < NOC; m++) {
                        const float wi = Wsh[(i + ii) * NO + o0 + m * COLS];
#pragma unroll
                        for (int k = 0; k < PER; k++)
                            acc[m][k] = fmaf(wi, component(x[k], ii), acc[m][k]);
                    }
            }
    }
    if (a0 < RA)
#pragma unroll
        for (int m = 0; m < NOC; m++)
#pragma unroll
            for (int k = 0; k < PER; k++) out[a0 + k * G][o0 + m * COLS] = acc[m][k];
}

template <int H, int RA>
__global__ void __launch_bounds__(READOUT_THREADS, RA > 1 ? 3 : 1)
    readout_kernel(int n, const float *__restrict__ X, const float *__restrict__ upd,
                   const float *__restrict__ W5, const float *__restrict__ W5T,
                   const float *__restrict__ b5, const float *__restrict__ W6,
                   const float *__restrict__ W6T, const float *__restrict__ b6,
                   const float *__restrict__ W7, const float *__restrict__ b7,
                   double *__restrict__ atom_energy, float *__restrict__ Gout)
{
    painn_grid_begin();
    constexpr int H2 = H / 2, H4 = H / 4;
    /* s, then dE/ds; z5; silu(z5), then g5 */
    __shared__ __align__(16) float s[RA][H], z5[RA][H2], a5[RA][H2], z6[RA][H4], g6[RA][H4];
    __shared__ __align__(16) float Wsh[READOUT_W_CHUNK];
    float(*gs)[H] = s;
    float(*g5)[H2] = a5;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (long j0 = (long)blockIdx.x * RA; j0 < n; j0 += (long)gridDim.x * RA) {
        const int na = (int)min((long)RA, n - j0);
        __syncthreads(); /* the previous atoms' dE/ds is written out */
        for (int t = tid; t < RA * H; t += READOUT_THREADS) {
            const int a = t / H, c = t % H;
            const size_t j = (size_t)(j0 + a);
            s[a][c] = a < na ? X[j * 2 * H + c] + upd[j * 3 * H + c] : 0.0f;
        }
        dense_rows<RA, H, H2>(W5T, b5, s, z5, Wsh, tid); /* z5 = W5 s + b5 */
        __syncthreads();
        for (int t = tid; t < RA * H2; t += READOUT_THREADS) a5[t / H2][t % H2] = painn_silu(z5[t / H2][t % H2]);
        dense_rows<RA, H2, H4>(W6T, b6, a5, z6, Wsh, tid); /* z6 = W6 a5 + b6 */
        __syncthreads();
        for (int t = tid; t < RA * H4; t += READOUT_THREADS)
            g6[t / H4][t % H4] = W7[t % H4] * painn_silu_grad(z6[t / H4][t % H4]);
        for (int a = warp; a < na; a += READOUT_THREADS / 32) { /* E_j, float64 */
            double e = 0.0;
            for (int o = lane; o < H4; o += 32) e += (double)W7[o] * (double)painn_silu(z6[a][o]);
            e = painn_warp_sum_double(e);
            if (lane == 0) atom_energy[j0 + a] = e + (double)b7[0];
        }
        dense_rows<RA, H4, H2>(W6, nullptr, g6, g5, Wsh, tid); /* W6^T g6 (W6 is [H4][H2]) */
        __syncthreads();
        for (int t = tid; t < RA * H2; t += READOUT_THREADS)
            g5[t / H2][t % H2] *= painn_silu_grad(z5[t / H2][t % H2]);
        dense_rows<RA, H2, H>(W5, nullptr, g5, gs, Wsh, tid); /* dE/ds = W5^T g5 (W5 is [H2][H]) */
        __syncthreads();
        for (int t = tid; t < RA * H; t += READOUT_THREADS) {
            const int a = t / H, c = t % H;
            if (a < na) Gout[(size_t)(j0 + a) * 3 * H + c] = gs[a][c];
        }
    }
}

template <int H, int RA>
void launch_readout_tile(const painn_cuda *c, cudaStream_t s)
{
    const int n = c->n_atoms, l = c->L - 1;
    const size_t nH = (size_t)n * H;
    unsigned blocks = painn_grid((n + RA - 1) / RA, 1, c->sm_count, 8);
    painn_launch(c->use_pdl, readout_kernel<H, RA>, blocks, READOUT_THREADS, 0, s, n,
                 c->X + l * 2 * nH, c->upd + l * 3 * nH, c->w.W5, c->w.W5T, c->w.b5, c->w.W6,
                 c->w.W6T, c->w.b6, c->w.W7, c->w.b7, c->atom_energy, c->Gout);
}

/* 16 atoms per block when there are many (weights reused), else one (more
 * blocks, shorter latency) */
template <int H>
void launch_readout(const painn_cuda *c, cudaStream_t s)
{
    if (c->n_atoms >= 1024)
        launch_readout_tile<H, 16>(c, s);
    else
        launch_readout_tile<H, 1>(c, s);
}

} // namespace

cudaError_t painn_launch_readout(const painn_cuda *c, cudaStream_t s)
{
    switch (c->H) {
    case 32: launch_readout<32>(c, s); break;
    case 64: launch_readout<64>(c, s); break;
    case 128: launch_readout<128>(c, s); break;
    case 256: launch_readout<256>(c, s); break;
    default: return cudaErrorInvalidValue; /* checked at creation */
    }
    return cudaGetLastError();
}
