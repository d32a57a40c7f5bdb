#include "nightshift/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NS_ERRMSG_CAP 2048

/* Thread-local so OpenMP decode workers never clobber each other's context. */
static _Thread_local char tls_msg[NS_ERRMSG_CAP];

static const char *const names[NS_STATUS_COUNT] = {
    [NS_OK] = "ok",
    [NS_ERR_USAGE] = "usage error",
    [NS_ERR_IO] = "I/O error",
    [NS_ERR_NOMEM] = "out of memory",
    [NS_ERR_FORMAT] = "unrecognised format",
    [NS_ERR_CORRUPT] = "corrupt data",
    [NS_ERR_UNSUPPORTED] = "unsupported",
    [NS_ERR_LIMIT] = "limit exceeded",
    [NS_ERR_BUSY] = "busy",
    [NS_ERR_NOT_FOUND] = "not found",
    [NS_ERR_EXISTS] = "already exists",
    [NS_ERR_NODEV] = "no device",
    [NS_ERR_INTERNAL] = "internal error",
    [NS_ERR_INTERRUPTED] = "interrupted",
};

const char *ns_strerror(ns_status code)
{
    if ((unsigned)code >= NS_STATUS_COUNT)
        return "unknown status";
    return names[code];
}

ns_status ns_error(ns_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    return code;
}

ns_status ns_error_wrap(ns_status code, const char *fmt, ...)
{
    char prefix[NS_ERRMSG_CAP];
    char joined[2 * NS_ERRMSG_CAP + 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (tls_msg[0] == '\0') {
        snprintf(tls_msg, sizeof tls_msg, "%s", prefix);
        return code;
    }
    {
        size_t pl = strlen(prefix), ol = strlen(tls_msg);
        memcpy(joined, prefix, pl);
        memcpy(joined + pl, ": ", 2);
        memcpy(joined + pl + 2, tls_msg, ol + 1);
        if (pl + 2 + ol >= sizeof tls_msg)
            joined[sizeof tls_msg - 1] = '\0';
        memcpy(tls_msg, joined, sizeof tls_msg);
    }
    return code;
}

const char *ns_errmsg(void)
{
    return tls_msg;
}

void ns_errmsg_copy(char *buf, size_t cap)
{
    if (cap == 0)
        return;
    snprintf(buf, cap, "%s", tls_msg);
}

void ns_error_clear(void)
{
    tls_msg[0] = '\0';
}
