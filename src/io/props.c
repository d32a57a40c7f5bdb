/* props.c -- cheap photometric properties of an S x S RGB frame.
 *
 * Luma is kept as an exact integer, 1000 * (0.299 R + 0.587 G + 0.114 B),
 * and every sum is an exact integer (128-bit for sums of squares), so the
 * variances are computed as (n * sum(x^2) - sum(x)^2) / n^2 without
 * cancellation: a uniform frame gives exactly 0, not 1e-12.  Only the
 * saturation, a ratio per pixel, is summed in double.
 */
#include "nightshift/image.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

__extension__ typedef __int128 ns_i128;

const char *const ns_prop_names[NS_PROP_COUNT] = {
    [NS_PROP_MEAN_LUMA] = "mean_luma",   [NS_PROP_MEAN_R] = "mean_r",
    [NS_PROP_MEAN_G] = "mean_g",         [NS_PROP_MEAN_B] = "mean_b",
    [NS_PROP_SATURATION] = "saturation", [NS_PROP_CONTRAST] = "contrast",
    [NS_PROP_SHARPNESS] = "sharpness",   [NS_PROP_FRAC_BLACK] = "frac_black",
    [NS_PROP_FRAC_WHITE] = "frac_white",
};

static inline int32_t luma1000(const uint8_t *p)
{
    return 299 * p[0] + 587 * p[1] + 114 * p[2];
}

/* Population variance from exact sums, in (units / scale)^2. */
static double variance(int64_t n, int64_t sum, ns_i128 sumsq, double scale)
{
    if (n <= 0)
        return 0.0;
    ns_i128 num = (ns_i128)n * sumsq - (ns_i128)sum * sum;
    return (double)num / ((double)n * (double)n) / (scale * scale);
}

void ns_frame_props(const uint8_t *rgb, int S, float props[NS_PROP_COUNT])
{
    assert(S > 0 && S <= 16384);
    const size_t row = (size_t)S * 3;
    const int64_t n = (int64_t)S * S;
    int64_t sr = 0, sg = 0, sb = 0, sl = 0, nblack = 0, nwhite = 0;
    ns_i128 sl2 = 0;
    double ssat = 0.0;
    int64_t slap = 0, nlap = 0;
    ns_i128 slap2 = 0;
    double inv[256]; /* 1/max: 256 divisions instead of one per pixel */
    inv[0] = 0.0;
    for (int i = 1; i < 256; i++)
        inv[i] = 1.0 / i;

    for (int y = 0; y < S; y++) {
        const uint8_t *p = rgb + (size_t)y * row;
        int64_t rsr = 0, rsg = 0, rsb = 0, rsl = 0, rsl2 = 0; /* per-row, fits int64 */
        for (int x = 0; x < S; x++, p += 3) {
            int r = p[0], g = p[1], b = p[2];
            int32_t l = luma1000(p);
            int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
            int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
            rsr += r;
            rsg += g;
            rsb += b;
            rsl += l;
            rsl2 += (int64_t)l * l;
            nblack += l < 16000;
            nwhite += l > 239000;
            ssat += (double)(mx - mn) * inv[mx]; /* 0 when max is 0 */
        }
        sr += rsr;
        sg += rsg;
        sb += rsb;
        sl += rsl;
        sl2 += rsl2;
        /* Laplacian over interior pixels: the row above and below are in
         * cache, and recomputing their luma is cheaper than a row buffer. */
        if (y >= 1 && y <= S - 2) {
            const uint8_t *c = rgb + (size_t)y * row;
            int64_t rs = 0, rs2 = 0; /* |lap| <= 1.02e6: a row of squares fits int64 */
            for (int x = 1; x <= S - 2; x++) {
                const uint8_t *q = c + 3 * (size_t)x;
                int64_t lap = 4 * (int64_t)luma1000(q) - luma1000(q - 3) - luma1000(q + 3)
                              - luma1000(q - row) - luma1000(q + row);
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
    props[NS_PROP_SATURATION] = (float)(ssat / dn);
    props[NS_PROP_CONTRAST] = (float)sqrt(variance(n, sl, sl2, 1000.0));
    props[NS_PROP_SHARPNESS] = (float)variance(nlap, slap, slap2, 1000.0);
    props[NS_PROP_FRAC_BLACK] = (float)((double)nblack / dn);
    props[NS_PROP_FRAC_WHITE] = (float)((double)nwhite / dn);
}

float ns_frame_mad(const uint8_t *a, const uint8_t *b, int S)
{
    assert(S > 0);
    size_t nbytes = (size_t)S * S * 3;
    uint64_t sum = 0;
    for (size_t i = 0; i < nbytes; i++)
        sum += (uint64_t)abs((int)a[i] - (int)b[i]);
    return (float)((double)sum / (double)nbytes);
}
