/* test_select.c -- each selection term against a brute-force reference on
 * small synthetic framesets (no store): coverage with temporal dedup, the
 * novel quotas, the camera floor, uncertainty; labelled frames never picked. */
#include <math.h>
#include <string.h>

#include "../src/dataset/select_internal.h"
#include "detect_fixtures.h"
#include "helpers.h"

#define NCLIP 12
#define PER 10
#define D 8
#define N (NCLIP * PER)

typedef struct world {
    ns_frameset fs;
    ns_fs_clip clips[NCLIP];
    float emb[N * D];
    uint32_t clip[N], index[N];
    double ts[N];
    char member[N][NS_MEMBER_LEN];
    uint64_t view[N];
    int32_t cond[N];      /* condition id per frame, -1 none */
    float score[N];
    uint8_t labelled[N];
} world;

static void make_world(world *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    for (int c = 0; c < NCLIP; c++) {
        ns_fs_clip *k = &w->clips[c];
        snprintf(k->sha256, sizeof k->sha256, "%064d", c);
        snprintf(k->camera, sizeof k->camera, "cam%02d", c % 3);
        snprintf(k->night, sizeof k->night, "2026-01-01");
        k->start_time = NAN;
        k->first = (size_t)c * PER;
        k->n = PER;
        float centre[D];
        for (int t = 0; t < D; t++)
            centre[t] = ns_test_rng_unif(&seed);
        for (int f = 0; f < PER; f++) {
            size_t i = (size_t)c * PER + (size_t)f;
            for (int t = 0; t < D; t++)
                w->emb[i * D + t] = centre[t] + 0.2f * ns_test_rng_unif(&seed);
            w->clip[i] = (uint32_t)c;
            w->index[i] = (uint32_t)f;
            w->ts[i] = NAN;
            w->cond[i] = c < 3 ? 0 : c < 5 ? 1 : c < 7 ? 2 : -1; /* 0, 1 novel; 2 not */
            w->score[i] = 1.0f + (float)(c % 4);
        }
    }
    w->fs.n = N;
    w->fs.d = D;
    w->fs.emb = w->emb;
    w->fs.clip = w->clip;
    w->fs.index = w->index;
    w->fs.timestamp = w->ts;
    w->fs.member = w->member;
    w->fs.view_row = w->view;
    w->fs.n_clips = NCLIP;
    w->fs.clips = w->clips;
}

static void run(world *w, const ns_select_opts *o, const ns_head *h, ns_select_result *r)
{
    sel_state S;
    ns_det_frames d;
    uint8_t novel[3] = {1, 1, 0};
    uint64_t frames[3] = {0};
    memset(&d, 0, sizeof d);
    d.n_conditions = 3;
    d.cond_novel = novel;
    d.cond_frames = frames;
    ck_assert_int_eq(ns_sel_state_init(&S, &w->fs, o, 1), NS_OK);
    ck_assert_int_eq(ns_sel_add_conditions(&S, 0, &d), NS_OK);
    for (size_t i = 0; i < N; i++)
        ns_sel_add_candidate(&S, i, 0, w->cond[i], w->score[i]);
    for (size_t i = 0; i < N; i++)
        if (w->labelled[i])
            ns_sel_mark_labelled(&S, i);
    if (h)
        ck_assert_int_eq(ns_sel_head_scores(&S, h), NS_OK);
    ck_assert_int_eq(ns_sel_run_terms(&S, r), NS_OK);
    ns_sel_state_release(&S);
}

static size_t row_of(const ns_select_pick *p)
{
    int c = atoi(p->clip);
    return (size_t)c * PER + p->index;
}

/* brute force: distance of row i to the nearest of centers[0..k) */
static double mind(const world *w, size_t i, const size_t *centers, size_t k)
{
    double m = INFINITY;
    for (size_t j = 0; j < k; j++) {
        double s = 0;
        for (int t = 0; t < D; t++) {
            double u = (double)w->emb[i * D + t] - w->emb[centers[j] * D + t];
            s += u * u;
        }
        m = s < m ? s : m;
    }
    return sqrt(m);
}

/* brute force eligibility: a candidate, not picked, not within the gap of a
 * pick of its clip */
static int eligible(const world *w, size_t i, const size_t *picks, size_t k, int gap)
{
    if (w->labelled[i])
        return 0;
    for (size_t j = 0; j < k; j++)
        if (w->clip[picks[j]] == w->clip[i] &&
            abs((int)w->index[picks[j]] - (int)w->index[i]) < gap)
            return 0;
    return 1;
}

/* every pick is the farthest eligible frame of its term's pool at its step
 * (pool given by a predicate), gains match, gaps hold */
static void check_farthest(const world *w, const ns_select_result *r, int gap, size_t from,
                           size_t to, int (*pool)(const world *, size_t, const ns_select_pick *))
{
    size_t centers[N], picks[N], nc = 0;
    for (size_t i = 0; i < N; i++)
        if (w->labelled[i])
            centers[nc++] = i;
    for (size_t p = 0; p < r->n; p++) {
        size_t row = row_of(&r->picks[p]);
        if (p >= from && p < to && p > 0) {
            double best = -1;
            for (size_t i = 0; i < N; i++)
                if (eligible(w, i, picks, p, gap) && pool(w, i, &r->picks[p])) {
                    double m = mind(w, i, centers, nc);
                    best = m > best ? m : best;
                }
            double got = mind(w, row, centers, nc);
            ck_assert_msg(fabs(got - best) < 1e-5, "pick %zu: distance %g, farthest %g", p, got,
                          best);
            if (nc > 0)
                ck_assert(fabs(r->picks[p].gain - got) < 1e-4);
        }
        ck_assert(eligible(w, row, picks, p, gap));
        picks[p] = row;
        centers[nc++] = row;
    }
}

static int pool_all(const world *w, size_t i, const ns_select_pick *p)
{
    (void)w; (void)i; (void)p;
    return 1;
}

static int pool_cond(const world *w, size_t i, const ns_select_pick *p)
{
    return w->cond[i] == p->condition;
}

static int pool_cam(const world *w, size_t i, const ns_select_pick *p)
{
    return strcmp(w->clips[w->clip[i]].camera, p->camera) == 0;
}

START_TEST(test_select_coverage_and_dedup)
{
    static world w;
    make_world(&w, 5);
    w.labelled[3] = w.labelled[57] = 1;
    ns_select_opts o;
    ns_select_default_opts(&o);
    o.w_novel = o.w_uncertain = o.w_camera = 0;
    o.budget = 20;
    o.min_gap = 4;
    ns_select_result r;
    run(&w, &o, NULL, &r);
    ck_assert_uint_eq(r.n, 20);
    for (size_t p = 0; p < r.n; p++) {
        ck_assert_int_eq(r.picks[p].reason, NS_REASON_COVERAGE);
        ck_assert(!w.labelled[row_of(&r.picks[p])]);
    }
    check_farthest(&w, &r, 4, 0, r.n, pool_all);
    ns_select_result_release(&r);
    /* the budget beyond what the gap allows: at most 3 per clip of 10 at gap 4,
     * at least 2 (greedy placement can leave a clip full after two) */
    o.budget = 1000;
    run(&w, &o, NULL, &r);
    ck_assert_uint_le(r.n, 3 * NCLIP);
    ck_assert_uint_ge(r.n, 2 * NCLIP);
    check_farthest(&w, &r, 4, 0, r.n, pool_all);
    ns_select_result_release(&r);
}
END_TEST

START_TEST(test_select_novel_quotas)
{
    static world w;
    make_world(&w, 9);
    ns_select_opts o;
    ns_select_default_opts(&o);
    o.w_novel = 0.5;
    o.w_uncertain = o.w_camera = 0;
    o.budget = 20;
    o.min_gap = 2;
    ns_select_result r;
    run(&w, &o, NULL, &r);
    size_t got[3] = {0}, n_novel = 0;
    for (size_t p = 0; p < r.n; p++)
        if (r.picks[p].reason == NS_REASON_NOVEL) {
            ck_assert_uint_eq(n_novel, p); /* novel picks come first */
            ck_assert_int_ge(r.picks[p].condition, 0);
            ck_assert_int_le(r.picks[p].condition, 1); /* condition 2 is not novel */
            got[r.picks[p].condition]++;
            n_novel++;
        }
    ck_assert_uint_eq(n_novel, 10);
    /* weights frames x mean score: c0 clips 0-2 (scores 1,2,3) = 60, c1 clips
     * 3-4 (4,1) = 50; 2 each first, the other 6 split 60:50 -> 3 + 2, and the
     * largest remainder to c0: 6 and 4 */
    ck_assert_uint_eq(got[0], 6);
    ck_assert_uint_eq(got[1], 4);
    check_farthest(&w, &r, 2, 0, n_novel, pool_cond);
    check_farthest(&w, &r, 2, n_novel, r.n, pool_all);
    ns_select_result_release(&r);
    /* minimums win over the weight */
    o.budget = 3;
    o.min_per_condition = 2;
    run(&w, &o, NULL, &r);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(r.picks[0].reason, NS_REASON_NOVEL);
    ck_assert_int_eq(r.picks[1].reason, NS_REASON_NOVEL);
    ck_assert_int_ne(r.picks[0].condition, r.picks[1].condition);
    ns_select_result_release(&r);
}
END_TEST

START_TEST(test_select_camera_floor)
{
    static world w;
    make_world(&w, 13);
    ns_select_opts o;
    ns_select_default_opts(&o);
    o.w_novel = o.w_uncertain = 0;
    o.w_camera = 1.0;
    o.budget = 9;
    ns_select_result r;
    run(&w, &o, NULL, &r);
    ck_assert_uint_eq(r.n, 9);
    size_t per[3] = {0};
    for (size_t p = 0; p < r.n; p++) {
        ck_assert_int_eq(r.picks[p].reason, NS_REASON_CAMERA);
        per[r.picks[p].camera[4] - '0']++;
    }
    ck_assert_uint_eq(per[0], 3);
    ck_assert_uint_eq(per[1], 3);
    ck_assert_uint_eq(per[2], 3);
    check_farthest(&w, &r, o.min_gap, 0, r.n, pool_cam);
    ns_select_result_release(&r);
}
END_TEST

START_TEST(test_select_uncertainty)
{
    static world w;
    make_world(&w, 17);
    ns_head h;
    ck_assert_int_eq(ns_head_alloc(&h, NS_HEAD_SOFTMAX, D, 0, 3), NS_OK);
    uint64_t s = 3;
    for (int i = 0; i < 3 * D; i++)
        h.w[i] = 2.0f * ns_test_rng_unif(&s);
    for (int c = 0; c < 3; c++)
        snprintf(h.classes[c], sizeof h.classes[c], "class%d", c);
    ns_select_opts o;
    ns_select_default_opts(&o);
    o.w_novel = o.w_camera = 0;
    o.w_uncertain = 0.5;
    o.budget = 12;
    o.min_gap = 3;
    ns_select_result r;
    run(&w, &o, &h, &r);
    ck_assert_uint_eq(r.n, 12);
    /* brute force: 1 - margin for every frame, then greedy with the gap */
    float prob[N * 3], unc[N];
    ck_assert_int_eq(ns_head_predict(&h, w.emb, N, prob), NS_OK);
    for (size_t i = 0; i < N; i++) {
        float a = -1, b = -1;
        for (int c = 0; c < 3; c++) {
            float p = prob[i * 3 + c];
            if (p > a) { b = a; a = p; } else if (p > b) b = p;
        }
        unc[i] = 1.0f - (a - b);
    }
    size_t picks[N];
    for (size_t p = 0; p < 6; p++) {
        ck_assert_int_eq(r.picks[p].reason, NS_REASON_UNCERTAIN);
        size_t best = N;
        for (size_t i = 0; i < N; i++)
            if (eligible(&w, i, picks, p, 3) && (best == N || unc[i] > unc[best]))
                best = i;
        ck_assert_uint_eq(row_of(&r.picks[p]), best);
        ck_assert(fabs(r.picks[p].gain - unc[best]) < 1e-5);
        int top = 0;
        for (int c = 1; c < 3; c++)
            if (prob[best * 3 + c] > prob[best * 3 + top])
                top = c;
        ck_assert_str_eq(r.picks[p].suggested, h.classes[top]);
        picks[p] = best;
    }
    for (size_t p = 6; p < 12; p++)
        ck_assert_int_eq(r.picks[p].reason, NS_REASON_COVERAGE);
    check_farthest(&w, &r, 3, 6, r.n, pool_all);
    ns_select_result_release(&r);
    ns_head_release(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("terms");
    tcase_add_test(tc, test_select_coverage_and_dedup);
    tcase_add_test(tc, test_select_novel_quotas);
    tcase_add_test(tc, test_select_camera_floor);
    tcase_add_test(tc, test_select_uncertainty);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
