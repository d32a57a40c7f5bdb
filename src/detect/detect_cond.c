/* detect_cond.c -- novel conditions from the clustered candidates: merging
 * clusters by their property signatures, ranking, and the attribution of
 * each condition (what changed, on which cameras, example frames).
 *
 * Why signatures decide the merge: residual clusters follow the direction in
 * embedding space, which depends on the camera layout (black gloves on two
 * cameras give two directions), while the property change (darker, more
 * black pixels) is the same; single linkage on signature cosine makes them
 * one condition.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect_internal.h"
#include "detect_util.h"

/* ---- merging ------------------------------------------------------------------ */

static double median_sorted(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, ns_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int uf_find(int *parent, int a)
{
    while (parent[a] != a)
        a = parent[a] = parent[parent[a]];
    return a;
}

static double cosine(const double *a, const double *b, int n)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0; /* an empty signature merges nothing */
}

typedef struct rank_key {
    int novel;
    size_t n_frames, n_ref;
    int n_clusters;
    size_t n_clips;
    int first_cluster; /* lowest cluster id of the group (its union-find root) */
    int group;
    uint32_t clip; /* a clip it holds (its only one when n_clips == 1) */
} rank_key;

static int cmp_rank(const void *a, const void *b)
{
    const rank_key *x = a, *y = b;
    if (x->novel != y->novel)
        return y->novel - x->novel;
    if (x->n_frames != y->n_frames)
        return x->n_frames > y->n_frames ? -1 : 1;
    return (x->first_cluster > y->first_cluster) - (x->first_cluster < y->first_cluster);
}

/* Strong evidence for a condition in one clip: more than half of the clip's
 * frames (all of them, not only its candidates) lie farther from the
 * reference than any reference frame of the camera lies from its own other
 * clips, i.e. the clip's median p-value is the floor 1 / (n + 1).  An
 * ordinary odd clip of a null night has a low median p now and then (the
 * frames of a clip are correlated), but not beyond every reference clip;
 * a knocked camera or a new scene is. */
static int one_clip_strong(const ns_reference *ref, const ns_detect_result *r, uint32_t clip,
                           double *pbuf)
{
    const ns_fs_clip *fc = &r->tonight.clips[clip];
    if (fc->n < 2)
        return 0;
    memcpy(pbuf, r->pval + fc->first, fc->n * sizeof *pbuf); /* a clip's frames are contiguous */
    double floor_p = ns_reference_pvalue(ref, fc->camera, INFINITY);
    return median_sorted(pbuf, fc->n) <= floor_p * (1.0 + 1e-9);
}

ns_status ns_detect_merge(const ns_reference *ref, const ns_detect_opts *o,
                          const ns_detect_cands *c, ns_detect_result *r)
{
    ns_status st = NS_OK;
    size_t n = r->tonight.n, i, n_groups = 0, nv;
    int K = c->k, a, b;
    int *parent = NULL, *group = NULL, *mark = NULL;
    uint8_t *eligible = NULL;
    double *pbuf = NULL;
    rank_key *keys = NULL;
    for (i = 0; i < n; i++)
        r->cluster[i] = r->condition[i] = -1;
    if (K == 0)
        return NS_OK;
    r->clusters = calloc((size_t)K, sizeof *r->clusters);
    parent = malloc((size_t)K * sizeof *parent);
    group = malloc((size_t)K * sizeof *group);
    eligible = calloc((size_t)K, 1);
    /* pbuf holds candidates' p-values, or the frames of one clip */
    pbuf = malloc((n > c->n_t ? n : c->n_t ? c->n_t : 1) * sizeof *pbuf);
    keys = malloc((size_t)K * sizeof *keys);
    mark = malloc((r->tonight.n_clips ? r->tonight.n_clips : 1) * sizeof *mark);
    if (!r->clusters || !parent || !group || !eligible || !pbuf || !keys || !mark) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %d candidate clusters", K);
        goto done;
    }
    r->n_clusters = (size_t)K;
    for (a = 0; a < K; a++) {
        r->clusters[a].id = a;
        r->clusters[a].condition = -1;
        parent[a] = a;
        group[a] = -1;
    }
    for (i = 0; i < c->n_t + c->n_r; i++) {
        ns_detect_cluster *cl = &r->clusters[c->assign[i]];
        if (i >= c->n_t) {
            cl->n_ref++;
            continue;
        }
        cl->n_tonight++;
        r->cluster[c->row[i]] = c->assign[i];
        for (int p = 0; p < NS_PROP_COUNT; p++)
            cl->signature[p] += c->pz[i * NS_PROP_COUNT + (size_t)p];
    }
    for (a = 0; a < K; a++) {
        ns_detect_cluster *cl = &r->clusters[a];
        for (int p = 0; p < NS_PROP_COUNT && cl->n_tonight; p++)
            cl->signature[p] /= (double)cl->n_tonight;
        for (i = 0, nv = 0; i < c->n_t; i++)
            if (c->assign[i] == a)
                pbuf[nv++] = r->pval[c->row[i]];
        cl->median_p = median_sorted(pbuf, nv);
        eligible[a] = cl->n_tonight >= (size_t)o->min_frames &&
                      cl->median_p <= 2.0 * o->frame_alpha;
    }
    /* Single linkage in cluster order; the root is always the lowest id. */
    for (a = 0; a < K; a++)
        for (b = a + 1; b < K && eligible[a]; b++) {
            if (!eligible[b] ||
                cosine(r->clusters[a].signature, r->clusters[b].signature, NS_PROP_COUNT) <
                    o->merge_cos)
                continue;
            int ra = uf_find(parent, a), rb = uf_find(parent, b);
            if (ra != rb)
                parent[ra > rb ? ra : rb] = ra < rb ? ra : rb;
        }
    for (a = 0; a < K; a++) {
        if (!eligible[a])
            continue;
        int root = uf_find(parent, a);
        if (group[root] < 0) {
            group[root] = (int)n_groups;
            keys[n_groups] = (rank_key){0, 0, 0, 0, 0, root, (int)n_groups, 0};
            n_groups++;
        }
        group[a] = group[root];
    }
    if (n_groups == 0)
        goto done;
    for (a = 0; a < K; a++) {
        if (group[a] < 0)
            continue;
        rank_key *kk = &keys[group[a]];
        kk->n_frames += r->clusters[a].n_tonight;
        kk->n_ref += r->clusters[a].n_ref;
        kk->n_clusters++;
    }
    /* Distinct clips per group: mark[clip] = the last group that counted it. */
    for (size_t cl = 0; cl < r->tonight.n_clips; cl++)
        mark[cl] = -1;
    for (i = 0; i < c->n_t; i++) {
        int gi = group[c->assign[i]];
        uint32_t cl = r->tonight.clip[c->row[i]];
        if (gi >= 0 && mark[cl] != gi) {
            mark[cl] = gi;
            keys[gi].n_clips++;
            keys[gi].clip = cl;
        }
    }
    for (size_t g = 0; g < n_groups; g++) {
        double share = n ? (double)keys[g].n_frames / (double)n : 0.0;
        /* One clip on strong evidence needs no share rule: its frames lie
         * beyond every reference frame, so the reference candidates k-means
         * put in its cells are not like it (a knocked camera's 10 frames
         * shared their cell with 21, test_detect). */
        keys[g].novel = keys[g].n_clips >= NS_DETECT_NOVEL_MIN_CLIPS
                            ? share >= o->share_ratio * ((double)keys[g].n_ref + 1.0) /
                                           (double)ref->sample.n
                            : keys[g].n_clips == 1 && one_clip_strong(ref, r, keys[g].clip, pbuf);
    }
    qsort(keys, n_groups, sizeof *keys, cmp_rank);
    r->conditions = calloc(n_groups, sizeof *r->conditions);
    if (!r->conditions) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %zu conditions", n_groups);
        goto done;
    }
    r->n_conditions = n_groups;
    for (size_t g = 0; g < n_groups; g++) {
        ns_detect_condition *cd = &r->conditions[g];
        cd->id = (int)g;
        cd->novel = keys[g].novel;
        cd->n_frames = keys[g].n_frames;
        cd->n_ref = keys[g].n_ref;
        cd->n_clusters = keys[g].n_clusters;
        cd->share_tonight = n ? (double)cd->n_frames / (double)n : 0.0;
        cd->share_ref = (double)cd->n_ref / (double)ref->sample.n;
        cd->medoid = 0;
        cd->t_first = cd->t_last = NAN;
        parent[keys[g].group] = (int)g; /* parent[] is free now: group -> rank */
    }
    for (a = 0; a < K; a++)
        if (group[a] >= 0)
            r->clusters[a].condition = parent[group[a]];
    for (i = 0; i < c->n_t; i++)
        r->condition[c->row[i]] = r->clusters[c->assign[i]].condition;
    for (size_t g = 0; g < n_groups; g++) {
        for (i = 0, nv = 0; i < c->n_t; i++)
            if (r->condition[c->row[i]] == (int)g)
                pbuf[nv++] = r->pval[c->row[i]];
        r->conditions[g].median_p = median_sorted(pbuf, nv);
    }
done:
    free(parent);
    free(group);
    free(eligible);
    free(pbuf);
    free(keys);
    free(mark);
    return st;
}

/* ---- attribution ----------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct member_key {
    double cos;     /* of its residual with the condition's mean residual */
    size_t row;     /* in tonight */
} member_key;

static int cmp_member(const void *a, const void *b)
{
    const member_key *x = a, *y = b;
    if (x->cos != y->cos)
        return x->cos < y->cos ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

typedef struct cam_key {
    size_t n;
    size_t cam;     /* index into the sorted camera names: ties go by name */
} cam_key;

static int cmp_cam(const void *a, const void *b)
{
    const cam_key *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return (x->cam > y->cam) - (x->cam < y->cam);
}

/* Tonight's scratch for the attribution, sized once for all conditions. */
typedef struct attr_work {
    size_t n_cam;
    const char **cam_name;  /* (n_cam) distinct tonight cameras, ascending */
    long *cam_ref;          /* (n_cam) row in the reference's cameras, or -1 */
    size_t *clip_cam;       /* (n_clips) camera of each tonight clip */
    size_t *cam_cnt;        /* (n_cam) */
    double *cam_sum;        /* (n_cam, NS_PROP_COUNT) */
    cam_key *cams;          /* (n_cam) */
    double *mres;           /* (d) mean member residual */
    member_key *mem;        /* (n_t) */
    uint8_t *seen;          /* (n_clips) */
    size_t *cond_cnt;       /* (n_conditions) */
} attr_work;

static void examples(const ns_detect_result *r, const member_key *mem, size_t m, size_t medoid,
                     uint8_t *seen, ns_detect_condition *cd)
{
    const uint32_t *clip = r->tonight.clip;
    memset(seen, 0, r->tonight.n_clips);
    cd->n_examples = 0;
    /* Boundary frames (lowest cosine) first, one per clip, then any. */
    for (size_t i = 0; i < m && cd->n_examples < NS_DETECT_EXAMPLES; i++) {
        if (mem[i].row == medoid || seen[clip[mem[i].row]])
            continue;
        seen[clip[mem[i].row]] = 1;
        cd->examples[cd->n_examples++] = mem[i].row;
    }
    for (size_t i = 0; i < m && cd->n_examples < NS_DETECT_EXAMPLES; i++) {
        int taken = mem[i].row == medoid;
        for (int e = 0; e < cd->n_examples && !taken; e++)
            taken = cd->examples[e] == mem[i].row;
        if (!taken)
            cd->examples[cd->n_examples++] = mem[i].row;
    }
    if (cd->n_examples == 0 && m > 0) /* a one-frame condition shows that frame */
        cd->examples[cd->n_examples++] = medoid;
}

static void top_props(ns_detect_attr *at)
{
    at->n_top = 0;
    for (int p = 0; p < NS_PROP_COUNT; p++) {
        int q = p;
        double v = fabs(at->paired_z[p]);
        while (q > 0 && fabs(at->paired_z[at->top[q - 1]]) < v) {
            at->top[q] = at->top[q - 1];
            q--;
        }
        at->top[q] = p;
        at->n_top += v >= 1.0;
    }
}

static ns_status cam_attr(const ns_reference *ref, const attr_work *w, ns_detect_condition *cd)
{
    size_t nc = 0;
    for (size_t k = 0; k < w->n_cam; k++)
        if (w->cam_cnt[k])
            w->cams[nc++] = (cam_key){w->cam_cnt[k], k};
    qsort(w->cams, nc, sizeof *w->cams, cmp_cam);
    cd->cams = calloc(nc ? nc : 1, sizeof *cd->cams);
    if (!cd->cams)
        return ns_error(NS_ERR_NOMEM, "no memory for %zu cameras", nc);
    cd->n_cams = nc;
    for (size_t j = 0; j < nc; j++) {
        ns_detect_cam_attr *ca = &cd->cams[j];
        size_t k = w->cams[j].cam;
        long rc = w->cam_ref[k];
        snprintf(ca->camera, sizeof ca->camera, "%s", w->cam_name[k]);
        ca->n = w->cam_cnt[k];
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            double mean = w->cam_sum[k * NS_PROP_COUNT + (size_t)p] / (double)ca->n;
            double rm = rc >= 0 ? ref->cam_mean[(size_t)rc * NS_PROP_COUNT + (size_t)p] : NAN;
            double rs = rc >= 0 ? ref->cam_std[(size_t)rc * NS_PROP_COUNT + (size_t)p] : NAN;
            ca->z[p] = rs > 0 ? (mean - rm) / rs : NAN;
            ca->rel[p] = rm != 0 && !isnan(rm) ? (mean - rm) / fabs(rm) : NAN;
        }
    }
    return NS_OK;
}

static ns_status attribute_one(const ns_reference *ref, const ns_detect_cands *c,
                               const attr_work *w, ns_detect_result *r, ns_detect_condition *cd)
{
    const ns_frameset *t = &r->tonight;
    size_t m = 0, d = (size_t)c->d, medoid = 0;
    double psum[NS_PROP_COUNT] = {0}, pzsum[NS_PROP_COUNT] = {0}, norm = 0.0, best = -INFINITY;
    double rw[NS_PROP_COUNT] = {0}, rsd[NS_PROP_COUNT] = {0}, rn = 0.0;
    double cs_first = NAN, cs_last = NAN; /* clip start times of the condition's clips */
    memset(w->cam_cnt, 0, w->n_cam * sizeof *w->cam_cnt);
    memset(w->cam_sum, 0, w->n_cam * NS_PROP_COUNT * sizeof *w->cam_sum);
    memset(w->mres, 0, d * sizeof *w->mres);
    memset(w->seen, 0, t->n_clips);
    cd->n_clips = 0;
    cd->t_first = cd->t_last = NAN;
    for (size_t i = 0; i < c->n_t; i++) {
        size_t row = c->row[i], cl = t->clip[row], cam = w->clip_cam[cl];
        double ts = t->timestamp[row];
        if (r->condition[row] != cd->id)
            continue;
        if (!w->seen[cl]) {
            w->seen[cl] = 1;
            cd->n_clips++;
        }
        if (isfinite(ts)) {
            if (!(ts >= cd->t_first))
                cd->t_first = ts;
            if (!(ts <= cd->t_last))
                cd->t_last = ts;
        }
        if (isfinite(t->clips[cl].start_time)) {
            if (!(t->clips[cl].start_time >= cs_first))
                cs_first = t->clips[cl].start_time;
            if (!(t->clips[cl].start_time <= cs_last))
                cs_last = t->clips[cl].start_time;
        }
        w->cam_cnt[cam]++;
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            double v = t->props[row * NS_PROP_COUNT + (size_t)p];
            psum[p] += v;
            pzsum[p] += c->pz[i * NS_PROP_COUNT + (size_t)p];
            w->cam_sum[cam * NS_PROP_COUNT + (size_t)p] += v;
        }
        for (size_t j = 0; j < d; j++)
            w->mres[j] += c->resid[i * d + j];
        m++;
    }
    if (m == 0) /* cannot happen: a condition holds its clusters' tonight frames */
        return ns_error(NS_ERR_INTERNAL, "condition %d has no frames", cd->id);
    /* Frames without timestamps (no fps) but clips with start times: the
     * span of the clips' starts, marked as such, beats "?-?". */
    cd->t_from_clips = !isfinite(cd->t_first) && isfinite(cs_first);
    if (cd->t_from_clips) {
        cd->t_first = cs_first;
        cd->t_last = cs_last;
    }
    for (size_t j = 0; j < d; j++)
        norm += w->mres[j] * w->mres[j];
    norm = norm > 0 ? sqrt(norm) : 1.0;
    for (size_t i = 0, at = 0; i < c->n_t; i++) {
        size_t row = c->row[i];
        double dot = 0.0;
        if (r->condition[row] != cd->id)
            continue;
        for (size_t j = 0; j < d; j++)
            dot += c->resid[i * d + j] * w->mres[j];
        w->mem[at++] = (member_key){dot / norm, row};
        if (dot / norm > best) { /* strict: the lowest row wins ties */
            best = dot / norm;
            medoid = row;
        }
    }
    cd->medoid = medoid;
    qsort(w->mem, m, sizeof *w->mem, cmp_member);
    examples(r, w->mem, m, medoid, w->seen, cd);

    /* Reference level of the same cameras, weighted by the condition's frames. */
    for (size_t k = 0; k < w->n_cam; k++) {
        if (!w->cam_cnt[k] || w->cam_ref[k] < 0)
            continue;
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            size_t at = (size_t)w->cam_ref[k] * NS_PROP_COUNT + (size_t)p;
            rw[p] += (double)w->cam_cnt[k] * ref->cam_mean[at];
            rsd[p] += (double)w->cam_cnt[k] * ref->cam_std[at] * ref->cam_std[at];
        }
        rn += (double)w->cam_cnt[k];
    }
    for (int p = 0; p < NS_PROP_COUNT; p++) {
        double rm = rn > 0 ? rw[p] / rn : ref->prop_mean[p];
        double sd = rn > 0 ? sqrt(rsd[p] / rn) : ref->prop_std[p];
        cd->attr.paired_z[p] = pzsum[p] / (double)m;
        cd->attr.mean[p] = psum[p] / (double)m;
        cd->attr.ref_mean[p] = rm;
        cd->attr.rel[p] = rm != 0 ? (psum[p] / (double)m - rm) / fabs(rm) : NAN;
        cd->attr.rel_ok[p] = rm != 0 && fabs(rm) >= NS_DETECT_REL_MIN_BASE * sd;
    }
    top_props(&cd->attr);
    return cam_attr(ref, w, cd);
}

static void clip_summary(const attr_work *w, ns_detect_result *r)
{
    const ns_frameset *t = &r->tonight;
    for (size_t cl = 0; cl < t->n_clips; cl++) {
        ns_detect_clip *dc = &r->clips[cl];
        const ns_fs_clip *fc = &t->clips[cl];
        size_t best = 0;
        memset(w->cond_cnt, 0, r->n_conditions * sizeof *w->cond_cnt);
        dc->n_novel = 0;
        dc->condition = -1;
        for (size_t i = fc->first; i < fc->first + fc->n; i++) {
            dc->n_novel += r->novel[i];
            if (r->condition[i] >= 0)
                w->cond_cnt[r->condition[i]]++;
        }
        for (size_t g = 0; g < r->n_conditions; g++)
            if (w->cond_cnt[g] > best) { /* strict: the lower id wins ties */
                best = w->cond_cnt[g];
                dc->condition = (int)g;
            }
        dc->novel_share = fc->n ? (double)dc->n_novel / (double)fc->n : 0.0;
    }
}

ns_status ns_detect_attribute(const ns_reference *ref, const ns_detect_cands *c,
                              ns_detect_result *r)
{
    ns_status st = NS_OK;
    const ns_frameset *t = &r->tonight;
    size_t nclip = t->n_clips, n_cam = 0;
    attr_work w = {0};
    w.cam_name = malloc((nclip ? nclip : 1) * sizeof *w.cam_name);
    w.cam_ref = malloc((nclip ? nclip : 1) * sizeof *w.cam_ref);
    w.clip_cam = malloc((nclip ? nclip : 1) * sizeof *w.clip_cam);
    w.cam_cnt = malloc((nclip ? nclip : 1) * sizeof *w.cam_cnt);
    w.cam_sum = malloc((nclip ? nclip : 1) * NS_PROP_COUNT * sizeof *w.cam_sum);
    w.cams = malloc((nclip ? nclip : 1) * sizeof *w.cams);
    w.mres = malloc((size_t)(c->d > 0 ? c->d : 1) * sizeof *w.mres);
    w.mem = malloc((c->n_t ? c->n_t : 1) * sizeof *w.mem);
    w.seen = malloc(nclip ? nclip : 1);
    w.cond_cnt = malloc((r->n_conditions ? r->n_conditions : 1) * sizeof *w.cond_cnt);
    if (!w.cam_name || !w.cam_ref || !w.clip_cam || !w.cam_cnt || !w.cam_sum || !w.cams ||
        !w.mres || !w.mem || !w.seen || !w.cond_cnt) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the attribution of %zu clips", nclip);
        goto done;
    }
    /* Distinct cameras, ascending, and each clip's index among them. */
    for (size_t cl = 0; cl < nclip; cl++)
        w.cam_name[cl] = t->clips[cl].camera;
    qsort(w.cam_name, nclip, sizeof *w.cam_name, cmp_str);
    for (size_t cl = 0; cl < nclip; cl++)
        if (n_cam == 0 || strcmp(w.cam_name[n_cam - 1], w.cam_name[cl]) != 0)
            w.cam_name[n_cam++] = w.cam_name[cl];
    w.n_cam = n_cam;
    for (size_t k = 0; k < n_cam; k++)
        w.cam_ref[k] = ns_reference_camera(ref, w.cam_name[k]);
    for (size_t cl = 0; cl < nclip; cl++) {
        const char *name = t->clips[cl].camera;
        const char **hit = bsearch(&name, w.cam_name, n_cam, sizeof *w.cam_name, cmp_str);
        w.clip_cam[cl] = (size_t)(hit - w.cam_name);
    }
    for (size_t g = 0; g < r->n_conditions; g++)
        if ((st = attribute_one(ref, c, &w, r, &r->conditions[g])) != NS_OK)
            goto done;
    clip_summary(&w, r);
done:
    free(w.cam_name);
    free(w.cam_ref);
    free(w.clip_cam);
    free(w.cam_cnt);
    free(w.cam_sum);
    free(w.cams);
    free(w.mres);
    free(w.mem);
    free(w.seen);
    free(w.cond_cnt);
    return st;
}
