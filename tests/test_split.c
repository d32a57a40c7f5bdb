/* test_split.c -- split invariants as property tests, and the leakage audit
 * against a brute-force reference. */
#include <math.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/split.h"

#define MAXC 600

typedef struct world {
    size_t n;
    ns_split_clip c[MAXC];
    char key[MAXC][NS_SHA256_HEX];
    char cam[MAXC][16];
    char night[MAXC][NS_NIGHT_LEN];
} world;

/* Nights of clips per camera: each night 18:00 + clips every 3..25 minutes,
 * 1..4 minutes long, classes drawn per clip. */
static void make_world(world *w, uint64_t seed, int nights, int cams, int clips_per_night,
                       int classes)
{
    uint64_t rng = seed;
    w->n = 0;
    for (int d = 0; d < nights; d++)
        for (int cam = 0; cam < cams; cam++) {
            /* Each (night, camera) has its own stream, so adding nights
             * leaves the earlier ones' clips exactly as they were. */
            uint64_t r2 = seed * 1000003u + (uint64_t)(d * 97 + cam);
            double t = 1.7e9 + d * 86400.0 + 18 * 3600.0;
            for (int k = 0; k < clips_per_night; k++) {
                size_t i = w->n++;
                ck_assert_uint_lt(i, MAXC);
                t += 60.0 * (3 + (double)(ns_test_rng_next(&r2) % 23));
                double len = 60.0 * (1 + (double)(ns_test_rng_next(&r2) % 4));
                ns_test_clip_sha("split", (int)(seed * 7919 + (uint64_t)(d * 1000 + cam * 100 + k)),
                                 w->key[i]);
                snprintf(w->cam[i], sizeof w->cam[i], "cam%02d", cam);
                snprintf(w->night[i], sizeof w->night[i], "2026-11-%02d", d + 1);
                w->c[i] = (ns_split_clip){w->key[i], w->cam[i], w->night[i], t, t + len,
                                          1 + ns_test_rng_next(&r2) % 30,
                                          (int32_t)(ns_test_rng_next(&r2) % (uint64_t)classes)};
                t += len;
            }
        }
    (void)rng;
}

START_TEST(test_split_groups_and_guard)
{
    static world w;
    static uint8_t split[MAXC];
    static size_t group[MAXC];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        ns_split_opts o;
        size_t ng = 0;
        ns_split_default_opts(&o);
        o.seed = seed;
        o.guard_minutes = (double)(seed % 4) * 5; /* 0, 5, 10, 15 */
        make_world(&w, seed, 4, 3, 12, 4);
        ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, split, group, &ng));
        ck_assert_uint_gt(ng, 0);
        for (size_t i = 0; i < w.n; i++) {
            ck_assert_uint_le(split[i], NS_SPLIT_TEST);
            ck_assert_uint_lt(group[i], ng);
            for (size_t j = 0; j < w.n; j++) {
                /* No group in two splits. */
                if (group[i] == group[j])
                    ck_assert_uint_eq(split[i], split[j]);
                /* Guard band: same-camera clips in different splits are
                 * more than guard minutes apart. */
                if (i != j && split[i] != split[j] && strcmp(w.cam[i], w.cam[j]) == 0) {
                    double gap = w.c[j].start >= w.c[i].end ? w.c[j].start - w.c[i].end
                                                            : w.c[i].start - w.c[j].end;
                    ck_assert_msg(gap > o.guard_minutes * 60.0,
                                  "seed %llu: clips %zu and %zu of %s are %.0f s apart in "
                                  "splits %d and %d (guard %g min)", (unsigned long long)seed,
                                  i, j, w.cam[i], gap, split[i], split[j], o.guard_minutes);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_split_stable_under_added_nights)
{
    static world a, b;
    static uint8_t sa[MAXC], sb[MAXC];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        ns_split_opts o;
        ns_split_default_opts(&o);
        o.seed = seed;
        o.by = seed % 3 == 0 ? NS_SPLIT_BY_NIGHT : NS_SPLIT_BY_CLIP;
        make_world(&a, seed, 3, 3, 10, 3);
        make_world(&b, seed, 5, 3, 10, 3);
        /* b holds a's clips first, then two more nights. */
        for (size_t i = 0; i < a.n; i++)
            ck_assert_str_eq(a.key[i], b.key[i]);
        ck_assert_ns_ok(ns_split_assign(a.c, a.n, &o, sa, NULL, NULL));
        ck_assert_ns_ok(ns_split_assign(b.c, b.n, &o, sb, NULL, NULL));
        for (size_t i = 0; i < a.n; i++)
            ck_assert_msg(sa[i] == sb[i], "seed %llu: clip %zu moved from split %d to %d when "
                          "nights were added", (unsigned long long)seed, i, sa[i], sb[i]);
        /* The same input gives the same split. */
        ck_assert_ns_ok(ns_split_assign(a.c, a.n, &o, sb, NULL, NULL));
        ck_assert_mem_eq(sa, sb, a.n);
    }
}
END_TEST

START_TEST(test_split_stratified)
{
    static world w;
    static uint8_t split[MAXC];
    ns_split_opts o;
    ns_split_default_opts(&o);
    o.guard_minutes = 0;
    make_world(&w, 5, 10, 4, 14, 3); /* 560 clips */
    ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, split, NULL, NULL));
    const double target[3] = {0.7, 0.1, 0.2};
    for (int cls = 0; cls < 3; cls++) {
        double tot = 0, per[3] = {0, 0, 0};
        for (size_t i = 0; i < w.n; i++)
            if (w.c[i].cls == cls) {
                per[split[i]] += (double)w.c[i].n_frames;
                tot += (double)w.c[i].n_frames;
            }
        for (int s = 0; s < 3; s++)
            ck_assert_msg(fabs(per[s] / tot - target[s]) < 0.03, "class %d split %d: %.3f of "
                          "frames, target %.2f", cls, s, per[s] / tot, target[s]);
    }
    /* Another seed gives another assignment. */
    static uint8_t other[MAXC];
    o.seed = 99;
    ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, other, NULL, NULL));
    ck_assert(memcmp(split, other, w.n) != 0);
}
END_TEST

START_TEST(test_split_camera_night_none)
{
    static world w;
    static uint8_t split[MAXC];
    ns_split_opts o;
    size_t ng = 0;
    ns_split_default_opts(&o);
    make_world(&w, 3, 3, 5, 6, 2);
    o.by = NS_SPLIT_BY_CAMERA;
    ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, split, NULL, &ng));
    ck_assert_uint_eq(ng, 5);
    int has[3] = {0, 0, 0};
    for (size_t i = 0; i < w.n; i++) {
        has[split[i]] = 1;
        for (size_t j = 0; j < w.n; j++)
            if (strcmp(w.cam[i], w.cam[j]) == 0)
                ck_assert_uint_eq(split[i], split[j]);
    }
    ck_assert(has[0] && has[1] && has[2]); /* 5 cameras: 1 test, 1 val, 3 train */
    o.by = NS_SPLIT_BY_NIGHT;
    ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, split, NULL, &ng));
    ck_assert_uint_eq(ng, 3);
    for (size_t i = 0; i < w.n; i++)
        for (size_t j = 0; j < w.n; j++)
            if (strcmp(w.night[i], w.night[j]) == 0)
                ck_assert_uint_eq(split[i], split[j]);
    o.by = NS_SPLIT_BY_NONE;
    ck_assert_ns_ok(ns_split_assign(w.c, w.n, &o, split, NULL, &ng));
    for (size_t i = 0; i < w.n; i++)
        ck_assert_uint_eq(split[i], NS_SPLIT_TEST);
    o.by = NS_SPLIT_BY_CLIP;
    o.val = 0.6;
    o.test = 0.5;
    ck_assert_ns_status(ns_split_assign(w.c, w.n, &o, split, NULL, &ng), NS_ERR_USAGE);
}
END_TEST

/* ---- audit ----------------------------------------------------------------------- */

static double dist2(const float *a, const float *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return sqrt(s);
}

START_TEST(test_audit_brute_force)
{
    enum { N = 240, D = 6, PER = 8 };
    static float emb[N * D];
    static uint32_t clip[N];
    static uint8_t split[N];
    static uint64_t hash[N];
    uint64_t rng = 11;
    /* Clips of 8 frames on a slow random walk; splits by clip; then some
     * test frames copied from train (near) and one exact pixel twin. */
    for (int i = 0; i < N; i++) {
        clip[i] = (uint32_t)(i / PER);
        split[i] = (uint8_t)(clip[i] % 10 < 7 ? 0 : clip[i] % 10 < 8 ? 1 : 2);
        for (int j = 0; j < D; j++)
            emb[i * D + j] = i % PER == 0 ? 3.0f * ns_test_rng_unif(&rng)
                                           : emb[(i - 1) * D + j] + 0.05f * ns_test_rng_unif(&rng);
        hash[i] = 1000 + (uint64_t)i;
    }
    int n_copies = 0;
    for (int i = 0; i < N; i++)
        if (split[i] == 2 && i % 5 == 0) {
            int src = (i / PER % 7) * PER + 3; /* a train clip */
            for (int j = 0; j < D; j++)
                emb[i * D + j] = emb[src * D + j] + 1e-4f;
            n_copies++;
        }
    hash[N - 1] = hash[3]; /* test twin of a train frame's pixels */
    ck_assert_int_gt(n_copies, 2);

    ns_audit_opts o;
    ns_dataset_audit a;
    uint64_t leaked = 0;
    size_t audited[3];
    ns_audit_default_opts(&o);
    o.sample = 0;
    o.threads = 1;
    ck_assert_ns_ok(ns_leak_audit(emb, N, D, clip, split, hash, &o, &a, &leaked, audited));

    /* Reference: the threshold from within-clip nearest neighbours. */
    static double nn[N];
    int n_nn = 0;
    for (int i = 0; i < N; i++) {
        double best = INFINITY;
        for (int j = 0; j < N; j++)
            if (j != i && clip[j] == clip[i])
                best = fmin(best, dist2(emb + i * D, emb + j * D, D));
        nn[n_nn++] = best;
    }
    for (int i = 1; i < n_nn; i++)
        for (int j = i; j > 0 && nn[j - 1] > nn[j]; j--) {
            double t = nn[j];
            nn[j] = nn[j - 1];
            nn[j - 1] = t;
        }
    double thr = nn[(int)floor(0.05 * (n_nn - 1))];
    ck_assert_msg(fabs(a.threshold - thr) < 1e-4, "threshold %g, reference %g", a.threshold, thr);
    int n_test = 0, n_leak = 0;
    for (int i = 0; i < N; i++) {
        if (split[i] != 2)
            continue;
        n_test++;
        int leak = 0;
        for (int j = 0; j < N; j++)
            if (split[j] == 0 &&
                (dist2(emb + i * D, emb + j * D, D) <= a.threshold || hash[j] == hash[i]))
                leak = 1;
        n_leak += leak;
    }
    ck_assert_uint_eq(leaked, (uint64_t)n_leak);
    ck_assert_int_ge(n_leak, n_copies + 1);
    ck_assert(fabs(a.test_leak_share - (double)n_leak / n_test) < 1e-12);
    ck_assert_uint_eq(a.n_exact_dup, 1);
    ck_assert(!a.passed);
    ck_assert_uint_eq(audited[0], (size_t)n_test);

    /* A looser --max-leak lets the same data pass. */
    o.max_leak = 1.0;
    ck_assert_ns_ok(ns_leak_audit(emb, N, D, clip, split, hash, &o, &a, &leaked, audited));
    ck_assert(a.passed);
    /* Sampling examines at most `sample` queries. */
    o.sample = 5;
    ck_assert_ns_ok(ns_leak_audit(emb, N, D, clip, split, hash, &o, &a, &leaked, audited));
    ck_assert_uint_eq(audited[0], 5);
    ck_assert_uint_le(leaked, 5);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("split");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_split_groups_and_guard);
    tcase_add_test(tc, test_split_stable_under_added_nights);
    tcase_add_test(tc, test_split_stratified);
    tcase_add_test(tc, test_split_camera_night_none);
    tcase_add_test(tc, test_audit_brute_force);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
