/* svg.c -- the report's charts as inline SVG: plain shapes styled by classes
 * of reports/report.css, coordinates printed with one decimal (we never call
 * setlocale, so printf's C locale gives a decimal point).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report_internal.h"

#define W 600.0
#define ML 56.0 /* left margin: y labels */
#define MR 16.0
#define MT 22.0
#define MB 40.0
#define PW (W - ML - MR)

void ns_svg_open(ns_strbuf *sb, double h, const char *label)
{
    ns_strbuf_printf(sb,
                     "<svg class=\"chart\" "
                     "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                     "aria-label=\"%s\">\n",
                     W, h, W, h, label);
}

void ns_svg_text(ns_strbuf *sb, double x, double y, const char *anchor, const char *cls,
                 const char *s)
{
    ns_strbuf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"%s\">%s</text>\n",
                     x, y, anchor, cls, s);
}

void ns_svg_axes(ns_strbuf *sb, double x0, double y0, double x1, double y1)
{
    ns_strbuf_printf(sb,
                     "<path class=\"axis\" d=\"M%.1f %.1f L%.1f %.1f L%.1f %.1f\"/>\n",
                     x0, y1, x0, y0, x1, y0);
}

/* Range of the finite values of two arrays; 0 when there are none. */
/* One bar per bin (empty bins drawn as nothing), heights scaled so vmax
 * fills the plot's ph; the plot's baseline is y0, bins bw wide from ML. */
static void bars(ns_strbuf *sb, const char *cls, const double *v, int nbins, double vmax,
                 double bw, double y0, double ph)
{
    for (int k = 0; k < nbins; k++) {
        double h = v[k] / vmax * ph;
        if (v[k] > 0)
            ns_strbuf_printf(sb,
                             "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                             "height=\"%.1f\"/>\n",
                             cls, ML + k * bw, y0 - h, bw, h);
    }
}

static int range_f(const float *a, size_t na, const float *b, size_t nb, double *lo, double *hi)
{
    int any = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < na + nb; i++) {
        double v = i < na ? a[i] : b[i - na];
        if (!isfinite(v))
            continue;
        any = 1;
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
    if (any && *hi <= *lo)
        *hi = *lo + (*lo != 0 ? fabs(*lo) * 0.01 : 1.0);
    return any;
}

#define HBINS 40

void ns_svg_histogram(ns_strbuf *sb, const float *tonight, size_t n_tonight, const float *ref,
                      size_t n_ref)
{
    double lo, hi, ct[HBINS] = {0}, cr[HBINS] = {0}, nt = 0, nr = 0, ymax = 0;
    const double H = 240, y0 = H - MB, ph = H - MB - MT, bw = PW / HBINS;
    char a[32], b[32];
    if (!range_f(tonight, n_tonight, ref, n_ref, &lo, &hi)) {
        ns_strbuf_printf(sb, "<p class=\"muted\">No novelty scores to plot.</p>\n");
        return;
    }
    for (size_t i = 0; i < n_tonight + n_ref; i++) {
        double v = i < n_tonight ? tonight[i] : ref[i - n_tonight];
        int k;
        if (!isfinite(v))
            continue;
        k = (int)((v - lo) / (hi - lo) * HBINS);
        k = k < 0 ? 0 : k >= HBINS ? HBINS - 1 : k;
        if (i < n_tonight) {
            ct[k]++;
            nt++;
        } else {
            cr[k]++;
            nr++;
        }
    }
    /* Shares, not counts: tonight and the reference differ in size. */
    for (int k = 0; k < HBINS; k++) {
        ct[k] = nt > 0 ? ct[k] / nt : 0;
        cr[k] = nr > 0 ? cr[k] / nr : 0;
        ymax = fmax(ymax, fmax(ct[k], cr[k]));
    }
    if (ymax <= 0)
        ymax = 1;
    ns_svg_open(sb, H, "Histogram of novelty scores, tonight against the reference");
    bars(sb, "ref", cr, HBINS, ymax, bw, y0, ph);
    ns_strbuf_printf(sb, "<path class=\"tonight\" d=\"M%.1f %.1f", ML, y0);
    for (int k = 0; k < HBINS; k++) {
        double y = y0 - ct[k] / ymax * ph;
        ns_strbuf_printf(sb, " L%.1f %.1f L%.1f %.1f", ML + k * bw, y, ML + (k + 1) * bw, y);
    }
    ns_strbuf_printf(sb, " L%.1f %.1f\"/>\n", ML + PW, y0);
    ns_svg_axes(sb, ML, y0, ML + PW, MT);
    ns_svg_text(sb, ML, y0 + 16, "start", "tick", ns_rep_num(a, sizeof a, "%.3g", lo));
    ns_svg_text(sb, ML + PW, y0 + 16, "end", "tick", ns_rep_num(b, sizeof b, "%.3g", hi));
    ns_svg_text(sb, ML + PW / 2, y0 + 32, "middle", "label", "novelty score (k-th neighbour distance)");
    snprintf(a, sizeof a, "%.0f%%", ymax * 100);
    ns_svg_text(sb, ML - 6, MT + 4, "end", "tick", a);
    ns_svg_text(sb, ML - 6, y0, "end", "tick", "0%");
    ns_strbuf_printf(sb,
                     "<rect class=\"ref\" x=\"%.1f\" y=\"8\" width=\"12\" height=\"10\"/>\n",
                     ML + PW - 300);
    ns_svg_text(sb, ML + PW - 284, 17, "start", "legend", "reference (leave-one-clip-out)");
    ns_strbuf_printf(sb, "<path class=\"tonight\" d=\"M%.1f 13 L%.1f 13\"/>\n", ML + PW - 90,
                     ML + PW - 76);
    ns_svg_text(sb, ML + PW - 72, 17, "start", "legend", "tonight");
    ns_strbuf_printf(sb, "</svg>\n");
}

#define NBINS 30

void ns_svg_null(ns_strbuf *sb, const double *null_stats, size_t n, double observed)
{
    double lo = INFINITY, hi = -INFINITY, c[NBINS] = {0}, cmax = 0;
    const double H = 220, y0 = H - MB, ph = H - MB - MT, bw = PW / NBINS;
    char a[32], b[64];
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(null_stats[i])) {
            lo = fmin(lo, null_stats[i]);
            hi = fmax(hi, null_stats[i]);
            used++;
        }
    if (used == 0) {
        ns_strbuf_printf(sb, "<p class=\"muted\">No permutation statistics were kept.</p>\n");
        return;
    }
    if (isfinite(observed)) {
        lo = fmin(lo, observed);
        hi = fmax(hi, observed);
    }
    if (hi <= lo)
        hi = lo + (lo != 0 ? fabs(lo) * 0.01 : 1.0);
    /* A little room right of the extremes so the observed line stays visible. */
    hi += (hi - lo) * 0.03;
    for (size_t i = 0; i < n; i++) {
        int k;
        if (!isfinite(null_stats[i]))
            continue;
        k = (int)((null_stats[i] - lo) / (hi - lo) * NBINS);
        k = k < 0 ? 0 : k >= NBINS ? NBINS - 1 : k;
        c[k]++;
    }
    for (int k = 0; k < NBINS; k++)
        cmax = fmax(cmax, c[k]);
    ns_svg_open(sb, H, "Permutation null distribution of the MMD statistic with the observed value");
    bars(sb, "null", c, NBINS, cmax, bw, y0, ph);
    ns_svg_axes(sb, ML, y0, ML + PW, MT);
    if (isfinite(observed)) {
        double x = ML + (observed - lo) / (hi - lo) * PW;
        ns_strbuf_printf(sb, "<path class=\"obs\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n", x, y0, x,
                         MT - 6);
        snprintf(b, sizeof b, "observed %s", ns_rep_num(a, sizeof a, "%.3g", observed));
        ns_svg_text(sb, x > ML + PW / 2 ? x - 4 : x + 4, MT + 4, x > ML + PW / 2 ? "end" : "start",
             "obs-label", b);
    }
    ns_svg_text(sb, ML, y0 + 16, "start", "tick", ns_rep_num(a, sizeof a, "%.3g", lo));
    ns_svg_text(sb, ML + PW, y0 + 16, "end", "tick", ns_rep_num(a, sizeof a, "%.3g", hi));
    snprintf(b, sizeof b, "MMD\xc2\xb2 under %zu clip permutations", used);
    ns_svg_text(sb, ML + PW / 2, y0 + 32, "middle", "label", b);
    snprintf(a, sizeof a, "%.0f", cmax);
    ns_svg_text(sb, ML - 6, MT + 4, "end", "tick", a);
    ns_svg_text(sb, ML - 6, y0, "end", "tick", "0");
    ns_strbuf_printf(sb, "</svg>\n");
}

#define PMIN_LOG 4.0 /* the p-value axis runs from 1 down to 1e-4 */

static double p_y(double p, double top, double h)
{
    double l = p > 0 ? -log10(p) : PMIN_LOG;
    l = l < 0 ? 0 : l > PMIN_LOG ? PMIN_LOG : l;
    return top + l / PMIN_LOG * h;
}

void ns_svg_timeline(ns_strbuf *sb, const ns_history_point *h, size_t n,
                     const ns_history_point *tonight, double alpha)
{
    const double H = 320, top1 = MT, h1 = 110, top2 = MT + h1 + 40, h2 = 110;
    size_t N = n + 1, every = (N + 7) / 8;
    double mmax = 0, step = PW / (double)N;
    char a[32];
    for (size_t i = 0; i < N; i++) {
        const ns_history_point *p = i < n ? &h[i] : tonight;
        if (isfinite(p->mmd2))
            mmax = fmax(mmax, p->mmd2);
    }
    if (mmax <= 0)
        mmax = 1;
    ns_svg_open(sb, H, "Timeline of the shift statistic and p-value over earlier nights and tonight");
    ns_svg_axes(sb, ML, top1 + h1, ML + PW, top1);
    ns_svg_axes(sb, ML, top2 + h2, ML + PW, top2);
    ns_svg_text(sb, ML - 6, top1 + 4, "end", "tick", ns_rep_num(a, sizeof a, "%.3g", mmax));
    ns_svg_text(sb, ML - 6, top1 + h1, "end", "tick", "0");
    ns_svg_text(sb, ML + 4, top1 - 6, "start", "label", "MMD\xc2\xb2");
    for (int e = 0; e <= (int)PMIN_LOG; e++) {
        snprintf(a, sizeof a, e == 0 ? "1" : "1e-%d", e);
        ns_svg_text(sb, ML - 6, top2 + e / PMIN_LOG * h2 + 4, "end", "tick", a);
    }
    ns_svg_text(sb, ML + 4, top2 - 6, "start", "label", "p-value (log scale)");
    if (alpha > 0 && alpha < 1) {
        double y = p_y(alpha, top2, h2);
        ns_strbuf_printf(sb, "<path class=\"alpha\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n", ML, y,
                         ML + PW, y);
        snprintf(a, sizeof a, "alpha %g", alpha);
        ns_svg_text(sb, ML + PW - 4, y - 4, "end", "tick", a);
    }
    for (int panel = 0; panel < 2; panel++) {
        int pen = 0;
        ns_strbuf_printf(sb, "<path class=\"line\" d=\"");
        for (size_t i = 0; i < N; i++) {
            const ns_history_point *p = i < n ? &h[i] : tonight;
            double x = ML + (i + 0.5) * step;
            double v = panel == 0 ? p->mmd2 : p->p_value;
            double y = panel == 0 ? top1 + h1 - fmax(0, v) / mmax * h1 : p_y(v, top2, h2);
            if (!isfinite(v)) {
                pen = 0;
                continue;
            }
            ns_strbuf_printf(sb, "%s%.1f %.1f ", pen ? "L" : "M", x, y);
            pen = 1;
        }
        ns_strbuf_printf(sb, "\"/>\n");
        for (size_t i = 0; i < N; i++) {
            const ns_history_point *p = i < n ? &h[i] : tonight;
            double x = ML + (i + 0.5) * step;
            double v = panel == 0 ? p->mmd2 : p->p_value;
            double y = panel == 0 ? top1 + h1 - fmax(0, v) / mmax * h1 : p_y(v, top2, h2);
            if (!isfinite(v))
                continue;
            ns_strbuf_printf(sb, "<circle class=\"pt%s%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\"/>\n",
                             p->shift ? " shift" : "", i == n ? " tonight" : "", x, y,
                             i == n ? 5 : 3);
        }
    }
    for (size_t i = 0; i < N; i++) {
        const ns_history_point *p = i < n ? &h[i] : tonight;
        if (i != n && (N - 1 - i) % every != 0)
            continue;
        ns_strbuf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"%s\">",
                         ML + (i + 0.5) * step, top2 + h2 + 16, i == n ? "tick now" : "tick");
        ns_report_html_escape(sb, p->night);
        ns_strbuf_printf(sb, "</text>\n");
    }
    ns_strbuf_printf(sb, "</svg>\n");
}

void ns_svg_attr_bars(ns_strbuf *sb, const ns_detect_attr *at)
{
    const double row = 18, LW = 130, H = MT + NS_PROP_COUNT * row + 26;
    const double cw = W - LW - MR - 60, cx = LW + cw / 2;
    double zmax = 3;
    char a[32];
    for (int p = 0; p < NS_PROP_COUNT; p++)
        if (isfinite(at->paired_z[p]))
            zmax = fmax(zmax, fabs(at->paired_z[p]));
    ns_svg_open(sb, H, "Paired z of each property for this condition");
    for (int p = 0; p < NS_PROP_COUNT; p++) {
        double z = at->paired_z[p], y = MT + p * row;
        ns_svg_text(sb, LW - 8, y + 12, "end", "tick", ns_prop_names[p]);
        if (!isfinite(z)) {
            ns_svg_text(sb, cx + 4, y + 12, "start", "tick", "n/a");
            continue;
        }
        double w = fabs(z) / zmax * (cw / 2);
        ns_strbuf_printf(sb,
                         "<rect class=\"%s%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                         "height=\"%.1f\"/>\n",
                         z >= 0 ? "pos" : "neg", fabs(z) >= 1 ? " named" : "",
                         z >= 0 ? cx : cx - w, y + 2, w, row - 5);
        snprintf(a, sizeof a, "%+.1f", z);
        ns_svg_text(sb, z >= 0 ? cx + w + 4 : cx - w - 4, y + 12, z >= 0 ? "start" : "end", "tick", a);
    }
    ns_strbuf_printf(sb, "<path class=\"axis\" d=\"M%.1f %.1f L%.1f %.1f\"/>\n", cx, MT - 4, cx,
                     MT + NS_PROP_COUNT * row);
    ns_svg_text(sb, cx, H - 6, "middle", "label", "paired z (difference from the nearest normal frames)");
    ns_strbuf_printf(sb, "</svg>\n");
}
