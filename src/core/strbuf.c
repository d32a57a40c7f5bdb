#include "nightshift/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(ns_strbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (b->oom)
        return 0;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void ns_strbuf_append(ns_strbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ns_strbuf_printf(ns_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s, or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))
            return 0; /* overlong or surrogate */
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

size_t ns_utf8_invalid_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n;
    while (p[i]) {
        if ((n = utf8_len(p + i)) == 0)
            return i;
        i += n;
    }
    return (size_t)-1;
}

void ns_strbuf_json_str(ns_strbuf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    ns_strbuf_append(b, "\"", 1);
    while (*s) {
        size_t n;
        if (*s == '"' || *s == '\\') {
            char esc[2] = {'\\', (char)*s};
            ns_strbuf_append(b, esc, 2);
            s++;
        } else if (*s < 0x20 || *s == 0x7F) {
            ns_strbuf_printf(b, "\\u%04x", *s);
            s++;
        } else if ((n = utf8_len(s)) > 0) {
            ns_strbuf_append(b, (const char *)s, n);
            s += n;
        } else {
            ns_strbuf_append(b, "\\ufffd", 6);
            s++;
        }
    }
    ns_strbuf_append(b, "\"", 1);
}

void ns_strbuf_json_num(ns_strbuf *b, double v)
{
    char tmp[64];
    if (!isfinite(v)) {
        ns_strbuf_append(b, "null", 4);
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        ns_strbuf_printf(b, "%lld", (long long)v);
        return;
    }
    /* Ten significant digits suit reports; nightshift never calls setlocale,
     * but a decimal comma must never reach JSON, so guard anyway. */
    snprintf(tmp, sizeof tmp, "%.10g", v);
    for (char *p = tmp; *p; p++)
        if (*p == ',')
            *p = '.';
    ns_strbuf_append(b, tmp, strlen(tmp));
}

ns_status ns_strbuf_status(const ns_strbuf *b)
{
    return b->oom ? ns_error(NS_ERR_NOMEM, "out of memory building text") : NS_OK;
}

void ns_strbuf_release(ns_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void ns_text_show(char *dst, size_t cap, const char *src, size_t max_bytes)
{
    size_t o = 0, i = 0;
    const unsigned char *p = (const unsigned char *)src;
    if (cap == 0)
        return;
    while (p[i] && i < max_bytes && o + 8 < cap) {
        unsigned char c = p[i];
        size_t n = 1;
        if (c >= 0x80) {
            char tmp[5] = {0};
            for (n = 0; n < 4 && p[i + n] && (n == 0 || (p[i + n] & 0xC0) == 0x80); n++)
                tmp[n] = (char)p[i + n];
            /* Re-check the sequence on its own bytes. */
            size_t bad = ns_utf8_invalid_at(tmp);
            n = bad == (size_t)-1 ? n : (bad == 0 ? 0 : bad);
        }
        if (c < 0x20 || c == 0x7f || n == 0) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
            i++;
            continue;
        }
        /* U+0080-U+009F are C1 controls (U+009B is CSI, a terminal escape)
         * though valid UTF-8: escaped byte by byte too. */
        if (c == 0xC2 && n == 2 && p[i + 1] <= 0x9F) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x\\x%02x", c, p[i + 1]);
            i += 2;
            continue;
        }
        memcpy(dst + o, p + i, n);
        o += n;
        i += n;
    }
    if (p[i] && o + 4 <= cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o < cap ? o : cap - 1] = '\0';
}

ns_shown ns_show(const char *s)
{
    ns_shown o;
    ns_text_show(o.s, sizeof o.s, s ? s : "", 64);
    return o;
}
