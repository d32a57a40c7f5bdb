#include "nightshift/status.h"
#include "nightshift/strbuf.h"

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

/* Every recorded message is one printable line: a message carries file
 * names, camera ids and library text (HDF5's run to several lines), and it
 * ends up on a terminal, in a log and in JSON.  Control characters and
 * invalid UTF-8 become \\xNN (ns_text_show, the one escape for such text). */
static void set_msg(const char *raw)
{
    ns_text_show(tls_msg, sizeof tls_msg, raw, (size_t)-1);
}

ns_status ns_error(ns_status code, const char *fmt, ...)
{
    char raw[NS_ERRMSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    set_msg(raw);
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
        set_msg(prefix);
        return code;
    }
    {
        size_t pl = strlen(prefix), ol = strlen(tls_msg);
        memcpy(joined, prefix, pl);
        memcpy(joined + pl, ": ", 2);
        memcpy(joined + pl + 2, tls_msg, ol + 1);
        set_msg(joined); /* the old part is escaped already: a no-op on it */
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
