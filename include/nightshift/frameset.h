/* frameset.h -- the frames of chosen clips, with their embeddings, properties
 * and clip metadata, gathered from a store for the detect stage.
 *
 * Rows are grouped by clip: clip c owns rows [clips[c].first,
 * clips[c].first + clips[c].n), clips in the canonical order below, frames
 * in stored order.
 *
 * The canonical clip order is by night, then source path in natural order,
 * then SHA-256 -- the order in which one ingest of a night's inbox commits
 * them -- and it depends on the clips alone, not on the order they were ingested in, so everything
 * computed from a frameset (reference samples, permutation tests, seeded
 * choices) comes out the same for a store filled by one ingest or by many
 * concurrent shard writers committing in any order.
 * One allocation per array, sized once.
 */
#ifndef NIGHTSHIFT_FRAMESET_H
#define NIGHTSHIFT_FRAMESET_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/image.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef struct ns_fs_clip {
    char sha256[NS_SHA256_HEX];
    char camera[NS_CAMERA_LEN];
    char night[NS_NIGHT_LEN];
    char source[NS_SOURCE_LEN];  /* as recorded at ingest (untrusted text) */
    double start_time;           /* unix seconds; NaN when unknown */
    size_t first, n;             /* rows in the frameset */
    uint32_t catalog_row;        /* row in the store's catalog clip table */
} ns_fs_clip;

typedef struct ns_frameset {
    size_t n;                    /* frames */
    int d;                       /* embedding dimension */
    float *emb;                  /* (n, d) */
    float *props;                /* (n, NS_PROP_COUNT) */
    uint32_t *clip;              /* (n) row in clips */
    uint32_t *index;             /* (n) frame number within its clip */
    double *timestamp;           /* (n) unix seconds; NaN when unknown */
    char (*member)[NS_MEMBER_LEN]; /* (n) source member (untrusted text) */
    uint64_t *view_row;          /* (n) row in the store's view (thumbnails) */
    size_t n_clips;
    ns_fs_clip *clips;           /* (n_clips) */
    char model_id[NS_SHA256_HEX];
} ns_frameset;

/* A set of nights: "FROM..TO" (inclusive; either end may be empty), "last:N"
 * (the N latest nights in the store), or a comma-separated list of nights.
 * *nights gets the store's nights that match, ascending (caller frees);
 * NS_ERR_USAGE for a malformed spec, NS_ERR_NOT_FOUND when none match. */
ns_status ns_nights_select(const ns_store *s, const char *spec, char (**nights)[NS_NIGHT_LEN],
                           size_t *n_nights);

/* Catalog rows of the clips of those nights with at least one stored frame,
 * in catalog order (caller frees). */
ns_status ns_nights_clips(const ns_store *s, char (*nights)[NS_NIGHT_LEN], size_t n_nights,
                          size_t **rows, size_t *n_rows);

/* Sorts catalog rows into an order of the clips alone (night, camera,
 * SHA-256: the catalog holds no start times), for seeded choices among them. */
void ns_clips_canonical(const ns_store *s, size_t *rows, size_t n_rows);

/* Loads the given catalog clips (rows ascending, distinct), in canonical order.  Every shard
 * involved must have complete embeddings for model_id with dimension d
 * (NS_ERR_NOT_FOUND naming the night and shard and saying to run `nightshift
 * embed` otherwise).  Reads each shard once.  model_id NULL loads everything
 * but the embeddings (d 0, emb unused): what label import needs. */
ns_status ns_frameset_load(ns_store *s, const char *model_id, int d, const size_t *rows,
                           size_t n_rows, ns_frameset *out);

/* Allocates every array of f for cap frames (of dimension f->d; 0 counts
 * as 1) and n_clips clips; on failure, what was allocated stays for
 * ns_frameset_release. */
ns_status ns_frameset_alloc(ns_frameset *f, size_t cap, size_t n_clips);

void ns_frameset_release(ns_frameset *f); /* NULL-safe, idempotent */

#endif
