/* test_reference.c -- night selection, framesets and the reference file. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/embeddings.h"
#include "nightshift/frameset.h"
#include "nightshift/knn.h"
#include "nightshift/reference.h"
#include "nightshift/whiten.h"
#include "nightshift/store.h"

#define S 16
#define FB ((size_t)S * S * 3)
#define DIM 8
#define MODEL_A "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666000077778888aaaa"
#define MODEL_B "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef"

/* The fixture store: 8 clips over 4 nights (one shard each), 2 cameras. */
static const struct {
    const char *night;
    const char *camera;
    int frames;
} CL[] = {{"2026-11-01", "cam-a", 4}, {"2026-11-01", "cam-b", 6}, {"2026-11-02", "cam-a", 5},
          {"2026-11-02", "cam-b", 3}, {"2026-11-02", "cam-a", 7}, {"2026-11-03", "cam-b", 4},
          {"2026-11-05", "cam-a", 2}, {"2026-11-05", "cam-b", 5}};
#define NCL 8
#define NFR 36

static int clip_of_g[NFR], frame_of_g[NFR], first_g[NCL];

static void layout(void)
{
    int g = 0;
    for (int c = 0; c < NCL; c++) {
        first_g[c] = g;
        for (int i = 0; i < CL[c].frames; i++, g++) {
            clip_of_g[g] = c;
            frame_of_g[g] = i;
        }
    }
    ck_assert_int_eq(g, NFR);
}

/* Properties of frame g: exact in float. */
static float prop_of(int g, int p)
{
    return (float)(clip_of_g[g] * (p + 1) + 0.25 * (frame_of_g[g] % 4) + p);
}

static float emb_of(int g, int j)
{
    uint32_t h = (uint32_t)(g * 8 + j) * 2654435761u;
    h ^= h >> 15;
    return (float)sin(clip_of_g[g] * 1.7 + j * 0.9) + 0.05f * ((float)(h & 0xffff) / 65536.0f - 0.5f);
}

static void write_embeddings(const char *dir, const char *model, int only_first_shard)
{
    ns_store *s = NULL;
    size_t n_sh;
    static float emb[NFR * DIM];
    uint64_t g0 = 0;
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    const ns_shard_entry *sh = ns_store_shards(s, &n_sh);
    for (size_t k = 0; k < n_sh; k++) {
        ns_emb_writer *w = NULL;
        for (uint64_t i = 0; i < sh[k].n_frames; i++)
            for (int j = 0; j < DIM; j++)
                emb[i * DIM + j] = emb_of((int)(g0 + i), j);
        if (!only_first_shard || k == 0) {
            ck_assert_ns_ok(ns_emb_begin(s, model, "synthetic", DIM, &sh[k], "ref", &w));
            ck_assert_ns_ok(ns_emb_append(w, emb, sh[k].n_frames));
            ck_assert_ns_ok(ns_emb_commit(w));
        }
        g0 += sh[k].n_frames;
    }
    ns_store_close(s);
}

static void build_store(char *dir, size_t cap)
{
    static uint8_t frames[8 * FB];
    ns_frame_record recs[8];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    layout();
    ns_test_tmpdir(dir, cap, "reference");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    for (int c = 0; c < NCL; c++) {
        ns_clip_record r;
        if (c == 0 || strcmp(CL[c].night, CL[c - 1].night) != 0)
            ck_assert_ns_ok(ns_shard_begin(s, CL[c].night, &w));
        ck_assert_ns_ok(ns_shard_begin_clip(w));
        for (int i = 0; i < CL[c].frames; i++) {
            int g = first_g[c] + i;
            memset(frames + i * FB, (int)(g * 7), FB);
            memset(&recs[i], 0, sizeof recs[i]);
            recs[i].index = (uint32_t)(2 * i);
            recs[i].timestamp = 1.7e9 + g;
            snprintf(recs[i].member, sizeof recs[i].member, "m%d.jpg", g);
            for (int p = 0; p < NS_PROP_COUNT; p++)
                recs[i].props[p] = prop_of(g, p);
        }
        ck_assert_ns_ok(ns_shard_append(w, frames, recs, (size_t)CL[c].frames));
        memset(&r, 0, sizeof r);
        ns_test_clip_sha("ref-clip", c, r.sha256);
        snprintf(r.source, sizeof r.source, "/src/clip%d.tar", c);
        snprintf(r.container, sizeof r.container, "tar");
        snprintf(r.camera, sizeof r.camera, "%s", CL[c].camera);
        r.start_time = 1.7e9 + 100.0 * c;
        r.frames_stored = r.frames_seen = (uint32_t)CL[c].frames;
        ck_assert_ns_ok(ns_shard_end_clip(w, &r));
        if (c == NCL - 1 || strcmp(CL[c].night, CL[c + 1].night) != 0)
            ck_assert_ns_ok(ns_shard_commit(w));
    }
    ns_store_close(s);
    write_embeddings(dir, MODEL_A, 0);
    write_embeddings(dir, MODEL_B, 1);
}

/* Built once in the runner (no threads there beyond the store's joined
 * hashing thread) and only read by the tests: commits fsync, so one store
 * keeps the suite fast. */
static char fixture_dir[PATH_MAX];

static void fixture_setup(void) { build_store(fixture_dir, sizeof fixture_dir); }

static void build_fixture(char *dir, size_t cap) { snprintf(dir, cap, "%s", fixture_dir); }

static void assert_msg_has(const char *needle)
{
    ck_assert_msg(strstr(ns_errmsg(), needle) != NULL, "message '%s' lacks '%s'", ns_errmsg(),
                  needle);
}

/* ---- nights ------------------------------------------------------------------ */

static void expect_nights(ns_store *s, const char *spec, const char *want)
{
    char(*nights)[NS_NIGHT_LEN] = NULL;
    size_t n = 0;
    char got[256] = "";
    ck_assert_ns_ok(ns_nights_select(s, spec, &nights, &n));
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, nights[i]);
    }
    ck_assert_msg(strcmp(got, want) == 0, "'%s' -> '%s', want '%s'", spec, got, want);
    free(nights);
}

static void expect_bad(ns_store *s, const char *spec, ns_status want)
{
    char(*nights)[NS_NIGHT_LEN] = NULL;
    size_t n = 7;
    ck_assert_ns_status(ns_nights_select(s, spec, &nights, &n), want);
    ck_assert_ptr_null(nights);
    ck_assert_uint_eq(n, 0);
}

START_TEST(test_nights_select)
{
    char dir[PATH_MAX];
    ns_store *s = NULL;
    build_fixture(dir, sizeof dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    expect_nights(s, "2026-11-01..2026-11-03", "2026-11-01,2026-11-02,2026-11-03");
    expect_nights(s, "2026-11-02..2026-11-04", "2026-11-02,2026-11-03");
    expect_nights(s, "..2026-11-02", "2026-11-01,2026-11-02");
    expect_nights(s, "2026-11-03..", "2026-11-03,2026-11-05");
    expect_nights(s, "..", "2026-11-01,2026-11-02,2026-11-03,2026-11-05");
    expect_nights(s, "2026-11-02..2026-11-02", "2026-11-02");
    expect_nights(s, "last:2", "2026-11-03,2026-11-05");
    expect_nights(s, "last:1", "2026-11-05");
    expect_nights(s, "last:99", "2026-11-01,2026-11-02,2026-11-03,2026-11-05");
    expect_nights(s, "2026-11-05,2026-11-01,2026-11-04,2026-11-05", "2026-11-01,2026-11-05");
    expect_nights(s, "2026-11-03", "2026-11-03");
    expect_bad(s, "", NS_ERR_USAGE);
    expect_bad(s, "last:0", NS_ERR_USAGE);
    expect_bad(s, "last:", NS_ERR_USAGE);
    expect_bad(s, "last:2x", NS_ERR_USAGE);
    expect_bad(s, "last:-1", NS_ERR_USAGE);
    expect_bad(s, "2026-1-01..", NS_ERR_USAGE);
    expect_bad(s, "2026-11-03..2026-11-01", NS_ERR_USAGE);
    expect_bad(s, "yesterday", NS_ERR_USAGE);
    expect_bad(s, "2026-11-01,,2026-11-02", NS_ERR_USAGE);
    expect_bad(s, "2026-11-01,", NS_ERR_USAGE);
    expect_bad(s, "2026-11-01...2026-11-02", NS_ERR_USAGE);
    /* Issue 16 defect 7: calendar-impossible dates are usage errors, not
     * "no night matches" (exit 2, not 1). */
    expect_bad(s, "2026-13-01..2026-13-05", NS_ERR_USAGE);
    expect_bad(s, "2026-11-00..", NS_ERR_USAGE);
    expect_bad(s, "..2026-02-30", NS_ERR_USAGE);
    expect_bad(s, "2026-11-01,2026-11-32", NS_ERR_USAGE);
    expect_bad(s, "2100-02-29", NS_ERR_USAGE);
    expect_bad(s, "2026-12-01..", NS_ERR_NOT_FOUND);
    assert_msg_has("2026-12-01..");
    expect_bad(s, "2026-11-04", NS_ERR_NOT_FOUND);
    expect_bad(s, "..2026-10-31", NS_ERR_NOT_FOUND);

    /* clips of {01, 05}, in catalog order */
    char nights[2][NS_NIGHT_LEN] = {"2026-11-05", "2026-11-01"};
    size_t *rows = NULL, n = 0;
    ck_assert_ns_ok(ns_nights_clips(s, nights, 2, &rows, &n));
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(rows[0], 0);
    ck_assert_uint_eq(rows[1], 1);
    ck_assert_uint_eq(rows[2], 6);
    ck_assert_uint_eq(rows[3], 7);
    free(rows);
    ns_store_close(s);
}
END_TEST

/* ---- frameset ---------------------------------------------------------------- */

START_TEST(test_frameset_load)
{
    char dir[PATH_MAX], hex[NS_SHA256_HEX];
    ns_store *s = NULL;
    ns_frameset f;
    const size_t rows[4] = {1, 2, 4, 6};
    build_fixture(dir, sizeof dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ck_assert_ns_ok(ns_frameset_load(s, MODEL_A, DIM, rows, 4, &f));
    ck_assert_uint_eq(f.n, 6 + 5 + 7 + 2);
    ck_assert_int_eq(f.d, DIM);
    ck_assert_uint_eq(f.n_clips, 4);
    ck_assert_str_eq(f.model_id, MODEL_A);
    /* Clips come in the canonical order (night, then source /src/clipN.tar,
     * which grows with the row here), whatever the catalog's order. */
    size_t order[4];
    memcpy(order, rows, sizeof order);
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0; j--) {
            const char *xn = CL[order[j - 1]].night, *yn = CL[order[j]].night;
            int k = strcmp(xn, yn);
            if (k < 0 || (k == 0 && order[j - 1] < order[j]))
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t row = 0;
    for (size_t c = 0; c < 4; c++) {
        const ns_fs_clip *fc = &f.clips[c];
        int cc = (int)order[c];
        char src[64];
        ns_test_clip_sha("ref-clip", cc, hex);
        snprintf(src, sizeof src, "/src/clip%d.tar", cc);
        ck_assert_str_eq(fc->sha256, hex);
        ck_assert_str_eq(fc->camera, CL[cc].camera);
        ck_assert_str_eq(fc->night, CL[cc].night);
        ck_assert_str_eq(fc->source, src);
        ck_assert(fc->start_time == 1.7e9 + 100.0 * cc);
        ck_assert_uint_eq(fc->first, row);
        ck_assert_uint_eq(fc->n, (size_t)CL[cc].frames);
        ck_assert_uint_eq(fc->catalog_row, order[c]);
        for (size_t i = 0; i < fc->n; i++, row++) {
            int g = first_g[cc] + (int)i;
            char member[32];
            snprintf(member, sizeof member, "m%d.jpg", g);
            ck_assert_uint_eq(f.clip[row], c);
            ck_assert_uint_eq(f.index[row], 2 * i);
            ck_assert(f.timestamp[row] == 1.7e9 + g);
            ck_assert_str_eq(f.member[row], member);
            ck_assert_uint_eq(f.view_row[row], (uint64_t)g); /* one view row per frame */
            for (int p = 0; p < NS_PROP_COUNT; p++)
                ck_assert(f.props[row * NS_PROP_COUNT + p] == prop_of(g, p));
            for (int j = 0; j < DIM; j++)
                ck_assert(f.emb[row * DIM + j] == emb_of(g, j));
        }
    }
    ck_assert_uint_eq(row, f.n);
    /* the view row points at the frame's pixels */
    static uint8_t px[FB];
    ck_assert_ns_ok(ns_store_read_frames(s, f.view_row[7], 1, px));
    ck_assert_uint_eq(px[0], (uint8_t)(f.view_row[7] * 7)); /* frame g's pixels start at 7g */
    ns_frameset_release(&f);
    ns_frameset_release(&f); /* idempotent */

    /* every row of one shard only; then none */
    const size_t one[1] = {3};
    ck_assert_ns_ok(ns_frameset_load(s, MODEL_B, DIM, rows, 1, &f));
    ck_assert_uint_eq(f.n, 6);
    ns_frameset_release(&f);
    ck_assert_ns_ok(ns_frameset_load(s, MODEL_A, DIM, NULL, 0, &f));
    ck_assert_uint_eq(f.n, 0);
    ns_frameset_release(&f);

    /* model B lacks the shard of 2026-11-02 */
    ck_assert_ns_status(ns_frameset_load(s, MODEL_B, DIM, one, 1, &f), NS_ERR_NOT_FOUND);
    assert_msg_has("night 2026-11-02 shard 2 (shards/2026-11-02/000002.h5)");
    assert_msg_has("no embeddings for model 0123456789ab --");
    assert_msg_has("nightshift embed --store");
    ck_assert_ptr_null(f.emb);
    /* a wrong dimension is as good as missing */
    ck_assert_ns_status(ns_frameset_load(s, MODEL_A, DIM + 1, one, 1, &f), NS_ERR_NOT_FOUND);
    /* bad rows */
    const size_t desc[2] = {2, 1}, dup[2] = {2, 2}, past[1] = {NCL};
    ck_assert_ns_status(ns_frameset_load(s, MODEL_A, DIM, desc, 2, &f), NS_ERR_USAGE);
    ck_assert_ns_status(ns_frameset_load(s, MODEL_A, DIM, dup, 2, &f), NS_ERR_USAGE);
    ck_assert_ns_status(ns_frameset_load(s, MODEL_A, DIM, past, 1, &f), NS_ERR_USAGE);
    ns_store_close(s);
}
END_TEST

/* ---- reference ----------------------------------------------------------------- */

static void ref_opts(ns_reference_opts *o, const char *nights, uint64_t cap, uint64_t seed)
{
    ns_reference_default_opts(o);
    o->nights = nights;
    o->frame_cap = cap;
    o->knn_k = 3;
    o->kmeans_k = 4;
    o->seed = seed;
    o->threads = 2;
}

static double dist_rows(const float *e, size_t a, size_t b)
{
    double s = 0;
    for (int j = 0; j < DIM; j++) {
        double t = (double)e[a * DIM + j] - e[b * DIM + j];
        s += t * t;
    }
    return sqrt(s);
}

START_TEST(test_reference_build)
{
    char dir[PATH_MAX];
    ns_store *s = NULL;
    ns_reference r;
    ns_reference_opts o;
    build_fixture(dir, sizeof dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ref_opts(&o, "..", 1000, 7);
    o.whiten = 0; /* the raw-space distances are checked below; whitening after */
    ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, &r));
    ck_assert_int_eq(r.whiten, 0);
    ck_assert_ptr_null(r.wemb);
    ck_assert_ptr_eq(ns_reference_space(&r), r.sample.emb);
    ck_assert_str_eq(r.model_id, MODEL_A);
    ck_assert_str_eq(r.model_name, "synthetic");
    ck_assert_str_eq(r.store, dir);
    ck_assert_uint_eq(r.n_nights, 4);
    ck_assert_str_eq(r.nights[3], "2026-11-05");
    ck_assert_uint_eq(r.clips_total, NCL);
    ck_assert_uint_eq(r.frames_total, NFR);
    ck_assert_uint_eq(r.sample.n, NFR); /* under the cap: kept entire */
    ck_assert_uint_eq(r.sample.n_clips, NCL);
    ck_assert_int_eq(r.kmeans_k, 4);
    ck_assert(r.sigma > 0 && isfinite(r.sigma));
    ck_assert(r.inertia > 0);
    ck_assert_int_eq(ns_reference_camera(&r, "cam-a"), 0);
    ck_assert_int_eq(ns_reference_camera(&r, "cam-b"), 1);
    ck_assert_int_eq(ns_reference_camera(&r, "cam-z"), -1);

    const size_t n = r.sample.n, k = 3;
    const float *e = r.sample.emb;
    uint64_t total = 0;
    for (int c = 0; c < r.kmeans_k; c++) {
        total += r.counts[c];
        ck_assert(r.radius_mean[c] <= r.radius_max[c] + 1e-6f);
    }
    ck_assert_uint_eq(total, n);
    /* LOCO: neighbours never share the clip, distances right, really the nearest */
    for (size_t i = 0; i < n; i++) {
        double prev = 0;
        for (size_t t = 0; t < k; t++) {
            int64_t j = r.loco_idx[i * k + t];
            ck_assert(j >= 0 && (size_t)j < n);
            ck_assert_uint_ne(r.sample.clip[j], r.sample.clip[i]);
            double dd = dist_rows(e, i, (size_t)j);
            ck_assert(dd + 1e-4 >= prev);
            prev = dd;
        }
        ck_assert_msg(fabs(prev - r.loco[i]) < 1e-4, "loco[%zu] %g, k-th distance %g", i,
                      r.loco[i], prev);
        size_t closer = 0;
        for (size_t j = 0; j < n; j++)
            if (r.sample.clip[j] != r.sample.clip[i] && dist_rows(e, i, j) < r.loco[i] - 1e-4)
                closer++;
        ck_assert_uint_le(closer, k - 1);
    }
    for (size_t i = 1; i < n; i++)
        ck_assert(r.loco_sorted[i - 1] <= r.loco_sorted[i]);
    /* per-camera calibration: each camera's own loco values, ascending */
    ck_assert_uint_eq(r.cam_loco_off[0], 0);
    ck_assert_uint_eq(r.cam_loco_off[r.n_cameras], n);
    for (size_t c = 0; c < r.n_cameras; c++) {
        size_t a = r.cam_loco_off[c], b = r.cam_loco_off[c + 1], mine = 0;
        double sum_t = 0, sum_c = 0;
        for (size_t i = a + 1; i < b; i++)
            ck_assert(r.cam_loco_sorted[i - 1] <= r.cam_loco_sorted[i]);
        for (size_t i = a; i < b; i++)
            sum_t += r.cam_loco_sorted[i];
        for (size_t i = 0; i < n; i++)
            if (strcmp(r.sample.clips[r.sample.clip[i]].camera, r.cameras[c]) == 0) {
                mine++;
                sum_c += r.loco[i];
            }
        ck_assert_uint_eq(b - a, mine);
        ck_assert(fabs(sum_t - sum_c) <= 1e-9 * (1 + fabs(sum_c)));
    }

    /* property statistics from the generator, not from the loaded rows */
    for (int p = 0; p < NS_PROP_COUNT; p++) {
        double m = 0, v = 0, cm[2] = {0, 0}, cv[2] = {0, 0}, cn[2] = {0, 0};
        for (int g = 0; g < NFR; g++) {
            int cam = CL[clip_of_g[g]].camera[4] == 'b';
            m += prop_of(g, p);
            cm[cam] += prop_of(g, p);
            cn[cam]++;
        }
        m /= NFR;
        cm[0] /= cn[0];
        cm[1] /= cn[1];
        for (int g = 0; g < NFR; g++) {
            int cam = CL[clip_of_g[g]].camera[4] == 'b';
            v += (prop_of(g, p) - m) * (prop_of(g, p) - m);
            cv[cam] += (prop_of(g, p) - cm[cam]) * (prop_of(g, p) - cm[cam]);
        }
        ck_assert(fabs(r.prop_mean[p] - m) < 1e-9);
        ck_assert(fabs(r.prop_std[p] - sqrt(v / NFR)) < 1e-9);
        for (int c = 0; c < 2; c++) {
            ck_assert_uint_eq(r.cam_n[c], (uint64_t)cn[c]);
            ck_assert(fabs(r.cam_mean[c * NS_PROP_COUNT + p] - cm[c]) < 1e-9);
            ck_assert(fabs(r.cam_std[c * NS_PROP_COUNT + p] - sqrt(cv[c] / cn[c])) < 1e-9);
        }
        /* delta: frame minus the mean of its other-clip neighbours */
        double dl[NFR], dm = 0, dv = 0;
        for (size_t i = 0; i < n; i++) {
            int g = (int)r.sample.view_row[i], nb = 0;
            double s_nb = 0;
            for (size_t t = 0; t < k; t++) {
                s_nb += prop_of((int)r.sample.view_row[r.loco_idx[i * k + t]], p);
                nb++;
            }
            dl[i] = prop_of(g, p) - s_nb / nb;
            dm += dl[i];
        }
        dm /= (double)n;
        for (size_t i = 0; i < n; i++)
            dv += (dl[i] - dm) * (dl[i] - dm);
        ck_assert_msg(fabs(r.prop_delta_std[p] - sqrt(dv / (double)n)) < 1e-9,
                      "delta_std[%d] %g, want %g", p, r.prop_delta_std[p], sqrt(dv / (double)n));
        ck_assert(r.prop_delta_std[p] > 0);
    }
    ns_reference_release(&r);
    ns_reference_release(&r);

    /* With whitening: the transform of the whole sample, the sample in its
     * space, and cross-fitted loco distances (other clips only, finite). */
    o.whiten = 1;
    o.whiten_folds = 3;
    ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, &r));
    ck_assert_int_eq(r.whiten, 1);
    ck_assert_int_eq(r.whiten_folds, 3);
    ck_assert_int_eq(r.wh.d, DIM);
    ck_assert(r.wh.shrinkage > 0 && r.wh.shrinkage <= 1);
    {
        float *z = malloc(r.sample.n * DIM * sizeof *z);
        ck_assert_ptr_nonnull(z);
        ck_assert_ns_ok(ns_whiten_apply_ref(&r.wh, r.sample.emb, r.sample.n, z));
        for (size_t i = 0; i < r.sample.n * DIM; i++)
            ck_assert_msg(fabsf(z[i] - r.wemb[i]) <= 1e-3f * (1 + fabsf(z[i])), "wemb[%zu]", i);
        free(z);
    }
    ck_assert_ptr_eq(ns_reference_space(&r), r.wemb);
    for (size_t i = 0; i < r.sample.n; i++) {
        ck_assert(isfinite(r.loco[i]) && r.loco[i] > 0);
        for (size_t t = 0; t < k; t++) {
            int64_t j = r.loco_idx[i * k + t];
            ck_assert(j >= 0 && (size_t)j < r.sample.n);
            ck_assert_uint_ne(r.sample.clip[j], r.sample.clip[i]);
        }
    }
    ns_reference_release(&r);
    o.whiten_folds = 1;
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, &r),
                        NS_ERR_USAGE);
    ns_store_close(s);
}
END_TEST

START_TEST(test_reference_sample)
{
    char dir[PATH_MAX];
    ns_store *s = NULL;
    ns_reference a, b;
    ns_reference_opts o;
    size_t n_cat;
    build_fixture(dir, sizeof dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    int differs = 0;
    unsigned first_mask = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        ref_opts(&o, "2026-11-01..2026-11-05", 15, seed);
        ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, &a));
        ck_assert_uint_le(a.sample.n, 15);
        ck_assert_uint_ge(a.sample.n_clips, 2);
        ck_assert_uint_eq(a.frames_total, NFR);
        ck_assert_uint_eq(a.clips_total, NCL);
        int taken[NCL] = {0};
        for (size_t c = 0; c < a.sample.n_clips; c++) {
            uint32_t row = a.sample.clips[c].catalog_row;
            ck_assert_uint_eq(a.sample.clips[c].n, cat[row].n_frames); /* whole clips */
            if (c > 0) { /* canonical order: night, then source (clipN by row) */
                const ns_fs_clip *p = &a.sample.clips[c - 1], *q = &a.sample.clips[c];
                int k = strcmp(p->night, q->night);
                ck_assert(k < 0 || (k == 0 && row > p->catalog_row));
            }
            taken[row] = 1;
        }
        /* greedy: a clip left out did not fit when it came, nor fits now */
        for (int c = 0; c < NCL; c++)
            if (!taken[c])
                ck_assert_uint_gt(a.sample.n + cat[c].n_frames, 15);
        ck_assert_int_eq(a.kmeans_k, (int)(a.sample.n < 4 ? a.sample.n : 4));
        /* deterministic for the seed */
        ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, &b));
        ck_assert_uint_eq(a.sample.n, b.sample.n);
        ck_assert_int_eq(memcmp(a.sample.view_row, b.sample.view_row, a.sample.n * 8), 0);
        ck_assert_int_eq(memcmp(a.loco, b.loco, a.sample.n * sizeof *a.loco), 0);
        ck_assert_int_eq(memcmp(a.centroids, b.centroids, 4 * DIM * sizeof(float)), 0);
        ck_assert(a.sigma == b.sigma);
        unsigned mask = 0;
        for (int c = 0; c < NCL; c++)
            mask |= (unsigned)taken[c] << c;
        if (seed == 1)
            first_mask = mask;
        differs |= mask != first_mask;
        ns_reference_release(&b);
        ns_reference_release(&a);
    }
    ck_assert_msg(differs, "every seed sampled the same clips");
    ns_store_close(s);
}
END_TEST

START_TEST(test_reference_errors)
{
    char dir[PATH_MAX];
    ns_store *s = NULL;
    ns_reference r;
    ns_reference_opts o;
    build_fixture(dir, sizeof dir);
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ref_opts(&o, "2026-11-05", 1000, 1);
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_A, "x", DIM, &o, &r), NS_ERR_USAGE);
    assert_msg_has("the reference nights 2026-11-05..2026-11-05 hold 2 clips; a reference "
                   "needs at least 3");
    ref_opts(&o, "2026-11-03,2026-11-05", 1000, 1);
    ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "x", DIM, &o, &r));
    ck_assert_uint_eq(r.sample.n_clips, 3);
    ns_reference_release(&r);
    ref_opts(&o, "2026-11-01", 1000, 1);
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_A, "x", DIM, &o, &r), NS_ERR_USAGE);
    assert_msg_has("hold 2 clips");
    ref_opts(&o, "bogus", 1000, 1);
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_A, "x", DIM, &o, &r), NS_ERR_USAGE);
    ref_opts(&o, "..", 3, 1); /* the cap keeps fewer than two clips */
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_A, "x", DIM, &o, &r), NS_ERR_USAGE);
    /* model B is missing most shards */
    ref_opts(&o, "..", 1000, 1);
    ck_assert_ns_status(ns_reference_build_from(s, MODEL_B, "x", DIM, &o, &r), NS_ERR_NOT_FOUND);
    assert_msg_has("nightshift embed");
    ck_assert_ptr_null(r.loco);
    /* the public entry resolves the model first: none of these is embedded */
    o.model = "default";
    ck_assert_ns_status(ns_reference_build(s, &o, &r), NS_ERR_NOT_FOUND);
    assert_msg_has("nightshift embed");
    o.model = "/nonexistent/model.h5";
    ck_assert_int_ne(ns_reference_build(s, &o, &r), NS_OK);
    assert_msg_has("/nonexistent/model.h5");
    ns_store_close(s);
}
END_TEST

/* ---- the file ------------------------------------------------------------------ */

static void build_ref(const char *dir, ns_reference *r)
{
    ns_store *s = NULL;
    ns_reference_opts o;
    ck_assert_ns_ok(ns_store_open_read(dir, &s));
    ref_opts(&o, "..", 1000, 3);
    ck_assert_ns_ok(ns_reference_build_from(s, MODEL_A, "synthetic", DIM, &o, r));
    ns_store_close(s);
}

#define SAME(field, count) \
    ck_assert_int_eq(memcmp(a->field, b->field, (count) * sizeof *a->field), 0)

static void assert_same(const ns_reference *a, const ns_reference *b)
{
    const size_t n = a->sample.n, P = NS_PROP_COUNT;
    ck_assert_str_eq(a->model_id, b->model_id);
    ck_assert_str_eq(a->model_name, b->model_name);
    ck_assert_int_eq(a->knn_k, b->knn_k);
    ck_assert_int_eq(a->kmeans_k, b->kmeans_k);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert(a->sigma == b->sigma);
    ck_assert_uint_eq(a->n_nights, b->n_nights);
    SAME(nights, a->n_nights);
    ck_assert_uint_eq(a->frame_cap, b->frame_cap);
    ck_assert_uint_eq(a->clips_total, b->clips_total);
    ck_assert_uint_eq(a->frames_total, b->frames_total);
    ck_assert_str_eq(a->store, b->store);
    ck_assert(a->created == b->created);
    ck_assert_uint_eq(n, b->sample.n);
    ck_assert_int_eq(a->sample.d, b->sample.d);
    ck_assert_int_eq(a->whiten, b->whiten);
    ck_assert_int_eq(a->whiten_folds, b->whiten_folds);
    ck_assert_int_eq(b->format_version, NS_REF_FORMAT_VERSION);
    if (a->whiten) {
        ck_assert(a->wh.shrinkage == b->wh.shrinkage);
        ck_assert_int_eq(memcmp(a->wh.W, b->wh.W, (size_t)a->wh.d * a->wh.d * sizeof *a->wh.W), 0);
        ck_assert_int_eq(memcmp(a->wh.mean, b->wh.mean, (size_t)a->wh.d * sizeof *a->wh.mean), 0);
        SAME(wemb, n * (size_t)a->sample.d);
    }
    ck_assert_uint_eq(a->sample.n_clips, b->sample.n_clips);
    ck_assert_str_eq(a->sample.model_id, b->sample.model_id);
    SAME(sample.emb, n * DIM);
    SAME(sample.props, n * P);
    SAME(sample.clip, n);
    SAME(sample.index, n);
    SAME(sample.timestamp, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(a->sample.member[i], b->sample.member[i]);
    SAME(sample.view_row, n);
    for (size_t c = 0; c < a->sample.n_clips; c++) {
        const ns_fs_clip *x = &a->sample.clips[c], *y = &b->sample.clips[c];
        ck_assert_str_eq(x->sha256, y->sha256);
        ck_assert_str_eq(x->camera, y->camera);
        ck_assert_str_eq(x->night, y->night);
        ck_assert_str_eq(x->source, y->source);
        ck_assert(x->start_time == y->start_time);
        ck_assert_uint_eq(x->first, y->first);
        ck_assert_uint_eq(x->n, y->n);
        ck_assert_uint_eq(x->catalog_row, y->catalog_row);
    }
    SAME(loco, n);
    SAME(loco_sorted, n);
    SAME(cam_loco_sorted, n);
    SAME(cam_loco_off, a->n_cameras + 1);
    SAME(loco_idx, n * (size_t)a->knn_k);
    SAME(centroids, (size_t)a->kmeans_k * DIM);
    SAME(counts, (size_t)a->kmeans_k);
    SAME(radius_mean, (size_t)a->kmeans_k);
    SAME(radius_max, (size_t)a->kmeans_k);
    ck_assert(a->inertia == b->inertia);
    SAME(prop_mean, P);
    SAME(prop_std, P);
    SAME(prop_delta_std, P);
    ck_assert_uint_eq(a->n_cameras, b->n_cameras);
    SAME(cameras, a->n_cameras);
    SAME(cam_mean, a->n_cameras * P);
    SAME(cam_std, a->n_cameras * P);
    SAME(cam_n, a->n_cameras);
}

/* Rewrites a root attribute of an existing file. */
static void set_attr(const char *path, const char *name, const char *str, int32_t num)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_ge(H5Adelete(f, name), 0);
    hid_t sp = H5Screate(H5S_SCALAR), t = str ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_NATIVE_INT32);
    if (str)
        H5Tset_size(t, strlen(str) + 1);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(H5Awrite(a, t, str ? (const void *)str : (const void *)&num), 0);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

static void copy_file(const char *from, const char *to, long keep)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    static char buf[1 << 16];
    size_t got;
    long total = 0;
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while ((got = fread(buf, 1, sizeof buf, in)) > 0 && (keep < 0 || total < keep)) {
        if (keep >= 0 && total + (long)got > keep)
            got = (size_t)(keep - total);
        fwrite(buf, 1, got, out);
        total += (long)got;
    }
    fclose(in);
    fclose(out);
}

/* A hand-made reference: clip 0 from camera "busy" (loco 0.5..1.0), clip 1
 * from "quiet" (loco 0.1..0.2), n_quiet frames of it. */
static void calib_ref(ns_reference *r, size_t n_busy, size_t n_quiet)
{
    size_t n = n_busy + n_quiet;
    memset(r, 0, sizeof *r);
    r->sample.n = n;
    r->sample.n_clips = 2;
    r->sample.clips = calloc(2, sizeof *r->sample.clips);
    r->sample.clip = malloc(n * sizeof *r->sample.clip);
    r->loco = malloc(n * sizeof *r->loco);
    r->n_cameras = 2;
    r->cameras = calloc(2, sizeof *r->cameras);
    ck_assert(r->sample.clips && r->sample.clip && r->loco && r->cameras);
    strcpy(r->sample.clips[0].camera, "busy");
    strcpy(r->sample.clips[1].camera, "quiet");
    strcpy(r->cameras[0], "busy");
    strcpy(r->cameras[1], "quiet");
    for (size_t i = 0, nb = 0, nq = 0; i < n; i++) {
        /* interleaved, so the grouping really has to sort by camera */
        int quiet = (i % 2 == 1 && nq < n_quiet) || nb >= n_busy;
        size_t j = quiet ? nq++ : nb++;
        r->sample.clip[i] = (uint32_t)quiet;
        r->loco[i] = quiet ? 0.1f + 0.1f * (float)(j % 97) / 97.0f
                           : 0.5f + 0.5f * (float)(j % 89) / 89.0f;
    }
    ck_assert_ns_ok(ns_reference_calibrate(r));
}

START_TEST(test_reference_pvalue_per_camera)
{
    ns_reference r;
    size_t n_quiet = NS_REF_CAM_CALIB_MIN + 50;
    calib_ref(&r, 150, n_quiet);
    /* 0.3: above every quiet frame, below every busy one */
    double pq = ns_reference_pvalue(&r, "quiet", 0.3f);
    double pb = ns_reference_pvalue(&r, "busy", 0.3f);
    double pn = ns_reference_pvalue(&r, "new-camera", 0.3f);
    double pooled = ns_knn_pvalue(r.loco_sorted, r.sample.n, 0.3f);
    ck_assert_msg(fabs(pq - 1.0 / (double)(n_quiet + 1)) < 1e-12, "quiet p %g", pq);
    ck_assert(pb == 1.0);
    ck_assert(pn == pooled);
    ck_assert(fabs(pooled - 151.0 / (double)(r.sample.n + 1)) < 1e-12);
    ns_reference_release(&r);

    /* too few quiet frames for their own calibration: the pooled one */
    calib_ref(&r, 150, NS_REF_CAM_CALIB_MIN - 1);
    ck_assert(ns_reference_pvalue(&r, "quiet", 0.3f) ==
              ns_knn_pvalue(r.loco_sorted, r.sample.n, 0.3f));
    ck_assert(ns_reference_pvalue(&r, "busy", 0.3f) == 1.0);
    ns_reference_release(&r);
}
END_TEST

START_TEST(test_reference_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], bad[PATH_MAX + 16];
    ns_reference a, b;
    struct stat sb;
    build_fixture(dir, sizeof dir);
    build_ref(dir, &a);
    snprintf(path, sizeof path, "%s/ref.h5", dir);
    ck_assert_ns_ok(ns_reference_save(&a, path));
    ck_assert_ns_ok(ns_reference_load(path, &b));
    assert_same(&a, &b);
    ck_assert_int_eq(ns_reference_camera(&b, "cam-b"), 1);
    ns_reference_release(&b);
    /* overwrite in place, no temp file left behind */
    ck_assert_ns_ok(ns_reference_save(&a, path));
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    ck_assert_int_eq(stat(path, &sb), 0);

    /* truncated */
    snprintf(bad, sizeof bad, "%s/trunc.h5", dir);
    copy_file(path, bad, (long)sb.st_size / 2);
    ns_status st = ns_reference_load(bad, &b);
    ck_assert_msg(st == NS_ERR_CORRUPT || st == NS_ERR_FORMAT, "%s", ns_errmsg());
    assert_msg_has(bad);
    ck_assert_ptr_null(b.sample.emb);
    copy_file(path, bad, 100); /* shorter than the superblock */
    st = ns_reference_load(bad, &b);
    ck_assert_msg(st == NS_ERR_CORRUPT || st == NS_ERR_FORMAT, "%s", ns_errmsg());
    assert_msg_has(bad);
    /* not HDF5 at all */
    ns_test_write_text(bad, "hello\n");
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_FORMAT);
    assert_msg_has(bad);
    /* missing */
    snprintf(bad, sizeof bad, "%s/none.h5", dir);
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_IO);
    assert_msg_has(bad);

    /* another format */
    snprintf(bad, sizeof bad, "%s/fmt.h5", dir);
    copy_file(path, bad, -1);
    set_attr(bad, "ns_format", "nightshift-model", 0);
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_FORMAT);
    assert_msg_has(bad);
    assert_msg_has("nightshift-model");
    /* another version */
    copy_file(path, bad, -1);
    set_attr(bad, "ns_format_version", NULL, 3);
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_FORMAT);
    assert_msg_has(bad);
    assert_msg_has("version 3, expected 1..2");
    /* version 1 (no whitening) still loads: raw distances, as it was built */
    copy_file(path, bad, -1);
    set_attr(bad, "ns_format_version", NULL, 1);
    ck_assert_ns_ok(ns_reference_load(bad, &b));
    ck_assert_int_eq(b.format_version, 1);
    ck_assert_int_eq(b.whiten, 0);
    ck_assert_ptr_null(b.wemb);
    ns_reference_release(&b);
    /* a shape that does not match the header */
    copy_file(path, bad, -1);
    set_attr(bad, "knn_k", NULL, 4);
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_CORRUPT);
    assert_msg_has(bad);
    assert_msg_has("sample/loco_idx");
    /* the store's datasets are not a reference */
    snprintf(bad, sizeof bad, "%s/catalog.h5", dir);
    ck_assert_ns_status(ns_reference_load(bad, &b), NS_ERR_FORMAT);
    assert_msg_has("nightshift-catalog");
    ns_reference_release(&a);
}
END_TEST

static Suite *reference_suite(void)
{
    Suite *s = suite_create("reference");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, fixture_setup, NULL);
    tcase_add_test(tc, test_nights_select);
    tcase_add_test(tc, test_frameset_load);
    tcase_add_test(tc, test_reference_build);
    tcase_add_test(tc, test_reference_sample);
    tcase_add_test(tc, test_reference_errors);
    tcase_add_test(tc, test_reference_file);
    tcase_add_test(tc, test_reference_pvalue_per_camera);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return ns_test_run(reference_suite());
}
