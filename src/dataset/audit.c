/* audit.c -- the leakage audit of a dataset build (split.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/knn.h"
#include "nightshift/split.h"

void ns_audit_default_opts(ns_audit_opts *o)
{
    o->max_leak = 0.01;
    o->quantile = 0.05;
    o->threshold = 0;
    o->k = 4;
    o->sample = 2000;
    o->threads = 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Quantile q of every frame's distance to its nearest other frame of the
 * same clip: how far apart consecutive frames of one video are. */
static ns_status calibrate(const float *emb, size_t n, int d, const uint32_t *clip, double q,
                           int threads, double *thr)
{
    ns_status st = NS_OK;
    size_t max_run = 0, n_nn = 0;
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && clip[b] == clip[a]; b++)
            ;
        if (b - a > max_run)
            max_run = b - a;
    }
    float *nn = malloc((n ? n : 1) * sizeof *nn);
    float *dist = malloc((max_run ? max_run : 1) * 2 * sizeof *dist);
    if (!nn || !dist) {
        st = ns_error(NS_ERR_NOMEM, "audit: out of memory calibrating on %zu frames", n);
        goto done;
    }
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && clip[b] == clip[a]; b++)
            ;
        size_t m = b - a;
        if (m < 2)
            continue;
        const float *x = emb + a * (size_t)d;
        if ((st = ns_knn_search(x, m, x, m, d, 2, NULL, NULL, threads, dist, NULL)) != NS_OK)
            goto done;
        /* Column 0 is the frame itself (or an exact twin: distance 0 either way). */
        for (size_t i = 0; i < m; i++)
            nn[n_nn++] = dist[2 * i + 1];
    }
    *thr = 0;
    if (n_nn > 0) {
        qsort(nn, n_nn, sizeof *nn, cmp_float);
        size_t at = (size_t)floor(q * (double)(n_nn - 1));
        *thr = nn[at];
    }
done:
    free(nn);
    free(dist);
    return st;
}

typedef struct hrow {
    uint64_t h;
    uint8_t split;
    size_t row;
} hrow;

static int cmp_hrow(const void *a, const void *b)
{
    const hrow *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return (x->split > y->split) - (x->split < y->split);
}

/* Cross-split pairs of equal content; marks test frames with a train twin. */
static ns_status exact_dups(const uint64_t *hash, const uint8_t *split, size_t n, uint8_t *leak,
                            uint64_t *pairs)
{
    size_t m = 0;
    hrow *v = malloc((n ? n : 1) * sizeof *v);
    *pairs = 0;
    if (!v)
        return ns_error(NS_ERR_NOMEM, "audit: out of memory hashing %zu frames", n);
    for (size_t i = 0; i < n; i++)
        if (hash[i])
            v[m++] = (hrow){hash[i], split[i], i};
    qsort(v, m, sizeof *v, cmp_hrow);
    for (size_t a = 0, b; a < m; a = b) {
        uint64_t c[3] = {0, 0, 0};
        for (b = a; b < m && v[b].h == v[a].h; b++)
            c[v[b].split]++;
        *pairs += c[0] * c[1] + c[0] * c[2] + c[1] * c[2];
        if (c[NS_SPLIT_TRAIN] > 0)
            for (size_t i = a; i < b; i++)
                if (v[i].split == NS_SPLIT_TEST)
                    leak[v[i].row] = 1;
    }
    free(v);
    return NS_OK;
}

/* Rows of one split, gathered contiguously. */
static size_t gather(const float *emb, size_t n, int d, const uint8_t *split, uint8_t want,
                     float *out, size_t *rows)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (split[i] == want) {
            if (out)
                memcpy(out + m * (size_t)d, emb + i * (size_t)d, (size_t)d * sizeof *out);
            if (rows)
                rows[m] = i;
            m++;
        }
    return m;
}

ns_status ns_leak_audit(const float *emb, size_t n, int d, const uint32_t *clip,
                        const uint8_t *split, const uint64_t *content_hash,
                        const ns_audit_opts *o, ns_dataset_audit *audit, uint64_t *n_test_leaked,
                        size_t audited[3])
{
    ns_status st = NS_OK;
    size_t cnt[3] = {0, 0, 0};
    const float *part[3] = {NULL, NULL, NULL};
    float *own[3] = {NULL, NULL, NULL}, *dist = NULL;
    size_t first[3] = {0, 0, 0};
    size_t *rows[3] = {NULL, NULL, NULL};
    uint8_t *leak = calloc(n ? n : 1, 1), *tested = calloc(n ? n : 1, 1);
    float *qbuf = NULL;
    size_t *qrows = NULL;
    const int k = o->k < 1 ? 1 : o->k;
    memset(audit, 0, sizeof *audit);
    audit->max_leak = o->max_leak;
    *n_test_leaked = 0;
    audited[0] = audited[1] = audited[2] = 0;
    if (!leak || !tested)
        return ns_error(NS_ERR_NOMEM, "audit: out of memory");
    if (o->threshold > 0)
        audit->threshold = o->threshold;
    else if ((st = calibrate(emb, n, d, clip, o->quantile, o->threads, &audit->threshold)) !=
             NS_OK)
        goto done;
    for (size_t i = n; i-- > 0;) {
        cnt[split[i]]++;
        first[split[i]] = i;
    }
    for (int s = 0; s < 3; s++) {
        /* A split stored as one block (dataset build orders rows by split)
         * is searched in place; otherwise it is gathered. */
        int block = 1;
        for (size_t i = first[s]; i < first[s] + cnt[s] && block; i++)
            block = split[i] == s;
        rows[s] = malloc((cnt[s] ? cnt[s] : 1) * sizeof(size_t));
        if (!block)
            own[s] = malloc((cnt[s] ? cnt[s] : 1) * (size_t)d * sizeof(float));
        if (!rows[s] || (!block && !own[s])) {
            st = ns_error(NS_ERR_NOMEM, "audit: out of memory for %zu frames", n);
            goto done;
        }
        gather(emb, n, d, split, (uint8_t)s, own[s], rows[s]);
        part[s] = block ? emb + first[s] * (size_t)d : own[s];
    }
    size_t max_q = cnt[NS_SPLIT_VAL] > cnt[NS_SPLIT_TEST] ? cnt[NS_SPLIT_VAL] : cnt[NS_SPLIT_TEST];
    if (o->sample > 0 && max_q > o->sample)
        max_q = o->sample;
    dist = malloc((max_q ? max_q : 1) * (size_t)k * sizeof *dist);
    qbuf = malloc((max_q ? max_q : 1) * (size_t)d * sizeof *qbuf);
    qrows = malloc((max_q ? max_q : 1) * sizeof *qrows);
    if (!dist || !qbuf || !qrows) {
        st = ns_error(NS_ERR_NOMEM, "audit: out of memory");
        goto done;
    }
    /* (query split, base split): val and test against train, test against val. */
    static const uint8_t pairs[3][2] = {
        {NS_SPLIT_TEST, NS_SPLIT_TRAIN}, {NS_SPLIT_VAL, NS_SPLIT_TRAIN}, {NS_SPLIT_TEST, NS_SPLIT_VAL}};
    const float thr = (float)audit->threshold;
    for (int p = 0; p < 3; p++) {
        uint8_t qs = pairs[p][0], bs = pairs[p][1];
        if (cnt[qs] == 0 || cnt[bs] == 0)
            continue;
        /* Sampled queries are evenly spaced, so every clip and night is seen. */
        size_t nq = cnt[qs];
        const float *q = part[qs];
        /* Only test -> train decides the build; the other pairs only count
         * pairs, on a quarter of the queries. */
        size_t cap = p == 0 ? o->sample : (o->sample + 3) / 4;
        if (o->sample > 0 && nq > cap) {
            for (size_t i = 0; i < cap; i++) {
                size_t at = (size_t)((double)i * (double)nq / (double)cap);
                qrows[i] = rows[qs][at];
                memcpy(qbuf + i * (size_t)d, emb + qrows[i] * (size_t)d, (size_t)d * sizeof *qbuf);
            }
            nq = cap;
            q = qbuf;
        } else {
            memcpy(qrows, rows[qs], nq * sizeof *qrows);
        }
        audited[p] = nq;
        if ((st = ns_knn_search(q, nq, part[bs], cnt[bs], d, k, NULL, NULL, o->threads, dist,
                                NULL)) != NS_OK)
            goto done;
        for (size_t i = 0; i < nq; i++) {
            for (int j = 0; j < k; j++)
                audit->n_near_dup += dist[i * (size_t)k + (size_t)j] <= thr;
            if (p == 0) {
                tested[qrows[i]] = 1;
                if (dist[i * (size_t)k] <= thr)
                    leak[qrows[i]] = 1;
            }
        }
    }
    if (content_hash &&
        (st = exact_dups(content_hash, split, n, leak, &audit->n_exact_dup)) != NS_OK)
        goto done;
    /* Without train frames nothing can leak, but every test frame counts as
     * examined (e.g. --split-by none). */
    size_t n_tested = 0;
    for (size_t i = 0; i < n; i++) {
        if (audited[0] == 0 && split[i] == NS_SPLIT_TEST)
            tested[i] = 1;
        n_tested += tested[i];
        *n_test_leaked += leak[i] && tested[i];
    }
    audit->test_leak_share = n_tested ? (double)*n_test_leaked / (double)n_tested : 0.0;
    audit->passed = audit->test_leak_share <= o->max_leak;
done:
    for (int s = 0; s < 3; s++) {
        free(own[s]);
        free(rows[s]);
    }
    free(dist);
    free(qbuf);
    free(qrows);
    free(tested);
    free(leak);
    return st;
}
