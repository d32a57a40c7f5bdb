/* warn.h -- a bounded list of warning messages collected by library code.
 *
 * Library code never prints; it records what went wrong with one frame or
 * member here, and the command prints or summarises the list.  The list
 * keeps the first NS_WARN_KEEP messages and counts the rest, so a clip with
 * a million broken frames cannot exhaust memory.
 */
#ifndef NIGHTSHIFT_WARN_H
#define NIGHTSHIFT_WARN_H

#include <stddef.h>

#define NS_WARN_KEEP 64

typedef struct ns_warnings {
    char *msgs[NS_WARN_KEEP]; /* owned, NUL-terminated */
    size_t n_kept;
    size_t n_total;           /* kept + dropped */
} ns_warnings;

/* Records one warning; never fails (a failed allocation only drops text). */
void ns_warn(ns_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends all of src's messages to dst (counts included). */
void ns_warn_merge(ns_warnings *dst, const ns_warnings *src);
void ns_warnings_release(ns_warnings *w); /* caller-owned struct: frees messages, zeroes */

#endif
