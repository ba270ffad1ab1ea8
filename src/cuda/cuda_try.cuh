/* cuda_try.cuh — CUDA_TRY for the .cu files of this folder. */
#ifndef DISTILMD_CUDA_TRY_CUH
#define DISTILMD_CUDA_TRY_CUH

#include <cuda_runtime.h>

extern "C" {
#include "../core/error.h"
}

/* In a function that returns int and has a dm_error *err: a failed CUDA
 * call returns -1 with a message naming the call and the place. */
#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return dm_fail(err, "CUDA error in %s (%s:%d): %s", #call, __FILE__, __LINE__,         \
                           cudaGetErrorString(e_));                                                \
    } while (0)

#endif
