/* select_terms.c -- the selection objective's terms (select.h): novel
 * quotas, uncertainty, camera balance, coverage; temporal dedup after every
 * pick. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "select_internal.h"

ns_status ns_sel_state_init(sel_state *S, const ns_frameset *fs, const ns_select_opts *o,
                            size_t n_det)
{
    memset(S, 0, sizeof *S);
    S->det_base = calloc(n_det ? n_det : 1, sizeof *S->det_base);
    S->fs = fs;
    S->o = o;
    S->n = fs->n;
    size_t n = fs->n ? fs->n : 1;
    S->cand = calloc(n, 1);
    S->elig = calloc(n, 1);
    S->mask = calloc(n, 1);
    S->labelled = calloc(n, 1);
    S->cond = malloc(n * sizeof *S->cond);
    S->score = malloc(n * sizeof *S->score);
    S->unc = malloc(n * sizeof *S->unc);
    S->top = malloc(n * sizeof *S->top);
    S->topp = malloc(n * sizeof *S->topp);
    S->picks = calloc(o->budget, sizeof *S->picks);
    if (!S->cand || !S->elig || !S->mask || !S->labelled || !S->cond || !S->score || !S->unc ||
        !S->top || !S->topp || !S->picks || !S->det_base)
        return ns_error(NS_ERR_NOMEM, "select: out of memory for %zu frames", fs->n);
    for (size_t i = 0; i < fs->n; i++) {
        S->cond[i] = -1;
        S->score[i] = NAN;
        S->unc[i] = NAN;
        S->top[i] = -1;
        S->topp[i] = NAN;
    }
    /* splitmix64 seeded: only the first center (nothing labelled) is drawn */
    S->rng = o->seed ^ 0x6a09e667f3bcc909ull;
    return NS_OK;
}

void ns_sel_state_release(sel_state *S)
{
    free(S->cand);
    free(S->elig);
    free(S->mask);
    free(S->labelled);
    free(S->cond);
    free(S->score);
    free(S->unc);
    free(S->top);
    free(S->topp);
    free(S->conds);
    free(S->det_base);
    free(S->picks);
    ns_kcenter_free(S->kc);
    memset(S, 0, sizeof *S);
}

ns_status ns_sel_add_conditions(sel_state *S, size_t det, const ns_det_frames *d)
{
    if (S->n_conds + d->n_conditions > S->cap_conds) {
        size_t cap = S->n_conds + d->n_conditions + 8;
        sel_cond *g = realloc(S->conds, cap * sizeof *g);
        if (!g)
            return ns_error(NS_ERR_NOMEM, "select: out of memory for conditions");
        S->conds = g;
        S->cap_conds = cap;
    }
    S->det_base[det] = S->n_conds;
    for (size_t k = 0; k < d->n_conditions; k++)
        S->conds[S->n_conds + k] = (sel_cond){det, (int32_t)k, d->cond_novel[k], 0, 0.0};
    S->n_conds += d->n_conditions;
    return NS_OK;
}

/* A later detect output of the same frame replaces an earlier one. */
void ns_sel_add_candidate(sel_state *S, size_t row, size_t det, int32_t cond, float score)
{
    size_t base = S->det_base[det];
    S->cand[row] = 1;
    S->cond[row] = cond >= 0 && base + (size_t)cond < S->n_conds ? (int32_t)(base + (size_t)cond)
                                                                  : -1;
    S->score[row] = score;
}

void ns_sel_mark_labelled(sel_state *S, size_t row)
{
    S->labelled[row] = 1;
    S->cand[row] = 0;
}

ns_status ns_sel_head_scores(sel_state *S, const ns_head *h)
{
    const int C = h->n_classes, d = S->fs->d;
    const size_t B = 1024;
    float *prob = malloc(B * (size_t)C * sizeof *prob);
    float *emb = malloc(B * (size_t)d * sizeof *emb);
    size_t *rows = malloc(B * sizeof *rows);
    ns_status st = NS_OK;
    if (!prob || !emb || !rows) {
        st = ns_error(NS_ERR_NOMEM, "select: out of memory for head scores");
        goto done;
    }
    S->head = h;
    for (size_t i = 0; i < S->n;) {
        size_t m = 0;
        for (; i < S->n && m < B; i++)
            if (S->cand[i]) {
                memcpy(emb + m * (size_t)d, S->fs->emb + i * (size_t)d, (size_t)d * sizeof *emb);
                rows[m++] = i;
            }
        if (m == 0)
            continue;
        if ((st = ns_head_predict(h, emb, m, prob)) != NS_OK)
            goto done;
        for (size_t j = 0; j < m; j++) {
            const float *p = prob + j * (size_t)C;
            int32_t top;
            float tp, margin;
            ns_head_top(p, 1, C, &top, &tp, &margin);
            size_t r = rows[j];
            S->top[r] = top;
            S->topp[r] = tp;
            if (S->o->uncertainty == NS_UNC_ENTROPY) {
                double e = 0.0;
                for (int c = 0; c < C; c++)
                    if (p[c] > 0.0f)
                        e -= (double)p[c] * log((double)p[c]);
                S->unc[r] = C > 1 ? (float)(e / log((double)C)) : 0.0f;
            } else {
                S->unc[r] = 1.0f - margin;
            }
        }
    }
done:
    free(prob);
    free(emb);
    free(rows);
    return st;
}

/* ---- picking ---------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The allowed row farthest from every center; before any center, one
 * drawn from the seed.  0 when none is allowed. */
static int farthest(sel_state *S, const uint8_t *allow, size_t *row, double *gain)
{
    float d2;
    if (!ns_kcenter_farthest(S->kc, allow, row, &d2))
        return 0;
    if (isinf(d2)) {
        size_t cnt = 0;
        for (size_t i = 0; i < S->n; i++)
            cnt += allow[i] != 0;
        size_t k = (size_t)(rng_next(&S->rng) % cnt);
        for (size_t i = 0; i < S->n; i++)
            if (allow[i] && k-- == 0) {
                *row = i;
                break;
            }
    }
    *gain = isinf(d2) ? INFINITY : sqrt((double)d2);
    return 1;
}

/* Temporal and embedding dedup around a pick, within its clip. */
static void block_around(sel_state *S, size_t p)
{
    const ns_frameset *fs = S->fs;
    const ns_fs_clip *c = &fs->clips[fs->clip[p]];
    const double md2 = S->o->min_dist * S->o->min_dist;
    const double gs = S->o->min_gap_seconds;
    for (size_t r = c->first; r < c->first + c->n; r++) {
        int near;
        if (gs > 0.0 && isfinite(fs->timestamp[r]) && isfinite(fs->timestamp[p]))
            near = fabs(fs->timestamp[r] - fs->timestamp[p]) < gs;
        else {
            int64_t di = (int64_t)fs->index[r] - (int64_t)fs->index[p];
            near = (di < 0 ? -di : di) < (int64_t)S->o->min_gap;
        }
        if (!near && md2 > 0.0)
            near = ns_kcenter_d2(fs->emb + r * (size_t)fs->d, fs->emb + p * (size_t)fs->d, fs->d) <
                   md2;
        if (near)
            S->elig[r] = 0;
    }
    S->elig[p] = 0;
}

static ns_status take(sel_state *S, size_t r, int reason, double gain)
{
    const ns_frameset *fs = S->fs;
    const ns_fs_clip *c = &fs->clips[fs->clip[r]];
    ns_select_pick *p = &S->picks[S->n_picks++];
    memcpy(p->clip, c->sha256, NS_SHA256_HEX);
    memcpy(p->source, c->source, NS_SOURCE_LEN);
    memcpy(p->member, fs->member[r], NS_MEMBER_LEN);
    memcpy(p->camera, c->camera, NS_CAMERA_LEN);
    memcpy(p->night, c->night, NS_NIGHT_LEN);
    p->index = fs->index[r];
    p->time = fs->timestamp[r];
    int32_t g = S->cond[r];
    p->condition = g >= 0 ? S->conds[g].id : -1;
    p->cond_novel = g >= 0 ? S->conds[g].novel : 0;
    p->novelty = S->score[r];
    p->reason = reason;
    p->gain = gain;
    p->suggested_p = NAN;
    if (S->head && S->top[r] >= 0) {
        snprintf(p->suggested, sizeof p->suggested, "%s", S->head->classes[S->top[r]]);
        p->suggested_p = S->topp[r];
    }
    block_around(S, r);
    return ns_kcenter_add(S->kc, r);
}

/* Quotas of the novel conditions: minimums first (by weight), then the rest
 * of the share in proportion to frames x mean novelty (largest remainder),
 * each capped by the frames it has. */
static void novel_quotas(const sel_state *S, size_t share, size_t *quota, size_t *order,
                         size_t *n_order)
{
    const sel_cond *cs = S->conds;
    size_t m = 0;
    double wsum = 0.0;
    for (size_t g = 0; g < S->n_conds; g++) {
        quota[g] = 0;
        if (cs[g].novel && cs[g].n_frames > 0) {
            order[m++] = g;
            wsum += cs[g].score_sum; /* n_frames x mean score */
        }
    }
    /* by weight descending, then condition order */
    for (size_t a = 1; a < m; a++)
        for (size_t b = a; b > 0 && cs[order[b]].score_sum > cs[order[b - 1]].score_sum; b--) {
            size_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    size_t used = 0;
    for (size_t k = 0; k < m; k++) {
        size_t g = order[k], want = (size_t)S->o->min_per_condition;
        if (want > cs[g].n_frames)
            want = cs[g].n_frames;
        if (used + want > S->o->budget)
            want = S->o->budget - used;
        quota[g] = want;
        used += want;
    }
    if (used < share && wsum > 0.0) {
        size_t rest = share - used, given = 0;
        for (size_t k = 0; k < m; k++) {
            size_t g = order[k];
            size_t add = (size_t)floor((double)rest * cs[g].score_sum / wsum);
            if (quota[g] + add > cs[g].n_frames)
                add = cs[g].n_frames - quota[g];
            quota[g] += add;
            given += add;
        }
        for (size_t k = 0; given < rest && k < m; k++)
            if (quota[order[k]] < cs[order[k]].n_frames) {
                quota[order[k]]++;
                given++;
            }
    }
    *n_order = m;
}

static ns_status term_novel(sel_state *S, size_t share)
{
    size_t *quota = malloc((S->n_conds + 1) * sizeof *quota);
    size_t *got = calloc(S->n_conds + 1, sizeof *got);
    size_t *order = malloc((S->n_conds + 1) * sizeof *order), m = 0;
    ns_status st = NS_OK;
    if (!quota || !got || !order) {
        st = ns_error(NS_ERR_NOMEM, "select: out of memory");
        goto done;
    }
    novel_quotas(S, share, quota, order, &m);
    for (int progress = 1; progress && S->n_picks < S->o->budget;) {
        progress = 0;
        for (size_t k = 0; k < m && S->n_picks < S->o->budget; k++) {
            size_t g = order[k], r;
            double gain;
            if (got[g] >= quota[g])
                continue;
            for (size_t i = 0; i < S->n; i++)
                S->mask[i] = S->elig[i] && S->cond[i] == (int32_t)g;
            if (!farthest(S, S->mask, &r, &gain)) {
                quota[g] = got[g];
                continue;
            }
            if ((st = take(S, r, NS_REASON_NOVEL, gain)) != NS_OK)
                goto done;
            got[g]++;
            progress = 1;
        }
    }
done:
    free(quota);
    free(got);
    free(order);
    return st;
}

typedef struct unc_row { float u; size_t row; } unc_row;

/* most uncertain first, then lower row */
static int cmp_unc(const void *a, const void *b)
{
    const unc_row *x = a, *y = b;
    if (x->u != y->u)
        return x->u > y->u ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static ns_status term_uncertain(sel_state *S, size_t share)
{
    size_t n_c = 0, target;
    unc_row *rows = malloc((S->n ? S->n : 1) * sizeof *rows);
    ns_status st = NS_OK;
    if (!rows)
        return ns_error(NS_ERR_NOMEM, "select: out of memory");
    for (size_t i = 0; i < S->n; i++)
        if (S->elig[i] && !isnan(S->unc[i]))
            rows[n_c++] = (unc_row){S->unc[i], i};
    qsort(rows, n_c, sizeof *rows, cmp_unc);
    target = S->n_picks + share;
    if (target > S->o->budget)
        target = S->o->budget;
    const double md2 = S->o->min_dist * S->o->min_dist;
    for (size_t k = 0; k < n_c && S->n_picks < target; k++) {
        size_t r = rows[k].row;
        if (!S->elig[r] || (md2 > 0.0 && (double)ns_kcenter_dist2(S->kc, r) < md2))
            continue;
        if ((st = take(S, r, NS_REASON_UNCERTAIN, (double)S->unc[r])) != NS_OK)
            break;
    }
    free(rows);
    return st;
}

static ns_status term_camera(sel_state *S, size_t share)
{
    const ns_frameset *fs = S->fs;
    size_t n_cams = 0;
    char (*cams)[NS_CAMERA_LEN] = calloc(fs->n_clips + 1, sizeof *cams);
    ns_status st = NS_OK;
    if (!cams)
        return ns_error(NS_ERR_NOMEM, "select: out of memory");
    for (size_t c = 0; c < fs->n_clips; c++) {
        int cand = 0;
        for (size_t r = fs->clips[c].first; r < fs->clips[c].first + fs->clips[c].n && !cand; r++)
            cand = S->cand[r];
        size_t k = 0;
        while (k < n_cams && strcmp(cams[k], fs->clips[c].camera) != 0)
            k++;
        if (cand && k == n_cams)
            memcpy(cams[n_cams++], fs->clips[c].camera, NS_CAMERA_LEN);
    }
    size_t floor_n = n_cams ? share / n_cams : 0;
    for (size_t k = 0; k < n_cams && S->n_picks < S->o->budget; k++) {
        size_t have = 0;
        for (size_t p = 0; p < S->n_picks; p++)
            have += strcmp(S->picks[p].camera, cams[k]) == 0;
        while (have < floor_n && S->n_picks < S->o->budget) {
            size_t r;
            double gain;
            for (size_t i = 0; i < S->n; i++)
                S->mask[i] = S->elig[i] && strcmp(fs->clips[fs->clip[i]].camera, cams[k]) == 0;
            if (!farthest(S, S->mask, &r, &gain))
                break;
            if ((st = take(S, r, NS_REASON_CAMERA, gain)) != NS_OK)
                goto done;
            have++;
        }
    }
done:
    free(cams);
    return st;
}

ns_status ns_sel_run_terms(sel_state *S, ns_select_result *out)
{
    const ns_select_opts *o = S->o;
    size_t n_seeds = 0, n_cand = 0;
    ns_status st;
    for (size_t i = 0; i < S->n; i++) {
        n_seeds += S->labelled[i];
        n_cand += S->cand[i];
        S->elig[i] = S->cand[i];
        if (S->cand[i] && S->cond[i] >= 0) {
            S->conds[S->cond[i]].n_frames++;
            S->conds[S->cond[i]].score_sum += isfinite(S->score[i]) ? S->score[i] : 0.0;
        }
    }
    if ((st = ns_kcenter_create(S->fs->emb, S->n, S->fs->d, n_seeds + o->budget, &S->kc)) !=
        NS_OK)
        return st;
    for (size_t i = 0; i < S->n; i++)
        if (S->labelled[i] && (st = ns_kcenter_add(S->kc, i)) != NS_OK)
            return st;
    size_t B = o->budget;
    /* --w-novel 0 turns the term off, minimums included */
    if (o->w_novel > 0.0 && (st = term_novel(S, (size_t)llround(o->w_novel * (double)B))) != NS_OK)
        return st;
    if (S->head && (st = term_uncertain(S, (size_t)llround(o->w_uncertain * (double)B))) != NS_OK)
        return st;
    if ((st = term_camera(S, (size_t)llround(o->w_camera * (double)B))) != NS_OK)
        return st;
    while (S->n_picks < B) {
        size_t r;
        double gain;
        if (!farthest(S, S->elig, &r, &gain))
            break;
        if ((st = take(S, r, NS_REASON_COVERAGE, gain)) != NS_OK)
            return st;
    }
    out->n = S->n_picks;
    out->picks = S->picks;
    S->picks = NULL;
    out->n_candidates = n_cand;
    out->n_labelled = n_seeds;
    out->n_seeds = n_seeds;
    for (size_t g = 0; g < S->n_conds; g++)
        if (S->conds[g].novel) {
            out->n_novel_conditions++;
            out->n_novel_frames += S->conds[g].n_frames;
        }
    for (size_t p = 0; p < out->n; p++)
        out->per_reason[out->picks[p].reason]++;
    return NS_OK;
}
