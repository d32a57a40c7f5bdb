/* report_internal.h -- shared between the files of src/report only.
 *
 * report.c orchestrates (CSVs, summary.json, the files on disk), html.c
 * builds the page, svg.c draws the charts, thumb.c makes the inline JPEG
 * thumbnails.  Every number that reaches a file goes through ns_rep_num, so
 * the output never depends on a locale and is identical for identical input.
 */
#ifndef NIGHTSHIFT_REPORT_INTERNAL_H
#define NIGHTSHIFT_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/report.h"

/* Bounds that keep the page a readable, bounded size whatever the night holds. */
#define NS_REP_MAX_DETAIL 50     /* conditions shown in detail, at most */
#define NS_REP_MAX_COND_ROWS 100 /* rows of the conditions table */
#define NS_REP_MAX_CAM_ROWS 50   /* rows of a per-camera table */
#define NS_REP_TOP_CLIPS 20      /* clips with the highest novel share */
#define NS_REP_MAX_HISTORY 90    /* nights on the timeline */

/* printf-style number into buf: "n/a" for NaN/inf; a decimal comma (a locale
 * we never set, but cheap to rule out) becomes a point.  Returns buf. */
const char *ns_rep_num(char *buf, size_t cap, const char *fmt, double v);
/* Unix seconds to "YYYY-MM-DDTHH:MM:SSZ" ("unknown" when not finite).  With
 * millis, ".mmm" before the Z.  Returns buf (cap >= 32). */
const char *ns_rep_iso(char *buf, size_t cap, double t, int millis);

/* The attribution sentence of a condition ("near-black pixels 0.2% -> 9.1%,
 * z = +14.7; ..."), plain text (property names are ours; callers escape anyway). */
void ns_rep_attr_sentence(ns_strbuf *sb, const ns_detect_attr *a);

/* Chart pieces (svg.c): an <svg> 600 wide and h high; a text element (s is
 * trusted markup: escape untrusted names first); the two axes. */
void ns_svg_open(ns_strbuf *sb, double h, const char *label);
void ns_svg_text(ns_strbuf *sb, double x, double y, const char *anchor, const char *cls,
                 const char *s);
void ns_svg_axes(ns_strbuf *sb, double x0, double y0, double x1, double y1);

/* Charts, appended to sb as inline <svg> elements. */
void ns_svg_histogram(ns_strbuf *sb, const float *tonight, size_t n_tonight, const float *ref,
                      size_t n_ref);
void ns_svg_null(ns_strbuf *sb, const double *null_stats, size_t n, double observed);
/* Earlier nights then tonight (highlighted) as the last point. */
void ns_svg_timeline(ns_strbuf *sb, const ns_history_point *h, size_t n,
                     const ns_history_point *tonight, double alpha);
void ns_svg_attr_bars(ns_strbuf *sb, const ns_detect_attr *a);

/* Thumbnails: one TurboJPEG handle, frame and output buffers, reused. */
typedef struct ns_thumbs ns_thumbs;
/* s may be NULL (no thumbnails: every request is answered "not available"). */
ns_status ns_thumbs_create(ns_store *s, int thumb_size, int quality, int budget,
                           ns_thumbs **out);
void ns_thumbs_free(ns_thumbs *t); /* NULL-safe */
/* Appends an <img> with the frame at view row `row` inline, or a placeholder
 * once the budget is spent.  alt is untrusted text (escaped here). */
ns_status ns_thumbs_img(ns_thumbs *t, uint64_t row, const char *alt, ns_strbuf *sb);
int ns_thumbs_left(const ns_thumbs *t);

/* The whole page into sb. */
ns_status ns_report_html(ns_store *s, const ns_reference *ref, const ns_detect_result *r,
                         const ns_report_opts *o, ns_strbuf *sb);

#endif
