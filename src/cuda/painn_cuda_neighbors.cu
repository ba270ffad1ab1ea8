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
 * Two ways to run them, the same lists from each:
 *   - molecules of at most 128 atoms that cannot overflow (n_m - 1 <=
 *     max_neighbors): one kernel, a block per molecule. The molecule's
 *     positions and neighbour masks stay in shared memory, its offsets come
 *     from a single-pass scan across the blocks (decoupled look-back), and
 *     the edge hi -> lo is numbered from lo's mask instead of a search.
 *     Measured on an H200 in MD of 256 alanine dipeptides: 8.1-8.9 us against
 *     20.5 us for the four kernels below; one alanine dipeptide's step as
 *     fast as with the four steps in one block of 1024 threads (0.111 ms),
 *     which this kernel replaced;
 *   - otherwise four kernels over the whole GPU. */
#include "painn_cuda_internal.cuh"

namespace {

constexpr int SCAN_THREADS = 1024;
constexpr int WARPS_PER_BLOCK = 4;

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
    int n_mol;
    unsigned long long *mol_scan;
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

/* Exclusive prefix sum over a block of THREADS threads of one int per thread
 * (x0, x1 at once), with the block's totals. */
template <int THREADS>
__device__ void block_exclusive_scan2(int &x0, int &x1, int &total0, int &total1)
{
    constexpr int WARPS = THREADS / 32;
    __shared__ int warp0[WARPS], warp1[WARPS];
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
        int w0 = lane < WARPS ? warp0[lane] : 0, w1 = lane < WARPS ? warp1[lane] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            int y0 = __shfl_up_sync(0xffffffffu, w0, o), y1 = __shfl_up_sync(0xffffffffu, w1, o);
            if (lane >= o) {
                w0 += y0;
                w1 += y1;
            }
        }
        if (lane < WARPS) {
            warp0[lane] = w0; /* inclusive over warps */
            warp1[lane] = w1;
        }
    }
    __syncthreads();
    int before0 = warp ? warp0[warp - 1] : 0, before1 = warp ? warp1[warp - 1] : 0;
    x0 = before0 + x0 - in0;
    x1 = before1 + x1 - in1;
    total0 = warp0[WARPS - 1];
    total1 = warp1[WARPS - 1];
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
        block_exclusive_scan2<SCAN_THREADS>(x0, x1, total0, total1);
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

/* Geometry of pair p from x_lo, x_hi: r = x_lo - x_hi, d = |r|, u = r / (d + eps). */
__device__ __forceinline__ void write_pair_geometry(const neighbor_args &a, int p, float lx,
                                                    float ly, float lz, float hx, float hy,
                                                    float hz)
{
    float rx = __fsub_rn(lx, hx), ry = __fsub_rn(ly, hy), rz = __fsub_rn(lz, hz);
    float d = sqrtf(painn_dist2_of(lx, ly, lz, hx, hy, hz));
    float inv = 1.0f / (d + PAINN_U_EPS);
    a.pair_u[p] = make_float4(rx * inv, ry * inv, rz * inv, d);
    a.pair_r[p] = make_float4(rx, ry, rz, 0.0f);
}

/* Step 4 for pair p: geometry, and the pair index of the edge hi -> lo. */
__device__ void pair_geometry(const neighbor_args &a, int p)
{
    const int n = a.n, lo = a.pair_lo[p], hi = a.pair_hi[p];
    const float *pos = a.pos;
    write_pair_geometry(a, p, pos[lo], pos[n + lo], pos[2 * n + lo], pos[hi], pos[n + hi],
                        pos[2 * n + hi]);
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

/* ---- any batch: one kernel per step ---- */

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

/* ---- molecules of at most MOL_MAX_ATOMS atoms: one block per molecule ---- */

constexpr int MOL_MAX_ATOMS = 128, MOL_THREADS = 256, MOL_WORDS = MOL_MAX_ATOMS / 32;
static_assert(MOL_THREADS >= MOL_MAX_ATOMS, "a thread per atom in the scans");

/* The mask of bits 0..b-1 (none for b <= 0, all for b >= 32). */
__device__ __forceinline__ unsigned bits_below(int b)
{
    return b <= 0 ? 0u : b >= 32 ? ~0u : (1u << b) - 1u;
}

/* Molecule m's status in the scan across molecules, one 64-bit word: flag
 * (2 bits: 0 not yet, 1 its own totals, 2 the totals of molecules 0..m),
 * the epoch of the evaluation that wrote it (2 bits: a word left by the
 * previous evaluation reads as "not yet"), edges (30 bits) and pairs (30
 * bits; the capacity is below 2^30 edges, edge_capacity). */
enum { SCAN_NOT_YET = 0, SCAN_OWN = 1, SCAN_PREFIX = 2 };

__device__ __forceinline__ unsigned long long scan_word(unsigned flag, unsigned epoch, int edges,
                                                        int pairs)
{
    return (unsigned long long)flag << 62 | (unsigned long long)(epoch & 3u) << 60 |
           (unsigned long long)edges << 30 | (unsigned long long)pairs;
}
__device__ __forceinline__ unsigned scan_flag(unsigned long long w)
{
    return (unsigned)(w >> 62);
}
__device__ __forceinline__ unsigned scan_epoch(unsigned long long w)
{
    return (unsigned)(w >> 60) & 3u;
}
__device__ __forceinline__ int scan_edges(unsigned long long w)
{
    return (int)(w >> 30) & 0x3fffffff;
}
__device__ __forceinline__ int scan_pairs(unsigned long long w)
{
    return (int)w & 0x3fffffff;
}

/* The evaluation's epoch, by thread 0 of every block: read, then counted in
 * (the block that counts last resets the count and advances the epoch, after
 * every block has read it; the next evaluation's kernel reads the new one). */
__device__ unsigned read_epoch(unsigned long long *mol_scan, int n_mol)
{
    unsigned *count = reinterpret_cast<unsigned *>(mol_scan), *ep = count + 1;
    const unsigned epoch = *(volatile unsigned *)ep;
    __threadfence();
    if (atomicAdd(count, 1u) == (unsigned)n_mol - 1) {
        __threadfence();
        atomicExch(count, 0u);
        atomicExch(ep, epoch + 1u);
    }
    return epoch;
}

/* Edges and pairs of molecules 0..m-1, by molecule m's block, after it has
 * published its own totals (e, p): the predecessors' words are read
 * MOL_THREADS at a time, newest first, adding their own totals until one
 * holds a prefix (decoupled look-back); then m's prefix is published.
 * Blocks run molecules in block order and are started in that order, so a
 * block waits only on blocks that have started (as CUB's single-pass scan). */
__device__ int2 scan_molecules(unsigned long long *status, int m, unsigned epoch, int e, int p)
{
    __shared__ int newest_prefix, sum_e[MOL_THREADS / 32], sum_p[MOL_THREADS / 32];
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    int before_e = 0, before_p = 0;
    for (int base = m - 1; base >= 0; base -= MOL_THREADS) {
        const int k = base - t;
        unsigned long long w = scan_word(SCAN_PREFIX, epoch, 0, 0); /* before molecule 0 */
        if (k >= 0) {
            do w = *(volatile unsigned long long *)(status + k);
            while (scan_flag(w) == SCAN_NOT_YET || scan_epoch(w) != (epoch & 3u));
        }
        if (t == 0) newest_prefix = MOL_THREADS;
        __syncthreads();
        if (scan_flag(w) == SCAN_PREFIX) atomicMin(&newest_prefix, t);
        __syncthreads();
        const int last = newest_prefix; /* threads 0..last add theirs */
        int de = t <= last ? scan_edges(w) : 0, dp = t <= last ? scan_pairs(w) : 0;
        for (int o = 16; o > 0; o >>= 1) {
            de += __shfl_xor_sync(0xffffffffu, de, o);
            dp += __shfl_xor_sync(0xffffffffu, dp, o);
        }
        if (lane == 0) sum_e[warp] = de, sum_p[warp] = dp;
        __syncthreads();
        for (int v = 0; v < MOL_THREADS / 32; v++) before_e += sum_e[v], before_p += sum_p[v];
        __syncthreads(); /* newest_prefix and the sums are reused */
        if (last < MOL_THREADS) break;
    }
    if (t == 0 && m > 0)
        atomicExch(status + m, scan_word(SCAN_PREFIX, epoch, before_e + e, before_p + p));
    return make_int2(before_e, before_p);
}

/* Layer 0's s = embedding[Z] for the molecule's atoms, four channels per
 * thread, EMB_LOADS loads in flight before their stores. */
__device__ void copy_embedding(const neighbor_args &a, int begin, int n_m, const int *z)
{
    constexpr int EMB_LOADS = 8;
    const int quads = a.H / 4, total = n_m * quads;
    float4 *s0 = reinterpret_cast<float4 *>(a.s0 + (size_t)begin * a.H);
    for (int q0 = threadIdx.x; q0 < total; q0 += EMB_LOADS * MOL_THREADS) {
        float4 e[EMB_LOADS];
#pragma unroll
        for (int b = 0; b < EMB_LOADS; b++) {
            const int q = q0 + b * MOL_THREADS;
            if (q < total)
                e[b] = __ldg(
                    reinterpret_cast<const float4 *>(a.embedding + (size_t)z[q / quads] * a.H) +
                    q % quads);
        }
#pragma unroll
        for (int b = 0; b < EMB_LOADS; b++)
            if (q0 + b * MOL_THREADS < total) s0[q0 + b * MOL_THREADS] = e[b];
    }
}

/* Molecule m = blockIdx.x: (1) its atoms' neighbour masks and counts from
 * positions in shared memory, (2) their offsets within the molecule, its
 * totals published, (3) the embedding copied while the predecessors finish,
 * the molecule's offsets from the scan across molecules, (4) the lists. */
__global__ void __launch_bounds__(MOL_THREADS) neighbors_by_molecule_kernel(neighbor_args a)
{
    painn_grid_begin();
    /* near[j][w] bit b: atom 32 w + b of the molecule is j's neighbour (local indices) */
    __shared__ unsigned near[MOL_MAX_ATOMS][MOL_WORDS];
    __shared__ float px[MOL_MAX_ATOMS], py[MOL_MAX_ATOMS], pz[MOL_MAX_ATOMS];
    __shared__ int z[MOL_MAX_ATOMS], row0[MOL_MAX_ATOMS], pair0[MOL_MAX_ATOMS];
    __shared__ unsigned s_epoch;
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5, warps = MOL_THREADS / 32;
    const int m = blockIdx.x, begin = a.mol_start[m], n_m = a.mol_start[m + 1] - begin;
    const int words = (n_m + 31) / 32, n = a.n;
    if (t < n_m) {
        px[t] = a.pos[begin + t], py[t] = a.pos[n + begin + t], pz[t] = a.pos[2 * n + begin + t];
        z[t] = a.species[begin + t];
    }
    if (t == 0) s_epoch = read_epoch(a.mol_scan, a.n_mol);
    __syncthreads();

    /* 1. masks and counts, warp per atom j */
    for (int jl = warp; jl < n_m; jl += warps) {
        int total = 0, lower = 0;
        for (int w = 0; w < words; w++) {
            const int il = 32 * w + lane;
            const bool is_near =
                il < n_m && il != jl &&
                painn_dist2_of(px[il], py[il], pz[il], px[jl], py[jl], pz[jl]) <= a.rc2;
            const unsigned ballot = __ballot_sync(0xffffffffu, is_near);
            if (lane == 0) near[jl][w] = ballot;
            total += __popc(ballot);
            lower += __popc(ballot & bits_below(jl - 32 * w));
        }
        if (lane == 0) row0[jl] = total, pair0[jl] = lower;
    }
    __syncthreads();

    /* 2. offsets within the molecule; its totals published */
    int x0 = t < n_m ? row0[t] : 0, x1 = t < n_m ? pair0[t] : 0, e_m, p_m;
    block_exclusive_scan2<MOL_THREADS>(x0, x1, e_m, p_m);
    unsigned long long *status = a.mol_scan + 1;
    if (t == 0)
        atomicExch(status + m, scan_word(m == 0 ? SCAN_PREFIX : SCAN_OWN, s_epoch, e_m, p_m));

    /* 3. the embedding, then the offsets of the molecule */
    copy_embedding(a, begin, n_m, z);
    const int2 before = scan_molecules(status, m, s_epoch, e_m, p_m);
    if (t < n_m) {
        row0[t] = before.x + x0;
        pair0[t] = before.y + x1;
        a.row_start[begin + t] = row0[t];
        a.pair_start[begin + t] = pair0[t];
    }
    if (m == a.n_mol - 1 && t == 0) {
        const int n_edges = before.x + e_m, n_pairs = before.y + p_m;
        a.row_start[n] = n_edges;
        a.pair_start[n] = n_pairs;
        *a.counts = painn_cuda_counts{n_edges, n_pairs, n_edges, 0};
    }
    __syncthreads();

    /* 4. fill, warp per receiver j: senders in increasing order; an edge
     * i -> j with i < j is pair pair0[j] + k (k: its position in j's row),
     * one with i > j the pair (j, i), at j's position among i's senders;
     * each pair's geometry by the lane of its edge lo -> hi */
    const unsigned below = bits_below(lane);
    for (int jl = warp; jl < n_m; jl += warps) {
        const int j = begin + jl, row = row0[jl];
        int filled = 0;
        for (int w = 0; w < words; w++) {
            const unsigned ballot = near[jl][w];
            const int il = 32 * w + lane;
            if (ballot >> lane & 1u) {
                const int k = filled + __popc(ballot & below), i = begin + il;
                a.edge_src[row + k] = i;
                if (il < jl) {
                    const int p = pair0[jl] + k;
                    a.edge_pair[row + k] = p;
                    a.pair_lo[p] = i;
                    a.pair_hi[p] = j;
                    write_pair_geometry(a, p, px[il], py[il], pz[il], px[jl], py[jl], pz[jl]);
                } else {
                    int pos = 0; /* j among i's senders (all below i) */
                    for (int v = 0; v < jl / 32; v++) pos += __popc(near[il][v]);
                    pos += __popc(near[il][jl / 32] & bits_below(jl % 32));
                    a.edge_pair[row + k] = pair0[il] + pos;
                }
            }
            filled += __popc(ballot);
        }
    }
}
} // namespace

cudaError_t painn_launch_neighbor_lists(const painn_cuda *c, cudaStream_t s)
{
    const neighbor_args a = {c->n_atoms,     c->pos,       c->atom_mol,
                             c->mol_start,   c->species,   c->cutoff * c->cutoff,
                             c->w.embedding, c->H,         c->s_in,
                             c->n_nb,        c->n_lower,   c->row_start,
                             c->pair_start,  c->edge_cap,  c->counts,
                             c->edge_src,    c->edge_pair, c->pair_lo,
                             c->pair_hi,     c->pair_u,    c->pair_r,
                             c->n_molecules, c->mol_scan};
    if (c->max_mol <= MOL_MAX_ATOMS && c->max_mol - 1 <= c->max_neighbors) {
        painn_launch(c->use_pdl, neighbors_by_molecule_kernel, c->n_molecules, MOL_THREADS, 0, s,
                     a);
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
