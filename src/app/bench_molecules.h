/* bench_molecules.h — the molecules of a benchmark batch, shared by
 * `distilmd bench` and `distilmd bench --md`. */
#ifndef DISTILMD_BENCH_MOLECULES_H
#define DISTILMD_BENCH_MOLECULES_H

#include "core/error.h"
#include "core/molecules.h"
#include "io/xyz.h"

/* Reads the XYZ files of a comma-separated list into *mols (n of them; free
 * with bench_molecules_free). Empty entries are an error naming the list. */
int bench_read_molecules(const char *list, xyz_trajectory **mols, int *n, dm_error *err);
void bench_molecules_free(xyz_trajectory *mols, int n);

/* A batch of R molecules, molecule r being the first frame of
 * mols[(first + r) % n]. */
int bench_batch(const xyz_trajectory *mols, int n, int R, int first, molecule_batch *b,
                dm_error *err);

#endif
