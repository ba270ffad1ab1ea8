/* velocities.c — initial velocities, centre-of-mass motion, kinetic energy. */
#include "integrators.h"
#include "units.h"
#include "../core/philox.h"

#include <math.h>

/* v_i,c ~ N(0, kT/m_i), then the replica's COM velocity removed. */
void maxwell_boltzmann(const molecule_batch *b, const double *masses, const double *temperatures,
                       uint64_t seed, double *v)
{
    for (int r = 0; r < b->n_molecules; r++) {
        double kT = BOLTZMANN_EV_PER_K * temperatures[r];
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++) {
            double sigma = sqrt(kT / (masses[i] * AMU_A2_PER_FS2_IN_EV)), xi[4];
            philox_block ctr = philox_counter(PHILOX_STREAM_VELOCITIES, (uint32_t)r,
                                              (uint32_t)(i - b->offset[r]), 0);
            philox_normal4(philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32)), xi);
            for (int c = 0; c < 3; c++) v[3 * i + c] = sigma * xi[c];
        }
    }
    remove_com_motion(b, masses, v);
}

/* v_i <- v_i - (sum_j m_j v_j) / (sum_j m_j), per replica */
void remove_com_motion(const molecule_batch *b, const double *masses, double *v)
{
    for (int r = 0; r < b->n_molecules; r++) {
        double p[3] = {0, 0, 0}, mass = 0;
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++) {
            mass += masses[i];
            for (int c = 0; c < 3; c++) p[c] += masses[i] * v[3 * i + c];
        }
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) v[3 * i + c] -= p[c] / mass;
    }
}

/* E_kin = sum_i m_i |v_i|^2 / 2, per replica, in eV */
void kinetic_energies(const molecule_batch *b, const double *masses, const double *v, double *ekin)
{
    for (int r = 0; r < b->n_molecules; r++) {
        double e = 0;
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) e += masses[i] * v[3 * i + c] * v[3 * i + c];
        ekin[r] = 0.5 * e * AMU_A2_PER_FS2_IN_EV;
    }
}

double temperature_of(double ekin, int dof)
{
    return dof > 0 ? 2.0 * ekin / (dof * BOLTZMANN_EV_PER_K) : 0.0;
}
