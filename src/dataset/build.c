/* build.c -- `dataset build` (dsbuild.h): labelled frames, embeddings,
 * splits and the audit, gathered into one ns_dataset. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/csv.h"
#include "nightshift/detfile.h"
#include "nightshift/dsbuild.h"
#include "nightshift/frameset.h"
#include "nightshift/labels.h"
#include "nightshift/model.h"
#include "nightshift/strbuf.h"

void ns_dsbuild_default_opts(ns_dsbuild_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = "default";
    ns_split_default_opts(&o->split);
    ns_audit_default_opts(&o->audit);
    o->content_hash = 1;
}

void ns_dsbuild_report_release(ns_dsbuild_report *r)
{
    if (r)
        ns_warnings_release(&r->problems);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* (clip, frame) keys, sorted, for --frames and --detect lookups. */
typedef struct fkey {
    char clip[NS_SHA256_HEX];
    uint32_t index;
    int32_t value;
    size_t seq;
} fkey;

static int cmp_fkey(const void *a, const void *b)
{
    const fkey *x = a, *y = b;
    int c = strcmp(x->clip, y->clip);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static const fkey *find_key(const fkey *v, size_t n, const char *clip, uint32_t index)
{
    fkey k;
    memcpy(k.clip, clip, NS_SHA256_HEX);
    k.index = index;
    return n ? bsearch(&k, v, n, sizeof *v, cmp_fkey) : NULL;
}

static int valid_sha(const char *s)
{
    if (strlen(s) != NS_SHA256_HEX - 1)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int column_of(const ns_csv_reader *r, const char *const *names)
{
    for (; *names; names++) {
        int c = ns_csv_column(r, *names);
        if (c >= 0)
            return c;
    }
    return -1;
}

/* A selection CSV (select's output, or any with clip SHA-256 and frame
 * number columns). */
static ns_status read_frames_csv(const char *path, fkey **out, size_t *n_out, ns_warnings *w)
{
    static const char *const clip_names[] = {"clip", "clip_sha256", "sha256", NULL};
    static const char *const frame_names[] = {"frame", "index", "frame_index", NULL};
    ns_status st;
    ns_csv_reader r;
    int more = 0, cc, fc;
    fkey *v = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    *n_out = 0;
    if ((st = ns_csv_open(path, &r)) != NS_OK)
        return st;
    if ((st = ns_csv_next(&r, &more)) != NS_OK)
        goto done;
    cc = column_of(&r, clip_names);
    fc = column_of(&r, frame_names);
    if (!more || cc < 0 || fc < 0) {
        st = ns_error(NS_ERR_FORMAT, "'%s': needs a clip (SHA-256) and a frame (number) column",
                      path);
        goto done;
    }
    for (;;) {
        if ((st = ns_csv_next(&r, &more)) != NS_OK) {
            ns_warn(w, "%s", ns_errmsg());
            st = NS_OK;
            if (r.pos >= r.len)
                break;
            continue;
        }
        if (!more)
            break;
        char *end = NULL;
        const char *cs = (size_t)cc < r.n_fields ? r.fields[cc] : "";
        const char *fs = (size_t)fc < r.n_fields ? r.fields[fc] : "";
        unsigned long idx = strtoul(fs, &end, 10);
        if (!valid_sha(cs) || !fs[0] || *end || idx > UINT32_MAX || r.nul_bytes) {
            ns_warn(w, "'%s' line %zu: not a clip SHA-256 and frame number; skipped", path,
                    r.line);
            continue;
        }
        if (n == cap) {
            fkey *g = realloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v);
            if (!g) {
                st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
                goto done;
            }
            v = g;
        }
        memcpy(v[n].clip, cs, NS_SHA256_HEX);
        v[n].index = (uint32_t)idx;
        v[n].value = 0;
        v[n].seq = n;
        n++;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_fkey);
    *out = v;
    *n_out = n;
    v = NULL;
done:
    free(v);
    ns_csv_close(&r);
    return st;
}

static int cmp_fkey_seq(const void *a, const void *b)
{
    int c = cmp_fkey(a, b);
    if (c)
        return c;
    size_t x = ((const fkey *)a)->seq, y = ((const fkey *)b)->seq;
    return (x > y) - (x < y);
}

/* Frame conditions from detect outputs; a later file wins for a frame. */
static ns_status read_conditions(const ns_dsbuild_opts *o, fkey **out, size_t *n_out)
{
    ns_status st = NS_OK;
    fkey *v = NULL;
    size_t n = 0, u = 0;
    *out = NULL;
    *n_out = 0;
    for (size_t f = 0; f < o->n_detect; f++) {
        ns_det_frames d;
        if ((st = ns_detfile_frames(o->detect[f], &d)) != NS_OK)
            goto done;
        fkey *g = realloc(v, (n + d.n + 1) * sizeof *v);
        if (!g) {
            ns_det_frames_release(&d);
            st = ns_error(NS_ERR_NOMEM, "out of memory reading '%s'", o->detect[f]);
            goto done;
        }
        v = g;
        for (size_t i = 0; i < d.n; i++, n++) {
            memcpy(v[n].clip, d.clips[d.clip[i]], NS_SHA256_HEX);
            v[n].index = d.index[i];
            v[n].value = d.condition[i];
            v[n].seq = n;
        }
        ns_det_frames_release(&d);
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_fkey_seq);
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && cmp_fkey(&v[u - 1], &v[i]) == 0)
            u--;
        v[u++] = v[i];
    }
    *out = v;
    *n_out = u;
    v = NULL;
done:
    free(v);
    return st;
}

/* A fast 64-bit hash of a frame's stored pixels; 0 is kept for "none". */
static uint64_t hash64(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

static ns_status model_identity(const char *model, char id[NS_SHA256_HEX], int *dim)
{
    ns_model *m = NULL;
    ns_status st;
    if (!model || !*model)
        return ns_error(NS_ERR_USAGE, "dataset: no model given (a model file or \"default\")");
    st = strcmp(model, "default") == 0 ? ns_model_default(112, 1, &m) : ns_model_load(model, &m);
    if (st != NS_OK)
        return st;
    memcpy(id, m->id, NS_SHA256_HEX);
    *dim = m->info.embed_dim;
    ns_model_free(m);
    return NS_OK;
}

/* Does the (clip-sorted) label map hold any frame of this clip? */
static int clip_labelled(const ns_labelmap *m, const char *sha)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->clip[mid], sha) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && strcmp(m->clip[lo], sha) == 0;
}

static void store_identity(const ns_store *s, char out[NS_SHA256_HEX])
{
    char real[PATH_MAX];
    uint8_t d[NS_SHA256_LEN];
    const char *p = realpath(ns_store_dir(s), real) ? real : ns_store_dir(s);
    ns_sha256_buf(p, strlen(p), d);
    ns_sha256_hex(d, out);
}

static int cmp_sha(const void *a, const void *b) { return strcmp(a, b); }

static int cmp_clip_sha(const void *a, const void *b)
{
    return strcmp((*(const ns_fs_clip *const *)a)->sha256, (*(const ns_fs_clip *const *)b)->sha256);
}

/* A golden set must be evaluated on clips training never saw. */
static ns_status check_golden(const char *path, const ns_dataset *ds)
{
    ns_dataset g;
    ns_status st = ns_dataset_load(path, &g);
    size_t shared = 0;
    const char *example = NULL;
    if (st != NS_OK)
        return ns_error_wrap(st, "golden set");
    qsort(g.clip, g.n, sizeof *g.clip, cmp_sha);
    for (size_t i = 0; i < ds->n; i++) {
        if (i > 0 && strcmp(ds->clip[i], ds->clip[i - 1]) == 0)
            continue;
        if (g.n && bsearch(ds->clip[i], g.clip, g.n, sizeof *g.clip, cmp_sha)) {
            if (!shared++)
                example = ds->clip[i];
        }
    }
    if (shared) {
        char ex[16];
        snprintf(ex, sizeof ex, "%.12s", example);
        st = ns_error(NS_ERR_EXISTS, "the golden set '%s' shares %zu clip%s with these nights "
                      "(e.g. %s): evaluating on it would measure training frames", path, shared,
                      shared == 1 ? "" : "s", ex);
    }
    ns_dataset_release(&g);
    return st;
}

ns_status ns_dataset_build(ns_store *s, const ns_dsbuild_opts *o, ns_dataset *out,
                           ns_dsbuild_report *rep)
{
    ns_status st = NS_OK;
    char (*nights)[NS_NIGHT_LEN] = NULL, model_id[NS_SHA256_HEX];
    size_t n_nights = 0, *rows = NULL, n_rows = 0, n_sel = 0, n_cond = 0;
    int dim = 0;
    ns_labelmap m;
    ns_frameset fs;
    ns_dataset ds;
    fkey *sel = NULL, *cond = NULL;
    int32_t *cls = NULL, *remap = NULL;
    size_t *per_class = NULL, *keep_n = NULL;
    uint8_t *sel_hit = NULL, *clip_split = NULL, *px = NULL;
    ns_split_clip *sc = NULL;
    uint32_t *row_clip = NULL;
    const ns_fs_clip **ord = NULL;
    uint64_t *hashes = NULL;
    ns_strbuf sets = {0};
    memset(&m, 0, sizeof m);
    memset(&fs, 0, sizeof fs);
    memset(&ds, 0, sizeof ds);
    memset(out, 0, sizeof *out);
    memset(rep, 0, sizeof *rep);
    double t0 = now_s();
    if (!o->nights)
        return ns_error(NS_ERR_USAGE, "dataset build: --nights is required");
    if ((st = model_identity(o->model, model_id, &dim)) != NS_OK ||
        (st = ns_nights_select(s, o->nights, &nights, &n_nights)) != NS_OK ||
        (st = ns_labels_load(s, o->label_sets, &m)) != NS_OK)
        goto done;
    rep->n_nights = n_nights;
    if (m.n == 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "store '%s' has no labels%s%s -- run `nightshift labels "
                      "import`", ns_store_dir(s), o->label_sets ? " in sets " : "",
                      o->label_sets ? o->label_sets : "");
        goto done;
    }
    if (o->frames_csv && (st = read_frames_csv(o->frames_csv, &sel, &n_sel, &rep->problems)) !=
                             NS_OK)
        goto done;
    if ((st = read_conditions(o, &cond, &n_cond)) != NS_OK)
        goto done;
    if ((st = ns_nights_clips(s, nights, n_nights, &rows, &n_rows)) != NS_OK)
        goto done;
    /* Only clips with a label are read. */
    size_t n_cat = 0, k = 0;
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    for (size_t r = 0; r < n_rows; r++)
        if (clip_labelled(&m, cat[rows[r]].sha256))
            rows[k++] = rows[r];
    n_rows = k;
    if (n_rows == 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "no labelled frames in nights %s (%zu nights)", o->nights,
                      n_nights);
        goto done;
    }
    if ((st = ns_frameset_load(s, model_id, dim, rows, n_rows, &fs)) != NS_OK)
        goto done;
    rep->seconds_read = now_s() - t0;

    /* Which frames: labelled, and listed when --frames is given. */
    cls = malloc((fs.n ? fs.n : 1) * sizeof *cls);
    sel_hit = calloc(n_sel ? n_sel : 1, 1);
    per_class = calloc(m.n_classes ? m.n_classes : 1, sizeof *per_class);
    remap = malloc((m.n_classes ? m.n_classes : 1) * sizeof *remap);
    keep_n = calloc(fs.n_clips ? fs.n_clips : 1, sizeof *keep_n);
    sc = calloc(fs.n_clips ? fs.n_clips : 1, sizeof *sc);
    clip_split = calloc(fs.n_clips ? fs.n_clips : 1, 1);
    if (!cls || !sel_hit || !per_class || !remap || !keep_n || !sc || !clip_split) {
        st = ns_error(NS_ERR_NOMEM, "dataset: out of memory for %zu frames", fs.n);
        goto done;
    }
    size_t n_keep = 0;
    for (size_t i = 0; i < fs.n; i++) {
        const char *sha = fs.clips[fs.clip[i]].sha256;
        cls[i] = ns_labels_find(&m, sha, fs.index[i]);
        if (sel) {
            const fkey *hit = find_key(sel, n_sel, sha, fs.index[i]);
            if (hit) {
                sel_hit[hit - sel] = 1;
                rep->frames_unlabelled += cls[i] < 0;
            } else {
                cls[i] = -1;
            }
        }
        if (cls[i] >= 0) {
            keep_n[fs.clip[i]]++;
            n_keep++;
        }
    }
    for (size_t j = 0; j < n_sel; j++)
        rep->frames_not_found += !sel_hit[j];
    if (n_keep == 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "no labelled frames in nights %s%s", o->nights,
                      sel ? " among the --frames list" : "");
        goto done;
    }

    /* Per clip: its time span and majority class, for the splits. */
    for (size_t c = 0; c < fs.n_clips; c++) {
        const ns_fs_clip *fc = &fs.clips[c];
        double t_lo = INFINITY, t_hi = -INFINITY;
        memset(per_class, 0, m.n_classes * sizeof *per_class);
        for (size_t i = fc->first; i < fc->first + fc->n; i++) {
            if (!isnan(fs.timestamp[i])) {
                t_lo = fs.timestamp[i] < t_lo ? fs.timestamp[i] : t_lo;
                t_hi = fs.timestamp[i] > t_hi ? fs.timestamp[i] : t_hi;
            }
            if (cls[i] >= 0)
                per_class[cls[i]]++;
        }
        int32_t best = -1;
        for (size_t q = 0; q < m.n_classes; q++)
            if (per_class[q] > 0 && (best < 0 || per_class[q] > per_class[best]))
                best = (int32_t)q;
        sc[c] = (ns_split_clip){fc->sha256, fc->camera, fc->night,
                                isfinite(t_lo) ? t_lo : fc->start_time,
                                isfinite(t_hi) ? t_hi : fc->start_time, keep_n[c], best};
    }
    /* Clips without kept frames take part with no frames: they never move
     * the others (a group of them is empty). */
    if ((st = ns_split_assign(sc, fs.n_clips, &o->split, clip_split, NULL, &rep->n_groups)) !=
        NS_OK)
        goto done;

    /* Classes in use, in the label map's order. */
    size_t n_cls = 0;
    memset(per_class, 0, m.n_classes * sizeof *per_class);
    for (size_t i = 0; i < fs.n; i++)
        if (cls[i] >= 0)
            per_class[cls[i]]++;
    for (size_t q = 0; q < m.n_classes; q++)
        remap[q] = per_class[q] ? (int32_t)n_cls++ : -1;
    if ((st = ns_dataset_alloc(&ds, n_keep, dim, n_cls)) != NS_OK)
        goto done;
    for (size_t q = 0; q < m.n_classes; q++)
        if (remap[q] >= 0)
            memcpy(ds.classes[remap[q]], m.classes[q], NS_LABEL_LEN);
    row_clip = malloc(n_keep * sizeof *row_clip);
    hashes = calloc(n_keep, sizeof *hashes);
    ord = malloc((fs.n_clips ? fs.n_clips : 1) * sizeof *ord);
    const size_t fb = (size_t)ns_store_frame_size(s) * (size_t)ns_store_frame_size(s) * 3;
    size_t max_clip = 0;
    for (size_t c = 0; c < fs.n_clips; c++)
        max_clip = fs.clips[c].n > max_clip ? fs.clips[c].n : max_clip;
    if (o->content_hash)
        px = malloc((max_clip ? max_clip : 1) * fb);
    if (!row_clip || !hashes || !ord || (o->content_hash && !px)) {
        st = ns_error(NS_ERR_NOMEM, "dataset: out of memory for %zu frames", n_keep);
        goto done;
    }
    /* Rows ordered by split, then clip id: each split is one block, and the
     * order (so the dataset id and the head trained on it) does not depend
     * on the order the clips were committed in (Slurm array tasks commit in
     * any order; e2e_slurm compares the heads with nightly's). */
    for (size_t c = 0; c < fs.n_clips; c++)
        ord[c] = &fs.clips[c];
    qsort(ord, fs.n_clips, sizeof *ord, cmp_clip_sha);
    size_t r = 0;
    for (uint8_t sp = 0; sp < 3; sp++) {
        for (size_t oc = 0; oc < fs.n_clips; oc++) {
            const ns_fs_clip *fc = ord[oc];
            size_t c = (size_t)(fc - fs.clips);
            if (clip_split[c] != sp || keep_n[c] == 0)
                continue;
            if (o->content_hash &&
                (st = ns_store_read_frames(s, fs.view_row[fc->first], fc->n, px)) != NS_OK)
                goto done;
            for (size_t i = fc->first; i < fc->first + fc->n; i++) {
                if (cls[i] < 0)
                    continue;
                memcpy(ds.emb + r * (size_t)dim, fs.emb + i * (size_t)dim,
                       (size_t)dim * sizeof *ds.emb);
                ds.label[r] = remap[cls[i]];
                ds.split[r] = sp;
                memcpy(ds.clip[r], fc->sha256, NS_SHA256_HEX);
                memcpy(ds.member[r], fs.member[i], NS_MEMBER_LEN);
                memcpy(ds.camera[r], fc->camera, NS_CAMERA_LEN);
                memcpy(ds.night[r], fc->night, NS_NIGHT_LEN);
                ds.index[r] = fs.index[i];
                ds.time[r] = isnan(fs.timestamp[i]) ? fc->start_time : fs.timestamp[i];
                const fkey *cd = find_key(cond, n_cond, fc->sha256, fs.index[i]);
                ds.condition[r] = cd ? cd->value : -1;
                rep->with_condition += cd != NULL;
                ds.view_row[r] = fs.view_row[i];
                row_clip[r] = (uint32_t)c;
                if (o->content_hash)
                    hashes[r] = hash64(px + (i - fc->first) * fb, fb);
                rep->n_split[sp]++;
                r++;
            }
            rep->n_clips++;
        }
    }
    static const char *const names[3] = {"train", "val", "test"};
    const double want[3] = {1.0, o->split.val, o->split.test};
    for (int sp = 0; sp < 3 && o->split.by != NS_SPLIT_BY_NONE; sp++)
        if (want[sp] > 0 && rep->n_split[sp] == 0)
            ns_warn(&rep->problems, "no frame went to %s: %zu group%s too few for the split "
                    "asked (--split-by %s)", names[sp], rep->n_groups,
                    rep->n_groups == 1 ? " is" : "s are", ns_split_by_name(o->split.by));
    double t1 = now_s();
    if ((st = ns_leak_audit(ds.emb, ds.n, ds.d, row_clip, ds.split,
                            o->content_hash ? hashes : NULL, &o->audit, &ds.audit,
                            &rep->n_test_leaked, rep->audited)) != NS_OK)
        goto done;
    rep->seconds_audit = now_s() - t1;
    if (o->golden && (st = check_golden(o->golden, &ds)) != NS_OK)
        goto done;

    memcpy(ds.model_id, model_id, NS_SHA256_HEX);
    store_identity(s, ds.store_id);
    snprintf(ds.split_by, sizeof ds.split_by, "%s", ns_split_by_name(o->split.by));
    ds.seed = o->split.seed;
    ds.guard_minutes = o->split.guard_minutes;
    ds.val_fraction = o->split.by == NS_SPLIT_BY_NONE ? 0 : o->split.val;
    ds.test_fraction = o->split.by == NS_SPLIT_BY_NONE ? 1 : o->split.test;
    memcpy(ds.nights_from, nights[0], NS_NIGHT_LEN);
    memcpy(ds.nights_to, nights[n_nights - 1], NS_NIGHT_LEN);
    for (size_t i = 0; i < m.n_sets; i++)
        ns_strbuf_printf(&sets, "%s%s", i ? "," : "", m.sets[i]);
    if ((st = ns_strbuf_status(&sets)) != NS_OK)
        goto done;
    free(ds.label_sets);
    ds.label_sets = sets.data ? sets.data : strdup("");
    sets.data = NULL;
    ds.created = now_s();
    /* dataset_id is computed by ns_dataset_save: hashing 4 bytes per
     * embedding value twice would cost as much as reading them. */
    *out = ds;
    memset(&ds, 0, sizeof ds);
done:
    ns_strbuf_release(&sets);
    ns_dataset_release(&ds);
    ns_frameset_release(&fs);
    ns_labels_release(&m);
    free(nights);
    free(rows);
    free(sel);
    free(cond);
    free(cls);
    free(remap);
    free(per_class);
    free(keep_n);
    free(sel_hit);
    free(clip_split);
    free(px);
    free(sc);
    free(row_clip);
    free(ord);
    free(hashes);
    return st;
}
