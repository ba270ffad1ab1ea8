/* painn_cuda_readout.cu — the energy readout and the start of the reverse pass.
 *
 * Per atom j, from the last layer's s = s_mid + a:
 *   z5 = W5 s + b5,  z6 = W6 silu(z5) + b6,  E_j = W7 silu(z6) + b7 (float64)
 * and its gradient, which starts the reverse pass:
 *   g6 = W7 * silu'(z6),  g5 = silu'(z5) (W6^T g6),  dE/ds = W5^T g5,
 *   Gout = [dE/ds, 0, 0] (v after the last update is unused), gvp = 0;
 *   only dE/ds is written into Gout and nothing into gvp: the last layer's
 *   update backward reads nothing else of them (painn_cuda_backward.cu).
 * A block takes RA atoms at a time (8 for many atoms, so that each weight read
 * serves 8 atoms; 1 for few, for latency); every output is one thread's sum over its inputs in increasing
 * order (bias first), whatever the batch. */
#include "painn_cuda_internal.cuh"

namespace {

constexpr int READOUT_THREADS = 128;

/* out[a][o] = bias[o] + sum_i W[i][o] in[a][i] for a < RA, o < NO (W stored
 * transposed: [NI][NO]). Thread t owns output o = t % NO (and o + 128, ...)
 * for atoms t / NO, t / NO + G, ... (G = 128 / NO thread groups). */
template <int RA, int NI, int NO>
__device__ __forceinline__ void dense_rows(const float *__restrict__ WT, const float *bias,
                                           const float (*in)[NI], float (*out)[NO], int tid)
{
    constexpr int COLS = NO < READOUT_THREADS ? NO : READOUT_THREADS;
    constexpr int G = READOUT_THREADS / COLS, PER = G < RA ? RA / G : 1;
    static_assert(G >= RA || RA % G == 0, "RA atoms over the thread groups");
    const int a0 = tid / COLS;
    if (a0 >= RA) return; /* more thread groups than atoms */
    for (int o = tid % COLS; o < NO; o += COLS) {
        float acc[PER];
        const float b = bias ? bias[o] : 0.0f;
#pragma unroll
        for (int k = 0; k < PER; k++) acc[k] = b;
        for (int i = 0; i < NI; i++) {
            const float w = WT[(size_t)i * NO + o];
#pragma unroll
            for (int k = 0; k < PER; k++) acc[k] = fmaf(w, in[a0 + k * G][i], acc[k]);
        }
#pragma unroll
        for (int k = 0; k < PER; k++) out[a0 + k * G][o] = acc[k];
    }
}

template <int H, int RA>
__global__ void __launch_bounds__(READOUT_THREADS)
    readout_kernel(int n, const float *__restrict__ X, const float *__restrict__ upd,
                   const float *__restrict__ W5, const float *__restrict__ W5T,
                   const float *__restrict__ b5, const float *__restrict__ W6,
                   const float *__restrict__ W6T, const float *__restrict__ b6,
                   const float *__restrict__ W7, const float *__restrict__ b7,
                   double *__restrict__ atom_energy, float *__restrict__ Gout)
{
    painn_grid_begin();
    constexpr int H2 = H / 2, H4 = H / 4;
    __shared__ float s[RA][H], z5[RA][H2], a5[RA][H2], g5[RA][H2], z6[RA][H4], g6[RA][H4];
    __shared__ float gs[RA][H];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (long j0 = (long)blockIdx.x * RA; j0 < n; j0 += (long)gridDim.x * RA) {
        const int na = (int)min((long)RA, n - j0);
        for (int t = tid; t < RA * H; t += READOUT_THREADS) {
            const int a = t / H, c = t % H;
            const size_t j = (size_t)(j0 + a);
            s[a][c] = a < na ? X[j * 2 * H + c] + upd[j * 3 * H + c] : 0.0f;
        }
        __syncthreads();
        dense_rows<RA, H, H2>(W5T, b5, s, z5, tid); /* z5 = W5 s + b5 */
        __syncthreads();
        for (int t = tid; t < RA * H2; t += READOUT_THREADS) a5[t / H2][t % H2] = painn_silu(z5[t / H2][t % H2]);
        __syncthreads();
        dense_rows<RA, H2, H4>(W6T, b6, a5, z6, tid); /* z6 = W6 a5 + b6 */
        __syncthreads();
        for (int t = tid; t < RA * H4; t += READOUT_THREADS)
            g6[t / H4][t % H4] = W7[t % H4] * painn_silu_grad(z6[t / H4][t % H4]);
        for (int a = warp; a < na; a += READOUT_THREADS / 32) { /* E_j, float64 */
            double e = 0.0;
            for (int o = lane; o < H4; o += 32) e += (double)W7[o] * (double)painn_silu(z6[a][o]);
            e = painn_warp_sum_double(e);
            if (lane == 0) atom_energy[j0 + a] = e + (double)b7[0];
        }
        __syncthreads();
        dense_rows<RA, H4, H2>(W6, nullptr, g6, g5, tid); /* W6^T g6 (W6 is [H4][H2]) */
        __syncthreads();
        for (int t = tid; t < RA * H2; t += READOUT_THREADS)
            g5[t / H2][t % H2] *= painn_silu_grad(z5[t / H2][t % H2]);
        __syncthreads();
        dense_rows<RA, H2, H>(W5, nullptr, g5, gs, tid); /* dE/ds = W5^T g5 (W5 is [H2][H]) */
        __syncthreads();
        for (int t = tid; t < RA * H; t += READOUT_THREADS) {
            const int a = t / H, c = t % H;
            if (a < na) Gout[(size_t)(j0 + a) * 3 * H + c] = gs[a][c];
        }
        __syncthreads();
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

/* 8 atoms per block when there are many (weights reused), else one (more
 * blocks, shorter latency) */
template <int H>
void launch_readout(const painn_cuda *c, cudaStream_t s)
{
    if (c->n_atoms >= 1024)
        launch_readout_tile<H, 8>(c, s);
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
