/* block_reduce.cuh — sums and maxima over a thread block in a fixed tree
 * order (deterministic: no atomics), for kernels of one block per replica.
 * The block must have REDUCE_THREADS threads (a power of two). */
#ifndef DISTILMD_BLOCK_REDUCE_CUH
#define DISTILMD_BLOCK_REDUCE_CUH

#define REDUCE_THREADS 256

static __device__ double block_sum(double v, double *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();
    return total;
}

static __device__ double block_max(double v, double *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();
    return total;
}

#endif
