/* morning.h -- RUNS/<night>/index.html, the page reviewers open in the
 * morning: the night's outcome, every stage with its time and counts, links
 * to every report and log of the night, and a timeline of earlier nights.
 *
 * Self-contained like the detect report (inline CSS from reports/, inline
 * SVG, no JavaScript, no network), every untrusted string escaped, numbers
 * locale-independent, written atomically.  Links are relative, so the runs
 * folder can be copied or served as it is.
 */
#ifndef NIGHTSHIFT_MORNING_H
#define NIGHTSHIFT_MORNING_H

#include "nightshift/nightly.h"
#include "nightshift/status.h"

typedef struct ns_morning_page {
    const char *night;
    const char *runs;                /* the runs folder: RUNS/<night>/manifest.json of earlier nights */
    const char *dir;                 /* RUNS/<night>: where index.html goes */
    const ns_run_manifest *manifest; /* tonight's */
} ns_morning_page;

ns_status ns_morning_write(const ns_morning_page *p);

#endif
