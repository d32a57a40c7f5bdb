/* store_internal.h -- shared between the files of src/store only.
 *
 * HDF5 stays in src/store: these helpers build the compound types that mirror
 * the public structs, translate HDF5 failures into ns_error messages, and give
 * the writer, view and verifier access to the store's in-memory catalog.
 */
#ifndef NIGHTSHIFT_STORE_INTERNAL_H
#define NIGHTSHIFT_STORE_INTERNAL_H

#include <hdf5.h>
#include <limits.h>
#include <stddef.h>

#include "nightshift/store.h"

#define NS_STORE_CACHE 4 /* open shard handles kept by a store */

typedef struct ns_shard_handle {
    long shard;          /* row in the shard table, -1 when unused */
    hid_t file, frames, clips;
    unsigned long used;  /* LRU clock */
} ns_shard_handle;

struct ns_store {
    char *dir;
    int frame_size;
    int writable;
    int lock_fd;
    int shared;               /* one of several concurrent shard writers */
    int catalog_fd;           /* DIR/catalog.lock while held (shared writers), else -1 */
    double created;
    uint32_t next_shard_id;
    ns_shard_entry *shards;   /* (n_shards) */
    size_t n_shards, cap_shards;
    ns_catalog_clip *clips;   /* (n_clips) */
    size_t n_clips, cap_clips;
    uint64_t *shard_first;    /* (cap_shards + 1) first view row of each shard */
    uint32_t *hash;           /* (hash_cap) clip row + 1, 0 = empty */
    size_t hash_cap;
    ns_shard_handle cache[NS_STORE_CACHE];
    unsigned long clock;
    ns_shard_writer *active;  /* the open writer, at most one */
    int check_shards;         /* readers: checksum each shard before its first read */
    uint8_t *shard_checked;   /* (n_checked) 1 once shard k's checksum matched */
    size_t n_checked;
};

/* Turns off HDF5's automatic error printing for this thread (once). */
void ns_h5_init(void);
/* H5Fclose that remembers a failure: HDF5 1.10 leaves a dangling id behind
 * one, and the exit-time shutdown must then be skipped (see h5util.c). */
herr_t ns_h5_fclose(hid_t f);
/* Records "<formatted>: <innermost HDF5 message>" and clears the stack. */
ns_status ns_h5_error(ns_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Types; each returns a new hid_t the caller closes (H5I_INVALID_HID on failure). */
hid_t ns_h5_str_type(size_t len);        /* fixed length, NUL-padded */
hid_t ns_h5_clip_record_type(void);      /* memory layout of ns_clip_record */
/* The catalog's shard table as catalog_version lays it out (1: sha256 hex in
 * checksum's place, without the "sha256-tree:" prefix). */
hid_t ns_h5_shard_entry_type(int catalog_version);
hid_t ns_h5_catalog_clip_type(void);
/* Inserts a fixed-length (NUL-padded) string field of len bytes. */
herr_t ns_h5_insert_str(hid_t t, const char *name, size_t off, size_t len);
/* The end of a compound-type builder: t when every insert succeeded (r >= 0),
 * else closes t and returns H5I_INVALID_HID. */
hid_t ns_h5_type_done(hid_t t, herr_t r);
/* Field `field` of struct `type`, at base + its offset, under its C name;
 * the _STR form sizes the string type from the char array. */
#define NS_H5_INS(t, base, type, field, h5t) \
    H5Tinsert(t, #field, (base) + offsetof(type, field), h5t)
#define NS_H5_INS_STR(t, base, type, field) \
    ns_h5_insert_str(t, #field, (base) + offsetof(type, field), sizeof(((type *)0)->field))
/* Inserts ns_clip_record's fields at offset base; with skip_joined, leaves
 * out those the catalog clip already has (sha256, camera, night, qc_flags). */
herr_t ns_h5_insert_record_fields(hid_t t, size_t base, int skip_joined);

/* Root attributes. */
herr_t ns_h5_attr_str(hid_t obj, const char *name, const char *value);
herr_t ns_h5_attr_num(hid_t obj, const char *name, hid_t type, const void *value);
/* Attribute "names" on a props dataset: ns_prop_names, fixed 32-byte strings. */
herr_t ns_h5_write_prop_names(hid_t dset);
/* Checks ns_format / ns_format_version; NS_ERR_FORMAT naming path otherwise. */
ns_status ns_h5_check_format(hid_t file, const char *path, const char *want);
/* The same for formats read in versions lo..hi; the version found goes to
 * version_out when it is not NULL. */
ns_status ns_h5_check_format_in(hid_t file, const char *path, const char *want, int lo, int hi,
                                int *version_out);
/* Reads an attribute of exactly n values (NS_ERR_FORMAT otherwise). */
ns_status ns_h5_read_attr_n(hid_t obj, const char *path, const char *name, hid_t mtype,
                            void *out, long n);
ns_status ns_h5_read_attr(hid_t obj, const char *path, const char *name, hid_t mtype,
                          void *out);
/* A fixed-length string attribute into buf (NUL-terminated). */
ns_status ns_h5_read_str_attr(hid_t obj, const char *path, const char *name, char *buf,
                              size_t cap);
/* Creates dataset `name` of shape (d0) (rank 1) or (d0, d1) (rank 2), file
 * type ftype (compounds packed), and writes data given in mtype. */
ns_status ns_h5_put(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype,
                    int rank, uint64_t d0, uint64_t d1, const void *data);
/* Reads dataset `name` into out after checking its shape is exactly (d0)
 * or (d0, d1): a hostile file cannot overrun out. */
ns_status ns_h5_get(hid_t loc, const char *path, const char *name, hid_t mtype, int rank,
                    uint64_t d0, uint64_t d1, void *out);
/* Opens an existing HDF5 file read-only after checking it is HDF5; `what`
 * names it in messages ("dataset"). */
ns_status ns_h5_open_read(const char *path, const char *what, hid_t *out);
/* A string attribute of any stored width (under 1 KiB) that must fit dst:
 * NS_ERR_CORRUPT naming the attribute when it is longer than cap - 1. */
ns_status ns_h5_read_str_fit(hid_t obj, const char *path, const char *name, char *dst, size_t cap);
/* NS_OK when path does not exist or is a `format` file of version 1..version;
 * otherwise NS_ERR_EXISTS "refusing to replace '<path>', which is not a
 * <what>": a save never overwrites someone else's file. */
ns_status ns_h5_refuse_foreign(const char *path, const char *what, const char *format,
                               int version);
/* Rows of a 1+ dimensional dataset (first dimension). */
ns_status ns_h5_rows(hid_t dset, const char *path, const char *name, uint64_t *rows);
/* NS_ERR_CORRUPT before a read of `rows` rows of dset into mtype when the
 * file's element size is absurd for mtype (a flipped type message claimed
 * 1.4 GB per element and HDF5 sized its conversion buffer by it) or the
 * dataset stores far fewer bytes than its rows need (an extent of 2^40 over
 * unallocated chunks).  The factors leave room for compression and padding. */
ns_status ns_h5_check_stored(hid_t dset, hid_t mtype, const char *path, const char *name,
                             uint64_t rows);

/* STORE/embeddings/<model_id>/<shard id, 6 digits>.h5: where embfile.c writes a
 * shard's embeddings (and frameset.c reads them); NS_ERR_USAGE for a model id
 * that is not 64 lowercase hex digits. */
ns_status ns_emb_file_path(const ns_store *s, const char *model_id, uint32_t shard, char *buf,
                          size_t cap);
/* Opens the embeddings file of shard sh for reading (path filled): NS_ERR_CORRUPT
 * naming it when its format, model, shard checksum, dim or frame count do not
 * match what the store says (stale or damaged: rerun embed). */
ns_status ns_emb_open_read(const ns_store *s, const char *model_id, const ns_shard_entry *sh,
                           int dim, char *path, size_t cap, hid_t *f);
/* NS_ERR_CORRUPT naming path and the row when emb (n, dim) holds a NaN or an
 * infinity (issue 16 defect 8): embeddings are always finite. */
ns_status ns_emb_check_finite(const char *path, const float *emb, size_t n, int dim,
                              size_t first_row);

/* Writes one HDF5 file atomically: creates <path>.tmp.<pid>, lets write()
 * fill it (tmp names the file in its messages), closes, fsyncs and renames
 * it over path.  On failure the temporary is removed and path untouched.
 * `what` ("reference", or "" for none) names the file in messages. */
typedef ns_status (*ns_h5_write_fn)(hid_t f, const char *tmp, void *ctx);
ns_status ns_h5_save_atomic(const char *path, const char *what, ns_h5_write_fn write, void *ctx);

/* Rows per /frames chunk: about 2 MiB (14 at S = 224). */
size_t ns_store_frame_chunk_rows(int S);

/* Catalog and store internals. */
/* Writes the catalog atomically; *renamed (may be NULL) is set to 1 once the
 * new catalog is in place, even when a later directory sync fails. */
ns_status ns_catalog_save(ns_store *s, int *renamed);
/* Reads the catalog into s (tables, counters, frame size), each table's
 * claimed size checked against its stored bytes first. */
ns_status ns_catalog_load(ns_store *s);
ns_status ns_store_index_rebuild(ns_store *s); /* shard_first + hash */
/* Makes room for more shard and clip rows (pointers may move). */
ns_status ns_store_reserve(ns_store *s, size_t more_shards, size_t more_clips);
ns_status ns_store_shard_open(ns_store *s, size_t shard, ns_shard_handle **out);
void ns_store_cache_drop(ns_store *s);
ns_status ns_store_path(const ns_store *s, const char *rel, char *buf, size_t cap);

/* ns_store_open_write without rebuilding a stale view, which a damaged shard
 * would make fail: for verify --repair, which rebuilds it last. */
ns_status ns_store_open_repair(const char *dir, int wait, ns_store **out);

/* View (view.c). */
ns_status ns_view_write(ns_store *s);
/* 1 when DIR/view.h5 exists and matches the catalog's counts. */
int ns_view_is_current(ns_store *s);

/* Shared writers (ns_store_open_append) serialise their catalog updates:
 * the lock is a POSIX record lock on DIR/catalog.lock, held for one commit,
 * and taking it reloads the catalog, since other writers commit meanwhile. */
ns_status ns_store_catalog_lock(ns_store *s);
void ns_store_catalog_unlock(ns_store *s);
/* Takes the next shard id for a shared writer and records it in the catalog,
 * so concurrent writers never share one (a killed writer leaves a gap). */
ns_status ns_store_take_shard_id(ns_store *s, uint32_t *id);

#endif
