/* select.h -- choose N frames to label from one or more nights' detect
 * outputs: a greedy objective with documented weights.
 *
 * Candidates are the frames of the detect outputs that no label set labels
 * yet (a labelled frame is never picked again).  Every labelled frame of the
 * loaded clips, and every pick as it is made, is a center of one k-center
 * greedy state (kcenter.h) over the embeddings: "distance to the nearest
 * center" is how badly a frame is covered by what is (or will be) labelled.
 *
 * The budget B is spent in four terms, in this order:
 *  1. novel (reason novel_c<ID>): round(w_novel B) picks over the novel
 *     conditions, each condition's quota in proportion to its frames times
 *     its mean novelty score, at least min_per_condition (when it has that
 *     many eligible frames; minimums win over the weight).  Conditions are
 *     served round-robin, largest quota first, each pick the condition's
 *     frame farthest from every center.  gain: that distance.
 *  2. uncertain (only with a head): round(w_uncertain B) picks, highest
 *     uncertainty first (1 - margin of the head's top two probabilities, or
 *     the normalised entropy), skipping frames within min_dist of a center
 *     (already covered).  gain: the uncertainty.
 *  3. camera_balance: every camera is brought up to floor(w_camera B /
 *     cameras) picks by its own farthest frames.  gain: the distance.
 *  4. coverage: the rest of the budget, k-center greedy over every
 *     candidate.  gain: the distance.
 * Temporal dedup holds in every term: after a pick, frames of its clip
 * within min_gap frames (or min_gap_seconds when > 0 and timestamps are
 * known) and frames of its clip closer than min_dist in embedding space are
 * no longer eligible.  Terms that cannot fill their share hand it on.
 * The first center when nothing is labelled is drawn from the seed; the rest
 * is deterministic (ties to the lowest frame row).
 */
#ifndef NIGHTSHIFT_SELECT_H
#define NIGHTSHIFT_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/image.h"
#include "nightshift/labels.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef enum ns_uncertainty { NS_UNC_MARGIN = 0, NS_UNC_ENTROPY } ns_uncertainty;

typedef struct ns_select_opts {
    const char *const *detect; /* detect outputs (detect.h5 or its directory) */
    size_t n_detect;
    size_t budget;             /* required */
    const char *head;          /* head file, or NULL */
    ns_uncertainty uncertainty; /* margin */
    uint64_t seed;             /* 1 */
    int min_gap;               /* 3 frames */
    double min_gap_seconds;    /* 0: use min_gap */
    double min_dist;           /* 0: off (embedding L2 distance) */
    double w_novel;            /* 0.5 */
    double w_uncertain;        /* 0.2 */
    double w_camera;           /* 0.1 */
    int min_per_condition;     /* 2 */
} ns_select_opts;

void ns_select_default_opts(ns_select_opts *o);

enum { NS_REASON_NOVEL = 0, NS_REASON_UNCERTAIN, NS_REASON_COVERAGE, NS_REASON_CAMERA };

typedef struct ns_select_pick {
    char clip[NS_SHA256_HEX];
    char source[NS_SOURCE_LEN];   /* untrusted text */
    char member[NS_MEMBER_LEN];   /* untrusted text */
    uint32_t index;
    char camera[NS_CAMERA_LEN];
    char night[NS_NIGHT_LEN];
    double time;                  /* unix seconds, NaN unknown */
    int32_t condition;            /* -1 none */
    int cond_novel;
    float novelty;                /* the detect kNN score */
    int reason;                   /* NS_REASON_* */
    double gain;
    char suggested[NS_LABEL_LEN]; /* the head's top class, "" without a head */
    float suggested_p;
} ns_select_pick;

typedef struct ns_select_result {
    size_t n;
    ns_select_pick *picks;        /* (n) in pick order */
    size_t n_candidates, n_labelled, n_seeds;
    size_t n_novel_conditions, n_novel_frames;
    size_t per_reason[4];
} ns_select_result;

/* Reads the detect outputs, the store's labels and embeddings, and picks.
 * Fewer than budget picks when fewer frames are eligible. */
ns_status ns_select_run(ns_store *s, const ns_select_opts *o, ns_select_result *out);
void ns_select_result_release(ns_select_result *r); /* NULL-safe, idempotent */

/* The reason code as written: "novel_c3", "uncertain", ... */
void ns_select_reason(const ns_select_pick *p, char *buf, size_t cap);

/* Writes the selection CSV atomically (columns in docs/select.md). */
ns_status ns_select_write_csv(const ns_select_result *r, const char *path);

#endif
