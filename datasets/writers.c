/* writers.c -- clip container writers (see writers.h). */
#include "writers.h"

#include "nightshift/fsutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- buffer ------------------------------------------------------------- */

ns_status ns_gen_buf_reserve(ns_gen_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return NS_OK;
    size_t cap = b->cap ? b->cap : 1u << 20;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return ns_error(NS_ERR_NOMEM, "out of memory growing an output buffer to %zu bytes", cap);
    b->p = p;
    b->cap = cap;
    return NS_OK;
}

ns_status ns_gen_buf_append(ns_gen_buf *b, const void *data, size_t n)
{
    ns_status st = ns_gen_buf_reserve(b, n);
    if (st != NS_OK)
        return st;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return NS_OK;
}

void ns_gen_buf_release(ns_gen_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- files ---------------------------------------------------------------- */

ns_status ns_gen_save(const char *path, const void *data, size_t n, int durable)
{
    return ns_write_file(path, data, n, durable ? NS_WRITE_DURABLE : 0);
}

/* ---- formats ----------------------------------------------------------------- */

static const char *const format_names[NS_GEN_FORMAT_COUNT] = {
    "tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2", "zip", "mjpeg", "avi",
};

const char *ns_gen_format_name(ns_gen_format f)
{
    return (unsigned)f < NS_GEN_FORMAT_COUNT ? format_names[f] : "?";
}

const char *ns_gen_format_ext(ns_gen_format f)
{
    return f == NS_GEN_MJPEG ? "mjpg" : ns_gen_format_name(f);
}

ns_status ns_gen_format_parse(const char *s, ns_gen_format *out)
{
    for (int i = 0; i < NS_GEN_FORMAT_COUNT; i++)
        if (strcmp(s, format_names[i]) == 0) {
            *out = (ns_gen_format)i;
            return NS_OK;
        }
    if (strcmp(s, "mjpg") == 0) {
        *out = NS_GEN_MJPEG;
        return NS_OK;
    }
    return ns_error(NS_ERR_USAGE,
                    "unknown format '%s' (tar, tar.gz, tar.xz, tar.zst, tar.bz2, zip, mjpeg, avi)", s);
}

/* ---- archives ------------------------------------------------------------------ */

static la_ssize_t to_buf(struct archive *a, void *client, const void *data, size_t n)
{
    ns_gen_buf *b = client;
    if (ns_gen_buf_append(b, data, n) != NS_OK) {
        archive_set_error(a, ENOMEM, "out of memory");
        return -1;
    }
    return (la_ssize_t)n;
}

/* Applies one writer option; libarchive returns ARCHIVE_WARN for an unknown one,
 * which would silently change the bytes, so anything but OK is an error. */
static ns_status set_opt(struct archive *a, const char *mod, const char *key, const char *val)
{
    if (archive_write_set_option(a, mod, key, val) != ARCHIVE_OK)
        return ns_error(NS_ERR_INTERNAL, "libarchive rejects option %s:%s=%s: %s", mod, key,
                        val ? val : "(unset)", archive_error_string(a));
    return NS_OK;
}

static ns_status setup_archive(struct archive *a, ns_gen_format fmt)
{
    ns_status st = NS_OK;
    int rc = ARCHIVE_OK;
    if (fmt == NS_GEN_ZIP) {
        rc = archive_write_set_format_zip(a);
        if (rc == ARCHIVE_OK)
            st = set_opt(a, "zip", "compression", "store");
    } else {
        rc = archive_write_set_format_ustar(a);
    }
    if (rc != ARCHIVE_OK || st != NS_OK)
        goto done;
    switch (fmt) {
    case NS_GEN_TAR_GZ:
        rc = archive_write_add_filter_gzip(a);
        if (rc == ARCHIVE_OK && (st = set_opt(a, "gzip", "compression-level", "1")) == NS_OK)
            st = set_opt(a, "gzip", "timestamp", NULL); /* no mtime in the gzip header */
        break;
    case NS_GEN_TAR_XZ:
        rc = archive_write_add_filter_xz(a);
        if (rc == ARCHIVE_OK)
            st = set_opt(a, "xz", "compression-level", "0");
        break;
    case NS_GEN_TAR_ZST:
        rc = archive_write_add_filter_zstd(a);
        if (rc == ARCHIVE_OK)
            st = set_opt(a, "zstd", "compression-level", "1");
        break;
    case NS_GEN_TAR_BZ2:
        rc = archive_write_add_filter_bzip2(a);
        if (rc == ARCHIVE_OK)
            st = set_opt(a, "bzip2", "compression-level", "1");
        break;
    default:
        break;
    }
    if (rc == ARCHIVE_OK && st == NS_OK && fmt != NS_GEN_TAR)
        rc = archive_write_set_bytes_in_last_block(a, 1); /* no padding after a compressed stream */
done:
    if (rc != ARCHIVE_OK && st == NS_OK)
        st = ns_error(NS_ERR_INTERNAL, "libarchive cannot write %s: %s", ns_gen_format_name(fmt),
                      archive_error_string(a));
    return st;
}

ns_status ns_gen_archive(ns_gen_buf *out, ns_gen_format fmt, const ns_gen_member *m, size_t n,
                         int64_t mtime)
{
    static const uint8_t zeros[65536];
    ns_status st = NS_OK;
    struct archive *a = NULL;
    struct archive_entry *e = NULL;
    if (fmt > NS_GEN_ZIP) {
        st = ns_error(NS_ERR_INTERNAL, "%s is not an archive format", ns_gen_format_name(fmt));
        goto done;
    }
    a = archive_write_new();
    e = archive_entry_new();
    if (!a || !e) {
        st = ns_error(NS_ERR_NOMEM, "out of memory creating a libarchive writer");
        goto done;
    }
    if ((st = setup_archive(a, fmt)) != NS_OK)
        goto done;
    if (archive_write_open2(a, out, NULL, to_buf, NULL, NULL) != ARCHIVE_OK) {
        st = ns_error(NS_ERR_INTERNAL, "cannot start %s archive: %s", ns_gen_format_name(fmt),
                      archive_error_string(a));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_mtime(e, (time_t)mtime, 0);
        archive_entry_set_uid(e, 1000);
        archive_entry_set_gid(e, 1000);
        archive_entry_set_uname(e, "line");
        archive_entry_set_gname(e, "line");
        switch (m[i].type) {
        case NS_GEN_MEMBER_DIR:
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            archive_entry_set_size(e, 0);
            break;
        case NS_GEN_MEMBER_SYMLINK:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, m[i].link);
            archive_entry_set_size(e, 0);
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)m[i].size);
            break;
        }
        if (archive_write_header(a, e) != ARCHIVE_OK) {
            st = ns_error(NS_ERR_INTERNAL, "cannot write archive entry '%s': %s", m[i].name,
                          archive_error_string(a));
            goto done;
        }
        if (m[i].type != NS_GEN_MEMBER_FILE)
            continue;
        uint64_t left = m[i].size;
        const uint8_t *p = m[i].data;
        while (left > 0) {
            size_t chunk = left > sizeof(zeros) ? sizeof(zeros) : (size_t)left;
            la_ssize_t w = archive_write_data(a, p ? p : zeros, chunk);
            if (w < 0 || (size_t)w != chunk) {
                st = ns_error(NS_ERR_INTERNAL, "cannot write archive data of '%s': %s", m[i].name,
                              archive_error_string(a));
                goto done;
            }
            if (p)
                p += chunk;
            left -= chunk;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        st = ns_error(NS_ERR_INTERNAL, "cannot finish %s archive: %s", ns_gen_format_name(fmt),
                      archive_error_string(a));
        goto done;
    }
done:
    if (e)
        archive_entry_free(e);
    if (a)
        archive_write_free(a);
    return st;
}

/* ---- MJPEG and AVI ---------------------------------------------------------------- */

ns_status ns_gen_mjpeg(ns_gen_buf *out, const ns_gen_member *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ns_status st = ns_gen_buf_append(out, frames[i].data, (size_t)frames[i].size);
        if (st != NS_OK)
            return st;
    }
    return NS_OK;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Little-endian appends into space reserved beforehand. */
typedef struct riff {
    ns_gen_buf *b;
} riff;

static void w32(riff *r, uint32_t v)
{
    put32(r->b->p + r->b->len, v);
    r->b->len += 4;
}

static void w16(riff *r, uint16_t v)
{
    r->b->p[r->b->len++] = (uint8_t)v;
    r->b->p[r->b->len++] = (uint8_t)(v >> 8);
}

static void wcc(riff *r, const char *cc)
{
    memcpy(r->b->p + r->b->len, cc, 4);
    r->b->len += 4;
}

/* Starts a LIST or RIFF: returns the offset of its size field. */
static size_t open_list(riff *r, const char *id, const char *type)
{
    wcc(r, id);
    size_t at = r->b->len;
    w32(r, 0);
    wcc(r, type);
    return at;
}

static void close_list(riff *r, size_t at)
{
    put32(r->b->p + at, (uint32_t)(r->b->len - at - 4));
}

ns_status ns_gen_avi(ns_gen_buf *out, const ns_gen_avi_opts *o, const ns_gen_member *frames,
                     size_t n)
{
    size_t total = 512 + n * 32;
    uint64_t max_frame = 0;
    for (size_t i = 0; i < n; i++) {
        total += (size_t)frames[i].size + 1;
        max_frame = frames[i].size > max_frame ? frames[i].size : max_frame;
    }
    if (total > 0xFFFFFFF0u)
        return ns_error(NS_ERR_LIMIT, "AVI of %zu bytes exceeds the 4 GiB RIFF limit", total);
    ns_status st = ns_gen_buf_reserve(out, total);
    if (st != NS_OK)
        return st;
    uint32_t scale, rate;
    double fps = o->fps > 0 ? o->fps : 10.0;
    if (fps == (double)(uint32_t)fps) {
        scale = 1;
        rate = (uint32_t)fps;
    } else {
        scale = 1000;
        rate = (uint32_t)(fps * 1000.0 + 0.5);
    }
    uint32_t w = (uint32_t)o->width, h = (uint32_t)o->height;
    riff r = {out};
    size_t riff_at = open_list(&r, "RIFF", "AVI ");
    size_t hdrl_at = open_list(&r, "LIST", "hdrl");
    wcc(&r, "avih");
    w32(&r, 56);
    w32(&r, (uint32_t)(1e6 / fps + 0.5));
    w32(&r, (uint32_t)((double)max_frame * fps));
    w32(&r, 0);
    w32(&r, o->idx1 ? 0x10u : 0u); /* AVIF_HASINDEX */
    w32(&r, (uint32_t)n);
    w32(&r, 0);
    w32(&r, 1);
    w32(&r, (uint32_t)max_frame);
    w32(&r, w);
    w32(&r, h);
    for (int i = 0; i < 4; i++)
        w32(&r, 0);
    size_t strl_at = open_list(&r, "LIST", "strl");
    wcc(&r, "strh");
    w32(&r, 56);
    wcc(&r, "vids");
    wcc(&r, o->fourcc);
    w32(&r, 0);
    w16(&r, 0);
    w16(&r, 0);
    w32(&r, 0);
    w32(&r, scale);
    w32(&r, rate);
    w32(&r, 0);
    w32(&r, (uint32_t)n);
    w32(&r, (uint32_t)max_frame);
    w32(&r, 0xFFFFFFFFu);
    w32(&r, 0);
    w16(&r, 0);
    w16(&r, 0);
    w16(&r, (uint16_t)w);
    w16(&r, (uint16_t)h);
    wcc(&r, "strf");
    w32(&r, 40);
    w32(&r, 40);
    w32(&r, w);
    w32(&r, h);
    w16(&r, 1);
    w16(&r, 24);
    wcc(&r, o->fourcc);
    w32(&r, w * h * 3);
    for (int i = 0; i < 4; i++)
        w32(&r, 0);
    close_list(&r, strl_at);
    close_list(&r, hdrl_at);
    size_t movi_at = open_list(&r, "LIST", "movi");
    size_t movi_cc = movi_at + 4; /* idx1 offsets count from the 'movi' fourcc */
    size_t idx_first = out->len;  /* chunk offsets recomputed below for idx1 */
    for (size_t i = 0; i < n; i++) {
        wcc(&r, "00dc");
        w32(&r, (uint32_t)frames[i].size);
        memcpy(out->p + out->len, frames[i].data, (size_t)frames[i].size);
        out->len += (size_t)frames[i].size;
        if (frames[i].size & 1)
            out->p[out->len++] = 0;
    }
    close_list(&r, movi_at);
    if (o->idx1) {
        wcc(&r, "idx1");
        w32(&r, (uint32_t)(16 * n));
        size_t at = idx_first;
        for (size_t i = 0; i < n; i++) {
            wcc(&r, "00dc");
            w32(&r, 0x10); /* AVIIF_KEYFRAME */
            w32(&r, (uint32_t)(at - movi_cc));
            w32(&r, (uint32_t)frames[i].size);
            at += 8 + (size_t)frames[i].size + (frames[i].size & 1);
        }
    }
    close_list(&r, riff_at);
    return NS_OK;
}
