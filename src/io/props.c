/* props.c -- cheap photometric properties of an S x S RGB frame.
 *
 * Luma is kept as an exact integer, 1000 * (0.299 R + 0.587 G + 0.114 B),
 * and every sum is an exact integer (128-bit for sums of squares), so the
 * variances are computed as (n * sum(x^2) - sum(x)^2) / n^2 without
 * cancellation: a uniform frame gives exactly 0, not 1e-12.  Only the
 * saturation, a ratio per pixel, is summed in floating point.
 *
 * This runs on every ingested frame, so it is one pass: luma goes into a
 * ring of three rows and the Laplacian of row y-1 is taken as soon as row y
 * is in, instead of recomputing luma five times per pixel.
 *
 * Where the CPU has AVX-512 VBMI (byte permutes), a hand-vectorised pass
 * computes the very same integer sums 2.5x faster: it splits the pixels into
 * R, G and B planes, and since luma is a fixed combination of them, sums of
 * luma squares and of Laplacian squares come from the channels' sums of
 * products (16-bit multiplies) rather than from 64-bit squares.  Both paths
 * give the same bits; NIGHTSHIFT_PROPS=portable forces the plain one.
 */
#include "nightshift/image.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 ns_i128;

#define PROPS_MAX_S 4096

const char *const ns_prop_names[NS_PROP_COUNT] = {
    [NS_PROP_MEAN_LUMA] = "mean_luma",   [NS_PROP_MEAN_R] = "mean_r",
    [NS_PROP_MEAN_G] = "mean_g",         [NS_PROP_MEAN_B] = "mean_b",
    [NS_PROP_SATURATION] = "saturation", [NS_PROP_CONTRAST] = "contrast",
    [NS_PROP_SHARPNESS] = "sharpness",   [NS_PROP_FRAC_BLACK] = "frac_black",
    [NS_PROP_FRAC_WHITE] = "frac_white",
};

/* 2^24 / max in fixed point: 256 divisions once instead of one per pixel,
 * and an integer sum with no floating-point dependency chain.  The rounding
 * error is below max / 2^24 <= 1.5e-5 of each pixel's saturation. */
#define SAT_SHIFT 24
static uint32_t inv_table[256];
/* Its bytes, for 128-entry byte permutes.  inv_table[1] = 2^24 has no room
 * in three bytes, but it only meets max - min = 0 or the exact-1 case, both
 * handled without it. */
static uint8_t inv_planes[3][256] __attribute__((aligned(64)));

static void init_inv_table(void)
{
    for (int i = 1; i < 256; i++) {
        inv_table[i] = (uint32_t)(((1u << SAT_SHIFT) + i / 2) / (unsigned)i);
        for (int k = 0; k < 3 && i >= 2; k++)
            inv_planes[k][i] = (uint8_t)(inv_table[i] >> (8 * k));
    }
}

/* Branch-free: on camera noise the comparisons are coin flips, and
 * mispredicted branches cost more than everything else in the loop. */
static inline int max3(int a, int b, int c)
{
    int m = a > b ? a : b;
    return m > c ? m : c;
}

static inline int min3(int a, int b, int c)
{
    int m = a < b ? a : b;
    return m < c ? m : c;
}

/* Population variance from exact sums, in (units / scale)^2. */
static double variance(int64_t n, int64_t sum, ns_i128 sumsq, double scale)
{
    if (n <= 0)
        return 0.0;
    ns_i128 num = (ns_i128)n * sumsq - (ns_i128)sum * sum;
    return (double)num / ((double)n * (double)n) / (scale * scale);
}

/* Built for AVX-512 (x86-64-v4), AVX2 and the x86-64 baseline, picked at load
 * time.  The sums are integers, so every build gives the same bits.  Measured
 * per 224x224 frame here: props 102 us (AVX2) -> 59 us (AVX-512), mad 23 ->
 * 7 us; the AVX2 build was twice as fast as the baseline. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define NS_HOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NS_HOT_CLONES
#endif

/* The exact integer sums both paths produce. */
typedef struct props_sums {
    int64_t sr, sg, sb, sl, nblack, nwhite, slap, nlap;
    ns_i128 sl2, slap2;
    uint64_t ssat;
} props_sums;

NS_HOT_CLONES
static void props_sums_c(const uint8_t *rgb, int S, props_sums *o)
{
    static _Thread_local int32_t ring[3][PROPS_MAX_S];
    const size_t row = (size_t)S * 3;
    int64_t sr = 0, sg = 0, sb = 0, sl = 0, nblack = 0, nwhite = 0;
    int64_t slap = 0, nlap = 0;
    ns_i128 sl2 = 0, slap2 = 0;
    uint64_t ssat = 0; /* in 2^-SAT_SHIFT units */

    for (int y = 0; y < S; y++) {
        const uint8_t *p = rgb + (size_t)y * row;
        int32_t *L = ring[y % 3];
        int64_t rsr = 0, rsg = 0, rsb = 0, rsl = 0, rsl2 = 0, rblack = 0, rwhite = 0;
        uint64_t rsat = 0;
        for (int x = 0; x < S; x++, p += 3) {
            int r = p[0], g = p[1], b = p[2];
            int32_t l = 299 * r + 587 * g + 114 * b;
            int mx = max3(r, g, b), mn = min3(r, g, b);
            L[x] = l;
            rsr += r;
            rsg += g;
            rsb += b;
            rsl += l;
            rsl2 += (int64_t)l * l;
            rblack += l < 16000;
            rwhite += l > 239000;
            uint64_t sat = (uint64_t)(mx - mn) * inv_table[mx]; /* inv_table[0] = 0 */
            rsat += mn == 0 && mx != 0 ? (uint64_t)1 << SAT_SHIFT : sat; /* exact 1 */
        }
        sr += rsr;
        sg += rsg;
        sb += rsb;
        sl += rsl;
        sl2 += rsl2;
        nblack += rblack;
        nwhite += rwhite;
        ssat += rsat;
        if (y >= 2) { /* row y-1 now has both neighbours */
            const int32_t *up = ring[(y - 2) % 3], *c = ring[(y - 1) % 3], *dn = L;
            int64_t rs = 0, rs2 = 0; /* |lap| <= 1.02e6: a row of squares fits int64 */
            for (int x = 1; x <= S - 2; x++) {
                int64_t lap = 4 * (int64_t)c[x] - c[x - 1] - c[x + 1] - up[x] - dn[x];
                rs += lap;
                rs2 += lap * lap;
            }
            slap += rs;
            slap2 += rs2;
            nlap += S - 2;
        }
    }
    *o = (props_sums){.sr = sr, .sg = sg, .sb = sb, .sl = sl, .sl2 = sl2, .nblack = nblack,
                      .nwhite = nwhite, .ssat = ssat, .slap = slap, .slap2 = slap2, .nlap = nlap};
}

#if defined(__x86_64__) && defined(__GNUC__)
#define PROPS_HAVE_VBMI 1
#include <immintrin.h>
#define PROPS_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))

/* Asked per frame (a few ns against ~20 us), so a test can compare both
 * paths in one process. */
static int use_vbmi(void)
{
    const char *e = getenv("NIGHTSHIFT_PROPS");
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && !(e && strcmp(e, "portable") == 0);
}

/* A row of a plane, padded so that 32-lane loads past its end stay inside. */
#define PL_W (PROPS_MAX_S + 64)
/* The 16 int32 lanes of v summed as int64, so the sum cannot overflow. */
#define RED64(v)                                                                   \
    (_mm512_reduce_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v))) + \
     _mm512_reduce_add_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1))))
/* The 4 int64 lanes of a 256-bit v. */
#define SUM4(v)                                                                        \
    (_mm256_extract_epi64(v, 0) + _mm256_extract_epi64(v, 1) + _mm256_extract_epi64(v, 2) + \
     _mm256_extract_epi64(v, 3))

PROPS_VBMI
static void props_sums_vbmi(const uint8_t *rgb, int S, props_sums *o)
{
    int16_t pl[3][3][PL_W]; /* [row % 3][channel][x]: on the stack, not TLS */
    const size_t row = (size_t)S * 3;
    /* byte i of idx_r is 3i: pixel i's red among the 96 bytes of two loads */
    uint8_t ir[64] = {0};
    for (int i = 0; i < 32; i++)
        ir[i] = (uint8_t)(3 * i);
    const __m512i idx_r = _mm512_loadu_si512(ir), one8 = _mm512_set1_epi8(1);
    const __m512i idx_g = _mm512_add_epi8(idx_r, one8), idx_b = _mm512_add_epi8(idx_g, one8);
    const __m512i w_rg = _mm512_set1_epi32((587 << 16) | 299), w_b = _mm512_set1_epi32(114);
    const __m512i ones16 = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
    const __m512i lo_black = _mm512_set1_epi32(16000), hi_white = _mm512_set1_epi32(239000);

    __m512i tb[3][4];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++)
            tb[k][i] = _mm512_load_si512(inv_planes[k] + 64 * i);
    memset(o, 0, sizeof *o);
    for (int y = 0; y < S; y++) {
        const uint8_t *p = rgb + (size_t)y * row;
        int16_t *R = pl[y % 3][0], *G = pl[y % 3][1], *B = pl[y % 3][2];
        __m256i a_r = _mm256_setzero_si256(), a_g = a_r, a_b = a_r;
        __m512i a_rr = zero, a_gg = zero, a_bb = zero, a_rg = zero, a_rb = zero, a_gb = zero;
        __m512i a_s0 = zero, a_s1 = zero, a_s2 = zero;
        int64_t black = 0, white = 0, n_one = 0;
        for (int x = 0; x < S; x += 32) {
            int k = S - x < 32 ? S - x : 32;
            size_t nb = (size_t)k * 3;
            __mmask64 mlo = nb >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nb) - 1);
            __mmask64 mhi = nb > 64 ? (((__mmask64)1 << (nb - 64)) - 1) : 0;
            __m512i lo = _mm512_maskz_loadu_epi8(mlo, p + 3 * (size_t)x);
            __m512i hi = _mm512_maskz_loadu_epi8(mhi, p + 3 * (size_t)x + 64);
            /* the planes, one 16-bit lane per pixel */
            __m256i r8 = _mm512_castsi512_si256(_mm512_permutex2var_epi8(lo, idx_r, hi));
            __m256i g8 = _mm512_castsi512_si256(_mm512_permutex2var_epi8(lo, idx_g, hi));
            __m256i b8 = _mm512_castsi512_si256(_mm512_permutex2var_epi8(lo, idx_b, hi));
            __m512i r = _mm512_cvtepu8_epi16(r8), g = _mm512_cvtepu8_epi16(g8);
            __m512i b = _mm512_cvtepu8_epi16(b8);
            _mm512_storeu_si512(R + x, r);
            _mm512_storeu_si512(G + x, g);
            _mm512_storeu_si512(B + x, b);
            a_r = _mm256_add_epi64(a_r, _mm256_sad_epu8(r8, _mm256_setzero_si256()));
            a_g = _mm256_add_epi64(a_g, _mm256_sad_epu8(g8, _mm256_setzero_si256()));
            a_b = _mm256_add_epi64(a_b, _mm256_sad_epu8(b8, _mm256_setzero_si256()));
            a_rr = _mm512_add_epi32(a_rr, _mm512_madd_epi16(r, r));
            a_gg = _mm512_add_epi32(a_gg, _mm512_madd_epi16(g, g));
            a_bb = _mm512_add_epi32(a_bb, _mm512_madd_epi16(b, b));
            a_rg = _mm512_add_epi32(a_rg, _mm512_madd_epi16(r, g));
            a_rb = _mm512_add_epi32(a_rb, _mm512_madd_epi16(r, b));
            a_gb = _mm512_add_epi32(a_gb, _mm512_madd_epi16(g, b));
            __m512i l0 = _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpacklo_epi16(r, g), w_rg),
                                          _mm512_madd_epi16(_mm512_unpacklo_epi16(b, zero), w_b));
            __m512i l1 = _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpackhi_epi16(r, g), w_rg),
                                          _mm512_madd_epi16(_mm512_unpackhi_epi16(b, zero), w_b));
            /* padding pixels are (0,0,0): black, never white; taken off below */
            black += __builtin_popcount(_mm512_cmplt_epi32_mask(l0, lo_black)) +
                     __builtin_popcount(_mm512_cmplt_epi32_mask(l1, lo_black));
            white += __builtin_popcount(_mm512_cmpgt_epi32_mask(l0, hi_white)) +
                     __builtin_popcount(_mm512_cmpgt_epi32_mask(l1, hi_white));
            black -= 32 - k;
            __m256i mx = _mm256_max_epu8(_mm256_max_epu8(r8, g8), b8);
            __m256i mn = _mm256_min_epu8(_mm256_min_epu8(r8, g8), b8);
            __m256i d = _mm256_sub_epi8(mx, mn);
            __mmask32 full = _mm256_cmpeq_epi8_mask(mn, _mm256_setzero_si256()) &
                             _mm256_cmpneq_epi8_mask(mx, _mm256_setzero_si256());
            /* inv_table[mx] as three byte planes, looked up 128 entries at a time */
            __m512i mxz = _mm512_castsi256_si512(mx);
            __mmask64 top = _mm512_movepi8_mask(mxz);
            __m512i iv[3];
            for (int k3 = 0; k3 < 3; k3++)
                iv[k3] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(_mm512_mask_blend_epi8(
                    top, _mm512_permutex2var_epi8(tb[k3][0], mxz, tb[k3][1]),
                    _mm512_permutex2var_epi8(tb[k3][2], mxz, tb[k3][3]))));
            /* exact-1 pixels are counted apart, so their d is zeroed here */
            __m512i d16 = _mm512_maskz_mov_epi16(~full, _mm512_cvtepu8_epi16(d));
            a_s0 = _mm512_add_epi32(a_s0, _mm512_madd_epi16(d16, iv[0]));
            a_s1 = _mm512_add_epi32(a_s1, _mm512_madd_epi16(d16, iv[1]));
            a_s2 = _mm512_add_epi32(a_s2, _mm512_madd_epi16(d16, iv[2]));
            n_one += __builtin_popcount(full);
        }
        int64_t rsr = SUM4(a_r), rsg = SUM4(a_g), rsb = SUM4(a_b);
        o->sr += rsr;
        o->sg += rsg;
        o->sb += rsb;
        o->sl += 299 * rsr + 587 * rsg + 114 * rsb;
        o->sl2 += 299 * 299 * RED64(a_rr) + 587 * 587 * RED64(a_gg) + 114 * 114 * RED64(a_bb) +
                  2 * 299 * 587 * RED64(a_rg) + 2 * 299 * 114 * RED64(a_rb) +
                  2 * 587 * 114 * RED64(a_gb);
        o->nblack += black;
        o->nwhite += white;
        o->ssat += ((uint64_t)n_one << SAT_SHIFT) + (uint64_t)RED64(a_s0) +
                   ((uint64_t)RED64(a_s1) << 8) + ((uint64_t)RED64(a_s2) << 16);
        if (y >= 2) {
            int16_t(*up)[PL_W] = pl[(y - 2) % 3], (*c)[PL_W] = pl[(y - 1) % 3],
                  (*dn)[PL_W] = pl[y % 3];
            __m512i q_r = zero, q_g = zero, q_b = zero, q_rr = zero, q_gg = zero, q_bb = zero;
            __m512i q_rg = zero, q_rb = zero, q_gb = zero;
            for (int x = 1; x <= S - 2; x += 32) {
                int k = S - 1 - x < 32 ? S - 1 - x : 32;
                __mmask32 m = k == 32 ? ~(__mmask32)0 : (((__mmask32)1 << k) - 1);
                __m512i lap[3];
                for (int ch = 0; ch < 3; ch++) {
                    __m512i cc = _mm512_loadu_si512(c[ch] + x);
                    __m512i t = _mm512_slli_epi16(cc, 2);
                    t = _mm512_sub_epi16(t, _mm512_loadu_si512(c[ch] + x - 1));
                    t = _mm512_sub_epi16(t, _mm512_loadu_si512(c[ch] + x + 1));
                    t = _mm512_sub_epi16(t, _mm512_loadu_si512(up[ch] + x));
                    t = _mm512_sub_epi16(t, _mm512_loadu_si512(dn[ch] + x));
                    lap[ch] = _mm512_maskz_mov_epi16(m, t);
                }
                q_r = _mm512_add_epi32(q_r, _mm512_madd_epi16(lap[0], ones16));
                q_g = _mm512_add_epi32(q_g, _mm512_madd_epi16(lap[1], ones16));
                q_b = _mm512_add_epi32(q_b, _mm512_madd_epi16(lap[2], ones16));
                q_rr = _mm512_add_epi32(q_rr, _mm512_madd_epi16(lap[0], lap[0]));
                q_gg = _mm512_add_epi32(q_gg, _mm512_madd_epi16(lap[1], lap[1]));
                q_bb = _mm512_add_epi32(q_bb, _mm512_madd_epi16(lap[2], lap[2]));
                q_rg = _mm512_add_epi32(q_rg, _mm512_madd_epi16(lap[0], lap[1]));
                q_rb = _mm512_add_epi32(q_rb, _mm512_madd_epi16(lap[0], lap[2]));
                q_gb = _mm512_add_epi32(q_gb, _mm512_madd_epi16(lap[1], lap[2]));
            }
            o->slap += 299 * RED64(q_r) + 587 * RED64(q_g) + 114 * RED64(q_b);
            o->slap2 += 299 * 299 * RED64(q_rr) + 587 * 587 * RED64(q_gg) +
                        114 * 114 * RED64(q_bb) + 2 * 299 * 587 * RED64(q_rg) +
                        2 * 299 * 114 * RED64(q_rb) + 2 * 587 * 114 * RED64(q_gb);
            o->nlap += S - 2;
        }
    }
}
#else
#define PROPS_HAVE_VBMI 0
#endif

void ns_frame_props(const uint8_t *rgb, int S, float props[NS_PROP_COUNT])
{
    static int table_ready;
    props_sums s;
    assert(S > 0 && S <= PROPS_MAX_S);
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) {
        init_inv_table(); /* idempotent, so a race only repeats it */
        __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
    }
#if PROPS_HAVE_VBMI
    if (use_vbmi())
        props_sums_vbmi(rgb, S, &s);
    else
#endif
        props_sums_c(rgb, S, &s);
    const int64_t n = (int64_t)S * S;
    double dn = (double)n;
    props[NS_PROP_MEAN_LUMA] = (float)((double)s.sl / dn / 1000.0);
    props[NS_PROP_MEAN_R] = (float)((double)s.sr / dn);
    props[NS_PROP_MEAN_G] = (float)((double)s.sg / dn);
    props[NS_PROP_MEAN_B] = (float)((double)s.sb / dn);
    props[NS_PROP_SATURATION] = (float)((double)s.ssat / (double)(1u << SAT_SHIFT) / dn);
    props[NS_PROP_CONTRAST] = (float)sqrt(variance(n, s.sl, s.sl2, 1000.0));
    props[NS_PROP_SHARPNESS] = (float)variance(s.nlap, s.slap, s.slap2, 1000.0);
    props[NS_PROP_FRAC_BLACK] = (float)((double)s.nblack / dn);
    props[NS_PROP_FRAC_WHITE] = (float)((double)s.nwhite / dn);
}

NS_HOT_CLONES
float ns_frame_mad(const uint8_t *a, const uint8_t *b, int S)
{
    assert(S > 0);
    size_t nbytes = (size_t)S * S * 3;
    uint64_t sum = 0;
    /* uint32 partial sums over 64 KiB blocks cannot overflow and vectorise. */
    for (size_t i0 = 0; i0 < nbytes; i0 += 65536) {
        size_t i1 = i0 + 65536 < nbytes ? i0 + 65536 : nbytes;
        uint32_t part = 0;
        for (size_t i = i0; i < i1; i++)
            part += (uint32_t)(a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]);
        sum += part;
    }
    return (float)((double)sum / (double)nbytes);
}
