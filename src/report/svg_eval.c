/* svg_eval.c -- the charts of the evaluate and gate pages: reliability
 * diagram, confusion matrix, forest plot.  Names that reach a chart
 * (classes, cameras, subsets) come from label files and the store, so they
 * are escaped here; coordinates are printed with one decimal. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval_internal.h"
#include "nightshift/metrics.h"

static void esc_text(ns_strbuf *sb, double x, double y, const char *anchor, const char *cls,
                     const char *s, size_t max_chars)
{
    char cut[96];
    size_t n = strlen(s);
    if (n > max_chars && max_chars + 4 < sizeof cut) {
        /* cut on a UTF-8 boundary, then mark it */
        size_t k = max_chars;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        memcpy(cut, s, k);
        memcpy(cut + k, "\xe2\x80\xa6", 4);
        s = cut;
    }
    ns_strbuf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"%s\">", x, y,
                     anchor, cls);
    ns_report_html_escape(sb, s);
    ns_strbuf_printf(sb, "</text>\n");
}

/* ---- reliability ---------------------------------------------------------------- */

static void reliability_curve(ns_strbuf *sb, const double *s, const char *cls, double x0,
                              double y0, double side)
{
    int first = 1;
    ns_strbuf_printf(sb, "<path class=\"%s\" d=\"", cls);
    for (int b = 0; b < NS_EV_BINS; b++) {
        const double *v = s + NS_EV_BIN + 3 * b;
        if (v[0] <= 0)
            continue;
        ns_strbuf_printf(sb, "%s%.1f %.1f", first ? "M" : " L", x0 + v[1] / v[0] * side,
                         y0 - v[2] / v[0] * side);
        first = 0;
    }
    ns_strbuf_printf(sb, "\"/>\n");
    for (int b = 0; b < NS_EV_BINS; b++) {
        const double *v = s + NS_EV_BIN + 3 * b;
        /* the dot's area follows the bin's share of frames */
        double r = 2 + 6 * sqrt(v[0] / (s[NS_EV_N] > 0 ? s[NS_EV_N] : 1));
        if (v[0] > 0)
            ns_strbuf_printf(sb, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n",
                             cls, x0 + v[1] / v[0] * side, y0 - v[2] / v[0] * side, r);
    }
}

void ns_svg_reliability(ns_strbuf *sb, const double *a, const char *name_a, const double *b,
                        const char *name_b)
{
    const double side = 240, x0 = 56, y0 = 22 + side, H = side + 22 + 44;
    char t[32];
    ns_svg_open(sb, H, "Reliability diagram: accuracy against confidence per bin");
    ns_strbuf_printf(sb, "<path class=\"diag\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n", x0, y0,
                     x0 + side, y0 - side);
    ns_svg_axes(sb, x0, y0, x0 + side, y0 - side);
    if (b)
        reliability_curve(sb, b, "prod", x0, y0, side);
    reliability_curve(sb, a, "cand", x0, y0, side);
    for (int k = 0; k <= 4; k++) {
        snprintf(t, sizeof t, "%.2f", k / 4.0);
        ns_svg_text(sb, x0 + side * k / 4.0, y0 + 14, "middle", "tick", t);
        ns_svg_text(sb, x0 - 6, y0 - side * k / 4.0 + 3, "end", "tick", t);
    }
    ns_svg_text(sb, x0 + side / 2, y0 + 32, "middle", "label",
                "confidence (temperature-scaled max probability)");
    ns_svg_text(sb, x0 + side + 40, 40, "start", "label", "accuracy per bin;");
    ns_svg_text(sb, x0 + side + 40, 56, "start", "label", "dashed: perfect calibration");
    ns_strbuf_printf(sb, "<circle class=\"cand\" cx=\"%.1f\" cy=\"80\" r=\"5\"/>\n",
                     x0 + side + 46);
    esc_text(sb, x0 + side + 58, 84, "start", "legend", name_a, 40);
    if (b) {
        ns_strbuf_printf(sb, "<circle class=\"prod\" cx=\"%.1f\" cy=\"100\" r=\"5\"/>\n",
                         x0 + side + 46);
        esc_text(sb, x0 + side + 58, 104, "start", "legend", name_b, 40);
    }
    ns_strbuf_printf(sb, "</svg>\n");
}

/* ---- confusion matrix ------------------------------------------------------------ */

void ns_svg_confusion(ns_strbuf *sb, const uint64_t *cm, int K,
                      const char (*classes)[NS_LABEL_LEN])
{
    int k = K > NS_EVREP_MAX_CM ? NS_EVREP_MAX_CM : K, cols = k + 1;
    double left = 150, top = 110, cell = (600 - left - 10) / cols, H;
    char t[32];
    if (cell > 40)
        cell = 40;
    H = top + cell * k + 30;
    ns_svg_open(sb, H, "Confusion matrix: rows are labels, columns predictions");
    for (int j = 0; j < cols; j++) {
        double x = left + cell * j + cell / 2;
        ns_strbuf_printf(sb, "<g transform=\"translate(%.1f %.1f) rotate(-50)\">", x, top - 6);
        esc_text(sb, 0, 0, "start", "tick", j < k ? classes[j] : "(other)", 18);
        ns_strbuf_printf(sb, "</g>\n");
    }
    for (int i = 0; i < k; i++) {
        uint64_t row = 0;
        for (int j = 0; j <= K; j++)
            row += cm[(size_t)i * (size_t)(K + 1) + (size_t)j];
        esc_text(sb, left - 6, top + cell * i + cell / 2 + 3, "end", "tick", classes[i], 22);
        for (int j = 0; j < cols; j++) {
            /* the last column gathers every column past the cap, and "other" */
            uint64_t v = 0;
            if (j < k)
                v = cm[(size_t)i * (size_t)(K + 1) + (size_t)j];
            else
                for (int jj = k; jj <= K; jj++)
                    v += cm[(size_t)i * (size_t)(K + 1) + (size_t)jj];
            double share = row ? (double)v / (double)row : 0;
            ns_strbuf_printf(sb,
                             "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                             "height=\"%.1f\" fill-opacity=\"%.3f\"/>\n",
                             left + cell * j, top + cell * i, cell - 1, cell - 1,
                             0.04 + 0.9 * share);
            if (v && cell >= 18) {
                snprintf(t, sizeof t, "%llu", (unsigned long long)v);
                ns_svg_text(sb, left + cell * j + cell / 2, top + cell * i + cell / 2 + 3,
                            "middle", "cellnum", t);
            }
        }
    }
    ns_svg_text(sb, left + cell * cols / 2, H - 8, "middle", "label",
                "predicted class (shade: share of the label's frames)");
    ns_strbuf_printf(sb, "</svg>\n");
}

/* ---- forest plot ------------------------------------------------------------------ */

void ns_svg_forest(ns_strbuf *sb, const ns_gate_result *g, const ns_eval_set *es)
{
    static const char *const cls[4] = {"ci", "ci inferior", "ci undecided", "ci reported"};
    size_t n = g->n_checks < NS_EVREP_MAX_FOREST ? g->n_checks : NS_EVREP_MAX_FOREST;
    const double left = 230, right = 590, rowh = 18, top = 16;
    double lo = 0, hi = 0, H = top + rowh * (double)n + 40;
    char t[64];
    for (size_t i = 0; i < n; i++) {
        const ns_gate_check *c = &g->checks[i];
        double m = isfinite(c->margin) ? -c->margin : 0;
        if (isfinite(c->lo))
            lo = fmin(lo, c->lo);
        if (isfinite(c->hi))
            hi = fmax(hi, c->hi);
        lo = fmin(lo, m);
    }
    lo -= 0.02;
    hi += 0.02;
#define FX(v) (left + ((v) - lo) / (hi - lo) * (right - left))
    ns_svg_open(sb, H, "Forest plot: paired delta per check with its interval and margin");
    ns_strbuf_printf(sb, "<path class=\"zero\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n", FX(0.0), top - 6,
                     FX(0.0), top + rowh * (double)n);
    for (size_t i = 0; i < n; i++) {
        const ns_gate_check *c = &g->checks[i];
        const ns_slice *s = &es->slices[c->slice];
        double y = top + rowh * (double)i + rowh / 2;
        char name[NS_LABEL_LEN + 64];
        snprintf(name, sizeof name, "%s%s%s %s%s", s->kind == NS_SLICE_ALL ? "" : ns_slice_kind_names[s->kind],
                 s->kind == NS_SLICE_ALL ? "" : " ", s->name,
                 c->metric == NS_GATE_ACCURACY ? "" : ns_gate_metric_names[c->metric],
                 c->new_class ? " (new)" : "");
        esc_text(sb, left - 8, y + 4, "end", "tick", name, 36);
        if (isfinite(c->margin))
            ns_strbuf_printf(sb, "<path class=\"margin\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n",
                             FX(-c->margin), y - rowh / 2 + 2, FX(-c->margin), y + rowh / 2 - 2);
        if (isfinite(c->lo) && isfinite(c->hi))
            ns_strbuf_printf(sb, "<path class=\"%s\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n",
                             cls[c->decision], FX(c->lo), y, FX(c->hi), y);
        if (isfinite(c->delta))
            ns_strbuf_printf(sb, "<circle class=\"pt%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>\n",
                             c->decision == NS_GATE_INFERIOR ? " shift" : "", FX(c->delta), y);
    }
    snprintf(t, sizeof t, "%+.2f", lo);
    ns_svg_text(sb, left, H - 22, "start", "tick", t);
    snprintf(t, sizeof t, "%+.2f", hi);
    ns_svg_text(sb, right, H - 22, "end", "tick", t);
    ns_svg_text(sb, FX(0.0), H - 22, "middle", "tick", "0");
    ns_svg_text(sb, (left + right) / 2, H - 6, "middle", "label",
                "candidate minus production (dashed: -margin)");
#undef FX
    ns_strbuf_printf(sb, "</svg>\n");
}
