#include "molecules.h"

#include <stdlib.h>
#include <string.h>

int molecule_batch_alloc(molecule_batch *b, int n_molecules, const int *sizes, dm_error *err)
{
    memset(b, 0, sizeof *b);
    if (n_molecules < 0) return dm_fail(err, "negative number of molecules (%d)", n_molecules);
    b->offset = malloc(sizeof(int) * (size_t)(n_molecules + 1));
    if (!b->offset) return dm_fail(err, "out of memory allocating %d molecules", n_molecules);
    b->offset[0] = 0;
    for (int m = 0; m < n_molecules; m++) {
        if (sizes[m] < 1) {
            free(b->offset);
            b->offset = NULL;
            return dm_fail(err, "molecule %d has %d atoms; expected at least 1", m, sizes[m]);
        }
        b->offset[m + 1] = b->offset[m] + sizes[m];
    }
    b->n_molecules = n_molecules;
    b->n_atoms = b->offset[n_molecules];
    b->species = calloc((size_t)b->n_atoms + 1, sizeof(int));
    b->positions = calloc((size_t)b->n_atoms * 3 + 1, sizeof(double));
    if (!b->species || !b->positions) {
        molecule_batch_free(b);
        return dm_fail(err, "out of memory allocating %d atoms", b->n_atoms);
    }
    return 0;
}

void molecule_batch_free(molecule_batch *b)
{
    free(b->offset);
    free(b->species);
    free(b->positions);
    memset(b, 0, sizeof *b);
}
