/* test_platform_lambda.c — λ-dependent Hamiltonians on one platform
 * (argv[1]: reference or cuda; CTest runs it for each), through the
 * platform's dynamics (set_lambdas, compute_forces, get_state, get_lambdas,
 * exchange). See src/engine/hamiltonian.h and src/engine/exchange.h.
 *   - interpolate: harmonic end states against the analytic energies and
 *     forces; a model end state and a harmonic one against central finite
 *     differences of U_λ at several λ;
 *   - decouple (an ethanol 3 Å from a cluster of three waters, 21k model):
 *     at λ = 1 the energy and forces are the model's for the whole cluster,
 *     at λ = 0 those of ethanol alone plus the waters alone (each evaluated
 *     as its own molecule, independently of the selection machinery);
 *     forces against finite differences at λ = 0.4;
 *   - windows in one batch give the U_0, ΔU, energies and forces of each
 *     window run by itself (bit-identical on the reference platform);
 *   - flat-bottom restraint: exactly zero inside, the analytic energy and
 *     force outside, finite differences;
 *   - Hamiltonian exchange: a downhill swap is accepted and an uphill one
 *     rejected (λ, energies and forces follow the state, velocities scale by
 *     sqrt(T_new/T_old)); the accepted fraction over many constructed
 *     configurations matches the sum of min(1, exp(-Δ)) computed here from
 *     the definition Δ = u_s(x_j) + u_t(x_i) - u_s(x_i) - u_t(x_j); during
 *     Langevin dynamics with exchanges the windows stay a permutation.
 * Tolerances differ only by platform precision. */
#include "test_support.h"

#include "core/platform.h"
#include "engine/dynamics.h"
#include "integrators/integrators.h"
#include "integrators/units.h"
#include "io/xyz.h"
#include "model/painn_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tolerances {
    double fd_step;      /* Å */
    double fd_force;     /* eV/Å, model terms */
    double fd_harmonic;  /* eV/Å, analytic terms */
    double energy_rel;   /* relative agreement of energies computed two ways */
    double force;        /* eV/Å, forces computed two ways */
    int bit_identical;   /* batched windows equal separate ones exactly */
} tolerances;

static const tolerances TOL_REFERENCE = {1e-5, 1e-6, 1e-8, 1e-12, 1e-9, 1};
static const tolerances TOL_CUDA = {1e-2, 1e-3, 1e-3, 1e-6, 1e-3, 0};

static const dynamics_ops *DYN;
static const platform_ops *PLATFORM;
static tolerances TOL;

/* ---- helpers ---- */

static void read_frame(const char *molecule, xyz_trajectory *t)
{
    test_read_molecule(molecule, t);
    CU_ASSERT_FATAL(t->n_frames >= 1);
}

/* R copies of n atoms (species, positions) as a batch. */
static void replicate(int R, int n, const int *species, const double *x, molecule_batch *b)
{
    int sizes[64];
    CU_ASSERT_FATAL(R <= 64);
    for (int r = 0; r < R; r++) sizes[r] = n;
    CU_ASSERT_FATAL(molecule_batch_alloc(b, R, sizes, NULL) == 0);
    for (int r = 0; r < R; r++) {
        memcpy(b->species + r * n, species, sizeof(int) * n);
        memcpy(b->positions + 3 * r * n, x, sizeof(double) * 3 * n);
    }
}

static double *masses_of(const molecule_batch *b)
{
    double *m = malloc(sizeof(double) * b->n_atoms);
    for (int i = 0; i < b->n_atoms; i++) m[i] = element_mass(b->species[i]);
    return m;
}

/* A platform dynamics for h on batch b at positions x with λ per replica. */
static void *make_dynamics(const hamiltonian *h, const molecule_batch *b, const double *x,
                           const double *lambdas)
{
    void *impl = NULL;
    dm_error err = {{0}};
    double *m = masses_of(b);
    int rc = DYN->create(&impl, h, b, m, &err);
    free(m);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_FATAL(DYN->set_positions(impl, x, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_lambdas(impl, lambdas, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(impl, &err) == 0);
    return impl;
}

/* U_λ per replica, forces (may be NULL), U_0 and ΔU (may be NULL). */
static void evaluate(const hamiltonian *h, const molecule_batch *b, const double *x,
                     const double *lambdas, double *epot, double *forces, double *u0, double *du)
{
    dm_error err = {{0}};
    void *impl = make_dynamics(h, b, x, lambdas);
    CU_ASSERT_FATAL(DYN->get_state(impl, NULL, NULL, forces, epot, NULL, &err) == 0);
    CU_ASSERT_FATAL(DYN->get_lambdas(impl, NULL, u0, du, &err) == 0);
    DYN->destroy(impl);
}

/* max over every coordinate of |F - F_fd|, F_fd = -(U(x + h e_k) - U(x - h e_k)) / 2h,
 * displacing coordinate k of every replica at once (replicas are independent). */
static double fd_error_of(const hamiltonian *h, const molecule_batch *b, const double *lambdas,
                          double step, double *e_plus, double *e_minus)
{
    int R = b->n_molecules, n3 = 3 * (b->offset[1] - b->offset[0]);
    double *F = malloc(sizeof(double) * 3 * b->n_atoms), *x = malloc(sizeof(double) * 3 * b->n_atoms);
    double *e = malloc(sizeof(double) * R);
    evaluate(h, b, b->positions, lambdas, e, F, NULL, NULL);
    double worst = 0;
    for (int k = 0; k < n3; k++) {
        double *ep = e_plus + k * R, *em = e_minus + k * R;
        memcpy(x, b->positions, sizeof(double) * 3 * b->n_atoms);
        for (int r = 0; r < R; r++) x[3 * b->offset[r] + k] += step;
        evaluate(h, b, x, lambdas, ep, NULL, NULL, NULL);
        for (int r = 0; r < R; r++) x[3 * b->offset[r] + k] -= 2 * step;
        evaluate(h, b, x, lambdas, em, NULL, NULL, NULL);
        for (int r = 0; r < R; r++) {
            double fd = -(ep[r] - em[r]) / (2 * step);
            worst = fmax(worst, fabs(fd - F[3 * b->offset[r] + k]));
        }
    }
    free(F);
    free(x);
    free(e);
    return worst;
}

/* The finite-difference error on the platform under test, and the bound it
 * must meet: `tol` on the float64 reference; on a float32 platform, the same
 * stencil's error on the reference (truncation) plus what the platform's
 * energy rounding e = max |U - U_reference| at the same points can add to a
 * difference quotient (2e / 2h, doubled) plus `tol`. The rounding itself must
 * stay within the promised 1e-6 relative (+1e-6 eV) energy accuracy. */
static double fd_error(const hamiltonian *h, const molecule_batch *b, const double *lambdas,
                       double step, double tol, double *bound)
{
    int R = b->n_molecules, n = 3 * (b->offset[1] - b->offset[0]) * R;
    double *ep = malloc(sizeof(double) * n), *em = malloc(sizeof(double) * n);
    double worst = fd_error_of(h, b, lambdas, step, ep, em);
    *bound = tol;
    if (DYN != &dynamics_reference) {
        const dynamics_ops *tested = DYN;
        double *rp = malloc(sizeof(double) * n), *rm = malloc(sizeof(double) * n), rounding = 0;
        DYN = &dynamics_reference;
        double truncation = fd_error_of(h, b, lambdas, step, rp, rm);
        DYN = tested;
        for (int k = 0; k < n; k++) {
            double d = fmax(fabs(ep[k] - rp[k]), fabs(em[k] - rm[k]));
            rounding = fmax(rounding, d);
            CU_ASSERT(d <= 1e-6 * fabs(rp[k]) + 1e-6);
        }
        *bound = truncation + 2 * rounding / step + tol;
        printf("\n  (|U - U_reference| <= %.1e eV, reference stencil error %.1e, bound %.2e)",
               rounding, truncation, *bound);
        free(rp);
        free(rm);
    }
    free(ep);
    free(em);
    return worst;
}

static double max_abs(const double *a, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_abs_diff(const double *a, const double *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static int close_rel(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-12;
}

/* The model's energy and forces of one molecule (n atoms), on the platform. */
static double model_energy(const painn_model *m, int n, const int *species, const double *x,
                           double *forces)
{
    molecule_batch b = {0};
    replicate(1, n, species, x, &b);
    void *impl = NULL;
    dm_error err = {{0}};
    double e = NAN;
    CU_ASSERT_FATAL(PLATFORM->model_create(&impl, m, &b, &err) == 0);
    CU_ASSERT_FATAL(PLATFORM->model_compute(impl, x, &e, forces, &err) == 0);
    PLATFORM->model_destroy(impl);
    molecule_batch_free(&b);
    return e;
}

/* ---- interpolate ---- */

/* U_A = k_A/2 |x - x_A|^2, U_B = k_B/2 |x - x_B|^2 (water, 3 atoms), three
 * windows: energies, U_0, ΔU and forces against these formulas, and FD. */
static void test_interpolate_harmonic(void)
{
    xyz_trajectory t = {0};
    read_frame("water", &t);
    const xyz_frame *f = &t.frames[0];
    const int R = 3, n = f->n_atoms;
    const double kA = 1.0, kB = 4.0, lambdas[3] = {0.0, 0.3, 1.0};
    molecule_batch b = {0};
    replicate(R, n, f->species, f->positions, &b);
    double *xA = malloc(sizeof(double) * 3 * b.n_atoms), *xB = malloc(sizeof(double) * 3 * b.n_atoms);
    test_rng rng = {17};
    for (int k = 0; k < 3 * b.n_atoms; k++) {
        xA[k] = b.positions[k];
        xB[k] = b.positions[k] + 0.2 * test_normal(&rng);
        b.positions[k] += 0.3 * test_normal(&rng);
    }
    hamiltonian h = {.n_terms = 2, .terms = {term_harmonic(kA, xA, 1, -1), term_harmonic(kB, xB, 0, 1)}};
    double e[3], u0[3], du[3], *F = malloc(sizeof(double) * 3 * b.n_atoms);
    evaluate(&h, &b, b.positions, lambdas, e, F, u0, du);
    double worst_f = 0;
    for (int r = 0; r < R; r++) {
        double UA = 0, UB = 0, l = lambdas[r];
        for (int k = 3 * b.offset[r]; k < 3 * b.offset[r + 1]; k++) {
            double a = b.positions[k] - xA[k], c = b.positions[k] - xB[k];
            UA += 0.5 * kA * a * a;
            UB += 0.5 * kB * c * c;
            worst_f = fmax(worst_f, fabs(F[k] - (-(1 - l) * kA * a - l * kB * c)));
        }
        CU_ASSERT(close_rel(u0[r], UA, TOL.energy_rel));
        CU_ASSERT(close_rel(du[r], UB - UA, TOL.energy_rel));
        CU_ASSERT(close_rel(e[r], (1 - l) * UA + l * UB, TOL.energy_rel));
    }
    CU_ASSERT(worst_f <= TOL.force);
    double bound, fd = fd_error(&h, &b, lambdas, TOL.fd_step, TOL.fd_harmonic, &bound);
    printf("\n  harmonic A -> B: max |F - F_fd| = %.2e eV/A ", fd);
    CU_ASSERT(fd <= bound);
    free(F);
    free(xA);
    free(xB);
    molecule_batch_free(&b);
    xyz_trajectory_free(&t);
}

/* A = the 21k model, B = a harmonic restraint (k = 2) to the structure:
 * U_0 is the model energy, forces match FD at λ = 0, 0.25, 0.6, 1. */
static void test_interpolate_model_to_harmonic(void)
{
    xyz_trajectory t = {0};
    read_frame("ethanol", &t);
    const xyz_frame *f = &t.frames[0];
    painn_model m = {0};
    CU_ASSERT_FATAL(test_load_model("21k", &m) == 0);
    const int R = 4, n = f->n_atoms;
    const double lambdas[4] = {0.0, 0.25, 0.6, 1.0};
    molecule_batch b = {0};
    replicate(R, n, f->species, f->positions, &b);
    double *x0 = malloc(sizeof(double) * 3 * b.n_atoms);
    memcpy(x0, b.positions, sizeof(double) * 3 * b.n_atoms);
    test_rng rng = {23};
    for (int k = 0; k < 3 * b.n_atoms; k++) b.positions[k] += 0.05 * test_normal(&rng);
    hamiltonian h = {.n_terms = 2, .terms = {term_model(&m, 1, -1), term_harmonic(2.0, x0, 0, 1)}};
    double e[4], u0[4], du[4];
    evaluate(&h, &b, b.positions, lambdas, e, NULL, u0, du);
    for (int r = 0; r < R; r++) {
        double model = model_energy(&m, n, f->species, b.positions + 3 * b.offset[r], NULL), S = 0;
        for (int k = 3 * b.offset[r]; k < 3 * b.offset[r + 1]; k++)
            S += (b.positions[k] - x0[k]) * (b.positions[k] - x0[k]);
        CU_ASSERT(close_rel(u0[r], model, TOL.energy_rel));
        CU_ASSERT(close_rel(du[r], S - model, TOL.energy_rel)); /* U_B = 2/2 S */
    }
    double bound, fd = fd_error(&h, &b, lambdas, TOL.fd_step, TOL.fd_force, &bound);
    printf("\n  21k model -> harmonic: max |F - F_fd| = %.2e eV/A ", fd);
    CU_ASSERT(fd <= bound);
    free(x0);
    molecule_batch_free(&b);
    painn_model_free(&m);
    xyz_trajectory_free(&t);
}

/* ---- decouple ---- */

/* min over atom pairs of | |x_i - x_j| - rc | */
static double closest_to_cutoff(int n, const double *x, double rc)
{
    double m = INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double d2 = 0;
            for (int c = 0; c < 3; c++) d2 += (x[3 * i + c] - x[3 * j + c]) * (x[3 * i + c] - x[3 * j + c]);
            m = fmin(m, fabs(sqrt(d2) - rc));
        }
    return m;
}

/* The waters of water_cluster_3 (atoms 0-8), then ethanol (atoms 9-17)
 * moved along +x until its nearest atom is 3 Å from the nearest water atom,
 * and on until no pair sits within 2 FD steps of the cutoff (a step moves a
 * distance by at most h: no difference quotient straddles the cutoff). */
typedef struct cluster {
    int n, n_water, species[32];
    double x[96];
} cluster;

static double min_distance(const cluster *c)
{
    double m = INFINITY;
    for (int i = 0; i < c->n_water; i++)
        for (int j = c->n_water; j < c->n; j++) {
            double d2 = 0;
            for (int k = 0; k < 3; k++) d2 += pow(c->x[3 * i + k] - c->x[3 * j + k], 2);
            m = fmin(m, sqrt(d2));
        }
    return m;
}

static void build_cluster(cluster *c, double cutoff)
{
    xyz_trajectory w = {0}, e = {0};
    read_frame("water_cluster_3", &w);
    read_frame("ethanol", &e);
    const xyz_frame *fw = &w.frames[0], *fe = &e.frames[0];
    c->n_water = fw->n_atoms;
    c->n = fw->n_atoms + fe->n_atoms;
    CU_ASSERT_FATAL(c->n <= 32);
    memcpy(c->species, fw->species, sizeof(int) * fw->n_atoms);
    memcpy(c->species + fw->n_atoms, fe->species, sizeof(int) * fe->n_atoms);
    memcpy(c->x, fw->positions, sizeof(double) * 3 * fw->n_atoms);
    double shift = 0;
    for (int tries = 0; tries < 4000; tries++, shift += 0.01) {
        for (int i = 0; i < fe->n_atoms; i++)
            for (int k = 0; k < 3; k++)
                c->x[3 * (fw->n_atoms + i) + k] = fe->positions[3 * i + k] + (k == 0 ? shift : 0);
        if (min_distance(c) >= 3.0 && closest_to_cutoff(c->n, c->x, cutoff) > 2 * TOL.fd_step) break;
    }
    CU_ASSERT_FATAL(min_distance(c) >= 3.0 && min_distance(c) < 3.5);
    xyz_trajectory_free(&w);
    xyz_trajectory_free(&e);
}

typedef struct decouple {
    painn_model m;
    cluster c;
    int solute[16], rest[16], n_solute, n_rest;
    hamiltonian h;
} decouple;

static void decouple_setup(decouple *d)
{
    memset(d, 0, sizeof *d);
    CU_ASSERT_FATAL(test_load_model("21k", &d->m) == 0);
    build_cluster(&d->c, d->m.cutoff);
    /* the solute is ethanol; listed out of order to exercise the gather */
    for (int i = d->c.n_water; i < d->c.n; i++) d->solute[d->n_solute++] = d->c.n - 1 - (i - d->c.n_water);
    for (int i = 0; i < d->c.n_water; i++) d->rest[d->n_rest++] = i;
    d->h = (hamiltonian){.n_terms = 3,
                         .terms = {term_model(&d->m, 0, 1),
                                   term_model_selection(&d->m, d->n_solute, d->solute, 1, -1),
                                   term_model_selection(&d->m, d->n_rest, d->rest, 1, -1)}};
}

static void test_decouple_end_states(void)
{
    decouple d;
    decouple_setup(&d);
    const cluster *c = &d.c;
    const int n = c->n, nw = c->n_water, ne = n - nw;
    double F_all[96], F_w[96], F_e[96];
    double U_all = model_energy(&d.m, n, c->species, c->x, F_all);
    double U_w = model_energy(&d.m, nw, c->species, c->x, F_w);
    double U_e = model_energy(&d.m, ne, c->species + nw, c->x + 3 * nw, F_e);
    molecule_batch b = {0};
    replicate(2, n, c->species, c->x, &b);
    const double lambdas[2] = {0.0, 1.0};
    double e[2], u0[2], du[2], F[192];
    evaluate(&d.h, &b, b.positions, lambdas, e, F, u0, du);
    printf("\n  U(all) %.6f, U(ethanol) %.6f, U(waters) %.6f eV; interaction %.3e eV ", U_all,
           U_e, U_w, U_all - U_e - U_w);
    CU_ASSERT(fabs(U_all - U_e - U_w) > 1e-4); /* the cluster interacts: the check has teeth */
    CU_ASSERT(close_rel(e[0], U_e + U_w, TOL.energy_rel));
    CU_ASSERT(close_rel(e[1], U_all, TOL.energy_rel));
    CU_ASSERT(close_rel(u0[0], U_e + U_w, TOL.energy_rel));
    CU_ASSERT(close_rel(du[1], U_all - U_e - U_w, 1e3 * TOL.energy_rel));
    double F0[96];
    memcpy(F0, F_w, sizeof(double) * 3 * nw);
    memcpy(F0 + 3 * nw, F_e, sizeof(double) * 3 * ne);
    CU_ASSERT(max_abs_diff(F, F0, 3 * n) <= TOL.force);       /* λ = 0: separate molecules */
    CU_ASSERT(max_abs_diff(F + 3 * n, F_all, 3 * n) <= TOL.force); /* λ = 1: the cluster */
    CU_ASSERT(max_abs_diff(F0, F_all, 3 * n) > 1e-3);         /* and they differ */
    molecule_batch_free(&b);
    painn_model_free(&d.m);
}

static void test_decouple_forces_fd(void)
{
    decouple d;
    decouple_setup(&d);
    molecule_batch b = {0};
    replicate(1, d.c.n, d.c.species, d.c.x, &b);
    const double lambdas[1] = {0.4};
    double bound, fd = fd_error(&d.h, &b, lambdas, TOL.fd_step, TOL.fd_force, &bound);
    printf("\n  decouple at λ = 0.4: max |F - F_fd| = %.2e eV/A ", fd);
    CU_ASSERT(fd <= bound);
    molecule_batch_free(&b);
    painn_model_free(&d.m);
}

/* Four windows with their own positions in one batch, then each alone. */
static void test_batched_windows_equal_separate(void)
{
    decouple d;
    decouple_setup(&d);
    const int R = 4, n = d.c.n;
    const double lambdas[4] = {0.0, 0.3, 0.7, 1.0};
    molecule_batch b = {0};
    replicate(R, n, d.c.species, d.c.x, &b);
    test_rng rng = {31};
    for (int k = 0; k < 3 * b.n_atoms; k++) b.positions[k] += 0.03 * test_normal(&rng);
    double e[4], u0[4], du[4], *F = malloc(sizeof(double) * 3 * b.n_atoms);
    evaluate(&d.h, &b, b.positions, lambdas, e, F, u0, du);
    int identical = 1;
    double worst = 0;
    for (int r = 0; r < R; r++) {
        molecule_batch one = {0};
        replicate(1, n, d.c.species, b.positions + 3 * b.offset[r], &one);
        double e1, u01, du1, F1[96];
        evaluate(&d.h, &one, one.positions, &lambdas[r], &e1, F1, &u01, &du1);
        identical = identical && e1 == e[r] && u01 == u0[r] && du1 == du[r] &&
                    memcmp(F1, F + 3 * b.offset[r], sizeof(double) * 3 * n) == 0;
        worst = fmax(worst, max_abs_diff(F1, F + 3 * b.offset[r], 3 * n));
        CU_ASSERT(close_rel(e1, e[r], TOL.energy_rel));
        CU_ASSERT(close_rel(u01, u0[r], TOL.energy_rel));
        CU_ASSERT(close_rel(du1, du[r], 1e3 * TOL.energy_rel));
        molecule_batch_free(&one);
    }
    printf("\n  batched vs separate: %s, max |dF| = %.2e eV/A ",
           identical ? "bit-identical" : "not bit-identical", worst);
    CU_ASSERT(worst <= TOL.force);
    if (TOL.bit_identical) CU_ASSERT(identical);
    free(F);
    molecule_batch_free(&b);
    painn_model_free(&d.m);
}

/* ---- flat-bottom restraint ---- */

/* Four atoms at distances 0.5 and 1.9 (inside R = 2) and 2.5 and 3.7 from
 * the centre c along different directions. */
static void test_flat_bottom(void)
{
    const double k = 3.0, radius = 2.0, center[3] = {1.0, -2.0, 0.5};
    const double dist[4] = {0.5, 1.9, 2.5, 3.7};
    const double dir[4][3] = {{1, 0, 0}, {0, 0.6, 0.8}, {-0.48, 0.6, 0.64}, {0, -1, 0}};
    int species[4] = {6, 8, 1, 1};
    double x[12];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) x[3 * i + c] = center[c] + dist[i] * dir[i][c];
    molecule_batch b = {0};
    replicate(1, 4, species, x, &b);
    hamiltonian h = {.n_terms = 1, .terms = {term_flat_bottom(k, radius, center, 1, 0)}};
    const double lambda0[1] = {0.0};
    double e, F[12];
    evaluate(&h, &b, b.positions, lambda0, &e, F, NULL, NULL);
    double want = 0.5 * k * (0.5 * 0.5 + 1.7 * 1.7);
    CU_ASSERT(close_rel(e, want, TOL.energy_rel));
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) {
            double f = dist[i] > radius ? -k * (dist[i] - radius) * dir[i][c] : 0.0;
            CU_ASSERT(fabs(F[3 * i + c] - f) <= TOL.force);
            if (dist[i] < radius) CU_ASSERT(F[3 * i + c] == 0.0); /* exactly zero inside */
        }
    double bound, fd = fd_error(&h, &b, lambda0, TOL.fd_step, TOL.fd_harmonic, &bound);
    printf("\n  flat-bottom: E = %.6f eV (analytic %.6f), max |F - F_fd| = %.2e eV/A ", e, want, fd);
    CU_ASSERT(fd <= bound);
    /* every atom inside: exactly zero energy and force */
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) b.positions[3 * i + c] = center[c] + 0.45 * dist[i] * dir[i][c];
    evaluate(&h, &b, b.positions, lambda0, &e, F, NULL, NULL);
    CU_ASSERT(e == 0.0);
    CU_ASSERT(max_abs(F, 12) == 0.0);
    molecule_batch_free(&b);
}

/* ---- Hamiltonian exchange ---- */

/* Two or more windows of a harmonic interpolation of water, U_λ =
 * (k_A + λ (k_B - k_A))/2 |x - x0|^2, with states (T_s, λ_s). */
typedef struct hrex {
    int R, n;
    molecule_batch b;
    double *x0, *v;
    exchange_layout layout;
    exchange_record record;
    hamiltonian h;
    void *impl;
} hrex;

static const double K_A = 1.0, K_B = 4.0;

static void hrex_setup(hrex *s, int R, const double *T, const double *lambdas)
{
    memset(s, 0, sizeof *s);
    xyz_trajectory t = {0};
    read_frame("water", &t);
    s->R = R;
    s->n = t.frames[0].n_atoms;
    replicate(R, s->n, t.frames[0].species, t.frames[0].positions, &s->b);
    xyz_trajectory_free(&t);
    size_t n3 = 3 * (size_t)s->b.n_atoms;
    s->x0 = malloc(sizeof(double) * n3);
    s->v = calloc(n3, sizeof(double));
    memcpy(s->x0, s->b.positions, sizeof(double) * n3);
    exchange_layout *l = &s->layout;
    l->n_replicas = R;
    l->n_groups = 1;
    l->first = calloc(1, sizeof(int));
    l->size = malloc(sizeof(int));
    l->size[0] = R;
    l->group_of = calloc(R, sizeof(int));
    l->ladder = malloc(sizeof(double) * R);
    l->lambda = malloc(sizeof(double) * R);
    memcpy(l->ladder, T, sizeof(double) * R);
    memcpy(l->lambda, lambdas, sizeof(double) * R);
    CU_ASSERT_FATAL(exchange_record_alloc(&s->record, l) == 0);
    s->h = (hamiltonian){.n_terms = 2, .terms = {term_harmonic(K_A, s->x0, 1, -1), term_harmonic(K_B, s->x0, 0, 1)}};
    dm_error err = {{0}};
    double *m = masses_of(&s->b);
    CU_ASSERT_FATAL(DYN->create(&s->impl, &s->h, &s->b, m, &err) == 0);
    free(m);
    CU_ASSERT_FATAL(DYN->set_positions(s->impl, s->b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(s->impl, s->v, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_temperatures(s->impl, T, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_lambdas(s->impl, lambdas, &err) == 0);
    CU_ASSERT_FATAL(DYN->setup_exchange(s->impl, l, &s->record, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(s->impl, &err) == 0);
}

static void hrex_teardown(hrex *s)
{
    DYN->destroy(s->impl);
    exchange_record_free(&s->record);
    exchange_layout_free(&s->layout);
    free(s->x0);
    free(s->v);
    molecule_batch_free(&s->b);
}

/* S_r = Σ |x - x0|^2 over replica r of positions x */
static double spread(const hrex *s, const double *x, int r)
{
    double S = 0;
    for (int k = 3 * s->b.offset[r]; k < 3 * s->b.offset[r + 1]; k++)
        S += (x[k] - s->x0[k]) * (x[k] - s->x0[k]);
    return S;
}

/* u_s(x) = (k_A + λ_s (k_B - k_A)) S(x) / 2 / (k_B T_s), from the definition */
static double reduced(const hrex *s, int state, double S)
{
    double l = s->layout.lambda[state];
    return 0.5 * (K_A + l * (K_B - K_A)) * S / (BOLTZMANN_EV_PER_K * s->layout.ladder[state]);
}

/* Positions: replica r displaced from x0 by d[r] in every coordinate. */
static void displace(hrex *s, const double *d)
{
    for (int r = 0; r < s->R; r++)
        for (int k = 3 * s->b.offset[r]; k < 3 * s->b.offset[r + 1]; k++)
            s->b.positions[k] = s->x0[k] + d[r];
}

/* Replica 0 holds the soft window (λ = 0), replica 1 the stiff one (λ = 1).
 * The displaced configuration moving to the soft window is accepted; the
 * reverse (−Δ ≈ −330) is rejected. */
static void test_exchange_downhill_and_uphill(void)
{
    const double T[2] = {300, 300}, lambdas[2] = {0.0, 1.0};
    hrex s;
    hrex_setup(&s, 2, T, lambdas);
    dm_error err = {{0}};
    const double uphill[2] = {0.8, 0.0}, downhill[2] = {0.0, 0.8};
    displace(&s, uphill);
    for (size_t k = 0; k < 3 * (size_t)s.b.n_atoms; k++) s.v[k] = 1e-3 * (double)(k + 1);
    CU_ASSERT_FATAL(DYN->set_positions(s.impl, s.b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->set_velocities(s.impl, s.v, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(s.impl, &err) == 0);
    CU_ASSERT_FATAL(DYN->exchange(s.impl, 0, 9, &err) == 0);
    CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, NULL, &err) == 0);
    CU_ASSERT(s.record.attempts[0] == 1 && s.record.accepts[0] == 0);
    CU_ASSERT(s.record.state_of_replica[0] == 0);

    displace(&s, downhill);
    CU_ASSERT_FATAL(DYN->set_positions(s.impl, s.b.positions, &err) == 0);
    CU_ASSERT_FATAL(DYN->compute_forces(s.impl, &err) == 0);
    CU_ASSERT_FATAL(DYN->exchange(s.impl, 2, 9, &err) == 0);
    double Tnow[2], lam[2], u0[2], du[2], e[2], *F = malloc(sizeof(double) * 3 * s.b.n_atoms);
    double *v = malloc(sizeof(double) * 3 * s.b.n_atoms);
    CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, Tnow, &err) == 0);
    CU_ASSERT(s.record.attempts[0] == 2 && s.record.accepts[0] == 1);
    CU_ASSERT(s.record.state_of_replica[0] == 1 && s.record.state_of_replica[1] == 0);
    CU_ASSERT(Tnow[0] == 300 && Tnow[1] == 300);
    CU_ASSERT_FATAL(DYN->get_lambdas(s.impl, lam, u0, du, &err) == 0);
    CU_ASSERT(lam[0] == 1.0 && lam[1] == 0.0); /* λ follows the state */
    CU_ASSERT_FATAL(DYN->get_state(s.impl, NULL, v, F, e, NULL, &err) == 0);
    /* equal T: not rescaled (float32 platforms hold v rounded to float) */
    double unscaled = 0;
    for (int k = 0; k < 3 * s.b.n_atoms; k++)
        unscaled = fmax(unscaled, fabs(v[k] - (DYN == &dynamics_reference ? s.v[k] : (double)(float)s.v[k])));
    CU_ASSERT(unscaled == 0.0);
    /* energies and forces at the new λ, from the formulas */
    for (int r = 0; r < 2; r++) {
        double kr = K_A + lam[r] * (K_B - K_A), S = spread(&s, s.b.positions, r);
        CU_ASSERT(close_rel(e[r], 0.5 * kr * S, TOL.energy_rel));
        for (int k = 3 * s.b.offset[r]; k < 3 * s.b.offset[r + 1]; k++)
            CU_ASSERT(fabs(F[k] + kr * (s.b.positions[k] - s.x0[k])) <= TOL.force);
    }
    free(F);
    free(v);
    hrex_teardown(&s);
}

/* States (300 K, λ 0.2) and (400 K, λ 0.7); many random configurations:
 * the number of accepted swaps matches Σ min(1, exp(-Δ)) from the
 * definition, and swapped velocities scale by sqrt(T_new / T_old). */
static void test_exchange_acceptance_rule(void)
{
    const double T[2] = {300, 400}, lambdas[2] = {0.2, 0.7};
    hrex s;
    hrex_setup(&s, 2, T, lambdas);
    dm_error err = {{0}};
    test_rng rng = {41};
    const int attempts = 3000;
    double expected = 0, variance = 0, *v = malloc(sizeof(double) * 3 * s.b.n_atoms);
    int accepted = 0, velocities_ok = 1;
    for (int a = 0; a < attempts; a++) {
        for (int k = 0; k < 3 * s.b.n_atoms; k++) {
            s.b.positions[k] = s.x0[k] + 0.12 * test_normal(&rng);
            s.v[k] = 0.01 * test_normal(&rng);
        }
        CU_ASSERT_FATAL(DYN->set_positions(s.impl, s.b.positions, &err) == 0);
        CU_ASSERT_FATAL(DYN->set_velocities(s.impl, s.v, &err) == 0);
        CU_ASSERT_FATAL(DYN->compute_forces(s.impl, &err) == 0);
        int i = (int)s.record.replica_of_state[0], j = (int)s.record.replica_of_state[1];
        double Si = spread(&s, s.b.positions, i), Sj = spread(&s, s.b.positions, j);
        double delta = reduced(&s, 0, Sj) + reduced(&s, 1, Si) - reduced(&s, 0, Si) - reduced(&s, 1, Sj);
        double p = delta <= 0 ? 1.0 : exp(-delta);
        expected += p;
        variance += p * (1 - p);
        int64_t before = s.record.accepts[0];
        CU_ASSERT_FATAL(DYN->exchange(s.impl, 2 * (uint64_t)a, 13, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, NULL, &err) == 0);
        int swapped = s.record.accepts[0] > before;
        accepted += swapped;
        CU_ASSERT_FATAL(DYN->get_state(s.impl, NULL, v, NULL, NULL, NULL, &err) == 0);
        for (int r = 0; r < 2; r++) {
            /* r was in state (r == i ? 0 : 1) before */
            double f = !swapped ? 1.0 : (r == i ? sqrt(T[1] / T[0]) : sqrt(T[0] / T[1]));
            for (int k = 3 * s.b.offset[r]; k < 3 * s.b.offset[r + 1]; k++)
                velocities_ok &= fabs(v[k] - f * s.v[k]) <= 1e-12 + 1e-6 * fabs(s.v[k]);
        }
    }
    double sigma = sqrt(variance);
    printf("\n  accepted %d of %d, expected %.1f +- %.1f ", accepted, attempts, expected, sigma);
    CU_ASSERT(expected > 0.1 * attempts && expected < 0.9 * attempts); /* neither trivial */
    CU_ASSERT(fabs(accepted - expected) < 4 * sigma);
    CU_ASSERT(velocities_ok);
    free(v);
    hrex_teardown(&s);
}

/* Six windows under Langevin dynamics with exchanges every 10 steps: the
 * assignment stays a permutation, each replica's λ and T are its state's,
 * and its energy is U_0 + λ ΔU. */
static void test_exchange_windows_stay_permutation(void)
{
    const int R = 6;
    double T[6], lambdas[6];
    for (int r = 0; r < R; r++) {
        T[r] = 300;
        lambdas[r] = r / 5.0;
    }
    hrex s;
    hrex_setup(&s, R, T, lambdas);
    dm_error err = {{0}};
    double lam[6], u0[6], du[6], e[6], Tnow[6];
    int64_t moves = 0;
    for (int a = 1; a <= 200; a++) {
        CU_ASSERT_FATAL(DYN->langevin(s.impl, 10 * (uint64_t)(a - 1), 10, 1.0, 20.0, 3, &err) == 0);
        CU_ASSERT_FATAL(DYN->exchange(s.impl, (uint64_t)a, 3, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_exchange(s.impl, &s.record, Tnow, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_lambdas(s.impl, lam, u0, du, &err) == 0);
        CU_ASSERT_FATAL(DYN->get_state(s.impl, NULL, NULL, NULL, e, NULL, &err) == 0);
        int seen[6] = {0};
        for (int r = 0; r < R; r++) {
            int st = (int)s.record.state_of_replica[r];
            CU_ASSERT_FATAL(st >= 0 && st < R);
            seen[st]++;
            CU_ASSERT(s.record.replica_of_state[st] == r);
            CU_ASSERT(lam[r] == lambdas[st]);
            CU_ASSERT(Tnow[r] == T[st]);
            CU_ASSERT(close_rel(e[r], u0[r] + lam[r] * du[r], TOL.energy_rel));
            moves += st != r;
        }
        for (int st = 0; st < R; st++) CU_ASSERT(seen[st] == 1);
    }
    int64_t accepts = 0;
    for (int st = 0; st < R; st++) accepts += s.record.accepts[st];
    printf("\n  %lld swaps accepted in 200 attempts ", (long long)accepts);
    CU_ASSERT(accepts > 0 && moves > 0);
    hrex_teardown(&s);
}

int main(int argc, char **argv)
{
    test_require_shared();
    DYN = test_dynamics_from_args(argc, argv);
    dm_error err = {{0}};
    PLATFORM = platform_find(DYN->platform, NULL, 0, &err);
    if (!DYN->set_lambdas || !DYN->get_lambdas) {
        fprintf(stderr, "platform %s: the dynamics has no set_lambdas/get_lambdas\n", DYN->platform);
        return 1;
    }
    TOL = !strcmp(DYN->platform, "reference") ? TOL_REFERENCE : TOL_CUDA;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("interpolate", TEST_CASE(test_interpolate_harmonic),
               TEST_CASE(test_interpolate_model_to_harmonic));
    TEST_SUITE("decouple", TEST_CASE(test_decouple_end_states), TEST_CASE(test_decouple_forces_fd),
               TEST_CASE(test_batched_windows_equal_separate));
    TEST_SUITE("restraint", TEST_CASE(test_flat_bottom));
    TEST_SUITE("hamiltonian_exchange", TEST_CASE(test_exchange_downhill_and_uphill),
               TEST_CASE(test_exchange_acceptance_rule),
               TEST_CASE(test_exchange_windows_stay_permutation));
    return test_run_all();
}
