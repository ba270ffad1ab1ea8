/* reference_dynamics.c — the reference platform's dynamics: host arrays in
 * float64, the reference model for forces, the integrators of this folder.
 * A force evaluation keeps the λ-independent and λ-linear parts (U_0, ΔU per
 * replica; F_0, F_1 per atom), so that a new λ (set_lambdas, a Hamiltonian
 * exchange) gives U_λ = U_0 + λ ΔU and F_λ = F_0 + λ F_1 without one. */
#include "integrators.h"

#include <stdlib.h>
#include <string.h>

typedef struct reference_dynamics {
    const hamiltonian *h;
    molecule_batch b;  /* topology and positions */
    double *masses, *v, *forces, *epot;  /* forces and epot at each replica's λ */
    double *u0, *du, *f0, *f1;           /* the parts of the last force evaluation */
    double *temperatures;            /* thermostat, per replica */
    double *lambdas;                 /* per replica */
    const exchange_layout *exchange; /* NULL without replica exchange */
    exchange_record record;
} reference_dynamics;

static void ref_destroy(void *impl)
{
    reference_dynamics *d = impl;
    if (!d) return;
    molecule_batch_free(&d->b);
    free(d->masses);
    free(d->v);
    free(d->forces);
    free(d->epot);
    free(d->u0);
    free(d->du);
    free(d->f0);
    free(d->f1);
    free(d->temperatures);
    free(d->lambdas);
    exchange_record_free(&d->record);
    free(d);
}

static int ref_create(void **impl, const hamiltonian *h, const molecule_batch *topo,
                      const double *masses, dm_error *err)
{
    reference_dynamics *d = calloc(1, sizeof *d);
    int *sizes = malloc(sizeof(int) * ((size_t)topo->n_molecules + 1));
    if (!d || !sizes) {
        free(d);
        free(sizes);
        return dm_fail(err, "out of memory");
    }
    for (int r = 0; r < topo->n_molecules; r++) sizes[r] = topo->offset[r + 1] - topo->offset[r];
    int rc = molecule_batch_alloc(&d->b, topo->n_molecules, sizes, err);
    free(sizes);
    if (rc) {
        free(d);
        return -1;
    }
    size_t n3 = 3 * (size_t)d->b.n_atoms;
    memcpy(d->b.species, topo->species, sizeof(int) * d->b.n_atoms);
    d->h = h;
    d->masses = malloc(sizeof(double) * (d->b.n_atoms + 1));
    d->v = calloc(n3 + 1, sizeof(double));
    d->forces = calloc(n3 + 1, sizeof(double));
    d->epot = calloc(d->b.n_molecules + 1, sizeof(double));
    d->u0 = calloc(d->b.n_molecules + 1, sizeof(double));
    d->du = calloc(d->b.n_molecules + 1, sizeof(double));
    d->f0 = calloc(n3 + 1, sizeof(double));
    d->f1 = calloc(n3 + 1, sizeof(double));
    d->temperatures = calloc(d->b.n_molecules + 1, sizeof(double));
    d->lambdas = calloc(d->b.n_molecules + 1, sizeof(double));
    if (!d->masses || !d->v || !d->forces || !d->epot || !d->u0 || !d->du || !d->f0 || !d->f1 ||
        !d->temperatures || !d->lambdas) {
        ref_destroy(d);
        return dm_fail(err, "out of memory");
    }
    memcpy(d->masses, masses, sizeof(double) * d->b.n_atoms);
    if (hamiltonian_check(h, &d->b, err)) {
        ref_destroy(d);
        return -1;
    }
    *impl = d;
    return 0;
}

static int ref_set_positions(void *impl, const double *x, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    memcpy(d->b.positions, x, sizeof(double) * 3 * d->b.n_atoms);
    return 0;
}

static int ref_set_velocities(void *impl, const double *v, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    memcpy(d->v, v, sizeof(double) * 3 * d->b.n_atoms);
    return 0;
}

static int ref_set_temperatures(void *impl, const double *T, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    memcpy(d->temperatures, T, sizeof(double) * d->b.n_molecules);
    return 0;
}

/* energies and forces at each replica's λ from the stored parts */
static void combine(reference_dynamics *d)
{
    hamiltonian_combine(&d->b, d->lambdas, d->u0, d->du, d->f0, d->f1, d->epot, d->forces);
}

static int ref_set_lambdas(void *impl, const double *lambdas, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    memcpy(d->lambdas, lambdas, sizeof(double) * d->b.n_molecules);
    combine(d);
    return 0;
}

static int ref_compute_forces(void *impl, dm_error *err)
{
    reference_dynamics *d = impl;
    if (hamiltonian_reference_compute(d->h, &d->b, d->b.positions, d->u0, d->du, d->f0, d->f1, err))
        return -1;
    combine(d);
    return 0;
}

/* B A A B with the force call in the middle: velocity Verlet */
static int ref_verlet(void *impl, long n_steps, double dt, dm_error *err)
{
    reference_dynamics *d = impl;
    for (long s = 0; s < n_steps; s++) {
        half_kick(d->b.n_atoms, d->masses, d->forces, dt, d->v);
        drift(d->b.n_atoms, d->v, dt, d->b.positions);
        if (ref_compute_forces(d, err)) return -1;
        half_kick(d->b.n_atoms, d->masses, d->forces, dt, d->v);
    }
    return 0;
}

/* B A O A B */
static int ref_langevin(void *impl, uint64_t first_step, long n_steps, double dt, double friction,
                        uint64_t seed, dm_error *err)
{
    reference_dynamics *d = impl;
    for (long s = 0; s < n_steps; s++) {
        half_kick(d->b.n_atoms, d->masses, d->forces, dt, d->v);
        drift(d->b.n_atoms, d->v, 0.5 * dt, d->b.positions);
        langevin_thermostat(&d->b, d->masses, d->temperatures, dt, friction, seed,
                            first_step + (uint64_t)s, d->v);
        drift(d->b.n_atoms, d->v, 0.5 * dt, d->b.positions);
        if (ref_compute_forces(d, err)) return -1;
        half_kick(d->b.n_atoms, d->masses, d->forces, dt, d->v);
    }
    return 0;
}

static int ref_fire(void *impl, long n_steps, const fire_params *p, fire_state *state, dm_error *err)
{
    reference_dynamics *d = impl;
    for (long s = 0; s < n_steps; s++) {
        for (int r = 0; r < d->b.n_molecules; r++)
            fire_update(&d->b, r, d->forces, p, &state[r], d->v, d->b.positions);
        if (ref_compute_forces(d, err)) return -1;
    }
    return 0;
}

static int ref_setup_exchange(void *impl, const exchange_layout *layout, const exchange_record *start,
                              dm_error *err)
{
    reference_dynamics *d = impl;
    exchange_record_free(&d->record);
    if (exchange_record_alloc(&d->record, layout)) return dm_fail(err, "out of memory");
    exchange_record_copy(&d->record, start, layout);
    d->exchange = layout;
    return 0;
}

static int ref_exchange(void *impl, uint64_t attempt, uint64_t seed, dm_error *err)
{
    reference_dynamics *d = impl;
    if (!d->exchange) return dm_fail(err, "replica exchange was not set up");
    exchange_attempt(d->exchange, &d->record, d->u0, d->du, attempt, seed, &d->b, d->temperatures,
                     d->lambdas, d->v);
    combine(d);
    return 0;
}

static int ref_get_exchange(void *impl, exchange_record *out, double *temperatures, dm_error *err)
{
    reference_dynamics *d = impl;
    if (!d->exchange) return dm_fail(err, "replica exchange was not set up");
    exchange_record_copy(out, &d->record, d->exchange);
    if (temperatures) memcpy(temperatures, d->temperatures, sizeof(double) * d->b.n_molecules);
    return 0;
}

static int ref_remove_com_motion(void *impl, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    remove_com_motion(&d->b, d->masses, d->v);
    return 0;
}

static int ref_get_state(void *impl, double *x, double *v, double *forces, double *epot,
                         double *ekin, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    size_t n3 = sizeof(double) * 3 * d->b.n_atoms;
    if (x) memcpy(x, d->b.positions, n3);
    if (v) memcpy(v, d->v, n3);
    if (forces) memcpy(forces, d->forces, n3);
    if (epot) memcpy(epot, d->epot, sizeof(double) * d->b.n_molecules);
    if (ekin) kinetic_energies(&d->b, d->masses, d->v, ekin);
    return 0;
}

static int ref_get_lambdas(void *impl, double *lambdas, double *u0, double *du, dm_error *err)
{
    (void)err;
    reference_dynamics *d = impl;
    size_t R = sizeof(double) * d->b.n_molecules;
    if (lambdas) memcpy(lambdas, d->lambdas, R);
    if (u0) memcpy(u0, d->u0, R);
    if (du) memcpy(du, d->du, R);
    return 0;
}

const dynamics_ops dynamics_reference = {
    .platform = "reference",
    .create = ref_create,
    .set_positions = ref_set_positions,
    .set_velocities = ref_set_velocities,
    .set_temperatures = ref_set_temperatures,
    .set_lambdas = ref_set_lambdas,
    .compute_forces = ref_compute_forces,
    .verlet = ref_verlet,
    .langevin = ref_langevin,
    .fire = ref_fire,
    .setup_exchange = ref_setup_exchange,
    .exchange = ref_exchange,
    .get_exchange = ref_get_exchange,
    .remove_com_motion = ref_remove_com_motion,
    .get_state = ref_get_state,
    .get_lambdas = ref_get_lambdas,
    .destroy = ref_destroy,
};
