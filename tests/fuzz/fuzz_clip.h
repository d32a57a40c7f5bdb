/* fuzz_clip.h -- the clip container targets (AVI, MJPEG, archive) share the
 * checks made on whatever a parser accepts: every frame lies inside the
 * clip's data and starts with a JPEG SOI, every name is inside the names. */
#ifndef NS_FUZZ_CLIP_H
#define NS_FUZZ_CLIP_H

#include "../../src/io/clip_internal.h"
#include "fuzz_util.h"

/* Small caps so the fuzzer explores limits instead of exhausting memory. */
static inline void ns_fuzz_clip_limits(ns_clip_limits *lim)
{
    ns_clip_limits_default(lim);
    lim->max_entry_bytes = 4u << 20;
    lim->max_total_bytes = 32u << 20;
    lim->max_entries = 20000;
    lim->max_frames = 20000;
}

static inline void ns_fuzz_clip_check(const ns_clip *c, int need_soi)
{
    for (size_t i = 0; i < c->n_frames; i++) {
        const ns_clip_frame *f = &c->frames[i];
        NS_FUZZ_CHECK(c->data != NULL || f->size == 0);
        NS_FUZZ_CHECK(f->offset <= c->data_len && f->size <= c->data_len - f->offset);
        NS_FUZZ_CHECK(f->name_off < c->names_len);
        NS_FUZZ_CHECK(memchr(c->names + f->name_off, '\0', c->names_len - f->name_off));
        if (need_soi && f->size >= 2)
            NS_FUZZ_CHECK(c->data[f->offset] == 0xFF && c->data[f->offset + 1] == 0xD8);
        /* Touch every byte: ASan sees a frame that points outside its buffer. */
        volatile uint8_t sink = 0;
        for (uint64_t k = 0; k < f->size; k += 97)
            sink ^= c->data[f->offset + k];
        if (f->size)
            sink ^= c->data[f->offset + f->size - 1];
        (void)sink;
    }
    for (size_t i = 0; i < c->warn.n_kept; i++)
        ns_fuzz_check_text(c->warn.msgs[i]);
}

/* One input through a stream parser (AVI or MJPEG) that maps the whole file:
 * the clip is reused across inputs, as ingest reuses one. */
typedef ns_status (*ns_fuzz_stream_parser)(ns_clip *, const uint8_t *, size_t,
                                           const ns_clip_limits *);
static inline void ns_fuzz_clip_stream(const uint8_t *data, size_t n, const char *path,
                                       ns_clip_format fmt, ns_fuzz_stream_parser parse,
                                       int need_soi)
{
    static ns_clip c;
    ns_clip_limits lim;
    ns_fuzz_clip_limits(&lim);
    snprintf(c.path, sizeof c.path, "%s", path);
    c.format = fmt;
    c.file_bytes = n;
    c.n_frames = 0;
    c.names_len = 0;
    ns_warnings_release(&c.warn);
    ns_status st = parse(&c, data, n, &lim);
    c.data = data;
    c.data_len = n;
    if (st == NS_OK)
        ns_fuzz_clip_check(&c, need_soi);
    else
        ns_fuzz_check_text(ns_errmsg());
    c.data = NULL;
    c.data_len = 0;
}

#endif
