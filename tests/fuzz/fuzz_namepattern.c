/* fuzz_namepattern.c -- libFuzzer target: the clip name-pattern parser and
 * matcher of src/ingest/clipmeta.c.  The input is "PATTERN\nPATH": a
 * pattern that ns_name_pattern_check accepts is matched against the path, and
 * what a match captures must be well-formed. */
#include <math.h>

#include "nightshift/clipmeta.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *s = ns_fuzz_str(data, n);
    char *path = strchr(s, '\n');
    if (path)
        *path++ = '\0';
    else
        path = "cam03_20261103T221500.tar";
    if (ns_name_pattern_check(s) == NS_OK) {
        ns_clip_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.start_time = NAN;
        if (ns_name_pattern_match(s, path, &meta)) {
            NS_FUZZ_CHECK(memchr(meta.camera, '\0', sizeof meta.camera));
            NS_FUZZ_CHECK(memchr(meta.night, '\0', sizeof meta.night));
            ns_fuzz_check_text(meta.camera);
            if (meta.night[0]) {
                char night[NS_NIGHT_LEN];
                NS_FUZZ_CHECK(ns_parse_night(meta.night, night) == NS_OK);
            }
            NS_FUZZ_CHECK(isnan(meta.start_time) || isfinite(meta.start_time));
        }
    } else {
        ns_fuzz_check_text(ns_errmsg());
    }
    /* The ISO time and night parsers take the same untrusted text. */
    double t;
    char night[NS_NIGHT_LEN];
    if (ns_parse_iso_time(path, &t) == NS_OK)
        NS_FUZZ_CHECK(isfinite(t));
    (void)ns_parse_night(path, night);
    free(s);
    return 0;
}
