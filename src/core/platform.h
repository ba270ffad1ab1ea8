/* platform.h — one interface, several platforms (as in OpenMM).
 *
 * A platform evaluates the model for a whole batch of molecules in one call.
 * "reference" is plain C in float64 (the ground truth); "cuda" keeps
 * everything resident on the GPU (float32 storage, float64 reductions).
 * "auto" picks cuda when a GPU is present, else reference. */
#ifndef DISTILMD_PLATFORM_H
#define DISTILMD_PLATFORM_H

#include "error.h"
#include "molecules.h"
#include "../model/painn_model.h"

typedef struct platform_ops {
    const char *name;
    /* 1 if this platform can run here; else 0 and a reason in err. */
    int (*available)(dm_error *err);
    /* Prepares an evaluator for batches shaped like `topology` (its offsets
     * and species are copied; its positions are ignored). */
    int (*model_create)(void **impl, const painn_model *m, const molecule_batch *topology,
                        dm_error *err);
    /* energies[n_molecules] (eV) and forces[n_atoms*3] (eV/Å) for the given
     * positions[n_atoms*3] (Å). Host arrays; forces may be NULL. */
    int (*model_compute)(void *impl, const double *positions, double *energies, double *forces,
                         dm_error *err);
    void (*model_destroy)(void *impl);
} platform_ops;

extern const platform_ops platform_reference;
#ifdef DISTILMD_HAVE_CUDA
extern const platform_ops platform_cuda;
#endif

/* Looks a platform up by name ("reference", "cuda", "auto"). For "auto" it
 * says on `note` (when non-NULL) which platform it chose and why. */
const platform_ops *platform_find(const char *name, char *note, size_t note_len, dm_error *err);

#endif
