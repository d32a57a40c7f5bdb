/* mmd_exact.c -- the clip permutation test by full enumeration, for nights
 * with few clips (contract in include/nightshift/mmd.h).
 *
 * With 4 clips tonight against 8, the random permutations of
 * ns_mmd_perm_test_strata would draw the same few hundred assignments over
 * and over; enumerating each once gives the exact permutation p-value, and
 * its smallest possible value 1 / (number of assignments) says whether the
 * test can reach its level at all.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/mmd.h"

/* Blocks with frames grouped by stratum: blk[off[s] .. off[s + 1]) ascending,
 * nx[s] of them on the X side. */
typedef struct exact_plan {
    size_t n_strata;
    size_t *off, *blk, *nx;
} exact_plan;

static void plan_release(exact_plan *p)
{
    free(p->off);
    free(p->blk);
    free(p->nx);
    memset(p, 0, sizeof *p);
}

static ns_status plan_build(const size_t *size, size_t nblocks, const uint8_t *g,
                            const int32_t *stratum, exact_plan *p)
{
    int32_t *val = malloc((nblocks ? nblocks : 1) * sizeof *val);
    size_t nv = 0, at = 0;
    memset(p, 0, sizeof *p);
    p->off = calloc(nblocks + 1, sizeof *p->off);
    p->blk = malloc((nblocks ? nblocks : 1) * sizeof *p->blk);
    p->nx = calloc(nblocks ? nblocks : 1, sizeof *p->nx);
    if (!val || !p->off || !p->blk || !p->nx) {
        free(val);
        plan_release(p);
        return ns_error(NS_ERR_NOMEM, "exact test: no memory for %zu blocks", nblocks);
    }
    /* Distinct stratum values in ascending order (few: cameras). */
    for (size_t a = 0; a < nblocks; a++) {
        int32_t v = stratum ? stratum[a] : 0;
        size_t k = 0;
        if (!size[a])
            continue;
        while (k < nv && val[k] < v)
            k++;
        if (k < nv && val[k] == v)
            continue;
        memmove(val + k + 1, val + k, (nv - k) * sizeof *val);
        val[k] = v;
        nv++;
    }
    for (size_t k = 0; k < nv; k++) {
        p->off[k] = at;
        for (size_t a = 0; a < nblocks; a++)
            if (size[a] && (stratum ? stratum[a] : 0) == val[k]) {
                p->blk[at++] = a;
                p->nx[k] += g[a] != 0;
            }
    }
    p->off[nv] = at;
    p->n_strata = nv;
    free(val);
    return NS_OK;
}

static double choose(size_t n, size_t k)
{
    double c = 1.0;
    if (k > n)
        return 0.0;
    for (size_t i = 1; i <= k; i++)
        c = c * (double)(n - k + i) / (double)i;
    return floor(c + 0.5);
}

double ns_mmd_assignments(const size_t *size, size_t nblocks, const uint8_t *g,
                          const int32_t *stratum)
{
    exact_plan p;
    double count = 1.0;
    if (plan_build(size, nblocks, g, stratum, &p) != NS_OK)
        return NAN;
    for (size_t s = 0; s < p.n_strata; s++)
        count *= choose(p.off[s + 1] - p.off[s], p.nx[s]);
    plan_release(&p);
    return count;
}

/* Next k-combination of 0..n-1 in lexicographic order; 0 after the last. */
static int next_comb(size_t *c, size_t k, size_t n)
{
    size_t i = k;
    while (i > 0 && c[i - 1] == n - k + i - 1)
        i--;
    if (i == 0)
        return 0;
    c[i - 1]++;
    for (size_t j = i; j < k; j++)
        c[j] = c[j - 1] + 1;
    return 1;
}

ns_status ns_mmd_exact_test_strata(const double *S, const size_t *size, size_t nblocks,
                                   const uint8_t *g, const int32_t *stratum, size_t max_assign,
                                   int keep_null, ns_mmd_test *out)
{
    ns_status st = NS_OK;
    exact_plan p = {0};
    size_t *comb = NULL, n_assign, done = 0, ge = 0;
    uint8_t *gp = NULL;
    double obs, count, sum = 0.0, ss = 0.0, tol;
    if (out)
        memset(out, 0, sizeof *out);
    if (!S || !size || !g || !out)
        return ns_error(NS_ERR_USAGE, "exact mmd test: NULL argument");
    for (size_t a = 0; a < nblocks; a++) {
        if (!size[a])
            continue;
        if (g[a]) {
            out->blocks_x++;
            out->n_x += size[a];
        } else {
            out->blocks_y++;
            out->n_y += size[a];
        }
    }
    if (out->blocks_x < 2 || out->blocks_y < 2)
        return ns_error(NS_ERR_USAGE, "exact mmd test: need at least 2 clips on each side, got "
                        "%zu and %zu", out->blocks_x, out->blocks_y);
    count = ns_mmd_assignments(size, nblocks, g, stratum);
    if (!(count >= 1) || count > (double)max_assign)
        return ns_error(NS_ERR_USAGE, "exact mmd test: %.0f assignments, over the %zu allowed",
                        count, max_assign);
    n_assign = (size_t)count;
    if ((st = plan_build(size, nblocks, g, stratum, &p)) != NS_OK)
        return st;
    comb = malloc((nblocks ? nblocks : 1) * sizeof *comb);
    gp = calloc(nblocks ? nblocks : 1, 1);
    if (keep_null)
        out->null_stats = malloc(n_assign * sizeof *out->null_stats);
    if (!comb || !gp || (keep_null && !out->null_stats)) {
        st = ns_error(NS_ERR_NOMEM, "exact mmd test: no memory for %zu assignments", n_assign);
        goto done;
    }
    obs = ns_mmd2_from_blocks(S, size, nblocks, g);
    tol = 1e-12 * (1.0 + fabs(obs));
    /* comb holds every stratum's current combination (positions within the
     * stratum), stratum s at comb + off[s]; an odometer over the strata. */
    for (size_t s = 0; s < p.n_strata; s++)
        for (size_t j = 0; j < p.nx[s]; j++)
            comb[p.off[s] + j] = j;
    for (;;) {
        memset(gp, 0, nblocks);
        for (size_t s = 0; s < p.n_strata; s++)
            for (size_t j = 0; j < p.nx[s]; j++)
                gp[p.blk[p.off[s] + comb[p.off[s] + j]]] = 1;
        double v = ns_mmd2_from_blocks(S, size, nblocks, gp);
        if (keep_null)
            out->null_stats[done] = v;
        ge += v >= obs - tol;
        sum += v;
        ss += v * v;
        done++;
        size_t s = 0;
        while (s < p.n_strata &&
               !next_comb(comb + p.off[s], p.nx[s], p.off[s + 1] - p.off[s])) {
            for (size_t j = 0; j < p.nx[s]; j++) /* wrap this stratum, carry on */
                comb[p.off[s] + j] = j;
            s++;
        }
        if (s == p.n_strata)
            break;
    }
    if (done != n_assign) {
        st = ns_error(NS_ERR_INTERNAL, "exact mmd test: enumerated %zu of %zu assignments", done,
                      n_assign);
        goto done;
    }
    /* The observed assignment is one of them: p >= 1 / n_assign. */
    out->mmd2 = obs;
    out->p_value = (double)ge / (double)n_assign;
    out->n_perm = (int)n_assign;
    out->null_mean = sum / (double)n_assign;
    out->null_sd = sqrt(fmax(0.0, ss / (double)n_assign - out->null_mean * out->null_mean));
done:
    if (st != NS_OK) {
        free(out->null_stats);
        out->null_stats = NULL;
    }
    plan_release(&p);
    free(comb);
    free(gp);
    return st;
}
