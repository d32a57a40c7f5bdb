/* Linked instead of the .cu files when nvcc is not available. */
#include "ns_cuda.h"

int ns_cuda_built(void) { return 0; }

int ns_cuda_runtime_version(void) { return 0; }

ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count)
{
    (void)out;
    (void)cap;
    *count = 0;
    return ns_error(NS_ERR_NODEV, "built without CUDA");
}

ns_status ns_cuda_iota_affine(int dev, uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    (void)dev; (void)out; (void)n; (void)a; (void)b;
    return ns_error(NS_ERR_NODEV, "built without CUDA");
}
