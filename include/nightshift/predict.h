/* predict.h -- a head's predictions over a store's nights, as CSV.
 *
 * PRED.csv, one row per stored frame with embeddings of the head's model:
 *   clip,member,index,camera,night,class,probability,margin
 * clip is the clip's SHA-256, member the frame's member in the archive
 * (untrusted text, CSV-escaped), index the frame number in its clip, class
 * the top class, probability its temperature-scaled probability and margin
 * the gap to the runner-up (ns_head_top).  Rows in catalog order, frames in
 * stored order; numbers with %.6f.  Written atomically.
 */
#ifndef NIGHTSHIFT_PREDICT_H
#define NIGHTSHIFT_PREDICT_H

#include <stddef.h>

#include "nightshift/head.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef struct ns_predict_summary {
    size_t n_nights, n_clips, n_frames;
    size_t *per_class;      /* (n_classes) frames whose top class is c, malloc'd */
    double mean_top;        /* mean top probability: the accuracy the head expects */
} ns_predict_summary;

/* Called after each night: nights done of total, frames so far. */
typedef void (*ns_predict_progress_fn)(void *ctx, size_t done, size_t total, size_t frames);

/* Predicts the frames of the nights in spec (ns_nights_select) night by
 * night and writes out_csv.  The store must hold embeddings of the head's
 * model for every shard involved (NS_ERR_NOT_FOUND, saying so, otherwise). */
ns_status ns_predict_store(ns_store *s, const ns_head *h, const char *spec, const char *out_csv,
                           ns_predict_progress_fn progress, void *ctx, ns_predict_summary *sum);

void ns_predict_summary_release(ns_predict_summary *sum);

#endif
