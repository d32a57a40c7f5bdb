/* reffile.c -- the reference file (format in include/nightshift/reference.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nightshift/reference.h"
#include "store_internal.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "ns_fs_clip first/n are stored as uint64");

#define MAX_DIM 65536
#define MAX_K (1 << 20)

/* Memory layout of ns_fs_clip (the file type is this, packed). */
static hid_t clip_type(void)
{
    herr_t r = 0;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_fs_clip));
    if (t < 0)
        return H5I_INVALID_HID;
    r |= NS_H5_INS_STR(t, 0, ns_fs_clip, sha256);
    r |= NS_H5_INS_STR(t, 0, ns_fs_clip, camera);
    r |= NS_H5_INS_STR(t, 0, ns_fs_clip, night);
    r |= NS_H5_INS_STR(t, 0, ns_fs_clip, source);
    r |= NS_H5_INS(t, 0, ns_fs_clip, start_time, H5T_NATIVE_DOUBLE);
    r |= NS_H5_INS(t, 0, ns_fs_clip, first, H5T_NATIVE_UINT64);
    r |= NS_H5_INS(t, 0, ns_fs_clip, n, H5T_NATIVE_UINT64);
    r |= NS_H5_INS(t, 0, ns_fs_clip, catalog_row, H5T_NATIVE_UINT32);
    return ns_h5_type_done(t, r);
}

/* ---- writing ------------------------------------------------------------------ */

/* Creates dataset `name` (ftype in the file, data in mtype) and writes it. */
static ns_status put(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype,
                     int rank, hsize_t d0, hsize_t d1, const void *data)
{
    ns_status st = NS_OK;
    hsize_t dims[2] = {d0, d1};
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    ft = H5Tcopy(ftype);
    if (ft < 0 || (H5Tget_class(ft) == H5T_COMPOUND && H5Tpack(ft) < 0) ||
        (sp = H5Screate_simple(rank, dims, NULL)) < 0 ||
        (d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (d0 > 0 && d1 > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        st = ns_h5_error(NS_ERR_IO, "cannot write %s of '%s'", name, path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    return st;
}

static ns_status write_root_attrs(hid_t f, const ns_reference *r, const char *tmp)
{
    int32_t ver = NS_REF_FORMAT_VERSION, dim = r->sample.d, knn_k = r->knn_k,
            kmeans_k = r->kmeans_k, n_nights = (int32_t)r->n_nights, whiten = r->whiten != 0,
            folds = r->whiten_folds;
    const char *from = r->n_nights ? r->nights[0] : "";
    const char *to = r->n_nights ? r->nights[r->n_nights - 1] : "";
    if (ns_h5_attr_str(f, "ns_format", NS_REF_FORMAT) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_str(f, "model_id", r->model_id) < 0 ||
        ns_h5_attr_str(f, "model_name", r->model_name) < 0 ||
        ns_h5_attr_num(f, "dim", H5T_NATIVE_INT32, &dim) < 0 ||
        ns_h5_attr_num(f, "knn_k", H5T_NATIVE_INT32, &knn_k) < 0 ||
        ns_h5_attr_num(f, "kmeans_k", H5T_NATIVE_INT32, &kmeans_k) < 0 ||
        ns_h5_attr_num(f, "seed", H5T_NATIVE_UINT64, &r->seed) < 0 ||
        ns_h5_attr_num(f, "sigma", H5T_NATIVE_DOUBLE, &r->sigma) < 0 ||
        ns_h5_attr_str(f, "nights_from", from) < 0 || ns_h5_attr_str(f, "nights_to", to) < 0 ||
        ns_h5_attr_num(f, "n_nights", H5T_NATIVE_INT32, &n_nights) < 0 ||
        ns_h5_attr_num(f, "frame_cap", H5T_NATIVE_UINT64, &r->frame_cap) < 0 ||
        ns_h5_attr_num(f, "clips_total", H5T_NATIVE_UINT64, &r->clips_total) < 0 ||
        ns_h5_attr_num(f, "frames_total", H5T_NATIVE_UINT64, &r->frames_total) < 0 ||
        ns_h5_attr_str(f, "store", r->store) < 0 ||
        ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &r->created) < 0 ||
        ns_h5_attr_num(f, "whiten", H5T_NATIVE_INT32, &whiten) < 0 ||
        ns_h5_attr_num(f, "whiten_folds", H5T_NATIVE_INT32, &folds) < 0 ||
        ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION) < 0)
        return ns_h5_error(NS_ERR_IO, "cannot write the attributes of '%s'", tmp);
    return NS_OK;
}

static ns_status write_body(hid_t f, const ns_reference *r, const char *tmp)
{
    ns_status st = NS_OK;
    const ns_frameset *s = &r->sample;
    const hsize_t n = s->n, d = (hsize_t)s->d, k = (hsize_t)r->knn_k, km = (hsize_t)r->kmeans_k,
                  P = NS_PROP_COUNT, nc = r->n_cameras;
    hid_t gs = H5I_INVALID_HID, gk = H5I_INVALID_HID, gp = H5I_INVALID_HID, dp = H5I_INVALID_HID;
    hid_t t_night = ns_h5_str_type(NS_NIGHT_LEN), t_cam = ns_h5_str_type(NS_CAMERA_LEN),
          t_mem = ns_h5_str_type(NS_MEMBER_LEN), t_clip = clip_type();
    if (t_night < 0 || t_cam < 0 || t_mem < 0 || t_clip < 0 ||
        (gs = H5Gcreate2(f, "sample", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (gk = H5Gcreate2(f, "kmeans", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (gp = H5Gcreate2(f, "props", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create the groups of '%s'", tmp);
        goto done;
    }
    if ((st = put(f, tmp, "nights", t_night, t_night, 1, r->n_nights, 1, r->nights)) != NS_OK ||
        (st = put(f, tmp, "clips", t_clip, t_clip, 1, s->n_clips, 1, s->clips)) != NS_OK ||
        (st = put(gs, tmp, "emb", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n, d, s->emb)) != NS_OK ||
        (st = put(gs, tmp, "props", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n, P, s->props)) !=
            NS_OK ||
        (st = put(gs, tmp, "clip", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, n, 1, s->clip)) != NS_OK ||
        (st = put(gs, tmp, "index", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, n, 1, s->index)) !=
            NS_OK ||
        (st = put(gs, tmp, "timestamp", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, n, 1,
                  s->timestamp)) != NS_OK ||
        (st = put(gs, tmp, "member", t_mem, t_mem, 1, n, 1, s->member)) != NS_OK ||
        (st = put(gs, tmp, "view_row", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, n, 1, s->view_row)) !=
            NS_OK ||
        (st = put(gs, tmp, "loco", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, n, 1, r->loco)) != NS_OK ||
        (st = put(gs, tmp, "loco_idx", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, n, k, r->loco_idx)) !=
            NS_OK ||
        (st = put(gk, tmp, "centroids", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, km, d,
                  r->centroids)) != NS_OK ||
        (st = put(gk, tmp, "counts", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, km, 1, r->counts)) !=
            NS_OK ||
        (st = put(gk, tmp, "radius_mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, km, 1,
                  r->radius_mean)) != NS_OK ||
        (st = put(gk, tmp, "radius_max", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, km, 1,
                  r->radius_max)) != NS_OK ||
        (st = put(gp, tmp, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, P, 1, r->prop_mean)) !=
            NS_OK ||
        (st = put(gp, tmp, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, P, 1, r->prop_std)) !=
            NS_OK ||
        (st = put(gp, tmp, "delta_std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, P, 1,
                  r->prop_delta_std)) != NS_OK ||
        (st = put(gp, tmp, "cameras", t_cam, t_cam, 1, nc, 1, r->cameras)) != NS_OK ||
        (st = put(gp, tmp, "camera_mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, nc, P,
                  r->cam_mean)) != NS_OK ||
        (st = put(gp, tmp, "camera_std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, nc, P,
                  r->cam_std)) != NS_OK ||
        (st = put(gp, tmp, "camera_n", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, nc, 1, r->cam_n)) !=
            NS_OK)
        goto done;
    if (ns_h5_attr_num(gk, "inertia", H5T_NATIVE_DOUBLE, &r->inertia) < 0 ||
        (dp = H5Dopen2(gs, "props", H5P_DEFAULT)) < 0 || ns_h5_write_prop_names(dp) < 0)
        st = ns_h5_error(NS_ERR_IO, "cannot write the attributes of '%s'", tmp);
done:
    if (dp >= 0) H5Dclose(dp);
    if (gs >= 0) H5Gclose(gs);
    if (gk >= 0) H5Gclose(gk);
    if (gp >= 0) H5Gclose(gp);
    if (t_night >= 0) H5Tclose(t_night);
    if (t_cam >= 0) H5Tclose(t_cam);
    if (t_mem >= 0) H5Tclose(t_mem);
    if (t_clip >= 0) H5Tclose(t_clip);
    return st;
}

/* Version 2: the whitening transform (whiten = 1 only). */
static ns_status write_whiten(hid_t f, const ns_reference *r, const char *tmp)
{
    ns_status st = NS_OK;
    hsize_t d = (hsize_t)r->wh.d;
    hid_t g;
    if (!r->whiten)
        return NS_OK;
    if (!r->wh.W || r->wh.d != r->sample.d)
        return ns_error(NS_ERR_INTERNAL, "reference '%s': whitening missing or of the wrong "
                        "dimension", tmp);
    if ((g = H5Gcreate2(f, "whiten", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        return ns_h5_error(NS_ERR_IO, "cannot create /whiten in '%s'", tmp);
    if ((st = put(g, tmp, "mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d, 1, r->wh.mean)) ==
            NS_OK &&
        (st = put(g, tmp, "matrix", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d, d, r->wh.W)) ==
            NS_OK &&
        ns_h5_attr_num(g, "shrinkage", H5T_NATIVE_DOUBLE, &r->wh.shrinkage) < 0)
        st = ns_h5_error(NS_ERR_IO, "cannot write /whiten of '%s'", tmp);
    H5Gclose(g);
    return st;
}

static ns_status write_all(hid_t f, const char *tmp, void *ctx)
{
    const ns_reference *r = ctx;
    ns_status st = write_root_attrs(f, r, tmp);
    if (st == NS_OK)
        st = write_body(f, r, tmp);
    return st != NS_OK ? st : write_whiten(f, r, tmp);
}

ns_status ns_reference_save(const ns_reference *r, const char *path)
{
    ns_h5_init();
    return ns_h5_save_atomic(path, "reference", write_all, (void *)r);
}

/* ---- reading ------------------------------------------------------------------ */

/* Reads dataset `name` after checking its shape is exactly (d0[, d1]). */
static ns_status get(hid_t loc, const char *path, const char *name, hid_t mtype, int rank,
                     hsize_t d0, hsize_t d1, void *out)
{
    ns_status st = NS_OK;
    hsize_t dims[2] = {0, 0}, want[2] = {d0, d1};
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), sp = H5I_INVALID_HID;
    if (d < 0 || (sp = H5Dget_space(d)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open %s", path, name);
        goto done;
    }
    int got = H5Sget_simple_extent_ndims(sp);
    if (got != rank || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[0] != want[0] ||
        (rank == 2 && dims[1] != want[1])) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': %s has shape (%llu, %llu) of rank %d, expected "
                      "(%llu, %llu) of rank %d", path, name, (unsigned long long)dims[0],
                      (unsigned long long)dims[1], got, (unsigned long long)d0,
                      (unsigned long long)d1, rank);
        goto done;
    }
    if (d0 > 0 && (rank == 1 || d1 > 0) && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read %s", path, name);
done:
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return st;
}

/* Rows of dataset `name`. */
static ns_status rows_of(hid_t loc, const char *path, const char *name, uint64_t *n)
{
    ns_status st;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open %s", path, name);
    st = ns_h5_rows(d, path, name, n);
    H5Dclose(d);
    return st;
}

static ns_status read_attrs(hid_t f, const char *path, ns_reference *r, int *dim)
{
    ns_status st;
    char buf[NS_SOURCE_LEN + 8];
    int32_t ver = 0, d = 0, knn_k = 0, kmeans_k = 0, n_nights = 0;
    if ((st = ns_h5_read_str_attr(f, path, "ns_format", buf, sizeof buf)) != NS_OK)
        return ns_error_wrap(NS_ERR_FORMAT, "not a %s file", NS_REF_FORMAT);
    if (strcmp(buf, NS_REF_FORMAT) != 0)
        return ns_error(NS_ERR_FORMAT, "'%s': ns_format is '%.64s', expected '%s'", path, buf,
                        NS_REF_FORMAT);
    if ((st = ns_h5_read_attr(f, path, "ns_format_version", H5T_NATIVE_INT32, &ver)) != NS_OK)
        return st;
    /* Version 1 lacks the whitening only: it still loads, with raw distances. */
    if (ver != 1 && ver != NS_REF_FORMAT_VERSION)
        return ns_error(NS_ERR_FORMAT, "'%s': %s version %d, expected 1..%d (rebuild the "
                        "reference)", path, NS_REF_FORMAT, (int)ver, NS_REF_FORMAT_VERSION);
    r->format_version = ver;
    if (ver >= 2) {
        int32_t wh = 0, folds = 0;
        if ((st = ns_h5_read_attr(f, path, "whiten", H5T_NATIVE_INT32, &wh)) != NS_OK ||
            (st = ns_h5_read_attr(f, path, "whiten_folds", H5T_NATIVE_INT32, &folds)) != NS_OK)
            return st;
        if ((wh != 0 && wh != 1) || (wh && folds < 2))
            return ns_error(NS_ERR_CORRUPT, "'%s': bad whiten attributes (%d, %d folds)", path,
                            (int)wh, (int)folds);
        r->whiten = wh;
        r->whiten_folds = folds;
    }
    if ((st = ns_h5_read_str_attr(f, path, "model_id", buf, sizeof buf)) != NS_OK)
        return st;
    size_t id_len = strlen(buf);
    snprintf(r->model_id, sizeof r->model_id, "%.*s", NS_SHA256_HEX - 1, buf);
    if ((st = ns_h5_read_str_attr(f, path, "model_name", buf, sizeof buf)) != NS_OK)
        return st;
    snprintf(r->model_name, sizeof r->model_name, "%.*s", (int)sizeof r->model_name - 1, buf);
    if ((st = ns_h5_read_str_attr(f, path, "store", buf, sizeof buf)) != NS_OK)
        return st;
    snprintf(r->store, sizeof r->store, "%.*s", (int)sizeof r->store - 1, buf);
    if ((st = ns_h5_read_attr(f, path, "dim", H5T_NATIVE_INT32, &d)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "knn_k", H5T_NATIVE_INT32, &knn_k)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "kmeans_k", H5T_NATIVE_INT32, &kmeans_k)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_nights", H5T_NATIVE_INT32, &n_nights)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "seed", H5T_NATIVE_UINT64, &r->seed)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "sigma", H5T_NATIVE_DOUBLE, &r->sigma)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "frame_cap", H5T_NATIVE_UINT64, &r->frame_cap)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "clips_total", H5T_NATIVE_UINT64, &r->clips_total)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "frames_total", H5T_NATIVE_UINT64, &r->frames_total)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &r->created)) != NS_OK)
        return st;
    if (id_len != NS_SHA256_HEX - 1 || d < 1 || d > MAX_DIM || knn_k < 1 ||
        knn_k > MAX_K || kmeans_k < 1 || kmeans_k > MAX_K || n_nights < 1)
        return ns_error(NS_ERR_CORRUPT, "'%s': bad header (model_id '%.70s', dim %d, knn_k %d, "
                        "kmeans_k %d, n_nights %d)", path, r->model_id, (int)d, (int)knn_k,
                        (int)kmeans_k, (int)n_nights);
    *dim = d;
    r->knn_k = knn_k;
    r->kmeans_k = kmeans_k;
    r->n_nights = (size_t)n_nights;
    return NS_OK;
}

/* Row of the first non-finite value of v[0..n), or n (issue 16 defect 8). */
static size_t first_nonfinite(const float *v, size_t n)
{
    size_t i = 0;
    while (i < n && isfinite(v[i]))
        i++;
    return i;
}

/* Every number detect computes with is finite: a NaN in the sample or the
 * calibration would make every frame "not novel" without a word. */
static ns_status check_finite(const ns_reference *r, const char *path)
{
    const ns_frameset *s = &r->sample;
    const size_t D = (size_t)s->d, K = (size_t)r->knn_k, KM = (size_t)r->kmeans_k;
    size_t i;
    if ((i = first_nonfinite(s->emb, s->n * D)) < s->n * D)
        return ns_error(NS_ERR_CORRUPT, "'%s': /sample/emb row %zu holds a non-finite value "
                        "(%g); rebuild the reference from a good store", path, i / D,
                        (double)s->emb[i]);
    for (i = 0; i < s->n; i++) {
        float v = r->loco[i];
        /* +inf only where the frame has fewer than k other-clip neighbours. */
        int missing = r->loco_idx[i * K + K - 1] < 0;
        if (isnan(v) || v < 0 || (isinf(v) && !missing))
            return ns_error(NS_ERR_CORRUPT, "'%s': /sample/loco[%zu] is %g, expected a finite "
                            "distance >= 0; rebuild the reference", path, i, (double)v);
    }
    if ((i = first_nonfinite(r->centroids, KM * D)) < KM * D)
        return ns_error(NS_ERR_CORRUPT, "'%s': /kmeans/centroids row %zu holds a non-finite "
                        "value", path, i / D);
    for (i = 0; i < KM; i++)
        if (!(r->radius_mean[i] >= 0) || !(r->radius_max[i] >= 0) ||
            isinf(r->radius_mean[i]) || isinf(r->radius_max[i]))
            return ns_error(NS_ERR_CORRUPT, "'%s': /kmeans radius of centroid %zu is not a "
                            "finite distance", path, i);
    if (!isfinite(r->sigma) || r->sigma <= 0)
        return ns_error(NS_ERR_CORRUPT, "'%s': attribute sigma is %g, expected > 0", path,
                        r->sigma);
    return NS_OK;
}

/* Cross-references that later stages index with: checked once here. */
static ns_status check_body(const ns_reference *r, const char *path)
{
    const ns_frameset *s = &r->sample;
    size_t next = 0;
    for (size_t c = 0; c < s->n_clips; c++) {
        if (s->clips[c].first != next || s->clips[c].n > s->n - next)
            return ns_error(NS_ERR_CORRUPT, "'%s': /clips row %zu covers frames %zu..%zu, "
                            "expected to start at %zu of %zu", path, c, s->clips[c].first,
                            s->clips[c].first + s->clips[c].n, next, s->n);
        for (size_t i = next; i < next + s->clips[c].n; i++)
            if (s->clip[i] != c)
                return ns_error(NS_ERR_CORRUPT, "'%s': /sample/clip[%zu] is %u, expected %zu",
                                path, i, s->clip[i], c);
        next += s->clips[c].n;
    }
    if (next != s->n)
        return ns_error(NS_ERR_CORRUPT, "'%s': /clips cover %zu of %zu sample frames", path, next,
                        s->n);
    for (size_t c = 1; c < r->n_cameras; c++)
        if (strcmp(r->cameras[c - 1], r->cameras[c]) >= 0)
            return ns_error(NS_ERR_CORRUPT, "'%s': /props/cameras is not sorted at row %zu", path,
                            c);
    for (size_t i = 0; i < s->n * (size_t)r->knn_k; i++)
        if (r->loco_idx[i] < -1 || r->loco_idx[i] >= (int64_t)s->n)
            return ns_error(NS_ERR_CORRUPT, "'%s': /sample/loco_idx holds %lld, outside 0..%zu",
                            path, (long long)r->loco_idx[i], s->n);
    return NS_OK;
}

static ns_status read_whiten(hid_t f, const char *path, ns_reference *r)
{
    ns_status st = NS_OK;
    hsize_t d = (hsize_t)r->sample.d;
    hid_t g;
    if (!r->whiten)
        return NS_OK;
    if ((g = H5Gopen2(f, "whiten", H5P_DEFAULT)) < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "'%s': whiten = 1 but no /whiten", path);
    r->wh.d = r->sample.d;
    r->wh.mean = malloc((size_t)d * sizeof *r->wh.mean);
    r->wh.W = malloc((size_t)(d * d) * sizeof *r->wh.W);
    if (!r->wh.mean || !r->wh.W)
        st = ns_error(NS_ERR_NOMEM, "'%s': no memory for the whitening (dim %d)", path,
                      r->sample.d);
    if (st == NS_OK)
        st = get(f, path, "whiten/mean", H5T_NATIVE_FLOAT, 1, d, 0, r->wh.mean);
    if (st == NS_OK)
        st = get(f, path, "whiten/matrix", H5T_NATIVE_FLOAT, 2, d, d, r->wh.W);
    if (st == NS_OK)
        st = ns_h5_read_attr(g, path, "shrinkage", H5T_NATIVE_DOUBLE, &r->wh.shrinkage);
    H5Gclose(g);
    for (hsize_t i = 0; st == NS_OK && i < d * d; i++)
        if (!isfinite(r->wh.W[i]))
            st = ns_error(NS_ERR_CORRUPT, "'%s': /whiten/matrix holds a non-finite value", path);
    return st;
}

ns_status ns_reference_load(const char *path, ns_reference *out)
{
    ns_h5_init();
    ns_status st = NS_OK;
    ns_reference r;
    ns_frameset *s = &r.sample;
    hid_t f = H5I_INVALID_HID, gk = H5I_INVALID_HID, t_night = H5I_INVALID_HID,
          t_cam = H5I_INVALID_HID, t_mem = H5I_INVALID_HID, t_clip = H5I_INVALID_HID;
    uint64_t n = 0, n_clips = 0, n_cam = 0;
    int dim = 0;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    ns_h5_init();
    if (access(path, R_OK) != 0)
        return ns_error(NS_ERR_IO, "cannot open reference '%s': %s", path, strerror(errno));
    htri_t is_h5 = H5Fis_hdf5(path);
    if (is_h5 <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_FORMAT, "'%s' is not a %s file (not HDF5, or damaged at the "
                        "start)", path, NS_REF_FORMAT);
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "cannot open reference '%s' (truncated or damaged)",
                         path);
        goto done;
    }
    if ((st = read_attrs(f, path, &r, &dim)) != NS_OK)
        goto done;
    t_night = ns_h5_str_type(NS_NIGHT_LEN);
    t_cam = ns_h5_str_type(NS_CAMERA_LEN);
    t_mem = ns_h5_str_type(NS_MEMBER_LEN);
    t_clip = clip_type();
    if (t_night < 0 || t_cam < 0 || t_mem < 0 || t_clip < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the reference types");
        goto done;
    }
    if ((st = rows_of(f, path, "sample/emb", &n)) != NS_OK ||
        (st = rows_of(f, path, "clips", &n_clips)) != NS_OK ||
        (st = rows_of(f, path, "props/cameras", &n_cam)) != NS_OK)
        goto done;
    const size_t N = n ? (size_t)n : 1, D = (size_t)dim, K = (size_t)r.knn_k,
                 KM = (size_t)r.kmeans_k, P = NS_PROP_COUNT, NC = n_cam ? (size_t)n_cam : 1;
    s->n = (size_t)n;
    s->d = dim;
    s->n_clips = (size_t)n_clips;
    r.n_cameras = (size_t)n_cam;
    memcpy(s->model_id, r.model_id, NS_SHA256_HEX);
    if ((st = ns_frameset_alloc(s, N, (size_t)n_clips)) != NS_OK) {
        st = ns_error_wrap(st, "'%s'", path);
        goto done;
    }
    r.nights = calloc(r.n_nights, sizeof *r.nights);
    r.loco = malloc(N * sizeof *r.loco);
    r.loco_idx = malloc(N * K * sizeof *r.loco_idx);
    r.centroids = malloc(KM * D * sizeof *r.centroids);
    r.counts = malloc(KM * sizeof *r.counts);
    r.radius_mean = malloc(KM * sizeof *r.radius_mean);
    r.radius_max = malloc(KM * sizeof *r.radius_max);
    r.cameras = calloc(NC, sizeof *r.cameras);
    r.cam_mean = malloc(NC * P * sizeof *r.cam_mean);
    r.cam_std = malloc(NC * P * sizeof *r.cam_std);
    r.cam_n = malloc(NC * sizeof *r.cam_n);
    if (!r.nights || !r.loco || !r.loco_idx ||
        !r.centroids || !r.counts || !r.radius_mean || !r.radius_max || !r.cameras ||
        !r.cam_mean || !r.cam_std || !r.cam_n) {
        st = ns_error(NS_ERR_NOMEM, "'%s': no memory for a reference of %llu frames (dim %d)",
                      path, (unsigned long long)n, dim);
        goto done;
    }
    if ((st = get(f, path, "nights", t_night, 1, r.n_nights, 0, r.nights)) != NS_OK ||
        (st = get(f, path, "clips", t_clip, 1, n_clips, 0, s->clips)) != NS_OK ||
        (st = get(f, path, "sample/emb", H5T_NATIVE_FLOAT, 2, n, D, s->emb)) != NS_OK ||
        (st = get(f, path, "sample/props", H5T_NATIVE_FLOAT, 2, n, P, s->props)) != NS_OK ||
        (st = get(f, path, "sample/clip", H5T_NATIVE_UINT32, 1, n, 0, s->clip)) != NS_OK ||
        (st = get(f, path, "sample/index", H5T_NATIVE_UINT32, 1, n, 0, s->index)) != NS_OK ||
        (st = get(f, path, "sample/timestamp", H5T_NATIVE_DOUBLE, 1, n, 0, s->timestamp)) !=
            NS_OK ||
        (st = get(f, path, "sample/member", t_mem, 1, n, 0, s->member)) != NS_OK ||
        (st = get(f, path, "sample/view_row", H5T_NATIVE_UINT64, 1, n, 0, s->view_row)) !=
            NS_OK ||
        (st = get(f, path, "sample/loco", H5T_NATIVE_FLOAT, 1, n, 0, r.loco)) != NS_OK ||
        (st = get(f, path, "sample/loco_idx", H5T_NATIVE_INT64, 2, n, K, r.loco_idx)) != NS_OK ||
        (st = get(f, path, "kmeans/centroids", H5T_NATIVE_FLOAT, 2, KM, D, r.centroids)) !=
            NS_OK ||
        (st = get(f, path, "kmeans/counts", H5T_NATIVE_UINT64, 1, KM, 0, r.counts)) != NS_OK ||
        (st = get(f, path, "kmeans/radius_mean", H5T_NATIVE_FLOAT, 1, KM, 0, r.radius_mean)) !=
            NS_OK ||
        (st = get(f, path, "kmeans/radius_max", H5T_NATIVE_FLOAT, 1, KM, 0, r.radius_max)) !=
            NS_OK ||
        (st = get(f, path, "props/mean", H5T_NATIVE_DOUBLE, 1, P, 0, r.prop_mean)) != NS_OK ||
        (st = get(f, path, "props/std", H5T_NATIVE_DOUBLE, 1, P, 0, r.prop_std)) != NS_OK ||
        (st = get(f, path, "props/delta_std", H5T_NATIVE_DOUBLE, 1, P, 0, r.prop_delta_std)) !=
            NS_OK ||
        (st = get(f, path, "props/cameras", t_cam, 1, n_cam, 0, r.cameras)) != NS_OK ||
        (st = get(f, path, "props/camera_mean", H5T_NATIVE_DOUBLE, 2, n_cam, P, r.cam_mean)) !=
            NS_OK ||
        (st = get(f, path, "props/camera_std", H5T_NATIVE_DOUBLE, 2, n_cam, P, r.cam_std)) !=
            NS_OK ||
        (st = get(f, path, "props/camera_n", H5T_NATIVE_UINT64, 1, n_cam, 0, r.cam_n)) != NS_OK)
        goto done;
    gk = H5Gopen2(f, "kmeans", H5P_DEFAULT);
    if (gk < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /kmeans", path);
        goto done;
    }
    if ((st = ns_h5_read_attr(gk, path, "inertia", H5T_NATIVE_DOUBLE, &r.inertia)) != NS_OK)
        goto done;
    /* Fixed strings from a file may lack their NUL. */
    for (size_t i = 0; i < r.n_nights; i++)
        r.nights[i][NS_NIGHT_LEN - 1] = '\0';
    for (size_t i = 0; i < r.n_cameras; i++)
        r.cameras[i][NS_CAMERA_LEN - 1] = '\0';
    for (size_t i = 0; i < s->n; i++)
        s->member[i][NS_MEMBER_LEN - 1] = '\0';
    for (size_t c = 0; c < s->n_clips; c++) {
        ns_fs_clip *fc = &s->clips[c];
        fc->sha256[NS_SHA256_HEX - 1] = fc->camera[NS_CAMERA_LEN - 1] = '\0';
        fc->night[NS_NIGHT_LEN - 1] = fc->source[NS_SOURCE_LEN - 1] = '\0';
    }
    if ((st = check_body(&r, path)) != NS_OK || (st = check_finite(&r, path)) != NS_OK ||
        (st = read_whiten(f, path, &r)) != NS_OK)
        goto done;
    if ((st = ns_reference_calibrate(&r)) != NS_OK) {
        st = ns_error_wrap(st, "'%s'", path);
        goto done;
    }
    *out = r;
    memset(&r, 0, sizeof r);
done:
    if (gk >= 0) H5Gclose(gk);
    if (t_night >= 0) H5Tclose(t_night);
    if (t_cam >= 0) H5Tclose(t_cam);
    if (t_mem >= 0) H5Tclose(t_mem);
    if (t_clip >= 0) H5Tclose(t_clip);
    if (f >= 0) ns_h5_fclose(f);
    ns_reference_release(&r);
    return st;
}
