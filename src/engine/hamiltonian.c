#include "hamiltonian.h"
#include "../model/painn_reference.h"

#include <string.h>

/* U = k/2 |x - x0|^2 per atom, F = -k (x - x0); added to what is there. */
static void harmonic_add(double k, const double *x0, const molecule_batch *b, const double *x,
                         double *energies, double *forces)
{
    for (int r = 0; r < b->n_molecules; r++)
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) {
                double dx = x[3 * i + c] - x0[3 * i + c];
                energies[r] += 0.5 * k * dx * dx;
                if (forces) forces[3 * i + c] -= k * dx;
            }
}

int hamiltonian_reference_compute(const hamiltonian *h, const molecule_batch *b, const double *x,
                                  double *energies, double *forces, dm_error *err)
{
    if (h->model) {
        if (painn_reference_compute(h->model, b, x, energies, forces, err)) return -1;
    } else {
        memset(energies, 0, sizeof(double) * b->n_molecules);
        if (forces) memset(forces, 0, sizeof(double) * 3 * b->n_atoms);
    }
    if (h->harmonic_k > 0) harmonic_add(h->harmonic_k, h->harmonic_center, b, x, energies, forces);
    return 0;
}
