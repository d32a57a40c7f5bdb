#define _GNU_SOURCE /* qsort_r */
/* frameset.c -- night selection and loading the frames of chosen clips
 * (contract in include/nightshift/frameset.h). */
#include "nightshift/frameset.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/clip.h"
#include "nightshift/clipmeta.h"
#include "nightshift/embeddings.h"
#include "store_internal.h"

/* ---- nights ------------------------------------------------------------------ */

/* A real calendar date YYYY-MM-DD of exactly len characters (the one check
 * every command shares: ns_parse_night). */
static int valid_night(const char *n, size_t len)
{
    char one[NS_NIGHT_LEN], out[NS_NIGHT_LEN];
    if (len != 10)
        return 0;
    memcpy(one, n, 10);
    one[10] = '\0';
    return ns_parse_night(one, out) == NS_OK;
}

static int cmp_night(const void *a, const void *b) { return strcmp(a, b); }

/* The store's distinct nights, ascending (*out caller frees). */
static ns_status store_nights(const ns_store *s, char (**out)[NS_NIGHT_LEN], size_t *n_out)
{
    char(*v)[NS_NIGHT_LEN] = malloc((s->n_clips ? s->n_clips : 1) * sizeof *v);
    size_t n = 0;
    if (!v)
        return ns_error(NS_ERR_NOMEM, "no memory for the nights of store '%s'", s->dir);
    for (size_t i = 0; i < s->n_clips; i++)
        memcpy(v[i], s->clips[i].night, NS_NIGHT_LEN);
    qsort(v, s->n_clips, sizeof *v, cmp_night);
    for (size_t i = 0; i < s->n_clips; i++)
        if (n == 0 || strcmp(v[n - 1], v[i]) != 0)
            memmove(v[n++], v[i], NS_NIGHT_LEN);
    *out = v;
    *n_out = n;
    return NS_OK;
}

static int in_sorted(char (*v)[NS_NIGHT_LEN], size_t n, const char *night)
{
    return n > 0 && bsearch(night, v, n, sizeof *v, cmp_night) != NULL;
}

ns_status ns_nights_select(const ns_store *s, const char *spec, char (**nights)[NS_NIGHT_LEN],
                           size_t *n_nights)
{
    ns_status st = NS_OK;
    char(*all)[NS_NIGHT_LEN] = NULL;
    char(*pick)[NS_NIGHT_LEN] = NULL;
    char from[NS_NIGHT_LEN] = "", to[NS_NIGHT_LEN] = "";
    size_t n_all = 0, n = 0;
    const char *dots;
    *nights = NULL;
    *n_nights = 0;
    if (!spec || !*spec)
        return ns_error(NS_ERR_USAGE, "empty nights spec (want FROM..TO, last:N or a list)");
    if ((st = store_nights(s, &all, &n_all)) != NS_OK)
        goto done;
    pick = malloc((n_all ? n_all : 1) * sizeof *pick);
    if (!pick) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %zu nights", n_all);
        goto done;
    }
    if (strncmp(spec, "last:", 5) == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long k = strtoull(spec + 5, &end, 10);
        if (spec[5] < '0' || spec[5] > '9' || *end != '\0' || errno != 0 || k == 0) {
            st = ns_error(NS_ERR_USAGE, "bad nights spec '%s': want last:N with N >= 1", spec);
            goto done;
        }
        size_t first = k >= n_all ? 0 : n_all - (size_t)k;
        for (size_t i = first; i < n_all; i++)
            memcpy(pick[n++], all[i], NS_NIGHT_LEN);
    } else if ((dots = strstr(spec, "..")) != NULL) {
        size_t lf = (size_t)(dots - spec), lt = strlen(dots + 2);
        if ((lf && !valid_night(spec, lf)) || (lt && !valid_night(dots + 2, lt))) {
            st = ns_error(NS_ERR_USAGE, "bad nights spec '%s': want FROM..TO with YYYY-MM-DD ends",
                          spec);
            goto done;
        }
        memcpy(from, spec, lf);
        memcpy(to, dots + 2, lt);
        if (lf && lt && strcmp(from, to) > 0) {
            st = ns_error(NS_ERR_USAGE, "bad nights spec '%s': %s is after %s", spec, from, to);
            goto done;
        }
        for (size_t i = 0; i < n_all; i++)
            if ((!lf || strcmp(all[i], from) >= 0) && (!lt || strcmp(all[i], to) <= 0))
                memcpy(pick[n++], all[i], NS_NIGHT_LEN);
    } else {
        /* A comma-separated list: every item must be a night, present or not. */
        for (const char *p = spec;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char one[NS_NIGHT_LEN];
            if (!valid_night(p, len)) {
                st = ns_error(NS_ERR_USAGE,
                              "bad nights spec '%s': '%.*s' is not YYYY-MM-DD (want FROM..TO, "
                              "last:N or a comma-separated list)",
                              spec, (int)(len > 40 ? 40 : len), p);
                goto done;
            }
            memcpy(one, p, 10);
            one[10] = '\0';
            if (in_sorted(all, n_all, one) && !in_sorted(pick, n, one)) {
                /* Keep pick sorted: insert in place (lists are short). */
                size_t at = n;
                while (at > 0 && strcmp(pick[at - 1], one) > 0)
                    at--;
                memmove(pick[at + 1], pick[at], (n - at) * sizeof *pick);
                memcpy(pick[at], one, NS_NIGHT_LEN);
                n++;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (n == 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "no night of store '%s' matches '%s' (%zu nights%s%s%s%s)",
                      s->dir, spec, n_all, n_all ? ": " : "", n_all ? all[0] : "",
                      n_all ? ".." : "", n_all ? all[n_all - 1] : "");
        goto done;
    }
    *nights = pick;
    *n_nights = n;
    pick = NULL;
done:
    free(all);
    free(pick);
    return st;
}

ns_status ns_nights_clips(const ns_store *s, char (*nights)[NS_NIGHT_LEN], size_t n_nights,
                          size_t **rows, size_t *n_rows)
{
    size_t *v = malloc((s->n_clips ? s->n_clips : 1) * sizeof *v), n = 0;
    char(*sorted)[NS_NIGHT_LEN] = malloc((n_nights ? n_nights : 1) * sizeof *sorted);
    *rows = NULL;
    *n_rows = 0;
    if (!v || !sorted) {
        free(v);
        free(sorted);
        return ns_error(NS_ERR_NOMEM, "no memory for %zu clip rows", s->n_clips);
    }
    /* The caller's list may be in any order: a sorted copy to search. */
    for (size_t j = 0; j < n_nights; j++) {
        memcpy(sorted[j], nights[j], NS_NIGHT_LEN);
        sorted[j][NS_NIGHT_LEN - 1] = '\0';
    }
    qsort(sorted, n_nights, sizeof *sorted, cmp_night);
    for (size_t i = 0; i < s->n_clips; i++)
        if (s->clips[i].n_frames > 0 && in_sorted(sorted, n_nights, s->clips[i].night))
            v[n++] = i;
    free(sorted);
    *rows = v;
    *n_rows = n;
    return NS_OK;
}

/* ---- the canonical clip order ------------------------------------------------- */

ns_status ns_frameset_alloc(ns_frameset *f, size_t cap, size_t n_clips)
{
    size_t d = (size_t)(f->d ? f->d : 1);
    f->emb = malloc(cap * d * sizeof *f->emb);
    f->props = malloc(cap * NS_PROP_COUNT * sizeof *f->props);
    f->clip = malloc(cap * sizeof *f->clip);
    f->index = malloc(cap * sizeof *f->index);
    f->timestamp = malloc(cap * sizeof *f->timestamp);
    f->member = malloc(cap * sizeof *f->member);
    f->view_row = malloc(cap * sizeof *f->view_row);
    f->clips = calloc(n_clips ? n_clips : 1, sizeof *f->clips);
    if (!f->emb || !f->props || !f->clip || !f->index || !f->timestamp || !f->member ||
        !f->view_row || !f->clips)
        return ns_error(NS_ERR_NOMEM, "no memory for a frameset of %zu frames (dim %d)", cap,
                        f->d);
    return NS_OK;
}

static int cmp_canonical(const ns_catalog_clip *a, const ns_catalog_clip *b)
{
    int c = strcmp(a->night, b->night);
    if (!c)
        c = strcmp(a->camera, b->camera);
    return c ? c : strcmp(a->sha256, b->sha256);
}

static int cmp_rows(const void *a, const void *b, void *ctx)
{
    const ns_catalog_clip *cat = ctx;
    return cmp_canonical(&cat[*(const size_t *)a], &cat[*(const size_t *)b]);
}

void ns_clips_canonical(const ns_store *s, size_t *rows, size_t n_rows)
{
    qsort_r(rows, n_rows, sizeof *rows, cmp_rows, s->clips);
}

/* Clips by night, then source path in natural order (the order in which one
 * ingest of a night's inbox commits them), then SHA-256. */
static int cmp_fs_clips(const void *a, const void *b, void *ctx)
{
    const ns_fs_clip *x = (const ns_fs_clip *)ctx + *(const size_t *)a;
    const ns_fs_clip *y = (const ns_fs_clip *)ctx + *(const size_t *)b;
    int c = strcmp(x->night, y->night);
    if (!c)
        c = ns_natural_cmp(x->source, y->source);
    return c ? c : strcmp(x->sha256, y->sha256);
}

/* Reorders a loaded frameset's clips (loaded in catalog order, which reads
 * each shard once) into the canonical order. */
static ns_status order_clips(ns_frameset *f)
{
    ns_status st = NS_OK;
    size_t n = f->n ? f->n : 1, d = (size_t)(f->d ? f->d : 1), *order = NULL;
    int sorted = 1;
    for (size_t c = 1; c < f->n_clips && sorted; c++) {
        size_t ab[2] = {c - 1, c};
        sorted = cmp_fs_clips(&ab[0], &ab[1], f->clips) < 0;
    }
    if (sorted)
        return NS_OK;
    ns_frameset g;
    memset(&g, 0, sizeof g);
    g.n = f->n;
    g.d = f->d;
    g.n_clips = f->n_clips;
    memcpy(g.model_id, f->model_id, sizeof g.model_id);
    order = malloc(f->n_clips * sizeof *order);
    if ((st = ns_frameset_alloc(&g, n, f->n_clips)) != NS_OK)
        goto done;
    if (!order) {
        st = ns_error(NS_ERR_NOMEM, "no memory to order a frameset of %zu clips", f->n_clips);
        goto done;
    }
    for (size_t c = 0; c < f->n_clips; c++)
        order[c] = c;
    qsort_r(order, f->n_clips, sizeof *order, cmp_fs_clips, f->clips);
    size_t at = 0;
    for (size_t c = 0; c < f->n_clips; c++) {
        const ns_fs_clip *src = &f->clips[order[c]];
        size_t r0 = src->first, k = src->n;
        memcpy(g.emb + at * d, f->emb + r0 * d, k * d * sizeof *g.emb);
        memcpy(g.props + at * NS_PROP_COUNT, f->props + r0 * NS_PROP_COUNT,
               k * NS_PROP_COUNT * sizeof *g.props);
        memcpy(g.index + at, f->index + r0, k * sizeof *g.index);
        memcpy(g.timestamp + at, f->timestamp + r0, k * sizeof *g.timestamp);
        memcpy(g.member + at, f->member + r0, k * sizeof *g.member);
        memcpy(g.view_row + at, f->view_row + r0, k * sizeof *g.view_row);
        for (size_t i = 0; i < k; i++)
            g.clip[at + i] = (uint32_t)c;
        g.clips[c] = *src;
        g.clips[c].first = at;
        at += k;
    }
    ns_frameset_release(f);
    *f = g;
    memset(&g, 0, sizeof g);
done:
    free(order);
    ns_frameset_release(&g); /* empty once adopted */
    return st;
}

/* ---- loading ------------------------------------------------------------------ */

void ns_frameset_release(ns_frameset *f)
{
    if (!f)
        return;
    free(f->emb);
    free(f->props);
    free(f->clip);
    free(f->index);
    free(f->timestamp);
    free(f->member);
    free(f->view_row);
    free(f->clips);
    memset(f, 0, sizeof *f);
}

typedef struct range {
    hsize_t off, n; /* rows of the shard */
} range;

/* Reads the union of ranges of dataset `name` (rows x tail) into dst,
 * contiguous in range order. */
static ns_status read_ranges(hid_t file, const char *path, const char *name, hid_t mtype,
                             int rank, const hsize_t *tail, hsize_t rows_want, const range *rg,
                             size_t n_rg, hsize_t total, void *dst)
{
    ns_status st = NS_OK;
    hid_t d = H5I_INVALID_HID, fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    hsize_t dims[3], mdims[3] = {total, 0, 0};
    d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0 || (fsp = H5Dget_space(d)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /%s", path, name);
        goto done;
    }
    if (H5Sget_simple_extent_ndims(fsp) != rank ||
        H5Sget_simple_extent_dims(fsp, dims, NULL) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': /%s has rank %d, expected %d", path, name,
                         H5Sget_simple_extent_ndims(fsp), rank);
        goto done;
    }
    for (int k = 1; k < rank; k++) {
        mdims[k] = tail[k - 1];
        if (dims[k] != tail[k - 1]) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': /%s dimension %d is %llu, expected %llu", path,
                          name, k, (unsigned long long)dims[k],
                          (unsigned long long)tail[k - 1]);
            goto done;
        }
    }
    /* Exactly the shard's frames: rows past what was written would read as
     * fill values (a claimed 2^40 rows costs nothing in the file). */
    if (dims[0] != rows_want) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': /%s has %llu rows, the shard holds %llu frames",
                      path, name, (unsigned long long)dims[0], (unsigned long long)rows_want);
        goto done;
    }
    if (H5Sselect_none(fsp) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "'%s': cannot select /%s", path, name);
        goto done;
    }
    for (size_t i = 0; i < n_rg; i++) {
        hsize_t start[3] = {rg[i].off, 0, 0}, count[3] = {rg[i].n, 0, 0};
        for (int k = 1; k < rank; k++)
            count[k] = tail[k - 1];
        if (H5Sselect_hyperslab(fsp, H5S_SELECT_OR, start, NULL, count, NULL) < 0) {
            st = ns_h5_error(NS_ERR_INTERNAL, "'%s': cannot select rows of /%s", path, name);
            goto done;
        }
    }
    if ((msp = H5Screate_simple(rank, mdims, NULL)) < 0 ||
        H5Dread(d, mtype, msp, fsp, H5P_DEFAULT, dst) < 0)
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot read %llu rows of /%s", path,
                         (unsigned long long)total, name);
done:
    if (msp >= 0) H5Sclose(msp);
    if (fsp >= 0) H5Sclose(fsp);
    if (d >= 0) H5Dclose(d);
    return st;
}

/* Rows [r0, r1) of the request: consecutive clips of one shard, filling
 * frameset rows from `first` on. */
static ns_status load_run(ns_store *s, const char *model_id, int d, const size_t *rows, size_t r0,
                          size_t r1, size_t first, range *rg, hid_t t_member, ns_frameset *f)
{
    ns_status st = NS_OK;
    const uint32_t shard = s->clips[rows[r0]].shard;
    const ns_shard_entry *sh = &s->shards[shard];
    char spath[PATH_MAX], epath[PATH_MAX];
    ns_shard_handle *h = NULL;
    hid_t ef = H5I_INVALID_HID;
    size_t n_rg = 0;
    hsize_t total = 0, tail_p[1] = {NS_PROP_COUNT}, tail_e[1] = {(hsize_t)d};
    ns_clip_record rec;

    for (size_t r = r0; r < r1; r++) {
        const ns_catalog_clip *c = &s->clips[rows[r]];
        ns_fs_clip *fc = &f->clips[r];
        uint64_t off = c->first_frame - s->shard_first[shard];
        if (c->first_frame < s->shard_first[shard] || off + c->n_frames > sh->n_frames ||
            (n_rg > 0 && off < rg[n_rg - 1].off + rg[n_rg - 1].n)) {
            st = ns_error(NS_ERR_CORRUPT, "store '%s': clip %zu lies outside or out of order "
                          "in shard '%s'", s->dir, rows[r], sh->path);
            goto done;
        }
        if ((st = ns_store_clip_record(s, rows[r], &rec)) != NS_OK)
            goto done;
        memset(fc, 0, sizeof *fc);
        memcpy(fc->sha256, c->sha256, NS_SHA256_HEX);
        memcpy(fc->camera, c->camera, NS_CAMERA_LEN);
        memcpy(fc->night, c->night, NS_NIGHT_LEN);
        memcpy(fc->source, rec.source, NS_SOURCE_LEN);
        fc->start_time = rec.start_time;
        fc->first = first + total;
        fc->n = c->n_frames;
        fc->catalog_row = (uint32_t)rows[r];
        for (uint32_t i = 0; i < c->n_frames; i++)
            f->view_row[fc->first + i] = c->first_frame + i;
        if (c->n_frames == 0)
            continue;
        /* Neighbouring clips read as one block. */
        if (n_rg > 0 && rg[n_rg - 1].off + rg[n_rg - 1].n == off)
            rg[n_rg - 1].n += c->n_frames;
        else
            rg[n_rg++] = (range){off, c->n_frames};
        total += c->n_frames;
    }
    if (total == 0)
        goto done;
    if ((st = ns_store_shard_open(s, shard, &h)) != NS_OK ||
        (st = ns_store_path(s, sh->path, spath, sizeof spath)) != NS_OK)
        goto done;
    const hsize_t nf = sh->n_frames;
    if ((st = read_ranges(h->file, spath, "frame/clip", H5T_NATIVE_UINT32, 1, NULL, nf, rg,
                          n_rg, total, f->clip + first)) != NS_OK ||
        (st = read_ranges(h->file, spath, "frame/index", H5T_NATIVE_UINT32, 1, NULL, nf, rg,
                          n_rg, total, f->index + first)) != NS_OK ||
        (st = read_ranges(h->file, spath, "frame/timestamp", H5T_NATIVE_DOUBLE, 1, NULL, nf,
                          rg, n_rg, total, f->timestamp + first)) != NS_OK ||
        (st = read_ranges(h->file, spath, "frame/member", t_member, 1, NULL, nf, rg, n_rg,
                          total, f->member + first)) != NS_OK ||
        (st = read_ranges(h->file, spath, "frame/props", H5T_NATIVE_FLOAT, 2, tail_p, nf, rg,
                          n_rg, total, f->props + first * NS_PROP_COUNT)) != NS_OK)
        goto done;
    /* /frame/clip names the shard's clip row: a free consistency check
     * before it is replaced by the frameset's clip row. */
    for (size_t r = r0; r < r1; r++) {
        const ns_fs_clip *fc = &f->clips[r];
        for (size_t i = fc->first; i < fc->first + fc->n; i++) {
            if (f->clip[i] != s->clips[rows[r]].row) {
                st = ns_error(NS_ERR_CORRUPT, "'%s': frame %zu of clip %.12s belongs to clip row "
                              "%u, catalog says %u", spath, i - fc->first, fc->sha256, f->clip[i],
                              s->clips[rows[r]].row);
                goto done;
            }
            f->clip[i] = (uint32_t)r;
            f->member[i][NS_MEMBER_LEN - 1] = '\0';
        }
    }
    if (!model_id)
        goto done;
    if ((st = ns_emb_open_read(s, model_id, sh, d, epath, sizeof epath, &ef)) != NS_OK)
        goto done;
    st = read_ranges(ef, epath, "embeddings", H5T_NATIVE_FLOAT, 2, tail_e, sh->n_frames, rg,
                     n_rg, total, f->emb + first * (size_t)d);
    for (size_t k = 0, at = first; st == NS_OK && k < n_rg; at += rg[k].n, k++)
        st = ns_emb_check_finite(epath, f->emb + at * (size_t)d, rg[k].n, d, rg[k].off);
done:
    if (ef >= 0) ns_h5_fclose(ef);
    return st;
}

ns_status ns_frameset_load(ns_store *s, const char *model_id, int d, const size_t *rows,
                           size_t n_rows, ns_frameset *out)
{
    ns_status st = NS_OK;
    ns_frameset f;
    range *rg = NULL;
    hid_t t_member = H5I_INVALID_HID;
    size_t n = 0, max_run = 0;
    memset(&f, 0, sizeof f);
    memset(out, 0, sizeof *out);
    ns_h5_init();
    if (model_id && (strlen(model_id) != NS_SHA256_HEX - 1 || d < 1))
        return ns_error(NS_ERR_USAGE, "frameset: bad model id or dimension %d", d);
    if (!model_id)
        d = 0;
    for (size_t r = 0; r < n_rows; r++) {
        if (rows[r] >= s->n_clips || (r > 0 && rows[r] <= rows[r - 1]))
            return ns_error(NS_ERR_USAGE, "frameset: clip rows must be ascending, distinct and "
                            "below %zu (row %zu is %zu)", s->n_clips, r, rows[r]);
        n += s->clips[rows[r]].n_frames;
    }
    /* Every shard is checked before anything big is read, so a missing
     * embedding fails fast. */
    for (size_t r0 = 0, r1; r0 < n_rows; r0 = r1) {
        uint32_t shard = s->clips[rows[r0]].shard;
        int present = 0;
        for (r1 = r0 + 1; r1 < n_rows && s->clips[rows[r1]].shard == shard; r1++)
            ;
        if (r1 - r0 > max_run)
            max_run = r1 - r0;
        if (!model_id)
            continue;
        if ((st = ns_emb_present(s, model_id, &s->shards[shard], d, &present)) != NS_OK)
            return st;
        if (!present)
            return ns_error(NS_ERR_NOT_FOUND, "night %s shard %u (%s) has no embeddings for "
                            "model %.12s -- run `nightshift embed --store %s --model ...`",
                            s->shards[shard].night, (unsigned)s->shards[shard].id,
                            s->shards[shard].path, model_id, s->dir);
    }
    size_t cap = n ? n : 1;
    f.n = n;
    f.d = d;
    f.n_clips = n_rows;
    if (model_id)
        memcpy(f.model_id, model_id, NS_SHA256_HEX);
    if ((st = ns_frameset_alloc(&f, cap, n_rows)) != NS_OK)
        goto done;
    rg = malloc((max_run ? max_run : 1) * sizeof *rg);
    if (!rg) {
        st = ns_error(NS_ERR_NOMEM, "no memory for a frameset of %zu frames (dim %d)", n, d);
        goto done;
    }
    if ((t_member = ns_h5_str_type(NS_MEMBER_LEN)) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the member type");
        goto done;
    }
    size_t first = 0;
    for (size_t r0 = 0, r1; r0 < n_rows; r0 = r1) {
        uint32_t shard = s->clips[rows[r0]].shard;
        for (r1 = r0 + 1; r1 < n_rows && s->clips[rows[r1]].shard == shard; r1++)
            ;
        if ((st = load_run(s, model_id, d, rows, r0, r1, first, rg, t_member, &f)) != NS_OK)
            goto done;
        first = f.clips[r1 - 1].first + f.clips[r1 - 1].n;
    }
    if ((st = order_clips(&f)) != NS_OK)
        goto done;
    *out = f;
    memset(&f, 0, sizeof f);
done:
    if (t_member >= 0) H5Tclose(t_member);
    free(rg);
    ns_frameset_release(&f);
    return st;
}
