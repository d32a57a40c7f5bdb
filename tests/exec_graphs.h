/* exec_graphs.h -- fixtures shared by test_exec.c, test_exec_gpu.c and test_model.c: a
 * small graph that touches every operator the executor runs, random frames,
 * and the embedding comparison. */
#ifndef NIGHTSHIFT_TESTS_EXEC_GRAPHS_H
#define NIGHTSHIFT_TESTS_EXEC_GRAPHS_H

#include <math.h>

#include "nightshift/ops.h"

#include "helpers.h"
#include "nightshift/exec.h"
#include "nightshift/model.h"

#define XG_MAX_NODES 40
#define XG_MAX_FLOATS 8192

typedef struct xgraph {
    ns_model_info info;
    ns_model_node_rec recs[XG_MAX_NODES];
    ns_model_weight_rec w[XG_MAX_NODES];
    size_t n, nw, used;
    float pool[XG_MAX_FLOATS];
    uint64_t rng;
} xgraph;

/* Clears g and sets what every test graph states: seed, name, output node,
 * input size, embedding dimension, L2 normalisation, mean/std per channel. */
static inline void xg_begin(xgraph *g, uint64_t rng, const char *name, const char *output,
                            int input_size, int dim, int l2, float mean, float sd)
{
    memset(g, 0, sizeof *g);
    g->rng = rng;
    snprintf(g->info.name, sizeof g->info.name, "%s", name);
    snprintf(g->info.output, sizeof g->info.output, "%s", output);
    g->info.input_size = input_size;
    g->info.embed_dim = dim;
    g->info.l2_normalize = l2;
    for (int c = 0; c < 3; c++) {
        g->info.mean[c] = mean;
        g->info.std[c] = sd;
    }
}

static inline float xg_rand(uint64_t *s) /* uniform in [-1, 1) */
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* Fills one node record: name, op and up to two inputs (NULL: none). */
static inline void xg_set_node(ns_model_node_rec *r, const char *name, const char *op,
                               const char *in0, const char *in1)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->op, sizeof r->op, "%s", op);
    if (in0)
        snprintf(r->inputs[0], sizeof r->inputs[0], "%s", in0);
    if (in1)
        snprintf(r->inputs[1], sizeof r->inputs[1], "%s", in1);
}

static inline ns_model_node_rec *xg_node(xgraph *g, const char *name, const char *op,
                                         const char *in0, const char *in1)
{
    ck_assert_uint_lt(g->n, XG_MAX_NODES);
    ns_model_node_rec *r = &g->recs[g->n++];
    xg_set_node(r, name, op, in0, in1);
    return r;
}

static inline void xg_weight(xgraph *g, const char *name, int rank, int d0, int d1, int d2,
                             int d3, float scale)
{
    size_t count = (size_t)d0 * d1 * d2 * d3;
    ck_assert_uint_le(g->used + count, XG_MAX_FLOATS);
    ns_model_weight_rec *w = &g->w[g->nw++];
    memset(w, 0, sizeof *w);
    w->node = g->n - 1;
    snprintf(w->name, sizeof w->name, "%s", name);
    w->rank = rank;
    w->dims[0] = d0;
    w->dims[1] = d1;
    w->dims[2] = d2;
    w->dims[3] = d3;
    for (size_t i = 0; i < count; i++)
        g->pool[g->used + i] = scale * xg_rand(&g->rng);
    w->data = g->pool + g->used;
    g->used += count;
}

/* Conv c_in -> c_out, k x k, stride s, pad k / 2, groups g, with bias. */
static inline void xg_conv(xgraph *g, const char *name, const char *in, int c_in, int c_out,
                           int k, int s, int groups)
{
    ns_model_node_rec *r = xg_node(g, name, "Conv", in, NULL);
    r->iattr[NS_IA_KH] = r->iattr[NS_IA_KW] = k;
    r->iattr[NS_IA_STRIDE_H] = r->iattr[NS_IA_STRIDE_W] = s;
    r->iattr[NS_IA_PAD_TOP] = r->iattr[NS_IA_PAD_LEFT] = k / 2;
    r->iattr[NS_IA_PAD_BOTTOM] = r->iattr[NS_IA_PAD_RIGHT] = k / 2;
    r->iattr[NS_IA_DIL_H] = r->iattr[NS_IA_DIL_W] = 1;
    r->iattr[NS_IA_GROUPS] = groups;
    float scale = sqrtf(6.0f / (float)(c_in / groups * k * k));
    xg_weight(g, "W", 4, c_out, c_in / groups, k, k, scale);
    xg_weight(g, "B", 1, c_out, 1, 1, 1, 0.1f);
}

static inline void xg_pool(xgraph *g, const char *name, const char *op, const char *in, int k,
                           int s, int pad, int ceil_mode, int include_pad)
{
    ns_model_node_rec *r = xg_node(g, name, op, in, NULL);
    r->iattr[NS_IA_KH] = r->iattr[NS_IA_KW] = k;
    r->iattr[NS_IA_STRIDE_H] = r->iattr[NS_IA_STRIDE_W] = s;
    r->iattr[NS_IA_PAD_TOP] = r->iattr[NS_IA_PAD_LEFT] = pad;
    r->iattr[NS_IA_PAD_BOTTOM] = r->iattr[NS_IA_PAD_RIGHT] = pad;
    r->iattr[NS_IA_CEIL_MODE] = ceil_mode;
    r->iattr[NS_IA_COUNT_INCLUDE_PAD] = include_pad;
}

static inline void xg_clip(xgraph *g, const char *name, const char *in, float lo, float hi)
{
    ns_model_node_rec *r = xg_node(g, name, "Clip", in, NULL);
    r->fattr[NS_FA_MIN] = lo;
    r->fattr[NS_FA_MAX] = hi;
}

/* A mobile-style graph on (3, 16, 16) inputs, 10-dim L2-normalised output:
 *   stem conv+relu (fused) -> depthwise conv+relu6 (fused) -> pointwise conv
 *   -> HardSwish (fused) -> residual Add with the stem -> Clip (fused into
 *   the Add) -> squeeze-excite (GAP, 1x1 conv, Relu, 1x1 conv, HardSigmoid,
 *   Mul) -> Relu (in place) -> MaxPool and AveragePool -> Concat -> conv
 *   read twice (no fusion): Silu and Sigmoid (copies) -> Add -> GAP ->
 *   Flatten -> Gemm -> Sigmoid (fused) -> L2 normalised by the executor.
 * Also a dead branch the output does not need. */
static inline ns_status xg_build_mixed(ns_model **out)
{
    static xgraph g; /* big: keep it off the stack */
    xg_begin(&g, 12345, "mixed", "head", 16, 10, 1, 0.0f, 1.0f);
    g.info.bgr = 1;
    for (int c = 0; c < 3; c++) {
        g.info.mean[c] = 0.4f + 0.05f * c;
        g.info.std[c] = 0.2f + 0.02f * c;
    }
    xg_node(&g, "in", "Input", NULL, NULL);
    xg_conv(&g, "stem", "in", 3, 8, 3, 1, 1);
    xg_node(&g, "stem_relu", "Relu", "stem", NULL);
    xg_conv(&g, "dw", "stem_relu", 8, 8, 3, 1, 8);
    xg_clip(&g, "dw_relu6", "dw", 0.0f, 6.0f);
    xg_conv(&g, "pw", "dw_relu6", 8, 8, 1, 1, 1);
    xg_node(&g, "pw_hs", "HardSwish", "pw", NULL);
    xg_node(&g, "res", "Add", "pw_hs", "stem_relu");
    xg_clip(&g, "res_clip", "res", -2.0f, 4.0f);
    xg_node(&g, "se_gap", "GlobalAveragePool", "res_clip", NULL);
    xg_conv(&g, "se_fc1", "se_gap", 8, 4, 1, 1, 1);
    xg_node(&g, "se_relu", "Relu", "se_fc1", NULL);
    xg_conv(&g, "se_fc2", "se_relu", 4, 8, 1, 1, 1);
    ns_model_node_rec *hs = xg_node(&g, "se_gate", "HardSigmoid", "se_fc2", NULL);
    hs->fattr[NS_FA_ALPHA] = 0.2f;
    hs->fattr[NS_FA_BETA] = 0.5f;
    xg_node(&g, "se_mul", "Mul", "res_clip", "se_gate");
    xg_node(&g, "post_relu", "Relu", "se_mul", NULL);
    xg_pool(&g, "maxp", "MaxPool", "post_relu", 2, 2, 0, 1, 0);
    xg_pool(&g, "avgp", "AveragePool", "post_relu", 3, 2, 1, 0, 1);
    xg_node(&g, "cat", "Concat", "maxp", "avgp")->iattr[NS_IA_AXIS] = 1;
    xg_conv(&g, "c3", "cat", 16, 16, 3, 2, 1);
    xg_node(&g, "c3_silu", "Silu", "c3", NULL);
    xg_node(&g, "c3_sig", "Sigmoid", "c3", NULL);
    xg_node(&g, "mix", "Add", "c3_silu", "c3_sig");
    xg_node(&g, "gap", "GlobalAveragePool", "mix", NULL);
    xg_node(&g, "flat", "Flatten", "gap", NULL)->iattr[NS_IA_AXIS] = 1;
    xg_node(&g, "fc", "Gemm", "flat", NULL);
    xg_weight(&g, "W", 2, 10, 16, 1, 1, 0.5f);
    xg_weight(&g, "B", 1, 10, 1, 1, 1, 0.1f);
    xg_node(&g, "head", "Sigmoid", "fc", NULL);
    xg_node(&g, "dead", "Relu", "cat", NULL); /* not needed by the output */
    return ns_model_build(&g.info, g.recs, g.n, g.w, g.nw, "mixed-graph", out);
}

static inline uint8_t *xg_frames(int n, int S, uint64_t seed)
{
    size_t bytes = (size_t)n * S * S * 3;
    uint8_t *f = malloc(bytes);
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        f[i] = (uint8_t)(seed >> 56);
    }
    return f;
}

static inline size_t xg_len(const ns_model_node *d)
{
    return (size_t)d->shape[0] * d->shape[1] * d->shape[2];
}

static inline const float *xg_w(const ns_model_node *d, const char *name)
{
    for (int i = 0; i < d->n_weights; i++)
        if (strcmp(d->weights[i].name, name) == 0)
            return d->weights[i].data;
    return NULL;
}

/* The graph evaluated the obvious way, independent of the executor's plan:
 * one fresh buffer per node, no fusion, no views, no reuse, ns_ref_* ops. */
static inline void xg_naive_embed(const ns_model *m, const uint8_t *frames, int n, int S,
                                  float *emb)
{
    float **t = calloc(m->n_nodes, sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (size_t k = 0; k < m->n_nodes; k++) {
        const ns_model_node *d = &m->nodes[k];
        const ns_model_node *xn = d->n_inputs ? &m->nodes[d->inputs[0]] : NULL;
        const float *x = d->n_inputs ? t[d->inputs[0]] : NULL;
        size_t len = xg_len(d), cnt = len * (size_t)n;
        const int32_t *a = d->iattr;
        ns_act act = {NS_ACT_NONE, 0, 0};
        float *y = t[k] = malloc(cnt * sizeof *y);
        ck_assert_ptr_nonnull(y);
        switch (d->op) {
        case NS_OP_INPUT: {
            ns_preproc pp = {.size = m->info.input_size, .bgr = m->info.bgr};
            memcpy(pp.mean, m->info.mean, sizeof pp.mean);
            memcpy(pp.std, m->info.std, sizeof pp.std);
            ns_ref_preprocess(&pp, frames, n, S, y);
            break;
        }
        case NS_OP_CONV: {
            ns_conv_params p = {n, xn->shape[0], xn->shape[1], xn->shape[2], d->shape[0],
                                a[NS_IA_KH], a[NS_IA_KW], a[NS_IA_STRIDE_H], a[NS_IA_STRIDE_W],
                                a[NS_IA_PAD_TOP], a[NS_IA_PAD_LEFT], a[NS_IA_PAD_BOTTOM],
                                a[NS_IA_PAD_RIGHT], a[NS_IA_DIL_H], a[NS_IA_DIL_W],
                                a[NS_IA_GROUPS], 0, 0};
            ck_assert_ns_ok(ns_conv_prepare(&p));
            ns_ref_conv2d(&p, x, xg_w(d, "W"), xg_w(d, "B"), act, y);
            break;
        }
        case NS_OP_RELU: act.kind = NS_ACT_RELU; goto act;
        case NS_OP_SIGMOID: act.kind = NS_ACT_SIGMOID; goto act;
        case NS_OP_HARDSWISH: act.kind = NS_ACT_HARDSWISH; goto act;
        case NS_OP_SILU: act.kind = NS_ACT_SILU; goto act;
        case NS_OP_CLIP:
            act = (ns_act){NS_ACT_CLIP, d->fattr[NS_FA_MIN], d->fattr[NS_FA_MAX]};
            goto act;
        case NS_OP_HARDSIGMOID:
            act = (ns_act){NS_ACT_HARDSIGMOID, d->fattr[NS_FA_ALPHA], d->fattr[NS_FA_BETA]};
        act:
            memcpy(y, x, cnt * sizeof *y);
            ns_ref_act(act, y, cnt);
            break;
        case NS_OP_ADD: ns_ref_add(x, t[d->inputs[1]], y, cnt, act); break;
        case NS_OP_MUL: {
            const ns_model_node *sn = &m->nodes[d->inputs[1]];
            for (int i = 0; i < n; i++)
                for (size_t j = 0; j < len; j++)
                    y[i * len + j] = x[i * len + j] *
                                     t[d->inputs[1]][xg_len(sn) == len
                                                          ? i * len + j
                                                          : i * xg_len(sn) + j / (len / xg_len(sn))];
            break;
        }
        case NS_OP_MAXPOOL:
        case NS_OP_AVGPOOL: {
            ns_pool_params p = {n, xn->shape[0], xn->shape[1], xn->shape[2], a[NS_IA_KH],
                                a[NS_IA_KW], a[NS_IA_STRIDE_H], a[NS_IA_STRIDE_W],
                                a[NS_IA_PAD_TOP], a[NS_IA_PAD_LEFT], a[NS_IA_PAD_BOTTOM],
                                a[NS_IA_PAD_RIGHT], a[NS_IA_COUNT_INCLUDE_PAD],
                                a[NS_IA_CEIL_MODE], 0, 0};
            ck_assert_ns_ok(ns_pool_prepare(&p));
            (d->op == NS_OP_MAXPOOL ? ns_ref_maxpool : ns_ref_avgpool)(&p, x, y);
            break;
        }
        case NS_OP_GLOBALAVGPOOL:
            ns_ref_global_avgpool(x, n, xn->shape[0], xn->shape[1] * xn->shape[2], y);
            break;
        case NS_OP_FLATTEN: memcpy(y, x, cnt * sizeof *y); break;
        case NS_OP_GEMM:
            ns_ref_gemm(x, xg_w(d, "W"), xg_w(d, "B"), y, n, (int)xg_len(xn), d->shape[0], act);
            break;
        case NS_OP_CONCAT: {
            const float *xs[NS_MODEL_MAX_INPUTS];
            int cs[NS_MODEL_MAX_INPUTS];
            for (int i = 0; i < d->n_inputs; i++) {
                xs[i] = t[d->inputs[i]];
                cs[i] = m->nodes[d->inputs[i]].shape[0];
            }
            ns_ref_concat(xs, cs, d->n_inputs, n, d->shape[1] * d->shape[2], y);
            break;
        }
        case NS_OP_L2NORM:
            memcpy(y, x, cnt * sizeof *y);
            ns_ref_l2norm(y, n, (int)len);
            break;
        default: ck_abort_msg("naive: op %s", ns_op_name(d->op));
        }
    }
    size_t dim = xg_len(&m->nodes[m->output]);
    memcpy(emb, t[m->output], (size_t)n * dim * sizeof *emb);
    if (m->info.l2_normalize)
        ns_ref_l2norm(emb, n, (int)dim);
    for (size_t k = 0; k < m->n_nodes; k++)
        free(t[k]);
    free(t);
}

/* max over rows of ||got - want|| / ||want||. */
static inline double xg_max_rel_err(const float *got, const float *want, int n, int d)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double num = 0, den = 0;
        for (int j = 0; j < d; j++) {
            double g = got[(size_t)i * d + j], w = want[(size_t)i * d + j];
            num += (g - w) * (g - w);
            den += w * w;
        }
        double r = sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
        worst = r > worst ? r : worst;
    }
    return worst;
}

/* Embeds frames with dev and with the reference and compares, batch by
 * batch (sizes in bs, 0-terminated); each batch runs twice and must repeat
 * exactly. */
static inline void xg_compare(const ns_model *m, ns_device dev, int max_batch, int S,
                              const int *bs, double tol, uint64_t seed)
{
    ns_exec *fast = NULL, *ref = NULL;
    ck_assert_ns_ok(ns_exec_create(m, dev, max_batch, S, &fast));
    ck_assert_ns_ok(ns_exec_create(m, NS_DEVICE_REF, max_batch, S, &ref));
    ck_assert_int_eq(ns_exec_device(ref), NS_DEVICE_REF);
    int d = ns_exec_dim(fast);
    ck_assert_int_eq(d, m->info.embed_dim);
    for (int b = 0; bs[b]; b++) {
        int n = bs[b];
        uint8_t *frames = xg_frames(n, S, seed + (uint64_t)b);
        float *got = malloc((size_t)n * d * sizeof *got), *again = malloc((size_t)n * d * sizeof *again),
              *want = malloc((size_t)n * d * sizeof *want);
        ck_assert(got && again && want);
        ck_assert_ns_ok(ns_exec_run(fast, frames, n, got));
        ck_assert_ns_ok(ns_exec_run(ref, frames, n, want));
        /* The reference executor against the plan-free evaluation: catches
         * planning bugs (fusion, in-place, reuse) that both executors share. */
        xg_naive_embed(m, frames, n, S, again);
        double perr = xg_max_rel_err(want, again, n, d);
        ck_assert_msg(perr < 1e-5, "ref executor vs naive evaluation, batch %d: %g", n, perr);
        ck_assert_ns_ok(ns_exec_run(fast, frames, n, again));
        ck_assert_msg(memcmp(got, again, (size_t)n * d * sizeof *got) == 0,
                      "batch %d: second run differs", n);
        double err = xg_max_rel_err(got, want, n, d);
        ck_assert_msg(err < tol, "%s vs ref, batch %d: relative error %g (tolerance %g)",
                      ns_device_name(dev), n, err, tol);
        if (m->info.l2_normalize)
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < d; j++)
                    s += (double)got[(size_t)i * d + j] * got[(size_t)i * d + j];
                ck_assert_msg(fabs(s - 1.0) < 1e-4, "row %d: squared norm %g", i, s);
            }
        free(frames);
        free(got);
        free(again);
        free(want);
    }
    ns_exec_free(fast);
    ns_exec_free(ref);
}

#endif
