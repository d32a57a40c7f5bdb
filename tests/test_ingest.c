/* The ingest stage through its library API, on clips made here. */
#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <turbojpeg.h>

#include "../src/ingest/ingest_internal.h"
#include "helpers.h"
#include "nightshift/ingest.h"
#include "nightshift/sha256.h"
#include "nightshift/store.h"

/* A w x h JPEG whose content depends on seed; caller frees with tjFree. */
static unsigned char *make_jpeg(int w, int h, int seed, unsigned long *size)
{
    tjhandle tj = tjInitCompress();
    unsigned char *rgb = malloc((size_t)w * h * 3), *jpg = NULL;
    ck_assert_ptr_nonnull(rgb);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)(x * 255 / w);
            p[1] = (unsigned char)(y * 255 / h);
            p[2] = (unsigned char)((seed * 37 + (x / 8 + y / 8) * 11) & 255);
        }
    ck_assert_int_eq(tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpg, size, TJSAMP_420, 90, 0), 0);
    free(rgb);
    tjDestroy(tj);
    return jpg;
}

/* A tar of n frames named frame_<i>.jpg, gzip'd or not, plus (pad > 0) a
 * member of pad zero bytes, skipped as not a JPEG: clips of chosen sizes
 * that cost little to make. */
static void make_tar_ex(const char *path, int n, int seed, int w, int h, int gzip, size_t pad)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip)
        archive_write_add_filter_gzip(a);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n + (pad > 0); i++) {
        unsigned long size = pad;
        unsigned char *jpg = i < n ? make_jpeg(w, h, seed * 1000 + i, &size) : NULL;
        char name[64];
        struct archive_entry *e = archive_entry_new();
        snprintf(name, sizeof name, i < n ? "frame_%d.jpg" : "pad.bin", i);
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        if (jpg) {
            archive_write_data(a, jpg, size);
            tjFree(jpg);
        } else {
            unsigned char *zeros = calloc(1, pad);
            ck_assert_ptr_nonnull(zeros);
            archive_write_data(a, zeros, pad);
            free(zeros);
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

/* A tar.gz of n frames named frame_<i>.jpg. */
static void make_tar(const char *path, int n, int seed, int w, int h)
{
    make_tar_ex(path, n, seed, w, h, 1, 0);
}

START_TEST(test_ingest_dedup_and_outcomes)
{
    char dir[PATH_MAX], in[PATH_MAX + 8], store[PATH_MAX + 8], p[PATH_MAX + 64];
    ns_ingest_opts o;
    ns_ingest_summary sum;
    ns_test_tmpdir(dir, sizeof dir, "ingest");
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    mkdir(in, 0755);
    snprintf(p, sizeof p, "%s/camA_2026-11-01_220000.tar.gz", in);
    make_tar(p, 10, 1, 160, 120);
    snprintf(p, sizeof p, "%s/camB_2026-11-01_230000.tar.gz", in);
    make_tar(p, 7, 2, 200, 100);
    snprintf(p, sizeof p, "%s/notes.txt", in); /* not a clip: skipped silently in walks */
    ns_test_write_text(p, "hello");

    ns_ingest_default_opts(&o);
    snprintf(o.night, sizeof o.night, "2026-11-01");
    o.frame_size = 32;
    o.threads = 2;
    o.batch = 4; /* several batches per clip */
    const char *inputs[] = {in};
    ck_assert_ns_ok(ns_ingest_run(store, inputs, 1, &o, &sum));
    ck_assert_uint_eq(sum.inputs, 3);
    ck_assert_uint_eq(sum.files_skipped, 1);
    ck_assert_str_eq(sum.night, "2026-11-01");
    ck_assert_uint_eq(sum.clips[NS_OUTCOME_INGESTED], 2);
    ck_assert_uint_eq(sum.frames_stored, 17);
    ck_assert_uint_eq(sum.shards_committed, 1);
    ck_assert_uint_eq(sum.n_problems, 0);
    ns_ingest_summary_release(&sum);

    /* Same clips again, plus an explicit non-clip file: duplicates and one problem. */
    const char *again[] = {in, p};
    ck_assert_ns_ok(ns_ingest_run(store, again, 2, &o, &sum));
    ck_assert_uint_eq(sum.clips[NS_OUTCOME_DUPLICATE], 2);
    ck_assert_uint_eq(sum.clips[NS_OUTCOME_INGESTED], 0);
    ck_assert_uint_eq(sum.clips[NS_OUTCOME_UNRECOGNISED], 1);
    ck_assert_uint_eq(sum.n_problems, 1);
    ck_assert_ptr_nonnull(strstr(sum.problems[0].reason, "notes.txt"));
    ck_assert_uint_eq(sum.shards_committed, 0);
    ns_ingest_summary_release(&sum);

    ns_store *s = NULL;
    size_t n;
    ck_assert_ns_ok(ns_store_open_read(store, &s));
    const ns_catalog_clip *clips = ns_store_clips(s, &n);
    ck_assert_uint_eq(n, 2);
    ns_clip_record rec;
    ck_assert_ns_ok(ns_store_clip_record(s, 0, &rec));
    ck_assert_str_eq(rec.camera, "camA"); /* from the file-name pattern */
    ck_assert_str_eq(clips[0].night, "2026-11-01");
    ck_assert_uint_eq(rec.frames_seen, 10);
    ck_assert_uint_eq(rec.frames_stored, 10);
    ck_assert_int_eq(rec.orig_width, 160);
    ck_assert_str_eq(rec.container, "tar.gz");
    ck_assert_double_eq(rec.start_time, 1793570400.0);
    ck_assert_ns_ok(ns_store_clip_record(s, 1, &rec));
    ck_assert_str_eq(rec.camera, "camB");
    ns_store_close(s);
}
END_TEST

START_TEST(test_sampling_every_and_fps)
{
    char dir[PATH_MAX], store[PATH_MAX + 8], p[PATH_MAX + 64], man[PATH_MAX + 16];
    ns_ingest_opts o;
    ns_ingest_summary sum;
    ns_test_tmpdir(dir, sizeof dir, "ingest-sample");
    snprintf(p, sizeof p, "%s/clip.tar.gz", dir);
    make_tar(p, 20, 3, 64, 48);
    snprintf(man, sizeof man, "%s/m.csv", dir);
    ns_test_write_text(man, "path,camera,start_time,fps,night\nclip.tar.gz,c9,2026-11-02T01:00:00Z,10,2026-11-01\n");
    const char *inputs[] = {p};

    ns_ingest_default_opts(&o);
    o.frame_size = 32;
    o.every = 3;
    snprintf(store, sizeof store, "%s/s1", dir);
    ck_assert_ns_ok(ns_ingest_run(store, inputs, 1, &o, &sum));
    ck_assert_uint_eq(sum.frames_stored, 7); /* 0,3,...,18 */
    ck_assert_uint_eq(sum.frames_skipped, 13);
    ns_ingest_summary_release(&sum);

    ns_ingest_default_opts(&o);
    o.frame_size = 32;
    o.manifest = man;
    o.fps = 2.5; /* clip at 10 fps: one frame in four */
    snprintf(store, sizeof store, "%s/s2", dir);
    ck_assert_ns_ok(ns_ingest_run(store, inputs, 1, &o, &sum));
    ck_assert_uint_eq(sum.frames_stored, 5);
    ns_ingest_summary_release(&sum);

    ns_store *s = NULL;
    ns_clip_record rec;
    size_t n;
    ck_assert_ns_ok(ns_store_open_read(store, &s));
    const ns_catalog_clip *c = ns_store_clips(s, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(c[0].night, "2026-11-01"); /* the manifest's night */
    ck_assert_ns_ok(ns_store_clip_record(s, 0, &rec));
    ck_assert_str_eq(rec.camera, "c9");
    ck_assert_double_eq(rec.fps, 10);
    ns_store_close(s);
}
END_TEST

static volatile sig_atomic_t cancel_flag;

static void cancel_after_first(void *ctx, const ns_ingest_clip_result *r)
{
    (void)ctx;
    if (r->outcome == NS_OUTCOME_INGESTED)
        cancel_flag = 1;
}

START_TEST(test_cancel_keeps_finished_clips)
{
    char dir[PATH_MAX], store[PATH_MAX + 8], p[PATH_MAX + 64];
    ns_ingest_opts o;
    ns_ingest_summary sum;
    ns_test_tmpdir(dir, sizeof dir, "ingest-cancel");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/c%d.tar.gz", dir, i);
        make_tar(p, 4, 10 + i, 64, 48);
    }
    snprintf(store, sizeof store, "%s/store", dir);
    ns_ingest_default_opts(&o);
    o.frame_size = 32;
    o.batch = 4; /* one clip per batch */
    o.cancel = &cancel_flag;
    o.on_clip = cancel_after_first;
    const char *inputs[] = {dir};
    ck_assert_int_eq(ns_ingest_run(store, inputs, 1, &o, &sum), NS_ERR_INTERRUPTED);
    ck_assert_uint_eq(sum.inputs, 3); /* the store, inside dir, is not walked */
    /* Clip 0 is reported while clip 1 decodes, if the loader had clip 1
     * ready (it is not waited for while there is work: on a busy machine it
     * may not be); the run then stops, keeping the finished clips and never
     * starting clip 2. */
    size_t done = sum.clips[NS_OUTCOME_INGESTED];
    ck_assert_msg(done == 1 || done == 2, "%zu clips ingested", done);
    ns_ingest_summary_release(&sum);
    ns_store *s = NULL;
    size_t n;
    ck_assert_ns_ok(ns_store_open_read(store, &s));
    ns_store_clips(s, &n);
    ck_assert_uint_eq(n, done); /* the finished clips were committed */
    ns_store_close(s);
}
END_TEST

/* A loaded clip matches a plain load of its file; 1 when its bytes were read
 * into a pooled buffer (never for the first clip), 0 when mapped. */
static int check_loaded(const ns_loaded *ld, const char *path, const ns_clip_limits *lim, int i)
{
    uint8_t want[NS_SHA256_LEN];
    ns_clip plain = {0};
    ck_assert_msg(ld->st == NS_OK, "%s: %s", path, ld->msg);
    ck_assert_ns_ok(ns_sha256_file(path, want));
    ck_assert_mem_eq(ld->clip.sha256, want, NS_SHA256_LEN);
    ck_assert_ns_ok(ns_clip_load(path, lim, &plain));
    ck_assert_uint_eq(ld->clip.n_frames, plain.n_frames);
    for (size_t k = 0; k < plain.n_frames; k++)
        ck_assert_mem_eq(ld->clip.data + ld->clip.frames[k].offset,
                         plain.data + plain.frames[k].offset, plain.frames[k].size);
    ns_clip_release(&plain);
    int read = ld->clip.read_ != NULL && ld->clip.data == ld->clip.read_;
    if (i == 0)
        ck_assert_int_eq(read, 0);
    return read;
}

/* The loader's buffer pool: every clip read into a pooled buffer or mapped
 * gives the same id and frame bytes as a plain load; the pool stays within
 * its budget (grown to three of the largest clip) while three slots are held
 * and the loader fills the fourth, then with early releases (when the loader
 * must wait for a buffer rather than map), across a clip that fails to load
 * and one that is empty; the first clip is mapped (nothing is allocated
 * before a clip is taken). */
START_TEST(test_loader_pool)
{
    enum { N = 16, BAD = 2, EMPTY = 4 };
    char dir[PATH_MAX], paths[N][PATH_MAX + 32];
    ns_input items[N];
    ns_input_list list = {.items = items, .n = N, .cap = N};
    ns_clip_limits lim;
    ns_loader *l = NULL;
    ns_loaded *held[3] = {NULL, NULL, NULL};
    size_t biggest = 0, n_read = 0;
    ns_test_tmpdir(dir, sizeof dir, "ingest-pool");
    ns_clip_limits_default(&lim);
    for (int i = 0; i < N; i++) {
        struct stat sb;
        snprintf(paths[i], sizeof paths[i], "%s/c%02d.tar", dir, i);
        if (i == BAD) {
            ns_test_write_text(paths[i], "not a clip at all\n");
        } else if (i == EMPTY) {
            ns_test_write_text(paths[i], "");
        } else {
            make_tar_ex(paths[i], 3 + i % 4, i, 64, 48, 0, (size_t)(2200 + (i * 397) % 1600) << 10);
        }
        ck_assert_int_eq(stat(paths[i], &sb), 0);
        items[i] = (ns_input){.path = paths[i], .bytes = (uint64_t)sb.st_size};
        size_t need = ((size_t)sb.st_size + (2u << 20) - 1) / (2u << 20) * (2u << 20);
        biggest = need > biggest ? need : biggest;
    }
    const size_t budget = (size_t)5 << 20, bound = 3 * biggest > budget ? 3 * biggest : budget;
    ck_assert_ns_ok(ns_loader_start(&list, &lim, 4, budget, &l));
    for (int i = 0; i <= N; i++) {
        /* First half: three slots held, bytes kept.  Second half, the
         * ingest's pattern: two held with their bytes, one loaded, and the
         * loader, finding the budget spent while that clip waits, waits for
         * a buffer rather than mapping the next; the older clip's bytes then
         * go back (after a pause for the loader to get there), then the
         * loaded clip is taken and the older one given back. */
        int second = i >= N / 2, keep = second ? 2 : 3, n_held = !!held[0] + !!held[1] + !!held[2];
        ns_loaded *released = NULL;
        if (second && n_held == keep) {
            usleep(20000);
            ns_loader_data_done(l, released = held[0]);
        }
        ns_loaded *ld = ns_loader_take(l);
        if (i == N) {
            ck_assert_ptr_null(ld->in);
            ns_loader_give_back(l, ld);
            break;
        }
        ck_assert_ptr_eq(ld->in, &items[i]);
        if (i == BAD || i == EMPTY) {
            ck_assert_int_ne(ld->st, NS_OK); /* held like the others all the same */
        } else {
            int read = check_loaded(ld, paths[i], &lim, i);
            n_read += (size_t)read;
            if (i >= N / 2 + 2) /* loaded in the second half */
                ck_assert_msg(read, "clip %d was mapped while a buffer was coming back", i);
        }
        for (; n_held >= keep; n_held--) {
            if (held[0] == released)
                ck_assert_ptr_null(held[0]->clip.read_); /* its bytes went back */
            ns_loader_give_back(l, held[0]);
            held[0] = held[1];
            held[1] = held[2];
            held[2] = NULL;
        }
        held[n_held] = ld;
        while (i + 1 < N && !ns_loader_ready(l)) /* the loader has filled a slot */
            usleep(1000);
        ck_assert_uint_le(ns_loader_pool_bytes(l), bound);
    }
    for (int k = 0; k < 3; k++)
        if (held[k])
            ns_loader_give_back(l, held[k]);
    ck_assert_uint_le(ns_loader_pool_bytes(l), bound);
    ck_assert_msg(n_read >= N / 2, "only %zu of %d clips were read into pooled buffers", n_read,
                  N - 2);
    ns_loader_stop(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ingest_dedup_and_outcomes);
    tcase_add_test(tc, test_sampling_every_and_fps);
    tcase_add_test(tc, test_cancel_keeps_finished_clips);
    tcase_add_test(tc, test_loader_pool);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
