/* clip_archive.c -- tar (any compression) and zip clips through libarchive.
 *
 * The archive is read from the caller's mapping.  An uncompressed archive is
 * first parsed zero-copy: libarchive hands each member back as one block
 * inside the mapping, and frames point there.  Otherwise (compression, or a
 * member that does not come back whole, e.g. deflated zip entries) member
 * bytes are copied into the clip's owned buffer, which is reused across
 * loads.  Every size a header claims is checked before reading and the bytes
 * actually produced are counted while reading, because a hostile header can
 * lie about either.
 */
#define _GNU_SOURCE /* memrchr */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clip_internal.h"

#define DRAIN_CHUNK ((size_t)64 << 10)

/* libarchive's private ARCHIVE_ERRNO_FILE_FORMAT ("not this format"). */
#ifdef EFTYPE
#define NS_ARCHIVE_EFORMAT EFTYPE
#else
#define NS_ARCHIVE_EFORMAT EILSEQ
#endif

typedef struct arc_state {
    ns_clip *c;
    const ns_clip_limits *lim;
    struct archive *a;
    uint64_t total; /* uncompressed bytes produced by all members so far */
    const uint8_t *buf;
    size_t n;
    int zero_copy;  /* frames point into buf */
    int fall_back;  /* zero copy impossible: parse again, copying */
} arc_state;

/* Zero copy: the current member's bytes as one block inside the mapping.
 * Returns 0 when libarchive did not hand them back that way. */
static int member_in_place(arc_state *s, uint64_t size, size_t *off)
{
    const void *p = NULL;
    size_t got = 0;
    la_int64_t at = -1;
    if (size == 0)
        return 1; /* nothing to point at: a non-frame either way */
    if (archive_read_data_block(s->a, &p, &got, &at) != ARCHIVE_OK || at != 0 || got != size ||
        (const uint8_t *)p < s->buf || (size_t)((const uint8_t *)p - s->buf) > s->n - got)
        return 0;
    *off = (size_t)((const uint8_t *)p - s->buf);
    return 1;
}

static const char *entry_kind(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return "hard link";
    switch (archive_entry_filetype(e)) {
    case AE_IFLNK:
        return "symlink";
    case AE_IFDIR:
        return "directory";
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "fifo";
    case AE_IFSOCK:
        return "socket";
    default:
        return "non-regular entry";
    }
}

/* libarchive's message for the last error, on one line: its trailing newline
 * dropped and the control bytes of member names it quotes escaped. */
static const char *lib_why(struct archive *a, const char *dflt, char *out, size_t cap)
{
    const char *m = archive_error_string(a);
    size_t n;
    if (!m)
        return dflt;
    n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == '\r' || m[n - 1] == ' '))
        n--;
    return ns_clip_esc_(m, n, out, cap);
}

static ns_status entry_too_big(const arc_state *s, const char *name)
{
    char esc[256], lim[32];
    return ns_error(NS_ERR_LIMIT,
                    "'%s': member '%s' exceeds %s uncompressed (possible decompression bomb; "
                    "limit --max-entry-bytes)",
                    s->c->path, ns_clip_esc_(name, strlen(name), esc, sizeof esc),
                    ns_clip_fmt_bytes_(s->lim->max_entry_bytes, lim, sizeof lim));
}

static ns_status total_too_big(const arc_state *s, const char *name)
{
    char esc[256], lim[32];
    return ns_error(NS_ERR_LIMIT,
                    "'%s': members exceed %s uncompressed in total at member '%s' (possible "
                    "decompression bomb; limit --max-total-bytes)",
                    s->c->path, ns_clip_fmt_bytes_(s->lim->max_total_bytes, lim, sizeof lim),
                    ns_clip_esc_(name, strlen(name), esc, sizeof esc));
}

/* Reads the current member's data.  When keep is set the bytes land at
 * owned_[data_len...] and *kept says how many; otherwise (or once the first
 * bytes show it is not a JPEG) they are drained through a fixed window so a
 * huge non-frame member costs no memory.  *is_jpeg: first bytes are FF D8. */
static ns_status read_member(arc_state *s, const char *name, int keep, uint64_t hint,
                             size_t *kept, int *is_jpeg)
{
    ns_clip *c = s->c;
    const size_t start = c->data_len;
    uint64_t got = 0;
    ns_status st = NS_OK;
    *kept = 0;
    *is_jpeg = 0;
    for (;;) {
        size_t chunk = DRAIN_CHUNK;
        uint8_t *dst;
        la_ssize_t r;
        if (keep && hint > got)
            chunk = hint - got > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)(hint - got);
        if (s->lim->max_entry_bytes - got < chunk) /* one byte past the cap detects excess */
            chunk = (size_t)(s->lim->max_entry_bytes - got) + 1;
        st = ns_clip_reserve_data_(c, start + (keep ? *kept : 0) + chunk);
        if (st != NS_OK)
            goto done;
        dst = c->owned_ + start + (keep ? *kept : 0);
        r = archive_read_data(s->a, dst, chunk);
        if (r < 0) {
            char esc[256], why[256];
            st = ns_error(NS_ERR_CORRUPT, "'%s': member '%s': %s", c->path,
                          ns_clip_esc_(name, strlen(name), esc, sizeof esc),
                          lib_why(s->a, "read error", why, sizeof why));
            goto done;
        }
        if (r == 0)
            break;
        got += (uint64_t)r;
        s->total += (uint64_t)r;
        if (got > s->lim->max_entry_bytes) {
            st = entry_too_big(s, name);
            goto done;
        }
        if (s->total > s->lim->max_total_bytes) {
            st = total_too_big(s, name);
            goto done;
        }
        if (keep) {
            *kept += (size_t)r;
            if (*kept >= 2 && !(c->owned_[start] == 0xFF && c->owned_[start + 1] == 0xD8)) {
                keep = 0; /* not a frame: drain the rest */
                *kept = 0;
            } else if (*kept >= 2) {
                *is_jpeg = 1;
            }
        }
    }
    if (*kept < 2) { /* a zero- or one-byte member has no SOI */
        *kept = 0;
        *is_jpeg = 0;
    }
    /* Bytes after the last EOI marker are no part of the image: a JPEG padded
     * with zeros is the classic decompression bomb (12 members of 60 MB held
     * 1089 MB at once, issue 16).  Trimming them bounds what the archive's
     * members hold together to their image data plus one member in flight. */
    if (*is_jpeg) {
        const uint8_t *b = c->owned_ + start, *d9;
        size_t end = *kept;
        while (end >= 4 && (d9 = memrchr(b + 1, 0xD9, end - 1)) != NULL) {
            end = (size_t)(d9 - b) + 1;
            if (b[end - 2] == 0xFF) {
                *kept = end;
                break;
            }
            end--;
        }
    }
done:
    return st;
}

static ns_status header_error(arc_state *s, int n_entries)
{
    char buf[256];
    const char *why = lib_why(s->a, "read error", buf, sizeof buf);
    /* Compressed data that decompresses fine but holds no tar: wrong format.
     * Anything else (truncation, bad checksums) is a broken archive. */
    if (n_entries == 0 && archive_format(s->a) == 0 &&
        archive_errno(s->a) == NS_ARCHIVE_EFORMAT)
        return ns_error(NS_ERR_FORMAT, "'%s': no tar or zip archive inside: %s", s->c->path,
                        why);
    return ns_error(NS_ERR_CORRUPT, "'%s': truncated or corrupt archive: %s", s->c->path, why);
}

static void set_container(arc_state *s)
{
    ns_clip *c = s->c;
    const char *base, *suffix = "";
    int nf = archive_filter_count(s->a);
    for (int i = 0; i < nf; i++) {
        switch (archive_filter_code(s->a, i)) {
        case ARCHIVE_FILTER_GZIP:
            suffix = ".gz";
            break;
        case ARCHIVE_FILTER_XZ:
            suffix = ".xz";
            break;
        case ARCHIVE_FILTER_ZSTD:
            suffix = ".zst";
            break;
        case ARCHIVE_FILTER_BZIP2:
            suffix = ".bz2";
            break;
        default:
            continue;
        }
        break;
    }
    if ((archive_format(s->a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP) {
        c->format = NS_CLIP_ZIP;
        base = "zip";
    } else {
        c->format = NS_CLIP_TAR;
        base = "tar";
    }
    snprintf(c->container, sizeof c->container, "%s%s", base, suffix);
}

static ns_status parse_pass(ns_clip *c, const uint8_t *buf, size_t n,
                            const ns_clip_limits *lim, int zero_copy, int *fall_back)
{
    arc_state s = {.c = c, .lim = lim, .buf = buf, .n = n, .zero_copy = zero_copy};
    struct archive_entry *e;
    ns_status st = NS_OK;
    uint64_t n_entries = 0;
    char esc[256];

    s.a = archive_read_new();
    if (!s.a) {
        st = ns_error(NS_ERR_NOMEM, "'%s': cannot allocate an archive reader", c->path);
        goto done;
    }
    /* Only the formats we expect: fewer parsers exposed to hostile bytes. */
    archive_read_support_filter_all(s.a);
    archive_read_support_format_tar(s.a);
    archive_read_support_format_zip(s.a);
    /* Members of a tar or zip of JPEGs add up to about the file's size, so one
     * reservation up front usually spares every later growth. */
    if (!zero_copy &&
        (st = ns_clip_reserve_data_(c, n < lim->max_total_bytes ? n : (size_t)lim->max_total_bytes)) != NS_OK)
        goto done;
    if (archive_read_open_memory(s.a, buf, n) != ARCHIVE_OK) {
        st = header_error(&s, 0);
        goto done;
    }
    if (zero_copy && !(archive_filter_count(s.a) == 1 &&
                       archive_filter_code(s.a, 0) == ARCHIVE_FILTER_NONE)) {
        *fall_back = 1; /* compressed: members only exist in libarchive's buffers */
        goto done;
    }
    for (;;) {
        int r = archive_read_next_header(s.a, &e);
        const char *name;
        size_t kept;
        int is_jpeg, regular;
        uint64_t hint = 0;
        if (r == ARCHIVE_EOF)
            break;
        if (r == ARCHIVE_WARN) {
            ns_warn(&c->warn, "'%s': %s", c->path,
                    lib_why(s.a, "archive warning", esc, sizeof esc));
        } else if (r != ARCHIVE_OK) {
            st = header_error(&s, (int)(n_entries > 0));
            goto done;
        }
        if (++n_entries > lim->max_entries) {
            st = ns_error(NS_ERR_LIMIT, "'%s': more than %" PRIu64
                          " archive entries (limit --max-entries)", c->path, lim->max_entries);
            goto done;
        }
        name = archive_entry_pathname(e);
        if (!name)
            name = "";
        if (archive_entry_size_is_set(e)) {
            int64_t sz = archive_entry_size(e);
            hint = sz > 0 ? (uint64_t)sz : 0;
            if (hint > lim->max_entry_bytes) {
                st = entry_too_big(&s, name);
                goto done;
            }
            if (hint > lim->max_total_bytes - s.total) {
                st = total_too_big(&s, name);
                goto done;
            }
        }
        regular = !archive_entry_hardlink(e) && archive_entry_filetype(e) == AE_IFREG;
        if (zero_copy) {
            size_t off = 0;
            /* Uncompressed: sizes are bounded by the file, no bomb possible. */
            if (!archive_entry_size_is_set(e) || (regular && !member_in_place(&s, hint, &off))) {
                *fall_back = 1;
                goto done;
            }
            s.total += hint;
            kept = regular ? (size_t)hint : 0;
            is_jpeg = kept >= 2 && buf[off] == 0xFF && buf[off + 1] == 0xD8;
            if (regular && is_jpeg) {
                st = ns_clip_add_frame_(c, lim, off, kept, name, strlen(name),
                                        ns_clip_name_number_(name));
                if (st != NS_OK)
                    goto done;
                continue;
            }
        } else {
            /* Non-regular entries are drained too so their bytes count against the caps. */
            st = read_member(&s, name, regular, hint, &kept, &is_jpeg);
            if (st != NS_OK)
                goto done;
        }
        if (!regular) {
            c->n_skipped_nonregular++;
            ns_warn(&c->warn, "'%s': skipped member '%s' (%s)", c->path,
                    ns_clip_esc_(name, strlen(name), esc, sizeof esc), entry_kind(e));
            continue;
        }
        if (!is_jpeg) {
            c->n_skipped_nonjpeg++;
            ns_warn(&c->warn, "'%s': skipped member '%s' (not a JPEG: no SOI marker)", c->path,
                    ns_clip_esc_(name, strlen(name), esc, sizeof esc));
            continue;
        }
        st = ns_clip_add_frame_(c, lim, c->data_len, kept, name, strlen(name),
                                ns_clip_name_number_(name));
        if (st != NS_OK)
            goto done;
        c->data_len += kept;
    }
    set_container(&s);
    if (c->n_frames == 0)
        st = ns_error(NS_ERR_CORRUPT, "'%s': %s archive has no JPEG frames", c->path,
                      c->container);
    if (zero_copy) {
        c->data = buf;
        c->data_len = n;
    }
done:
    if (s.a)
        archive_read_free(s.a);
    return st;
}

ns_status ns_clip_parse_archive_(ns_clip *c, const uint8_t *buf, size_t n,
                                 const ns_clip_limits *lim)
{
    int fall_back = 0;
    ns_status st = parse_pass(c, buf, n, lim, 1, &fall_back);
    if (st != NS_OK || !fall_back)
        return st;
    /* Start over, copying: forget what the zero-copy pass collected. */
    ns_warnings_release(&c->warn);
    c->n_frames = 0;
    c->names_len = 0;
    c->data = NULL;
    c->data_len = 0;
    c->n_skipped_nonregular = c->n_skipped_nonjpeg = 0;
    return parse_pass(c, buf, n, lim, 0, &fall_back);
}
