/* labelimport.h -- `labels import`: CSV and Label Studio JSON into a new
 * label set of the store (labels.h).
 *
 * A CSV has a header row.  Columns (names after --columns mapping):
 *   clip   the clip's SHA-256, a unique prefix of >= 12 hex digits, its
 *          source path as ingested (or a unique tail of it at a '/'), or
 *          its file name when that is unique in the store;
 *          aliases when no column is named "clip": sha256, clip_sha256, path, source
 *   frame  the frame number within its clip (0-based, as stored), or its
 *          member name as frames.csv shows it;  aliases: index, member
 *   label  the class name (UTF-8, 1..NS_LABEL_LEN-1 bytes, no control
 *          characters); stored as data whatever it looks like
 *   annotator, time (ISO 8601 or unix seconds), confidence (0..1): optional
 * A Label Studio JSON export (a file whose first non-blank byte is '[') is
 * read as tasks with data.clip, data.frame and the first choice of the
 * first annotation's result (see docs/labels.md).
 *
 * Each bad row is reported with its file and line and left out; --strict
 * leaves out the whole file instead.  Conflicts with the store's effective
 * labels, or between rows of one import, follow the rule:
 *   fail     the frames in conflict are left out and reported (default);
 *   keep     the earlier label stays, the new one is reported and dropped;
 *   replace  the new label goes into the new set, which wins from now on.
 * A row that repeats a frame's current label changes nothing.  The new set
 * is written atomically only when it has rows; nothing stored is changed
 * otherwise.
 */
#ifndef NIGHTSHIFT_LABELIMPORT_H
#define NIGHTSHIFT_LABELIMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/labels.h"
#include "nightshift/status.h"
#include "nightshift/store.h"
#include "nightshift/warn.h"

typedef enum ns_conflict_rule {
    NS_CONFLICT_FAIL = 0,
    NS_CONFLICT_KEEP,
    NS_CONFLICT_REPLACE
} ns_conflict_rule;

typedef struct ns_labels_import_opts {
    const char *set_name;     /* default "labels" */
    const char *columns;      /* "clip=path,frame=member,...", NULL for none */
    ns_conflict_rule on_conflict;
    int strict;               /* a file with any bad row is left out whole */
    size_t max_file_bytes;    /* bigger inputs are refused (default 1 GiB) */
} ns_labels_import_opts;

void ns_labels_import_default_opts(ns_labels_import_opts *o);
/* "fail", "keep", "replace"; NS_ERR_USAGE otherwise. */
ns_status ns_conflict_rule_parse(const char *s, ns_conflict_rule *out);
const char *ns_conflict_rule_name(ns_conflict_rule r);

typedef struct ns_labels_import_report {
    size_t files, files_rejected; /* unreadable, or --strict with bad rows */
    size_t rows;                  /* data rows / tasks read */
    size_t bad_rows;              /* malformed or unresolvable */
    size_t conflicts;             /* frames whose label differs from the current one */
    size_t conflicts_refused;     /* ... left out (fail) */
    size_t unchanged;             /* same label as now, or repeated in the import */
    size_t imported;              /* rows of the new set */
    char set[NS_LABELSET_LEN];    /* "name@version" written, "" when none */
    ns_warnings problems;         /* one line each, naming file and line */
} ns_labels_import_report;

void ns_labels_import_report_release(ns_labels_import_report *r);

/* s opened for writing (the writer lock keeps versions in order).  NS_OK
 * when the import ran, whatever it refused (see the report); an error for
 * bad options, an unreadable store or a failed commit. */
ns_status ns_labels_import(ns_store *s, const ns_labels_import_opts *o, const char *const *files,
                           size_t n_files, ns_labels_import_report *rep);

#endif
