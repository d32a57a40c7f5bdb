/* dataset_internal.h -- shared by the files of src/dataset only. */
#ifndef NIGHTSHIFT_DATASET_INTERNAL_H
#define NIGHTSHIFT_DATASET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"
#include "nightshift/store.h"

/* ---- clip references (clipref.c) ------------------------------------------------
 * How a label row names a clip: SHA-256, a unique hex prefix of at least
 * NS_CLIPREF_MIN_PREFIX digits, the source path as ingested (or a unique tail
 * of it at a '/'), or a file name that is unique in the store. */
#define NS_CLIPREF_MIN_PREFIX 12

typedef struct ns_clipref_index ns_clipref_index;

ns_status ns_clipref_create(ns_store *s, ns_clipref_index **out);
void ns_clipref_free(ns_clipref_index *x); /* NULL-safe */

enum { NS_CLIPREF_OK = 0, NS_CLIPREF_UNKNOWN = 1, NS_CLIPREF_AMBIGUOUS = 2 };
/* Catalog row of the clip `text` names into *row; the NS_CLIPREF_* outcome,
 * or -1 with an ns_error recorded when the store could not be read. *n_match
 * gets the number of clips an ambiguous reference matches. */
int ns_clipref_resolve(ns_clipref_index *x, const char *text, size_t *row, size_t *n_match);


#endif

/* ---- Label Studio JSON (lsjson.c) ----------------------------------------------
 * A strict, bounded reader for a Label Studio export: a JSON array of tasks,
 * each an object with "data" {"clip": "...", "frame": <int or string>, ...}
 * and "annotations" [{"result": [{"type": "choices", "value": {"choices":
 * ["<label>"]}}], "completed_by": <id, string or {"email": ...}>,
 * "updated_at"/"created_at": "<ISO time>"}].  Unknown keys are skipped.
 * For each task the callback gets its 1-based number and the fields found
 * (NULL when missing), or err set to why the task is unusable. */
typedef struct ns_lstask {
    size_t number;          /* 1-based position in the array */
    size_t line;            /* line where the task starts */
    const char *clip, *frame, *label, *annotator, *time;
    const char *err;        /* a task that is valid JSON but unusable */
} ns_lstask;

typedef void (*ns_lstask_fn)(void *ctx, const ns_lstask *t);

/* NS_ERR_FORMAT naming `name` and the line for JSON that is not valid or not
 * an array of objects (tasks before the error were already handed over),
 * NS_ERR_LIMIT for nesting deeper than 32 or strings over 64 KiB. */
ns_status ns_lsjson_parse(const char *text, size_t len, const char *name, ns_lstask_fn fn,
                          void *ctx);
