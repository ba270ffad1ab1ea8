/* test_platform_exchange.c — temperature replica exchange on one platform
 * (argv[1]) against analytic results, on harmonic replicas (U = k/2 |x - x0|^2
 * over 3N coordinates, so U/kT ~ Gamma(3N/2, 1) at every temperature):
 *   - each rung's potential-energy distribution is that Gamma distribution
 *     (Kolmogorov-Smirnov at a fixed seed): exchanges keep detailed balance;
 *   - each pair's measured acceptance matches the acceptance computed from the
 *     analytic distributions, E[min(1, exp((b1 - b2)(U1 - U2)))];
 *   - two groups with different ladders run side by side in one batch, and
 *     the bookkeeping (attempts alternate even and odd pairs, the assignment
 *     stays a permutation within each group) holds. */
#include "test_support.h"

#include "engine/dynamics.h"
#include "integrators/integrators.h"
#include "integrators/units.h"
#include "io/xyz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dynamics_ops *DYN;

#define N_ATOMS 4      /* per replica: U/kT ~ Gamma(6, 1) */
#define SHAPE (3 * N_ATOMS / 2)

/* Gamma(a, 1) CDF for integer a */
static double gamma_cdf_integer(int a, double x)
{
    double term = 1, sum = 0;
    for (int k = 0; k < a; k++) {
        sum += term;
        term *= x / (k + 1);
    }
    return 1 - exp(-x) * sum;
}

static int compare_double(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

static double ks_statistic(double *x, int n)
{
    qsort(x, n, sizeof(double), compare_double);
    double D = 0;
    for (int i = 0; i < n; i++) {
        double F = gamma_cdf_integer(SHAPE, x[i]);
        D = fmax(D, fmax(fabs(F - (double)i / n), fabs((double)(i + 1) / n - F)));
    }
    return D;
}

/* E[min(1, exp((b1 - b2)(U1 - U2)))] with U_i = kT_i G_i, G_i ~ Gamma(a, 1):
 * a midpoint rule on a grid over both Gamma densities (integer a). */
static double analytic_acceptance(double T1, double T2)
{
    const int n = 1200;
    const double top = 40.0, h = top / n;
    double b1 = 1 / (BOLTZMANN_EV_PER_K * T1), b2 = 1 / (BOLTZMANN_EV_PER_K * T2);
    double norm = 1;
    for (int k = 2; k < SHAPE; k++) norm *= k; /* (a-1)! */
    double p = 0;
    for (int i = 0; i < n; i++) {
        double g1 = (i + 0.5) * h, w1 = pow(g1, SHAPE - 1) * exp(-g1) / norm * h;
        for (int j = 0; j < n; j++) {
            double g2 = (j + 0.5) * h, w2 = pow(g2, SHAPE - 1) * exp(-g2) / norm * h;
            double delta = (b1 - b2) * (g1 / b1 - g2 / b2);
            p += w1 * w2 * (delta >= 0 ? 1.0 : exp(delta));
        }
    }
    return p;
}

typedef struct harmonic_remd {
    molecule_batch b;
    double *masses, *x0, *v;
    exchange_layout layout;
    exchange_record record;
    hamiltonian h;
    void *impl;
} harmonic_remd;

/* Two groups: a 6-rung geometric ladder 300..600 K and a 3-rung one 200..400 K. */
static void setup(harmonic_remd *s)
{
    static const double ladder[9] = {300, 300 * 1.148698355, 300 * 1.319507911, 300 * 1.515716567,
                                     300 * 1.741101127, 600, 200, 200 * 1.414213562, 400};
    const int R = 9;
    memset(s, 0, sizeof *s);
    int sizes[9];
    for (int r = 0; r < R; r++) sizes[r] = N_ATOMS;
    CU_ASSERT_FATAL(molecule_batch_alloc(&s->b, R, sizes, NULL) == 0);
    s->masses = malloc(sizeof(double) * s->b.n_atoms);
    s->x0 = calloc(3 * s->b.n_atoms, sizeof(double));
    s->v = calloc(3 * s->b.n_atoms, sizeof(double));
    for (int i = 0; i < s->b.n_atoms; i++) {
        s->b.species[i] = 6;
        s->masses[i] = element_mass(6);
        for (int c = 0; c < 3; c++) s->x0[3 * i + c] = s->b.positions[3 * i + c] = 2.0 * i + c;
    }
    exchange_layout *l = &s->layout;
    l->n_replicas = R;
    l->n_groups = 2;
    l->first = malloc(2 * sizeof(int));
    l->size = malloc(2 * sizeof(int));
    l->group_of = malloc(R * sizeof(int));
    l->ladder = malloc(R * sizeof(double));
    l->first[0] = 0, l->size[0] = 6, l->first[1] = 6, l->size[1] = 3;
    for (int r = 0; r < R; r++) {
        l->group_of[r] = r < 6 ? 0 : 1;
        l->ladder[r] = ladder[r];
    }
    CU_ASSERT_FATAL(exchange_record_alloc(&s->record, l) == 0);
    s->h = (hamiltonian){.n_terms = 1, .terms = {term_harmonic(1.0, s->x0, 1, 0)}};
    dm_error err = {{0}};
    CU_ASSERT_FATAL(DYN->create(&s->impl, &s->h, &s->b, s->masses, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_positions(s->impl, s->b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(s->impl, s->v, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_temperatures(s->impl, l->ladder, &err) == 0);
    CU_ASSERT_FATAL(DYN->setup_exchange(s->impl, l, &s->record, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(s->impl, &err) == 0);
}

static void teardown(harmonic_remd *s)
{
    DYN->destroy(s->impl);
    exchange_record_free(&s->record);
    exchange_layout_free(&s->layout);
    free(s->masses);
    free(s->x0);
    free(s->v);
    molecule_batch_free(&s->b);
}

static void test_harmonic_remd_detailed_balance(void)
{
    harmonic_remd s;
    setup(&s);
    const int R = 9, interval = 20, n_attempts = 4000, sample_every = 5;
    const double dt = 2.0, gamma = 20.0;
    dm_error err = {{0}};
    int n_samples = n_attempts / sample_every;
    double *by_state = malloc(sizeof(double) * R * n_samples), epot[9], T[9];
    CU_ASSERT_FATAL(DYN->langevin(s.impl, 0, 2000, dt, gamma, 5, &err) == 0);
    uint64_t step = 2000;
    for (int a = 1; a <= n_attempts; a++) {
        CU_ASSERT_FATAL(DYN->langevin(s.impl, step, interval, dt, gamma, 5, &err) == 0);
        step += interval;
        CU_ASSERT_FATAL(DYN->exchange(s.impl, (uint64_t)a, 5, &err) == 0);
        if (a % sample_every) continue;
        CU_ASSERT_FATAL(DYN->get_state(s.impl, NULL, NULL, NULL, epot, NULL, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, T, &err) == 0);
        for (int r = 0; r < R; r++) {
            int st = (int)s.record.state_of_replica[r];
            CU_ASSERT(T[r] == s.layout.ladder[st]); /* thermostat follows the state */
            by_state[st * n_samples + a / sample_every - 1] =
                epot[r] / (BOLTZMANN_EV_PER_K * s.layout.ladder[st]);
        }
    }
    /* the assignment is a permutation within each group */
    for (int r = 0; r < R; r++) {
        int st = (int)s.record.state_of_replica[r];
        CU_ASSERT(s.record.replica_of_state[st] == r);
        CU_ASSERT(s.layout.group_of[st] == s.layout.group_of[r]);
    }
    double critical = 1.63 / sqrt((double)n_samples); /* alpha = 1% */
    for (int st = 0; st < R; st++) {
        double D = ks_statistic(by_state + st * n_samples, n_samples);
        printf("\n  rung %d (%.1f K): KS D = %.4f (critical %.4f)", st, s.layout.ladder[st], D, critical);
        CU_ASSERT(D < critical);
    }
    /* acceptance per pair vs the analytic expectation */
    for (int g = 0; g < 2; g++)
        for (int st = s.layout.first[g]; st + 1 < s.layout.first[g] + s.layout.size[g]; st++) {
            double n = (double)s.record.attempts[st], p = s.record.accepts[st] / n;
            double expect = analytic_acceptance(s.layout.ladder[st], s.layout.ladder[st + 1]);
            double sigma = sqrt(expect * (1 - expect) / n);
            printf("\n  pair %.1f-%.1f K: acceptance %.4f (%g attempts), analytic %.4f +- %.4f",
                   s.layout.ladder[st], s.layout.ladder[st + 1], p, n, expect, sigma);
            CU_ASSERT(n == n_attempts / 2); /* even and odd pairs alternate */
            CU_ASSERT(fabs(p - expect) < 4 * sigma);
        }
    int64_t trips = 0;
    for (int r = 0; r < R; r++) trips += s.record.round_trips[r];
    printf("\n  round trips: %lld ", (long long)trips);
    CU_ASSERT(trips > 0);
    free(by_state);
    teardown(&s);
}

/* Two platforms, one rule: an exchange with U_i > U_j between a cold replica
 * i and a hot replica j is always accepted, and rescales both velocities. */
static void test_downhill_swap_always_accepted(void)
{
    harmonic_remd s;
    setup(&s);
    dm_error err = {{0}};
    /* replica 0 (300 K) far from its centre, replica 1 at its centre */
    for (int i = 0; i < N_ATOMS; i++)
        for (int c = 0; c < 3; c++) {
            s.b.positions[3 * i + c] = s.x0[3 * i + c] + 0.5;
            s.v[3 * i + c] = 1e-3;
            s.v[3 * (N_ATOMS + i) + c] = 2e-3;
        }
    CU_ASSERT_FATAL(DYN->set_positions(s.impl, s.b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(s.impl, s.v, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(s.impl, &err) == 0);
    CU_ASSERT_FATAL(DYN->exchange(s.impl, 0, 1, &err) == 0); /* attempt 0: even pairs (0,1) */
    CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, NULL, &err) == 0);
    CU_ASSERT(s.record.state_of_replica[0] == 1 && s.record.state_of_replica[1] == 0);
    CU_ASSERT(s.record.accepts[0] == 1 && s.record.attempts[0] == 1);
    double *v = malloc(sizeof(double) * 3 * s.b.n_atoms);
    CU_ASSERT_FATAL(DYN->get_state(s.impl, NULL, v, NULL, NULL, NULL, &err) == 0);
    double f = sqrt(s.layout.ladder[1] / s.layout.ladder[0]);
    CU_ASSERT(fabs(v[0] - 1e-3 * f) < 1e-9);
    CU_ASSERT(fabs(v[3 * N_ATOMS] - 2e-3 / f) < 1e-9);
    free(v);
    teardown(&s);
}

int main(int argc, char **argv)
{
    DYN = test_dynamics_from_args(argc, argv);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("replica_exchange", TEST_CASE(test_harmonic_remd_detailed_balance),
               TEST_CASE(test_downhill_swap_always_accepted));
    return test_run_all();
}
