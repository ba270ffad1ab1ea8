/* painn_cuda_backward.cu — the reverse pass and the forces.
 *
 * For layer l, from gs_out = dE/ds and gv_out = dE/dv after its update:
 *   Gout = dE/d[a; g1; g2] = [gs_out, sum_x gv_out v_mid, sum_x gv_out (M v_mid)]
 *   gvp  = gv_out g1 + (M^T gv_out) g2                       (through the gate)
 *   Gh3  = (Gout W4) * silu'(h3),  GX = Gh3 W3 = dE/d[s_mid; |v_mid|]   (GEMMs)
 *   gs_mid = gs_out + GX_s,  gv_mid = gvp + GX_n v_mid / |v_mid|  (0 where |v_mid| = 0)
 * Message, per atom k (a block; its 4 warps split the incoming edges n -> k,
 * lanes over channels); by symmetry each is also an outgoing edge k -> n of
 * the same pair, so the gathers need no atomics:
 *   gs_in[k] = gs_mid[k] + sum_n gs_mid[n] phi_s,  gv_in[k] = gv_mid[k] + sum_n gv_mid[n] phi_v1
 *   and, for the edge n -> k: dE/dphi = [s_n gs_mid[k], sum_x v_n gv_mid[k], sum_x u gv_mid[k]]
 *   dE/dd = <dE/dphi, dphi/dd>,  dE/du_x = sum_c phi_v2 gv_mid[k]_x.
 * The gs_in, gv_in of layer l are gs_out, gv_out of layer l-1: the same
 * kernel forms Gout and gvp of layer l-1 for its atom.
 * Forces: per pair (lo, hi), r = x_lo - x_hi, with G_D = sum of dE/dd of both
 * edges and G_U = dE/du(lo->hi) - dE/du(hi->lo):
 *   dE/dx_lo = G_D r/d + G_U/(d+eps) - r (r.G_U) / (d (d+eps)^2) = -dE/dx_hi
 * gathered per atom over its edges, layers summed in order 0..L-1. */
#include "painn_cuda_gemm.cuh"

namespace {

/* Gh3 = acc * silu'(h3) */
struct epi_silu_grad {
    float *Gh3;
    const float *h3;
    int H;
    __device__ void operator()(int, int row, int col, float acc) const
    {
        size_t t = (size_t)row * H + col;
        Gh3[t] = acc * painn_silu_grad(h3[t]);
    }
};

/* Columns [0, H): gs_mid = gs_out + acc. Columns [H, 2H): channel c = col - H,
 * gv_mid[x] = gvp[x] + acc v_mid[x] / |v_mid| (0 where |v_mid| = 0). */
struct epi_grad_mid {
    float *gs_mid, *gv_mid;
    const float *Gout, *gvp, *X, *v_mid;
    int H;
    __device__ void operator()(int, int row, int col, float acc) const
    {
        if (col < H) {
            gs_mid[(size_t)row * H + col] = Gout[(size_t)row * 3 * H + col] + acc;
            return;
        }
        const int c = col - H;
        const float norm = X[(size_t)row * 2 * H + H + c];
        const float scale = norm > 0.0f ? acc / norm : 0.0f;
        const size_t t = (size_t)row * 3 * H + c;
        gv_mid[t] = gvp[t] + scale * v_mid[t];
        gv_mid[t + H] = gvp[t + H] + scale * v_mid[t + H];
        gv_mid[t + 2 * H] = gvp[t + 2 * H] + scale * v_mid[t + 2 * H];
    }
};

constexpr int MSG_WARPS = 4;

/* Block per receiving atom k; warp w takes the edges w, w + 4, w + 8, ... of
 * k (lanes over channels c = lane + 32 t, CPL = H/32 of them; each warp
 * fetches 32 of its edges' indices at a time, one per lane). Per edge, the
 * warp reduces dE/dd and dE/du over channels (fixed butterfly). The four
 * warps' gathered gradients are added in the order w = 0..3. */
template <int CPL>
__global__ void __launch_bounds__(32 * MSG_WARPS)
    message_backward_kernel(int n, const int *__restrict__ row_start,
                            const int *__restrict__ edge_src, const int *__restrict__ edge_pair,
                            const float4 *__restrict__ pair_u, const float *__restrict__ phi,
                            const float *__restrict__ dphi, const float *__restrict__ s_in,
                            const float *__restrict__ v_in, /* NULL in layer 0 */
                            const float *__restrict__ gs_mid, const float *__restrict__ gv_mid,
                            float4 *__restrict__ edge_grad,
                            /* layer l-1 (all NULL in layer 0): */
                            const float *__restrict__ v_mid_prev,
                            const float *__restrict__ upd_prev, painn_mixing M,
                            float *__restrict__ Gout, float *__restrict__ gvp)
{
    painn_grid_begin();
    constexpr int H = 32 * CPL;
    __shared__ float part[MSG_WARPS][4 * H]; /* gathered gs, gv x y z per warp */
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const bool chain = v_in != nullptr; /* layer > 0: pass gradients down */
    for (int k = blockIdx.x; k < n; k += gridDim.x) {
        float gsk[CPL], gvk[3][CPL], gs_acc[CPL], gv_acc[3][CPL];
#pragma unroll
        for (int t = 0; t < CPL; t++) {
            const int c = lane + 32 * t;
            gsk[t] = gs_mid[(size_t)k * H + c];
#pragma unroll
            for (int x = 0; x < 3; x++) {
                gvk[x][t] = gv_mid[((size_t)k * 3 + x) * H + c];
                gv_acc[x][t] = 0.0f;
            }
            gs_acc[t] = 0.0f;
        }
        const int e_end = row_start[k + 1];
        for (int e0 = row_start[k] + w; e0 < e_end; e0 += 32 * MSG_WARPS) {
            int my_nb = 0, my_p = 0;
            float4 my_u = make_float4(0.f, 0.f, 0.f, 0.f);
            if (e0 + MSG_WARPS * lane < e_end) {
                my_nb = edge_src[e0 + MSG_WARPS * lane];
                my_p = edge_pair[e0 + MSG_WARPS * lane];
                my_u = pair_u[my_p];
            }
            const int chunk = min(32, (e_end - e0 + MSG_WARPS - 1) / MSG_WARPS);
            for (int q = 0; q < chunk; q++) {
                const int nb = __shfl_sync(0xffffffffu, my_nb, q);
                const int p = __shfl_sync(0xffffffffu, my_p, q);
                const int dir = nb < k ? 0 : 1; /* 0: lo -> hi, received by hi */
                const float sg = dir ? -1.0f : 1.0f;
                const float ux = sg * __shfl_sync(0xffffffffu, my_u.x, q);
                const float uy = sg * __shfl_sync(0xffffffffu, my_u.y, q);
                const float uz = sg * __shfl_sync(0xffffffffu, my_u.z, q);
                const float *ph = phi + (size_t)p * 3 * H, *dph = dphi + (size_t)p * 3 * H;
                float gd = 0.0f, gux = 0.0f, guy = 0.0f, guz = 0.0f;
#pragma unroll
                for (int t = 0; t < CPL; t++) {
                    const int c = lane + 32 * t;
                    const float ps = ph[c], pv1 = ph[H + c], pv2 = ph[2 * H + c];
                    const float dps = dph[c], dpv1 = dph[H + c], dpv2 = dph[2 * H + c];
                    const float sn = s_in[(size_t)nb * H + c];
                    float g_s = sn * gsk[t];
                    float g_v2 = ux * gvk[0][t] + uy * gvk[1][t] + uz * gvk[2][t];
                    gd = fmaf(g_s, dps, gd);
                    gd = fmaf(g_v2, dpv2, gd);
                    gux = fmaf(pv2, gvk[0][t], gux);
                    guy = fmaf(pv2, gvk[1][t], guy);
                    guz = fmaf(pv2, gvk[2][t], guz);
                    if (chain) {
                        const float *vn = v_in + (size_t)nb * 3 * H + c;
                        float g_v1 = vn[0] * gvk[0][t] + vn[H] * gvk[1][t] + vn[2 * H] * gvk[2][t];
                        gd = fmaf(g_v1, dpv1, gd);
                        gs_acc[t] = fmaf(gs_mid[(size_t)nb * H + c], ps, gs_acc[t]);
                        const float *gvn = gv_mid + (size_t)nb * 3 * H + c;
                        gv_acc[0][t] = fmaf(gvn[0], pv1, gv_acc[0][t]);
                        gv_acc[1][t] = fmaf(gvn[H], pv1, gv_acc[1][t]);
                        gv_acc[2][t] = fmaf(gvn[2 * H], pv1, gv_acc[2][t]);
                    }
                }
                gd = painn_warp_sum(gd);
                gux = painn_warp_sum(gux);
                guy = painn_warp_sum(guy);
                guz = painn_warp_sum(guz);
                if (lane == 0) edge_grad[2 * (size_t)p + dir] = make_float4(gd, gux, guy, guz);
            }
        }
        if (!chain) continue; /* uniform over the whole grid */
#pragma unroll
        for (int t = 0; t < CPL; t++) {
            const int c = lane + 32 * t;
            part[w][c] = gs_acc[t];
            part[w][H + c] = gv_acc[0][t];
            part[w][2 * H + c] = gv_acc[1][t];
            part[w][3 * H + c] = gv_acc[2][t];
        }
        __syncthreads();
        /* gradients entering layer l = leaving layer l-1; its update backward */
        for (int c = threadIdx.x; c < H; c += 32 * MSG_WARPS) {
            float sums[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                sums[q] = part[0][q * H + c];
#pragma unroll
                for (int ww = 1; ww < MSG_WARPS; ww++) sums[q] += part[ww][q * H + c];
            }
            const float gs_in = gs_mid[(size_t)k * H + c] + sums[0];
            float gv[3], vm[3], mv[3];
#pragma unroll
            for (int x = 0; x < 3; x++) {
                gv[x] = gv_mid[((size_t)k * 3 + x) * H + c] + sums[1 + x];
                vm[x] = v_mid_prev[((size_t)k * 3 + x) * H + c];
            }
#pragma unroll
            for (int x = 0; x < 3; x++)
                mv[x] = M.m[3 * x] * vm[0] + M.m[3 * x + 1] * vm[1] + M.m[3 * x + 2] * vm[2];
            const float *u = upd_prev + (size_t)k * 3 * H;
            const float g1 = u[H + c], g2 = u[2 * H + c];
            float *go = Gout + (size_t)k * 3 * H;
            go[c] = gs_in;
            go[H + c] = gv[0] * vm[0] + gv[1] * vm[1] + gv[2] * vm[2];
            go[2 * H + c] = gv[0] * mv[0] + gv[1] * mv[1] + gv[2] * mv[2];
#pragma unroll
            for (int x = 0; x < 3; x++) {
                float mt = M.m[x] * gv[0] + M.m[3 + x] * gv[1] + M.m[6 + x] * gv[2];
                gvp[((size_t)k * 3 + x) * H + c] = gv[x] * g1 + mt * g2;
            }
        }
        __syncthreads();
    }
}

/* Blocks [0, atom_blocks): warp per atom, lanes over its edges, the force
 * from its pairs (float64, summed per lane in edge order, then across lanes
 * in a fixed butterfly). Blocks after: warp per molecule, its energy. */
__global__ void
forces_energy_kernel(int n, int n_mol, int L, long pair_rows, int atom_blocks,
                     const int *__restrict__ row_start, const int *__restrict__ edge_src,
                     const int *__restrict__ edge_pair, const float4 *__restrict__ pair_u,
                     const float4 *__restrict__ pair_r, const float4 *__restrict__ edge_grad,
                     float *__restrict__ forces, const int *__restrict__ mol_start,
                     const double *__restrict__ atom_energy, double *__restrict__ energies)
{
    painn_grid_begin();
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5, warp = threadIdx.x >> 5;
    if ((int)blockIdx.x < atom_blocks) {
        for (int k = blockIdx.x * warps + warp; k < n; k += atom_blocks * warps) {
            double fx = 0.0, fy = 0.0, fz = 0.0;
            for (int e = row_start[k] + lane; e < row_start[k + 1]; e += 32) {
                const int nb = edge_src[e], p = edge_pair[e];
                float GD = 0.0f, Ux = 0.0f, Uy = 0.0f, Uz = 0.0f;
                for (int l = 0; l < L; l++) {
                    const float4 *g = edge_grad + (size_t)l * 2 * pair_rows + 2 * (size_t)p;
                    const float4 a = g[0], b = g[1];
                    GD += a.x + b.x;
                    Ux += a.y - b.y;
                    Uy += a.z - b.z;
                    Uz += a.w - b.w;
                }
                const float4 r = pair_r[p];
                const float d = pair_u[p].w;
                if (!(d > 0.0f)) continue;
                const float de = d + PAINN_U_EPS;
                const float rU = r.x * Ux + r.y * Uy + r.z * Uz;
                const float radial = GD / d - rU / (d * de * de);
                const double sign = k < nb ? -1.0 : 1.0; /* F_lo = -dE/dx_lo, F_hi = +dE/dx_lo */
                fx += sign * (Ux / de + r.x * radial);
                fy += sign * (Uy / de + r.y * radial);
                fz += sign * (Uz / de + r.z * radial);
            }
            fx = painn_warp_sum_double(fx);
            fy = painn_warp_sum_double(fy);
            fz = painn_warp_sum_double(fz);
            if (lane == 0) {
                forces[k] = (float)fx;
                forces[n + k] = (float)fy;
                forces[2 * n + k] = (float)fz;
            }
        }
        return;
    }
    const int mol_blocks = gridDim.x - atom_blocks;
    for (int m = (blockIdx.x - atom_blocks) * warps + warp; m < n_mol; m += mol_blocks * warps) {
        double e = 0.0;
        for (int a = mol_start[m] + lane; a < mol_start[m + 1]; a += 32) e += atom_energy[a];
        e = painn_warp_sum_double(e);
        if (lane == 0) energies[m] = e;
    }
}

template <int CPL>
static void launch_message_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    const size_t nH = (size_t)n * H;
    const float *phi = c->filter_out + (size_t)(2 * l) * c->pair_rows * 3 * H;
    const float *dphi = phi + (size_t)c->pair_rows * 3 * H;
    const bool chain = l > 0;
    painn_mixing M = chain ? c->w.mixing[l - 1] : painn_mixing{};
    unsigned blocks = painn_grid(n, 1, c->sm_count, 16);
    painn_launch(c->use_pdl, message_backward_kernel<CPL>, blocks, 32 * MSG_WARPS, 0, s, n,
                 c->row_start, c->edge_src, c->edge_pair, c->pair_u, phi, dphi, c->s_in + l * nH,
                 chain ? c->v_in + l * 3 * nH : nullptr, c->gs_mid, c->gv_mid,
                 c->edge_grad + (size_t)l * 2 * c->pair_rows,
                 chain ? c->v_mid + (l - 1) * 3 * nH : nullptr,
                 chain ? c->upd + (l - 1) * 3 * nH : nullptr, M, c->Gout, c->gvp);
}

} // namespace

cudaError_t painn_launch_update_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    const size_t nH = (size_t)n * H;
    const gemm_shape g3 = gemm_choose(n, H, 1, H, c->sm_count);
    const gemm_shape g4 = gemm_choose(n, 2 * H, 1, H, c->sm_count);
    /* Gh3 = (Gout W4) * silu'(h3): B = W4^T [H][3H] */
    gemm_operands op3 = {c->Gout, 0,       3 * H, c->w.W4T + (size_t)l * 3 * H * H, 0, 1,
                         3 * H,   nullptr, n};
    epi_silu_grad e3 = {c->Gh3, c->h3 + l * nH, H};
    cudaError_t err = gemm_launch(op3, H, H, 1, n, g3, e3, c->use_pdl, s);
    if (err != cudaSuccess) return err;
    /* GX = Gh3 W3: B = W3^T [2H][H] */
    gemm_operands op4 = {c->Gh3, 0, H, c->w.W3T + (size_t)l * 2 * H * H, 0, 1, H, nullptr, n};
    epi_grad_mid e4 = {
        c->gs_mid, c->gv_mid, c->Gout, c->gvp, c->X + l * 2 * nH, c->v_mid + l * 3 * nH, H};
    return gemm_launch(op4, H, 2 * H, 1, n, g4, e4, c->use_pdl, s);
}

cudaError_t painn_launch_message_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    switch (c->H) {
    case 32: launch_message_backward<1>(c, l, s); break;
    case 64: launch_message_backward<2>(c, l, s); break;
    case 128: launch_message_backward<4>(c, l, s); break;
    case 256: launch_message_backward<8>(c, l, s); break;
    default: return cudaErrorInvalidValue; /* checked at creation */
    }
    return cudaGetLastError();
}

cudaError_t painn_configure_backward_kernels(const painn_cuda *c)
{
    cudaError_t e = gemm_configure<epi_silu_grad>(c->H);
    return e != cudaSuccess ? e : gemm_configure<epi_grad_mid>(c->H);
}

cudaError_t painn_launch_forces(const painn_cuda *c, cudaStream_t s)
{
    const int threads = 128;
    const int atom_blocks = (int)painn_grid(c->n_atoms, threads / 32, c->sm_count, 16);
    const int mol_blocks = (int)painn_grid(c->n_molecules, threads / 32, c->sm_count, 8);
    painn_launch(c->use_pdl, forces_energy_kernel, atom_blocks + mol_blocks, threads, 0, s,
                 c->n_atoms, c->n_molecules, c->L, c->pair_rows, atom_blocks, c->row_start,
                 c->edge_src, c->edge_pair, c->pair_u, c->pair_r, c->edge_grad, c->forces,
                 c->mol_start, c->atom_energy, c->energies);
    return cudaGetLastError();
}
