/* modelfile.c -- the nightshift-model HDF5 file (format in model.h).
 * Only the bytes live here; what the graph means is checked by
 * ns_model_build in src/embed/model.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/fsutil.h"
#include "nightshift/model.h"
#include "nightshift/strbuf.h"
#include "store_internal.h"

/* ns_h5_check_format compares with the store's version number. */
_Static_assert(NS_MODEL_FORMAT_VERSION == NS_STORE_FORMAT_VERSION,
               "model and store format versions diverged: give the model its own check");

static const char *const weight_names[] = {"W", "B", "gamma", "beta", "mean", "var"};
#define N_WEIGHT_NAMES (sizeof weight_names / sizeof weight_names[0])

/* Compound type mirroring ns_model_node_rec. */
static hid_t node_rec_type(void)
{
    herr_t r = 0;
    hsize_t n_in = NS_MODEL_MAX_INPUTS, n_ia = NS_MODEL_IATTRS, n_fa = NS_MODEL_FATTRS;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_model_node_rec));
    hid_t s_name = ns_h5_str_type(NS_MODEL_NAME_LEN), s_op = ns_h5_str_type(NS_MODEL_OP_LEN);
    hid_t a_in = s_name >= 0 ? H5Tarray_create2(s_name, 1, &n_in) : H5I_INVALID_HID;
    hid_t a_ia = H5Tarray_create2(H5T_NATIVE_INT32, 1, &n_ia);
    hid_t a_fa = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, &n_fa);
    if (t < 0 || s_name < 0 || s_op < 0 || a_in < 0 || a_ia < 0 || a_fa < 0) {
        r = -1;
    } else {
        r |= H5Tinsert(t, "name", offsetof(ns_model_node_rec, name), s_name);
        r |= H5Tinsert(t, "op", offsetof(ns_model_node_rec, op), s_op);
        r |= H5Tinsert(t, "inputs", offsetof(ns_model_node_rec, inputs), a_in);
        r |= H5Tinsert(t, "iattr", offsetof(ns_model_node_rec, iattr), a_ia);
        r |= H5Tinsert(t, "fattr", offsetof(ns_model_node_rec, fattr), a_fa);
    }
    if (a_fa >= 0) H5Tclose(a_fa);
    if (a_ia >= 0) H5Tclose(a_ia);
    if (a_in >= 0) H5Tclose(a_in);
    if (s_op >= 0) H5Tclose(s_op);
    if (s_name >= 0) H5Tclose(s_name);
    if (r < 0 && t >= 0) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    return t;
}

static herr_t attr_vec3(hid_t obj, const char *name, const float v[3])
{
    herr_t r = -1;
    hsize_t three = 3;
    hid_t sp = H5Screate_simple(1, &three, NULL), a = H5I_INVALID_HID;
    if (sp >= 0 && (a = H5Acreate2(obj, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
        r = H5Awrite(a, H5T_NATIVE_FLOAT, v);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return r;
}

static herr_t write_floats(hid_t g, const ns_model_weight *w)
{
    herr_t r = -1;
    hsize_t dims[4];
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    for (int i = 0; i < w->rank; i++)
        dims[i] = (hsize_t)w->dims[i];
    if ((sp = H5Screate_simple(w->rank, dims, NULL)) >= 0 &&
        (d = H5Dcreate2(g, w->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT)) >= 0)
        r = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->data);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return r;
}

static ns_status write_content(hid_t f, const char *tmp, const ns_model *m, const char *id)
{
    ns_status st = NS_OK;
    const ns_model_info *in = &m->info;
    int32_t ver = NS_MODEL_FORMAT_VERSION, size = in->input_size, dim = in->embed_dim,
            l2 = in->l2_normalize;
    ns_model_node_rec *recs = calloc(m->n_nodes, sizeof *recs);
    hsize_t rows = m->n_nodes;
    hid_t t = H5I_INVALID_HID, sp = H5I_INVALID_HID, d = H5I_INVALID_HID,
          gw = H5I_INVALID_HID, gn = H5I_INVALID_HID;
    if (!recs)
        return ns_error(NS_ERR_NOMEM, "'%s': out of memory", tmp);
    if (ns_h5_attr_str(f, "ns_format", NS_MODEL_FORMAT) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_str(f, "name", in->name) < 0 ||
        ns_h5_attr_num(f, "input_size", H5T_NATIVE_INT32, &size) < 0 ||
        ns_h5_attr_str(f, "channel_order", in->bgr ? "bgr" : "rgb") < 0 ||
        attr_vec3(f, "mean", in->mean) < 0 || attr_vec3(f, "std", in->std) < 0 ||
        ns_h5_attr_str(f, "output", in->output) < 0 ||
        ns_h5_attr_num(f, "embedding_dim", H5T_NATIVE_INT32, &dim) < 0 ||
        ns_h5_attr_num(f, "l2_normalize", H5T_NATIVE_INT32, &l2) < 0 ||
        ns_h5_attr_str(f, "model_id", id) < 0 ||
        ns_h5_attr_str(f, "writer", "nightshift " NS_VERSION) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot write attributes of '%s'", tmp);
        goto done;
    }
    for (size_t k = 0; k < m->n_nodes; k++) {
        const ns_model_node *n = &m->nodes[k];
        memcpy(recs[k].name, n->name, sizeof recs[k].name);
        snprintf(recs[k].op, sizeof recs[k].op, "%s", ns_op_name(n->op));
        for (int s = 0; s < n->n_inputs; s++)
            memcpy(recs[k].inputs[s], m->nodes[n->inputs[s]].name, NS_MODEL_NAME_LEN);
        memcpy(recs[k].iattr, n->iattr, sizeof n->iattr);
        memcpy(recs[k].fattr, n->fattr, sizeof n->fattr);
    }
    if ((t = node_rec_type()) < 0 || (sp = H5Screate_simple(1, &rows, NULL)) < 0 ||
        (d = H5Dcreate2(f, "nodes", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot write /nodes of '%s'", tmp);
        goto done;
    }
    if ((gw = H5Gcreate2(f, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create /weights in '%s'", tmp);
        goto done;
    }
    for (size_t k = 0; k < m->n_nodes; k++) {
        const ns_model_node *n = &m->nodes[k];
        if (n->n_weights == 0)
            continue;
        if ((gn = H5Gcreate2(gw, n->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            st = ns_h5_error(NS_ERR_IO, "cannot create /weights/%s in '%s'", n->name, tmp);
            goto done;
        }
        for (int s = 0; s < n->n_weights; s++)
            if (write_floats(gn, &n->weights[s]) < 0) {
                st = ns_h5_error(NS_ERR_IO, "cannot write /weights/%s/%s in '%s'", n->name,
                                 n->weights[s].name, tmp);
                goto done;
            }
        H5Gclose(gn);
        gn = H5I_INVALID_HID;
    }
done:
    if (gn >= 0) H5Gclose(gn);
    if (gw >= 0) H5Gclose(gw);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    free(recs);
    return st;
}

typedef struct save_ctx {
    const ns_model *m;
    char id[NS_SHA256_HEX];
} save_ctx;

static ns_status write_model(hid_t f, const char *tmp, void *ctx)
{
    const save_ctx *c = ctx;
    return write_content(f, tmp, c->m, c->id);
}

ns_status ns_model_save(const char *path, const ns_model *m)
{
    ns_h5_init();
    save_ctx c = {.m = m};
    ns_model_compute_id(m, c.id);
    return ns_h5_save_atomic(path, "model file", write_model, &c);
}

/* ---- loading -------------------------------------------------------------------- */

static ns_status read_str(hid_t f, const char *path, const char *name, char *buf, size_t cap)
{
    char tmp[128] = {0};
    hid_t t = ns_h5_str_type(sizeof tmp);
    ns_status st;
    if (t < 0)
        return ns_h5_error(NS_ERR_INTERNAL, "cannot build a string type");
    st = ns_h5_read_attr_n(f, path, name, t, tmp, 1);
    H5Tclose(t);
    if (st != NS_OK)
        return st;
    if (strnlen(tmp, sizeof tmp) >= cap)
        return ns_error(NS_ERR_FORMAT, "'%s': attribute '%s' is longer than %zu bytes", path,
                        name, cap - 1);
    memcpy(buf, tmp, cap);
    buf[cap - 1] = '\0';
    return NS_OK;
}

static ns_status read_info(hid_t f, const char *path, ns_model_info *info, char *id)
{
    ns_status st;
    char order[8];
    int32_t size = 0, dim = 0, l2 = 0;
    memset(info, 0, sizeof *info);
    if ((st = read_str(f, path, "name", info->name, sizeof info->name)) != NS_OK ||
        (st = ns_h5_read_attr_n(f, path, "input_size", H5T_NATIVE_INT32, &size, 1)) != NS_OK ||
        (st = read_str(f, path, "channel_order", order, sizeof order)) != NS_OK ||
        (st = ns_h5_read_attr_n(f, path, "mean", H5T_NATIVE_FLOAT, info->mean, 3)) != NS_OK ||
        (st = ns_h5_read_attr_n(f, path, "std", H5T_NATIVE_FLOAT, info->std, 3)) != NS_OK ||
        (st = read_str(f, path, "output", info->output, sizeof info->output)) != NS_OK ||
        (st = ns_h5_read_attr_n(f, path, "embedding_dim", H5T_NATIVE_INT32, &dim, 1)) != NS_OK ||
        (st = ns_h5_read_attr_n(f, path, "l2_normalize", H5T_NATIVE_INT32, &l2, 1)) != NS_OK ||
        (st = read_str(f, path, "model_id", id, NS_SHA256_HEX)) != NS_OK)
        return st;
    if (strcmp(order, "rgb") != 0 && strcmp(order, "bgr") != 0)
        return ns_error(NS_ERR_FORMAT, "'%s': channel_order '%s' (rgb or bgr)", path, order);
    info->bgr = order[0] == 'b';
    info->input_size = size;
    info->embed_dim = dim;
    info->l2_normalize = l2 != 0;
    return NS_OK;
}

/* The file's /nodes type must hold our fields, each of its class and size
 * (in any order): HDF5 1.10's compound conversion reads freed memory on some
 * damaged member lists (found by tests/fuzz/fuzz_model), so nothing else is
 * handed to H5Dread. */
static ns_status check_node_type(hid_t d, hid_t want, const char *path)
{
    ns_status st = NS_OK;
    hid_t ft = H5Dget_type(d);
    int n = ft >= 0 && H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_nmembers(ft) : -1;
    size_t fsize = ft >= 0 ? H5Tget_size(ft) : 0;
    if (n != H5Tget_nmembers(want) || fsize == 0 || fsize > 4 * sizeof(ns_model_node_rec)) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': /nodes does not have the node record type", path);
        goto done;
    }
    for (int i = 0; i < n && st == NS_OK; i++) {
        char *name = H5Tget_member_name(ft, (unsigned)i);
        int j = name ? H5Tget_member_index(want, name) : -1;
        hid_t fm = H5Tget_member_type(ft, (unsigned)i);
        hid_t wm = j >= 0 ? H5Tget_member_type(want, (unsigned)j) : H5I_INVALID_HID;
        size_t off = H5Tget_member_offset(ft, (unsigned)i);
        if (j < 0 || fm < 0 || wm < 0 || H5Tget_class(fm) != H5Tget_class(wm) ||
            H5Tget_size(fm) != H5Tget_size(wm) || off + H5Tget_size(fm) > fsize)
            st = ns_error(NS_ERR_CORRUPT, "'%s': /nodes member %d ('%s') is not the node "
                          "record's", path, i, ns_show(name).s);
        if (fm >= 0) H5Tclose(fm);
        if (wm >= 0) H5Tclose(wm);
        H5free_memory(name);
    }
done:
    if (ft >= 0) H5Tclose(ft);
    return st;
}

static ns_status read_nodes(hid_t f, const char *path, ns_model_node_rec **recs, size_t *n)
{
    ns_status st = NS_OK;
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hsize_t rows = 0;
    *recs = NULL;
    if (H5Lexists(f, "nodes", H5P_DEFAULT) <= 0 ||
        (d = H5Dopen2(f, "nodes", H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &rows, NULL) < 0) {
        st = ns_h5_error(NS_ERR_FORMAT, "'%s': /nodes is missing or not a table", path);
        goto done;
    }
    if (rows == 0 || rows > NS_MODEL_MAX_NODES) {
        st = ns_error(NS_ERR_FORMAT, "'%s': /nodes has %llu rows (1..%d)", path,
                      (unsigned long long)rows, NS_MODEL_MAX_NODES);
        goto done;
    }
    if ((t = node_rec_type()) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the node type");
        goto done;
    }
    if ((st = check_node_type(d, t, path)) != NS_OK)
        goto done;
    if (!(*recs = calloc(rows, sizeof **recs))) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %llu nodes", path,
                      (unsigned long long)rows);
        goto done;
    }
    if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *recs) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read /nodes", path);
        goto done;
    }
    *n = rows;
done:
    if (st != NS_OK) {
        free(*recs);
        *recs = NULL;
    }
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return st;
}

/* Shape of /weights/<node>/<name>; NS_ERR_CORRUPT unless a float array. */
static ns_status weight_shape(hid_t g, const char *path, const char *node,
                              ns_model_weight_rec *w, size_t *count)
{
    ns_status st = NS_OK;
    hsize_t dims[H5S_MAX_RANK];
    hid_t d = H5Dopen2(g, w->name, H5P_DEFAULT), t = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int rank = -1;
    if (d < 0 || (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0 ||
        (rank = H5Sget_simple_extent_dims(sp, dims, NULL)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open weight /weights/%s/%s", path, node,
                         w->name);
        goto done;
    }
    if (H5Tget_class(t) != H5T_FLOAT || rank < 1 || rank > 4) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' is not a float array of "
                      "rank 1..4", path, node, w->name);
        goto done;
    }
    *count = 1;
    w->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1 || dims[i] > INT_MAX || *count > ((size_t)1 << 34) / dims[i]) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' has a bad shape", path,
                          node, w->name);
            goto done;
        }
        w->dims[i] = (int)dims[i];
        *count *= (size_t)dims[i];
    }
    /* Weights are stored uncompressed: a shape the file does not hold the
     * bytes for (a claimed 2^31 elements in a chunked, unwritten dataset)
     * is refused before the arena is sized by it (issue 16, resource bounds). */
    if (H5Dget_storage_size(d) < (hsize_t)*count * H5Tget_size(t)) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' claims %zu values but the "
                      "file stores %llu bytes of them", path, node, w->name, *count,
                      (unsigned long long)H5Dget_storage_size(d));
        goto done;
    }
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return st;
}

/* Finds every weight (pass 0: shapes; pass 1: data into one arena). */
static ns_status read_weights(hid_t f, const char *path, const ns_model_node_rec *recs, size_t n,
                              ns_model_weight_rec *w, size_t *nw, float **arena)
{
    ns_status st = NS_OK;
    hid_t gw = H5I_INVALID_HID, gn = H5I_INVALID_HID, d = H5I_INVALID_HID;
    size_t total = 0, groups = 0;
    H5G_info_t gi;
    *nw = 0;
    *arena = NULL;
    if (H5Lexists(f, "weights", H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return NS_OK; /* ns_model_build names the first node missing one */
    }
    if ((gw = H5Gopen2(f, "weights", H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /weights", path);
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        size_t used = 0, k = 0;
        for (size_t i = 0; i < n; i++) {
            const char *node = recs[i].name;
            size_t found = 0;
            /* Bad names are reported by ns_model_build; here they just have no weights. */
            if (!memchr(node, '\0', NS_MODEL_NAME_LEN) || !node[0] || strchr(node, '/') ||
                strcmp(node, ".") == 0 || H5Lexists(gw, node, H5P_DEFAULT) <= 0)
                continue;
            if ((gn = H5Gopen2(gw, node, H5P_DEFAULT)) < 0 || H5Gget_info(gn, &gi) < 0) {
                st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /weights/%s", path, node);
                goto done;
            }
            groups++;
            for (size_t j = 0; j < N_WEIGHT_NAMES; j++) {
                size_t count = 0;
                if (H5Lexists(gn, weight_names[j], H5P_DEFAULT) <= 0)
                    continue;
                found++;
                if (pass == 0) {
                    ns_model_weight_rec *x = &w[k];
                    memset(x, 0, sizeof *x);
                    x->node = i;
                    snprintf(x->name, sizeof x->name, "%s", weight_names[j]);
                    if ((st = weight_shape(gn, path, node, x, &count)) != NS_OK)
                        goto done;
                    total += count;
                } else {
                    ns_model_weight_rec *x = &w[k];
                    count = 1;
                    for (int r = 0; r < x->rank; r++)
                        count *= (size_t)x->dims[r];
                    x->data = *arena + used;
                    if ((d = H5Dopen2(gn, x->name, H5P_DEFAULT)) < 0 ||
                        H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                *arena + used) < 0) {
                        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read weight '%s' of "
                                         "node '%s'", path, x->name, node);
                        goto done;
                    }
                    H5Dclose(d);
                    d = H5I_INVALID_HID;
                }
                used += count;
                k++;
            }
            if (gi.nlinks != found) {
                st = ns_error(NS_ERR_CORRUPT, "'%s': /weights/%s holds %llu objects, %zu of them "
                              "weights (W, B, gamma, beta, mean, var)", path, node,
                              (unsigned long long)gi.nlinks, found);
                goto done;
            }
            H5Gclose(gn);
            gn = H5I_INVALID_HID;
        }
        if (pass == 0) {
            if (H5Gget_info(gw, &gi) < 0 || gi.nlinks != groups) {
                st = ns_error(NS_ERR_CORRUPT, "'%s': /weights has groups for nodes that are "
                              "not in /nodes", path);
                goto done;
            }
            if (!(*arena = malloc((total ? total : 1) * sizeof **arena))) {
                st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %zu weights", path, total);
                goto done;
            }
        }
        *nw = k;
    }
done:
    if (d >= 0) H5Dclose(d);
    if (gn >= 0) H5Gclose(gn);
    if (gw >= 0) H5Gclose(gw);
    if (st != NS_OK) {
        free(*arena);
        *arena = NULL;
        *nw = 0;
    }
    return st;
}

/* HDF5 cannot tell "not HDF5" from "damaged HDF5"; the signature can. */
static ns_status check_signature(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got;
    if (!fp)
        return ns_error(errno == ENOENT ? NS_ERR_NOT_FOUND : NS_ERR_IO,
                        "cannot open model '%s': %s", path, strerror(errno));
    got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got != sizeof head || memcmp(head, sig, sizeof sig) != 0)
        return ns_error(NS_ERR_FORMAT, "'%s' is not an HDF5 file (not a nightshift model)", path);
    return NS_OK;
}

/* Reads, checks and builds the model of an open file (closed here). */
static ns_status load_open(hid_t f, const char *path, ns_model **out)
{
    ns_h5_init();
    ns_status st;
    ns_model_info info;
    ns_model_node_rec *recs = NULL;
    ns_model_weight_rec *w = NULL;
    ns_model *m = NULL;
    float *arena = NULL;
    char id[NS_SHA256_HEX];
    size_t n = 0, nw = 0;
    if ((st = ns_h5_check_format(f, path, NS_MODEL_FORMAT)) != NS_OK ||
        (st = read_info(f, path, &info, id)) != NS_OK ||
        (st = read_nodes(f, path, &recs, &n)) != NS_OK)
        goto done;
    if (!(w = calloc(n * N_WEIGHT_NAMES, sizeof *w))) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory", path);
        goto done;
    }
    if ((st = read_weights(f, path, recs, n, w, &nw, &arena)) != NS_OK ||
        (st = ns_model_build(&info, recs, n, w, nw, path, &m)) != NS_OK)
        goto done;
    if (strcmp(m->id, id) != 0) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': model_id %.12s... does not match the content "
                      "(%.12s...): the file was changed after it was written", path, id, m->id);
        goto done;
    }
    if ((st = ns_model_fold_batchnorm(m, NULL)) != NS_OK)
        goto done;
    *out = m;
    m = NULL;
done:
    ns_model_free(m);
    free(arena);
    free(w);
    free(recs);
    ns_h5_fclose(f);
    return st;
}

ns_status ns_model_load(const char *path, ns_model **out)
{
    ns_status st;
    hid_t f;
    *out = NULL;
    ns_h5_init();
    if ((st = check_signature(path)) != NS_OK)
        return st;
    if ((f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "'%s': damaged HDF5 file (truncated?)", path);
    return load_open(f, path, out);
}

ns_status ns_model_load_image(const void *buf, size_t len, const char *name, ns_model **out)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    hid_t fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    *out = NULL;
    ns_h5_init();
    if (len < sizeof sig || memcmp(buf, sig, sizeof sig) != 0)
        return ns_error(NS_ERR_FORMAT, "'%s' is not an HDF5 file (not a nightshift model)", name);
    /* The core driver over a copy of the image: nothing touches the disk. */
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
        H5Pset_file_image(fapl, (void *)buf, len) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return ns_h5_error(NS_ERR_NOMEM, "'%s': cannot set up an in-memory HDF5 file", name);
    }
    f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "'%s': damaged HDF5 file (truncated?)", name);
    return load_open(f, name, out);
}
