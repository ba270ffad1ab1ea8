/* hamiltonian_cuda.cuh — the terms of engine/hamiltonian.h on the GPU:
 *   U_λ = U_0 + λ ΔU,  F_λ = F_0 + λ F_1,  λ per replica.
 * The model terms of one model are one batched painn_cuda evaluation (for
 * decouple: the whole cluster, the solute and the rest of every replica as
 * three molecules each); positions are gathered into it and its forces
 * scattered back term by term (each atom once per kernel: deterministic).
 * A plain run (one model term, weight 1, all atoms) evaluates in place with
 * no gather, scatter or combination: the same kernels as painn_cuda alone.
 * Every enqueue only adds work to the stream (capturable in a CUDA graph).
 * Device layouts as in painn_cuda.h: float planes x[a], y[n+a], z[2n+a]. */
#ifndef DISTILMD_HAMILTONIAN_CUDA_CUH
#define DISTILMD_HAMILTONIAN_CUDA_CUH

#include "painn_cuda.h"

extern "C" {
#include "../engine/hamiltonian.h"
}

typedef struct hamiltonian_cuda hamiltonian_cuda;

int hamiltonian_cuda_create(hamiltonian_cuda **out, const hamiltonian *h, const molecule_batch *b,
                            dm_error *err);
void hamiltonian_cuda_destroy(hamiltonian_cuda *hc);

/* Device arrays: positions (read by every evaluation), F_λ, U_λ per replica,
 * U_0 and ΔU per replica, λ per replica (0 at creation). */
float *hamiltonian_cuda_positions(hamiltonian_cuda *hc);
float *hamiltonian_cuda_forces(hamiltonian_cuda *hc);
double *hamiltonian_cuda_energies(hamiltonian_cuda *hc);
const double *hamiltonian_cuda_u0(hamiltonian_cuda *hc);
const double *hamiltonian_cuda_du(hamiltonian_cuda *hc);
double *hamiltonian_cuda_lambdas(hamiltonian_cuda *hc);

/* Forces and energies at the current positions and λ. */
int hamiltonian_cuda_enqueue(hamiltonian_cuda *hc, cudaStream_t stream, dm_error *err);
/* F_λ and U_λ again from the parts of the last evaluation (after λ changed). */
int hamiltonian_cuda_enqueue_combine(hamiltonian_cuda *hc, cudaStream_t stream, dm_error *err);
/* Fails when a model evaluation overflowed its neighbour lists (synchronises). */
int hamiltonian_cuda_check(hamiltonian_cuda *hc, cudaStream_t stream, dm_error *err);

#endif
