/* kmeans_ref.c -- plain C k-means pieces: slow, obviously right, double
 * precision throughout.  The reference the tests hold the fast path to. */
#include "nightshift/kmeans.h"

#include <stdlib.h>
#include <string.h>

ns_status ns_ref_kmeans_assign(const float *x, size_t n, int d, const float *c, int k, int *assign,
                               float *dist2)
{
    if (!x || !c || !assign)
        return ns_error(NS_ERR_USAGE, "ref kmeans: NULL argument");
    if (n < 1 || d < 1 || k < 1)
        return ns_error(NS_ERR_USAGE, "ref kmeans: need n, d, k >= 1 (n=%zu d=%d k=%d)", n, d, k);
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        double bv = 0.0;
        for (int j = 0; j < k; j++) {
            double s = 0.0;
            for (int t = 0; t < d; t++) {
                double u = (double)x[i * (size_t)d + t] - (double)c[(size_t)j * d + t];
                s += u * u;
            }
            if (j == 0 || s < bv) {
                bv = s;
                best = j;
            }
        }
        assign[i] = best;
        if (dist2)
            dist2[i] = (float)bv;
    }
    return NS_OK;
}

ns_status ns_ref_kmeans_step(const float *x, size_t n, int d, const float *c, int k, int *assign,
                             float *c_out)
{
    double *sums = NULL;
    size_t *counts = NULL;
    ns_status st = ns_ref_kmeans_assign(x, n, d, c, k, assign, NULL);
    if (st != NS_OK)
        goto done;
    if (!c_out) {
        st = ns_error(NS_ERR_USAGE, "ref kmeans: NULL argument");
        goto done;
    }
    sums = calloc((size_t)k * d, sizeof *sums);
    counts = calloc((size_t)k, sizeof *counts);
    if (!sums || !counts) {
        st = ns_error(NS_ERR_NOMEM, "ref kmeans: cannot allocate sums (k=%d d=%d)", k, d);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        counts[assign[i]]++;
        for (int t = 0; t < d; t++)
            sums[(size_t)assign[i] * d + t] += x[i * (size_t)d + t];
    }
    for (int j = 0; j < k; j++)
        for (int t = 0; t < d; t++)
            c_out[(size_t)j * d + t] = counts[j] ? (float)(sums[(size_t)j * d + t] / (double)counts[j])
                                                 : c[(size_t)j * d + t];
done:
    free(sums);
    free(counts);
    return st;
}
