/* dynamics_cuda.cu — the CUDA platform's dynamics: every replica's positions,
 * velocities, forces, energies and random numbers live on the GPU; a step is
 * a few kernels around the batched model evaluation, captured once as a CUDA
 * graph and replayed. The host sees the state only through get_state.
 *
 * Layouts as in painn_cuda.h: float planes x[a], y[n+a], z[2n+a] for
 * positions, velocities and forces; energies in double per replica.
 * The arithmetic is that of src/integrators/ (the reference), in float32
 * with float64 reductions; Langevin noise comes from cuRAND's Philox4x32-10
 * with the same (seed, replica, atom, step) counter as src/core/philox.h. */
#include "hamiltonian_cuda.cuh"
#include "painn_cuda.h"
#include "block_reduce.cuh"
#include "cuda_try.cuh"

extern "C" {
#include "../core/philox.h"
#include "../engine/dynamics.h"
#include "../integrators/units.h"
}

#include <cuda_runtime.h>
#include <curand_kernel.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum step_kind { STEP_NONE, STEP_VERLET, STEP_LANGEVIN } step_kind;

typedef struct cuda_dynamics {
    hamiltonian_cuda *ham;  /* forces and energies; owns d_x, d_f, d_epot */
    int n_atoms, n_replicas;
    int *d_offset, *d_replica_of_atom;
    float *d_x, *d_v, *d_f;
    double *d_epot;
    float *d_inv_mass, *d_mass;
    double *d_T, *d_ekin;
    unsigned long long *d_step;
    double *d_fire_real;    /* dt, alpha per replica */
    int *d_fire_int;        /* n_positive, converged per replica */
    cudaStream_t stream;
    /* the captured step and the parameters it was captured with */
    cudaGraphExec_t step_graph;
    step_kind graph_kind;
    double graph_dt, graph_friction;
    uint64_t graph_seed;
    float *h_planes;        /* host staging, 3n floats */
    /* replica exchange (exchange.h), all on the device */
    const exchange_layout *layout;
    int *d_first, *d_size, *d_group_of;
    double *d_ladder, *d_state_lambda, *d_vscale; /* d_state_lambda: NULL without λ states */
    int *d_state_of_replica, *d_replica_of_state, *d_last_end;
    long long *d_attempts, *d_accepts, *d_round_trips, *d_occupancy;
    int max_size;
} cuda_dynamics;

/* ---- kernels: each one line of the algorithm ---- */

/* B then A: v += (dt/2) F/m;  x += h v */
__global__ void kick_drift(int n, float *x, float *v, const float *f, const float *inv_m,
                           float half_dt_acc, float h)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= n) return;
    for (int c = 0; c < 3; c++) {
        float vc = v[c * n + a] + half_dt_acc * inv_m[a] * f[c * n + a];
        v[c * n + a] = vc;
        x[c * n + a] += h * vc;
    }
}

/* B: v += (dt/2) F/m; the step is done: step += 1 */
__global__ void kick(int n, float *v, const float *f, const float *inv_m, float half_dt_acc,
                     unsigned long long *step)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a == 0) *step += 1;
    if (a >= n) return;
    for (int c = 0; c < 3; c++) v[c * n + a] += half_dt_acc * inv_m[a] * f[c * n + a];
}

/* B A O A of BAOAB; the force call and the last B follow. */
__global__ void kick_drift_thermostat_drift(int n, float *x, float *v, const float *f,
                                            const float *inv_m, const int *replica_of_atom,
                                            const int *offset, const double *T,
                                            const unsigned long long *step, uint64_t seed,
                                            float half_dt_acc, float half_dt, double c1, double c2)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= n) return;
    int r = replica_of_atom[a];
    double sigma = sqrt(BOLTZMANN_EV_PER_K * T[r] * inv_m[a] / AMU_A2_PER_FS2_IN_EV);
    unsigned long long s = *step;
    uint4 ctr = make_uint4((unsigned)(a - offset[r]), (unsigned)r, (unsigned)s,
                           (unsigned)(s >> 32) ^ ((unsigned)PHILOX_STREAM_LANGEVIN << 28));
    uint4 bits = curand_Philox4x32_10(ctr, make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
    unsigned u[4] = {bits.x, bits.y, bits.z, bits.w};
    double xi[4];
    for (int p = 0; p < 2; p++) { /* Box-Muller, as philox_normal4 */
        double rad = sqrt(-2.0 * log(((double)u[2 * p] + 0.5) * (1.0 / 4294967296.0)));
        double ang = 2.0 * M_PI * (((double)u[2 * p + 1] + 0.5) * (1.0 / 4294967296.0));
        xi[2 * p] = rad * cos(ang);
        xi[2 * p + 1] = rad * sin(ang);
    }
    for (int c = 0; c < 3; c++) {
        float vc = v[c * n + a] + half_dt_acc * inv_m[a] * f[c * n + a];
        float xc = x[c * n + a] + half_dt * vc;
        vc = (float)(c1 * vc + c2 * sigma * xi[c]);
        x[c * n + a] = xc + half_dt * vc;
        v[c * n + a] = vc;
    }
}

/* One block per replica: E_kin = sum m |v|^2 / 2 in eV */
__global__ void kinetic_energy(int n, const int *offset, const float *v, const float *m,
                               double *ekin)
{
    __shared__ double shared[REDUCE_THREADS];
    int r = blockIdx.x;
    double e = 0;
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x)
        for (int c = 0; c < 3; c++) e += (double)m[a] * v[c * n + a] * v[c * n + a];
    double total = block_sum(e, shared);
    if (threadIdx.x == 0) ekin[r] = 0.5 * total * AMU_A2_PER_FS2_IN_EV;
}

/* One block per replica: v -= P / M */
__global__ void remove_com_velocity(int n, const int *offset, float *v, const float *m)
{
    __shared__ double shared[REDUCE_THREADS];
    int r = blockIdx.x;
    double mass = 0, p[3] = {0, 0, 0};
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x) {
        mass += m[a];
        for (int c = 0; c < 3; c++) p[c] += (double)m[a] * v[c * n + a];
    }
    double M = block_sum(mass, shared), P[3];
    for (int c = 0; c < 3; c++) P[c] = block_sum(p[c], shared);
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x)
        for (int c = 0; c < 3; c++) v[c * n + a] -= (float)(P[c] / M);
}

/* One thread per exchange group: the attempts of engine/exchange.h, in the
 * order of src/integrators/replica_exchange.c; vscale gets each replica's
 * velocity factor (1 when it kept its state). -Δ as exchange_log_acceptance:
 *   (β_s - β_t)(U_0,i - U_0,j) + (β_s λ_s - β_t λ_t)(ΔU_i - ΔU_j)   with λ states,
 *   (β_s - β_t)(U_i - U_j), U_r = U_0,r + λ_r ΔU_r                without. */
__global__ void exchange_attempts(int n_groups, const int *first, const int *size,
                                  const double *ladder, const double *state_lambda,
                                  const double *u0, const double *du, const double *lambda,
                                  unsigned long long attempt, uint64_t seed, int *state_of_replica,
                                  int *replica_of_state, long long *attempts, long long *accepts,
                                  double *vscale)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n_groups) return;
    for (int s = first[g]; s < first[g] + size[g]; s++) vscale[replica_of_state[s]] = 1.0;
    for (int s = first[g] + (int)(attempt % 2); s + 1 < first[g] + size[g]; s += 2) {
        int i = replica_of_state[s], j = replica_of_state[s + 1];
        double beta_s = 1.0 / (BOLTZMANN_EV_PER_K * ladder[s]);
        double beta_t = 1.0 / (BOLTZMANN_EV_PER_K * ladder[s + 1]);
        double log_p = state_lambda
            ? (beta_s - beta_t) * (u0[i] - u0[j]) +
                  (beta_s * state_lambda[s] - beta_t * state_lambda[s + 1]) * (du[i] - du[j])
            : (beta_s - beta_t) * ((u0[i] + lambda[i] * du[i]) - (u0[j] + lambda[j] * du[j]));
        attempts[s]++;
        if (log_p < 0) {
            uint4 ctr = make_uint4((unsigned)s, 0u, (unsigned)attempt,
                                   (unsigned)(attempt >> 32) ^ ((unsigned)PHILOX_STREAM_EXCHANGE << 28));
            uint4 bits = curand_Philox4x32_10(ctr, make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
            double u = ((double)bits.x + 0.5) * (1.0 / 4294967296.0);
            if (u >= exp(log_p)) continue;
        }
        accepts[s]++;
        replica_of_state[s] = j;
        replica_of_state[s + 1] = i;
        state_of_replica[i] = s + 1;
        state_of_replica[j] = s;
        vscale[i] = sqrt(ladder[s + 1] / ladder[s]);
        vscale[j] = sqrt(ladder[s] / ladder[s + 1]);
    }
}

/* One thread per replica: thermostat temperature and λ from the state, round trips
 * and time per rung (src/integrators/replica_exchange.c, record_visits). */
__global__ void exchange_visits(int R, const int *first, const int *size, const int *group_of,
                                const double *ladder, const double *state_lambda,
                                const int *state_of_replica, int max_size, double *T, double *lambda,
                                int *last_end, long long *round_trips, long long *occupancy)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= R || group_of[r] < 0) return;
    int g = group_of[r], k = state_of_replica[r] - first[g];
    T[r] = ladder[state_of_replica[r]];
    if (state_lambda) lambda[r] = state_lambda[state_of_replica[r]];
    occupancy[(size_t)r * max_size + k]++;
    if (k == 0) {
        if (last_end[r] == +1) round_trips[r]++;
        last_end[r] = -1;
    } else if (k == size[g] - 1 && last_end[r] == -1) {
        last_end[r] = +1;
    }
}

/* v of every atom scaled by its replica's factor */
__global__ void scale_velocities(int n, const int *replica_of_atom, const double *vscale, float *v)
{
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= n) return;
    float f = (float)vscale[replica_of_atom[a]];
    for (int c = 0; c < 3; c++) v[c * n + a] *= f;
}

/* One block per replica: one FIRE iteration (src/integrators/fire.c). */
__global__ void fire_iteration(int n, const int *offset, float *x, float *v, const float *f,
                               fire_params p, double *fire_real, int *fire_int)
{
    __shared__ double shared[REDUCE_THREADS];
    __shared__ double s_dt, s_alpha;
    __shared__ int s_stop, s_zero;
    int r = blockIdx.x;
    double fmax_local = 0, P = 0, vv = 0, ff = 0;
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x)
        for (int c = 0; c < 3; c++) {
            double fc = f[c * n + a], vc = v[c * n + a];
            fmax_local = fmax(fmax_local, fabs(fc));
            P += fc * vc;
            vv += vc * vc;
            ff += fc * fc;
        }
    double fmax_all = block_max(fmax_local, shared);
    P = block_sum(P, shared);
    vv = block_sum(vv, shared);
    ff = block_sum(ff, shared);
    if (threadIdx.x == 0) {
        double *dt = &fire_real[2 * r], *alpha = &fire_real[2 * r + 1];
        int *npos = &fire_int[2 * r], *conv = &fire_int[2 * r + 1];
        s_stop = *conv || fmax_all < p.force_tolerance;
        if (s_stop) *conv = 1;
        s_zero = !(P > 0);
        s_alpha = *alpha; /* the mixing uses alpha before its update */
        if (!s_stop) {
            if (P > 0) {
                if (++*npos > p.n_min) {
                    *dt = fmin(*dt * p.f_inc, p.dt_max);
                    *alpha *= p.f_alpha;
                }
            } else {
                *dt *= p.f_dec;
                *alpha = p.alpha_start;
                *npos = 0;
            }
        }
        s_dt = *dt;
    }
    __syncthreads();
    double scale = s_zero || ff == 0 ? 0.0 : s_alpha * sqrt(vv / ff);
    for (int a = offset[r] + threadIdx.x; a < offset[r + 1]; a += blockDim.x) {
        double dx[3], len2 = 0;
        for (int c = 0; c < 3; c++) {
            double vc = s_stop || s_zero ? 0.0 : (1 - s_alpha) * v[c * n + a] + scale * f[c * n + a];
            if (!s_stop) vc += s_dt * EV_PER_A_AMU_IN_A_PER_FS2 * f[c * n + a];
            v[c * n + a] = (float)vc;
            dx[c] = s_stop ? 0.0 : s_dt * vc;
            len2 += dx[c] * dx[c];
        }
        double cap = len2 > p.max_step * p.max_step ? p.max_step / sqrt(len2) : 1.0;
        for (int c = 0; c < 3; c++) x[c * n + a] += (float)(cap * dx[c]);
    }
}

/* ---- host side ---- */

static int atom_blocks(int n) { return (n + 127) / 128; }

/* F and U at the current positions and λ (hamiltonian_cuda.cuh). */
static int enqueue_forces(cuda_dynamics *d, dm_error *err)
{
    return hamiltonian_cuda_enqueue(d->ham, d->stream, err);
}

static int enqueue_step(cuda_dynamics *d, step_kind kind, double dt, double friction,
                        uint64_t seed, dm_error *err)
{
    int n = d->n_atoms;
    float hacc = (float)(0.5 * dt * EV_PER_A_AMU_IN_A_PER_FS2);
    if (kind == STEP_VERLET) {
        kick_drift<<<atom_blocks(n), 128, 0, d->stream>>>(n, d->d_x, d->d_v, d->d_f, d->d_inv_mass,
                                                           hacc, (float)dt);
    } else {
        double c1 = exp(-friction * 1e-3 * dt), c2 = sqrt(1.0 - c1 * c1);
        kick_drift_thermostat_drift<<<atom_blocks(n), 128, 0, d->stream>>>(
            n, d->d_x, d->d_v, d->d_f, d->d_inv_mass, d->d_replica_of_atom, d->d_offset, d->d_T,
            d->d_step, seed, hacc, (float)(0.5 * dt), c1, c2);
    }
    CUDA_TRY(cudaGetLastError());
    if (enqueue_forces(d, err)) return -1;
    kick<<<atom_blocks(n), 128, 0, d->stream>>>(n, d->d_v, d->d_f, d->d_inv_mass, hacc, d->d_step);
    CUDA_TRY(cudaGetLastError());
    return 0;
}

/* Captures one step as a CUDA graph (again only when its parameters change). */
static int step_graph(cuda_dynamics *d, step_kind kind, double dt, double friction, uint64_t seed,
                      dm_error *err)
{
    if (d->graph_kind == kind && d->graph_dt == dt && d->graph_friction == friction &&
        d->graph_seed == seed)
        return 0;
    if (d->step_graph) CUDA_TRY(cudaGraphExecDestroy(d->step_graph));
    d->step_graph = NULL;
    d->graph_kind = STEP_NONE;
    cudaGraph_t g;
    CUDA_TRY(cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal));
    int rc = enqueue_step(d, kind, dt, friction, seed, err);
    cudaError_t e = cudaStreamEndCapture(d->stream, &g);
    if (rc) {
        if (e == cudaSuccess) cudaGraphDestroy(g);
        return -1;
    }
    if (e != cudaSuccess) return dm_fail(err, "CUDA graph capture of an MD step failed: %s", cudaGetErrorString(e));
    e = cudaGraphInstantiate(&d->step_graph, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) return dm_fail(err, "CUDA graph instantiation failed: %s", cudaGetErrorString(e));
    d->graph_kind = kind;
    d->graph_dt = dt;
    d->graph_friction = friction;
    d->graph_seed = seed;
    return 0;
}

static int run_steps(cuda_dynamics *d, step_kind kind, long n_steps, double dt, double friction,
                     uint64_t seed, dm_error *err)
{
    if (step_graph(d, kind, dt, friction, seed, err)) return -1;
    for (long s = 0; s < n_steps; s++) CUDA_TRY(cudaGraphLaunch(d->step_graph, d->stream));
    return 0;
}

static void cu_destroy(void *impl)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    if (!d) return;
    if (d->step_graph) cudaGraphExecDestroy(d->step_graph);
    hamiltonian_cuda_destroy(d->ham);
    void *owned[] = {d->d_offset, d->d_replica_of_atom, d->d_v, d->d_inv_mass, d->d_mass,
                     d->d_T, d->d_ekin, d->d_step, d->d_fire_real, d->d_fire_int, d->d_first,
                     d->d_size, d->d_group_of, d->d_ladder, d->d_state_lambda, d->d_vscale,
                     d->d_state_of_replica,
                     d->d_replica_of_state, d->d_last_end, d->d_attempts, d->d_accepts,
                     d->d_round_trips, d->d_occupancy};
    for (size_t k = 0; k < sizeof owned / sizeof *owned; k++) cudaFree(owned[k]);
    if (d->stream) cudaStreamDestroy(d->stream);
    free(d->h_planes);
    free(d);
}

/* AoS float64 (x y z per atom) -> float planes on the device */
static int upload_planes(cuda_dynamics *d, const double *aos, float *dst, dm_error *err)
{
    int n = d->n_atoms;
    for (int a = 0; a < n; a++)
        for (int c = 0; c < 3; c++) d->h_planes[c * n + a] = (float)aos[3 * a + c];
    CUDA_TRY(cudaMemcpyAsync(dst, d->h_planes, sizeof(float) * 3 * n, cudaMemcpyHostToDevice, d->stream));
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    return 0;
}

static int download_planes(cuda_dynamics *d, const float *src, double *aos, dm_error *err)
{
    int n = d->n_atoms;
    CUDA_TRY(cudaMemcpyAsync(d->h_planes, src, sizeof(float) * 3 * n, cudaMemcpyDeviceToHost, d->stream));
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    for (int a = 0; a < n; a++)
        for (int c = 0; c < 3; c++) aos[3 * a + c] = d->h_planes[c * n + a];
    return 0;
}

static int alloc_state(cuda_dynamics *d, const molecule_batch *b, const double *masses, dm_error *err)
{
    int n = b->n_atoms, R = b->n_molecules;
    size_t fb = sizeof(float) * 3 * n;
    CUDA_TRY(cudaMalloc(&d->d_offset, sizeof(int) * (R + 1)));
    CUDA_TRY(cudaMalloc(&d->d_replica_of_atom, sizeof(int) * n));
    CUDA_TRY(cudaMalloc(&d->d_v, fb));
    CUDA_TRY(cudaMalloc(&d->d_inv_mass, sizeof(float) * n));
    CUDA_TRY(cudaMalloc(&d->d_mass, sizeof(float) * n));
    CUDA_TRY(cudaMalloc(&d->d_T, sizeof(double) * R));
    CUDA_TRY(cudaMalloc(&d->d_ekin, sizeof(double) * R));
    CUDA_TRY(cudaMalloc(&d->d_step, sizeof(unsigned long long)));
    CUDA_TRY(cudaMalloc(&d->d_fire_real, sizeof(double) * 2 * R));
    CUDA_TRY(cudaMalloc(&d->d_fire_int, sizeof(int) * 2 * R));
    CUDA_TRY(cudaMemsetAsync(d->d_v, 0, fb, d->stream));
    int *replica_of_atom = (int *)malloc(sizeof(int) * n);
    float *m = (float *)malloc(sizeof(float) * n), *im = (float *)malloc(sizeof(float) * n);
    if (!replica_of_atom || !m || !im) {
        free(replica_of_atom);
        free(m);
        free(im);
        return dm_fail(err, "out of memory");
    }
    for (int r = 0; r < R; r++)
        for (int a = b->offset[r]; a < b->offset[r + 1]; a++) replica_of_atom[a] = r;
    for (int a = 0; a < n; a++) {
        m[a] = (float)masses[a];
        im[a] = (float)(1.0 / masses[a]);
    }
    cudaError_t e = cudaMemcpy(d->d_offset, b->offset, sizeof(int) * (R + 1), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(d->d_replica_of_atom, replica_of_atom, sizeof(int) * n, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(d->d_mass, m, sizeof(float) * n, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(d->d_inv_mass, im, sizeof(float) * n, cudaMemcpyHostToDevice);
    free(replica_of_atom);
    free(m);
    free(im);
    if (e != cudaSuccess) return dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
    return 0;
}

static int cu_create(void **impl, const hamiltonian *h, const molecule_batch *b, const double *masses,
                     dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)calloc(1, sizeof *d);
    if (!d) return dm_fail(err, "out of memory");
    d->n_atoms = b->n_atoms;
    d->n_replicas = b->n_molecules;
    d->h_planes = (float *)malloc(sizeof(float) * (3 * (size_t)b->n_atoms + 1));
    int rc = d->h_planes ? 0 : dm_fail(err, "out of memory");
    if (rc == 0 && cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking) != cudaSuccess)
        rc = dm_fail(err, "cannot create a CUDA stream");
    if (rc == 0) rc = hamiltonian_cuda_create(&d->ham, h, b, err);
    if (rc == 0) {
        d->d_x = hamiltonian_cuda_positions(d->ham);
        d->d_f = hamiltonian_cuda_forces(d->ham);
        d->d_epot = hamiltonian_cuda_energies(d->ham);
    }
    if (rc == 0) rc = alloc_state(d, b, masses, err);
    if (rc) {
        cu_destroy(d);
        return -1;
    }
    *impl = d;
    return 0;
}

static int cu_set_positions(void *impl, const double *x, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    return upload_planes(d, x, d->d_x, err);
}

static int cu_set_velocities(void *impl, const double *v, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    return upload_planes(d, v, d->d_v, err);
}

static int cu_set_temperatures(void *impl, const double *T, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    CUDA_TRY(cudaMemcpy(d->d_T, T, sizeof(double) * d->n_replicas, cudaMemcpyHostToDevice));
    return 0;
}

static int cu_set_lambdas(void *impl, const double *lambdas, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    CUDA_TRY(cudaMemcpy(hamiltonian_cuda_lambdas(d->ham), lambdas, sizeof(double) * d->n_replicas,
                        cudaMemcpyHostToDevice));
    if (hamiltonian_cuda_enqueue_combine(d->ham, d->stream, err)) return -1;
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    return 0;
}

static int cu_get_lambdas(void *impl, double *lambdas, double *u0, double *du, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    size_t bytes = sizeof(double) * d->n_replicas;
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    if (lambdas) CUDA_TRY(cudaMemcpy(lambdas, hamiltonian_cuda_lambdas(d->ham), bytes, cudaMemcpyDeviceToHost));
    if (u0) CUDA_TRY(cudaMemcpy(u0, hamiltonian_cuda_u0(d->ham), bytes, cudaMemcpyDeviceToHost));
    if (du) CUDA_TRY(cudaMemcpy(du, hamiltonian_cuda_du(d->ham), bytes, cudaMemcpyDeviceToHost));
    return 0;
}

static int cu_compute_forces(void *impl, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    if (enqueue_forces(d, err)) return -1;
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    return hamiltonian_cuda_check(d->ham, d->stream, err);
}

static int cu_verlet(void *impl, long n_steps, double dt, dm_error *err)
{
    return run_steps((cuda_dynamics *)impl, STEP_VERLET, n_steps, dt, 0, 0, err);
}

static int cu_langevin(void *impl, uint64_t first_step, long n_steps, double dt, double friction,
                       uint64_t seed, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    unsigned long long s = first_step;
    CUDA_TRY(cudaMemcpyAsync(d->d_step, &s, sizeof s, cudaMemcpyHostToDevice, d->stream));
    CUDA_TRY(cudaStreamSynchronize(d->stream)); /* s lives on this frame */
    return run_steps(d, STEP_LANGEVIN, n_steps, dt, friction, seed, err);
}

/* ---- replica exchange ---- */

static int exchange_alloc(cuda_dynamics *d, const exchange_layout *l, int max_size, dm_error *err)
{
    int R = l->n_replicas, G = l->n_groups;
    CUDA_TRY(cudaMalloc(&d->d_first, sizeof(int) * (G + 1)));
    CUDA_TRY(cudaMalloc(&d->d_size, sizeof(int) * (G + 1)));
    CUDA_TRY(cudaMalloc(&d->d_group_of, sizeof(int) * R));
    CUDA_TRY(cudaMalloc(&d->d_ladder, sizeof(double) * R));
    CUDA_TRY(cudaMalloc(&d->d_vscale, sizeof(double) * R));
    CUDA_TRY(cudaMalloc(&d->d_state_of_replica, sizeof(int) * R));
    CUDA_TRY(cudaMalloc(&d->d_replica_of_state, sizeof(int) * R));
    CUDA_TRY(cudaMalloc(&d->d_last_end, sizeof(int) * R));
    CUDA_TRY(cudaMalloc(&d->d_attempts, sizeof(long long) * R));
    CUDA_TRY(cudaMalloc(&d->d_accepts, sizeof(long long) * R));
    CUDA_TRY(cudaMalloc(&d->d_round_trips, sizeof(long long) * R));
    CUDA_TRY(cudaMalloc(&d->d_occupancy, sizeof(long long) * R * max_size));
    CUDA_TRY(cudaMemcpy(d->d_first, l->first, sizeof(int) * G, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_size, l->size, sizeof(int) * G, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_group_of, l->group_of, sizeof(int) * R, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_ladder, l->ladder, sizeof(double) * R, cudaMemcpyHostToDevice));
    if (l->lambda) {
        CUDA_TRY(cudaMalloc(&d->d_state_lambda, sizeof(double) * R));
        CUDA_TRY(cudaMemcpy(d->d_state_lambda, l->lambda, sizeof(double) * R, cudaMemcpyHostToDevice));
    }
    /* factor 1 for every replica; the exchange kernel rewrites only its groups' */
    double *ones = (double *)malloc(sizeof(double) * R);
    if (!ones) return dm_fail(err, "out of memory");
    for (int r = 0; r < R; r++) ones[r] = 1.0;
    cudaError_t e = cudaMemcpy(d->d_vscale, ones, sizeof(double) * R, cudaMemcpyHostToDevice);
    free(ones);
    if (e != cudaSuccess) return dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
    return 0;
}

/* int64 host array <-> int device array */
static int upload_ints(int *dst, const int64_t *src, int n, dm_error *err)
{
    int *tmp = (int *)malloc(sizeof(int) * (n + 1));
    if (!tmp) return dm_fail(err, "out of memory");
    for (int k = 0; k < n; k++) tmp[k] = (int)src[k];
    cudaError_t e = cudaMemcpy(dst, tmp, sizeof(int) * n, cudaMemcpyHostToDevice);
    free(tmp);
    return e == cudaSuccess ? 0 : dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
}

static int download_ints(int64_t *dst, const int *src, int n, dm_error *err)
{
    int *tmp = (int *)malloc(sizeof(int) * (n + 1));
    if (!tmp) return dm_fail(err, "out of memory");
    cudaError_t e = cudaMemcpy(tmp, src, sizeof(int) * n, cudaMemcpyDeviceToHost);
    for (int k = 0; e == cudaSuccess && k < n; k++) dst[k] = tmp[k];
    free(tmp);
    return e == cudaSuccess ? 0 : dm_fail(err, "CUDA download failed: %s", cudaGetErrorString(e));
}

static int cu_setup_exchange(void *impl, const exchange_layout *l, const exchange_record *start,
                             dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    int R = l->n_replicas;
    if (d->layout) return dm_fail(err, "replica exchange is already set up");
    if (exchange_alloc(d, l, start->max_size, err)) return -1;
    d->layout = l;
    d->max_size = start->max_size;
    if (upload_ints(d->d_state_of_replica, start->state_of_replica, R, err) ||
        upload_ints(d->d_replica_of_state, start->replica_of_state, R, err) ||
        upload_ints(d->d_last_end, start->last_end, R, err))
        return -1;
    CUDA_TRY(cudaMemcpy(d->d_attempts, start->attempts, sizeof(long long) * R, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_accepts, start->accepts, sizeof(long long) * R, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_round_trips, start->round_trips, sizeof(long long) * R, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(d->d_occupancy, start->occupancy, sizeof(long long) * R * start->max_size,
                        cudaMemcpyHostToDevice));
    return 0;
}

static int cu_exchange(void *impl, uint64_t attempt, uint64_t seed, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    const exchange_layout *l = d->layout;
    if (!l) return dm_fail(err, "replica exchange was not set up");
    double *lambda = hamiltonian_cuda_lambdas(d->ham);
    exchange_attempts<<<(l->n_groups + 63) / 64, 64, 0, d->stream>>>(
        l->n_groups, d->d_first, d->d_size, d->d_ladder, d->d_state_lambda,
        hamiltonian_cuda_u0(d->ham), hamiltonian_cuda_du(d->ham), lambda, attempt, seed,
        d->d_state_of_replica, d->d_replica_of_state, d->d_attempts, d->d_accepts, d->d_vscale);
    exchange_visits<<<(l->n_replicas + 127) / 128, 128, 0, d->stream>>>(
        l->n_replicas, d->d_first, d->d_size, d->d_group_of, d->d_ladder, d->d_state_lambda,
        d->d_state_of_replica, d->max_size, d->d_T, lambda, d->d_last_end, d->d_round_trips,
        d->d_occupancy);
    scale_velocities<<<atom_blocks(d->n_atoms), 128, 0, d->stream>>>(d->n_atoms, d->d_replica_of_atom,
                                                                     d->d_vscale, d->d_v);
    CUDA_TRY(cudaGetLastError());
    /* energies and forces follow the new λ */
    if (hamiltonian_cuda_enqueue_combine(d->ham, d->stream, err)) return -1;
    CUDA_TRY(cudaGetLastError());
    return 0;
}

static int cu_get_exchange(void *impl, exchange_record *x, double *temperatures, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    const exchange_layout *l = d->layout;
    if (!l) return dm_fail(err, "replica exchange was not set up");
    int R = l->n_replicas;
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    if (download_ints(x->state_of_replica, d->d_state_of_replica, R, err) ||
        download_ints(x->replica_of_state, d->d_replica_of_state, R, err) ||
        download_ints(x->last_end, d->d_last_end, R, err))
        return -1;
    CUDA_TRY(cudaMemcpy(x->attempts, d->d_attempts, sizeof(long long) * R, cudaMemcpyDeviceToHost));
    CUDA_TRY(cudaMemcpy(x->accepts, d->d_accepts, sizeof(long long) * R, cudaMemcpyDeviceToHost));
    CUDA_TRY(cudaMemcpy(x->round_trips, d->d_round_trips, sizeof(long long) * R, cudaMemcpyDeviceToHost));
    CUDA_TRY(cudaMemcpy(x->occupancy, d->d_occupancy, sizeof(long long) * R * d->max_size,
                        cudaMemcpyDeviceToHost));
    if (temperatures)
        CUDA_TRY(cudaMemcpy(temperatures, d->d_T, sizeof(double) * R, cudaMemcpyDeviceToHost));
    return 0;
}

static int cu_fire(void *impl, long n_steps, const fire_params *p, fire_state *state, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    int R = d->n_replicas;
    double *real = (double *)malloc(sizeof(double) * 2 * R);
    int *ints = (int *)malloc(sizeof(int) * 2 * R);
    if (!real || !ints) {
        free(real);
        free(ints);
        return dm_fail(err, "out of memory");
    }
    for (int r = 0; r < R; r++) {
        real[2 * r] = state[r].dt;
        real[2 * r + 1] = state[r].alpha;
        ints[2 * r] = state[r].n_positive;
        ints[2 * r + 1] = state[r].converged;
    }
    int rc = 0;
    cudaError_t e = cudaMemcpy(d->d_fire_real, real, sizeof(double) * 2 * R, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(d->d_fire_int, ints, sizeof(int) * 2 * R, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) rc = dm_fail(err, "CUDA upload failed: %s", cudaGetErrorString(e));
    for (long s = 0; rc == 0 && s < n_steps; s++) {
        fire_iteration<<<R, REDUCE_THREADS, 0, d->stream>>>(d->n_atoms, d->d_offset, d->d_x, d->d_v,
                                                            d->d_f, *p, d->d_fire_real, d->d_fire_int);
        rc = enqueue_forces(d, err);
    }
    if (rc == 0) {
        e = cudaStreamSynchronize(d->stream);
        if (e == cudaSuccess) e = cudaMemcpy(real, d->d_fire_real, sizeof(double) * 2 * R, cudaMemcpyDeviceToHost);
        if (e == cudaSuccess) e = cudaMemcpy(ints, d->d_fire_int, sizeof(int) * 2 * R, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) rc = dm_fail(err, "CUDA error in FIRE: %s", cudaGetErrorString(e));
    }
    for (int r = 0; rc == 0 && r < R; r++)
        state[r] = (fire_state){real[2 * r], real[2 * r + 1], ints[2 * r], ints[2 * r + 1]};
    free(real);
    free(ints);
    return rc;
}

static int cu_remove_com_motion(void *impl, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    remove_com_velocity<<<d->n_replicas, REDUCE_THREADS, 0, d->stream>>>(d->n_atoms, d->d_offset,
                                                                         d->d_v, d->d_mass);
    CUDA_TRY(cudaGetLastError());
    return 0;
}

static int cu_get_state(void *impl, double *x, double *v, double *forces, double *epot,
                        double *ekin, dm_error *err)
{
    cuda_dynamics *d = (cuda_dynamics *)impl;
    if (x && download_planes(d, d->d_x, x, err)) return -1;
    if (v && download_planes(d, d->d_v, v, err)) return -1;
    if (forces && download_planes(d, d->d_f, forces, err)) return -1;
    if (epot) {
        CUDA_TRY(cudaMemcpyAsync(epot, d->d_epot, sizeof(double) * d->n_replicas,
                                 cudaMemcpyDeviceToHost, d->stream));
    }
    if (ekin) {
        kinetic_energy<<<d->n_replicas, REDUCE_THREADS, 0, d->stream>>>(d->n_atoms, d->d_offset,
                                                                        d->d_v, d->d_mass, d->d_ekin);
        CUDA_TRY(cudaGetLastError());
        CUDA_TRY(cudaMemcpyAsync(ekin, d->d_ekin, sizeof(double) * d->n_replicas,
                                 cudaMemcpyDeviceToHost, d->stream));
    }
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    return hamiltonian_cuda_check(d->ham, d->stream, err);
}

/* in the order of dynamics_ops (engine/dynamics.h) */
static_assert(sizeof(dynamics_ops) == 17 * sizeof(void *), "dynamics_ops changed: update dynamics_cuda");
extern "C" const dynamics_ops dynamics_cuda = {
    "cuda",
    cu_create,
    cu_set_positions,
    cu_set_velocities,
    cu_set_temperatures,
    cu_set_lambdas,
    cu_compute_forces,
    cu_verlet,
    cu_langevin,
    cu_fire,
    cu_setup_exchange,
    cu_exchange,
    cu_get_exchange,
    cu_remove_com_motion,
    cu_get_state,
    cu_get_lambdas,
    cu_destroy,
};
