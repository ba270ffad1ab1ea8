/* painn_cuda_pair_messages.cu — the message step of every layer, forward and
 * reverse, pair by pair, with the filters evaluated from the table inside.
 *
 * For batches of many molecules of ~20 atoms (painn_pair_messages_create
 * decides; the other batches use painn_cuda_messages.cu with the per-pair
 * filter arrays of painn_cuda_filter_table.cu). A block takes a group of
 * whole molecules, atoms [first, last) (blocks[], at most PAIR_BLOCK_ATOMS),
 * and one group of 32 channels, g = blockIdx.y: lane l owns channel
 * c = 32 g + l of every atom. It copies the group's pairs {lo < hi} (numbered
 * by hi, then lo) into shared memory; warp w then walks the atoms hi = w,
 * w + PAIR_WARPS, ... and, for each, its pairs with lower neighbours lo,
 * each pair once for both of its edges:
 *   phi(d), dphi/dd(d): the cubic Hermite table (painn_hermite_*), as the
 *   filter kernel evaluates it, so both paths use the same filters.
 * Forward (u = pair_u: the edge lo -> hi has u, the edge hi -> lo has -u):
 *   s_acc[hi] += s[lo] phi_s,   v_acc[hi] += v[lo] phi_v1 + u phi_v2
 *   s_acc[lo] += s[hi] phi_s,   v_acc[lo] += v[hi] phi_v1 - u phi_v2
 *   then X = [s + s_acc ; |v + v_acc|], v_mid = v + v_acc per atom.
 * Reverse, for the edge n -> k with its u:
 *   dE/dd = sum_c [s_n gs_k, v_n . gv_k, u . gv_k] . dphi/dd,  dE/du = sum_c phi_v2 gv_k,
 *   formed for the pair as the forces use them: G_D = the two edges' dE/dd
 *   added, G_U = dE/du(lo -> hi) - dE/du(hi -> lo) (the sum over the warp's
 *   32 channels by a transposing butterfly; one float4 per pair and channel
 *   group, edge_grad[p G + g], which the forces kernel sums over g in
 *   order), and with the chain
 *   gs_acc[k] += gs_n phi_s, gv_acc[k] += gv_n phi_v1, then Gout and gvp of
 *   layer l-1 per atom, as in painn_cuda_messages.cu.
 * The sums of hi stay in registers during its pairs (the first terms of hi
 * in this warp's order); the sums of lo are read, updated and written back
 * per group of pairs (the lo of one hi are distinct). Each warp has its own
 * copy of the sums in shared memory; the copies are added in warp order at
 * the end. Every (atom, channel) sum thus has a fixed order: deterministic,
 * and the same for a molecule in any batch that takes this path.
 * Against the per-atom kernels: each pair's filters are read once instead of
 * once per edge, from the table (kept in L2) instead of per-pair arrays that
 * a filter kernel writes to DRAM and the kernels read back: at 256 alanine
 * dipeptides the message kernels read 11-46 MB from DRAM instead of 50-290 MB,
 * and there is no filter kernel (0.12 ms) nor its 375 MB of arrays. */
#include "painn_cuda_internal.cuh"

#include <algorithm>
#include <string.h>
#include <vector>

namespace {

/* Atoms per block at most: whole molecules, several small ones or one of up
 * to 32 atoms (alanine dipeptide: 22); a batch with a larger molecule takes
 * the per-atom kernels. */
constexpr int PAIR_BLOCK_ATOMS = 32;
/* Warps per block (8 blocks of 2 warps per SM: at most 128 registers):
 * warp w takes the atoms hi = w, w + PAIR_WARPS, ... and
 * keeps its own copy of the sums in shared memory (added in order at the
 * end), so that the warps of a block never write the same word. */
constexpr int PAIR_WARPS = 2;
/* Pairs whose table rows are loaded before their arithmetic (the reverse
 * with the chain holds twice the values per pair: 2, within 128 registers). */
constexpr int PAIR_PREFETCH = 4, PAIR_PREFETCH_CHAIN = 2;
/* When the pair kernels are used (painn_pair_messages_create). Measured on
 * an H200 against the per-atom kernels, MD steps of alanine dipeptide (22
 * atoms) and of the 17-molecule mix (13 atoms per molecule on average),
 * "units" = blocks x channel groups: the pair kernels win once the units
 * fill the GPU (427k model: 0.717 vs 0.807 ms at 256 replicas, 1024 units;
 * even at 128, 512 units; 77k: even at 256, 512 units; 21k: 0.295 vs 0.330
 * ms at 512, 512 units; all lose below), and only for molecules of ~20
 * atoms: the mix, with 6.2 pairs per atom instead of 8.2, loses even at 1024
 * (1.60 vs 1.49 ms). Hence at least 3.5 units per SM and 16 atoms per
 * molecule on average. PAINN_CUDA_MESSAGES=pair|atom in the environment
 * forces either (tests and benchmarks; pair only where every molecule fits
 * a block). */
constexpr double PAIR_MIN_UNITS_PER_SM = 3.5, PAIR_MIN_MEAN_ATOMS = 16.0;

/* Rows of sums per atom and warp in shared memory: forward s, v[3];
 * reverse with the chain gs, gv[3], without none. */
constexpr int pair_rows(bool forward, bool with)
{
    return forward ? 4 : (with ? 4 : 0);
}

/* The block's pairs, staged in shared memory (read by every lane): (u, d)
 * and the local index of lo per pair, and where each atom's pairs start (its
 * lower neighbours, pairs numbered by hi). Offsets relative to the block. */
struct block_pairs {
    const float4 *ud;
    const int *lo, *start;
};

/* Copies the pairs of atoms [first, first + n) into S; returns the end of
 * the copy (where the sums begin). */
__device__ __forceinline__ float *stage_pairs(float4 *S, int first, int n,
                                              const int *__restrict__ pair_start,
                                              const int *__restrict__ pair_lo,
                                              const float4 *__restrict__ pair_u, block_pairs &bp)
{
    const int p0 = pair_start[first], np = pair_start[first + n] - p0;
    float4 *ud = S;
    int *lo = reinterpret_cast<int *>(ud + np), *start = lo + np;
    for (int q = threadIdx.x; q < np; q += blockDim.x) {
        ud[q] = pair_u[p0 + q];
        lo[q] = pair_lo[p0 + q] - first;
    }
    for (int a = threadIdx.x; a <= n; a += blockDim.x) start[a] = pair_start[first + a] - p0;
    bp = {ud, lo, start};
    return reinterpret_cast<float *>(start + n + 1);
}

/* Pairs q .. q + PF - 1 of one atom's run (the first cnt valid; the others
 * repeat the last valid one, with zero table rows when ZERO): lo, u, the
 * table interval and the table rows of channel c, parts 0..2 (through L2
 * only; part 1, phi_v1, only when V1: in layer 0 it multiplies v = 0). */
template <int PF> struct pair_group {
    int lo[PF];
    float u[PF][3];
    painn_hermite w[PF];
    float4 t[PF][3];
};

template <int H, int PF, bool V1, bool ZERO>
__device__ __forceinline__ void fetch_group(const block_pairs &bp, int q, int cnt,
                                            const float4 *__restrict__ table, int N, float inv_h,
                                            int c, pair_group<PF> &G)
{
#pragma unroll
    for (int k = 0; k < PF; k++) {
        const int qk = q + min(k, cnt - 1);
        const float4 ud = bp.ud[qk];
        G.lo[k] = bp.lo[qk];
        G.u[k][0] = ud.x, G.u[k][1] = ud.y, G.u[k][2] = ud.z;
        G.w[k] = painn_hermite_at(ud.w, inv_h, N);
        const float4 *row = table + (size_t)G.w[k].i * 3 * H + c;
        const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
        const bool ok = !ZERO || k < cnt;
        G.t[k][0] = ok ? __ldcg(row) : zero;
        G.t[k][1] = V1 && ok ? __ldcg(row + H) : zero;
        G.t[k][2] = ok ? __ldcg(row + 2 * H) : zero;
    }
}

/* Sums in shared memory: row r of atom a in warp w's copy at
 * S[((w rows + r) n + a) 32 + lane]. */
struct sums32 {
    float *S;
    int n, rows, lane;
    __device__ float &at(int w, int r, int a) const
    {
        return S[((w * rows + r) * n + a) * 32 + lane];
    }
    /* the total over the warps' copies, in warp order */
    __device__ float total(int r, int a) const
    {
        float t = at(0, r, a);
        for (int w = 1; w < PAIR_WARPS; w++) t += at(w, r, a);
        return t;
    }
    __device__ void zero() const
    {
        for (int t = threadIdx.x; t < PAIR_WARPS * rows * n * 32; t += blockDim.x) S[t] = 0.0f;
    }
};

/* ---- forward ---- */

/* Warp w, atom by atom (hi), over its pairs with lower neighbours lo: hi's
 * sums stay in registers for the run (no earlier pair of this warp touches
 * hi), lo's are read, updated and written back once per group (the lo of a
 * run are distinct). */
template <int H, bool HAS_V>
__global__ void __launch_bounds__(32 * PAIR_WARPS, 8)
    pair_message_forward_kernel(const int *__restrict__ blocks, const int *__restrict__ pair_start,
                                const int *__restrict__ pair_lo,
                                const float4 *__restrict__ pair_u, const float4 *__restrict__ table,
                                int N, float inv_h, const float *__restrict__ s_in,
                                const float *__restrict__ v_in, /* unused unless HAS_V */
                                float *__restrict__ X, float *__restrict__ v_mid)
{
    painn_grid_begin();
    extern __shared__ float4 pair_smem4[];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, c = 32 * blockIdx.y + lane;
    const int first = blocks[blockIdx.x], n = blocks[blockIdx.x + 1] - first;
    block_pairs bp;
    /* sums: 0 s, 1-3 v */
    const sums32 A = {stage_pairs(pair_smem4, first, n, pair_start, pair_lo, pair_u, bp), n, 4,
                      lane};
    A.zero();
    __syncthreads();
    const float *s = s_in + (size_t)first * H + c;
    const float *v = HAS_V ? v_in + (size_t)first * 3 * H + c : nullptr;
    for (int hi = wid; hi < n; hi += PAIR_WARPS) {
        const int q0 = bp.start[hi], q1 = bp.start[hi + 1];
        const float sh = __ldg(s + (size_t)hi * H);
        float vh[3], ash = 0.0f, avh[3] = {0.0f, 0.0f, 0.0f};
        for (int x = 0; x < 3; x++) vh[x] = HAS_V ? __ldg(v + ((size_t)hi * 3 + x) * H) : 0.0f;
        for (int q = q0; q < q1; q += PAIR_PREFETCH) {
            const int cnt = min(PAIR_PREFETCH, q1 - q);
            pair_group<PAIR_PREFETCH> G;
            fetch_group<H, PAIR_PREFETCH, HAS_V, true>(bp, q, cnt, table, N, inv_h, c, G);
            float sl[PAIR_PREFETCH], vl[PAIR_PREFETCH][3], asl[PAIR_PREFETCH],
                avl[PAIR_PREFETCH][3];
#pragma unroll
            for (int k = 0; k < PAIR_PREFETCH; k++) {
                const int lo = G.lo[k];
                sl[k] = __ldg(s + (size_t)lo * H), asl[k] = A.at(wid, 0, lo);
#pragma unroll
                for (int x = 0; x < 3; x++) {
                    vl[k][x] = HAS_V ? __ldg(v + ((size_t)lo * 3 + x) * H) : 0.0f;
                    avl[k][x] = A.at(wid, 1 + x, lo);
                }
            }
            /* every slot of the group, so that its loads are all issued
             * before the first use: a slot past cnt has zero table rows,
             * phi = 0, and adds exactly 0 to hi's sums (its lo is not
             * written back). With a break at cnt the compiler issued each
             * pair's loads after the previous pair's arithmetic (measured
             * on an H200, 256 alanine dipeptides in MD: layer 0 37.4 ->
             * 33.6 us; layers 1-2, bound by L2 throughput, unchanged). */
#pragma unroll
            for (int k = 0; k < PAIR_PREFETCH; k++) {
                const float ps = painn_hermite_phi(G.w[k], G.t[k][0]);
                const float pv2 = painn_hermite_phi(G.w[k], G.t[k][2]);
                const float pv1 = HAS_V ? painn_hermite_phi(G.w[k], G.t[k][1]) : 0.0f;
                ash = fmaf(sl[k], ps, ash);
                asl[k] = fmaf(sh, ps, asl[k]);
#pragma unroll
                for (int x = 0; x < 3; x++) {
                    float ah = avh[x], al = avl[k][x];
                    if (HAS_V) {
                        ah = fmaf(vl[k][x], pv1, ah);
                        al = fmaf(vh[x], pv1, al);
                    }
                    avh[x] = fmaf(G.u[k][x], pv2, ah);
                    avl[k][x] = fmaf(-G.u[k][x], pv2, al);
                }
            }
#pragma unroll
            for (int k = 0; k < PAIR_PREFETCH; k++) {
                if (k >= cnt) break;
                A.at(wid, 0, G.lo[k]) = asl[k];
                for (int x = 0; x < 3; x++) A.at(wid, 1 + x, G.lo[k]) = avl[k][x];
            }
        }
        A.at(wid, 0, hi) = ash;
        for (int x = 0; x < 3; x++) A.at(wid, 1 + x, hi) = avh[x];
    }
    __syncthreads();
    for (int a = wid; a < n; a += PAIR_WARPS) {
        const size_t j = (size_t)first + a;
        float vv[3], v2 = 0.0f;
        for (int x = 0; x < 3; x++) {
            vv[x] = A.total(1 + x, a);
            if (HAS_V) vv[x] += __ldg(v + ((size_t)a * 3 + x) * H);
            v2 = x == 0 ? vv[x] * vv[x] : v2 + vv[x] * vv[x];
            v_mid[(j * 3 + x) * H + c] = vv[x];
        }
        X[j * 2 * H + c] = __ldg(s + (size_t)a * H) + A.total(0, a);
        X[j * 2 * H + H + c] = sqrtf(v2);
    }
}

/* ---- reverse ---- */

struct pair_backward_args {
    const int *__restrict__ blocks, *__restrict__ pair_start, *__restrict__ pair_lo;
    const float4 *__restrict__ pair_u, *__restrict__ table;
    int N;
    float inv_h;
    const float *__restrict__ s_in, *__restrict__ v_in; /* v_in: CHAIN only */
    const float *__restrict__ gs_mid, *__restrict__ gv_mid;
    float4 *__restrict__ edge_grad; /* [pair_rows][G] (G_D, G_U) of this layer */
    /* layer l-1 (CHAIN only): */
    const float *__restrict__ v_mid_prev, *__restrict__ upd_prev;
    painn_mixing M;
    float *__restrict__ Gout, *__restrict__ gvp;
};

/* One atom's rows for this lane's channel (reverse). */
struct atom_rows {
    float s, gs, gv[3], v[3];
};

/* Rows of the block's atom a (pointers at the block's first atom, channel c). */
struct block_rows {
    const float *s, *gs, *gv, *v;
};

template <int H, bool CHAIN>
__device__ __forceinline__ atom_rows load_rows(const block_rows &B, int a)
{
    atom_rows r;
    r.s = __ldg(B.s + (size_t)a * H);
    r.gs = __ldg(B.gs + (size_t)a * H);
    for (int x = 0; x < 3; x++) {
        r.gv[x] = __ldg(B.gv + ((size_t)a * 3 + x) * H);
        r.v[x] = CHAIN ? __ldg(B.v + ((size_t)a * 3 + x) * H) : 0.0f;
    }
    return r;
}

/* The pair's two edges at once (this lane's channel), as the forces use
 * them: G_D = dE/dd(lo -> hi) + dE/dd(hi -> lo) and G_U = dE/du(lo -> hi) -
 * dE/du(hi -> lo), where the edge n -> k with direction w has
 *   dE/dd = [s_n gs_k, v_n . gv_k, w . gv_k] . dphi/dd,  dE/du = phi_v2 gv_k
 * and the edge hi -> lo has w = -u: out = (G_D, G_U x y z). */
template <bool CHAIN>
__device__ __forceinline__ void pair_terms(const atom_rows &lo, const atom_rows &hi, const float u[3],
                                           float ps_d, float pv1_d, float pv2_d, float pv2,
                                           float *out)
{
    float dg[3];
    for (int x = 0; x < 3; x++) dg[x] = hi.gv[x] - lo.gv[x];
    float gd = fmaf(lo.s, hi.gs, hi.s * lo.gs) * ps_d;
    gd = fmaf(u[0] * dg[0] + u[1] * dg[1] + u[2] * dg[2], pv2_d, gd);
    if (CHAIN) {
        float g_v1 = 0.0f;
        for (int x = 0; x < 3; x++) g_v1 = fmaf(lo.v[x], hi.gv[x], fmaf(hi.v[x], lo.gv[x], g_v1));
        gd = fmaf(g_v1, pv1_d, gd);
    }
    out[0] = gd;
    for (int x = 0; x < 3; x++) out[1 + x] = pv2 * dg[x];
}

/* As the forward; per group of pairs the 4 sums of each pair (G_D, G_U)
 * over the warp's channels by one transposing butterfly. */
template <int H, bool CHAIN>
__global__ void __launch_bounds__(32 * PAIR_WARPS, 8)
    pair_message_backward_kernel(pair_backward_args a)
{
    painn_grid_begin();
    constexpr int PF = CHAIN ? PAIR_PREFETCH_CHAIN : PAIR_PREFETCH;
    extern __shared__ float4 pair_smem4[];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, c = 32 * blockIdx.y + lane;
    const int G = gridDim.y;
    const int first = a.blocks[blockIdx.x], n = a.blocks[blockIdx.x + 1] - first;
    block_pairs bp;
    /* sums (with the chain): 0 gs, 1-3 gv */
    const sums32 A = {stage_pairs(pair_smem4, first, n, a.pair_start, a.pair_lo, a.pair_u, bp), n,
                      CHAIN ? 4 : 0, lane};
    A.zero();
    __syncthreads();
    const int p_first = a.pair_start[first];
    const block_rows B = {a.s_in + (size_t)first * H + c, a.gs_mid + (size_t)first * H + c,
                          a.gv_mid + (size_t)first * 3 * H + c,
                          CHAIN ? a.v_in + (size_t)first * 3 * H + c : nullptr};
    for (int hi = wid; hi < n; hi += PAIR_WARPS) {
        const int q0 = bp.start[hi], q1 = bp.start[hi + 1];
        const atom_rows rh = load_rows<H, CHAIN>(B, hi);
        float agh = 0.0f, agvh[3] = {0.0f, 0.0f, 0.0f};
        for (int q = q0; q < q1; q += PF) {
            const int cnt = min(PF, q1 - q);
            pair_group<PF> Gp;
            fetch_group<H, PF, CHAIN, false>(bp, q, cnt, a.table, a.N, a.inv_h, c, Gp);
            atom_rows rl[PF];
            float agl[PF], agvl[PF][3];
#pragma unroll
            for (int k = 0; k < PF; k++) {
                rl[k] = load_rows<H, CHAIN>(B, Gp.lo[k]);
                if (CHAIN) {
                    agl[k] = A.at(wid, 0, Gp.lo[k]);
                    for (int x = 0; x < 3; x++) agvl[k][x] = A.at(wid, 1 + x, Gp.lo[k]);
                }
            }
            /* values 4 k + 0-3: G_D, G_U of pair k */
            float v[4 * PF];
#pragma unroll
            for (int k = 0; k < PF; k++) {
                const painn_hermite &w = Gp.w[k];
                const float pv2 = painn_hermite_phi(w, Gp.t[k][2]);
                const float ps_d = painn_hermite_dphi(w, Gp.t[k][0]);
                const float pv1_d = CHAIN ? painn_hermite_dphi(w, Gp.t[k][1]) : 0.0f;
                const float pv2_d = painn_hermite_dphi(w, Gp.t[k][2]);
                pair_terms<CHAIN>(rl[k], rh, Gp.u[k], ps_d, pv1_d, pv2_d, pv2, v + 4 * k);
                if (CHAIN && k < cnt) {
                    const float ps = painn_hermite_phi(w, Gp.t[k][0]);
                    const float pv1 = painn_hermite_phi(w, Gp.t[k][1]);
                    agh = fmaf(rl[k].gs, ps, agh);
                    agl[k] = fmaf(rh.gs, ps, agl[k]);
#pragma unroll
                    for (int x = 0; x < 3; x++) {
                        agvh[x] = fmaf(rl[k].gv[x], pv1, agvh[x]);
                        agvl[k][x] = fmaf(rh.gv[x], pv1, agvl[k][x]);
                    }
                }
            }
            /* lane m then holds the warp's sum of value m / DUP */
            constexpr int DUP = 32 / (4 * PF);
            painn_transpose_reduce<4 * PF, 16>(v, lane);
            const int idx = lane / DUP, k = idx / 4;
            if (lane % DUP == 0 && k < cnt) {
                const int p = p_first + q + k;
                float *slot = reinterpret_cast<float *>(a.edge_grad + (size_t)p * G + blockIdx.y);
                slot[idx % 4] = v[0];
            }
            if (CHAIN) {
#pragma unroll
                for (int k = 0; k < PF; k++) {
                    if (k >= cnt) break;
                    A.at(wid, 0, Gp.lo[k]) = agl[k];
                    for (int x = 0; x < 3; x++) A.at(wid, 1 + x, Gp.lo[k]) = agvl[k][x];
                }
            }
        }
        if (CHAIN) {
            A.at(wid, 0, hi) = agh;
            for (int x = 0; x < 3; x++) A.at(wid, 1 + x, hi) = agvh[x];
        }
    }
    if (!CHAIN) return;
    __syncthreads();
    /* gradients entering layer l = leaving layer l-1; its update backward */
    for (int i = wid; i < n; i += PAIR_WARPS) {
        const size_t k = (size_t)first + i;
        const atom_rows rk = load_rows<H, CHAIN>(B, i);
        float gv[3], vm[3], go[3], gp[3];
        for (int x = 0; x < 3; x++) {
            gv[x] = rk.gv[x] + A.total(1 + x, i);
            vm[x] = a.v_mid_prev[(k * 3 + x) * H + c];
        }
        const float g1v = a.upd_prev[k * 3 * H + H + c], g2v = a.upd_prev[k * 3 * H + 2 * H + c];
        painn_gate_backward(rk.gs + A.total(0, i), gv, vm, g1v, g2v, a.M, go, gp);
        for (int x = 0; x < 3; x++) {
            a.Gout[k * 3 * H + x * H + c] = go[x];
            a.gvp[(k * 3 + x) * H + c] = gp[x];
        }
    }
}

/* Shared memory of a block of m atoms at most: its pairs (at most m (m-1) / 2,
 * 20 bytes each), pair offsets, and each warp's `rows` rows of sums. */
static size_t pair_smem(int m, int rows)
{
    return (size_t)m * (m - 1) / 2 * (sizeof(float4) + sizeof(int)) + sizeof(int) * (m + 1) +
           sizeof(float) * 32 * rows * m * PAIR_WARPS;
}

template <int H, bool HAS_V>
cudaError_t launch_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    const size_t nH = (size_t)c->n_atoms * H;
    const size_t smem = pair_smem(c->msg_max_block_atoms, pair_rows(true, HAS_V));
    painn_launch(c->use_pdl, pair_message_forward_kernel<H, HAS_V>, dim3(c->msg_n_blocks, H / 32),
                 32 * PAIR_WARPS, smem, s, (const int *)c->msg_blocks, (const int *)c->pair_start,
                 (const int *)c->pair_lo, (const float4 *)c->pair_u,
                 (const float4 *)(c->filter_table + (size_t)l * c->table_n * 3 * H), c->table_n,
                 c->table_inv_h, (const float *)(c->s_in + l * nH),
                 (const float *)(HAS_V ? c->v_in + l * 3 * nH : nullptr), c->X + l * 2 * nH,
                 c->v_mid + l * 3 * nH);
    return cudaGetLastError();
}

template <int H, bool CHAIN>
cudaError_t launch_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    const size_t nH = (size_t)c->n_atoms * H;
    pair_backward_args a = {};
    a.blocks = c->msg_blocks, a.pair_start = c->pair_start, a.pair_lo = c->pair_lo,
    a.pair_u = c->pair_u;
    a.table = c->filter_table + (size_t)l * c->table_n * 3 * H;
    a.N = c->table_n, a.inv_h = c->table_inv_h;
    a.s_in = c->s_in + l * nH;
    a.v_in = CHAIN ? c->v_in + l * 3 * nH : nullptr;
    a.gs_mid = c->gs_mid, a.gv_mid = c->gv_mid;
    a.edge_grad = c->edge_grad + l * painn_edge_grad_rows(c);
    if (CHAIN) {
        a.v_mid_prev = c->v_mid + (l - 1) * 3 * nH;
        a.upd_prev = c->upd + (l - 1) * 3 * nH;
        a.M = c->w.mixing[l - 1];
    }
    a.Gout = c->Gout, a.gvp = c->gvp;
    const size_t smem = pair_smem(c->msg_max_block_atoms, pair_rows(false, CHAIN));
    painn_launch(c->use_pdl, pair_message_backward_kernel<H, CHAIN>,
                 dim3(c->msg_n_blocks, H / 32), 32 * PAIR_WARPS, smem, s, a);
    return cudaGetLastError();
}

template <int H> cudaError_t launch_h(const painn_cuda *c, int l, bool forward, cudaStream_t s)
{
    if (forward)
        return l > 0 ? launch_forward<H, true>(c, l, s) : launch_forward<H, false>(c, l, s);
    return l > 0 ? launch_backward<H, true>(c, l, s) : launch_backward<H, false>(c, l, s);
}

} // namespace

int painn_pair_messages_create(painn_cuda *c, const molecule_batch *t, dm_error *err)
{
    /* blocks: whole molecules, packed in order up to PAIR_BLOCK_ATOMS atoms */
    int largest = 0;
    std::vector<int> blocks(1, 0);
    for (int mol = 0; mol < t->n_molecules; mol++) {
        largest = std::max(largest, t->offset[mol + 1] - t->offset[mol]);
        if (t->offset[mol + 1] - blocks.back() > PAIR_BLOCK_ATOMS) blocks.push_back(t->offset[mol]);
    }
    blocks.push_back(c->n_atoms);
    const long units = (long)(blocks.size() - 1) * (c->H / 32);
    const char *env = getenv("PAINN_CUDA_MESSAGES");
    if (largest > PAIR_BLOCK_ATOMS || c->H % 32 || (env && !strcmp(env, "atom")))
        c->pair_messages = false;
    else if (env && !strcmp(env, "pair"))
        c->pair_messages = true;
    else
        c->pair_messages = (double)c->n_atoms / t->n_molecules >= PAIR_MIN_MEAN_ATOMS &&
                           units >= PAIR_MIN_UNITS_PER_SM * c->sm_count;
    c->edge_groups = c->pair_messages ? c->H / 32 : 1;
    if (!c->pair_messages) return 0;
    c->msg_n_blocks = (int)blocks.size() - 1;
    c->msg_max_block_atoms = 0;
    for (int b = 0; b < c->msg_n_blocks; b++)
        c->msg_max_block_atoms = std::max(c->msg_max_block_atoms, blocks[b + 1] - blocks[b]);
    CUDA_TRY(cudaMalloc(&c->msg_blocks, sizeof(int) * blocks.size()));
    c->device_bytes += sizeof(int) * blocks.size();
    CUDA_TRY(cudaMemcpy(c->msg_blocks, blocks.data(), sizeof(int) * blocks.size(),
                        cudaMemcpyHostToDevice));
    return 0;
}

cudaError_t painn_launch_pair_messages(const painn_cuda *c, int l, bool forward, cudaStream_t s)
{
    switch (c->H) {
    case 32: return launch_h<32>(c, l, forward, s);
    case 64: return launch_h<64>(c, l, forward, s);
    case 128: return launch_h<128>(c, l, forward, s);
    case 256: return launch_h<256>(c, l, forward, s);
    default: return cudaErrorInvalidValue; /* checked at creation */
    }
}
