/* verlet.c — the deterministic pieces of a step: kicks and drifts.
 * Velocity Verlet is B(dt) A(dt) F B(dt) with B = half kick, A = drift. */
#include "integrators.h"
#include "units.h"

void half_kick(int n_atoms, const double *masses, const double *forces, double dt, double *v)
{
    for (int i = 0; i < n_atoms; i++) {
        double h = 0.5 * dt * EV_PER_A_AMU_IN_A_PER_FS2 / masses[i];
        for (int c = 0; c < 3; c++) v[3 * i + c] += h * forces[3 * i + c];
    }
}

void drift(int n_atoms, const double *v, double h, double *x)
{
    for (int k = 0; k < 3 * n_atoms; k++) x[k] += h * v[k];
}
