/* dynamics.h — what a platform does for a run: hold every replica's state
 * (positions, velocities, forces, energies) where it computes, and advance
 * all replicas at once. The reference platform keeps it in host memory; the
 * CUDA platform keeps it on the GPU, and nothing crosses to the host between
 * get_state calls. Replica r owns atoms [offset[r], offset[r+1]).
 * Units: Å, fs, eV, amu, K; friction in 1/ps. */
#ifndef DISTILMD_DYNAMICS_H
#define DISTILMD_DYNAMICS_H

#include "../core/error.h"
#include "../core/molecules.h"
#include "exchange.h"
#include "hamiltonian.h"

#include <stdint.h>

/* FIRE minimisation (Bitzek et al., PRL 97, 170201 (2006)), unit masses. */
typedef struct fire_params {
    double dt_start, dt_max;  /* fs */
    double max_step;          /* Å per atom per iteration */
    double force_tolerance;   /* eV/Å: a replica is converged when max |F_i,c| < this */
    int n_min;                /* steps with P > 0 before dt grows (5) */
    double f_inc, f_dec, alpha_start, f_alpha; /* 1.1, 0.5, 0.1, 0.99 */
} fire_params;

/* Per-replica FIRE state (checkpointed). */
typedef struct fire_state {
    double dt, alpha;
    int n_positive, converged;
} fire_state;

typedef struct dynamics_ops {
    const char *platform;
    /* topology: one molecule per replica (offsets, species); masses in amu.
     * The hamiltonian (and what it points to) must outlive the dynamics. */
    int (*create)(void **impl, const hamiltonian *h, const molecule_batch *topology,
                  const double *masses, dm_error *err);
    int (*set_positions)(void *impl, const double *x, dm_error *err);
    int (*set_velocities)(void *impl, const double *v, dm_error *err);
    /* Thermostat temperature of every replica (K). */
    int (*set_temperatures)(void *impl, const double *temperatures, dm_error *err);
    /* λ of every replica (hamiltonian.h: U_λ = U_0 + λ ΔU, F_λ = F_0 + λ F_1;
     * 0 at creation). The potential energies and forces follow at once, from
     * the U_0, ΔU, F_0, F_1 of the last force evaluation (no new one). */
    int (*set_lambdas)(void *impl, const double *lambdas, dm_error *err);
    /* Forces and potential energies at the current positions. */
    int (*compute_forces)(void *impl, dm_error *err);
    /* Velocity Verlet (NVE). Needs valid forces; leaves valid forces. */
    int (*verlet)(void *impl, long n_steps, double dt, dm_error *err);
    /* BAOAB Langevin at each replica's temperature; the noise of step s
     * (counted from the start of the run) is keyed by (seed, replica, atom, s). */
    int (*langevin)(void *impl, uint64_t first_step, long n_steps, double dt, double friction,
                    uint64_t seed, dm_error *err);
    /* n_steps FIRE iterations; replicas already converged stay put. */
    int (*fire)(void *impl, long n_steps, const fire_params *p, fire_state *state, dm_error *err);
    /* Replica exchange (exchange.h): the layout (kept by reference: it must
     * outlive the dynamics) and the record to start from (copied). */
    int (*setup_exchange)(void *impl, const exchange_layout *layout, const exchange_record *start,
                          dm_error *err);
    /* One round of attempts from the current U_0 and ΔU (exchange.h); the
     * temperatures, λ (with energies and forces) and velocities of swapped
     * replicas change where they live. */
    int (*exchange)(void *impl, uint64_t attempt, uint64_t seed, dm_error *err);
    /* Copies the record and the replicas' current temperatures to the host
     * (temperatures may be NULL). */
    int (*get_exchange)(void *impl, exchange_record *out, double *temperatures, dm_error *err);
    /* Removes each replica's centre-of-mass velocity. */
    int (*remove_com_motion)(void *impl, dm_error *err);
    /* Copies the state to the host; any pointer may be NULL. Energies per
     * replica (eV). */
    int (*get_state)(void *impl, double *x, double *v, double *forces, double *potential_energy,
                     double *kinetic_energy, dm_error *err);
    /* Per replica: its λ, U_0 and ΔU = dU_λ/dλ (eV) at the current positions;
     * any pointer may be NULL. */
    int (*get_lambdas)(void *impl, double *lambdas, double *u0, double *du, dm_error *err);
    void (*destroy)(void *impl);
} dynamics_ops;

extern const dynamics_ops dynamics_reference;
#ifdef DISTILMD_HAVE_CUDA_DYNAMICS
extern const dynamics_ops dynamics_cuda;
#endif

/* The dynamics of a platform by name (reference, cuda, auto; see platform.h). */
const dynamics_ops *dynamics_find(const char *platform, char *note, size_t note_len, dm_error *err);

#endif
