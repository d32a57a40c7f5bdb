/* ops_cpu.c -- the CPU operators: OpenMP + OpenBLAS (pooling and
 * preprocessing are in ops_cpu_pool.c).
 *
 * Convolutions are im2col + cblas_sgemm; 1x1 stride-1 unpadded convolutions
 * hand x to sgemm as it is, and depthwise convolutions (groups == c_in ==
 * c_out) run a direct kernel, since their GEMMs would have a single row.
 * Output planes under CONV_MIN_COLS pixels are batched, several images to
 * one GEMM (see conv_plan), and stride-2 convs copy their im2col rows from
 * an even/odd-column split of the input.  Bias and activation are applied
 * in one pass over each output plane while it is still in cache.
 *
 * Threading: units of whole images run in parallel, one per thread with its
 * own scratch, and OpenBLAS (the OpenMP build) runs each sgemm on the
 * calling thread since it is inside a parallel region.  On the 2-core VM
 * (bench/embed/conv_bench.c, resnet18 shapes at batch 16) that beat images in
 * turn with sgemm threading itself by about 1.2-2x, most for 1x1 and the
 * small late-stage GEMMs, and it degrades less when other work shares the
 * cores (no per-GEMM barriers).  With fewer units than threads (batch 1)
 * the units run in turn with threaded sgemm, so every core still works.
 * The workspace therefore holds one unit's scratch per thread (for
 * depthwise convs, one zero-padded plane per thread): size it with
 * ns_conv_workspace_floats(p, omp_get_max_threads()) (smaller `threads` are
 * raised to that).  The cheap passes (im2col, bias + activation,
 * depthwise) use OpenMP directly; nested inside the unit loop they run on
 * the one thread.
 */
#include "nightshift/ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

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

/* The depthwise padded-plane path (conv_depthwise) and its scratch. */
typedef struct dw_flat {
    int hp, wp, wq; /* padded plane; wq: its even (or odd) columns */
    size_t pad_floats, out_floats;
} dw_flat;

static int dw_flat_geom(const ns_conv_params *p, dw_flat *f);

/* How the GEMM columns (output pixels of one or more images) are cut.
 * Per-image GEMMs starve once the output planes get small, so planes under
 * CONV_MIN_COLS pixels are batched: nb images side by side in one (K, nb *
 * hw) im2col matrix, one GEMM into a scratch (c_out, nb * hw), then
 * scattered to NCHW with bias and activation.  Single-threaded CPU time,
 * batch 32, on the 2-core VM: the default backbone's 7x7 -> 4x4 conv5 and
 * 14x14 -> 7x7 conv4 went from 98 and 112 to 135 and 130 GFLOP/s,
 * resnet18's 512-channel 7x7 convs from 118 to 142; a 256-column threshold
 * beat 128 and 512.  Huge im2col matrices (over CONV_TILE_FLOATS, none in
 * the shipped backbones at 224) are built and consumed in tiles of whole
 * output rows, the GEMM writing its tile straight into y (ldc = hw): tiles
 * sized for L2 (~0.5 MB) were measured 10-15% slower than whole-image GEMMs
 * with OpenBLAS, which wants long N, so the tiles only bound the scratch. */
enum { CONV_MIN_COLS = 256, CONV_MAX_NB = 64 };
#define CONV_TILE_FLOATS ((size_t)4 << 20)

typedef struct conv_plan {
    int K;          /* GEMM depth: c_in / groups * kh * kw */
    int hw;         /* output pixels per image */
    int nb;         /* images per GEMM (1: tiled within the image) */
    int nt;         /* columns per tile when nb == 1 */
    size_t col_floats, out_floats; /* per thread */
    size_t dei_floats;             /* per thread: x de-interleaved (stride-2 convs) */
} conv_plan;

/* nb from the plane size and the batch, never from the thread count. */
static void conv_plan_make(const ns_conv_params *p, conv_plan *c)
{
    const int G = p->groups;
    c->K = p->c_in / G * p->kh * p->kw;
    c->hw = p->h_out * p->w_out;
    c->nb = 1;
    c->nt = c->hw;
    c->out_floats = 0;
    /* Stride-2 taps read every other column: im2col's strided gathers cost
     * more than the stem's GEMM.  With each input row split once into its
     * even and odd columns, every tap row is a plain copy. */
    c->dei_floats = G == 1 && p->stride_w == 2 && p->dil_w == 1 && p->kw >= 3
                        ? (size_t)p->c_in * p->h * p->w
                        : 0;
    if (G == 1 && c->hw < CONV_MIN_COLS) {
        /* Never sized by the thread count: the images batched together
         * change the sgemm's shape and so the last bits of the result, and
         * embeddings must not depend on how many cores a job was given
         * (a Slurm task on one core against nightly on two). */
        int nb = (CONV_MIN_COLS + c->hw - 1) / c->hw;
        nb = nb < p->n ? nb : p->n;
        nb = nb < CONV_MAX_NB ? nb : CONV_MAX_NB;
        c->nb = nb > 1 ? nb : 1;
    }
    if (c->nb > 1) {
        c->col_floats = (size_t)c->K * c->nb * c->hw;
        c->out_floats = (size_t)p->c_out * c->nb * c->hw;
        return;
    }
    if (G == 1 && !conv_is_pointwise(p)) {
        /* Whole rows of output where possible keep im2col's runs long. */
        int nt = (int)(CONV_TILE_FLOATS / c->K);
        nt = nt < 256 ? 256 : nt;
        if (nt < c->hw && nt > p->w_out)
            nt -= nt % p->w_out;
        c->nt = nt < c->hw ? nt : c->hw;
    }
    c->col_floats = conv_is_pointwise(p) ? 0 : (size_t)c->K * c->nt;
}

size_t ns_conv_workspace_floats(const ns_conv_params *p, int threads)
{
    /* Raised to the thread count ns_cpu_conv2d will use: a caller that asks
     * for fewer must not get a buffer the image loop overruns. */
    int t = omp_get_max_threads();
    t = threads > t ? threads : t;
    if (conv_is_depthwise(p)) {
        dw_flat f;
        return dw_flat_geom(p, &f) ? (size_t)t * (f.pad_floats + f.out_floats) : 0;
    }
    conv_plan c;
    conv_plan_make(p, &c);
    return (size_t)t * (c.col_floats + c.out_floats + c.dei_floats);
}

/* Depthwise: one plane per (image, channel).  Columns [owa, owb) keep every
 * horizontal tap inside x, so there each valid input row adds its kw taps
 * in one branch-free, vectorisable pass over the output row; the few border
 * columns go tap by tap with bounds checks.  kw 3 and 5 at stride 1 and 2
 * (every depthwise layer of the torchvision mobile nets) get loops with
 * constant trip counts and strides; the per-tap column ranges are computed
 * once per call, not per row (the divisions dominated 7x7 and 14x14 planes). */
typedef struct dw_geom {
    int owa, owb; /* interior columns */
} dw_geom;

static inline void dw_row_fixed(float *restrict yr, const float *restrict xr, const float *wr,
                                int kw, int sw, int dw, int owa, int owb, float init, int first)
{
    if (first)
        for (int ow = owa; ow < owb; ow++)
            yr[ow] = init;
#pragma GCC unroll 8
    for (int j = 0; j < kw; j++) {
        const float wt = wr[j];
        const float *restrict xj = xr + j * dw;
        for (int ow = owa; ow < owb; ow++)
            yr[ow] += wt * xj[(size_t)ow * sw];
    }
}

/* All kw taps summed in registers before yr is touched: one load and one
 * store of yr per input row instead of one per tap. */
#define NS_DW_ROW(KW, SW)                                                                       \
    static inline void dw_row_k##KW##_s##SW(float *restrict yr, const float *restrict xr,     \
                                            const float *wr, int owa, int owb, float init,    \
                                            int first)                                        \
    {                                                                                          \
        float wk[KW];                                                                          \
        for (int j = 0; j < KW; j++)                                                           \
            wk[j] = wr[j];                                                                     \
        for (int ow = owa; ow < owb; ow++) {                                                   \
            float s = first ? init : yr[ow];                                                   \
            for (int j = 0; j < KW; j++)                                                       \
                s += wk[j] * xr[ow * SW + j];                                                  \
            yr[ow] = s;                                                                        \
        }                                                                                      \
    }
NS_DW_ROW(3, 1)
NS_DW_ROW(3, 2)
NS_DW_ROW(5, 1)
NS_DW_ROW(5, 2)
#undef NS_DW_ROW

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define NS_DW_CLONES __attribute__((target_clones("avx2", "avx512f", "default")))
#else
#define NS_DW_CLONES
#endif

NS_DW_CLONES
static void dw_plane(const ns_conv_params *p, const dw_geom *g, const float *xc, const float *wc,
                     float b, ns_act act, float *yc)
{
    const int ho = p->h_out, wo = p->w_out, sw = p->stride_w, kw = p->kw;
    const int fast = p->dil_w == 1 && (kw == 3 || kw == 5) && (sw == 1 || sw == 2);
    for (int oh = 0; oh < ho; oh++) {
        float *restrict yr = yc + (size_t)oh * wo;
        int first = 1;
        for (int i = 0; i < p->kh; i++) {
            int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
            if (ih < 0 || ih >= p->h)
                continue;
            /* Interior column ow reads x columns ow * sw + j * dil_w - pad_left. */
            const float *xr = xc + (size_t)ih * p->w - p->pad_left;
            const float *wr = wc + i * kw;
            if (!fast)
                dw_row_fixed(yr, xr, wr, kw, sw, p->dil_w, g->owa, g->owb, b, first);
            else if (kw == 3 && sw == 1) /* direct calls: each inlines into every clone */
                dw_row_k3_s1(yr, xr, wr, g->owa, g->owb, b, first);
            else if (kw == 3)
                dw_row_k3_s2(yr, xr, wr, g->owa, g->owb, b, first);
            else if (sw == 1)
                dw_row_k5_s1(yr, xr, wr, g->owa, g->owb, b, first);
            else
                dw_row_k5_s2(yr, xr, wr, g->owa, g->owb, b, first);
            first = 0;
        }
        if (first)
            for (int ow = g->owa; ow < g->owb; ow++)
                yr[ow] = b;
        for (int ow = 0; ow < wo; ow++) {
            if (ow == g->owa)
                ow = g->owb; /* skip the interior */
            if (ow >= wo)
                break;
            float s = b;
            for (int i = 0; i < p->kh; i++) {
                int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
                if (ih < 0 || ih >= p->h)
                    continue;
                for (int j = 0; j < kw; j++) {
                    int iw = ow * sw - p->pad_left + j * p->dil_w;
                    if (iw >= 0 && iw < p->w)
                        s += wc[i * kw + j] * xc[(size_t)ih * p->w + iw];
                }
            }
            yr[ow] = s;
        }
        bias_act(yr, (size_t)wo, 0.f, act);
    }
}

/* Small and mid-sized planes go through a zero-padded copy instead, so no
 * tap needs a bounds check and all K*K weights stay in registers.  At stride
 * 1 the output on the padded row pitch, q = oh * wp + ow, reads q + i * wp + j:
 * the whole plane is one long branch-free loop (columns past w_out are
 * computed into scratch and dropped), which matters for the 7x7..28x28
 * planes whose rows are too short to vectorise on their own.  Stride 2
 * splits the padded plane into its even and odd columns, so every tap is a
 * unit-stride load, and goes row by row straight into y.  Single-threaded,
 * batch 8, vs the old row kernel: 2.5-4x on mobilenet_v2's 7..56 planes,
 * 1.5x on 112x112.  3x3 and 5x5, stride 1 or 2, no dilation; the rest (and
 * callers without a workspace) take the row kernel above. */
static int dw_flat_geom(const ns_conv_params *p, dw_flat *f)
{
    int k = p->kh, s = p->stride_h;
    if (k != p->kw || (k != 3 && k != 5) || s != p->stride_w || (s != 1 && s != 2) ||
        p->dil_h != 1 || p->dil_w != 1)
        return 0;
    f->hp = p->h + p->pad_top + p->pad_bottom;
    f->wp = p->w + p->pad_left + p->pad_right;
    f->wq = (f->wp + 1) / 2;
    /* Stride 1 reads up to hp * wp + k - 2: k floats of zero slack.  Stride
     * 2 keeps the even and the odd padded columns as two planes of hp x wq. */
    f->pad_floats = (s == 1 ? (size_t)f->hp * f->wp : 2 * (size_t)f->hp * f->wq) + (size_t)k;
    f->out_floats = s == 1 ? (size_t)p->h_out * f->wp : 0;
    /* Above ~256 KiB per thread the copies stop paying for themselves. */
    return f->pad_floats + f->out_floats <= 65536;
}

#define NS_DW_FLAT(K)                                                                          \
    static inline void dw_flat_k##K(float *restrict out, const float *restrict pad,           \
                                    const float *wc, float b, int wp, size_t nq)              \
    {                                                                                          \
        float wk[K * K];                                                                       \
        for (int t = 0; t < K * K; t++)                                                        \
            wk[t] = wc[t];                                                                     \
        for (size_t q = 0; q < nq; q++) {                                                      \
            float s = b;                                                                       \
            _Pragma("GCC unroll 5") for (int i = 0; i < K; i++)                                \
                _Pragma("GCC unroll 5") for (int j = 0; j < K; j++) s +=                       \
                wk[i * K + j] * pad[q + (size_t)i * wp + j];                                   \
            out[q] = s;                                                                        \
        }                                                                                      \
    }                                                                                          \
    static inline void dw_s2_k##K(float *restrict y, const float *restrict ev,                \
                                  const float *restrict od, const float *wc, float b, int wq, \
                                  int ho, int wo)                                             \
    {                                                                                          \
        float wk[K * K];                                                                       \
        for (int t = 0; t < K * K; t++)                                                        \
            wk[t] = wc[t];                                                                     \
        for (int oh = 0; oh < ho; oh++) {                                                      \
            float *restrict yr = y + (size_t)oh * wo;                                          \
            for (int ow = 0; ow < wo; ow++) {                                                  \
                float s = b;                                                                   \
                _Pragma("GCC unroll 5") for (int i = 0; i < K; i++) {                          \
                    size_t r = (size_t)(2 * oh + i) * wq + ow;                                 \
                    _Pragma("GCC unroll 5") for (int j = 0; j < K; j++) s +=                   \
                        wk[i * K + j] * ((j & 1) ? od : ev)[r + j / 2];                        \
                }                                                                              \
                yr[ow] = s;                                                                    \
            }                                                                                  \
        }                                                                                      \
    }
NS_DW_FLAT(3)
NS_DW_FLAT(5)
#undef NS_DW_FLAT

/* x plane (h, w) into the interiors of its zero-padded even-column and
 * odd-column planes ev, od (hp, wq); padded column c goes to column c / 2. */
static void split_parity(const ns_conv_params *p, const float *xc, float *ev, float *od, int wq)
{
    /* x columns e0, e0 + 2, ... land on even padded columns. */
    const int e0 = p->pad_left & 1, o0 = 1 - e0;
    for (int ih = 0; ih < p->h; ih++) {
        const float *restrict xr = xc + (size_t)ih * p->w;
        size_t r = (size_t)(ih + p->pad_top) * wq;
        float *restrict de = ev + r + (size_t)((e0 + p->pad_left) >> 1);
        float *restrict dq = od + r + (size_t)((o0 + p->pad_left) >> 1);
        for (int t = 0; e0 + 2 * t < p->w; t++)
            de[t] = xr[e0 + 2 * t];
        for (int t = 0; o0 + 2 * t < p->w; t++)
            dq[t] = xr[o0 + 2 * t];
    }
}

/* pad: this thread's padded plane, zero outside the interior (which is
 * rewritten here for every plane), then out. */
NS_DW_CLONES
static void dw_plane_flat(const ns_conv_params *p, const dw_flat *f, float *pad, const float *xc,
                          const float *wc, float b, ns_act act, float *yc)
{
    float *out = pad + f->pad_floats;
    const int k = p->kh, ho = p->h_out, wo = p->w_out;
    if (p->stride_h == 2) {
        /* Split columns by parity so every tap is a unit-stride load. */
        float *ev = pad, *od = pad + (size_t)f->hp * f->wq;
        split_parity(p, xc, ev, od, f->wq);
        if (k == 3)
            dw_s2_k3(yc, ev, od, wc, b, f->wq, ho, wo);
        else
            dw_s2_k5(yc, ev, od, wc, b, f->wq, ho, wo);
        if (act.kind != NS_ACT_NONE)
            bias_act(yc, (size_t)ho * wo, 0.f, act);
        return;
    }
    for (int ih = 0; ih < p->h; ih++)
        memcpy(pad + (size_t)(ih + p->pad_top) * f->wp + p->pad_left, xc + (size_t)ih * p->w,
               (size_t)p->w * sizeof *pad);
    if (k == 3)
        dw_flat_k3(out, pad, wc, b, f->wp, f->out_floats);
    else
        dw_flat_k5(out, pad, wc, b, f->wp, f->out_floats);
    for (int oh = 0; oh < ho; oh++) {
        float *yr = yc + (size_t)oh * wo;
        memcpy(yr, out + (size_t)oh * f->wp, (size_t)wo * sizeof *yr);
        bias_act(yr, (size_t)wo, 0.f, act);
    }
}

static void conv_depthwise(const ns_conv_params *p, const float *x, const float *w,
                           const float *bias, ns_act act, float *y, float *workspace)
{
    const int wo = p->w_out, sw = p->stride_w;
    /* Tap j stays inside x for ow in [lo_j, hi_j); the interior is their
     * intersection, empty (owa == owb) when no column keeps every tap. */
    int owa = 0, owb = wo;
    for (int j = 0; j < p->kw; j++) {
        int off = j * p->dil_w - p->pad_left;
        int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int hi = p->w - off <= 0 ? 0 : (p->w - off + sw - 1) / sw;
        owa = lo > owa ? lo : owa;
        owb = hi < owb ? hi : owb;
    }
    owa = owa < wo ? owa : wo;
    owb = owb > owa ? owb : owa;
    const dw_geom g = {owa, owb};
    long planes = (long)p->n * p->c_out;
    dw_flat f;
    if (workspace && dw_flat_geom(p, &f)) {
        const size_t per = f.pad_floats + f.out_floats;
#pragma omp parallel num_threads(omp_get_max_threads())
        {
            float *pad = workspace + per * (size_t)omp_get_thread_num();
            memset(pad, 0, f.pad_floats * sizeof *pad);
#pragma omp for schedule(dynamic, 16)
            for (long nc = 0; nc < planes; nc++) {
                int c = (int)(nc % p->c_out);
                dw_plane_flat(p, &f, pad, x + (size_t)nc * p->h * p->w,
                              w + (size_t)c * p->kh * p->kw, bias ? bias[c] : 0.f, act,
                              y + (size_t)nc * p->h_out * p->w_out);
            }
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < planes; nc++) {
        int c = (int)(nc % p->c_out);
        dw_plane(p, &g, x + (size_t)nc * p->h * p->w, w + (size_t)c * p->kh * p->kw,
                 bias ? bias[c] : 0.f, act, y + (size_t)nc * p->h_out * p->w_out);
    }
}

/* Columns [q0, q1) of one image's group im2col matrix into col (leading
 * dimension ld): row (c, i, j) holds input channel c shifted by kernel tap
 * (i, j), zeros in the padding; column q is output pixel (q / w_out, q % w_out). */
/* x's rows (c, ih) as their even columns then their odd ones, into xd. */
static void deinterleave(const ns_conv_params *p, const float *x, float *xd)
{
    const int w = p->w, we = (w + 1) / 2;
    long rows = (long)p->c_in * p->h;
#pragma omp parallel for schedule(static) if (rows * w > 65536)
    for (long r = 0; r < rows; r++) {
        const float *restrict xr = x + (size_t)r * w;
        float *restrict ev = xd + (size_t)r * w, *restrict od = ev + we;
        for (int t = 0; t < w / 2; t++) {
            ev[t] = xr[2 * t];
            od[t] = xr[2 * t + 1];
        }
        if (w & 1)
            ev[we - 1] = xr[w - 1];
    }
}

/* xd: x de-interleaved by deinterleave() (stride-2 convs), else NULL. */
static void im2col_cols(const ns_conv_params *p, const float *x, const float *xd, int cig,
                        int q0, int q1, float *col, size_t ld)
{
    const int KK = p->kh * p->kw, wo = p->w_out;
    long rows = (long)cig * KK;
#pragma omp parallel for schedule(static) if (rows * (long)(q1 - q0) > 32768)
    for (long r = 0; r < rows; r++) {
        int c = (int)(r / KK), i = (int)(r % KK) / p->kw, j = (int)(r % KK) % p->kw;
        const float *xc = x + (size_t)c * p->h * p->w;
        float *dst = col + (size_t)r * ld - q0;
        int off_w = j * p->dil_w - p->pad_left, sw = p->stride_w;
        /* Valid ow: 0 <= ow * sw + off_w < w. */
        int ow0 = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
        int ow1 = p->w - off_w <= 0 ? 0 : (p->w - off_w + sw - 1) / sw;
        ow1 = ow1 < wo ? ow1 : wo;
        ow0 = ow0 < ow1 ? ow0 : ow1;
        for (int oh = q0 / wo; oh * wo < q1; oh++) {
            int a = q0 - oh * wo, e = q1 - oh * wo;
            a = a > 0 ? a : 0;
            e = e < wo ? e : wo;
            float *d = dst + (size_t)oh * wo;
            int ih = oh * p->stride_h - p->pad_top + i * p->dil_h;
            if (ih < 0 || ih >= p->h) {
                memset(d + a, 0, (size_t)(e - a) * sizeof *d);
                continue;
            }
            int v0 = ow0 > a ? ow0 : a, v1 = ow1 < e ? ow1 : e;
            v1 = v1 > v0 ? v1 : v0;
            const float *src = xc + (size_t)ih * p->w + off_w;
            for (int ow = a; ow < v0 && ow < e; ow++)
                d[ow] = 0.f;
            if (sw == 1)
                memcpy(d + v0, src + v0, (size_t)(v1 - v0) * sizeof *d);
            else if (xd) {
                /* Column 2 ow + off_w is entry ow + (off_w - par) / 2 of
                 * the row's half of parity par. */
                int par = off_w & 1;
                const float *half = xd + ((size_t)c * p->h + ih) * p->w +
                                    (par ? (p->w + 1) / 2 : 0) + (off_w - par) / 2;
                memcpy(d + v0, half + v0, (size_t)(v1 - v0) * sizeof *d);
            } else
                for (int ow = v0; ow < v1; ow++)
                    d[ow] = src[(size_t)ow * sw];
            for (int ow = v1 > a ? v1 : a; ow < e; ow++)
                d[ow] = 0.f;
        }
    }
}

/* Images [b0, b1) as one GEMM (c->nb > 1, one group): col (K, nb * hw),
 * out (c_out, nb * hw), then each image's planes to y with bias + act. */
static void conv_batched(const ns_conv_params *p, const conv_plan *c, const float *x,
                         const float *w, const float *bias, ns_act act, float *y, float *col,
                         float *out, int b0, int b1)
{
    const size_t hw_in = (size_t)p->h * p->w, hw = (size_t)c->hw, ld = (size_t)(b1 - b0) * hw;
    float *xd = c->dei_floats ? out + c->out_floats : NULL;
    for (int b = b0; b < b1; b++) {
        const float *xb = x + (size_t)b * p->c_in * hw_in;
        if (xd)
            deinterleave(p, xb, xd);
        im2col_cols(p, xb, xd, p->c_in, 0, c->hw, col + (size_t)(b - b0) * hw, ld);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->c_out, (int)ld, c->K, 1.0f, w,
                c->K, col, (int)ld, 0.0f, out, (int)ld);
    long planes = (long)(b1 - b0) * p->c_out;
#pragma omp parallel for schedule(static) if (planes * (long)hw > 65536)
    for (long t = 0; t < planes; t++) {
        int b = (int)(t / p->c_out), co = (int)(t % p->c_out);
        float *yp = y + ((size_t)(b0 + b) * p->c_out + co) * hw;
        memcpy(yp, out + (size_t)co * ld + (size_t)b * hw, hw * sizeof *yp);
        bias_act(yp, hw, bias ? bias[co] : 0.f, act);
    }
}

/* Image b, group by group; im2col in tiles of c->nt columns, each GEMM
 * writing its columns of y directly (pointwise convs read x as it is). */
static void conv_image(const ns_conv_params *p, const conv_plan *c, const float *x,
                       const float *w, const float *bias, ns_act act, float *y, float *col,
                       int b)
{
    const int G = p->groups, cig = p->c_in / G, cog = p->c_out / G, K = c->K, hw = c->hw;
    const size_t hw_in = (size_t)p->h * p->w;
    const int pointwise = conv_is_pointwise(p);
    const float *xb = x + (size_t)b * p->c_in * hw_in;
    float *yb = y + (size_t)b * p->c_out * hw;
    float *xd = c->dei_floats && !pointwise ? col + c->col_floats : NULL;
    if (xd) /* one group: dei_floats is 0 otherwise */
        deinterleave(p, xb, xd);
    for (int g = 0; g < G; g++) {
        const float *xg = xb + (size_t)g * cig * hw_in, *wg = w + (size_t)g * cog * K;
        float *yg = yb + (size_t)g * cog * hw;
        for (int q0 = 0; q0 < hw; q0 += c->nt) {
            int q1 = q0 + c->nt < hw ? q0 + c->nt : hw, len = q1 - q0;
            if (pointwise) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, len, K, 1.0f, wg, K,
                            xg + q0, hw, 0.0f, yg + q0, hw);
            } else {
                im2col_cols(p, xg, xd, cig, q0, q1, col, (size_t)len);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, len, K, 1.0f, wg, K,
                            col, len, 0.0f, yg + q0, hw);
            }
            if (bias || act.kind != NS_ACT_NONE) {
#pragma omp parallel for schedule(static) if ((size_t)cog * len > 32768)
                for (int co = 0; co < cog; co++)
                    bias_act(yg + (size_t)co * hw + q0, (size_t)len,
                             bias ? bias[g * cog + co] : 0.f, act);
            }
        }
    }
}

/* Images [b0, b1): batched or one by one. */
static void conv_unit(const ns_conv_params *p, const conv_plan *c, const float *x,
                      const float *w, const float *bias, ns_act act, float *y, float *ws,
                      int b0, int b1)
{
    if (c->nb > 1) {
        conv_batched(p, c, x, w, bias, act, y, ws, ws + c->col_floats, b0, b1);
        return;
    }
    for (int b = b0; b < b1; b++)
        conv_image(p, c, x, w, bias, act, y, ws, b);
}

void ns_cpu_conv2d(const ns_conv_params *p, const float *x, const float *w, const float *bias,
                   ns_act act, float *y, float *workspace)
{
    if (conv_is_depthwise(p)) {
        conv_depthwise(p, x, w, bias, act, y, workspace);
        return;
    }
    const int T = omp_get_max_threads();
    conv_plan c;
    conv_plan_make(p, &c);
    if (!workspace) /* only pointwise convs can run without one: unbatched */
        c.nb = 1;
    /* Per-thread scratch as ns_conv_workspace_floats sized it (one plan for
     * every thread count). */
    const size_t per = c.col_floats + c.out_floats + c.dei_floats;
    /* Units of nb images; the dynamic schedule evens out a last short one. */
    int units = (p->n + c.nb - 1) / c.nb;
    if (T > 1 && units >= T) {
#pragma omp parallel num_threads(T)
        {
            /* The team's own thread number: 0 for all when this region is
             * nested inside another and runs on one thread. */
            float *ws = workspace ? workspace + per * (size_t)omp_get_thread_num() : NULL;
            /* Dynamic: when another process holds a core, the other thread
             * takes over its units instead of waiting at the barrier. */
#pragma omp for schedule(dynamic, 1)
            for (int u = 0; u < units; u++) {
                int b0 = u * c.nb, b1 = b0 + c.nb < p->n ? b0 + c.nb : p->n;
                conv_unit(p, &c, x, w, bias, act, y, ws, b0, b1);
            }
        }
        return;
    }
    /* Fewer units than threads (small batches): in turn, sgemm threaded. */
    for (int u = 0; u < units; u++) {
        int b0 = u * c.nb, b1 = b0 + c.nb < p->n ? b0 + c.nb : p->n;
        conv_unit(p, &c, x, w, bias, act, y, workspace, b0, b1);
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
