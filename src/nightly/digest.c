/* digest.c -- the ids a run manifest records for inputs and outputs, and the
 * summaries of the stage commands read back. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nightshift/nightly.h"
#include "yaml.h"

ns_status ns_nightly_file_sha(const char *path, char hex[NS_SHA256_HEX])
{
    uint8_t d[NS_SHA256_LEN];
    ns_status st = ns_sha256_file(path, d);
    if (st == NS_OK)
        ns_sha256_hex(d, hex);
    return st;
}

void ns_nightly_strings_sha(const char *const *parts, size_t n, char hex[NS_SHA256_HEX])
{
    ns_sha256 h;
    uint8_t d[NS_SHA256_LEN];
    ns_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        const char *p = parts[i] ? parts[i] : "";
        ns_sha256_update(&h, p, strlen(p) + 1);
    }
    ns_sha256_final(&h, d);
    ns_sha256_hex(d, hex);
}

typedef struct listing {
    char **names;
    size_t n, cap;
    ns_sha256 h;
} listing;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects relative paths of regular files under root/rel. */
static ns_status walk(const char *root, const char *rel, listing *l)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    struct dirent *e;
    ns_status st = NS_OK;
    if (!d)
        return ns_error(NS_ERR_IO, "cannot read directory '%s': %s", path, strerror(errno));
    while (st == NS_OK && (e = readdir(d)) != NULL) {
        char sub[PATH_MAX], full[PATH_MAX + 2];
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
            sizeof sub)
            continue;
        if ((size_t)snprintf(full, sizeof full, "%s/%s", root, sub) >= sizeof full)
            continue;
        if (stat(full, &sb) != 0)
            continue; /* vanished or a dangling link: not an input */
        if (S_ISDIR(sb.st_mode)) {
            st = walk(root, sub, l);
        } else if (S_ISREG(sb.st_mode)) {
            if (l->n == l->cap) {
                size_t nc = l->cap ? 2 * l->cap : 64;
                char **nn = realloc(l->names, nc * sizeof *nn);
                if (!nn) {
                    st = ns_error(NS_ERR_NOMEM, "out of memory listing '%s'", root);
                    break;
                }
                l->names = nn;
                l->cap = nc;
            }
            if (!(l->names[l->n] = strdup(sub)))
                st = ns_error(NS_ERR_NOMEM, "out of memory listing '%s'", root);
            else
                l->n++;
        }
    }
    closedir(d);
    return st;
}

static void add_entry(ns_sha256 *h, const char *name, const struct stat *sb)
{
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%lld %lld.%09ld", (long long)sb->st_size,
                     (long long)sb->st_mtim.tv_sec, (long)sb->st_mtim.tv_nsec);
    ns_sha256_update(h, name, strlen(name) + 1);
    ns_sha256_update(h, buf, (size_t)n + 1);
}

ns_status ns_nightly_tree_digest(const char *dir, char hex[NS_SHA256_HEX], size_t *n_files)
{
    listing l;
    struct stat sb;
    uint8_t d[NS_SHA256_LEN];
    ns_status st = NS_OK;
    memset(&l, 0, sizeof l);
    ns_sha256_init(&l.h);
    *n_files = 0;
    if (stat(dir, &sb) != 0)
        return ns_error(errno == ENOENT ? NS_ERR_NOT_FOUND : NS_ERR_IO, "cannot read '%s': %s",
                        dir, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        add_entry(&l.h, "", &sb);
        *n_files = 1;
        goto out;
    }
    if ((st = walk(dir, "", &l)) != NS_OK)
        goto done;
    qsort(l.names, l.n, sizeof *l.names, cmp_str);
    for (size_t i = 0; i < l.n; i++) {
        char full[2 * PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", dir, l.names[i]);
        if (stat(full, &sb) == 0)
            add_entry(&l.h, l.names[i], &sb);
    }
    *n_files = l.n;
out:
    ns_sha256_final(&l.h, d);
    ns_sha256_hex(d, hex);
done:
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    return st;
}

/* ---- the stage commands' summaries ------------------------------------------ */

#define OPT CYAML_FLAG_OPTIONAL
#define STR(key, st, m) \
    CYAML_FIELD_STRING_PTR(key, OPT | CYAML_FLAG_POINTER_NULL_STR, st, m, 0, CYAML_UNLIMITED)

typedef struct raw_counts {
    char *seen, *stored, *tonight;
} raw_counts;

static const cyaml_schema_field_t counts_fields[] = {
    STR("seen", raw_counts, seen), STR("stored", raw_counts, stored),
    STR("tonight", raw_counts, tonight), CYAML_FIELD_END};

typedef struct raw_ingest_sum {
    char *format, *status, *inputs;
    raw_counts *frames;
} raw_ingest_sum;

static const cyaml_schema_field_t ingest_fields[] = {
    STR("ns_format", raw_ingest_sum, format), STR("status", raw_ingest_sum, status),
    STR("inputs", raw_ingest_sum, inputs),
    CYAML_FIELD_MAPPING_PTR("frames", OPT, raw_ingest_sum, frames, counts_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t ingest_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_ingest_sum, ingest_fields)};

typedef struct raw_detect_sum {
    char *format, *night, *verdict, *p_value, *mmd2, *novel_frames, *conditions,
        *novel_conditions;
    raw_counts *clips, *frames;
} raw_detect_sum;

static const cyaml_schema_field_t detect_fields[] = {
    STR("format", raw_detect_sum, format),
    STR("night", raw_detect_sum, night),
    STR("verdict", raw_detect_sum, verdict),
    STR("p_value", raw_detect_sum, p_value),
    STR("mmd2", raw_detect_sum, mmd2),
    STR("novel_frames", raw_detect_sum, novel_frames),
    STR("conditions", raw_detect_sum, conditions),
    STR("novel_conditions", raw_detect_sum, novel_conditions),
    CYAML_FIELD_MAPPING_PTR("clips", OPT, raw_detect_sum, clips, counts_fields),
    CYAML_FIELD_MAPPING_PTR("frames", OPT, raw_detect_sum, frames, counts_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t detect_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_detect_sum, detect_fields)};

static uint64_t u64(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

static double num(const char *s)
{
    char *end;
    if (!s)
        return NAN;
    double v = strtod(s, &end);
    return end == s ? NAN : v;
}

ns_status ns_ingest_brief_read(const char *path, ns_ingest_brief *out)
{
    raw_ingest_sum *r = NULL;
    ns_status st = ns_yaml_load(path, &ingest_schema, (void **)&r, 1, NS_ERR_FORMAT);
    memset(out, 0, sizeof *out);
    if (st != NS_OK)
        return st;
    if (!r || !r->format || strcmp(r->format, "nightshift-ingest-summary") != 0) {
        st = ns_error(NS_ERR_FORMAT, "'%s' is not an ingest summary", path);
        goto done;
    }
    snprintf(out->status, sizeof out->status, "%s", r->status ? r->status : "");
    out->inputs = u64(r->inputs);
    if (r->frames) {
        out->frames_seen = u64(r->frames->seen);
        out->frames_stored = u64(r->frames->stored);
    }
done:
    ns_yaml_free(&ingest_schema, r);
    return st;
}

ns_status ns_detect_brief_read(const char *path, ns_detect_brief *out)
{
    raw_detect_sum *r = NULL;
    ns_status st = ns_yaml_load(path, &detect_schema, (void **)&r, 1, NS_ERR_FORMAT);
    memset(out, 0, sizeof *out);
    if (st != NS_OK)
        return st;
    if (!r || !r->format || strcmp(r->format, "nightshift-detect-summary") != 0 || !r->verdict) {
        st = ns_error(NS_ERR_FORMAT, "'%s' is not a detect summary", path);
        goto done;
    }
    snprintf(out->night, sizeof out->night, "%s", r->night ? r->night : "");
    snprintf(out->verdict, sizeof out->verdict, "%s", r->verdict);
    out->shift = strcmp(r->verdict, "shift") == 0;
    out->p_value = num(r->p_value);
    out->mmd2 = num(r->mmd2);
    out->novel_frames = u64(r->novel_frames);
    out->conditions = u64(r->conditions);
    out->novel_conditions = u64(r->novel_conditions);
    out->clips = r->clips ? u64(r->clips->tonight) : 0;
    out->frames = r->frames ? u64(r->frames->tonight) : 0;
done:
    ns_yaml_free(&detect_schema, r);
    return st;
}

typedef struct raw_gate_sum {
    char *format, *verdict;
} raw_gate_sum;

static const cyaml_schema_field_t gate_fields[] = {
    STR("format", raw_gate_sum, format), STR("verdict", raw_gate_sum, verdict), CYAML_FIELD_END};
static const cyaml_schema_value_t gate_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_gate_sum, gate_fields)};

ns_status ns_gate_verdict_read(const char *path, char verdict[16])
{
    raw_gate_sum *r = NULL;
    ns_status st = ns_yaml_load(path, &gate_schema, (void **)&r, 1, NS_ERR_FORMAT);
    verdict[0] = '\0';
    if (st != NS_OK)
        return st;
    if (!r || !r->format || strcmp(r->format, "nightshift-gate-summary") != 0 || !r->verdict)
        st = ns_error(NS_ERR_FORMAT, "'%s' is not a gate summary", path);
    else
        snprintf(verdict, 16, "%s", r->verdict);
    ns_yaml_free(&gate_schema, r);
    return st;
}
