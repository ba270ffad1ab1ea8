/* hamiltonian.h — the potential energy of a run as a sum of terms:
 *   U = U_model(x)                         the student model (optional)
 *     + sum_i k/2 |x_i - x0_i|^2           a harmonic restraint to x0 (optional;
 *                                          the built-in analytic test potential)
 * Each term has a reference and a CUDA implementation. */
#ifndef DISTILMD_HAMILTONIAN_H
#define DISTILMD_HAMILTONIAN_H

#include "../core/error.h"
#include "../core/molecules.h"
#include "../model/painn_model.h"

typedef struct hamiltonian {
    const painn_model *model;      /* NULL: no model term */
    double harmonic_k;             /* eV/Å^2; 0: no restraint */
    const double *harmonic_center; /* [n_atoms*3] Å, used when harmonic_k > 0 */
} hamiltonian;

/* Reference evaluation: energies per molecule and forces (may be NULL). */
int hamiltonian_reference_compute(const hamiltonian *h, const molecule_batch *b, const double *x,
                                  double *energies, double *forces, dm_error *err);

#endif
