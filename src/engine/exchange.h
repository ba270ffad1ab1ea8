/* exchange.h — temperature replica exchange (parallel tempering).
 *
 * The thermodynamic states (rungs of a temperature ladder) of an exchange
 * group are permuted among the group's replicas. Group g covers the replicas
 * and the states [first[g], first[g] + size[g]); state s has temperature
 * ladder[s]; at the start replica r holds state r. An attempt with index a
 * tries the neighbouring pairs (s, s+1) with s - first[g] = a mod 2, 4, ...:
 * replicas i (in s) and j (in s+1) swap states with probability
 *     min(1, exp[(beta_s - beta_{s+1}) (U_i - U_j)]),   beta = 1 / (k_B T),
 * decided by a Philox uniform keyed by (seed, pair s, attempt a); on a swap
 * each replica's velocities are scaled by sqrt(T_new / T_old).
 * Replicas outside every group keep their state. */
#ifndef DISTILMD_EXCHANGE_H
#define DISTILMD_EXCHANGE_H

#include <stdint.h>
#include <stdio.h>

typedef struct exchange_layout {
    int n_replicas;
    int n_groups;
    int *first, *size;      /* [n_groups] */
    int *group_of;          /* [n_replicas]: the group of replica/state r, or -1 */
    double *ladder;         /* [n_replicas]: temperature of state s (K) */
} exchange_layout;

/* What exchanges did: the assignment and its statistics (checkpointed). */
typedef struct exchange_record {
    int64_t *state_of_replica; /* [n_replicas] */
    int64_t *replica_of_state; /* [n_replicas] */
    int64_t *attempts;      /* [n_replicas]: attempts of pair (s, s+1), indexed by s */
    int64_t *accepts;       /* [n_replicas] */
    int64_t *round_trips;   /* [n_replicas]: lowest -> highest -> lowest rung, per replica */
    int64_t *last_end;      /* [n_replicas]: -1 lowest rung seen last, +1 highest, 0 neither yet */
    int64_t *occupancy;     /* [n_replicas * max_size]: attempts replica r spent in
                               rung k of its group, at [r * max_size + k] */
    int max_size;           /* largest group (at least 1) */
} exchange_record;

int exchange_record_alloc(exchange_record *x, const exchange_layout *l);
/* dst = src (both allocated for layout l) */
void exchange_record_copy(exchange_record *dst, const exchange_record *src, const exchange_layout *l);
void exchange_record_free(exchange_record *x);
void exchange_layout_free(exchange_layout *l);
/* Per group: each pair's acceptance, each replica's round trips and time per rung. */
void exchange_print_summary(FILE *f, const exchange_layout *l, const exchange_record *x);

#endif
