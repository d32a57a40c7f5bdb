/* labels.h -- labels for stored frames, kept in the store as versioned label sets.
 *
 * Contract shared by import (labels import), selection (already-labelled
 * frames are never picked again), dataset build and the nightly job.
 *
 * Layout: STORE/labels/<version>-<name>.h5, one file per import, version a
 * zero-padded counter ("000001"), written under a temp name, fsync'd and
 * renamed into place like a shard; an import never rewrites an earlier set.
 * The exact file format (ns_format = "nightshift-labels", version 1) is
 * documented in docs/labels.md by the module that writes it (src/store/labelfile.c).
 *
 * The effective label of a frame is the one of the newest set that labels
 * it: an import resolves conflicts with earlier sets when it is made
 * (--on-conflict keep|replace|fail), so reading never has to guess.
 */
#ifndef NIGHTSHIFT_LABELS_H
#define NIGHTSHIFT_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

#define NS_LABEL_LEN 256   /* a class name, UTF-8, NUL-terminated (longer is refused) */
#define NS_LABELSET_LEN 96 /* "name@version" */
#define NS_LABELSET_NAME_LEN 64 /* [A-Za-z0-9._-], 1..63 characters */
#define NS_ANNOTATOR_LEN 64
#define NS_LABELS_FORMAT "nightshift-labels"
#define NS_LABELS_FORMAT_VERSION 1

/* Effective labels of a store: one entry per labelled frame, sorted by
 * (clip, index), so lookups are binary searches. */
typedef struct ns_labelmap {
    size_t n;
    char (*clip)[NS_SHA256_HEX]; /* (n) clip SHA-256, lower-case hex */
    uint32_t *index;             /* (n) frame number within its clip */
    int32_t *cls;                /* (n) row in classes */
    size_t n_classes;
    char (*classes)[NS_LABEL_LEN]; /* (n_classes) union of the sets' class lists, in first-seen order */
    size_t n_sets;
    char (*sets)[NS_LABELSET_LEN]; /* (n_sets) the sets read, "name@version", oldest first */
} ns_labelmap;

/* Reads every label set of the store (or only those whose name is in
 * `names`, comma-separated, when not NULL).  A store without labels gives
 * an empty map (n = 0), not an error. */
ns_status ns_labels_load(const ns_store *s, const char *names, ns_labelmap *out);

/* Class index of a frame, or -1 when it is not labelled. */
int32_t ns_labels_find(const ns_labelmap *m, const char *clip_sha256, uint32_t index);

void ns_labels_release(ns_labelmap *m); /* NULL-safe, idempotent */

/* ---- one label set (one file) ------------------------------------------------ */

/* Rows sorted by (clip, index), each frame at most once. */
typedef struct ns_labelset {
    char name[NS_LABELSET_NAME_LEN];
    uint32_t version;                   /* assigned by ns_labelset_commit */
    double created;                     /* unix seconds */
    char on_conflict[8];                /* "keep", "replace", "fail": the rule it was made by */
    char *sources;                      /* malloc'd: the imported files, newline-separated */
    size_t n;
    char (*clip)[NS_SHA256_HEX];        /* (n) */
    uint32_t *index;                    /* (n) */
    int32_t *cls;                       /* (n) row in classes */
    char (*annotator)[NS_ANNOTATOR_LEN]; /* (n) "" when not given (untrusted text) */
    double *time;                       /* (n) unix seconds of the annotation; NaN unknown */
    float *confidence;                  /* (n) NaN unknown */
    size_t n_classes;
    char (*classes)[NS_LABEL_LEN];      /* (n_classes) every class this set uses, or names */
} ns_labelset;

/* Allocates the per-row arrays for n rows and n_classes classes (zeroed). */
ns_status ns_labelset_alloc(ns_labelset *set, size_t n, size_t n_classes);

/* Writes the set as the store's next version (set->version is set), under
 * the store's writer lock (s opened for writing).  Checks order, class rows
 * and names first; NS_ERR_USAGE for an invalid set.  Atomic. */
ns_status ns_labelset_commit(ns_store *s, ns_labelset *set);

/* Every label set of the store (or those named in `names`, comma-separated),
 * oldest version first.  *sets is NULL and *n 0 when there are none. */
ns_status ns_labelsets_read(const ns_store *s, const char *names, ns_labelset **sets, size_t *n);
void ns_labelsets_free(ns_labelset *sets, size_t n); /* NULL-safe */

/* Reads one label set file, checking format, shapes, order and class rows. */
ns_status ns_labelset_read(const char *path, ns_labelset *out);
void ns_labelset_release(ns_labelset *set); /* NULL-safe, idempotent */

/* Effective labels of the given sets (oldest first: newer sets win). */
ns_status ns_labels_merge(const ns_labelset *sets, size_t n_sets, ns_labelmap *out);

#endif
