/* dataset.h -- a retraining dataset: labelled frames with their embeddings,
 * split into train / val / test without leakage, in one self-describing file.
 *
 * Contract between `dataset build` (the writer) and train, evaluate and gate
 * (the readers).  Full documentation: docs/dataset.md.
 *
 * File  (ns_format = "nightshift-dataset", version 1), written atomically,
 * readable with h5py:
 *   attributes: dataset_id (hex SHA-256 of the content, see below), model_id,
 *       dim (int32), n_frames (uint64), n_classes (int32), split_by ("clip",
 *       "camera", "night", "none"), seed (uint64), guard_minutes (float64),
 *       val_fraction, test_fraction (float64), nights_from, nights_to,
 *       label_sets (comma-separated "name@version"), store_id, created
 *       (float64), writer ("nightshift x.y.z")
 *   /embeddings      float32 (n, dim)
 *   /labels          int32 (n)   row in /classes
 *   /split           uint8 (n)   NS_SPLIT_TRAIN, NS_SPLIT_VAL, NS_SPLIT_TEST
 *   /classes         string (n_classes), fixed NS_LABEL_LEN
 *   /frames/clip     string (n), fixed NS_SHA256_HEX: the clip's SHA-256
 *   /frames/member   string (n), fixed NS_MEMBER_LEN (untrusted text)
 *   /frames/camera   string (n), fixed NS_CAMERA_LEN
 *   /frames/night    string (n), fixed NS_NIGHT_LEN
 *   /frames/index    uint32 (n)  frame number within its clip
 *   /frames/time     float64 (n) unix seconds (frame, else clip start; NaN unknown)
 *   /frames/condition int32 (n)  detect's condition of the frame, -1 unknown
 *   /frames/view_row uint64 (n)  row in the store's view (thumbnails)
 *   /audit           attributes of the leakage audit: threshold, n_near_dup,
 *                    n_exact_dup, test_leak_share (float64), max_leak, passed
 * Rows are grouped by clip.  dataset_id is the SHA-256 over the bytes of
 * /embeddings, /labels, /split, /classes and /frames/clip, /frames/index in
 * that order (little-endian, as stored), so the same content always has the
 * same id whatever the creation time.
 */
#ifndef NIGHTSHIFT_DATASET_H
#define NIGHTSHIFT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/labels.h"
#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

#define NS_DATASET_FORMAT "nightshift-dataset"
#define NS_DATASET_FORMAT_VERSION 1

enum { NS_SPLIT_TRAIN = 0, NS_SPLIT_VAL = 1, NS_SPLIT_TEST = 2 };

typedef struct ns_dataset_audit {
    double threshold;       /* near-duplicate embedding distance */
    uint64_t n_near_dup;    /* cross-split pairs under the threshold */
    uint64_t n_exact_dup;   /* cross-split pairs with equal frame content hashes */
    double test_leak_share; /* share of test frames with a near-duplicate in train */
    double max_leak;
    int passed;
} ns_dataset_audit;

typedef struct ns_dataset {
    size_t n;
    int d;
    float *emb;       /* (n, d) */
    int32_t *label;   /* (n) */
    uint8_t *split;   /* (n) */
    size_t n_classes;
    char (*classes)[NS_LABEL_LEN];
    char (*clip)[NS_SHA256_HEX];
    char (*member)[NS_MEMBER_LEN];
    char (*camera)[NS_CAMERA_LEN];
    char (*night)[NS_NIGHT_LEN];
    uint32_t *index;
    double *time;
    int32_t *condition;
    uint64_t *view_row;
    char dataset_id[NS_SHA256_HEX];
    char model_id[NS_SHA256_HEX];
    char store_id[NS_SHA256_HEX];
    char split_by[16];
    uint64_t seed;
    double guard_minutes, val_fraction, test_fraction;
    char nights_from[NS_NIGHT_LEN], nights_to[NS_NIGHT_LEN];
    char *label_sets; /* malloc'd, comma-separated "name@version" */
    ns_dataset_audit audit;
    double created; /* unix seconds */
} ns_dataset;

/* Allocates every per-frame array for n frames of dimension d and the class
 * list (zeroed; time NaN, condition -1).  ds is zeroed first. */
ns_status ns_dataset_alloc(ns_dataset *ds, size_t n, int d, size_t n_classes);

/* Hex SHA-256 of the content as defined above (strings NUL-padded to their
 * full width, as stored). */
void ns_dataset_content_id(const ns_dataset *ds, char hex[NS_SHA256_HEX]);

/* Computes ds->dataset_id from the content, then writes path atomically
 * (temp, fsync, rename).  Refuses to replace a file that is not a dataset. */
ns_status ns_dataset_save(ns_dataset *ds, const char *path);

/* Reads and checks a whole dataset: format and version, shapes, label
 * range, split values, finite embeddings, and the content id. */
ns_status ns_dataset_load(const char *path, ns_dataset *out);

void ns_dataset_release(ns_dataset *ds); /* NULL-safe, idempotent */

#endif
