/* report.h -- the detect stage's human and script outputs.
 *
 * In OUT (each file written atomically: temp, fsync, rename; summary.json is
 * written last, so its presence means the set is complete):
 *   clusters.csv  one row per condition, then per candidate cluster
 *   clips.csv     per clip: sha256, camera, source, start_time (ISO 8601),
 *                 frames, novel_frames, novel_share, condition
 *   frames.csv    per frame: clip_sha256, source, member, frame_index,
 *                 timestamp, ref_cluster, cluster, condition, novelty_score,
 *                 p_value, novel
 *   summary.json  {"format":"nightshift-detect-summary","version":1, night,
 *                 verdict ("shift"|"no-shift"), p_value, mmd2, alpha, seed,
 *                 n_perm, sigma, clips {tonight, reference}, frames {...},
 *                 novel_frames, top_conditions [...], files {...}}
 *   report.html   one self-contained page (inline CSS from reports/, inline
 *                 SVG charts, inline JPEG thumbnails; no JavaScript, no
 *                 network): verdict, test with effective sample size, novelty
 *                 histogram tonight vs reference, novel conditions with
 *                 thumbnails, cameras, times and attribution, per-camera
 *                 table, timeline of earlier nights.  Bounded size (the
 *                 thumbnail budget caps it), byte-identical for identical
 *                 inputs (no clock in it), every untrusted string escaped.
 * CSV cells: RFC 4180 quoting and a leading ' for cells starting with
 * = + - @ TAB CR (csv.h).  Numbers are printed locale-independently.
 */
#ifndef NIGHTSHIFT_REPORT_H
#define NIGHTSHIFT_REPORT_H

#include <stddef.h>

#include "nightshift/detect.h"
#include "nightshift/detfile.h"
#include "nightshift/reference.h"
#include "nightshift/status.h"
#include "nightshift/store.h"
#include "nightshift/strbuf.h"

typedef struct ns_report_opts {
    int thumb_size;          /* 96 px */
    int jpeg_quality;        /* 75 */
    int max_thumbs;          /* 64 in the whole page: bounds its size */
    const ns_history_point *history; /* earlier nights, ascending */
    size_t n_history;
} ns_report_opts;

void ns_report_default_opts(ns_report_opts *o);

/* Writes the CSVs, summary.json and report.html into out_dir (created when
 * missing).  Thumbnails are read from the store by view row. */
ns_status ns_report_write(ns_store *s, const ns_reference *ref, const ns_detect_result *r,
                          const ns_report_opts *o, const char *out_dir);

/* HTML entity escaping of untrusted text (& < > " '), appended to sb. */
/* The attribution of a condition as one line of plain text, cut to cap:
 * "near-black pixels 0.2% -> 9.1%, z = +14.7; mean luma 112 -> 98, z = -3.2
 * (-13%)" (the relative change only where its base is not near zero). */
void ns_report_attr_text(const ns_detect_attr *a, char *buf, size_t cap);

ns_status ns_report_html_escape(ns_strbuf *sb, const char *s);

#endif
