/* test_mmd.c -- MMD block sums against the reference, thread-count
 * determinism, the block-sum statistic against the direct one, the
 * permutation test's p-values, and why the test permutes clips, not frames. */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/mmd.h"

/* Clip-structured rows: each clip gets an offset N(0, tau^2 I) (plus shift in
 * every coordinate) shared by its frames, each frame adds N(0, noise^2 I). */
static void clips_fill(float *x, size_t clips, size_t frames, int d, double tau, double noise,
                       double shift, uint64_t *s)
{
    double *c = ns_test_xmalloc((size_t)d * sizeof *c);
    for (size_t k = 0; k < clips; k++) {
        for (int t = 0; t < d; t++)
            c[t] = shift + tau * ns_test_rng_gauss(s);
        for (size_t f = 0; f < frames; f++)
            for (int t = 0; t < d; t++)
                x[((k * frames + f) * (size_t)d) + t] = (float)(c[t] + noise * ns_test_rng_gauss(s));
    }
    free(c);
}

/* Uneven block sizes from the stream: mostly small, some 1, some empty, one
 * bigger than a kernel tile's rows when big != 0.  Returns nblocks. */
static size_t make_offsets(size_t n, size_t big, uint64_t seed, size_t *off)
{
    size_t nb = 0, pos = 0;
    off[0] = 0;
    while (pos < n) {
        uint64_t r = ns_test_rng_next(&seed) % 10;
        size_t len = r == 0 ? 1 : r == 1 ? 0 : 2 + (size_t)(ns_test_rng_next(&seed) % 40);
        if (big && nb == 3)
            len = big;
        if (len > n - pos)
            len = n - pos;
        pos += len;
        off[++nb] = pos;
    }
    return nb;
}

/* Fast block sums vs the double reference, relative 1e-5 per entry (float
 * GEMM distances and float expf), and exact symmetry. */
START_TEST(test_block_sums_match_ref)
{
    static const struct { size_t n, big; int d; double sigma; } cs[] = {
        {1, 0, 3, 1.0}, {7, 0, 2, 0.7}, {300, 0, 8, 2.0}, {1300, 700, 16, 3.0},
        {2600, 0, 8, 2.5}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        size_t n = cs[c].n, *off = ns_test_xmalloc((n + 2) * sizeof *off), nb;
        int d = cs[c].d;
        uint64_t s = 1000 + c;
        float *x = ns_test_xmalloc(n * (size_t)d * sizeof *x);
        double *S, *R;
        for (size_t i = 0; i < n * (size_t)d; i++)
            x[i] = (float)ns_test_rng_gauss(&s);
        nb = make_offsets(n, cs[c].big, 77 + c, off);
        S = ns_test_xmalloc(nb * nb * sizeof *S);
        R = ns_test_xmalloc(nb * nb * sizeof *R);
        ck_assert_ns_ok(ns_mmd_block_sums(x, n, d, off, nb, cs[c].sigma, 2, S));
        ck_assert_ns_ok(ns_ref_mmd_block_sums(x, n, d, off, nb, cs[c].sigma, R));
        for (size_t a = 0; a < nb; a++)
            for (size_t b = 0; b < nb; b++) {
                double v = S[a * nb + b], w = R[a * nb + b];
                ck_assert_msg(fabs(v - w) <= 1e-5 * w + 1e-12,
                              "n=%zu S[%zu][%zu] = %.9g, ref %.9g", n, a, b, v, w);
                ck_assert(v == S[b * nb + a]);
            }
        free(x), free(off), free(S), free(R);
    }
}
END_TEST

/* Same bits for 1, 2 and 3 threads (3 > cores: oversubscribed on purpose). */
START_TEST(test_block_sums_thread_invariant)
{
    size_t n = 3100, *off = ns_test_xmalloc((n + 2) * sizeof *off), nb;
    int d = 24;
    uint64_t s = 5;
    float *x = ns_test_xmalloc(n * (size_t)d * sizeof *x);
    double *S1, *S2;
    int max_threads = omp_get_max_threads();
    for (size_t i = 0; i < n * (size_t)d; i++)
        x[i] = (float)ns_test_rng_gauss(&s);
    nb = make_offsets(n, 900, 9, off);
    S1 = ns_test_xmalloc(nb * nb * sizeof *S1);
    S2 = ns_test_xmalloc(nb * nb * sizeof *S2);
    ck_assert_ns_ok(ns_mmd_block_sums(x, n, d, off, nb, 4.0, 1, S1));
    for (int t = 2; t <= 3; t++) {
        ck_assert_ns_ok(ns_mmd_block_sums(x, n, d, off, nb, 4.0, t, S2));
        ck_assert_msg(memcmp(S1, S2, nb * nb * sizeof *S1) == 0, "threads=%d differs", t);
    }
    ck_assert_int_eq(omp_get_max_threads(), max_threads); /* our setting stays inside */
    free(x), free(off), free(S1), free(S2);
}
END_TEST

/* Concatenates x (m rows) and y (n rows) and builds one block per frame. */
static double frame_level_from_ref(const float *x, size_t m, const float *y, size_t n, int d,
                                   double sigma, const size_t *off, size_t nb, const uint8_t *g,
                                   const size_t *size)
{
    float *z = ns_test_xmalloc((m + n) * (size_t)d * sizeof *z);
    double *S = ns_test_xmalloc(nb * nb * sizeof *S), v;
    memcpy(z, x, m * (size_t)d * sizeof *z);
    memcpy(z + m * (size_t)d, y, n * (size_t)d * sizeof *z);
    ck_assert_ns_ok(ns_ref_mmd_block_sums(z, m + n, d, off, nb, sigma, S));
    v = ns_mmd2_from_blocks(S, size, nb, g);
    free(z), free(S);
    return v;
}

/* The block-sum statistic equals the direct unbiased MMD^2 (relative 1e-9)
 * with one frame per block and with clip blocks: it depends on the split
 * into X and Y only, not on how the rows are grouped. */
START_TEST(test_from_blocks_matches_ref)
{
    size_t m = 30, n = 25, N = m + n, off1[56], size1[55], offc[12], sizec[11], nc = 0;
    uint8_t g1[55], gc[11];
    int d = 5;
    uint64_t s = 42;
    float *x = ns_test_xmalloc(N * (size_t)d * sizeof *x), *y = x + m * d;
    double ref, v;
    static const size_t clip_len[11] = {1, 7, 2, 10, 10, 5, 3, 1, 9, 4, 3}; /* 30 | 25 */
    for (size_t i = 0; i < m * (size_t)d; i++)
        x[i] = (float)ns_test_rng_gauss(&s);
    for (size_t i = 0; i < n * (size_t)d; i++)
        y[i] = (float)(1.0 + ns_test_rng_gauss(&s));
    ck_assert_ns_ok(ns_ref_mmd2(x, m, y, n, d, 1.7, &ref));
    ck_assert_msg(ref > 0.01, "ref %g", ref);
    for (size_t i = 0; i <= N; i++)
        off1[i] = i;
    for (size_t i = 0; i < N; i++) {
        size1[i] = 1;
        g1[i] = i < m;
    }
    v = frame_level_from_ref(x, m, y, n, d, 1.7, off1, N, g1, size1);
    ck_assert_msg(fabs(v - ref) <= 1e-9 * fabs(ref), "frame blocks %.15g vs ref %.15g", v, ref);

    offc[0] = 0;
    for (size_t k = 0; k < 11; k++) {
        offc[k + 1] = offc[k] + clip_len[k];
        sizec[k] = clip_len[k];
        gc[k] = offc[k + 1] <= m;
        nc++;
    }
    ck_assert_uint_eq(offc[5], m);
    v = frame_level_from_ref(x, m, y, n, d, 1.7, offc, nc, gc, sizec);
    ck_assert_msg(fabs(v - ref) <= 1e-9 * fabs(ref), "clip blocks %.15g vs ref %.15g", v, ref);

    /* the fast block sums agree to float precision */
    {
        double *S = ns_test_xmalloc(nc * nc * sizeof *S);
        ck_assert_ns_ok(ns_mmd_block_sums(x, N, d, offc, nc, 1.7, 1, S));
        v = ns_mmd2_from_blocks(S, sizec, nc, gc);
        ck_assert_msg(fabs(v - ref) <= 1e-5, "fast %.9g vs ref %.9g", v, ref);
        gc[0] = gc[1] = gc[2] = gc[3] = 0; /* X keeps one frame-bearing block: 5 */
        gc[4] = 1;
        ck_assert(!isnan(ns_mmd2_from_blocks(S, sizec, nc, gc)));
        memset(gc, 0, sizeof gc);
        gc[0] = 1; /* X = one frame */
        ck_assert(isnan(ns_mmd2_from_blocks(S, sizec, nc, gc)));
        free(S);
    }
    ck_assert_ns_status(ns_ref_mmd2(x, 1, y, n, d, 1.7, &v), NS_ERR_USAGE);
    free(x);
}
END_TEST

/* Clip data -> block sums for nx + ny clips of f frames (X first). */
typedef struct clipset {
    size_t nb, n, *off, *size;
    uint8_t *g;
    double *S;
} clipset;

static clipset clipset_make(size_t nx, size_t ny, size_t f, int d, double tau, double noise,
                            double shift, uint64_t seed, int frame_blocks)
{
    clipset c = {0};
    uint64_t s = seed;
    float *x;
    double sigma;
    c.n = (nx + ny) * f;
    c.nb = frame_blocks ? c.n : nx + ny;
    x = ns_test_xmalloc(c.n * (size_t)d * sizeof *x);
    clips_fill(x, nx, f, d, tau, noise, shift, &s);
    clips_fill(x + nx * f * (size_t)d, ny, f, d, tau, noise, 0.0, &s);
    c.off = ns_test_xmalloc((c.nb + 1) * sizeof *c.off);
    c.size = ns_test_xmalloc(c.nb * sizeof *c.size);
    c.g = ns_test_xmalloc(c.nb * sizeof *c.g);
    c.S = ns_test_xmalloc(c.nb * c.nb * sizeof *c.S);
    for (size_t a = 0; a <= c.nb; a++)
        c.off[a] = frame_blocks ? a : a * f;
    for (size_t a = 0; a < c.nb; a++) {
        c.size[a] = c.off[a + 1] - c.off[a];
        c.g[a] = c.off[a + 1] <= nx * f;
    }
    ck_assert_ns_ok(ns_mmd_median_sigma(x, c.n, d, 4000, seed, &sigma));
    ck_assert_ns_ok(ns_mmd_block_sums(x, c.n, d, c.off, c.nb, sigma, 2, c.S));
    free(x);
    return c;
}

static void clipset_free(clipset *c)
{
    free(c->off), free(c->size), free(c->g), free(c->S);
}

/* Deterministic for a seed and any thread count; null stats kept on request
 * and consistent with the p-value; another seed draws other permutations. */
START_TEST(test_perm_deterministic)
{
    clipset c = clipset_make(9, 14, 6, 8, 0.5, 1.0, 0.0, 3, 0);
    ns_mmd_test a, b;
    int ge = 0;
    ck_assert_ns_ok(ns_mmd_perm_test(c.S, c.size, c.nb, c.g, 300, 11, 1, 1, &a));
    ck_assert(a.p_value > 0.0 && a.p_value <= 1.0);
    ck_assert_int_eq(a.n_perm, 300);
    ck_assert_uint_eq(a.blocks_x, 9);
    ck_assert_uint_eq(a.blocks_y, 14);
    ck_assert_uint_eq(a.n_x, 54);
    ck_assert_uint_eq(a.n_y, 84);
    ck_assert(a.mmd2 == ns_mmd2_from_blocks(c.S, c.size, c.nb, c.g));
    ck_assert_ptr_nonnull(a.null_stats);
    for (int p = 0; p < 300; p++)
        ge += a.null_stats[p] >= a.mmd2;
    ck_assert(fabs(a.p_value - (1.0 + ge) / 301.0) < 1e-12);
    ck_assert(a.null_sd > 0.0);
    for (int t = 2; t <= 3; t++) {
        ck_assert_ns_ok(ns_mmd_perm_test(c.S, c.size, c.nb, c.g, 300, 11, t, 1, &b));
        ck_assert(b.p_value == a.p_value && b.null_mean == a.null_mean && b.null_sd == a.null_sd);
        ck_assert(memcmp(a.null_stats, b.null_stats, 300 * sizeof *a.null_stats) == 0);
        free(b.null_stats);
    }
    ck_assert_ns_ok(ns_mmd_perm_test(c.S, c.size, c.nb, c.g, 300, 12, 2, 0, &b));
    ck_assert_ptr_null(b.null_stats);
    ck_assert(b.null_mean != a.null_mean);
    free(a.null_stats);
    clipset_free(&c);
}
END_TEST

/* Same distribution: p not small; clear shift: no permutation reaches the
 * observed statistic, p = 1 / (n_perm + 1). */
START_TEST(test_perm_null_and_shift)
{
    clipset c0 = clipset_make(12, 30, 10, 16, 1.0, 0.3, 0.0, 101, 0);
    clipset c1 = clipset_make(12, 30, 10, 16, 1.0, 0.3, 1.5, 202, 0);
    ns_mmd_test t0, t1;
    ck_assert_ns_ok(ns_mmd_perm_test(c0.S, c0.size, c0.nb, c0.g, 500, 1, 2, 0, &t0));
    ck_assert_msg(t0.p_value > 0.05, "null p = %g", t0.p_value);
    ck_assert(t0.null_sd > 0.0);
    ck_assert_ns_ok(ns_mmd_perm_test(c1.S, c1.size, c1.nb, c1.g, 500, 1, 2, 0, &t1));
    ck_assert_msg(t1.p_value == 1.0 / 501.0, "shift p = %g", t1.p_value);
    ck_assert(t1.mmd2 > t1.null_mean + 5.0 * t1.null_sd);
    clipset_free(&c0);
    clipset_free(&c1);
}
END_TEST

/* Why clips: frames of one clip share a clip offset (tau = 1, frame noise
 * 0.3, d = 16), so 12 clips x 10 frames are worth about 12 samples, not 120.
 * Over 60 null nights against a 30-clip reference, permuting clips keeps the
 * 5% level (rejection rate <= 0.10) while permuting frames rejects far more
 * often (>= 0.3). */
START_TEST(test_clip_vs_frame_permutation)
{
    const int nights = 60, n_perm = 200;
    int rej_clip = 0, rej_frame = 0;
    for (int k = 0; k < nights; k++) {
        clipset c = clipset_make(12, 30, 10, 16, 1.0, 0.3, 0.0, 1000 + (uint64_t)k, 0);
        clipset f = clipset_make(12, 30, 10, 16, 1.0, 0.3, 0.0, 1000 + (uint64_t)k, 1);
        ns_mmd_test tc, tf;
        ck_assert_ns_ok(ns_mmd_perm_test(c.S, c.size, c.nb, c.g, n_perm, 7 + k, 2, 0, &tc));
        ck_assert_ns_ok(ns_mmd_perm_test(f.S, f.size, f.nb, f.g, n_perm, 7 + k, 2, 0, &tf));
        ck_assert(fabs(tc.mmd2 - tf.mmd2) <= 1e-9); /* one statistic, two nulls */
        rej_clip += tc.p_value <= 0.05;
        rej_frame += tf.p_value <= 0.05;
        clipset_free(&c);
        clipset_free(&f);
    }
    ck_assert_msg(rej_clip <= nights / 10, "clip permutation rejected %d of %d null nights",
                  rej_clip, nights);
    ck_assert_msg(rej_frame * 10 >= 3 * nights, "frame permutation rejected only %d of %d",
                  rej_frame, nights);
}
END_TEST

/* ---- stratified permutations ------------------------------------------------ */

/* One night of a camera-stratified set: cameras far apart (centre norm sep,
 * fixed across nights), clips of f frames as in clips_fill.  Reference clips
 * (g = 0, ny[c] per camera) first, then tonight's (g = 1, nx[c]); tonight's
 * clips of the first n_shift cameras move by shift.  stratum = 3 c - 4:
 * nonconsecutive and partly negative on purpose. */
static clipset strata_night(int ncam, const int *nx, const int *ny, size_t f, int d, double sep,
                            double shift, int n_shift, uint64_t seed, int32_t *stratum)
{
    clipset c = {0};
    uint64_t s = seed;
    size_t nb = 0, at = 0;
    float *x;
    double sigma, *centre = ns_test_xmalloc((size_t)d * sizeof *centre);
    for (int k = 0; k < ncam; k++)
        nb += (size_t)(nx[k] + ny[k]);
    c.nb = nb;
    c.n = nb * f;
    x = ns_test_xmalloc(c.n * (size_t)d * sizeof *x);
    c.off = ns_test_xmalloc((nb + 1) * sizeof *c.off);
    c.size = ns_test_xmalloc(nb * sizeof *c.size);
    c.g = ns_test_xmalloc(nb);
    c.S = ns_test_xmalloc(nb * nb * sizeof *c.S);
    for (int side = 0; side < 2; side++)
        for (int k = 0; k < ncam; k++) {
            uint64_t cs = 1234 + (uint64_t)k;
            double norm = 0.0;
            int m = side ? nx[k] : ny[k];
            for (int t = 0; t < d; t++) {
                centre[t] = ns_test_rng_gauss(&cs);
                norm += centre[t] * centre[t];
            }
            for (int t = 0; t < d; t++)
                centre[t] *= sep / sqrt(norm);
            for (int i = 0; i < m; i++, at++) {
                float *xa = x + at * f * (size_t)d;
                clips_fill(xa, 1, f, d, 1.0, 0.3, side && k < n_shift ? shift : 0.0, &s);
                for (size_t r = 0; r < f * (size_t)d; r++)
                    xa[r] += (float)centre[r % (size_t)d];
                c.g[at] = (uint8_t)side;
                stratum[at] = 3 * k - 4;
            }
        }
    for (size_t a = 0; a <= nb; a++)
        c.off[a] = a * f;
    for (size_t a = 0; a < nb; a++)
        c.size[a] = f;
    ck_assert_ns_ok(ns_mmd_median_sigma(x, c.n, d, 4000, seed, &sigma));
    ck_assert_ns_ok(ns_mmd_block_sums(x, c.n, d, c.off, nb, sigma, 2, c.S));
    free(x);
    free(centre);
    return c;
}

/* The documented draw, written out plainly: blocks with frames sorted by
 * (stratum, block); permutation p's stream starts at seed + p * golden; each
 * stratum with blocks on both sides, in ascending stratum value, gets a
 * partial Fisher-Yates choosing its X blocks; one-sided strata keep their
 * labels.  Each statistic straight from ns_mmd2_from_blocks. */
static void naive_strata_null(const clipset *c, const int32_t *stratum, int n_perm,
                              uint64_t seed, double *stats)
{
    size_t nb = c->nb, *ord = ns_test_xmalloc(nb * sizeof *ord), nlive = 0;
    uint8_t *h = ns_test_xmalloc(nb);
    for (size_t a = 0; a < nb; a++)
        if (c->size[a]) { /* insertion sort by (stratum, block) */
            size_t i = nlive++;
            for (; i > 0 && stratum[ord[i - 1]] > stratum[a]; i--)
                ord[i] = ord[i - 1];
            ord[i] = a;
        }
    for (int p = 0; p < n_perm; p++) {
        uint64_t s = seed + (uint64_t)p * 0x9E3779B97F4A7C15ull;
        s = ns_test_rng_next(&s);
        memset(h, 0, nb);
        for (size_t i = 0, j; i < nlive; i = j) {
            size_t kx = 0, n;
            for (j = i; j < nlive && stratum[ord[j]] == stratum[ord[i]]; j++)
                kx += c->g[ord[j]] != 0;
            n = j - i;
            if (kx == n) {
                for (size_t t = i; t < j; t++)
                    h[ord[t]] = 1;
                continue;
            }
            size_t *pool = ns_test_xmalloc(n * sizeof *pool);
            memcpy(pool, ord + i, n * sizeof *pool);
            for (size_t t = 0; t < kx; t++) {
                size_t u = t + (size_t)(((unsigned __int128)ns_test_rng_next(&s) * (n - t)) >> 64);
                size_t b = pool[u];
                pool[u] = pool[t];
                pool[t] = b;
                h[b] = 1;
            }
            free(pool);
        }
        stats[p] = ns_mmd2_from_blocks(c->S, c->size, nb, h);
    }
    free(ord);
    free(h);
}

/* The batched stratified null equals the plain loop permutation by
 * permutation (absolute 1e-10: two summation orders), with one-sided strata
 * in both directions and an empty X block; one stratum holding every block is
 * ns_mmd_perm_test bit for bit; any thread count gives the same bits. */
START_TEST(test_strata_matches_naive)
{
    static const int nx[4] = {5, 2, 3, 0}, ny[4] = {4, 6, 0, 4};
    int32_t stratum[24], same[24];
    clipset c = strata_night(4, nx, ny, 4, 6, 3.0, 0.0, 0, 55, stratum);
    const size_t empty = 4 + 6 + 0 + 4 + 5; /* 14 reference clips, then camera 0's 5 */
    double naive[150];
    ns_mmd_test a, b;
    int ge = 0;
    ck_assert_uint_eq(c.nb, 24);
    /* tonight's first clip of camera 1 has no frames (its S row is 0) */
    c.size[empty] = 0;
    for (size_t k = 0; k < c.nb; k++) {
        c.S[k * c.nb + empty] = c.S[empty * c.nb + k] = 0.0;
        same[k] = 42;
    }
    ck_assert_ns_ok(ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, stratum, 150, 9, 1, 1, &a));
    naive_strata_null(&c, stratum, 150, 9, naive);
    for (int p = 0; p < 150; p++) {
        ck_assert_msg(fabs(a.null_stats[p] - naive[p]) <= 1e-10, "perm %d: %.15g vs naive %.15g",
                      p, a.null_stats[p], naive[p]);
        ge += naive[p] >= a.mmd2 - 1e-12;
    }
    ck_assert(a.mmd2 == ns_mmd2_from_blocks(c.S, c.size, c.nb, c.g));
    ck_assert(fabs(a.p_value - (1.0 + ge) / 151.0) < 1e-12);
    ck_assert_uint_eq(a.blocks_x, 9); /* the empty block counts on neither side */
    ck_assert_uint_eq(a.blocks_y, 14);
    for (int t = 2; t <= 3; t++) {
        ck_assert_ns_ok(
            ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, stratum, 150, 9, t, 1, &b));
        ck_assert(memcmp(a.null_stats, b.null_stats, 150 * sizeof *a.null_stats) == 0);
        ck_assert(b.p_value == a.p_value && b.null_sd == a.null_sd);
        free(b.null_stats);
    }
    free(a.null_stats);

    ck_assert_ns_ok(ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, same, 150, 9, 2, 1, &a));
    ck_assert_ns_ok(ns_mmd_perm_test(c.S, c.size, c.nb, c.g, 150, 9, 2, 1, &b));
    ck_assert(memcmp(a.null_stats, b.null_stats, 150 * sizeof *a.null_stats) == 0);
    ck_assert(a.p_value == b.p_value && a.null_mean == b.null_mean);
    naive_strata_null(&c, same, 150, 9, naive);
    for (int p = 0; p < 150; p++)
        ck_assert(fabs(a.null_stats[p] - naive[p]) <= 1e-10);
    free(a.null_stats);
    free(b.null_stats);
    clipset_free(&c);
}
END_TEST

/* 4 cameras far apart (centre norm 6, clip offsets N(0, I), d = 16), 40
 * nights of 12 clips against 40 reference clips, 200 permutations each.
 * Null nights whose camera mix (1, 2, 4, 5) differs from the reference's
 * (10 each): the stratified test keeps the 5% level (<= 0.12).  Tonight's
 * clips of two cameras shifted by 0.8 in every coordinate: the stratified
 * test finds it on most nights (>= 0.8; measured 37 of 40), the unstratified
 * one, whose null is the spread of random camera mixes, has next to no power
 * (at most half as often; measured 0 of 40). */
START_TEST(test_strata_calibration_and_power)
{
    static const int mix[4] = {1, 2, 4, 5}, even[4] = {3, 3, 3, 3}, ref[4] = {10, 10, 10, 10};
    const int nights = 40, n_perm = 200;
    int rej_s = 0, rej_u = 0, pow_s = 0, pow_u = 0;
    int32_t st0[52], st1[52];
    for (int k = 0; k < nights; k++) {
        clipset c0 = strata_night(4, mix, ref, 5, 16, 6.0, 0.0, 0, 500 + (uint64_t)k, st0);
        clipset c1 = strata_night(4, even, ref, 5, 16, 6.0, 0.8, 2, 900 + (uint64_t)k, st1);
        ns_mmd_test t;
        ck_assert_ns_ok(
            ns_mmd_perm_test_strata(c0.S, c0.size, c0.nb, c0.g, st0, n_perm, k, 2, 0, &t));
        rej_s += t.p_value <= 0.05;
        ck_assert_ns_ok(ns_mmd_perm_test(c0.S, c0.size, c0.nb, c0.g, n_perm, k, 2, 0, &t));
        rej_u += t.p_value <= 0.05;
        ck_assert_ns_ok(
            ns_mmd_perm_test_strata(c1.S, c1.size, c1.nb, c1.g, st1, n_perm, k, 2, 0, &t));
        pow_s += t.p_value <= 0.05;
        ck_assert_ns_ok(ns_mmd_perm_test(c1.S, c1.size, c1.nb, c1.g, n_perm, k, 2, 0, &t));
        pow_u += t.p_value <= 0.05;
        clipset_free(&c0);
        clipset_free(&c1);
    }
    ck_assert_msg(rej_s * 100 <= 12 * nights, "stratified: %d of %d null nights rejected", rej_s,
                  nights);
    ck_assert_msg(rej_u * 100 <= 12 * nights, "unstratified: %d of %d null nights rejected",
                  rej_u, nights); /* a typical random mix: conservative, not anticonservative */
    ck_assert_msg(pow_s * 10 >= 8 * nights, "stratified found %d of %d shifts", pow_s, nights);
    ck_assert_msg(pow_u * 2 <= pow_s, "unstratified found %d shifts, stratified %d", pow_u,
                  pow_s);
}
END_TEST

START_TEST(test_strata_usage_errors)
{
    static const int nx[2] = {3, 0}, ny[2] = {0, 3}, nx1[2] = {1, 0}, ny1[2] = {4, 4};
    int32_t stratum[9];
    clipset c = strata_night(2, nx, ny, 3, 4, 3.0, 0.0, 0, 7, stratum);
    ns_mmd_test t;
    /* each camera on one side only: nothing can move */
    ck_assert_ns_status(
        ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, stratum, 50, 1, 1, 0, &t), NS_ERR_USAGE);
    ck_assert_msg(strstr(ns_errmsg(), "no camera has clips on both sides") != NULL, "%s",
                  ns_errmsg());
    ck_assert_ns_ok(ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, NULL, 50, 1, 1, 0, &t));
    ck_assert_ns_status(
        ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, stratum, 0, 1, 1, 0, &t), NS_ERR_USAGE);
    ck_assert_ns_status(
        ns_mmd_perm_test_strata(NULL, c.size, c.nb, c.g, stratum, 50, 1, 1, 0, &t), NS_ERR_USAGE);
    clipset_free(&c);
    c = strata_night(2, nx1, ny1, 3, 4, 3.0, 0.0, 0, 7, stratum);
    ck_assert_ns_status(
        ns_mmd_perm_test_strata(c.S, c.size, c.nb, c.g, stratum, 50, 1, 1, 0, &t), NS_ERR_USAGE);
    ck_assert_msg(strstr(ns_errmsg(), "1 in X (3 frames) and 8 in Y (24 frames)") != NULL, "%s",
                  ns_errmsg());
    clipset_free(&c);
}
END_TEST

/* The exact test: every within-camera assignment once, against a brute
 * force over bit masks (2 cameras: 3 vs 2 and 2 vs 3 clips, C(5,3) C(5,2) =
 * 100 assignments), and its refusal above max_assign. */
START_TEST(test_exact_matches_brute_force)
{
    static const int nx[2] = {3, 2}, ny[2] = {2, 3};
    int32_t stratum[10];
    clipset c = strata_night(2, nx, ny, 4, 6, 3.0, 0.8, 2, 77, stratum);
    ns_mmd_test t;
    uint8_t gp[10];
    size_t ge = 0, total = 0;
    double obs;
    ck_assert_uint_eq(c.nb, 10);
    ck_assert(ns_mmd_assignments(c.size, c.nb, c.g, stratum) == 100.0);
    ck_assert(ns_mmd_assignments(c.size, c.nb, c.g, NULL) == 252.0); /* C(10, 5) */
    ck_assert_ns_ok(ns_mmd_exact_test_strata(c.S, c.size, c.nb, c.g, stratum, 1000, 1, &t));
    obs = ns_mmd2_from_blocks(c.S, c.size, c.nb, c.g);
    for (unsigned m = 0; m < 1024; m++) {
        int want[2] = {0, 0}, have[2] = {0, 0};
        for (size_t a = 0; a < c.nb; a++) { /* strata_night's values: -4 and -1 */
            gp[a] = (m >> a) & 1;
            want[stratum[a] == -4 ? 0 : 1] += c.g[a];
            have[stratum[a] == -4 ? 0 : 1] += gp[a];
        }
        if (want[0] != have[0] || want[1] != have[1])
            continue;
        total++;
        ge += ns_mmd2_from_blocks(c.S, c.size, c.nb, gp) >= obs - 1e-12 * (1 + fabs(obs));
    }
    ck_assert_uint_eq(total, 100);
    ck_assert_int_eq(t.n_perm, 100);
    ck_assert(t.mmd2 == obs);
    ck_assert_msg(fabs(t.p_value - (double)ge / 100.0) < 1e-12, "p %g, brute force %zu/100",
                  t.p_value, ge);
    ck_assert(t.p_value >= 0.01);
    ck_assert_ptr_nonnull(t.null_stats);
    free(t.null_stats);
    ck_assert_ns_status(ns_mmd_exact_test_strata(c.S, c.size, c.nb, c.g, stratum, 99, 0, &t),
                        NS_ERR_USAGE);
    clipset_free(&c);
}
END_TEST

START_TEST(test_median_sigma)
{
    float line[4] = {0, 1, 2, 3}, three[3] = {0, 1, 3}, same[6] = {1, 2, 1, 2, 1, 2};
    double sg, s_all, s_a, s_b;
    size_t n = 2000;
    int d = 16;
    uint64_t s = 8;
    float *x = ns_test_xmalloc(n * (size_t)d * sizeof *x);
    /* d2 = {1,1,1,4,4,9}: median 2.5; {1,4,9}: median 4 */
    ck_assert_ns_ok(ns_mmd_median_sigma(line, 4, 1, 100, 0, &sg));
    ck_assert(fabs(sg - sqrt(1.25)) < 1e-12);
    ck_assert_ns_ok(ns_mmd_median_sigma(three, 3, 1, 3, 0, &sg));
    ck_assert(fabs(sg - sqrt(2.0)) < 1e-12);
    ck_assert_ns_status(ns_mmd_median_sigma(same, 3, 2, 100, 0, &sg), NS_ERR_USAGE);
    ck_assert(strstr(ns_errmsg(), "all points equal") != NULL);
    ck_assert_ns_status(ns_mmd_median_sigma(line, 1, 1, 100, 0, &sg), NS_ERR_USAGE);

    for (size_t i = 0; i < n * (size_t)d; i++)
        x[i] = (float)ns_test_rng_gauss(&s);
    ck_assert_ns_ok(ns_mmd_median_sigma(x, n, d, n * n, 0, &s_all)); /* every pair */
    ck_assert_ns_ok(ns_mmd_median_sigma(x, n, d, 5000, 1, &s_a));
    ck_assert_ns_ok(ns_mmd_median_sigma(x, n, d, 5000, 1, &s_b));
    ck_assert(s_a == s_b);
    ck_assert_msg(fabs(s_a / s_all - 1.0) < 0.03, "sampled %g vs all %g", s_a, s_all);
    /* E ||x - y||^2 = 2 d for unit Gaussians: sigma near sqrt(d) */
    ck_assert(fabs(s_all / sqrt((double)d) - 1.0) < 0.1);
    ck_assert_ns_ok(ns_mmd_median_sigma(x, n, d, 5000, 2, &s_b));
    ck_assert(s_a != s_b);
    free(x);
}
END_TEST

START_TEST(test_usage_errors)
{
    double S[16] = {0}, v;
    size_t size[4] = {3, 3, 3, 0}, off[5] = {0, 3, 6, 9, 9}, bad[5] = {0, 3, 2, 9, 9};
    uint8_t g[4] = {1, 0, 0, 1}; /* X: one clip with frames, one empty */
    float x[9 * 2] = {0};
    ns_mmd_test t;
    int max_threads = omp_get_max_threads();
    ck_assert_ns_status(ns_mmd_perm_test(S, size, 4, g, 100, 0, 1, 0, &t), NS_ERR_USAGE);
    ck_assert_msg(strstr(ns_errmsg(), "1 in X (3 frames) and 2 in Y (6 frames)") != NULL, "%s",
                  ns_errmsg());
    g[3] = 0;
    g[1] = 1;
    ck_assert_ns_status(ns_mmd_perm_test(S, size, 4, g, 0, 0, 1, 0, &t), NS_ERR_USAGE);
    ck_assert_ns_status(ns_mmd_block_sums(x, 9, 2, bad, 4, 1.0, 1, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_mmd_block_sums(x, 8, 2, off, 4, 1.0, 1, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_mmd_block_sums(x, 9, 2, off, 4, 0.0, 1, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_ref_mmd_block_sums(x, 9, 2, bad, 4, 1.0, S), NS_ERR_USAGE);
    ck_assert_ns_status(ns_mmd_block_sums(x, 9, 2, off, 4, 1e-30, 1, S), NS_ERR_USAGE);
    /* identical points: every kernel value is 1, the empty block sums 0; a
     * job too small for a team leaves the caller's thread setting alone */
    ck_assert_ns_ok(ns_mmd_block_sums(x, 9, 2, off, 4, 1.0, 1, S));
    ck_assert_int_eq(omp_get_max_threads(), max_threads);
    ck_assert(S[0] == 9.0 && S[1] == 9.0 && S[3] == 0.0 && S[15] == 0.0);
    v = ns_mmd2_from_blocks(S, size, 4, g);
    ck_assert(fabs(v) < 1e-12);
}
END_TEST

static Suite *mmd_suite(void)
{
    Suite *s = suite_create("mmd");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_block_sums_match_ref);
    tcase_add_test(tc, test_block_sums_thread_invariant);
    tcase_add_test(tc, test_from_blocks_matches_ref);
    tcase_add_test(tc, test_perm_deterministic);
    tcase_add_test(tc, test_perm_null_and_shift);
    tcase_add_test(tc, test_clip_vs_frame_permutation);
    tcase_add_test(tc, test_strata_matches_naive);
    tcase_add_test(tc, test_strata_calibration_and_power);
    tcase_add_test(tc, test_strata_usage_errors);
    tcase_add_test(tc, test_exact_matches_brute_force);
    tcase_add_test(tc, test_median_sigma);
    tcase_add_test(tc, test_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(mmd_suite());
}
