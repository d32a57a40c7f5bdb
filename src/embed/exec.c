/* exec.c -- planning and running a backbone model on batches of frames.
 *
 * Planning (ns_exec_create) walks the nodes once in topological order:
 *   - nodes the output does not depend on are dropped;
 *   - Flatten is a view of its input; an activation whose input is a Conv,
 *     Add or Gemm read by nothing else is fused into that op's ns_act;
 *     activations, L2Norm and Add write in place when their (first) input's
 *     buffer has no other reader;
 *   - every remaining node gets a buffer for max_batch samples from a pool:
 *     a buffer returns to the pool after the last node reading it, and the
 *     smallest free buffer that fits is reused (a too-small one grows);
 *   - all buffers, the conv workspace and a row of ones (for copies) are
 *     one allocation, made and touched here, so ns_exec_run allocates nothing.
 * Running dispatches through the device's operator table (exec_internal.h);
 * every node is timed.  On CUDA the per-node times are real only with
 * ns_exec_opts.sync_nodes, which synchronises the stream after every node;
 * that costs the overlap of each launch with the work before it (4-7% on
 * resnet18 at batch 256 on an H200), so a plain run synchronises once per
 * batch.  A reduced precision is the
 * CUDA context's business (ns_cuda_ctx_set_precision): the plan only sizes
 * its bf16 scratch.
 */
#include "nightshift/exec.h"

#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "exec_internal.h"
#include "ns_cuda.h"

/* ---- host operator tables ------------------------------------------------------- */

static ns_status host_alloc(void **out, size_t bytes)
{
    *out = NULL;
    if (posix_memalign(out, 4096, bytes ? bytes : 1) != 0) {
        *out = NULL;
        return ns_error(NS_ERR_NOMEM, "exec: cannot allocate %zu bytes", bytes);
    }
    /* Activations are large and reused every batch: huge pages save faults. */
    if (bytes >= (2u << 20))
        madvise(*out, bytes, MADV_HUGEPAGE);
    return NS_OK;
}

static void host_release(void *p) { free(p); }

static ns_status host_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    memcpy(dst, src, bytes);
    return NS_OK;
}

static ns_status host_sync(void *ctx)
{
    (void)ctx;
    return NS_OK;
}

/* The host operators return nothing; wrap each in the table's shape. */
#define NS_HOST_TABLE(P)                                                                    \
    static ns_status P##_pre(void *c, const ns_preproc *pp, const uint8_t *f, int n, int S, \
                             float *y)                                                      \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_preprocess(pp, f, n, S, y);                                                \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_conv(void *c, const ns_conv_params *p, const float *x,             \
                              const float *w, const float *b, ns_act a, float *y, float *ws) \
    {                                                                                       \
        (void)c;                                                                            \
        NS_HOST_CONV_##P(p, x, w, b, a, y, ws);                                             \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_maxpool(void *c, const ns_pool_params *p, const float *x, float *y) \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_maxpool(p, x, y);                                                          \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_avgpool(void *c, const ns_pool_params *p, const float *x, float *y) \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_avgpool(p, x, y);                                                          \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_gap(void *c, const float *x, int n, int ch, int hw, float *y)      \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_global_avgpool(x, n, ch, hw, y);                                           \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_act(void *c, ns_act a, float *x, size_t n)                         \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_act(a, x, n);                                                              \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_add(void *c, const float *a, const float *b, float *y, size_t n,   \
                             ns_act act)                                                    \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_add(a, b, y, n, act);                                                      \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_mul(void *c, const float *x, const float *s, float *y, int n,      \
                             int ch, int hw)                                                \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_mul_channel(x, s, y, n, ch, hw);                                           \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_gemm(void *c, const float *x, const float *w, const float *b,      \
                              float *y, int n, int k, int m, ns_act a)                      \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_gemm(x, w, b, y, n, k, m, a);                                              \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_concat(void *c, const float *const *x, const int *ch, int k, int n, \
                                int hw, float *y)                                           \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_concat(x, ch, k, n, hw, y);                                                \
        return NS_OK;                                                                       \
    }                                                                                       \
    static ns_status P##_l2norm(void *c, float *x, int n, int d)                            \
    {                                                                                       \
        (void)c;                                                                            \
        ns_##P##_l2norm(x, n, d);                                                           \
        return NS_OK;                                                                       \
    }                                                                                       \
    const ns_exec_backend ns_exec_backend_##P = {                                           \
        .on_device = 0, .alloc = host_alloc, .release = host_release,                       \
        .upload = host_copy, .download = host_copy, .sync = host_sync,                      \
        .preprocess = P##_pre, .conv = P##_conv, .maxpool = P##_maxpool,                    \
        .avgpool = P##_avgpool, .global_avgpool = P##_gap, .act = P##_act, .add = P##_add,  \
        .mul_channel = P##_mul, .gemm = P##_gemm, .concat = P##_concat,                     \
        .l2norm = P##_l2norm,                                                               \
    };

/* The reference conv needs no workspace. */
#define NS_HOST_CONV_ref(p, x, w, b, a, y, ws) ((void)(ws), ns_ref_conv2d(p, x, w, b, a, y))
#define NS_HOST_CONV_cpu(p, x, w, b, a, y, ws) ns_cpu_conv2d(p, x, w, b, a, y, ws)
NS_HOST_TABLE(ref)
NS_HOST_TABLE(cpu)

/* ---- the plan --------------------------------------------------------------------- */

enum { RUN = 0, VIEW, FUSED, DEAD }; /* what a node does at run time */

/* Profile slots after the nodes: frame upload and embedding hand-back. */
enum { PROF_UPLOAD = 0, PROF_OUTPUT, PROF_EXTRA };

struct ns_exec {
    const ns_model *m;
    ns_device dev;
    ns_precision prec;         /* of the conv and dense GEMMs (CUDA only) */
    const ns_exec_backend *be;
    ns_cuda_ctx *cuda;
    int max_batch, S, threads, normalize;
    size_t n_nodes;
    unsigned char *kind;       /* (n_nodes) RUN, VIEW, FUSED, DEAD */
    ns_act *act;               /* (n_nodes) fused activation (RUN nodes) */
    int *fused_by;             /* (n_nodes) the activation node fused in, or -1 */
    float **data;              /* (n_nodes) output tensor (max_batch, per-sample) */
    const float **w, **b;      /* (n_nodes) weights in tensor memory, NULL if none */
    ns_conv_params *cp;        /* (n_nodes) Conv parameters, n set per run */
    ns_pool_params *pp;        /* (n_nodes) pooling parameters, n set per run */
    double *secs;              /* (n_nodes + PROF_EXTRA) accumulated seconds */
    double *flops;             /* (n_nodes) accumulated floating-point operations */
    long runs, samples;
    void *arena;               /* activations, workspace, ones: tensor memory */
    float *workspace;          /* conv scratch or NULL */
    float *ones;               /* (max_batch) 1.0f: copies as x * 1 */
    float *dev_weights;        /* CUDA: m->weights uploaded, else NULL */
    uint8_t *dev_frames[2];    /* CUDA: (max_batch, S, S, 3); [1] with ahead only */
    uint8_t *staging[2];       /* CUDA: pinned (max_batch, S, S, 3); likewise */
    int ahead;                 /* CUDA: upload the next batch during this one */
    const uint8_t *ahead_src;  /* the frames uploaded ahead, or NULL; ahead_n of */
    int ahead_n, ahead_slot;   /* them, in dev_frames[ahead_slot] */
    int sync_nodes;            /* CUDA: synchronise after every node */
    ns_preproc pre;
};

static size_t per_sample(const ns_model_node *d)
{
    return (size_t)d->shape[0] * (size_t)d->shape[1] * (size_t)d->shape[2];
}

static int is_activation(ns_op op)
{
    return op == NS_OP_RELU || op == NS_OP_CLIP || op == NS_OP_SIGMOID ||
           op == NS_OP_HARDSIGMOID || op == NS_OP_HARDSWISH || op == NS_OP_SILU;
}

static ns_act node_act(const ns_model_node *d)
{
    ns_act a = {NS_ACT_NONE, 0.f, 0.f};
    switch (d->op) {
    case NS_OP_RELU: a.kind = NS_ACT_RELU; break;
    case NS_OP_CLIP:
        a = (ns_act){NS_ACT_CLIP, d->fattr[NS_FA_MIN], d->fattr[NS_FA_MAX]};
        break;
    case NS_OP_SIGMOID: a.kind = NS_ACT_SIGMOID; break;
    case NS_OP_HARDSIGMOID:
        a = (ns_act){NS_ACT_HARDSIGMOID, d->fattr[NS_FA_ALPHA], d->fattr[NS_FA_BETA]};
        break;
    case NS_OP_HARDSWISH: a.kind = NS_ACT_HARDSWISH; break;
    case NS_OP_SILU: a.kind = NS_ACT_SILU; break;
    default: break;
    }
    return a;
}

static const ns_model_weight *find_weight(const ns_model_node *d, const char *name)
{
    for (int i = 0; i < d->n_weights; i++)
        if (strcmp(d->weights[i].name, name) == 0)
            return &d->weights[i];
    return NULL;
}

/* Conv and pooling parameters from the attributes, checked against the
 * shapes the model inferred (the two must agree or a kernel overruns). */
static ns_status prepare_node(ns_exec *e, size_t k)
{
    const ns_model_node *d = &e->m->nodes[k];
    const ns_model_node *x = d->n_inputs > 0 ? &e->m->nodes[d->inputs[0]] : NULL;
    const int32_t *a = d->iattr;
    int ho = 0, wo = 0;
    ns_status st = NS_OK;
    if (d->op == NS_OP_CONV) {
        ns_conv_params *p = &e->cp[k];
        *p = (ns_conv_params){
            .n = e->max_batch, .c_in = x->shape[0], .h = x->shape[1], .w = x->shape[2],
            .c_out = d->shape[0], .kh = a[NS_IA_KH], .kw = a[NS_IA_KW],
            .stride_h = a[NS_IA_STRIDE_H], .stride_w = a[NS_IA_STRIDE_W],
            .pad_top = a[NS_IA_PAD_TOP], .pad_left = a[NS_IA_PAD_LEFT],
            .pad_bottom = a[NS_IA_PAD_BOTTOM], .pad_right = a[NS_IA_PAD_RIGHT],
            .dil_h = a[NS_IA_DIL_H], .dil_w = a[NS_IA_DIL_W], .groups = a[NS_IA_GROUPS]};
        if ((st = ns_conv_prepare(p)) != NS_OK)
            return ns_error_wrap(st, "exec: node '%s'", d->name);
        ho = p->h_out;
        wo = p->w_out;
    } else if (d->op == NS_OP_MAXPOOL || d->op == NS_OP_AVGPOOL) {
        ns_pool_params *p = &e->pp[k];
        *p = (ns_pool_params){
            .n = e->max_batch, .c = x->shape[0], .h = x->shape[1], .w = x->shape[2],
            .kh = a[NS_IA_KH], .kw = a[NS_IA_KW], .stride_h = a[NS_IA_STRIDE_H],
            .stride_w = a[NS_IA_STRIDE_W], .pad_top = a[NS_IA_PAD_TOP],
            .pad_left = a[NS_IA_PAD_LEFT], .pad_bottom = a[NS_IA_PAD_BOTTOM],
            .pad_right = a[NS_IA_PAD_RIGHT], .count_include_pad = a[NS_IA_COUNT_INCLUDE_PAD],
            .ceil_mode = a[NS_IA_CEIL_MODE]};
        if ((st = ns_pool_prepare(p)) != NS_OK)
            return ns_error_wrap(st, "exec: node '%s'", d->name);
        ho = p->h_out;
        wo = p->w_out;
    } else {
        return NS_OK;
    }
    if (ho != d->shape[1] || wo != d->shape[2])
        return ns_error(NS_ERR_INTERNAL, "exec: node '%s': output %dx%d, the model says %dx%d",
                        d->name, ho, wo, d->shape[1], d->shape[2]);
    return NS_OK;
}

/* Decides, per node, RUN/VIEW/FUSED/DEAD and which node's buffer holds its
 * output (root).  readers[r] counts the edges still to be read from r's
 * buffer, plus one for the model output: an op may overwrite its input in
 * place only when it is that buffer's sole reader. */
static ns_status plan_nodes(ns_exec *e, int *root, int *readers, int *cons, int *lastuse)
{
    const ns_model *m = e->m;
    size_t n = m->n_nodes;
    for (size_t k = 0; k < n; k++) {
        e->kind[k] = DEAD;
        e->fused_by[k] = -1;
        cons[k] = 0;
        lastuse[k] = -1;
    }
    /* Live: the output and what it depends on (topological order: walk back). */
    e->kind[m->output] = RUN;
    for (size_t k = n; k-- > 0;) {
        if (e->kind[k] == DEAD)
            continue;
        for (int i = 0; i < m->nodes[k].n_inputs; i++) {
            e->kind[m->nodes[k].inputs[i]] = RUN;
            cons[m->nodes[k].inputs[i]]++;
        }
    }
    for (size_t k = 0; k < n; k++) {
        const ns_model_node *d = &m->nodes[k];
        int in0 = d->n_inputs > 0 ? d->inputs[0] : -1;
        int own = cons[k] + ((int)k == m->output);
        if (e->kind[k] == DEAD)
            continue;
        if (d->op == NS_OP_BATCHNORM)
            return ns_error(NS_ERR_UNSUPPORTED, "exec: node '%s': BatchNormalization that "
                            "was not folded into a Conv (ns_model_fold_batchnorm)", d->name);
        root[k] = (int)k;
        if (d->op == NS_OP_FLATTEN) {
            e->kind[k] = VIEW;
        } else if (is_activation(d->op) && cons[in0] == 1 && in0 != m->output &&
                   e->kind[in0] == RUN && e->act[in0].kind == NS_ACT_NONE &&
                   (m->nodes[in0].op == NS_OP_CONV || m->nodes[in0].op == NS_OP_ADD ||
                    m->nodes[in0].op == NS_OP_GEMM)) {
            e->kind[k] = FUSED;
            e->act[in0] = node_act(d);
            e->fused_by[in0] = (int)k;
        }
        if (e->kind[k] != RUN ||
            ((is_activation(d->op) || d->op == NS_OP_L2NORM || d->op == NS_OP_ADD) &&
             readers[root[in0]] == 1))
            root[k] = root[in0];
        if (root[k] == (int)k)
            readers[k] = own;
        else
            readers[root[k]] += own - 1;
        for (int i = 0; i < d->n_inputs; i++)
            lastuse[root[d->inputs[i]]] = (int)k;
    }
    lastuse[root[m->output]] = (int)n; /* read by the hand-back after the last node */
    return NS_OK;
}

/* Pools buffers over the live ranges; returns the arena size in floats and
 * each owning node's offset in off[]. */
static ns_status assign_buffers(ns_exec *e, const int *root, const int *lastuse, size_t *off,
                                size_t *total)
{
    size_t n = e->m->n_nodes, nb = 0;
    size_t *bsize = calloc(n, sizeof *bsize);
    int *bfree = calloc(n, sizeof *bfree), *bof = calloc(n, sizeof *bof);
    ns_status st = NS_OK;
    if (!bsize || !bfree || !bof) {
        st = ns_error(NS_ERR_NOMEM, "exec: out of memory planning buffers");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        if (e->kind[k] == DEAD)
            continue;
        if (root[k] == (int)k) {
            /* Round to 64 floats: every tensor starts 256-byte aligned. */
            size_t need = (per_sample(&e->m->nodes[k]) * (size_t)e->max_batch + 63) & ~(size_t)63;
            size_t best = nb, big = nb;
            for (size_t j = 0; j < nb; j++) {
                if (!bfree[j])
                    continue;
                if (bsize[j] >= need && (best == nb || bsize[j] < bsize[best]))
                    best = j;
                if (big == nb || bsize[j] > bsize[big])
                    big = j;
            }
            if (best == nb)
                best = big;
            if (best == nb)
                bsize[nb++] = 0;
            if (bsize[best] < need)
                bsize[best] = need;
            bfree[best] = 0;
            bof[k] = (int)best;
        }
        /* Buffers whose last reader is k go back to the pool (after k's own
         * output was placed, so an op never writes over its input). */
        const ns_model_node *d = &e->m->nodes[k];
        for (int i = 0; i < d->n_inputs; i++) {
            int r = root[d->inputs[i]];
            if (lastuse[r] == (int)k && r != root[k])
                bfree[bof[r]] = 1;
        }
    }
    *total = 0;
    for (size_t j = 0; j < nb; j++) {
        size_t s = bsize[j];
        bsize[j] = *total;
        *total += s;
    }
    for (size_t k = 0; k < n; k++)
        off[k] = (e->kind[k] != DEAD && root[k] == (int)k) ? bsize[bof[k]] : 0;
done:
    free(bsize);
    free(bfree);
    free(bof);
    return st;
}

#define EXEC_ALLOC(ptr, count)                                                          \
    do {                                                                                \
        (ptr) = calloc((count) ? (count) : 1, sizeof *(ptr));                           \
        if (!(ptr)) {                                                                   \
            st = ns_error(NS_ERR_NOMEM, "exec: out of memory planning '%s'", m->info.name); \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

ns_status ns_exec_create(const ns_model *m, ns_device dev, int max_batch, int S, ns_exec **out)
{
    ns_exec_opts o = {.device = dev, .precision = NS_PREC_FP32};
    return ns_exec_create_opts(m, &o, max_batch, S, out);
}

ns_status ns_exec_create_opts(const ns_model *m, const ns_exec_opts *o, int max_batch, int S,
                              ns_exec **out)
{
    ns_exec *e = NULL;
    int *root = NULL, *readers = NULL, *cons = NULL, *lastuse = NULL;
    size_t *off = NULL, n_act = 0, ws = 0, bf16 = 0, frame_bytes;
    float *host_ones = NULL;
    ns_status st = NS_OK;
    *out = NULL;
    if (!m || m->n_nodes == 0 || max_batch < 1 || max_batch > (1 << 20) || S < 1 || S > 16384)
        return ns_error(NS_ERR_USAGE, "exec: bad arguments (max batch %d, frame size %d)",
                        max_batch, S);
    if (m->info.input_size > S)
        return ns_error(NS_ERR_USAGE, "exec: model '%s' takes %dx%d inputs, the frames are "
                        "only %dx%d", m->info.name, m->info.input_size, m->info.input_size, S, S);
    frame_bytes = (size_t)max_batch * S * S * 3;
    e = calloc(1, sizeof *e);
    if (!e)
        return ns_error(NS_ERR_NOMEM, "exec: out of memory");
    e->m = m;
    e->max_batch = max_batch;
    e->S = S;
    e->n_nodes = m->n_nodes;
    e->normalize = m->info.l2_normalize && m->nodes[m->output].op != NS_OP_L2NORM;
    e->pre.size = m->info.input_size;
    e->pre.bgr = m->info.bgr;
    memcpy(e->pre.mean, m->info.mean, sizeof e->pre.mean);
    memcpy(e->pre.std, m->info.std, sizeof e->pre.std);
    if ((st = ns_device_resolve(o->device, &e->dev)) != NS_OK)
        goto done;
    e->prec = o->precision;
    e->sync_nodes = o->sync_nodes;
    if ((unsigned)e->prec > NS_PREC_BF16 || (e->prec != NS_PREC_FP32 && e->dev != NS_DEVICE_CUDA)) {
        st = ns_error(NS_ERR_UNSUPPORTED, "precision %s needs --device cuda (%s is fp32 only)",
                      ns_precision_name(e->prec), ns_device_name(e->dev));
        goto done;
    }
    switch (e->dev) {
    case NS_DEVICE_REF: e->be = &ns_exec_backend_ref; break;
    case NS_DEVICE_CUDA: e->be = &ns_exec_backend_cuda; break;
    default: e->be = &ns_exec_backend_cpu; break;
    }
    e->threads = omp_get_max_threads();

    size_t n = m->n_nodes;
    EXEC_ALLOC(e->kind, n);
    EXEC_ALLOC(e->act, n);
    EXEC_ALLOC(e->fused_by, n);
    EXEC_ALLOC(e->data, n);
    EXEC_ALLOC(e->w, n);
    EXEC_ALLOC(e->b, n);
    EXEC_ALLOC(e->cp, n);
    EXEC_ALLOC(e->pp, n);
    EXEC_ALLOC(e->secs, n + PROF_EXTRA);
    EXEC_ALLOC(e->flops, n);
    EXEC_ALLOC(root, n);
    EXEC_ALLOC(readers, n);
    EXEC_ALLOC(cons, n);
    EXEC_ALLOC(lastuse, n);
    EXEC_ALLOC(off, n);
    if ((st = plan_nodes(e, root, readers, cons, lastuse)) != NS_OK)
        goto done;
    for (size_t k = 0; k < n; k++) {
        if (e->kind[k] == DEAD)
            continue;
        if ((st = prepare_node(e, k)) != NS_OK)
            goto done;
        if (m->nodes[k].op == NS_OP_CONV) {
            size_t need = e->dev == NS_DEVICE_CUDA ? ns_cuda_conv_workspace_floats(&e->cp[k])
                          : e->dev == NS_DEVICE_CPU ? ns_conv_workspace_floats(&e->cp[k], e->threads)
                                                    : 0;
            ws = need > ws ? need : ws;
            /* GPU only: on the CPU this call would load the CUDA module */
            need = e->dev == NS_DEVICE_CUDA ? ns_cuda_bf16_conv_elems(&e->cp[k]) : 0;
            bf16 = need > bf16 ? need : bf16;
        } else if (m->nodes[k].op == NS_OP_GEMM) {
            size_t need = (size_t)max_batch * per_sample(&m->nodes[m->nodes[k].inputs[0]]);
            bf16 = need > bf16 ? need : bf16;
        }
    }
    if ((st = assign_buffers(e, root, lastuse, off, &n_act)) != NS_OK)
        goto done;

    /* One allocation: activations, then the workspace, then the ones. */
    size_t ws_off = n_act, ones_off = n_act + ((ws + 63) & ~(size_t)63);
    size_t total = ones_off + (size_t)max_batch;
    if ((st = e->be->alloc(&e->arena, total * sizeof(float))) != NS_OK)
        goto done;
    float *base = e->arena;
    e->workspace = ws ? base + ws_off : NULL;
    e->ones = base + ones_off;
    for (size_t k = 0; k < n; k++)
        if (e->kind[k] != DEAD)
            e->data[k] = base + off[root[k]];
    EXEC_ALLOC(host_ones, (size_t)max_batch);
    for (int i = 0; i < max_batch; i++)
        host_ones[i] = 1.0f;
    if (e->be->on_device) {
        const char *ahead = getenv("NIGHTSHIFT_UPLOAD_AHEAD");
        e->ahead = !(ahead && strcmp(ahead, "0") == 0);
        if ((st = ns_cuda_ctx_create(0, &e->cuda)) != NS_OK ||
            (st = ns_cuda_malloc((void **)&e->dev_weights,
                                 (m->n_weight_floats ? m->n_weight_floats : 1) * sizeof(float))) != NS_OK ||
            (st = ns_cuda_malloc((void **)&e->dev_frames[0], frame_bytes)) != NS_OK ||
            (st = ns_cuda_host_alloc((void **)&e->staging[0], frame_bytes)) != NS_OK ||
            (e->ahead &&
             ((st = ns_cuda_malloc((void **)&e->dev_frames[1], frame_bytes)) != NS_OK ||
              (st = ns_cuda_host_alloc((void **)&e->staging[1], frame_bytes)) != NS_OK)) ||
            (m->n_weight_floats &&
             (st = ns_cuda_upload(e->cuda, e->dev_weights, m->weights,
                                  m->n_weight_floats * sizeof(float))) != NS_OK) ||
            (st = ns_cuda_upload(e->cuda, e->ones, host_ones, (size_t)max_batch * sizeof(float))) != NS_OK ||
            (e->prec != NS_PREC_FP32 &&
             (st = ns_cuda_ctx_set_precision(e->cuda, e->prec, e->dev_weights, m->n_weight_floats,
                                             bf16)) != NS_OK) ||
            (st = ns_cuda_ctx_sync(e->cuda)) != NS_OK) {
            st = ns_error_wrap(st, "exec: preparing the CUDA device");
            goto done;
        }
    } else {
        /* Touch every page now: first-touch faults belong to planning. */
        memset(base, 0, ones_off * sizeof(float));
        memcpy(e->ones, host_ones, (size_t)max_batch * sizeof(float));
    }
    for (size_t k = 0; k < n; k++) {
        const ns_model_weight *w = find_weight(&m->nodes[k], "W"), *b = find_weight(&m->nodes[k], "B");
        const float *wbase = e->dev_weights ? e->dev_weights : m->weights;
        if (w)
            e->w[k] = wbase + (w->data - m->weights);
        if (b)
            e->b[k] = wbase + (b->data - m->weights);
    }
    *out = e;
    e = NULL;
done:
    free(root);
    free(readers);
    free(cons);
    free(lastuse);
    free(off);
    free(host_ones);
    ns_exec_free(e);
    return st;
}

ns_device ns_exec_device(const ns_exec *e) { return e->dev; }

ns_precision ns_exec_precision(const ns_exec *e) { return e->prec; }

int ns_exec_dim(const ns_exec *e) { return (int)per_sample(&e->m->nodes[e->m->output]); }

void ns_exec_free(ns_exec *e)
{
    if (!e)
        return;
    if (e->cuda) /* an upload ahead may still be reading staging */
        (void)ns_cuda_ahead_sync(e->cuda);
    if (e->be)
        e->be->release(e->arena);
    ns_cuda_free(e->dev_weights);
    for (int i = 0; i < 2; i++) {
        ns_cuda_free(e->dev_frames[i]);
        ns_cuda_host_free(e->staging[i]);
    }
    ns_cuda_ctx_free(e->cuda);
    free(e->kind);
    free(e->act);
    free(e->fused_by);
    free(e->data);
    free(e->w);
    free(e->b);
    free(e->cp);
    free(e->pp);
    free(e->secs);
    free(e->flops);
    free(e);
}

/* ---- running ---------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* y = x for n samples of `len` floats, as x * 1 so every device can do it. */
static ns_status copy_rows(ns_exec *e, const float *x, float *y, int n, size_t len)
{
    return e->be->mul_channel(e->cuda, x, e->ones, y, n, 1, (int)len);
}

static ns_status run_node(ns_exec *e, size_t k, const uint8_t *frames, int n)
{
    const ns_exec_backend *be = e->be;
    const ns_model_node *d = &e->m->nodes[k];
    void *ctx = e->cuda;
    float *y = e->data[k];
    const float *x = d->n_inputs > 0 ? e->data[d->inputs[0]] : NULL;
    const ns_model_node *xn = d->n_inputs > 0 ? &e->m->nodes[d->inputs[0]] : NULL;
    size_t len = per_sample(d), count = len * (size_t)n;
    ns_status st = NS_OK;
    switch (d->op) {
    case NS_OP_INPUT:
        return be->preprocess(ctx, &e->pre, frames, n, e->S, y);
    case NS_OP_CONV: {
        ns_conv_params p = e->cp[k];
        p.n = n;
        e->flops[k] += 2.0 * n * p.c_out * (double)(p.c_in / p.groups) * p.kh * p.kw *
                       p.h_out * p.w_out;
        return be->conv(ctx, &p, x, e->w[k], e->b[k], e->act[k], y, e->workspace);
    }
    case NS_OP_RELU: case NS_OP_CLIP: case NS_OP_SIGMOID: case NS_OP_HARDSIGMOID:
    case NS_OP_HARDSWISH: case NS_OP_SILU:
        if (y != x && (st = copy_rows(e, x, y, n, len)) != NS_OK)
            return st;
        return be->act(ctx, node_act(d), y, count);
    case NS_OP_L2NORM:
        if (y != x && (st = copy_rows(e, x, y, n, len)) != NS_OK)
            return st;
        return be->l2norm(ctx, y, n, (int)len);
    case NS_OP_ADD:
        return be->add(ctx, x, e->data[d->inputs[1]], y, count, e->act[k]);
    case NS_OP_MUL: {
        const ns_model_node *sn = &e->m->nodes[d->inputs[1]];
        if (per_sample(sn) == len) /* equal shapes: one "channel" per element */
            return be->mul_channel(ctx, x, e->data[d->inputs[1]], y, 1, (int)count, 1);
        return be->mul_channel(ctx, x, e->data[d->inputs[1]], y, n, d->shape[0],
                               d->shape[1] * d->shape[2]);
    }
    case NS_OP_MAXPOOL:
    case NS_OP_AVGPOOL: {
        ns_pool_params p = e->pp[k];
        p.n = n;
        return d->op == NS_OP_MAXPOOL ? be->maxpool(ctx, &p, x, y) : be->avgpool(ctx, &p, x, y);
    }
    case NS_OP_GLOBALAVGPOOL:
        return be->global_avgpool(ctx, x, n, xn->shape[0], xn->shape[1] * xn->shape[2], y);
    case NS_OP_GEMM:
        e->flops[k] += 2.0 * n * (double)per_sample(xn) * d->shape[0];
        return be->gemm(ctx, x, e->w[k], e->b[k], y, n, (int)per_sample(xn), d->shape[0],
                        e->act[k]);
    case NS_OP_CONCAT: {
        const float *xs[NS_MODEL_MAX_INPUTS];
        int cs[NS_MODEL_MAX_INPUTS];
        for (int i = 0; i < d->n_inputs; i++) {
            const ns_model_node *in = &e->m->nodes[d->inputs[i]];
            xs[i] = e->data[d->inputs[i]];
            cs[i] = in->shape[0];
        }
        return be->concat(ctx, xs, cs, d->n_inputs, n, d->shape[1] * d->shape[2], y);
    }
    case NS_OP_FLATTEN: case NS_OP_BATCHNORM: case NS_OP_COUNT:
        break;
    }
    return ns_error(NS_ERR_INTERNAL, "exec: node '%s' (%s) cannot run", d->name,
                    ns_op_name(d->op));
}

/* Frames into pinned staging with the OpenMP team: the copy to the GPU then
 * runs at full bus speed.  One thread copied 256 frames of 224x224 in 6.8 ms
 * (~6 GB/s); the team shares it (2.4 ms with 16 threads on the H200 machine). */
static void stage_frames(uint8_t *staging, const uint8_t *frames, size_t bytes)
{
    ptrdiff_t slabs = (ptrdiff_t)((bytes + (1u << 20) - 1) >> 20);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < slabs; i++) {
        size_t off = (size_t)i << 20, len = bytes - off < (1u << 20) ? bytes - off : (1u << 20);
        memcpy(staging + off, frames + off, len);
    }
}

ns_status ns_exec_run(ns_exec *e, const uint8_t *frames, int n, float *emb)
{
    return ns_exec_run_next(e, frames, n, emb, NULL, 0);
}

ns_status ns_exec_run_next(ns_exec *e, const uint8_t *frames, int n, float *emb,
                           const uint8_t *next, int next_n)
{
    const ns_model *m = e->m;
    const ns_exec_backend *be = e->be;
    const uint8_t *in = frames;
    size_t frame_bytes = (size_t)n * e->S * e->S * 3, dim = per_sample(&m->nodes[m->output]);
    double t0 = now_s(), t1;
    ns_status st = NS_OK;
    if (n < 1 || n > e->max_batch || !frames || !emb)
        return ns_error(NS_ERR_USAGE, "exec: batch of %d frames (1 to %d)", n, e->max_batch);
    if (next && (next_n < 1 || next_n > e->max_batch))
        return ns_error(NS_ERR_USAGE, "exec: next batch of %d frames (1 to %d)", next_n,
                        e->max_batch);
    if (e->dev == NS_DEVICE_CPU && omp_get_max_threads() > e->threads)
        return ns_error(NS_ERR_USAGE, "exec: OpenMP threads raised from %d to %d after "
                        "planning; the conv workspace is too small", e->threads,
                        omp_get_max_threads());
    int slot = 0;
    if (be->on_device) {
        /* An upload ahead serves only the call right after it, and only for
         * the frames it was told; otherwise it is waited out and dropped, so
         * both buffers are free again. */
        int staged = e->ahead_src && e->ahead_src == frames && e->ahead_n == n;
        e->ahead_src = NULL;
        if (staged) {
            slot = e->ahead_slot;
            if ((st = ns_cuda_ahead_join(e->cuda)) != NS_OK)
                return ns_error_wrap(st, "exec: waiting for the %d frames uploaded ahead", n);
        } else {
            if ((st = ns_cuda_ahead_sync(e->cuda)) != NS_OK)
                return ns_error_wrap(st, "exec: finishing an upload ahead");
            stage_frames(e->staging[0], frames, frame_bytes);
            if ((st = be->upload(e->cuda, e->dev_frames[0], e->staging[0], frame_bytes)) != NS_OK ||
                (e->sync_nodes && (st = be->sync(e->cuda)) != NS_OK))
                return ns_error_wrap(st, "exec: uploading %d frames", n);
        }
        in = e->dev_frames[slot];
        t1 = now_s();
        e->secs[m->n_nodes + PROF_UPLOAD] += t1 - t0;
        t0 = t1;
    }
    for (size_t k = 0; k < m->n_nodes; k++) {
        if (e->kind[k] != RUN)
            continue;
        if ((st = run_node(e, k, in, n)) != NS_OK ||
            (e->sync_nodes && (st = be->sync(e->cuda)) != NS_OK))
            return ns_error_wrap(st, "exec: node '%s' (%s)", m->nodes[k].name,
                                 ns_op_name(m->nodes[k].op));
        t1 = now_s();
        e->secs[k] += t1 - t0;
        t0 = t1;
    }
    float *y = e->data[m->output];
    if (e->normalize && (st = be->l2norm(e->cuda, y, n, (int)dim)) != NS_OK)
        return ns_error_wrap(st, "exec: normalising the embeddings");
    if (be->on_device && e->ahead && next) {
        /* The GPU is busy with this batch (nothing above waited for it, unless
         * sync_nodes): stage and send the next one meanwhile, into the other
         * buffers, whose last reader (the batch before) finished in its call. */
        int other = slot ^ 1;
        size_t next_bytes = (size_t)next_n * e->S * e->S * 3;
        stage_frames(e->staging[other], next, next_bytes);
        if ((st = ns_cuda_upload_ahead(e->cuda, e->dev_frames[other], e->staging[other],
                                       next_bytes)) != NS_OK)
            return ns_error_wrap(st, "exec: uploading the next %d frames ahead", next_n);
        e->ahead_src = next;
        e->ahead_n = next_n;
        e->ahead_slot = other;
        t1 = now_s();
        e->secs[m->n_nodes + PROF_UPLOAD] += t1 - t0;
        t0 = t1;
    }
    if ((st = be->download(e->cuda, emb, y, (size_t)n * dim * sizeof *emb)) != NS_OK)
        return ns_error_wrap(st, "exec: fetching the embeddings");
    e->secs[m->n_nodes + PROF_OUTPUT] += now_s() - t0;
    e->runs++;
    e->samples += n;
    return NS_OK;
}

/* ---- profile ---------------------------------------------------------------------- */

ns_status ns_exec_profile(const ns_exec *e, ns_strbuf *out)
{
    size_t n = e->n_nodes, slots = 0;
    double total = 0;
    int *order = malloc((n + PROF_EXTRA) * sizeof *order);
    if (!order)
        return ns_error(NS_ERR_NOMEM, "exec: out of memory for the profile");
    for (size_t k = 0; k < n + PROF_EXTRA; k++) {
        if (k < n && e->kind[k] != RUN)
            continue;
        if (k == n + PROF_UPLOAD && !e->be->on_device)
            continue;
        order[slots++] = (int)k;
        total += e->secs[k];
    }
    /* Slowest first; insertion sort keeps ties in graph order. */
    for (size_t i = 1; i < slots; i++) {
        int v = order[i];
        size_t j = i;
        for (; j > 0 && e->secs[order[j - 1]] < e->secs[v]; j--)
            order[j] = order[j - 1];
        order[j] = v;
    }
    ns_strbuf_printf(out, "%s on %s%s%s: %ld runs, %ld samples, %.3f s", e->m->info.name,
                     ns_device_name(e->dev), e->prec != NS_PREC_FP32 ? " " : "",
                     e->prec != NS_PREC_FP32 ? ns_precision_name(e->prec) : "", e->runs,
                     e->samples, total);
    if (total > 0)
        ns_strbuf_printf(out, ", %.1f samples/s", (double)e->samples / total);
    ns_strbuf_printf(out, "%s\n", !e->be->on_device ? ""
                                  : e->sync_nodes ? " (stream synchronised per node)"
                                                  : " (per-node times are launch times; "
                                                    "only the total is real: see sync_nodes)");
    ns_strbuf_printf(out, "%-32s %-18s %10s %7s %9s\n", "node", "op", "ms", "share", "GFLOP/s");
    for (size_t i = 0; i < slots; i++) {
        int k = order[i];
        char name[2 * NS_MODEL_NAME_LEN + 2], op[NS_MODEL_OP_LEN * 2];
        const char *opn = k == (int)n + PROF_UPLOAD ? "" : k == (int)n + PROF_OUTPUT ? "" : NULL;
        if (opn) {
            snprintf(name, sizeof name, "%s", k == (int)n + PROF_UPLOAD ? "(upload frames)"
                                                                       : "(embeddings out)");
            snprintf(op, sizeof op, "-");
        } else if (e->fused_by[k] >= 0) {
            const ns_model_node *a = &e->m->nodes[e->fused_by[k]];
            snprintf(name, sizeof name, "%s+%s", e->m->nodes[k].name, a->name);
            snprintf(op, sizeof op, "%s+%s", ns_op_name(e->m->nodes[k].op), ns_op_name(a->op));
        } else {
            snprintf(name, sizeof name, "%s", e->m->nodes[k].name);
            snprintf(op, sizeof op, "%s", ns_op_name(e->m->nodes[k].op));
        }
        ns_strbuf_printf(out, "%-32s %-18s %10.2f %6.1f%%", name, op, 1e3 * e->secs[k],
                         total > 0 ? 100.0 * e->secs[k] / total : 0.0);
        if (!opn && e->flops[k] > 0 && e->secs[k] > 0)
            ns_strbuf_printf(out, " %9.1f", e->flops[k] / e->secs[k] * 1e-9);
        ns_strbuf_printf(out, "\n");
    }
    free(order);
    return ns_strbuf_status(out);
}
