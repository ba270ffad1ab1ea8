/* run_hamiltonian.h — the hamiltonian of a run, from its configuration
 * (hamiltonian.h for the terms):
 *   plain run        the model (c0 = 1, c1 = 0)
 *   interpolate      end state A (1, -1), end state B (0, 1); each the model
 *                    of its file, or a harmonic restraint to the positions of
 *                    its reference structure (every replica the same)
 *   decouple         the model on all atoms (0, 1), on the solute (1, -1) and
 *                    on the rest (1, -1)
 *   + `restraint`    a flat-bottom wall (1, 0) about each replica's initial
 *                    centroid (the structure's, so a restart keeps it)
 * It owns what the terms point to (models, reference positions, selections,
 * centres): it must stay in place while the hamiltonian is used. */
#ifndef DISTILMD_RUN_HAMILTONIAN_H
#define DISTILMD_RUN_HAMILTONIAN_H

#include "hamiltonian.h"
#include "replicas.h"
#include "run_config.h"

typedef struct run_hamiltonian {
    hamiltonian h;
    painn_model models[2];     /* the run's model, or the end states' models */
    int n_models;
    double *reference[2];      /* harmonic end states: x0 of every atom of the batch */
    int *rest;                 /* decouple: the atoms outside the solute */
    int n_rest;
    double *wall_centers;      /* [3 * n_replicas]: the flat-bottom restraint's centres */
} run_hamiltonian;

int run_hamiltonian_build(const run_config *cfg, const replica_set *rs, run_hamiltonian *out,
                          dm_error *err);
void run_hamiltonian_free(run_hamiltonian *rh);

/* The centroid (1/n Σ x_i, unweighted) of each replica's atoms: [3 * n_replicas]. */
void replica_centroids(const molecule_batch *b, const double *x, double *centers);

#endif
