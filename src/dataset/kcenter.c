/* kcenter.c -- exact k-center greedy with triangle-inequality pruning
 * (kcenter.h).  Compiled with -ffp-contract=off (CMakeLists.txt): the
 * distance must round the same way here and in the reference. */
#include "nightshift/kcenter.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Skip margin over float rounding of the two squared distances compared
 * (each is off by at most ~d * 2^-24 relative; 1e-3 is far above it). */
#define SKIP_MARGIN 1.001f

struct ns_kcenter {
    const float *x; /* (n, d) caller's */
    size_t n;
    int d;
    size_t max_centers, n_centers;
    size_t *centers; /* (max_centers) rows */
    float *mind;     /* (n) squared distance to the nearest center */
    int32_t *assign; /* (n) that center's rank, -1 none */
    float *cc;       /* (max_centers) squared distance of the newest center to each */
    uint64_t evaluated;
};

float ns_kcenter_d2(const float *a, const float *b, int d)
{
    float acc[16] = {0};
    int t = 0;
    for (; t + 16 <= d; t += 16)
        for (int j = 0; j < 16; j++) {
            float u = a[t + j] - b[t + j];
            acc[j] += u * u;
        }
    for (int j = 0; t < d; t++, j++) {
        float u = a[t] - b[t];
        acc[j] += u * u;
    }
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

ns_status ns_kcenter_create(const float *x, size_t n, int d, size_t max_centers,
                            ns_kcenter **out)
{
    *out = NULL;
    if (d < 1 || (n > 0 && !x))
        return ns_error(NS_ERR_USAGE, "kcenter: need d >= 1 and data (d=%d)", d);
    if (n > INT32_MAX || max_centers > INT32_MAX)
        return ns_error(NS_ERR_LIMIT, "kcenter: %zu points / %zu centers is over the limit", n,
                        max_centers);
    ns_kcenter *k = calloc(1, sizeof *k);
    if (!k)
        return ns_error(NS_ERR_NOMEM, "kcenter: out of memory");
    size_t mc = max_centers ? max_centers : 1, nn = n ? n : 1;
    k->centers = malloc(mc * sizeof *k->centers);
    k->cc = malloc(mc * sizeof *k->cc);
    k->mind = malloc(nn * sizeof *k->mind);
    k->assign = malloc(nn * sizeof *k->assign);
    if (!k->centers || !k->cc || !k->mind || !k->assign) {
        ns_kcenter_free(k);
        return ns_error(NS_ERR_NOMEM, "kcenter: out of memory for %zu points", n);
    }
    for (size_t i = 0; i < n; i++) {
        k->mind[i] = INFINITY;
        k->assign[i] = -1;
    }
    k->x = x;
    k->n = n;
    k->d = d;
    k->max_centers = max_centers;
    *out = k;
    return NS_OK;
}

void ns_kcenter_free(ns_kcenter *k)
{
    if (!k)
        return;
    free(k->centers);
    free(k->cc);
    free(k->mind);
    free(k->assign);
    free(k);
}

ns_status ns_kcenter_add(ns_kcenter *k, size_t c)
{
    if (c >= k->n)
        return ns_error(NS_ERR_USAGE, "kcenter: row %zu out of range (%zu points)", c, k->n);
    if (k->n_centers == k->max_centers)
        return ns_error(NS_ERR_LIMIT, "kcenter: more than %zu centers", k->max_centers);
    const size_t d = (size_t)k->d;
    const float *xc = k->x + c * d;
    const int32_t rank = (int32_t)k->n_centers;
    float *cc = k->cc;
    for (size_t j = 0; j < k->n_centers; j++)
        cc[j] = ns_kcenter_d2(xc, k->x + k->centers[j] * d, k->d);
    k->centers[k->n_centers++] = c;
    float *mind = k->mind;
    int32_t *assign = k->assign;
    const float *x = k->x;
    const long n = (long)k->n;
    const int dd = k->d;
    uint64_t ev = 0;
#pragma omp parallel for schedule(static, 4096) reduction(+ : ev)
    for (long i = 0; i < n; i++) {
        float r2 = mind[i];
        int32_t a = assign[i];
        /* d(c, a)^2 >= 4 r^2: c is no nearer than a (triangle inequality) */
        if (a >= 0 && cc[a] >= 4.0f * SKIP_MARGIN * r2)
            continue;
        float v = ns_kcenter_d2(x + (size_t)i * (size_t)dd, xc, dd);
        ev++;
        if (v < r2) {
            mind[i] = v;
            assign[i] = rank;
        }
    }
    k->evaluated += ev;
    return NS_OK;
}

int ns_kcenter_farthest(const ns_kcenter *k, const uint8_t *allow, size_t *row, float *dist2)
{
    int found = 0;
    float best = -1.0f;
    size_t bi = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (allow && !allow[i])
            continue;
        if (!found || k->mind[i] > best) {
            best = k->mind[i];
            bi = i;
            found = 1;
        }
    }
    if (found) {
        *row = bi;
        if (dist2)
            *dist2 = best;
    }
    return found;
}

float ns_kcenter_dist2(const ns_kcenter *k, size_t i)
{
    return k->mind[i];
}

uint64_t ns_kcenter_evaluated(const ns_kcenter *k)
{
    return k->evaluated;
}

ns_status ns_kcenter_greedy(const float *x, size_t n, int d, const size_t *seeds,
                            size_t n_seeds, const uint8_t *allow, size_t budget, size_t *picks,
                            float *gain, size_t *n_picked)
{
    ns_kcenter *k = NULL;
    uint8_t *ok = NULL;
    ns_status st;
    *n_picked = 0;
    if ((st = ns_kcenter_create(x, n, d, n_seeds + budget, &k)) != NS_OK)
        return st;
    /* a pick is never picked again: a private copy of allow */
    ok = malloc(n ? n : 1);
    if (!ok) {
        st = ns_error(NS_ERR_NOMEM, "kcenter: out of memory for %zu points", n);
        goto done;
    }
    if (allow)
        memcpy(ok, allow, n);
    else
        memset(ok, 1, n);
    for (size_t s = 0; s < n_seeds; s++) {
        if ((st = ns_kcenter_add(k, seeds[s])) != NS_OK)
            goto done;
        ok[seeds[s]] = 0;
    }
    for (size_t b = 0; b < budget; b++) {
        size_t r;
        float g;
        if (!ns_kcenter_farthest(k, ok, &r, &g))
            break;
        picks[b] = r;
        if (gain)
            gain[b] = g;
        ok[r] = 0;
        (*n_picked)++;
        if ((st = ns_kcenter_add(k, r)) != NS_OK)
            goto done;
    }
done:
    free(ok);
    ns_kcenter_free(k);
    return st;
}
