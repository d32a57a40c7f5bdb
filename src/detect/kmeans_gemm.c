/* kmeans_gemm.c -- AVX-512 kernel for the k-means distance GEMM,
 * G = -2 X C^T on one row tile (see kmeans_gemm.h for the packed layout and
 * the summation order).
 *
 * Why not sgemm: at this shape (a few hundred rows, k = 64 centroids, d in
 * the hundreds) OpenBLAS reaches well under half the FMA peak; the product is
 * skinny, so all of C^T fits next to the core and X streams through once.
 *
 * Blocking: for each 64-centroid panel, d is cut into chunks of kc columns;
 * the panel's (kc, 64) slice (32 KB at kc = 128) stays in L1 while the
 * micro-kernel walks the tile's rows KM_MR at a time.  The micro-kernel holds
 * a (KM_MR, 64) block of G in KM_MR x 4 zmm accumulators; per column t of x
 * it loads the 4 vectors of the slice's row t and broadcasts x[r][t] for
 * each row: 4 + KM_MR loads for 4 KM_MR FMAs.  Partial sums go back to G
 * between chunks (float to float: exact).  While it works it prefetches the
 * next rows' slice, one cache line per row every 16 columns. */
#include "kmeans_gemm.h"

#include <assert.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define KM_GEMM_X86 1
#else
#define KM_GEMM_X86 0
#endif

/* Rows per micro-kernel: 24 accumulators + 4 slice vectors + 1 broadcast of
 * the 32 zmm.  4 to 8 build (-DKM_MR=R, for a sweep with
 * nightshift-bench-kmeans-kernel).  On Zen 5, 4, 5 and 6 ran within noise of
 * each other (2 loads per cycle feed even 4 rows); 7 and 8 run out of
 * registers, spill accumulators and ran 6-9% slower.  6 keeps the fewest
 * loads per FMA for cores with fewer load ports. */
#ifndef KM_MR
#define KM_MR 6
#endif
#if KM_MR < 4 || KM_MR > 8
#error "KM_MR: 4 to 8 rows"
#endif
/* Default d-chunk: a (128, 64) slice is 32 KB of the 48 KB L1.  Measured at
 * d = 512 (100,000 x 512, k = 64, 2 threads): 192 within 1%, 64 4% slower,
 * 32 15% (more G traffic), 256 and 512 5-7% (the slice falls to L2). */
#define KM_KC 128
#define KM_NB NS_KM_GEMM_NB

static int km_pad16(int k)
{
    return (k + 15) & ~15;
}

size_t ns_kmeans_gemm_floats(int k, int d)
{
    return (size_t)km_pad16(k) * (size_t)d;
}

void ns_kmeans_gemm_pack(const float *c, int k, int d, float *ct)
{
    int kpad = km_pad16(k);
    for (int j0 = 0; j0 < kpad; j0 += KM_NB) {
        int w = kpad - j0 < KM_NB ? kpad - j0 : KM_NB;
        float *panel = ct + (size_t)j0 * d;
        for (int t = 0; t < d; t++)
            for (int j = 0; j < w; j++)
                panel[(size_t)t * w + j] = j0 + j < k ? -2.0f * c[(size_t)(j0 + j) * d + t] : 0.0f;
    }
}

#if KM_GEMM_X86

#define KM_TARGET __attribute__((target("avx512f")))

int ns_kmeans_gemm_supported(void)
{
    return __builtin_cpu_supports("avx512f");
}

/* The micro-kernel for R rows and NV vectors of 16 centroids (R, NV
 * constants where it is inlined): g[r][0, 16 NV) (+)= x[r][0, kc) . b,
 * b (kc, w) the panel's slice.  load: add to what g holds (a later chunk);
 * tail: the lanes of the last vector that are real centroids.  The first
 * pfc columns of pf rows of xpf (stride ldx) are prefetched on the way. */
static inline __attribute__((always_inline)) KM_TARGET void
km_micro(const int R, const int NV, const float *x, size_t ldx, const float *b, int w, int kc,
         float *g, int ldg, int load, __mmask16 tail, const float *xpf, int pf, int pfc)
{
    __m512 acc[KM_MR][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __mmask16 mk = v == NV - 1 ? tail : 0xFFFF;
            acc[r][v] = load ? _mm512_maskz_loadu_ps(mk, g + (size_t)r * ldg + 16 * v)
                             : _mm512_setzero_ps();
        }
    for (int t0 = 0; t0 < kc; t0 += 16) {
        int t1 = t0 + 16 < kc ? t0 + 16 : kc;
        for (int r = 0; r < pf && t0 < pfc; r++)
            _mm_prefetch((const char *)(xpf + (size_t)r * ldx + t0), _MM_HINT_T0);
#pragma GCC unroll 4
        for (int t = t0; t < t1; t++) {
            __m512 bv[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                bv[v] = _mm512_load_ps(b + (size_t)t * w + 16 * v);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512 xb = _mm512_set1_ps(x[(size_t)r * ldx + t]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[r][v] = _mm512_fmadd_ps(xb, bv[v], acc[r][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __mmask16 mk = v == NV - 1 ? tail : 0xFFFF;
            _mm512_mask_storeu_ps(g + (size_t)r * ldg + 16 * v, mk, acc[r][v]);
        }
}

typedef void (*km_micro_fn)(const float *x, size_t ldx, const float *b, int w, int kc, float *g,
                            int ldg, int load, __mmask16 tail, const float *xpf, int pf, int pfc);

#define KM_MICRO(R, NV)                                                                          \
    static KM_TARGET void km_micro_##R##_##NV(const float *x, size_t ldx, const float *b, int w,  \
                                              int kc, float *g, int ldg, int load,                \
                                              __mmask16 tail, const float *xpf, int pf, int pfc)  \
    {                                                                                            \
        km_micro(R, NV, x, ldx, b, w, kc, g, ldg, load, tail, xpf, pf, pfc);                     \
    }
#define KM_MICRO_ROW(R) KM_MICRO(R, 1) KM_MICRO(R, 2) KM_MICRO(R, 3) KM_MICRO(R, 4)
#define KM_MICRO_TAB(R) {km_micro_##R##_1, km_micro_##R##_2, km_micro_##R##_3, km_micro_##R##_4}

KM_MICRO_ROW(1)
KM_MICRO_ROW(2)
KM_MICRO_ROW(3)
KM_MICRO_ROW(4)
#if KM_MR > 4
KM_MICRO_ROW(5)
#endif
#if KM_MR > 5
KM_MICRO_ROW(6)
#endif
#if KM_MR > 6
KM_MICRO_ROW(7)
#endif
#if KM_MR > 7
KM_MICRO_ROW(8)
#endif

/* [rows - 1][vectors - 1] */
static km_micro_fn const km_micro_tab[KM_MR][4] = {
    KM_MICRO_TAB(1), KM_MICRO_TAB(2), KM_MICRO_TAB(3), KM_MICRO_TAB(4),
#if KM_MR > 4
    KM_MICRO_TAB(5),
#endif
#if KM_MR > 5
    KM_MICRO_TAB(6),
#endif
#if KM_MR > 6
    KM_MICRO_TAB(7),
#endif
#if KM_MR > 7
    KM_MICRO_TAB(8),
#endif
};

void ns_kmeans_gemm(const float *ct, int k, int d, const float *x, int m, float *g, int kc)
{
    int kpad = km_pad16(k);
    assert(m >= 1 && k >= 1 && d >= 1);
    if (kc <= 0)
        kc = KM_KC;
    for (int j0 = 0; j0 < kpad; j0 += KM_NB) {
        int w = kpad - j0 < KM_NB ? kpad - j0 : KM_NB, nv = w / 16;
        int last = (k - j0 < w ? k - j0 : w) - 16 * (nv - 1); /* real lanes of the last vector */
        __mmask16 tail = (__mmask16)(last == 16 ? 0xFFFF : (1u << last) - 1);
        const float *panel = ct + (size_t)j0 * d;
        for (int t0 = 0; t0 < d; t0 += kc) {
            int kk = d - t0 < kc ? d - t0 : kc;
            for (int i0 = 0; i0 < m; i0 += KM_MR) {
                int r = m - i0 < KM_MR ? m - i0 : KM_MR, after = m - i0 - r;
                /* x streams in from memory once: prefetch what the next call
                 * reads, the next rows' slice or the next chunk's first rows
                 * (2-3% a pass; the hardware prefetchers miss the jumps). */
                const float *xpf = x;
                int pf = 0, pfc = 0;
                if (after > 0) {
                    xpf = x + (size_t)(i0 + r) * d + t0;
                    pf = after < KM_MR ? after : KM_MR;
                    pfc = kk;
                } else if (t0 + kk < d) {
                    xpf = x + t0 + kk;
                    pf = m < KM_MR ? m : KM_MR;
                    pfc = d - t0 - kk < kc ? d - t0 - kk : kc;
                }
                km_micro_tab[r - 1][nv - 1](x + (size_t)i0 * d + t0, (size_t)d,
                                            panel + (size_t)t0 * w, w, kk,
                                            g + (size_t)i0 * k + j0, k, t0 > 0, tail, xpf, pf,
                                            pfc);
            }
        }
    }
}

#else /* not x86-64: the kernel is never chosen */

int ns_kmeans_gemm_supported(void)
{
    return 0;
}

void ns_kmeans_gemm(const float *ct, int k, int d, const float *x, int m, float *g, int kc)
{
    (void)ct, (void)k, (void)d, (void)x, (void)m, (void)g, (void)kc;
    assert(!"ns_kmeans_gemm: no AVX-512 on this architecture");
}

#endif
