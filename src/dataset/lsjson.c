/* lsjson.c -- a strict, bounded JSON reader for Label Studio exports
 * (dataset_internal.h).  Each task is parsed into a small tree that is
 * reused for the next, so memory follows the largest task, not the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

#define MAX_DEPTH 32
#define MAX_STRING (64 * 1024)
#define MAX_NODES (1 << 20) /* per task */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode {
    int type;
    int first, next; /* children (arrays, objects) and siblings; -1 none */
    size_t key;      /* text offset of the member name; (size_t)-1 in arrays */
    size_t str;      /* text offset: string value, number as written, "true"/"false" */
} jnode;

typedef struct jparser {
    const char *p, *end, *name;
    size_t line;
    jnode *nodes;
    size_t n_nodes, cap_nodes;
    char *text;
    size_t n_text, cap_text;
    char err[160];
} jparser;

static int fail(jparser *j, const char *what)
{
    if (!j->err[0])
        snprintf(j->err, sizeof j->err, "%s", what);
    return -1;
}

static void skip_ws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->line += *j->p == '\n';
        j->p++;
    }
}

static int put_text(jparser *j, const char *s, size_t n)
{
    if (j->n_text + n + 1 > j->cap_text) {
        size_t cap = j->cap_text ? j->cap_text : 4096;
        while (cap < j->n_text + n + 1)
            cap *= 2;
        char *g = realloc(j->text, cap);
        if (!g)
            return fail(j, "out of memory");
        j->text = g;
        j->cap_text = cap;
    }
    memcpy(j->text + j->n_text, s, n);
    j->n_text += n;
    j->text[j->n_text] = '\0';
    return 0;
}

static int new_node(jparser *j, int type, size_t key)
{
    if (j->n_nodes == j->cap_nodes) {
        if (j->cap_nodes >= MAX_NODES)
            return fail(j, "a task with more than a million JSON values");
        size_t cap = j->cap_nodes ? 2 * j->cap_nodes : 256;
        jnode *g = realloc(j->nodes, cap * sizeof *g);
        if (!g)
            return fail(j, "out of memory");
        j->nodes = g;
        j->cap_nodes = cap;
    }
    j->nodes[j->n_nodes] = (jnode){type, -1, -1, key, 0};
    return (int)j->n_nodes++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* A string literal at j->p, unescaped into the text arena; its offset. */
static int parse_string(jparser *j, size_t *off)
{
    size_t start = j->n_text;
    j->p++; /* opening quote */
    for (;;) {
        if (j->p >= j->end)
            return fail(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (j->n_text - start > MAX_STRING)
            return fail(j, "a string longer than 64 KiB");
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return fail(j, "a control character inside a string");
        if (c != '\\') {
            if (put_text(j, j->p++, 1) < 0)
                return -1;
            continue;
        }
        if (j->end - j->p < 2)
            return fail(j, "unterminated escape");
        char e = j->p[1], out[4];
        size_t n = 1;
        j->p += 2;
        switch (e) {
        case '"': out[0] = '"'; break;
        case '\\': out[0] = '\\'; break;
        case '/': out[0] = '/'; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            unsigned u, lo;
            if (j->end - j->p < 4 || hex4(j->p, &u) < 0)
                return fail(j, "bad \\u escape");
            j->p += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    hex4(j->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(j, "unpaired surrogate in a \\u escape");
                j->p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                return fail(j, "unpaired surrogate in a \\u escape");
            }
            if (u == 0)
                return fail(j, "a NUL character (\\u0000) in a string");
            if (u < 0x80) { out[0] = (char)u; n = 1; }
            else if (u < 0x800) { out[0] = (char)(0xC0 | (u >> 6)); out[1] = (char)(0x80 | (u & 0x3F)); n = 2; }
            else if (u < 0x10000) { out[0] = (char)(0xE0 | (u >> 12)); out[1] = (char)(0x80 | ((u >> 6) & 0x3F)); out[2] = (char)(0x80 | (u & 0x3F)); n = 3; }
            else { out[0] = (char)(0xF0 | (u >> 18)); out[1] = (char)(0x80 | ((u >> 12) & 0x3F)); out[2] = (char)(0x80 | ((u >> 6) & 0x3F)); out[3] = (char)(0x80 | (u & 0x3F)); n = 4; }
            break;
        }
        default:
            return fail(j, "bad escape in a string");
        }
        if (put_text(j, out, n) < 0)
            return -1;
    }
    *off = start;
    return put_text(j, "", 1) < 0 ? -1 : 0; /* the NUL, counted */
}

static int parse_value(jparser *j, int depth, size_t key);

static int parse_container(jparser *j, int depth, size_t key, int obj)
{
    int self = new_node(j, obj ? J_OBJ : J_ARR, key), last = -1;
    if (self < 0)
        return -1;
    if (depth >= MAX_DEPTH)
        return fail(j, "JSON nested deeper than 32 levels");
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
        j->p++;
        return self;
    }
    for (;;) {
        size_t k = (size_t)-1;
        skip_ws(j);
        if (obj) {
            if (j->p >= j->end || *j->p != '"')
                return fail(j, "expected a member name");
            if (parse_string(j, &k) < 0)
                return -1;
            skip_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return fail(j, "expected ':'");
            j->p++;
        }
        int child = parse_value(j, depth + 1, k);
        if (child < 0)
            return -1;
        if (last < 0)
            j->nodes[self].first = child;
        else
            j->nodes[last].next = child;
        last = child;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            return self;
        }
        return fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(jparser *j, int depth, size_t key)
{
    int id;
    skip_ws(j);
    if (j->p >= j->end)
        return fail(j, "unexpected end of file");
    char c = *j->p;
    if (c == '{' || c == '[')
        return parse_container(j, depth, key, c == '{');
    if (c == '"') {
        size_t off;
        if ((id = new_node(j, J_STR, key)) < 0 || parse_string(j, &off) < 0)
            return -1;
        j->nodes[id].str = off;
        return id;
    }
    static const struct { const char *w; int type; } words[] = {
        {"true", J_BOOL}, {"false", J_BOOL}, {"null", J_NULL}};
    for (size_t w = 0; w < 3; w++) {
        size_t n = strlen(words[w].w);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[w].w, n) == 0) {
            if ((id = new_node(j, words[w].type, key)) < 0)
                return -1;
            j->nodes[id].str = j->n_text;
            if (put_text(j, words[w].w, n + 1) < 0)
                return -1;
            j->p += n;
            return id;
        }
    }
    /* Number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *s = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return fail(j, "unexpected character");
    if (*j->p == '0')
        j->p++;
    else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return fail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return fail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p - s > 64)
        return fail(j, "a number longer than 64 characters");
    if ((id = new_node(j, J_NUM, key)) < 0)
        return -1;
    j->nodes[id].str = j->n_text;
    if (put_text(j, s, (size_t)(j->p - s)) < 0 || put_text(j, "", 1) < 0)
        return -1;
    return id;
}

/* ---- reading a task ---------------------------------------------------------- */

static int member(const jparser *j, int obj, const char *name)
{
    if (obj < 0 || j->nodes[obj].type != J_OBJ)
        return -1;
    for (int c = j->nodes[obj].first; c >= 0; c = j->nodes[c].next)
        if (strcmp(j->text + j->nodes[c].key, name) == 0)
            return c;
    return -1;
}

static int element(const jparser *j, int arr, int i)
{
    if (arr < 0 || j->nodes[arr].type != J_ARR)
        return -1;
    int c = j->nodes[arr].first;
    while (c >= 0 && i-- > 0)
        c = j->nodes[c].next;
    return c;
}

static const char *str_of(const jparser *j, int node)
{
    return node >= 0 && j->nodes[node].type == J_STR ? j->text + j->nodes[node].str : NULL;
}

/* A scalar as text: strings, numbers (as written). */
static const char *scalar_of(const jparser *j, int node)
{
    if (node < 0 || (j->nodes[node].type != J_STR && j->nodes[node].type != J_NUM))
        return NULL;
    return j->text + j->nodes[node].str;
}

static void read_task(const jparser *j, int task, ns_lstask *t)
{
    if (j->nodes[task].type != J_OBJ) {
        t->err = "not an object";
        return;
    }
    int data = member(j, task, "data");
    if (data < 0 || j->nodes[data].type != J_OBJ) {
        t->err = "no \"data\" object";
        return;
    }
    t->clip = str_of(j, member(j, data, "clip"));
    t->frame = scalar_of(j, member(j, data, "frame"));
    if (!t->clip || !t->frame) {
        t->err = "\"data\" has no \"clip\" string or \"frame\" (as exported by nightshift)";
        return;
    }
    int anns = member(j, task, "annotations"), ann = -1;
    for (int i = 0;; i++) {
        int a = element(j, anns, i);
        if (a < 0)
            break;
        int cancelled = member(j, a, "was_cancelled");
        if (cancelled >= 0 && j->nodes[cancelled].type == J_BOOL &&
            strcmp(j->text + j->nodes[cancelled].str, "true") == 0)
            continue;
        ann = a;
        break;
    }
    if (ann < 0) {
        t->err = "no annotation (not labelled yet, or every annotation cancelled)";
        return;
    }
    int results = member(j, ann, "result");
    for (int i = 0; !t->label; i++) {
        int r = element(j, results, i);
        if (r < 0)
            break;
        int choices = member(j, member(j, r, "value"), "choices");
        t->label = str_of(j, element(j, choices, 0));
    }
    if (!t->label) {
        t->err = "the annotation has no choice (a \"choices\" result)";
        return;
    }
    int by = member(j, ann, "completed_by");
    t->annotator = scalar_of(j, by);
    if (!t->annotator)
        t->annotator = str_of(j, member(j, by, "email"));
    t->time = str_of(j, member(j, ann, "updated_at"));
    if (!t->time)
        t->time = str_of(j, member(j, ann, "created_at"));
}

ns_status ns_lsjson_parse(const char *text, size_t len, const char *name, ns_lstask_fn fn,
                          void *ctx)
{
    ns_status st = NS_OK;
    jparser j;
    memset(&j, 0, sizeof j);
    j.p = text;
    j.end = text + len;
    j.name = name;
    j.line = 1;
    if (memchr(text, '\0', len)) {
        const char *z = memchr(text, '\0', len);
        size_t line = 1;
        for (const char *q = text; q < z; q++)
            line += *q == '\n';
        return ns_error(NS_ERR_FORMAT, "'%s' line %zu: a NUL byte in JSON", name, line);
    }
    skip_ws(&j);
    if (j.p >= j.end || *j.p != '[')
        return ns_error(NS_ERR_FORMAT, "'%s': not a JSON array of tasks", name);
    j.p++;
    skip_ws(&j);
    if (j.p < j.end && *j.p == ']') {
        j.p++;
    } else {
        for (size_t number = 1;; number++) {
            ns_lstask t;
            memset(&t, 0, sizeof t);
            j.n_nodes = j.n_text = 0;
            skip_ws(&j);
            t.number = number;
            t.line = j.line;
            int task = parse_value(&j, 1, (size_t)-1);
            if (task < 0) {
                st = ns_error(NS_ERR_FORMAT, "'%s' line %zu: invalid JSON in task %zu: %s", name,
                              j.line, number, j.err);
                goto done;
            }
            read_task(&j, task, &t);
            fn(ctx, &t);
            skip_ws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p < j.end && *j.p == ']') {
                j.p++;
                break;
            }
            st = ns_error(NS_ERR_FORMAT, "'%s' line %zu: expected ',' or ']' after task %zu",
                          name, j.line, number);
            goto done;
        }
    }
    skip_ws(&j);
    if (j.p != j.end)
        st = ns_error(NS_ERR_FORMAT, "'%s' line %zu: text after the end of the array", name,
                      j.line);
done:
    free(j.nodes);
    free(j.text);
    return st;
}
