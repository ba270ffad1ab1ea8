/* integrators.h — the integrators' arithmetic on host arrays (float64): the
 * reference platform's implementation, and the definition the CUDA kernels
 * follow. Replica r owns atoms [b->offset[r], b->offset[r+1]). */
#ifndef DISTILMD_INTEGRATORS_H
#define DISTILMD_INTEGRATORS_H

#include "../core/molecules.h"
#include "../engine/dynamics.h"
#include "../engine/exchange.h"

#include <stdint.h>

/* B: v += (dt/2) F/m */
void half_kick(int n_atoms, const double *masses, const double *forces, double dt, double *v);
/* A: x += h v */
void drift(int n_atoms, const double *v, double h, double *x);
/* O: v = c1 v + sqrt((1 - c1^2) k_B T / m) xi,  c1 = exp(-gamma dt) */
void langevin_thermostat(const molecule_batch *b, const double *masses, const double *temperatures,
                         double dt, double friction_per_ps, uint64_t seed, uint64_t step,
                         double *v);
/* Maxwell-Boltzmann velocities at each replica's temperature, COM motion removed. */
void maxwell_boltzmann(const molecule_batch *b, const double *masses, const double *temperatures,
                       uint64_t seed, double *v);
void remove_com_motion(const molecule_batch *b, const double *masses, double *v);
/* kinetic energy per replica (eV) */
void kinetic_energies(const molecule_batch *b, const double *masses, const double *v, double *ekin);
/* One FIRE iteration for replica r's velocities and step (needs forces at x);
 * every atom has the fictitious mass 1 amu. */
void fire_update(const molecule_batch *b, int r, const double *forces,
                 const fire_params *p, fire_state *s, double *v, double *x);
/* max |F_i,c| over replica r */
double max_force_component(const molecule_batch *b, int r, const double *forces);
/* One round of exchange attempts (engine/exchange.h) from each replica's
 * U_0 and ΔU: updates the record, the replicas' thermostat temperatures and
 * λ (their energies and forces are the caller's to recombine), and
 * (rescaling) their velocities. */
void exchange_attempt(const exchange_layout *l, exchange_record *x, const double *u0,
                      const double *du, uint64_t attempt, uint64_t seed, const molecule_batch *b,
                      double *temperatures, double *lambdas, double *v);
/* T = 2 E_kin / (dof k_B); 0 when dof = 0. */
double temperature_of(double ekin, int dof);

#endif
