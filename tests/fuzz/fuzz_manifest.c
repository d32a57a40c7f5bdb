/* fuzz_manifest.c -- libFuzzer target: the clip manifest CSV parser of
 * src/ingest/clipmeta.c (over the CSV reader of src/io/csv.c), then lookups
 * of the names a manifest usually holds. */
#include <math.h>

#include "nightshift/clipmeta.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *path = ns_fuzz_file(data, n, ".manifest.csv");
    ns_manifest *m = NULL;
    ns_status st = ns_manifest_load(path, &m);
    if (st == NS_OK) {
        static const char *const probes[] = {"a.tar", "2026-11-01/cam01_000.tar",
                                             "/x/y/cam00_001.avi", "", "/"};
        for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
            ns_clip_meta meta;
            memset(&meta, 0, sizeof meta);
            meta.start_time = NAN;
            if (ns_manifest_lookup(m, probes[i], &meta)) {
                NS_FUZZ_CHECK(memchr(meta.camera, '\0', sizeof meta.camera));
                NS_FUZZ_CHECK(memchr(meta.night, '\0', sizeof meta.night));
                NS_FUZZ_CHECK(isnan(meta.start_time) || isfinite(meta.start_time));
                NS_FUZZ_CHECK(isfinite(meta.fps) && meta.fps >= 0);
            }
        }
        (void)ns_manifest_rows(m);
        ns_manifest_free(m);
    } else {
        NS_FUZZ_CHECK(m == NULL);
        ns_fuzz_check_text(ns_errmsg());
    }
    return 0;
}
