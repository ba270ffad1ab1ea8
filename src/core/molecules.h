/* molecules.h — a batch of independent molecules (they never interact):
 * concatenated atoms, with molecule m owning atoms [offset[m], offset[m+1]). */
#ifndef DISTILMD_MOLECULES_H
#define DISTILMD_MOLECULES_H

#include "error.h"

typedef struct molecule_batch {
    int n_molecules;
    int n_atoms;          /* offset[n_molecules] */
    int *offset;          /* [n_molecules + 1] */
    int *species;         /* [n_atoms] atomic numbers Z */
    double *positions;    /* [n_atoms * 3] Å, x y z per atom */
} molecule_batch;

/* Allocates a batch for the given molecule sizes; positions zeroed. */
int molecule_batch_alloc(molecule_batch *b, int n_molecules, const int *sizes, dm_error *err);
void molecule_batch_free(molecule_batch *b);

#endif
