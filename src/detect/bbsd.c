/* bbsd.c -- detect --head: the production head's softmax outputs as a
 * label-free shift signal (contract in include/nightshift/detect.h).
 *
 * BBSD (black-box shift detection, Lipton et al. 2018; Rabanser et al.,
 * "Failing Loudly", 2019): per class, the two-sample Kolmogorov-Smirnov
 * statistic between the reference's and tonight's softmax probabilities,
 * Bonferroni over the classes.  The KS p-value assumes independent rows, and
 * frames of a clip are not, so each class's p-value comes from the same
 * clip permutations within cameras as the MMD test: labels move with whole
 * clips, on the same (at most test_frames_per_clip) rows per clip.
 *
 * Expected accuracy (CBPE-style): the mean temperature-scaled max-softmax,
 * which estimates accuracy when the head is calibrated (its temperature was
 * fitted on validation data), per night, condition and camera, against the
 * reference's own frames.
 */
#define _GNU_SOURCE /* qsort_r */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"
#include "detect_util.h"
#include "nightshift/head.h"

/* Rows kept per clip for the test, evenly spaced, as the MMD test takes them. */
static size_t rows_of(size_t n, int per_clip)
{
    return per_clip > 0 && n > (size_t)per_clip ? (size_t)per_clip : n;
}

typedef struct bbsd_work {
    size_t n;          /* test rows: reference clips' rows, then tonight's */
    size_t nb;         /* clip blocks */
    float *val;        /* (C, n) probability of class c per test row */
    uint32_t *order;   /* (C, n) rows sorted by val ascending, per class */
    uint32_t *block;   /* (n) block of each row */
    size_t *bsize;     /* (nb) rows per block */
    int32_t *stratum;  /* (nb) camera index */
    uint8_t *g;        /* (nb) 1 = tonight */
    uint8_t *gp;       /* (nb) permuted */
    size_t *pool;      /* (nb) scratch of the shuffle */
} bbsd_work;

static int cmp_rows(const void *a, const void *b, void *key)
{
    const float *v = key;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (v[i] != v[j])
        return v[i] < v[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* KS statistic of class column ord/val under block labels g: one pass over
 * the sorted rows; ties are passed as a group, so the statistic is exact. */
static double ks_stat(const bbsd_work *w, const uint32_t *ord, const float *val, const uint8_t *g,
                      size_t nx, size_t ny)
{
    double fx = 0.0, fy = 0.0, best = 0.0;
    for (size_t i = 0; i < w->n;) {
        size_t j = i;
        while (j < w->n && val[ord[j]] == val[ord[i]]) {
            if (g[w->block[ord[j]]])
                fx += 1.0 / (double)nx;
            else
                fy += 1.0 / (double)ny;
            j++;
        }
        if (fabs(fx - fy) > best)
            best = fabs(fx - fy);
        i = j;
    }
    return best;
}

/* Rows on the tonight side under labels g. */
static size_t side_rows(const bbsd_work *w, const uint8_t *g)
{
    size_t m = 0;
    for (size_t b = 0; b < w->nb; b++)
        m += g[b] ? w->bsize[b] : 0;
    return m;
}

/* Permutation p: within each camera, tonight's number of clips drawn at
 * random (a partial Fisher-Yates from its own splitmix64 stream). */
static void permute(bbsd_work *w, size_t n_strata, uint64_t seed, int p)
{
    uint64_t s = ns_sm64_mix(seed ^ 0xBB5Dull) ^ (uint64_t)p * NS_SM64_GOLDEN;
    for (size_t k = 0; k < n_strata; k++) {
        size_t m = 0, x = 0;
        for (size_t b = 0; b < w->nb; b++)
            if ((size_t)w->stratum[b] == k) {
                w->pool[m++] = b;
                x += w->g[b];
                w->gp[b] = 0;
            }
        for (size_t i = 0; i < x && i < m; i++) {
            size_t j = i + (size_t)(ns_sm64_next(&s) % (m - i)), t = w->pool[i];
            w->pool[i] = w->pool[j];
            w->pool[j] = t;
            w->gp[w->pool[i]] = 1;
        }
    }
}

static ns_status bbsd_test(const ns_reference *ref, const float *pr, const float *pt, int C,
                           const ns_detect_opts *o, ns_detect_result *r)
{
    const ns_frameset *rs = &ref->sample, *t = &r->tonight;
    ns_status st = NS_OK;
    bbsd_work w = {0};
    size_t n = 0, nb = rs->n_clips + t->n_clips, at = 0, b = 0, n_strata = 0;
    const char **cams = malloc((nb ? nb : 1) * sizeof *cams);
    for (size_t c = 0; c < rs->n_clips; c++)
        n += rows_of(rs->clips[c].n, o->test_frames_per_clip);
    for (size_t c = 0; c < t->n_clips; c++)
        n += rows_of(t->clips[c].n, o->test_frames_per_clip);
    w.n = n;
    w.nb = nb;
    w.val = malloc((n ? n : 1) * (size_t)C * sizeof *w.val);
    w.order = malloc((n ? n : 1) * (size_t)C * sizeof *w.order);
    w.block = malloc((n ? n : 1) * sizeof *w.block);
    w.bsize = calloc(nb ? nb : 1, sizeof *w.bsize);
    w.stratum = malloc((nb ? nb : 1) * sizeof *w.stratum);
    w.g = malloc(nb ? nb : 1);
    w.gp = malloc(nb ? nb : 1);
    w.pool = malloc((nb ? nb : 1) * sizeof *w.pool);
    r->bbsd_ks = calloc((size_t)C, sizeof *r->bbsd_ks);
    r->bbsd_pc = calloc((size_t)C, sizeof *r->bbsd_pc);
    if (!cams || !w.val || !w.order || !w.block || !w.bsize || !w.stratum || !w.g || !w.gp ||
        !w.pool || !r->bbsd_ks || !r->bbsd_pc) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the BBSD test of %zu rows", n);
        goto done;
    }
    for (int side = 0; side < 2; side++) {
        const ns_frameset *f = side ? t : rs;
        const float *prob = side ? pt : pr;
        for (size_t c = 0; c < f->n_clips; c++, b++) {
            const ns_fs_clip *fc = &f->clips[c];
            size_t m = rows_of(fc->n, o->test_frames_per_clip), k = 0;
            while (k < n_strata && strcmp(cams[k], fc->camera) != 0)
                k++;
            if (k == n_strata)
                cams[n_strata++] = fc->camera;
            w.stratum[b] = (int32_t)k;
            w.g[b] = (uint8_t)side;
            w.bsize[b] = m;
            for (size_t i = 0; i < m; i++, at++) {
                size_t row = fc->first + i * fc->n / m;
                w.block[at] = (uint32_t)b;
                for (int cl = 0; cl < C; cl++)
                    w.val[(size_t)cl * n + at] = prob[row * (size_t)C + (size_t)cl];
            }
        }
    }
    for (int cl = 0; cl < C; cl++) {
        uint32_t *ord = w.order + (size_t)cl * n;
        for (size_t i = 0; i < n; i++)
            ord[i] = (uint32_t)i;
        qsort_r(ord, n, sizeof *ord, cmp_rows, w.val + (size_t)cl * n);
    }
    size_t nx = side_rows(&w, w.g), ny = n - nx;
    double best = INFINITY;
    for (int cl = 0; cl < C; cl++)
        r->bbsd_ks[cl] = ks_stat(&w, w.order + (size_t)cl * n, w.val + (size_t)cl * n, w.g, nx, ny);
    size_t *ge = calloc((size_t)C, sizeof *ge);
    if (!ge) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the BBSD test");
        goto done;
    }
    for (int p = 0; p < o->n_perm; p++) {
        permute(&w, n_strata, o->seed, p);
        size_t px = side_rows(&w, w.gp);
        if (px == 0 || px == n)
            continue; /* cannot happen: each camera keeps its tonight clips */
        for (int cl = 0; cl < C; cl++)
            ge[cl] += ks_stat(&w, w.order + (size_t)cl * n, w.val + (size_t)cl * n, w.gp, px,
                              n - px) >= r->bbsd_ks[cl] - 1e-12;
    }
    for (int cl = 0; cl < C; cl++) {
        r->bbsd_pc[cl] = (1.0 + (double)ge[cl]) / (1.0 + (double)o->n_perm);
        best = r->bbsd_pc[cl] < best ? r->bbsd_pc[cl] : best;
    }
    r->bbsd_p = fmin(1.0, (double)C * best); /* Bonferroni over the classes */
    free(ge);
done:
    free(cams);
    free(w.val);
    free(w.order);
    free(w.block);
    free(w.bsize);
    free(w.stratum);
    free(w.g);
    free(w.gp);
    free(w.pool);
    return st;
}

/* Mean max-softmax of the reference sample frames of each camera. */
static void ref_cam_means(const ns_reference *ref, const float *msp_r, double *sum, size_t *cnt)
{
    const ns_frameset *rs = &ref->sample;
    for (size_t c = 0; c < rs->n_clips; c++) {
        long k = ns_reference_camera(ref, rs->clips[c].camera);
        for (size_t i = rs->clips[c].first; k >= 0 && i < rs->clips[c].first + rs->clips[c].n; i++) {
            sum[k] += msp_r[i];
            cnt[k]++;
        }
    }
}

ns_status ns_detect_head(const ns_reference *ref, const ns_detect_opts *o, ns_detect_result *r)
{
    const ns_head *h = o->head;
    const ns_frameset *rs = &ref->sample, *t = &r->tonight;
    int C = h->n_classes;
    ns_status st;
    size_t nc = ref->n_cameras;
    float *pr = malloc((rs->n ? rs->n : 1) * (size_t)C * sizeof *pr);
    float *pt = malloc((t->n ? t->n : 1) * (size_t)C * sizeof *pt);
    float *msp_r = malloc((rs->n ? rs->n : 1) * sizeof *msp_r);
    double *csum = calloc(nc + 1, sizeof *csum), tot = 0.0;
    size_t *ccnt = calloc(nc + 1, sizeof *ccnt);
    r->msp = malloc((t->n ? t->n : 1) * sizeof *r->msp);
    if (!pr || !pt || !msp_r || !csum || !ccnt || !r->msp) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the head's outputs on %zu frames", t->n);
        goto done;
    }
    if ((st = ns_head_check_model(h, ref->model_id, rs->d)) != NS_OK ||
        (st = ns_head_predict(h, rs->emb, rs->n, pr)) != NS_OK ||
        (st = ns_head_predict(h, t->emb, t->n, pt)) != NS_OK)
        goto done;
    ns_head_top(pr, rs->n, C, NULL, msp_r, NULL);
    ns_head_top(pt, t->n, C, NULL, r->msp, NULL);
    r->n_classes = C;
    for (size_t i = 0; i < rs->n; i++)
        tot += msp_r[i];
    r->exp_acc_ref = rs->n ? tot / (double)rs->n : NAN;
    tot = 0.0;
    for (size_t i = 0; i < t->n; i++)
        tot += r->msp[i];
    r->exp_acc = t->n ? tot / (double)t->n : NAN;
    ref_cam_means(ref, msp_r, csum, ccnt);
    /* Per condition: its frames against the reference frames of its cameras. */
    for (size_t g = 0; g < r->n_conditions; g++) {
        ns_detect_condition *cd = &r->conditions[g];
        double s = 0.0, rsum = 0.0, rn = 0.0;
        size_t m = 0;
        for (size_t i = 0; i < t->n; i++)
            if (r->condition[i] == cd->id) {
                s += r->msp[i];
                m++;
            }
        cd->exp_acc = m ? s / (double)m : NAN;
        for (size_t k = 0; k < cd->n_cams; k++) {
            ns_detect_cam_attr *ca = &cd->cams[k];
            long rc = ns_reference_camera(ref, ca->camera);
            double cs = 0.0;
            size_t cm = 0;
            for (size_t i = 0; i < t->n; i++)
                if (r->condition[i] == cd->id && strcmp(t->clips[t->clip[i]].camera, ca->camera) == 0) {
                    cs += r->msp[i];
                    cm++;
                }
            ca->exp_acc = cm ? cs / (double)cm : NAN;
            ca->exp_acc_ref = rc >= 0 && ccnt[rc] ? csum[rc] / (double)ccnt[rc] : r->exp_acc_ref;
            rsum += ca->exp_acc_ref * (double)ca->n;
            rn += (double)ca->n;
        }
        cd->exp_acc_ref = rn > 0 ? rsum / rn : r->exp_acc_ref;
    }
    r->bbsd_p = NAN;
    if (t->n_clips >= 2 && rs->n_clips >= 2) /* else no permutation could move a clip */
        st = bbsd_test(ref, pr, pt, C, o, r);
    snprintf(r->head_id, sizeof r->head_id, "%s", h->head_id);
    r->has_head = st == NS_OK;
done:
    free(pr);
    free(pt);
    free(msp_r);
    free(csum);
    free(ccnt);
    return st;
}
