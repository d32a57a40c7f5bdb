#include "nightshift/warn.h"
#include "nightshift/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_warn(ns_warnings *w, const char *fmt, ...)
{
    char raw[1024], buf[1024];
    va_list ap;
    w->n_total++;
    if (w->n_kept >= NS_WARN_KEEP)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    ns_text_show(buf, sizeof buf, raw, (size_t)-1); /* one printable line */
    w->msgs[w->n_kept] = strdup(buf);
    if (w->msgs[w->n_kept])
        w->n_kept++;
}

void ns_warn_merge(ns_warnings *dst, const ns_warnings *src)
{
    for (size_t i = 0; i < src->n_kept; i++)
        ns_warn(dst, "%s", src->msgs[i]);
    dst->n_total += src->n_total - src->n_kept;
}

void ns_warnings_release(ns_warnings *w)
{
    for (size_t i = 0; i < w->n_kept; i++)
        free(w->msgs[i]);
    memset(w, 0, sizeof *w);
}
