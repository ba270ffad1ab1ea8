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

/* out = acc + bias, row length N */
struct epi_bias {
    float *out;
    const float *bias;
    int N;
    __device__ void operator()(int row, int col, float4 acc) const
    {
        store4(out + (size_t)row * N + col, add4(acc, load4(bias + col)));
    }
};

/* s = s_mid + a, v = v_mid g1 + (M v_mid) g2, thread per (atom, channel). */
__global__ void update_apply_kernel(int n, int H, const float *__restrict__ X,
                                    const float *__restrict__ v_mid, const float *__restrict__ upd,
                                    painn_mixing M, float *__restrict__ s_next,
                                    float *__restrict__ v_next)
{
    painn_grid_begin();
    const long total = (long)n * H;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total;
         t += (long)gridDim.x * blockDim.x) {
        const long j = t / H;
        const int c = (int)(t % H);
        const float *u = upd + j * 3 * H;
        s_next[j * H + c] = X[j * 2 * H + c] + u[c];
        const float g1 = u[H + c], g2 = u[2 * H + c];
        const float *vm = v_mid + j * 3 * H + c;
        const float v0 = vm[0], v1 = vm[H], v2 = vm[2 * H];
        float *vn = v_next + j * 3 * H + c;
        vn[0] = v0 * g1 + (M.m[0] * v0 + M.m[1] * v1 + M.m[2] * v2) * g2;
        vn[H] = v1 * g1 + (M.m[3] * v0 + M.m[4] * v1 + M.m[5] * v2) * g2;
        vn[2 * H] = v2 * g1 + (M.m[6] * v0 + M.m[7] * v1 + M.m[8] * v2) * g2;
    }
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
    gemm_operands op1 = {c->X + l * 2 * nH, 2 * H, c->w.W3_f64 + w3, c->w.W3 + w3, 2 * H, 2 * H,
                         nullptr, n};
    epi_silu_store e1 = {c->h3 + l * nH, c->a3, c->w.b3 + (size_t)l * H, H};
    cudaError_t err = gemm_launch(op1, H, n, g1, e1, c->use_pdl, s);
    if (err != cudaSuccess) return err;
    gemm_operands op2 = {c->a3, H, c->w.W4_f64 + w4, c->w.W4 + w4, H, H, nullptr, n};
    epi_bias e2 = {c->upd + l * 3 * nH, c->w.b4 + (size_t)l * 3 * H, 3 * H};
    err = gemm_launch(op2, N2, n, g2, e2, c->use_pdl, s);
    if (err != cudaSuccess || last) return err; /* the readout applies the last one */
    unsigned blocks = painn_grid((long)nH, 256, c->sm_count, 16);
    painn_launch(c->use_pdl, update_apply_kernel, blocks, 256, 0, s, n, H, c->X + l * 2 * nH,
                 c->v_mid + l * 3 * nH, c->upd + l * 3 * nH, c->w.mixing[l], c->s_in + (l + 1) * nH,
                 c->v_in + (l + 1) * 3 * nH);
    return cudaGetLastError();
}

cudaError_t painn_configure_kernels(const painn_cuda *c)
{
    cudaError_t e = gemm_configure<epi_silu_store>(c->H);
    if (e == cudaSuccess) e = gemm_configure<epi_bias>(c->H);
    if (e == cudaSuccess) e = painn_configure_backward_kernels(c->H);
    return e;
}
