/* Plain C references for the CUDA kernels; always built. */
#include "ns_cuda.h"
#include "wino.h"

#include <stdlib.h>
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

/* ---- Winograd F(2x2, 3x3): the plain C twin of conv.cu's Winograd path -------------- */

int ns_conv_winograd_ok(const ns_conv_params *p)
{
    return ns_wino_ok(p->kh, p->kw, p->stride_h, p->stride_w, p->dil_h, p->dil_w, p->groups) &&
           p->h_out >= 1 && p->w_out >= 1;
}

ns_status ns_ref_conv2d_winograd(const ns_conv_params *p, const float *x, const float *w,
                                 const float *bias, ns_act act, float *y)
{
    const int C = p->c_in, K = p->c_out, H = p->h, W = p->w, Ho = p->h_out, Wo = p->w_out;
    const int th = (Ho + 1) / 2, tw = (Wo + 1) / 2;
    const size_t T = (size_t)p->n * th * tw;
    float *U = malloc((size_t)16 * K * C * sizeof *U);
    float *V = malloc((size_t)16 * C * T * sizeof *V);
    float *M = malloc((size_t)16 * K * T * sizeof *M);
    ns_status st = NS_OK;
    if (!ns_conv_winograd_ok(p)) {
        st = ns_error(NS_ERR_USAGE, "winograd: conv %dx%d stride %d,%d dilation %d,%d groups %d "
                      "is not 3x3 stride 1 ungrouped", p->kh, p->kw, p->stride_h, p->stride_w,
                      p->dil_h, p->dil_w, p->groups);
        goto done;
    }
    if (!U || !V || !M) {
        st = ns_error(NS_ERR_NOMEM, "winograd: no memory for %zu tiles", T);
        goto done;
    }
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++) {
            float u[16];
            ns_wino_filter(w + ((size_t)k * C + c) * 9, u);
            for (int xi = 0; xi < 16; xi++)
                U[((size_t)xi * K + k) * C + c] = u[xi];
        }
    for (int img = 0; img < p->n; img++)
        for (int c = 0; c < C; c++)
            for (int ty = 0; ty < th; ty++)
                for (int tx = 0; tx < tw; tx++) {
                    size_t t = ((size_t)img * th + ty) * tw + tx;
                    ns_wino_input_tile(x + ((size_t)img * C + c) * H * W, H, W,
                                       2 * ty - p->pad_top, 2 * tx - p->pad_left,
                                       V + (size_t)c * T + t, (size_t)C * T);
                }
    for (int xi = 0; xi < 16; xi++)
        for (int k = 0; k < K; k++)
            for (size_t t = 0; t < T; t++) {
                float s = 0.0f;
                for (int c = 0; c < C; c++)
                    s += U[((size_t)xi * K + k) * C + c] * V[((size_t)xi * C + c) * T + t];
                M[((size_t)xi * K + k) * T + t] = s;
            }
    for (int img = 0; img < p->n; img++)
        for (int k = 0; k < K; k++)
            for (int ty = 0; ty < th; ty++)
                for (int tx = 0; tx < tw; tx++) {
                    size_t t = ((size_t)img * th + ty) * tw + tx;
                    float o[4];
                    ns_wino_output_tile(M + (size_t)k * T + t, (size_t)K * T, o);
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            int oy = 2 * ty + i, ox = 2 * tx + j;
                            if (oy < Ho && ox < Wo)
                                y[(((size_t)img * K + k) * Ho + oy) * Wo + ox] =
                                    o[i * 2 + j] + (bias ? bias[k] : 0.0f);
                        }
                }
    ns_ref_act(act, y, (size_t)p->n * K * Ho * Wo);
done:
    free(U);
    free(V);
    free(M);
    return st;
}
