/* painn_cuda_update.cu — the update block of each layer, forward.
 *
 * [a, g1, g2] = W4 silu(W3 [s_mid; |v_mid|] + b3) + b4 (two GEMMs), then
 *   s = s_mid + a,  v = v_mid g1 + (M v_mid) g2.
 * The other stages: neighbour lists (painn_cuda_neighbors.cu), pair filters
 * (painn_cuda_filter_table.cu), messages (painn_cuda_messages.cu), readout
 * (painn_cuda_readout.cu), the reverse pass (painn_cuda_backward.cu). */
#include "painn_cuda_gemm.cuh"

namespace {

/* h3 = acc + b3, a3 = silu(h3) */
struct epi_silu_store {
    float *h3, *a3;
    const float *b3;
    int H;
    __device__ void operator()(int row, int col, float4 acc) const
    {
        const float4 h = add4(acc, load4(b3 + col));
        store4(h3 + (size_t)row * H + col, h);
        store4(a3 + (size_t)row * H + col, map4(h, painn_silu));
    }
};

/* [a, g1, g2] = acc + b4, row length N; with a next layer, its s = s_mid + a
 * is formed here (columns [0, H), s_mid = X's first H columns) instead of a */
struct epi_update {
    float *upd;
    const float *bias;
    int N;
    float *s_next; /* null in the last layer, where the readout forms s */
    const float *X;
    int H;
    __device__ void operator()(int row, int col, float4 acc) const
    {
        const float4 u = add4(acc, load4(bias + col));
        if (s_next && col < H)
            store4(s_next + (size_t)row * H + col, add4(load4(X + (size_t)row * 2 * H + col), u));
        else
            store4(upd + (size_t)row * N + col, u);
    }
};

/* v = v_mid g1 + (M v_mid) g2, thread per atom and four channels; s = s_mid
 * + a is formed by the GEMM's epilogue (epi_update). */
__global__ void update_apply_kernel(int n, int H, const float *__restrict__ v_mid,
                                    const float *__restrict__ upd, painn_mixing M,
                                    float *__restrict__ v_next)
{
    painn_grid_begin();
    for_each_row_quad(n, H, [&](long j, int c) {
        const float *u = upd + j * 3 * H + c;
        const float4 g1 = load4(u + H), g2 = load4(u + 2 * H);
        const float *vm = v_mid + j * 3 * H + c;
        const float4 v0 = load4(vm), v1 = load4(vm + H), v2 = load4(vm + 2 * H);
        /* per channel q: v_x g1 + (M v)_x g2 */
        const auto gate = [&](int x) {
            const float *m = M.m + 3 * x;
            const float4 mv = make_float4(m[0] * v0.x + m[1] * v1.x + m[2] * v2.x,
                                          m[0] * v0.y + m[1] * v1.y + m[2] * v2.y,
                                          m[0] * v0.z + m[1] * v1.z + m[2] * v2.z,
                                          m[0] * v0.w + m[1] * v1.w + m[2] * v2.w);
            const float4 vx = x == 0 ? v0 : x == 1 ? v1 : v2;
            return add4(mul4(vx, g1), mul4(mv, g2));
        };
        float *vn = v_next + j * 3 * H + c;
        store4(vn, gate(0));
        store4(vn + H, gate(1));
        store4(vn + 2 * H, gate(2));
    });
}

} // namespace

cudaError_t painn_launch_update_forward(const painn_cuda *c, int l, cudaStream_t s)
{
    const int H = c->H, n = c->n_atoms;
    const size_t nH = (size_t)n * H;
    /* the last layer's v is never used: of [a, g1, g2] only a is formed */
    const bool last = l + 1 == c->L;
    const int N2 = last ? H : 3 * H;
    const gemm_shape g1 = gemm_choose(n, H, c->sm_count);
    const gemm_shape g2 = gemm_choose(n, N2, c->sm_count);
    const size_t w3 = (size_t)l * 2 * H * H, w4 = (size_t)l * 3 * H * H;
    gemm_operands op1 = {c->X + l * 2 * nH, 2 * H, c->w.W3 + w3, 2 * H, 2 * H, nullptr, n};
    epi_silu_store e1 = {c->h3 + l * nH, c->a3, c->w.b3 + (size_t)l * H, H};
    cudaError_t err = gemm_launch(op1, H, n, g1, e1, c->use_pdl, s);
    if (err != cudaSuccess) return err;
    gemm_operands op2 = {c->a3, H, c->w.W4 + w4, H, H, nullptr, n};
    epi_update e2 = {c->upd + l * 3 * nH, c->w.b4 + (size_t)l * 3 * H, 3 * H,
                     last ? nullptr : c->s_in + (l + 1) * nH, c->X + l * 2 * nH, H};
    err = gemm_launch(op2, N2, n, g2, e2, c->use_pdl, s);
    if (err != cudaSuccess || last) return err; /* the readout applies the last one */
    unsigned blocks = painn_grid((long)nH / 4, 256, c->sm_count, 16);
    painn_launch(c->use_pdl, update_apply_kernel, blocks, 256, 0, s, n, H, c->v_mid + l * 3 * nH,
                 c->upd + l * 3 * nH, c->w.mixing[l], c->v_in + (l + 1) * 3 * nH);
    return cudaGetLastError();
}

cudaError_t painn_configure_kernels(const painn_cuda *c)
{
    cudaError_t e = gemm_configure<epi_silu_store>(c->H);
    if (e == cudaSuccess) e = gemm_configure<epi_update>(c->H);
    if (e == cudaSuccess) e = painn_configure_backward_kernels(c->H);
    return e;
}
