/* resize.c -- exact area-averaging resize of RGB images.
 *
 * Output pixel i along an axis covers the source interval [i*s/d, (i+1)*s/d).
 * Working in units of 1/d source pixel, that is [i*s, (i+1)*s) and source
 * pixel j is [j*d, (j+1)*d), so every overlap is an integer and every weight
 * is exactly overlap/s.  The 2-D weight is the product of the two axes'
 * weights (the footprint is a rectangle), so the resize is separable:
 * a vertical pass blends the footprint's source rows into one float row,
 * then a horizontal pass blends that row's pixels.  Float accumulation of
 * at most 255 * (weights summing to 1) keeps the error far below the 0.5
 * that rounding could turn into an off-by-one.
 *
 * The per-axis tables depend only on (s, d) and are cached: a stream of
 * equally sized frames computes them once and allocates nothing after.
 *
 * Processors with AVX-512 run the vertical pass 16 floats wide and the
 * horizontal pass four output pixels per vector (one per 128-bit lane, the
 * SSE2 path's four floats), every output padded to the row's largest tap
 * count with weight-0 taps.  Every output is still the same
 * sequence of IEEE multiplies and adds (this file is compiled with
 * -ffp-contract=off, so nothing fuses), so both paths give the same bits;
 * test_image checks that.  NIGHTSHIFT_RESIZE=portable forces the SSE2 path.
 */
#include "nightshift/image.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define RS_AVX512 1
#else
#define RS_AVX512 0
#endif

typedef struct ns_resize_axis {
    int32_t s, d;   /* source and destination length the tables hold; 0 = none */
    int32_t *first; /* (d) first source index of each output */
    int32_t *count; /* (d) source indices each output covers */
    int32_t max_count; /* the largest of count */
    int32_t *off;   /* (d) offset of each output's weights in w */
    float *w;       /* (<= s + d) weights; each output's sum to 1 */
    void *block;    /* the one allocation the arrays are carved from */
    size_t cap_d, cap_w;
} ns_resize_axis;

struct ns_resize_cache {
    ns_resize_axis x, y;
    float *acc;     /* (sw * 3 + 3 * x.max_count + 1) vertically blended source
                     * row, zero padded (see ns_resize_area_cached) */
    size_t acc_cap; /* floats */
    /* AVX-512 horizontal pass for (q_s -> q_d) pixels, in quads of output
     * pixels (one per 128-bit lane): x.max_count taps for every output (the
     * others get weight-0 taps, since a loop of varying length mispredicts),
     * each quad's four first source indices (times 3),
     * and weights laid out (quad, tap, 16), each pixel's weight repeated
     * over its lane's 4 floats */
    int32_t *q_first; /* (q_d / 4, 4) */
    float *q_w;       /* (q_d / 4, x.max_count, 16) */
    size_t q_cap_quads, q_cap_w;
    int32_t q_s, q_d;
};

/* Overlap of output i with source j, in units of 1/d source pixel. */
static int64_t overlap(int64_t i, int64_t j, int64_t s, int64_t d)
{
    int64_t lo = i * s > j * d ? i * s : j * d;
    int64_t hi = (i + 1) * s < (j + 1) * d ? (i + 1) * s : (j + 1) * d;
    return hi > lo ? hi - lo : 0;
}

static ns_status axis_plan(ns_resize_axis *a, int s, int d)
{
    if (a->s == s && a->d == d)
        return NS_OK;
    size_t nw = (size_t)s + (size_t)d;
    if ((size_t)d > a->cap_d || nw > a->cap_w) {
        size_t cd = (size_t)d > a->cap_d ? (size_t)d : a->cap_d;
        size_t cw = nw > a->cap_w ? nw : a->cap_w;
        void *blk = malloc(cd * 3 * sizeof(int32_t) + cw * sizeof(float));
        if (!blk)
            return ns_error(NS_ERR_NOMEM, "resize tables for %d -> %d: out of memory", s, d);
        free(a->block);
        a->block = blk;
        a->cap_d = cd;
        a->cap_w = cw;
        a->first = blk;
        a->count = a->first + cd;
        a->off = a->count + cd;
        a->w = (float *)(a->off + cd);
    }
    int32_t k = 0;
    a->max_count = 0;
    for (int64_t i = 0; i < d; i++) {
        int64_t j0 = i * s / d;
        int64_t j1 = ((i + 1) * s + d - 1) / d; /* one past the last source index */
        a->first[i] = (int32_t)j0;
        a->off[i] = k;
        for (int64_t j = j0; j < j1; j++)
            a->w[k++] = (float)((double)overlap(i, j, s, d) / (double)s);
        a->count[i] = (int32_t)(j1 - j0);
        a->max_count = a->count[i] > a->max_count ? a->count[i] : a->max_count;
    }
    assert((size_t)k <= nw);
    a->s = s;
    a->d = d;
    return NS_OK;
}

/* acc = (first ? 0 : acc) + w * r, the vertical pass and most of the
 * resize's time.  Spelled in SSE2 because gcc -O2 leaves the plain loop
 * scalar (its cheap vectoriser refuses loops that need an epilogue), and
 * vector-extension u8 -> float converts one element at a time: 2.5x. */
static void blend_row(float *restrict acc, const uint8_t *restrict r, size_t n, float w,
                      int first)
{
    size_t k = 0;
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128();
    const __m128 wv = _mm_set1_ps(w);
    for (; k + 16 <= n; k += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(r + k));
        __m128i lo = _mm_unpacklo_epi8(b, zero), hi = _mm_unpackhi_epi8(b, zero);
        __m128 v[4] = {
            _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)),
            _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)),
            _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)),
            _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)),
        };
        for (int q = 0; q < 4; q++) {
            __m128 t = _mm_mul_ps(wv, v[q]);
            if (!first)
                t = _mm_add_ps(t, _mm_loadu_ps(acc + k + 4 * q));
            _mm_storeu_ps(acc + k + 4 * q, t);
        }
    }
#endif
    for (; k < n; k++)
        acc[k] = (first ? 0.0f : acc[k]) + w * (float)r[k];
}

#if RS_AVX512
#define RS_V4 __attribute__((target("arch=x86-64-v4")))

/* 1 when the AVX-512 passes run: the CPU has them and NIGHTSHIFT_RESIZE is
 * not "portable".  Asked per frame (a few ns against ~100 us of resize), so
 * a test can compare both paths in one process. */
static int use_avx512(void)
{
    const char *e = getenv("NIGHTSHIFT_RESIZE");
    return __builtin_cpu_supports("avx512f") && !(e && strcmp(e, "portable") == 0);
}

/* The quad tables of c for its x axis (already planned). */
static ns_status quad_plan(ns_resize_cache *c)
{
    const ns_resize_axis *ax = &c->x;
    size_t quads = (size_t)ax->d / 4;
    int32_t t = ax->max_count;
    size_t nw = quads * (size_t)t * 16;
    if (c->q_s == ax->s && c->q_d == ax->d)
        return NS_OK;
    if (quads > c->q_cap_quads || nw > c->q_cap_w) {
        size_t cq = quads > c->q_cap_quads ? quads : c->q_cap_quads;
        size_t cw = nw > c->q_cap_w ? nw : c->q_cap_w;
        int32_t *first = malloc((cq * 4 + 1) * sizeof *first);
        float *w = malloc((cw + 1) * sizeof *w);
        if (!first || !w) {
            free(first);
            free(w);
            return ns_error(NS_ERR_NOMEM, "resize tables for %d -> %d: out of memory", ax->s,
                            ax->d);
        }
        free(c->q_first);
        free(c->q_w);
        c->q_first = first;
        c->q_w = w;
        c->q_cap_quads = cq;
        c->q_cap_w = cw;
    }
    for (size_t q = 0; q < quads; q++)
        for (int i = 0; i < 4; i++) {
            int32_t ox = (int32_t)(4 * q) + i;
            c->q_first[4 * q + i] = ax->first[ox] * 3;
            for (int32_t k = 0; k < t; k++)
                for (int l = 0; l < 4; l++)
                    c->q_w[(q * (size_t)t + (size_t)k) * 16 + 4 * i + l] =
                        k < ax->count[ox] ? ax->w[ax->off[ox] + k] : 0.0f;
        }
    c->q_s = ax->s;
    c->q_d = ax->d;
    return NS_OK;
}

/* blend_row, 16 wide: the same multiply, then add, per element. */
RS_V4 static void blend_row_v4(float *restrict acc, const uint8_t *restrict r, size_t n, float w,
                               int first)
{
    size_t k = 0;
    const __m512 wv = _mm512_set1_ps(w);
    for (; k + 16 <= n; k += 16) {
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(r + k))));
        __m512 t = _mm512_mul_ps(wv, v);
        if (!first)
            t = _mm512_add_ps(t, _mm512_loadu_ps(acc + k));
        _mm512_storeu_ps(acc + k, t);
    }
    for (; k < n; k++)
        acc[k] = (first ? 0.0f : acc[k]) + w * (float)r[k];
}

/* The first 4 * (dw / 4) pixels of an output row from acc, four per vector:
 * lane i of a quad holds pixel 4q + i as r, g, b and the next source pixel's
 * r (weighted, then dropped), exactly the SSE2 path's four floats.  Returns
 * the pixels written. */
RS_V4 static int h_quads_v4(const ns_resize_cache *c, const float *acc, uint8_t *o)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    /* r g b of each lane's pixel, packed to 12 bytes */
    const __m128i pack = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    int quads = c->q_d / 4, taps = c->x.max_count;
    const float *w = c->q_w;
    for (int q = 0; q < quads; q++) {
        const int32_t *f = c->q_first + 4 * q;
        __m512 v = _mm512_setzero_ps();
        for (int32_t k = 0; k < taps; k++, w += 16) {
            __m512 p = _mm512_castps128_ps512(_mm_loadu_ps(acc + f[0] + 3 * k));
            p = _mm512_insertf32x4(p, _mm_loadu_ps(acc + f[1] + 3 * k), 1);
            p = _mm512_insertf32x4(p, _mm_loadu_ps(acc + f[2] + 3 * k), 2);
            p = _mm512_insertf32x4(p, _mm_loadu_ps(acc + f[3] + 3 * k), 3);
            v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_loadu_ps(w), p));
        }
        __m128i b = _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(_mm512_add_ps(v, half)));
        _mm_mask_storeu_epi8(o + 12 * (size_t)q, (__mmask16)0x0fff, _mm_shuffle_epi8(b, pack));
    }
    return 4 * quads;
}
#endif

ns_status ns_resize_cache_create(ns_resize_cache **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ns_error(NS_ERR_NOMEM, "resize cache: out of memory");
    return NS_OK;
}

void ns_resize_cache_free(ns_resize_cache *c)
{
    if (!c)
        return;
    free(c->x.block);
    free(c->y.block);
    free(c->acc);
    free(c->q_first);
    free(c->q_w);
    free(c);
}

static inline uint8_t round_u8(float v)
{
    v += 0.5f;
    return v >= 255.0f ? 255 : (uint8_t)v;
}

ns_status ns_resize_area_cached(ns_resize_cache *c, const uint8_t *src, int sw, int sh,
                                size_t src_stride, uint8_t *dst, int dw, int dh,
                                size_t dst_stride)
{
    assert(sw > 0 && sh > 0 && dw > 0 && dh > 0);
    if (sw == dw && sh == dh) {
        for (int y = 0; y < sh; y++)
            memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)sw * 3);
        return NS_OK;
    }
    ns_status st = axis_plan(&c->x, sw, dw);
    if (st == NS_OK)
        st = axis_plan(&c->y, sh, dh);
    if (st != NS_OK)
        return st;
    size_t rowf = (size_t)sw * 3;
    /* Zero padding past the row: one float for the 4-wide loads of the last
     * pixel, and for the AVX-512 pass, whose weight-0 taps past an output's
     * count read up to max_count - 1 pixels further (0 times a real value). */
    size_t need = rowf + 3 * (size_t)c->x.max_count + 1;
    if (need > c->acc_cap) {
        float *acc = calloc(need, sizeof *acc);
        if (!acc)
            return ns_error(NS_ERR_NOMEM, "resize row of %d pixels: out of memory", sw);
        free(c->acc);
        c->acc = acc;
        c->acc_cap = need;
    }
#if RS_AVX512
    int v4 = use_avx512();
    if (v4 && (st = quad_plan(c)) != NS_OK)
        return st;
#endif
    const ns_resize_axis *ax = &c->x, *ay = &c->y;
    float *restrict acc = c->acc;
    for (int oy = 0; oy < dh; oy++) {
        const float *wy = ay->w + ay->off[oy];
        const uint8_t *row = src + (size_t)ay->first[oy] * src_stride;
        for (int32_t j = 0; j < ay->count[oy]; j++)
#if RS_AVX512
            if (v4)
                blend_row_v4(acc, row + (size_t)j * src_stride, rowf, wy[j], j == 0);
            else
#endif
            blend_row(acc, row + (size_t)j * src_stride, rowf, wy[j], j == 0);
        uint8_t *o = dst + (size_t)oy * dst_stride;
        int ox0 = 0;
#if RS_AVX512
        if (v4)
            ox0 = h_quads_v4(c, acc, o);
#endif
        for (int ox = ox0; ox < dw; ox++) {
            const float *wx = ax->w + ax->off[ox];
            const float *p = acc + (size_t)ax->first[ox] * 3;
#ifdef __SSE2__
            /* r, g, b and the next pixel's r (weight-multiplied, unused) in
             * one register: acc has a float of padding for the last pixel. */
            __m128 v = _mm_setzero_ps();
            for (int32_t j = 0; j < ax->count[ox]; j++, p += 3)
                v = _mm_add_ps(v, _mm_mul_ps(_mm_set1_ps(wx[j]), _mm_loadu_ps(p)));
            __m128i q = _mm_cvttps_epi32(_mm_add_ps(v, _mm_set1_ps(0.5f)));
            q = _mm_packs_epi32(q, q);
            uint32_t px = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(q, q));
            memcpy(o + 3 * (size_t)ox, &px, 3);
#else
            float r = 0.f, g = 0.f, b = 0.f;
            for (int32_t j = 0; j < ax->count[ox]; j++, p += 3) {
                r += wx[j] * p[0];
                g += wx[j] * p[1];
                b += wx[j] * p[2];
            }
            o[3 * ox + 0] = round_u8(r);
            o[3 * ox + 1] = round_u8(g);
            o[3 * ox + 2] = round_u8(b);
#endif
        }
    }
    return NS_OK;
}

/* Fallback when no cache can be had: the same weights computed on the fly,
 * nothing allocated.  Slower, but ns_resize_area cannot fail. */
static void resize_direct(const uint8_t *src, int sw, int sh, size_t src_stride, uint8_t *dst,
                          int dw, int dh, size_t dst_stride)
{
    for (int64_t oy = 0; oy < dh; oy++) {
        int64_t y0 = oy * sh / dh, y1 = ((oy + 1) * sh + dh - 1) / dh;
        for (int64_t ox = 0; ox < dw; ox++) {
            int64_t x0 = ox * sw / dw, x1 = ((ox + 1) * sw + dw - 1) / dw;
            double acc[3] = {0, 0, 0};
            for (int64_t y = y0; y < y1; y++) {
                double wy = (double)overlap(oy, y, sh, dh) / sh;
                const uint8_t *p = src + (size_t)y * src_stride;
                for (int64_t x = x0; x < x1; x++) {
                    double w = wy * (double)overlap(ox, x, sw, dw) / sw;
                    for (int ch = 0; ch < 3; ch++)
                        acc[ch] += w * p[3 * x + ch];
                }
            }
            for (int ch = 0; ch < 3; ch++)
                dst[(size_t)oy * dst_stride + 3 * (size_t)ox + ch] = round_u8((float)acc[ch]);
        }
    }
}

/* One cache per thread, freed by the key's destructor when the thread ends. */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;

static void tls_destroy(void *p) { ns_resize_cache_free(p); }
static void tls_init(void) { tls_ok = pthread_key_create(&tls_key, tls_destroy) == 0; }

void ns_resize_area(const uint8_t *src, int sw, int sh, size_t src_stride, uint8_t *dst, int dw,
                    int dh, size_t dst_stride)
{
    ns_resize_cache *c = NULL;
    pthread_once(&tls_once, tls_init);
    if (tls_ok) {
        c = pthread_getspecific(tls_key);
        if (!c && ns_resize_cache_create(&c) == NS_OK && pthread_setspecific(tls_key, c) != 0) {
            ns_resize_cache_free(c);
            c = NULL;
        }
    }
    if (c && ns_resize_area_cached(c, src, sw, sh, src_stride, dst, dw, dh, dst_stride) == NS_OK)
        return;
    resize_direct(src, sw, sh, src_stride, dst, dw, dh, dst_stride);
}
