/* labels_import.c -- `labels import`: rows from CSV or Label Studio JSON,
 * checked, resolved against the store, reconciled with its labels and
 * committed as one new label set (rules in labelimport.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"
#include "nightshift/clipmeta.h"
#include "nightshift/csv.h"
#include "nightshift/frameset.h"
#include "nightshift/labelimport.h"
#include "nightshift/strbuf.h"

#define SHOW 48 /* bytes of untrusted text quoted in a message */

enum { ROW_OK = 0, ROW_BAD, ROW_DROPPED };
enum { COL_CLIP, COL_FRAME, COL_LABEL, COL_ANNOTATOR, COL_TIME, COL_CONFIDENCE, COL_N };
static const char *const col_names[COL_N] = {"clip", "frame", "label",
                                             "annotator", "time", "confidence"};
/* Accepted header names when no column has our own name, in preference order. */
static const char *const col_aliases[COL_N][5] = {
    {"sha256", "clip_sha256", "path", "source", NULL},
    {"index", "frame_index", "member", NULL},
    {"class", NULL},
    {"annotator_id", "completed_by", NULL},
    {"labelled_at", "updated_at", NULL},
    {"score", NULL},
};

typedef struct pend {
    uint32_t file;   /* index into the import's files */
    uint32_t line;   /* CSV line or JSON task line */
    uint32_t clip;   /* catalog row */
    uint32_t index;  /* frame number, once resolved */
    int32_t cls;     /* row in the importer's classes */
    uint8_t state;
    size_t frame;    /* arena offset of the frame text */
    size_t ann;      /* arena offset of the annotator */
    double time;
    float conf;
} pend;

typedef struct importer {
    ns_store *s;
    const ns_labels_import_opts *o;
    ns_labels_import_report *rep;
    const char *const *files;
    ns_clipref_index *refs;
    pend *rows;
    size_t n, cap;
    ns_strbuf arena;
    char (*classes)[NS_LABEL_LEN];
    size_t n_classes, cap_classes;
    size_t *file_bad; /* (n_files) bad rows per file */
    uint8_t *file_json; /* (n_files) rows are numbered by task, not line */
    const char *map[COL_N]; /* --columns: header name for each of our columns */
    ns_status fatal;
} importer;

void ns_labels_import_default_opts(ns_labels_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->set_name = "labels";
    o->on_conflict = NS_CONFLICT_FAIL;
    o->max_file_bytes = (size_t)1 << 30;
}

static const char *const rule_names[] = {"fail", "keep", "replace"};

ns_status ns_conflict_rule_parse(const char *s, ns_conflict_rule *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, rule_names[i]) == 0) {
            *out = (ns_conflict_rule)i;
            return NS_OK;
        }
    return ns_error(NS_ERR_USAGE, "--on-conflict must be keep, replace or fail, not '%.40s'", s);
}

const char *ns_conflict_rule_name(ns_conflict_rule r)
{
    return (unsigned)r < 3 ? rule_names[r] : "?";
}

void ns_labels_import_report_release(ns_labels_import_report *r)
{
    if (r)
        ns_warnings_release(&r->problems);
}

static const char *arena_str(const importer *im, size_t off) { return im->arena.data + off; }

static size_t arena_put(importer *im, const char *s)
{
    size_t off = im->arena.len;
    ns_strbuf_append(&im->arena, s, strlen(s) + 1);
    return off;
}

/* Records a bad row; fmt describes the problem. */
static void bad_row(importer *im, uint32_t file, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad_row(importer *im, uint32_t file, size_t line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ns_warn(&im->rep->problems, "'%s' %s %zu: %s", im->files[file],
            im->file_json[file] ? "task" : "line", line, msg);
    im->rep->bad_rows++;
    im->file_bad[file]++;
}

static long class_of(importer *im, const char *label)
{
    for (size_t c = 0; c < im->n_classes; c++)
        if (strcmp(im->classes[c], label) == 0)
            return (long)c;
    if (im->n_classes == im->cap_classes) {
        size_t cap = im->cap_classes ? 2 * im->cap_classes : 16;
        void *g = realloc(im->classes, cap * sizeof *im->classes);
        if (!g)
            return -1;
        im->classes = g;
        im->cap_classes = cap;
    }
    snprintf(im->classes[im->n_classes], NS_LABEL_LEN, "%s", label);
    return (long)im->n_classes++;
}

/* Why a text field cannot be stored, or NULL. */
static const char *text_problem(const char *s, size_t max_len, int allow_empty)
{
    size_t len = strlen(s);
    if (!allow_empty && len == 0)
        return "is empty";
    if (len > max_len)
        return "is too long";
    if (ns_utf8_invalid_at(s) != (size_t)-1)
        return "is not valid UTF-8";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "holds a control character";
    return NULL;
}

/* The row-level checks shared by CSV and JSON.  Texts may be NULL (absent). */
static void add_row(importer *im, uint32_t file, size_t line, const char *clip,
                    const char *frame, const char *label, const char *annotator,
                    const char *time, const char *confidence)
{
    char shown[4 * SHOW + 8];
    const char *why;
    size_t row = 0, n_match = 0;
    double t = NAN, conf = NAN;
    if (!clip || !clip[0])
        return bad_row(im, file, line, "no clip");
    if (!frame || !frame[0])
        return bad_row(im, file, line, "no frame");
    if (!label)
        label = "";
    if ((why = text_problem(label, NS_LABEL_LEN - 1, 0)) != NULL) {
        ns_text_show(shown, sizeof shown, label, SHOW);
        if (strlen(label) > NS_LABEL_LEN - 1)
            return bad_row(im, file, line, "label of %zu bytes, at most %d ('%s')",
                           strlen(label), NS_LABEL_LEN - 1, shown);
        return bad_row(im, file, line, "label %s ('%s')", why, shown);
    }
    if ((why = text_problem(clip, NS_SOURCE_LEN - 1, 0)) != NULL ||
        (why = text_problem(frame, NS_MEMBER_LEN - 1, 0)) != NULL) {
        ns_text_show(shown, sizeof shown, (text_problem(clip, NS_SOURCE_LEN - 1, 0) ? clip : frame),
                     SHOW);
        return bad_row(im, file, line, "clip or frame %s ('%s')", why, shown);
    }
    if (annotator && (why = text_problem(annotator, NS_ANNOTATOR_LEN - 1, 1)) != NULL) {
        ns_text_show(shown, sizeof shown, annotator, SHOW);
        return bad_row(im, file, line, "annotator %s ('%s')", why, shown);
    }
    if (time && time[0]) {
        char *end = NULL;
        errno = 0;
        t = strtod(time, &end);
        if (errno || end == time || *end || !isfinite(t)) {
            if (ns_parse_iso_time(time, &t) != NS_OK) {
                ns_text_show(shown, sizeof shown, time, SHOW);
                return bad_row(im, file, line, "time '%s' is neither ISO 8601 nor unix "
                               "seconds", shown);
            }
        }
    }
    if (confidence && confidence[0]) {
        char *end = NULL;
        errno = 0;
        conf = strtod(confidence, &end);
        if (errno || end == confidence || *end || !(conf >= 0 && conf <= 1)) {
            ns_text_show(shown, sizeof shown, confidence, SHOW);
            return bad_row(im, file, line, "confidence '%s' is not a number in 0..1", shown);
        }
    }
    int r = ns_clipref_resolve(im->refs, clip, &row, &n_match);
    ns_text_show(shown, sizeof shown, clip, SHOW);
    if (r < 0) {
        im->fatal = NS_ERR_IO;
        return;
    }
    if (r == NS_CLIPREF_UNKNOWN)
        return bad_row(im, file, line, "unknown clip '%s' (not a SHA-256, prefix of >= %d hex "
                       "digits, source or file name in the store)", shown,
                       NS_CLIPREF_MIN_PREFIX);
    if (r == NS_CLIPREF_AMBIGUOUS)
        return bad_row(im, file, line, "ambiguous clip '%s': %zu clips match (give the "
                       "SHA-256 or the full source path)", shown, n_match);
    long cls = class_of(im, label);
    if (cls < 0 || im->arena.oom) {
        im->fatal = ns_error(NS_ERR_NOMEM, "out of memory importing labels");
        return;
    }
    if (im->n == im->cap) {
        size_t cap = im->cap ? 2 * im->cap : 1024;
        pend *g = realloc(im->rows, cap * sizeof *im->rows);
        if (!g) {
            im->fatal = ns_error(NS_ERR_NOMEM, "out of memory importing labels");
            return;
        }
        im->rows = g;
        im->cap = cap;
    }
    pend *p = &im->rows[im->n++];
    memset(p, 0, sizeof *p);
    p->file = file;
    p->line = (uint32_t)line;
    p->clip = (uint32_t)row;
    p->cls = (int32_t)cls;
    p->frame = arena_put(im, frame);
    p->ann = arena_put(im, annotator ? annotator : "");
    p->time = t;
    p->conf = (float)conf;
}

/* ---- CSV ---------------------------------------------------------------------- */

static int header_col(const ns_csv_reader *r, importer *im, int c)
{
    if (im->map[c])
        return ns_csv_column(r, im->map[c]);
    int k = ns_csv_column(r, col_names[c]);
    for (int a = 0; k < 0 && col_aliases[c][a]; a++)
        k = ns_csv_column(r, col_aliases[c][a]);
    return k;
}

static void reject_file(importer *im, uint32_t file, const char *why)
{
    ns_warn(&im->rep->problems, "'%s': %s; the file is left out", im->files[file], why);
    im->rep->files_rejected++;
}

static void read_csv(importer *im, uint32_t file, ns_csv_reader *r)
{
    int more = 0, col[COL_N];
    size_t n_header;
    char why[600];
    if (ns_csv_next(r, &more) != NS_OK || !more)
        return reject_file(im, file, more ? ns_errmsg() : "empty (no header row)");
    if (r->nul_bytes) {
        snprintf(why, sizeof why, "line %zu: the header holds a NUL byte", r->line);
        return reject_file(im, file, why);
    }
    n_header = r->n_fields;
    for (int c = 0; c < COL_N; c++)
        col[c] = header_col(r, im, c);
    for (int c = 0; c <= COL_LABEL; c++)
        if (col[c] < 0) {
            snprintf(why, sizeof why, "no '%s' column%s%s (use --columns %s=NAME)",
                     im->map[c] ? im->map[c] : col_names[c], im->map[c] ? " as mapped for " : "",
                     im->map[c] ? col_names[c] : "", col_names[c]);
            return reject_file(im, file, why);
        }
    for (;;) {
        ns_status st = ns_csv_next(r, &more);
        if (st != NS_OK) {
            /* The reader's message already names the file and line. */
            ns_warn(&im->rep->problems, "%s", ns_errmsg());
            im->rep->bad_rows++;
            im->rep->rows++;
            im->file_bad[file]++;
            if (r->pos >= r->len)
                break;
            continue;
        }
        if (!more || im->fatal != NS_OK)
            break;
        im->rep->rows++;
        if (r->nul_bytes) {
            bad_row(im, file, r->line, "holds %zu NUL byte%s", r->nul_bytes,
                    r->nul_bytes == 1 ? "" : "s");
            continue;
        }
        if (r->n_fields != n_header) {
            bad_row(im, file, r->line, "%zu fields, the header has %zu", r->n_fields, n_header);
            continue;
        }
        const char *v[COL_N];
        for (int c = 0; c < COL_N; c++)
            v[c] = col[c] >= 0 ? r->fields[col[c]] : NULL;
        add_row(im, file, r->line, v[COL_CLIP], v[COL_FRAME], v[COL_LABEL], v[COL_ANNOTATOR],
                v[COL_TIME], v[COL_CONFIDENCE]);
    }
}

/* ---- Label Studio JSON -------------------------------------------------------- */

typedef struct json_ctx {
    importer *im;
    uint32_t file;
} json_ctx;

static void on_task(void *ctx, const ns_lstask *t)
{
    json_ctx *j = ctx;
    j->im->rep->rows++;
    if (j->im->fatal != NS_OK)
        return;
    if (t->err)
        return bad_row(j->im, j->file, t->number, "%s (line %zu)", t->err, t->line);
    add_row(j->im, j->file, t->number, t->clip, t->frame, t->label, t->annotator, t->time, NULL);
}

static int looks_like_json(const ns_csv_reader *r)
{
    for (size_t i = r->pos; i < r->len; i++) {
        char c = r->text[i];
        if (c == '[')
            return 1;
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return 0;
    }
    return 0;
}

static void read_file(importer *im, uint32_t file)
{
    ns_csv_reader r;
    struct stat sb;
    const char *path = im->files[file];
    char why[600];
    im->rep->files++;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size > im->o->max_file_bytes) {
        snprintf(why, sizeof why, "%lld bytes, more than the limit of %zu",
                 (long long)sb.st_size, im->o->max_file_bytes);
        return reject_file(im, file, why);
    }
    if (ns_csv_open(path, &r) != NS_OK) {
        ns_warn(&im->rep->problems, "%s; the file is left out", ns_errmsg());
        im->rep->files_rejected++;
        return;
    }
    if (looks_like_json(&r)) {
        json_ctx j = {im, file};
        im->file_json[file] = 1;
        if (ns_lsjson_parse(r.text + r.pos, r.len - r.pos, path, on_task, &j) != NS_OK) {
            ns_warn(&im->rep->problems, "%s", ns_errmsg());
            im->rep->bad_rows++;
            im->file_bad[file]++;
        }
    } else {
        read_csv(im, file, &r);
    }
    ns_csv_close(&r);
}

/* ---- frames ------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* "0", "17": a frame number; anything else is a member name. */
static int parse_index(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT32_MAX / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* Finds each OK row's frame in its clip, by number or member name. */
static ns_status resolve_frames(importer *im)
{
    ns_status st = NS_OK;
    ns_frameset fs;
    uint32_t *clips = malloc((im->n ? im->n : 1) * sizeof *clips);
    size_t n_clips = 0, *rows = NULL;
    char shown[4 * SHOW + 8], sha[16];
    memset(&fs, 0, sizeof fs);
    if (!clips)
        return ns_error(NS_ERR_NOMEM, "out of memory resolving frames");
    for (size_t i = 0; i < im->n; i++)
        if (im->rows[i].state == ROW_OK)
            clips[n_clips++] = im->rows[i].clip;
    qsort(clips, n_clips, sizeof *clips, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n_clips; i++)
        if (u == 0 || clips[i] != clips[u - 1])
            clips[u++] = clips[i];
    n_clips = u;
    if (!(rows = malloc((n_clips ? n_clips : 1) * sizeof *rows))) {
        st = ns_error(NS_ERR_NOMEM, "out of memory resolving frames");
        goto done;
    }
    for (size_t i = 0; i < n_clips; i++)
        rows[i] = clips[i];
    if ((st = ns_frameset_load(im->s, NULL, 0, rows, n_clips, &fs)) != NS_OK)
        goto done;
    for (size_t i = 0; i < im->n; i++) {
        pend *p = &im->rows[i];
        if (p->state != ROW_OK)
            continue;
        const uint32_t *hit = bsearch(&p->clip, clips, n_clips, sizeof *clips, cmp_u32);
        const ns_fs_clip *c = &fs.clips[hit - clips];
        const char *ft = arena_str(im, p->frame);
        uint32_t want = 0;
        int by_index = parse_index(ft, &want), found = 0;
        for (size_t k = c->first; k < c->first + c->n && !found; k++) {
            if (by_index ? fs.index[k] == want : strcmp(fs.member[k], ft) == 0) {
                p->index = fs.index[k];
                found = 1;
            }
        }
        if (!found) {
            ns_text_show(shown, sizeof shown, ft, SHOW);
            snprintf(sha, sizeof sha, "%.12s", c->sha256);
            bad_row(im, p->file, p->line, "clip %s has no frame %s'%s' (%zu frames stored)",
                    sha, by_index ? "number " : "named ", shown, c->n);
            p->state = ROW_BAD;
        }
    }
done:
    ns_frameset_release(&fs);
    free(rows);
    free(clips);
    return st;
}

/* ---- conflicts ---------------------------------------------------------------- */

static const ns_catalog_clip *g_clips; /* for the qsort comparator only */

static int cmp_pend(const void *a, const void *b)
{
    const pend *x = a, *y = b;
    int c = strcmp(g_clips[x->clip].sha256, g_clips[y->clip].sha256);
    if (c)
        return c;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static void conflict_msg(importer *im, const pend *p, const char *was, const char *where,
                         const char *why)
{
    char a[4 * SHOW + 8], b[4 * SHOW + 8];
    ns_text_show(a, sizeof a, was, SHOW);
    ns_text_show(b, sizeof b, im->classes[p->cls], SHOW);
    ns_warn(&im->rep->problems, "'%s' %s %u: frame %u of clip %.12s is labelled '%s' %s, this "
            "row says '%s': %s", im->files[p->file], im->file_json[p->file] ? "task" : "line",
            (unsigned)p->line, (unsigned)p->index,
            g_clips[p->clip].sha256, a, where, b, why);
}

static const char *rule_outcome(ns_conflict_rule r)
{
    return r == NS_CONFLICT_FAIL    ? "left out (--on-conflict fail)"
           : r == NS_CONFLICT_KEEP  ? "the earlier label is kept (--on-conflict keep)"
                                    : "replaced (--on-conflict replace)";
}

/* Orders the OK rows, settles repeats inside the import and conflicts with
 * the store's labels; rows that stay ROW_OK form the new set. */
static ns_status reconcile(importer *im, const ns_labelmap *cur)
{
    size_t n_clips = 0;
    const ns_conflict_rule rule = im->o->on_conflict;
    g_clips = ns_store_clips(im->s, &n_clips);
    size_t k = 0;
    for (size_t i = 0; i < im->n; i++)
        if (im->rows[i].state == ROW_OK)
            im->rows[k++] = im->rows[i];
    im->n = k;
    if (im->n > 1)
        qsort(im->rows, im->n, sizeof *im->rows, cmp_pend);
    for (size_t i0 = 0, i1; i0 < im->n; i0 = i1) {
        pend *first = &im->rows[i0];
        int same = 1;
        for (i1 = i0 + 1; i1 < im->n && im->rows[i1].clip == first->clip &&
                          im->rows[i1].index == first->index;
             i1++)
            same &= im->rows[i1].cls == first->cls;
        /* One row per frame survives the import's own repeats. */
        size_t keep = i1 - 1;
        if (!same) {
            im->rep->conflicts++;
            for (size_t j = i0 + 1; j < i1; j++)
                if (im->rows[j].cls != first->cls) {
                    char where[600];
                    snprintf(where, sizeof where, "by %s %u of '%s'",
                             im->file_json[first->file] ? "task" : "line",
                             (unsigned)first->line, im->files[first->file]);
                    conflict_msg(im, &im->rows[j], im->classes[first->cls], where,
                                 rule_outcome(rule));
                }
            if (rule == NS_CONFLICT_FAIL) {
                for (size_t j = i0; j < i1; j++)
                    im->rows[j].state = ROW_DROPPED;
                im->rep->conflicts_refused++;
                continue;
            }
            keep = rule == NS_CONFLICT_KEEP ? i0 : i1 - 1;
        }
        for (size_t j = i0; j < i1; j++)
            if (j != keep) {
                im->rows[j].state = ROW_DROPPED;
                if (same)
                    im->rep->unchanged++;
            }
        pend *p = &im->rows[keep];
        int32_t now = ns_labels_find(cur, g_clips[p->clip].sha256, p->index);
        if (now < 0)
            continue;
        if (strcmp(cur->classes[now], im->classes[p->cls]) == 0) {
            p->state = ROW_DROPPED;
            im->rep->unchanged++;
            continue;
        }
        im->rep->conflicts++;
        conflict_msg(im, p, cur->classes[now], "in the store", rule_outcome(rule));
        if (rule != NS_CONFLICT_REPLACE) {
            p->state = ROW_DROPPED;
            im->rep->conflicts_refused += rule == NS_CONFLICT_FAIL;
        }
    }
    return NS_OK;
}

/* ---- the import --------------------------------------------------------------- */

static ns_status parse_columns(importer *im, const char *spec, char *buf, size_t cap)
{
    if (!spec || !*spec)
        return NS_OK;
    if (strlen(spec) >= cap)
        return ns_error(NS_ERR_USAGE, "--columns is too long");
    memcpy(buf, spec, strlen(spec) + 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        int c;
        if (!eq || eq == tok || !eq[1])
            return ns_error(NS_ERR_USAGE, "--columns: '%.40s' is not OURS=THEIRS", tok);
        *eq = '\0';
        for (c = 0; c < COL_N && strcmp(col_names[c], tok) != 0; c++)
            ;
        if (c == COL_N)
            return ns_error(NS_ERR_USAGE, "--columns: unknown column '%.40s' (clip, frame, "
                            "label, annotator, time, confidence)", tok);
        im->map[c] = eq + 1;
    }
    return NS_OK;
}

/* The rows left ROW_OK, in order, as the new set. */
static ns_status build_set(importer *im, ns_labelset *set)
{
    ns_status st;
    size_t n = 0, n_cls = 0;
    int32_t *remap = malloc((im->n_classes ? im->n_classes : 1) * sizeof *remap);
    ns_strbuf src = {0};
    if (!remap)
        return ns_error(NS_ERR_NOMEM, "out of memory building the label set");
    for (size_t c = 0; c < im->n_classes; c++)
        remap[c] = -1;
    for (size_t i = 0; i < im->n; i++)
        if (im->rows[i].state == ROW_OK) {
            n++;
            if (remap[im->rows[i].cls] < 0)
                remap[im->rows[i].cls] = (int32_t)n_cls++;
        }
    if ((st = ns_labelset_alloc(set, n, n_cls)) != NS_OK)
        goto done;
    snprintf(set->name, sizeof set->name, "%s", im->o->set_name);
    snprintf(set->on_conflict, sizeof set->on_conflict, "%s",
             ns_conflict_rule_name(im->o->on_conflict));
    for (size_t c = 0; c < im->n_classes; c++)
        if (remap[c] >= 0)
            memcpy(set->classes[remap[c]], im->classes[c], NS_LABEL_LEN);
    size_t k = 0;
    for (size_t i = 0; i < im->n; i++) {
        const pend *p = &im->rows[i];
        if (p->state != ROW_OK)
            continue;
        memcpy(set->clip[k], g_clips[p->clip].sha256, NS_SHA256_HEX);
        set->index[k] = p->index;
        set->cls[k] = remap[p->cls];
        snprintf(set->annotator[k], NS_ANNOTATOR_LEN, "%s", arena_str(im, p->ann));
        set->time[k] = p->time;
        set->confidence[k] = p->conf;
        k++;
    }
    for (size_t f = 0; f < im->rep->files; f++)
        ns_strbuf_printf(&src, "%s%s", f ? "\n" : "", im->files[f]);
    if ((st = ns_strbuf_status(&src)) != NS_OK)
        goto done;
    set->sources = src.data ? src.data : strdup("");
    src.data = NULL;
    if (!set->sources)
        st = ns_error(NS_ERR_NOMEM, "out of memory building the label set");
done:
    ns_strbuf_release(&src);
    free(remap);
    return st;
}

ns_status ns_labels_import(ns_store *s, const ns_labels_import_opts *o, const char *const *files,
                           size_t n_files, ns_labels_import_report *rep)
{
    ns_status st = NS_OK;
    importer im;
    ns_labelmap cur;
    ns_labelset set;
    char colbuf[1024];
    memset(&im, 0, sizeof im);
    memset(&cur, 0, sizeof cur);
    memset(&set, 0, sizeof set);
    memset(rep, 0, sizeof *rep);
    im.s = s;
    im.o = o;
    im.rep = rep;
    im.files = files;
    if (n_files == 0 || n_files > UINT32_MAX)
        return ns_error(NS_ERR_USAGE, "labels import: no input files");
    snprintf(set.name, sizeof set.name, "%s", o->set_name ? o->set_name : "");
    if (!o->set_name || strlen(o->set_name) >= NS_LABELSET_NAME_LEN)
        return ns_error(NS_ERR_USAGE, "--set must be 1 to %d characters",
                        NS_LABELSET_NAME_LEN - 1);
    if ((st = parse_columns(&im, o->columns, colbuf, sizeof colbuf)) != NS_OK)
        return st;
    /* Read the current labels first: a damaged set stops the import before
     * anything is parsed, let alone written. */
    if ((st = ns_labels_load(s, NULL, &cur)) != NS_OK ||
        (st = ns_clipref_create(s, &im.refs)) != NS_OK)
        goto done;
    im.file_json = calloc(n_files, 1);
    if (!(im.file_bad = calloc(n_files, sizeof *im.file_bad)) || !im.file_json) {
        st = ns_error(NS_ERR_NOMEM, "out of memory importing labels");
        goto done;
    }
    for (size_t f = 0; f < n_files && im.fatal == NS_OK; f++)
        read_file(&im, (uint32_t)f);
    if ((st = im.fatal) != NS_OK)
        goto done;
    if ((st = resolve_frames(&im)) != NS_OK)
        goto done;
    if (o->strict) {
        for (size_t f = 0; f < n_files; f++) {
            if (!im.file_bad[f])
                continue;
            ns_warn(&rep->problems, "'%s': %zu bad row%s; --strict leaves the whole file out",
                    files[f], im.file_bad[f], im.file_bad[f] == 1 ? "" : "s");
            rep->files_rejected++;
            for (size_t i = 0; i < im.n; i++)
                if (im.rows[i].file == f)
                    im.rows[i].state = ROW_DROPPED;
        }
    }
    if ((st = reconcile(&im, &cur)) != NS_OK || (st = build_set(&im, &set)) != NS_OK)
        goto done;
    rep->imported = set.n;
    if (set.n > 0) {
        if ((st = ns_labelset_commit(s, &set)) != NS_OK)
            goto done;
        snprintf(rep->set, sizeof rep->set, "%s@%u", set.name, set.version);
    }
done:
    ns_labelset_release(&set);
    ns_labels_release(&cur);
    ns_clipref_free(im.refs);
    ns_strbuf_release(&im.arena);
    free(im.rows);
    free(im.classes);
    free(im.file_bad);
    free(im.file_json);
    return st;
}
