/* painn_cuda_backward.cu — the reverse pass and the forces.
 *
 * For layer l, from gs_out = dE/ds and gv_out = dE/dv after its update:
 *   Gout = dE/d[a; g1; g2] = [gs_out, sum_x gv_out v_mid, sum_x gv_out (M v_mid)]
 *   gvp  = gv_out g1 + (M^T gv_out) g2                       (through the gate)
 *   Gh3  = (Gout W4) * silu'(h3),  GX = Gh3 W3 = dE/d[s_mid; |v_mid|]   (GEMMs)
 *   gs_mid = gs_out + GX_s,  gv_mid = gvp + GX_n v_mid / |v_mid|  (0 where |v_mid| = 0)
 * Message: painn_cuda_messages.cu.
 * Forces: per pair (lo, hi), r = x_lo - x_hi, with G_D = sum of dE/dd of both
 * edges and G_U = dE/du(lo->hi) - dE/du(hi->lo):
 *   dE/dx_lo = G_D r/d + G_U/(d+eps) - r (r.G_U) / (d (d+eps)^2) = -dE/dx_hi
 * formed once per pair, layers summed in order 0..L-1 and, within a layer,
 * the partial sums of the channel groups in order g = 0..G-1, then gathered
 * per atom over its edges. */
#include "painn_cuda_gemm.cuh"

namespace {

/* Gh3 = acc * silu'(h3) */
struct epi_silu_grad {
    float *Gh3;
    const float *h3;
    int H;
    __device__ void operator()(int row, int col, float4 acc) const
    {
        const size_t t = (size_t)row * H + col;
        store4(Gh3 + t, mul4(acc, map4(load4(h3 + t), painn_silu_grad)));
    }
};

/* Four channels of gv_mid[x] = gvp[x] + GX_n v_mid[x] / |v_mid| (0 where
 * |v_mid| = 0), x = 0..2, at q = (atom, x = 0, first channel) of the [n][3][H]
 * arrays; gvp null: 0. */
__device__ __forceinline__ void form_gv_mid(float4 GX_n, float4 norm, const float *gvp,
                                            const float *v_mid, float *gv_mid, size_t q, int H)
{
    const auto scale_of = [](float a, float nrm) { return nrm > 0.0f ? a / nrm : 0.0f; };
    const float4 scale = make_float4(scale_of(GX_n.x, norm.x), scale_of(GX_n.y, norm.y),
                                     scale_of(GX_n.z, norm.z), scale_of(GX_n.w, norm.w));
    float4 vm[3], gp[3];
    for (int x = 0; x < 3; x++) {
        vm[x] = load4(v_mid + q + x * H);
        gp[x] = gvp ? load4(gvp + q + x * H) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    for (int x = 0; x < 3; x++) store4(gv_mid + q + x * H, add4(gp[x], mul4(scale, vm[x])));
}

/* Columns [0, H): gs_mid = gs_out + acc. Columns [H, 2H), channel c = col -
 * H: GX_n = acc, from which gv_mid is formed here (form_gv_mid) or, when
 * GX_n_out is set (batches), stored for grad_mid_apply_kernel. gvp null in
 * the last layer, whose v after the update is unused (gvp = 0). */
struct epi_grad_mid {
    float *gs_mid, *gv_mid;
    const float *Gout, *gvp, *X, *v_mid;
    int H;
    float *GX_n_out;
    __device__ void operator()(int row, int col, float4 acc) const
    {
        if (col < H) {
            const float4 gs_out = load4(Gout + (size_t)row * 3 * H + col);
            store4(gs_mid + (size_t)row * H + col, add4(gs_out, acc));
            return;
        }
        const int c = col - H;
        if (GX_n_out) {
            store4(GX_n_out + (size_t)row * H + c, acc);
            return;
        }
        form_gv_mid(acc, load4(X + (size_t)row * 2 * H + H + c), gvp, v_mid, gv_mid,
                    (size_t)row * 3 * H + c, H);
    }
};

/* gv_mid from the stored GX_n (epi_grad_mid for batches), thread per atom
 * and four channels. */
__global__ void grad_mid_apply_kernel(int n, int H, const float *__restrict__ GX_n,
                                      const float *__restrict__ X, const float *__restrict__ gvp,
                                      const float *__restrict__ v_mid, float *__restrict__ gv_mid)
{
    painn_grid_begin();
    for_each_row_quad(n, H, [&](long row, int c) {
        form_gv_mid(load4(GX_n + row * H + c), load4(X + row * 2 * H + H + c), gvp, v_mid, gv_mid,
                    (size_t)row * 3 * H + c, H);
    });
}

/* Per pair p = (lo, hi), thread per pair: with G_D and G_U summed over the
 * layers 0..L-1 and, within a layer, the channel groups' partial sums in
 * order g = 0..G-1 (PER_PAIR: the pair kernels' (G_D, G_U) per pair; else
 * the per-atom kernels' two edge slots 2p, 2p + 1), pair_force[p] = dE/dx_lo
 * = -dE/dx_hi (the expression in the header; 0 for coincident atoms). Each
 * pair's gradients are read once. layer_rows: edge_grad's rows per layer. */
template <int G, bool PER_PAIR>
__global__ void pair_forces_kernel(int L, size_t layer_rows, const painn_cuda_counts *counts,
                                   const float4 *__restrict__ pair_u,
                                   const float4 *__restrict__ pair_r,
                                   const float4 *__restrict__ edge_grad,
                                   float4 *__restrict__ pair_force)
{
    painn_grid_begin();
    const int n_pairs = counts->n_pairs;
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < n_pairs; p += gridDim.x * blockDim.x) {
        float GD = 0.0f, Ux = 0.0f, Uy = 0.0f, Uz = 0.0f;
        for (int l = 0; l < L; l++) {
            /* a: the edge lo -> hi, b: the edge hi -> lo; PER_PAIR: a holds
             * both (G_D, G_U) and b is 0 */
            const float4 *g = edge_grad + l * layer_rows + (PER_PAIR ? 1 : 2) * (size_t)p * G;
            float4 a[G], b[G];
#pragma unroll
            for (int q = 0; q < G; q++)
                a[q] = g[q], b[q] = PER_PAIR ? make_float4(0.f, 0.f, 0.f, 0.f) : g[G + q];
#pragma unroll
            for (int q = 0; q < G; q++) {
                GD += a[q].x + b[q].x;
                Ux += a[q].y - b[q].y;
                Uy += a[q].z - b[q].z;
                Uz += a[q].w - b[q].w;
            }
        }
        const float4 r = pair_r[p];
        const float d = pair_u[p].w;
        float4 f = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (d > 0.0f) {
            const float de = d + PAINN_U_EPS;
            const float rU = r.x * Ux + r.y * Uy + r.z * Uz;
            const float radial = GD / d - rU / (d * de * de);
            f = make_float4(Ux / de + r.x * radial, Uy / de + r.y * radial, Uz / de + r.z * radial,
                            0.0f);
        }
        pair_force[p] = f;
    }
}

/* Blocks [0, atom_blocks): warp per atom, lanes over its edges, the force
 * -dE/dx_k = sum over its pairs of -/+ pair_force (float64, summed per lane
 * in edge order, then across lanes in a fixed butterfly). Blocks after: warp
 * per molecule, its energy. */
__global__ void forces_energy_kernel(int n, int n_mol, int atom_blocks,
                                     const int *__restrict__ row_start,
                                     const int *__restrict__ edge_src,
                                     const int *__restrict__ edge_pair,
                                     const float4 *__restrict__ pair_force,
                                     float *__restrict__ forces, const int *__restrict__ mol_start,
                                     const double *__restrict__ atom_energy,
                                     double *__restrict__ energies)
{
    painn_grid_begin();
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5, warp = threadIdx.x >> 5;
    if ((int)blockIdx.x < atom_blocks) {
        for (int k = blockIdx.x * warps + warp; k < n; k += atom_blocks * warps) {
            double fx = 0.0, fy = 0.0, fz = 0.0;
            for (int e = row_start[k] + lane; e < row_start[k + 1]; e += 32) {
                const float4 f = pair_force[edge_pair[e]];
                const double sign = k < edge_src[e] ? -1.0 : 1.0; /* F_lo = -f, F_hi = +f */
                fx += sign * f.x;
                fy += sign * f.y;
                fz += sign * f.z;
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

} // namespace

cudaError_t painn_launch_update_backward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    const size_t nH = (size_t)n * H;
    const gemm_shape g3 = gemm_choose(n, H, c->sm_count);
    const gemm_shape g4 = gemm_choose(n, 2 * H, c->sm_count);
    /* Gh3 = (Gout W4) * silu'(h3): B = W4^T [H][3H]; in the last layer only
     * dE/da is nonzero (Gout = [dE/ds, 0, 0]), so the sum runs over a's H */
    const int K3 = l + 1 == c->L ? H : 3 * H;
    const size_t w4 = (size_t)l * 3 * H * H, w3 = (size_t)l * 2 * H * H;
    gemm_operands op3 = {c->Gout, 3 * H, c->w.W4T + w4, 3 * H, K3, nullptr, n};
    epi_silu_grad e3 = {c->Gh3, c->h3 + l * nH, H};
    cudaError_t err = gemm_launch(op3, H, n, g3, e3, c->use_pdl, s);
    if (err != cudaSuccess) return err;
    /* GX = Gh3 W3: B = W3^T [2H][H] */
    gemm_operands op4 = {c->Gh3, H, c->w.W3T + w3, H, H, nullptr, n};
    const float *gvp = l + 1 == c->L ? nullptr : c->gvp;
    const float *X = c->X + l * 2 * nH, *v_mid = c->v_mid + l * 3 * nH;
    /* Batches (tensor-core shapes): the epilogue stores GX_n only (in a3,
     * free in the reverse pass) and a kernel of its own forms gv_mid; the
     * epilogue's loads of gvp and v_mid had kept the GEMM's one wave waiting
     * (H200, 256 alanine dipeptides: this GEMM 23.5-25.9 -> 15.8 us, MD step
     * 0.5833-0.5841 -> 0.5783-0.5793 ms). Few atoms keep one kernel: a
     * launch costs them more than the loads. */
    const bool split = g4 != GEMM_TINY;
    epi_grad_mid e4 = {c->gs_mid, c->gv_mid, c->Gout, gvp, X, v_mid, H, split ? c->a3 : nullptr};
    err = gemm_launch(op4, 2 * H, n, g4, e4, c->use_pdl, s);
    if (err != cudaSuccess || !split) return err;
    painn_launch(c->use_pdl, grad_mid_apply_kernel, painn_grid((long)nH / 4, 256, c->sm_count, 16),
                 256, 0, s, n, H, (const float *)c->a3, X, gvp, v_mid, c->gv_mid);
    return cudaGetLastError();
}

cudaError_t painn_configure_backward_kernels(int H)
{
    cudaError_t e = gemm_configure<epi_silu_grad>(H);
    return e != cudaSuccess ? e : gemm_configure<epi_grad_mid>(H);
}

cudaError_t painn_launch_forces(const painn_cuda *c, cudaStream_t s)
{
    decltype(&pair_forces_kernel<1, false>) per_pair;
    switch (c->pair_messages ? c->edge_groups : 0) {
    case 0: per_pair = pair_forces_kernel<1, false>; break;
    case 1: per_pair = pair_forces_kernel<1, true>; break;
    case 2: per_pair = pair_forces_kernel<2, true>; break;
    case 4: per_pair = pair_forces_kernel<4, true>; break;
    case 8: per_pair = pair_forces_kernel<8, true>; break;
    default: return cudaErrorInvalidValue; /* H / 32 for H <= 256 */
    }
    /* Both force kernels with programmatic dependent launch at every size
     * (the other kernels only for small contexts): measured on an H200, MD
     * of 256 alanine dipeptides, 0.5923-0.5929 -> 0.5823-0.5841 ms per step,
     * the same with either kernel alone or with op4's GEMMs as well. */
    painn_launch(true, per_pair, painn_grid(c->pair_cap, 128, c->sm_count, 16), 128, 0, s,
                 c->L, painn_edge_grad_rows(c), c->counts, c->pair_u, c->pair_r, c->edge_grad,
                 c->pair_force);
    const int threads = 128;
    const int atom_blocks = (int)painn_grid(c->n_atoms, threads / 32, c->sm_count, 16);
    const int mol_blocks = (int)painn_grid(c->n_molecules, threads / 32, c->sm_count, 8);
    painn_launch(true, forces_energy_kernel, atom_blocks + mol_blocks, threads, 0, s,
                 c->n_atoms, c->n_molecules, atom_blocks, c->row_start, c->edge_src, c->edge_pair,
                 c->pair_force, c->forces, c->mol_start, c->atom_energy, c->energies);
    return cudaGetLastError();
}
