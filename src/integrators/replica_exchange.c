/* replica_exchange.c — one round of exchange attempts on the host (the
 * reference; src/cuda/ does the same on the GPU). See engine/exchange.h:
 * states (T_s, λ_s); replicas i in s and j in t = s+1 swap with probability
 * min(1, exp(-Δ)), Δ = u_s(x_j) + u_t(x_i) - u_s(x_i) - u_t(x_j),
 * u_s(x) = (U_0(x) + λ_s ΔU(x)) / (k_B T_s); velocities scaled by
 * sqrt(T_new/T_old). */
#include "integrators.h"
#include "units.h"
#include "../core/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int exchange_record_alloc(exchange_record *x, const exchange_layout *l)
{
    int R = l->n_replicas, m = 1;
    for (int g = 0; g < l->n_groups; g++) m = l->size[g] > m ? l->size[g] : m;
    memset(x, 0, sizeof *x);
    x->max_size = m;
    x->state_of_replica = malloc(sizeof(int64_t) * (R + 1));
    x->replica_of_state = malloc(sizeof(int64_t) * (R + 1));
    x->attempts = calloc(R + 1, sizeof(int64_t));
    x->accepts = calloc(R + 1, sizeof(int64_t));
    x->round_trips = calloc(R + 1, sizeof(int64_t));
    x->last_end = calloc(R + 1, sizeof(int64_t));
    x->occupancy = calloc((size_t)R * m + 1, sizeof(int64_t));
    if (!x->state_of_replica || !x->replica_of_state || !x->attempts || !x->accepts ||
        !x->round_trips || !x->last_end || !x->occupancy) {
        exchange_record_free(x);
        return -1;
    }
    for (int r = 0; r < R; r++) x->state_of_replica[r] = x->replica_of_state[r] = r;
    return 0;
}

void exchange_record_free(exchange_record *x)
{
    free(x->state_of_replica);
    free(x->replica_of_state);
    free(x->attempts);
    free(x->accepts);
    free(x->round_trips);
    free(x->last_end);
    free(x->occupancy);
    memset(x, 0, sizeof *x);
}

void exchange_record_copy(exchange_record *dst, const exchange_record *src, const exchange_layout *l)
{
    size_t R = (size_t)l->n_replicas;
    memcpy(dst->state_of_replica, src->state_of_replica, sizeof(int64_t) * R);
    memcpy(dst->replica_of_state, src->replica_of_state, sizeof(int64_t) * R);
    memcpy(dst->attempts, src->attempts, sizeof(int64_t) * R);
    memcpy(dst->accepts, src->accepts, sizeof(int64_t) * R);
    memcpy(dst->round_trips, src->round_trips, sizeof(int64_t) * R);
    memcpy(dst->last_end, src->last_end, sizeof(int64_t) * R);
    memcpy(dst->occupancy, src->occupancy, sizeof(int64_t) * R * src->max_size);
}

void exchange_layout_free(exchange_layout *l)
{
    free(l->first);
    free(l->size);
    free(l->group_of);
    free(l->ladder);
    free(l->lambda);
    memset(l, 0, sizeof *l);
}

/* The uniform deciding pair (s, s+1) at attempt a. */
static double exchange_uniform(uint64_t seed, int s, uint64_t attempt)
{
    philox_block c = philox_counter(PHILOX_STREAM_EXCHANGE, (uint32_t)s, 0, attempt);
    return philox_uniform(philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32)).v[0]);
}

/* v of replica r scaled by f */
static void scale_velocities(const molecule_batch *b, int r, double f, double *v)
{
    for (int k = 3 * b->offset[r]; k < 3 * b->offset[r + 1]; k++) v[k] *= f;
}

/* Round trips and time per rung, after the states of this attempt are set. */
static void record_visits(const exchange_layout *l, exchange_record *x)
{
    for (int r = 0; r < l->n_replicas; r++) {
        int g = l->group_of[r];
        if (g < 0) continue;
        int k = (int)x->state_of_replica[r] - l->first[g];
        x->occupancy[(size_t)r * x->max_size + k]++;
        if (k == 0) {
            if (x->last_end[r] == +1) x->round_trips[r]++;
            x->last_end[r] = -1;
        } else if (k == l->size[g] - 1 && x->last_end[r] == -1) {
            x->last_end[r] = +1;
        }
    }
}

/* log of the acceptance probability, -Δ (engine/exchange.h), of replicas i
 * (in state s) and j (in state t) swapping states. */
static double exchange_log_acceptance(const exchange_layout *l, int s, int t, int i, int j,
                                      const double *u0, const double *du, const double *lambdas)
{
    double beta_s = 1.0 / (BOLTZMANN_EV_PER_K * l->ladder[s]);
    double beta_t = 1.0 / (BOLTZMANN_EV_PER_K * l->ladder[t]);
    if (!l->lambda) {
        double u_i = u0[i] + lambdas[i] * du[i], u_j = u0[j] + lambdas[j] * du[j];
        return (beta_s - beta_t) * (u_i - u_j);
    }
    return (beta_s - beta_t) * (u0[i] - u0[j]) +
           (beta_s * l->lambda[s] - beta_t * l->lambda[t]) * (du[i] - du[j]);
}

void exchange_attempt(const exchange_layout *l, exchange_record *x, const double *u0,
                      const double *du, uint64_t attempt, uint64_t seed, const molecule_batch *b,
                      double *temperatures, double *lambdas, double *v)
{
    for (int g = 0; g < l->n_groups; g++) {
        for (int s = l->first[g] + (int)(attempt % 2); s + 1 < l->first[g] + l->size[g]; s += 2) {
            int i = (int)x->replica_of_state[s], j = (int)x->replica_of_state[s + 1];
            double log_p = exchange_log_acceptance(l, s, s + 1, i, j, u0, du, lambdas);
            x->attempts[s]++;
            if (log_p < 0 && exchange_uniform(seed, s, attempt) >= exp(log_p)) continue;
            x->accepts[s]++;
            x->replica_of_state[s] = j;
            x->replica_of_state[s + 1] = i;
            x->state_of_replica[i] = s + 1;
            x->state_of_replica[j] = s;
            scale_velocities(b, i, sqrt(l->ladder[s + 1] / l->ladder[s]), v);
            scale_velocities(b, j, sqrt(l->ladder[s] / l->ladder[s + 1]), v);
        }
    }
    for (int r = 0; r < l->n_replicas; r++) {
        if (l->group_of[r] < 0) continue;
        temperatures[r] = l->ladder[x->state_of_replica[r]];
        if (l->lambda) lambdas[r] = l->lambda[x->state_of_replica[r]];
    }
    record_visits(l, x);
}

/* "  300.00 - 345.00 K" or "  λ 0.100 - 0.200" (a pair of states) */
static void print_pair(FILE *f, const exchange_layout *l, int s)
{
    if (l->lambda && l->ladder[s] == l->ladder[s + 1])
        fprintf(f, "  λ %6.4f - %-6.4f  ", l->lambda[s], l->lambda[s + 1]);
    else if (l->lambda)
        fprintf(f, "  %7.2f K λ %.4f - %7.2f K λ %.4f  ", l->ladder[s], l->lambda[s],
                l->ladder[s + 1], l->lambda[s + 1]);
    else
        fprintf(f, "  %7.2f - %-7.2f  ", l->ladder[s], l->ladder[s + 1]);
}

void exchange_print_summary(FILE *f, const exchange_layout *l, const exchange_record *x)
{
    for (int g = 0; g < l->n_groups; g++) {
        int s0 = l->first[g], n = l->size[g];
        fprintf(f, "replica exchange, group %d (replicas %d..%d):\n", g, s0, s0 + n - 1);
        fprintf(f, "  pair of states       attempts  accepted  acceptance\n");
        for (int s = s0; s + 1 < s0 + n; s++) {
            print_pair(f, l, s);
            fprintf(f, "%9lld %9lld  %10.3f\n", (long long)x->attempts[s], (long long)x->accepts[s],
                    x->attempts[s] ? (double)x->accepts[s] / (double)x->attempts[s] : 0.0);
        }
        int64_t trips = 0;
        for (int r = s0; r < s0 + n; r++) trips += x->round_trips[r];
        fprintf(f, "  round trips (lowest -> highest -> lowest rung): %lld in total\n", (long long)trips);
        fprintf(f, "  replica  round trips  fraction of attempts in each rung (lowest first)\n");
        for (int r = s0; r < s0 + n; r++) {
            int64_t total = 0;
            for (int k = 0; k < n; k++) total += x->occupancy[(size_t)r * x->max_size + k];
            fprintf(f, "  %7d  %11lld ", r, (long long)x->round_trips[r]);
            for (int k = 0; k < n; k++)
                fprintf(f, " %.2f", total ? (double)x->occupancy[(size_t)r * x->max_size + k] / total : 0.0);
            fprintf(f, "\n");
        }
    }
}
