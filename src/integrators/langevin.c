/* langevin.c — the O step of BAOAB (Leimkuhler & Matthews 2013): the exact
 * solution of the Ornstein-Uhlenbeck process dv = -gamma v dt + sqrt(2 gamma kT/m) dW
 * over dt:  v <- c1 v + sqrt((1 - c1^2) kT/m) xi,  c1 = exp(-gamma dt).
 * xi for (replica, atom, step) comes from Philox keyed by the seed. */
#include "integrators.h"
#include "units.h"
#include "../core/philox.h"

#include <math.h>

void langevin_thermostat(const molecule_batch *b, const double *masses, const double *temperatures,
                         double dt, double friction_per_ps, uint64_t seed, uint64_t step, double *v)
{
    double c1 = exp(-friction_per_ps * 1e-3 * dt), c2 = sqrt(1.0 - c1 * c1);
    for (int r = 0; r < b->n_molecules; r++) {
        double kT = BOLTZMANN_EV_PER_K * temperatures[r];
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++) {
            double sigma = sqrt(kT / (masses[i] * AMU_A2_PER_FS2_IN_EV)), xi[4];
            philox_block ctr = philox_counter(PHILOX_STREAM_LANGEVIN, (uint32_t)r,
                                              (uint32_t)(i - b->offset[r]), step);
            philox_normal4(philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32)), xi);
            for (int c = 0; c < 3; c++) v[3 * i + c] = c1 * v[3 * i + c] + c2 * sigma * xi[c];
        }
    }
}
