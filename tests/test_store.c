#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include "helpers.h"
#include "nightshift/fsutil.h"
#include "nightshift/store.h"

#define S 16
#define FB ((size_t)S * S * 3)

/* Frame g of the whole test store: a pattern no two frames share. */
static void pattern(uint64_t g, uint8_t *out)
{
    for (size_t j = 0; j < FB; j++)
        out[j] = (uint8_t)(g * 31u + j * 7u + (j >> 5) + (g >> 3));
}

static void clip_id(int n, char hex[NS_SHA256_HEX])
{
    char buf[32];
    uint8_t d[NS_SHA256_LEN];
    snprintf(buf, sizeof buf, "clip-%d", n);
    ns_sha256_buf(buf, strlen(buf), d);
    ns_sha256_hex(d, hex);
}

static void clip_rec(int n, const char *camera, uint32_t frames, ns_clip_record *r)
{
    memset(r, 0, sizeof *r);
    clip_id(n, r->sha256);
    snprintf(r->source, sizeof r->source, "/data/in/clip%d.tar.gz", n);
    snprintf(r->container, sizeof r->container, "tar.gz");
    snprintf(r->camera, sizeof r->camera, "%s", camera);
    r->start_time = 1.7e9 + n;
    r->fps = 25;
    r->orig_width = 640;
    r->orig_height = 480;
    r->frames_seen = frames + 1;
    r->frames_stored = frames;
    r->frames_damaged = (uint32_t)(n % 2);
    r->frames_failed = 1;
    r->qc_flags = n % 2 ? NS_QC_FROZEN | NS_QC_DECODE_WARN : NS_QC_BLACK;
    r->ingest_time = 1.8e9;
}

/* Appends frames g0..g0+n-1 in batches of `batch`. */
static void append_frames(ns_shard_writer *w, uint64_t g0, size_t n, size_t batch)
{
    static uint8_t frames[64 * FB];
    static ns_frame_record recs[64];
    ck_assert_uint_le(batch, 64);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < batch ? n - done : batch;
        for (size_t i = 0; i < k; i++) {
            uint64_t g = g0 + done + i;
            pattern(g, frames + i * FB);
            memset(&recs[i], 0, sizeof recs[i]);
            recs[i].index = (uint32_t)(done + i);
            recs[i].timestamp = (double)g;
            snprintf(recs[i].member, sizeof recs[i].member, "frame_%llu.jpg",
                     (unsigned long long)g);
            recs[i].status = g % 5 == 0 ? NS_FRAME_DAMAGED : NS_FRAME_OK;
            for (int p = 0; p < NS_PROP_COUNT; p++)
                recs[i].props[p] = (float)(g * 10 + (uint64_t)p);
        }
        ck_assert_ns_ok(ns_shard_append(w, frames, recs, k));
        done += k;
    }
}

/* Two shards over two nights: clips 0 (5 frames), 1 (7) | clip 2 (10). */
static void build_store(const char *dir)
{
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_clip_record r;
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-01", &w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 0, 5, 3);
    clip_rec(0, "cam-a", 5, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 5, 7, 4);
    clip_rec(1, "cam-b", 7, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_uint_eq(ns_shard_frames(w), 12);
    ck_assert_uint_eq(ns_shard_clips(w), 2);
    ck_assert_ns_ok(ns_shard_commit(w));
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-02", &w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 12, 10, 10);
    clip_rec(2, "cam-a", 10, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_ns_ok(ns_shard_commit(w));
    ns_store_close(s);
}

static void shard_path(const char *dir, const char *rel, char *buf, size_t cap)
{
    ck_assert_int_lt(snprintf(buf, cap, "%s/%s", dir, rel), (int)cap);
}

START_TEST(test_roundtrip)
{
    char dir[PATH_MAX], hex[NS_SHA256_HEX];
    static uint8_t got[22 * FB], want[FB];
    ns_store *s = NULL;
    size_t n;
    ns_test_tmpdir(dir, sizeof dir, "store");
    build_store(dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ck_assert_int_eq(ns_store_frame_size(s), S);
    const ns_shard_entry *sh = ns_store_shards(s, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(sh[0].path, "shards/2026-11-01/000001.h5");
    ck_assert_str_eq(sh[1].path, "shards/2026-11-02/000002.h5");
    ck_assert_uint_eq(sh[0].n_frames, 12);
    ck_assert_uint_eq(sh[0].n_clips, 2);
    ck_assert_uint_eq(sh[1].n_frames, 10);
    ck_assert_uint_gt(sh[0].file_bytes, 12 * FB);
    const ns_catalog_clip *c = ns_store_clips(s, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(c[0].first_frame, 0);
    ck_assert_uint_eq(c[1].first_frame, 5);
    ck_assert_uint_eq(c[2].first_frame, 12);
    ck_assert_uint_eq(c[2].shard, 1);
    ck_assert_uint_eq(c[1].row, 1);
    ck_assert_uint_eq(c[1].n_frames, 7);
    ck_assert_str_eq(c[1].camera, "cam-b");
    ck_assert_str_eq(c[2].night, "2026-11-02");

    /* frames back, byte-exact, across the shard boundary */
    ck_assert_ns_ok(ns_store_read_frames(s, 0, 22, got));
    for (uint64_t g = 0; g < 22; g++) {
        pattern(g, want);
        ck_assert_msg(memcmp(got + g * FB, want, FB) == 0, "frame %llu differs",
                      (unsigned long long)g);
    }
    ck_assert_ns_ok(ns_store_read_frames(s, 10, 4, got));
    pattern(11, want);
    ck_assert(memcmp(got + FB, want, FB) == 0);
    pattern(12, want);
    ck_assert(memcmp(got + 2 * FB, want, FB) == 0);
    ck_assert_int_eq(ns_store_read_frames(s, 20, 3, got), NS_ERR_USAGE);

    for (int i = 0; i < 3; i++) {
        clip_id(i, hex);
        ck_assert_int_eq(ns_store_find_clip(s, hex), i);
    }
    clip_id(99, hex);
    ck_assert_int_eq(ns_store_find_clip(s, hex), -1);

    ns_clip_record r, want_r;
    ck_assert_ns_ok(ns_store_clip_record(s, 1, &r));
    clip_rec(1, "cam-b", 7, &want_r);
    ck_assert_str_eq(r.sha256, want_r.sha256);
    ck_assert_str_eq(r.source, want_r.source);
    ck_assert_str_eq(r.container, "tar.gz");
    ck_assert_str_eq(r.night, "2026-11-01");
    ck_assert_int_eq(r.orig_height, 480);
    ck_assert_uint_eq(r.qc_flags, want_r.qc_flags);

    ns_store_summary sum;
    ck_assert_ns_ok(ns_store_summarize(s, &sum));
    ck_assert_uint_eq(sum.n_shards, 2);
    ck_assert_uint_eq(sum.n_nights, 2);
    ck_assert_uint_eq(sum.n_cameras, 2);
    ck_assert_uint_eq(sum.n_clips, 3);
    ck_assert_uint_eq(sum.n_frames, 22);
    ck_assert_uint_eq(sum.n_damaged, 1);
    ck_assert_uint_eq(sum.n_failed, 3);
    ck_assert_uint_eq(sum.qc_clips[0], 1); /* frozen: clip 1 */
    ck_assert_uint_eq(sum.qc_clips[1], 2); /* black: clips 0, 2 */
    ck_assert_uint_eq(sum.qc_clips[5], 1);
    ck_assert_uint_gt(sum.bytes_on_disk, sh[0].file_bytes + sh[1].file_bytes);
    ck_assert_str_eq(sum.first_night, "2026-11-01");
    ck_assert_str_eq(sum.last_night, "2026-11-02");

    ns_verify_report rep;
    ck_assert_ns_ok(ns_store_verify(s, &rep));
    ck_assert_msg(rep.n_errors == 0 && rep.n_notes == 0, "%s",
                  rep.problems.n_kept ? rep.problems.msgs[0] : "");
    ck_assert_uint_eq(rep.shards_checked, 2);
    ns_verify_report_release(&rep);
    ns_store_close(s);
}
END_TEST

/* Reads the view with HDF5 from C (from the test's cwd, not DIR). */
START_TEST(test_view_readable_from_hdf5)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], cmd[4 * PATH_MAX];
    static uint8_t got[22 * FB], want[FB];
    uint32_t clip[22];
    uint64_t nf = 0;
    hsize_t dims[4];
    ns_test_tmpdir(dir, sizeof dir, "store");
    build_store(dir);
    snprintf(path, sizeof path, "%s/view.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t a = H5Aopen(f, "n_frames", H5P_DEFAULT);
    ck_assert_int_ge(H5Aread(a, H5T_NATIVE_UINT64, &nf), 0);
    H5Aclose(a);
    ck_assert_uint_eq(nf, 22);
    hid_t d = H5Dopen2(f, "frames", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_dims(sp, dims, NULL), 4);
    ck_assert_uint_eq(dims[0], 22);
    ck_assert_uint_eq(dims[1], S);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, got), 0);
    for (uint64_t g = 0; g < 22; g++) {
        pattern(g, want);
        ck_assert_msg(memcmp(got + g * FB, want, FB) == 0, "view frame %llu differs",
                      (unsigned long long)g);
    }
    H5Sclose(sp);
    H5Dclose(d);
    d = H5Dopen2(f, "frame/clip", H5P_DEFAULT);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, clip), 0);
    H5Dclose(d);
    ck_assert_uint_eq(clip[4], 0);
    ck_assert_uint_eq(clip[5], 1);
    ck_assert_uint_eq(clip[11], 1);
    ck_assert_uint_eq(clip[12], 2);
    ck_assert_uint_eq(clip[21], 2);
    d = H5Dopen2(f, "frame/index", H5P_DEFAULT);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, clip), 0);
    H5Dclose(d);
    ck_assert_uint_eq(clip[5], 0);
    ck_assert_uint_eq(clip[11], 6);
    d = H5Dopen2(f, "clips", H5P_DEFAULT);
    sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    ck_assert_uint_eq(dims[0], 3);
    H5Sclose(sp);
    H5Dclose(d);
    ck_assert_int_gt(H5Lexists(f, "shards/000002/frames", H5P_DEFAULT), 0);
    H5Fclose(f);

    /* h5py, as users will read it, from another working directory */
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0)
        return;
    snprintf(cmd, sizeof cmd,
             "cd / && /usr/bin/python3 -c '\n"
             "import h5py, numpy as np, sys\n"
             "f = h5py.File(sys.argv[1], \"r\")\n"
             "fr = f[\"frames\"][:]\n"
             "assert fr.shape == (22, %d, %d, 3), fr.shape\n"
             "j = np.arange(%d * %d * 3, dtype=np.uint64)\n"
             "for g in range(22):\n"
             "    want = ((g * 31 + j * 7 + (j >> 5) + (g >> 3)) %% 256).astype(np.uint8)\n"
             "    assert (fr[g].reshape(-1) == want).all(), g\n"
             "assert f.attrs[\"ns_format\"] == b\"nightshift-view\" or f.attrs[\"ns_format\"] == \"nightshift-view\"\n"
             "assert list(f[\"frame/clip\"][:]) == [0]*5 + [1]*7 + [2]*10\n"
             "c = f[\"clips\"][:]\n"
             "assert c[\"camera\"][1] == b\"cam-b\", c[\"camera\"]\n"
             "assert c[\"first_frame\"][2] == 12 and c[\"frames_seen\"][2] == 11\n"
             "assert f[\"frame/member\"][12] == b\"frame_12.jpg\"\n"
             "assert f[\"shards/000001/frames\"].shape[0] == 12\n"
             "assert f[\"frame/props\"].attrs[\"names\"][0] == b\"mean_luma\"\n"
             "assert f[\"frame/props\"][13, 1] == 131\n"
             "' '%s/view.h5'",
             S, S, S, S, dir);
    int rc = system(cmd);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "h5py check failed (rc %d)", rc);
    /* a moved store still works: the view's source paths are relative */
    char moved[PATH_MAX + 16], mv[3 * PATH_MAX];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    snprintf(mv, sizeof mv, "mv '%s' '%s'", dir, moved);
    ck_assert_int_eq(system(mv), 0);
    char *at = strstr(cmd, dir);
    ck_assert_ptr_nonnull(at);
    snprintf(mv, sizeof mv, "%.*s%s/view.h5'", (int)(at - cmd), cmd, moved);
    rc = system(mv);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "h5py on the moved store failed");
}
END_TEST

START_TEST(test_corrupt_shard_detected)
{
    char dir[PATH_MAX], path[PATH_MAX + 300];
    ns_store *s = NULL;
    ns_verify_report rep;
    size_t n;
    ns_test_tmpdir(dir, sizeof dir, "store");
    build_store(dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    const ns_shard_entry *sh = ns_store_shards(s, &n);
    shard_path(dir, sh[1].path, path, sizeof path);
    /* flip one byte of frame data, in the middle of the file */
    FILE *fp = fopen(path, "r+b");
    ck_assert_ptr_nonnull(fp);
    long at = (long)(sh[1].file_bytes / 2);
    fseek(fp, at, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(ch ^ 0x5a, fp);
    fclose(fp);
    ck_assert_ns_ok(ns_store_verify(s, &rep));
    ck_assert_uint_ge(rep.n_errors, 1);
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[0], "000002.h5"));
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[0], "checksum xxh3-128-tree:"));
    ns_verify_report_release(&rep);
    ns_store_close(s);
}
END_TEST

static void set_catalog_attr(const char *dir, const char *fmt, int version)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/catalog.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    H5Adelete(f, "ns_format");
    H5Adelete(f, "ns_format_version");
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(fmt) + 1);
    hid_t a = H5Acreate2(f, "ns_format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, fmt);
    H5Aclose(a);
    int32_t v = version;
    a = H5Acreate2(f, "ns_format_version", H5T_NATIVE_INT32, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
}

START_TEST(test_wrong_format_refused)
{
    char dir[PATH_MAX], file[PATH_MAX + 32];
    ns_store *s = NULL;
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    ns_store_close(s);
    set_catalog_attr(dir, "something-else", 1);
    ck_assert_int_eq(ns_store_open_read(dir, &s), NS_ERR_FORMAT);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "catalog.h5"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "something-else"));
    ck_assert_int_eq(ns_store_open_write(dir, S, 0, &s), NS_ERR_FORMAT);
    set_catalog_attr(dir, NS_STORE_FORMAT_CATALOG, 7);
    ck_assert_int_eq(ns_store_open_read(dir, &s), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "version 7, expected 1"));

    /* a non-empty directory without a catalog is not adopted */
    ns_test_tmpdir(dir, sizeof dir, "notstore");
    snprintf(file, sizeof file, "%s/holiday.jpg", dir);
    ck_assert_ns_ok(ns_write_file_atomic(file, "x", 1));
    ck_assert_int_eq(ns_store_open_write(dir, S, 0, &s), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "is not a nightshift store (no catalog.h5)"));
    snprintf(file, sizeof file, "%s/lock", dir);
    ck_assert_int_ne(access(file, F_OK), 0);
    ck_assert_int_eq(ns_store_open_read(dir, &s), NS_ERR_FORMAT);
    snprintf(file, sizeof file, "%s/missing", dir);
    ck_assert_int_eq(ns_store_open_read(file, &s), NS_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_frame_size_mismatch)
{
    char dir[PATH_MAX];
    ns_store *s = NULL;
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    ns_store_close(s);
    ck_assert_int_eq(ns_store_open_write(dir, 2 * S, 0, &s), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "16x16"));
    ck_assert_ns_ok(ns_store_open_write(dir, 0, 0, &s));
    ck_assert_int_eq(ns_store_frame_size(s), S);
    ns_store_close(s);
    /* a fresh store with 0 takes the default */
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, 0, 0, &s));
    ck_assert_int_eq(ns_store_frame_size(s), NS_STORE_DEFAULT_FRAME_SIZE);
    ns_store_close(s);
}
END_TEST

START_TEST(test_abort_and_empty_commit)
{
    char dir[PATH_MAX], hex[NS_SHA256_HEX];
    static uint8_t got[3 * FB], want[FB];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_clip_record r;
    size_t n;
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    ns_shard_writer *w2 = NULL;
    ck_assert_int_eq(ns_shard_begin(s, "../etc", &w2), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "YYYY-MM-DD"));
    /* empty commit: nothing happens */
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-05", &w));
    ck_assert_ns_ok(ns_shard_commit(w));
    ns_store_shards(s, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-05", &w));
    ck_assert_int_eq(ns_shard_begin(s, "2026-11-05", &w2), NS_ERR_USAGE); /* one at a time */
    ck_assert_int_eq(ns_shard_append(w, got, NULL, 0), NS_ERR_USAGE);   /* outside a clip */
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 100, 4, 3);
    ck_assert_ns_ok(ns_shard_abort_clip(w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 0, 3, 2);
    clip_rec(7, "cam-z", 3, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_uint_eq(ns_shard_frames(w), 3);
    /* a clip already in this shard: EXISTS, its frames dropped */
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 50, 2, 2);
    ck_assert_int_eq(ns_shard_end_clip(w, &r), NS_ERR_EXISTS);
    ck_assert_uint_eq(ns_shard_frames(w), 3);
    ck_assert_ns_ok(ns_shard_commit(w));
    const ns_shard_entry *sh = ns_store_shards(s, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(sh[0].id, 1); /* the empty commit used no id */
    ck_assert_uint_eq(sh[0].n_frames, 3);
    ck_assert_ns_ok(ns_store_read_frames(s, 0, 3, got));
    for (uint64_t g = 0; g < 3; g++) {
        pattern(g, want);
        ck_assert(memcmp(got + g * FB, want, FB) == 0);
    }
    /* committed clip: EXISTS in a later shard too */
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-06", &w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    ck_assert_int_eq(ns_shard_end_clip(w, &r), NS_ERR_EXISTS);
    ns_shard_discard(w);
    clip_id(7, hex);
    ck_assert_int_eq(ns_store_find_clip(s, hex), 0);
    ns_store_close(s);
}
END_TEST

START_TEST(test_crash_orphan_and_tmp)
{
    char dir[PATH_MAX], src[PATH_MAX + 64], dst[PATH_MAX + 64], cmd[3 * PATH_MAX];
    ns_store *s = NULL;
    ns_verify_report rep;
    size_t n;
    ns_test_tmpdir(dir, sizeof dir, "store");
    build_store(dir);
    /* a crash between shard rename and catalog commit leaves this behind */
    snprintf(src, sizeof src, "%s/shards/2026-11-02/000002.h5", dir);
    snprintf(dst, sizeof dst, "%s/shards/2026-11-03", dir);
    ck_assert_ns_ok(ns_mkdir_p(dst));
    snprintf(dst, sizeof dst, "%s/shards/2026-11-03/000003.h5", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(src, sizeof src, "%s/tmp/000003.h5.tmp.99999", dir);
    ck_assert_ns_ok(ns_write_file_atomic(src, "partial", 7));
    /* a kill while the view (or catalog) was being rewritten leaves this */
    char vtmp[PATH_MAX + 32];
    snprintf(vtmp, sizeof vtmp, "%s/view.h5.tmp.99998", dir);
    ck_assert_ns_ok(ns_write_file_atomic(vtmp, "partial", 7));

    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ns_store_shards(s, &n);
    ck_assert_uint_eq(n, 2);
    ns_store_summary sum;
    ck_assert_ns_ok(ns_store_summarize(s, &sum));
    ck_assert_uint_eq(sum.n_frames, 22);
    ck_assert_ns_ok(ns_store_verify(s, &rep));
    ck_assert_uint_eq(rep.n_errors, 0);
    ck_assert_uint_eq(rep.n_notes, 3);
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[0], "orphan shard"));
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[2], "view.h5.tmp.99998"));
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[0], "000003.h5"));
    ck_assert_ptr_nonnull(strstr(rep.problems.msgs[1], "tmp/000003.h5.tmp.99999"));
    ns_verify_report_release(&rep);
    ck_assert_int_eq(access(dst, F_OK), 0); /* verify never modifies */
    ns_store_close(s);

    ck_assert_ns_ok(ns_store_open_write(dir, 0, 0, &s));
    ck_assert_int_ne(access(dst, F_OK), 0);
    ck_assert_int_ne(access(src, F_OK), 0);
    ck_assert_int_ne(access(vtmp, F_OK), 0);
    ns_store_close(s);
}
END_TEST

START_TEST(test_commit_failure_leaves_store_unchanged)
{
    char dir[PATH_MAX], blocker[PATH_MAX + 64], shard[PATH_MAX + 64];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_clip_record r;
    ns_verify_report rep;
    size_t n;
    ns_test_tmpdir(dir, sizeof dir, "store");
    build_store(dir);
    ck_assert_ns_ok(ns_store_open_write(dir, 0, 0, &s));
    /* a directory where the new catalog's temp file goes makes the save fail */
    snprintf(blocker, sizeof blocker, "%s/catalog.h5.tmp.%ld", dir, (long)getpid());
    ck_assert_int_eq(mkdir(blocker, 0755), 0);
    ck_assert_ns_ok(ns_shard_begin(s, "2026-11-09", &w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    append_frames(w, 22, 3, 3);
    clip_rec(9, "cam-a", 3, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_int_ne(ns_shard_commit(w), NS_OK);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "catalog.h5.tmp"));
    snprintf(shard, sizeof shard, "%s/shards/2026-11-09/000003.h5", dir);
    ck_assert_int_ne(access(shard, F_OK), 0);
    ns_store_shards(s, &n);
    ck_assert_uint_eq(n, 2);
    ns_store_close(s);
    rmdir(blocker);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ns_store_clips(s, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_ns_ok(ns_store_verify(s, &rep));
    ck_assert_msg(rep.n_errors == 0 && rep.n_notes == 0, "%s",
                  rep.problems.n_kept ? rep.problems.msgs[0] : "");
    ns_verify_report_release(&rep);
    ns_store_close(s);
}
END_TEST

START_TEST(test_writer_lock_busy)
{
    char dir[PATH_MAX], want[64];
    ns_store *s = NULL, *s2 = NULL;
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    /* same process, second open file description: conflicts too */
    ck_assert_int_eq(ns_store_open_write(dir, S, 0, &s2), NS_ERR_BUSY);
    snprintf(want, sizeof want, "locked by another writer (pid %ld)", (long)getpid());
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), want));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ns_store *c = NULL;
        ns_status st = ns_store_open_write(dir, S, 0, &c);
        _exit(st == NS_ERR_BUSY && strstr(ns_errmsg(), want) ? 0 : 1);
    }
    int wst = 0;
    ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
    ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    /* readers need no lock */
    ck_assert_ns_ok(ns_store_open_read(dir, &s2));
    ns_store_close(s2);
    ns_store_close(s);
    ck_assert_ns_ok(ns_store_open_write(dir, S, 1, &s));
    ns_store_close(s);
}
END_TEST

START_TEST(test_empty_store_view_and_chunks)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_clip_record r;
    hsize_t dims[4], chunk[4];
    static uint8_t frames[7 * 224 * 224 * 3];
    static ns_frame_record recs[7];
    ns_test_tmpdir(dir, sizeof dir, "store");
    ck_assert_ns_ok(ns_store_open_write(dir, 224, 0, &s));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(path, sizeof path, "%s/view.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, "frames", H5P_DEFAULT), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_dims(sp, dims, NULL), 4);
    ck_assert_uint_eq(dims[0], 0);
    ck_assert_uint_eq(dims[3], 3);
    H5Sclose(sp);
    H5Dclose(d);
    d = H5Dopen2(f, "frame/props", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    H5Dclose(d);
    H5Fclose(f);

    ck_assert_ns_ok(ns_shard_begin(s, "2026-12-01", &w));
    ck_assert_ns_ok(ns_shard_begin_clip(w));
    memset(frames, 9, sizeof frames);
    for (int i = 0; i < 3; i++)
        ck_assert_ns_ok(ns_shard_append(w, frames, recs, 7));
    clip_rec(1, "cam", 21, &r);
    ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    ck_assert_ns_ok(ns_shard_commit(w));
    ns_store_close(s);
    snprintf(path, sizeof path, "%s/shards/2026-12-01/000001.h5", dir);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    d = H5Dopen2(f, "frames", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    ck_assert_int_eq(H5Pget_chunk(dcpl, 4, chunk), 4);
    ck_assert_uint_eq(chunk[0], 14);
    ck_assert_uint_eq(chunk[1], 224);
    ck_assert_int_eq(H5Pget_nfilters(dcpl), 0);
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_view_readable_from_hdf5);
    tcase_add_test(tc, test_corrupt_shard_detected);
    tcase_add_test(tc, test_wrong_format_refused);
    tcase_add_test(tc, test_frame_size_mismatch);
    tcase_add_test(tc, test_abort_and_empty_commit);
    tcase_add_test(tc, test_crash_orphan_and_tmp);
    tcase_add_test(tc, test_commit_failure_leaves_store_unchanged);
    tcase_add_test(tc, test_writer_lock_busy);
    tcase_add_test(tc, test_empty_store_view_and_chunks);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
