/* Plain C references for the CUDA kernels; always built. */
#include "ns_cuda.h"

void ns_ref_iota_affine(uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a * (uint32_t)i + b;
}
