/* painn_cuda_internal.cuh — the context behind painn_cuda.h and the stage
 * launchers shared by the .cu files of this folder (C++ only).
 *
 * Neighbour lists (rebuilt every evaluation):
 *   CSR by receiving atom: the incoming edges i -> j of atom j are
 *   edge_src[row_start[j] .. row_start[j+1]), senders in increasing order,
 *   so the n_lower[j] senders i < j come first. An unordered pair {lo < hi}
 *   is numbered by its edge lo -> hi in hi's list:
 *       pair = pair_start[hi] + (position of lo in hi's list),
 *   and edge_pair[e] gives the pair of every directed edge (both directions
 *   of a pair share it). The pair's geometry uses r = x_lo - x_hi; the edge
 *   lo -> hi has u = +r/(d+eps), the edge hi -> lo has u = -r/(d+eps).
 *   Because the filter phi depends on d only, it is computed once per pair.
 *
 * Per-pair arrays have pair_rows rows (pair capacity rounded up to the largest
 * GEMM tile); per-layer planes are stacked with z = 2 l + half:
 *   filter_out[z][pair_rows][3H] half 0: phi = W2 a + b2; half 1: dphi/dd = W2 a'
 *   with a = silu(W1 e + b1), a' = silu'(W1 e + b1) (W1 de/dd), both read
 *   from the filter table (cubic Hermite in d); in layer 0 the phi_v1
 *   columns are not formed (they multiply v = 0)
 * Atom arrays, per layer l (v planes per atom: v[(a*3 + x)*H + c]):
 *   s_in[l][n][H], v_in[l][n][3H]   features entering layer l
 *   X[l][n][2H]                     [s after the message ; |v| per channel]
 *   v_mid[l][n][3H]                 v after the message
 *   h3[l][n][H]                     update MLP pre-activation
 *   upd[l][n][3H]                   [a ; g1 ; g2] (the last layer: a only)
 * Backward scratch (one layer at a time): Gout[n][3H] = dE/d[a;g1;g2]
 *   (the last layer: dE/da only),
 *   gvp[n][3H] = dE/dv_mid through the vector gate, Gh3[n][H],
 *   gs_mid[n][H], gv_mid[n][3H] = dE/d(s, v) after the message.
 * edge_grad[l][painn_edge_grad_rows] of layer l: by the per-atom kernels,
 *   [2 pair_rows] float4 (dE/dd, dE/du x y z) for the directed edge of pair p
 *   into its hi atom (slot 2p) and into its lo atom (slot 2p + 1), each
 *   written by its receiver alone; by the pair kernels, [pair_rows][G]
 *   float4 (G_D, G_U) per pair, both edges at once (G_D = their dE/dd added,
 *   G_U = dE/du(lo -> hi) - dE/du(hi -> lo), as the forces use them), one
 *   partial sum per group of 32 channels, summed in order by the forces
 *   kernel.
 * filter_out is absent (null) when the pair kernels evaluate the table
 *   themselves. */
#ifndef DISTILMD_PAINN_CUDA_INTERNAL_CUH
#define DISTILMD_PAINN_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>
#include <stdlib.h>
#include <vector>

#include "cuda_try.cuh"
#include "painn_cuda.h"

#define PAINN_CUDA_MAX_LAYERS 8
#define PAINN_CUDA_PAIR_ROW_ALIGN 128 /* largest GEMM tile height */
#define PAINN_U_EPS 1e-8f             /* u = r / (d + eps), as in the model */

struct painn_mixing {
    float m[9]; /* M[x][y] row-major */
};

struct painn_weights {
    float *embedding;                   /* [101][H] */
    float *centers, *widths;            /* [K] */
    float *W1, *b1;                     /* [L][H][K], [L][H] */
    float *W2, *b2;                     /* [L][3H][H], [L][3H] */
    float *W3, *b3, *W3T;               /* [L][H][2H], [L][H], [L][2H][H] */
    float *W4, *b4, *W4T;               /* [L][3H][H], [L][3H], [L][H][3H] */
    float *W5, *b5, *W6, *b6, *W7, *b7; /* [H/2][H], [H/4][H/2], [1][H/4] */
    float *W5T, *W6T;                   /* transposed: [H][H/2], [H/2][H/4] */
    painn_mixing mixing[PAINN_CUDA_MAX_LAYERS];
};

struct painn_cuda {
    int H, L, K;
    float cutoff;
    int n_atoms, n_molecules, max_mol; /* max_mol: atoms of the largest molecule */
    long edge_cap, pair_cap, pair_rows;
    int max_neighbors;
    int sm_count, clock_khz;
    bool use_pdl; /* programmatic dependent launch (small contexts) */
    char device_name[256];
    size_t device_bytes;

    /* topology */
    int *species, *mol_start, *atom_mol;
    /* inputs and outputs */
    float *pos, *forces;
    double *energies, *atom_energy;
    /* neighbour lists */
    int *n_nb, *n_lower, *row_start, *pair_start;
    int *edge_src, *edge_pair, *pair_lo, *pair_hi;
    float4 *pair_u, *pair_r; /* (u, d) and (r, 0) of r = x_lo - x_hi */
    painn_cuda_counts *counts;
    /* the per-molecule neighbour kernel's scan across molecules: [0] holds
     * the count of blocks that have read the epoch, and the epoch (two
     * unsigned ints), [1 + m] molecule m's status (painn_cuda_neighbors.cu) */
    unsigned long long *mol_scan;

    painn_weights w;
    /* pair filters as a cubic Hermite table (painn_cuda_filter_table.cu):
     * [L][table_n][3H] intervals (y, D, h m0, h m1) over [0, rc] */
    float4 *filter_table;
    int table_n;
    float table_inv_h;     /* table_n / rc */
    double table_error[2]; /* measured max error of phi, dphi/dd over max |.| */

    /* the message step pair by pair (painn_cuda_pair_messages.cu): for
     * batches of many molecules of ~20 atoms; block b takes the molecules of atoms
     * [msg_blocks[b], msg_blocks[b+1]). Otherwise the per-atom kernels and
     * the per-pair filter arrays filter_out. edge_groups: channel groups
     * whose partial sums edge_grad holds per edge (H/32, else 1). */
    bool pair_messages;
    int edge_groups;
    int *msg_blocks;
    int msg_n_blocks, msg_max_block_atoms;

    /* activations */
    float *filter_out;
    float *s_in, *v_in, *X, *v_mid, *h3, *a3, *upd;
    float *Gout, *gvp, *Gh3, *gs_mid, *gv_mid;
    float4 *edge_grad;
    float4 *pair_force; /* dE/dx_lo = -dE/dx_hi of each pair (forces kernels) */

    /* the graph of one evaluation and the stream it was captured on */
    cudaStream_t capture_stream;
    cudaGraph_t graph;
    cudaGraphExec_t graph_exec;

    /* pinned host staging for the helpers */
    float *host_pos, *host_forces;
    painn_cuda_counts *host_counts;
};

/* count row-major [rows][cols] float64 matrices, one after another, in
 * precision T, each transposed to [cols][rows] when asked (host side). */
template <class T>
std::vector<T> pack_matrices(const double *const *src, int count, int rows, int cols,
                             bool transpose)
{
    const size_t per = (size_t)rows * cols;
    std::vector<T> host(per * count);
    for (int m = 0; m < count; m++)
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) {
                size_t to = transpose ? (size_t)k * rows + r : (size_t)r * cols + k;
                host[m * per + to] = (T)src[m][(size_t)r * cols + k];
            }
    return host;
}

/* Tabulates the filters of the model (float64 on the GPU) into
 * c->filter_table; fails if 4096 intervals do not reach float32 accuracy. */
int painn_filter_table_create(painn_cuda *c, const painn_model *m, dm_error *err);

/* float4 rows of edge_grad per layer (see the layout above). */
static inline size_t painn_edge_grad_rows(const painn_cuda *c)
{
    return (c->pair_messages ? 1 : 2) * (size_t)c->pair_rows * c->edge_groups;
}

/* Chooses the message path for the batch (sets pair_messages, edge_groups,
 * and the blocks of the pair kernels). Before the arrays are allocated. */
int painn_pair_messages_create(painn_cuda *c, const molecule_batch *t, dm_error *err);
cudaError_t painn_launch_pair_messages(const painn_cuda *c, int l, bool forward, cudaStream_t s);

/* Stage launchers, in evaluation order. Each enqueues its kernels on the
 * stream and returns cudaGetLastError(). */
cudaError_t painn_launch_neighbor_lists(const painn_cuda *c, cudaStream_t s);
cudaError_t painn_launch_pair_filters(const painn_cuda *c, cudaStream_t s);
cudaError_t painn_launch_message_forward(const painn_cuda *c, int l, cudaStream_t s);
cudaError_t painn_launch_update_forward(const painn_cuda *c, int l, cudaStream_t s);
cudaError_t painn_launch_readout(const painn_cuda *c, cudaStream_t s);
cudaError_t painn_launch_update_backward(const painn_cuda *c, int l, cudaStream_t s);
cudaError_t painn_launch_message_backward(const painn_cuda *c, int l, cudaStream_t s);
cudaError_t painn_launch_forces(const painn_cuda *c, cudaStream_t s);

/* One-time kernel attributes (shared-memory limits); called at creation.
 * The first calls the second (kernels of painn_cuda_backward.cu). */
cudaError_t painn_configure_kernels(const painn_cuda *c);
cudaError_t painn_configure_backward_kernels(int H);

/* ---- launches ---- */

/* Kernels of small contexts are launched with programmatic stream
 * serialisation (Hopper's programmatic dependent launch): the next kernel of
 * the stream may be scheduled while this one finishes, and waits in
 * painn_grid_begin() until it has completed and its writes are visible. That
 * saves part of the fixed cost of each launch, which is what a handful of
 * atoms pays; measured on an H200 it gained 6 us of 110 for one water, but
 * cost 40-90 us from 16 molecules up (the waiting blocks compete with the
 * running kernel), hence only for contexts of at most PAINN_PDL_MAX_ATOMS
 * (the two force kernels excepted: painn_launch_forces).
 * PAINN_CUDA_PDL=0 or 1 in the environment forces it off or on. */
#define PAINN_PDL_MAX_ATOMS 64

static inline bool painn_pdl_choice(int n_atoms)
{
    const char *env = getenv("PAINN_CUDA_PDL");
    if (env && (env[0] == '0' || env[0] == '1')) return env[0] == '1';
    return n_atoms <= PAINN_PDL_MAX_ATOMS;
}

template <class... Params, class... Args>
static inline cudaError_t painn_launch(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block,
                                       size_t smem, cudaStream_t s, Args... args)
{
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = &attr;
    cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((Params)args)...);
}

/* First statement of every kernel: wait for the previous kernel of the
 * stream (complete, writes visible), then let the next one be scheduled.
 * Both are no-ops for a launch without the attribute. */
__device__ __forceinline__ void painn_grid_begin()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* ---- small device helpers shared by the kernels ---- */

__device__ __forceinline__ float painn_silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* d silu/dx = sigma(x) (1 + x (1 - sigma(x))) */
__device__ __forceinline__ float painn_silu_grad(float x)
{
    float sig = 1.0f / (1.0f + expf(-x));
    return sig * (1.0f + x * (1.0f - sig));
}

/* |a - b|^2 of two points. Symmetric in (a, b) bit for bit, so that j is
 * i's neighbour exactly when i is j's. */
__device__ __forceinline__ float painn_dist2_of(float ax, float ay, float az, float bx, float by,
                                                float bz)
{
    /* explicit rounding: never contracted to FMA differently in two kernels */
    float dx = __fsub_rn(ax, bx), dy = __fsub_rn(ay, by), dz = __fsub_rn(az, bz);
    return __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
}

/* |x_i - x_j|^2 from the position planes. */
__device__ __forceinline__ float painn_dist2(const float *pos, int n, int i, int j)
{
    return painn_dist2_of(pos[i], pos[n + i], pos[2 * n + i], pos[j], pos[n + j], pos[2 * n + j]);
}

__device__ __forceinline__ float painn_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double painn_warp_sum_double(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The filter table at distance d (painn_cuda_filter_table.cu): interval i,
 * t = d/h - i, and the weights of (y, D, h m0, h m1) in
 *   phi    = y + t^2 (3 - 2t) D + t (1 - t)^2 h m0 - t^2 (1 - t) h m1
 *   dphi/dd = [6 t (1 - t) D + (1 - t)(1 - 3t) h m0 + t (3t - 2) h m1] / h */
struct painn_hermite {
    int i;
    float cD, c0, c1, dD, d0, d1;
};

__device__ __forceinline__ painn_hermite painn_hermite_at(float d, float inv_h, int N)
{
    painn_hermite w;
    const float s = d * inv_h;
    w.i = min((int)s, N - 1);
    const float t = s - (float)w.i, u = 1.0f - t;
    w.cD = t * t * (3.0f - 2.0f * t), w.c0 = t * u * u, w.c1 = -t * t * u;
    w.dD = 6.0f * t * u * inv_h, w.d0 = u * (1.0f - 3.0f * t) * inv_h,
    w.d1 = t * (3.0f * t - 2.0f) * inv_h;
    return w;
}

/* phi and dphi/dd of one column from its interval's (y, D, h m0, h m1) */
__device__ __forceinline__ float painn_hermite_phi(const painn_hermite &w, float4 v)
{
    return v.x + (w.cD * v.y + (w.c0 * v.z + w.c1 * v.w));
}

__device__ __forceinline__ float painn_hermite_dphi(const painn_hermite &w, float4 v)
{
    return w.dD * v.y + (w.d0 * v.z + w.d1 * v.w);
}

/* The update backward of layer l-1 through its vector gate, for one channel
 * of one atom, from the gradients gs, gv entering layer l and layer l-1's
 * v_mid (vm), g1, g2 and mixing matrix M:
 *   Gout = [gs, sum_x gv vm, sum_x gv (M vm)],  gvp = gv g1 + (M^T gv) g2 */
__device__ __forceinline__ void painn_gate_backward(float gs, const float gv[3], const float vm[3],
                                                    float g1, float g2, const painn_mixing &M,
                                                    float go[3], float gp[3])
{
    float mv[3];
    for (int x = 0; x < 3; x++)
        mv[x] = M.m[3 * x] * vm[0] + M.m[3 * x + 1] * vm[1] + M.m[3 * x + 2] * vm[2];
    go[0] = gs;
    go[1] = gv[0] * vm[0] + gv[1] * vm[1] + gv[2] * vm[2];
    go[2] = gv[0] * mv[0] + gv[1] * mv[1] + gv[2] * mv[2];
    for (int x = 0; x < 3; x++) {
        const float mt = M.m[x] * gv[0] + M.m[3 + x] * gv[1] + M.m[6 + x] * gv[2];
        gp[x] = gv[x] * g1 + mt * g2;
    }
}

/* Reduces v[0..CNT) of every lane over the lanes of its slot, offsets O, O/2,
 * .., 1: while a lane holds more than one value, the lane with bit O set keeps
 * the upper half and sends the lower one, its partner the reverse; once one
 * is left, a plain butterfly. Afterwards lane m of a slot of LE lanes holds
 * in v[r], r < max(1, CNT/LE), the full sum of value (m / DUP) max(1, CNT/LE)
 * + r with DUP = max(1, LE/CNT) (the lanes with equal m / DUP hold the same). */
template <int CNT, int O>
__device__ __forceinline__ void painn_transpose_reduce(float *v, int lane)
{
    if constexpr (O > 0) {
        if constexpr (CNT > 1) {
            constexpr int HALF = CNT / 2;
            const bool up = (lane & O) != 0;
#pragma unroll
            for (int i = 0; i < HALF; i++) {
                const float send = up ? v[i] : v[i + HALF];
                const float keep = up ? v[i + HALF] : v[i];
                v[i] = keep + __shfl_xor_sync(0xffffffffu, send, O);
            }
            painn_transpose_reduce<HALF, O / 2>(v, lane);
        } else {
            v[0] += __shfl_xor_sync(0xffffffffu, v[0], O);
            painn_transpose_reduce<1, O / 2>(v, lane);
        }
    }
}

/* Blocks for a grid-stride loop over `units` work units of `per_block` each,
 * capped at `cap_per_sm` resident blocks per multiprocessor. */
static inline unsigned painn_grid(long units, int per_block, int sm_count, int cap_per_sm)
{
    long blocks = (units + per_block - 1) / per_block;
    long cap = (long)sm_count * cap_per_sm;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

#endif
