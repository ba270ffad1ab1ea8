/* painn_cuda_messages.cu — the message step of every layer, forward and
 * reverse.
 *
 * Forward, per receiving atom j over its incoming edges i -> j (pair p,
 * sg = +1 if i < j else -1, u = pair_u[p].xyz):
 *   s_mid = s_j + sum_i s_i phi_s,  v_mid = v_j + sum_i v_i phi_v1 + sg u phi_v2
 *   X = [s_mid ; |v_mid|]
 * Reverse, per atom k; by symmetry each incoming edge n -> k is also the
 * outgoing edge k -> n of the same pair, so the gathers need no atomics:
 *   gs_in[k] = gs_mid[k] + sum_n gs_mid[n] phi_s,  gv_in[k] = gv_mid[k] + sum_n gv_mid[n] phi_v1
 *   and, for the edge n -> k: dE/dphi = [s_n gs_mid[k], sum_x v_n gv_mid[k], sum_x u gv_mid[k]]
 *   dE/dd = <dE/dphi, dphi/dd>,  dE/du_x = sum_c phi_v2 gv_mid[k]_x.
 * The gs_in, gv_in of layer l are gs_out, gv_out of layer l-1: the same
 * kernel forms Gout and gvp of layer l-1 for its atom:
 *   Gout = [gs_in, sum_x gv_in v_mid, sum_x gv_in (M v_mid)],  gvp = gv_in g1 + (M^T gv_in) g2.
 *
 * Work layout (both kernels): a block holds A consecutive atoms (neighbour
 * rows shared by the atoms of one molecule are then mostly L1 hits) with WPA
 * warps each. A warp splits into S = 32 / LE edge slots of LE = min(32, H/4)
 * lanes; a lane holds 4 consecutive channels per float4, V = H / (4 LE) of
 * them. The atom's T = WPA S slots take its edges t = slot, slot + T, ... in
 * CSR order; each warp fetches the indices of up to 32 of its edges at once,
 * one per lane, and broadcasts them by shuffles. Per output element the sum
 * order is fixed: edges of a slot in CSR order, then slots of a warp by a
 * butterfly, then warps in order w = 0..WPA-1 through shared memory.
 * Reverse: the per-edge channel sums dE/dd, dE/du of GE edges of a slot
 * (4 GE values per lane; GE = 4 in layer 0, 2 with the chain, which loads
 * 14 rows per edge) are reduced over the slot's lanes together by a
 * transposing butterfly (each step halves the values a lane keeps), so that
 * each edge costs 4-5 shuffles instead of 4 full butterflies (20). Both
 * kernels issue all loads of a group of edges before their arithmetic. */
#include "painn_cuda_internal.cuh"

namespace {

/* Shapes of the work layout for hidden size H (see above). */
template <int H> struct msg_shape {
    static constexpr int LE = H / 4 < 32 ? H / 4 : 32; /* lanes per edge slot */
    static constexpr int S = 32 / LE;                  /* edge slots per warp */
    static constexpr int V = H / (4 * LE);             /* float4 per lane per row */
    static constexpr int CH = 32 / S;                  /* edge iterations per index fetch */
};

constexpr int MSG_MAX_WARPS = 8; /* A * WPA: at most 256 threads */
/* edges per transposing reduction (reverse), in layer 0 and with the chain */
constexpr int MSG_GE = 4, MSG_GE_CHAIN = 2;
/* resident blocks per SM the register allocation must allow, for H <= 128
 * (forward: 85 registers; reverse: 128) */
constexpr int MSG_FWD_MIN_BLOCKS = 3, MSG_BWD_MIN_BLOCKS = 2;

/* Atoms per block and warps per atom for n atoms: with few atoms, several
 * warps per atom shorten each atom's chain of edges; with many, one warp per
 * atom and more atoms per block share their neighbours' rows in L1. */
struct msg_config {
    int atoms, warps;
};

static msg_config message_config(int n)
{
    if (n >= 2048) return {8, 1};
    if (n >= 512) return {4, 2};
    return {1, 4};
}

__device__ __forceinline__ float &f4(float4 &v, int i)
{
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

__device__ __forceinline__ float f4(const float4 &v, int i)
{
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

__device__ __forceinline__ float4 zero4()
{
    return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

/* One incoming edge of the atom: sender nb (-1: none), pair p, sg u. */
struct msg_edge {
    int nb, p;
    float ux, uy, uz;
};

/* The index fetch: lane q of warp w takes iteration i0 + q / S of slot
 * w S + q % S, i.e. the atom's edge t = w S + q % S + T (i0 + q / S). */
template <int H>
__device__ __forceinline__ msg_edge fetch_edge(int j, int e0, int D, int w, int T, int i0,
                                               int lane, const int *__restrict__ edge_src,
                                               const int *__restrict__ edge_pair,
                                               const float4 *__restrict__ pair_u)
{
    using Sh = msg_shape<H>;
    const int t = w * Sh::S + lane % Sh::S + T * (i0 + lane / Sh::S);
    msg_edge r = {-1, 0, 0.0f, 0.0f, 0.0f};
    if (t < D) {
        r.nb = edge_src[e0 + t];
        r.p = edge_pair[e0 + t];
        const float4 u = pair_u[r.p];
        const float sg = r.nb < j ? 1.0f : -1.0f;
        r.ux = sg * u.x;
        r.uy = sg * u.y;
        r.uz = sg * u.z;
    }
    return r;
}

/* The edge of iteration ic (within the fetch) of slot s, from its lane. */
template <int H> __device__ __forceinline__ msg_edge take_edge(const msg_edge &m, int ic, int s)
{
    const int src = ic * msg_shape<H>::S + s;
    msg_edge r;
    r.nb = __shfl_sync(0xffffffffu, m.nb, src);
    r.p = __shfl_sync(0xffffffffu, m.p, src);
    r.ux = __shfl_sync(0xffffffffu, m.ux, src);
    r.uy = __shfl_sync(0xffffffffu, m.uy, src);
    r.uz = __shfl_sync(0xffffffffu, m.uz, src);
    return r;
}

/* Sum of x over the S slots of the warp (butterfly; every lane gets it). */
template <int H> __device__ __forceinline__ void slot_sum(float4 &x)
{
    for (int o = msg_shape<H>::LE; o < 32; o <<= 1) {
        x.x += __shfl_xor_sync(0xffffffffu, x.x, o);
        x.y += __shfl_xor_sync(0xffffffffu, x.y, o);
        x.z += __shfl_xor_sync(0xffffffffu, x.z, o);
        x.w += __shfl_xor_sync(0xffffffffu, x.w, o);
    }
}

/* Totals of a lane's partial rows a (s) and b (v x, y, z) for its atom: a
 * butterfly over the S slots of the warp, then, when the atom has WPA > 1
 * warps (block-uniform), warps 1..WPA-1 added in order to warp 0 through
 * shared memory part4 ([A * WPA][4][H/4]). The totals end in slot 0 of warp
 * w = 0; wid is the warp's index in the block, s and m the lane's slot and
 * position in it. */
template <int H>
__device__ __forceinline__ void sum_over_slots_and_warps(float4 (&ss)[msg_shape<H>::V],
                                                         float4 (&vv)[3][msg_shape<H>::V],
                                                         float4 *part4, int wid, int w, int s,
                                                         int m, int WPA)
{
    using Sh = msg_shape<H>;
    constexpr int R = H / 4;
    if (Sh::S > 1) {
#pragma unroll
        for (int v = 0; v < Sh::V; v++) {
            slot_sum<H>(ss[v]);
            for (int x = 0; x < 3; x++) slot_sum<H>(vv[x][v]);
        }
    }
    if (WPA > 1) { /* block-uniform */
        float4 *mine = part4 + (size_t)wid * 4 * R;
        if (s == 0) {
#pragma unroll
            for (int v = 0; v < Sh::V; v++) {
                const int q = m + Sh::LE * v;
                mine[q] = ss[v];
                for (int x = 0; x < 3; x++) mine[(1 + x) * R + q] = vv[x][v];
            }
        }
        __syncthreads();
        if (w == 0 && s == 0) {
            for (int k = 1; k < WPA; k++) {
                const float4 *other = mine + (size_t)k * 4 * R;
#pragma unroll
                for (int v = 0; v < Sh::V; v++) {
                    const int q = m + Sh::LE * v;
                    for (int i = 0; i < 4; i++) {
                        f4(ss[v], i) += f4(other[q], i);
                        for (int x = 0; x < 3; x++)
                            f4(vv[x][v], i) += f4(other[(1 + x) * R + q], i);
                    }
                }
            }
        }
    }
}

/* Iterations of warp w's slot w S (the slot with the most edges) for an atom
 * of D edges and T slots. */
template <int H> __device__ __forceinline__ int warp_iterations(int D, int w, int T)
{
    const int first = w * msg_shape<H>::S;
    return D > first ? (D - first + T - 1) / T : 0;
}

/* ---- forward ---- */

/* Edges of one slot summed U at a time (all loads of U edges before their
 * FMAs, which keep the edge order). */
template <int H, bool HAS_V, int U>
__global__ void __launch_bounds__(32 * MSG_MAX_WARPS, H <= 128 ? MSG_FWD_MIN_BLOCKS : 1)
    message_forward_kernel(int n, int WPA, const int *__restrict__ row_start,
                           const int *__restrict__ edge_src, const int *__restrict__ edge_pair,
                           const float4 *__restrict__ pair_u, const float4 *__restrict__ phi,
                           const float4 *__restrict__ s_in,
                           const float4 *__restrict__ v_in, /* unused unless HAS_V */
                           float4 *__restrict__ X, float4 *__restrict__ v_mid)
{
    painn_grid_begin();
    using Sh = msg_shape<H>;
    constexpr int R = H / 4; /* float4 per row */
    extern __shared__ float4 part4[]; /* [A * WPA][4][R] when WPA > 1 */
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int w = wid % WPA, j = blockIdx.x * (blockDim.x >> 5) / WPA + wid / WPA;
    const int s = lane / Sh::LE, m = lane % Sh::LE, T = WPA * Sh::S;
    const int e0 = j < n ? row_start[j] : 0, D = j < n ? row_start[j + 1] - e0 : 0;
    const int n_it = warp_iterations<H>(D, w, T);

    float4 ss[Sh::V], vv[3][Sh::V];
#pragma unroll
    for (int v = 0; v < Sh::V; v++) {
        ss[v] = zero4();
        for (int x = 0; x < 3; x++) vv[x][v] = zero4();
    }
    for (int i0 = 0; i0 < n_it; i0 += Sh::CH) {
        const msg_edge mine = fetch_edge<H>(j, e0, D, w, T, i0, lane, edge_src, edge_pair, pair_u);
        const int n_c = min(Sh::CH, n_it - i0);
        for (int ig = 0; ig < n_c; ig += U) {
            msg_edge ed[U];
            float4 ps[U][Sh::V], pv1[U][Sh::V], pv2[U][Sh::V], sn[U][Sh::V], vn[U][3][Sh::V];
#pragma unroll
            for (int e = 0; e < U; e++) {
                ed[e] = take_edge<H>(mine, ig + e, s);
                const bool ok = ed[e].nb >= 0;
                const float4 *ph = phi + (size_t)ed[e].p * 3 * R;
#pragma unroll
                for (int v = 0; v < Sh::V; v++) {
                    const int q = m + Sh::LE * v;
                    ps[e][v] = ok ? ph[q] : zero4();
                    pv2[e][v] = ok ? ph[2 * R + q] : zero4();
                    sn[e][v] = ok ? s_in[(size_t)ed[e].nb * R + q] : zero4();
                    if (HAS_V) {
                        pv1[e][v] = ok ? ph[R + q] : zero4();
#pragma unroll
                        for (int x = 0; x < 3; x++)
                            vn[e][x][v] = ok ? v_in[((size_t)ed[e].nb * 3 + x) * R + q] : zero4();
                    }
                }
            }
#pragma unroll
            for (int e = 0; e < U; e++) {
                const float u[3] = {ed[e].ux, ed[e].uy, ed[e].uz};
#pragma unroll
                for (int v = 0; v < Sh::V; v++) {
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        f4(ss[v], i) = fmaf(f4(sn[e][v], i), f4(ps[e][v], i), f4(ss[v], i));
#pragma unroll
                        for (int x = 0; x < 3; x++) {
                            float acc = f4(vv[x][v], i);
                            if (HAS_V) acc = fmaf(f4(vn[e][x][v], i), f4(pv1[e][v], i), acc);
                            f4(vv[x][v], i) = fmaf(u[x], f4(pv2[e][v], i), acc);
                        }
                    }
                }
            }
        }
    }
    sum_over_slots_and_warps<H>(ss, vv, part4, wid, w, s, m, WPA);
    if (j >= n || w != 0 || s != 0) return;
#pragma unroll
    for (int v = 0; v < Sh::V; v++) {
        const int q = m + Sh::LE * v;
        float4 sm = s_in[(size_t)j * R + q], nrm;
        float4 vj[3];
        for (int x = 0; x < 3; x++) vj[x] = HAS_V ? v_in[((size_t)j * 3 + x) * R + q] : zero4();
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f4(sm, i) += f4(ss[v], i);
            float v2 = 0.0f;
            for (int x = 0; x < 3; x++) {
                if (HAS_V) f4(vv[x][v], i) += f4(vj[x], i);
                const float c = f4(vv[x][v], i);
                v2 = x == 0 ? c * c : v2 + c * c;
            }
            f4(nrm, i) = sqrtf(v2);
        }
        for (int x = 0; x < 3; x++) v_mid[((size_t)j * 3 + x) * R + q] = vv[x][v];
        X[(size_t)j * 2 * R + q] = sm;
        X[(size_t)j * 2 * R + R + q] = nrm;
    }
}

/* ---- reverse ---- */

/* dE/dd, dE/du of GE edges per slot: each lane adds its channels' terms into
 * g[4 e + (0: dE/dd, 1-3: dE/du x y z)]; gs_acc, gv_acc gather the layer's
 * input gradients (CHAIN). */
template <int H, bool CHAIN>
__global__ void __launch_bounds__(32 * MSG_MAX_WARPS, H <= 128 ? MSG_BWD_MIN_BLOCKS : 1)
    message_backward_kernel(int n, int WPA, const int *__restrict__ row_start,
                            const int *__restrict__ edge_src, const int *__restrict__ edge_pair,
                            const float4 *__restrict__ pair_u, const float4 *__restrict__ phi,
                            const float4 *__restrict__ dphi, const float4 *__restrict__ s_in,
                            const float4 *__restrict__ v_in, /* CHAIN only */
                            const float4 *__restrict__ gs_mid, const float4 *__restrict__ gv_mid,
                            float4 *__restrict__ edge_grad,
                            /* layer l-1 (CHAIN only): */
                            const float4 *__restrict__ v_mid_prev,
                            const float4 *__restrict__ upd_prev, painn_mixing M,
                            float4 *__restrict__ Gout, float4 *__restrict__ gvp)
{
    painn_grid_begin();
    using Sh = msg_shape<H>;
    constexpr int R = H / 4, GE = CHAIN ? MSG_GE_CHAIN : MSG_GE;
    constexpr int NV = 4 * GE, RV = NV > Sh::LE ? NV / Sh::LE : 1, DUP = Sh::LE > NV ? Sh::LE / NV : 1;
    extern __shared__ float4 part4[]; /* [A * WPA][4][R] when CHAIN and WPA > 1 */
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int w = wid % WPA, k = blockIdx.x * (blockDim.x >> 5) / WPA + wid / WPA;
    const int s = lane / Sh::LE, m = lane % Sh::LE, T = WPA * Sh::S;
    const int e0 = k < n ? row_start[k] : 0, D = k < n ? row_start[k + 1] - e0 : 0;
    const int n_it = warp_iterations<H>(D, w, T);

    float4 gsk[Sh::V], gvk[3][Sh::V], gs_acc[Sh::V], gv_acc[3][Sh::V];
#pragma unroll
    for (int v = 0; v < Sh::V; v++) {
        const int q = m + Sh::LE * v;
        gsk[v] = k < n ? gs_mid[(size_t)k * R + q] : zero4();
        gs_acc[v] = zero4();
        for (int x = 0; x < 3; x++) {
            gvk[x][v] = k < n ? gv_mid[((size_t)k * 3 + x) * R + q] : zero4();
            gv_acc[x][v] = zero4();
        }
    }
    for (int i0 = 0; i0 < n_it; i0 += Sh::CH) {
        const msg_edge mine = fetch_edge<H>(k, e0, D, w, T, i0, lane, edge_src, edge_pair, pair_u);
        const int n_c = min(Sh::CH, n_it - i0);
        for (int ig = 0; ig < n_c; ig += GE) {
            /* all loads of the GE edges first */
            msg_edge ed[GE];
            float4 ps[GE][Sh::V], pv1[GE][Sh::V], pv2[GE][Sh::V], dps[GE][Sh::V],
                dpv1[GE][Sh::V], dpv2[GE][Sh::V], sn[GE][Sh::V], gsn[GE][Sh::V],
                vn[GE][3][Sh::V], gvn[GE][3][Sh::V];
#pragma unroll
            for (int e = 0; e < GE; e++) {
                ed[e] = take_edge<H>(mine, ig + e, s);
                const bool ok = ed[e].nb >= 0;
                const size_t nb = ok ? ed[e].nb : 0;
                const float4 *ph = phi + (size_t)ed[e].p * 3 * R;
                const float4 *dph = dphi + (size_t)ed[e].p * 3 * R;
#pragma unroll
                for (int v = 0; v < Sh::V; v++) {
                    const int q = m + Sh::LE * v;
                    pv2[e][v] = ok ? ph[2 * R + q] : zero4();
                    dps[e][v] = ok ? dph[q] : zero4();
                    dpv2[e][v] = ok ? dph[2 * R + q] : zero4();
                    sn[e][v] = ok ? s_in[nb * R + q] : zero4();
                    if (CHAIN) {
                        ps[e][v] = ok ? ph[q] : zero4();
                        pv1[e][v] = ok ? ph[R + q] : zero4();
                        dpv1[e][v] = ok ? dph[R + q] : zero4();
                        gsn[e][v] = ok ? gs_mid[nb * R + q] : zero4();
#pragma unroll
                        for (int x = 0; x < 3; x++) {
                            vn[e][x][v] = ok ? v_in[(nb * 3 + x) * R + q] : zero4();
                            gvn[e][x][v] = ok ? gv_mid[(nb * 3 + x) * R + q] : zero4();
                        }
                    }
                }
            }
            float g[NV];
#pragma unroll
            for (int e = 0; e < GE; e++) {
                float gd = 0.0f, gux = 0.0f, guy = 0.0f, guz = 0.0f;
#pragma unroll
                for (int v = 0; v < Sh::V; v++) {
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const float g0 = f4(gvk[0][v], i), g1 = f4(gvk[1][v], i),
                                    g2 = f4(gvk[2][v], i);
                        const float g_s = f4(sn[e][v], i) * f4(gsk[v], i);
                        const float g_v2 = ed[e].ux * g0 + ed[e].uy * g1 + ed[e].uz * g2;
                        gd = fmaf(g_s, f4(dps[e][v], i), gd);
                        gd = fmaf(g_v2, f4(dpv2[e][v], i), gd);
                        gux = fmaf(f4(pv2[e][v], i), g0, gux);
                        guy = fmaf(f4(pv2[e][v], i), g1, guy);
                        guz = fmaf(f4(pv2[e][v], i), g2, guz);
                        if (CHAIN) {
                            const float g_v1 = f4(vn[e][0][v], i) * g0 + f4(vn[e][1][v], i) * g1 +
                                               f4(vn[e][2][v], i) * g2;
                            gd = fmaf(g_v1, f4(dpv1[e][v], i), gd);
                            f4(gs_acc[v], i) =
                                fmaf(f4(gsn[e][v], i), f4(ps[e][v], i), f4(gs_acc[v], i));
#pragma unroll
                            for (int x = 0; x < 3; x++)
                                f4(gv_acc[x][v], i) = fmaf(f4(gvn[e][x][v], i), f4(pv1[e][v], i),
                                                           f4(gv_acc[x][v], i));
                        }
                    }
                }
                g[4 * e] = gd;
                g[4 * e + 1] = gux;
                g[4 * e + 2] = guy;
                g[4 * e + 3] = guz;
            }
            painn_transpose_reduce<NV, Sh::LE / 2>(g, lane);
#pragma unroll
            for (int r = 0; r < RV; r++) {
                const int idx = (m / DUP) * RV + r; /* value 4 e + quantity */
                const msg_edge ed = take_edge<H>(mine, ig + idx / 4, s);
                if (m % DUP == 0 && ed.nb >= 0) {
                    const int dir = ed.nb < k ? 0 : 1; /* 0: lo -> hi, received by hi */
                    float *slot = reinterpret_cast<float *>(edge_grad + 2 * (size_t)ed.p + dir);
                    slot[idx % 4] = g[r];
                }
            }
        }
    }
    if (!CHAIN) return;
    sum_over_slots_and_warps<H>(gs_acc, gv_acc, part4, wid, w, s, m, WPA);
    if (k >= n || w != 0 || s != 0) return;
    /* gradients entering layer l = leaving layer l-1; its update backward */
#pragma unroll
    for (int v = 0; v < Sh::V; v++) {
        const int q = m + Sh::LE * v;
        float4 vm[3], go[3], gp[3];
        for (int x = 0; x < 3; x++) vm[x] = v_mid_prev[((size_t)k * 3 + x) * R + q];
        const float4 g1v = upd_prev[(size_t)k * 3 * R + R + q];
        const float4 g2v = upd_prev[(size_t)k * 3 * R + 2 * R + q];
        float4 gsv = gsk[v];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float gv[3], vmc[3], goc[3], gpc[3];
            for (int x = 0; x < 3; x++) {
                gv[x] = f4(gvk[x][v], i) + f4(gv_acc[x][v], i);
                vmc[x] = f4(vm[x], i);
            }
            painn_gate_backward(f4(gsv, i) + f4(gs_acc[v], i), gv, vmc, f4(g1v, i), f4(g2v, i), M,
                                goc, gpc);
            for (int x = 0; x < 3; x++) f4(go[x], i) = goc[x], f4(gp[x], i) = gpc[x];
        }
        for (int x = 0; x < 3; x++) {
            Gout[(size_t)k * 3 * R + x * R + q] = go[x];
            gvp[((size_t)k * 3 + x) * R + q] = gp[x];
        }
    }
}

template <int H, bool HAS_V>
cudaError_t launch_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int n = c->n_atoms;
    const msg_config k = message_config(n);
    const size_t nH = (size_t)n * H;
    const size_t smem = k.warps > 1 ? sizeof(float) * 4 * H * k.warps * k.atoms : 0;
    const unsigned blocks = (unsigned)((n + k.atoms - 1) / k.atoms);
    const float *phi = c->filter_out + (size_t)(2 * l) * c->pair_rows * 3 * H;
    return painn_launch(c->use_pdl, message_forward_kernel<H, HAS_V, 2>, blocks,
                        32 * k.warps * k.atoms, smem, s, n, k.warps, c->row_start, c->edge_src,
                        c->edge_pair, c->pair_u, (const float4 *)phi,
                        (const float4 *)(c->s_in + l * nH),
                        (const float4 *)(HAS_V ? c->v_in + l * 3 * nH : nullptr),
                        (float4 *)(c->X + l * 2 * nH), (float4 *)(c->v_mid + l * 3 * nH));
}

template <int H, bool CHAIN>
cudaError_t launch_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int n = c->n_atoms;
    const msg_config k = message_config(n);
    const size_t nH = (size_t)n * H;
    const size_t smem = CHAIN && k.warps > 1 ? sizeof(float) * 4 * H * k.warps * k.atoms : 0;
    const unsigned blocks = (unsigned)((n + k.atoms - 1) / k.atoms);
    const float *phi = c->filter_out + (size_t)(2 * l) * c->pair_rows * 3 * H;
    const float *dphi = phi + (size_t)c->pair_rows * 3 * H;
    const painn_mixing M = CHAIN ? c->w.mixing[l - 1] : painn_mixing{};
    return painn_launch(
        c->use_pdl, message_backward_kernel<H, CHAIN>, blocks, 32 * k.warps * k.atoms, smem, s, n,
        k.warps, c->row_start, c->edge_src, c->edge_pair, c->pair_u, (const float4 *)phi,
        (const float4 *)dphi, (const float4 *)(c->s_in + l * nH),
        (const float4 *)(CHAIN ? c->v_in + l * 3 * nH : nullptr), (const float4 *)c->gs_mid,
        (const float4 *)c->gv_mid, c->edge_grad + l * painn_edge_grad_rows(c),
        (const float4 *)(CHAIN ? c->v_mid + (l - 1) * 3 * nH : nullptr),
        (const float4 *)(CHAIN ? c->upd + (l - 1) * 3 * nH : nullptr), M, (float4 *)c->Gout,
        (float4 *)c->gvp);
}

template <int H> cudaError_t launch_h(const painn_cuda *c, int l, bool forward, cudaStream_t s)
{
    if (forward)
        return l > 0 ? launch_forward<H, true>(c, l, s) : launch_forward<H, false>(c, l, s);
    return l > 0 ? launch_backward<H, true>(c, l, s) : launch_backward<H, false>(c, l, s);
}

/* Either direction, on the path the context chose. */
cudaError_t launch_messages(const painn_cuda *c, int l, bool forward, cudaStream_t s)
{
    if (c->pair_messages) return painn_launch_pair_messages(c, l, forward, s);
    cudaError_t e;
    switch (c->H) {
    case 32: e = launch_h<32>(c, l, forward, s); break;
    case 64: e = launch_h<64>(c, l, forward, s); break;
    case 128: e = launch_h<128>(c, l, forward, s); break;
    case 256: e = launch_h<256>(c, l, forward, s); break;
    default: return cudaErrorInvalidValue; /* checked at creation */
    }
    return e != cudaSuccess ? e : cudaGetLastError();
}

} // namespace

cudaError_t painn_launch_message_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    return launch_messages(c, l, true, s);
}

cudaError_t painn_launch_message_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    return launch_messages(c, l, false, s);
}
