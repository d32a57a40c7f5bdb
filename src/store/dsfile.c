/* dsfile.c -- the dataset file (format in include/nightshift/dataset.h and
 * docs/dataset.md). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nightshift/dataset.h"
#include "store_internal.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

#define MAX_DIM 65536
#define MAX_CLASSES 65536
#define MAX_FRAMES ((uint64_t)1 << 32)
#define LABEL_SETS_MAX 65536

typedef struct strtypes {
    hid_t cls, clip, member, camera, night;
} strtypes;

static void types_close(strtypes *t)
{
    hid_t *all[] = {&t->cls, &t->clip, &t->member, &t->camera, &t->night};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (*all[i] >= 0)
            H5Tclose(*all[i]);
}

static ns_status types_open(strtypes *t)
{
    t->cls = ns_h5_str_type(NS_LABEL_LEN);
    t->clip = ns_h5_str_type(NS_SHA256_HEX);
    t->member = ns_h5_str_type(NS_MEMBER_LEN);
    t->camera = ns_h5_str_type(NS_CAMERA_LEN);
    t->night = ns_h5_str_type(NS_NIGHT_LEN);
    if (t->cls < 0 || t->clip < 0 || t->member < 0 || t->camera < 0 || t->night < 0)
        return ns_h5_error(NS_ERR_INTERNAL, "cannot build the dataset string types");
    return NS_OK;
}

/* ---- writing ------------------------------------------------------------------ */

static ns_status write_attrs(hid_t f, const ns_dataset *ds, const char *tmp)
{
    int32_t ver = NS_DATASET_FORMAT_VERSION, dim = ds->d, ncls = (int32_t)ds->n_classes;
    uint64_t n = ds->n;
    const ns_dataset_audit *a = &ds->audit;
    int32_t passed = a->passed ? 1 : 0;
    hid_t g = H5I_INVALID_HID;
    ns_status st = NS_OK;
    if (ns_h5_attr_str(f, "ns_format", NS_DATASET_FORMAT) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_str(f, "dataset_id", ds->dataset_id) < 0 ||
        ns_h5_attr_str(f, "model_id", ds->model_id) < 0 ||
        ns_h5_attr_num(f, "dim", H5T_NATIVE_INT32, &dim) < 0 ||
        ns_h5_attr_num(f, "n_frames", H5T_NATIVE_UINT64, &n) < 0 ||
        ns_h5_attr_num(f, "n_classes", H5T_NATIVE_INT32, &ncls) < 0 ||
        ns_h5_attr_str(f, "split_by", ds->split_by) < 0 ||
        ns_h5_attr_num(f, "seed", H5T_NATIVE_UINT64, &ds->seed) < 0 ||
        ns_h5_attr_num(f, "guard_minutes", H5T_NATIVE_DOUBLE, &ds->guard_minutes) < 0 ||
        ns_h5_attr_num(f, "val_fraction", H5T_NATIVE_DOUBLE, &ds->val_fraction) < 0 ||
        ns_h5_attr_num(f, "test_fraction", H5T_NATIVE_DOUBLE, &ds->test_fraction) < 0 ||
        ns_h5_attr_str(f, "nights_from", ds->nights_from) < 0 ||
        ns_h5_attr_str(f, "nights_to", ds->nights_to) < 0 ||
        ns_h5_attr_str(f, "label_sets", ds->label_sets ? ds->label_sets : "") < 0 ||
        ns_h5_attr_str(f, "store_id", ds->store_id) < 0 ||
        ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &ds->created) < 0 ||
        ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION) < 0 ||
        (g = H5Gcreate2(f, "audit", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        ns_h5_attr_num(g, "threshold", H5T_NATIVE_DOUBLE, &a->threshold) < 0 ||
        ns_h5_attr_num(g, "n_near_dup", H5T_NATIVE_UINT64, &a->n_near_dup) < 0 ||
        ns_h5_attr_num(g, "n_exact_dup", H5T_NATIVE_UINT64, &a->n_exact_dup) < 0 ||
        ns_h5_attr_num(g, "test_leak_share", H5T_NATIVE_DOUBLE, &a->test_leak_share) < 0 ||
        ns_h5_attr_num(g, "max_leak", H5T_NATIVE_DOUBLE, &a->max_leak) < 0 ||
        ns_h5_attr_num(g, "passed", H5T_NATIVE_INT32, &passed) < 0)
        st = ns_h5_error(NS_ERR_IO, "cannot write the attributes of '%s'", tmp);
    if (g >= 0)
        H5Gclose(g);
    return st;
}

static ns_status write_all(hid_t f, const char *tmp, void *ctx)
{
    const ns_dataset *ds = ctx;
    ns_status st;
    strtypes t = {H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID,
                  H5I_INVALID_HID};
    hid_t g = H5I_INVALID_HID;
    const uint64_t n = ds->n;
    if ((st = types_open(&t)) != NS_OK || (st = write_attrs(f, ds, tmp)) != NS_OK)
        goto done;
    if ((g = H5Gcreate2(f, "frames", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create /frames in '%s'", tmp);
        goto done;
    }
    if ((st = ns_h5_put(f, tmp, "embeddings", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n,
                        (uint64_t)ds->d, ds->emb)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 1, ds->label)) !=
            NS_OK ||
        (st = ns_h5_put(f, tmp, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, n, 1, ds->split)) !=
            NS_OK ||
        (st = ns_h5_put(f, tmp, "classes", t.cls, t.cls, 1, ds->n_classes, 1, ds->classes)) !=
            NS_OK ||
        (st = ns_h5_put(g, tmp, "clip", t.clip, t.clip, 1, n, 1, ds->clip)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "member", t.member, t.member, 1, n, 1, ds->member)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "camera", t.camera, t.camera, 1, n, 1, ds->camera)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "night", t.night, t.night, 1, n, 1, ds->night)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "index", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, n, 1,
                        ds->index)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, n, 1, ds->time)) !=
            NS_OK ||
        (st = ns_h5_put(g, tmp, "condition", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n, 1,
                        ds->condition)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "view_row", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, n, 1,
                        ds->view_row)) != NS_OK)
        goto done;
done:
    if (g >= 0)
        H5Gclose(g);
    types_close(&t);
    return st;
}

/* Bytes after each NUL are zeroed, so the file and the id never depend on
 * what a caller left behind in its buffers. */
static void pad_strings(char *base, size_t n, size_t width)
{
    for (size_t i = 0; i < n; i++) {
        char *s = base + i * width;
        size_t len = strnlen(s, width - 1);
        memset(s + len, 0, width - len);
    }
}

static ns_status check(const ns_dataset *ds, const char *path)
{
    if (ds->d < 1 || ds->d > MAX_DIM || ds->n_classes > MAX_CLASSES || ds->n >= MAX_FRAMES)
        return ns_error(NS_ERR_CORRUPT, "'%s': bad shape: %zu frames of dimension %d, %zu "
                        "classes", path, ds->n, ds->d, ds->n_classes);
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->label[i] < 0 || (size_t)ds->label[i] >= ds->n_classes)
            return ns_error(NS_ERR_CORRUPT, "'%s': frame %zu has label %d outside 0..%zu", path,
                            i, (int)ds->label[i], ds->n_classes);
        if (ds->split[i] > NS_SPLIT_TEST)
            return ns_error(NS_ERR_CORRUPT, "'%s': frame %zu has split %u (0 train, 1 val, "
                            "2 test)", path, i, (unsigned)ds->split[i]);
        if (ds->condition[i] < -1)
            return ns_error(NS_ERR_CORRUPT, "'%s': frame %zu has condition %d", path, i,
                            (int)ds->condition[i]);
    }
    const float *e = ds->emb;
    for (size_t k = 0; k < ds->n * (size_t)ds->d; k++)
        if (!isfinite(e[k]))
            return ns_error(NS_ERR_CORRUPT, "'%s': embedding of frame %zu is not finite", path,
                            k / (size_t)ds->d);
    return NS_OK;
}

ns_status ns_dataset_save(ns_dataset *ds, const char *path)
{
    ns_h5_init();
    ns_status st;
    pad_strings(&ds->classes[0][0], ds->n_classes, NS_LABEL_LEN);
    pad_strings(&ds->clip[0][0], ds->n, NS_SHA256_HEX);
    pad_strings(&ds->member[0][0], ds->n, NS_MEMBER_LEN);
    pad_strings(&ds->camera[0][0], ds->n, NS_CAMERA_LEN);
    pad_strings(&ds->night[0][0], ds->n, NS_NIGHT_LEN);
    if ((st = check(ds, path)) != NS_OK)
        return ns_error_wrap(NS_ERR_USAGE, "dataset not written");
    if ((st = ns_h5_refuse_foreign(path, "dataset", NS_DATASET_FORMAT,
                                   NS_DATASET_FORMAT_VERSION)) != NS_OK)
        return st;
    ns_dataset_content_id(ds, ds->dataset_id);
    return ns_h5_save_atomic(path, "dataset", write_all, ds);
}

/* ---- reading ------------------------------------------------------------------ */

static ns_status read_shape(hid_t f, const char *path, uint64_t *n, int32_t *dim, int32_t *ncls)
{
    ns_status st;
    if ((st = ns_h5_check_format_in(f, path, NS_DATASET_FORMAT, 1, NS_DATASET_FORMAT_VERSION,
                                    NULL)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "dim", H5T_NATIVE_INT32, dim)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_frames", H5T_NATIVE_UINT64, n)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_classes", H5T_NATIVE_INT32, ncls)) != NS_OK)
        return st;
    if (*dim < 1 || *dim > MAX_DIM || *ncls < 0 || *ncls > MAX_CLASSES || *n >= MAX_FRAMES)
        return ns_error(NS_ERR_CORRUPT, "'%s': bad header: %llu frames of dimension %d, %d "
                        "classes", path, (unsigned long long)*n, (int)*dim, (int)*ncls);
    return NS_OK;
}

static ns_status read_header(hid_t f, const char *path, ns_dataset *h)
{
    ns_status st;
    char *sets = NULL;
    int32_t passed = 0;
    hid_t g = H5I_INVALID_HID;
    if ((st = ns_h5_read_str_fit(f, path, "dataset_id", h->dataset_id,
                                  sizeof h->dataset_id)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "model_id", h->model_id, sizeof h->model_id)) !=
            NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "store_id", h->store_id, sizeof h->store_id)) !=
            NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "split_by", h->split_by, sizeof h->split_by)) !=
            NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "nights_from", h->nights_from,
                                  sizeof h->nights_from)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "nights_to", h->nights_to, sizeof h->nights_to)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "seed", H5T_NATIVE_UINT64, &h->seed)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "guard_minutes", H5T_NATIVE_DOUBLE, &h->guard_minutes)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "val_fraction", H5T_NATIVE_DOUBLE, &h->val_fraction)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "test_fraction", H5T_NATIVE_DOUBLE, &h->test_fraction)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &h->created)) != NS_OK)
        goto done;
    if (!(sets = malloc(LABEL_SETS_MAX))) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
        goto done;
    }
    if ((st = ns_h5_read_str_attr(f, path, "label_sets", sets, LABEL_SETS_MAX)) != NS_OK)
        goto done;
    free(h->label_sets);
    if (!(h->label_sets = strdup(sets))) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
        goto done;
    }
    ns_dataset_audit *a = &h->audit;
    if ((g = H5Gopen2(f, "audit", H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /audit", path);
        goto done;
    }
    if ((st = ns_h5_read_attr(g, path, "threshold", H5T_NATIVE_DOUBLE, &a->threshold)) != NS_OK ||
        (st = ns_h5_read_attr(g, path, "n_near_dup", H5T_NATIVE_UINT64, &a->n_near_dup)) !=
            NS_OK ||
        (st = ns_h5_read_attr(g, path, "n_exact_dup", H5T_NATIVE_UINT64, &a->n_exact_dup)) !=
            NS_OK ||
        (st = ns_h5_read_attr(g, path, "test_leak_share", H5T_NATIVE_DOUBLE,
                              &a->test_leak_share)) != NS_OK ||
        (st = ns_h5_read_attr(g, path, "max_leak", H5T_NATIVE_DOUBLE, &a->max_leak)) != NS_OK ||
        (st = ns_h5_read_attr(g, path, "passed", H5T_NATIVE_INT32, &passed)) != NS_OK)
        goto done;
    a->passed = passed != 0;
done:
    if (g >= 0)
        H5Gclose(g);
    free(sets);
    return st;
}

ns_status ns_dataset_load(const char *path, ns_dataset *out)
{
    ns_h5_init();
    ns_status st;
    ns_dataset ds;
    hid_t f = H5I_INVALID_HID;
    strtypes t = {H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID,
                  H5I_INVALID_HID};
    uint64_t n = 0;
    int32_t dim = 0, ncls = 0;
    char id[NS_SHA256_HEX];
    memset(&ds, 0, sizeof ds);
    memset(out, 0, sizeof *out);
    if ((st = ns_h5_open_read(path, "dataset", &f)) != NS_OK ||
        (st = read_shape(f, path, &n, &dim, &ncls)) != NS_OK ||
        (st = types_open(&t)) != NS_OK ||
        (st = ns_dataset_alloc(&ds, (size_t)n, dim, (size_t)ncls)) != NS_OK ||
        (st = read_header(f, path, &ds)) != NS_OK)
        goto done;
    const uint64_t D = (uint64_t)dim;
    if ((st = ns_h5_get(f, path, "embeddings", H5T_NATIVE_FLOAT, 2, n, D, ds.emb)) != NS_OK ||
        (st = ns_h5_get(f, path, "labels", H5T_NATIVE_INT32, 1, n, 0, ds.label)) != NS_OK ||
        (st = ns_h5_get(f, path, "split", H5T_NATIVE_UINT8, 1, n, 0, ds.split)) != NS_OK ||
        (st = ns_h5_get(f, path, "classes", t.cls, 1, ds.n_classes, 0, ds.classes)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/clip", t.clip, 1, n, 0, ds.clip)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/member", t.member, 1, n, 0, ds.member)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/camera", t.camera, 1, n, 0, ds.camera)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/night", t.night, 1, n, 0, ds.night)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/index", H5T_NATIVE_UINT32, 1, n, 0, ds.index)) !=
            NS_OK ||
        (st = ns_h5_get(f, path, "frames/time", H5T_NATIVE_DOUBLE, 1, n, 0, ds.time)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/condition", H5T_NATIVE_INT32, 1, n, 0,
                        ds.condition)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/view_row", H5T_NATIVE_UINT64, 1, n, 0, ds.view_row)) !=
            NS_OK)
        goto done;
    /* Fixed strings from a file may lack their NUL. */
    for (size_t c = 0; c < ds.n_classes; c++)
        ds.classes[c][NS_LABEL_LEN - 1] = '\0';
    for (size_t i = 0; i < ds.n; i++) {
        ds.clip[i][NS_SHA256_HEX - 1] = '\0';
        ds.member[i][NS_MEMBER_LEN - 1] = '\0';
        ds.camera[i][NS_CAMERA_LEN - 1] = '\0';
        ds.night[i][NS_NIGHT_LEN - 1] = '\0';
    }
    if ((st = check(&ds, path)) != NS_OK)
        goto done;
    ns_dataset_content_id(&ds, id);
    if (strcmp(id, ds.dataset_id) != 0) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': content does not match its dataset_id (%.12s, "
                      "content %.12s): the file was changed or damaged", path, ds.dataset_id, id);
        goto done;
    }
    *out = ds;
    memset(&ds, 0, sizeof ds);
done:
    types_close(&t);
    if (f >= 0)
        ns_h5_fclose(f);
    ns_dataset_release(&ds);
    return st;
}
