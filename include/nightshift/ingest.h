/* ingest.h -- the first stage: archived clips -> the HDF5 store.
 *
 * Inputs are files and directories (walked recursively in natural name
 * order; hidden entries and files that are not clips are skipped).  Each clip
 * is loaded (clip.h), deduplicated by SHA-256 against the store and this run,
 * sampled (--every, --fps), decoded on all cores (one TurboJPEG decoder per
 * OpenMP thread) in bounded batches, checked (qc.h) and appended to a shard
 * of its night by the calling thread, which alone makes HDF5 calls.  A shard
 * is committed every shard_frames frames and at the end, so a killed run
 * keeps what it committed and a rerun resumes.  Bad clips never stop the run:
 * each gets an outcome and a reason.
 */
#ifndef NIGHTSHIFT_INGEST_H
#define NIGHTSHIFT_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "nightshift/clip.h"
#include "nightshift/image.h"
#include "nightshift/qc.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef enum ns_outcome {
    NS_OUTCOME_INGESTED = 0,
    NS_OUTCOME_DUPLICATE,    /* same SHA-256 already in the store or this run */
    NS_OUTCOME_QUARANTINED,  /* corrupt, truncated, over a limit, no usable frame */
    NS_OUTCOME_UNSUPPORTED,  /* e.g. AVI with a codec other than MJPEG */
    NS_OUTCOME_UNRECOGNISED, /* not a clip format we know (named explicitly) */
    NS_OUTCOME_ERROR,        /* could not be read (I/O) */
    NS_OUTCOME_COUNT
} ns_outcome;

const char *ns_outcome_name(ns_outcome o); /* "ingested", "duplicate", ... */

typedef struct ns_ingest_clip_result {
    const char *path;
    ns_outcome outcome;
    const char *reason;             /* "" for ingested/duplicate */
    const ns_clip_record *rec;      /* ingested: the stored record; else NULL */
    const ns_warnings *warn;        /* per-frame/member warnings, each naming it */
} ns_ingest_clip_result;

typedef struct ns_ingest_progress {
    size_t clips_done, clips_total;
    uint64_t bytes_done, bytes_total; /* input file bytes, for the ETA */
    uint64_t frames_stored;
    double elapsed;                   /* seconds */
} ns_ingest_progress;

typedef struct ns_ingest_opts {
    char night[NS_NIGHT_LEN];       /* default night ("" = today, local time) */
    const char *manifest;           /* CSV or NULL */
    const char *name_pattern;       /* NULL = NS_DEFAULT_NAME_PATTERN; "" disables */
    const char *default_camera;     /* "unknown" */
    int every;                      /* keep every Nth frame (1) */
    double fps;                     /* keep at most this many frames per second (0 = all) */
    int frame_size;                 /* 0 = the store's (224 for a new store) */
    ns_fit fit;                     /* NS_FIT_SQUASH */
    int threads;                    /* 0 = all cores */
    int batch;                      /* frames decoded per batch (128) */
    size_t shard_frames;            /* commit a shard every N frames (20000) */
    int wait;                       /* wait for the store lock instead of NS_ERR_BUSY */
    int task_index, task_count;     /* task_count > 0: ingest only inputs i with
                                     * i % task_count == task_index (natural order),
                                     * as one of several concurrent shard writers */
    ns_clip_limits clip_limits;
    ns_decode_limits decode_limits;
    ns_qc_opts qc;
    volatile sig_atomic_t *cancel;  /* set asynchronously to stop after the batch */
    void (*on_clip)(void *ctx, const ns_ingest_clip_result *r);
    void (*on_progress)(void *ctx, const ns_ingest_progress *p);
    void *ctx;
} ns_ingest_opts;

void ns_ingest_default_opts(ns_ingest_opts *o);

typedef struct ns_ingest_problem {
    char *path;
    ns_outcome outcome;
    char *reason;
} ns_ingest_problem;

typedef struct ns_ingest_summary {
    char night[NS_NIGHT_LEN];       /* the default night used (--night or today) */
    size_t inputs, files_skipped;   /* skipped: not clips, found while walking directories */
    size_t clips[NS_OUTCOME_COUNT]; /* by outcome */
    uint64_t frames_seen, frames_stored, frames_damaged, frames_failed, frames_skipped;
    size_t shards_committed;
    uint64_t bytes_in;
    double seconds;
    ns_ingest_problem *problems;    /* every clip not ingested nor duplicate */
    size_t n_problems;
} ns_ingest_summary;

/* Runs an ingest.  Returns NS_OK when the run completed (problem clips are in
 * the summary), NS_ERR_BUSY when the store is locked, NS_ERR_INTERRUPTED when
 * cancelled (committed work is kept), or the error that stopped the run. */
ns_status ns_ingest_run(const char *store_dir, const char *const *inputs, size_t n_inputs,
                        const ns_ingest_opts *o, ns_ingest_summary *sum);
void ns_ingest_summary_release(ns_ingest_summary *s);

#endif
