/* painn_cuda.cu — the context of painn_cuda.h: creation (capacities, device
 * arrays, weights in float32, the captured graph), evaluation as a fixed
 * sequence of stages, host helpers and per-stage timing. */
#include "painn_cuda_internal.cuh"

#include <algorithm>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define DEFAULT_MAX_NEIGHBORS 128
#define MAX_STAGES 64

namespace {

/* ---- allocation ---- */

template <class T>
int device_alloc(painn_cuda *c, T **ptr, size_t count, const char *what, dm_error *err)
{
    size_t bytes = sizeof(T) * (count ? count : 1);
    cudaError_t e = cudaMalloc((void **)ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = nullptr;
        return dm_fail(err, "cudaMalloc of %zu bytes for %s failed: %s (context so far: %zu bytes)",
                       bytes, what, cudaGetErrorString(e), c->device_bytes);
    }
    c->device_bytes += bytes;
    return 0;
}

/* float64 host tensor -> device array of its float32 values (as float32, or
 * as float64 for the GEMMs' tensor cores), optionally transposed
 * ([rows][cols] -> [cols][rows]); `count` matrices of rows x cols each. */
template <class T>
int upload_matrix(painn_cuda *c, T **dst, const double *const *src, int count, int rows, int cols,
                  bool transpose, const char *what, dm_error *err)
{
    const std::vector<float> values = pack_matrices<float>(src, count, rows, cols, transpose);
    const std::vector<T> host(values.begin(), values.end());
    if (device_alloc(c, dst, host.size(), what, err)) return -1;
    CUDA_TRY(cudaMemcpy(*dst, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice));
    return 0;
}

int upload_weights(painn_cuda *c, const painn_model *m, dm_error *err)
{
    const int H = m->H, K = m->K, L = m->L;
    std::vector<const double *> W1(L), b1(L), W2(L), b2(L), W3(L), b3(L), W4(L), b4(L);
    for (int l = 0; l < L; l++) {
        const painn_layer *ly = &m->layers[l];
        W1[l] = ly->W1, b1[l] = ly->b1, W2[l] = ly->W2, b2[l] = ly->b2;
        W3[l] = ly->W3, b3[l] = ly->b3, W4[l] = ly->W4, b4[l] = ly->b4;
        for (int t = 0; t < 9; t++)
            c->w.mixing[l].m[t] = ly->has_mixing ? (float)ly->mixing[t] : 0.0f;
    }
    painn_weights *w = &c->w;
    const double *one[1];
#define ONE(dst, src, rows, cols, what)                                                            \
    (one[0] = (src), upload_matrix(c, dst, one, 1, rows, cols, false, what, err))
    if (ONE(&w->embedding, m->embedding, PAINN_N_ELEMENTS, H, "embedding") ||
        ONE(&w->centers, m->rbf_centers, 1, K, "rbf centers") ||
        ONE(&w->widths, m->rbf_widths, 1, K, "rbf widths") ||
        upload_matrix(c, &w->W1, W1.data(), L, H, K, false, "W1", err) ||
        upload_matrix(c, &w->b1, b1.data(), L, 1, H, false, "b1", err) ||
        upload_matrix(c, &w->W2, W2.data(), L, 3 * H, H, false, "W2", err) ||
        upload_matrix(c, &w->b2, b2.data(), L, 1, 3 * H, false, "b2", err) ||
        upload_matrix(c, &w->W3, W3.data(), L, H, 2 * H, false, "W3", err) ||
        upload_matrix(c, &w->W3T, W3.data(), L, H, 2 * H, true, "W3^T", err) ||
        upload_matrix(c, &w->b3, b3.data(), L, 1, H, false, "b3", err) ||
        upload_matrix(c, &w->W4, W4.data(), L, 3 * H, H, false, "W4", err) ||
        upload_matrix(c, &w->W4T, W4.data(), L, 3 * H, H, true, "W4^T", err) ||
        upload_matrix(c, &w->b4, b4.data(), L, 1, 3 * H, false, "b4", err) ||
        ONE(&w->W5, m->W5, H / 2, H, "W5") || ONE(&w->b5, m->b5, 1, H / 2, "b5") ||
        ONE(&w->W6, m->W6, H / 4, H / 2, "W6") || ONE(&w->b6, m->b6, 1, H / 4, "b6") ||
        (one[0] = m->W5, upload_matrix(c, &w->W5T, one, 1, H / 2, H, true, "W5^T", err)) ||
        (one[0] = m->W6, upload_matrix(c, &w->W6T, one, 1, H / 4, H / 2, true, "W6^T", err)) ||
        ONE(&w->W7, m->W7, 1, H / 4, "W7") || ONE(&w->b7, m->b7, 1, 1, "b7"))
        return -1;
#undef ONE
    return 0;
}

int check_model(const painn_model *m, dm_error *err)
{
    if (m->H != 32 && m->H != 64 && m->H != 128 && m->H != 256)
        return dm_fail(err, "%s: hidden size H = %d; the CUDA platform supports 32, 64, 128, 256",
                       m->path, m->H);
    if (m->L < 1 || m->L > PAINN_CUDA_MAX_LAYERS)
        return dm_fail(err, "%s: %d layers; the CUDA platform supports 1..%d", m->path, m->L,
                       PAINN_CUDA_MAX_LAYERS);
    if (m->K < 1 || m->K > 1024)
        return dm_fail(err, "%s: %d radial functions; expected 1..1024", m->path, m->K);
    for (int l = 0; l + 1 < m->L; l++)
        if (!m->layers[l].has_mixing)
            return dm_fail(err,
                           "%s: layer %d has no mixing matrix; every layer but the last needs one",
                           m->path, l);
    return 0;
}

/* Directed-edge capacity: n_m * min(n_m - 1, max_neighbors) per molecule. */
int edge_capacity(const molecule_batch *t, int max_nb, long *cap, int *max_mol, dm_error *err)
{
    long total = 0;
    *max_mol = 0;
    for (int mol = 0; mol < t->n_molecules; mol++) {
        long n = t->offset[mol + 1] - t->offset[mol];
        if (n < 1) return dm_fail(err, "molecule %d has %ld atoms; expected at least 1", mol, n);
        *max_mol = std::max(*max_mol, (int)n);
        total += n * std::min(n - 1, (long)max_nb);
    }
    if (total > INT_MAX / 2)
        return dm_fail(err,
                       "%ld candidate edges exceed the CUDA platform's limit (%d); "
                       "lower max_neighbors or split the batch",
                       total, INT_MAX / 2);
    *cap = std::max(total, 2L);
    return 0;
}

int alloc_state(painn_cuda *c, const molecule_batch *t, dm_error *err)
{
    const size_t n = (size_t)c->n_atoms, H = (size_t)c->H, L = (size_t)c->L;
    const size_t P = (size_t)c->pair_rows;
    if (device_alloc(c, &c->species, n, "species", err) ||
        device_alloc(c, &c->mol_start, (size_t)c->n_molecules + 1, "molecule offsets", err) ||
        device_alloc(c, &c->atom_mol, n, "atom molecules", err) ||
        device_alloc(c, &c->pos, 3 * n, "positions", err) ||
        device_alloc(c, &c->forces, 3 * n, "forces", err) ||
        device_alloc(c, &c->energies, (size_t)c->n_molecules, "energies", err) ||
        device_alloc(c, &c->atom_energy, n, "atom energies", err) ||
        device_alloc(c, &c->n_nb, n, "neighbour counts", err) ||
        device_alloc(c, &c->n_lower, n, "lower neighbour counts", err) ||
        device_alloc(c, &c->row_start, n + 1, "row starts", err) ||
        device_alloc(c, &c->pair_start, n + 1, "pair starts", err) ||
        device_alloc(c, &c->edge_src, (size_t)c->edge_cap, "edge senders", err) ||
        device_alloc(c, &c->edge_pair, (size_t)c->edge_cap, "edge pairs", err) ||
        device_alloc(c, &c->pair_lo, P, "pair atoms", err) ||
        device_alloc(c, &c->pair_hi, P, "pair atoms", err) ||
        device_alloc(c, &c->pair_u, P, "pair directions", err) ||
        device_alloc(c, &c->pair_r, P, "pair vectors", err) ||
        device_alloc(c, &c->pair_force, P, "pair forces", err) ||
        device_alloc(c, &c->counts, 1, "counts", err) ||
        device_alloc(c, &c->mol_scan, (size_t)c->n_molecules + 1, "molecule scan", err) ||
        (!c->pair_messages &&
         device_alloc(c, &c->filter_out, 2 * L * P * 3 * H, "filters", err)) ||
        device_alloc(c, &c->s_in, L * n * H, "scalar features", err) ||
        device_alloc(c, &c->v_in, L * n * 3 * H, "vector features", err) ||
        device_alloc(c, &c->X, L * n * 2 * H, "update inputs", err) ||
        device_alloc(c, &c->v_mid, L * n * 3 * H, "vector features", err) ||
        device_alloc(c, &c->h3, L * n * H, "update pre-activations", err) ||
        device_alloc(c, &c->a3, n * H, "update activations", err) ||
        device_alloc(c, &c->upd, L * n * 3 * H, "update outputs", err) ||
        device_alloc(c, &c->Gout, n * 3 * H, "gradients", err) ||
        device_alloc(c, &c->gvp, n * 3 * H, "gradients", err) ||
        device_alloc(c, &c->Gh3, n * H, "gradients", err) ||
        device_alloc(c, &c->gs_mid, n * H, "gradients", err) ||
        device_alloc(c, &c->gv_mid, n * 3 * H, "gradients", err) ||
        device_alloc(c, &c->edge_grad, L * painn_edge_grad_rows(c), "edge gradients", err))
        return -1;
    std::vector<int> atom_mol(n);
    for (int mol = 0; mol < t->n_molecules; mol++)
        for (int a = t->offset[mol]; a < t->offset[mol + 1]; a++) atom_mol[a] = mol;
    CUDA_TRY(cudaMemcpy(c->species, t->species, sizeof(int) * n, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(c->mol_start, t->offset, sizeof(int) * (c->n_molecules + 1),
                        cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(c->atom_mol, atom_mol.data(), sizeof(int) * n, cudaMemcpyHostToDevice));
    /* v entering layer 0 is zero; the pass never reads it, but keep it defined */
    CUDA_TRY(cudaMemset(c->v_in, 0, sizeof(float) * n * 3 * H));
    CUDA_TRY(cudaMemset(c->pos, 0, sizeof(float) * 3 * n));
    CUDA_TRY(cudaMemset(c->counts, 0, sizeof(painn_cuda_counts)));
    CUDA_TRY(cudaMemset(c->mol_scan, 0, sizeof(unsigned long long) * (c->n_molecules + 1)));
    CUDA_TRY(cudaMallocHost((void **)&c->host_pos, sizeof(float) * 3 * n));
    CUDA_TRY(cudaMallocHost((void **)&c->host_forces, sizeof(float) * 3 * n));
    CUDA_TRY(cudaMallocHost((void **)&c->host_counts, sizeof(painn_cuda_counts)));
    return 0;
}

/* The evaluation, stage by stage; `mark` (when set) records an event after
 * each stage and names it. */
typedef void (*stage_mark)(void *user, const char *name, cudaStream_t s);

cudaError_t enqueue(const painn_cuda *c, cudaStream_t s, stage_mark mark, void *user)
{
    static const char *const msg_fwd[] = {"message fwd 0", "message fwd 1", "message fwd 2",
                                          "message fwd 3", "message fwd 4", "message fwd 5",
                                          "message fwd 6", "message fwd 7"};
    static const char *const upd_fwd[] = {"update fwd 0", "update fwd 1", "update fwd 2",
                                          "update fwd 3", "update fwd 4", "update fwd 5",
                                          "update fwd 6", "update fwd 7"};
    static const char *const upd_bwd[] = {"update bwd 0", "update bwd 1", "update bwd 2",
                                          "update bwd 3", "update bwd 4", "update bwd 5",
                                          "update bwd 6", "update bwd 7"};
    static const char *const msg_bwd[] = {"message bwd 0", "message bwd 1", "message bwd 2",
                                          "message bwd 3", "message bwd 4", "message bwd 5",
                                          "message bwd 6", "message bwd 7"};
    cudaError_t e;
#define STAGE(call, name)                                                                          \
    do {                                                                                           \
        if ((e = (call)) != cudaSuccess) return e;                                                 \
        if (mark) mark(user, name, s);                                                             \
    } while (0)
    STAGE(painn_launch_neighbor_lists(c, s), "neighbour lists");
    STAGE(painn_launch_pair_filters(c, s), "pair filters");
    for (int l = 0; l < c->L; l++) {
        STAGE(painn_launch_message_forward(c, l, s), msg_fwd[l]);
        STAGE(painn_launch_update_forward(c, l, s), upd_fwd[l]);
    }
    STAGE(painn_launch_readout(c, s), "readout");
    for (int l = c->L - 1; l >= 0; l--) {
        STAGE(painn_launch_update_backward(c, l, s), upd_bwd[l]);
        STAGE(painn_launch_message_backward(c, l, s), msg_bwd[l]);
    }
    STAGE(painn_launch_forces(c, s), "forces, energies");
#undef STAGE
    return cudaSuccess;
}

int capture_graph(painn_cuda *c, dm_error *err)
{
    CUDA_TRY(cudaStreamCreateWithFlags(&c->capture_stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaStreamBeginCapture(c->capture_stream, cudaStreamCaptureModeThreadLocal));
    cudaError_t e = enqueue(c, c->capture_stream, nullptr, nullptr);
    cudaGraph_t graph = nullptr;
    cudaError_t e2 = cudaStreamEndCapture(c->capture_stream, &graph);
    if (e != cudaSuccess || e2 != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        return dm_fail(err, "capturing the evaluation graph failed: %s",
                       cudaGetErrorString(e != cudaSuccess ? e : e2));
    }
    c->graph = graph;
    CUDA_TRY(cudaGraphInstantiate(&c->graph_exec, c->graph, 0));
    return 0;
}

} // namespace

extern "C" {

int painn_cuda_device_available(char *why, size_t why_len)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        if (why && why_len)
            snprintf(why, why_len, "no CUDA device (cudaGetDeviceCount: %s)",
                     cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky-free error */
        return 0;
    }
    if (count < 1) {
        if (why && why_len)
            snprintf(why, why_len, "no CUDA device (cudaGetDeviceCount: 0 devices)");
        return 0;
    }
    return 1;
}

int painn_cuda_create(painn_cuda **out, const painn_model *m, const molecule_batch *t,
                      const painn_cuda_options *opt, dm_error *err)
{
    *out = nullptr;
    char why[256];
    if (!painn_cuda_device_available(why, sizeof why)) return dm_fail(err, "%s", why);
    if (check_model(m, err)) return -1;
    if (t->n_atoms < 1 || t->n_molecules < 1)
        return dm_fail(err, "empty batch (%d molecules, %d atoms)", t->n_molecules, t->n_atoms);
    for (int a = 0; a < t->n_atoms; a++)
        if (t->species[a] < 0 || t->species[a] >= PAINN_N_ELEMENTS)
            return dm_fail(err, "atom %d has atomic number %d; the model covers Z = 0..%d", a,
                           t->species[a], PAINN_N_ELEMENTS - 1);
    painn_cuda_options o = {0, 0};
    if (opt) o = *opt;
    if (o.max_neighbors <= 0) o.max_neighbors = DEFAULT_MAX_NEIGHBORS;

    painn_cuda *c = (painn_cuda *)calloc(1, sizeof *c);
    if (!c) return dm_fail(err, "out of memory");
    c->H = m->H, c->L = m->L, c->K = m->K;
    c->cutoff = (float)m->cutoff;
    c->n_atoms = t->n_atoms, c->n_molecules = t->n_molecules;
    c->max_neighbors = o.max_neighbors;
    int rc = -1, max_mol = 0;
    cudaDeviceProp prop;
    do {
        if (edge_capacity(t, o.max_neighbors, &c->edge_cap, &max_mol, err)) break;
        c->max_mol = max_mol;
        c->pair_cap = (c->edge_cap + 1) / 2;
        c->pair_rows = (c->pair_cap + PAINN_CUDA_PAIR_ROW_ALIGN - 1) / PAINN_CUDA_PAIR_ROW_ALIGN *
                       PAINN_CUDA_PAIR_ROW_ALIGN;
        cudaError_t e = cudaSetDevice(o.device);
        if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, o.device);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&c->clock_khz, cudaDevAttrClockRate, o.device);
        if (e != cudaSuccess) {
            dm_fail(err, "CUDA device %d: %s", o.device, cudaGetErrorString(e));
            break;
        }
        snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
        c->sm_count = prop.multiProcessorCount;
        c->use_pdl = painn_pdl_choice(c->n_atoms);
        if (painn_pair_messages_create(c, t, err) || alloc_state(c, t, err) ||
            upload_weights(c, m, err) ||
            painn_filter_table_create(c, m, err))
            break;
        e = painn_configure_kernels(c);
        if (e != cudaSuccess) {
            dm_fail(err, "configuring kernels: %s", cudaGetErrorString(e));
            break;
        }
        if (capture_graph(c, err)) break;
        rc = 0;
    } while (0);
    if (rc) {
        dm_error_prefix(err, "CUDA model for %d molecules (%d atoms, largest %d)", t->n_molecules,
                        t->n_atoms, max_mol);
        painn_cuda_destroy(c);
        return -1;
    }
    *out = c;
    return 0;
}

void painn_cuda_destroy(painn_cuda *c)
{
    if (!c) return;
    if (c->graph_exec) cudaGraphExecDestroy(c->graph_exec);
    if (c->graph) cudaGraphDestroy(c->graph);
    if (c->capture_stream) cudaStreamDestroy(c->capture_stream);
    void *device[] = {
        c->species,      c->mol_start,   c->atom_mol,     c->pos,          c->forces,
        c->energies,     c->atom_energy, c->n_nb,         c->n_lower,      c->row_start,
        c->pair_start,   c->edge_src,    c->edge_pair,    c->pair_lo,      c->pair_hi,
        c->pair_u,       c->pair_r,      c->counts,       c->mol_scan,     c->filter_out,
        c->s_in,         c->v_in,        c->X,            c->v_mid,        c->h3,
        c->a3,           c->upd,         c->Gout,         c->gvp,          c->Gh3,
        c->gs_mid,       c->gv_mid,      c->edge_grad,    c->pair_force,   c->msg_blocks,
        c->filter_table, c->w.embedding, c->w.centers,    c->w.widths,     c->w.W1,
        c->w.b1,         c->w.W2,        c->w.b2,         c->w.W3,         c->w.b3,
        c->w.W3T,        c->w.W4,        c->w.b4,         c->w.W4T,        c->w.W5,
        c->w.b5,         c->w.W6,        c->w.b6,         c->w.W7,         c->w.b7,
        c->w.W5T,        c->w.W6T};
    for (size_t i = 0; i < sizeof device / sizeof *device; i++)
        if (device[i]) cudaFree(device[i]);
    if (c->host_pos) cudaFreeHost(c->host_pos);
    if (c->host_forces) cudaFreeHost(c->host_forces);
    if (c->host_counts) cudaFreeHost(c->host_counts);
    free(c);
}

int painn_cuda_evaluate(painn_cuda *c, cudaStream_t stream, dm_error *err)
{
    cudaError_t e = enqueue(c, stream, nullptr, nullptr);
    if (e != cudaSuccess)
        return dm_fail(err, "enqueueing the CUDA evaluation: %s", cudaGetErrorString(e));
    return 0;
}

int painn_cuda_evaluate_graph(painn_cuda *c, cudaStream_t stream, dm_error *err)
{
    CUDA_TRY(cudaGraphLaunch(c->graph_exec, stream));
    return 0;
}

float *painn_cuda_positions(painn_cuda *c)
{
    return c->pos;
}
float *painn_cuda_forces(painn_cuda *c)
{
    return c->forces;
}
double *painn_cuda_energies(painn_cuda *c)
{
    return c->energies;
}
const painn_cuda_counts *painn_cuda_device_counts(painn_cuda *c)
{
    return c->counts;
}

void painn_cuda_get_info(const painn_cuda *c, painn_cuda_info *info)
{
    memset(info, 0, sizeof *info);
    info->n_atoms = c->n_atoms;
    info->n_molecules = c->n_molecules;
    info->H = c->H, info->L = c->L, info->K = c->K;
    info->edge_capacity = c->edge_cap;
    info->pair_capacity = c->pair_cap;
    info->device_bytes = c->device_bytes;
    snprintf(info->device_name, sizeof info->device_name, "%s", c->device_name);
    info->sm_count = c->sm_count;
    info->clock_khz = c->clock_khz;
    info->filter_table_n = c->table_n;
    info->filter_table_error[0] = c->table_error[0];
    info->filter_table_error[1] = c->table_error[1];
    info->pair_messages = c->pair_messages;
}

int painn_cuda_upload_positions(painn_cuda *c, const double *x, cudaStream_t stream, dm_error *err)
{
    const int n = c->n_atoms;
    for (int a = 0; a < n; a++)
        for (int k = 0; k < 3; k++) c->host_pos[(size_t)k * n + a] = (float)x[3 * (size_t)a + k];
    CUDA_TRY(cudaMemcpyAsync(c->pos, c->host_pos, sizeof(float) * 3 * n, cudaMemcpyHostToDevice,
                             stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

static int counts_error(const painn_cuda *c, const painn_cuda_counts *k, dm_error *err)
{
    if (!k->overflow) return 0;
    return dm_fail(err,
                   "neighbour lists overflowed: %d edges within the cutoff, capacity %ld "
                   "(max_neighbors = %d per atom); results of this evaluation are invalid",
                   k->needed_edges, c->edge_cap, c->max_neighbors);
}

int painn_cuda_check(painn_cuda *c, painn_cuda_counts *counts, cudaStream_t stream, dm_error *err)
{
    CUDA_TRY(cudaMemcpyAsync(c->host_counts, c->counts, sizeof *c->counts, cudaMemcpyDeviceToHost,
                             stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    if (counts) *counts = *c->host_counts;
    return counts_error(c, c->host_counts, err);
}

int painn_cuda_download(painn_cuda *c, double *energies, double *forces, cudaStream_t stream,
                        dm_error *err)
{
    const int n = c->n_atoms;
    if (energies)
        CUDA_TRY(cudaMemcpyAsync(energies, c->energies, sizeof(double) * c->n_molecules,
                                 cudaMemcpyDeviceToHost, stream));
    if (forces)
        CUDA_TRY(cudaMemcpyAsync(c->host_forces, c->forces, sizeof(float) * 3 * n,
                                 cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaMemcpyAsync(c->host_counts, c->counts, sizeof *c->counts, cudaMemcpyDeviceToHost,
                             stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    if (forces)
        for (int a = 0; a < n; a++)
            for (int k = 0; k < 3; k++)
                forces[3 * (size_t)a + k] = c->host_forces[(size_t)k * n + a];
    return counts_error(c, c->host_counts, err);
}

struct stage_timer {
    cudaEvent_t events[MAX_STAGES + 1];
    const char *names[MAX_STAGES];
    int n;
};

static void record_stage(void *user, const char *name, cudaStream_t s)
{
    stage_timer *t = (stage_timer *)user;
    if (t->n >= MAX_STAGES) return;
    t->names[t->n] = name;
    cudaEventRecord(t->events[++t->n], s);
}

int painn_cuda_stage_times(painn_cuda *c, cudaStream_t stream, int reps, int max_stages,
                           const char **names, double *ms, int *n_stages, dm_error *err)
{
    stage_timer t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i <= MAX_STAGES; i++) CUDA_TRY(cudaEventCreate(&t.events[i]));
    std::vector<std::vector<float>> samples(MAX_STAGES);
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        t.n = 0;
        cudaEventRecord(t.events[0], stream);
        cudaError_t e = enqueue(c, stream, record_stage, &t);
        if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) {
            rc = dm_fail(err, "timing stages: %s", cudaGetErrorString(e));
            break;
        }
        for (int i = 0; i < t.n; i++) {
            float x = 0.0f;
            cudaEventElapsedTime(&x, t.events[i], t.events[i + 1]);
            samples[i].push_back(x);
        }
    }
    int n = 0;
    for (; rc == 0 && n < t.n && n < max_stages; n++) {
        std::vector<float> &v = samples[n];
        std::sort(v.begin(), v.end());
        names[n] = t.names[n];
        ms[n] = v.empty() ? 0.0 : v[v.size() / 2];
    }
    *n_stages = n;
    for (int i = 0; i <= MAX_STAGES; i++) cudaEventDestroy(t.events[i]);
    return rc;
}

} // extern "C"
