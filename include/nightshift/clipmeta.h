/* clipmeta.h -- where a clip's camera, start time, frame rate and night come from.
 *
 * In order of precedence:
 *   1. a manifest CSV (--manifest): header with a `path` column and any of
 *      `camera`, `start_time` (ISO 8601), `fps`, `night` (YYYY-MM-DD); other
 *      columns are ignored.  `path` is matched against the clip's real path,
 *      relative paths being taken from the manifest's directory; failing that,
 *      by file name when that name is unique in the manifest;
 *   2. the clip's file name, matched against a pattern (--name-pattern), whose
 *      tokens are {camera} (letters, digits, '-', '.'), {date} (YYYYMMDD or
 *      YYYY-MM-DD), {time} (HHMMSS or HH-MM-SS or HH:MM:SS), {datetime} (an
 *      ISO 8601 date-time, basic 20240306T010000 or extended
 *      2024-03-06T01:00:00 (or 01-00-00), with or without a zone: Z, +HH:MM,
 *      +HHMM, +HH or '-'; no zone means UTC) and {*} (anything); '|'
 *      separates alternatives, tried in order; other characters match
 *      themselves.  The extension is not part of the match.  Default:
 *      "{camera}_{date}_{time}|{camera}_{datetime}": many recorders write
 *      cam3_20240306T010000;
 *   3. defaults: camera "unknown", start time unknown (NaN), the night from
 *      --night (default: today's local date).
 */
#ifndef NIGHTSHIFT_CLIPMETA_H
#define NIGHTSHIFT_CLIPMETA_H

#include "nightshift/status.h"
#include "nightshift/store.h"

#define NS_DEFAULT_NAME_PATTERN "{camera}_{date}_{time}|{camera}_{datetime}"

typedef struct ns_clip_meta {
    char camera[NS_CAMERA_LEN]; /* "" when unknown */
    double start_time;          /* unix seconds UTC; NaN when unknown */
    double fps;                 /* 0 when unknown */
    char night[NS_NIGHT_LEN];   /* "" when unknown */
} ns_clip_meta;

typedef struct ns_manifest ns_manifest;

/* NS_ERR_FORMAT naming file and line for a bad row (bad time, fps, night, or
 * no `path` column); NS_ERR_IO when unreadable. */
ns_status ns_manifest_load(const char *csv_path, ns_manifest **out);
void ns_manifest_free(ns_manifest *m);
/* Fills meta from the manifest row for clip_path; returns 1 when found. */
int ns_manifest_lookup(const ns_manifest *m, const char *clip_path, ns_clip_meta *meta);
size_t ns_manifest_rows(const ns_manifest *m);

/* NS_ERR_USAGE for an unknown token or an empty pattern. */
ns_status ns_name_pattern_check(const char *pattern);
/* Fills the fields the pattern captures; returns 1 when the name matched. */
int ns_name_pattern_match(const char *pattern, const char *path, ns_clip_meta *meta);

/* "2026-11-01T22:15:00Z", "2026-11-01 22:15:00", fractions and +hh:mm
 * offsets; no zone means UTC.  NS_ERR_FORMAT otherwise. */
ns_status ns_parse_iso_time(const char *s, double *out);
/* Validates a calendar date YYYY-MM-DD (leap years included). */
ns_status ns_parse_night(const char *s, char out[NS_NIGHT_LEN]);
/* Formats unix seconds as "2026-11-01T22:15:00Z" (NaN -> ""). */
void ns_format_iso_time(double t, char out[32]);

#endif
