/* reference.c -- building the reference of a period of nights (contract and
 * file format in include/nightshift/reference.h; the file is in
 * src/store/reffile.c). */
#include "nightshift/reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/kmeans.h"
#include "nightshift/knn.h"
#include "nightshift/mmd.h"
#include "nightshift/model.h"
#include "nightshift/whiten.h"

#include "compute.h"
#include "detect_util.h"

#define SIGMA_MAX_PAIRS 200000

void ns_reference_default_opts(ns_reference_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nights = NULL;
    o->model = "default";
    o->frame_cap = 20000;
    o->knn_k = 5;
    o->kmeans_k = 16;
    o->whiten = 1;
    o->whiten_folds = 5;
    o->seed = 1;
    o->threads = 0;
    o->device = NS_DEVICE_AUTO;
}

void ns_reference_release(ns_reference *r)
{
    if (!r)
        return;
    free(r->nights);
    ns_frameset_release(&r->sample);
    free(r->loco);
    free(r->loco_sorted);
    free(r->loco_idx);
    free(r->centroids);
    free(r->counts);
    free(r->radius_mean);
    free(r->radius_max);
    free(r->cameras);
    free(r->cam_mean);
    free(r->cam_std);
    free(r->cam_n);
    free(r->cam_loco_sorted);
    free(r->cam_loco_off);
    free(r->wemb);
    ns_whiten_release(&r->wh);
    memset(r, 0, sizeof *r);
}

static int cmp_camera(const void *a, const void *b) { return strcmp(a, b); }

ns_status ns_reference_calibrate(ns_reference *r)
{
    const ns_frameset *f = &r->sample;
    size_t n = f->n, nc = r->n_cameras;
    size_t *fill = NULL, *cam = NULL;
    ns_status st = NS_OK;
    free(r->loco_sorted);
    free(r->cam_loco_sorted);
    free(r->cam_loco_off);
    r->loco_sorted = malloc((n ? n : 1) * sizeof *r->loco_sorted);
    r->cam_loco_sorted = malloc((n ? n : 1) * sizeof *r->cam_loco_sorted);
    r->cam_loco_off = calloc(nc + 1, sizeof *r->cam_loco_off);
    fill = calloc(nc + 1, sizeof *fill);
    cam = malloc((f->n_clips ? f->n_clips : 1) * sizeof *cam);
    if (!r->loco_sorted || !r->cam_loco_sorted || !r->cam_loco_off || !fill || !cam) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the calibration of %zu frames", n);
        goto done;
    }
    memcpy(r->loco_sorted, r->loco, n * sizeof *r->loco);
    qsort(r->loco_sorted, n, sizeof *r->loco_sorted, ns_cmp_float);
    /* Counting sort by camera (a sampled clip's camera is always among
     * cameras: fit_props and the file check make sure), then each group.
     * The camera is looked up once per clip, not per frame. */
    for (size_t c = 0; c < f->n_clips; c++) {
        long k = ns_reference_camera(r, f->clips[c].camera);
        if (k < 0) {
            st = ns_error(NS_ERR_CORRUPT, "reference: sampled camera '%s' missing from its "
                          "camera table", f->clips[c].camera);
            goto done;
        }
        cam[c] = (size_t)k;
    }
    for (size_t i = 0; i < n; i++)
        r->cam_loco_off[cam[f->clip[i]] + 1]++;
    for (size_t c = 0; c < nc; c++)
        r->cam_loco_off[c + 1] += r->cam_loco_off[c];
    for (size_t i = 0; i < n; i++) {
        size_t c = cam[f->clip[i]];
        r->cam_loco_sorted[r->cam_loco_off[c] + fill[c]++] = r->loco[i];
    }
    for (size_t c = 0; c < nc; c++)
        qsort(r->cam_loco_sorted + r->cam_loco_off[c], r->cam_loco_off[c + 1] - r->cam_loco_off[c],
              sizeof *r->cam_loco_sorted, ns_cmp_float);
    free(r->wemb);
    r->wemb = NULL;
    if (r->whiten) {
        if (!r->wh.W || r->wh.d != f->d) {
            st = ns_error(NS_ERR_CORRUPT, "reference: whitening of dimension %d for embeddings "
                          "of %d", r->wh.d, f->d);
            goto done;
        }
        r->wemb = malloc((n ? n : 1) * (size_t)f->d * sizeof *r->wemb);
        if (!r->wemb) {
            st = ns_error(NS_ERR_NOMEM, "no memory to whiten %zu reference frames", n);
            goto done;
        }
        st = ns_whiten_apply(&r->wh, f->emb, n, r->wemb);
    }
done:
    free(fill);
    free(cam);
    return st;
}

double ns_reference_pvalue(const ns_reference *r, const char *camera, float score)
{
    long c = r->cam_loco_off ? ns_reference_camera(r, camera) : -1;
    if (c >= 0) {
        size_t a = r->cam_loco_off[c], b = r->cam_loco_off[c + 1];
        if (b - a >= NS_REF_CAM_CALIB_MIN)
            return ns_knn_pvalue(r->cam_loco_sorted + a, b - a, score);
    }
    return ns_knn_pvalue(r->loco_sorted, r->sample.n, score);
}

long ns_reference_camera(const ns_reference *r, const char *camera)
{
    char key[NS_CAMERA_LEN];
    if (!r->n_cameras || !camera)
        return -1;
    snprintf(key, sizeof key, "%s", camera);
    const char(*hit)[NS_CAMERA_LEN] =
        bsearch(key, r->cameras, r->n_cameras, sizeof *r->cameras, cmp_camera);
    return hit ? (long)(hit - r->cameras) : -1;
}

/* Whole clips in a seeded random order while the frames fit under the cap;
 * *chosen (caller frees) ascending. */
static ns_status sample_clips(const ns_store *s, const size_t *rows, size_t n_rows, uint64_t cap,
                              uint64_t seed, size_t **chosen, size_t *n_chosen)
{
    size_t n_cat;
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    size_t *order = malloc((n_rows ? n_rows : 1) * sizeof *order), n = 0;
    uint64_t state = seed, frames = 0;
    if (!order)
        return ns_error(NS_ERR_NOMEM, "no memory to sample %zu clips", n_rows);
    memcpy(order, rows, n_rows * sizeof *order);
    /* From the canonical order, so the sample does not depend on the order
     * the clips were ingested in. */
    ns_clips_canonical(s, order, n_rows);
    for (size_t i = n_rows; i > 1; i--) {
        size_t j = (size_t)(ns_sm64_next(&state) % i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    /* Kept clips are compacted to the front of order. */
    for (size_t i = 0; i < n_rows; i++) {
        uint64_t f = cat[order[i]].n_frames;
        if (frames + f <= cap) {
            frames += f;
            order[n++] = order[i];
        }
    }
    qsort(order, n, sizeof *order, ns_cmp_size);
    *chosen = order;
    *n_chosen = n;
    return NS_OK;
}

/* Centroids, counts, radii and inertia from the sample. */
static ns_status fit_kmeans(ns_reference *r, ns_device dev, int threads)
{
    const ns_frameset *f = &r->sample;
    ns_status st;
    ns_kmeans_result km;
    ns_kmeans_opts ko = ns_kmeans_default_opts();
    int *assign = NULL;
    float *dist2 = NULL;
    double *sum = NULL;
    memset(&km, 0, sizeof km);
    ko.k = r->kmeans_k;
    ko.seed = r->seed;
    ko.threads = threads;
    if ((st = ns_det_kmeans_fit(dev, f->emb, f->n, f->d, &ko, &km)) != NS_OK)
        return ns_error_wrap(st, "reference k-means");
    assign = malloc(f->n * sizeof *assign);
    dist2 = malloc(f->n * sizeof *dist2);
    sum = calloc((size_t)r->kmeans_k, sizeof *sum);
    r->counts = calloc((size_t)r->kmeans_k, sizeof *r->counts);
    r->radius_mean = calloc((size_t)r->kmeans_k, sizeof *r->radius_mean);
    r->radius_max = calloc((size_t)r->kmeans_k, sizeof *r->radius_max);
    if (!assign || !dist2 || !sum || !r->counts || !r->radius_mean || !r->radius_max) {
        st = ns_error(NS_ERR_NOMEM, "no memory for k-means statistics of %zu frames", f->n);
        goto done;
    }
    /* Radii and counts from one assignment pass, so they agree. */
    if ((st = ns_det_kmeans_assign(dev, f->emb, f->n, f->d, km.centroids, r->kmeans_k, assign,
                                   dist2)) !=
        NS_OK)
        goto done;
    for (size_t i = 0; i < f->n; i++) {
        int c = assign[i];
        float dist = sqrtf(dist2[i] > 0 ? dist2[i] : 0);
        r->counts[c]++;
        sum[c] += dist;
        if (dist > r->radius_max[c])
            r->radius_max[c] = dist;
    }
    for (int c = 0; c < r->kmeans_k; c++)
        r->radius_mean[c] = r->counts[c] ? (float)(sum[c] / (double)r->counts[c]) : 0.0f;
    r->centroids = km.centroids; /* taken over */
    km.centroids = NULL;
    r->inertia = km.inertia;
done:
    ns_kmeans_result_release(&km);
    free(assign);
    free(dist2);
    free(sum);
    return st;
}

/* Fold of each sample clip: clips in a seeded random order, dealt round
 * robin within their camera, so every fold holds every camera. */
static ns_status clip_folds(const ns_reference *r, int folds, int *fold)
{
    const ns_frameset *f = &r->sample;
    size_t nc = f->n_clips, *order = malloc((nc ? nc : 1) * sizeof *order);
    size_t *dealt = calloc(nc ? nc : 1, sizeof *dealt), n_cam = 0;
    const char **cam = malloc((nc ? nc : 1) * sizeof *cam);
    uint64_t state = r->seed ^ 0xF01D5ull;
    if (!order || !dealt || !cam) {
        free(order);
        free(dealt);
        free(cam);
        return ns_error(NS_ERR_NOMEM, "no memory for the folds of %zu clips", nc);
    }
    for (size_t c = 0; c < nc; c++)
        order[c] = c;
    for (size_t i = nc; i > 1; i--) {
        size_t j = (size_t)(ns_sm64_next(&state) % i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    /* The camera table is built later (fit_props): cameras by name here. */
    for (size_t i = 0; i < nc; i++) {
        const char *name = f->clips[order[i]].camera;
        size_t k = 0;
        while (k < n_cam && strcmp(cam[k], name) != 0)
            k++;
        if (k == n_cam)
            cam[n_cam++] = name;
        fold[order[i]] = (int)(dealt[k]++ % (size_t)folds);
    }
    free(order);
    free(dealt);
    free(cam);
    return NS_OK;
}

/* Whitening and the cross-fitted leave-one-clip-out distances (see
 * reference.h): fold by fold, the fold's frames against every frame of
 * another clip, all whitened with the transform fitted without the fold.
 * Only loco changes: loco_idx stays the raw-space neighbours, which the
 * attribution compares with (see detect.h). */
static ns_status fit_loco_whitened(ns_reference *r, ns_device dev, int threads, int64_t *groups)
{
    const ns_frameset *f = &r->sample;
    const size_t n = f->n, k = (size_t)r->knn_k, d = (size_t)f->d;
    ns_status st = NS_OK;
    int folds = r->whiten_folds < (int)f->n_clips ? r->whiten_folds : (int)f->n_clips;
    const int nf = folds < 2 ? 2 : folds;
    int *fold = malloc((f->n_clips ? f->n_clips : 1) * sizeof *fold);
    uint8_t *skip = malloc(n ? n : 1);
    float *z = malloc((n ? n : 1) * d * sizeof *z), *q = malloc((n ? n : 1) * d * sizeof *q);
    float *dist = malloc((n ? n : 1) * k * sizeof *dist);
    int64_t *idx = malloc((n ? n : 1) * k * sizeof *idx), *qg = malloc((n ? n : 1) * sizeof *qg);
    /* idx: the fold's neighbours, needed by the search, not kept */
    size_t *rows = malloc((n ? n : 1) * sizeof *rows);
    int *row_fold = malloc((n ? n : 1) * sizeof *row_fold);
    ns_whiten *wf = calloc((size_t)nf, sizeof *wf);
    if (!fold || !skip || !z || !q || !dist || !idx || !qg || !rows || !row_fold || !wf) {
        st = ns_error(NS_ERR_NOMEM, "no memory to cross-fit the whitening of %zu frames", n);
        goto done;
    }
    if ((st = clip_folds(r, nf, fold)) != NS_OK)
        goto done;
    r->whiten_folds = nf;
    for (size_t i = 0; i < n; i++)
        row_fold[i] = fold[f->clip[i]];
    /* Every fold's transform and the whole sample's from one pass over it. */
    if ((st = ns_whiten_fit_folds(f->emb, n, f->d, row_fold, r->whiten_folds, wf, &r->wh)) !=
        NS_OK)
        goto done;
    for (int g = 0; g < r->whiten_folds; g++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            skip[i] = row_fold[i] == g;
        if ((st = ns_whiten_apply(&wf[g], f->emb, n, z)) != NS_OK)
            goto done;
        for (size_t i = 0; i < n; i++)
            if (skip[i]) {
                memcpy(q + m * d, z + i * d, d * sizeof *q);
                qg[m] = groups[i];
                rows[m++] = i;
            }
        if (m == 0)
            continue;
        if ((st = ns_det_knn(dev, q, m, z, n, f->d, r->knn_k, qg, groups, threads, dist, idx)) !=
            NS_OK)
            goto done;
        for (size_t j = 0; j < m; j++)
            r->loco[rows[j]] = dist[j * k + k - 1];
    }
done:
    for (int g = 0; wf && g < nf; g++)
        ns_whiten_release(&wf[g]);
    free(wf);
    free(row_fold);
    free(fold);
    free(skip);
    free(z);
    free(q);
    free(dist);
    free(idx);
    free(qg);
    free(rows);
    return st;
}

/* Leave-one-clip-out k-th neighbour distances and their sorted copy. */
static ns_status fit_loco(ns_reference *r, ns_device dev, int threads)
{
    const ns_frameset *f = &r->sample;
    const size_t n = f->n, k = (size_t)r->knn_k;
    ns_status st = NS_OK;
    int64_t *groups = malloc((n ? n : 1) * sizeof *groups);
    float *dist = malloc((n ? n : 1) * k * sizeof *dist);
    r->loco = malloc((n ? n : 1) * sizeof *r->loco);
    r->loco_idx = malloc((n ? n : 1) * k * sizeof *r->loco_idx);
    if (!groups || !dist || !r->loco || !r->loco_idx) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the neighbours of %zu frames", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        groups[i] = f->clip[i];
    if ((st = ns_det_knn(dev, f->emb, n, f->emb, n, f->d, r->knn_k, groups, groups, threads, dist,
                            r->loco_idx)) != NS_OK) {
        st = ns_error_wrap(st, "reference neighbours");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        r->loco[i] = dist[i * k + k - 1];
    if (r->whiten && (st = fit_loco_whitened(r, dev, threads, groups)) != NS_OK)
        st = ns_error_wrap(st, "reference whitening");
done:
    free(groups);
    free(dist);
    return st;
}

/* Mean and standard deviation (population) of the property columns over all
 * frames, per camera, and of the paired differences to the other-clip
 * neighbours. */
static ns_status fit_props(ns_reference *r)
{
    const ns_frameset *f = &r->sample;
    const size_t n = f->n, k = (size_t)r->knn_k, P = NS_PROP_COUNT;
    ns_status st = NS_OK;
    size_t *cam_of = malloc((f->n_clips ? f->n_clips : 1) * sizeof *cam_of), nc = 0;
    r->cameras = malloc((f->n_clips ? f->n_clips : 1) * sizeof *r->cameras);
    if (!cam_of || !r->cameras) {
        st = ns_error(NS_ERR_NOMEM, "no memory for camera statistics");
        goto done;
    }
    for (size_t c = 0; c < f->n_clips; c++)
        memcpy(r->cameras[c], f->clips[c].camera, NS_CAMERA_LEN);
    qsort(r->cameras, f->n_clips, sizeof *r->cameras, cmp_camera);
    for (size_t c = 0; c < f->n_clips; c++)
        if (nc == 0 || strcmp(r->cameras[nc - 1], r->cameras[c]) != 0)
            memmove(r->cameras[nc++], r->cameras[c], NS_CAMERA_LEN);
    r->n_cameras = nc;
    for (size_t c = 0; c < f->n_clips; c++)
        cam_of[c] = (size_t)ns_reference_camera(r, f->clips[c].camera);
    r->cam_mean = calloc((nc ? nc : 1) * P, sizeof *r->cam_mean);
    r->cam_std = calloc((nc ? nc : 1) * P, sizeof *r->cam_std);
    r->cam_n = calloc(nc ? nc : 1, sizeof *r->cam_n);
    if (!r->cam_mean || !r->cam_std || !r->cam_n) {
        st = ns_error(NS_ERR_NOMEM, "no memory for camera statistics");
        goto done;
    }
    /* Two passes (mean, then squared deviations): no cancellation. */
    for (size_t i = 0; i < n; i++) {
        size_t c = cam_of[f->clip[i]];
        const float *x = f->props + i * P;
        r->cam_n[c]++;
        for (size_t p = 0; p < P; p++) {
            r->prop_mean[p] += x[p];
            r->cam_mean[c * P + p] += x[p];
        }
    }
    for (size_t p = 0; p < P; p++) {
        r->prop_mean[p] = n ? r->prop_mean[p] / (double)n : 0.0;
        for (size_t c = 0; c < nc; c++)
            r->cam_mean[c * P + p] /= (double)(r->cam_n[c] ? r->cam_n[c] : 1);
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = cam_of[f->clip[i]];
        const float *x = f->props + i * P;
        for (size_t p = 0; p < P; p++) {
            double a = x[p] - r->prop_mean[p], b = x[p] - r->cam_mean[c * P + p];
            r->prop_std[p] += a * a;
            r->cam_std[c * P + p] += b * b;
        }
    }
    for (size_t p = 0; p < P; p++) {
        r->prop_std[p] = n ? sqrt(r->prop_std[p] / (double)n) : 0.0;
        for (size_t c = 0; c < nc; c++)
            r->cam_std[c * P + p] =
                sqrt(r->cam_std[c * P + p] / (double)(r->cam_n[c] ? r->cam_n[c] : 1));
    }
    /* Paired differences: delta_i = x_i - mean of its other-clip neighbours.
     * Pass 0 sums, pass 1 squared deviations; frames without an eligible
     * neighbour are left out. */
    double dmean[NS_PROP_COUNT] = {0}, dvar[NS_PROP_COUNT] = {0};
    size_t nd = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            double nb[NS_PROP_COUNT] = {0};
            size_t m = 0;
            for (size_t t = 0; t < k; t++) {
                int64_t j = r->loco_idx[i * k + t];
                if (j < 0)
                    continue;
                for (size_t p = 0; p < P; p++)
                    nb[p] += f->props[(size_t)j * P + p];
                m++;
            }
            if (m == 0)
                continue;
            if (pass == 0)
                nd++;
            for (size_t p = 0; p < P; p++) {
                double delta = f->props[i * P + p] - nb[p] / (double)m;
                if (pass == 0)
                    dmean[p] += delta;
                else
                    dvar[p] += (delta - dmean[p]) * (delta - dmean[p]);
            }
        }
        for (size_t p = 0; p < P && pass == 0; p++)
            dmean[p] = nd ? dmean[p] / (double)nd : 0.0;
    }
    for (size_t p = 0; p < P; p++)
        r->prop_delta_std[p] = nd ? sqrt(dvar[p] / (double)nd) : 0.0;
done:
    free(cam_of);
    return st;
}

ns_status ns_reference_build_from(ns_store *s, const char *model_id, const char *model_name,
                                  int dim, const ns_reference_opts *o, ns_reference *out)
{
    ns_status st = NS_OK;
    ns_reference r;
    size_t *rows = NULL, *chosen = NULL, n_rows = 0, n_chosen = 0;
    ns_device dev = NS_DEVICE_CPU;
    struct timespec now;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    if (!o->nights || !*o->nights)
        return ns_error(NS_ERR_USAGE, "reference: no nights given (want FROM..TO, last:N or a "
                        "list)");
    if (o->knn_k < 1 || o->kmeans_k < 1 || o->frame_cap < 1 || dim < 1)
        return ns_error(NS_ERR_USAGE, "reference: knn_k %d, kmeans_k %d, frame cap %llu and "
                        "dimension %d must all be positive", o->knn_k, o->kmeans_k,
                        (unsigned long long)o->frame_cap, dim);
    if (o->whiten && o->whiten_folds < 2)
        return ns_error(NS_ERR_USAGE, "reference: whitening needs at least 2 folds, not %d",
                        o->whiten_folds);
    if (!model_id || strlen(model_id) != NS_SHA256_HEX - 1)
        return ns_error(NS_ERR_USAGE, "reference: model id '%.70s' is not a hex digest",
                        model_id ? model_id : "");
    snprintf(r.model_id, sizeof r.model_id, "%s", model_id);
    snprintf(r.model_name, sizeof r.model_name, "%s", model_name ? model_name : "");
    r.knn_k = o->knn_k;
    r.seed = o->seed;
    r.format_version = NS_REF_FORMAT_VERSION;
    r.whiten = o->whiten != 0;
    r.whiten_folds = o->whiten_folds;
    r.frame_cap = o->frame_cap;
    snprintf(r.store, sizeof r.store, "%s", ns_store_dir(s));
    clock_gettime(CLOCK_REALTIME, &now);
    r.created = (double)now.tv_sec + now.tv_nsec * 1e-9;

    if ((st = ns_nights_select(s, o->nights, &r.nights, &r.n_nights)) != NS_OK ||
        (st = ns_nights_clips(s, r.nights, r.n_nights, &rows, &n_rows)) != NS_OK)
        goto done;
    size_t n_cat;
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    r.clips_total = n_rows;
    for (size_t i = 0; i < n_rows; i++)
        r.frames_total += cat[rows[i]].n_frames;
    if (n_rows < 3) {
        st = ns_error(NS_ERR_USAGE, "the reference nights %s..%s hold %zu clips; a reference "
                      "needs at least 3", r.nights[0], r.nights[r.n_nights - 1], n_rows);
        goto done;
    }
    if ((st = sample_clips(s, rows, n_rows, o->frame_cap, o->seed, &chosen, &n_chosen)) != NS_OK)
        goto done;
    if (n_chosen < 2) {
        st = ns_error(NS_ERR_USAGE, "a frame cap of %llu keeps %zu of the %zu clips of nights "
                      "%s..%s; leave-one-clip-out needs at least 2 (raise the cap)",
                      (unsigned long long)o->frame_cap, n_chosen, n_rows, r.nights[0],
                      r.nights[r.n_nights - 1]);
        goto done;
    }
    if ((st = ns_frameset_load(s, model_id, dim, chosen, n_chosen, &r.sample)) != NS_OK)
        goto done;
    r.kmeans_k = (size_t)o->kmeans_k < r.sample.n ? o->kmeans_k : (int)r.sample.n;
    if ((st = ns_device_resolve(o->device, &dev)) != NS_OK ||
        (st = fit_kmeans(&r, dev, o->threads)) != NS_OK ||
        (st = fit_loco(&r, dev, o->threads)) != NS_OK)
        goto done;
    if ((st = ns_mmd_median_sigma(r.sample.emb, r.sample.n, r.sample.d, SIGMA_MAX_PAIRS, o->seed,
                                  &r.sigma)) != NS_OK) {
        st = ns_error_wrap(st, "reference kernel bandwidth");
        goto done;
    }
    if ((st = fit_props(&r)) != NS_OK || (st = ns_reference_calibrate(&r)) != NS_OK)
        goto done;
    *out = r;
    memset(&r, 0, sizeof r);
done:
    free(rows);
    free(chosen);
    ns_reference_release(&r);
    return st;
}

ns_status ns_reference_build(ns_store *s, const ns_reference_opts *o, ns_reference *out)
{
    ns_status st;
    ns_model *m = NULL;
    char id[NS_SHA256_HEX], name[NS_MODEL_NAME_LEN];
    int dim;
    memset(out, 0, sizeof *out);
    if (!o->model || !*o->model)
        return ns_error(NS_ERR_USAGE, "reference: no model given (a model file or \"default\")");
    if (strcmp(o->model, "default") == 0)
        st = ns_model_default(112, 1, &m);
    else
        st = ns_model_load(o->model, &m);
    if (st != NS_OK)
        return st;
    /* Only the identity is needed: the embeddings are already in the store. */
    memcpy(id, m->id, sizeof id);
    memcpy(name, m->info.name, sizeof name);
    dim = m->info.embed_dim;
    ns_model_free(m);
    return ns_reference_build_from(s, id, name, dim, o, out);
}
