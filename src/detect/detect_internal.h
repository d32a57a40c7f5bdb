/* detect_internal.h -- what detect.c hands to detect_cond.c: the candidates
 * of the novel-condition search, already clustered.  Not a public contract. */
#ifndef NIGHTSHIFT_DETECT_INTERNAL_H
#define NIGHTSHIFT_DETECT_INTERNAL_H

#include <stddef.h>

#include "nightshift/detect.h"

typedef struct ns_detect_cands {
    size_t n_t, n_r;      /* tonight candidates first, then reference candidates */
    const size_t *row;    /* (n_t + n_r) row in tonight (i < n_t) or in the reference sample */
    const float *resid;   /* (n_t + n_r, d) residuals, L2-normalised */
    const double *pz;     /* (n_t, NS_PROP_COUNT) paired z of the tonight candidates */
    const int *assign;    /* (n_t + n_r) k-means cluster; NULL when k == 0 */
    int k;                /* clusters (0: no tonight candidates) */
    int d;
} ns_detect_cands;

/* Fills r->clusters, r->conditions (ranked, without attribution) and the
 * per-frame r->cluster / r->condition (r->tonight, r->pval already set). */
ns_status ns_detect_merge(const ns_reference *ref, const ns_detect_opts *o,
                          const ns_detect_cands *c, ns_detect_result *r);

/* Per condition: clips, times, medoid, examples, attribution; per clip:
 * novel counts and the dominant condition. */
ns_status ns_detect_attribute(const ns_reference *ref, const ns_detect_cands *c,
                              ns_detect_result *r);

/* detect --head (bbsd.c): r->msp, the BBSD test, the expected accuracies
 * (after the conditions and their cameras exist). */
ns_status ns_detect_head(const ns_reference *ref, const ns_detect_opts *o, ns_detect_result *r);

#endif
