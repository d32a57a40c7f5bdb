/* model_tools.c -- what is done to a built model: its id, BatchNormalization
 * folding, and a human-readable summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/model.h"
#include "nightshift/ops.h"

/* ---- model id ---------------------------------------------------------------- */

static void hash_u32(ns_sha256 *h, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    ns_sha256_update(h, b, 4);
}

static void hash_f32(ns_sha256 *h, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    hash_u32(h, v);
}

static void hash_str(ns_sha256 *h, const char *s, size_t width)
{
    char buf[NS_MODEL_NAME_LEN] = {0};
    size_t n = strnlen(s, width);
    memcpy(buf, s, n);
    ns_sha256_update(h, buf, width);
}

static void hash_floats(ns_sha256 *h, const float *x, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    ns_sha256_update(h, x, n * sizeof *x);
#else
    for (size_t i = 0; i < n; i++)
        hash_f32(h, x[i]);
#endif
}

void ns_model_compute_id(const ns_model *m, char hex[NS_SHA256_HEX])
{
    static const char magic[] = "nightshift-model-v1"; /* hashed with its NUL */
    uint8_t digest[NS_SHA256_LEN];
    ns_sha256 h;
    const ns_model_info *in = &m->info;
    ns_sha256_init(&h);
    ns_sha256_update(&h, magic, sizeof magic);
    hash_u32(&h, (uint32_t)in->input_size);
    hash_u32(&h, (uint32_t)in->bgr);
    for (int c = 0; c < 3; c++)
        hash_f32(&h, in->mean[c]);
    for (int c = 0; c < 3; c++)
        hash_f32(&h, in->std[c]);
    hash_u32(&h, (uint32_t)in->embed_dim);
    hash_u32(&h, (uint32_t)in->l2_normalize);
    hash_str(&h, in->output, NS_MODEL_NAME_LEN);
    hash_u32(&h, (uint32_t)m->n_nodes);
    for (size_t k = 0; k < m->n_nodes; k++) {
        const ns_model_node *d = &m->nodes[k];
        hash_str(&h, d->name, NS_MODEL_NAME_LEN);
        hash_str(&h, ns_op_name(d->op), NS_MODEL_OP_LEN);
        for (int s = 0; s < NS_MODEL_MAX_INPUTS; s++)
            hash_str(&h, s < d->n_inputs ? m->nodes[d->inputs[s]].name : "", NS_MODEL_NAME_LEN);
        for (int i = 0; i < NS_MODEL_IATTRS; i++)
            hash_u32(&h, (uint32_t)d->iattr[i]);
        for (int i = 0; i < NS_MODEL_FATTRS; i++)
            hash_f32(&h, d->fattr[i]);
        hash_u32(&h, (uint32_t)d->n_weights);
        for (int i = 0; i < d->n_weights; i++) {
            const ns_model_weight *x = &d->weights[i];
            hash_str(&h, x->name, NS_MODEL_WNAME_LEN);
            hash_u32(&h, (uint32_t)x->rank);
            for (int j = 0; j < 4; j++)
                hash_u32(&h, j < x->rank ? (uint32_t)x->dims[j] : 0u);
            hash_floats(&h, x->data, x->count);
        }
    }
    ns_sha256_final(&h, digest);
    ns_sha256_hex(digest, hex);
}

/* ---- BatchNormalization folding ---------------------------------------------- */

ns_status ns_model_fold_batchnorm(ns_model *m, int *folded)
{
    ns_status st = NS_OK;
    size_t n = m->n_nodes, total = 0, used = 0, kept = 0;
    int *uses = calloc(n, sizeof *uses), *map = malloc(n * sizeof *map);
    unsigned char *fold = calloc(n, 1); /* 1: conv feeding a folded BN, 2: the BN */
    ns_model_node *nodes = NULL;
    float *weights = NULL;
    int count = 0;
    if (!uses || !map || !fold) {
        st = ns_error(NS_ERR_NOMEM, "out of memory folding batch norms");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < m->nodes[i].n_inputs; s++)
            uses[m->nodes[i].inputs[s]]++;
    for (size_t i = 0; i < n; i++) {
        const ns_model_node *d = &m->nodes[i];
        int p = d->n_inputs ? d->inputs[0] : -1;
        /* The conv's own output must be invisible, or folding would change it. */
        if (d->op == NS_OP_BATCHNORM && m->nodes[p].op == NS_OP_CONV && uses[p] == 1 &&
            p != m->output) {
            fold[p] = 1;
            fold[i] = 2;
            count++;
        }
    }
    if (folded)
        *folded = count;
    if (count == 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (fold[i] == 2)
            continue;
        for (int s = 0; s < m->nodes[i].n_weights; s++)
            total += m->nodes[i].weights[s].count;
        if (fold[i] == 1 && m->nodes[i].n_weights == 1)
            total += (size_t)m->nodes[i].shape[0]; /* the bias it gains */
    }
    nodes = calloc(n - (size_t)count, sizeof *nodes);
    weights = malloc((total ? total : 1) * sizeof *weights);
    if (!nodes || !weights) {
        st = ns_error(NS_ERR_NOMEM, "out of memory folding batch norms");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const ns_model_node *d = &m->nodes[i];
        if (fold[i] == 2) {
            const ns_model_node *c = &m->nodes[d->inputs[0]];
            ns_model_node *nc = &nodes[map[d->inputs[0]]];
            map[i] = map[d->inputs[0]];
            if ((int)i == m->output) /* the conv now produces the output */
                snprintf(m->info.output, sizeof m->info.output, "%s", c->name);
            ns_fold_batchnorm(nc->weights[0].data, nc->weights[1].data, nc->shape[0],
                              nc->weights[0].count / (size_t)nc->shape[0], d->weights[0].data,
                              d->weights[1].data, d->weights[2].data, d->weights[3].data,
                              d->fattr[NS_FA_EPS]);
            continue;
        }
        ns_model_node *nd = &nodes[kept];
        *nd = *d;
        map[i] = (int)kept++;
        for (int s = 0; s < nd->n_inputs; s++)
            nd->inputs[s] = map[d->inputs[s]];
        for (int s = 0; s < nd->n_weights; s++) {
            nd->weights[s].data = weights + used;
            memcpy(nd->weights[s].data, d->weights[s].data, d->weights[s].count * sizeof(float));
            used += d->weights[s].count;
        }
        if (fold[i] == 1 && nd->n_weights == 1) {
            ns_model_weight *b = &nd->weights[nd->n_weights++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "B");
            b->rank = 1;
            b->dims[0] = nd->shape[0];
            b->dims[1] = b->dims[2] = b->dims[3] = 1;
            b->count = (size_t)nd->shape[0];
            b->data = weights + used;
            memset(b->data, 0, b->count * sizeof(float));
            used += b->count;
        }
    }
    if (used != total) {
        st = ns_error(NS_ERR_INTERNAL, "batch norm folding miscounted weights");
        goto done;
    }
    m->input = map[m->input];
    m->output = map[m->output];
    free(m->nodes);
    free(m->weights);
    m->nodes = nodes;
    m->weights = weights;
    m->n_nodes = kept;
    m->n_weight_floats = total;
    nodes = NULL;
    weights = NULL;
done:
    free(nodes);
    free(weights);
    free(fold);
    free(map);
    free(uses);
    return st;
}

/* ---- summary ------------------------------------------------------------------- */

ns_status ns_model_describe(const ns_model *m, ns_strbuf *out)
{
    const ns_model_info *in = &m->info;
    const ns_model_node *o = &m->nodes[m->output];
    char shape[96];
    ns_strbuf_printf(out, "model       %s\n", in->name[0] ? in->name : "(unnamed)");
    ns_strbuf_printf(out, "id          %s\n", m->id);
    ns_strbuf_printf(out, "input       (3, %d, %d) %s, mean [%.4g, %.4g, %.4g], "
                     "std [%.4g, %.4g, %.4g]\n", in->input_size, in->input_size,
                     in->bgr ? "bgr" : "rgb", in->mean[0], in->mean[1], in->mean[2],
                     in->std[0], in->std[1], in->std[2]);
    ns_strbuf_printf(out, "output      '%s', embedding dim %d%s\n", o->name, in->embed_dim,
                     in->l2_normalize ? ", L2-normalised" : "");
    ns_strbuf_printf(out, "parameters  %zu\n", ns_model_param_count(m));
    ns_strbuf_printf(out, "nodes       %zu\n", m->n_nodes);
    for (size_t k = 0; k < m->n_nodes; k++) {
        const ns_model_node *d = &m->nodes[k];
        size_t params = 0;
        for (int s = 0; s < d->n_weights; s++)
            params += d->weights[s].count;
        if (d->rank == 1)
            snprintf(shape, sizeof shape, "(%d)", d->shape[0]);
        else
            snprintf(shape, sizeof shape, "(%d, %d, %d)", d->shape[0], d->shape[1], d->shape[2]);
        ns_strbuf_printf(out, "  %4zu  %-24s %-18s %-18s", k, d->name, ns_op_name(d->op), shape);
        if (params)
            ns_strbuf_printf(out, " %zu params", params);
        for (int s = 0; s < d->n_inputs; s++)
            ns_strbuf_printf(out, "%s%s", s ? ", " : "  <- ", m->nodes[d->inputs[s]].name);
        ns_strbuf_printf(out, "\n");
    }
    return ns_strbuf_status(out);
}
