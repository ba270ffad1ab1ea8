/* hamiltonian_cuda.cu — engine/hamiltonian.h on the GPU (see the .cuh). */
#include "hamiltonian_cuda.cuh"
#include "block_reduce.cuh"
#include "cuda_try.cuh"

#include <cuda_runtime.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The model terms of one model: one batch of n_terms x R molecules, term k's
 * molecule for replica r at index k R + r, its atoms [atom_first[k], ...). */
typedef struct model_group {
    painn_cuda *ctx;
    int n_atoms;                        /* atoms of the group's batch */
    int *d_source;                      /* [n_atoms]: system atom of each batch atom */
    int n_terms;
    int term[HAMILTONIAN_MAX_TERMS];    /* hamiltonian term of each part */
    int atom_first[HAMILTONIAN_MAX_TERMS + 1];
} model_group;

struct hamiltonian_cuda {
    const hamiltonian *h;
    int n_atoms, n_replicas;
    int direct;                 /* one model term, weight 1, all atoms: in place */
    int n_groups;
    model_group groups[HAMILTONIAN_MAX_TERMS];
    int *d_offset, *d_replica_of_atom;
    float *d_x, *d_f, *d_f0, *d_f1;
    double *d_energies, *d_u0, *d_du, *d_lambda;
    float *d_reference;         /* harmonic terms' reference positions, planes, per term */
    double *d_centers;          /* flat-bottom centres [R*3] per term */
    float *reference[HAMILTONIAN_MAX_TERMS];
    double *centers[HAMILTONIAN_MAX_TERMS];
};

/* ---- kernels ---- */

/* batch atom a of a model group sits at system atom source[a] */
__global__ void gather_positions(int n, int nb, const int *source, const float *x, float *xb)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= nb) return;
    for (int c = 0; c < 3; c++) xb[c * nb + a] = x[c * n + source[a]];
}

/* One model term: F_0 += c0 F_t, F_1 += c1 F_t on its atoms [a0, a1) of the
 * group batch; U_0 += c0 U_t, ΔU += c1 U_t for its molecules m0 + r. */
__global__ void scatter_term(int n, int nb, int a0, int a1, const int *source, const float *fb,
                             const double *eb, int m0, int R, double c0, double c1, float *f0,
                             float *f1, double *u0, double *du)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < R) {
        u0[t] += c0 * eb[m0 + t];
        du[t] += c1 * eb[m0 + t];
    }
    int a = a0 + t;
    if (a >= a1) return;
    int s = source[a];
    for (int c = 0; c < 3; c++) {
        float fc = fb[c * nb + a];
        f0[c * n + s] += (float)c0 * fc;
        f1[c * n + s] += (float)c1 * fc;
    }
}

/* A restraint's force component fc on coordinate i, weighted into both
 * halves of the λ split: f0 += c0 fc, f1 += c1 fc. */
__device__ void add_weighted_force(float *f0, float *f1, int i, double c0, double c1, double fc)
{
    f0[i] += (float)(c0 * fc);
    f1[i] += (float)(c1 * fc);
}

/* The energy of replica r (one block per replica, e per thread), weighted:
 * u0[r] += c0 U, du[r] += c1 U. */
__device__ void add_weighted_energy(double e, double *shared, int r, double c0, double c1,
                                    double *u0, double *du)
{
    double total = block_sum(e, shared);
    if (threadIdx.x == 0) {
        u0[r] += c0 * total;
        du[r] += c1 * total;
    }
}

/* One block per replica: U = Σ k/2 |x - x0|^2, F = -k (x - x0), weighted. */
__global__ void harmonic_term(int n, const int *offset, const float *x, const float *x0, double k,
                              double c0, double c1, float *f0, float *f1, double *u0, double *du)
{
    __shared__ double shared[REDUCE_THREADS];
    int r = blockIdx.x;
    double e = 0;
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x)
        for (int c = 0; c < 3; c++) {
            double dx = (double)x[c * n + a] - (double)x0[c * n + a];
            e += 0.5 * k * dx * dx;
            add_weighted_force(f0, f1, c * n + a, c0, c1, -k * dx);
        }
    add_weighted_energy(e, shared, r, c0, c1, u0, du);
}

/* One block per replica: the spherical wall of radius R0 about centre c_r:
 * U = k/2 (d - R0)^2 for d = |x - c_r| > R0, F = -k (d - R0) (x - c_r)/d. */
__global__ void flat_bottom_term(int n, const int *offset, const float *x, const double *centers,
                                 double k, double R0, double c0, double c1, float *f0, float *f1,
                                 double *u0, double *du)
{
    __shared__ double shared[REDUCE_THREADS];
    int r = blockIdx.x;
    double e = 0;
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x) {
        double dx[3], d2 = 0;
        for (int c = 0; c < 3; c++) {
            dx[c] = (double)x[c * n + a] - centers[3 * r + c];
            d2 += dx[c] * dx[c];
        }
        double d = sqrt(d2);
        if (d <= R0) continue;
        e += 0.5 * k * (d - R0) * (d - R0);
        for (int c = 0; c < 3; c++)
            add_weighted_force(f0, f1, c * n + a, c0, c1, -k * (d - R0) * dx[c] / d);
    }
    add_weighted_energy(e, shared, r, c0, c1, u0, du);
}

/* F_λ = F_0 + λ_r F_1 per atom; U_λ = U_0 + λ_r ΔU per replica */
__global__ void combine_lambda(int n, int R, const int *replica_of_atom, const double *lambda,
                               const float *f0, const float *f1, const double *u0, const double *du,
                               float *f, double *energies)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a < R) energies[a] = u0[a] + lambda[a] * du[a];
    if (a >= n) return;
    float l = (float)lambda[replica_of_atom[a]];
    for (int c = 0; c < 3; c++) f[c * n + a] = f0[c * n + a] + l * f1[c * n + a];
}

/* ---- setup ---- */

static int is_direct(const hamiltonian *h)
{
    const potential_term *t = &h->terms[0];
    return h->n_terms == 1 && t->kind == TERM_MODEL && t->n_selected == 0 && t->c0 == 1.0 &&
           t->c1 == 0.0;
}

/* The batch of a model group: for each of its terms, a molecule per replica. */
static int group_batch(const hamiltonian *h, const molecule_batch *b, model_group *g,
                       molecule_batch *gb, int **source, dm_error *err)
{
    int R = b->n_molecules, n_mol = g->n_terms * R;
    int *sizes = (int *)malloc(sizeof(int) * (n_mol + 1));
    if (!sizes) return dm_fail(err, "out of memory");
    for (int k = 0; k < g->n_terms; k++) {
        const potential_term *t = &h->terms[g->term[k]];
        for (int r = 0; r < R; r++)
            sizes[k * R + r] = t->n_selected ? t->n_selected : b->offset[r + 1] - b->offset[r];
    }
    int rc = molecule_batch_alloc(gb, n_mol, sizes, err);
    free(sizes);
    if (rc) return -1;
    *source = (int *)malloc(sizeof(int) * (gb->n_atoms + 1));
    if (!*source) return dm_fail(err, "out of memory");
    for (int k = 0; k < g->n_terms; k++) {
        const potential_term *t = &h->terms[g->term[k]];
        g->atom_first[k] = gb->offset[k * R];
        for (int r = 0; r < R; r++)
            for (int i = 0; i < gb->offset[k * R + r + 1] - gb->offset[k * R + r]; i++) {
                int sys = b->offset[r] + (t->n_selected ? t->selected[i] : i);
                (*source)[gb->offset[k * R + r] + i] = sys;
                gb->species[gb->offset[k * R + r] + i] = b->species[sys];
            }
    }
    g->atom_first[g->n_terms] = gb->n_atoms;
    g->n_atoms = gb->n_atoms;
    return 0;
}

static int create_groups(hamiltonian_cuda *hc, const molecule_batch *b, dm_error *err)
{
    const hamiltonian *h = hc->h;
    int assigned[HAMILTONIAN_MAX_TERMS] = {0};
    for (int t = 0; t < h->n_terms; t++) {
        if (h->terms[t].kind != TERM_MODEL || assigned[t]) continue;
        model_group *g = &hc->groups[hc->n_groups++];
        for (int u = t; u < h->n_terms; u++)
            if (h->terms[u].kind == TERM_MODEL && h->terms[u].model == h->terms[t].model) {
                g->term[g->n_terms++] = u;
                assigned[u] = 1;
            }
        molecule_batch gb = {0};
        int *source = NULL;
        int rc = group_batch(h, b, g, &gb, &source, err);
        if (rc == 0) rc = painn_cuda_create(&g->ctx, h->terms[t].model, &gb, NULL, err);
        if (rc == 0 && cudaMalloc(&g->d_source, sizeof(int) * gb.n_atoms) != cudaSuccess)
            rc = dm_fail(err, "out of GPU memory");
        if (rc == 0 && cudaMemcpy(g->d_source, source, sizeof(int) * gb.n_atoms,
                                  cudaMemcpyHostToDevice) != cudaSuccess)
            rc = dm_fail(err, "CUDA upload failed");
        free(source);
        molecule_batch_free(&gb);
        if (rc) return -1;
    }
    return 0;
}

/* AoS float64 -> float planes on the device */
static int upload_planes(const double *aos, int n, float *dst, dm_error *err)
{
    float *h = (float *)malloc(sizeof(float) * (3 * (size_t)n + 1));
    if (!h) return dm_fail(err, "out of memory");
    for (int a = 0; a < n; a++)
        for (int c = 0; c < 3; c++) h[c * n + a] = (float)aos[3 * a + c];
    cudaError_t e = cudaMemcpy(dst, h, sizeof(float) * 3 * n, cudaMemcpyHostToDevice);
    free(h);
    return e == cudaSuccess ? 0 : dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
}

static int create_analytic_terms(hamiltonian_cuda *hc, dm_error *err)
{
    int n = hc->n_atoms, R = hc->n_replicas;
    for (int t = 0; t < hc->h->n_terms; t++) {
        const potential_term *p = &hc->h->terms[t];
        if (p->kind == TERM_HARMONIC) {
            CUDA_TRY(cudaMalloc(&hc->reference[t], sizeof(float) * 3 * n));
            if (upload_planes(p->center, n, hc->reference[t], err)) return -1;
        } else if (p->kind == TERM_FLAT_BOTTOM) {
            CUDA_TRY(cudaMalloc(&hc->centers[t], sizeof(double) * 3 * R));
            CUDA_TRY(cudaMemcpy(hc->centers[t], p->center, sizeof(double) * 3 * R,
                                cudaMemcpyHostToDevice));
        }
    }
    return 0;
}

static int create_arrays(hamiltonian_cuda *hc, const molecule_batch *b, dm_error *err)
{
    int n = b->n_atoms, R = b->n_molecules;
    size_t fb = sizeof(float) * 3 * n;
    CUDA_TRY(cudaMalloc(&hc->d_offset, sizeof(int) * (R + 1)));
    CUDA_TRY(cudaMalloc(&hc->d_replica_of_atom, sizeof(int) * n));
    CUDA_TRY(cudaMalloc(&hc->d_du, sizeof(double) * R));
    CUDA_TRY(cudaMalloc(&hc->d_lambda, sizeof(double) * R));
    CUDA_TRY(cudaMemset(hc->d_du, 0, sizeof(double) * R));
    CUDA_TRY(cudaMemset(hc->d_lambda, 0, sizeof(double) * R));
    if (hc->direct) { /* the model context's arrays are the hamiltonian's */
        painn_cuda *ctx = hc->groups[0].ctx;
        hc->d_x = painn_cuda_positions(ctx);
        hc->d_f = painn_cuda_forces(ctx);
        hc->d_energies = painn_cuda_energies(ctx);
        hc->d_u0 = hc->d_energies;
    } else {
        CUDA_TRY(cudaMalloc(&hc->d_x, fb));
        CUDA_TRY(cudaMalloc(&hc->d_f, fb));
        CUDA_TRY(cudaMalloc(&hc->d_f0, fb));
        CUDA_TRY(cudaMalloc(&hc->d_f1, fb));
        CUDA_TRY(cudaMalloc(&hc->d_energies, sizeof(double) * R));
        CUDA_TRY(cudaMalloc(&hc->d_u0, sizeof(double) * R));
        CUDA_TRY(cudaMemset(hc->d_x, 0, fb));
    }
    int *replica_of_atom = (int *)malloc(sizeof(int) * (n + 1));
    if (!replica_of_atom) return dm_fail(err, "out of memory");
    for (int r = 0; r < R; r++)
        for (int a = b->offset[r]; a < b->offset[r + 1]; a++) replica_of_atom[a] = r;
    cudaError_t e = cudaMemcpy(hc->d_offset, b->offset, sizeof(int) * (R + 1), cudaMemcpyHostToDevice);
    if (e == cudaSuccess)
        e = cudaMemcpy(hc->d_replica_of_atom, replica_of_atom, sizeof(int) * n, cudaMemcpyHostToDevice);
    free(replica_of_atom);
    if (e != cudaSuccess) return dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
    return 0;
}

int hamiltonian_cuda_create(hamiltonian_cuda **out, const hamiltonian *h, const molecule_batch *b,
                            dm_error *err)
{
    if (hamiltonian_check(h, b, err)) return -1;
    hamiltonian_cuda *hc = (hamiltonian_cuda *)calloc(1, sizeof *hc);
    if (!hc) return dm_fail(err, "out of memory");
    hc->h = h;
    hc->n_atoms = b->n_atoms;
    hc->n_replicas = b->n_molecules;
    hc->direct = is_direct(h);
    int rc = create_groups(hc, b, err);
    if (rc == 0) rc = create_arrays(hc, b, err);
    if (rc == 0) rc = create_analytic_terms(hc, err);
    if (rc) {
        hamiltonian_cuda_destroy(hc);
        return -1;
    }
    *out = hc;
    return 0;
}

void hamiltonian_cuda_destroy(hamiltonian_cuda *hc)
{
    if (!hc) return;
    for (int g = 0; g < hc->n_groups; g++) {
        painn_cuda_destroy(hc->groups[g].ctx);
        cudaFree(hc->groups[g].d_source);
    }
    for (int t = 0; t < HAMILTONIAN_MAX_TERMS; t++) {
        cudaFree(hc->reference[t]);
        cudaFree(hc->centers[t]);
    }
    if (!hc->direct) {
        cudaFree(hc->d_x);
        cudaFree(hc->d_f);
        cudaFree(hc->d_energies);
        cudaFree(hc->d_u0);
    }
    cudaFree(hc->d_f0);
    cudaFree(hc->d_f1);
    cudaFree(hc->d_du);
    cudaFree(hc->d_lambda);
    cudaFree(hc->d_offset);
    cudaFree(hc->d_replica_of_atom);
    free(hc);
}

/* ---- evaluation ---- */

float *hamiltonian_cuda_positions(hamiltonian_cuda *hc) { return hc->d_x; }
float *hamiltonian_cuda_forces(hamiltonian_cuda *hc) { return hc->d_f; }
double *hamiltonian_cuda_energies(hamiltonian_cuda *hc) { return hc->d_energies; }
const double *hamiltonian_cuda_u0(hamiltonian_cuda *hc) { return hc->d_u0; }
const double *hamiltonian_cuda_du(hamiltonian_cuda *hc) { return hc->d_du; }
double *hamiltonian_cuda_lambdas(hamiltonian_cuda *hc) { return hc->d_lambda; }

static int blocks_of(int n) { return (n + 127) / 128; }

static int enqueue_model_group(hamiltonian_cuda *hc, model_group *g, cudaStream_t s, dm_error *err)
{
    int n = hc->n_atoms, R = hc->n_replicas, nb = g->n_atoms;
    gather_positions<<<blocks_of(nb), 128, 0, s>>>(n, nb, g->d_source, hc->d_x,
                                                   painn_cuda_positions(g->ctx));
    CUDA_TRY(cudaGetLastError());
    if (painn_cuda_evaluate(g->ctx, s, err)) return -1;
    for (int k = 0; k < g->n_terms; k++) { /* one kernel per term: each atom once */
        const potential_term *t = &hc->h->terms[g->term[k]];
        int a0 = g->atom_first[k], a1 = g->atom_first[k + 1];
        int threads = a1 - a0 > R ? a1 - a0 : R;
        scatter_term<<<blocks_of(threads), 128, 0, s>>>(
            n, nb, a0, a1, g->d_source, painn_cuda_forces(g->ctx), painn_cuda_energies(g->ctx),
            k * R, R, t->c0, t->c1, hc->d_f0, hc->d_f1, hc->d_u0, hc->d_du);
        CUDA_TRY(cudaGetLastError());
    }
    return 0;
}

int hamiltonian_cuda_enqueue_combine(hamiltonian_cuda *hc, cudaStream_t s, dm_error *err)
{
    if (hc->direct) return 0; /* no λ-dependent term */
    int n = hc->n_atoms, R = hc->n_replicas;
    combine_lambda<<<blocks_of(n > R ? n : R), 128, 0, s>>>(n, R, hc->d_replica_of_atom, hc->d_lambda,
                                                            hc->d_f0, hc->d_f1, hc->d_u0, hc->d_du,
                                                            hc->d_f, hc->d_energies);
    CUDA_TRY(cudaGetLastError());
    return 0;
}

int hamiltonian_cuda_enqueue(hamiltonian_cuda *hc, cudaStream_t s, dm_error *err)
{
    if (hc->direct) return painn_cuda_evaluate(hc->groups[0].ctx, s, err);
    int n = hc->n_atoms, R = hc->n_replicas;
    size_t fb = sizeof(float) * 3 * n;
    CUDA_TRY(cudaMemsetAsync(hc->d_f0, 0, fb, s));
    CUDA_TRY(cudaMemsetAsync(hc->d_f1, 0, fb, s));
    CUDA_TRY(cudaMemsetAsync(hc->d_u0, 0, sizeof(double) * R, s));
    CUDA_TRY(cudaMemsetAsync(hc->d_du, 0, sizeof(double) * R, s));
    for (int g = 0; g < hc->n_groups; g++)
        if (enqueue_model_group(hc, &hc->groups[g], s, err)) return -1;
    for (int t = 0; t < hc->h->n_terms; t++) {
        const potential_term *p = &hc->h->terms[t];
        if (p->kind == TERM_HARMONIC)
            harmonic_term<<<R, REDUCE_THREADS, 0, s>>>(n, hc->d_offset, hc->d_x, hc->reference[t],
                                                       p->k, p->c0, p->c1, hc->d_f0, hc->d_f1,
                                                       hc->d_u0, hc->d_du);
        else if (p->kind == TERM_FLAT_BOTTOM)
            flat_bottom_term<<<R, REDUCE_THREADS, 0, s>>>(n, hc->d_offset, hc->d_x, hc->centers[t],
                                                          p->k, p->radius, p->c0, p->c1, hc->d_f0,
                                                          hc->d_f1, hc->d_u0, hc->d_du);
        CUDA_TRY(cudaGetLastError());
    }
    return hamiltonian_cuda_enqueue_combine(hc, s, err);
}

int hamiltonian_cuda_check(hamiltonian_cuda *hc, cudaStream_t s, dm_error *err)
{
    for (int g = 0; g < hc->n_groups; g++)
        if (painn_cuda_check(hc->groups[g].ctx, NULL, s, err)) return -1;
    return 0;
}
