#include <dirent.h>
#include <hdf5.h>
#include <math.h>

#include "exec_graphs.h"
#include "helpers.h"
#include "nightshift/model.h"

/* ---- fixtures ---------------------------------------------------------------- */

static void small_info(ns_model_info *info, int size, int dim, const char *output)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "small");
    snprintf(info->output, sizeof info->output, "%s", output);
    info->input_size = size;
    info->embed_dim = dim;
    for (int c = 0; c < 3; c++) {
        info->mean[c] = 0.5f;
        info->std[c] = 0.25f;
    }
}

static void conv3x3(ns_model_node_rec *r, const char *name, const char *in)
{
    xg_set_node(r, name, "Conv", in, NULL);
    r->iattr[NS_IA_KH] = r->iattr[NS_IA_KW] = 3;
    r->iattr[NS_IA_STRIDE_H] = r->iattr[NS_IA_STRIDE_W] = 1;
    r->iattr[NS_IA_PAD_TOP] = r->iattr[NS_IA_PAD_LEFT] = 1;
    r->iattr[NS_IA_PAD_BOTTOM] = r->iattr[NS_IA_PAD_RIGHT] = 1;
    r->iattr[NS_IA_DIL_H] = r->iattr[NS_IA_DIL_W] = 1;
    r->iattr[NS_IA_GROUPS] = 1;
}

/* input (3,16,16) -> conv (8) -> bn -> relu -> gap -> flatten -> gemm (4).
 * Nodes are listed out of order on purpose: the build must sort them. */
typedef struct bn_graph {
    ns_model_info info;
    ns_model_node_rec recs[7];
    ns_model_weight_rec w[7];
    float cw[8 * 3 * 9], gamma[8], beta[8], mean[8], var[8], gw[4 * 8], gb[4];
} bn_graph;

static void make_bn_graph(bn_graph *g)
{
    memset(g, 0, sizeof *g);
    small_info(&g->info, 16, 4, "fc");
    xg_set_node(&g->recs[0], "fc", "Gemm", "flat", NULL);
    xg_set_node(&g->recs[1], "in", "Input", NULL, NULL);
    conv3x3(&g->recs[2], "conv", "in");
    xg_set_node(&g->recs[3], "bn", "BatchNormalization", "conv", NULL);
    g->recs[3].fattr[NS_FA_EPS] = 1e-5f;
    xg_set_node(&g->recs[4], "relu", "Relu", "bn", NULL);
    xg_set_node(&g->recs[5], "gap", "GlobalAveragePool", "relu", NULL);
    xg_set_node(&g->recs[6], "flat", "Flatten", "gap", NULL);
    g->recs[6].iattr[NS_IA_AXIS] = 1;
    for (size_t i = 0; i < sizeof g->cw / sizeof g->cw[0]; i++)
        g->cw[i] = (float)((int)(i * 37 % 17) - 8) / 16.0f;
    for (int c = 0; c < 8; c++) {
        g->gamma[c] = 0.5f + 0.1f * c;
        g->beta[c] = 0.05f * c - 0.2f;
        g->mean[c] = 0.01f * c;
        g->var[c] = 1.0f + 0.2f * c;
    }
    for (int i = 0; i < 32; i++)
        g->gw[i] = (float)(i % 5) * 0.1f;
    g->w[0] = (ns_model_weight_rec){2, "W", 4, {8, 3, 3, 3}, g->cw};
    g->w[1] = (ns_model_weight_rec){3, "gamma", 1, {8}, g->gamma};
    g->w[2] = (ns_model_weight_rec){3, "beta", 1, {8}, g->beta};
    g->w[3] = (ns_model_weight_rec){3, "mean", 1, {8}, g->mean};
    g->w[4] = (ns_model_weight_rec){3, "var", 1, {8}, g->var};
    g->w[5] = (ns_model_weight_rec){0, "W", 2, {4, 8}, g->gw};
    g->w[6] = (ns_model_weight_rec){0, "B", 1, {4}, g->gb};
}

static ns_status build_bn(bn_graph *g, ns_model **m)
{
    return ns_model_build(&g->info, g->recs, 7, g->w, 7, "bn-graph", m);
}

static int find_node(const ns_model *m, const char *name)
{
    for (size_t k = 0; k < m->n_nodes; k++)
        if (strcmp(m->nodes[k].name, name) == 0)
            return (int)k;
    return -1;
}

static void assert_msg_has(const char *needle)
{
    ck_assert_msg(strstr(ns_errmsg(), needle) != NULL, "message '%s' lacks '%s'", ns_errmsg(),
                  needle);
}

/* Saves the default model to DIR/m.h5 and returns its path in buf. */
static ns_model *saved_default(char *dir, size_t dcap, char *path, size_t pcap)
{
    ns_model *m = NULL;
    ns_test_tmpdir(dir, dcap, "model");
    snprintf(path, pcap, "%s/m.h5", dir);
    ck_assert_ns_ok(ns_model_default(112, 7, &m));
    ck_assert_ns_ok(ns_model_save(path, m));
    return m;
}

/* Node table as the file stores it, for tests that damage the graph. */
static hid_t test_node_type(void)
{
    hsize_t n_in = NS_MODEL_MAX_INPUTS, n_ia = NS_MODEL_IATTRS, n_fa = NS_MODEL_FATTRS;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_model_node_rec));
    hid_t s64 = H5Tcopy(H5T_C_S1), s32 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s64, NS_MODEL_NAME_LEN);
    H5Tset_strpad(s64, H5T_STR_NULLPAD);
    H5Tset_size(s32, NS_MODEL_OP_LEN);
    H5Tset_strpad(s32, H5T_STR_NULLPAD);
    hid_t a_in = H5Tarray_create2(s64, 1, &n_in), a_ia = H5Tarray_create2(H5T_NATIVE_INT32, 1, &n_ia),
          a_fa = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, &n_fa);
    H5Tinsert(t, "name", offsetof(ns_model_node_rec, name), s64);
    H5Tinsert(t, "op", offsetof(ns_model_node_rec, op), s32);
    H5Tinsert(t, "inputs", offsetof(ns_model_node_rec, inputs), a_in);
    H5Tinsert(t, "iattr", offsetof(ns_model_node_rec, iattr), a_ia);
    H5Tinsert(t, "fattr", offsetof(ns_model_node_rec, fattr), a_fa);
    H5Tclose(a_fa);
    H5Tclose(a_ia);
    H5Tclose(a_in);
    H5Tclose(s32);
    H5Tclose(s64);
    return t;
}

typedef void (*node_edit)(ns_model_node_rec *recs, size_t n);

/* Rewrites /nodes of a saved file in place through edit. */
static void edit_nodes(const char *path, node_edit edit)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, "nodes", H5P_DEFAULT), t = test_node_type();
    hid_t sp = H5Dget_space(d);
    hsize_t rows = 0;
    H5Sget_simple_extent_dims(sp, &rows, NULL);
    ns_model_node_rec *recs = calloc(rows, sizeof *recs);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs), 0);
    edit(recs, rows);
    ck_assert_int_ge(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs), 0);
    free(recs);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
}

static ns_model_node_rec *rec_named(ns_model_node_rec *recs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(recs[i].name, name) == 0)
            return &recs[i];
    ck_abort_msg("no node '%s'", name);
    return NULL;
}

/* ---- the default backbone ------------------------------------------------------ */

START_TEST(test_default_deterministic)
{
    ns_model *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    ck_assert_ns_ok(ns_model_default(112, 1, &a));
    ck_assert_ns_ok(ns_model_default(112, 1, &b));
    ck_assert_ns_ok(ns_model_default(112, 2, &c));
    ck_assert_ns_ok(ns_model_default(128, 1, &d));
    ck_assert_uint_eq(strlen(a->id), 64);
    ck_assert_uint_eq(strspn(a->id, "0123456789abcdef"), 64);
    ck_assert_str_eq(a->id, b->id);
    ck_assert_str_ne(a->id, c->id);
    ck_assert_str_ne(a->id, d->id);
    ck_assert_uint_eq(a->n_weight_floats, b->n_weight_floats);
    ck_assert_mem_eq(a->weights, b->weights, a->n_weight_floats * sizeof(float));
    /* 3-32-64-128-256-512 3x3 convolutions, no bias */
    ck_assert_uint_eq(ns_model_param_count(a),
                      9 * (3 * 32 + 32 * 64 + 64 * 128 + 128 * 256 + 256 * 512));
    const ns_model_node *o = &a->nodes[a->output];
    ck_assert_int_eq(o->op, NS_OP_L2NORM);
    ck_assert_int_eq(o->rank, 1);
    ck_assert_int_eq(o->shape[0], NS_MODEL_DEFAULT_DIM);
    ck_assert_int_eq(a->info.embed_dim, NS_MODEL_DEFAULT_DIM);
    int c5 = find_node(a, "conv5");
    ck_assert_int_ge(c5, 0);
    ck_assert_int_eq(a->nodes[c5].shape[0], 512);
    ck_assert_int_eq(a->nodes[c5].shape[1], 4); /* 112 / 2^5 rounded up */
    ck_assert_int_eq(d->nodes[find_node(d, "conv5")].shape[1], 4);
    /* He-uniform: first-layer weights bounded by sqrt(6 / 27) and not all equal */
    const ns_model_weight *w = &a->nodes[find_node(a, "conv1")].weights[0];
    float lo = 1, hi = -1;
    for (size_t i = 0; i < w->count; i++) {
        lo = fminf(lo, w->data[i]);
        hi = fmaxf(hi, w->data[i]);
    }
    ck_assert(hi <= sqrtf(6.0f / 27.0f) && lo >= -sqrtf(6.0f / 27.0f) && hi - lo > 0.5f);
    ns_model_free(c);
    ck_assert_int_eq(ns_model_default(100, 1, &c), NS_ERR_USAGE);
    ck_assert_ptr_null(c);
    ns_model_free(a);
    ns_model_free(b);
    ns_model_free(d);
}
END_TEST

START_TEST(test_describe)
{
    ns_model *m = NULL;
    ns_strbuf sb = {0};
    ck_assert_ns_ok(ns_model_default(128, 3, &m));
    ck_assert_ns_ok(ns_model_describe(m, &sb));
    ck_assert_ptr_nonnull(strstr(sb.data, m->id));
    ck_assert_ptr_nonnull(strstr(sb.data, "(3, 128, 128)"));
    ck_assert_ptr_nonnull(strstr(sb.data, "embedding dim 512"));
    ck_assert_ptr_nonnull(strstr(sb.data, "(512, 4, 4)")); /* conv5's output */
    ck_assert_ptr_nonnull(strstr(sb.data, "MaxPool            (512, 1, 1)")); /* global max */
    ns_strbuf_release(&sb);
    ns_model_free(m);
}
END_TEST

/* ---- file round trip -------------------------------------------------------- */

START_TEST(test_save_load_roundtrip)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    ck_assert_ns_ok(ns_model_load(path, &l));
    ck_assert_str_eq(l->id, m->id);
    ck_assert_str_eq(l->info.name, m->info.name);
    ck_assert_str_eq(l->info.output, "embedding");
    ck_assert_int_eq(l->info.input_size, 112);
    ck_assert_int_eq(l->info.l2_normalize, 1);
    ck_assert(l->info.std[2] == m->info.std[2]);
    ck_assert_uint_eq(l->n_nodes, m->n_nodes);
    for (size_t k = 0; k < m->n_nodes; k++) {
        ck_assert_str_eq(l->nodes[k].name, m->nodes[k].name);
        ck_assert_int_eq(l->nodes[k].op, m->nodes[k].op);
        ck_assert_mem_eq(l->nodes[k].shape, m->nodes[k].shape, sizeof m->nodes[k].shape);
    }
    ck_assert_uint_eq(l->n_weight_floats, m->n_weight_floats);
    ck_assert_mem_eq(l->weights, m->weights, m->n_weight_floats * sizeof(float));
    /* atomic write: nothing but the model in the directory */
    DIR *dp = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(dp)) != NULL)
        files += e->d_name[0] != '.';
    closedir(dp);
    ck_assert_int_eq(files, 1);
    /* the file reads back in python too: checked by the format, here by h5 */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_gt(H5Lexists(f, "/weights/conv1/W", H5P_DEFAULT), 0);
    H5Fclose(f);
    ns_model_free(l);
    ns_model_free(m);
}
END_TEST

/* ---- bad files --------------------------------------------------------------- */

START_TEST(test_load_not_hdf5_and_missing)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = NULL;
    ns_test_tmpdir(dir, sizeof dir, "model");
    snprintf(path, sizeof path, "%s/text.h5", dir);
    ns_test_write_text(path, "this is not a model\n");
    ck_assert_ns_status(ns_model_load(path, &m), NS_ERR_FORMAT);
    assert_msg_has(path);
    ck_assert_ptr_null(m);
    snprintf(path, sizeof path, "%s/absent.h5", dir);
    ck_assert_ns_status(ns_model_load(path, &m), NS_ERR_NOT_FOUND);
    assert_msg_has(path);
}
END_TEST

START_TEST(test_load_truncated)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size / 2), 0);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has(path);
    ck_assert_ptr_null(l);
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_wrong_format_version)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    int32_t v = 2;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "ns_format_version", H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT32, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("version 2");
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_missing_weight)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/weights/conv3/W", H5P_DEFAULT), 0);
    H5Fclose(f);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has(path);
    assert_msg_has("'conv3'");
    assert_msg_has("missing weight 'W'");
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_wrong_weight_shape)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    hsize_t dims[4] = {64, 32, 3, 2};
    float *zeros = calloc(64 * 32 * 6, sizeof(float));
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/weights/conv2/W", H5P_DEFAULT), 0);
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(f, "/weights/conv2/W", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros), 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    free(zeros);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has(path);
    assert_msg_has("'conv2'");
    assert_msg_has("(64, 32, 3, 2)");
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_unexpected_weight)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    hsize_t two = 2;
    float v[2] = {1, 2};
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "/weights/relu1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t d = H5Dcreate2(g, "W", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    H5Gclose(g);
    H5Fclose(f);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has(path);
    assert_msg_has("node 'relu1' (Relu) has an unexpected weight 'W'");
    /* a stray dataset beside a conv's weights */
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/weights/relu1", H5P_DEFAULT), 0);
    d = H5Dcreate2(f, "/weights/conv4/extra", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has("/weights/conv4 holds 2 objects");
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_changed_weight)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    const ns_model_weight *w = &m->nodes[find_node(m, "conv1")].weights[0];
    float *x = malloc(w->count * sizeof *x);
    memcpy(x, w->data, w->count * sizeof *x);
    x[5] += 0.25f;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/weights/conv1/W", H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), 0);
    H5Dclose(d);
    H5Fclose(f);
    free(x);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_CORRUPT);
    assert_msg_has(path);
    assert_msg_has("model_id");
    ns_model_free(m);
}
END_TEST

static void make_cycle(ns_model_node_rec *recs, size_t n)
{
    /* conv2 now reads relu3, which depends on conv2 */
    snprintf(rec_named(recs, n, "conv2")->inputs[0], NS_MODEL_NAME_LEN, "relu3");
}

START_TEST(test_load_cyclic)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    edit_nodes(path, make_cycle);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("cyclic graph");
    assert_msg_has("'conv2'");
    ns_model_free(m);
}
END_TEST

static void make_softmax(ns_model_node_rec *recs, size_t n)
{
    snprintf(rec_named(recs, n, "relu4")->op, NS_MODEL_OP_LEN, "Softmax");
    snprintf(rec_named(recs, n, "relu2")->op, NS_MODEL_OP_LEN, "LSTM");
    snprintf(rec_named(recs, n, "relu1")->op, NS_MODEL_OP_LEN, "Softmax");
}

START_TEST(test_load_unsupported_op)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    edit_nodes(path, make_softmax);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_UNSUPPORTED);
    assert_msg_has(path);
    assert_msg_has("'Softmax' (node 'relu1')");
    assert_msg_has("'LSTM' (node 'relu2')");
    ck_assert_ptr_null(strstr(ns_errmsg(), "relu4")); /* each op named once */
    ns_model_free(m);
}
END_TEST

static void make_dangling(ns_model_node_rec *recs, size_t n)
{
    snprintf(rec_named(recs, n, "pool")->inputs[0], NS_MODEL_NAME_LEN, "relu9");
}

START_TEST(test_load_unknown_input)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_model *m = saved_default(dir, sizeof dir, path, sizeof path), *l = NULL;
    edit_nodes(path, make_dangling);
    ck_assert_ns_status(ns_model_load(path, &l), NS_ERR_FORMAT);
    assert_msg_has("'pool' input 'relu9' is not a node");
    ns_model_free(m);
}
END_TEST

/* ---- graph checks through ns_model_build ------------------------------------- */

START_TEST(test_build_shape_errors)
{
    bn_graph g;
    ns_model *m = NULL;
    make_bn_graph(&g);
    g.info.embed_dim = 5; /* gemm gives 4 */
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_FORMAT);
    assert_msg_has("'fc'");
    assert_msg_has("embedding_dim is 5");
    make_bn_graph(&g);
    g.w[5].dims[1] = 7; /* gemm W (4, 7) on 8 features */
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_CORRUPT);
    assert_msg_has("node 'fc' weight 'W' has shape (4, 7), expected (4, 8)");
    make_bn_graph(&g);
    g.recs[2].iattr[NS_IA_PAD_TOP] = 0;
    g.recs[2].iattr[NS_IA_KH] = g.recs[2].iattr[NS_IA_KW] = 5; /* W says 3x3 */
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_CORRUPT);
    assert_msg_has("'conv'");
    make_bn_graph(&g);
    g.recs[2].iattr[NS_IA_STRIDE_H] = 0;
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_FORMAT);
    assert_msg_has("'conv'");
    make_bn_graph(&g);
    xg_set_node(&g.recs[4], "relu", "MaxPool", "bn", NULL); /* kernel 20 on 16x16 */
    g.recs[4].iattr[NS_IA_KH] = g.recs[4].iattr[NS_IA_KW] = 20;
    g.recs[4].iattr[NS_IA_STRIDE_H] = g.recs[4].iattr[NS_IA_STRIDE_W] = 1;
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_FORMAT);
    assert_msg_has("does not fit");
    make_bn_graph(&g);
    xg_set_node(&g.recs[4], "relu", "Add", "bn", "in"); /* (8,16,16) + (3,16,16) */
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_FORMAT);
    assert_msg_has("different shapes");
    make_bn_graph(&g);
    xg_set_node(&g.recs[4], "relu", "Concat", "bn", "in"); /* 8 + 3 channels */
    g.recs[4].iattr[NS_IA_AXIS] = 1;
    g.w[5].dims[1] = 11;
    float gw[44] = {0};
    g.w[5].data = gw;
    ck_assert_ns_ok(build_bn(&g, &m));
    ck_assert_int_eq(m->nodes[find_node(m, "relu")].shape[0], 11);
    ns_model_free(m);
    m = NULL;
    make_bn_graph(&g);
    snprintf(g.recs[5].name, NS_MODEL_NAME_LEN, "conv"); /* duplicate name */
    ck_assert_ns_status(build_bn(&g, &m), NS_ERR_FORMAT);
    assert_msg_has("used twice");
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_fold_batchnorm)
{
    bn_graph g;
    ns_model *m = NULL;
    int folded = -1;
    make_bn_graph(&g);
    ck_assert_ns_ok(build_bn(&g, &m));
    ck_assert_uint_eq(m->n_nodes, 7);
    /* sorted: every input comes before its consumer */
    for (size_t k = 0; k < m->n_nodes; k++)
        for (int s = 0; s < m->nodes[k].n_inputs; s++)
            ck_assert_int_lt(m->nodes[k].inputs[s], (int)k);
    char id[NS_SHA256_HEX];
    memcpy(id, m->id, sizeof id);
    int relu = find_node(m, "relu");
    int shape[3];
    memcpy(shape, m->nodes[relu].shape, sizeof shape);
    ck_assert_ns_ok(ns_model_fold_batchnorm(m, &folded));
    ck_assert_int_eq(folded, 1);
    ck_assert_uint_eq(m->n_nodes, 6);
    ck_assert_int_lt(find_node(m, "bn"), 0);
    ck_assert_str_eq(m->id, id);
    int conv = find_node(m, "conv");
    relu = find_node(m, "relu");
    ck_assert_int_eq(m->nodes[relu].inputs[0], conv);
    ck_assert_mem_eq(m->nodes[relu].shape, shape, sizeof shape);
    ck_assert_int_eq(m->nodes[conv].shape[0], 8);
    ck_assert_int_eq(m->nodes[conv].shape[1], 16);
    ck_assert_int_eq(m->output, find_node(m, "fc"));
    ck_assert_int_eq(m->nodes[m->output].shape[0], 4);
    ck_assert_uint_eq(ns_model_param_count(m), 8 * 27 + 8 + 32 + 4);
    /* W' = W * s, B' = beta - mean * s with s = gamma / sqrt(var + eps); tolerance 1e-6 */
    const ns_model_node *c = &m->nodes[conv];
    ck_assert_int_eq(c->n_weights, 2);
    ck_assert_str_eq(c->weights[1].name, "B");
    for (int o = 0; o < 8; o++) {
        double s = g.gamma[o] / sqrt((double)g.var[o] + 1e-5);
        for (int j = 0; j < 27; j++)
            ck_assert_double_eq_tol(c->weights[0].data[o * 27 + j], g.cw[o * 27 + j] * s, 1e-6);
        ck_assert_double_eq_tol(c->weights[1].data[o], g.beta[o] - g.mean[o] * s, 1e-6);
    }
    ck_assert_ns_ok(ns_model_fold_batchnorm(m, &folded));
    ck_assert_int_eq(folded, 0);
    ns_model_free(m);
}
END_TEST

START_TEST(test_load_folds_batchnorm)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    bn_graph g;
    ns_model *m = NULL, *l = NULL;
    make_bn_graph(&g);
    ck_assert_ns_ok(build_bn(&g, &m));
    ns_test_tmpdir(dir, sizeof dir, "model");
    snprintf(path, sizeof path, "%s/bn.h5", dir);
    ck_assert_ns_ok(ns_model_save(path, m));
    ck_assert_ns_ok(ns_model_load(path, &l));
    ck_assert_str_eq(l->id, m->id); /* the file's id, though the graph was folded */
    ck_assert_uint_eq(l->n_nodes, 6);
    ck_assert_int_lt(find_node(l, "bn"), 0);
    ns_model_free(l);
    ns_model_free(m);
}
END_TEST

/* Found by tests/fuzz/fuzz_model: a damaged /nodes member list made HDF5's
 * compound conversion read freed memory (ASan); the type is now checked
 * before the read.  The in-memory loader is the one the fuzz target uses. */
START_TEST(test_damaged_node_type_refused)
{
    char path[PATH_MAX];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    snprintf(path, sizeof path, "%.*s/corpus/fuzz/model/hdf5-compound-conv-use-after-free",
             slash ? (int)(slash - src) : 1, slash ? src : ".");
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    ns_model *m = NULL;
    ck_assert_int_ne(ns_model_load_image(buf, n, "damaged.h5", &m), NS_OK);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "damaged.h5"));
    ck_assert_int_ne(ns_model_load(path, &m), NS_OK);
    ck_assert_ptr_null(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_default_deterministic);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_damaged_node_type_refused);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_load_not_hdf5_and_missing);
    tcase_add_test(tc, test_load_truncated);
    tcase_add_test(tc, test_load_wrong_format_version);
    tcase_add_test(tc, test_load_missing_weight);
    tcase_add_test(tc, test_load_wrong_weight_shape);
    tcase_add_test(tc, test_load_unexpected_weight);
    tcase_add_test(tc, test_load_changed_weight);
    tcase_add_test(tc, test_load_cyclic);
    tcase_add_test(tc, test_load_unsupported_op);
    tcase_add_test(tc, test_load_unknown_input);
    tcase_add_test(tc, test_build_shape_errors);
    tcase_add_test(tc, test_fold_batchnorm);
    tcase_add_test(tc, test_load_folds_batchnorm);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
