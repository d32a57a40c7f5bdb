/* labelfile.c -- label set files in STORE/labels/ (format in docs/labels.md). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "nightshift/labels.h"
#include "store_internal.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

#define MAX_VERSION 999999u
#define MAX_CLASSES 65536u
#define SOURCES_MAX 4000

static int valid_set_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len >= NS_LABELSET_NAME_LEN)
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return n[0] != '.';
}

static int valid_hex64(const char *h)
{
    for (int i = 0; i < NS_SHA256_HEX - 1; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return h[NS_SHA256_HEX - 1] == '\0';
}

/* "000012-name.h5" -> 12 and name; 0 for anything else (temps included). */
static uint32_t parse_file_name(const char *fn, char name[NS_LABELSET_NAME_LEN])
{
    size_t len = strlen(fn);
    uint32_t v = 0;
    if (len < 11 || fn[6] != '-' || strcmp(fn + len - 3, ".h5") != 0)
        return 0;
    for (int i = 0; i < 6; i++) {
        if (fn[i] < '0' || fn[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(fn[i] - '0');
    }
    if (len - 10 >= NS_LABELSET_NAME_LEN)
        return 0;
    memcpy(name, fn + 7, len - 10);
    name[len - 10] = '\0';
    return valid_set_name(name) ? v : 0;
}

void ns_labelset_release(ns_labelset *set)
{
    if (!set)
        return;
    free(set->sources);
    free(set->clip);
    free(set->index);
    free(set->cls);
    free(set->annotator);
    free(set->time);
    free(set->confidence);
    free(set->classes);
    memset(set, 0, sizeof *set);
}

void ns_labelsets_free(ns_labelset *sets, size_t n)
{
    for (size_t i = 0; sets && i < n; i++)
        ns_labelset_release(&sets[i]);
    free(sets);
}

ns_status ns_labelset_alloc(ns_labelset *set, size_t n, size_t n_classes)
{
    size_t cap = n ? n : 1;
    set->n = n;
    set->n_classes = n_classes;
    set->clip = calloc(cap, sizeof *set->clip);
    set->index = calloc(cap, sizeof *set->index);
    set->cls = calloc(cap, sizeof *set->cls);
    set->annotator = calloc(cap, sizeof *set->annotator);
    set->time = calloc(cap, sizeof *set->time);
    set->confidence = calloc(cap, sizeof *set->confidence);
    set->classes = calloc(n_classes ? n_classes : 1, sizeof *set->classes);
    if (!set->clip || !set->index || !set->cls || !set->annotator || !set->time ||
        !set->confidence || !set->classes)
        return ns_error(NS_ERR_NOMEM, "no memory for a label set of %zu frames", n);
    return NS_OK;
}

/* The invariants readers rely on, checked before writing and after reading. */
static ns_status check_set(const ns_labelset *set, const char *what)
{
    if (!valid_set_name(set->name))
        return ns_error(NS_ERR_USAGE, "%s: label set name '%.80s' must be 1 to %d characters "
                        "of A-Z a-z 0-9 . _ - (not starting with '.')", what, set->name,
                        NS_LABELSET_NAME_LEN - 1);
    if (set->n_classes > MAX_CLASSES)
        return ns_error(NS_ERR_LIMIT, "%s: %zu classes, at most %u", what, set->n_classes,
                        MAX_CLASSES);
    for (size_t c = 0; c < set->n_classes; c++) {
        const char *name = set->classes[c];
        if (memchr(name, '\0', NS_LABEL_LEN) == NULL || name[0] == '\0')
            return ns_error(NS_ERR_CORRUPT, "%s: class %zu is empty or unterminated", what, c);
        for (size_t k = 0; k < c; k++)
            if (strcmp(set->classes[k], name) == 0)
                return ns_error(NS_ERR_CORRUPT, "%s: class '%.60s' is listed twice", what,
                                name);
    }
    for (size_t i = 0; i < set->n; i++) {
        if (!valid_hex64(set->clip[i]))
            return ns_error(NS_ERR_CORRUPT, "%s: row %zu: clip is not a lower-case SHA-256",
                            what, i);
        if (set->cls[i] < 0 || (size_t)set->cls[i] >= set->n_classes)
            return ns_error(NS_ERR_CORRUPT, "%s: row %zu: class %d outside 0..%zu", what, i,
                            (int)set->cls[i], set->n_classes);
        if (i > 0) {
            int c = strcmp(set->clip[i - 1], set->clip[i]);
            if (c > 0 || (c == 0 && set->index[i - 1] >= set->index[i]))
                return ns_error(NS_ERR_CORRUPT, "%s: rows %zu and %zu are not in (clip, index) "
                                "order or label the same frame", what, i - 1, i);
        }
    }
    return NS_OK;
}

/* ---- writing ------------------------------------------------------------------ */

static ns_status write_set(hid_t f, const char *tmp, void *ctx)
{
    const ns_labelset *set = ctx;
    ns_status st = NS_OK;
    int32_t ver = NS_LABELS_FORMAT_VERSION, ncls = (int32_t)set->n_classes;
    uint64_t n = set->n;
    hid_t t_cls = ns_h5_str_type(NS_LABEL_LEN), t_clip = ns_h5_str_type(NS_SHA256_HEX),
          t_ann = ns_h5_str_type(NS_ANNOTATOR_LEN);
    if (t_cls < 0 || t_clip < 0 || t_ann < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the label set types");
        goto done;
    }
    if (ns_h5_attr_str(f, "ns_format", NS_LABELS_FORMAT) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_str(f, "name", set->name) < 0 ||
        ns_h5_attr_num(f, "version", H5T_NATIVE_UINT32, &set->version) < 0 ||
        ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &set->created) < 0 ||
        ns_h5_attr_str(f, "on_conflict", set->on_conflict) < 0 ||
        ns_h5_attr_str(f, "sources", set->sources ? set->sources : "") < 0 ||
        ns_h5_attr_num(f, "n_labels", H5T_NATIVE_UINT64, &n) < 0 ||
        ns_h5_attr_num(f, "n_classes", H5T_NATIVE_INT32, &ncls) < 0 ||
        ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot write the attributes of '%s'", tmp);
        goto done;
    }
    if ((st = ns_h5_put(f, tmp, "classes", t_cls, t_cls, 1, set->n_classes, 1, set->classes)) !=
            NS_OK ||
        (st = ns_h5_put(f, tmp, "clip", t_clip, t_clip, 1, n, 1, set->clip)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "index", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, n, 1,
                        set->index)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 1, set->cls)) !=
            NS_OK ||
        (st = ns_h5_put(f, tmp, "annotator", t_ann, t_ann, 1, n, 1, set->annotator)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, n, 1, set->time)) !=
            NS_OK ||
        (st = ns_h5_put(f, tmp, "confidence", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, n, 1,
                        set->confidence)) != NS_OK)
        goto done;
done:
    if (t_cls >= 0) H5Tclose(t_cls);
    if (t_clip >= 0) H5Tclose(t_clip);
    if (t_ann >= 0) H5Tclose(t_ann);
    return st;
}

/* Highest version present in dir (0 when none); removes temps left by a
 * killed import (the caller holds the store's writer lock). */
static ns_status scan_dir(const char *dir, int sweep, uint32_t *max_version)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *max_version = 0;
    if (!d) {
        if (errno == ENOENT)
            return NS_OK;
        return ns_error(NS_ERR_IO, "cannot read '%s': %s", dir, strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        char name[NS_LABELSET_NAME_LEN], path[PATH_MAX];
        uint32_t v = parse_file_name(e->d_name, name);
        if (v > *max_version)
            *max_version = v;
        if (sweep && v == 0 && strstr(e->d_name, ".h5.tmp.") &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    }
    closedir(d);
    return NS_OK;
}

ns_status ns_labelset_commit(ns_store *s, ns_labelset *set)
{
    ns_h5_init();
    ns_status st;
    char dir[PATH_MAX], path[PATH_MAX];
    uint32_t top = 0;
    if (!s->writable)
        return ns_error(NS_ERR_USAGE, "labels: the store must be opened for writing");
    if ((st = check_set(set, "label set")) != NS_OK)
        return st;
    /* Readers take the list of sources with a bounded buffer. */
    if (set->sources && strlen(set->sources) > SOURCES_MAX) {
        memcpy(set->sources + SOURCES_MAX - 4, "\n...", 5);
    }
    if ((st = ns_store_path(s, "labels", dir, sizeof dir)) != NS_OK)
        return st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ns_error(NS_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
    if ((st = scan_dir(dir, 1, &top)) != NS_OK)
        return st;
    if (top >= MAX_VERSION)
        return ns_error(NS_ERR_LIMIT, "'%s' already holds version %u", dir, top);
    set->version = top + 1;
    if (!(set->created > 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        set->created = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    }
    if (snprintf(path, sizeof path, "%s/%06u-%s.h5", dir, set->version, set->name) >=
        (int)sizeof path)
        return ns_error(NS_ERR_USAGE, "label set path too long under '%s'", dir);
    st = ns_h5_save_atomic(path, "label set", write_set, set);
    if (st == NS_OK)
        st = ns_fsync_dir(dir);
    return st;
}

/* ---- reading ------------------------------------------------------------------ */

ns_status ns_labelset_read(const char *path, ns_labelset *out)
{
    ns_h5_init();
    ns_status st;
    ns_labelset set;
    hid_t f = H5I_INVALID_HID, t_cls = H5I_INVALID_HID, t_clip = H5I_INVALID_HID,
          t_ann = H5I_INVALID_HID;
    char buf[4096];
    uint64_t n = 0;
    int32_t ncls = 0;
    memset(&set, 0, sizeof set);
    memset(out, 0, sizeof *out);
    if ((st = ns_h5_open_read(path, "label set", &f)) != NS_OK)
        goto done;
    if ((st = ns_h5_check_format_in(f, path, NS_LABELS_FORMAT, 1, NS_LABELS_FORMAT_VERSION,
                                    NULL)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "name", set.name, sizeof set.name)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "version", H5T_NATIVE_UINT32, &set.version)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &set.created)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "on_conflict", set.on_conflict,
                                 sizeof set.on_conflict)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_labels", H5T_NATIVE_UINT64, &n)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_classes", H5T_NATIVE_INT32, &ncls)) != NS_OK ||
        (st = ns_h5_read_str_attr(f, path, "sources", buf, sizeof buf)) != NS_OK)
        goto done;
    if (ncls < 0 || (uint32_t)ncls > MAX_CLASSES || n > (uint64_t)1 << 34) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': %d classes and %llu labels is not a label set",
                      path, (int)ncls, (unsigned long long)n);
        goto done;
    }
    if (!(set.sources = strdup(buf))) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
        goto done;
    }
    if ((st = ns_labelset_alloc(&set, (size_t)n, (size_t)ncls)) != NS_OK)
        goto done;
    t_cls = ns_h5_str_type(NS_LABEL_LEN);
    t_clip = ns_h5_str_type(NS_SHA256_HEX);
    t_ann = ns_h5_str_type(NS_ANNOTATOR_LEN);
    if (t_cls < 0 || t_clip < 0 || t_ann < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the label set types");
        goto done;
    }
    if ((st = ns_h5_get(f, path, "classes", t_cls, 1, set.n_classes, 0, set.classes)) != NS_OK ||
        (st = ns_h5_get(f, path, "clip", t_clip, 1, n, 0, set.clip)) != NS_OK ||
        (st = ns_h5_get(f, path, "index", H5T_NATIVE_UINT32, 1, n, 0, set.index)) != NS_OK ||
        (st = ns_h5_get(f, path, "label", H5T_NATIVE_INT32, 1, n, 0, set.cls)) != NS_OK ||
        (st = ns_h5_get(f, path, "annotator", t_ann, 1, n, 0, set.annotator)) != NS_OK ||
        (st = ns_h5_get(f, path, "time", H5T_NATIVE_DOUBLE, 1, n, 0, set.time)) != NS_OK ||
        (st = ns_h5_get(f, path, "confidence", H5T_NATIVE_FLOAT, 1, n, 0, set.confidence)) !=
            NS_OK)
        goto done;
    for (size_t i = 0; i < set.n; i++)
        set.annotator[i][NS_ANNOTATOR_LEN - 1] = '\0';
    if ((st = check_set(&set, path)) != NS_OK) {
        st = ns_error_wrap(NS_ERR_CORRUPT, "label set");
        goto done;
    }
    *out = set;
    memset(&set, 0, sizeof set);
done:
    if (t_cls >= 0) H5Tclose(t_cls);
    if (t_clip >= 0) H5Tclose(t_clip);
    if (t_ann >= 0) H5Tclose(t_ann);
    if (f >= 0) ns_h5_fclose(f);
    ns_labelset_release(&set);
    return st;
}

static int name_listed(const char *names, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && memcmp(p, name, len) == 0)
            return 1;
        p += l + (e ? 1 : 0);
    }
    return 0;
}

typedef struct entry {
    uint32_t version;
    char name[NS_LABELSET_NAME_LEN];
} entry;

static int cmp_entry(const void *a, const void *b)
{
    uint32_t x = ((const entry *)a)->version, y = ((const entry *)b)->version;
    return x < y ? -1 : x > y;
}

ns_status ns_labelsets_read(const ns_store *s, const char *names, ns_labelset **sets, size_t *n)
{
    ns_h5_init();
    ns_status st = NS_OK;
    char dir[PATH_MAX], path[PATH_MAX];
    entry *ents = NULL;
    ns_labelset *out = NULL;
    size_t n_ents = 0, cap = 0, n_out = 0;
    DIR *d = NULL;
    struct dirent *e;
    *sets = NULL;
    *n = 0;
    if ((st = ns_store_path(s, "labels", dir, sizeof dir)) != NS_OK)
        return st;
    if (!(d = opendir(dir))) {
        if (errno == ENOENT)
            return NS_OK;
        return ns_error(NS_ERR_IO, "cannot read '%s': %s", dir, strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        entry en;
        if ((en.version = parse_file_name(e->d_name, en.name)) == 0)
            continue;
        if (names && !name_listed(names, en.name))
            continue;
        if (n_ents == cap) {
            entry *grown = realloc(ents, (cap = cap ? 2 * cap : 16) * sizeof *ents);
            if (!grown) {
                st = ns_error(NS_ERR_NOMEM, "out of memory listing '%s'", dir);
                goto done;
            }
            ents = grown;
        }
        ents[n_ents++] = en;
    }
    if (n_ents == 0)
        goto done;
    qsort(ents, n_ents, sizeof *ents, cmp_entry);
    if (!(out = calloc(n_ents, sizeof *out))) {
        st = ns_error(NS_ERR_NOMEM, "out of memory reading '%s'", dir);
        goto done;
    }
    for (size_t i = 0; i < n_ents; i++) {
        if (i > 0 && ents[i].version == ents[i - 1].version) {
            st = ns_error(NS_ERR_CORRUPT, "'%s' holds two label sets of version %06u", dir,
                          ents[i].version);
            goto done;
        }
        if (snprintf(path, sizeof path, "%s/%06u-%s.h5", dir, ents[i].version, ents[i].name) >=
            (int)sizeof path) {
            st = ns_error(NS_ERR_IO, "label set path too long under '%s'", dir);
            goto done;
        }
        if ((st = ns_labelset_read(path, &out[n_out])) != NS_OK)
            goto done;
        n_out++;
        if (out[n_out - 1].version != ents[i].version ||
            strcmp(out[n_out - 1].name, ents[i].name) != 0) {
            st = ns_error(NS_ERR_CORRUPT, "'%s' says it is %s@%u", path, out[n_out - 1].name,
                          out[n_out - 1].version);
            goto done;
        }
    }
    *sets = out;
    *n = n_out;
    out = NULL;
done:
    if (d)
        closedir(d);
    free(ents);
    ns_labelsets_free(out, n_out);
    return st;
}
