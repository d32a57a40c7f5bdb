/* ops_cpu_pool.c -- the CPU pooling and preprocessing operators (OpenMP),
 * split from ops_cpu.c: memory-bound passes with no BLAS in them.  Pooling
 * runs planes in parallel; preprocessing runs images in parallel.
 */
#include "nightshift/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "nightshift/image.h"

/* Clones for AVX2 and AVX-512 of the vectorisable loops (not under ASan,
 * whose instrumentation and ifunc resolvers do not mix). */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define NS_DW_CLONES __attribute__((target_clones("avx2", "avx512f", "default")))
#else
#define NS_DW_CLONES
#endif

/* ---- pooling ----------------------------------------------------------------- */

static void cpu_pool(const ns_pool_params *p, const float *x, float *y, int avg)
{
    long planes = (long)p->n * p->c;
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < planes; nc++) {
        const float *xp = x + (size_t)nc * p->h * p->w;
        float *yp = y + (size_t)nc * p->h_out * p->w_out;
        for (int oh = 0; oh < p->h_out; oh++) {
            int h0 = oh * p->stride_h - p->pad_top, h1 = h0 + p->kh;
            int h1p = h1 < p->h + p->pad_bottom ? h1 : p->h + p->pad_bottom;
            int a0 = h0 < 0 ? 0 : h0, a1 = h1 < p->h ? h1 : p->h;
            for (int ow = 0; ow < p->w_out; ow++) {
                int w0 = ow * p->stride_w - p->pad_left, w1 = w0 + p->kw;
                int w1p = w1 < p->w + p->pad_right ? w1 : p->w + p->pad_right;
                int b0 = w0 < 0 ? 0 : w0, b1 = w1 < p->w ? w1 : p->w;
                float v;
                if (avg) {
                    float s = 0.f;
                    for (int ih = a0; ih < a1; ih++)
                        for (int iw = b0; iw < b1; iw++)
                            s += xp[(size_t)ih * p->w + iw];
                    int cnt = p->count_include_pad ? (h1p - h0) * (w1p - w0)
                                                   : (a1 - a0) * (b1 - b0);
                    v = s / (float)cnt;
                } else {
                    v = -INFINITY;
                    for (int ih = a0; ih < a1; ih++)
                        for (int iw = b0; iw < b1; iw++) {
                            float t = xp[(size_t)ih * p->w + iw];
                            v = t > v ? t : v;
                        }
                }
                yp[(size_t)oh * p->w_out + ow] = v;
            }
        }
    }
}

/* Max pooling, separably: for each output row the max over its window's
 * input rows (a contiguous, vectorisable pass), then over each window's
 * columns of that row.  The generic loop above visited kh * kw scattered
 * elements per output; resnet18's 3x3/2 stem pool spent ~3% of the network
 * there.  Rows wider than MAXPOOL_ROW take the generic loop. */
enum { MAXPOOL_ROW = 2048 };

NS_DW_CLONES
static void maxpool_plane(const ns_pool_params *p, const float *restrict xp, float *restrict yp)
{
    float row[MAXPOOL_ROW];
    const int w = p->w, wo = p->w_out, s = p->stride_w, kw = p->kw;
    /* Interior columns: the whole window inside the row. */
    int owa = p->pad_left <= 0 ? 0 : (p->pad_left + s - 1) / s;
    int owb = w - kw + p->pad_left < 0 ? 0 : (w - kw + p->pad_left) / s + 1;
    owb = owb < wo ? owb : wo;
    owa = owa < owb ? owa : owb;
    for (int oh = 0; oh < p->h_out; oh++) {
        int h0 = oh * p->stride_h - p->pad_top, h1 = h0 + p->kh;
        h0 = h0 < 0 ? 0 : h0;
        h1 = h1 < p->h ? h1 : p->h;
        float *yr = yp + (size_t)oh * wo;
        if (h1 <= h0) { /* a window of padding only */
            for (int ow = 0; ow < wo; ow++)
                yr[ow] = -INFINITY;
            continue;
        }
        memcpy(row, xp + (size_t)h0 * w, (size_t)w * sizeof *row);
        for (int ih = h0 + 1; ih < h1; ih++) {
            const float *restrict xr = xp + (size_t)ih * w;
            for (int iw = 0; iw < w; iw++)
                row[iw] = xr[iw] > row[iw] ? xr[iw] : row[iw];
        }
        const float *rr = row - p->pad_left;
        if (kw == 3 && s == 2)
            for (int ow = owa; ow < owb; ow++) {
                float a = rr[2 * ow], b = rr[2 * ow + 1], c = rr[2 * ow + 2];
                a = b > a ? b : a;
                yr[ow] = c > a ? c : a;
            }
        else
            for (int ow = owa; ow < owb; ow++) {
                float v = rr[ow * s];
                for (int j = 1; j < kw; j++)
                    v = rr[ow * s + j] > v ? rr[ow * s + j] : v;
                yr[ow] = v;
            }
        for (int ow = 0; ow < wo; ow++) {
            if (ow == owa)
                ow = owb; /* skip the interior */
            if (ow >= wo)
                break;
            int w0 = ow * s - p->pad_left, w1 = w0 + kw;
            w0 = w0 < 0 ? 0 : w0;
            w1 = w1 < w ? w1 : w;
            float v = -INFINITY;
            for (int iw = w0; iw < w1; iw++)
                v = row[iw] > v ? row[iw] : v;
            yr[ow] = v;
        }
    }
}

void ns_cpu_maxpool(const ns_pool_params *p, const float *x, float *y)
{
    if (p->w > MAXPOOL_ROW) {
        cpu_pool(p, x, y, 0);
        return;
    }
    long planes = (long)p->n * p->c;
    /* Small inputs (the default backbone's final 4x4 pool: 0.5 M floats)
     * stay on one thread, as for the global average pool below. */
#pragma omp parallel for schedule(static) if (planes * p->h * p->w > (1L << 20))
    for (long nc = 0; nc < planes; nc++)
        maxpool_plane(p, x + (size_t)nc * p->h * p->w, y + (size_t)nc * p->h_out * p->w_out);
}
void ns_cpu_avgpool(const ns_pool_params *p, const float *x, float *y) { cpu_pool(p, x, y, 1); }

/* Eight partial sums so the compiler can vectorise the reduction (strict
 * float semantics forbid it reordering one running sum). */
NS_DW_CLONES
static float plane_sum(const float *restrict xp, int hw)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= hw; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += xp[i + k];
    float s = 0.f;
    for (; i < hw; i++)
        s += xp[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

void ns_cpu_global_avgpool(const float *x, int n, int c, int hw, float *y)
{
    long planes = (long)n * c;
    /* Memory-bound and short: one thread sums 0.5 M floats in ~0.2 ms, while
     * a team stalls for milliseconds whenever another process holds a core
     * (measured 0.5-12 ms for 64 x 512 x 4 x 4 on the loaded 2-core VM). */
#pragma omp parallel for schedule(static) if (planes * hw > (1L << 22))
    for (long nc = 0; nc < planes; nc++)
        y[nc] = plane_sum(x + (size_t)nc * hw, hw) / (float)hw;
}

/* ---- preprocessing ------------------------------------------------------------- */

NS_DW_CLONES
static void preprocess_half(const uint8_t *restrict src, int S, int sz, const int *src_ch,
                            const float *scale, const float *shift, float *restrict yb)
{
    const size_t plane = (size_t)sz * sz;
    for (int oy = 0; oy < sz; oy++) {
        const uint8_t *r0 = src + (size_t)(2 * oy) * S * 3, *r1 = r0 + (size_t)S * 3;
        for (int c = 0; c < 3; c++) {
            const int k = src_ch[c];
            const float sc = scale[c], sh = shift[c];
            float *restrict yr = yb + c * plane + (size_t)oy * sz;
            for (int ox = 0; ox < sz; ox++) {
                int sum = r0[6 * ox + k] + r0[6 * ox + 3 + k] + r1[6 * ox + k] + r1[6 * ox + 3 + k];
                yr[ox] = (float)((sum + 2) >> 2) * sc + sh;
            }
        }
    }
}

/* When resizing, no scratch is needed: the resized uint8 image (3 * sz^2
 * bytes) is written into the last quarter of the image's own float output
 * (12 * sz^2 bytes), then expanded in place, pixel by pixel.  Pixel q's
 * floats go to bytes [4q, 4q + 4) of each plane; the last plane starts at
 * 8 sz^2 and the unread source at 9 sz^2 + 3q, so the writes for pixel q
 * end at 8 sz^2 + 4q + 4 <= 9 sz^2 + 3(q + 1): never past what is still
 * unread.  Hence the byte reads of a pixel strictly before its writes. */
void ns_cpu_preprocess(const ns_preproc *pp, const uint8_t *frames, int n, int S, float *y)
{
    const int sz = pp->size;
    const size_t plane = (size_t)sz * sz;
    float scale[3], shift[3];
    int src_ch[3];
    for (int c = 0; c < 3; c++) {
        scale[c] = 1.0f / (255.0f * pp->std[c]);
        shift[c] = -pp->mean[c] / pp->std[c];
        src_ch[c] = pp->bgr ? 2 - c : c;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < n; b++) {
        float *yb = y + (size_t)b * 3 * plane;
        const uint8_t *src = frames + (size_t)b * S * S * 3;
        if (S == 2 * sz) {
            /* Halving (224 -> 112 for the default backbone): each area pixel
             * is a 2x2 mean, rounded half up as ns_resize_area rounds it. */
            preprocess_half(src, S, sz, src_ch, scale, shift, yb);
            continue;
        }
        if (sz != S) {
            uint8_t *tmp = (uint8_t *)yb + 9 * plane;
            ns_resize_area(src, S, S, (size_t)S * 3, tmp, sz, sz, (size_t)sz * 3);
            src = tmp;
        }
        for (size_t q = 0; q < plane; q++) {
            float v0 = src[3 * q + src_ch[0]], v1 = src[3 * q + src_ch[1]];
            float v2 = src[3 * q + src_ch[2]];
            yb[q] = v0 * scale[0] + shift[0];
            yb[plane + q] = v1 * scale[1] + shift[1];
            yb[2 * plane + q] = v2 * scale[2] + shift[2];
        }
    }
}
