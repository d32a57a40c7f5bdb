/* test_clip.c -- clip reader: detection, tar/zip/MJPEG/AVI parsing, limits,
 * skipped members, buffer reuse and light fuzzing.  Fixtures (JPEGs via
 * TurboJPEG, archives via libarchive's writer, AVIs via a small writer in
 * clip_fixtures.h) are built in a fresh temporary directory by each test. */
#include "clip_fixtures.h"

START_TEST(test_natural_cmp)
{
    ck_assert_int_lt(ns_natural_cmp("frame_2.jpg", "frame_10.jpg"), 0);
    ck_assert_int_gt(ns_natural_cmp("frame_10.jpg", "frame_9.jpg"), 0);
    ck_assert_int_lt(ns_natural_cmp("a", "b"), 0);
    ck_assert_int_lt(ns_natural_cmp("a", "a1"), 0);
    ck_assert_int_eq(ns_natural_cmp("x/f007", "x/f007"), 0);
    ck_assert_int_lt(ns_natural_cmp("f7", "f0010"), 0);
    ck_assert_int_ne(ns_natural_cmp("f01", "f1"), 0); /* total order */
    ck_assert_int_eq(ns_natural_cmp("f01", "f1"), -ns_natural_cmp("f1", "f01"));
    ck_assert_int_lt(ns_natural_cmp("cam1/f99", "cam2/f1"), 0);
    ck_assert_int_lt(ns_natural_cmp("f99999999999999999999998", "f99999999999999999999999"), 0);
}
END_TEST

START_TEST(test_detect)
{
    static const struct { const char *name; int kind; ns_clip_format f; } arcs[] = {
        {"a.tar", F_NONE, NS_CLIP_TAR}, {"a.tgz", F_GZIP, NS_CLIP_TAR},
        {"a.txz", F_XZ, NS_CLIP_TAR},   {"a.tzst", F_ZSTD, NS_CLIP_TAR},
        {"a.tbz", F_BZIP2, NS_CLIP_TAR}, {"a.avi", F_ZIP, NS_CLIP_ZIP}, /* name lies */
    };
    ns_clip_format f;
    for (size_t i = 0; i < sizeof arcs / sizeof arcs[0]; i++) {
        write_frames_archive(fixture(arcs[i].name), arcs[i].kind);
        ck_assert_ns_ok(ns_clip_detect(fixture(arcs[i].name), &f));
        ck_assert_int_eq(f, arcs[i].f);
    }
    blob avi = make_avi(&avi_default);
    write_file(fixture("v.zip"), avi.p, avi.n);
    ck_assert_ns_ok(ns_clip_detect(fixture("v.zip"), &f));
    ck_assert_int_eq(f, NS_CLIP_AVI);
    write_file(fixture("s.mjpeg"), jpeg[0].p, jpeg[0].n);
    ck_assert_ns_ok(ns_clip_detect(fixture("s.mjpeg"), &f));
    ck_assert_int_eq(f, NS_CLIP_MJPEG);

    uint8_t rnd[4096];
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)(i * 2654435761u >> 13);
    rnd[0] = 0x42;
    write_file(fixture("r.tar"), rnd, sizeof rnd);
    write_file(fixture("empty.tar"), "", 0);
    write_file(fixture("p.png"), "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    const char *bad[] = {"r.tar", "empty.tar", "p.png"};
    for (size_t i = 0; i < 3; i++) {
        ns_clip c = {0};
        ck_assert_ns_status(ns_clip_detect(fixture(bad[i]), &f), NS_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture(bad[i])));
        ck_assert_ns_status(ns_clip_load(fixture(bad[i]), NULL, &c), NS_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), "unrecognised clip format"));
        ck_assert_ptr_null(c.frames);
    }
    ck_assert_msg(strstr(ns_errmsg(), "89 50 4e 47") != NULL, "%s", ns_errmsg());
    ck_assert_ns_status(ns_clip_detect(fixture("missing"), &f), NS_ERR_IO);
    ns_clip c = {0};
    ck_assert_ns_status(ns_clip_load(fixture("missing"), NULL, &c), NS_ERR_IO);
    ck_assert_ns_status(ns_clip_load(dir, NULL, &c), NS_ERR_IO);
    free(avi.p);
}
END_TEST

START_TEST(test_archives)
{
    static const struct { int kind; const char *container; ns_clip_format f; } cases[] = {
        {F_NONE, "tar", NS_CLIP_TAR},     {F_GZIP, "tar.gz", NS_CLIP_TAR},
        {F_XZ, "tar.xz", NS_CLIP_TAR},    {F_ZSTD, "tar.zst", NS_CLIP_TAR},
        {F_BZIP2, "tar.bz2", NS_CLIP_TAR}, {F_ZIP, "zip", NS_CLIP_ZIP},
    };
    ns_clip c = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = fixture(cases[i].container);
        write_frames_archive(path, cases[i].kind);
        ck_assert_ns_ok(ns_clip_load(path, NULL, &c));
        ck_assert_int_eq(c.format, cases[i].f);
        ck_assert_str_eq(c.container, cases[i].container);
        ck_assert_str_eq(c.path, path);
        ck_assert_uint_eq(c.n_frames, N_JPEG);
        ck_assert_uint_eq(c.n_skipped_nonjpeg + c.n_skipped_nonregular, 0);
        for (int k = 0; k < N_JPEG; k++) {
            char want[32];
            snprintf(want, sizeof want, "clip/frame_%d.jpg", k);
            ck_assert_str_eq(ns_clip_frame_name(&c, (size_t)k), want);
            ck_assert_int_eq(c.frames[k].number, k);
            check_frame_bytes(&c, (size_t)k, &jpeg[k]);
        }
        check_sha(&c, path);
        blob raw = read_all(path);
        ck_assert_uint_eq(c.file_bytes, raw.n);
        free(raw.p);
        if (cases[i].kind == F_NONE) /* uncompressed: frames point into the mapping */
            ck_assert_ptr_eq(c.data, c.map_);
        else
            ck_assert_ptr_null(c.map_); /* copied out, mapping dropped */
    }
    ns_clip_release(&c);
    ck_assert_ptr_null(c.frames);
    ns_clip_release(&c); /* twice is fine */
    ns_clip_release(NULL);
}
END_TEST

/* A JPEG padded after its end marker (the decompression bomb of issue 16) is
 * kept up to the marker: the frame bytes are the image's, the padding is
 * dropped as it is read.  A plain tar is read in place and left whole. */
START_TEST(test_padded_members)
{
    const size_t pad = 1 << 20;
    uint8_t *padded = calloc(jpeg[0].n + pad, 1);
    ck_assert_ptr_nonnull(padded);
    memcpy(padded, jpeg[0].p, jpeg[0].n);
    padded[jpeg[0].n + 7] = 0xD9; /* a lone D9 in the padding is no marker */
    member m[] = {{"clip/frame_0.jpg", AE_IFREG, padded, jpeg[0].n + pad, NULL},
                  {"clip/frame_1.jpg", AE_IFREG, jpeg[1].p, jpeg[1].n, NULL}};
    for (int kind = F_GZIP; kind <= F_ZIP; kind += F_ZIP - F_GZIP) {
        ns_clip c = {0};
        const char *path = fixture(kind == F_ZIP ? "pad.zip" : "pad.tar.gz");
        write_archive(path, kind, m, 2);
        ck_assert_ns_ok(ns_clip_load(path, NULL, &c));
        ck_assert_uint_eq(c.n_frames, 2);
        check_frame_bytes(&c, 0, &jpeg[0]);
        check_frame_bytes(&c, 1, &jpeg[1]);
        ns_clip_release(&c);
    }
    free(padded);
}
END_TEST

START_TEST(test_skipped_members)
{
    static const char text[] = "not a jpeg\n";
    member m[] = {
        {"clip/", AE_IFDIR, NULL, 0, NULL},
        {"clip/frame_3.jpg", AE_IFREG, jpeg[3].p, jpeg[3].n, NULL},
        {"clip/link.jpg", AE_IFLNK, NULL, 0, "frame_3.jpg"},
        {"clip/notes.txt", AE_IFREG, text, sizeof text - 1, NULL},
        {"clip/empty.jpg", AE_IFREG, "", 0, NULL},
        {"../../etc/passwd", AE_IFREG, jpeg[1].p, jpeg[1].n, NULL},
        {"/abs/x.jpg", AE_IFREG, jpeg[2].p, jpeg[2].n, NULL},
        {"clip/hard.jpg", 1, NULL, 0, "clip/frame_3.jpg"},
        {"clip/\x1b[2Jevil.txt", AE_IFREG, text, 4, NULL},
    };
    for (int kind = F_NONE; kind <= F_ZIP; kind += F_ZIP) {
        ns_clip c = {0};
        size_t nm = kind == F_ZIP ? 7 : 9; /* zip has no hard links */
        const char *path = fixture(kind == F_ZIP ? "s.zip" : "s.tar");
        write_archive(path, kind, m, nm);
        ck_assert_ns_ok(ns_clip_load(path, NULL, &c));
        ck_assert_uint_eq(c.n_frames, 3);
        ck_assert_uint_eq(c.n_skipped_nonregular, kind == F_ZIP ? 2 : 3);
        ck_assert_uint_eq(c.n_skipped_nonjpeg, kind == F_ZIP ? 2 : 3);
        ck_assert_uint_eq(c.warn.n_total, c.n_skipped_nonregular + c.n_skipped_nonjpeg);
        /* Natural order: '.' < '/' < 'c'; names are data, never resolved. */
        ck_assert_str_eq(ns_clip_frame_name(&c, 0), "../../etc/passwd");
        ck_assert_str_eq(ns_clip_frame_name(&c, 1), "/abs/x.jpg");
        ck_assert_str_eq(ns_clip_frame_name(&c, 2), "clip/frame_3.jpg");
        ck_assert_int_eq(c.frames[0].number, -1);
        ck_assert_int_eq(c.frames[2].number, 3);
        check_frame_bytes(&c, 0, &jpeg[1]);
        check_frame_bytes(&c, 1, &jpeg[2]);
        check_frame_bytes(&c, 2, &jpeg[3]);
        ck_assert(warned(&c, "clip/link.jpg"));
        ck_assert(warned(&c, "symlink"));
        ck_assert(warned(&c, "clip/notes.txt"));
        if (kind != F_ZIP) {
            ck_assert(warned(&c, "clip/hard.jpg"));
            ck_assert(warned(&c, "\\x1b[2Jevil.txt")); /* escaped for terminals */
        }
        ns_clip_release(&c);
    }
    /* Only non-JPEG members: corrupt, not an empty clip. */
    ns_clip c = {0};
    write_archive(fixture("t.tgz"), F_GZIP, &m[3], 1);
    ck_assert_ns_status(ns_clip_load(fixture("t.tgz"), NULL, &c), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "no JPEG frames"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture("t.tgz")));
}
END_TEST

START_TEST(test_limits)
{
    ns_clip c = {0};
    ns_clip_limits lim;
    size_t big = 70u << 20;
    uint8_t *zeros = calloc(big, 1);
    ck_assert_ptr_nonnull(zeros);
    memcpy(zeros, jpeg[0].p, 4); /* looks like a JPEG, so only the size stops it */
    member m[] = {{"frame_1.jpg", AE_IFREG, jpeg[1].p, jpeg[1].n, NULL},
                  {"big.jpg", AE_IFREG, zeros, big, NULL}};
    write_archive(fixture("bomb.tgz"), F_GZIP, m, 2);
    write_archive(fixture("bomb.zip"), F_ZIP, m, 2);
    free(zeros);
    const char *bombs[] = {"bomb.tgz", "bomb.zip"};
    for (int i = 0; i < 2; i++) {
        ck_assert_ns_status(ns_clip_load(fixture(bombs[i]), NULL, &c), NS_ERR_LIMIT);
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture(bombs[i])));
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'big.jpg' exceeds 64 MiB"));
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--max-entry-bytes"));
        ck_assert_ptr_null(c.frames); /* released on failure */
    }

    write_frames_archive(fixture("f.tar"), F_NONE);
    ns_clip_limits_default(&lim);
    ck_assert_uint_eq(lim.max_entry_bytes, 64u << 20);
    ck_assert_uint_eq(lim.max_total_bytes, 4ull << 30);
    ck_assert_uint_eq(lim.max_entries, 1000000);
    ck_assert_uint_eq(lim.max_frames, 1000000);
    lim.max_entries = N_JPEG - 1;
    ck_assert_ns_status(ns_clip_load(fixture("f.tar"), &lim, &c), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--max-entries"));
    lim.max_entries = N_JPEG;
    ck_assert_ns_ok(ns_clip_load(fixture("f.tar"), &lim, &c));

    ns_clip_limits_default(&lim);
    lim.max_frames = 5;
    ck_assert_ns_status(ns_clip_load(fixture("f.tar"), &lim, &c), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--max-frames"));

    ns_clip_limits_default(&lim);
    lim.max_total_bytes = jpeg[10].n + jpeg[2].n + jpeg[0].n - 1; /* archive order */
    ck_assert_ns_status(ns_clip_load(fixture("f.tar"), &lim, &c), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--max-total-bytes"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "clip/frame_0.jpg"));

    ns_clip_limits_default(&lim);
    lim.max_entry_bytes = jpeg[7].n - 1;
    ck_assert_ns_status(ns_clip_load(fixture("f.tar"), &lim, &c), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "bytes uncompressed"));

    /* Frame cap also applies to streams. */
    blob s = {0};
    for (int k = 0; k < N_JPEG; k++)
        blob_put(&s, jpeg[k].p, jpeg[k].n);
    write_file(fixture("s.mjpeg"), s.p, s.n);
    ns_clip_limits_default(&lim);
    lim.max_frames = 3;
    ck_assert_ns_status(ns_clip_load(fixture("s.mjpeg"), &lim, &c), NS_ERR_LIMIT);
    free(s.p);
}
END_TEST

START_TEST(test_corrupt_archives)
{
    ns_clip c = {0};
    write_frames_archive(fixture("f.tgz"), F_GZIP);
    blob b = read_all(fixture("f.tgz"));
    write_file(fixture("cut.tgz"), b.p, b.n / 2);
    ck_assert_ns_status(ns_clip_load(fixture("cut.tgz"), NULL, &c), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture("cut.tgz")));
    ck_assert_ptr_null(c.frames);
    free(b.p);

    /* gzip magic, but no tar inside */
    struct archive *a = archive_write_new();
    struct archive_entry *e = NULL;
    ck_assert_int_eq(archive_write_set_format_raw(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, fixture("raw.gz")), ARCHIVE_OK);
    e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "x");
    ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_data(a, "hello world, not a tar", 22), 22);
    archive_write_close(a);
    archive_write_free(a);
    archive_entry_free(e);
    ns_status st = ns_clip_load(fixture("raw.gz"), NULL, &c);
    ck_assert_msg(st == NS_ERR_FORMAT || st == NS_ERR_CORRUPT, "%s", ns_errmsg());
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture("raw.gz")));
}
END_TEST

START_TEST(test_mjpeg)
{
    ns_clip c = {0};
    blob s = {0};
    for (int k = 0; k < N_JPEG; k++)
        blob_put(&s, jpeg[k].p, jpeg[k].n);
    write_file(fixture("s.mjpeg"), s.p, s.n);
    ck_assert_ns_ok(ns_clip_load(fixture("s.mjpeg"), NULL, &c));
    ck_assert_int_eq(c.format, NS_CLIP_MJPEG);
    ck_assert_str_eq(c.container, "mjpeg");
    ck_assert_uint_eq(c.n_frames, N_JPEG); /* the progressive one too */
    ck_assert_uint_eq(c.warn.n_total, 0);
    for (int k = 0; k < N_JPEG; k++) {
        char want[16];
        snprintf(want, sizeof want, "#%d", k);
        ck_assert_str_eq(ns_clip_frame_name(&c, (size_t)k), want);
        ck_assert_int_eq(c.frames[k].number, k);
        check_frame_bytes(&c, (size_t)k, &jpeg[k]);
    }
    ck_assert_ptr_eq(c.data, c.map_); /* frames point into the mapping */
    check_sha(&c, fixture("s.mjpeg"));

    /* A COM segment holding FF D9 and FF D8 must not split the frame; garbage
     * between frames is skipped with one warning per gap; a truncated last
     * frame is kept. */
    blob t = {0}, f0 = {0};
    blob_put(&f0, jpeg[0].p, 2);
    blob_put(&f0, "\xFF\xFE\x00\x08\xFF\xD9\xFF\xD8\xFF\x00", 10);
    blob_put(&f0, jpeg[0].p + 2, jpeg[0].n - 2);
    blob_put(&t, f0.p, f0.n);
    blob_put(&t, "garbage\xFF\xD8 here", 15);
    blob_put(&t, jpeg[5].p, jpeg[5].n);
    blob_put(&t, jpeg[1].p, jpeg[1].n);
    blob_put(&t, "\0\0\0", 3);
    blob_put(&t, jpeg[2].p, jpeg[2].n / 2);
    write_file(fixture("t.mjpeg"), t.p, t.n);
    ck_assert_ns_ok(ns_clip_load(fixture("t.mjpeg"), NULL, &c));
    ck_assert_uint_eq(c.n_frames, 4);
    check_frame_bytes(&c, 0, &f0);
    check_frame_bytes(&c, 1, &jpeg[5]);
    check_frame_bytes(&c, 2, &jpeg[1]);
    ck_assert_uint_eq(c.frames[3].size, jpeg[2].n / 2);
    ck_assert_uint_eq(c.warn.n_total, 3);
    ck_assert(warned(&c, "15 bytes of garbage"));
    ck_assert(warned(&c, "truncated"));

    /* A frame cut short and followed directly by the next one. */
    blob u = {0};
    blob_put(&u, jpeg[3].p, jpeg[3].n - 40);
    blob_put(&u, jpeg[4].p, jpeg[4].n);
    write_file(fixture("u.mjpeg"), u.p, u.n);
    ck_assert_ns_ok(ns_clip_load(fixture("u.mjpeg"), NULL, &c));
    ck_assert_uint_eq(c.n_frames, 2);
    ck_assert_uint_eq(c.frames[0].size, jpeg[3].n - 40);
    check_frame_bytes(&c, 1, &jpeg[4]);
    ns_clip_release(&c);
    free(s.p), free(t.p), free(f0.p), free(u.p);
}
END_TEST

static void check_avi_frames(const ns_clip *c, int n)
{
    ck_assert_uint_eq(c->n_frames, (size_t)n);
    for (int k = 0; k < n; k++) {
        blob f = avi_payload(k);
        check_frame_bytes(c, (size_t)k, &f);
        ck_assert_int_eq(c->frames[k].number, k);
        free(f.p);
    }
}

START_TEST(test_avi)
{
    ns_clip c = {0};
    avi_opts o = avi_default;
    for (int variant = 0; variant < 6; variant++) {
        o = avi_default;
        o.idx1 = variant != 1;
        o.audio_first = variant == 2 || variant == 5;
        o.rec_lists = variant == 3 || variant == 5;
        o.dropped = variant == 4 || variant == 5;
        o.avix = variant == 5;
        o.n_frames = 7;
        if (variant == 1)
            o.rate = o.scale = 0; /* fps from avih only */
        blob b = make_avi(&o);
        write_file(fixture("v.avi"), b.p, b.n);
        ck_assert_ns_ok(ns_clip_load(fixture("v.avi"), NULL, &c));
        ck_assert_int_eq(c.format, NS_CLIP_AVI);
        ck_assert_str_eq(c.container, "avi");
        check_avi_frames(&c, 7);
        ck_assert_uint_eq(c.warn.n_total, 0);
        ck_assert_double_eq_tol(c.fps, variant == 1 ? 25.0 : 30000.0 / 1001.0, 1e-9);
        ck_assert_int_eq(c.header_width, 32);
        ck_assert_int_eq(c.header_height, 24);
        ck_assert_str_eq(ns_clip_frame_name(&c, 3), "#3");
        ck_assert_ptr_eq(c.data, c.map_);
        check_sha(&c, fixture("v.avi"));
        free(b.p);
    }
    /* Accepted fourcc spellings; frames that are not JPEG are still frames. */
    o = avi_default;
    o.codec = "jpeg";
    blob b = make_avi(&o);
    size_t first = 0;
    for (size_t i = 0; i + 8 < b.n; i++)
        if (memcmp(b.p + i, "00dc", 4) == 0) {
            first = i + 8;
            break;
        }
    b.p[first] = 'X';
    write_file(fixture("j.avi"), b.p, b.n);
    ck_assert_ns_ok(ns_clip_load(fixture("j.avi"), NULL, &c));
    ck_assert_uint_eq(c.n_frames, (size_t)o.n_frames);
    ck_assert_uint_eq(c.data[c.frames[0].offset], 'X');
    free(b.p);

    /* H264: unsupported, named in the message. */
    o = avi_default;
    o.codec = "H264";
    b = make_avi(&o);
    write_file(fixture("h.avi"), b.p, b.n);
    ck_assert_ns_status(ns_clip_load(fixture("h.avi"), NULL, &c), NS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "unsupported codec H264"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture("h.avi")));
    free(b.p);
    o.codec = "\0\0\0\0"; /* BI_RGB */
    b = make_avi(&o);
    write_file(fixture("h.avi"), b.p, b.n);
    ck_assert_ns_status(ns_clip_load(fixture("h.avi"), NULL, &c), NS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "codec \\x00\\x00\\x00\\x00"));
    free(b.p);

    /* No frames at all. */
    o = avi_default;
    o.n_frames = 0;
    b = make_avi(&o);
    write_file(fixture("e.avi"), b.p, b.n);
    ck_assert_ns_status(ns_clip_load(fixture("e.avi"), NULL, &c), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "AVI has no video frames"));
    free(b.p);

    /* Cut inside the 5th frame (no idx1): four frames and a warning. */
    o = avi_default;
    o.idx1 = 0;
    b = make_avi(&o);
    size_t seen = 0, cut = 0;
    for (size_t i = 0; i + 8 < b.n && !cut; i++)
        if (memcmp(b.p + i, "00dc", 4) == 0 && ++seen == 5)
            cut = i + 8 + 10;
    write_file(fixture("cut.avi"), b.p, cut);
    ck_assert_ns_ok(ns_clip_load(fixture("cut.avi"), NULL, &c));
    check_avi_frames(&c, 4);
    ck_assert(warned(&c, "past end of file"));
    /* Cut right after the first frame's header: nothing left. */
    seen = 0;
    for (size_t i = 0; i + 8 < b.n; i++)
        if (memcmp(b.p + i, "00dc", 4) == 0) {
            cut = i + 9;
            break;
        }
    write_file(fixture("cut.avi"), b.p, cut);
    ck_assert_ns_status(ns_clip_load(fixture("cut.avi"), NULL, &c), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "no video frames"));
    free(b.p);
    ns_clip_release(&c);
}
END_TEST

START_TEST(test_reuse)
{
    static const int kinds[] = {F_NONE, F_GZIP, F_ZIP, F_XZ, F_ZSTD};
    ns_clip c = {0};
    const void *owned = NULL, *frames = NULL, *names = NULL;
    size_t owned_cap = 0, frames_cap = 0, names_cap = 0;
    char name[32];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "r%d", i);
        write_frames_archive(fixture(name), kinds[i]);
    }
    blob avi = make_avi(&avi_default);
    write_file(fixture("r.avi"), avi.p, avi.n);
    free(avi.p);
    for (int i = 0; i < 50; i++) {
        if (i % 10 == 9) {
            ck_assert_ns_ok(ns_clip_load(fixture("r.avi"), NULL, &c));
            check_avi_frames(&c, avi_default.n_frames);
        } else {
            snprintf(name, sizeof name, "r%d", i % 5);
            ck_assert_ns_ok(ns_clip_load(fixture(name), NULL, &c));
            ck_assert_uint_eq(c.n_frames, N_JPEG);
            check_frame_bytes(&c, 11, &jpeg[11]);
        }
        /* r0 is a plain tar, read in place; r1 (tar.gz) is the first copied out. */
        if (i == 0)
            ck_assert_ptr_null(c.owned_);
        if (i == 0)
            continue;
        if (i == 1) {
            owned = c.owned_, frames = c.frames, names = c.names;
            owned_cap = c.owned_cap_, frames_cap = c.frames_cap_, names_cap = c.names_cap_;
            ck_assert_ptr_nonnull(owned);
        }
        ck_assert_ptr_eq(c.owned_, owned);
        ck_assert_ptr_eq(c.frames, frames);
        ck_assert_ptr_eq(c.names, names);
        ck_assert_uint_eq(c.owned_cap_, owned_cap);
        ck_assert_uint_eq(c.frames_cap_, frames_cap);
        ck_assert_uint_eq(c.names_cap_, names_cap);
    }
    ns_clip_release(&c);
    ck_assert_ptr_null(c.owned_);
    ck_assert_uint_eq(c.owned_cap_, 0);
}
END_TEST

/* A lent read buffer gives the same clip as a mapping: same id, frames and
 * bytes; the bytes live in the buffer (uncompressed containers) until it is
 * taken back; a buffer too small for the file leaves it mapped; a failed load
 * leaves it lent. */
START_TEST(test_lent_buffer)
{
    static const int kinds[] = {F_NONE, F_GZIP, F_ZIP};
    char names[3][16];
    blob s = {0}, avi = make_avi(&avi_default);
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof names[i], "lent%d", i);
        write_frames_archive(fixture(names[i]), kinds[i]);
    }
    for (int k = 0; k < N_JPEG; k++)
        blob_put(&s, jpeg[k].p, jpeg[k].n);
    write_file(fixture("lent.mjpeg"), s.p, s.n);
    write_file(fixture("lent.avi"), avi.p, avi.n);
    free(s.p);
    free(avi.p);
    for (int f = 0; f < 5; f++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s",
                 fixture(f < 3 ? names[f] : f == 3 ? "lent.mjpeg" : "lent.avi"));
        ns_clip mapped = {0}, c = {0};
        blob whole = read_all(path);
        uint8_t want[NS_SHA256_LEN];
        ns_sha256_buf(whole.p, whole.n, want);
        /* plain tar, MJPEG and AVI frames point into the file's bytes; gzip'd
         * tar and zip members are copied into the clip's own buffer */
        int in_place = f == 0 || f >= 3;
        ck_assert_ns_ok(ns_clip_load(path, NULL, &mapped));
        ck_assert_int_eq(mapped.map_ != NULL, in_place);
        for (int round = 0; round < 3; round++) {
            /* round 0: too small by a byte; 1: big enough; 2: kept from round 1 */
            size_t cap = round == 0 ? whole.n - 1 : whole.n;
            if (round < 2) {
                uint8_t *buf = malloc(cap);
                ck_assert_ptr_nonnull(buf);
                ns_clip_lend_buffer(&c, buf, cap);
            }
            uint8_t *lent = c.read_;
            ck_assert_ns_ok(ns_clip_load(path, NULL, &c));
            ck_assert_mem_eq(c.sha256, want, NS_SHA256_LEN);
            ck_assert_mem_eq(c.sha256, mapped.sha256, NS_SHA256_LEN);
            ck_assert_uint_eq(c.n_frames, mapped.n_frames);
            for (size_t i = 0; i < c.n_frames; i++) {
                ck_assert_uint_eq(c.frames[i].size, mapped.frames[i].size);
                ck_assert_mem_eq(c.data + c.frames[i].offset,
                                 mapped.data + mapped.frames[i].offset, c.frames[i].size);
                ck_assert_str_eq(ns_clip_frame_name(&c, i), ns_clip_frame_name(&mapped, i));
            }
            ck_assert_ptr_eq(c.read_, lent); /* the buffer stays with the clip */
            if (round == 0) {
                ck_assert_int_eq(c.map_ != NULL, in_place);
                continue;
            }
            ck_assert_ptr_null(c.map_);
            ck_assert_int_eq(c.data == c.read_, in_place);
        }
        size_t cap = 0;
        uint8_t *back = ns_clip_take_buffer(&c, &cap);
        ck_assert_ptr_nonnull(back);
        ck_assert_uint_eq(cap, whole.n);
        ck_assert_ptr_null(c.read_);
        if (in_place)
            ck_assert_ptr_null(c.data);
        else
            ck_assert_ptr_nonnull(c.data); /* in the clip's own buffer: still there */
        ck_assert_uint_eq(c.n_frames, mapped.n_frames); /* table and names stay */
        free(back);
        ns_clip_release(&c);
        ns_clip_release(&mapped);
        free(whole.p);
    }
    /* A failed load releases the clip but leaves a lent buffer lent. */
    ns_clip c = {0};
    uint8_t *buf = malloc(64);
    size_t cap = 0;
    write_file(fixture("lent.bad"), "not a clip at all", 17);
    ns_clip_lend_buffer(&c, buf, 64);
    ck_assert_int_ne(ns_clip_load(fixture("lent.bad"), NULL, &c), NS_OK);
    ck_assert_uint_eq(c.n_frames, 0);
    ck_assert_ptr_eq(ns_clip_take_buffer(&c, &cap), buf);
    ck_assert_uint_eq(cap, 64);
    free(buf);
    ns_clip_release(&c);
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_fuzz)
{
    blob src[5] = {{0}};
    blob avi = make_avi(&(avi_opts){"MJPG", 5, 1, 1, 1, 1, 1, 25, 1, 0});
    src[0] = avi;
    for (int k = 0; k < 4; k++)
        blob_put(&src[1], jpeg[k + 3].p, jpeg[k + 3].n);
    write_frames_archive(fixture("z.tar"), F_NONE);
    write_frames_archive(fixture("z.tgz"), F_GZIP);
    write_frames_archive(fixture("z.zip"), F_ZIP);
    src[2] = read_all(fixture("z.tar"));
    src[3] = read_all(fixture("z.tgz"));
    src[4] = read_all(fixture("z.zip"));
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    ns_clip c = {0};
    blob m = {0};
    /* NS_CLIP_FUZZ_ITERS raises the count for a longer run by hand. */
    const char *env = getenv("NS_CLIP_FUZZ_ITERS");
    int iters = env && atoi(env) > 0 ? atoi(env) : 150;
    for (int s = 0; s < 5; s++) {
        for (int it = 0; it < iters; it++) {
            m.n = 0;
            blob_put(&m, src[s].p, src[s].n);
            if (it % 3 == 0) {
                m.n = (size_t)(rng_next(&seed) % src[s].n);
            } else {
                int flips = 1 + (int)(rng_next(&seed) % 8);
                for (int f = 0; f < flips; f++) {
                    uint64_t r = rng_next(&seed);
                    /* Mostly headers: that is where lengths live. */
                    size_t at = (size_t)(r % (f & 1 ? src[s].n : (src[s].n < 1024 ? src[s].n : 1024)));
                    m.p[at] = (uint8_t)(r >> 40);
                }
            }
            write_file(fixture("fz"), m.p, m.n);
            ns_status st = ns_clip_load(fixture("fz"), NULL, &c);
            if (st != NS_OK) {
                ck_assert_ptr_nonnull(strstr(ns_errmsg(), fixture("fz")));
                ck_assert_ptr_null(c.frames);
                continue;
            }
            ck_assert_uint_gt(c.n_frames, 0);
            for (size_t i = 0; i < c.n_frames; i++) {
                ck_assert_uint_le(c.frames[i].offset, c.data_len);
                ck_assert_uint_le(c.frames[i].size, c.data_len - c.frames[i].offset);
                ck_assert_uint_lt(c.frames[i].name_off, c.names_len);
                volatile uint8_t sum = 0;
                for (uint64_t j = 0; j < c.frames[i].size; j++)
                    sum ^= c.data[c.frames[i].offset + j];
                (void)sum;
                (void)strlen(ns_clip_frame_name(&c, i));
            }
        }
    }
    ns_clip_release(&c);
    for (int s = 0; s < 5; s++)
        free(src[s].p);
    free(m.p);
}
END_TEST

/* Found by tests/fuzz/fuzz_archive: libarchive's "ZIP uncompressed data is
 * wrong size" message ends in a newline, which reached our one-line message. */
START_TEST(test_archive_message_one_line)
{
    char path[PATH_MAX];
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    ns_clip c;
    memset(&c, 0, sizeof c);
    snprintf(path, sizeof path, "%.*s/corpus/fuzz/archive/zip-wrong-size-message-newline",
             slash ? (int)(slash - src) : 1, slash ? src : ".");
    ck_assert_int_ne(ns_clip_load(path, NULL, &c), NS_OK);
    const char *m = ns_errmsg();
    ck_assert_msg(strstr(m, "wrong size") != NULL, "message: %s", m);
    for (const char *p = m; *p; p++)
        ck_assert_msg((unsigned char)*p >= 0x20, "control byte in: %s", m);
    ns_clip_release(&c);
}
END_TEST

static Suite *clip_suite(void)
{
    Suite *s = suite_create("clip");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_natural_cmp);
    tcase_add_test(tc, test_detect);
    tcase_add_test(tc, test_archives);
    tcase_add_test(tc, test_archive_message_one_line);
    tcase_add_test(tc, test_padded_members);
    tcase_add_test(tc, test_skipped_members);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_corrupt_archives);
    tcase_add_test(tc, test_mjpeg);
    tcase_add_test(tc, test_avi);
    tcase_add_test(tc, test_reuse);
    tcase_add_test(tc, test_lent_buffer);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ns_test_run(clip_suite()); }
