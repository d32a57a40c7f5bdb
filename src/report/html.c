/* html.c -- report.html: one self-contained page (inline CSS, SVG, JPEG).
 *
 * The page has no clock and no JavaScript, and a Content-Security-Policy
 * that forbids loading anything, so the same input gives the same bytes and
 * a hostile file name cannot make the page do anything.  Every string that
 * came from outside (cameras, sources, members, nights, model names) goes
 * through ns_report_html_escape; every table and the thumbnail count are
 * capped, and the page says so where it cut.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_css.h"
#include "report_internal.h"

static void esc(ns_strbuf *sb, const char *s)
{
    ns_report_html_escape(sb, s ? s : "");
}

static void num(ns_strbuf *sb, const char *fmt, double v)
{
    char t[64];
    ns_strbuf_printf(sb, "%s", ns_rep_num(t, sizeof t, fmt, v));
}

static void pct(ns_strbuf *sb, double share)
{
    char t[64];
    if (!isfinite(share))
        ns_strbuf_printf(sb, "n/a");
    else if (share > 0 && share < 0.001)
        ns_strbuf_printf(sb, "&lt;0.1%%");
    else
        ns_strbuf_printf(sb, "%s%%", ns_rep_num(t, sizeof t, "%.1f", 100.0 * share));
}

static void iso(ns_strbuf *sb, double t)
{
    char b[40];
    ns_strbuf_printf(sb, "%s", ns_rep_iso(b, sizeof b, t, 0));
}

static void span(ns_strbuf *sb, double a, double b, int from_clips)
{
    if (!isfinite(a) || !isfinite(b)) {
        ns_strbuf_printf(sb, "unknown");
        return;
    }
    if (from_clips)
        ns_strbuf_printf(sb, "clips starting ");
    iso(sb, a);
    ns_strbuf_printf(sb, " &ndash; ");
    iso(sb, b);
    ns_strbuf_printf(sb, " (%.0f min)", (b - a) / 60.0);
}

static void truncated(ns_strbuf *sb, size_t shown, size_t total, const char *what)
{
    if (shown < total)
        ns_strbuf_printf(sb, "<p class=\"note\">Showing %zu of %zu %s; the CSV files hold them "
                             "all.</p>\n", shown, total, what);
}

/* ---- head, verdict, test ------------------------------------------------------ */

static void head(ns_strbuf *sb, const ns_reference *ref, const ns_detect_result *r)
{
    ns_strbuf_printf(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                         "'none'; img-src data:; style-src 'unsafe-inline'\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, "
                         "initial-scale=1\">\n<title>nightshift detect &ndash; ");
    esc(sb, r->night);
    ns_strbuf_printf(sb, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n",
                     ns_report_css);
    ns_strbuf_printf(sb, "<header>\n<h1>Night ");
    esc(sb, r->night);
    ns_strbuf_printf(sb, "</h1>\n<p class=\"sub\">Model ");
    esc(sb, ref->model_name[0] ? ref->model_name : "(unnamed)");
    ns_strbuf_printf(sb, " <code>%.12s</code> &middot; reference ", ref->model_id);
    if (ref->n_nights) {
        esc(sb, ref->nights[0]);
        ns_strbuf_printf(sb, " &ndash; ");
        esc(sb, ref->nights[ref->n_nights - 1]);
        ns_strbuf_printf(sb, " (%zu night%s, %zu clips sampled)", ref->n_nights,
                         ref->n_nights == 1 ? "" : "s", ref->sample.n_clips);
    } else {
        ns_strbuf_printf(sb, "(no nights recorded)");
    }
    ns_strbuf_printf(sb, "</p>\n</header>\n");
}

static void verdict(ns_strbuf *sb, const ns_detect_result *r)
{
    size_t nn = 0;
    for (size_t i = 0; i < r->n_conditions; i++)
        nn += r->conditions[i].novel != 0;
    int thin = r->verdict == NS_VERDICT_INSUFFICIENT;
    ns_strbuf_printf(sb, "<section class=\"verdict %s\">\n<div class=\"big\">%s</div>\n",
                     r->shift ? "shift" : "noshift",
                     thin ? "Insufficient clips for the shift test"
                     : r->shift ? "Shift detected" : "No shift detected");
    if (thin) {
        ns_strbuf_printf(sb, "<p class=\"reason\">");
        esc(sb, r->verdict_reason);
        ns_strbuf_printf(sb, ". Novelty and conditions below need no test.</p>\n");
    }
    ns_strbuf_printf(sb, "<p>p = ");
    num(sb, "%.4g", r->test.p_value);
    ns_strbuf_printf(sb, " at level &alpha; = ");
    num(sb, "%g", r->opts.alpha);
    ns_strbuf_printf(sb, "; %zu novel condition%s; ", nn, nn == 1 ? "" : "s");
    pct(sb, r->tonight.n ? (double)r->n_novel / (double)r->tonight.n : NAN);
    ns_strbuf_printf(sb, " of tonight&#39;s frames are novel.</p>\n</section>\n");
}

static void test_section(ns_strbuf *sb, const ns_reference *ref, const ns_detect_result *r)
{
    const ns_mmd_test *t = &r->test;
    ns_strbuf_printf(sb, "<section>\n<h2>The shift test</h2>\n<p class=\"testline\">MMD&sup2; = ");
    num(sb, "%.4g", t->mmd2);
    ns_strbuf_printf(sb, ", p-value = ");
    num(sb, "%.4g", t->p_value);
    ns_strbuf_printf(sb, " over %d %s permutations (null mean ", t->n_perm,
                     r->opts.permute_frames ? "frame" : "whole-clip");
    num(sb, "%.3g", t->null_mean);
    ns_strbuf_printf(sb, ", sd ");
    num(sb, "%.3g", t->null_sd);
    ns_strbuf_printf(sb, ").</p>\n<table class=\"facts\">\n");
    ns_strbuf_printf(sb, "<tr><th>Clips (the effective sample size)</th><td>%zu tonight vs "
                         "%zu reference</td></tr>\n", t->blocks_x, t->blocks_y);
    ns_strbuf_printf(sb, "<tr><th>Frames used in the test</th><td>%zu tonight vs %zu reference "
                         "(at most %d per clip; %zu frames tonight, %zu in the reference "
                         "sample)</td></tr>\n", t->n_x, t->n_y, r->opts.test_frames_per_clip,
                     r->tonight.n, r->n_ref_frames);
    ns_strbuf_printf(sb, "<tr><th>Kernel bandwidth &sigma;</th><td>");
    num(sb, "%.4g", r->sigma);
    ns_strbuf_printf(sb, "</td></tr>\n<tr><th>Seed</th><td>%llu</td></tr>\n",
                     (unsigned long long)r->opts.seed);
    ns_strbuf_printf(sb, "<tr><th>k</th><td>%d nearest neighbours; %d reference centroids; "
                         "%d candidate clusters</td></tr>\n", ref->knn_k, r->kmeans_k,
                     r->opts.novel_k);
    ns_strbuf_printf(sb, "<tr><th>Novel frames</th><td>%zu of %zu (frame p &lt; ", r->n_novel,
                     r->tonight.n);
    num(sb, "%g", r->opts.frame_alpha);
    ns_strbuf_printf(sb, "; p from the frame&#39;s own camera&#39;s reference scores when "
                         "it has at least %d sampled frames, else from all)</td></tr>\n"
                         "</table>\n", NS_REF_CAM_CALIB_MIN);
    if (r->opts.permute_frames)
        ns_strbuf_printf(sb, "<p class=\"note warn\">Frames were permuted, not clips: a "
                             "diagnostic whose p-values are too small. Do not act on it.</p>\n");
    ns_strbuf_printf(sb, "<div class=\"charts\">\n<figure>\n");
    ns_svg_histogram(sb, r->score, r->tonight.n, r->ref_scores, r->n_ref_scores);
    ns_strbuf_printf(sb, "<figcaption>Novelty scores: tonight&#39;s frames against the "
                         "reference&#39;s leave-one-clip-out scores (shares per bin).</figcaption>"
                         "\n</figure>\n<figure>\n");
    ns_svg_null(sb, t->null_stats, t->null_stats && t->n_perm > 0 ? (size_t)t->n_perm : 0,
                t->mmd2);
    ns_strbuf_printf(sb, "<figcaption>The statistic under clip permutations; the line is "
                         "tonight&#39;s value.</figcaption>\n</figure>\n</div>\n</section>\n");
}

static void timeline(ns_strbuf *sb, const ns_detect_result *r, const ns_report_opts *o)
{
    ns_history_point now;
    size_t n = o->n_history, first = 0;
    if (!o->history || n == 0)
        return;
    if (n > NS_REP_MAX_HISTORY) {
        first = n - NS_REP_MAX_HISTORY;
        n = NS_REP_MAX_HISTORY;
    }
    memset(&now, 0, sizeof now);
    snprintf(now.night, sizeof now.night, "%s", r->night);
    now.mmd2 = r->test.mmd2;
    now.p_value = r->test.p_value;
    now.shift = r->shift;
    now.novel_share = r->tonight.n ? (double)r->n_novel / (double)r->tonight.n : NAN;
    ns_strbuf_printf(sb, "<section>\n<h2>Earlier nights</h2>\n<figure>\n");
    ns_svg_timeline(sb, o->history + first, n, &now, r->opts.alpha);
    ns_strbuf_printf(sb, "<figcaption>MMD&sup2; and p-value per night against the same "
                         "reference; tonight is the large point, red points are nights with a "
                         "shift.</figcaption>\n</figure>\n");
    truncated(sb, n, o->n_history, "earlier nights");
    ns_strbuf_printf(sb, "</section>\n");
}

/* ---- conditions ------------------------------------------------------------------ */

static void cond_table(ns_strbuf *sb, const ns_detect_result *r)
{
    size_t shown = r->n_conditions < NS_REP_MAX_COND_ROWS ? r->n_conditions
                                                          : NS_REP_MAX_COND_ROWS;
    ns_strbuf_printf(sb, "<section>\n<h2>Conditions</h2>\n");
    if (r->n_conditions == 0) {
        ns_strbuf_printf(sb, "<p>No candidate condition: no group of tonight&#39;s frames "
                             "stood out from the reference.</p>\n</section>\n");
        return;
    }
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>#</th><th>Novel</th><th>Frames</th>"
                         "<th>Share tonight</th><th>Share in reference</th><th>Clips</th>"
                         "<th>Cameras</th><th>Median p</th><th>What changed</th></tr>\n");
    for (size_t i = 0; i < shown; i++) {
        const ns_detect_condition *c = &r->conditions[i];
        ns_strbuf sent = {0};
        ns_strbuf_printf(sb, "<tr%s><td>%zu</td><td>%s</td><td>%zu</td><td>",
                         c->novel ? " class=\"novel\"" : "", i + 1, c->novel ? "yes" : "no",
                         c->n_frames);
        pct(sb, c->share_tonight);
        ns_strbuf_printf(sb, "</td><td>");
        pct(sb, c->share_ref);
        ns_strbuf_printf(sb, "</td><td>%zu%s</td><td>%zu</td><td>", c->n_clips,
                         c->n_clips == 1 ? " (1 clip only)" : "", c->n_cams);
        num(sb, "%.3g", c->median_p);
        ns_strbuf_printf(sb, "</td><td>");
        ns_rep_attr_sentence(&sent, &c->attr);
        esc(sb, sent.data);
        sb->oom |= sent.oom;
        ns_strbuf_release(&sent);
        ns_strbuf_printf(sb, "</td></tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    truncated(sb, shown, r->n_conditions, "conditions");
    ns_strbuf_printf(sb, "</section>\n");
}

static ns_status thumb(ns_strbuf *sb, ns_thumbs *th, const ns_detect_result *r, size_t row,
                       const char *role)
{
    const ns_frameset *f = &r->tonight;
    const ns_fs_clip *c;
    ns_strbuf alt = {0};
    ns_status st;
    if (row >= f->n || !f->view_row)
        return NS_OK;
    c = f->clip[row] < f->n_clips ? &f->clips[f->clip[row]] : NULL;
    ns_strbuf_printf(&alt, "%s: %s frame %u", role, c ? c->camera : "?",
                     f->index ? f->index[row] : 0u);
    ns_strbuf_printf(sb, "<figure class=\"th%s\">", strcmp(role, "medoid") == 0 ? " medoid" : "");
    st = ns_thumbs_img(th, f->view_row[row], alt.data ? alt.data : role, sb);
    ns_strbuf_printf(sb, "<figcaption>%s<br>", role);
    esc(sb, c ? c->camera : "?");
    /* The file name fits under a thumbnail; the whole path is in the title. */
    {
        const char *src = c ? c->source : "", *base = strrchr(src, '/');
        ns_strbuf_printf(sb, "<br><span class=\"src\" title=\"");
        esc(sb, src);
        ns_strbuf_printf(sb, "\">");
        esc(sb, base ? base + 1 : src);
    }
    ns_strbuf_printf(sb, "<br>");
    esc(sb, f->member ? f->member[row] : "");
    ns_strbuf_printf(sb, "</span></figcaption></figure>\n");
    ns_strbuf_release(&alt);
    return st;
}

static void cam_table(ns_strbuf *sb, const ns_detect_condition *c)
{
    size_t shown = c->n_cams < NS_REP_MAX_CAM_ROWS ? c->n_cams : NS_REP_MAX_CAM_ROWS;
    int np = c->attr.n_top < 3 ? c->attr.n_top : 3;
    if (c->n_cams == 0 || !c->cams)
        return;
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>Camera</th><th>Frames</th>");
    for (int j = 0; j < np; j++)
        ns_strbuf_printf(sb, "<th>%s z (vs this camera)</th><th>change</th>",
                         ns_prop_names[c->attr.top[j]]);
    ns_strbuf_printf(sb, "</tr>\n");
    for (size_t i = 0; i < shown; i++) {
        const ns_detect_cam_attr *a = &c->cams[i];
        ns_strbuf_printf(sb, "<tr><td>");
        esc(sb, a->camera);
        ns_strbuf_printf(sb, "</td><td>%zu</td>", a->n);
        for (int j = 0; j < np; j++) {
            int p = c->attr.top[j];
            ns_strbuf_printf(sb, "<td>");
            num(sb, "%+.1f", a->z[p]);
            ns_strbuf_printf(sb, "</td><td>");
            if (isfinite(a->rel[p])) {
                num(sb, "%+.0f", 100.0 * a->rel[p]);
                ns_strbuf_printf(sb, "%%");
            } else {
                ns_strbuf_printf(sb, "n/a");
            }
            ns_strbuf_printf(sb, "</td>");
        }
        ns_strbuf_printf(sb, "</tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    truncated(sb, shown, c->n_cams, "cameras");
}

static ns_status cond_detail(ns_strbuf *sb, ns_thumbs *th, const ns_detect_result *r, size_t i)
{
    const ns_detect_condition *c = &r->conditions[i];
    ns_strbuf sent = {0};
    ns_status st = NS_OK;
    ns_strbuf_printf(sb, "<article class=\"cond%s\">\n<h3>Condition %zu%s</h3>\n",
                     c->novel ? " novel" : "", i + 1, c->novel ? " &middot; novel" : "");
    ns_rep_attr_sentence(&sent, &c->attr);
    ns_strbuf_printf(sb, "<p class=\"attr\">");
    esc(sb, sent.data);
    sb->oom |= sent.oom;
    ns_strbuf_release(&sent);
    ns_strbuf_printf(sb, "</p>\n<div class=\"thumbs\">\n");
    st = thumb(sb, th, r, c->medoid, "medoid");
    for (int e = 0; st == NS_OK && e < c->n_examples && e < NS_DETECT_EXAMPLES; e++)
        st = thumb(sb, th, r, c->examples[e], "example");
    if (st != NS_OK)
        return st;
    ns_strbuf_printf(sb, "</div>\n<table class=\"facts\">\n<tr><th>Size</th><td>%zu frames "
                         "(", c->n_frames);
    pct(sb, c->share_tonight);
    ns_strbuf_printf(sb, " of tonight) vs %zu reference frames (", c->n_ref);
    pct(sb, c->share_ref);
    ns_strbuf_printf(sb, " of the reference); %d cluster%s</td></tr>\n", c->n_clusters,
                     c->n_clusters == 1 ? "" : "s");
    if (r->has_head) {
        ns_strbuf_printf(sb, "<tr><th>Expected accuracy</th><td>");
        num(sb, "%.2f", c->exp_acc);
        ns_strbuf_printf(sb, " (reference ");
        num(sb, "%.2f", c->exp_acc_ref);
        ns_strbuf_printf(sb, "; mean max-softmax of head %.12s)</td></tr>\n", r->head_id);
    }
    ns_strbuf_printf(sb, "<tr><th>Clips</th><td>%zu%s</td></tr>\n<tr><th>Cameras</th><td>",
                     c->n_clips,
                     c->n_clips != 1 ? ""
                     : c->novel      ? " (1 clip only, novel on strong evidence: most of its "
                                       "frames lie farther from the reference than any reference "
                                       "frame from its other clips)"
                                     : " (1 clip only: the frames of a clip are near-duplicates, "
                                       "so this is one observation)");
    for (size_t k = 0; k < c->n_cams && k < NS_REP_MAX_CAM_ROWS; k++) {
        if (k)
            ns_strbuf_printf(sb, ", ");
        esc(sb, c->cams[k].camera);
        ns_strbuf_printf(sb, " (%zu)", c->cams[k].n);
    }
    if (c->n_cams > NS_REP_MAX_CAM_ROWS)
        ns_strbuf_printf(sb, ", &hellip; (%zu in all)", c->n_cams);
    ns_strbuf_printf(sb, "</td></tr>\n<tr><th>Time (UTC)</th><td>");
    span(sb, c->t_first, c->t_last, c->t_from_clips);
    ns_strbuf_printf(sb, "</td></tr>\n<tr><th>Median frame p</th><td>");
    num(sb, "%.3g", c->median_p);
    ns_strbuf_printf(sb, "</td></tr>\n</table>\n<figure>\n");
    ns_svg_attr_bars(sb, &c->attr);
    ns_strbuf_printf(sb, "</figure>\n");
    cam_table(sb, c);
    ns_strbuf_printf(sb, "</article>\n");
    return NS_OK;
}

/* ---- cameras and clips ------------------------------------------------------------- */

typedef struct clip_key {
    const char *camera;
    double share;
    size_t n_novel, idx;
} clip_key;

static int by_camera(const void *a, const void *b)
{
    const clip_key *x = a, *y = b;
    int c = strcmp(x->camera, y->camera);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int by_share(const void *a, const void *b)
{
    const clip_key *x = a, *y = b;
    double sx = isfinite(x->share) ? x->share : -1, sy = isfinite(y->share) ? y->share : -1;
    if (sx != sy)
        return sx < sy ? 1 : -1;
    if (x->n_novel != y->n_novel)
        return x->n_novel < y->n_novel ? 1 : -1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static void fill_keys(const ns_detect_result *r, clip_key *k)
{
    for (size_t c = 0; c < r->tonight.n_clips; c++) {
        k[c].camera = r->tonight.clips[c].camera;
        k[c].share = r->clips ? r->clips[c].novel_share : NAN;
        k[c].n_novel = r->clips ? r->clips[c].n_novel : 0;
        k[c].idx = c;
    }
}

static void cameras(ns_strbuf *sb, const ns_detect_result *r, clip_key *k)
{
    size_t n = r->tonight.n_clips, rows = 0, total = 0;
    fill_keys(r, k);
    qsort(k, n, sizeof *k, by_camera);
    for (size_t i = 0; i < n; i++)
        total += i == 0 || strcmp(k[i].camera, k[i - 1].camera) != 0;
    ns_strbuf_printf(sb, "<section>\n<h2>Cameras tonight</h2>\n<table class=\"data\">\n"
                         "<tr><th>Camera</th><th>Clips</th><th>Frames</th><th>Novel frames</th>"
                         "<th>Novel share</th></tr>\n");
    for (size_t i = 0; i < n && rows < NS_REP_MAX_CAM_ROWS;) {
        size_t j = i, clips = 0, frames = 0, novel = 0;
        for (; j < n && strcmp(k[j].camera, k[i].camera) == 0; j++) {
            clips++;
            frames += r->tonight.clips[k[j].idx].n;
            novel += k[j].n_novel;
        }
        ns_strbuf_printf(sb, "<tr><td>");
        esc(sb, k[i].camera);
        ns_strbuf_printf(sb, "</td><td>%zu</td><td>%zu</td><td>%zu</td><td>", clips, frames,
                         novel);
        pct(sb, frames ? (double)novel / (double)frames : NAN);
        ns_strbuf_printf(sb, "</td></tr>\n");
        rows++;
        i = j;
    }
    ns_strbuf_printf(sb, "</table>\n");
    truncated(sb, rows, total, "cameras");
    ns_strbuf_printf(sb, "</section>\n");
}

static void top_clips(ns_strbuf *sb, const ns_detect_result *r, clip_key *k)
{
    size_t n = r->tonight.n_clips, shown = n < NS_REP_TOP_CLIPS ? n : NS_REP_TOP_CLIPS;
    fill_keys(r, k);
    qsort(k, n, sizeof *k, by_share);
    ns_strbuf_printf(sb, "<section>\n<h2>Clips with the most novel frames</h2>\n");
    if (n == 0) {
        ns_strbuf_printf(sb, "<p>No clips tonight.</p>\n</section>\n");
        return;
    }
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>#</th><th>Source</th><th>Camera</th>"
                         "<th>Start (UTC)</th><th>Frames</th><th>Novel</th><th>Novel share</th>"
                         "<th>Condition</th></tr>\n");
    for (size_t i = 0; i < shown; i++) {
        const ns_fs_clip *c = &r->tonight.clips[k[i].idx];
        int cond = r->clips ? r->clips[k[i].idx].condition : -1;
        ns_strbuf_printf(sb, "<tr><td>%zu</td><td class=\"src\">", i + 1);
        esc(sb, c->source);
        ns_strbuf_printf(sb, "</td><td>");
        esc(sb, c->camera);
        ns_strbuf_printf(sb, "</td><td>");
        iso(sb, c->start_time);
        ns_strbuf_printf(sb, "</td><td>%zu</td><td>%zu</td><td>", c->n, k[i].n_novel);
        pct(sb, k[i].share);
        if (cond >= 0)
            ns_strbuf_printf(sb, "</td><td>%d</td></tr>\n", cond + 1);
        else
            ns_strbuf_printf(sb, "</td><td>&ndash;</td></tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
    truncated(sb, shown, n, "clips");
    ns_strbuf_printf(sb, "</section>\n");
}

/* ---- the page ------------------------------------------------------------------------- */

ns_status ns_report_html(ns_store *s, const ns_reference *ref, const ns_detect_result *r,
                         const ns_report_opts *o, ns_strbuf *sb)
{
    ns_status st = NS_OK;
    ns_thumbs *th = NULL;
    clip_key *keys = NULL;
    size_t detail = r->opts.max_conditions > 0 ? (size_t)r->opts.max_conditions : 0;
    if (detail > NS_REP_MAX_DETAIL)
        detail = NS_REP_MAX_DETAIL;
    if (detail > r->n_conditions)
        detail = r->n_conditions;
    keys = malloc((r->tonight.n_clips ? r->tonight.n_clips : 1) * sizeof *keys);
    if (!keys) {
        st = ns_error(NS_ERR_NOMEM, "out of memory building the report");
        goto done;
    }
    if ((st = ns_thumbs_create(s, o->thumb_size, o->jpeg_quality, o->max_thumbs, &th)) != NS_OK)
        goto done;
    head(sb, ref, r);
    verdict(sb, r);
    test_section(sb, ref, r);
    timeline(sb, r, o);
    cond_table(sb, r);
    if (detail > 0) {
        ns_strbuf_printf(sb, "<section>\n<h2>The conditions in detail</h2>\n");
        for (size_t i = 0; i < detail; i++)
            if ((st = cond_detail(sb, th, r, i)) != NS_OK)
                goto done;
        truncated(sb, detail, r->n_conditions, "conditions in detail");
        if (ns_thumbs_left(th) == 0 && o->max_thumbs > 0 && s)
            ns_strbuf_printf(sb, "<p class=\"note\">The page holds at most %d thumbnails.</p>\n",
                             o->max_thumbs);
        ns_strbuf_printf(sb, "</section>\n");
    }
    cameras(sb, r, keys);
    top_clips(sb, r, keys);
    ns_strbuf_printf(sb, "<footer>nightshift %s &middot; detect stage report</footer>\n"
                         "</main>\n</body>\n</html>\n", NS_VERSION);
    st = ns_strbuf_status(sb);
done:
    ns_thumbs_free(th);
    free(keys);
    return st;
}
