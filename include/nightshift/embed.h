/* embed.h -- the second stage: stored frames -> embeddings, shard by shard.
 *
 * For every shard of the chosen nights that has no complete embeddings file
 * for the model yet (embeddings.h), frames are read from the store in
 * batches, run through the executor (exec.h) and appended to the shard's
 * embeddings file, committed atomically when the shard is done.  A killed run
 * keeps finished shards and a rerun resumes; a per-model lock keeps one run
 * per model at a time, and runs of different models can share a store.
 */
#ifndef NIGHTSHIFT_EMBED_H
#define NIGHTSHIFT_EMBED_H

#include <signal.h>
#include <stdint.h>

#include "nightshift/exec.h"
#include "nightshift/status.h"
#include "nightshift/warn.h"
#include "nightshift/store.h"

typedef struct ns_embed_progress {
    size_t shards_done, shards_total;
    uint64_t frames_done, frames_total;
    double elapsed;
} ns_embed_progress;

typedef struct ns_embed_opts {
    const char *model;              /* model file, or "default" */
    int default_size;               /* input of the default backbone (112) */
    uint64_t default_seed;          /* its seed (1) */
    ns_device device;               /* NS_DEVICE_AUTO */
    int batch;                      /* frames per batch (64) */
    int wait;                       /* wait for the model's lock instead of NS_ERR_BUSY */
    int task_index, task_count;     /* task_count > 0: only shards whose id % task_count
                                     * == task_index, concurrently with the other tasks */
    char nights_from[NS_NIGHT_LEN]; /* inclusive range; "" = no bound */
    char nights_to[NS_NIGHT_LEN];
    volatile sig_atomic_t *cancel;  /* stop after the current batch */
    void (*on_progress)(void *ctx, const ns_embed_progress *p);
    void *ctx;
    ns_precision precision;         /* NS_PREC_FP32; others need CUDA (exec.h) */
} ns_embed_opts;

void ns_embed_default_opts(ns_embed_opts *o);
/* "2026-11-01..2026-11-14", "2026-11-01.." , "..2026-11-14" or one night. */
ns_status ns_embed_parse_nights(const char *s, ns_embed_opts *o);

typedef struct ns_embed_summary {
    char model_id[NS_SHA256_HEX];
    char model_name[128];
    ns_device device;               /* the one used (AUTO resolved) */
    int dim;
    size_t shards_selected, shards_embedded, shards_present;
    uint64_t frames;
    double seconds;
    /* Of seconds, the part before the first frame: model load, store open,
     * executor (and CUDA context) set-up.  A fixed cost per run, so the
     * steady rate is frames / (seconds - setup_seconds). */
    double setup_seconds;
    ns_precision precision;         /* the one used */
    size_t shards_skipped;          /* damaged: failed ns_store_shard_check */
    ns_warnings skipped;            /* one line per skipped shard, naming it */
} ns_embed_summary;

/* Frees the summary's messages (caller-owned struct; NULL-safe). */
void ns_embed_summary_release(ns_embed_summary *sum);

/* Each file's device attribute says how it was made: "cpu", "cuda", "ref",
 * with "-tf32" or "-bf16" appended for a reduced precision (embeddings.h).
 * The model id does not change with the precision, so a shard already
 * embedded at another precision counts as present: embed a reference period
 * and the nights compared with it at the same precision.
 *
 * Each shard's size and checksum are checked before its frames are read; a
 * damaged one is skipped (a line in sum->skipped), the others are embedded,
 * and the run ends NS_ERR_CORRUPT "N shards skipped" (exit 1).
 *
 * NS_OK when every selected shard has embeddings; NS_ERR_BUSY when another
 * run holds the model's lock; NS_ERR_INTERRUPTED when cancelled (finished
 * shards kept); model errors (load, input larger than the store's frames)
 * before anything is written. */
ns_status ns_embed_run(const char *store_dir, const ns_embed_opts *o, ns_embed_summary *sum);

#endif
