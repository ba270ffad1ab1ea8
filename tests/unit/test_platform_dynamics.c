/* test_platform_dynamics.c — the integrators on one platform (argv[1]),
 * against analytic results:
 *   - velocity Verlet on a harmonic potential: the total-energy error shrinks
 *     as dt^2 (halving dt divides it by 4);
 *   - BAOAB Langevin on a harmonic potential: <E_kin> = <E_pot> = (3N/2) kT,
 *     and E_kin / kT follows Gamma(3N/2, 1) (Kolmogorov-Smirnov, fixed seed);
 *   - Maxwell-Boltzmann initial velocities carry no centre-of-mass motion;
 *   - FIRE lowers the model's energy and reaches the force threshold. */
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

/* A batch of R replicas of n atoms, random masses among C, N, O. */
static void harmonic_system(int R, int n, molecule_batch *b, double **masses, double **x0,
                            test_rng *rng)
{
    int *sizes = malloc(sizeof(int) * R);
    for (int r = 0; r < R; r++) sizes[r] = n;
    CU_ASSERT_FATAL(molecule_batch_alloc(b, R, sizes, NULL) == 0);
    free(sizes);
    *masses = malloc(sizeof(double) * b->n_atoms);
    *x0 = calloc(3 * b->n_atoms, sizeof(double));
    static const int Z[3] = {6, 7, 8};
    /* centres near the origin: float32 platforms resolve a displacement of
     * 1e-3 A there to 1e-10 A, far below the integration error measured */
    for (int i = 0; i < b->n_atoms; i++) {
        b->species[i] = Z[(int)(3 * test_uniform(rng))];
        (*masses)[i] = element_mass(b->species[i]);
        for (int c = 0; c < 3; c++) {
            (*x0)[3 * i + c] = 0.5 * test_normal(rng);
            b->positions[3 * i + c] = (*x0)[3 * i + c] + 0.1 * test_normal(rng);
        }
    }
}

static double total_energy(void *impl, int R, double *epot, double *ekin)
{
    dm_error err;
    CU_ASSERT_FATAL(DYN->get_state(impl, NULL, NULL, NULL, epot, ekin, &err) == 0);
    double e = 0;
    for (int r = 0; r < R; r++) e += epot[r] + ekin[r];
    return e;
}

/* max |E(t) - E(0)| over 400 fs of NVE at time step dt */
static double nve_energy_error(double dt)
{
    test_rng rng = {7};
    molecule_batch b = {0};
    double *m, *x0, epot[2], ekin[2];
    harmonic_system(2, 4, &b, &m, &x0, &rng);
    hamiltonian h = {.n_terms = 1, .terms = {term_harmonic(2.0, x0, 1, 0)}};
    double *v = malloc(sizeof(double) * 3 * b.n_atoms), T[2] = {300, 300};
    maxwell_boltzmann(&b, m, T, 3, v);
    void *impl = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(DYN->create(&impl, &h, &b, m, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_positions(impl, b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(impl, v, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(impl, &err) == 0);
    double e0 = total_energy(impl, 2, epot, ekin), worst = 0;
    long chunk = (long)(4.0 / dt);
    for (int k = 0; k < 100; k++) {
        CU_ASSERT_FATAL(DYN->verlet(impl, chunk, dt, &err) == 0);
        worst = fmax(worst, fabs(total_energy(impl, 2, epot, ekin) - e0));
    }
    DYN->destroy(impl);
    free(v);
    free(m);
    free(x0);
    molecule_batch_free(&b);
    return worst;
}

static void test_verlet_energy_error_scales_as_dt2(void)
{
    double e2 = nve_energy_error(2.0), e1 = nve_energy_error(1.0), e05 = nve_energy_error(0.5);
    printf("\n  max |dE|: dt=2 fs %.3e, dt=1 fs %.3e, dt=0.5 fs %.3e eV; ratios %.2f %.2f ", e2, e1,
           e05, e2 / e1, e1 / e05);
    CU_ASSERT(e2 > 1e-6); /* the error is measurable, not rounding */
    CU_ASSERT(e2 / e1 > 3.5 && e2 / e1 < 4.5);
    CU_ASSERT(e1 / e05 > 3.5 && e1 / e05 < 4.5);
}

/* P(a, x) for integer a: 1 - e^-x sum_{k<a} x^k / k!  (the Gamma(a, 1) CDF) */
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

/* Mean and standard error of the mean from 20 batch means. */
static void batch_mean(const double *x, int n, double *mean, double *sem)
{
    const int nb = 20;
    double bm[20], m = 0, v = 0;
    for (int k = 0; k < nb; k++) {
        bm[k] = 0;
        for (int i = k * (n / nb); i < (k + 1) * (n / nb); i++) bm[k] += x[i];
        bm[k] /= n / nb;
        m += bm[k] / nb;
    }
    for (int k = 0; k < nb; k++) v += (bm[k] - m) * (bm[k] - m) / (nb - 1);
    *mean = m;
    *sem = sqrt(v / nb);
}

static void test_langevin_harmonic_equipartition(void)
{
    const int R = 6, n = 4, n_samples = 2000, a = 3 * n / 2;
    const double temps[6] = {150, 300, 300, 450, 600, 900};
    test_rng rng = {11};
    molecule_batch b = {0};
    double *m, *x0;
    harmonic_system(R, n, &b, &m, &x0, &rng);
    hamiltonian h = {.n_terms = 1, .terms = {term_harmonic(1.0, x0, 1, 0)}};
    void *impl = NULL;
    dm_error err = {{0}};
    double *v = calloc(3 * b.n_atoms, sizeof(double));
    CU_ASSERT_FATAL(DYN->create(&impl, &h, &b, m, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_positions(impl, b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(impl, v, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_temperatures(impl, temps, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(impl, &err) == 0);
    /* equilibrate 2 ps, then sample every 100 fs (friction 20/ps: 50 fs memory) */
    const double dt = 1.0, gamma = 20.0;
    CU_ASSERT_FATAL(DYN->langevin(impl, 0, 2000, dt, gamma, 42, &err) == 0);
    double *ek = malloc(sizeof(double) * R * n_samples), *ep = malloc(sizeof(double) * R * n_samples);
    double *reduced = malloc(sizeof(double) * R * n_samples), epot[6], ekin[6];
    for (int s = 0; s < n_samples; s++) {
        CU_ASSERT_FATAL(DYN->langevin(impl, 2000 + 100 * (uint64_t)s, 100, dt, gamma, 42, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_state(impl, NULL, NULL, NULL, epot, ekin, &err) == 0);
        for (int r = 0; r < R; r++) {
            ek[r * n_samples + s] = ekin[r];
            ep[r * n_samples + s] = epot[r];
            reduced[r * n_samples + s] = ekin[r] / (BOLTZMANN_EV_PER_K * temps[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        double expect = 1.5 * n * BOLTZMANN_EV_PER_K * temps[r], mk, sk, mp, sp;
        batch_mean(ek + r * n_samples, n_samples, &mk, &sk);
        batch_mean(ep + r * n_samples, n_samples, &mp, &sp);
        printf("\n  T = %3.0f K: <Ekin> = %.5f +- %.5f, <Epot> = %.5f +- %.5f, (3N/2)kT = %.5f eV",
               temps[r], mk, sk, mp, sp, expect);
        CU_ASSERT(fabs(mk - expect) < 4 * sk + 1e-12);
        CU_ASSERT(fabs(mp - expect) < 4 * sp + 1e-12);
        CU_ASSERT(sk < 0.05 * expect); /* the test has resolution */
    }
    /* Kolmogorov-Smirnov: E_kin/kT ~ Gamma(3N/2, 1), all replicas pooled */
    int N = R * n_samples;
    qsort(reduced, N, sizeof(double), compare_double);
    double D = 0;
    for (int i = 0; i < N; i++) {
        double F = gamma_cdf_integer(a, reduced[i]);
        D = fmax(D, fmax(fabs(F - (double)i / N), fabs((double)(i + 1) / N - F)));
    }
    double critical = 1.63 / sqrt((double)N); /* alpha = 0.01 */
    printf("\n  KS: D = %.4f, critical (1%%) = %.4f, n = %d ", D, critical, N);
    CU_ASSERT(D < critical);
    DYN->destroy(impl);
    free(ek);
    free(ep);
    free(reduced);
    free(v);
    free(m);
    free(x0);
    molecule_batch_free(&b);
}

static void test_maxwell_boltzmann_no_com_motion(void)
{
    test_rng rng = {3};
    molecule_batch b = {0};
    double *m, *x0, T[3] = {100, 300, 1000};
    harmonic_system(3, 6, &b, &m, &x0, &rng);
    double *v = malloc(sizeof(double) * 3 * b.n_atoms), ekin[3];
    maxwell_boltzmann(&b, m, T, 9, v);
    for (int r = 0; r < 3; r++) {
        double p[3] = {0, 0, 0};
        for (int i = b.offset[r]; i < b.offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) p[c] += m[i] * v[3 * i + c];
        CU_ASSERT(fabs(p[0]) + fabs(p[1]) + fabs(p[2]) < 1e-12);
    }
    kinetic_energies(&b, m, v, ekin);
    CU_ASSERT(ekin[0] > 0 && ekin[2] > ekin[0]); /* hotter replica, more energy */
    free(v);
    free(m);
    free(x0);
    molecule_batch_free(&b);
}

static void test_fire_minimises_model_energy(void)
{
    painn_model model = {0};
    dm_error err = {{0}};
    CU_ASSERT_FATAL(test_load_model("77k", &model) == 0);
    xyz_trajectory t = {0};
    CU_ASSERT_FATAL(test_read_molecule("ethanol", &t) == 0);
    int sizes[2] = {t.frames[0].n_atoms, t.frames[0].n_atoms};
    molecule_batch b = {0};
    CU_ASSERT_FATAL(molecule_batch_alloc(&b, 2, sizes, NULL) == 0);
    double *m = malloc(sizeof(double) * b.n_atoms);
    test_rng rng = {17};
    for (int i = 0; i < b.n_atoms; i++) {
        int a = i % sizes[0];
        b.species[i] = t.frames[0].species[a];
        m[i] = element_mass(b.species[i]);
        for (int c = 0; c < 3; c++)
            b.positions[3 * i + c] = t.frames[0].positions[3 * a + c] + 0.1 * test_normal(&rng);
    }
    hamiltonian h = {.n_terms = 1, .terms = {term_model(&model, 1, 0)}};
    void *impl = NULL;
    double *v = calloc(3 * b.n_atoms, sizeof(double)), e0[2], e1[2], *F = malloc(sizeof(double) * 3 * b.n_atoms);
    CU_ASSERT_FATAL(DYN->create(&impl, &h, &b, m, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_positions(impl, b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(impl, v, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(impl, &err) == 0);
    CU_ASSERT_FATAL(DYN->get_state(impl, NULL, NULL, NULL, e0, NULL, &err) == 0);
    fire_params p = {.dt_start = 1.0, .dt_max = 10.0, .max_step = 0.1, .force_tolerance = 0.01,
                     .n_min = 5, .f_inc = 1.1, .f_dec = 0.5, .alpha_start = 0.1, .f_alpha = 0.99};
    fire_state s[2] = {{1.0, 0.1, 0, 0}, {1.0, 0.1, 0, 0}};
    for (int k = 0; k < 40 && !(s[0].converged && s[1].converged); k++)
        CU_ASSERT_FATAL(DYN->fire(impl, 50, &p, s, &err) == 0);
    CU_ASSERT_FATAL(DYN->get_state(impl, NULL, NULL, F, e1, NULL, &err) == 0);
    for (int r = 0; r < 2; r++) {
        double fmax = max_force_component(&b, r, F);
        printf("\n  replica %d: E %.4f -> %.4f eV, max |F| = %.4f eV/A, converged %d ", r, e0[r],
               e1[r], fmax, s[r].converged);
        CU_ASSERT(e1[r] < e0[r] - 0.01);
        CU_ASSERT(s[r].converged);
        CU_ASSERT(fmax < 0.01 * 1.5); /* float32 platforms re-evaluate F after the check */
    }
    DYN->destroy(impl);
    free(v);
    free(F);
    free(m);
    molecule_batch_free(&b);
    xyz_trajectory_free(&t);
    painn_model_free(&model);
}

int main(int argc, char **argv)
{
    DYN = test_dynamics_from_args(argc, argv);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("verlet", TEST_CASE(test_verlet_energy_error_scales_as_dt2));
    TEST_SUITE("langevin", TEST_CASE(test_langevin_harmonic_equipartition),
               TEST_CASE(test_maxwell_boltzmann_no_com_motion));
    FILE *probe = fopen(test_shared_path("models/student_21k.onnx"), "rb");
    if (probe) {
        fclose(probe);
        TEST_SUITE("fire", TEST_CASE(test_fire_minimises_model_energy));
    } else {
        printf("skipped: suite fire (shared data not found at %s)\n", test_shared_dir());
    }
    return test_run_all();
}
