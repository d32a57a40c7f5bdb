/* clip_fixtures.h -- test_clip's fixtures: distinct small JPEGs, archives of
 * them in every container libarchive writes, and a small AVI writer.  Static
 * functions for one test program; kept apart so the suite file holds cases. */
#ifndef NIGHTSHIFT_TESTS_CLIP_FIXTURES_H
#define NIGHTSHIFT_TESTS_CLIP_FIXTURES_H

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <turbojpeg.h>

#include "helpers.h"
#include "nightshift/clip.h"

#define N_JPEG 12

/* ---- fixtures ----------------------------------------------------------------- */

typedef struct blob {
    uint8_t *p;
    size_t n, cap;
} blob;

static blob jpeg[N_JPEG]; /* distinct 32x24 frames; jpeg[5] is progressive */
static char dir[PATH_MAX];

static void blob_put(blob *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void blob_u32(blob *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    blob_put(b, x, 4);
}

static void make_jpegs(void)
{
    tjhandle tj = tjInitCompress();
    uint8_t rgb[24][32][3];
    ck_assert_ptr_nonnull(tj);
    for (int k = 0; k < N_JPEG; k++) {
        unsigned char *out = NULL;
        unsigned long n = 0;
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 32; x++) {
                rgb[y][x][0] = (uint8_t)(x * 8 + k * 20);
                rgb[y][x][1] = (uint8_t)(y * 10 + k * 7);
                rgb[y][x][2] = (uint8_t)((x ^ y) * k);
            }
        ck_assert_int_eq(tjCompress2(tj, &rgb[0][0][0], 32, 0, 24, TJPF_RGB, &out, &n,
                                     TJSAMP_420, 80 + k, k == 5 ? TJFLAG_PROGRESSIVE : 0),
                         0);
        jpeg[k] = (blob){0};
        blob_put(&jpeg[k], out, n);
        tjFree(out);
    }
    tjDestroy(tj);
}

static void setup(void)
{
    make_jpegs();
    ns_test_tmpdir(dir, sizeof dir, "clip");
}

static void teardown(void)
{
    for (int k = 0; k < N_JPEG; k++)
        free(jpeg[k].p);
}

static const char *fixture(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n)
        ck_assert_uint_eq(fwrite(d, 1, n, f), n);
    fclose(f);
}

static blob read_all(const char *path)
{
    blob b = {0};
    uint8_t tmp[65536];
    size_t r;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
        blob_put(&b, tmp, r);
    fclose(f);
    return b;
}

typedef struct member {
    const char *name;
    int type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK; 1 = hard link */
    const void *data;
    size_t n;
    const char *link;
} member;

enum { F_NONE, F_GZIP, F_XZ, F_ZSTD, F_BZIP2, F_ZIP };

static void write_archive(const char *path, int kind, const member *m, size_t nm)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    if (kind == F_ZIP)
        ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
    else
        ck_assert_int_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (kind == F_GZIP)
        ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    if (kind == F_XZ)
        ck_assert_int_eq(archive_write_add_filter_xz(a), ARCHIVE_OK);
    if (kind == F_ZSTD)
        ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    if (kind == F_BZIP2)
        ck_assert_int_eq(archive_write_add_filter_bzip2(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < nm; i++) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_mtime(e, 1700000000, 0);
        if (m[i].type == 1) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].link);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, (unsigned)m[i].type);
            archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
            archive_entry_set_size(e, m[i].type == AE_IFREG ? (la_int64_t)m[i].n : 0);
            if (m[i].type == AE_IFLNK)
                archive_entry_set_symlink(e, m[i].link);
        }
        ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].type == AE_IFREG && m[i].n)
            ck_assert_int_eq(archive_write_data(a, m[i].data, m[i].n), (la_ssize_t)m[i].n);
    }
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    archive_entry_free(e);
}

/* Frames 0..N_JPEG-1 named frame_<k>.jpg, written in a scrambled order. */
static void write_frames_archive(const char *path, int kind)
{
    static const int order[N_JPEG] = {10, 2, 0, 11, 1, 5, 9, 3, 7, 4, 8, 6};
    static char names[N_JPEG][32];
    member m[N_JPEG];
    for (int i = 0; i < N_JPEG; i++) {
        int k = order[i];
        snprintf(names[k], sizeof names[k], "clip/frame_%d.jpg", k);
        m[i] = (member){names[k], AE_IFREG, jpeg[k].p, jpeg[k].n, NULL};
    }
    write_archive(path, kind, m, N_JPEG);
}

static void check_frame_bytes(const ns_clip *c, size_t i, const blob *want)
{
    ck_assert_uint_eq(c->frames[i].size, want->n);
    ck_assert_uint_le(c->frames[i].offset + c->frames[i].size, c->data_len);
    ck_assert_mem_eq(c->data + c->frames[i].offset, want->p, want->n);
}

static void check_sha(const ns_clip *c, const char *path)
{
    uint8_t d[NS_SHA256_LEN];
    ck_assert_ns_ok(ns_sha256_file(path, d));
    ck_assert_mem_eq(c->sha256, d, NS_SHA256_LEN);
}

static int warned(const ns_clip *c, const char *needle)
{
    for (size_t i = 0; i < c->warn.n_kept; i++)
        if (strstr(c->warn.msgs[i], needle))
            return 1;
    return 0;
}

/* ---- AVI writer ------------------------------------------------------------------ */

typedef struct avi_opts {
    const char *codec;    /* biCompression / fccHandler */
    int n_frames;
    int idx1;
    int audio_first;      /* an audio strl first: video becomes stream 01 */
    int rec_lists;        /* wrap each frame in LIST 'rec ' */
    int dropped;          /* a zero-size video chunk after each frame */
    int avix;             /* frames from n_frames/2 on go into a RIFF 'AVIX' */
    uint32_t rate, scale, us_per_frame;
} avi_opts;

static size_t chunk_begin(blob *b, const char *id)
{
    blob_put(b, id, 4);
    blob_u32(b, 0);
    return b->n;
}

static void chunk_end(blob *b, size_t body)
{
    uint32_t size = (uint32_t)(b->n - body);
    uint8_t *s = b->p + body - 4;
    s[0] = (uint8_t)size, s[1] = (uint8_t)(size >> 8), s[2] = (uint8_t)(size >> 16),
    s[3] = (uint8_t)(size >> 24);
    if (size & 1)
        blob_put(b, "", 1);
}

static size_t list_begin(blob *b, const char *id, const char *type)
{
    size_t body = chunk_begin(b, id);
    blob_put(b, type, 4);
    return body;
}

/* Frame k's payload: jpeg[k], plus one junk byte after EOI on odd k when
 * needed so both parities (and the padding rule) are exercised. */
static blob avi_payload(int k)
{
    blob b = {0};
    blob_put(&b, jpeg[k % N_JPEG].p, jpeg[k % N_JPEG].n);
    if ((b.n & 1) != (size_t)(k & 1))
        blob_put(&b, "\0", 1);
    return b;
}

static void write_movi(blob *b, const avi_opts *o, int from, int to, const char *tag)
{
    size_t movi = list_begin(b, "LIST", "movi");
    for (int k = from; k < to; k++) {
        blob f = avi_payload(k);
        size_t rec = o->rec_lists ? list_begin(b, "LIST", "rec ") : 0, c;
        if (o->audio_first) {
            c = chunk_begin(b, "00wb");
            blob_put(b, "abc", 3);
            chunk_end(b, c);
        }
        c = chunk_begin(b, tag);
        blob_put(b, f.p, f.n);
        chunk_end(b, c);
        if (o->dropped)
            chunk_end(b, chunk_begin(b, tag));
        c = chunk_begin(b, "JUNK");
        blob_put(b, "x", k % 3);
        chunk_end(b, c);
        if (rec)
            chunk_end(b, rec);
        free(f.p);
    }
    chunk_end(b, movi);
}

static blob make_avi(const avi_opts *o)
{
    blob b = {0};
    const char *tag = o->audio_first ? "01dc" : "00dc";
    int split = o->avix ? o->n_frames / 2 : o->n_frames;
    size_t riff = list_begin(&b, "RIFF", "AVI "), hdrl = list_begin(&b, "LIST", "hdrl"), c;
    c = chunk_begin(&b, "avih");
    uint32_t avih[14] = {o->us_per_frame, 0, 0, 0x10, (uint32_t)o->n_frames, 0,
                         o->audio_first ? 2u : 1u, 0, 32, 24, 0, 0, 0, 0};
    for (int i = 0; i < 14; i++)
        blob_u32(&b, avih[i]);
    chunk_end(&b, c);
    if (o->audio_first) {
        size_t strl = list_begin(&b, "LIST", "strl");
        c = chunk_begin(&b, "strh");
        blob_put(&b, "auds", 4);
        for (int i = 0; i < 13; i++)
            blob_u32(&b, i == 4 || i == 5 ? 1 : 0);
        chunk_end(&b, c);
        c = chunk_begin(&b, "strf");
        blob_put(&b, "\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00\x00", 17);
        chunk_end(&b, c);
        chunk_end(&b, strl);
    }
    size_t strl = list_begin(&b, "LIST", "strl");
    c = chunk_begin(&b, "strh");
    blob_put(&b, "vids", 4);
    blob_put(&b, o->codec, 4);
    uint32_t strh[12] = {0, 0, 0, o->scale, o->rate, 0, (uint32_t)o->n_frames, 0, 0, 0, 0, 0};
    for (int i = 0; i < 12; i++)
        blob_u32(&b, strh[i]);
    chunk_end(&b, c);
    c = chunk_begin(&b, "strf");
    uint32_t bih[10] = {40, 32, 24, 1 | 24u << 16, 0, 0, 0, 0, 0, 0};
    memcpy(&bih[4], o->codec, 4);
    for (int i = 0; i < 10; i++)
        blob_u32(&b, bih[i]);
    chunk_end(&b, c);
    chunk_end(&b, strl);
    chunk_end(&b, hdrl);
    c = chunk_begin(&b, "JUNK");
    blob_put(&b, "1234567", 7); /* odd: padded */
    chunk_end(&b, c);
    size_t movi_at = b.n + 8;
    write_movi(&b, o, 0, split, tag);
    if (o->idx1) {
        /* Offsets are relative to 'movi'; the reader ignores them anyway. */
        c = chunk_begin(&b, "idx1");
        for (int k = 0; k < split; k++) {
            blob_put(&b, tag, 4);
            blob_u32(&b, 0x10);
            blob_u32(&b, (uint32_t)(movi_at + 4 * (unsigned)k));
            blob_u32(&b, 1);
        }
        chunk_end(&b, c);
    }
    chunk_end(&b, riff);
    if (o->avix) {
        size_t x = list_begin(&b, "RIFF", "AVIX");
        write_movi(&b, o, split, o->n_frames, tag);
        chunk_end(&b, x);
    }
    return b;
}

static const avi_opts avi_default = {"MJPG", 6, 1, 0, 0, 0, 0, 30000, 1001, 40000};

/* ---- tests ------------------------------------------------------------------------ */

#endif
