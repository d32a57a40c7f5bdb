#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest_internal.h"
#include "nightshift/clip.h"

static ns_status push(ns_input_list *l, const char *path, uint64_t bytes, int walked)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ns_input *p = realloc(l->items, cap * sizeof *p);
        if (!p)
            return ns_error(NS_ERR_NOMEM, "out of memory listing inputs");
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n].path = strdup(path);
    if (!l->items[l->n].path)
        return ns_error(NS_ERR_NOMEM, "out of memory listing inputs");
    l->items[l->n].bytes = bytes;
    l->items[l->n].walked = walked;
    l->n++;
    l->total_bytes += bytes;
    return NS_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return ns_natural_cmp(*(char *const *)a, *(char *const *)b);
}

static ns_status walk(const char *dir, const char *skip, ns_input_list *l, int depth)
{
    ns_status st = NS_OK;
    DIR *d = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    char real[PATH_MAX];
    if (depth > 64)
        return ns_error(NS_ERR_LIMIT, "'%s': directories nested more than 64 deep", dir);
    if (skip && realpath(dir, real) && strcmp(real, skip) == 0)
        return NS_OK;
    d = opendir(dir);
    if (!d)
        return ns_error(NS_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files (editors' and rsync's temp files) */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **p = realloc(names, ncap * sizeof *p);
            if (!p) {
                st = ns_error(NS_ERR_NOMEM, "out of memory listing '%s'", dir);
                goto done;
            }
            names = p;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            st = ns_error(NS_ERR_NOMEM, "out of memory listing '%s'", dir);
            goto done;
        }
        n++;
    }
    /* Natural order makes runs reproducible whatever readdir returns. */
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        char path[4096];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
            continue;
        /* lstat: a symlinked directory could loop; symlinks are skipped in walks. */
        if (lstat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            st = walk(path, skip, l, depth + 1);
        else if (S_ISREG(sb.st_mode))
            st = push(l, path, (uint64_t)sb.st_size, 1);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return st;
}

ns_status ns_inputs_collect(const char *const *paths, size_t n, const char *skip_dir,
                           ns_input_list *out)
{
    ns_status st = NS_OK;
    char skip[PATH_MAX];
    const char *sk = skip_dir && realpath(skip_dir, skip) ? skip : NULL;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            st = ns_error(NS_ERR_NOT_FOUND, "input '%s': %s", paths[i], strerror(errno));
            break;
        }
        if (S_ISDIR(sb.st_mode)) {
            size_t len = strlen(paths[i]);
            char trimmed[4096];
            snprintf(trimmed, sizeof trimmed, "%s", paths[i]);
            while (len > 1 && trimmed[len - 1] == '/')
                trimmed[--len] = '\0';
            st = walk(trimmed, sk, out, 0);
        } else if (S_ISREG(sb.st_mode)) {
            st = push(out, paths[i], (uint64_t)sb.st_size, 0);
        } else {
            st = ns_error(NS_ERR_USAGE, "input '%s' is neither a file nor a directory", paths[i]);
        }
    }
    if (st != NS_OK)
        ns_inputs_release(out);
    return st;
}

void ns_inputs_release(ns_input_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].path);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void ns_inputs_keep_task(ns_input_list *l, int index, int count)
{
    size_t kept = 0;
    l->total_bytes = 0;
    for (size_t i = 0; i < l->n; i++) {
        if ((int)(i % (size_t)count) != index) {
            free(l->items[i].path);
            continue;
        }
        l->total_bytes += l->items[i].bytes;
        l->items[kept++] = l->items[i];
    }
    l->n = kept;
}
