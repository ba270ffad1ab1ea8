/* platform_cuda.c — the "cuda" platform: painn_cuda behind platform_ops, with
 * host arrays in and out (positions uploaded, the captured graph replayed,
 * energies and forces downloaded; each call synchronises). */
#include "../core/platform.h"
#include "painn_cuda.h"

#include <stdlib.h>

typedef struct cuda_model {
    painn_cuda *ctx;
    cudaStream_t stream;
} cuda_model;

static int cuda_available(dm_error *err)
{
    char why[512];
    if (painn_cuda_device_available(why, sizeof why)) return 1;
    dm_fail(err, "%s", why);
    return 0;
}

static void cuda_model_destroy(void *impl)
{
    cuda_model *cm = impl;
    if (!cm) return;
    painn_cuda_destroy(cm->ctx);
    if (cm->stream) cudaStreamDestroy(cm->stream);
    free(cm);
}

static int cuda_model_create(void **impl, const painn_model *m, const molecule_batch *topology,
                             dm_error *err)
{
    *impl = NULL;
    cuda_model *cm = calloc(1, sizeof *cm);
    if (!cm) return dm_fail(err, "out of memory");
    if (painn_cuda_create(&cm->ctx, m, topology, NULL, err)) {
        free(cm);
        return -1;
    }
    cudaError_t e = cudaStreamCreateWithFlags(&cm->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cuda_model_destroy(cm);
        return dm_fail(err, "cudaStreamCreate: %s", cudaGetErrorString(e));
    }
    *impl = cm;
    return 0;
}

static int cuda_model_compute(void *impl, const double *positions, double *energies, double *forces,
                              dm_error *err)
{
    cuda_model *cm = impl;
    if (painn_cuda_upload_positions(cm->ctx, positions, cm->stream, err)) return -1;
    if (painn_cuda_evaluate_graph(cm->ctx, cm->stream, err)) return -1;
    return painn_cuda_download(cm->ctx, energies, forces, cm->stream, err);
}

const platform_ops platform_cuda = {
    .name = "cuda",
    .available = cuda_available,
    .model_create = cuda_model_create,
    .model_compute = cuda_model_compute,
    .model_destroy = cuda_model_destroy,
};
