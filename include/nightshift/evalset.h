/* evalset.h -- the frames an evaluation runs on, their clips and slices.
 *
 * evaluate and gate score heads on the dataset's test split (every row of a
 * dataset built with --split-by none: a golden evaluation set).  Those rows
 * become an ns_eval_set: dense clip ids (the bootstrap's unit) and slices,
 * the groups every metric is reported for: all frames, each camera, night,
 * detect condition and labelled class, and each named subset of a gate
 * policy (an AND of field=value terms).  Per head, ns_eval_pred holds what
 * the head said about each row, in the dataset's class numbering.
 */
#ifndef NIGHTSHIFT_EVALSET_H
#define NIGHTSHIFT_EVALSET_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/dataset.h"
#include "nightshift/head.h"
#include "nightshift/labels.h"
#include "nightshift/status.h"

typedef enum ns_slice_kind {
    NS_SLICE_ALL = 0,
    NS_SLICE_CAMERA,
    NS_SLICE_NIGHT,
    NS_SLICE_CONDITION,
    NS_SLICE_CLASS,
    NS_SLICE_SUBSET,
    NS_SLICE_KINDS
} ns_slice_kind;

extern const char *const ns_slice_kind_names[NS_SLICE_KINDS]; /* "all", "camera", ... */
/* NS_SLICE_KINDS when s names no kind. */
ns_slice_kind ns_slice_kind_parse(const char *s);

#define NS_SUBSET_TERMS 8

/* A golden subset: frames matching every term ("camera=cam02 class=glove"). */
typedef struct ns_subset_def {
    char name[64];
    int n_terms;
    ns_slice_kind field[NS_SUBSET_TERMS]; /* camera, night, condition or class */
    char value[NS_SUBSET_TERMS][NS_LABEL_LEN];
} ns_subset_def;

/* Parses "field=value field=value" (spaces or commas between terms) into d
 * (name set by the caller).  NS_ERR_USAGE naming the bad term. */
ns_status ns_subset_parse(const char *spec, ns_subset_def *d);

typedef struct ns_slice {
    ns_slice_kind kind;
    char name[NS_LABEL_LEN]; /* camera, night, condition number, class, subset name; "all" */
    int cls;                 /* NS_SLICE_CLASS: the class; else -1 */
    size_t n_rows;
    uint32_t *rows;          /* (n_rows) ascending rows of the set (into its arena) */
    size_t n_clips;          /* distinct clips among the rows */
} ns_slice;

typedef struct ns_eval_set {
    size_t n;                /* evaluation frames */
    size_t n_clips;
    int n_classes;           /* the dataset's */
    int all_rows;            /* 1: every dataset row (split_by none); 0: the test split */
    size_t *ds_row;          /* (n) row in the dataset */
    uint32_t *clip;          /* (n) dense clip id, in order of first appearance */
    size_t *clip_first;      /* (n_clips) dataset row of each clip's first frame */
    size_t n_slices;
    ns_slice *slices;        /* [0] is "all" */
    uint32_t *arena;         /* every slice's rows */
} ns_eval_set;

/* The evaluation rows of ds (test split, or all for split_by "none") and
 * their slices, subsets last.  NS_ERR_USAGE when there are none. */
ns_status ns_eval_set_build(const ns_dataset *ds, const ns_subset_def *subsets,
                            size_t n_subsets, ns_eval_set *out);
void ns_eval_set_release(ns_eval_set *es); /* NULL-safe, idempotent */

/* What one head says about each row, mapped onto the dataset's classes. */
typedef struct ns_eval_pred {
    size_t n;
    int32_t *pred;           /* (n) dataset class of the top head class; -1 when the
                                dataset has no class of that name */
    float *conf;             /* (n) max probability (temperature-scaled) */
    float *p_true;           /* (n) probability of the label; 0 when the head lacks it */
    int32_t *head_class;     /* (n) the top class in the head's own numbering */
    int *known;              /* (n_classes) 1 when the head can predict dataset class k */
} ns_eval_pred;

/* From prob (es->n, n_head) with the head's class names. */
ns_status ns_eval_pred_from_probs(const ns_eval_set *es, const ns_dataset *ds,
                                  const float *prob, int n_head,
                                  const char (*head_classes)[NS_LABEL_LEN], ns_eval_pred *out);
/* Runs head h on the set's rows (refusing embeddings of another model,
 * naming both ids) and maps its classes onto the dataset's by name. */
ns_status ns_eval_pred_from_head(const ns_eval_set *es, const ns_dataset *ds, const ns_head *h,
                                 ns_eval_pred *out);
void ns_eval_pred_release(ns_eval_pred *p); /* NULL-safe, idempotent */

/* clip_map[c] = the slice-local index (order of first appearance) of each
 * clip c of slice sl; other entries are left as they were. */
void ns_eval_slice_local_clips(const ns_eval_set *es, const ns_slice *sl, uint32_t *clip_map);

/* Per-clip rows of sums (metrics.h) of slice sl for n_heads heads side by
 * side: stats (sl->n_clips, n_heads * ns_ev_q(n_classes)), zeroed here.
 * clip_map (es->n_clips) is scratch the caller owns. */
void ns_eval_slice_stats(const ns_eval_set *es, const ns_dataset *ds, const ns_slice *sl,
                         const ns_eval_pred *const *preds, int n_heads, uint32_t *clip_map,
                         double *stats);

#endif
