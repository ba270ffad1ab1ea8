/* painn_reference.h — the reference platform's model: float64, simple loops,
 * forces from a hand-derived reverse pass (no finite differences, no autodiff). */
#ifndef DISTILMD_PAINN_REFERENCE_H
#define DISTILMD_PAINN_REFERENCE_H

#include "painn_model.h"
#include "../core/molecules.h"

/* Energy of every molecule of the batch (energies[n_molecules], eV) and, when
 * forces is non-NULL, F = -dE/dx (forces[n_atoms*3], eV/Å) at `positions`. */
int painn_reference_compute(const painn_model *m, const molecule_batch *b,
                            const double *positions, double *energies, double *forces,
                            dm_error *err);

#endif
