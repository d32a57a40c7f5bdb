/* select.c -- frames to label: the greedy objective of select.h. */
#include "nightshift/select.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/detfile.h"
#include "nightshift/embeddings.h"
#include "nightshift/frameset.h"
#include "nightshift/head.h"
#include "nightshift/kcenter.h"
#include "nightshift/warn.h"
#include "select_internal.h"

void ns_select_default_opts(ns_select_opts *o)
{
    memset(o, 0, sizeof *o);
    o->uncertainty = NS_UNC_MARGIN;
    o->seed = 1;
    o->min_gap = 3;
    o->w_novel = 0.5;
    o->w_uncertain = 0.2;
    o->w_camera = 0.1;
    o->min_per_condition = 2;
}

void ns_select_result_release(ns_select_result *r)
{
    if (!r)
        return;
    free(r->picks);
    memset(r, 0, sizeof *r);
}

void ns_select_reason(const ns_select_pick *p, char *buf, size_t cap)
{
    switch (p->reason) {
    case NS_REASON_NOVEL: snprintf(buf, cap, "novel_c%d", (int)p->condition); break;
    case NS_REASON_UNCERTAIN: snprintf(buf, cap, "uncertain"); break;
    case NS_REASON_CAMERA: snprintf(buf, cap, "camera_balance"); break;
    default: snprintf(buf, cap, "coverage"); break;
    }
}

static ns_status check_opts(const ns_select_opts *o)
{
    if (o->n_detect == 0)
        return ns_error(NS_ERR_USAGE, "select: give at least one --detect DIR");
    if (o->budget == 0)
        return ns_error(NS_ERR_USAGE, "select: --budget must be at least 1");
    double w[3] = {o->w_novel, o->w_uncertain, o->w_camera};
    for (int k = 0; k < 3; k++)
        if (!(w[k] >= 0.0 && w[k] <= 1.0))
            return ns_error(NS_ERR_USAGE, "select: weights must lie in [0, 1]");
    if (w[0] + w[1] + w[2] > 1.0 + 1e-9)
        return ns_error(NS_ERR_USAGE, "select: --w-novel + --w-uncertain + --w-camera is %.3g, "
                        "over 1", w[0] + w[1] + w[2]);
    if (o->min_gap < 0 || !(o->min_gap_seconds >= 0.0) || !(o->min_dist >= 0.0) ||
        o->min_per_condition < 0)
        return ns_error(NS_ERR_USAGE, "select: gaps, distances and minimums cannot be negative");
    return NS_OK;
}

/* ---- state of one run ------------------------------------------------------ */

/* (clip row in the frameset << 32 | frame index) -> frameset row, sorted by key. */
typedef struct frow { uint64_t key; size_t row; } frow;

static int cmp_frow(const void *a, const void *b)
{
    uint64_t x = ((const frow *)a)->key, y = ((const frow *)b)->key;
    return (x > y) - (x < y);
}

static long find_row(const frow *t, size_t n, uint32_t clip, uint32_t index)
{
    uint64_t k = ((uint64_t)clip << 32) | index;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid].key < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && t[lo].key == k ? (long)t[lo].row : -1;
}

typedef struct cat_ix { const char *sha; size_t row; } cat_ix;

static int cmp_cat(const void *a, const void *b)
{
    return strcmp(((const cat_ix *)a)->sha, ((const cat_ix *)b)->sha);
}

static long find_cat(const cat_ix *t, size_t n, const char *sha)
{
    cat_ix k = {sha, 0};
    const cat_ix *h = bsearch(&k, t, n, sizeof *t, cmp_cat);
    return h ? (long)h->row : -1;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Catalog rows of the detect outputs' clips, and of the labelled clips
 * when with_labelled (sorted, distinct). */
static ns_status gather_rows(const ns_store *s, ns_det_frames *dets, size_t n_det,
                             const ns_labelmap *lm, int with_labelled, size_t **rows_out,
                             size_t *n_out)
{
    size_t n_cat = 0, cap = 0, n = 0;
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    cat_ix *ix = malloc((n_cat ? n_cat : 1) * sizeof *ix);
    for (size_t f = 0; f < n_det; f++)
        cap += dets[f].n_clips;
    cap += with_labelled ? lm->n : 0;
    size_t *rows = malloc((cap ? cap : 1) * sizeof *rows);
    *rows_out = NULL;
    *n_out = 0;
    if (!ix || !rows) {
        free(ix);
        free(rows);
        return ns_error(NS_ERR_NOMEM, "select: out of memory for %zu clips", n_cat);
    }
    for (size_t i = 0; i < n_cat; i++)
        ix[i] = (cat_ix){cat[i].sha256, i};
    qsort(ix, n_cat, sizeof *ix, cmp_cat);
    for (size_t f = 0; f < n_det; f++)
        for (size_t c = 0; c < dets[f].n_clips; c++) {
            long r = find_cat(ix, n_cat, dets[f].clips[c]);
            if (r < 0) {
                free(ix);
                free(rows);
                return ns_error(NS_ERR_NOT_FOUND, "detect output '%s' (night %s) names clip "
                                "%.12s, which is not in the store", dets[f].path, dets[f].night,
                                dets[f].clips[c]);
            }
            rows[n++] = (size_t)r;
        }
    for (size_t i = 0; with_labelled && i < lm->n; i++) {
        long r = find_cat(ix, n_cat, lm->clip[i]);
        if (r >= 0 && cat[r].n_frames > 0)
            rows[n++] = (size_t)r;
    }
    qsort(rows, n, sizeof *rows, cmp_size);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || rows[u - 1] != rows[i])
            rows[u++] = rows[i];
    free(ix);
    *rows_out = rows;
    *n_out = u;
    return NS_OK;
}

static ns_status model_dim(const ns_store *s, const char *model_id, const size_t *rows,
                           size_t n_rows, int *dim)
{
    size_t n_sh = 0, n_cat = 0;
    const ns_shard_entry *sh = ns_store_shards(s, &n_sh);
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    if (n_rows == 0)
        return ns_error(NS_ERR_NOT_FOUND, "select: the detect outputs hold no clips");
    return ns_emb_dim(s, model_id, &sh[cat[rows[0]].shard], dim);
}

ns_status ns_select_run(ns_store *s, const ns_select_opts *o, ns_select_result *out)
{
    ns_status st;
    ns_det_frames *dets = NULL;
    ns_labelmap lm;
    ns_frameset fs;
    ns_head head;
    size_t *rows = NULL, n_rows = 0;
    frow *ft = NULL;
    sel_state S;
    int dim = 0, have_head = 0;
    memset(&lm, 0, sizeof lm);
    memset(&fs, 0, sizeof fs);
    memset(&head, 0, sizeof head);
    memset(&S, 0, sizeof S);
    memset(out, 0, sizeof *out);
    if ((st = check_opts(o)) != NS_OK)
        return st;
    dets = calloc(o->n_detect, sizeof *dets);
    if (!dets)
        return ns_error(NS_ERR_NOMEM, "select: out of memory");
    for (size_t f = 0; f < o->n_detect; f++) {
        if ((st = ns_detfile_frames(o->detect[f], &dets[f])) != NS_OK)
            goto done;
        if (strcmp(dets[f].model_id, dets[0].model_id) != 0) {
            st = ns_error(NS_ERR_USAGE, "select: '%s' was detected with model %.12s, '%s' with "
                          "%.12s: give outputs of one model", o->detect[f], dets[f].model_id,
                          o->detect[0], dets[0].model_id);
            goto done;
        }
    }
    if ((st = ns_labels_load(s, NULL, &lm)) != NS_OK)
        goto done;
    /* Labelled clips of other nights seed coverage too, when their nights
     * are embedded with this model; otherwise only tonight's labels do. */
    if ((st = gather_rows(s, dets, o->n_detect, &lm, 1, &rows, &n_rows)) != NS_OK ||
        (st = model_dim(s, dets[0].model_id, rows, n_rows, &dim)) != NS_OK)
        goto done;
    if ((st = ns_frameset_load(s, dets[0].model_id, dim, rows, n_rows, &fs)) != NS_OK) {
        ns_error_clear();
        free(rows);
        rows = NULL;
        if ((st = gather_rows(s, dets, o->n_detect, &lm, 0, &rows, &n_rows)) != NS_OK ||
            (st = ns_frameset_load(s, dets[0].model_id, dim, rows, n_rows, &fs)) != NS_OK)
            goto done;
    }
    if (o->head) {
        if ((st = ns_head_load(o->head, &head)) != NS_OK ||
            (st = ns_head_check_model(&head, dets[0].model_id, dim)) != NS_OK)
            goto done;
        have_head = 1;
    }
    /* (clip row in fs, frame index) -> fs row */
    ft = malloc((fs.n ? fs.n : 1) * sizeof *ft);
    if (!ft) {
        st = ns_error(NS_ERR_NOMEM, "select: out of memory for %zu frames", fs.n);
        goto done;
    }
    for (size_t i = 0; i < fs.n; i++)
        ft[i] = (frow){((uint64_t)fs.clip[i] << 32) | fs.index[i], i};
    qsort(ft, fs.n, sizeof *ft, cmp_frow);
    if ((st = ns_sel_state_init(&S, &fs, o, o->n_detect)) != NS_OK)
        goto done;
    {
        size_t n_fsclip = fs.n_clips;
        cat_ix *cx = malloc((n_fsclip ? n_fsclip : 1) * sizeof *cx);
        if (!cx) {
            st = ns_error(NS_ERR_NOMEM, "select: out of memory");
            goto done;
        }
        for (size_t c = 0; c < n_fsclip; c++)
            cx[c] = (cat_ix){fs.clips[c].sha256, c};
        qsort(cx, n_fsclip, sizeof *cx, cmp_cat);
        for (size_t f = 0; f < o->n_detect; f++) {
            if ((st = ns_sel_add_conditions(&S, f, &dets[f])) != NS_OK) {
                free(cx);
                goto done;
            }
            for (size_t i = 0; i < dets[f].n; i++) {
                long c = find_cat(cx, n_fsclip, dets[f].clips[dets[f].clip[i]]);
                long r = c < 0 ? -1 : find_row(ft, fs.n, (uint32_t)c, dets[f].index[i]);
                if (r < 0) {
                    free(cx);
                    st = ns_error(NS_ERR_CORRUPT, "detect output '%s': frame %u of clip %.12s is "
                                  "not in the store", dets[f].path, dets[f].index[i],
                                  dets[f].clips[dets[f].clip[i]]);
                    goto done;
                }
                ns_sel_add_candidate(&S, (size_t)r, f, dets[f].condition[i], dets[f].score[i]);
            }
        }
        free(cx);
    }
    for (size_t i = 0; i < fs.n; i++)
        if (ns_labels_find(&lm, fs.clips[fs.clip[i]].sha256, fs.index[i]) >= 0)
            ns_sel_mark_labelled(&S, i);
    if (have_head && (st = ns_sel_head_scores(&S, &head)) != NS_OK)
        goto done;
    if ((st = ns_sel_run_terms(&S, out)) != NS_OK)
        goto done;
done:
    if (st != NS_OK)
        ns_select_result_release(out);
    ns_sel_state_release(&S);
    free(ft);
    free(rows);
    ns_head_release(&head);
    ns_frameset_release(&fs);
    ns_labels_release(&lm);
    for (size_t f = 0; dets && f < o->n_detect; f++)
        ns_det_frames_release(&dets[f]);
    free(dets);
    return st;
}
