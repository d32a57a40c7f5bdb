/* kcenter_ref.c -- k-center greedy the obvious way: each step recomputes
 * every point's distance to every center.  The reference tests hold
 * ns_kcenter_greedy to. */
#include "nightshift/kcenter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ns_status ns_kcenter_ref(const float *x, size_t n, int d, const size_t *seeds, size_t n_seeds,
                         const uint8_t *allow, size_t budget, size_t *picks, float *gain,
                         size_t *n_picked)
{
    size_t *centers = malloc((n_seeds + budget + 1) * sizeof *centers);
    uint8_t *used = calloc(n ? n : 1, 1);
    size_t k = 0;
    *n_picked = 0;
    if (!centers || !used) {
        free(centers);
        free(used);
        return ns_error(NS_ERR_NOMEM, "kcenter ref: out of memory");
    }
    for (size_t s = 0; s < n_seeds; s++) {
        centers[k++] = seeds[s];
        used[seeds[s]] = 1;
    }
    for (size_t b = 0; b < budget; b++) {
        int found = 0;
        float best = -1.0f;
        size_t bi = 0;
        for (size_t i = 0; i < n; i++) {
            if (used[i] || (allow && !allow[i]))
                continue;
            float m = INFINITY;
            for (size_t j = 0; j < k; j++) {
                float v = ns_kcenter_d2(x + i * (size_t)d, x + centers[j] * (size_t)d, d);
                if (v < m)
                    m = v;
            }
            if (!found || m > best) {
                best = m;
                bi = i;
                found = 1;
            }
        }
        if (!found)
            break;
        picks[b] = bi;
        if (gain)
            gain[b] = best;
        used[bi] = 1;
        centers[k++] = bi;
        (*n_picked)++;
    }
    free(centers);
    free(used);
    return NS_OK;
}
