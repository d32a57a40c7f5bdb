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

#endif
