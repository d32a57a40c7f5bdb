/* select_internal.h -- the selection's working state, shared by select.c
 * (reading inputs) and select_terms.c (the objective's terms). */
#ifndef NIGHTSHIFT_SELECT_INTERNAL_H
#define NIGHTSHIFT_SELECT_INTERNAL_H

#include "nightshift/detfile.h"
#include "nightshift/frameset.h"
#include "nightshift/head.h"
#include "nightshift/kcenter.h"
#include "nightshift/select.h"

typedef struct sel_cond {
    size_t det;          /* detect output it came from */
    int32_t id;          /* its id there */
    int novel;
    size_t n_frames;     /* candidate frames */
    double score_sum;    /* of their novelty scores */
} sel_cond;

typedef struct sel_state {
    const ns_frameset *fs;
    const ns_select_opts *o;
    size_t n;             /* frames in fs */
    uint8_t *cand;        /* (n) a candidate: in a detect output, not labelled */
    uint8_t *elig;        /* (n) may still be picked */
    uint8_t *mask;        /* (n) scratch allow mask */
    uint8_t *labelled;    /* (n) */
    int32_t *cond;        /* (n) row in conds, -1 none */
    float *score;         /* (n) detect novelty score, NaN when not a candidate */
    float *unc;           /* (n) head uncertainty, NaN without a head */
    int32_t *top;         /* (n) head's top class, -1 without a head */
    float *topp;          /* (n) its probability */
    size_t n_conds, cap_conds;
    size_t *det_base;     /* (n_det) first row in conds of each detect output */
    sel_cond *conds;
    const ns_head *head;
    ns_kcenter *kc;
    uint64_t rng;
    ns_select_pick *picks; /* (budget) */
    size_t n_picks;
} sel_state;

ns_status ns_sel_state_init(sel_state *S, const ns_frameset *fs, const ns_select_opts *o,
                            size_t n_det);
void ns_sel_state_release(sel_state *S);
/* Registers detect output det's conditions (call before its candidates). */
ns_status ns_sel_add_conditions(sel_state *S, size_t det, const ns_det_frames *d);
void ns_sel_add_candidate(sel_state *S, size_t row, size_t det, int32_t cond, float score);
void ns_sel_mark_labelled(sel_state *S, size_t row);
/* Uncertainty and top class of every candidate under the head. */
ns_status ns_sel_head_scores(sel_state *S, const ns_head *h);
/* Spends the budget (select.h's four terms) into out. */
ns_status ns_sel_run_terms(sel_state *S, ns_select_result *out);

#endif
