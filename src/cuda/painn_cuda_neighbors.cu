/* painn_cuda_neighbors.cu — neighbour lists on the GPU, every evaluation:
 *   1. count:  per atom j, the atoms i != j of its molecule with
 *              |x_i - x_j|^2 <= rc^2, and how many of them have i < j;
 *              also writes s = embedding[Z_j] for layer 0.
 *   2. scan:   prefix sums of both counts -> row_start, pair_start, the
 *              totals, and the overflow check against the capacity.
 *   3. fill:   per atom j, its senders in increasing order (a warp ballot
 *              keeps the order), and the pair of every edge i -> j, i < j.
 *   4. pairs:  per pair (lo, hi): r = x_lo - x_hi, d, u; and the pair of the
 *              edge hi -> lo, looked up among lo's senders (sorted).
 * Up to 64 atoms the four steps run in one block of one kernel (a handful of
 * atoms pays per launch); beyond, as four kernels over the whole GPU. */
#include "painn_cuda_internal.cuh"

namespace {

constexpr int SCAN_THREADS = 1024;
constexpr int WARPS_PER_BLOCK = 4;
constexpr int ONE_BLOCK_MAX_ATOMS = 64; /* measured: 17 us for 209 atoms in one block */

struct neighbor_args {
    int n;
    const float *pos;
    const int *atom_mol, *mol_start, *species;
    float rc2;
    const float *embedding;
    int H;
    float *s0;
    int *n_nb, *n_lower, *row_start, *pair_start;
    long edge_cap;
    painn_cuda_counts *counts;
    int *edge_src, *edge_pair, *pair_lo, *pair_hi;
    float4 *pair_u, *pair_r;
};

/* Step 1 for atom j, by one warp. */
__device__ void count_atom(const neighbor_args &a, int j, int lane)
{
    const int m = a.atom_mol[j], begin = a.mol_start[m], end = a.mol_start[m + 1];
    int total = 0, lower = 0;
    for (int i = begin + lane; i < end; i += 32) {
        bool near = i != j && painn_dist2(a.pos, a.n, i, j) <= a.rc2;
        total += near;
        lower += near && i < j;
    }
    for (int o = 16; o > 0; o >>= 1) {
        total += __shfl_xor_sync(0xffffffffu, total, o);
        lower += __shfl_xor_sync(0xffffffffu, lower, o);
    }
    if (lane == 0) {
        a.n_nb[j] = total;
        a.n_lower[j] = lower;
    }
    const float *e = a.embedding + (size_t)a.species[j] * a.H;
    for (int c = lane; c < a.H; c += 32) a.s0[(size_t)j * a.H + c] = e[c];
}

/* Exclusive prefix sum over the block of one int per thread (x0, x1 at once). */
__device__ void block_exclusive_scan2(int &x0, int &x1, int &total0, int &total1)
{
    __shared__ int warp0[SCAN_THREADS / 32], warp1[SCAN_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int in0 = x0, in1 = x1;
    for (int o = 1; o < 32; o <<= 1) {
        int y0 = __shfl_up_sync(0xffffffffu, x0, o), y1 = __shfl_up_sync(0xffffffffu, x1, o);
        if (lane >= o) {
            x0 += y0;
            x1 += y1;
        }
    }
    if (lane == 31) {
        warp0[warp] = x0;
        warp1[warp] = x1;
    }
    __syncthreads();
    if (warp == 0) {
        int w0 = warp0[lane], w1 = warp1[lane];
        for (int o = 1; o < 32; o <<= 1) {
            int y0 = __shfl_up_sync(0xffffffffu, w0, o), y1 = __shfl_up_sync(0xffffffffu, w1, o);
            if (lane >= o) {
                w0 += y0;
                w1 += y1;
            }
        }
        warp0[lane] = w0; /* inclusive over warps */
        warp1[lane] = w1;
    }
    __syncthreads();
    int before0 = warp ? warp0[warp - 1] : 0, before1 = warp ? warp1[warp - 1] : 0;
    x0 = before0 + x0 - in0;
    x1 = before1 + x1 - in1;
    total0 = warp0[SCAN_THREADS / 32 - 1];
    total1 = warp1[SCAN_THREADS / 32 - 1];
}

/* Step 2, by one block of SCAN_THREADS: row_start = exclusive scan of n_nb,
 * pair_start = exclusive scan of n_lower, each with the total at [n], in
 * tiles of 1024 consecutive atoms (coalesced) with a running carry. Over
 * capacity: all zero (no edges) and the overflow flag. */
__device__ void scan_counts(const neighbor_args &a)
{
    const int n = a.n;
    int carry0 = 0, carry1 = 0;
    for (int base = 0; base < n; base += SCAN_THREADS) {
        const int i = base + threadIdx.x;
        int x0 = i < n ? a.n_nb[i] : 0, x1 = i < n ? a.n_lower[i] : 0, total0, total1;
        block_exclusive_scan2(x0, x1, total0, total1);
        if (i < n) {
            a.row_start[i] = carry0 + x0;
            a.pair_start[i] = carry1 + x1;
        }
        carry0 += total0;
        carry1 += total1;
        __syncthreads(); /* the scan's shared memory is reused by the next tile */
    }
    const bool overflow = carry0 > a.edge_cap;
    if (overflow)
        for (int i = threadIdx.x; i < n; i += SCAN_THREADS) a.row_start[i] = a.pair_start[i] = 0;
    if (threadIdx.x == 0) {
        a.row_start[n] = overflow ? 0 : carry0;
        a.pair_start[n] = overflow ? 0 : carry1;
        a.counts->n_edges = overflow ? 0 : carry0;
        a.counts->n_pairs = overflow ? 0 : carry1;
        a.counts->needed_edges = carry0;
        a.counts->overflow = overflow;
    }
}

/* Step 3 for receiver j, by one warp: senders in increasing order; the pairs
 * of the lower senders (which come first: position k < n_lower[j]). */
__device__ void fill_atom(const neighbor_args &a, int j, int lane)
{
    const unsigned below = (1u << lane) - 1u;
    const int m = a.atom_mol[j], begin = a.mol_start[m], end = a.mol_start[m + 1];
    const int row = a.row_start[j], pair0 = a.pair_start[j];
    int filled = 0;
    for (int i0 = begin; i0 < end; i0 += 32) {
        const int i = i0 + lane;
        bool near = i < end && i != j && painn_dist2(a.pos, a.n, i, j) <= a.rc2;
        unsigned ballot = __ballot_sync(0xffffffffu, near);
        if (near) {
            int k = filled + __popc(ballot & below);
            a.edge_src[row + k] = i;
            if (i < j) {
                a.edge_pair[row + k] = pair0 + k;
                a.pair_lo[pair0 + k] = i;
                a.pair_hi[pair0 + k] = j;
            }
        }
        filled += __popc(ballot);
    }
}

/* Step 4 for pair p: geometry, and the pair index of the edge hi -> lo. */
__device__ void pair_geometry(const neighbor_args &a, int p)
{
    const int n = a.n, lo = a.pair_lo[p], hi = a.pair_hi[p];
    const float *pos = a.pos;
    float rx = pos[lo] - pos[hi], ry = pos[n + lo] - pos[n + hi];
    float rz = pos[2 * n + lo] - pos[2 * n + hi];
    float d = sqrtf(painn_dist2(pos, n, lo, hi));
    float inv = 1.0f / (d + PAINN_U_EPS);
    a.pair_u[p] = make_float4(rx * inv, ry * inv, rz * inv, d);
    a.pair_r[p] = make_float4(rx, ry, rz, 0.0f);
    int lo_i = a.row_start[lo] + a.n_lower[lo], hi_i = a.row_start[lo + 1] - 1;
    while (lo_i < hi_i) {
        int mid = (lo_i + hi_i) >> 1;
        if (a.edge_src[mid] < hi)
            lo_i = mid + 1;
        else
            hi_i = mid;
    }
    a.edge_pair[lo_i] = p;
}

/* ---- many atoms: one kernel per step ---- */

__global__ void count_neighbors_kernel(neighbor_args a)
{
    painn_grid_begin();
    const int warps = gridDim.x * (blockDim.x >> 5);
    for (int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); j < a.n; j += warps)
        count_atom(a, j, threadIdx.x & 31);
}

__global__ void __launch_bounds__(SCAN_THREADS) scan_neighbors_kernel(neighbor_args a)
{
    painn_grid_begin();
    scan_counts(a);
}

__global__ void fill_neighbors_kernel(neighbor_args a)
{
    painn_grid_begin();
    if (a.counts->overflow) return;
    const int warps = gridDim.x * (blockDim.x >> 5);
    for (int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); j < a.n; j += warps)
        fill_atom(a, j, threadIdx.x & 31);
}

__global__ void pair_geometry_kernel(neighbor_args a)
{
    painn_grid_begin();
    const int n_pairs = a.counts->n_pairs;
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < n_pairs; p += gridDim.x * blockDim.x)
        pair_geometry(a, p);
}

/* ---- few atoms: the four steps in one block ---- */

__global__ void __launch_bounds__(SCAN_THREADS) neighbors_one_block_kernel(neighbor_args a)
{
    painn_grid_begin();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = SCAN_THREADS / 32;
    for (int j = warp; j < a.n; j += warps) count_atom(a, j, lane);
    __syncthreads(); /* also orders the block's global writes */
    scan_counts(a);
    __syncthreads();
    if (a.counts->overflow) return; /* uniform: written before the barrier */
    for (int j = warp; j < a.n; j += warps) fill_atom(a, j, lane);
    __syncthreads();
    const int n_pairs = a.counts->n_pairs;
    for (int p = threadIdx.x; p < n_pairs; p += SCAN_THREADS) pair_geometry(a, p);
}

} // namespace

cudaError_t painn_launch_neighbor_lists(const painn_cuda *c, cudaStream_t s)
{
    const neighbor_args a = {
        c->n_atoms,     c->pos,      c->atom_mol, c->mol_start, c->species,   c->cutoff * c->cutoff,
        c->w.embedding, c->H,        c->s_in,     c->n_nb,      c->n_lower,   c->row_start,
        c->pair_start,  c->edge_cap, c->counts,   c->edge_src,  c->edge_pair, c->pair_lo,
        c->pair_hi,     c->pair_u,   c->pair_r};
    if (c->n_atoms <= ONE_BLOCK_MAX_ATOMS) {
        painn_launch(c->use_pdl, neighbors_one_block_kernel, 1, SCAN_THREADS, 0, s, a);
        return cudaGetLastError();
    }
    const int threads = 32 * WARPS_PER_BLOCK;
    const unsigned blocks = painn_grid(c->n_atoms, WARPS_PER_BLOCK, c->sm_count, 16);
    painn_launch(c->use_pdl, count_neighbors_kernel, blocks, threads, 0, s, a);
    painn_launch(c->use_pdl, scan_neighbors_kernel, 1, SCAN_THREADS, 0, s, a);
    painn_launch(c->use_pdl, fill_neighbors_kernel, blocks, threads, 0, s, a);
    painn_launch(c->use_pdl, pair_geometry_kernel, painn_grid(c->pair_cap, 128, c->sm_count, 16),
                 128, 0, s, a);
    return cudaGetLastError();
}
