/* fuzz_archive.c -- libFuzzer target: the archive member walk of
 * src/io/clip_archive.c (tar in any compression libarchive detects, and zip),
 * zero-copy pass and copying fall-back, then the natural-order sort. */
#include "fuzz_clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static ns_clip c; /* reused across inputs, as ingest reuses one clip */
    ns_clip_limits lim;
    ns_fuzz_clip_limits(&lim);
    snprintf(c.path, sizeof c.path, "fuzz.tar");
    c.format = ns_clip_sniff_(data, n);
    if (c.format != NS_CLIP_ZIP)
        c.format = NS_CLIP_TAR;
    snprintf(c.container, sizeof c.container, "%s", c.format == NS_CLIP_ZIP ? "zip" : "tar");
    c.file_bytes = n;
    c.n_frames = 0;
    c.names_len = 0;
    c.data = NULL;
    c.data_len = 0;
    ns_warnings_release(&c.warn);
    ns_status st = ns_clip_parse_archive_(&c, data, n, &lim);
    if (st == NS_OK) {
        ns_clip_sort_frames_(&c);
        if (!c.data) {
            c.data = c.owned_;
        }
        ns_fuzz_clip_check(&c, 1);
        for (size_t i = 1; i < c.n_frames; i++)
            NS_FUZZ_CHECK(ns_natural_cmp(c.names + c.frames[i - 1].name_off,
                                         c.names + c.frames[i].name_off) <= 0);
    } else {
        ns_fuzz_check_text(ns_errmsg());
    }
    c.data = NULL;
    c.data_len = 0;
    return 0;
}
