/* labels.c -- effective labels over a store's label sets (labels.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/labels.h"

void ns_labels_release(ns_labelmap *m)
{
    if (!m)
        return;
    free(m->clip);
    free(m->index);
    free(m->cls);
    free(m->classes);
    free(m->sets);
    memset(m, 0, sizeof *m);
}

typedef struct ref {
    const ns_labelset *set;
    size_t row;
    uint32_t order; /* position of the set, newer higher */
} ref;

/* By frame; the same frame's labels newest first. */
static int cmp_frame(const ref *x, const ref *y)
{
    int c = strcmp(x->set->clip[x->row], y->set->clip[y->row]);
    if (c)
        return c;
    uint32_t i = x->set->index[x->row], j = y->set->index[y->row];
    return (i > j) - (i < j);
}

static int cmp_ref(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    int c = cmp_frame(x, y);
    return c ? c : (x->order < y->order) - (x->order > y->order);
}

static long find_class(char (*classes)[NS_LABEL_LEN], size_t n, const char *name)
{
    for (size_t c = 0; c < n; c++)
        if (strcmp(classes[c], name) == 0)
            return (long)c;
    return -1;
}

ns_status ns_labels_merge(const ns_labelset *sets, size_t n_sets, ns_labelmap *out)
{
    ns_status st = NS_OK;
    ns_labelmap m;
    ref *refs = NULL;
    int32_t **remap = NULL;
    size_t total = 0, total_cls = 0;
    memset(&m, 0, sizeof m);
    memset(out, 0, sizeof *out);
    for (size_t s = 0; s < n_sets; s++) {
        total += sets[s].n;
        total_cls += sets[s].n_classes;
    }
    m.classes = calloc(total_cls ? total_cls : 1, sizeof *m.classes);
    m.sets = calloc(n_sets ? n_sets : 1, sizeof *m.sets);
    remap = calloc(n_sets ? n_sets : 1, sizeof *remap);
    refs = malloc((total ? total : 1) * sizeof *refs);
    if (!m.classes || !m.sets || !remap || !refs) {
        st = ns_error(NS_ERR_NOMEM, "no memory to merge %zu labels", total);
        goto done;
    }
    /* Union of the class lists in first-seen order, so indices stay put as
     * later sets add classes. */
    for (size_t s = 0; s < n_sets; s++) {
        snprintf(m.sets[s], NS_LABELSET_LEN, "%s@%u", sets[s].name, sets[s].version);
        if (!(remap[s] = malloc((sets[s].n_classes ? sets[s].n_classes : 1) * sizeof **remap))) {
            st = ns_error(NS_ERR_NOMEM, "no memory to merge label classes");
            goto done;
        }
        for (size_t c = 0; c < sets[s].n_classes; c++) {
            long k = find_class(m.classes, m.n_classes, sets[s].classes[c]);
            if (k < 0) {
                k = (long)m.n_classes++;
                memcpy(m.classes[k], sets[s].classes[c], NS_LABEL_LEN);
            }
            remap[s][c] = (int32_t)k;
        }
    }
    m.n_sets = n_sets;
    size_t k = 0;
    for (size_t s = 0; s < n_sets; s++)
        for (size_t i = 0; i < sets[s].n; i++)
            refs[k++] = (ref){&sets[s], i, (uint32_t)s};
    qsort(refs, total, sizeof *refs, cmp_ref);
    size_t n = 0;
    for (size_t i = 0; i < total; i++)
        n += i == 0 || cmp_frame(&refs[i], &refs[i - 1]) != 0;
    m.clip = malloc((n ? n : 1) * sizeof *m.clip);
    m.index = malloc((n ? n : 1) * sizeof *m.index);
    m.cls = malloc((n ? n : 1) * sizeof *m.cls);
    if (!m.clip || !m.index || !m.cls) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %zu labels", n);
        goto done;
    }
    for (size_t i = 0; i < total; i++) {
        const ref *r = &refs[i];
        if (i > 0 && cmp_frame(r, &refs[i - 1]) == 0)
            continue; /* an older label of the same frame */
        memcpy(m.clip[m.n], r->set->clip[r->row], NS_SHA256_HEX);
        m.index[m.n] = r->set->index[r->row];
        m.cls[m.n] = remap[r->order][r->set->cls[r->row]];
        m.n++;
    }
    *out = m;
    memset(&m, 0, sizeof m);
done:
    for (size_t s = 0; remap && s < n_sets; s++)
        free(remap[s]);
    free(remap);
    free(refs);
    ns_labels_release(&m);
    return st;
}

ns_status ns_labels_load(const ns_store *s, const char *names, ns_labelmap *out)
{
    ns_labelset *sets = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    ns_status st = ns_labelsets_read(s, names, &sets, &n);
    if (st == NS_OK)
        st = ns_labels_merge(sets, n, out);
    ns_labelsets_free(sets, n);
    return st;
}

int32_t ns_labels_find(const ns_labelmap *m, const char *clip_sha256, uint32_t index)
{
    size_t lo = 0, hi = m ? m->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->clip[mid], clip_sha256);
        if (c == 0)
            c = m->index[mid] < index ? -1 : m->index[mid] > index;
        if (c == 0)
            return m->cls[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
