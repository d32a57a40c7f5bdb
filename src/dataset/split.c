/* split.c -- group splits (split.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/sha256.h"
#include "nightshift/split.h"

static const char *const by_names[] = {"clip", "camera", "night", "none"};

ns_status ns_split_by_parse(const char *s, ns_split_by *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, by_names[i]) == 0) {
            *out = (ns_split_by)i;
            return NS_OK;
        }
    return ns_error(NS_ERR_USAGE, "--split-by must be clip, camera, night or none, not '%.40s'",
                    s);
}

const char *ns_split_by_name(ns_split_by b) { return (unsigned)b < 4 ? by_names[b] : "?"; }

void ns_split_default_opts(ns_split_opts *o)
{
    o->by = NS_SPLIT_BY_CLIP;
    o->val = 0.1;
    o->test = 0.2;
    o->guard_minutes = 10;
    o->seed = 0;
}

double ns_split_unit(uint64_t seed, const char *key)
{
    ns_sha256 h;
    uint8_t d[NS_SHA256_LEN], le[8];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(seed >> (8 * i));
    ns_sha256_init(&h);
    ns_sha256_update(&h, le, sizeof le);
    ns_sha256_update(&h, key, strlen(key));
    ns_sha256_final(&h, d);
    for (int i = 0; i < 8; i++)
        v = (v << 8) | d[i];
    return (double)(v >> 11) * 0x1.0p-53;
}

typedef struct grp {
    const char *key, *night;
    double start;        /* earliest known start; INFINITY when none is known */
    double u;
    size_t n_frames;
    size_t first;        /* first member in the member order */
    size_t n_members;
    int32_t cls;
    uint8_t split;
} grp;

static const ns_split_clip *g_clips; /* for the qsort comparators */

static int cmp_time(const void *a, const void *b)
{
    const ns_split_clip *x = &g_clips[*(const size_t *)a], *y = &g_clips[*(const size_t *)b];
    int c = strcmp(x->camera, y->camera);
    if (c)
        return c;
    int xn = isnan(x->start), yn = isnan(y->start);
    if (xn != yn)
        return xn - yn;
    if (!xn && x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int cmp_str_field(const void *a, const void *b, int night)
{
    const ns_split_clip *x = &g_clips[*(const size_t *)a], *y = &g_clips[*(const size_t *)b];
    int c = night ? strcmp(x->night, y->night) : strcmp(x->camera, y->camera);
    return c ? c : strcmp(x->key, y->key);
}
static int cmp_camera(const void *a, const void *b) { return cmp_str_field(a, b, 0); }
static int cmp_night(const void *a, const void *b) { return cmp_str_field(a, b, 1); }

static int cmp_group_time(const void *a, const void *b)
{
    const grp *x = a, *y = b;
    int c = strcmp(x->night, y->night);
    if (c)
        return c;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->u > y->u) - (x->u < y->u);
}

static int cmp_group_u(const void *a, const void *b)
{
    const grp *x = a, *y = b;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    return strcmp(x->key, y->key);
}

static uint8_t hashed_split(double u, const ns_split_opts *o)
{
    return u < o->test ? NS_SPLIT_TEST : u < o->test + o->val ? NS_SPLIT_VAL : NS_SPLIT_TRAIN;
}

/* Stratified, in time order: see split.h. */
static ns_status assign_stratified(grp *g, size_t ng, const ns_split_clip *clips, size_t n,
                                   const ns_split_opts *o)
{
    int32_t max_cls = -1;
    for (size_t i = 0; i < n; i++)
        if (clips[i].cls > max_cls)
            max_cls = clips[i].cls;
    size_t n_strata = (size_t)max_cls + 2; /* row 0: no class */
    double (*count)[3] = calloc(n_strata, sizeof *count);
    if (!count)
        return ns_error(NS_ERR_NOMEM, "out of memory splitting %zu groups", ng);
    const double target[3] = {1.0 - o->val - o->test, o->val, o->test};
    for (size_t k = 0; k < ng; k++) {
        double *c = count[g[k].cls + 1], gf = (double)g[k].n_frames;
        double total = c[0] + c[1] + c[2] + gf;
        uint8_t s = hashed_split(g[k].u, o);
        if (c[s] > target[s] * total) {
            double best = -INFINITY;
            for (uint8_t t = 0; t < 3; t++) {
                double deficit = target[t] * total - c[t];
                if (target[t] > 0 && deficit > best) {
                    best = deficit;
                    s = t;
                }
            }
        }
        g[k].split = s;
        c[s] += gf;
    }
    free(count);
    return NS_OK;
}

static void assign_ranked(grp *g, size_t ng, const ns_split_opts *o)
{
    qsort(g, ng, sizeof *g, cmp_group_u);
    size_t n_test = (size_t)llround(o->test * (double)ng);
    size_t n_val = (size_t)llround(o->val * (double)ng);
    if (ng >= 3 && o->test > 0 && n_test == 0)
        n_test = 1;
    if (ng >= 3 && o->val > 0 && n_val == 0)
        n_val = 1;
    while (n_test + n_val >= ng && ng > 0 && (n_test > 0 || n_val > 0)) {
        if (n_val > 0)
            n_val--;
        else
            n_test--;
    }
    for (size_t k = 0; k < ng; k++)
        g[k].split = k < n_test ? NS_SPLIT_TEST : k < n_test + n_val ? NS_SPLIT_VAL : NS_SPLIT_TRAIN;
}

ns_status ns_split_assign(const ns_split_clip *clips, size_t n, const ns_split_opts *o,
                          uint8_t *split, size_t *group, size_t *n_groups)
{
    ns_status st = NS_OK;
    size_t *order = NULL, ng = 0;
    grp *g = NULL;
    if (!(o->val >= 0 && o->test >= 0 && o->val + o->test < 1))
        return ns_error(NS_ERR_USAGE, "split: --val %g and --test %g must be >= 0 with a sum "
                        "below 1", o->val, o->test);
    if (!(o->guard_minutes >= 0))
        return ns_error(NS_ERR_USAGE, "split: --guard must be >= 0 minutes");
    if (n_groups)
        *n_groups = 0;
    if (o->by == NS_SPLIT_BY_NONE) {
        for (size_t i = 0; i < n; i++) {
            split[i] = NS_SPLIT_TEST;
            if (group)
                group[i] = 0;
        }
        if (n_groups)
            *n_groups = n > 0;
        return NS_OK;
    }
    order = malloc((n ? n : 1) * sizeof *order);
    g = calloc(n ? n : 1, sizeof *g);
    if (!order || !g) {
        st = ns_error(NS_ERR_NOMEM, "out of memory splitting %zu clips", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    g_clips = clips;
    qsort(order, n, sizeof *order,
          o->by == NS_SPLIT_BY_CLIP ? cmp_time : o->by == NS_SPLIT_BY_CAMERA ? cmp_camera
                                                                             : cmp_night);
    /* Consecutive members in `order` form a group. */
    const double guard = o->guard_minutes * 60.0;
    double group_end = NAN;
    for (size_t k = 0; k < n; k++) {
        const ns_split_clip *c = &clips[order[k]], *prev = k ? &clips[order[k - 1]] : NULL;
        int join = 0;
        if (prev && o->by == NS_SPLIT_BY_CAMERA)
            join = strcmp(prev->camera, c->camera) == 0;
        else if (prev && o->by == NS_SPLIT_BY_NIGHT)
            join = strcmp(prev->night, c->night) == 0;
        else if (prev)
            join = guard > 0 && strcmp(prev->camera, c->camera) == 0 && !isnan(c->start) &&
                   !isnan(group_end) && c->start - group_end <= guard;
        if (!join) {
            grp *ng_ = &g[ng++];
            ng_->key = o->by == NS_SPLIT_BY_CAMERA ? c->camera
                       : o->by == NS_SPLIT_BY_NIGHT ? c->night
                                                    : c->key;
            ng_->night = c->night;
            ng_->start = INFINITY;
            ng_->first = k;
            group_end = NAN;
        }
        grp *cur = &g[ng - 1];
        cur->n_members++;
        cur->n_frames += c->n_frames;
        if (strcmp(c->night, cur->night) < 0)
            cur->night = c->night;
        if (!isnan(c->start) && c->start < cur->start)
            cur->start = c->start;
        double end = isnan(c->end) ? c->start : c->end;
        if (!isnan(end) && (isnan(group_end) || end > group_end))
            group_end = end;
    }
    /* Majority class of each group, weighted by the clips' frames. */
    for (size_t k = 0; k < ng; k++) {
        grp *gr = &g[k];
        size_t best_n = 0;
        gr->cls = -1;
        gr->u = ns_split_unit(o->seed, gr->key);
        for (size_t a = gr->first; a < gr->first + gr->n_members; a++) {
            int32_t cl = clips[order[a]].cls;
            size_t tot = 0;
            if (cl < 0)
                continue;
            for (size_t b = gr->first; b < gr->first + gr->n_members; b++)
                if (clips[order[b]].cls == cl)
                    tot += clips[order[b]].n_frames;
            if (tot > best_n || (tot == best_n && cl < gr->cls)) {
                best_n = tot;
                gr->cls = cl;
            }
        }
    }
    if (o->by == NS_SPLIT_BY_CAMERA) {
        assign_ranked(g, ng, o);
    } else {
        qsort(g, ng, sizeof *g, cmp_group_time);
        if ((st = assign_stratified(g, ng, clips, n, o)) != NS_OK)
            goto done;
    }
    /* Groups were reordered: members are found again by their first index. */
    for (size_t k = 0; k < ng; k++)
        for (size_t a = g[k].first; a < g[k].first + g[k].n_members; a++) {
            split[order[a]] = g[k].split;
            if (group)
                group[order[a]] = k;
        }
    if (n_groups)
        *n_groups = ng;
done:
    free(order);
    free(g);
    return st;
}
