/* ops_cpu.c -- the CPU operators: OpenMP + OpenBLAS.
 *
 * Convolutions are im2col + cblas_sgemm per image and group; 1x1 stride-1
 * unpadded convolutions hand x to sgemm as it is, and depthwise convolutions
 * (groups == c_in == c_out) run a direct kernel, since their GEMMs would have
 * a single row.  Bias and activation are applied in one pass over each
 * output plane while it is still in cache.
 *
 * Threading: whole images run in parallel, one per thread with its own
 * im2col buffer, and OpenBLAS (the OpenMP build) runs each sgemm on the
 * calling thread since it is inside a parallel region.  On the 2-core VM
 * (bench/embed/conv_bench.c, resnet18 shapes at batch 16) that beat images in
 * turn with sgemm threading itself by about 1.2-2x, most for 1x1 and the
 * small late-stage GEMMs, and it degrades less when other work shares the
 * cores (no per-GEMM barriers).  Images left over when n is not a multiple of the thread count run
 * in turn with threaded sgemm, so batch 1 still uses every core.  The
 * workspace therefore holds one im2col buffer per thread: size it with
 * ns_conv_workspace_floats(p, omp_get_max_threads()) (smaller `threads` are
 * raised to that).  The cheap passes (im2col, bias + activation, pooling,
 * depthwise) use OpenMP directly; nested inside the image loop they run on
 * the one thread.
 */
#include "nightshift/ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nightshift/image.h"

/* ---- activations ------------------------------------------------------------- */

static inline float act1(ns_act act, float x)
{
    switch (act.kind) {
    case NS_ACT_NONE:
        return x;
    case NS_ACT_RELU:
        return x > 0.f ? x : 0.f;
    case NS_ACT_CLIP:
        return x < act.a ? act.a : x > act.b ? act.b : x;
    case NS_ACT_SIGMOID:
        return 1.f / (1.f + expf(-x));
    case NS_ACT_HARDSIGMOID: {
        float v = act.a * x + act.b;
        return v < 0.f ? 0.f : v > 1.f ? 1.f : v;
    }
    case NS_ACT_HARDSWISH: {
        float r = x + 3.f;
        r = r < 0.f ? 0.f : r > 6.f ? 6.f : r;
        return x * r * (1.f / 6.f);
    }
    case NS_ACT_SILU:
        return x / (1.f + expf(-x));
    }
    return x;
}

/* x[i] = act(x[i] + b) over one plane.  The switch sits outside the loops so
 * each loop is a tight, vectorisable one. */
static void bias_act(float *restrict x, size_t n, float b, ns_act act)
{
    switch (act.kind) {
    case NS_ACT_NONE:
        if (b != 0.f)
            for (size_t i = 0; i < n; i++)
                x[i] += b;
        return;
    case NS_ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            float v = x[i] + b;
            x[i] = v > 0.f ? v : 0.f;
        }
        return;
    case NS_ACT_CLIP:
        for (size_t i = 0; i < n; i++) {
            float v = x[i] + b;
            v = v < act.a ? act.a : v;
            x[i] = v > act.b ? act.b : v;
        }
        return;
    default:
        for (size_t i = 0; i < n; i++)
            x[i] = act1(act, x[i] + b);
        return;
    }
}

void ns_cpu_act(ns_act act, float *x, size_t n)
{
    if (act.kind == NS_ACT_NONE)
        return;
    const size_t chunk = 16384;
    long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (long c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk, len = n - lo < chunk ? n - lo : chunk;
        bias_act(x + lo, len, 0.f, act);
    }
}

void ns_cpu_add(const float *a, const float *b, float *y, size_t n, ns_act act)
{
    const size_t chunk = 16384;
    long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (long c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk, hi = n - lo < chunk ? n : lo + chunk;
        /* y may alias a or b: element-wise, each read precedes its write. */
        for (size_t i = lo; i < hi; i++)
            y[i] = a[i] + b[i];
        bias_act(y + lo, hi - lo, 0.f, act);
    }
}

void ns_cpu_mul_channel(const float *x, const float *s, float *y, int n, int c, int hw)
{
    long planes = (long)n * c;
#pragma omp parallel for schedule(static) if (planes * hw > 65536)
    for (long nc = 0; nc < planes; nc++) {
        const float *restrict xp = x + (size_t)nc * hw;
        float *yp = y + (size_t)nc * hw;
        float sc = s[nc];
        for (int i = 0; i < hw; i++)
            yp[i] = xp[i] * sc;
    }
}

/* ---- convolution --------------------------------------------------------------- */

static int conv_is_pointwise(const ns_conv_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
}

static int conv_is_depthwise(const ns_conv_params *p)
{
    return p->groups > 1 && p->groups == p->c_in && p->groups == p->c_out;
}

size_t ns_conv_workspace_floats(const ns_conv_params *p, int threads)
{
    if (conv_is_pointwise(p) || conv_is_depthwise(p))
        return 0;
    /* Raised to the thread count ns_cpu_conv2d will use: a caller that asks
     * for fewer must not get a buffer the image loop overruns. */
    int t = omp_get_max_threads();
    t = threads > t ? threads : t;
    return (size_t)t * (size_t)(p->c_in / p->groups) * p->kh * p->kw * p->h_out * p->w_out;
}

/* col (cig * kh * kw, h_out * w_out) for one image's group: row (c, i, j)
 * holds input channel c shifted by kernel tap (i, j), zeros in the padding. */
static void im2col(const ns_conv_params *p, const float *x, int cig, float *col)
{
    const int KK = p->kh * p->kw, ho = p->h_out, wo = p->w_out;
    const size_t hw_out = (size_t)ho * wo;
    long rows = (long)cig * KK;
#pragma omp parallel for schedule(static) if (rows * (long)hw_out > 32768)
    for (long r = 0; r < rows; r++) {
        int c = (int)(r / KK), i = (int)(r % KK) / p->kw, j = (int)(r % KK) % p->kw;
        const float *xc = x + (size_t)c * p->h * p->w;
        float *dst = col + (size_t)r * hw_out;
        int off_w = j * p->dil_w - p->pad_left, sw = p->stride_w;
        /* Valid ow: 0 <= ow * sw + off_w < w. */
        int ow0 = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
        int ow1 = p->w - off_w <= 0 ? 0 : (p->w - off_w + sw - 1) / sw;
        ow1 = ow1 < wo ? ow1 : wo;
        ow0 = ow0 < ow1 ? ow0 : ow1;
        for (int oh = 0; oh < ho; oh++, dst += wo) {
            int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
            if (ih < 0 || ih >= p->h) {
                memset(dst, 0, (size_t)wo * sizeof *dst);
                continue;
            }
            const float *src = xc + (size_t)ih * p->w + off_w;
            for (int ow = 0; ow < ow0; ow++)
                dst[ow] = 0.f;
            if (sw == 1)
                memcpy(dst + ow0, src + ow0, (size_t)(ow1 - ow0) * sizeof *dst);
            else
                for (int ow = ow0; ow < ow1; ow++)
                    dst[ow] = src[(size_t)ow * sw];
            for (int ow = ow1; ow < wo; ow++)
                dst[ow] = 0.f;
        }
    }
}

/* Depthwise: one plane per (image, channel), taps accumulated row by row
 * into the output row over the range of ow each tap keeps inside x. */
static void conv_depthwise(const ns_conv_params *p, const float *x, const float *w,
                           const float *bias, ns_act act, float *y)
{
    const int ho = p->h_out, wo = p->w_out, sw = p->stride_w;
    long planes = (long)p->n * p->c_out;
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < planes; nc++) {
        int c = (int)(nc % p->c_out);
        const float *xc = x + (size_t)nc * p->h * p->w;
        const float *wc = w + (size_t)c * p->kh * p->kw;
        float *yc = y + (size_t)nc * ho * wo;
        float b = bias ? bias[c] : 0.f;
        for (int oh = 0; oh < ho; oh++) {
            float *restrict yr = yc + (size_t)oh * wo;
            for (int ow = 0; ow < wo; ow++)
                yr[ow] = 0.f;
            for (int i = 0; i < p->kh; i++) {
                int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
                if (ih < 0 || ih >= p->h)
                    continue;
                for (int j = 0; j < p->kw; j++) {
                    int off_w = j * p->dil_w - p->pad_left;
                    int ow0 = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
                    int ow1 = p->w - off_w <= 0 ? 0 : (p->w - off_w + sw - 1) / sw;
                    ow1 = ow1 < wo ? ow1 : wo;
                    const float *restrict xr = xc + (size_t)ih * p->w + off_w;
                    float wt = wc[i * p->kw + j];
                    if (sw == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            yr[ow] += wt * xr[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            yr[ow] += wt * xr[(size_t)ow * sw];
                }
            }
            bias_act(yr, (size_t)wo, b, act);
        }
    }
}

/* Images [b0, b1), one after the other, with the im2col buffer col. */
static void conv_images(const ns_conv_params *p, const float *x, const float *w,
                        const float *bias, ns_act act, float *y, float *col, int b0, int b1)
{
    const int G = p->groups, cig = p->c_in / G, cog = p->c_out / G;
    const int K = cig * p->kh * p->kw;
    const size_t hw_in = (size_t)p->h * p->w, hw_out = (size_t)p->h_out * p->w_out;
    const int pointwise = conv_is_pointwise(p);
    for (int b = b0; b < b1; b++) {
        const float *xb = x + (size_t)b * p->c_in * hw_in;
        float *yb = y + (size_t)b * p->c_out * hw_out;
        for (int g = 0; g < G; g++) {
            const float *xg = xb + (size_t)g * cig * hw_in;
            const float *a = xg;
            if (!pointwise) {
                im2col(p, xg, cig, col);
                a = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, (int)hw_out, K, 1.0f,
                        w + (size_t)g * cog * K, K, a, (int)hw_out, 0.0f,
                        yb + (size_t)g * cog * hw_out, (int)hw_out);
        }
        if (bias || act.kind != NS_ACT_NONE) {
#pragma omp parallel for schedule(static) if ((size_t)p->c_out * hw_out > 32768)
            for (int co = 0; co < p->c_out; co++)
                bias_act(yb + (size_t)co * hw_out, hw_out, bias ? bias[co] : 0.f, act);
        }
    }
}

void ns_cpu_conv2d(const ns_conv_params *p, const float *x, const float *w, const float *bias,
                   ns_act act, float *y, float *workspace)
{
    if (conv_is_depthwise(p)) {
        conv_depthwise(p, x, w, bias, act, y);
        return;
    }
    size_t col_floats = conv_is_pointwise(p) ? 0
                                             : (size_t)(p->c_in / p->groups) * p->kh * p->kw *
                                                   p->h_out * p->w_out;
    int T = omp_get_max_threads();
    int whole = T > 1 ? p->n / T * T : 0; /* images that fill every thread */
    if (whole > 0) {
#pragma omp parallel num_threads(T)
        {
            /* The team's own thread number: 0 for all when this region is
             * nested inside another and runs on one thread. */
            float *col = workspace ? workspace + col_floats * (size_t)omp_get_thread_num() : NULL;
#pragma omp for schedule(static)
            for (int b = 0; b < whole; b++)
                conv_images(p, x, w, bias, act, y, col, b, b + 1);
        }
    }
    conv_images(p, x, w, bias, act, y, workspace, whole, p->n);
}

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

void ns_cpu_maxpool(const ns_pool_params *p, const float *x, float *y) { cpu_pool(p, x, y, 0); }
void ns_cpu_avgpool(const ns_pool_params *p, const float *x, float *y) { cpu_pool(p, x, y, 1); }

void ns_cpu_global_avgpool(const float *x, int n, int c, int hw, float *y)
{
    long planes = (long)n * c;
#pragma omp parallel for schedule(static) if (planes * hw > 65536)
    for (long nc = 0; nc < planes; nc++) {
        const float *xp = x + (size_t)nc * hw;
        float s = 0.f;
        for (int i = 0; i < hw; i++)
            s += xp[i];
        y[nc] = s / (float)hw;
    }
}

/* ---- dense ------------------------------------------------------------------- */

void ns_cpu_gemm(const float *x, const float *w, const float *bias, float *y, int n, int k,
                 int m, ns_act act)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, x, k, w, k, 0.0f, y, m);
    if (!bias && act.kind == NS_ACT_NONE)
        return;
    for (int i = 0; i < n; i++) {
        float *r = y + (size_t)i * m;
        if (bias)
            for (int j = 0; j < m; j++)
                r[j] += bias[j];
        bias_act(r, (size_t)m, 0.f, act);
    }
}

void ns_cpu_concat(const float *const *x, const int *c, int k, int n, int hw, float *y)
{
    size_t ctot = 0;
    for (int i = 0; i < k; i++)
        ctot += (size_t)c[i];
#pragma omp parallel for schedule(static) if ((size_t)n * ctot * hw > 65536)
    for (int b = 0; b < n; b++) {
        float *dst = y + (size_t)b * ctot * hw;
        for (int i = 0; i < k; i++) {
            size_t len = (size_t)c[i] * hw;
            memcpy(dst, x[i] + (size_t)b * len, len * sizeof *dst);
            dst += len;
        }
    }
}

void ns_cpu_l2norm(float *x, int n, int d)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * d;
        double ss = 0; /* double: long embeddings must not lose the small terms */
        for (int j = 0; j < d; j++)
            ss += (double)r[j] * r[j];
        if (ss == 0)
            continue;
        float inv = (float)(1.0 / sqrt(ss));
        for (int j = 0; j < d; j++)
            r[j] *= inv;
    }
}

/* ---- preprocessing ------------------------------------------------------------- */

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
#pragma omp parallel for schedule(static)
    for (int b = 0; b < n; b++) {
        float *yb = y + (size_t)b * 3 * plane;
        const uint8_t *src = frames + (size_t)b * S * S * 3;
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
