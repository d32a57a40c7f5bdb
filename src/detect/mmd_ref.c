/* mmd_ref.c -- plain C, double precision references for the MMD module.
 *
 * Obviously right and slow (O(n^2 d)): the tests compare the GEMM-tiled block
 * sums and the block-sum MMD^2 with these.
 */
#include "nightshift/mmd.h"

#include <math.h>

static double ref_kernel(const float *a, const float *b, int d, double inv2s2)
{
    double s = 0.0;
    for (int t = 0; t < d; t++) {
        double u = (double)a[t] - (double)b[t];
        s += u * u;
    }
    return exp(-s * inv2s2);
}

static ns_status ref_check_sigma(const char *who, int d, double sigma)
{
    if (d < 1)
        return ns_error(NS_ERR_USAGE, "%s: need d >= 1 (d=%d)", who, d);
    if (!(sigma > 0.0) || !isfinite(sigma))
        return ns_error(NS_ERR_USAGE, "%s: kernel width must be positive and finite (sigma=%g)",
                        who, sigma);
    return NS_OK;
}

ns_status ns_ref_mmd_block_sums(const float *x, size_t n, int d, const size_t *off,
                                size_t nblocks, double sigma, double *S)
{
    double inv2s2 = 1.0 / (2.0 * sigma * sigma);
    ns_status st;

    if (!x || !off || !S || nblocks < 1)
        return ns_error(NS_ERR_USAGE, "mmd ref block sums: NULL argument or no blocks");
    if ((st = ref_check_sigma("mmd ref block sums", d, sigma)) != NS_OK)
        return st;
    if (off[0] != 0 || off[nblocks] != n)
        return ns_error(NS_ERR_USAGE, "mmd ref block sums: offsets must run from 0 to n=%zu", n);
    for (size_t a = 0; a < nblocks; a++)
        if (off[a + 1] < off[a])
            return ns_error(NS_ERR_USAGE, "mmd ref block sums: offsets decrease at block %zu", a);

    for (size_t a = 0; a < nblocks; a++)
        for (size_t b = 0; b < nblocks; b++) {
            double s = 0.0;
            for (size_t i = off[a]; i < off[a + 1]; i++)
                for (size_t j = off[b]; j < off[b + 1]; j++)
                    s += ref_kernel(x + i * (size_t)d, x + j * (size_t)d, d, inv2s2);
            S[a * nblocks + b] = s;
        }
    return NS_OK;
}

ns_status ns_ref_mmd2(const float *x, size_t m, const float *y, size_t n, int d, double sigma,
                      double *mmd2)
{
    double inv2s2 = 1.0 / (2.0 * sigma * sigma), sxx = 0.0, syy = 0.0, sxy = 0.0;
    ns_status st;

    if (!x || !y || !mmd2)
        return ns_error(NS_ERR_USAGE, "mmd ref: NULL argument");
    if ((st = ref_check_sigma("mmd ref", d, sigma)) != NS_OK)
        return st;
    if (m < 2 || n < 2)
        return ns_error(NS_ERR_USAGE, "mmd ref: need at least 2 frames on each side (m=%zu n=%zu)",
                        m, n);

    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            if (i != j)
                sxx += ref_kernel(x + i * (size_t)d, x + j * (size_t)d, d, inv2s2);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j)
                syy += ref_kernel(y + i * (size_t)d, y + j * (size_t)d, d, inv2s2);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            sxy += ref_kernel(x + i * (size_t)d, y + j * (size_t)d, d, inv2s2);
    *mmd2 = sxx / ((double)m * (double)(m - 1)) + syy / ((double)n * (double)(n - 1)) -
            2.0 * sxy / ((double)m * (double)n);
    return NS_OK;
}
