/* clip_stream.c -- clips whose frames point into the mapped file: raw MJPEG
 * streams (concatenated JPEGs) and RIFF AVI with MJPEG video.
 *
 * Both parsers bound every length against the buffer before using it; the
 * bytes are hostile until proven otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clip_internal.h"

/* ---- MJPEG ------------------------------------------------------------------- */

enum jpeg_end { JPEG_EOI, JPEG_TRUNCATED, JPEG_INTERRUPTED, JPEG_MALFORMED };

static int is_soi(const uint8_t *p, size_t n, size_t i)
{
    return n - i >= 3 && p[i] == 0xFF && p[i + 1] == 0xD8 && p[i + 2] == 0xFF;
}

/* Offset of the next FF D8 FF at or after from, or n. */
static size_t find_soi(const uint8_t *p, size_t n, size_t from)
{
    while (from < n) {
        const uint8_t *q = memchr(p + from, 0xFF, n - from);
        if (!q)
            return n;
        from = (size_t)(q - p);
        if (is_soi(p, n, from))
            return from;
        from++;
    }
    return n;
}

/* Length of the JPEG starting with SOI at p[0], walking marker segments so
 * that FF D9 bytes inside segments or stuffed entropy data cannot end it
 * early.  *why says how it ended; *at is where a problem was seen. */
static size_t jpeg_extent(const uint8_t *p, size_t n, enum jpeg_end *why, size_t *at)
{
    size_t pos = 2;
    for (;;) {
        size_t mk;
        unsigned m, len;
        if (pos >= n)
            goto truncated;
        if (p[pos] != 0xFF) {
            *at = pos;
            *why = JPEG_MALFORMED;
            return find_soi(p, n, pos);
        }
        while (pos < n && p[pos] == 0xFF) /* fill bytes */
            pos++;
        if (pos >= n)
            goto truncated;
        mk = pos - 1;
        m = p[pos++];
        if (m == 0xD9) {
            *why = JPEG_EOI;
            return pos;
        }
        if (m == 0xD8) { /* the next frame starts before this one ended */
            *at = mk;
            *why = JPEG_INTERRUPTED;
            return mk;
        }
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01)
            continue; /* standalone markers */
        if (m == 0x00) {
            *at = mk;
            *why = JPEG_MALFORMED;
            return find_soi(p, n, pos);
        }
        if (n - pos < 2)
            goto truncated;
        len = (unsigned)p[pos] << 8 | p[pos + 1];
        if (len < 2) {
            *at = mk;
            *why = JPEG_MALFORMED;
            return find_soi(p, n, pos);
        }
        if (len > n - pos)
            goto truncated;
        pos += len;
        if (m != 0xDA)
            continue;
        /* Entropy-coded data: runs until a marker other than FF00 or RSTn. */
        for (;;) {
            const uint8_t *q = pos < n ? memchr(p + pos, 0xFF, n - pos) : NULL;
            uint8_t nx;
            if (!q)
                goto truncated;
            pos = (size_t)(q - p);
            if (pos + 1 >= n)
                goto truncated;
            nx = p[pos + 1];
            if (nx == 0x00 || (nx >= 0xD0 && nx <= 0xD7))
                pos += 2;
            else if (nx == 0xFF)
                pos++;
            else
                break;
        }
    }
truncated:
    *at = n;
    *why = JPEG_TRUNCATED;
    return n;
}

ns_status ns_clip_parse_mjpeg_(ns_clip *c, const uint8_t *p, size_t n,
                               const ns_clip_limits *lim)
{
    size_t pos = 0;
    ns_status st = NS_OK;
    while (pos < n) {
        char name[32];
        int len;
        size_t end, at = 0, idx = c->n_frames;
        enum jpeg_end why;
        if (!is_soi(p, n, pos)) {
            size_t next = find_soi(p, n, pos);
            if (next >= n) {
                ns_warn(&c->warn, "'%s': ignored %zu trailing bytes at offset %zu", c->path,
                        n - pos, pos);
                break;
            }
            ns_warn(&c->warn, "'%s': skipped %zu bytes of garbage at offset %zu", c->path,
                    next - pos, pos);
            pos = next;
        }
        end = pos + jpeg_extent(p + pos, n - pos, &why, &at);
        len = snprintf(name, sizeof name, "#%zu", idx);
        st = ns_clip_add_frame_(c, lim, pos, end - pos, name, (size_t)len, (int64_t)idx);
        if (st != NS_OK)
            goto done;
        if (why == JPEG_TRUNCATED)
            ns_warn(&c->warn, "'%s': frame #%zu at offset %zu is truncated (no EOI)", c->path,
                    idx, pos);
        else if (why == JPEG_INTERRUPTED)
            ns_warn(&c->warn, "'%s': frame #%zu at offset %zu is cut short by the next frame",
                    c->path, idx, pos);
        else if (why == JPEG_MALFORMED)
            ns_warn(&c->warn, "'%s': frame #%zu at offset %zu: malformed JPEG marker at offset %zu",
                    c->path, idx, pos, pos + at);
        pos = end;
    }
    if (c->n_frames == 0) /* unreachable: detection saw an SOI at offset 0 */
        st = ns_error(NS_ERR_CORRUPT, "'%s': MJPEG stream has no frames", c->path);
done:
    return st;
}

/* ---- AVI --------------------------------------------------------------------- */

#define AVI_MAX_DEPTH 16

enum avi_where { IN_RIFF, IN_HDRL, IN_STRL, IN_MOVI };

typedef struct avi_state {
    ns_clip *c;
    const ns_clip_limits *lim;
    const uint8_t *p;
    size_t n;
    ns_status st;
    int stop;           /* a chunk ran past the end of the file */
    int n_strl;         /* strl lists seen: the stream number of the next one */
    int cur_strl;       /* stream number of the strl being walked */
    int vid;            /* stream number of the video stream, -1 until found */
    int checked;        /* codec verified */
    uint8_t codec[4];   /* biCompression, else strh fccHandler */
    int have_bih;
    uint32_t us_per_frame, rate, scale;
    int32_t avih_w, avih_h, bih_w, bih_h;
    char tag[2];        /* the video stream's two digits, e.g. "00" */
} avi_state;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fourcc_is(const uint8_t *p, const char *s) { return memcmp(p, s, 4) == 0; }

static ns_status check_codec(avi_state *s)
{
    static const char *const ok[] = {"MJPG", "mjpg", "JPEG", "jpeg", "AVRn", "dmb1"};
    char esc[24];
    s->checked = 1;
    if (s->vid < 0)
        return ns_error(NS_ERR_CORRUPT, "'%s': AVI has no video stream header", s->c->path);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (fourcc_is(s->codec, ok[i]))
            return NS_OK;
    return ns_error(NS_ERR_UNSUPPORTED,
                    "'%s': unsupported codec %s (only MJPEG AVI is supported)", s->c->path,
                    ns_clip_esc_((const char *)s->codec, 4, esc, sizeof esc));
}

static void leaf(avi_state *s, enum avi_where where, const uint8_t *id, size_t off,
                 const uint8_t *d, uint32_t size)
{
    if (where == IN_HDRL && fourcc_is(id, "avih") && size >= 40) {
        s->us_per_frame = le32(d);
        s->avih_w = (int32_t)le32(d + 32);
        s->avih_h = (int32_t)le32(d + 36);
    } else if (where == IN_STRL && fourcc_is(id, "strh") && size >= 28) {
        if (s->vid < 0 && fourcc_is(d, "vids")) {
            s->vid = s->cur_strl;
            memcpy(s->codec, d + 4, 4);
            s->scale = le32(d + 20);
            s->rate = le32(d + 24);
        }
    } else if (where == IN_STRL && fourcc_is(id, "strf") && size >= 20 &&
               s->vid == s->cur_strl && !s->have_bih) {
        s->have_bih = 1;
        s->bih_w = (int32_t)le32(d + 4);
        s->bih_h = (int32_t)le32(d + 8);
        memcpy(s->codec, d + 16, 4);
    } else if (where == IN_MOVI && id[0] == (uint8_t)s->tag[0] && id[1] == (uint8_t)s->tag[1] &&
               id[2] == 'd' && (id[3] == 'c' || id[3] == 'b')) {
        char name[32];
        size_t idx = s->c->n_frames;
        int len;
        if (size == 0) /* a dropped frame: the previous one repeats */
            return;
        len = snprintf(name, sizeof name, "#%zu", idx);
        s->st = ns_clip_add_frame_(s->c, s->lim, off, size, name, (size_t)len, (int64_t)idx);
    }
}

/* Walks the chunks in p[pos..end). */
static void walk(avi_state *s, size_t pos, size_t end, enum avi_where where, int depth)
{
    while (s->st == NS_OK && !s->stop && end - pos >= 8) {
        const uint8_t *id = s->p + pos;
        uint32_t size = le32(s->p + pos + 4);
        size_t body = pos + 8, stop_at;
        int is_list = fourcc_is(id, "LIST");
        if (size > s->n - body) {
            ns_warn(&s->c->warn, "'%s': chunk at offset %zu claims %" PRIu32
                    " bytes, past end of file", s->c->path, pos, size);
            s->stop = 1;
            if (!is_list) /* a frame cut by the end of file is dropped */
                return;
            stop_at = s->n; /* a cut list still holds whole frames before the cut */
        } else if (size > end - body) {
            ns_warn(&s->c->warn, "'%s': chunk at offset %zu claims %" PRIu32
                    " bytes, past the end of its list", s->c->path, pos, size);
            stop_at = end;
        } else {
            stop_at = body + size;
        }
        if (is_list && stop_at - body >= 4 && depth < AVI_MAX_DEPTH) {
            const uint8_t *type = s->p + body;
            int was_stopped = s->stop;
            s->stop = 0;
            if (where == IN_RIFF && fourcc_is(type, "hdrl")) {
                walk(s, body + 4, stop_at, IN_HDRL, depth + 1);
            } else if (where == IN_HDRL && fourcc_is(type, "strl")) {
                s->cur_strl = s->n_strl++;
                walk(s, body + 4, stop_at, IN_STRL, depth + 1);
                s->cur_strl = -1;
            } else if (where == IN_RIFF && fourcc_is(type, "movi")) {
                if (!s->checked) {
                    s->st = check_codec(s);
                    if (s->st != NS_OK)
                        return;
                    s->tag[0] = (char)('0' + s->vid / 10 % 10);
                    s->tag[1] = (char)('0' + s->vid % 10);
                }
                walk(s, body + 4, stop_at, IN_MOVI, depth + 1);
            } else if (where == IN_MOVI && fourcc_is(type, "rec ")) {
                walk(s, body + 4, stop_at, IN_MOVI, depth + 1);
            }
            s->stop |= was_stopped;
        } else if (!is_list) {
            leaf(s, where, id, body, s->p + body, (uint32_t)(stop_at - body));
        }
        if (stop_at >= end || end - stop_at < (size & 1u))
            return;
        pos = stop_at + (size & 1u); /* odd chunks are padded to even */
    }
}

ns_status ns_clip_parse_avi_(ns_clip *c, const uint8_t *p, size_t n, const ns_clip_limits *lim)
{
    avi_state s = {.c = c, .lim = lim, .p = p, .n = n, .vid = -1, .cur_strl = -1};
    size_t pos = 0;
    int first = 1;
    /* The first RIFF 'AVI ' and any OpenDML 'AVIX' continuations after it. */
    while (s.st == NS_OK && !s.stop && n - pos >= 12) {
        uint32_t size = le32(p + pos + 4);
        size_t end;
        if (!fourcc_is(p + pos, "RIFF") || !fourcc_is(p + pos + 8, first ? "AVI " : "AVIX")) {
            ns_warn(&c->warn, "'%s': ignored %zu bytes after the AVI data at offset %zu",
                    c->path, n - pos, pos);
            break;
        }
        if (size < 4) {
            /* Some live writers never patch the RIFF size; read what is there. */
            ns_warn(&c->warn, "'%s': RIFF at offset %zu has size %" PRIu32
                    "; reading to end of file", c->path, pos, size);
            end = n;
        } else if (size > n - pos - 8) {
            ns_warn(&c->warn, "'%s': chunk at offset %zu claims %" PRIu32
                    " bytes, past end of file", c->path, pos, size);
            end = n;
        } else {
            end = pos + 8 + size;
        }
        walk(&s, pos + 12, end, IN_RIFF, 0);
        first = 0;
        if (end >= n || n - end < (size & 1u))
            break;
        pos = end + (size & 1u);
    }
    if (s.st != NS_OK)
        return s.st;
    if (!s.checked && (s.st = check_codec(&s)) != NS_OK)
        return s.st;
    if (s.rate && s.scale)
        c->fps = (double)s.rate / (double)s.scale;
    else if (s.us_per_frame)
        c->fps = 1e6 / (double)s.us_per_frame;
    /* avih first; BITMAPINFOHEADER height is negative for top-down bitmaps. */
    c->header_width = s.avih_w > 0 ? s.avih_w : (s.bih_w > 0 ? s.bih_w : 0);
    if (s.avih_h > 0)
        c->header_height = s.avih_h;
    else if (s.bih_h != INT32_MIN)
        c->header_height = s.bih_h < 0 ? -s.bih_h : s.bih_h;
    if (c->n_frames == 0)
        return ns_error(NS_ERR_CORRUPT, "'%s': AVI has no video frames", c->path);
    return NS_OK;
}
