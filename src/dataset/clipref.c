/* clipref.c -- resolve the many ways a label file names a clip. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "nightshift/strbuf.h"

typedef struct named {
    const char *key; /* hex SHA-256, source, or file name */
    size_t row;
} named;

struct ns_clipref_index {
    ns_store *s;
    named *by_sha;     /* (n) sorted by key */
    named *by_source;  /* (n) sorted, built on first use */
    named *by_base;    /* (n) file names, sorted */
    char *sources;     /* one arena holding every source */
    size_t n;
};

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

ns_status ns_clipref_create(ns_store *s, ns_clipref_index **out)
{
    size_t n = 0;
    const ns_catalog_clip *clips = ns_store_clips(s, &n);
    ns_clipref_index *x = calloc(1, sizeof *x);
    *out = NULL;
    if (!x || !(x->by_sha = malloc((n ? n : 1) * sizeof *x->by_sha))) {
        free(x);
        return ns_error(NS_ERR_NOMEM, "no memory to index %zu clips", n);
    }
    x->s = s;
    x->n = n;
    for (size_t i = 0; i < n; i++)
        x->by_sha[i] = (named){clips[i].sha256, i};
    qsort(x->by_sha, n, sizeof *x->by_sha, cmp_named);
    *out = x;
    return NS_OK;
}

void ns_clipref_free(ns_clipref_index *x)
{
    if (!x)
        return;
    free(x->by_sha);
    free(x->by_source);
    free(x->by_base);
    free(x->sources);
    free(x);
}

static const char *base_name(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

/* Sources live in the shards' clip tables: read only when a row names a
 * clip by path. */
static ns_status build_paths(ns_clipref_index *x)
{
    size_t total = 0, off = 0;
    ns_clip_record rec;
    ns_status st;
    x->by_source = malloc((x->n ? x->n : 1) * sizeof *x->by_source);
    x->by_base = malloc((x->n ? x->n : 1) * sizeof *x->by_base);
    size_t *len = malloc((x->n ? x->n : 1) * sizeof *len);
    if (!x->by_source || !x->by_base || !len) {
        free(len);
        return ns_error(NS_ERR_NOMEM, "no memory to index clip sources");
    }
    /* Two passes keep one arena: lengths, then the text. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < x->n; i++) {
            if ((st = ns_store_clip_record(x->s, i, &rec)) != NS_OK) {
                free(len);
                return st;
            }
            rec.source[NS_SOURCE_LEN - 1] = '\0';
            if (pass == 0) {
                len[i] = strlen(rec.source) + 1;
                total += len[i];
                continue;
            }
            memcpy(x->sources + off, rec.source, len[i]);
            x->by_source[i] = (named){x->sources + off, i};
            x->by_base[i] = (named){base_name(x->sources + off), i};
            off += len[i];
        }
        if (pass == 0 && !(x->sources = malloc(total ? total : 1))) {
            free(len);
            return ns_error(NS_ERR_NOMEM, "no memory to index clip sources");
        }
    }
    free(len);
    qsort(x->by_source, x->n, sizeof *x->by_source, cmp_named);
    qsort(x->by_base, x->n, sizeof *x->by_base, cmp_named);
    return NS_OK;
}

/* First element of v (sorted) whose key does not sort before key, comparing
 * only the first len bytes when len > 0. */
static size_t lower(const named *v, size_t n, const char *key, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = len ? strncmp(v[mid].key, key, len) : strcmp(v[mid].key, key);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int is_hex_ref(const char *t, char *lower_out)
{
    size_t n = strlen(t);
    if (n < NS_CLIPREF_MIN_PREFIX || n > NS_SHA256_HEX - 1)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)t[i]))
            return 0;
        lower_out[i] = (char)tolower((unsigned char)t[i]);
    }
    lower_out[n] = '\0';
    return 1;
}

/* Does source end with text at a path boundary? */
static int tail_match(const char *source, const char *text)
{
    size_t ls = strlen(source), lt = strlen(text);
    if (lt > ls || strcmp(source + ls - lt, text) != 0)
        return 0;
    return lt == ls || source[ls - lt - 1] == '/';
}

int ns_clipref_resolve(ns_clipref_index *x, const char *text, size_t *row, size_t *n_match)
{
    char hex[NS_SHA256_HEX];
    size_t i, k, hits = 0;
    *n_match = 0;
    if (is_hex_ref(text, hex)) {
        size_t len = strlen(hex);
        for (i = k = lower(x->by_sha, x->n, hex, len);
             k < x->n && strncmp(x->by_sha[k].key, hex, len) == 0; k++)
            hits++;
        if (hits >= 1) {
            *row = x->by_sha[i].row;
            *n_match = hits;
            return hits == 1 ? NS_CLIPREF_OK : NS_CLIPREF_AMBIGUOUS;
        }
    }
    if (!x->by_source && build_paths(x) != NS_OK)
        return -1;
    for (i = k = lower(x->by_source, x->n, text, 0);
         k < x->n && strcmp(x->by_source[k].key, text) == 0; k++)
        hits++;
    if (hits >= 1) {
        *row = x->by_source[i].row;
        *n_match = hits;
        return hits == 1 ? NS_CLIPREF_OK : NS_CLIPREF_AMBIGUOUS;
    }
    /* A relative path or a bare file name: candidates share the file name. */
    const char *base = base_name(text);
    if (!base[0])
        return NS_CLIPREF_UNKNOWN;
    for (k = lower(x->by_base, x->n, base, 0);
         k < x->n && strcmp(x->by_base[k].key, base) == 0; k++) {
        size_t r = x->by_base[k].row;
        /* by_base keys point into the source they were cut from. */
        const char *full = x->by_base[k].key;
        while (full > x->sources && full[-1] != '\0')
            full--;
        if (tail_match(full, text)) {
            if (hits++ == 0)
                *row = r;
        }
    }
    *n_match = hits;
    if (hits == 0)
        return NS_CLIPREF_UNKNOWN;
    return hits == 1 ? NS_CLIPREF_OK : NS_CLIPREF_AMBIGUOUS;
}
