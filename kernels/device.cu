// Device discovery and a self-test kernel, so every CUDA build exercises the
// whole path (nvcc, cudart, launch, copy back) from day one.
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "ns_cuda.h"

#define CUDA_TRY(call)                                                                  \
    do {                                                                                \
        cudaError_t err_ = (call);                                                      \
        if (err_ != cudaSuccess) {                                                      \
            st = ns_error(NS_ERR_NODEV, "%s: %s", #call, cudaGetErrorString(err_));     \
            goto done;                                                                  \
        }                                                                               \
    } while (0)


extern "C" int ns_cuda_runtime_version(void)
{
    int v = 0;
    if (cudaRuntimeGetVersion(&v) != cudaSuccess)
        return 0;
    return v;
}

__global__ void iota_affine_kernel(uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = a * (uint32_t)i + b;
}

extern "C" ns_status ns_cuda_iota_affine(int dev, uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    ns_status st = NS_OK;
    uint32_t *d = NULL;
    unsigned blocks = (unsigned)((n + 255) / 256);
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaMalloc(&d, n * sizeof *d > 0 ? n * sizeof *d : 4));
    if (n > 0) {
        iota_affine_kernel<<<blocks, 256>>>(d, n, a, b);
        CUDA_TRY(cudaGetLastError());
        CUDA_TRY(cudaMemcpy(out, d, n * sizeof *d, cudaMemcpyDeviceToHost));
    }
done:
    if (d)
        cudaFree(d);
    return st;
}

extern "C" ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count)
{
    ns_status st = NS_OK;
    int n = 0;
    *count = 0;
    CUDA_TRY(cudaGetDeviceCount(&n));
    if (n == 0) {
        st = ns_error(NS_ERR_NODEV, "no CUDA device found");
        goto done;
    }
    for (int i = 0; i < n && i < cap; i++) {
        cudaDeviceProp p;
        uint32_t probe[1024], want[1024];
        ns_cuda_device *d = &out[i];
        memset(d, 0, sizeof *d);
        CUDA_TRY(cudaGetDeviceProperties(&p, i));
        d->index = i;
        snprintf(d->name, sizeof d->name, "%s", p.name);
        d->total_mem = p.totalGlobalMem;
        d->cc_major = p.major;
        d->cc_minor = p.minor;
        d->sm_count = p.multiProcessorCount;
        ns_ref_iota_affine(want, 1024, 2654435761u, 7u);
        d->kernel_ok = ns_cuda_iota_affine(i, probe, 1024, 2654435761u, 7u) == NS_OK &&
                       memcmp(probe, want, sizeof probe) == 0;
        *count = i + 1;
    }
done:
    return st;
}
