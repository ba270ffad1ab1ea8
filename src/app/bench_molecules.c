/* bench_molecules.c — see bench_molecules.h. */
#include "bench_molecules.h"

#include <stdlib.h>
#include <string.h>

int bench_read_molecules(const char *list, xyz_trajectory **mols, int *n, dm_error *err)
{
    int count = 1;
    for (const char *p = list; *p; p++) count += *p == ',';
    *n = 0;
    *mols = calloc((size_t)count, sizeof **mols);
    if (!*mols) return dm_fail(err, "out of memory");
    for (const char *p = list;; p++) {
        const size_t len = strcspn(p, ",");
        char path[1200];
        if (len == 0 || len >= sizeof path)
            return dm_fail(err, "molecules '%s': expected XYZ files separated by commas", list);
        memcpy(path, p, len);
        path[len] = '\0';
        if (xyz_read_file(path, &(*mols)[*n], err)) return -1;
        ++*n;
        p += len;
        if (!*p) return 0;
    }
}

void bench_molecules_free(xyz_trajectory *mols, int n)
{
    for (int i = 0; mols && i < n; i++) xyz_trajectory_free(&mols[i]);
    free(mols);
}

int bench_batch(const xyz_trajectory *mols, int n, int R, int first, molecule_batch *b,
                dm_error *err)
{
    int *sizes = calloc(R > 0 ? (size_t)R : 1, sizeof(int));
    if (!sizes) return dm_fail(err, "out of memory");
    for (int r = 0; r < R; r++) sizes[r] = mols[(first + r) % n].frames[0].n_atoms;
    int rc = molecule_batch_alloc(b, R, sizes, err);
    free(sizes);
    if (rc) return -1;
    for (int r = 0; r < R; r++) {
        const xyz_frame *f = &mols[(first + r) % n].frames[0];
        memcpy(b->species + b->offset[r], f->species, sizeof(int) * (size_t)f->n_atoms);
        memcpy(b->positions + 3 * (size_t)b->offset[r], f->positions,
               sizeof(double) * 3 * (size_t)f->n_atoms);
    }
    return 0;
}
