/* status.h -- the one error type of nightshift.
 *
 * Every fallible function returns ns_status and hands results back through
 * out-parameters.  Where an error is found, it is recorded with context via
 * ns_error(), which stores a thread-local message and returns the code:
 *
 *     return ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
 *
 * Callers that add context use ns_error_wrap(), which prefixes the message
 * already recorded.  Only main and cmd_* print ns_errmsg().
 */
#ifndef NIGHTSHIFT_STATUS_H
#define NIGHTSHIFT_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ns_status {
    NS_OK = 0,
    NS_ERR_USAGE,       /* bad option or argument */
    NS_ERR_IO,          /* read/write/open failed */
    NS_ERR_NOMEM,       /* allocation failed */
    NS_ERR_FORMAT,      /* not our format / unknown format / wrong version */
    NS_ERR_CORRUPT,     /* recognised format, broken content */
    NS_ERR_UNSUPPORTED, /* valid input we do not handle (codec, colour space) */
    NS_ERR_LIMIT,       /* a configured safety limit was exceeded */
    NS_ERR_BUSY,        /* store locked by another writer */
    NS_ERR_NOT_FOUND,   /* named thing does not exist */
    NS_ERR_EXISTS,      /* thing already exists (e.g. duplicate clip) */
    NS_ERR_NODEV,       /* no usable device (GPU) / built without CUDA */
    NS_ERR_INTERNAL,    /* a library call failed in a way we did not expect */
    NS_ERR_INTERRUPTED, /* stopped by a signal; finished work was kept */
    NS_STATUS_COUNT
} ns_status;

/* Short, static description of a code ("I/O error"). */
const char *ns_strerror(ns_status code);

/* Records a formatted message for this thread and returns code. */
ns_status ns_error(ns_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the recorded message with more context ("ingest 'a.tar': ...")
 * and returns code.  If no message is recorded, behaves like ns_error. */
ns_status ns_error_wrap(ns_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Last message recorded on this thread ("" if none). Valid until the next
 * ns_error* call on this thread. */
const char *ns_errmsg(void);

/* Copies the last message into buf (always NUL-terminated). */
void ns_errmsg_copy(char *buf, size_t cap);

void ns_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
