/* morning.c -- RUNS/<night>/index.html: the night at a glance, links to its
 * reports and logs, and the earlier nights as a timeline. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nightshift/fsutil.h"
#include "nightshift/morning.h"
#include "report_css.h"
#include "report_internal.h"

typedef struct night_row {
    char night[16];
    int exit_code;
    uint64_t frames;   /* ingest count */
    int have_det;
    ns_detect_brief det;
} night_row;

static void esc(ns_strbuf *sb, const char *s)
{
    ns_report_html_escape(sb, s ? s : "");
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const char *outcome(int code, const char **cls)
{
    *cls = "shift";
    switch (code) {
    case 0: *cls = "noshift"; return "Nothing needs a human";
    case 3: return "Shift or novel condition found";
    case 5: return "A candidate head was gated PROMOTE";
    case 75: return "Store busy: the night did not run";
    case 143: return "Stopped by a signal: rerun to resume";
    case -1: return "Still running";
    default: return "The night failed: see the logs";
    }
}

static void link(ns_strbuf *sb, const char *href, const char *text)
{
    ns_strbuf_printf(sb, "<li><a href=\"");
    esc(sb, href);
    ns_strbuf_printf(sb, "\">");
    esc(sb, text);
    ns_strbuf_printf(sb, "</a></li>\n");
}

/* The earlier nights (and tonight), ascending, at most NS_REP_MAX_HISTORY. */
static ns_status read_nights(const ns_morning_page *p, night_row **out, size_t *n)
{
    struct dirent **names = NULL;
    int k = scandir(p->runs, &names, NULL, alphasort);
    night_row *rows = NULL;
    size_t nr = 0;
    *out = NULL;
    *n = 0;
    if (k < 0)
        return NS_OK; /* no earlier nights */
    rows = calloc((size_t)k + 1, sizeof *rows);
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        char path[2 * PATH_MAX];
        ns_run_manifest m;
        if (rows && strlen(nm) == 10 && nm[4] == '-' && strcmp(nm, p->night) <= 0) {
            snprintf(path, sizeof path, "%s/%s/manifest.json", p->runs, nm);
            if (ns_run_manifest_load(path, &m) == NS_OK && m.n_stages > 0) {
                night_row *r = &rows[nr++];
                ns_stage_record *ing = ns_run_manifest_find(&m, "ingest");
                snprintf(r->night, sizeof r->night, "%s", nm);
                r->exit_code = m.exit_code;
                r->frames = ing ? ing->count : 0;
                snprintf(path, sizeof path, "%s/detect/%s/summary.json", p->runs, nm);
                ns_stage_record *det = ns_run_manifest_find(&m, "detect");
                r->have_det = det && !strcmp(det->status, "done") &&
                              ns_detect_brief_read(path, &r->det) == NS_OK;
            }
            ns_run_manifest_release(&m);
            ns_error_clear(); /* an unreadable night is left off the timeline */
        }
        free(names[i]);
    }
    free(names);
    if (!rows)
        return ns_error(NS_ERR_NOMEM, "out of memory reading nights in '%s'", p->runs);
    if (nr > NS_REP_MAX_HISTORY) {
        memmove(rows, rows + (nr - NS_REP_MAX_HISTORY), NS_REP_MAX_HISTORY * sizeof *rows);
        nr = NS_REP_MAX_HISTORY;
    }
    *out = rows;
    *n = nr;
    return NS_OK;
}

static void stages_table(ns_strbuf *sb, const ns_run_manifest *m)
{
    char a[32];
    ns_strbuf_printf(sb, "<h2>Stages</h2>\n<table class=\"data\">\n<tr><th>stage</th><th>status"
                         "</th><th>started</th><th>seconds</th><th>count</th><th>rate</th>"
                         "<th>note</th></tr>\n");
    for (size_t i = 0; i < m->n_stages; i++) {
        const ns_stage_record *r = &m->stages[i];
        ns_strbuf_printf(sb, "<tr%s><td>", strcmp(r->status, "done") &&
                                                   strcmp(r->status, "skipped")
                                               ? " class=\"novel\""
                                               : "");
        esc(sb, r->stage);
        ns_strbuf_printf(sb, "</td><td>");
        esc(sb, r->status);
        ns_strbuf_printf(sb, "</td><td>");
        esc(sb, r->start);
        ns_strbuf_printf(sb, "</td><td>%s</td><td>", ns_rep_num(a, sizeof a, "%.2f", r->seconds));
        if (r->unit[0]) {
            ns_strbuf_printf(sb, "%llu ", (unsigned long long)r->count);
            esc(sb, r->unit);
        }
        ns_strbuf_printf(sb, "</td><td>");
        if (!strcmp(r->unit, "frames") && r->seconds > 0.05 && !strcmp(r->status, "done")) {
            ns_strbuf_printf(sb, "%s/s", ns_rep_num(a, sizeof a, "%.1f",
                                                    (double)r->count / r->seconds));
        }
        ns_strbuf_printf(sb, "</td><td>");
        if (r->verdict[0]) {
            esc(sb, r->verdict);
            ns_strbuf_printf(sb, " ");
        }
        esc(sb, r->note);
        ns_strbuf_printf(sb, "</td></tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
}

/* Links to the files a stage wrote under RUNS/<stage>/<night>/, those present. */
static void stage_links(ns_strbuf *sb, const ns_morning_page *p, const char *stage,
                        const char *const *files, size_t n)
{
    char path[2 * PATH_MAX], href[PATH_MAX], text[96];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%s/%s", p->runs, stage, p->night, files[i]);
        snprintf(href, sizeof href, "../%s/%s/%s", stage, p->night, files[i]);
        snprintf(text, sizeof text, "%s: %s", stage, files[i]);
        if (is_file(path))
            link(sb, href, text);
    }
}

static void reports(ns_strbuf *sb, const ns_morning_page *p)
{
    char path[2 * PATH_MAX], href[PATH_MAX];
    static const char *const det_files[] = {"report.html", "summary.json", "clips.csv",
                                            "clusters.csv", "frames.csv"};
    static const char *const gate_files[] = {"report.html", "summary.json", "checks.csv",
                                             "changed.csv", "policy.txt"};
    ns_strbuf_printf(sb, "<h2>Reports and logs</h2>\n<ul>\n");
    stage_links(sb, p, "detect", det_files, sizeof det_files / sizeof det_files[0]);
    /* The labeling batch, where the select stage put it (inside RUNS or not). */
    for (size_t i = 0; i < p->manifest->n_stages; i++) {
        const ns_stage_record *r = &p->manifest->stages[i];
        if (strcmp(r->stage, "select") || strcmp(r->status, "done"))
            continue;
        for (size_t k = 0; k < r->n_outputs; k++) {
            const char *o = r->outputs[k].name;
            snprintf(href, sizeof href, "%s%s", o[0] == '/' ? "file://" : "../", o);
            snprintf(path, sizeof path, "labeling batch: %s", o);
            link(sb, href, path);
        }
    }
    stage_links(sb, p, "gate", gate_files, sizeof gate_files / sizeof gate_files[0]);
    snprintf(path, sizeof path, "%s/ingest.json", p->dir);
    if (is_file(path))
        link(sb, "ingest.json", "ingest summary (ingest.json)");
    link(sb, "manifest.json", "run manifest (manifest.json)");
    snprintf(path, sizeof path, "%s/logs", p->dir);
    struct dirent **names = NULL;
    int k = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < k; i++) {
        if (names[i]->d_name[0] != '.' && strstr(names[i]->d_name, ".log")) {
            snprintf(href, sizeof href, "logs/%s", names[i]->d_name);
            link(sb, href, href);
        }
        free(names[i]);
    }
    free(names);
    ns_strbuf_printf(sb, "</ul>\n");
}

static void timeline(ns_strbuf *sb, const ns_morning_page *p, const night_row *rows, size_t n)
{
    char a[32];
    ns_history_point *pts = calloc(n + 1, sizeof *pts);
    size_t np = 0;
    ns_strbuf_printf(sb, "<h2>Earlier nights</h2>\n");
    for (size_t i = 0; pts && i < n; i++) {
        if (!rows[i].have_det)
            continue;
        ns_history_point *h = &pts[np++];
        snprintf(h->night, sizeof h->night, "%s", rows[i].night);
        h->mmd2 = rows[i].det.mmd2;
        h->p_value = rows[i].det.p_value;
        h->shift = rows[i].det.shift;
        h->novel_share = rows[i].det.frames
                             ? (double)rows[i].det.novel_frames / (double)rows[i].det.frames
                             : NAN;
    }
    if (np > 0) {
        ns_strbuf_printf(sb, "<figure>\n");
        ns_svg_timeline(sb, pts, np - 1, &pts[np - 1], 0);
        ns_strbuf_printf(sb, "<figcaption>The shift statistic and its p-value on every night "
                             "detect ran, the latest last.</figcaption>\n</figure>\n");
    }
    free(pts);
    ns_strbuf_printf(sb, "<table class=\"data\">\n<tr><th>night</th><th>outcome</th><th>exit</th>"
                         "<th>frames ingested</th><th>detect</th><th>p-value</th>"
                         "<th>novel frames</th><th>novel conditions</th></tr>\n");
    for (size_t i = n; i-- > 0;) {
        const night_row *r = &rows[i];
        const char *cls, *what = outcome(r->exit_code, &cls);
        ns_strbuf_printf(sb, "<tr%s><td><a href=\"../", strcmp(cls, "shift") ? ""
                                                                             : " class=\"novel\"");
        esc(sb, r->night);
        ns_strbuf_printf(sb, "/index.html\">");
        esc(sb, r->night);
        ns_strbuf_printf(sb, "</a>%s</td><td>%s</td><td>%d</td><td>%llu</td>",
                         strcmp(r->night, p->night) ? "" : " (tonight)", what, r->exit_code,
                         (unsigned long long)r->frames);
        if (r->have_det) {
            ns_strbuf_printf(sb, "<td>");
            esc(sb, r->det.verdict);
            ns_strbuf_printf(sb, "</td><td>%s</td><td>%llu of %llu</td><td>%llu</td></tr>\n",
                             ns_rep_num(a, sizeof a, "%.4g", r->det.p_value),
                             (unsigned long long)r->det.novel_frames,
                             (unsigned long long)r->det.frames,
                             (unsigned long long)r->det.novel_conditions);
        } else
            ns_strbuf_printf(sb, "<td class=\"muted\">not run</td><td></td><td></td><td></td>"
                                 "</tr>\n");
    }
    ns_strbuf_printf(sb, "</table>\n");
}

ns_status ns_morning_write(const ns_morning_page *p)
{
    ns_strbuf sb = {0};
    night_row *rows = NULL;
    size_t n = 0;
    char path[PATH_MAX + 16], short_id[16];
    const ns_run_manifest *m = p->manifest;
    const char *cls, *what = outcome(m->exit_code, &cls);
    ns_status st = read_nights(p, &rows, &n);
    if (st != NS_OK)
        return st;
    ns_strbuf_printf(&sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                          "'none'; img-src data:; style-src 'unsafe-inline'\">\n"
                          "<meta name=\"viewport\" content=\"width=device-width, "
                          "initial-scale=1\">\n<title>nightshift nightly &ndash; ");
    esc(&sb, p->night);
    ns_strbuf_printf(&sb, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<header>\n"
                          "<h1>Night ",
                     ns_report_css);
    esc(&sb, p->night);
    ns_strbuf_printf(&sb, "</h1>\n<p class=\"sub\">nightshift ");
    esc(&sb, m->tool_version);
    snprintf(short_id, sizeof short_id, "%.12s", m->config_sha256);
    ns_strbuf_printf(&sb, " nightly &middot; config <code>");
    esc(&sb, short_id);
    ns_strbuf_printf(&sb, "</code> &middot; started ");
    esc(&sb, m->started);
    ns_strbuf_printf(&sb, ", updated ");
    esc(&sb, m->updated);
    ns_strbuf_printf(&sb, " &middot; production head ");
    if (m->production_head[0]) {
        snprintf(short_id, sizeof short_id, "%.12s", m->production_head);
        ns_strbuf_printf(&sb, "<code>");
        esc(&sb, short_id);
        ns_strbuf_printf(&sb, "</code>");
    } else
        ns_strbuf_printf(&sb, "none yet");
    ns_strbuf_printf(&sb, "</p>\n</header>\n<section class=\"verdict %s\">\n<div class=\"big\">"
                          "%s</div>\n<p>exit code %d</p>\n</section>\n",
                     cls, what, m->exit_code);
    stages_table(&sb, m);
    reports(&sb, p);
    timeline(&sb, p, rows, n);
    ns_strbuf_printf(&sb, "</main>\n</body>\n</html>\n");
    free(rows);
    snprintf(path, sizeof path, "%s/index.html", p->dir);
    if ((st = ns_strbuf_status(&sb)) == NS_OK)
        st = ns_write_file_atomic(path, sb.data, sb.len);
    ns_strbuf_release(&sb);
    return st;
}
