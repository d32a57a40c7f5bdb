/* detect.c -- tonight against the reference: loading, per-frame novelty, the
 * clip-permutation shift test and the candidates of the novel-condition
 * search (clustered here, merged and attributed in detect_cond.c).
 *
 * Every buffer is sized from the counts known after loading and allocated
 * once; the loops below only index into them.
 */
#include "nightshift/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute.h"
#include "detect_internal.h"
#include "nightshift/kmeans.h"
#include "nightshift/knn.h"
#include "nightshift/whiten.h"

/* Frame-level permutation keeps an (N, N) block-sum matrix of doubles:
 * 20000 frames is 3.2 GB already. */
#define DET_MAX_PERMUTE_FRAMES 20000

void ns_detect_default_opts(ns_detect_opts *o)
{
    memset(o, 0, sizeof *o);
    o->frame_alpha = 0.05;
    o->alpha = 0.05;
    o->n_perm = 1000;
    o->test_frames_per_clip = 32;
    o->permute_frames = 0;
    o->min_clips = 5;
    o->cand_p = 0.2;
    o->novel_k = 8;
    o->min_frames = 5;
    o->merge_cos = 0.8;
    o->share_ratio = 3.0;
    o->max_conditions = 10;
    o->seed = 1;
    o->threads = 0;
    o->device = NS_DEVICE_AUTO;
}

const char *ns_detect_verdict_name(int verdict)
{
    return verdict == NS_VERDICT_SHIFT ? "shift"
           : verdict == NS_VERDICT_INSUFFICIENT ? "insufficient"
                                                : "no-shift";
}

void ns_detect_result_release(ns_detect_result *r)
{
    if (!r)
        return;
    ns_frameset_release(&r->tonight);
    free(r->score);
    free(r->pval);
    free(r->novel);
    free(r->ref_cluster);
    free(r->cluster);
    free(r->condition);
    free(r->clips);
    free(r->test.null_stats);
    free(r->clusters);
    for (size_t c = 0; r->conditions && c < r->n_conditions; c++)
        free(r->conditions[c].cams);
    free(r->conditions);
    free(r->ref_counts);
    free(r->tonight_counts);
    free(r->msp);
    free(r->bbsd_ks);
    free(r->bbsd_pc);
    memset(r, 0, sizeof *r);
}

static double det_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ns_status check_opts(const ns_detect_opts *o)
{
    if (!(o->frame_alpha > 0 && o->frame_alpha <= 1))
        return ns_error(NS_ERR_USAGE, "frame_alpha must be in (0, 1], not %g", o->frame_alpha);
    if (!(o->alpha > 0 && o->alpha <= 1))
        return ns_error(NS_ERR_USAGE, "alpha must be in (0, 1], not %g", o->alpha);
    if (!(o->cand_p > 0 && o->cand_p <= 1))
        return ns_error(NS_ERR_USAGE, "cand_p must be in (0, 1], not %g", o->cand_p);
    if (o->n_perm < 1)
        return ns_error(NS_ERR_USAGE, "n_perm must be at least 1, not %d", o->n_perm);
    if (o->min_clips < 2)
        return ns_error(NS_ERR_USAGE, "min_clips must be at least 2, not %d", o->min_clips);
    if (o->novel_k < 1 || o->min_frames < 1)
        return ns_error(NS_ERR_USAGE, "novel_k (%d) and min_frames (%d) must be at least 1",
                        o->novel_k, o->min_frames);
    if (!(o->merge_cos >= -1 && o->merge_cos <= 1))
        return ns_error(NS_ERR_USAGE, "merge_cos must be in [-1, 1], not %g", o->merge_cos);
    if (!(o->share_ratio >= 0))
        return ns_error(NS_ERR_USAGE, "share_ratio must be >= 0, not %g", o->share_ratio);
    return NS_OK;
}

static ns_status check_ref(const ns_reference *ref)
{
    if (ref->sample.n == 0 || ref->sample.d < 1 || !ref->sample.emb || !ref->loco ||
        !ref->loco_sorted || !ref->loco_idx || ref->knn_k < 1 || ref->kmeans_k < 1 ||
        !ref->centroids || !ref->counts)
        return ns_error(NS_ERR_USAGE, "the reference (model %.12s) is empty or incomplete",
                        ref->model_id);
    if (!(ref->sigma > 0))
        return ns_error(NS_ERR_USAGE, "the reference's kernel bandwidth is %g", ref->sigma);
    return NS_OK;
}

/* Step 1: tonight's frames, embedded with the reference's model. */
static ns_status load_night(ns_store *s, const ns_reference *ref, const char *night,
                            ns_frameset *out)
{
    ns_status st;
    char nights[1][NS_NIGHT_LEN];
    size_t *rows = NULL, n_rows = 0;
    if (strlen(night) >= NS_NIGHT_LEN)
        return ns_error(NS_ERR_USAGE, "'%s' is not a night (YYYY-MM-DD)", night);
    snprintf(nights[0], NS_NIGHT_LEN, "%s", night);
    st = ns_nights_clips(s, nights, 1, &rows, &n_rows);
    if (st == NS_ERR_NOT_FOUND || (st == NS_OK && n_rows == 0)) {
        st = ns_error(NS_ERR_NOT_FOUND, "night %s has no frames in the store", night);
        goto done;
    }
    if (st != NS_OK)
        goto done;
    st = ns_frameset_load(s, ref->model_id, ref->sample.d, rows, n_rows, out);
    if (st != NS_OK) {
        st = ns_error_wrap(st, "night %s", night);
        goto done;
    }
    if (out->n == 0 || out->n_clips == 0)
        st = ns_error(NS_ERR_NOT_FOUND, "night %s has no frames in the store", night);
done:
    free(rows);
    return st;
}

/* Step 2: the nearest reference centroid (raw space, as the centroids). */
static ns_status ref_modes(const ns_reference *ref, ns_detect_result *r)
{
    const ns_frameset *t = &r->tonight;
    int kk = ref->kmeans_k;
    ns_status st = ns_det_kmeans_assign(r->device, t->emb, t->n, t->d, ref->centroids, kk,
                                        r->ref_cluster, NULL);
    if (st != NS_OK)
        return st;
    for (size_t i = 0; i < t->n; i++)
        r->tonight_counts[r->ref_cluster[i]]++;
    memcpy(r->ref_counts, ref->counts, (size_t)kk * sizeof *r->ref_counts);
    return NS_OK;
}

/* Tonight's rows per whitening chunk: the whitened copy stays small. */
#define DET_WHITEN_CHUNK 4096

/* The attribution's neighbours of tonight's candidates (p < cand_p) in the
 * raw space, into their rows of nbr; dist is scratch.  Why raw: the
 * attribution compares a frame with its nearest normal frames, and in the
 * whitened space the nearest frames are those that match the change itself
 * (reference.h). */
static ns_status raw_neighbours(const ns_reference *ref, const ns_detect_opts *o, float *dist,
                                int64_t *nbr, ns_detect_result *r)
{
    const ns_frameset *t = &r->tonight;
    size_t k = (size_t)ref->knn_k, d = (size_t)t->d, m = 0;
    ns_status st = NS_OK;
    size_t *rows = malloc((t->n ? t->n : 1) * sizeof *rows);
    float *q = NULL;
    int64_t *nb = NULL;
    for (size_t i = 0; rows && i < t->n; i++)
        if (r->pval[i] < o->cand_p)
            rows[m++] = i;
    q = malloc((m ? m : 1) * d * sizeof *q);
    nb = malloc((m ? m : 1) * k * sizeof *nb);
    if (!rows || !q || !nb) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the neighbours of %zu candidates", m);
        goto done;
    }
    for (size_t j = 0; j < m; j++)
        memcpy(q + j * d, t->emb + rows[j] * d, d * sizeof *q);
    if ((st = ns_det_knn(r->device, q, m, ref->sample.emb, ref->sample.n, t->d, ref->knn_k, NULL,
                         NULL, o->threads, dist, nb)) != NS_OK)
        goto done;
    for (size_t j = 0; j < m; j++)
        memcpy(nbr + rows[j] * k, nb + j * k, k * sizeof *nb);
done:
    free(rows);
    free(q);
    free(nb);
    return st;
}

/* Step 4: kNN novelty against the reference sample in its novelty space
 * (tonight whitened chunk by chunk when the reference whitens), then the
 * raw-space neighbours of the candidates.  dist/nbr (n, k): nbr is kept
 * for the residuals and the attribution. */
static ns_status novelty(const ns_reference *ref, const ns_detect_opts *o, float *dist,
                         int64_t *nbr, ns_detect_result *r)
{
    const ns_frameset *t = &r->tonight;
    size_t k = (size_t)ref->knn_k, d = (size_t)t->d;
    ns_status st = NS_OK;
    float *z = NULL;
    if (!ref->whiten) {
        st = ns_det_knn(r->device, t->emb, t->n, ref->sample.emb, ref->sample.n, t->d,
                        ref->knn_k, NULL, NULL, o->threads, dist, nbr);
    } else {
        z = malloc(DET_WHITEN_CHUNK * d * sizeof *z);
        if (!z)
            return ns_error(NS_ERR_NOMEM, "no memory to whiten tonight's frames");
        for (size_t i0 = 0; st == NS_OK && i0 < t->n; i0 += DET_WHITEN_CHUNK) {
            size_t m = t->n - i0 < DET_WHITEN_CHUNK ? t->n - i0 : DET_WHITEN_CHUNK;
            st = ns_whiten_apply(&ref->wh, t->emb + i0 * d, m, z);
            if (st == NS_OK)
                st = ns_det_knn(r->device, z, m, ref->wemb, ref->sample.n, t->d, ref->knn_k,
                                NULL, NULL, o->threads, dist + i0 * k, nbr + i0 * k);
        }
        free(z);
    }
    if (st != NS_OK)
        return st;
    for (size_t i = 0; i < t->n; i++) {
        r->score[i] = dist[i * k + k - 1];
        r->pval[i] = ns_reference_pvalue(ref, t->clips[t->clip[i]].camera, r->score[i]);
        r->novel[i] = r->pval[i] < o->frame_alpha;
        r->n_novel += r->novel[i];
    }
    return ref->whiten ? raw_neighbours(ref, o, dist, nbr, r) : NS_OK;
}

static size_t test_rows(const ns_fs_clip *c, int per_clip)
{
    return per_clip > 0 && c->n > (size_t)per_clip ? (size_t)per_clip : c->n;
}

/* Copies clip c's test rows (evenly spaced: i * n / m) after row `at` of x. */
static size_t gather_clip(const ns_frameset *f, const ns_fs_clip *c, int per_clip, float *x,
                          size_t at, size_t *off, size_t *nb, uint8_t *g, uint8_t gv,
                          int per_frame)
{
    size_t m = test_rows(c, per_clip), d = (size_t)f->d;
    if (m == 0)
        return at;
    if (!per_frame) {
        off[*nb] = at;
        g[(*nb)++] = gv;
    }
    for (size_t i = 0; i < m; i++, at++) {
        memcpy(x + at * d, f->emb + (c->first + i * c->n / m) * d, d * sizeof *x);
        if (per_frame) {
            off[*nb] = at;
            g[(*nb)++] = gv;
        }
    }
    return at;
}

/* Camera of each clip block (reference sample clips, then tonight's, as
 * gathered), as an index into the distinct names: the permutation strata. */
static ns_status clip_strata(const ns_frameset *rs, const ns_frameset *t, size_t nb,
                             const size_t *size, int32_t *stratum, const char **names)
{
    size_t n_names = 0, b = 0;
    for (size_t side = 0; side < 2; side++) {
        const ns_frameset *f = side ? t : rs;
        for (size_t c = 0; c < f->n_clips; c++) {
            size_t k = 0;
            if (f->clips[c].n == 0)
                continue; /* made no block */
            while (k < n_names && strcmp(names[k], f->clips[c].camera) != 0)
                k++;
            if (k == n_names)
                names[n_names++] = f->clips[c].camera;
            if (b >= nb || size[b] == 0)
                return ns_error(NS_ERR_INTERNAL, "shift test: clip blocks out of step");
            stratum[b++] = (int32_t)k;
        }
    }
    return b == nb ? NS_OK : ns_error(NS_ERR_INTERNAL, "shift test: clip blocks out of step");
}

/* The clip permutation test with clips exchanged only within their camera.
 * Why: every night holds every camera in about the same proportion, and the
 * cameras are far apart in embedding space.  Unrestricted permutations mix
 * the cameras in random proportions, and that imbalance alone gives null
 * statistics far above any real within-camera change (measured on the
 * two-camera glove scenario of tests/test_detect.c: observed MMD^2 0.004,
 * null mean 0.046, p 0.89 with 4 of 12 clips visibly changed).  Within
 * strata the null keeps tonight's camera mix, which is what "tonight looks
 * like the reference" means. */
static ns_status strata_perm_test(const ns_reference *ref, const ns_frameset *t, const double *S,
                                  const size_t *size, size_t nb, const uint8_t *g,
                                  const ns_detect_opts *o, ns_mmd_test *out, double *n_assign,
                                  int *exact)
{
    ns_status st;
    int32_t *stratum = malloc((nb ? nb : 1) * sizeof *stratum);
    const char **names = malloc((nb ? nb : 1) * sizeof *names);
    memset(out, 0, sizeof *out);
    if (!stratum || !names) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the shift test's %zu clip strata", nb);
        goto done;
    }
    if ((st = clip_strata(&ref->sample, t, nb, size, stratum, names)) != NS_OK)
        goto done;
    *n_assign = ns_mmd_assignments(size, nb, g, stratum);
    *exact = *n_assign <= NS_DETECT_EXACT_MAX;
    if (*exact)
        st = ns_mmd_exact_test_strata(S, size, nb, g, stratum, NS_DETECT_EXACT_MAX, 1, out);
    else
        st = ns_mmd_perm_test_strata(S, size, nb, g, stratum, o->n_perm, o->seed, o->threads, 1,
                                     out);
done:
    free(stratum);
    free(names);
    return st;
}

/* Step 3: unbiased MMD^2 between the reference sample and tonight,
 * permuting whole clips (or frames, the diagnostic). */
static ns_status shift_test(const ns_reference *ref, const ns_detect_opts *o,
                            ns_detect_result *r)
{
    ns_status st;
    const ns_frameset *t = &r->tonight, *rs = &ref->sample;
    size_t n_test = 0, nblocks, nb = 0, at = 0, d = (size_t)t->d;
    float *x = NULL;
    size_t *off = NULL, *size = NULL;
    uint8_t *g = NULL;
    double *S = NULL;
    for (size_t c = 0; c < rs->n_clips; c++)
        n_test += test_rows(&rs->clips[c], o->test_frames_per_clip);
    for (size_t c = 0; c < t->n_clips; c++)
        n_test += test_rows(&t->clips[c], o->test_frames_per_clip);
    if (o->permute_frames && n_test > DET_MAX_PERMUTE_FRAMES)
        return ns_error(NS_ERR_USAGE,
                        "frame permutation needs an (N, N) matrix: %zu test frames is over "
                        "the %d allowed (lower test_frames_per_clip)",
                        n_test, DET_MAX_PERMUTE_FRAMES);
    nblocks = o->permute_frames ? n_test : rs->n_clips + t->n_clips;
    x = malloc((n_test ? n_test : 1) * d * sizeof *x);
    off = malloc((nblocks + 1) * sizeof *off);
    size = malloc((nblocks ? nblocks : 1) * sizeof *size);
    g = malloc(nblocks ? nblocks : 1);
    S = malloc((nblocks ? nblocks * nblocks : 1) * sizeof *S);
    if (!x || !off || !size || !g || !S) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the shift test (%zu frames, %zu blocks)",
                      n_test, nblocks);
        goto done;
    }
    for (size_t c = 0; c < rs->n_clips; c++)
        at = gather_clip(rs, &rs->clips[c], o->test_frames_per_clip, x, at, off, &nb, g, 0,
                         o->permute_frames);
    for (size_t c = 0; c < t->n_clips; c++)
        at = gather_clip(t, &t->clips[c], o->test_frames_per_clip, x, at, off, &nb, g, 1,
                         o->permute_frames);
    off[nb] = at; /* nb <= nblocks: clips without frames make no block */
    for (size_t b = 0; b < nb; b++)
        size[b] = off[b + 1] - off[b];
    if ((st = ns_det_block_sums(r->device, x, at, t->d, off, nb, ref->sigma, o->threads, S)) !=
        NS_OK)
        goto done;
    if (o->permute_frames) {
        st = ns_mmd_perm_test(S, size, nb, g, o->n_perm, o->seed, o->threads, 1, &r->test);
        r->n_assign = ns_mmd_assignments(size, nb, g, NULL);
    } else {
        st = strata_perm_test(ref, t, S, size, nb, g, o, &r->test, &r->n_assign, &r->exact);
    }
    if (st != NS_OK)
        goto done;
    r->sigma = ref->sigma;
    r->p_min = r->exact ? 1.0 / r->n_assign : fmax(1.0 / r->n_assign, 1.0 / (o->n_perm + 1.0));
done:
    free(x);
    free(off);
    free(size);
    free(g);
    free(S);
    return st;
}

/* The shift test where the clips allow one, and the verdict: SHIFT or
 * NO_SHIFT, or INSUFFICIENT with the reason (a thin night is reported, not
 * refused). */
static ns_status run_test(const ns_reference *ref, const ns_detect_opts *o, ns_detect_result *r)
{
    size_t nt = r->tonight.n_clips, nr = ref->sample.n_clips;
    char pm[64];
    ns_status st;
    r->p_min = NAN;
    r->test.mmd2 = r->test.p_value = NAN;
    r->test.blocks_x = nt; /* X is tonight */
    r->test.blocks_y = nr;
    if (nt < 2 || nr < 2) {
        r->verdict = NS_VERDICT_INSUFFICIENT;
        snprintf(r->verdict_reason, sizeof r->verdict_reason,
                 "%zu clip%s tonight and %zu in the reference: the shift test needs at least 2 "
                 "on each side", nt, nt == 1 ? "" : "s", nr);
        return NS_OK;
    }
    st = shift_test(ref, o, r);
    if (st == NS_ERR_USAGE && !o->permute_frames) {
        /* The strata test's refusals (no camera on both sides): a verdict. */
        r->verdict = NS_VERDICT_INSUFFICIENT;
        snprintf(r->verdict_reason, sizeof r->verdict_reason, "%s", ns_errmsg());
        r->test.mmd2 = r->test.p_value = NAN;
        return NS_OK;
    }
    if (st != NS_OK)
        return st;
    snprintf(pm, sizeof pm, "%.3g", r->p_min);
    if (isfinite(r->n_assign) && r->n_assign < 1e9)
        snprintf(pm, sizeof pm, "1/%.0f = %.3g", r->n_assign, r->p_min);
    if (!(r->p_min <= o->alpha)) {
        r->verdict = NS_VERDICT_INSUFFICIENT;
        snprintf(r->verdict_reason, sizeof r->verdict_reason,
                 "%zu clips tonight vs %zu in the reference allow p >= %s, above the level %g",
                 nt, nr, pm, o->alpha);
    } else if (nt < (size_t)o->min_clips || nr < (size_t)o->min_clips) {
        r->verdict = NS_VERDICT_INSUFFICIENT;
        snprintf(r->verdict_reason, sizeof r->verdict_reason,
                 "%zu clips tonight vs %zu in the reference, fewer than the %d on each side the "
                 "test needs (--min-clips); the smallest p they allow is %s", nt, nr,
                 o->min_clips, pm);
    } else {
        r->verdict = r->test.p_value < o->alpha ? NS_VERDICT_SHIFT : NS_VERDICT_NO_SHIFT;
    }
    r->shift = r->verdict == NS_VERDICT_SHIFT;
    return NS_OK;
}

/* x - mean of the base rows in nb[0..k) (missing neighbours are -1),
 * L2-normalised into out. */
static void residual(const float *x, const float *base, const int64_t *nb, int k, int d,
                     float *out)
{
    double norm = 0.0;
    int used = 0;
    for (int j = 0; j < d; j++)
        out[j] = 0.0f;
    for (int t = 0; t < k; t++) {
        if (nb[t] < 0)
            continue;
        const float *b = base + (size_t)nb[t] * (size_t)d;
        for (int j = 0; j < d; j++)
            out[j] += b[j];
        used++;
    }
    for (int j = 0; j < d; j++) {
        out[j] = x[j] - (used ? out[j] / (float)used : 0.0f);
        norm += (double)out[j] * out[j];
    }
    norm = sqrt(norm);
    if (norm > 0)
        for (int j = 0; j < d; j++)
            out[j] = (float)(out[j] / norm);
}

/* Paired z of tonight frame i: its properties minus the mean of its kNN
 * reference neighbours', over the reference's paired-difference std.  A
 * property that never varied in the reference (std 0) says nothing: z 0. */
static void paired_z(const ns_reference *ref, const float *props, const int64_t *nb, int k,
                     double *z)
{
    for (int p = 0; p < NS_PROP_COUNT; p++) {
        double m = 0.0, sd = ref->prop_delta_std[p];
        int used = 0;
        for (int t = 0; t < k; t++)
            if (nb[t] >= 0) {
                m += ref->sample.props[(size_t)nb[t] * NS_PROP_COUNT + (size_t)p];
                used++;
            }
        m = used ? m / used : props[p];
        z[p] = sd > 0 && isfinite(sd) ? ((double)props[p] - m) / sd : 0.0;
    }
}

/* The p-value of reference sample row j, calibrated as tonight's frames are. */
static double ref_pvalue(const ns_reference *ref, size_t j)
{
    const ns_frameset *rs = &ref->sample;
    return ns_reference_pvalue(ref, rs->clips[rs->clip[j]].camera, ref->loco[j]);
}

/* Steps 5-8: candidates, their residual clusters, conditions, attribution. */
static ns_status conditions(const ns_reference *ref, const ns_detect_opts *o,
                            const int64_t *nbr, ns_detect_result *r, double *t_cluster,
                            double *t_attr)
{
    ns_status st = NS_OK;
    const ns_frameset *t = &r->tonight, *rs = &ref->sample;
    int k = ref->knn_k, d = t->d;
    size_t n_t = 0, n_r = 0, n_c, i, j, at;
    double t0 = det_now();
    size_t *row = NULL;
    float *resid = NULL;
    double *pz = NULL;
    ns_kmeans_result km = {0};
    ns_detect_cands c = {0};
    for (i = 0; i < t->n; i++)
        n_t += r->pval[i] < o->cand_p;
    for (j = 0; j < rs->n; j++)
        n_r += ref_pvalue(ref, j) < o->cand_p;
    n_c = n_t + n_r;
    row = malloc((n_c ? n_c : 1) * sizeof *row);
    resid = malloc((n_c ? n_c : 1) * (size_t)d * sizeof *resid);
    pz = malloc((n_t ? n_t : 1) * NS_PROP_COUNT * sizeof *pz);
    if (!row || !resid || !pz) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %zu candidate frames", n_c);
        goto done;
    }
    for (i = 0, at = 0; i < t->n; i++) {
        if (!(r->pval[i] < o->cand_p))
            continue;
        const int64_t *nb = nbr + i * (size_t)k;
        row[at] = i;
        residual(t->emb + i * (size_t)d, rs->emb, nb, k, d, resid + at * (size_t)d);
        paired_z(ref, t->props + i * NS_PROP_COUNT, nb, k, pz + at * NS_PROP_COUNT);
        at++;
    }
    for (j = 0; j < rs->n; j++) {
        if (!(ref_pvalue(ref, j) < o->cand_p))
            continue;
        row[at] = j;
        residual(rs->emb + j * (size_t)d, rs->emb, ref->loco_idx + j * (size_t)k, k, d,
                 resid + at * (size_t)d);
        at++;
    }
    c.n_t = n_t;
    c.n_r = n_r;
    c.row = row;
    c.resid = resid;
    c.pz = pz;
    c.d = d;
    if (n_t > 0) {
        ns_kmeans_opts ko = ns_kmeans_default_opts();
        size_t kk = n_c / (size_t)o->min_frames;
        if (kk > (size_t)o->novel_k)
            kk = (size_t)o->novel_k;
        ko.k = kk < 1 ? 1 : (int)kk;
        ko.seed = o->seed;
        ko.threads = o->threads;
        if ((st = ns_det_kmeans_fit(r->device, resid, n_c, d, &ko, &km)) != NS_OK)
            goto done;
        c.assign = km.assign;
        c.k = ko.k;
    }
    if ((st = ns_detect_merge(ref, o, &c, r)) != NS_OK)
        goto done;
    *t_cluster = det_now() - t0;
    t0 = det_now();
    st = ns_detect_attribute(ref, &c, r);
    *t_attr = det_now() - t0;
done:
    ns_kmeans_result_release(&km);
    free(row);
    free(resid);
    free(pz);
    return st;
}

ns_status ns_detect_run(ns_store *s, const ns_reference *ref, const char *night,
                        const ns_detect_opts *o, ns_detect_result *r)
{
    ns_status st;
    ns_detect_opts def;
    double t0 = det_now(), t1;
    float *dist = NULL;
    int64_t *nbr = NULL;
    size_t n, k;
    memset(r, 0, sizeof *r);
    if (!o) {
        ns_detect_default_opts(&def);
        o = &def;
    }
    if ((st = check_opts(o)) != NS_OK || (st = check_ref(ref)) != NS_OK)
        return st;
    snprintf(r->night, sizeof r->night, "%s", night);
    r->opts = *o;
    if ((st = ns_device_resolve(o->device, &r->device)) != NS_OK)
        return st;
    if ((st = load_night(s, ref, night, &r->tonight)) != NS_OK)
        goto done;
    r->seconds[0] = det_now() - t0;

    t1 = det_now();
    n = r->tonight.n;
    k = (size_t)ref->knn_k;
    r->kmeans_k = ref->kmeans_k;
    r->score = malloc(n * sizeof *r->score);
    r->pval = malloc(n * sizeof *r->pval);
    r->novel = malloc(n);
    r->ref_cluster = malloc(n * sizeof *r->ref_cluster);
    r->cluster = malloc(n * sizeof *r->cluster);
    r->condition = malloc(n * sizeof *r->condition);
    r->clips = calloc(r->tonight.n_clips, sizeof *r->clips);
    r->ref_counts = calloc((size_t)ref->kmeans_k, sizeof *r->ref_counts);
    r->tonight_counts = calloc((size_t)ref->kmeans_k, sizeof *r->tonight_counts);
    dist = malloc(n * k * sizeof *dist);
    nbr = malloc(n * k * sizeof *nbr);
    if (!r->score || !r->pval || !r->novel || !r->ref_cluster || !r->cluster || !r->condition ||
        !r->clips || !r->ref_counts || !r->tonight_counts || !dist || !nbr) {
        st = ns_error(NS_ERR_NOMEM, "no memory for detection over %zu frames", n);
        goto done;
    }
    if ((st = ref_modes(ref, r)) != NS_OK)
        goto done;
    r->seconds[1] = det_now() - t1;

    t1 = det_now();
    if ((st = run_test(ref, o, r)) != NS_OK)
        goto done;
    r->seconds[2] = det_now() - t1;

    t1 = det_now();
    if ((st = novelty(ref, o, dist, nbr, r)) != NS_OK)
        goto done;
    r->seconds[1] += det_now() - t1;

    if ((st = conditions(ref, o, nbr, r, &r->seconds[3], &r->seconds[4])) != NS_OK)
        goto done;
    r->bbsd_p = r->exp_acc = r->exp_acc_ref = NAN;
    for (size_t g = 0; g < r->n_conditions; g++)
        r->conditions[g].exp_acc = r->conditions[g].exp_acc_ref = NAN;
    if (o->head && (st = ns_detect_head(ref, o, r)) != NS_OK)
        goto done;
    r->ref_scores = ref->loco;
    r->n_ref_scores = ref->sample.n;
    r->n_ref_frames = ref->sample.n;
    r->seconds[5] = det_now() - t0;
done:
    free(dist);
    free(nbr);
    if (st != NS_OK)
        ns_detect_result_release(r);
    return st;
}
