/* thumb.c -- inline JPEG thumbnails for the report page.
 *
 * A frame is read from the store by view row, area-downscaled to the
 * thumbnail size (never upscaled: a 16 px store gives 16 px thumbnails, the
 * page scales them with CSS), JPEG-encoded and written as a base64 data URI.
 * All buffers are sized once for the largest case and reused; a budget caps
 * how many thumbnails one page holds, which is what bounds its size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "nightshift/image.h"
#include "report_internal.h"

struct ns_thumbs {
    ns_store *store;
    int S, T, D, quality, left; /* D: displayed size (CSS px) */
    tjhandle tj;
    uint8_t *frame;          /* (S, S, 3) */
    uint8_t *small;          /* (T, T, 3) */
    unsigned char *jpg;      /* tjBufSize(T, T, 420) */
    unsigned long jpg_cap;
    char *b64;               /* base64 of jpg_cap bytes + NUL */
    ns_resize_cache *rc;
};

ns_status ns_thumbs_create(ns_store *s, int thumb_size, int quality, int budget,
                           ns_thumbs **out)
{
    ns_status st = NS_OK;
    ns_thumbs *t = calloc(1, sizeof *t);
    size_t fb, tb;
    *out = NULL;
    if (!t)
        return ns_error(NS_ERR_NOMEM, "out of memory for thumbnails");
    t->store = s;
    t->left = budget > 0 ? budget : 0;
    t->quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    if (!s || t->left == 0) {
        t->left = 0;
        *out = t;
        return NS_OK;
    }
    t->S = ns_store_frame_size(s);
    t->T = thumb_size < 8 ? 8 : thumb_size > 512 ? 512 : thumb_size;
    t->D = t->T;
    if (t->T > t->S)
        t->T = t->S;
    fb = (size_t)t->S * (size_t)t->S * 3;
    tb = (size_t)t->T * (size_t)t->T * 3;
    t->jpg_cap = tjBufSize(t->T, t->T, TJSAMP_420);
    t->frame = malloc(fb);
    t->small = malloc(tb);
    t->jpg = tjAlloc((int)t->jpg_cap);
    t->b64 = malloc((t->jpg_cap + 2) / 3 * 4 + 1);
    if (!t->frame || !t->small || !t->jpg || !t->b64) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for thumbnails");
        goto done;
    }
    if ((st = ns_resize_cache_create(&t->rc)) != NS_OK)
        goto done;
    t->tj = tjInitCompress();
    if (!t->tj) {
        st = ns_error(NS_ERR_INTERNAL, "cannot start the JPEG encoder: %s",
                      tjGetErrorStr2(NULL));
        goto done;
    }
done:
    if (st != NS_OK)
        ns_thumbs_free(t);
    else
        *out = t;
    return st;
}

void ns_thumbs_free(ns_thumbs *t)
{
    if (!t)
        return;
    if (t->tj)
        tjDestroy(t->tj);
    if (t->jpg)
        tjFree(t->jpg);
    ns_resize_cache_free(t->rc);
    free(t->frame);
    free(t->small);
    free(t->b64);
    free(t);
}

int ns_thumbs_left(const ns_thumbs *t)
{
    return t ? t->left : 0;
}

static size_t base64(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = A[v >> 18 & 63];
        out[o++] = A[v >> 12 & 63];
        out[o++] = A[v >> 6 & 63];
        out[o++] = A[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0u);
        out[o++] = A[v >> 18 & 63];
        out[o++] = A[v >> 12 & 63];
        out[o++] = i + 1 < n ? A[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static void placeholder(ns_strbuf *sb, const char *why)
{
    ns_strbuf_printf(sb, "<span class=\"nothumb\">%s</span>", why);
}

ns_status ns_thumbs_img(ns_thumbs *t, uint64_t row, const char *alt, ns_strbuf *sb)
{
    unsigned long size = t->jpg_cap;
    unsigned char *jpg = t->jpg;
    size_t n64;
    if (t->left <= 0) {
        placeholder(sb, t->store ? "thumbnail budget spent" : "no thumbnail");
        return NS_OK;
    }
    /* A frame that cannot be read costs a picture, not the report. */
    if (ns_store_read_frames(t->store, row, 1, t->frame) != NS_OK) {
        ns_error_clear();
        placeholder(sb, "frame unreadable");
        return NS_OK;
    }
    if (ns_resize_area_cached(t->rc, t->frame, t->S, t->S, (size_t)t->S * 3, t->small, t->T,
                              t->T, (size_t)t->T * 3) != NS_OK)
        return ns_error(NS_ERR_NOMEM, "out of memory resizing a thumbnail");
    if (tjCompress2(t->tj, t->small, t->T, t->T * 3, t->T, TJPF_RGB, &jpg, &size, TJSAMP_420,
                    t->quality, TJFLAG_NOREALLOC) != 0)
        return ns_error(NS_ERR_INTERNAL, "cannot encode a thumbnail: %s",
                        tjGetErrorStr2(t->tj));
    n64 = base64(jpg, size, t->b64);
    ns_strbuf_printf(sb, "<img class=\"thumb\" width=\"%d\" height=\"%d\" alt=\"", t->D, t->D);
    ns_report_html_escape(sb, alt ? alt : "");
    ns_strbuf_printf(sb, "\" src=\"data:image/jpeg;base64,");
    ns_strbuf_append(sb, t->b64, n64);
    ns_strbuf_append(sb, "\">", 2);
    t->left--;
    return ns_strbuf_status(sb);
}
