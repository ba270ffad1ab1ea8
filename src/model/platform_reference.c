/* platform_reference.c — the reference platform: the float64 model on the host. */
#include "../core/platform.h"
#include "painn_reference.h"

#include <stdlib.h>
#include <string.h>

typedef struct reference_model {
    const painn_model *model;
    molecule_batch topology; /* own copy of offsets and species */
} reference_model;

static int reference_available(dm_error *err)
{
    (void)err;
    return 1;
}

static int reference_model_create(void **impl, const painn_model *m, const molecule_batch *topo,
                                  dm_error *err)
{
    reference_model *r = calloc(1, sizeof *r);
    if (!r) return dm_fail(err, "out of memory");
    int *sizes = malloc(sizeof(int) * ((size_t)topo->n_molecules + 1));
    if (!sizes) {
        free(r);
        return dm_fail(err, "out of memory");
    }
    for (int mol = 0; mol < topo->n_molecules; mol++)
        sizes[mol] = topo->offset[mol + 1] - topo->offset[mol];
    int rc = molecule_batch_alloc(&r->topology, topo->n_molecules, sizes, err);
    free(sizes);
    if (rc) {
        free(r);
        return -1;
    }
    memcpy(r->topology.species, topo->species, sizeof(int) * (size_t)topo->n_atoms);
    r->model = m;
    *impl = r;
    return 0;
}

static int reference_model_compute(void *impl, const double *positions, double *energies,
                                   double *forces, dm_error *err)
{
    reference_model *r = impl;
    return painn_reference_compute(r->model, &r->topology, positions, energies, forces, err);
}

static void reference_model_destroy(void *impl)
{
    reference_model *r = impl;
    if (!r) return;
    molecule_batch_free(&r->topology);
    free(r);
}

const platform_ops platform_reference = {
    .name = "reference",
    .available = reference_available,
    .model_create = reference_model_create,
    .model_compute = reference_model_compute,
    .model_destroy = reference_model_destroy,
};
