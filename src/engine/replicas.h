/* replicas.h — the replicas of a run, built from its systems: replica r is a
 * copy of one molecular system with its own coordinates, velocities and
 * thermodynamic state. All replicas' atoms are concatenated (replica r owns
 * atoms [topology.offset[r], topology.offset[r+1])). */
#ifndef DISTILMD_REPLICAS_H
#define DISTILMD_REPLICAS_H

#include "../core/molecules.h"
#include "exchange.h"
#include "run_config.h"

/* What distinguishes the replicas' ensembles. */
typedef struct thermo_state {
    double temperature; /* K */
    double lambda;      /* λ of the Hamiltonian U_0 + λ ΔU (0 outside a sweep) */
} thermo_state;

typedef struct replica_set {
    int n_replicas;
    molecule_batch topology;   /* species, offsets and initial positions */
    double *masses;            /* [n_atoms] amu */
    double *velocities;        /* [n_atoms*3] Å/fs from the structure files, or 0 */
    int has_velocities;        /* every system's file had velocities */
    thermo_state *states;      /* [n_replicas] */
    int *system_of_replica;    /* [n_replicas] index into cfg->systems */
} replica_set;

int replica_set_build(const run_config *cfg, replica_set *rs, dm_error *err);
void replica_set_free(replica_set *rs);
/* The exchange groups of the run (n_groups = 0 without replica exchange):
 * temperature ladders, or the windows of a λ sweep with exchange (one group,
 * states (T, λ_k); layout lambda set). */
int replica_set_exchange_layout(const run_config *cfg, const replica_set *rs, exchange_layout *l,
                                dm_error *err);

#endif
