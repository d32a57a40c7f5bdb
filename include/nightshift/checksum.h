/* checksum.h -- whole-file integrity checksums of committed shards.
 *
 * A checksum is a string "<algorithm>:<hex digest>", so a store can hold shards
 * written under either algorithm and verify each with its own:
 *
 *   xxh3-128-tree:<32 hex>   what new shards get (catalog format 2)
 *   sha256-tree:<64 hex>     shards from catalog format 1, which stored the
 *                            bare hex; still verified
 *
 * Both are tree digests over blocks of NS_CHECKSUM_TREE_BLOCK bytes (the last
 * one shorter), so blocks hash in parallel (OpenMP):
 *   H( tag || u64le(block) || u64le(size) || H(block 0) || H(block 1) || ... )
 * with H = XXH3-128 (canonical big-endian bytes, as Python's
 * xxhash.xxh3_128().digest()) and tag "nightshift-xxh3-128-tree-v1", or
 * H = SHA-256 and tag "nightshift-sha256-tree-v1".  docs/store.md shows both
 * in a few lines of Python.
 *
 * Why XXH3 for shards: the checksum guards against bit rot, truncation and
 * torn copies, not against an adversary (clip ids stay SHA-256, which is what
 * deduplication trusts).  SHA-256 ran at ~1.5 GB/s per core with SHA-NI and,
 * after the last frame of a run, hashing the final shard took longer than
 * its fsync; XXH3 is limited by the page-cache copy instead. */
#ifndef NIGHTSHIFT_CHECKSUM_H
#define NIGHTSHIFT_CHECKSUM_H

#include "nightshift/status.h"

#define NS_CHECKSUM_LEN 96 /* longest "<algorithm>:<hex>" + NUL, with room */
#define NS_CHECKSUM_TREE_BLOCK (16u << 20)

typedef enum ns_checksum_algo {
    NS_CHECKSUM_XXH3_128_TREE = 0, /* what new shards get */
    NS_CHECKSUM_SHA256_TREE = 1,
} ns_checksum_algo;

/* "xxh3-128-tree" or "sha256-tree". */
const char *ns_checksum_algo_name(ns_checksum_algo algo);

/* "<algorithm>:<hex>" from a bare hex digest: how a format-1 catalog's or
 * embeddings file's SHA-256 tree reads today. */
void ns_checksum_join(ns_checksum_algo algo, const char *hex, char out[NS_CHECKSUM_LEN]);

/* The algorithm a checksum string names; NS_ERR_FORMAT for anything else
 * (unknown name, missing ':', wrong digest length, non-hex digits). */
ns_status ns_checksum_parse(const char *checksum, ns_checksum_algo *algo);

/* Checksum of the whole file at path, as "<algorithm>:<hex>". */
ns_status ns_checksum_file(const char *path, ns_checksum_algo algo, char out[NS_CHECKSUM_LEN]);

#endif
