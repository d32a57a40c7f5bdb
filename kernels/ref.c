/* Plain C references for the CUDA kernels; always built. */
#include "ns_cuda.h"

#include <string.h>

void ns_ref_iota_affine(uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a * (uint32_t)i + b;
}

/* bf16 is the top half of an IEEE float: add half an ulp of the kept part,
 * plus one when the kept part is odd (ties to even), and truncate.  A carry
 * out of the mantissa bumps the exponent, which is the correct rounding up
 * (to infinity past the largest finite bf16). */
uint16_t ns_ref_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep sign and payload, make it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void ns_ref_f32_to_bf16_array(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = ns_ref_f32_to_bf16(x[i]);
}

float ns_ref_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
