/* embeddings.h -- per-shard embedding files in the store.
 *
 * Layout: STORE/embeddings/<model_id>/<shard_id>.h5, one file per (model,
 * shard), written under a temp name, fsync'd and renamed into place like the
 * shards themselves, so a killed run keeps every finished shard and a rerun
 * resumes; files of different models sit side by side.
 * STORE/embeddings/<model_id>/lock keeps one embedding run per model.
 *
 * File  (ns_format = "nightshift-embeddings", version 2; version 1 is read)
 *   attributes: model_id (hex SHA-256, the model file's id), model_name,
 *               dim (int32), shard_id (uint32), shard_path, shard_checksum
 *               (the catalog's checksum of the shard the rows come from,
 *               "<algorithm>:<hex>"; version 1 had shard_sha256, the bare
 *               hex of its sha256-tree), n_frames
 *               (uint64), device ("cpu", "cuda", "ref"; a reduced GEMM
 *               precision is appended, "cuda-tf32" or "cuda-bf16", fp32 adds
 *               nothing), created (float64), writer ("nightshift x.y.z")
 *   /embeddings float32 (n_frames, dim), row i = frame i of the shard (so row
 *               first_frame + i of the store's view), chunked by 1024 rows
 * A file counts as present only when every attribute matches the model and
 * the catalog's shard (a re-ingested or replaced shard is embedded again).
 */
#ifndef NIGHTSHIFT_EMBEDDINGS_H
#define NIGHTSHIFT_EMBEDDINGS_H

#include <stddef.h>

#include "nightshift/status.h"
#include "nightshift/store.h"

#define NS_EMB_FORMAT "nightshift-embeddings"
#define NS_EMB_FORMAT_VERSION 2

/* Takes the per-model lock (NS_ERR_BUSY at once unless wait); *fd holds it. */
ns_status ns_emb_lock(const ns_store *s, const char *model_id, int wait, int *fd);
/* The same lock taken shared, for concurrent runs over disjoint shards
 * (embed --task): waits out an exclusive run; half-written files are swept
 * only by a taker that finds itself alone. */
ns_status ns_emb_lock_shared(const ns_store *s, const char *model_id, int *fd);

/* *present = 1 when a complete, matching embeddings file exists. */
ns_status ns_emb_present(const ns_store *s, const char *model_id, const ns_shard_entry *sh,
                         int dim, int *present);

/* The dimension recorded in a shard's embeddings file for model_id
 * (NS_ERR_NOT_FOUND naming the shard when there is none): how stages that
 * know only a model id (select, from detect.h5) size their reads. */
ns_status ns_emb_dim(const ns_store *s, const char *model_id, const ns_shard_entry *sh, int *dim);

typedef struct ns_emb_writer ns_emb_writer;

ns_status ns_emb_begin(const ns_store *s, const char *model_id, const char *model_name, int dim,
                       const ns_shard_entry *sh, const char *device, ns_emb_writer **out);
ns_status ns_emb_append(ns_emb_writer *w, const float *emb /* (n, dim) */, size_t n);
/* Commits atomically; NS_ERR_USAGE unless exactly the shard's n_frames rows
 * were appended.  The writer is freed in every case. */
ns_status ns_emb_commit(ns_emb_writer *w);
void ns_emb_discard(ns_emb_writer *w); /* NULL-safe; removes the temp file */

/* Reads a shard's embeddings (n_frames x dim floats) from a present file. */
ns_status ns_emb_read(const ns_store *s, const char *model_id, const ns_shard_entry *sh, int dim,
                      float *out);

#endif
