/* model.c -- the backbone graph: validation, topological order and shape
 * inference.  The model id, BatchNormalization folding and the summary live in
 * model_tools.c, the file format in src/store/modelfile.c, the default
 * backbone in model_default.c. */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/model.h"
#include "nightshift/ops.h"

static const char *const op_names[NS_OP_COUNT] = {
    [NS_OP_INPUT] = "Input",
    [NS_OP_CONV] = "Conv",
    [NS_OP_BATCHNORM] = "BatchNormalization",
    [NS_OP_RELU] = "Relu",
    [NS_OP_CLIP] = "Clip",
    [NS_OP_SIGMOID] = "Sigmoid",
    [NS_OP_HARDSIGMOID] = "HardSigmoid",
    [NS_OP_HARDSWISH] = "HardSwish",
    [NS_OP_SILU] = "Silu",
    [NS_OP_ADD] = "Add",
    [NS_OP_MUL] = "Mul",
    [NS_OP_MAXPOOL] = "MaxPool",
    [NS_OP_AVGPOOL] = "AveragePool",
    [NS_OP_GLOBALAVGPOOL] = "GlobalAveragePool",
    [NS_OP_FLATTEN] = "Flatten",
    [NS_OP_GEMM] = "Gemm",
    [NS_OP_CONCAT] = "Concat",
    [NS_OP_L2NORM] = "L2Norm",
};

/* Weights each op carries, in canonical order (the order model_id hashes). */
static const char *const op_wnames[NS_OP_COUNT][NS_MODEL_MAX_WEIGHTS] = {
    [NS_OP_CONV] = {"W", "B"},
    [NS_OP_BATCHNORM] = {"gamma", "beta", "mean", "var"},
    [NS_OP_GEMM] = {"W", "B"},
};
static const int op_wrequired[NS_OP_COUNT][NS_MODEL_MAX_WEIGHTS] = {
    [NS_OP_CONV] = {1, 0},
    [NS_OP_BATCHNORM] = {1, 1, 1, 1},
    [NS_OP_GEMM] = {1, 0},
};

const char *ns_op_name(ns_op op)
{
    return (unsigned)op < NS_OP_COUNT ? op_names[op] : "?";
}

int ns_op_parse(const char *name)
{
    for (int i = 0; i < NS_OP_COUNT; i++)
        if (strcmp(op_names[i], name) == 0)
            return i;
    return -1;
}

void ns_model_free(ns_model *m)
{
    if (!m)
        return;
    free(m->nodes);
    free(m->weights);
    free(m);
}

size_t ns_model_param_count(const ns_model *m)
{
    return m->n_weight_floats;
}

/* ---- validation helpers -------------------------------------------------------- */

static int str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

typedef struct name_ix {
    const char *name;
    int ix;
} name_ix;

static int cmp_name_ix(const void *a, const void *b)
{
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

static int find_name(const name_ix *sorted, size_t n, const char *name)
{
    name_ix key = {name, -1};
    const name_ix *hit = bsearch(&key, sorted, n, sizeof key, cmp_name_ix);
    return hit ? hit->ix : -1;
}

/* Min-heap of record indices: Kahn's algorithm taking the smallest ready index
 * gives an order that a topologically sorted input keeps unchanged, so a
 * saved model reloads with the same node order and the same id. */
static void heap_push(int *h, size_t *n, int v)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int heap_pop(int *h, size_t *n)
{
    int top = h[0], v = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
    return top;
}

static void shape_str(char *buf, size_t cap, int rank, const int *dims)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ", %d" : "%d", dims[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, ")");
}

static ns_status check_weight(const char *origin, const ns_model_node *d, const ns_model_weight *w,
                              int rank, int d0, int d1, int d2, int d3)
{
    const int want[4] = {d0, d1, d2, d3};
    char got_s[96], want_s[96];
    int ok = w->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = w->dims[i] == want[i];
    if (ok)
        return NS_OK;
    shape_str(got_s, sizeof got_s, w->rank, w->dims);
    shape_str(want_s, sizeof want_s, rank, want);
    return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' has shape %s, expected %s",
                    origin, d->name, w->name, got_s, want_s);
}

static const ns_model_weight *node_weight(const ns_model_node *d, const char *name)
{
    for (int i = 0; i < d->n_weights; i++)
        if (strcmp(d->weights[i].name, name) == 0)
            return &d->weights[i];
    return NULL;
}

/* ONNX pooling arithmetic; ceil_mode drops a last window that starts in the
 * end padding (as ONNX Runtime and PyTorch do). */
static int pool_out(int in, int k, int s, int p0, int p1, int ceil_mode)
{
    long span = (long)in + p0 + p1 - k;
    if (span < 0)
        return 0;
    long out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= (long)in + p0)
        out--;
    return out > INT_MAX ? 0 : (int)out;
}

static ns_status infer_spatial(const char *origin, ns_model_node *d, const ns_model_node *x,
                               int kh, int kw, int conv)
{
    const int32_t *a = d->iattr;
    int dh = conv ? a[NS_IA_DIL_H] : 1, dw = conv ? a[NS_IA_DIL_W] : 1;
    if (kh < 1 || kw < 1 || a[NS_IA_STRIDE_H] < 1 || a[NS_IA_STRIDE_W] < 1 || dh < 1 ||
        dw < 1 || a[NS_IA_PAD_TOP] < 0 || a[NS_IA_PAD_LEFT] < 0 || a[NS_IA_PAD_BOTTOM] < 0 ||
        a[NS_IA_PAD_RIGHT] < 0)
        return ns_error(NS_ERR_FORMAT,
                        "'%s': node '%s' (%s): kernel, stride and dilation must be >= 1 and "
                        "pads >= 0", origin, d->name, ns_op_name(d->op));
    if (!conv && (a[NS_IA_PAD_TOP] >= kh || a[NS_IA_PAD_BOTTOM] >= kh ||
                  a[NS_IA_PAD_LEFT] >= kw || a[NS_IA_PAD_RIGHT] >= kw))
        return ns_error(NS_ERR_FORMAT, "'%s': node '%s' (%s): pads must be smaller than the kernel",
                        origin, d->name, ns_op_name(d->op));
    int ekh = dh * (kh - 1) + 1, ekw = dw * (kw - 1) + 1;
    int ho = pool_out(x->shape[1], ekh, a[NS_IA_STRIDE_H], a[NS_IA_PAD_TOP], a[NS_IA_PAD_BOTTOM],
                      conv ? 0 : a[NS_IA_CEIL_MODE]);
    int wo = pool_out(x->shape[2], ekw, a[NS_IA_STRIDE_W], a[NS_IA_PAD_LEFT], a[NS_IA_PAD_RIGHT],
                      conv ? 0 : a[NS_IA_CEIL_MODE]);
    if (ho < 1 || wo < 1)
        return ns_error(NS_ERR_FORMAT, "'%s': node '%s' (%s): kernel %dx%d does not fit input "
                        "%dx%d", origin, d->name, ns_op_name(d->op), ekh, ekw, x->shape[1],
                        x->shape[2]);
    d->shape[1] = ho;
    d->shape[2] = wo;
    return NS_OK;
}

static ns_status need_rank(const char *origin, const ns_model_node *d, const ns_model_node *x,
                           int rank)
{
    if (x->rank == rank)
        return NS_OK;
    return ns_error(NS_ERR_FORMAT, "'%s': node '%s' (%s) needs a rank-%d input, '%s' has rank %d",
                    origin, d->name, ns_op_name(d->op), rank, x->name, x->rank);
}

static int same_shape(const ns_model_node *a, const ns_model_node *b)
{
    return a->rank == b->rank && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] &&
           a->shape[2] == b->shape[2];
}

/* Fills d->rank and d->shape from its inputs, checking attributes and weights. */
static ns_status infer_node(const ns_model *m, ns_model_node *d, const char *origin)
{
    ns_status st = NS_OK;
    const ns_model_node *x = d->n_inputs > 0 ? &m->nodes[d->inputs[0]] : NULL;
    const ns_model_weight *w = node_weight(d, "W"), *b = node_weight(d, "B");
    d->rank = x ? x->rank : 3;
    for (int i = 0; i < 3; i++)
        d->shape[i] = x ? x->shape[i] : 1;
    switch (d->op) {
    case NS_OP_INPUT:
        d->shape[0] = 3;
        d->shape[1] = d->shape[2] = m->info.input_size;
        break;
    case NS_OP_CONV: {
        int g = d->iattr[NS_IA_GROUPS];
        if ((st = need_rank(origin, d, x, 3)) != NS_OK)
            break;
        if (g < 1 || x->shape[0] % g != 0 || w->dims[0] % g != 0) {
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s': groups %d must divide %d input and "
                          "%d output channels", origin, d->name, (int)g, x->shape[0], w->dims[0]);
            break;
        }
        if ((st = check_weight(origin, d, w, 4, w->dims[0], x->shape[0] / g, d->iattr[NS_IA_KH],
                               d->iattr[NS_IA_KW])) != NS_OK ||
            (b && (st = check_weight(origin, d, b, 1, w->dims[0], 1, 1, 1)) != NS_OK) ||
            (st = infer_spatial(origin, d, x, d->iattr[NS_IA_KH], d->iattr[NS_IA_KW], 1)) != NS_OK)
            break;
        d->shape[0] = w->dims[0];
        break;
    }
    case NS_OP_BATCHNORM:
        if ((st = need_rank(origin, d, x, 3)) != NS_OK)
            break;
        for (int i = 0; i < d->n_weights && st == NS_OK; i++)
            st = check_weight(origin, d, &d->weights[i], 1, x->shape[0], 1, 1, 1);
        if (st == NS_OK && !(d->fattr[NS_FA_EPS] > 0.0f && isfinite(d->fattr[NS_FA_EPS])))
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s': epsilon must be positive", origin,
                          d->name);
        break;
    case NS_OP_CLIP:
        if (!(d->fattr[NS_FA_MIN] <= d->fattr[NS_FA_MAX]))
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s': Clip min %g above max %g", origin,
                          d->name, d->fattr[NS_FA_MIN], d->fattr[NS_FA_MAX]);
        break;
    case NS_OP_RELU: case NS_OP_SIGMOID: case NS_OP_HARDSIGMOID: case NS_OP_HARDSWISH:
    case NS_OP_SILU:
        break;
    case NS_OP_ADD:
    case NS_OP_MUL: {
        const ns_model_node *y = &m->nodes[d->inputs[1]];
        int se = d->op == NS_OP_MUL && x->rank == 3 && y->rank == 3 &&
                 y->shape[0] == x->shape[0] && y->shape[1] == 1 && y->shape[2] == 1;
        if (!same_shape(x, y) && !se)
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' (%s): inputs '%s' and '%s' have "
                          "different shapes", origin, d->name, ns_op_name(d->op), x->name,
                          y->name);
        break;
    }
    case NS_OP_MAXPOOL:
    case NS_OP_AVGPOOL:
        if ((st = need_rank(origin, d, x, 3)) == NS_OK)
            st = infer_spatial(origin, d, x, d->iattr[NS_IA_KH], d->iattr[NS_IA_KW], 0);
        break;
    case NS_OP_GLOBALAVGPOOL:
        if ((st = need_rank(origin, d, x, 3)) == NS_OK)
            d->shape[1] = d->shape[2] = 1;
        break;
    case NS_OP_FLATTEN: {
        long long n = (long long)x->shape[0] * x->shape[1] * x->shape[2];
        if (d->iattr[NS_IA_AXIS] != 1) {
            st = ns_error(NS_ERR_UNSUPPORTED, "'%s': node '%s': Flatten axis %d (only 1)", origin,
                          d->name, (int)d->iattr[NS_IA_AXIS]);
            break;
        }
        if (n > INT_MAX) {
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s': %lld elements", origin, d->name, n);
            break;
        }
        d->rank = 1;
        d->shape[0] = (int)n;
        d->shape[1] = d->shape[2] = 1;
        break;
    }
    case NS_OP_GEMM:
        if ((st = need_rank(origin, d, x, 1)) != NS_OK ||
            (st = check_weight(origin, d, w, 2, w->dims[0], x->shape[0], 1, 1)) != NS_OK ||
            (b && (st = check_weight(origin, d, b, 1, w->dims[0], 1, 1, 1)) != NS_OK))
            break;
        d->shape[0] = w->dims[0];
        break;
    case NS_OP_CONCAT: {
        long long c = 0;
        if (d->iattr[NS_IA_AXIS] != 1) {
            st = ns_error(NS_ERR_UNSUPPORTED, "'%s': node '%s': Concat axis %d (only 1)", origin,
                          d->name, (int)d->iattr[NS_IA_AXIS]);
            break;
        }
        for (int i = 0; i < d->n_inputs; i++) {
            const ns_model_node *y = &m->nodes[d->inputs[i]];
            if (y->rank != x->rank || y->shape[1] != x->shape[1] || y->shape[2] != x->shape[2]) {
                st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' (Concat): input '%s' does not "
                              "match '%s' outside the channels", origin, d->name, y->name,
                              x->name);
                break;
            }
            c += y->shape[0];
        }
        if (st == NS_OK && c > INT_MAX)
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s': too many channels", origin, d->name);
        d->shape[0] = (int)c;
        break;
    }
    case NS_OP_L2NORM:
        st = need_rank(origin, d, x, 1);
        break;
    case NS_OP_COUNT:
        st = ns_error(NS_ERR_INTERNAL, "bad op");
        break;
    }
    return st;
}

static int op_arity_ok(ns_op op, int n)
{
    switch (op) {
    case NS_OP_INPUT: return n == 0;
    case NS_OP_ADD: case NS_OP_MUL: return n == 2;
    case NS_OP_CONCAT: return n >= 1;
    default: return n == 1;
    }
}

static ns_status check_info(const ns_model_info *info, const char *origin)
{
    if (!str_ok(info->name, sizeof info->name) || !str_ok(info->output, sizeof info->output))
        return ns_error(NS_ERR_FORMAT, "'%s': model name or output name is too long", origin);
    if (info->input_size < 1 || info->input_size > 4096)
        return ns_error(NS_ERR_FORMAT, "'%s': input_size %d out of range 1..4096", origin,
                        info->input_size);
    if (info->embed_dim < 1)
        return ns_error(NS_ERR_FORMAT, "'%s': embedding_dim %d must be positive", origin,
                        info->embed_dim);
    for (int c = 0; c < 3; c++)
        if (!isfinite(info->mean[c]) || !isfinite(info->std[c]) || !(info->std[c] != 0.0f))
            return ns_error(NS_ERR_FORMAT, "'%s': mean/std must be finite with std != 0", origin);
    return NS_OK;
}

/* Names, ops and inputs of the records: fills ops[n] and inix[n * 4] (-1 unused). */
static ns_status check_records(const ns_model_node_rec *recs, size_t n, const char *origin,
                               name_ix *sorted, int *ops, int *inix, int *n_in)
{
    ns_status st = NS_OK;
    ns_strbuf bad = {0};
    int inputs = 0;
    for (size_t i = 0; i < n; i++) {
        /* Names become HDF5 link names under /weights: no '/', not ".". */
        if (!str_ok(recs[i].name, NS_MODEL_NAME_LEN) || !recs[i].name[0] ||
            strchr(recs[i].name, '/') || strcmp(recs[i].name, ".") == 0)
            return ns_error(NS_ERR_FORMAT, "'%s': node %zu has an empty, unterminated or "
                            "invalid name (no '/' allowed)", origin, i);
        if (!str_ok(recs[i].op, NS_MODEL_OP_LEN))
            return ns_error(NS_ERR_FORMAT, "'%s': node '%s' has an unterminated op", origin,
                            recs[i].name);
        sorted[i].name = recs[i].name;
        sorted[i].ix = (int)i;
    }
    qsort(sorted, n, sizeof *sorted, cmp_name_ix);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
            return ns_error(NS_ERR_FORMAT, "'%s': node name '%s' is used twice", origin,
                            sorted[i].name);
    /* Every unknown op at once: the user learns the whole gap in one run. */
    for (size_t i = 0; i < n; i++) {
        ops[i] = ns_op_parse(recs[i].op);
        if (ops[i] >= 0)
            continue;
        size_t j = 0;
        while (j < i && !(ops[j] < 0 && strcmp(recs[j].op, recs[i].op) == 0))
            j++;
        if (j == i)
            ns_strbuf_printf(&bad, "%s'%s' (node '%s')", bad.len ? ", " : "", recs[i].op,
                             recs[i].name);
    }
    if (bad.len) {
        st = ns_error(NS_ERR_UNSUPPORTED, "'%s': unsupported operators: %s", origin, bad.data);
        goto done;
    }
    if ((st = ns_strbuf_status(&bad)) != NS_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (int s = 0; s < NS_MODEL_MAX_INPUTS; s++) {
            const char *in = recs[i].inputs[s];
            inix[i * NS_MODEL_MAX_INPUTS + s] = -1;
            if (!str_ok(in, NS_MODEL_NAME_LEN)) {
                st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' input %d is unterminated", origin,
                              recs[i].name, s);
                goto done;
            }
            if (!in[0])
                continue;
            if (k != s) {
                st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' has an empty input slot before "
                              "input '%s'", origin, recs[i].name, in);
                goto done;
            }
            int ix = find_name(sorted, n, in);
            if (ix < 0) {
                st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' input '%s' is not a node", origin,
                              recs[i].name, in);
                goto done;
            }
            inix[i * NS_MODEL_MAX_INPUTS + k++] = ix;
        }
        if (!op_arity_ok((ns_op)ops[i], k)) {
            st = ns_error(NS_ERR_FORMAT, "'%s': node '%s' (%s) cannot take %d inputs", origin,
                          recs[i].name, recs[i].op, k);
            goto done;
        }
        n_in[i] = k;
        inputs += ops[i] == NS_OP_INPUT;
    }
    if (inputs != 1)
        st = ns_error(NS_ERR_FORMAT, "'%s': the graph has %d Input nodes, expected 1", origin,
                      inputs);
done:
    ns_strbuf_release(&bad);
    return st;
}

static int unsorted_input(const int *inix, const int *n_in, const int *indeg, int v)
{
    for (int s = 0; s < n_in[v]; s++)
        if (indeg[inix[v * NS_MODEL_MAX_INPUTS + s]] > 0)
            return inix[v * NS_MODEL_MAX_INPUTS + s];
    assert(0 && "a node left unsorted has an unsorted input");
    return v;
}

/* Kahn's algorithm: order[k] = record index of the k-th node. */
static ns_status topo_sort(const ns_model_node_rec *recs, size_t n, const int *inix,
                           const int *n_in, const char *origin, int *order, int *scratch)
{
    int *indeg = scratch, *start = scratch + n, *cons = scratch + 2 * n + 1,
        *heap = scratch + 2 * n + 1 + n * NS_MODEL_MAX_INPUTS;
    size_t hn = 0, done = 0;
    memset(start, 0, (n + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++) {
        indeg[i] = n_in[i];
        for (int s = 0; s < n_in[i]; s++)
            start[inix[i * NS_MODEL_MAX_INPUTS + s] + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (size_t i = 0; i < n; i++) /* fill consumers, using heap as cursors */
        heap[i] = start[i];
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < n_in[i]; s++)
            cons[heap[inix[i * NS_MODEL_MAX_INPUTS + s]]++] = (int)i;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            heap_push(heap, &hn, (int)i);
    while (hn > 0) {
        int v = heap_pop(heap, &hn);
        order[done++] = v;
        for (int e = start[v]; e < start[v + 1]; e++)
            if (--indeg[cons[e]] == 0)
                heap_push(heap, &hn, cons[e]);
    }
    if (done == n)
        return NS_OK;
    /* Every node left has an input left: following those n times from any of
     * them ends on the cycle, which the message then spells out. */
    int v = -1, first;
    for (size_t i = 0; i < n && v < 0; i++)
        if (indeg[i] > 0)
            v = (int)i;
    assert(v >= 0);
    for (size_t step = 0; step < n; step++)
        v = unsorted_input(inix, n_in, indeg, v);
    ns_strbuf path = {0};
    first = v;
    for (int len = 0; len < 8; len++) {
        ns_strbuf_printf(&path, "'%s' reads ", recs[v].name);
        v = unsorted_input(inix, n_in, indeg, v);
        if (v == first)
            break;
    }
    ns_strbuf_printf(&path, v == first ? "'%s'" : "... '%s'", recs[v].name);
    ns_status st = ns_error(NS_ERR_FORMAT, "'%s': cyclic graph: %s", origin,
                            path.data ? path.data : "?");
    ns_strbuf_release(&path);
    return st;
}

/* Attaches each weight record to its slot: wslot[r] = canonical slot or -1. */
static ns_status check_weights(const ns_model_node_rec *recs, size_t n, const int *ops,
                               const ns_model_weight_rec *w, size_t nw, const char *origin,
                               int *wix, size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < n * NS_MODEL_MAX_WEIGHTS; i++)
        wix[i] = -1;
    for (size_t r = 0; r < nw; r++) {
        const ns_model_weight_rec *x = &w[r];
        int slot = -1;
        size_t count = 1;
        if (x->node >= n)
            return ns_error(NS_ERR_INTERNAL, "'%s': weight record for node %zu of %zu", origin,
                            x->node, n);
        const char *node = recs[x->node].name;
        if (!str_ok(x->name, sizeof x->name))
            return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' has a weight with a long name",
                            origin, node);
        for (int s = 0; s < NS_MODEL_MAX_WEIGHTS; s++)
            if (op_wnames[ops[x->node]][s] && strcmp(op_wnames[ops[x->node]][s], x->name) == 0)
                slot = s;
        if (slot < 0)
            return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' (%s) has an unexpected weight '%s'",
                            origin, node, recs[x->node].op, x->name);
        if (wix[x->node * NS_MODEL_MAX_WEIGHTS + slot] >= 0)
            return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' has weight '%s' twice", origin,
                            node, x->name);
        if (x->rank < 1 || x->rank > 4)
            return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' has rank %d", origin,
                            node, x->name, x->rank);
        for (int k = 0; k < x->rank; k++) {
            if (x->dims[k] < 1 || count > ((size_t)1 << 40) / (size_t)x->dims[k])
                return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' weight '%s' has a bad shape",
                                origin, node, x->name);
            count *= (size_t)x->dims[k];
        }
        *total += count;
        if (*total > ((size_t)1 << 34))
            return ns_error(NS_ERR_LIMIT, "'%s': more than 2^34 weights", origin);
        wix[x->node * NS_MODEL_MAX_WEIGHTS + slot] = (int)r;
    }
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < NS_MODEL_MAX_WEIGHTS; s++)
            if (op_wrequired[ops[i]][s] && wix[i * NS_MODEL_MAX_WEIGHTS + s] < 0)
                return ns_error(NS_ERR_CORRUPT, "'%s': node '%s' (%s) is missing weight '%s'",
                                origin, recs[i].name, recs[i].op, op_wnames[ops[i]][s]);
    return NS_OK;
}

ns_status ns_model_build(const ns_model_info *info, const ns_model_node_rec *recs, size_t n,
                         const ns_model_weight_rec *w, size_t nw, const char *origin,
                         ns_model **out)
{
    ns_status st = NS_OK;
    ns_model *m = NULL;
    name_ix *sorted = NULL;
    int *ints = NULL;
    size_t total = 0, used = 0;
    *out = NULL;
    if (!origin)
        origin = "model";
    if ((st = check_info(info, origin)) != NS_OK)
        goto done;
    if (n == 0 || n > NS_MODEL_MAX_NODES) {
        st = ns_error(NS_ERR_FORMAT, "'%s': %zu nodes (1..%d)", origin, n, NS_MODEL_MAX_NODES);
        goto done;
    }
    /* ops, n_in, order, pos (n each), inputs and weight slots (4n each), sort scratch. */
    size_t n_ints = 4 * n + n * NS_MODEL_MAX_INPUTS + n * NS_MODEL_MAX_WEIGHTS +
                    (3 * n + 1 + n * NS_MODEL_MAX_INPUTS);
    sorted = malloc(n * sizeof *sorted);
    ints = malloc(n_ints * sizeof *ints);
    m = calloc(1, sizeof *m);
    if (!sorted || !ints || !m) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %zu nodes", origin, n);
        goto done;
    }
    int *ops = ints, *n_in = ops + n, *order = n_in + n, *pos = order + n;
    int *inix = pos + n, *wix = inix + n * NS_MODEL_MAX_INPUTS;
    int *scratch = wix + n * NS_MODEL_MAX_WEIGHTS;
    if ((st = check_records(recs, n, origin, sorted, ops, inix, n_in)) != NS_OK ||
        (st = topo_sort(recs, n, inix, n_in, origin, order, scratch)) != NS_OK ||
        (st = check_weights(recs, n, ops, w, nw, origin, wix, &total)) != NS_OK)
        goto done;
    m->info = *info;
    m->nodes = calloc(n, sizeof *m->nodes);
    m->weights = malloc((total ? total : 1) * sizeof *m->weights);
    if (!m->nodes || !m->weights) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %zu weights", origin, total);
        goto done;
    }
    m->n_nodes = n;
    m->n_weight_floats = total;
    m->output = m->input = -1;
    for (size_t k = 0; k < n; k++)
        pos[order[k]] = (int)k;
    for (size_t k = 0; k < n; k++) {
        int r = order[k];
        ns_model_node *d = &m->nodes[k];
        memcpy(d->name, recs[r].name, sizeof d->name);
        d->op = (ns_op)ops[r];
        d->n_inputs = n_in[r];
        for (int s = 0; s < NS_MODEL_MAX_INPUTS; s++)
            d->inputs[s] = s < n_in[r] ? pos[inix[r * NS_MODEL_MAX_INPUTS + s]] : -1;
        memcpy(d->iattr, recs[r].iattr, sizeof d->iattr);
        memcpy(d->fattr, recs[r].fattr, sizeof d->fattr);
        for (int s = 0; s < NS_MODEL_MAX_WEIGHTS; s++) {
            int wr = wix[r * NS_MODEL_MAX_WEIGHTS + s];
            if (wr < 0)
                continue;
            ns_model_weight *dw = &d->weights[d->n_weights++];
            snprintf(dw->name, sizeof dw->name, "%s", w[wr].name);
            dw->rank = w[wr].rank;
            dw->count = 1;
            for (int i = 0; i < 4; i++) {
                dw->dims[i] = i < dw->rank ? w[wr].dims[i] : 1;
                dw->count *= (size_t)dw->dims[i];
            }
            dw->data = m->weights + used;
            memcpy(dw->data, w[wr].data, dw->count * sizeof *dw->data);
            used += dw->count;
        }
        if (d->op == NS_OP_INPUT)
            m->input = (int)k;
        if (strcmp(d->name, info->output) == 0)
            m->output = (int)k;
        if ((st = infer_node(m, d, origin)) != NS_OK)
            goto done;
    }
    if (m->output < 0) {
        st = ns_error(NS_ERR_FORMAT, "'%s': output node '%s' is not in the graph", origin,
                      info->output);
        goto done;
    }
    const ns_model_node *o = &m->nodes[m->output];
    if ((long long)o->shape[0] * o->shape[1] * o->shape[2] != info->embed_dim) {
        st = ns_error(NS_ERR_FORMAT, "'%s': output node '%s' gives %d x %d x %d values, "
                      "embedding_dim is %d", origin, o->name, o->shape[0], o->shape[1],
                      o->shape[2], info->embed_dim);
        goto done;
    }
    ns_model_compute_id(m, m->id);
    *out = m;
    m = NULL;
done:
    ns_model_free(m);
    free(ints);
    free(sorted);
    return st;
}
