/* store.h -- the nightshift clip store: a directory of immutable HDF5 shards,
 * an atomically replaced catalog, and a single-file view over all shards.
 *
 * Layout of a store directory DIR
 * -------------------------------
 *   DIR/catalog.h5                 the catalog (below); replaced atomically
 *   DIR/view.h5                    single-file view of every shard (below);
 *                                  regenerated atomically on every commit
 *   DIR/shards/<night>/<id>.h5     committed shard files, never modified
 *   DIR/tmp/                       shards being written; cleared by the next writer
 *   DIR/lock                       flock(2) target: one writer at a time
 *
 * Commit protocol (crash at any instant leaves the store before or after):
 *   1. the shard is written to DIR/tmp/<id>.h5.tmp.<pid>, flushed, fsync'd;
 *   2. renamed to DIR/shards/<night>/<id>.h5; both directories fsync'd;
 *   3. the new catalog is written to DIR/catalog.h5.tmp.<pid>, fsync'd,
 *      renamed over DIR/catalog.h5, DIR fsync'd  <- the commit point;
 *   4. the view is rebuilt the same way (a stale view is rebuilt by the next
 *      writer or `verify --repair`; readers that need truth use the catalog).
 * A shard file not named by the catalog (crash between 2 and 3) is an orphan:
 * invisible to readers and deleted by the next writer.
 *
 * Every file carries root attributes ns_format (string) and ns_format_version
 * (int32); readers refuse anything else with a message naming the file.
 *
 * Shard file  (ns_format = "nightshift-shard", version 1)
 *   attributes: frame_size (int32 S), night ("YYYY-MM-DD"), shard_id (uint32),
 *               created (float64 unix seconds), writer ("nightshift x.y.z")
 *   /frames          uint8 (N, S, S, 3) RGB, chunked (c, S, S, 3) with c rows
 *                    ~2 MiB per chunk, uncompressed (see docs/store.md)
 *   /frame/clip      uint32 (N)  row in /clips of this shard
 *   /frame/index     uint32 (N)  frame number within its clip
 *   /frame/timestamp float64 (N) unix seconds (UTC); NaN when unknown
 *   /frame/member    string (N), fixed 256 bytes, NUL-padded: source member
 *                    name (data only, never a path; truncated if longer)
 *   /frame/status    uint8 (N)   NS_FRAME_OK or NS_FRAME_DAMAGED
 *   /frame/props     float32 (N, NS_PROP_COUNT); attribute "names"
 *   /clips           compound (M), fields of ns_clip_record (same names)
 *
 * Catalog  (ns_format = "nightshift-catalog", version 2; version 1 is read)
 *   attributes: frame_size (int32), created (float64), next_shard_id (uint32)
 *   /shards   compound (K): id, night, path (relative to DIR), n_clips,
 *             n_frames, file_bytes, checksum (string, 96 bytes: the shard
 *             file's "<algorithm>:<hex>", see checksum.h), committed.
 *             Version 1 had sha256 (64 hex of the sha256-tree) in place of
 *             checksum; such a catalog reads as "sha256-tree:<hex>" and is
 *             written back as version 2 by the next commit, its old shards
 *             keeping (and verifying against) their SHA-256 trees.
 *   /clips    compound (all clips): sha256 (hex), shard (row in /shards),
 *             row (in the shard's /clips), first_frame (row in view /frames),
 *             night, camera, n_frames, n_damaged, n_failed, qc_flags
 *
 * View  (ns_format = "nightshift-view", version 1)   readable by h5py/HDFView
 *   /frames and /frame/{index,timestamp,member,status,props}: virtual datasets
 *       concatenating every shard in catalog order
 *   /frame/clip      uint32 (N_total) row in the view's /clips (real dataset)
 *   /clips           compound: the catalog's clip table joined with each
 *                    clip's full ns_clip_record (real dataset)
 *   /shards/<id>     external links to each shard's root group
 */
#ifndef NIGHTSHIFT_STORE_H
#define NIGHTSHIFT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/checksum.h"
#include "nightshift/image.h"
#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/warn.h"

#define NS_STORE_FORMAT_SHARD "nightshift-shard"
#define NS_STORE_FORMAT_CATALOG "nightshift-catalog"
#define NS_STORE_FORMAT_VIEW "nightshift-view"
#define NS_STORE_FORMAT_VERSION 1   /* shard and view files */
#define NS_CATALOG_FORMAT_VERSION 2 /* reads 1 too */
#define NS_STORE_DEFAULT_FRAME_SIZE 224
#define NS_MEMBER_LEN 256
#define NS_CAMERA_LEN 64
#define NS_NIGHT_LEN 11 /* "YYYY-MM-DD" + NUL */
#define NS_SOURCE_LEN 1024

enum { NS_FRAME_OK = 0, NS_FRAME_DAMAGED = 1 };

/* Per-clip QC flags. */
enum {
    NS_QC_FROZEN = 1u << 0,      /* run of identical/near-identical frames */
    NS_QC_BLACK = 1u << 1,       /* all-black frames present */
    NS_QC_WHITE = 1u << 2,       /* all-white frames present */
    NS_QC_RES_CHANGE = 1u << 3,  /* resolution changed inside the clip */
    NS_QC_GAPS = 1u << 4,        /* gaps in frame numbering */
    NS_QC_DECODE_WARN = 1u << 5, /* damaged or failed frames */
};

typedef struct ns_clip_record {
    char sha256[NS_SHA256_HEX];     /* id: hex SHA-256 of the clip file's bytes */
    char source[NS_SOURCE_LEN];     /* path as given on the command line */
    char container[16];             /* "tar.gz", "zip", "mjpeg", "avi", ... */
    char camera[NS_CAMERA_LEN];
    char night[NS_NIGHT_LEN];
    double start_time;              /* unix seconds UTC; NaN when unknown */
    double fps;                     /* 0 when unknown */
    int32_t orig_width, orig_height;/* of the first decoded frame */
    uint32_t frames_seen;           /* JPEG frames found in the clip */
    uint32_t frames_stored;         /* sampled and stored (ok + damaged) */
    uint32_t frames_damaged;        /* stored, decoded with warnings */
    uint32_t frames_failed;         /* sampled but undecodable, not stored */
    uint32_t qc_flags;              /* NS_QC_* */
    uint32_t qc_frozen_frames;      /* frames that repeat their predecessor */
    uint32_t qc_black_frames, qc_white_frames;
    uint32_t qc_res_changes, qc_gaps;
    double ingest_time;             /* unix seconds */
} ns_clip_record;

typedef struct ns_frame_record {
    uint32_t index;                 /* frame number within the clip */
    double timestamp;               /* unix seconds; NaN when unknown */
    char member[NS_MEMBER_LEN];
    uint8_t status;                 /* NS_FRAME_* */
    float props[NS_PROP_COUNT];
} ns_frame_record;

/* A shard as the catalog records it. */
typedef struct ns_shard_entry {
    uint32_t id;
    char night[NS_NIGHT_LEN];
    char path[256];                 /* relative to the store directory */
    uint32_t n_clips;
    uint64_t n_frames;
    uint64_t file_bytes;
    char checksum[NS_CHECKSUM_LEN]; /* "<algorithm>:<hex>" of the shard file */
    double committed;
} ns_shard_entry;

/* A clip as the catalog records it. */
typedef struct ns_catalog_clip {
    char sha256[NS_SHA256_HEX];
    uint32_t shard;                 /* row in the shard table */
    uint32_t row;                   /* row in that shard's /clips */
    uint64_t first_frame;           /* row in the view's /frames */
    char night[NS_NIGHT_LEN];
    char camera[NS_CAMERA_LEN];
    uint32_t n_frames, n_damaged, n_failed;
    uint32_t qc_flags;
} ns_catalog_clip;

typedef struct ns_store ns_store;

/* Opens a store for reading (no lock; sees the last committed catalog). */
ns_status ns_store_open_read(const char *dir, ns_store **out);

/* Opens a store for writing: creates DIR (and an empty catalog with the given
 * frame size) when missing, takes the writer lock (NS_ERR_BUSY at once unless
 * wait != 0), deletes tmp files and orphan shards.  frame_size 0 means "the
 * store's own, or the default when creating"; a different explicit size from
 * an existing store's is NS_ERR_USAGE. */
ns_status ns_store_open_write(const char *dir, int frame_size, int wait, ns_store **out);

/* Opens a store as one of several concurrent shard writers (Slurm array
 * tasks, `ingest --task`): the writer lock is taken shared, so such writers
 * run together while an exclusive writer (ns_store_open_write) excludes them
 * all; it waits for an exclusive writer to finish.  Each shard's commit holds
 * the catalog lock only while it renames the shard into place and rewrites
 * the catalog and view.  Crash debris is cleared by whichever writer finds
 * itself alone.  A clip committed by another writer meanwhile makes the
 * commit fail (NS_ERR_EXISTS) rather than store it twice; a rerun skips it. */
ns_status ns_store_open_append(const char *dir, int frame_size, ns_store **out);

void ns_store_close(ns_store *s); /* NULL-safe; releases the lock */

const char *ns_store_dir(const ns_store *s);
int ns_store_frame_size(const ns_store *s);
const ns_shard_entry *ns_store_shards(const ns_store *s, size_t *n);
const ns_catalog_clip *ns_store_clips(const ns_store *s, size_t *n);
/* Row of the clip with this hex SHA-256, or -1. */
long ns_store_find_clip(const ns_store *s, const char sha256_hex[NS_SHA256_HEX]);

/* ---- writing a shard (store opened for writing) --------------------------- */

typedef struct ns_shard_writer ns_shard_writer;

ns_status ns_shard_begin(ns_store *s, const char *night, ns_shard_writer **out);
/* Starts a clip; frames appended until ns_shard_end_clip belong to it. */
ns_status ns_shard_begin_clip(ns_shard_writer *w);
ns_status ns_shard_append(ns_shard_writer *w, const uint8_t *frames /* (n,S,S,3) */,
                          const ns_frame_record *recs /* (n) */, size_t n);
/* Closes the clip with its final record (counts, QC). */
ns_status ns_shard_end_clip(ns_shard_writer *w, const ns_clip_record *rec);
/* Drops the open clip's frames (e.g. the clip failed half-way). */
ns_status ns_shard_abort_clip(ns_shard_writer *w);
size_t ns_shard_frames(const ns_shard_writer *w); /* frames in closed clips */
size_t ns_shard_clips(const ns_shard_writer *w);
/* Commits (protocol above).  An empty shard commits nothing and succeeds.
 * The writer is freed in every case. */
ns_status ns_shard_commit(ns_shard_writer *w);
/* Deletes the temp file and frees the writer; NULL-safe. */
void ns_shard_discard(ns_shard_writer *w);

/* ---- reading ---------------------------------------------------------------- */

/* Reads n frames starting at view row `row` (across shards) into out. */
ns_status ns_store_read_frames(ns_store *s, uint64_t row, size_t n, uint8_t *out);
/* Checks shard k's file against the catalog: its size, then its checksum
 * (the XXH3-128 tree, all cores, ~1 GB/s from disk and faster from the page
 * cache).  NS_ERR_CORRUPT naming the shard and what differs, NS_ERR_IO when
 * it cannot be read; a shard that passed is not hashed again by this handle.
 * A store opened with ns_store_open_read runs this before it first reads a
 * shard (frames, clip records, frame columns), so embed, reference build and
 * detect never use a corrupt shard silently. */
ns_status ns_store_shard_check(ns_store *s, size_t k);
/* Full clip record of catalog clip i. */
ns_status ns_store_clip_record(ns_store *s, size_t i, ns_clip_record *out);

/* ---- summary and verification ----------------------------------------------- */

typedef struct ns_store_summary {
    int frame_size;
    size_t n_shards, n_nights, n_cameras, n_clips;
    uint64_t n_frames, n_damaged, n_failed;
    size_t qc_clips[6];            /* clips with each NS_QC_* bit, bit order */
    uint64_t bytes_on_disk;        /* all files under the store directory */
    char first_night[NS_NIGHT_LEN], last_night[NS_NIGHT_LEN];
} ns_store_summary;

ns_status ns_store_summarize(ns_store *s, ns_store_summary *out);

typedef struct ns_verify_report {
    size_t shards_checked;
    unsigned char *shard_bad;      /* (shards_checked) 1: the shard file is damaged
                                    * (missing, size, checksum, unreadable) */
    size_t n_bad_shards;
    size_t n_errors;               /* integrity failures */
    size_t n_notes;                /* harmless findings (orphans, stale view) */
    ns_warnings problems;          /* one line each, naming the file */
} ns_verify_report;

/* Checks every shard: opens, format/version, counts match the catalog, the
 * SHA-256 matches; the view is present and consistent.  NS_OK when it could
 * check (inspect report->n_errors); an error status when it could not. */
ns_status ns_store_verify(ns_store *s, ns_verify_report *report);
void ns_verify_report_release(ns_verify_report *r);

typedef struct ns_repair_report {
    size_t shards_kept, shards_quarantined;
    size_t clips_dropped;          /* in quarantined shards */
    uint64_t frames_dropped;
    size_t problems_before;        /* verify's errors before the repair */
    int rebuilt;                   /* the catalog and view were rewritten */
    ns_warnings actions;           /* one line per shard moved aside, naming both paths */
} ns_repair_report;

/* verify --repair: takes the writer lock (NS_ERR_BUSY unless wait), runs
 * ns_store_verify, moves each damaged shard to DIR/quarantine/<night>-<file>
 * with a note <that>.txt (why, its catalog entry, its clips), then rebuilds
 * the catalog from the good shards' own /clips and /frame/clip rows (their
 * checksums matched) and the view from it, each replaced atomically.  Good
 * shard files are never modified.  Nothing is done when verify finds no
 * error (and the view is current). */
ns_status ns_store_repair(const char *dir, int wait, ns_repair_report *rep);
void ns_repair_report_release(ns_repair_report *rep);

#endif
