/* select_csv.c -- the selection CSV (docs/select.md): one row per pick, in
 * pick order; untrusted text through the one CSV cell escape. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nightshift/csv.h"
#include "nightshift/fsutil.h"
#include "nightshift/select.h"
#include "nightshift/strbuf.h"

#define SEL_HEADER "clip,source,member,frame,camera,night,time,condition,novel_condition," \
                   "novelty,reason,gain,suggested,suggested_p\n"

static void num(ns_strbuf *b, const char *fmt, double v)
{
    if (isfinite(v))
        ns_strbuf_printf(b, fmt, v);
    else if (isinf(v))
        ns_strbuf_printf(b, "%s", v > 0 ? "inf" : "-inf");
}

ns_status ns_select_write_csv(const ns_select_result *r, const char *path)
{
    ns_strbuf b = {0};
    char reason[32];
    ns_strbuf_printf(&b, "%s", SEL_HEADER);
    for (size_t i = 0; i < r->n; i++) {
        const ns_select_pick *p = &r->picks[i];
        ns_csv_cell(&b, p->clip);
        ns_strbuf_printf(&b, ",");
        ns_csv_cell(&b, p->source);
        ns_strbuf_printf(&b, ",");
        ns_csv_cell(&b, p->member);
        ns_strbuf_printf(&b, ",%u,", p->index);
        ns_csv_cell(&b, p->camera);
        ns_strbuf_printf(&b, ",");
        ns_csv_cell(&b, p->night);
        ns_strbuf_printf(&b, ",");
        num(&b, "%.3f", p->time);
        if (p->condition >= 0)
            ns_strbuf_printf(&b, ",%d,%d,", (int)p->condition, p->cond_novel);
        else
            ns_strbuf_printf(&b, ",,0,");
        num(&b, "%.6g", p->novelty);
        ns_select_reason(p, reason, sizeof reason);
        ns_strbuf_printf(&b, ",%s,", reason);
        num(&b, "%.6g", p->gain);
        ns_strbuf_printf(&b, ",");
        ns_csv_cell(&b, p->suggested);
        ns_strbuf_printf(&b, ",");
        num(&b, "%.4f", p->suggested_p);
        ns_strbuf_printf(&b, "\n");
    }
    ns_status st = ns_strbuf_status(&b);
    if (st == NS_OK)
        st = ns_write_file_atomic(path, b.data, b.len);
    ns_strbuf_release(&b);
    return st;
}
