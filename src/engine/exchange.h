/* exchange.h — replica exchange between thermodynamic states (T, λ):
 * temperature replica exchange (parallel tempering) and Hamiltonian
 * exchange between the λ windows of a free-energy sweep.
 *
 * The states of an exchange group are permuted among the group's replicas.
 * Group g covers the replicas and the states [first[g], first[g] + size[g]);
 * state s has temperature ladder[s] and (with a lambda array) λ = lambda[s];
 * at the start replica r holds state r. An attempt with index a tries the
 * neighbouring pairs (s, t = s+1) with s - first[g] = a mod 2, 4, ...:
 * replicas i (in s) and j (in t) swap states with probability min(1, exp(-Δ)),
 *     Δ = u_s(x_j) + u_t(x_i) - u_s(x_i) - u_t(x_j),
 *     u_s(x) = β_s (U_0(x) + λ_s ΔU(x)),   β_s = 1 / (k_B T_s)
 * (hamiltonian.h: U_λ = U_0 + λ ΔU), evaluated as
 *     -Δ = (β_s - β_t)(U_0,i - U_0,j) + (β_s λ_s - β_t λ_t)(ΔU_i - ΔU_j).
 * With equal λ (or ΔU = 0) this is the temperature rule
 * (β_s - β_t)(U_i - U_j); with equal T it is β (λ_s - λ_t)(ΔU_i - ΔU_j).
 * Without a lambda array the states carry no λ: each replica keeps its own
 * λ_r and -Δ = (β_s - β_t)(U_i - U_j) with U_r = U_0,r + λ_r ΔU_r.
 * The decision is a Philox uniform keyed by (seed, pair s, attempt a). On a
 * swap each replica takes the new state's temperature and λ (its energies
 * and forces follow λ) and its velocities are scaled by sqrt(T_new / T_old)
 * (1 for Hamiltonian exchange). Replicas outside every group keep their state. */
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
    double *lambda;         /* [n_replicas]: λ of state s; NULL: states carry no λ */
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
