/* headfile.c -- the head file (format in include/nightshift/head.h and
 * docs/head.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/head.h"
#include "store_internal.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

#define MAX_DIM 65536
#define MAX_HIDDEN 65536
#define MAX_CLASSES 65536
#define MAX_EPOCHS 1000000
#define TEXT_MAX 65536 /* label_sets, options */

static size_t in_dim(const ns_head *h)
{
    return h->kind == NS_HEAD_MLP ? (size_t)h->hidden : (size_t)h->d;
}

/* ---- checks shared by save and load -------------------------------------------- */

static ns_status check_finite(const float *x, size_t n, const char *path, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ns_error(NS_ERR_CORRUPT, "'%s': %s[%zu] is not finite", path, what, i);
    return NS_OK;
}

static ns_status check_content(const ns_head *h, const char *path)
{
    ns_status st;
    const size_t C = (size_t)h->n_classes;
    if ((h->kind != NS_HEAD_SOFTMAX && h->kind != NS_HEAD_MLP) || h->d < 1 || h->d > MAX_DIM ||
        h->n_classes < 1 || h->n_classes > MAX_CLASSES ||
        (h->kind == NS_HEAD_MLP && (h->hidden < 1 || h->hidden > MAX_HIDDEN)) ||
        (h->kind == NS_HEAD_SOFTMAX && h->hidden != 0))
        return ns_error(NS_ERR_CORRUPT, "'%s': bad head shape (%s, dimension %d, hidden %d, %d "
                        "classes)", path, ns_head_kind_name(h->kind), h->d, h->hidden,
                        h->n_classes);
    if (!(h->temperature > 0.0f) || !isfinite(h->temperature))
        return ns_error(NS_ERR_CORRUPT, "'%s': temperature %g is not positive", path,
                        (double)h->temperature);
    if ((st = check_finite(h->w, C * in_dim(h), path, "/w")) != NS_OK ||
        (st = check_finite(h->b, C, path, "/b")) != NS_OK)
        return st;
    if (h->kind == NS_HEAD_MLP &&
        ((st = check_finite(h->w1, (size_t)h->hidden * (size_t)h->d, path, "/w1")) != NS_OK ||
         (st = check_finite(h->b1, (size_t)h->hidden, path, "/b1")) != NS_OK))
        return st;
    for (size_t c = 0; c < C; c++) {
        if (!h->classes[c][0])
            return ns_error(NS_ERR_CORRUPT, "'%s': class %zu has an empty name", path, c);
        for (size_t k = 0; k < c; k++)
            if (strcmp(h->classes[c], h->classes[k]) == 0)
                return ns_error(NS_ERR_CORRUPT, "'%s': class '%s' appears twice", path,
                                h->classes[c]);
    }
    uint8_t dig[NS_SHA256_LEN];
    if (ns_sha256_parse(h->model_id, dig) != NS_OK)
        return ns_error(NS_ERR_CORRUPT, "'%s': model_id '%.80s' is not a SHA-256", path,
                        h->model_id);
    return NS_OK;
}

/* ---- writing ------------------------------------------------------------------ */

static ns_status write_attrs(hid_t f, const ns_head *h, const char *tmp)
{
    int32_t ver = NS_HEAD_FORMAT_VERSION, dim = h->d, hid = h->hidden, ncls = h->n_classes;
    if (ns_h5_attr_str(f, "ns_format", NS_HEAD_FORMAT) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_str(f, "head_id", h->head_id) < 0 ||
        ns_h5_attr_str(f, "kind", ns_head_kind_name(h->kind)) < 0 ||
        ns_h5_attr_num(f, "dim", H5T_NATIVE_INT32, &dim) < 0 ||
        ns_h5_attr_num(f, "hidden", H5T_NATIVE_INT32, &hid) < 0 ||
        ns_h5_attr_num(f, "n_classes", H5T_NATIVE_INT32, &ncls) < 0 ||
        ns_h5_attr_num(f, "temperature", H5T_IEEE_F32LE, &h->temperature) < 0 ||
        ns_h5_attr_str(f, "model_id", h->model_id) < 0 ||
        ns_h5_attr_str(f, "dataset_id", h->dataset_id) < 0 ||
        ns_h5_attr_str(f, "label_sets", h->label_sets ? h->label_sets : "") < 0 ||
        ns_h5_attr_str(f, "options", h->options ? h->options : "") < 0 ||
        ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &h->created) < 0 ||
        ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION) < 0)
        return ns_h5_error(NS_ERR_IO, "cannot write the attributes of '%s'", tmp);
    return NS_OK;
}

static ns_status write_epochs(hid_t f, const ns_head *h, const char *tmp)
{
    ns_status st = NS_OK;
    const size_t E = h->n_epochs;
    hid_t g = H5Gcreate2(f, "epochs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int32_t *ep = malloc((E ? E : 1) * sizeof *ep);
    double *v = malloc((E ? E : 1) * 3 * sizeof *v);
    if (g < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create /epochs in '%s'", tmp);
        goto done;
    }
    if (!ep || !v) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %zu epochs", tmp, E);
        goto done;
    }
    for (size_t e = 0; e < E; e++) {
        ep[e] = h->epochs[e].epoch;
        v[e] = h->epochs[e].train_loss;
        v[E + e] = h->epochs[e].val_loss;
        v[2 * E + e] = h->epochs[e].val_accuracy;
    }
    if ((st = ns_h5_put(g, tmp, "epoch", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, E, 1, ep)) !=
            NS_OK ||
        (st = ns_h5_put(g, tmp, "train_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, E, 1, v)) !=
            NS_OK ||
        (st = ns_h5_put(g, tmp, "val_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, E, 1,
                        v + E)) != NS_OK ||
        (st = ns_h5_put(g, tmp, "val_accuracy", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, E, 1,
                        v + 2 * E)) != NS_OK)
        goto done;
done:
    if (g >= 0)
        H5Gclose(g);
    free(ep);
    free(v);
    return st;
}

static ns_status write_all(hid_t f, const char *tmp, void *ctx)
{
    const ns_head *h = ctx;
    ns_status st;
    const uint64_t C = (uint64_t)h->n_classes;
    hid_t cls = ns_h5_str_type(NS_LABEL_LEN);
    if (cls < 0)
        return ns_h5_error(NS_ERR_INTERNAL, "cannot build the class name type");
    if ((st = write_attrs(f, h, tmp)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "classes", cls, cls, 1, C, 1, h->classes)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "w", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, C, in_dim(h),
                        h->w)) != NS_OK ||
        (st = ns_h5_put(f, tmp, "b", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, C, 1, h->b)) != NS_OK)
        goto done;
    if (h->kind == NS_HEAD_MLP &&
        ((st = ns_h5_put(f, tmp, "w1", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, (uint64_t)h->hidden,
                         (uint64_t)h->d, h->w1)) != NS_OK ||
         (st = ns_h5_put(f, tmp, "b1", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, (uint64_t)h->hidden,
                         1, h->b1)) != NS_OK))
        goto done;
    st = write_epochs(f, h, tmp);
done:
    H5Tclose(cls);
    return st;
}

ns_status ns_head_save(ns_head *h, const char *path)
{
    ns_h5_init();
    ns_status st;
    for (int c = 0; c < h->n_classes; c++) {
        size_t len = strnlen(h->classes[c], NS_LABEL_LEN - 1);
        memset(h->classes[c] + len, 0, NS_LABEL_LEN - len);
    }
    if ((st = check_content(h, path)) != NS_OK)
        return ns_error_wrap(NS_ERR_USAGE, "head not written");
    if ((st = ns_h5_refuse_foreign(path, "head", NS_HEAD_FORMAT, NS_HEAD_FORMAT_VERSION)) !=
        NS_OK)
        return st;
    if (h->created == 0.0)
        h->created = (double)time(NULL);
    ns_head_content_id(h, h->head_id);
    return ns_h5_save_atomic(path, "head", write_all, h);
}

/* ---- reading ------------------------------------------------------------------ */

static ns_status read_text(hid_t f, const char *path, const char *name, char **out)
{
    ns_status st;
    char *buf = malloc(TEXT_MAX);
    if (!buf)
        return ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
    if ((st = ns_h5_read_str_attr(f, path, name, buf, TEXT_MAX)) == NS_OK) {
        free(*out);
        if (!(*out = strdup(buf)))
            st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
    }
    free(buf);
    return st;
}

static ns_status read_epochs(hid_t f, const char *path, ns_head *h)
{
    ns_status st = NS_OK;
    hid_t g = H5I_INVALID_HID, d = H5I_INVALID_HID;
    uint64_t E = 0;
    int32_t *ep = NULL;
    double *v = NULL;
    if (H5Lexists(f, "epochs", H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_CORRUPT, "'%s': /epochs is missing", path);
    }
    if ((g = H5Gopen2(f, "epochs", H5P_DEFAULT)) < 0 ||
        (d = H5Dopen2(g, "epoch", H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /epochs/epoch", path);
        goto done;
    }
    if ((st = ns_h5_rows(d, path, "epochs/epoch", &E)) != NS_OK)
        goto done;
    if (E > MAX_EPOCHS) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': %llu epochs", path, (unsigned long long)E);
        goto done;
    }
    ep = malloc((E ? E : 1) * sizeof *ep);
    v = malloc((E ? E : 1) * 3 * sizeof *v);
    h->epochs = calloc(E ? E : 1, sizeof *h->epochs);
    if (!ep || !v || !h->epochs) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
        goto done;
    }
    if ((st = ns_h5_get(g, path, "epoch", H5T_NATIVE_INT32, 1, E, 0, ep)) != NS_OK ||
        (st = ns_h5_get(g, path, "train_loss", H5T_NATIVE_DOUBLE, 1, E, 0, v)) != NS_OK ||
        (st = ns_h5_get(g, path, "val_loss", H5T_NATIVE_DOUBLE, 1, E, 0, v + E)) != NS_OK ||
        (st = ns_h5_get(g, path, "val_accuracy", H5T_NATIVE_DOUBLE, 1, E, 0, v + 2 * E)) !=
            NS_OK)
        goto done;
    for (size_t e = 0; e < E; e++) {
        h->epochs[e].epoch = ep[e];
        h->epochs[e].train_loss = v[e];
        h->epochs[e].val_loss = v[E + e];
        h->epochs[e].val_accuracy = v[2 * E + e];
    }
    h->n_epochs = (size_t)E;
done:
    if (d >= 0)
        H5Dclose(d);
    if (g >= 0)
        H5Gclose(g);
    free(ep);
    free(v);
    return st;
}

static ns_status read_shape(hid_t f, const char *path, ns_head_kind *kind, int32_t *dim,
                            int32_t *hid, int32_t *ncls)
{
    ns_status st;
    char k[16];
    if ((st = ns_h5_check_format_in(f, path, NS_HEAD_FORMAT, 1, NS_HEAD_FORMAT_VERSION,
                                    NULL)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "kind", k, sizeof k)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "dim", H5T_NATIVE_INT32, dim)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "hidden", H5T_NATIVE_INT32, hid)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "n_classes", H5T_NATIVE_INT32, ncls)) != NS_OK)
        return st;
    if (strcmp(k, "softmax") == 0)
        *kind = NS_HEAD_SOFTMAX;
    else if (strcmp(k, "mlp") == 0)
        *kind = NS_HEAD_MLP;
    else
        return ns_error(NS_ERR_CORRUPT, "'%s': unknown head kind '%s' (softmax or mlp)", path,
                        k);
    if (*dim < 1 || *dim > MAX_DIM || *ncls < 1 || *ncls > MAX_CLASSES ||
        (*kind == NS_HEAD_MLP && (*hid < 1 || *hid > MAX_HIDDEN)) ||
        (*kind == NS_HEAD_SOFTMAX && *hid != 0))
        return ns_error(NS_ERR_CORRUPT, "'%s': bad header: %s head of dimension %d, hidden %d, "
                        "%d classes", path, k, (int)*dim, (int)*hid, (int)*ncls);
    return NS_OK;
}

ns_status ns_head_load(const char *path, ns_head *out)
{
    ns_h5_init();
    ns_status st;
    ns_head h;
    hid_t f = H5I_INVALID_HID, cls = H5I_INVALID_HID;
    ns_head_kind kind = NS_HEAD_SOFTMAX;
    int32_t dim = 0, hid = 0, ncls = 0;
    char id[NS_SHA256_HEX];
    memset(&h, 0, sizeof h);
    memset(out, 0, sizeof *out);
    if ((st = ns_h5_open_read(path, "head", &f)) != NS_OK ||
        (st = read_shape(f, path, &kind, &dim, &hid, &ncls)) != NS_OK ||
        (st = ns_head_alloc(&h, kind, dim, hid, ncls)) != NS_OK)
        goto done;
    if ((cls = ns_h5_str_type(NS_LABEL_LEN)) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the class name type");
        goto done;
    }
    const uint64_t C = (uint64_t)ncls;
    if ((st = ns_h5_read_str_fit(f, path, "head_id", h.head_id, sizeof h.head_id)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "model_id", h.model_id, sizeof h.model_id)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "dataset_id", h.dataset_id, sizeof h.dataset_id)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "temperature", H5T_NATIVE_FLOAT, &h.temperature)) !=
            NS_OK ||
        (st = ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &h.created)) != NS_OK ||
        (st = read_text(f, path, "label_sets", &h.label_sets)) != NS_OK ||
        (st = read_text(f, path, "options", &h.options)) != NS_OK ||
        (st = ns_h5_get(f, path, "classes", cls, 1, C, 0, h.classes)) != NS_OK ||
        (st = ns_h5_get(f, path, "w", H5T_NATIVE_FLOAT, 2, C, in_dim(&h), h.w)) != NS_OK ||
        (st = ns_h5_get(f, path, "b", H5T_NATIVE_FLOAT, 1, C, 0, h.b)) != NS_OK)
        goto done;
    if (kind == NS_HEAD_MLP &&
        ((st = ns_h5_get(f, path, "w1", H5T_NATIVE_FLOAT, 2, (uint64_t)hid, (uint64_t)dim,
                         h.w1)) != NS_OK ||
         (st = ns_h5_get(f, path, "b1", H5T_NATIVE_FLOAT, 1, (uint64_t)hid, 0, h.b1)) != NS_OK))
        goto done;
    if ((st = read_epochs(f, path, &h)) != NS_OK)
        goto done;
    /* Fixed strings from a file may lack their NUL. */
    for (int c = 0; c < ncls; c++)
        h.classes[c][NS_LABEL_LEN - 1] = '\0';
    if ((st = check_content(&h, path)) != NS_OK)
        goto done;
    ns_head_content_id(&h, id);
    if (strcmp(id, h.head_id) != 0) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': content does not match its head_id (%.12s, "
                      "content %.12s): the file was changed or damaged", path, h.head_id, id);
        goto done;
    }
    *out = h;
    memset(&h, 0, sizeof h);
done:
    if (cls >= 0)
        H5Tclose(cls);
    if (f >= 0)
        ns_h5_fclose(f);
    ns_head_release(&h);
    return st;
}
