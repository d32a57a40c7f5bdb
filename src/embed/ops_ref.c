/* ops_ref.c -- the reference operators: direct loops, double accumulation.
 *
 * Slow on purpose: every ns_cpu_* and ns_cuda_* operator is tested against
 * these, so they follow the ONNX definitions as literally as possible.  Also
 * home of the shape checks (ns_conv_prepare, ns_pool_prepare) and the
 * BatchNorm folding, which both fast paths share.
 */
#include "nightshift/ops.h"

#include <math.h>
#include <string.h>

/* ---- shapes ------------------------------------------------------------------ */

ns_status ns_conv_prepare(ns_conv_params *p)
{
    if (p->n <= 0 || p->c_in <= 0 || p->h <= 0 || p->w <= 0 || p->c_out <= 0 || p->kh <= 0 ||
        p->kw <= 0)
        return ns_error(NS_ERR_USAGE, "conv: non-positive size (n %d, c_in %d, %dx%d, c_out %d, "
                        "kernel %dx%d)", p->n, p->c_in, p->h, p->w, p->c_out, p->kh, p->kw);
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return ns_error(NS_ERR_USAGE, "conv: stride %dx%d must be positive", p->stride_h,
                        p->stride_w);
    if (p->dil_h <= 0 || p->dil_w <= 0)
        return ns_error(NS_ERR_USAGE, "conv: dilation %dx%d must be positive", p->dil_h,
                        p->dil_w);
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return ns_error(NS_ERR_USAGE, "conv: negative padding (%d %d %d %d)", p->pad_top,
                        p->pad_left, p->pad_bottom, p->pad_right);
    if (p->groups <= 0 || p->c_in % p->groups != 0 || p->c_out % p->groups != 0)
        return ns_error(NS_ERR_USAGE, "conv: %d groups do not divide c_in %d and c_out %d",
                        p->groups, p->c_in, p->c_out);
    /* 64-bit: a huge dilation must not overflow into a "fitting" kernel. */
    int64_t eh = (int64_t)p->dil_h * (p->kh - 1) + 1, ew = (int64_t)p->dil_w * (p->kw - 1) + 1;
    int64_t ph = (int64_t)p->h + p->pad_top + p->pad_bottom;
    int64_t pw = (int64_t)p->w + p->pad_left + p->pad_right;
    if (eh > ph || ew > pw)
        return ns_error(NS_ERR_USAGE, "conv: kernel %dx%d (dilated %lldx%lld) larger than the "
                        "padded input %lldx%lld", p->kh, p->kw, (long long)eh, (long long)ew,
                        (long long)ph, (long long)pw);
    p->h_out = (int)((ph - eh) / p->stride_h + 1);
    p->w_out = (int)((pw - ew) / p->stride_w + 1);
    return NS_OK;
}

/* One axis of ONNX/PyTorch pooling.  In ceil mode the last window is dropped
 * when it would start in the bottom/right padding; with pads smaller than the
 * kernel every window then covers at least one input element. */
static int pool_out(int in, int k, int s, int p0, int p1, int ceil_mode)
{
    int span = in + p0 + p1 - k;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p0)
        out--;
    return out;
}

ns_status ns_pool_prepare(ns_pool_params *p)
{
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0 || p->kh <= 0 || p->kw <= 0)
        return ns_error(NS_ERR_USAGE, "pool: non-positive size (n %d, c %d, %dx%d, kernel %dx%d)",
                        p->n, p->c, p->h, p->w, p->kh, p->kw);
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return ns_error(NS_ERR_USAGE, "pool: stride %dx%d must be positive", p->stride_h,
                        p->stride_w);
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0 ||
        p->pad_top >= p->kh || p->pad_bottom >= p->kh || p->pad_left >= p->kw ||
        p->pad_right >= p->kw)
        return ns_error(NS_ERR_USAGE, "pool: padding (%d %d %d %d) must be >= 0 and smaller "
                        "than the kernel %dx%d", p->pad_top, p->pad_left, p->pad_bottom,
                        p->pad_right, p->kh, p->kw);
    if (p->kh > p->h + p->pad_top + p->pad_bottom || p->kw > p->w + p->pad_left + p->pad_right)
        return ns_error(NS_ERR_USAGE, "pool: kernel %dx%d larger than the padded input %dx%d",
                        p->kh, p->kw, p->h + p->pad_top + p->pad_bottom,
                        p->w + p->pad_left + p->pad_right);
    p->h_out = pool_out(p->h, p->kh, p->stride_h, p->pad_top, p->pad_bottom, p->ceil_mode);
    p->w_out = pool_out(p->w, p->kw, p->stride_w, p->pad_left, p->pad_right, p->ceil_mode);
    return NS_OK;
}

/* ---- activations ------------------------------------------------------------- */

static double act1(ns_act act, double x)
{
    switch (act.kind) {
    case NS_ACT_NONE:
        return x;
    case NS_ACT_RELU:
        return x > 0 ? x : 0;
    case NS_ACT_CLIP:
        return x < act.a ? act.a : x > act.b ? act.b : x;
    case NS_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case NS_ACT_HARDSIGMOID: {
        double v = act.a * x + act.b;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case NS_ACT_HARDSWISH: {
        double r = x + 3;
        r = r < 0 ? 0 : r > 6 ? 6 : r;
        return x * r / 6;
    }
    case NS_ACT_SILU:
        return x / (1.0 + exp(-x));
    }
    return x;
}

void ns_ref_act(ns_act act, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)act1(act, x[i]);
}

void ns_ref_add(const float *a, const float *b, float *y, size_t n, ns_act act)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (float)act1(act, (double)a[i] + b[i]);
}

void ns_ref_mul_channel(const float *x, const float *s, float *y, int n, int c, int hw)
{
    for (size_t nc = 0; nc < (size_t)n * c; nc++)
        for (size_t i = 0; i < (size_t)hw; i++)
            y[nc * hw + i] = x[nc * hw + i] * s[nc];
}

/* ---- convolution --------------------------------------------------------------- */

void ns_ref_conv2d(const ns_conv_params *p, const float *x, const float *w, const float *bias,
                   ns_act act, float *y)
{
    int cig = p->c_in / p->groups, cog = p->c_out / p->groups;
    for (int b = 0; b < p->n; b++)
        for (int co = 0; co < p->c_out; co++) {
            int g = co / cog;
            for (int oh = 0; oh < p->h_out; oh++)
                for (int ow = 0; ow < p->w_out; ow++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < cig; ci++)
                        for (int i = 0; i < p->kh; i++) {
                            int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
                            if (ih < 0 || ih >= p->h)
                                continue;
                            for (int j = 0; j < p->kw; j++) {
                                int iw = ow * p->stride_w - p->pad_left + j * p->dil_w;
                                if (iw < 0 || iw >= p->w)
                                    continue;
                                size_t xi = (((size_t)b * p->c_in + (size_t)g * cig + ci) * p->h +
                                             ih) * p->w + iw;
                                size_t wi = (((size_t)co * cig + ci) * p->kh + i) * p->kw + j;
                                acc += (double)x[xi] * w[wi];
                            }
                        }
                    y[(((size_t)b * p->c_out + co) * p->h_out + oh) * p->w_out + ow] =
                        (float)act1(act, acc);
                }
        }
}

/* ---- pooling ----------------------------------------------------------------- */

/* avg != 0: average pooling, else max. */
static void ref_pool(const ns_pool_params *p, const float *x, float *y, int avg)
{
    for (size_t nc = 0; nc < (size_t)p->n * p->c; nc++) {
        const float *xp = x + nc * p->h * p->w;
        float *yp = y + nc * p->h_out * p->w_out;
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                int h0 = oh * p->stride_h - p->pad_top, w0 = ow * p->stride_w - p->pad_left;
                /* count_include_pad counts the window clipped to the padded
                 * input: ceil mode's overhang past the padding is not counted. */
                int h1p = h0 + p->kh < p->h + p->pad_bottom ? h0 + p->kh : p->h + p->pad_bottom;
                int w1p = w0 + p->kw < p->w + p->pad_right ? w0 + p->kw : p->w + p->pad_right;
                double acc = 0, mx = -INFINITY;
                int cnt = 0;
                for (int ih = h0; ih < h0 + p->kh; ih++)
                    for (int iw = w0; iw < w0 + p->kw; iw++) {
                        if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w)
                            continue;
                        double v = xp[(size_t)ih * p->w + iw];
                        acc += v;
                        mx = v > mx ? v : mx;
                        cnt++;
                    }
                if (avg)
                    cnt = p->count_include_pad ? (h1p - h0) * (w1p - w0) : cnt;
                yp[(size_t)oh * p->w_out + ow] = (float)(avg ? acc / cnt : mx);
            }
    }
}

void ns_ref_maxpool(const ns_pool_params *p, const float *x, float *y) { ref_pool(p, x, y, 0); }
void ns_ref_avgpool(const ns_pool_params *p, const float *x, float *y) { ref_pool(p, x, y, 1); }

void ns_ref_global_avgpool(const float *x, int n, int c, int hw, float *y)
{
    for (size_t nc = 0; nc < (size_t)n * c; nc++) {
        double acc = 0;
        for (int i = 0; i < hw; i++)
            acc += x[nc * hw + i];
        y[nc] = (float)(acc / hw);
    }
}

/* ---- dense ------------------------------------------------------------------- */

void ns_ref_gemm(const float *x, const float *w, const float *bias, float *y, int n, int k,
                 int m, ns_act act)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double acc = bias ? bias[j] : 0.0;
            for (int l = 0; l < k; l++)
                acc += (double)x[(size_t)i * k + l] * w[(size_t)j * k + l];
            y[(size_t)i * m + j] = (float)act1(act, acc);
        }
}

void ns_ref_concat(const float *const *x, const int *c, int k, int n, int hw, float *y)
{
    for (int b = 0; b < n; b++)
        for (int i = 0; i < k; i++) {
            size_t len = (size_t)c[i] * hw;
            memcpy(y, x[i] + (size_t)b * len, len * sizeof *y);
            y += len;
        }
}

void ns_ref_l2norm(float *x, int n, int d)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * d;
        double ss = 0;
        for (int j = 0; j < d; j++)
            ss += (double)r[j] * r[j];
        if (ss == 0)
            continue;
        double inv = 1.0 / sqrt(ss);
        for (int j = 0; j < d; j++)
            r[j] = (float)(r[j] * inv);
    }
}

/* ---- preprocessing ------------------------------------------------------------- */

/* Area mean of source pixels covering output (oy, ox), channel ch, straight
 * from the definition in image.h: overlaps in units of 1/size source pixel,
 * rounded half up to uint8 as ns_resize_area does. */
static uint8_t area_pixel(const uint8_t *src, int S, int size, int oy, int ox, int ch)
{
    double acc = 0;
    /* Only the source rows and columns the footprint can touch. */
    int y0 = (int)((int64_t)oy * S / size), y1 = (int)(((int64_t)oy + 1) * S / size + 1);
    int x0 = (int)((int64_t)ox * S / size), x1 = (int)(((int64_t)ox + 1) * S / size + 1);
    y1 = y1 < S ? y1 : S;
    x1 = x1 < S ? x1 : S;
    for (int y = y0; y < y1; y++) {
        int64_t ylo = (int64_t)oy * S > (int64_t)y * size ? (int64_t)oy * S : (int64_t)y * size;
        int64_t yhi = (int64_t)(oy + 1) * S < (int64_t)(y + 1) * size ? (int64_t)(oy + 1) * S
                                                                      : (int64_t)(y + 1) * size;
        if (yhi <= ylo)
            continue;
        for (int x = x0; x < x1; x++) {
            int64_t xlo = (int64_t)ox * S > (int64_t)x * size ? (int64_t)ox * S
                                                              : (int64_t)x * size;
            int64_t xhi = (int64_t)(ox + 1) * S < (int64_t)(x + 1) * size
                              ? (int64_t)(ox + 1) * S
                              : (int64_t)(x + 1) * size;
            if (xhi <= xlo)
                continue;
            acc += (double)(yhi - ylo) * (double)(xhi - xlo) * src[((size_t)y * S + x) * 3 + ch];
        }
    }
    acc /= (double)S * S;
    return (uint8_t)(acc + 0.5 >= 255 ? 255 : acc + 0.5);
}

void ns_ref_preprocess(const ns_preproc *pp, const uint8_t *frames, int n, int S, float *y)
{
    int sz = pp->size;
    for (int b = 0; b < n; b++) {
        const uint8_t *f = frames + (size_t)b * S * S * 3;
        for (int c = 0; c < 3; c++) {
            int src_ch = pp->bgr ? 2 - c : c;
            for (int oy = 0; oy < sz; oy++)
                for (int ox = 0; ox < sz; ox++) {
                    uint8_t v = sz == S ? f[((size_t)oy * S + ox) * 3 + src_ch]
                                        : area_pixel(f, S, sz, oy, ox, src_ch);
                    y[(((size_t)b * 3 + c) * sz + oy) * sz + ox] =
                        (float)((v / 255.0 - pp->mean[c]) / pp->std[c]);
                }
        }
    }
}

/* ---- BatchNorm folding ------------------------------------------------------- */

void ns_fold_batchnorm(float *w, float *bias, int c_out, size_t k, const float *gamma,
                       const float *beta, const float *mean, const float *var, float eps)
{
    for (int o = 0; o < c_out; o++) {
        double s = gamma[o] / sqrt((double)var[o] + eps);
        for (size_t i = 0; i < k; i++)
            w[(size_t)o * k + i] = (float)(w[(size_t)o * k + i] * s);
        bias[o] = (float)((bias[o] - (double)mean[o]) * s + beta[o]);
    }
}
