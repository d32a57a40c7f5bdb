#define _GNU_SOURCE /* strcasestr */
/* test_report.c -- the detect stage's outputs: report files and detect.h5.
 *
 * Results are built by hand (small arrays, hostile strings) so the report is
 * tested without running detection; thumbnails come from a small real store.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/csv.h"
#include "nightshift/detfile.h"
#include "nightshift/fsutil.h"
#include "nightshift/report.h"
#include "nightshift/sha256.h"

#define S 16
#define FB ((size_t)S * S * 3)
#define N_CLIPS 3
#define PER_CLIP 4
#define N_FRAMES (N_CLIPS * PER_CLIP)

static const char *const CAMERAS[N_CLIPS] = {"<script>alert(1)</script>", "cam-b", "cam,\"c\""};
static const char *const SOURCES[N_CLIPS] = {"=cmd|' /C calc'!A0", "/data/in/b.tar.gz",
                                             "@sum(a1)\tx.zip"};
static const char *const MEMBER0 = "a \"quoted\", comma\nnewline & amp.jpg";
static const char *const MEMBER1 = "-minus.jpg";
#define MODEL_ID "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static const char *member_of(size_t i, char buf[NS_MEMBER_LEN])
{
    if (i == 0)
        return MEMBER0;
    if (i == 1)
        return MEMBER1;
    snprintf(buf, NS_MEMBER_LEN, "frame_%02zu.jpg", i);
    return buf;
}

/* A store with N_CLIPS clips of PER_CLIP frames: colourful gradients, so the
 * thumbnails show something. */
static void build_store(const char *dir)
{
    static uint8_t frames[PER_CLIP * FB];
    ns_frame_record recs[PER_CLIP];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_clip_record r;
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    ck_assert_ns_ok(ns_shard_begin(s, "2024-03-02", &w));
    for (int c = 0; c < N_CLIPS; c++) {
        ck_assert_ns_ok(ns_shard_begin_clip(w));
        for (int i = 0; i < PER_CLIP; i++) {
            char mb[NS_MEMBER_LEN];
            uint8_t *f = frames + (size_t)i * FB;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    uint8_t *p = f + ((size_t)y * S + (size_t)x) * 3;
                    p[0] = (uint8_t)(x * 16 + c * 40);
                    p[1] = (uint8_t)(y * 16 + i * 30);
                    p[2] = (uint8_t)(255 - x * 8 - y * 8);
                }
            memset(&recs[i], 0, sizeof recs[i]);
            recs[i].index = (uint32_t)i;
            recs[i].timestamp = 1.7e9 + c * 600 + i;
            snprintf(recs[i].member, sizeof recs[i].member, "%s",
                     member_of((size_t)(c * PER_CLIP + i), mb));
        }
        ck_assert_ns_ok(ns_shard_append(w, frames, recs, PER_CLIP));
        memset(&r, 0, sizeof r);
        ns_test_clip_sha("report-clip", c, r.sha256);
        snprintf(r.source, sizeof r.source, "%s", SOURCES[c]);
        snprintf(r.container, sizeof r.container, "tar.gz");
        snprintf(r.camera, sizeof r.camera, "%s", CAMERAS[c]);
        r.start_time = 1.7e9 + c * 600;
        r.frames_seen = r.frames_stored = PER_CLIP;
        ck_assert_ns_ok(ns_shard_end_clip(w, &r));
    }
    ck_assert_ns_ok(ns_shard_commit(w));
    ns_store_close(s);
}

static uint64_t lcg(uint64_t *st)
{
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return *st >> 33;
}

static void build_ref(ns_reference *ref)
{
    memset(ref, 0, sizeof *ref);
    snprintf(ref->model_id, sizeof ref->model_id, "%s", MODEL_ID);
    snprintf(ref->model_name, sizeof ref->model_name, "resnet \"<i>big</i>\"");
    ref->knn_k = 5;
    ref->kmeans_k = 4;
    ref->sigma = 0.75;
    ref->n_nights = 2;
    ref->nights = calloc(2, sizeof *ref->nights);
    ck_assert_ptr_nonnull(ref->nights);
    snprintf(ref->nights[0], NS_NIGHT_LEN, "2024-02-01");
    snprintf(ref->nights[1], NS_NIGHT_LEN, "2024-02-29");
    ref->sample.n = 40;
    ref->sample.n_clips = 8;
    ref->loco = calloc(40, sizeof *ref->loco);
    ck_assert_ptr_nonnull(ref->loco);
    for (int i = 0; i < 40; i++)
        ref->loco[i] = 0.2f + 0.01f * (float)((i * 7) % 40);
}

/* Tonight: the store's N_FRAMES frames; n_cond conditions. */
static void build_result(ns_detect_result *r, const ns_reference *ref, size_t n_cond, int shift)
{
    ns_frameset *f = &r->tonight;
    uint64_t rng = 42;
    memset(r, 0, sizeof *r);
    snprintf(r->night, sizeof r->night, "2024-03-02");
    r->opts.frame_alpha = 0.05;
    r->opts.alpha = 0.05;
    r->opts.n_perm = 200;
    r->opts.test_frames_per_clip = 32;
    r->opts.novel_k = 8;
    r->opts.max_conditions = (int)n_cond;
    r->opts.seed = 18446744073709551557ull; /* above 2^53: must print exactly */
    f->n = N_FRAMES;
    f->d = 4;
    f->clip = calloc(N_FRAMES, sizeof *f->clip);
    f->index = calloc(N_FRAMES, sizeof *f->index);
    f->timestamp = calloc(N_FRAMES, sizeof *f->timestamp);
    f->member = calloc(N_FRAMES, sizeof *f->member);
    f->view_row = calloc(N_FRAMES, sizeof *f->view_row);
    f->n_clips = N_CLIPS;
    f->clips = calloc(N_CLIPS, sizeof *f->clips);
    r->score = calloc(N_FRAMES, sizeof *r->score);
    r->pval = calloc(N_FRAMES, sizeof *r->pval);
    r->novel = calloc(N_FRAMES, sizeof *r->novel);
    r->ref_cluster = calloc(N_FRAMES, sizeof *r->ref_cluster);
    r->cluster = calloc(N_FRAMES, sizeof *r->cluster);
    r->condition = calloc(N_FRAMES, sizeof *r->condition);
    r->clips = calloc(N_CLIPS, sizeof *r->clips);
    ck_assert(f->clip && f->index && f->timestamp && f->member && f->view_row && f->clips &&
              r->score && r->pval && r->novel && r->ref_cluster && r->cluster &&
              r->condition && r->clips);
    snprintf(f->model_id, sizeof f->model_id, "%s", MODEL_ID);
    for (size_t i = 0; i < N_FRAMES; i++) {
        char mb[NS_MEMBER_LEN];
        f->clip[i] = (uint32_t)(i / PER_CLIP);
        f->index[i] = (uint32_t)(i % PER_CLIP);
        f->timestamp[i] = i == 5 ? NAN : 1.7e9 + (double)(i / PER_CLIP) * 600 + (double)(i % PER_CLIP);
        snprintf(f->member[i], NS_MEMBER_LEN, "%s", member_of(i, mb));
        f->view_row[i] = i;
        r->score[i] = 0.3f + 0.05f * (float)i;
        r->pval[i] = 1.0 / (double)(i + 2);
        r->novel[i] = r->pval[i] < 0.05;
        r->ref_cluster[i] = (int)(i % 4);
        r->cluster[i] = i % 3 == 0 ? -1 : (int)(i % 2);
        r->condition[i] = n_cond ? (int)(i % n_cond) : -1;
        r->n_novel += r->novel[i];
    }
    for (size_t c = 0; c < N_CLIPS; c++) {
        ns_fs_clip *fc = &f->clips[c];
        ns_test_clip_sha("report-clip", (int)c, fc->sha256);
        snprintf(fc->camera, sizeof fc->camera, "%s", CAMERAS[c]);
        snprintf(fc->night, sizeof fc->night, "2024-03-02");
        snprintf(fc->source, sizeof fc->source, "%s", SOURCES[c]);
        fc->start_time = 1.7e9 + (double)c * 600;
        fc->first = c * PER_CLIP;
        fc->n = PER_CLIP;
        fc->catalog_row = (uint32_t)c;
        r->clips[c].n_novel = c;
        r->clips[c].novel_share = (double)c / PER_CLIP;
        r->clips[c].condition = c == 1 ? -1 : 0;
    }
    r->test.mmd2 = 0.0123;
    r->test.p_value = shift ? 1.0 / 201 : 0.4;
    r->test.null_mean = 0.001;
    r->test.null_sd = 0.002;
    r->test.n_perm = 200;
    r->test.blocks_x = N_CLIPS;
    r->test.blocks_y = 8;
    r->test.n_x = N_FRAMES;
    r->test.n_y = 40;
    r->test.null_stats = calloc(200, sizeof *r->test.null_stats);
    ck_assert_ptr_nonnull(r->test.null_stats);
    for (int i = 0; i < 200; i++)
        r->test.null_stats[i] = 0.001 + 0.002 * ((double)(lcg(&rng) % 1000) / 1000.0 - 0.5);
    r->sigma = ref->sigma;
    r->shift = shift;
    r->verdict = shift ? NS_VERDICT_SHIFT : NS_VERDICT_NO_SHIFT;
    r->p_min = 0.000999;
    r->ref_scores = ref->loco;
    r->n_ref_scores = ref->sample.n;
    r->n_ref_frames = ref->sample.n;
    r->n_clusters = 3;
    r->clusters = calloc(3, sizeof *r->clusters);
    ck_assert_ptr_nonnull(r->clusters);
    for (int k = 0; k < 3; k++) {
        r->clusters[k].id = k;
        r->clusters[k].n_tonight = (size_t)(5 - k);
        r->clusters[k].n_ref = (size_t)k;
        r->clusters[k].median_p = k == 2 ? NAN : 0.01 * (k + 1);
        r->clusters[k].condition = k < (int)n_cond ? k : -1;
        for (int p = 0; p < NS_PROP_COUNT; p++)
            r->clusters[k].signature[p] = 0.5 * p - k;
    }
    r->n_conditions = n_cond;
    r->conditions = calloc(n_cond ? n_cond : 1, sizeof *r->conditions);
    ck_assert_ptr_nonnull(r->conditions);
    for (size_t k = 0; k < n_cond; k++) {
        ns_detect_condition *c = &r->conditions[k];
        c->id = (int)k;
        c->novel = k < 2;
        c->n_frames = 6 - k % 3;
        c->n_ref = k;
        c->share_tonight = (double)c->n_frames / N_FRAMES;
        c->share_ref = (double)(k + 1) / 41.0;
        c->n_clips = k == 1 ? 1 : 2; /* condition 2 rests on one clip */
        c->n_clusters = 1 + (int)(k % 2);
        c->median_p = 0.004 * (double)(k + 1);
        c->t_first = 1.7e9;
        c->t_last = k == 1 ? NAN : 1.7e9 + 1203;
        c->t_from_clips = k == 0; /* its frames had no timestamps: the clips' starts */
        c->medoid = k % N_FRAMES;
        c->n_examples = NS_DETECT_EXAMPLES;
        for (int e = 0; e < NS_DETECT_EXAMPLES; e++)
            c->examples[e] = (k + 1 + (size_t)e) % N_FRAMES;
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            c->attr.paired_z[p] = 0.1 * p;
            c->attr.rel[p] = 0.01 * p;
        }
        c->attr.paired_z[NS_PROP_FRAC_BLACK] = 9.5;
        c->attr.rel[NS_PROP_FRAC_BLACK] = 18.91;
        c->attr.paired_z[NS_PROP_CONTRAST] = 2.8;
        c->attr.rel[NS_PROP_CONTRAST] = 0.13;
        c->attr.paired_z[NS_PROP_MEAN_LUMA] = -1.5;
        c->attr.rel[NS_PROP_MEAN_LUMA] = NAN;
        /* Absolute levels lead; the relative change only where the base is
         * far from zero (contrast), never for a near-zero share. */
        c->attr.ref_mean[NS_PROP_FRAC_BLACK] = 0.002;
        c->attr.mean[NS_PROP_FRAC_BLACK] = 0.0398;
        c->attr.rel_ok[NS_PROP_FRAC_BLACK] = 0;
        c->attr.ref_mean[NS_PROP_CONTRAST] = 40.0;
        c->attr.mean[NS_PROP_CONTRAST] = 45.2;
        c->attr.rel_ok[NS_PROP_CONTRAST] = 1;
        c->attr.ref_mean[NS_PROP_MEAN_LUMA] = 112.0;
        c->attr.mean[NS_PROP_MEAN_LUMA] = 98.4;
        c->attr.rel_ok[NS_PROP_MEAN_LUMA] = 1;
        {
            static const int order[NS_PROP_COUNT] = {NS_PROP_FRAC_BLACK, NS_PROP_CONTRAST,
                                                     NS_PROP_MEAN_LUMA, 1, 2, 3, 4, 6, 8};
            memcpy(c->attr.top, order, sizeof order);
        }
        c->attr.n_top = 3;
        c->n_cams = 2;
        c->cams = calloc(2, sizeof *c->cams);
        ck_assert_ptr_nonnull(c->cams);
        for (int j = 0; j < 2; j++) {
            snprintf(c->cams[j].camera, NS_CAMERA_LEN, "%s", CAMERAS[j * 2]);
            c->cams[j].n = (size_t)(4 - j);
            for (int p = 0; p < NS_PROP_COUNT; p++) {
                c->cams[j].z[p] = j ? NAN : 1.0 + p;
                c->cams[j].rel[p] = j ? NAN : 0.05 * p;
            }
        }
    }
    r->kmeans_k = 4;
    r->ref_counts = calloc(4, sizeof *r->ref_counts);
    r->tonight_counts = calloc(4, sizeof *r->tonight_counts);
    ck_assert(r->ref_counts && r->tonight_counts);
    for (int k = 0; k < 4; k++) {
        r->ref_counts[k] = 10;
        r->tonight_counts[k] = 3;
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    ck_assert_msg(f != NULL, "cannot open '%s'", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static char *slurp_in(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return slurp(path, len);
}

/* Writes a report for a fresh store under a new temp dir; out gets OUT. */
static void write_report(size_t n_cond, int shift, int max_thumbs, const ns_history_point *h,
                         size_t n_h, char *out, size_t cap)
{
    char base[2048], store[2100];
    ns_store *s = NULL;
    ns_reference ref;
    ns_detect_result r;
    ns_report_opts o;
    ns_test_tmpdir(base, sizeof base, "report");
    snprintf(store, sizeof store, "%s/store", base);
    snprintf(out, cap, "%s/out", base);
    build_store(store);
    ck_assert_ns_ok(ns_store_open_read(store, &s));
    build_ref(&ref);
    build_result(&r, &ref, n_cond, shift);
    ns_report_default_opts(&o);
    o.max_thumbs = max_thumbs;
    o.history = h;
    o.n_history = n_h;
    ck_assert_ns_ok(ns_report_write(s, &ref, &r, &o, out));
    ns_store_close(s);
    ns_detect_result_release(&r);
    ns_reference_release(&ref);
}

static const char *const FILES[] = {"report.html", "summary.json", "clips.csv", "frames.csv",
                                    "clusters.csv"};

START_TEST(test_escape)
{
    ns_strbuf b = {0};
    ck_assert_ns_ok(ns_report_html_escape(&b, "<a href='x'>&\"y\x01"));
    ck_assert_str_eq(b.data, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;y\xef\xbf\xbd");
    ns_strbuf_release(&b);
}
END_TEST

START_TEST(test_identical_twice)
{
    static const ns_history_point h[2] = {{"2024-02-28", 0.001, 0.6, 0.01, 0},
                                          {"<script>", 0.02, 0.001, 0.2, 1}};
    char a[2200], b[2200];
    write_report(3, 1, 64, h, 2, a, sizeof a);
    write_report(3, 1, 64, h, 2, b, sizeof b);
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        size_t la, lb;
        char *x = slurp_in(a, FILES[i], &la), *y = slurp_in(b, FILES[i], &lb);
        ck_assert_msg(la == lb && memcmp(x, y, la) == 0, "%s differs between runs", FILES[i]);
        ck_assert_uint_gt(la, 10);
        free(x);
        free(y);
    }
}
END_TEST

START_TEST(test_html_content)
{
    static const ns_history_point h[2] = {{"2024-02-28", 0.001, 0.6, 0.01, 0},
                                          {"<script>", 0.02, 0.001, 0.2, 1}};
    char out[2200];
    char *html;
    write_report(3, 1, 64, h, 2, out, sizeof out);
    html = slurp_in(out, "report.html", NULL);
    ck_assert_ptr_null(strcasestr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "http://"));
    ck_assert_ptr_null(strstr(html, "https://"));
    ck_assert_ptr_nonnull(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "=cmd|&#39; /C calc&#39;!A0"));
    ck_assert_ptr_nonnull(strstr(html, "a &quot;quoted&quot;, comma\nnewline &amp; amp.jpg"));
    ck_assert_ptr_nonnull(strstr(html, "resnet &quot;&lt;i&gt;big&lt;/i&gt;&quot;"));
    ck_assert_ptr_nonnull(strstr(html, "Shift detected"));
    ck_assert_ptr_nonnull(strstr(html, "near-black pixels 0.2% -&gt; 4.0%, z = +9.5; contrast "
                                       "40.0 -&gt; 45.2, z = +2.8 (+13%); mean luma 112 -&gt; 98, "
                                       "z = -1.5<"));
    ck_assert_ptr_null(strstr(html, "+1891%"));
    ck_assert_ptr_nonnull(strstr(html, "1 clip only"));
    ck_assert_ptr_nonnull(strstr(html, "clips starting "));
    ck_assert_ptr_nonnull(strstr(html, "data:image/jpeg;base64,/9j/"));
    ck_assert_ptr_nonnull(strstr(html, "18446744073709551557"));
    ck_assert_ptr_nonnull(strstr(html, "3 tonight vs 8 reference"));
    ck_assert_ptr_nonnull(strstr(html, "2023-11-14T22:13:20Z"));
    ck_assert_ptr_nonnull(strstr(html, "Earlier nights"));
    ck_assert_ptr_nonnull(strstr(html, "<svg"));
    ck_assert_ptr_null(strstr(html, "<svg class=\"chart\" xmlns"));
    free(html);
}
END_TEST

START_TEST(test_no_store_no_shift)
{
    char base[4096], out[4200];
    ns_reference ref;
    ns_detect_result r;
    char *html, *json;
    ns_test_tmpdir(base, sizeof base, "report-nostore");
    snprintf(out, sizeof out, "%s/a/b", base); /* created with its parents */
    build_ref(&ref);
    build_result(&r, &ref, 0, 0);
    r.test.null_stats[0] = NAN;
    ck_assert_ns_ok(ns_report_write(NULL, &ref, &r, NULL, out));
    html = slurp_in(out, "report.html", NULL);
    json = slurp_in(out, "summary.json", NULL);
    ck_assert_ptr_nonnull(strstr(html, "No shift detected"));
    ck_assert_ptr_null(strstr(html, "Earlier nights"));
    ck_assert_ptr_nonnull(strstr(json, "\"verdict\":\"no-shift\""));
    ck_assert_ptr_nonnull(strstr(json, "\"top_conditions\":[]"));
    free(html);
    free(json);
    ns_detect_result_release(&r);
    ns_reference_release(&ref);
}
END_TEST

/* Reads a CSV and checks every row has the header's field count. */
static size_t csv_rows(const char *dir, const char *name, ns_csv_reader *rd, size_t *n_fields)
{
    char path[4096];
    int more = 1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_ns_ok(ns_csv_open(path, rd));
    ck_assert_ns_ok(ns_csv_next(rd, &more));
    ck_assert(more);
    *n_fields = rd->n_fields;
    return 0;
}

START_TEST(test_csv_roundtrip)
{
    char out[2200];
    ns_csv_reader rd;
    size_t nf, rows = 0;
    int more = 1, cam, src, mem, fi;
    write_report(3, 1, 64, NULL, 0, out, sizeof out);

    csv_rows(out, "clips.csv", &rd, &nf);
    cam = ns_csv_column(&rd, "camera");
    src = ns_csv_column(&rd, "source");
    ck_assert_int_ge(cam, 0);
    ck_assert_int_ge(src, 0);
    ck_assert_int_ge(ns_csv_column(&rd, "start_time"), 0);
    for (;;) {
        ck_assert_ns_ok(ns_csv_next(&rd, &more));
        if (!more)
            break;
        ck_assert_uint_eq(rd.n_fields, nf);
        ck_assert_str_eq(rd.fields[cam], CAMERAS[rows]);
        if (SOURCES[rows][0] == '=' || SOURCES[rows][0] == '@') {
            ck_assert_int_eq(rd.fields[src][0], '\'');
            ck_assert_str_eq(rd.fields[src] + 1, SOURCES[rows]);
        } else {
            ck_assert_str_eq(rd.fields[src], SOURCES[rows]);
        }
        rows++;
    }
    ck_assert_uint_eq(rows, N_CLIPS);
    ns_csv_close(&rd);

    csv_rows(out, "frames.csv", &rd, &nf);
    mem = ns_csv_column(&rd, "member");
    fi = ns_csv_column(&rd, "frame_index");
    ck_assert_int_ge(mem, 0);
    ck_assert_int_ge(fi, 0);
    for (rows = 0;; rows++) {
        char mb[NS_MEMBER_LEN];
        const char *want;
        ck_assert_ns_ok(ns_csv_next(&rd, &more));
        if (!more)
            break;
        ck_assert_uint_eq(rd.n_fields, nf);
        want = member_of(rows, mb);
        if (want[0] == '-') {
            ck_assert_int_eq(rd.fields[mem][0], '\'');
            ck_assert_str_eq(rd.fields[mem] + 1, want);
        } else {
            ck_assert_str_eq(rd.fields[mem], want);
        }
        ck_assert_int_eq(atoi(rd.fields[fi]), (int)(rows % PER_CLIP));
    }
    ck_assert_uint_eq(rows, N_FRAMES);
    ns_csv_close(&rd);

    csv_rows(out, "clusters.csv", &rd, &nf);
    ck_assert_int_ge(ns_csv_column(&rd, "z_frac_black"), 0);
    for (rows = 0;; rows++) {
        ck_assert_ns_ok(ns_csv_next(&rd, &more));
        if (!more)
            break;
        ck_assert_uint_eq(rd.n_fields, nf);
        ck_assert_str_eq(rd.fields[0], rows < 3 ? "condition" : "cluster");
    }
    ck_assert_uint_eq(rows, 3 + 3);
    ns_csv_close(&rd);
}
END_TEST

START_TEST(test_summary_json)
{
    char out[2200], path[2300], cmd[4800];
    char *json;
    write_report(3, 1, 64, NULL, 0, out, sizeof out);
    json = slurp_in(out, "summary.json", NULL);
    ck_assert_ptr_nonnull(strstr(json, "\"format\":\"nightshift-detect-summary\",\"version\":1"));
    ck_assert_ptr_nonnull(strstr(json, "\"verdict\":\"shift\""));
    ck_assert_ptr_nonnull(strstr(json, "\"seed\":18446744073709551557"));
    ck_assert_ptr_nonnull(strstr(json, "\"clips\":{\"tonight\":3,\"reference\":8"));
    ck_assert_ptr_nonnull(strstr(json, "\"camera\":\"<script>alert(1)</script>\""));
    free(json);
    if (access("/usr/bin/python3", X_OK) != 0)
        return;
    snprintf(path, sizeof path, "%s/summary.json", out);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "assert d[\"verdict\"]==\"shift\"; c=d[\"top_conditions\"][0]; "
             "assert c[\"cameras\"][0][\"camera\"]==\"<script>alert(1)</script>\"; "
             "assert c[\"medoid\"][\"source\"]==\"=cmd|\\x27 /C calc\\x27!A0\", c; "
             "assert c[\"last\"] is None or c[\"last\"].endswith(\"Z\"); "
             "assert d[\"top_conditions\"][1][\"last\"] is None; "
             "assert c[\"attribution\"][0][\"property\"]==\"frac_black\"' '%s'",
             path);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(test_bounded)
{
    char out[2200];
    size_t len;
    char *html;
    write_report(120, 1, 16, NULL, 0, out, sizeof out);
    html = slurp_in(out, "report.html", &len);
    ck_assert_uint_lt(len, 1000000);
    ck_assert_uint_eq(count(html, "<img "), 16);
    ck_assert_uint_eq(count(html, "<article class=\"cond"), 50);
    ck_assert_ptr_nonnull(strstr(html, "Showing 100 of 120 conditions"));
    ck_assert_ptr_nonnull(strstr(html, "Showing 50 of 120 conditions in detail"));
    ck_assert_ptr_nonnull(strstr(html, "thumbnail budget spent"));
    free(html);
}
END_TEST

START_TEST(test_detfile_history)
{
    char base[4096], path[4300], cmd[9000];
    ns_reference ref, other;
    ns_detect_result r;
    ns_history_point *h = NULL;
    size_t n = 99;
    ns_test_tmpdir(base, sizeof base, "detfile");
    build_ref(&ref);
    build_result(&r, &ref, 3, 1);
    /* Two nights, the second written twice (the newer must win). */
    snprintf(path, sizeof path, "%s/2024-03-02", base);
    ck_assert_ns_ok(ns_mkdir_p(path));
    snprintf(path, sizeof path, "%s/2024-03-02/detect.h5", base);
    ck_assert_ns_ok(ns_detfile_save(&r, &ref, path));
    snprintf(r.night, sizeof r.night, "2024-03-03");
    r.test.mmd2 = 0.5;
    snprintf(path, sizeof path, "%s/n3", base);
    ck_assert_ns_ok(ns_mkdir_p(path));
    snprintf(path, sizeof path, "%s/n3/detect.h5", base);
    ck_assert_ns_ok(ns_detfile_save(&r, &ref, path));
    /* Foreign files and another model's results are ignored. */
    snprintf(path, sizeof path, "%s/foo", base);
    ck_assert_ns_ok(ns_mkdir_p(path));
    snprintf(path, sizeof path, "%s/foo/detect.h5", base);
    ns_test_write_text(path, "not hdf5 at all\n");
    snprintf(path, sizeof path, "%s/junk.txt", base);
    ns_test_write_text(path, "x");
    other = ref;
    memset(other.model_id, 'f', 64);
    snprintf(path, sizeof path, "%s/other", base);
    ck_assert_ns_ok(ns_mkdir_p(path));
    snprintf(path, sizeof path, "%s/other/detect.h5", base);
    ck_assert_ns_ok(ns_detfile_save(&r, &other, path));

    ck_assert_ns_ok(ns_detfile_history(base, MODEL_ID, &ref, "2024-03-04", 10, &h, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(h[0].night, "2024-03-02");
    ck_assert_str_eq(h[1].night, "2024-03-03");
    ck_assert(fabs(h[0].mmd2 - 0.0123) < 1e-12);
    ck_assert(fabs(h[1].mmd2 - 0.5) < 1e-12);
    ck_assert_int_eq(h[1].shift, 1);
    ck_assert(fabs(h[0].p_value - 1.0 / 201) < 1e-12);
    ck_assert(fabs(h[0].novel_share - (double)r.n_novel / N_FRAMES) < 1e-12);
    free(h);
    ck_assert_ns_ok(ns_detfile_history(base, MODEL_ID, &ref, "2024-03-03", 10, &h, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(h[0].night, "2024-03-02");
    free(h);
    ck_assert_ns_ok(ns_detfile_history(base, MODEL_ID, &ref, "2024-03-04", 1, &h, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(h[0].night, "2024-03-03");
    free(h);
    snprintf(path, sizeof path, "%s/missing", base);
    ck_assert_ns_ok(ns_detfile_history(path, MODEL_ID, &ref, "2024-03-04", 10, &h, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(h);

    /* Users read the file with h5py: check the layout the header promises. */
    if (access("/usr/bin/python3", X_OK) == 0) {
        snprintf(path, sizeof path, "%s/2024-03-02/detect.h5", base);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import sys\ntry:\n import h5py\nexcept ImportError:\n "
                 "sys.exit(0)\nf=h5py.File(sys.argv[1],\"r\")\n"
                 "assert f.attrs[\"ns_format\"] in (b\"nightshift-detect\",\"nightshift-detect\")\n"
                 "assert f[\"frames/score\"].shape==(12,)\nassert f[\"test/null\"].shape==(200,)\n"
                 "c=f[\"clips\"][0]\nassert c[\"source\"]==b\"=cmd|\\x27 /C calc\\x27!A0\"\n"
                 "d=f[\"conditions\"][0]\nassert abs(d[\"paired_z\"][7]-9.5)<1e-9\n"
                 "assert int(f.attrs[\"seed\"])==18446744073709551557\n"
                 "assert list(f[\"kmeans/ref_counts\"][:])==[10]*4' '%s'",
                 path);
        ck_assert_int_eq(system(cmd), 0);
    }
    ns_detect_result_release(&r);
    ns_reference_release(&ref);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_identical_twice);
    tcase_add_test(tc, test_html_content);
    tcase_add_test(tc, test_no_store_no_shift);
    tcase_add_test(tc, test_csv_roundtrip);
    tcase_add_test(tc, test_summary_json);
    tcase_add_test(tc, test_bounded);
    tcase_add_test(tc, test_detfile_history);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(report_suite());
}
