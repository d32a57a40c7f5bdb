/* evalset.c -- evaluation rows, dense clip ids, slices, head outcomes. */
#include "nightshift/evalset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/metrics.h"
#include "nightshift/strbuf.h"

const char *const ns_slice_kind_names[NS_SLICE_KINDS] = {"all",       "camera", "night",
                                                         "condition", "class",  "subset"};

ns_slice_kind ns_slice_kind_parse(const char *s)
{
    for (int k = 0; k < NS_SLICE_KINDS; k++)
        if (strcmp(s, ns_slice_kind_names[k]) == 0)
            return (ns_slice_kind)k;
    return NS_SLICE_KINDS;
}

ns_status ns_subset_parse(const char *spec, ns_subset_def *d)
{
    const char *p = spec;
    d->n_terms = 0;
    for (;;) {
        char term[NS_LABEL_LEN + 32];
        size_t len;
        char *eq;
        ns_slice_kind f;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        len = strcspn(p, " \t,");
        if (len >= sizeof term)
            return ns_error(NS_ERR_USAGE, "subset '%s': term too long", ns_show(d->name).s);
        memcpy(term, p, len);
        term[len] = '\0';
        p += len;
        eq = strchr(term, '=');
        if (!eq || eq == term || !eq[1])
            return ns_error(NS_ERR_USAGE, "subset '%s': '%s' is not field=value",
                            ns_show(d->name).s, ns_show(term).s);
        *eq = '\0';
        f = ns_slice_kind_parse(term);
        if (f != NS_SLICE_CAMERA && f != NS_SLICE_NIGHT && f != NS_SLICE_CONDITION &&
            f != NS_SLICE_CLASS)
            return ns_error(NS_ERR_USAGE,
                            "subset '%s': unknown field '%s' (camera, night, condition, class)",
                            ns_show(d->name).s, ns_show(term).s);
        if (d->n_terms == NS_SUBSET_TERMS)
            return ns_error(NS_ERR_USAGE, "subset '%s': more than %d terms", ns_show(d->name).s,
                            NS_SUBSET_TERMS);
        d->field[d->n_terms] = f;
        snprintf(d->value[d->n_terms], sizeof d->value[0], "%s", eq + 1);
        d->n_terms++;
    }
    if (d->n_terms == 0)
        return ns_error(NS_ERR_USAGE, "subset '%s' has no terms", ns_show(d->name).s);
    return NS_OK;
}

typedef struct keyed {
    const char *key;
    long num;
    uint32_t row;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    if ((c = strcmp(x->key, y->key)) != 0)
        return c;
    return (x->row > y->row) - (x->row < y->row);
}

/* Key of row i for a kind; 0 when the row has no value for it. */
static int row_key(const ns_dataset *ds, size_t r, ns_slice_kind k, const char **key, long *num)
{
    *key = "";
    *num = 0;
    switch (k) {
    case NS_SLICE_CAMERA: *key = ds->camera[r]; return 1;
    case NS_SLICE_NIGHT: *key = ds->night[r]; return 1;
    case NS_SLICE_CONDITION: *num = ds->condition ? ds->condition[r] : -1; return *num >= 0;
    case NS_SLICE_CLASS: *num = ds->label[r]; return 1;
    default: return 0;
    }
}

static int term_match(const ns_dataset *ds, size_t r, ns_slice_kind f, const char *v)
{
    char b[32];
    switch (f) {
    case NS_SLICE_CAMERA: return strcmp(ds->camera[r], v) == 0;
    case NS_SLICE_NIGHT: return strcmp(ds->night[r], v) == 0;
    case NS_SLICE_CONDITION:
        snprintf(b, sizeof b, "%d", ds->condition ? ds->condition[r] : -1);
        return strcmp(b, v) == 0;
    case NS_SLICE_CLASS: return strcmp(ds->classes[ds->label[r]], v) == 0;
    default: return 0;
    }
}

static size_t count_clips(const ns_eval_set *es, const uint32_t *rows, size_t n, uint32_t *mark,
                          uint32_t stamp)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = es->clip[rows[i]];
        if (mark[k] != stamp) {
            mark[k] = stamp;
            c++;
        }
    }
    return c;
}

void ns_eval_set_release(ns_eval_set *es)
{
    if (!es)
        return;
    free(es->ds_row);
    free(es->clip);
    free(es->clip_first);
    free(es->slices);
    free(es->arena);
    memset(es, 0, sizeof *es);
}

ns_status ns_eval_set_build(const ns_dataset *ds, const ns_subset_def *subsets,
                            size_t n_subsets, ns_eval_set *out)
{
    ns_status st = NS_OK;
    ns_eval_set es;
    keyed *kv = NULL;
    uint32_t *mark = NULL;
    size_t n = 0, cap_slices, used = 0;
    memset(&es, 0, sizeof es);
    memset(out, 0, sizeof *out);
    es.all_rows = strcmp(ds->split_by, "none") == 0;
    for (size_t r = 0; r < ds->n; r++)
        n += es.all_rows || ds->split[r] == NS_SPLIT_TEST;
    if (n == 0)
        return ns_error(NS_ERR_USAGE,
                        "the dataset has no test frames to evaluate on (split_by %s); build an "
                        "evaluation set with 'dataset build --split-by none'",
                        ds->split_by);
    if (n > UINT32_MAX)
        return ns_error(NS_ERR_LIMIT, "%zu evaluation frames: at most %u", n, UINT32_MAX);
    es.n = n;
    es.n_classes = (int)ds->n_classes;
    es.ds_row = malloc(sizeof *es.ds_row * n);
    es.clip = malloc(sizeof *es.clip * n);
    es.clip_first = malloc(sizeof *es.clip_first * n);
    kv = malloc(sizeof *kv * n);
    mark = malloc(sizeof *mark * n);
    es.arena = malloc(sizeof *es.arena * n * (5 + n_subsets));
    if (!es.ds_row || !es.clip || !es.clip_first || !kv || !mark || !es.arena) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for %zu evaluation frames", n);
        goto done;
    }
    /* Dense clip ids: rows of a clip are contiguous in a dataset, but a
     * lookup by hash keeps this right for any order. */
    {
        size_t i = 0;
        for (size_t r = 0; r < ds->n; r++)
            if (es.all_rows || ds->split[r] == NS_SPLIT_TEST) {
                es.ds_row[i] = r;
                kv[i].key = ds->clip[r];
                kv[i].num = 0;
                kv[i].row = (uint32_t)i;
                i++;
            }
        qsort(kv, n, sizeof *kv, cmp_keyed);
        /* Number clips in order of first appearance: sort groups by their
         * first row, then relabel. */
        for (size_t a = 0; a < n;) {
            size_t b = a + 1;
            while (b < n && strcmp(kv[b].key, kv[a].key) == 0)
                b++;
            for (size_t t = a; t < b; t++)
                mark[kv[t].row] = kv[a].row; /* the group's first row */
            a = b;
        }
        for (size_t t = 0; t < n; t++) {
            if (mark[t] == t) {
                es.clip_first[es.n_clips] = es.ds_row[t];
                es.clip[t] = (uint32_t)es.n_clips++;
            } else {
                es.clip[t] = es.clip[mark[t]];
            }
        }
    }
    cap_slices = 16 + n_subsets;
    es.slices = calloc(cap_slices, sizeof *es.slices);
    if (!es.slices) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for slices");
        goto done;
    }
    memset(mark, 0xff, sizeof *mark * n);
    {
        ns_slice *s = &es.slices[es.n_slices++];
        s->kind = NS_SLICE_ALL;
        s->cls = -1;
        snprintf(s->name, sizeof s->name, "all");
        s->rows = es.arena;
        s->n_rows = n;
        for (size_t i = 0; i < n; i++)
            s->rows[i] = (uint32_t)i;
        used = n;
    }
    for (int k = NS_SLICE_CAMERA; k <= NS_SLICE_CLASS; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const char *key;
            long num;
            if (row_key(ds, es.ds_row[i], (ns_slice_kind)k, &key, &num)) {
                kv[m].key = key;
                kv[m].num = num;
                kv[m].row = (uint32_t)i;
                m++;
            }
        }
        qsort(kv, m, sizeof *kv, cmp_keyed);
        for (size_t a = 0; a < m;) {
            size_t b = a + 1;
            ns_slice *s;
            if (es.n_slices + n_subsets + 1 >= cap_slices) {
                ns_slice *g = realloc(es.slices, sizeof *g * cap_slices * 2);
                if (!g) {
                    st = ns_error(NS_ERR_NOMEM, "out of memory for slices");
                    goto done;
                }
                memset(g + cap_slices, 0, sizeof *g * cap_slices);
                es.slices = g;
                cap_slices *= 2;
            }
            s = &es.slices[es.n_slices++];
            while (b < m && kv[b].num == kv[a].num && strcmp(kv[b].key, kv[a].key) == 0)
                b++;
            s->kind = (ns_slice_kind)k;
            s->cls = k == NS_SLICE_CLASS ? (int)kv[a].num : -1;
            if (k == NS_SLICE_CLASS)
                snprintf(s->name, sizeof s->name, "%s", ds->classes[kv[a].num]);
            else if (k == NS_SLICE_CONDITION)
                snprintf(s->name, sizeof s->name, "%ld", kv[a].num);
            else
                snprintf(s->name, sizeof s->name, "%s", kv[a].key[0] ? kv[a].key : "(unknown)");
            s->rows = es.arena + used;
            s->n_rows = b - a;
            for (size_t t = a; t < b; t++)
                s->rows[t - a] = kv[t].row; /* ascending: ties sort by row */
            used += b - a;
            a = b;
        }
    }
    for (size_t j = 0; j < n_subsets; j++) {
        ns_slice *s = &es.slices[es.n_slices++];
        s->kind = NS_SLICE_SUBSET;
        s->cls = -1;
        snprintf(s->name, sizeof s->name, "%s", subsets[j].name);
        s->rows = es.arena + used;
        for (size_t i = 0; i < n; i++) {
            int ok = 1;
            for (int t = 0; t < subsets[j].n_terms && ok; t++)
                ok = term_match(ds, es.ds_row[i], subsets[j].field[t], subsets[j].value[t]);
            if (ok)
                s->rows[s->n_rows++] = (uint32_t)i;
        }
        used += s->n_rows;
    }
    memset(mark, 0, sizeof *mark * n);
    for (size_t j = 0; j < es.n_slices; j++)
        es.slices[j].n_clips = count_clips(&es, es.slices[j].rows, es.slices[j].n_rows, mark,
                                           (uint32_t)j + 1);
done:
    free(kv);
    free(mark);
    if (st != NS_OK)
        ns_eval_set_release(&es);
    else
        *out = es;
    return st;
}

void ns_eval_pred_release(ns_eval_pred *p)
{
    if (!p)
        return;
    free(p->pred);
    free(p->conf);
    free(p->p_true);
    free(p->head_class);
    free(p->known);
    memset(p, 0, sizeof *p);
}

ns_status ns_eval_pred_from_probs(const ns_eval_set *es, const ns_dataset *ds,
                                  const float *prob, int n_head,
                                  const char (*head_classes)[NS_LABEL_LEN], ns_eval_pred *out)
{
    ns_status st = NS_OK;
    ns_eval_pred p;
    int *h2d = NULL, *d2h = NULL;
    int K = es->n_classes;
    memset(&p, 0, sizeof p);
    memset(out, 0, sizeof *out);
    p.n = es->n;
    p.pred = malloc(sizeof *p.pred * es->n);
    p.conf = malloc(sizeof *p.conf * es->n);
    p.p_true = malloc(sizeof *p.p_true * es->n);
    p.head_class = malloc(sizeof *p.head_class * es->n);
    p.known = calloc((size_t)K, sizeof *p.known);
    h2d = malloc(sizeof *h2d * (size_t)n_head);
    d2h = malloc(sizeof *d2h * (size_t)K);
    if (!p.pred || !p.conf || !p.p_true || !p.head_class || !p.known || !h2d || !d2h) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for %zu predictions", es->n);
        goto done;
    }
    /* Classes are matched by name: a head trained on another label set
     * numbers its classes its own way. */
    for (int k = 0; k < K; k++)
        d2h[k] = -1;
    for (int h = 0; h < n_head; h++) {
        h2d[h] = -1;
        for (int k = 0; k < K; k++)
            if (strcmp(head_classes[h], ds->classes[k]) == 0) {
                h2d[h] = k;
                d2h[k] = h;
                p.known[k] = 1;
                break;
            }
    }
    for (size_t i = 0; i < es->n; i++) {
        const float *pr = prob + i * (size_t)n_head;
        int best = 0, lab = ds->label[es->ds_row[i]];
        for (int h = 1; h < n_head; h++)
            if (pr[h] > pr[best])
                best = h;
        p.head_class[i] = best;
        p.pred[i] = h2d[best];
        p.conf[i] = pr[best];
        p.p_true[i] = d2h[lab] >= 0 ? pr[d2h[lab]] : 0.0f;
    }
done:
    free(h2d);
    free(d2h);
    if (st != NS_OK)
        ns_eval_pred_release(&p);
    else
        *out = p;
    return st;
}

void ns_eval_slice_local_clips(const ns_eval_set *es, const ns_slice *sl, uint32_t *clip_map)
{
    uint32_t next = 0;
    for (size_t i = 0; i < sl->n_rows; i++)
        clip_map[es->clip[sl->rows[i]]] = UINT32_MAX;
    for (size_t i = 0; i < sl->n_rows; i++) {
        uint32_t c = es->clip[sl->rows[i]];
        if (clip_map[c] == UINT32_MAX)
            clip_map[c] = next++;
    }
}

void ns_eval_slice_stats(const ns_eval_set *es, const ns_dataset *ds, const ns_slice *sl,
                         const ns_eval_pred *const *preds, int n_heads, uint32_t *clip_map,
                         double *stats)
{
    int K = es->n_classes, q1 = ns_ev_q(K);
    size_t q = (size_t)n_heads * (size_t)q1;
    memset(stats, 0, sizeof *stats * sl->n_clips * q);
    ns_eval_slice_local_clips(es, sl, clip_map);
    for (size_t i = 0; i < sl->n_rows; i++) {
        uint32_t r = sl->rows[i];
        int lab = ds->label[es->ds_row[r]];
        double *row = stats + clip_map[es->clip[r]] * q;
        for (int h = 0; h < n_heads; h++)
            ns_ev_add(row + (size_t)h * (size_t)q1, K, lab, preds[h]->pred[r], preds[h]->conf[r],
                      preds[h]->p_true[r]);
    }
}
