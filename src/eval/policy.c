/* policy.c -- the gate policy: defaults, the key = value file, its text.
 *
 * A policy is a handful of numbers a release manager signs off on, so the
 * format is the plainest one that diffs well: one "key = value" per line,
 * '#' starts a comment.  Every key has a default; an unknown key or a value
 * that does not parse is an error naming file, line and key, never ignored.
 */
#include "nightshift/gate.h"
#include "nightshift/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_gate_default_policy(ns_gate_policy *p)
{
    memset(p, 0, sizeof *p);
    p->primary = NS_GATE_ACCURACY;
    p->primary_min_delta = -0.01;
    for (int k = 0; k < NS_SLICE_KINDS; k++)
        p->margin[k] = NAN;
    p->margin[NS_SLICE_CAMERA] = 0.02;
    p->margin[NS_SLICE_CLASS] = 0.02;
    p->margin[NS_SLICE_SUBSET] = 0.01;
    p->ece_margin = 0.02;
    p->min_clips = 2;
    p->min_frames = 30;
    p->alpha = 0.05;
    p->power = 0.8;
    p->n_rep = 10000;
    p->seed = 20260101;
}

double ns_gate_policy_margin(const ns_gate_policy *p, const ns_slice *s)
{
    for (size_t i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].kind == s->kind && strcmp(p->overrides[i].name, s->name) == 0)
            return p->overrides[i].margin;
    return p->margin[s->kind];
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static int parse_num(const char *v, double *out)
{
    char *end;
    double x;
    errno = 0;
    x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x))
        return 0;
    *out = x;
    return 1;
}

/* A margin: a number in [0, 1), or "off". */
static int parse_margin(const char *v, double *out)
{
    if (strcmp(v, "off") == 0) {
        *out = NAN;
        return 1;
    }
    return parse_num(v, out) && *out >= 0 && *out < 1;
}

static ns_status bad(const char *path, size_t line, const char *key, const char *what)
{
    return ns_error(NS_ERR_USAGE, "%s:%zu: key '%s': %s", path, line, ns_show(key).s, what);
}

static ns_status set_key(ns_gate_policy *p, const char *path, size_t line, const char *key,
                         const char *v)
{
    double x;
    if (strcmp(key, "primary_metric") == 0) {
        if (strcmp(v, "accuracy") == 0)
            p->primary = NS_GATE_ACCURACY;
        else if (strcmp(v, "macro_f1") == 0)
            p->primary = NS_GATE_MACRO_F1;
        else
            return bad(path, line, key, "must be accuracy or macro_f1");
    } else if (strcmp(key, "primary_min_delta") == 0) {
        if (!parse_num(v, &x) || x <= -1 || x >= 1)
            return bad(path, line, key, "must be a number in (-1, 1), e.g. -0.01");
        p->primary_min_delta = x;
    } else if (strcmp(key, "ece_margin") == 0) {
        if (!parse_num(v, &x) || x < 0 || x >= 1)
            return bad(path, line, key, "must be a number in [0, 1)");
        p->ece_margin = x;
    } else if (strcmp(key, "min_clips") == 0) {
        if (!parse_num(v, &x) || x < 1 || x > 1e6 || x != floor(x))
            return bad(path, line, key, "must be a whole number >= 1");
        p->min_clips = (int)x;
    } else if (strcmp(key, "min_frames") == 0) {
        if (!parse_num(v, &x) || x < 1 || x > 1e9 || x != floor(x))
            return bad(path, line, key, "must be a whole number >= 1");
        p->min_frames = (int)x;
    } else if (strcmp(key, "alpha") == 0) {
        if (!parse_num(v, &x) || x <= 0 || x >= 0.5)
            return bad(path, line, key, "must be in (0, 0.5)");
        p->alpha = x;
    } else if (strcmp(key, "power") == 0) {
        if (!parse_num(v, &x) || x < 0.5 || x >= 1)
            return bad(path, line, key, "must be in [0.5, 1)");
        p->power = x;
    } else if (strcmp(key, "replicates") == 0) {
        if (!parse_num(v, &x) || x < 100 || x > 1e6 || x != floor(x))
            return bad(path, line, key, "must be a whole number in [100, 1000000]");
        p->n_rep = (int)x;
    } else if (strcmp(key, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (end == v || *end || errno || *v == '-')
            return bad(path, line, key, "must be a whole number >= 0");
        p->seed = s;
    } else if (strncmp(key, "margin.", 7) == 0) {
        char kind[32];
        const char *dot = strchr(key + 7, '.');
        size_t kl = dot ? (size_t)(dot - (key + 7)) : strlen(key + 7);
        ns_slice_kind k;
        if (kl >= sizeof kind)
            return bad(path, line, key, "unknown slice kind");
        memcpy(kind, key + 7, kl);
        kind[kl] = '\0';
        k = ns_slice_kind_parse(kind);
        if (k == NS_SLICE_KINDS || k == NS_SLICE_ALL)
            return bad(path, line, key,
                       "unknown slice kind (camera, night, condition, class, subset)");
        if (!parse_margin(v, &x))
            return bad(path, line, key, "must be a margin in [0, 1) or off");
        if (!dot) {
            p->margin[k] = x;
        } else {
            ns_gate_override *o;
            if (!dot[1])
                return bad(path, line, key, "names no slice");
            if (strlen(dot + 1) >= sizeof o->name)
                return bad(path, line, key, "slice name too long");
            if (p->n_overrides == NS_GATE_MAX_OVERRIDES)
                return bad(path, line, key, "too many per-slice margins (64 at most)");
            o = &p->overrides[p->n_overrides++];
            o->kind = k;
            snprintf(o->name, sizeof o->name, "%s", dot + 1);
            o->margin = x;
        }
    } else if (strncmp(key, "subset.", 7) == 0) {
        ns_subset_def *d;
        ns_status st;
        if (!key[7] || strlen(key + 7) >= sizeof d->name)
            return bad(path, line, key, "subset name empty or too long (63 bytes at most)");
        for (size_t i = 0; i < p->n_subsets; i++)
            if (strcmp(p->subsets[i].name, key + 7) == 0)
                return bad(path, line, key, "subset defined twice");
        if (p->n_subsets == NS_GATE_MAX_SUBSETS)
            return bad(path, line, key, "too many subsets (32 at most)");
        d = &p->subsets[p->n_subsets];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", key + 7);
        if ((st = ns_subset_parse(v, d)) != NS_OK)
            return ns_error_wrap(st, "%s:%zu: key '%s'", path, line, ns_show(key).s);
        p->n_subsets++;
    } else {
        return bad(path, line, key, "unknown key (see 'nightshift gate --help')");
    }
    return NS_OK;
}

ns_status ns_gate_policy_load(const char *path, ns_gate_policy *p)
{
    ns_status st = NS_OK;
    FILE *f = fopen(path, "r");
    char buf[2048];
    size_t line = 0;
    if (!f)
        return ns_error(NS_ERR_IO, "cannot open policy '%s': %s", path, strerror(errno));
    while (fgets(buf, sizeof buf, f)) {
        char *s, *eq, *hash;
        line++;
        if (!strchr(buf, '\n') && !feof(f)) {
            st = ns_error(NS_ERR_USAGE, "%s:%zu: line longer than %zu bytes", path, line,
                          sizeof buf - 2);
            break;
        }
        if ((hash = strchr(buf, '#')) != NULL)
            *hash = '\0';
        s = trim(buf);
        if (!*s)
            continue;
        eq = strchr(s, '=');
        if (!eq) {
            st = ns_error(NS_ERR_USAGE, "%s:%zu: expected 'key = value', got '%s'", path,
                          line, ns_show(s).s);
            break;
        }
        *eq = '\0';
        if ((st = set_key(p, path, line, trim(s), trim(eq + 1))) != NS_OK)
            break;
    }
    if (st == NS_OK && ferror(f))
        st = ns_error(NS_ERR_IO, "cannot read policy '%s'", path);
    fclose(f);
    return st;
}

static void margin_text(ns_strbuf *sb, double m)
{
    if (isfinite(m))
        ns_strbuf_printf(sb, "%g", m);
    else
        ns_strbuf_printf(sb, "off");
}

void ns_gate_policy_format(const ns_gate_policy *p, ns_strbuf *sb)
{
    static const char *const field[NS_SLICE_KINDS] = {"", "camera", "night", "condition",
                                                      "class", ""};
    ns_strbuf_printf(sb, "primary_metric = %s\nprimary_min_delta = %g\n",
                     ns_gate_metric_names[p->primary], p->primary_min_delta);
    for (int k = NS_SLICE_CAMERA; k < NS_SLICE_KINDS; k++) {
        ns_strbuf_printf(sb, "margin.%s = ", ns_slice_kind_names[k]);
        margin_text(sb, p->margin[k]);
        ns_strbuf_printf(sb, "\n");
    }
    for (size_t i = 0; i < p->n_overrides; i++) {
        ns_strbuf_printf(sb, "margin.%s.%s = ", ns_slice_kind_names[p->overrides[i].kind],
                         p->overrides[i].name);
        margin_text(sb, p->overrides[i].margin);
        ns_strbuf_printf(sb, "\n");
    }
    ns_strbuf_printf(sb, "ece_margin = %g\nmin_clips = %d\nmin_frames = %d\nalpha = %g\n"
                         "power = %g\nreplicates = %d\nseed = %llu\n",
                     p->ece_margin, p->min_clips, p->min_frames, p->alpha, p->power, p->n_rep,
                     (unsigned long long)p->seed);
    for (size_t i = 0; i < p->n_subsets; i++) {
        const ns_subset_def *d = &p->subsets[i];
        ns_strbuf_printf(sb, "subset.%s =", d->name);
        for (int t = 0; t < d->n_terms; t++)
            ns_strbuf_printf(sb, " %s=%s", field[d->field[t]], d->value[t]);
        ns_strbuf_printf(sb, "\n");
    }
}
