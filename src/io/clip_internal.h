/* clip_internal.h -- shared between clip.c, clip_archive.c and clip_stream.c;
 * not part of the public contract.
 *
 * The container parsers fill an ns_clip whose path, sha256 and file_bytes are
 * already set, appending frames through ns_clip_add_frame_ so that buffer
 * growth and the frame limit live in one place.
 */
#ifndef NIGHTSHIFT_CLIP_INTERNAL_H
#define NIGHTSHIFT_CLIP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/clip.h"

/* Format from the first bytes of a file (n may be short). */
ns_clip_format ns_clip_sniff_(const uint8_t *p, size_t n);

/* Makes c->owned_ hold at least need bytes; contents are kept. */
ns_status ns_clip_reserve_data_(ns_clip *c, size_t need);

/* Appends a frame (bytes at c->data + off once the parser sets c->data) and
 * its name (name_len bytes, need not be NUL-terminated).  NS_ERR_LIMIT past
 * lim->max_frames. */
ns_status ns_clip_add_frame_(ns_clip *c, const ns_clip_limits *lim, uint64_t off,
                             uint64_t size, const char *name, size_t name_len,
                             int64_t number);

/* Sorts c->frames by ns_natural_cmp of their names; equal names keep their
 * insertion order.  Allocates nothing. */
void ns_clip_sort_frames_(ns_clip *c);

/* Value of the last digit run in the base name (after the last '/' or '\'),
 * -1 when there is none or it does not fit in int64. */
int64_t ns_clip_name_number_(const char *name);

/* Copies n bytes of s into out (cap bytes, always NUL-terminated), escaping
 * control bytes as \xNN so hostile member names cannot drive a terminal;
 * long names are cut with "...".  Returns out. */
const char *ns_clip_esc_(const char *s, size_t n, char *out, size_t cap);

/* "64 MiB" / "1 GiB" / "1000 bytes" for limit messages. */
const char *ns_clip_fmt_bytes_(uint64_t v, char *out, size_t cap);

/* Parsers: buf/n is the whole mapped file. */
ns_status ns_clip_parse_archive_(ns_clip *c, const uint8_t *buf, size_t n,
                                 const ns_clip_limits *lim);
ns_status ns_clip_parse_mjpeg_(ns_clip *c, const uint8_t *buf, size_t n,
                               const ns_clip_limits *lim);
ns_status ns_clip_parse_avi_(ns_clip *c, const uint8_t *buf, size_t n,
                             const ns_clip_limits *lim);

#endif
