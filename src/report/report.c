/* report.c -- the detect stage's outputs: CSVs, summary.json and the page
 * (html.c), each written atomically; summary.json last, so its presence
 * means the set is complete.
 */
#include "nightshift/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nightshift/csv.h"
#include "nightshift/fsutil.h"
#include "report_internal.h"

void ns_report_default_opts(ns_report_opts *o)
{
    memset(o, 0, sizeof *o);
    o->thumb_size = 96;
    o->jpeg_quality = 75;
    o->max_thumbs = 64;
}

ns_status ns_report_html_escape(ns_strbuf *sb, const char *s)
{
    const char *run = s;
    for (; s && *s; s++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            /* Control characters are not text; show them as U+FFFD. */
            if (c < 0x20 && c != '\t' && c != '\n')
                rep = "\xef\xbf\xbd";
            else if (c == 0x7f)
                rep = "\xef\xbf\xbd";
        }
        if (!rep)
            continue;
        ns_strbuf_append(sb, run, (size_t)(s - run));
        ns_strbuf_append(sb, rep, strlen(rep));
        run = s + 1;
    }
    if (run)
        ns_strbuf_append(sb, run, strlen(run));
    return ns_strbuf_status(sb);
}

const char *ns_rep_num(char *buf, size_t cap, const char *fmt, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "n/a");
        return buf;
    }
    snprintf(buf, cap, fmt, v);
    for (char *p = buf; *p; p++)
        if (*p == ',')
            *p = '.';
    return buf;
}

const char *ns_rep_iso(char *buf, size_t cap, double t, int millis)
{
    struct tm tm;
    time_t s;
    double whole;
    int ms;
    if (!isfinite(t) || fabs(t) > 1e11) {
        snprintf(buf, cap, "unknown");
        return buf;
    }
    whole = floor(t);
    ms = (int)lround((t - whole) * 1000.0);
    if (ms >= 1000) {
        whole += 1;
        ms -= 1000;
    }
    s = (time_t)whole;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, cap, "unknown");
        return buf;
    }
    if (millis)
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    else
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* How a property reads in a sentence: its name, and whether its values are
 * shares of pixels (shown in percent) or levels. */
static const struct {
    const char *label;
    const char *fmt;   /* of the value; percent values are multiplied by 100 */
    int percent;
} prop_words[NS_PROP_COUNT] = {
    [NS_PROP_MEAN_LUMA] = {"mean luma", "%.0f", 0},
    [NS_PROP_MEAN_R] = {"mean red", "%.0f", 0},
    [NS_PROP_MEAN_G] = {"mean green", "%.0f", 0},
    [NS_PROP_MEAN_B] = {"mean blue", "%.0f", 0},
    [NS_PROP_SATURATION] = {"saturation", "%.2f", 0},
    [NS_PROP_CONTRAST] = {"contrast", "%.1f", 0},
    [NS_PROP_SHARPNESS] = {"sharpness", "%.0f", 0},
    [NS_PROP_FRAC_BLACK] = {"near-black pixels", "%.1f", 1},
    [NS_PROP_FRAC_WHITE] = {"near-white pixels", "%.1f", 1},
};

static void prop_value(ns_strbuf *sb, int p, double v)
{
    char t[48];
    if (!isfinite(v)) {
        ns_strbuf_printf(sb, "?");
        return;
    }
    ns_strbuf_printf(sb, "%s%s", ns_rep_num(t, sizeof t, prop_words[p].fmt,
                                            prop_words[p].percent ? 100.0 * v : v),
                     prop_words[p].percent ? "%" : "");
}

/* "near-black pixels 0.2% -> 9.1%, z = +14.7; mean luma 112 -> 98, z = -3.2
 * (-13%)": the standardized difference and the absolute values lead; the
 * relative change follows only where its base is not near zero. */
void ns_rep_attr_sentence(ns_strbuf *sb, const ns_detect_attr *a)
{
    char r[48], z[48];
    int n = a->n_top < 0 ? 0 : a->n_top > NS_PROP_COUNT ? NS_PROP_COUNT : a->n_top;
    if (n == 0) {
        ns_strbuf_printf(sb, "no property differs by one standard deviation or more");
        return;
    }
    for (int i = 0; i < n; i++) {
        int p = a->top[i];
        if (p < 0 || p >= NS_PROP_COUNT)
            continue;
        ns_strbuf_printf(sb, "%s%s ", i ? "; " : "", prop_words[p].label);
        prop_value(sb, p, a->ref_mean[p]);
        ns_strbuf_printf(sb, " -> ");
        prop_value(sb, p, a->mean[p]);
        ns_strbuf_printf(sb, ", z = %s", ns_rep_num(z, sizeof z, "%+.1f", a->paired_z[p]));
        if (a->rel_ok[p] && isfinite(a->rel[p]))
            ns_strbuf_printf(sb, " (%s%%)", ns_rep_num(r, sizeof r, "%+.0f", 100.0 * a->rel[p]));
    }
}

void ns_report_attr_text(const ns_detect_attr *a, char *buf, size_t cap)
{
    ns_strbuf sb = {0};
    if (cap == 0)
        return;
    ns_rep_attr_sentence(&sb, a);
    snprintf(buf, cap, "%s", sb.data && !sb.oom ? sb.data : "");
    ns_strbuf_release(&sb);
}

/* ---- CSV -------------------------------------------------------------------- */

static void csv_num(ns_strbuf *b, const char *fmt, double v)
{
    char t[64];
    if (isfinite(v))
        ns_csv_cell(b, ns_rep_num(t, sizeof t, fmt, v));
}

static void csv_time(ns_strbuf *b, double t, int millis)
{
    char s[40];
    if (isfinite(t))
        ns_csv_cell(b, ns_rep_iso(s, sizeof s, t, millis));
}

static void csv_uint(ns_strbuf *b, unsigned long long v)
{
    ns_strbuf_printf(b, "%llu", v);
}

static const ns_fs_clip *clip_of(const ns_detect_result *r, size_t row)
{
    uint32_t c = r->tonight.clip[row];
    return c < r->tonight.n_clips ? &r->tonight.clips[c] : NULL;
}

static void clips_csv(const ns_detect_result *r, ns_strbuf *b)
{
    ns_strbuf_printf(b, "sha256,camera,source,start_time,frames,novel_frames,novel_share,"
                        "condition\r\n");
    for (size_t c = 0; c < r->tonight.n_clips; c++) {
        const ns_fs_clip *fc = &r->tonight.clips[c];
        const ns_detect_clip *dc = r->clips ? &r->clips[c] : NULL;
        ns_csv_cell(b, fc->sha256);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, fc->camera);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, fc->source);
        ns_strbuf_append(b, ",", 1);
        csv_time(b, fc->start_time, 0);
        ns_strbuf_printf(b, ",%zu,", fc->n);
        if (dc) {
            csv_uint(b, dc->n_novel);
            ns_strbuf_append(b, ",", 1);
            csv_num(b, "%.4f", dc->novel_share);
            ns_strbuf_printf(b, ",%d", dc->condition);
        } else {
            ns_strbuf_append(b, ",,", 2);
        }
        ns_strbuf_append(b, "\r\n", 2);
    }
}

static void frames_csv(const ns_detect_result *r, ns_strbuf *b)
{
    const ns_frameset *f = &r->tonight;
    ns_strbuf_printf(b, "clip_sha256,source,member,frame_index,timestamp,ref_cluster,cluster,"
                        "condition,novelty_score,p_value,novel%s\r\n",
                     r->has_head ? ",max_softmax" : "");
    for (size_t i = 0; i < f->n; i++) {
        const ns_fs_clip *fc = clip_of(r, i);
        ns_csv_cell(b, fc ? fc->sha256 : "");
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, fc ? fc->source : "");
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, f->member ? f->member[i] : "");
        ns_strbuf_printf(b, ",%u,", f->index ? f->index[i] : 0u);
        csv_time(b, f->timestamp ? f->timestamp[i] : NAN, 1);
        ns_strbuf_printf(b, ",%d,%d,%d,", r->ref_cluster ? r->ref_cluster[i] : -1,
                         r->cluster ? r->cluster[i] : -1, r->condition ? r->condition[i] : -1);
        csv_num(b, "%.6g", r->score ? r->score[i] : NAN);
        ns_strbuf_append(b, ",", 1);
        csv_num(b, "%.6g", r->pval ? r->pval[i] : NAN);
        ns_strbuf_printf(b, ",%d", r->novel ? r->novel[i] : 0);
        if (r->has_head) {
            ns_strbuf_append(b, ",", 1);
            csv_num(b, "%.6g", r->msp[i]);
        }
        ns_strbuf_append(b, "\r\n", 2);
    }
}

static void clusters_csv(const ns_detect_result *r, ns_strbuf *b)
{
    const ns_frameset *f = &r->tonight;
    ns_strbuf_printf(b, "kind,id,condition,novel,frames_tonight,frames_ref,share_tonight,"
                        "share_ref,clips,clusters,cameras,median_p,first_time,last_time,"
                        "medoid_clip,medoid_source,medoid_member,attribution");
    for (int p = 0; p < NS_PROP_COUNT; p++)
        ns_strbuf_printf(b, ",z_%s", ns_prop_names[p]);
    for (int p = 0; p < NS_PROP_COUNT; p++)
        ns_strbuf_printf(b, ",rel_%s", ns_prop_names[p]);
    ns_strbuf_append(b, "\r\n", 2);
    for (size_t k = 0; k < r->n_conditions; k++) {
        const ns_detect_condition *c = &r->conditions[k];
        const ns_fs_clip *mc = c->medoid < f->n ? clip_of(r, c->medoid) : NULL;
        ns_strbuf sent = {0};
        ns_strbuf_printf(b, "condition,%d,%d,%d,%zu,%zu,", c->id, c->id, c->novel, c->n_frames,
                         c->n_ref);
        csv_num(b, "%.6g", c->share_tonight);
        ns_strbuf_append(b, ",", 1);
        csv_num(b, "%.6g", c->share_ref);
        ns_strbuf_printf(b, ",%zu,%d,%zu,", c->n_clips, c->n_clusters, c->n_cams);
        csv_num(b, "%.6g", c->median_p);
        ns_strbuf_append(b, ",", 1);
        csv_time(b, c->t_first, 0);
        ns_strbuf_append(b, ",", 1);
        csv_time(b, c->t_last, 0);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, mc ? mc->sha256 : "");
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, mc ? mc->source : "");
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, mc && f->member ? f->member[c->medoid] : "");
        ns_strbuf_append(b, ",", 1);
        ns_rep_attr_sentence(&sent, &c->attr);
        ns_csv_cell(b, sent.data ? sent.data : "");
        b->oom |= sent.oom;
        ns_strbuf_release(&sent);
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            ns_strbuf_append(b, ",", 1);
            csv_num(b, "%.4f", c->attr.paired_z[p]);
        }
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            ns_strbuf_append(b, ",", 1);
            csv_num(b, "%.4f", c->attr.rel[p]);
        }
        ns_strbuf_append(b, "\r\n", 2);
    }
    for (size_t k = 0; k < r->n_clusters; k++) {
        const ns_detect_cluster *c = &r->clusters[k];
        ns_strbuf_printf(b, "cluster,%d,%d,,%zu,%zu,,,,,,", c->id, c->condition, c->n_tonight,
                         c->n_ref);
        csv_num(b, "%.6g", c->median_p);
        ns_strbuf_append(b, ",,,,,,", 6);
        for (int p = 0; p < NS_PROP_COUNT; p++) {
            ns_strbuf_append(b, ",", 1);
            csv_num(b, "%.4f", c->signature[p]);
        }
        for (int p = 0; p < NS_PROP_COUNT; p++)
            ns_strbuf_append(b, ",", 1);
        ns_strbuf_append(b, "\r\n", 2);
    }
}

/* ---- summary.json --------------------------------------------------------- */

static void json_key(ns_strbuf *b, const char *k)
{
    ns_strbuf_json_str(b, k);
    ns_strbuf_append(b, ":", 1);
}

static void json_time(ns_strbuf *b, double t)
{
    char s[40];
    if (isfinite(t))
        ns_strbuf_json_str(b, ns_rep_iso(s, sizeof s, t, 0));
    else
        ns_strbuf_append(b, "null", 4);
}

static void json_condition(ns_strbuf *b, const ns_detect_result *r, const ns_detect_condition *c)
{
    const ns_frameset *f = &r->tonight;
    const ns_fs_clip *mc = c->medoid < f->n ? clip_of(r, c->medoid) : NULL;
    ns_strbuf sent = {0};
    ns_strbuf_printf(b, "{\"id\":%d,\"novel\":%s,\"frames\":%zu,\"frames_ref\":%zu,", c->id,
                     c->novel ? "true" : "false", c->n_frames, c->n_ref);
    json_key(b, "share_tonight");
    ns_strbuf_json_num(b, c->share_tonight);
    ns_strbuf_append(b, ",", 1);
    json_key(b, "share_ref");
    ns_strbuf_json_num(b, c->share_ref);
    ns_strbuf_printf(b, ",\"clips\":%zu,\"single_clip\":%s,\"clusters\":%d,", c->n_clips,
                     c->n_clips == 1 ? "true" : "false", c->n_clusters);
    json_key(b, "median_p");
    ns_strbuf_json_num(b, c->median_p);
    ns_strbuf_append(b, ",", 1);
    json_key(b, "first");
    json_time(b, c->t_first);
    ns_strbuf_append(b, ",", 1);
    json_key(b, "last");
    json_time(b, c->t_last);
    ns_strbuf_printf(b, ",\"times\":\"%s\",\"expected_accuracy\":",
                     c->t_from_clips ? "clip_starts" : "frames");
    ns_strbuf_json_num(b, r->has_head ? c->exp_acc : NAN);
    ns_strbuf_printf(b, ",\"expected_accuracy_ref\":");
    ns_strbuf_json_num(b, r->has_head ? c->exp_acc_ref : NAN);
    ns_strbuf_append(b, ",\"cameras\":[", 12);
    for (size_t i = 0; i < c->n_cams; i++) {
        if (i)
            ns_strbuf_append(b, ",", 1);
        ns_strbuf_printf(b, "{\"camera\":");
        ns_strbuf_json_str(b, c->cams[i].camera);
        ns_strbuf_printf(b, ",\"frames\":%zu}", c->cams[i].n);
    }
    ns_strbuf_append(b, "],\"medoid\":", 11);
    if (mc) {
        ns_strbuf_printf(b, "{\"clip\":");
        ns_strbuf_json_str(b, mc->sha256);
        ns_strbuf_printf(b, ",\"source\":");
        ns_strbuf_json_str(b, mc->source);
        ns_strbuf_printf(b, ",\"member\":");
        ns_strbuf_json_str(b, f->member ? f->member[c->medoid] : "");
        ns_strbuf_printf(b, ",\"frame_index\":%u,\"view_row\":%llu}",
                         f->index ? f->index[c->medoid] : 0u,
                         f->view_row ? (unsigned long long)f->view_row[c->medoid] : 0ull);
    } else {
        ns_strbuf_append(b, "null", 4);
    }
    ns_strbuf_append(b, ",\"attribution\":[", 16);
    for (int i = 0; i < c->attr.n_top && i < NS_PROP_COUNT; i++) {
        int p = c->attr.top[i];
        if (p < 0 || p >= NS_PROP_COUNT)
            continue;
        ns_strbuf_printf(b, "%s{\"property\":\"%s\",\"paired_z\":", i ? "," : "",
                         ns_prop_names[p]);
        ns_strbuf_json_num(b, c->attr.paired_z[p]);
        ns_strbuf_append(b, ",\"rel\":", 7);
        ns_strbuf_json_num(b, c->attr.rel[p]);
        ns_strbuf_printf(b, ",\"rel_meaningful\":%s,\"mean\":", c->attr.rel_ok[p] ? "true" : "false");
        ns_strbuf_json_num(b, c->attr.mean[p]);
        ns_strbuf_printf(b, ",\"ref_mean\":");
        ns_strbuf_json_num(b, c->attr.ref_mean[p]);
        ns_strbuf_append(b, "}", 1);
    }
    ns_strbuf_append(b, "],\"text\":", 9);
    ns_rep_attr_sentence(&sent, &c->attr);
    ns_strbuf_json_str(b, sent.data ? sent.data : "");
    b->oom |= sent.oom;
    ns_strbuf_release(&sent);
    ns_strbuf_append(b, "}", 1);
}

static void summary_json(const ns_reference *ref, const ns_detect_result *r, ns_strbuf *b)
{
    size_t top = r->opts.max_conditions > 0 ? (size_t)r->opts.max_conditions : 0;
    if (top > r->n_conditions)
        top = r->n_conditions;
    ns_strbuf_printf(b, "{\"format\":\"nightshift-detect-summary\",\"version\":1,\"night\":");
    ns_strbuf_json_str(b, r->night);
    ns_strbuf_printf(b, ",\"verdict\":\"%s\",\"verdict_reason\":",
                     ns_detect_verdict_name(r->verdict));
    ns_strbuf_json_str(b, r->verdict_reason);
    ns_strbuf_printf(b, ",\"exact\":%s,\"p_min\":", r->exact ? "true" : "false");
    ns_strbuf_json_num(b, r->p_min);
    ns_strbuf_append(b, ",\"p_value\":", 11);
    ns_strbuf_json_num(b, r->test.p_value);
    ns_strbuf_append(b, ",\"mmd2\":", 8);
    ns_strbuf_json_num(b, r->test.mmd2);
    ns_strbuf_append(b, ",\"alpha\":", 9);
    ns_strbuf_json_num(b, r->opts.alpha);
    ns_strbuf_append(b, ",\"frame_alpha\":", 15);
    ns_strbuf_json_num(b, r->opts.frame_alpha);
    /* Printed as an integer: a double would round seeds above 2^53. */
    ns_strbuf_printf(b, ",\"seed\":%llu,\"n_perm\":%d,\"permute\":\"%s\",\"sigma\":",
                     (unsigned long long)r->opts.seed, r->test.n_perm,
                     r->opts.permute_frames ? "frames" : "clips");
    ns_strbuf_json_num(b, r->sigma);
    ns_strbuf_printf(b, ",\"knn_k\":%d,\"model_id\":", ref->knn_k);
    ns_strbuf_json_str(b, ref->model_id);
    ns_strbuf_append(b, ",\"reference_nights\":[", 21);
    for (size_t i = 0; i < ref->n_nights; i++) {
        if (i)
            ns_strbuf_append(b, ",", 1);
        ns_strbuf_json_str(b, ref->nights[i]);
    }
    ns_strbuf_printf(b,
                     "],\"clips\":{\"tonight\":%zu,\"reference\":%zu,\"test_tonight\":%zu,"
                     "\"test_reference\":%zu},",
                     r->tonight.n_clips, ref->sample.n_clips, r->test.blocks_x,
                     r->test.blocks_y);
    ns_strbuf_printf(b,
                     "\"frames\":{\"tonight\":%zu,\"reference\":%zu,\"test_tonight\":%zu,"
                     "\"test_reference\":%zu},\"novel_frames\":%zu,",
                     r->tonight.n, r->n_ref_frames, r->test.n_x, r->test.n_y, r->n_novel);
    ns_strbuf_printf(b, "\"conditions\":%zu,\"novel_conditions\":", r->n_conditions);
    {
        size_t nn = 0;
        for (size_t i = 0; i < r->n_conditions; i++)
            nn += r->conditions[i].novel != 0;
        ns_strbuf_printf(b, "%zu,\"top_conditions\":[", nn);
    }
    for (size_t i = 0; i < top; i++) {
        if (i)
            ns_strbuf_append(b, ",", 1);
        json_condition(b, r, &r->conditions[i]);
    }
    ns_strbuf_printf(b, "],\"head\":");
    if (!r->has_head) {
        ns_strbuf_printf(b, "null");
    } else {
        ns_strbuf_printf(b, "{\"head_id\":");
        ns_strbuf_json_str(b, r->head_id);
        ns_strbuf_printf(b, ",\"classes\":%d,\"bbsd_p\":", r->n_classes);
        ns_strbuf_json_num(b, r->bbsd_p);
        ns_strbuf_printf(b, ",\"bbsd_ks\":[");
        for (int c = 0; c < r->n_classes; c++) {
            if (c)
                ns_strbuf_append(b, ",", 1);
            ns_strbuf_json_num(b, r->bbsd_ks ? r->bbsd_ks[c] : NAN);
        }
        ns_strbuf_printf(b, "],\"expected_accuracy\":");
        ns_strbuf_json_num(b, r->exp_acc);
        ns_strbuf_printf(b, ",\"expected_accuracy_ref\":");
        ns_strbuf_json_num(b, r->exp_acc_ref);
        ns_strbuf_append(b, "}", 1);
    }
    ns_strbuf_printf(b, ",\"files\":{\"report\":\"report.html\",\"clips\":\"clips.csv\","
                        "\"frames\":\"frames.csv\",\"clusters\":\"clusters.csv\"}}\n");
}

/* ---- orchestration ------------------------------------------------------------ */

static ns_status write_buf(const char *dir, const char *name, ns_strbuf *b)
{
    char path[4096];
    ns_status st = ns_strbuf_status(b);
    if (st != NS_OK)
        return ns_error_wrap(st, "building '%s'", name);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return ns_error(NS_ERR_USAGE, "output path too long: '%s/%s'", dir, name);
    return ns_write_file_atomic(path, b->data ? b->data : "", b->len);
}

ns_status ns_report_write(ns_store *s, const ns_reference *ref, const ns_detect_result *r,
                          const ns_report_opts *o, const char *out_dir)
{
    ns_status st;
    ns_strbuf b = {0};
    ns_report_opts def;
    if (!o) {
        ns_report_default_opts(&def);
        o = &def;
    }
    if ((st = ns_mkdir_p(out_dir)) != NS_OK)
        goto done;
    /* One buffer reused for every file: frames.csv is the big one. */
    clusters_csv(r, &b);
    if ((st = write_buf(out_dir, "clusters.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    clips_csv(r, &b);
    if ((st = write_buf(out_dir, "clips.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    frames_csv(r, &b);
    if ((st = write_buf(out_dir, "frames.csv", &b)) != NS_OK)
        goto done;
    b.len = 0;
    if ((st = ns_report_html(s, ref, r, o, &b)) != NS_OK ||
        (st = write_buf(out_dir, "report.html", &b)) != NS_OK)
        goto done;
    b.len = 0;
    summary_json(ref, r, &b);
    st = write_buf(out_dir, "summary.json", &b);
done:
    ns_strbuf_release(&b);
    return st;
}
