/* knn_ref.c -- brute-force k nearest neighbours in plain C, double
 * precision, one pair at a time.  Slow and obviously right: the reference
 * the tests hold ns_knn_search to. */
#include "nightshift/knn.h"

#include <math.h>
#include <stdlib.h>

ns_status ns_ref_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                            const int64_t *qgroup, const int64_t *bgroup, float *dist,
                            int64_t *idx)
{
    ns_status st = NS_OK;
    double *best = NULL;   /* (k) ascending squared distances of one query */
    int64_t *besti = NULL; /* (k) their base indices; -1 = empty */

    if (d < 1 || k < 1)
        return ns_error(NS_ERR_USAGE, "ref knn: need d >= 1 and k >= 1 (d=%d k=%d)", d, k);
    if ((!qgroup) != (!bgroup))
        return ns_error(NS_ERR_USAGE, "ref knn: qgroup and bgroup must be given together");
    if (nq > 0 && (!q || !dist || (nb > 0 && !b)))
        return ns_error(NS_ERR_USAGE, "ref knn: NULL argument");
    best = malloc((size_t)k * sizeof *best);
    besti = malloc((size_t)k * sizeof *besti);
    if (!best || !besti) {
        st = ns_error(NS_ERR_NOMEM, "ref knn: cannot allocate k=%d", k);
        goto done;
    }
    for (size_t i = 0; i < nq; i++) {
        float *od = dist + i * (size_t)k;
        int64_t *oi = idx ? idx + i * (size_t)k : NULL;
        for (int a = 0; a < k; a++) {
            best[a] = INFINITY;
            besti[a] = -1;
        }
        for (size_t j = 0; j < nb; j++) {
            double s = 0.0;
            int p = k - 1;
            if (qgroup && qgroup[i] == bgroup[j])
                continue;
            for (int t = 0; t < d; t++) {
                double u = (double)q[i * (size_t)d + t] - (double)b[j * (size_t)d + t];
                s += u * u;
            }
            /* strict: an equal distance met later (higher index) loses */
            if (!(s < best[p]))
                continue;
            while (p > 0 && best[p - 1] > s) {
                best[p] = best[p - 1];
                besti[p] = besti[p - 1];
                p--;
            }
            best[p] = s;
            besti[p] = (int64_t)j;
        }
        for (int a = 0; a < k; a++) {
            od[a] = besti[a] >= 0 ? (float)sqrt(best[a]) : INFINITY;
            if (oi)
                oi[a] = besti[a];
        }
    }
done:
    free(best);
    free(besti);
    return st;
}
