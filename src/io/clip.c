/* clip.c -- format detection, the load entry point (map, hash, dispatch),
 * buffer growth shared by the parsers, natural order and release. */
#include "nightshift/clip.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clip_internal.h"

#define SNIFF_BYTES 512 /* covers the "ustar" magic at offset 257 */

void ns_clip_limits_default(ns_clip_limits *lim)
{
    lim->max_entry_bytes = 64ull << 20;
    lim->max_total_bytes = 4ull << 30;
    lim->max_entries = 1000000;
    lim->max_frames = 1000000;
}

/* ---- detection ------------------------------------------------------------- */

ns_clip_format ns_clip_sniff_(const uint8_t *p, size_t n)
{
    static const uint8_t xz[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
    static const uint8_t zstd[4] = {0x28, 0xB5, 0x2F, 0xFD};
    if (n >= 4 && p[0] == 'P' && p[1] == 'K' &&
        ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
        return NS_CLIP_ZIP;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "AVI ", 4) == 0)
        return NS_CLIP_AVI;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return NS_CLIP_MJPEG;
    if ((n >= 2 && p[0] == 0x1F && p[1] == 0x8B) || (n >= 6 && memcmp(p, xz, 6) == 0) ||
        (n >= 4 && memcmp(p, zstd, 4) == 0) || (n >= 3 && memcmp(p, "BZh", 3) == 0) ||
        (n >= 262 && memcmp(p + 257, "ustar", 5) == 0))
        return NS_CLIP_TAR;
    return NS_CLIP_UNKNOWN;
}

static ns_status unknown_format(const char *path, const uint8_t *p, size_t n)
{
    char hex[8 * 3 + 1] = "";
    size_t k = n < 8 ? n : 8, o = 0;
    if (n == 0)
        return ns_error(NS_ERR_FORMAT, "'%s': unrecognised clip format (empty file)", path);
    for (size_t i = 0; i < k; i++)
        o += (size_t)snprintf(hex + o, sizeof hex - o, i ? " %02x" : "%02x", p[i]);
    return ns_error(NS_ERR_FORMAT, "'%s': unrecognised clip format (first bytes %s)", path,
                    hex);
}

ns_status ns_clip_detect(const char *path, ns_clip_format *fmt)
{
    uint8_t head[SNIFF_BYTES];
    size_t n = 0;
    ns_status st = NS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *fmt = NS_CLIP_UNKNOWN;
    if (fd < 0) {
        st = ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    while (n < sizeof head) {
        ssize_t r = read(fd, head + n, sizeof head - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = ns_error(NS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *fmt = ns_clip_sniff_(head, n);
    if (*fmt == NS_CLIP_UNKNOWN)
        st = unknown_format(path, head, n);
done:
    if (fd >= 0)
        close(fd);
    return st;
}

/* ---- buffers shared by the parsers ------------------------------------------ */

/* Grows *buf to hold need elements; doubling keeps repeated loads of similar
 * clips at a fixed capacity after the first. */
static ns_status grow(void **buf, size_t *cap, size_t need, size_t elem, size_t min_cap)
{
    size_t n = *cap;
    void *p;
    if (need <= n)
        return NS_OK;
    if (n < min_cap)
        n = min_cap;
    while (n < need)
        n = n > SIZE_MAX / 2 / elem ? need : n * 2;
    if (n > SIZE_MAX / elem)
        return ns_error(NS_ERR_NOMEM, "clip buffer of %zu x %zu bytes", need, elem);
    p = realloc(*buf, n * elem);
    if (!p)
        return ns_error(NS_ERR_NOMEM, "cannot allocate %zu bytes for a clip", n * elem);
    *buf = p;
    *cap = n;
    return NS_OK;
}

/* The owned frame bytes are tens of MB that every load rewrites.  They live
 * in 2 MiB-aligned blocks marked for huge pages before the first write, so
 * warming a buffer costs a few faults instead of one per 4 KB page (about
 * 12 us each here), and growth never goes through realloc's copy into fresh
 * small pages. */
ns_status ns_clip_reserve_data_(ns_clip *c, size_t need)
{
    const size_t huge = (size_t)2 << 20;
    size_t n = c->owned_cap_ > huge ? c->owned_cap_ : huge;
    void *p = NULL;
    if (need <= c->owned_cap_)
        return NS_OK;
    while (n < need) {
        if (n > SIZE_MAX / 4)
            return ns_error(NS_ERR_NOMEM, "'%s': clip buffer of %zu bytes", c->path, need);
        n *= 2;
    }
    if (posix_memalign(&p, huge, n) != 0)
        return ns_error(NS_ERR_NOMEM, "cannot allocate %zu bytes for clip '%s'", n, c->path);
    madvise(p, n, MADV_HUGEPAGE);
    if (c->owned_cap_)
        memcpy(p, c->owned_, c->owned_cap_);
    free(c->owned_);
    c->owned_ = p;
    c->owned_cap_ = n;
    return NS_OK;
}

ns_status ns_clip_add_frame_(ns_clip *c, const ns_clip_limits *lim, uint64_t off,
                             uint64_t size, const char *name, size_t name_len,
                             int64_t number)
{
    void *p;
    ns_status st;
    if (c->n_frames >= lim->max_frames)
        return ns_error(NS_ERR_LIMIT, "'%s': more than %" PRIu64 " frames (limit --max-frames)",
                        c->path, lim->max_frames);
    p = c->frames;
    st = grow(&p, &c->frames_cap_, c->n_frames + 1, sizeof *c->frames, 256);
    c->frames = p;
    if (st != NS_OK)
        return st;
    p = c->names;
    st = grow(&p, &c->names_cap_, c->names_len + name_len + 1, 1, 4096);
    c->names = p;
    if (st != NS_OK)
        return st;
    memcpy(c->names + c->names_len, name, name_len);
    c->names[c->names_len + name_len] = '\0';
    c->frames[c->n_frames++] = (ns_clip_frame){
        .offset = off, .size = size, .name_off = c->names_len, .number = number};
    c->names_len += name_len + 1;
    return NS_OK;
}

/* ---- names ------------------------------------------------------------------- */

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

int ns_natural_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (*p && *q) {
        if (is_digit(*p) && is_digit(*q)) {
            size_t lp = 0, lq = 0;
            int d;
            while (*p == '0')
                p++;
            while (*q == '0')
                q++;
            while (is_digit(p[lp]))
                lp++;
            while (is_digit(q[lq]))
                lq++;
            if (lp != lq)
                return lp < lq ? -1 : 1;
            d = memcmp(p, q, lp);
            if (d)
                return d < 0 ? -1 : 1;
            p += lp;
            q += lq;
            continue;
        }
        if (*p != *q)
            return *p < *q ? -1 : 1;
        p++;
        q++;
    }
    if (*p || *q)
        return *p ? 1 : -1;
    /* Equal by value ("f01" vs "f1"): fall back to bytes so the order is total. */
    int d = strcmp(a, b);
    return d < 0 ? -1 : d > 0;
}

int64_t ns_clip_name_number_(const char *name)
{
    const char *base = name, *end = NULL, *start;
    int64_t v = 0;
    for (const char *s = name; *s; s++)
        if (*s == '/' || *s == '\\')
            base = s + 1;
    for (const char *s = base; *s; s++)
        if (is_digit((unsigned char)*s))
            end = s + 1;
    if (!end)
        return -1;
    start = end;
    while (start > base && is_digit((unsigned char)start[-1]))
        start--;
    for (const char *s = start; s < end; s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    return v;
}

const char *ns_clip_esc_(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int printable = ch >= 0x20 && ch != 0x7F;
        size_t need = printable ? 1 : 4;
        if (o + need + 4 > cap) {
            if (cap >= 4) {
                if (o > cap - 4)
                    o = cap - 4;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (printable)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
    return out;
}

const char *ns_clip_fmt_bytes_(uint64_t v, char *out, size_t cap)
{
    if (v && v % (1ull << 30) == 0)
        snprintf(out, cap, "%" PRIu64 " GiB", v >> 30);
    else if (v && v % (1ull << 20) == 0)
        snprintf(out, cap, "%" PRIu64 " MiB", v >> 20);
    else
        snprintf(out, cap, "%" PRIu64 " bytes", v);
    return out;
}

/* Heap sort: no scratch allocation, and the name_off tie-break (names are
 * appended in archive order) makes the order total, hence stable. */
static int frame_less(const ns_clip *c, const ns_clip_frame *x, const ns_clip_frame *y)
{
    int d = ns_natural_cmp(c->names + x->name_off, c->names + y->name_off);
    return d < 0 || (d == 0 && x->name_off < y->name_off);
}

static void sift_down(ns_clip *c, size_t i, size_t n)
{
    ns_clip_frame *f = c->frames;
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && frame_less(c, &f[m], &f[l]))
            m = l;
        if (r < n && frame_less(c, &f[m], &f[r]))
            m = r;
        if (m == i)
            return;
        ns_clip_frame t = f[i];
        f[i] = f[m];
        f[m] = t;
        i = m;
    }
}

void ns_clip_sort_frames_(ns_clip *c)
{
    size_t n = c->n_frames, i;
    for (i = 1; i < n && !frame_less(c, &c->frames[i], &c->frames[i - 1]); i++)
        ;
    if (i >= n) /* archives are usually written in order already */
        return;
    for (i = n / 2; i-- > 0;)
        sift_down(c, i, n);
    for (i = n; i-- > 1;) {
        ns_clip_frame t = c->frames[0];
        c->frames[0] = c->frames[i];
        c->frames[i] = t;
        sift_down(c, 0, i);
    }
}

/* ---- load / release ------------------------------------------------------------ */

/* Forgets the previous clip but keeps the growable buffers. */
static void clip_reset(ns_clip *c)
{
    ns_clip keep = *c;
    if (c->map_)
        munmap(c->map_, c->map_len_);
    ns_warnings_release(&c->warn);
    memset(c, 0, sizeof *c);
    c->frames = keep.frames;
    c->frames_cap_ = keep.frames_cap_;
    c->names = keep.names;
    c->names_cap_ = keep.names_cap_;
    c->owned_ = keep.owned_;
    c->owned_cap_ = keep.owned_cap_;
    c->read_ = keep.read_;
    c->read_cap_ = keep.read_cap_;
}

static const char *format_name(ns_clip_format f)
{
    switch (f) {
    case NS_CLIP_MJPEG:
        return "mjpeg";
    case NS_CLIP_AVI:
        return "avi";
    case NS_CLIP_ZIP:
        return "zip";
    case NS_CLIP_TAR:
        return "tar";
    default:
        return "";
    }
}

void ns_clip_lend_buffer(ns_clip *c, uint8_t *buf, size_t cap)
{
    if (c->read_ != buf)
        free(c->read_);
    c->read_ = buf;
    c->read_cap_ = buf ? cap : 0;
}

uint8_t *ns_clip_take_buffer(ns_clip *c, size_t *cap)
{
    uint8_t *p = c->read_;
    *cap = c->read_cap_;
    if (p && c->data == p)
        c->data = NULL;
    c->read_ = NULL;
    c->read_cap_ = 0;
    return p;
}

ns_status ns_clip_load(const char *path, const ns_clip_limits *lim, ns_clip *out)
{
    ns_clip_limits def;
    ns_status st = NS_OK;
    struct stat sb;
    const uint8_t *buf = NULL;
    size_t n = 0;
    int fd = -1;

    clip_reset(out);
    if (!lim) {
        ns_clip_limits_default(&def);
        lim = &def;
    }
    if (strlen(path) >= sizeof out->path) {
        st = ns_error(NS_ERR_USAGE, "clip path too long (%zu bytes): '%.200s...'", strlen(path),
                      path);
        goto done;
    }
    strcpy(out->path, path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    if (fstat(fd, &sb) != 0) {
        st = ns_error(NS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ns_error(NS_ERR_IO, "'%s': not a regular file", path);
        goto done;
    }
    n = (size_t)sb.st_size;
    out->file_bytes = n;
    if (n > 0 && n <= out->read_cap_) {
        if ((st = ns_sha256_fd(fd, path, n, out->read_, out->sha256)) != NS_OK)
            goto done;
        buf = out->read_;
    } else if (n > 0) {
        /* One pass over the disk: populate the mapping, hash it, parse it.
         * Over the mapping: its first touch costs the same whoever makes it
         * (else the decoders), and a read buffer would add a copy. */
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            st = ns_error(NS_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
            goto done;
        }
        out->map_ = m;
        out->map_len_ = n;
        buf = m;
        ns_sha256_buf(buf, n, out->sha256);
    } else {
        ns_sha256_buf(NULL, 0, out->sha256);
    }
    out->format = ns_clip_sniff_(buf, n);
    snprintf(out->container, sizeof out->container, "%s", format_name(out->format));
    switch (out->format) {
    case NS_CLIP_TAR:
    case NS_CLIP_ZIP:
        st = ns_clip_parse_archive_(out, buf, n, lim);
        if (st == NS_OK) {
            ns_clip_sort_frames_(out);
            if (!out->data) {
                /* Members were copied out; the mapping is no longer needed. */
                out->data = out->owned_;
                if (out->map_)
                    munmap(out->map_, out->map_len_);
                out->map_ = NULL;
                out->map_len_ = 0;
            }
        }
        break;
    case NS_CLIP_MJPEG:
        st = ns_clip_parse_mjpeg_(out, buf, n, lim);
        out->data = buf;
        out->data_len = n;
        break;
    case NS_CLIP_AVI:
        st = ns_clip_parse_avi_(out, buf, n, lim);
        out->data = buf;
        out->data_len = n;
        break;
    default:
        st = unknown_format(path, buf, n);
        break;
    }
done:
    if (fd >= 0)
        close(fd);
    if (st != NS_OK) {
        /* The read buffer is its lender's: it stays lent, to be taken back. */
        size_t cap;
        uint8_t *lent = ns_clip_take_buffer(out, &cap);
        ns_clip_release(out);
        ns_clip_lend_buffer(out, lent, cap);
    }
    return st;
}

void ns_clip_release(ns_clip *c)
{
    if (!c)
        return;
    if (c->map_)
        munmap(c->map_, c->map_len_);
    free(c->frames);
    free(c->names);
    free(c->owned_);
    free(c->read_);
    ns_warnings_release(&c->warn);
    memset(c, 0, sizeof *c);
}
