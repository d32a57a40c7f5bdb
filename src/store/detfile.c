/* detfile.c -- detection results as HDF5 (format in include/nightshift/detfile.h)
 * and the history of earlier nights read back from sibling output folders. */
#include "nightshift/detfile.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

/* Rows of /clips, /clusters and /conditions as written: fixed layouts so the
 * files read the same in h5py whatever the in-memory structs become. */
typedef struct det_clip_row {
    char sha256[NS_SHA256_HEX];
    char camera[NS_CAMERA_LEN];
    char source[NS_SOURCE_LEN];
    double start_time;
    uint64_t n_frames, n_novel;
    double novel_share;
    int32_t condition;
} det_clip_row;

typedef struct det_cluster_row {
    int32_t id;
    uint64_t n_tonight, n_ref;
    double median_p;
    int32_t condition;
} det_cluster_row;

typedef struct det_cond_row {
    int32_t id, novel;
    uint64_t n_frames, n_ref;
    double share_tonight, share_ref;
    uint64_t n_clips;
    int32_t n_clusters;
    double median_p, t_first, t_last;
    uint64_t medoid;
    double paired_z[NS_PROP_COUNT], rel[NS_PROP_COUNT];
    double exp_acc, exp_acc_ref; /* detect --head; NAN without */
} det_cond_row;

#define INS(t, type, field, h5t) NS_H5_INS(t, 0, type, field, h5t)
#define INS_STR(t, type, field) NS_H5_INS_STR(t, 0, type, field)

static hid_t clip_type(void)
{
    herr_t r = 0;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(det_clip_row));
    if (t < 0)
        return H5I_INVALID_HID;
    r |= INS_STR(t, det_clip_row, sha256);
    r |= INS_STR(t, det_clip_row, camera);
    r |= INS_STR(t, det_clip_row, source);
    r |= INS(t, det_clip_row, start_time, H5T_NATIVE_DOUBLE);
    r |= INS(t, det_clip_row, n_frames, H5T_NATIVE_UINT64);
    r |= INS(t, det_clip_row, n_novel, H5T_NATIVE_UINT64);
    r |= INS(t, det_clip_row, novel_share, H5T_NATIVE_DOUBLE);
    r |= INS(t, det_clip_row, condition, H5T_NATIVE_INT32);
    return ns_h5_type_done(t, r);
}

static hid_t cluster_type(void)
{
    herr_t r = 0;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(det_cluster_row));
    if (t < 0)
        return H5I_INVALID_HID;
    r |= INS(t, det_cluster_row, id, H5T_NATIVE_INT32);
    r |= INS(t, det_cluster_row, n_tonight, H5T_NATIVE_UINT64);
    r |= INS(t, det_cluster_row, n_ref, H5T_NATIVE_UINT64);
    r |= INS(t, det_cluster_row, median_p, H5T_NATIVE_DOUBLE);
    r |= INS(t, det_cluster_row, condition, H5T_NATIVE_INT32);
    return ns_h5_type_done(t, r);
}

static hid_t cond_type(void)
{
    herr_t r = 0;
    hsize_t np = NS_PROP_COUNT;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(det_cond_row));
    hid_t arr = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &np);
    if (t < 0 || arr < 0) {
        r = -1;
    } else {
        r |= INS(t, det_cond_row, id, H5T_NATIVE_INT32);
        r |= INS(t, det_cond_row, novel, H5T_NATIVE_INT32);
        r |= INS(t, det_cond_row, n_frames, H5T_NATIVE_UINT64);
        r |= INS(t, det_cond_row, n_ref, H5T_NATIVE_UINT64);
        r |= INS(t, det_cond_row, share_tonight, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, share_ref, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, n_clips, H5T_NATIVE_UINT64);
        r |= INS(t, det_cond_row, n_clusters, H5T_NATIVE_INT32);
        r |= INS(t, det_cond_row, median_p, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, t_first, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, t_last, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, medoid, H5T_NATIVE_UINT64);
        r |= INS(t, det_cond_row, paired_z, arr);
        r |= INS(t, det_cond_row, rel, arr);
        r |= INS(t, det_cond_row, exp_acc, H5T_NATIVE_DOUBLE);
        r |= INS(t, det_cond_row, exp_acc_ref, H5T_NATIVE_DOUBLE);
    }
    if (arr >= 0) H5Tclose(arr);
    return ns_h5_type_done(t, r);
}

/* Writes a 1-D dataset of n elements (n may be 0) under an existing group. */
static herr_t write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype, size_t n,
                       const void *data)
{
    herr_t r = -1;
    hsize_t dims = n;
    hid_t sp = H5Screate_simple(1, &dims, NULL), d = H5I_INVALID_HID;
    if (sp < 0)
        return -1;
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0)
        goto done;
    if (n > 0 && data && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        goto done;
    r = 0;
done:
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return r;
}

static herr_t write_attrs(hid_t f, const ns_detect_result *r, const ns_reference *ref)
{
    herr_t e = 0;
    int32_t version = NS_DETECT_FORMAT_VERSION, n_perm = r->test.n_perm, shift = r->shift;
    int32_t knn_k = ref->knn_k, kmeans_k = r->kmeans_k, novel_k = r->opts.novel_k;
    uint64_t seed = r->opts.seed, n_novel = r->n_novel;
    uint64_t clips_tonight = r->tonight.n_clips, clips_ref = ref->sample.n_clips;
    uint64_t frames_tonight = r->tonight.n, frames_ref = r->n_ref_frames;
    /* The shift test's X side (g = 1) is tonight, Y the reference (detect.c). */
    uint64_t ft_tonight = r->test.n_x, ft_ref = r->test.n_y;
    double created = (double)time(NULL);
    const char *from = ref->n_nights ? ref->nights[0] : "";
    const char *to = ref->n_nights ? ref->nights[ref->n_nights - 1] : "";
    if (e >= 0) e = ns_h5_attr_str(f, "ns_format", NS_DETECT_FORMAT);
    if (e >= 0) e = ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &version);
    if (e >= 0) e = ns_h5_attr_str(f, "night", r->night);
    if (e >= 0) e = ns_h5_attr_str(f, "model_id", ref->model_id);
    if (e >= 0) e = ns_h5_attr_str(f, "reference_nights_from", from);
    if (e >= 0) e = ns_h5_attr_str(f, "reference_nights_to", to);
    if (e >= 0) e = ns_h5_attr_num(f, "seed", H5T_NATIVE_UINT64, &seed);
    if (e >= 0) e = ns_h5_attr_num(f, "n_perm", H5T_NATIVE_INT32, &n_perm);
    if (e >= 0) e = ns_h5_attr_str(f, "permute", r->opts.permute_frames ? "frames" : "clips");
    if (e >= 0) e = ns_h5_attr_num(f, "sigma", H5T_NATIVE_DOUBLE, &r->sigma);
    if (e >= 0) e = ns_h5_attr_num(f, "mmd2", H5T_NATIVE_DOUBLE, &r->test.mmd2);
    if (e >= 0) e = ns_h5_attr_num(f, "p_value", H5T_NATIVE_DOUBLE, &r->test.p_value);
    if (e >= 0) e = ns_h5_attr_num(f, "null_mean", H5T_NATIVE_DOUBLE, &r->test.null_mean);
    if (e >= 0) e = ns_h5_attr_num(f, "null_sd", H5T_NATIVE_DOUBLE, &r->test.null_sd);
    if (e >= 0) e = ns_h5_attr_num(f, "clips_tonight", H5T_NATIVE_UINT64, &clips_tonight);
    if (e >= 0) e = ns_h5_attr_num(f, "clips_ref", H5T_NATIVE_UINT64, &clips_ref);
    if (e >= 0) e = ns_h5_attr_num(f, "frames_tonight", H5T_NATIVE_UINT64, &frames_tonight);
    if (e >= 0) e = ns_h5_attr_num(f, "frames_ref", H5T_NATIVE_UINT64, &frames_ref);
    if (e >= 0) e = ns_h5_attr_num(f, "frames_test_tonight", H5T_NATIVE_UINT64, &ft_tonight);
    if (e >= 0) e = ns_h5_attr_num(f, "frames_test_ref", H5T_NATIVE_UINT64, &ft_ref);
    if (e >= 0) e = ns_h5_attr_num(f, "n_novel", H5T_NATIVE_UINT64, &n_novel);
    if (e >= 0) e = ns_h5_attr_num(f, "shift", H5T_NATIVE_INT32, &shift);
    if (e >= 0) e = ns_h5_attr_str(f, "verdict", ns_detect_verdict_name(r->verdict));
    if (e >= 0) e = ns_h5_attr_str(f, "verdict_reason", r->verdict_reason);
    if (e >= 0) e = ns_h5_attr_num(f, "p_min", H5T_NATIVE_DOUBLE, &r->p_min);
    if (r->has_head) { /* detect --head */
        if (e >= 0) e = ns_h5_attr_str(f, "head_id", r->head_id);
        if (e >= 0) e = ns_h5_attr_num(f, "bbsd_p", H5T_NATIVE_DOUBLE, &r->bbsd_p);
        if (e >= 0) e = ns_h5_attr_num(f, "expected_accuracy", H5T_NATIVE_DOUBLE, &r->exp_acc);
        if (e >= 0) e = ns_h5_attr_num(f, "expected_accuracy_ref", H5T_NATIVE_DOUBLE, &r->exp_acc_ref);
    }
    if (e >= 0) e = ns_h5_attr_num(f, "alpha", H5T_NATIVE_DOUBLE, &r->opts.alpha);
    if (e >= 0) e = ns_h5_attr_num(f, "frame_alpha", H5T_NATIVE_DOUBLE, &r->opts.frame_alpha);
    if (e >= 0) e = ns_h5_attr_num(f, "knn_k", H5T_NATIVE_INT32, &knn_k);
    if (e >= 0) e = ns_h5_attr_num(f, "kmeans_k", H5T_NATIVE_INT32, &kmeans_k);
    if (e >= 0) e = ns_h5_attr_num(f, "novel_k", H5T_NATIVE_INT32, &novel_k);
    if (e >= 0) e = ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &created);
    if (e >= 0) e = ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION);
    return e < 0 ? -1 : 0;
}

static herr_t write_frames(hid_t f, const ns_detect_result *r)
{
    herr_t e = 0;
    size_t n = r->tonight.n;
    hid_t g = H5Gcreate2(f, "frames", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    if (e >= 0) e = write_1d(g, "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, n, r->score);
    if (e >= 0) e = write_1d(g, "p_value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, r->pval);
    if (e >= 0) e = write_1d(g, "novel", H5T_STD_U8LE, H5T_NATIVE_UINT8, n, r->novel);
    if (e >= 0) e = write_1d(g, "ref_cluster", H5T_STD_I32LE, H5T_NATIVE_INT, n, r->ref_cluster);
    if (e >= 0) e = write_1d(g, "cluster", H5T_STD_I32LE, H5T_NATIVE_INT, n, r->cluster);
    if (e >= 0) e = write_1d(g, "condition", H5T_STD_I32LE, H5T_NATIVE_INT, n, r->condition);
    if (e >= 0) e = write_1d(g, "clip", H5T_STD_U32LE, H5T_NATIVE_UINT32, n, r->tonight.clip);
    if (e >= 0) e = write_1d(g, "index", H5T_STD_U32LE, H5T_NATIVE_UINT32, n, r->tonight.index);
    if (e >= 0) e = write_1d(g, "view_row", H5T_STD_U64LE, H5T_NATIVE_UINT64, n, r->tonight.view_row);
    H5Gclose(g);
    return e < 0 ? -1 : 0;
}

/* Writes compound table `name` of n rows in type t (may be invalid: a
 * builder failed), then closes t. */
static herr_t write_table(hid_t f, const char *name, hid_t t, size_t n, const void *rows)
{
    herr_t e;
    if (t < 0)
        return -1;
    e = write_1d(f, name, t, t, n, rows);
    H5Tclose(t);
    return e;
}

/* The three compound tables, built in one scratch allocation. */
static herr_t write_tables(hid_t f, const ns_detect_result *r, void *scratch)
{
    det_clip_row *cr = scratch;
    det_cluster_row *kr = scratch;
    det_cond_row *dr = scratch;
    const ns_frameset *fs = &r->tonight;

    memset(scratch, 0, fs->n_clips * sizeof *cr);
    for (size_t c = 0; c < fs->n_clips; c++) {
        const ns_fs_clip *fc = &fs->clips[c];
        snprintf(cr[c].sha256, sizeof cr[c].sha256, "%s", fc->sha256);
        snprintf(cr[c].camera, sizeof cr[c].camera, "%s", fc->camera);
        snprintf(cr[c].source, sizeof cr[c].source, "%s", fc->source);
        cr[c].start_time = fc->start_time;
        cr[c].n_frames = fc->n;
        cr[c].n_novel = r->clips ? r->clips[c].n_novel : 0;
        cr[c].novel_share = r->clips ? r->clips[c].novel_share : NAN;
        cr[c].condition = r->clips ? r->clips[c].condition : -1;
    }
    if (write_table(f, "clips", clip_type(), fs->n_clips, cr) < 0)
        return -1;

    memset(scratch, 0, r->n_clusters * sizeof *kr);
    for (size_t k = 0; k < r->n_clusters; k++) {
        const ns_detect_cluster *c = &r->clusters[k];
        kr[k].id = c->id;
        kr[k].n_tonight = c->n_tonight;
        kr[k].n_ref = c->n_ref;
        kr[k].median_p = c->median_p;
        kr[k].condition = c->condition;
    }
    if (write_table(f, "clusters", cluster_type(), r->n_clusters, kr) < 0)
        return -1;

    memset(scratch, 0, r->n_conditions * sizeof *dr);
    for (size_t k = 0; k < r->n_conditions; k++) {
        const ns_detect_condition *c = &r->conditions[k];
        dr[k].id = c->id;
        dr[k].novel = c->novel;
        dr[k].n_frames = c->n_frames;
        dr[k].n_ref = c->n_ref;
        dr[k].share_tonight = c->share_tonight;
        dr[k].share_ref = c->share_ref;
        dr[k].n_clips = c->n_clips;
        dr[k].n_clusters = c->n_clusters;
        dr[k].median_p = c->median_p;
        dr[k].t_first = c->t_first;
        dr[k].t_last = c->t_last;
        dr[k].medoid = c->medoid < fs->n && fs->view_row ? fs->view_row[c->medoid] : UINT64_MAX;
        memcpy(dr[k].paired_z, c->attr.paired_z, sizeof dr[k].paired_z);
        memcpy(dr[k].rel, c->attr.rel, sizeof dr[k].rel);
        dr[k].exp_acc = r->has_head ? c->exp_acc : NAN;
        dr[k].exp_acc_ref = r->has_head ? c->exp_acc_ref : NAN;
    }
    return write_table(f, "conditions", cond_type(), r->n_conditions, dr);
}

static herr_t write_rest(hid_t f, const ns_detect_result *r)
{
    herr_t e = 0;
    size_t kk = r->kmeans_k > 0 ? (size_t)r->kmeans_k : 0;
    size_t n_null = r->test.null_stats && r->test.n_perm > 0 ? (size_t)r->test.n_perm : 0;
    hid_t g = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    if (e >= 0) e = write_1d(g, "null", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n_null, r->test.null_stats);
    H5Gclose(g);
    if ((g = H5Gcreate2(f, "kmeans", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        return -1;
    e |= write_1d(g, "ref_counts", H5T_STD_U64LE, H5T_NATIVE_UINT64, r->ref_counts ? kk : 0,
                  r->ref_counts);
    e |= write_1d(g, "tonight_counts", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                  r->tonight_counts ? kk : 0, r->tonight_counts);
    H5Gclose(g);
    return e < 0 ? -1 : 0;
}

typedef struct det_save {
    const ns_detect_result *r;
    const ns_reference *ref;
    void *scratch;
} det_save;

static ns_status write_all(hid_t f, const char *tmp, void *ctx)
{
    const det_save *c = ctx;
    if (write_attrs(f, c->r, c->ref) < 0 || write_frames(f, c->r) < 0 ||
        write_tables(f, c->r, c->scratch) < 0 || write_rest(f, c->r) < 0)
        return ns_h5_error(NS_ERR_IO, "cannot write detection results to '%s'", tmp);
    return NS_OK;
}

ns_status ns_detfile_save(const ns_detect_result *r, const ns_reference *ref, const char *path)
{
    ns_h5_init();
    ns_status st;
    det_save c = {r, ref, NULL};
    size_t rows = r->tonight.n_clips;
    size_t bytes;
    if (r->n_clusters > rows)
        rows = r->n_clusters;
    if (r->n_conditions > rows)
        rows = r->n_conditions;
    bytes = rows * sizeof(det_clip_row);
    if (rows * sizeof(det_cond_row) > bytes)
        bytes = rows * sizeof(det_cond_row);
    c.scratch = malloc(bytes ? bytes : 1);
    if (!c.scratch)
        return ns_error(NS_ERR_NOMEM, "out of memory writing '%s'", path);
    st = ns_h5_save_atomic(path, "", write_all, &c);
    free(c.scratch);
    return st;
}

/* ---- history -------------------------------------------------------------- */

typedef struct hist_item {
    ns_history_point p;
    double created;
    char name[256]; /* folder name: the tie-break that keeps the order stable */
} hist_item;

/* Reads one candidate; *ok = 0 when it is not a matching result of ours. */
static void read_point(const char *path, const char *model_id, const char *from, const char *to,
                       const char *before, hist_item *it, int *ok)
{
    char fmt[64], buf[NS_SHA256_HEX + 8];
    int32_t version = 0, shift = 0;
    uint64_t n_novel = 0, frames = 0;
    hid_t f;
    *ok = 0;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        goto done;
    if (ns_h5_read_str_attr(f, path, "ns_format", fmt, sizeof fmt) != NS_OK ||
        strcmp(fmt, NS_DETECT_FORMAT) != 0 ||
        ns_h5_read_attr(f, path, "ns_format_version", H5T_NATIVE_INT32, &version) != NS_OK ||
        version != NS_DETECT_FORMAT_VERSION)
        goto done;
    if (ns_h5_read_str_attr(f, path, "model_id", buf, sizeof buf) != NS_OK ||
        strcmp(buf, model_id) != 0 ||
        ns_h5_read_str_attr(f, path, "reference_nights_from", buf, sizeof buf) != NS_OK ||
        strcmp(buf, from) != 0 ||
        ns_h5_read_str_attr(f, path, "reference_nights_to", buf, sizeof buf) != NS_OK ||
        strcmp(buf, to) != 0)
        goto done;
    /* The attribute holds the NUL too: read into room larger than a night. */
    if (ns_h5_read_str_attr(f, path, "night", buf, sizeof buf) != NS_OK ||
        strlen(buf) >= sizeof it->p.night || strcmp(buf, before) >= 0)
        goto done;
    memcpy(it->p.night, buf, strlen(buf) + 1);
    if (ns_h5_read_attr(f, path, "mmd2", H5T_NATIVE_DOUBLE, &it->p.mmd2) != NS_OK ||
        ns_h5_read_attr(f, path, "p_value", H5T_NATIVE_DOUBLE, &it->p.p_value) != NS_OK ||
        ns_h5_read_attr(f, path, "shift", H5T_NATIVE_INT32, &shift) != NS_OK ||
        ns_h5_read_attr(f, path, "n_novel", H5T_NATIVE_UINT64, &n_novel) != NS_OK ||
        ns_h5_read_attr(f, path, "frames_tonight", H5T_NATIVE_UINT64, &frames) != NS_OK ||
        ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &it->created) != NS_OK)
        goto done;
    it->p.shift = shift;
    it->p.novel_share = frames ? (double)n_novel / (double)frames : NAN;
    *ok = 1;
done:
    if (f >= 0)
        ns_h5_fclose(f);
    H5Eclear2(H5E_DEFAULT);
    ns_error_clear();
}

/* Ascending by night; within a night the newest (then the last folder name)
 * comes last, so a forward pass keeping the last of each night is "newest wins". */
static int hist_cmp(const void *a, const void *b)
{
    const hist_item *x = a, *y = b;
    int c = strcmp(x->p.night, y->p.night);
    if (c)
        return c;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->name, y->name);
}

ns_status ns_detfile_history(const char *dir, const char *model_id, const ns_reference *ref,
                             const char *before, size_t max, ns_history_point **out, size_t *n)
{
    ns_h5_init();
    ns_status st = NS_OK;
    DIR *d = NULL;
    struct dirent *e;
    hist_item *items = NULL;
    size_t n_items = 0, cap = 0, kept = 0, first;
    ns_history_point *pts = NULL;
    const char *from = ref && ref->n_nights ? ref->nights[0] : "";
    const char *to = ref && ref->n_nights ? ref->nights[ref->n_nights - 1] : "";
    *out = NULL;
    *n = 0;
    ns_h5_init();
    d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return NS_OK;
        return ns_error(NS_ERR_IO, "cannot read directory '%s': %s", dir, strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat sb;
        int ok = 0;
        /* A run in progress or killed leaves NAME.tmp.<pid>: never a result. */
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof items->name ||
            ns_is_tmp_name(e->d_name, NULL))
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s/detect.h5", dir, e->d_name) >=
                sizeof path ||
            stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n_items == cap) {
            size_t nc = cap ? cap * 2 : 16;
            hist_item *ni = realloc(items, nc * sizeof *ni);
            if (!ni) {
                st = ns_error(NS_ERR_NOMEM, "out of memory reading history in '%s'", dir);
                goto done;
            }
            items = ni;
            cap = nc;
        }
        memset(&items[n_items], 0, sizeof items[n_items]);
        read_point(path, model_id, from, to, before, &items[n_items], &ok);
        if (!ok)
            continue;
        snprintf(items[n_items].name, sizeof items[n_items].name, "%s", e->d_name);
        n_items++;
    }
    if (n_items == 0)
        goto done;
    qsort(items, n_items, sizeof *items, hist_cmp);
    for (size_t i = 0; i < n_items; i++) { /* keep the last of each night, in place */
        if (kept > 0 && strcmp(items[kept - 1].p.night, items[i].p.night) == 0)
            items[kept - 1] = items[i];
        else
            items[kept++] = items[i];
    }
    first = max < kept ? kept - max : 0;
    if (kept - first == 0)
        goto done;
    pts = malloc((kept - first) * sizeof *pts);
    if (!pts) {
        st = ns_error(NS_ERR_NOMEM, "out of memory reading history in '%s'", dir);
        goto done;
    }
    for (size_t i = first; i < kept; i++)
        pts[i - first] = items[i].p;
    *out = pts;
    *n = kept - first;
done:
    if (d)
        closedir(d);
    free(items);
    return st;
}
