/* painn_cuda.h — the PaiNN student model on one CUDA GPU, batched over
 * independent molecules, with every array resident on the device.
 *
 * A context is made once for a batch topology (molecule sizes and species,
 * fixed for its lifetime) and evaluated many times at new positions. Each
 * evaluation rebuilds the neighbour lists on the GPU and computes per-molecule
 * energies and exact forces F = -dE/dx, without a host round trip and without
 * host synchronisation: painn_cuda_evaluate() only enqueues work on a stream,
 * with launch configurations fixed at creation (sized for the worst case), so
 * it can be captured in a CUDA graph, and painn_cuda_evaluate_graph() replays
 * such a graph made at creation.
 *
 * Device layouts (n = number of atoms of the batch, M = number of molecules):
 *   positions  float[3 * n], three planes: x of atom a at [a], y at [n + a],
 *              z at [2n + a] (Å).
 *   forces     float[3 * n], the same three planes (eV/Å).
 *   energies   double[M] (eV), one per molecule, summed in float64 in a fixed
 *              order.
 * Atoms are numbered as in the topology batch: molecule m owns atoms
 * [offset[m], offset[m+1]).
 *
 * Numerics: float32 storage and arithmetic (plain FFMA, no TF32), float64
 * for the readout's last dot product and the energy sums. The update GEMMs
 * of batches of a few thousand atoms and more run on the float64 tensor
 * cores (float32 operands, exact products, float64 sums rounded once to
 * float32: more accurate than FFMA); few atoms keep float32 FFMA GEMMs.
 * The pair filters phi_l(d) and dphi_l/dd come from a cubic Hermite table
 * built in float64 at creation, with its interpolation error measured and
 * kept below 2^-22 of max |phi| and max |phi'| (painn_cuda_filter_table.cu;
 * painn_cuda_get_info reports it).
 * Every sum has a fixed order (neighbour lists sorted by sender, no atomics),
 * so equal positions give bit-identical energies and forces, run after run.
 *
 * Neighbour capacity: a molecule of n_m atoms gets room for
 * n_m * min(n_m - 1, max_neighbors) directed edges. If an evaluation finds
 * more pairs within the cutoff, it computes with no edges at all and raises
 * an overflow flag on the device; painn_cuda_download() and
 * painn_cuda_check() report it as an error naming the count needed.
 *
 * Launch configurations are chosen at creation from the capacities (GEMM
 * tile shapes, message kernel layouts, readout tiles, the neighbour-list kernels; programmatic
 * dependent launch up to 64 atoms, and for the force kernels at every size); the results do
 * not depend on them. For tests and
 * benchmarks the environment can force the GEMM tiles and the dependent
 * launch: PAINN_CUDA_TILES=big|mid|small|tiny, PAINN_CUDA_PDL=0|1.
 * Measurements: docs/performance.md. */
#ifndef DISTILMD_PAINN_CUDA_H
#define DISTILMD_PAINN_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* the project's C headers, and this API, have C linkage */
#endif

#include "../core/error.h"
#include "../core/molecules.h"
#include "../model/painn_model.h"

typedef struct painn_cuda painn_cuda;

typedef struct painn_cuda_options {
    int max_neighbors; /* per atom; 0 means the default (128) */
    int device;        /* CUDA device ordinal; default 0 */
} painn_cuda_options;

/* What the last evaluation found, read back from the device. */
typedef struct painn_cuda_counts {
    int n_edges;      /* directed edges i -> j with d_ij <= rc */
    int n_pairs;      /* unordered pairs = n_edges / 2 */
    int needed_edges; /* edges found, also when over capacity */
    int overflow;     /* 1 when needed_edges > edge capacity */
} painn_cuda_counts;

/* Sizes fixed at creation. */
typedef struct painn_cuda_info {
    int n_atoms, n_molecules;
    int H, L, K;
    long edge_capacity, pair_capacity;
    size_t device_bytes; /* device memory the context holds */
    char device_name[256];
    int sm_count;
    int clock_khz; /* SM clock (for the fp32 peak estimate) */
    int filter_table_n;           /* intervals of the filter table over [0, rc] */
    double filter_table_error[2]; /* its max error in phi, dphi/dd (relative to max |.|) */
    int pair_messages; /* 1: the message step runs pair by pair, the filters evaluated
                          inside (many small molecules); 0: per atom, from per-pair
                          filter arrays */
} painn_cuda_info;

/* 1 when a CUDA device can be used; else 0 and the reason in why. */
int painn_cuda_device_available(char *why, size_t why_len);

/* Uploads the weights (float32) and allocates every device array for the
 * topology (its positions are ignored). opt may be NULL. */
int painn_cuda_create(painn_cuda **ctx, const painn_model *m, const molecule_batch *topology,
                      const painn_cuda_options *opt, dm_error *err);
void painn_cuda_destroy(painn_cuda *ctx);

/* Enqueues one evaluation (neighbour lists, forward, backward) on stream:
 * reads painn_cuda_positions(), writes energies and forces. No host
 * synchronisation, no allocation: safe to capture in a CUDA graph. */
int painn_cuda_evaluate(painn_cuda *ctx, cudaStream_t stream, dm_error *err);
/* The same, as one launch of a CUDA graph captured at creation. */
int painn_cuda_evaluate_graph(painn_cuda *ctx, cudaStream_t stream, dm_error *err);

/* Device arrays (layouts above). */
float *painn_cuda_positions(painn_cuda *ctx);
float *painn_cuda_forces(painn_cuda *ctx);
double *painn_cuda_energies(painn_cuda *ctx);
/* Device-side counts of the last evaluation (a painn_cuda_counts). */
const painn_cuda_counts *painn_cuda_device_counts(painn_cuda *ctx);
void painn_cuda_get_info(const painn_cuda *ctx, painn_cuda_info *info);

/* Host helpers. Host arrays are float64, interleaved x y z per atom.
 * Each returns when its copies are complete (it synchronises the stream). */
int painn_cuda_upload_positions(painn_cuda *ctx, const double *positions, cudaStream_t stream,
                                dm_error *err);
/* energies[M] and forces[3n] (either may be NULL); fails on neighbour
 * overflow in the evaluation that produced them. */
int painn_cuda_download(painn_cuda *ctx, double *energies, double *forces, cudaStream_t stream,
                        dm_error *err);
/* Reads the counts of the last evaluation; fails on overflow. */
int painn_cuda_check(painn_cuda *ctx, painn_cuda_counts *counts, cudaStream_t stream,
                     dm_error *err);

/* Diagnostics: times each stage of one evaluation with CUDA events (plain
 * launches, not the graph), taking the median over reps. names[i] and
 * ms[i] for i < *n_stages (at most max_stages). */
int painn_cuda_stage_times(painn_cuda *ctx, cudaStream_t stream, int reps, int max_stages,
                           const char **names, double *ms, int *n_stages, dm_error *err);

#ifdef __cplusplus
}
#endif

#endif
