/* glove.h -- the "glove shift" scenario: months of night shifts at assembly
 * stations, then the plant switches from gray to black gloves.
 *
 * Output of ns_glove_generate() in opts.out (DIR):
 *   DIR/<night>/<camera>/<camera>_<night>_<HHMMSS>.<ext>   one clip each
 *       ext cycles through opts.formats in (night, camera, clip) order; archives
 *       hold frame_<n>.jpg (n from 0, not zero-padded); every other AVI has idx1.
 *   DIR/manifest.csv  path,camera,start_time,fps,night     (path relative to DIR,
 *       start_time ISO 8601 UTC; clips of a night spread over 18:00..06:00)
 *   DIR/labels.csv    path,frame,member,label,glove,camera,night,object   one row
 *       per frame (member is "#<i>" for MJPEG and AVI; label is a task step name;
 *       glove is gray|black; object is none|drill: the "object" shift's new
 *       object type on the bench)
 *   DIR/truth.json    {"format":"nightshift-gen-truth","version":1, "params":{..},
 *       "shifts":[{kind,from_night,night_index,nights,cameras}],
 *       "nights":[{"night", "cameras":[{"camera","clips","frames","glove":{gray,black},
 *       "labels":{step:count}, "light":bool, "bump":bool, "object_clips":int}]}],
 *       "totals":{..}}
 *
 * Every byte is a function of the options except opts.threads: the same
 * options give identical files with any thread count.
 */
#ifndef NIGHTSHIFT_GEN_GLOVE_H
#define NIGHTSHIFT_GEN_GLOVE_H

#include <stdint.h>

#include "nightshift/status.h"
#include "writers.h"

#define NS_GLOVE_MAX_CAMERAS 64
#define NS_GLOVE_MAX_SHIFTS 16

enum { NS_SHIFT_GLOVE = 0, NS_SHIFT_LIGHT, NS_SHIFT_BUMP, NS_SHIFT_OBJECT, NS_SHIFT_KIND_COUNT };

typedef struct ns_glove_shift {
    int kind;          /* NS_SHIFT_* */
    int night;         /* 1-based: applies from this night onwards */
    uint64_t cameras;  /* bit i: camera i+1 ("cam%02d"); all ones: every camera */
    int clips;         /* > 0: only the first `clips` clips of each camera and night */
} ns_glove_shift;

typedef struct ns_glove_opts {
    const char *out;
    int nights;
    char start[11];    /* "YYYY-MM-DD", the first night */
    int cameras;
    int clips;         /* per camera per night */
    int frames;        /* per clip */
    int width, height, quality;
    double fps;
    ns_gen_format formats[NS_GEN_FORMAT_COUNT * 2];
    int n_formats;
    uint64_t seed;
    ns_glove_shift shifts[NS_GLOVE_MAX_SHIFTS];
    int n_shifts;
    int threads;       /* 0: OpenMP's default */
} ns_glove_opts;

/* Defaults: 6 nights from 2026-11-01, 3 cameras, 2 clips of 40 frames at
 * 640x480, quality 90, 10 fps, every format, seed 1, glove shift from night 5
 * on cam01 and cam02. */
void ns_glove_default_opts(ns_glove_opts *o);

/* Parses "KIND:NIGHT[:CAM,CAM..[:CLIPS]]" (cameras as "cam02" or "2"; CLIPS
 * limits the change to the first CLIPS clips of each camera and night). */
ns_status ns_glove_parse_shift(const char *s, ns_glove_shift *out);
/* Parses a comma-separated list of formats. */
ns_status ns_glove_parse_formats(const char *s, ns_glove_opts *o);

/* "glove", "light", "bump", "object" */
extern const char *const ns_glove_shift_names[NS_SHIFT_KIND_COUNT];

typedef struct ns_glove_stats {
    uint64_t clips, frames, bytes;
    double seconds;
} ns_glove_stats;

ns_status ns_glove_generate(const ns_glove_opts *o, ns_glove_stats *stats);

#endif
