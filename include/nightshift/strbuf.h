/* strbuf.h -- a growable string for building JSON, CSV and messages. */
#ifndef NIGHTSHIFT_STRBUF_H
#define NIGHTSHIFT_STRBUF_H

#include <stddef.h>

#include "nightshift/status.h"

typedef struct ns_strbuf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    int oom;    /* set when an append failed; later appends are no-ops */
} ns_strbuf;

void ns_strbuf_printf(ns_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ns_strbuf_append(ns_strbuf *b, const char *s, size_t n);
/* Appends s as a JSON string literal, quotes included (RFC 8259 escaping;
 * invalid UTF-8 bytes become U+FFFD so the output is always valid JSON). */
void ns_strbuf_json_str(ns_strbuf *b, const char *s);
/* Appends a number as JSON (non-finite values become null), locale-independent. */
void ns_strbuf_json_num(ns_strbuf *b, double v);
/* Offset of the first byte of s (NUL-terminated) that does not start a
 * valid UTF-8 sequence (overlong forms and surrogates included), or
 * (size_t)-1 when s is valid UTF-8. */
size_t ns_utf8_invalid_at(const char *s);
/* Copies at most max_bytes of untrusted text into dst (cap bytes, at least
 * 4 * max_bytes + 4 to never cut an escape) for a terminal or log line:
 * control characters and invalid UTF-8 as \xNN, "..." when cut. */
void ns_text_show(char *dst, size_t cap, const char *src, size_t max_bytes);
/* The same for a message argument: ns_show(s).s is the first 64 bytes of s
 * (NULL: ""), escaped; valid until the end of the full expression. */
typedef struct ns_shown {
    char s[4 * 64 + 8];
} ns_shown;
ns_shown ns_show(const char *s);
/* NS_ERR_NOMEM if any append failed. */
ns_status ns_strbuf_status(const ns_strbuf *b);
void ns_strbuf_release(ns_strbuf *b);

#endif
