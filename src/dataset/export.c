/* export.c -- a labeling package from a selection (export.h). */
#include "nightshift/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "nightshift/clip.h"
#include "nightshift/csv.h"
#include "nightshift/frameset.h"
#include "nightshift/fsutil.h"
#include "nightshift/image.h"
#include "nightshift/labels.h"
#include "nightshift/sha256.h"
#include "nightshift/strbuf.h"
#include "export_internal.h"

#define JPEG_QUALITY 95

void ns_export_report_release(ns_export_report *r)
{
    if (!r)
        return;
    ns_warnings_release(&r->problems);
    memset(r, 0, sizeof *r);
}

static int is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 64;
}

/* A generated name: only [A-Za-z0-9_-] from the camera, nothing else. */
static void task_name(task *t, size_t k, const ns_fs_clip *c, uint32_t index)
{
    char cam[24];
    size_t j = 0;
    for (const char *p = c->camera; *p && j + 1 < sizeof cam; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_')
            cam[j++] = *p;
    cam[j] = '\0';
    snprintf(t->file, sizeof t->file, "images/%05zu_%s_%.12s_f%05u.jpg", k + 1, j ? cam : "cam",
             c->sha256, index);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Selection rows -> tasks with frameset rows.  Loads the frameset of the
 * named clips (no embeddings). */
static ns_status read_selection(ns_store *s, const char *path, ns_frameset *fs, task **out,
                                size_t *n_out, ns_export_report *rep)
{
    ns_csv_reader r;
    ns_status st;
    int more = 1;
    size_t n_cat = 0, n = 0, cap = 0, n_rows = 0;
    const ns_catalog_clip *cat = ns_store_clips(s, &n_cat);
    task *t = NULL;
    size_t *rows = NULL;
    uint32_t *want_clip = NULL, *want_idx = NULL; /* catalog row, frame, per task */
    *out = NULL;
    *n_out = 0;
    if ((st = ns_csv_open(path, &r)) != NS_OK)
        return st;
    if ((st = ns_csv_next(&r, &more)) != NS_OK || !more) {
        st = st != NS_OK ? st : ns_error(NS_ERR_FORMAT, "'%s': empty selection", path);
        goto done;
    }
    int c_clip = ns_csv_column(&r, "clip"), c_frame = ns_csv_column(&r, "frame");
    int c_reason = ns_csv_column(&r, "reason"), c_sugg = ns_csv_column(&r, "suggested");
    if (c_clip < 0 || c_frame < 0) {
        st = ns_error(NS_ERR_FORMAT, "'%s': no clip and frame columns (is it a `nightshift "
                      "select` output?)", path);
        goto done;
    }
    while (1) {
        st = ns_csv_next(&r, &more);
        if (st != NS_OK) {
            ns_warn(&rep->problems, "%s", ns_errmsg());
            rep->bad_rows++;
            ns_error_clear();
            st = NS_OK;
            if (r.pos >= r.len)
                break;
            continue;
        }
        if (!more)
            break;
        rep->rows++;
        if (r.n_fields == 1 && r.fields[0][0] == '\0')
            continue;
        const char *clip = (size_t)c_clip < r.n_fields ? r.fields[c_clip] : "";
        const char *fr = (size_t)c_frame < r.n_fields ? r.fields[c_frame] : "";
        char *end = NULL;
        errno = 0;
        unsigned long idx = strtoul(fr, &end, 10);
        long cr = -1;
        if (r.nul_bytes == 0 && is_hex64(clip))
            for (size_t i = 0; i < n_cat && cr < 0; i++)
                if (strcmp(cat[i].sha256, clip) == 0)
                    cr = (long)i;
        if (r.nul_bytes || cr < 0 || !*fr || *end || errno || idx > UINT32_MAX ||
            (cr >= 0 && idx >= cat[cr].n_frames + (uint64_t)cat[cr].n_failed)) {
            ns_warn(&rep->problems, "'%s' line %zu: %s", path, r.line,
                    r.nul_bytes ? "NUL byte" : cr < 0 ? "unknown clip (not a SHA-256 in the store)"
                                                      : "bad frame number");
            rep->bad_rows++;
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            task *g = realloc(t, cap * sizeof *t);
            uint32_t *g1 = realloc(want_clip, cap * sizeof *g1);
            if (g1)
                want_clip = g1;
            uint32_t *g2 = realloc(want_idx, cap * sizeof *g2);
            if (g2)
                want_idx = g2;
            if (!g || !g1 || !g2) {
                free(g ? g : t);
                t = NULL;
                st = ns_error(NS_ERR_NOMEM, "export: out of memory");
                goto done;
            }
            t = g;
        }
        memset(&t[n], 0, sizeof t[n]);
        if (c_reason >= 0 && (size_t)c_reason < r.n_fields)
            snprintf(t[n].reason, sizeof t[n].reason, "%s", r.fields[c_reason]);
        if (c_sugg >= 0 && (size_t)c_sugg < r.n_fields)
            snprintf(t[n].suggested, sizeof t[n].suggested, "%s", r.fields[c_sugg]);
        want_clip[n] = (uint32_t)cr;
        want_idx[n] = (uint32_t)idx;
        n++;
    }
    if (n == 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "'%s': no usable selection rows", path);
        goto done;
    }
    rows = malloc(n * sizeof *rows);
    if (!rows) {
        st = ns_error(NS_ERR_NOMEM, "export: out of memory");
        goto done;
    }
    for (size_t k = 0; k < n; k++)
        rows[k] = want_clip[k];
    qsort(rows, n, sizeof *rows, cmp_size);
    for (size_t k = 0; k < n; k++)
        if (n_rows == 0 || rows[n_rows - 1] != rows[k])
            rows[n_rows++] = rows[k];
    if ((st = ns_frameset_load(s, NULL, 0, rows, n_rows, fs)) != NS_OK)
        goto done;
    size_t kept = 0;
    for (size_t k = 0; k < n; k++) {
        const char *sha = cat[want_clip[k]].sha256;
        long row = -1;
        for (size_t c = 0; c < fs->n_clips && row < 0; c++) {
            if (strcmp(fs->clips[c].sha256, sha) != 0)
                continue;
            for (size_t i = fs->clips[c].first; i < fs->clips[c].first + fs->clips[c].n; i++)
                if (fs->index[i] == want_idx[k])
                    row = (long)i;
            break;
        }
        int dup = 0;
        for (size_t j = 0; j < kept && row >= 0 && !dup; j++)
            dup = t[j].fs_row == (size_t)row;
        if (row < 0 || dup) {
            ns_warn(&rep->problems, "'%s': clip %.12s frame %u %s", path, sha, want_idx[k],
                    row < 0 ? "is not a stored frame" : "is listed twice (kept once)");
            rep->bad_rows++;
            continue;
        }
        t[kept] = t[k];
        t[kept].fs_row = (size_t)row;
        task_name(&t[kept], kept, &fs->clips[fs->clip[row]], want_idx[k]);
        kept++;
    }
    *out = t;
    *n_out = kept;
    t = NULL;
done:
    ns_csv_close(&r);
    free(t);
    free(rows);
    free(want_clip);
    free(want_idx);
    return st;
}

/* The clip's own JPEG bytes for every task of clip c, when its file is
 * still there and unchanged. */
static void take_originals(const ns_frameset *fs, size_t c, task *t, size_t n, ns_clip *clip)
{
    const ns_fs_clip *fc = &fs->clips[c];
    char hex[NS_SHA256_HEX];
    if (access(fc->source, R_OK) != 0 || ns_clip_load(fc->source, NULL, clip) != NS_OK) {
        ns_error_clear();
        return;
    }
    ns_sha256_hex(clip->sha256, hex);
    if (strcmp(hex, fc->sha256) != 0)
        return; /* the file at that path changed since ingest */
    for (size_t k = 0; k < n; k++) {
        size_t r = t[k].fs_row;
        if (fs->clip[r] != c || t[k].jpg)
            continue;
        uint32_t i = fs->index[r];
        if (i >= clip->n_frames || strcmp(ns_clip_frame_name(clip, i), fs->member[r]) != 0)
            continue;
        const ns_clip_frame *f = &clip->frames[i];
        t[k].jpg = malloc(f->size ? f->size : 1);
        if (!t[k].jpg)
            continue;
        memcpy(t[k].jpg, clip->data + f->offset, f->size);
        t[k].jpg_len = f->size;
        t[k].original = 1;
    }
}

static ns_status encode_stored(ns_store *s, const ns_frameset *fs, task *t, tjhandle tj,
                               uint8_t *px)
{
    ns_status st;
    int S = ns_store_frame_size(s);
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    if ((st = ns_store_read_frames(s, fs->view_row[t->fs_row], 1, px)) != NS_OK)
        return st;
    if (tjCompress2(tj, px, S, S * 3, S, TJPF_RGB, &jpg, &size, TJSAMP_420, JPEG_QUALITY,
                    TJFLAG_ACCURATEDCT) != 0)
        return ns_error(NS_ERR_INTERNAL, "cannot encode a frame: %s", tjGetErrorStr2(tj));
    t->jpg = jpg;
    t->jpg_len = size;
    t->tj_owned = 1;
    t->width = t->height = S;
    return NS_OK;
}

ns_status ns_export_run(ns_store *s, const char *selection, const char *out_path,
                        ns_export_report *rep)
{
    ns_status st;
    ns_frameset fs;
    ns_labelmap lm;
    task *t = NULL;
    size_t n = 0;
    ns_clip clip;
    tjhandle tj = NULL;
    ns_decoder *dec = NULL;
    uint8_t *px = NULL;
    memset(&fs, 0, sizeof fs);
    memset(&lm, 0, sizeof lm);
    memset(&clip, 0, sizeof clip);
    memset(rep, 0, sizeof *rep);
    if ((st = read_selection(s, selection, &fs, &t, &n, rep)) != NS_OK ||
        (st = ns_labels_load(s, NULL, &lm)) != NS_OK || (st = ns_decoder_create(&dec)) != NS_OK)
        goto done;
    int S = ns_store_frame_size(s);
    px = malloc((size_t)S * (size_t)S * 3);
    tj = tjInitCompress();
    if (!px || !tj) {
        st = ns_error(NS_ERR_NOMEM, "export: cannot start the JPEG encoder");
        goto done;
    }
    for (size_t c = 0; c < fs.n_clips; c++)
        take_originals(&fs, c, t, n, &clip);
    for (size_t k = 0; k < n; k++) {
        if (t[k].jpg) {
            ns_decode_info info;
            if (ns_decode_header(dec, t[k].jpg, t[k].jpg_len, &info) == NS_OK) {
                t[k].width = info.width;
                t[k].height = info.height;
                rep->original++;
                continue;
            }
            ns_error_clear();
            free(t[k].jpg); /* unreadable header: use the stored frame */
            t[k].jpg = NULL;
            t[k].original = 0;
        }
        if ((st = encode_stored(s, &fs, &t[k], tj, px)) != NS_OK)
            goto done;
        rep->reencoded++;
    }
    rep->exported = n;
    st = ns_export_write_package(&fs, &lm, t, n, out_path);
done:
    for (size_t k = 0; t && k < n; k++) {
        if (t[k].tj_owned)
            tjFree(t[k].jpg);
        else
            free(t[k].jpg);
    }
    free(t);
    free(px);
    if (tj)
        tjDestroy(tj);
    ns_decoder_free(dec);
    ns_clip_release(&clip);
    ns_labels_release(&lm);
    ns_frameset_release(&fs);
    return st;
}
