/* export.h -- selected frames as a labeling package: one tar (libarchive,
 * POSIX ustar/pax) holding
 *   images/NNNNN_<camera>_<clip12>_f<frame>.jpg   names we generate (member
 *        names of the source clips are never used as paths); the original
 *        JPEG bytes of the clip when its file is still at the ingested
 *        source path and hashes to the stored SHA-256, else the stored frame
 *        encoded with TurboJPEG (quality 95);
 *   tasks.csv          file,clip,frame,camera,night,reason,suggested,label,
 *        jpeg (original|stored); label left empty for the labeler; it
 *        imports with `nightshift labels import` as it comes back;
 *   labelstudio.json   a Label Studio import: [{"data": {"image", "clip",
 *        "frame", "reason", "camera", "suggested"}}]; a Label Studio export
 *        of these tasks imports with `labels import` (data.clip, data.frame);
 *   cvat.xml           CVAT "images 1.1" annotations: the class list and one
 *        <image> per file with its size;
 *   README.txt         how to return the labels.
 * The tar appears atomically (temp, fsync, rename).
 */
#ifndef NIGHTSHIFT_EXPORT_H
#define NIGHTSHIFT_EXPORT_H

#include <stddef.h>

#include "nightshift/status.h"
#include "nightshift/store.h"
#include "nightshift/warn.h"

typedef struct ns_export_report {
    size_t rows;          /* selection rows read */
    size_t exported;      /* frames in the tar */
    size_t original;      /* of those, the clip's own JPEG bytes */
    size_t reencoded;     /* encoded from the stored frame */
    size_t bad_rows;      /* left out, each with a message in problems */
    ns_warnings problems;
} ns_export_report;

/* Reads the selection CSV (columns clip, frame; reason and suggested used
 * when present), writes the tar at out_path.  Bad rows are reported and left
 * out; NS_ERR_NOT_FOUND when no row is usable. */
ns_status ns_export_run(ns_store *s, const char *selection, const char *out_path,
                        ns_export_report *rep);
void ns_export_report_release(ns_export_report *r);

#endif
