/* train.c -- ns_train: splits, class weights, --init, early stopping,
 * temperature, and the softmax head's L-BFGS (the MLP's Adam is in
 * train_mlp.c).  Method: docs/head.md. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/train.h"
#include "train_common.h"

void ns_train_default_opts(ns_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = NS_HEAD_SOFTMAX;
    o->hidden = 256;
    o->l2 = 1e-4;
    o->balanced = 1;
    o->seed = 1;
    o->epochs = 0;
    o->batch = 256;
    o->lr = 1e-3;
    o->patience = 0;
    o->tol = 1e-5;
    o->device = NS_DEVICE_AUTO;
}

/* ---- temperature ------------------------------------------------------------------ */

static double nll_at(const float *z, const int32_t *y, size_t n, int C, double beta)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *r = z + i * (size_t)C;
        float m = r[0];
        for (int c = 1; c < C; c++)
            m = r[c] > m ? r[c] : m;
        double e = 0.0;
        for (int c = 0; c < C; c++)
            e += exp(beta * ((double)r[c] - m));
        s += log(e) - beta * ((double)r[y[i]] - m);
    }
    return s / (double)n;
}

float ns_train_fit_temperature(const float *logits, const int32_t *y, size_t n, int C)
{
    if (n == 0 || C < 2)
        return 1.0f;
    /* The log loss is convex in beta = 1 / T, so unimodal in log beta: golden
     * section over T in [1/50, 50] to a relative width of 1e-6. */
    const double g = (sqrt(5.0) - 1.0) / 2.0;
    double lo = log(1.0 / 50.0), hi = log(50.0);
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    double fa = nll_at(logits, y, n, C, exp(a)), fb = nll_at(logits, y, n, C, exp(b));
    while (hi - lo > 1e-6) {
        if (fa <= fb) {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = nll_at(logits, y, n, C, exp(a));
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = nll_at(logits, y, n, C, exp(b));
        }
    }
    return (float)(1.0 / exp(0.5 * (lo + hi)));
}

/* ---- shared by both heads -------------------------------------------------------- */

ns_status ns_tr_eval_val(ns_trainer *t, double *loss, double *acc)
{
    *loss = NAN;
    *acc = NAN;
    if (t->n_val == 0)
        return NS_OK;
    const int C = t->C;
    ns_status st = ns_head_logits(t->h, t->val_x, t->n_val, t->val_z);
    if (st != NS_OK)
        return st;
    double l = 0.0, wsum = 0.0;
    size_t right = 0;
    for (size_t i = 0; i < t->n_val; i++) {
        const float *r = t->val_z + i * (size_t)C;
        const int y = t->val_y[i];
        int best = 0;
        float m = r[0];
        for (int c = 1; c < C; c++)
            if (r[c] > m) {
                m = r[c];
                best = c;
            }
        double e = 0.0;
        for (int c = 0; c < C; c++)
            e += exp((double)r[c] - m);
        l += t->cw[y] * (log(e) - ((double)r[y] - m));
        wsum += t->cw[y];
        right += best == y;
    }
    *loss = wsum > 0 ? l / wsum : NAN;
    *acc = (double)right / (double)t->n_val;
    return NS_OK;
}

int ns_tr_record(ns_trainer *t, int epoch, double train_loss)
{
    double vl, va;
    if (ns_tr_eval_val(t, &vl, &va) != NS_OK)
        return -1;
    ns_head_epoch *e = &t->h->epochs[t->h->n_epochs++];
    *e = (ns_head_epoch){epoch, train_loss, vl, va};
    int stop = 0;
    if (t->n_val == 0 || vl < t->best_val) {
        t->best_val = t->n_val ? vl : t->best_val;
        t->since_best = 0;
        ns_tr_snapshot(t);
    } else if (t->patience >= 0 && ++t->since_best >= t->patience) {
        stop = 1;
    }
    if (t->progress && t->progress(t->ctx, e, t->max_epochs))
        stop = 1;
    return stop;
}

void ns_tr_snapshot(ns_trainer *t)
{
    const ns_head *h = t->h;
    const size_t in = h->kind == NS_HEAD_MLP ? (size_t)h->hidden : (size_t)h->d;
    memcpy(t->best_w, h->w, (size_t)h->n_classes * in * sizeof *h->w);
    memcpy(t->best_b, h->b, (size_t)h->n_classes * sizeof *h->b);
    if (h->kind == NS_HEAD_MLP) {
        memcpy(t->best_w1, h->w1, (size_t)h->hidden * (size_t)h->d * sizeof *h->w1);
        memcpy(t->best_b1, h->b1, (size_t)h->hidden * sizeof *h->b1);
    }
}

static void restore_best(ns_trainer *t)
{
    ns_head *h = t->h;
    const size_t in = h->kind == NS_HEAD_MLP ? (size_t)h->hidden : (size_t)h->d;
    memcpy(h->w, t->best_w, (size_t)h->n_classes * in * sizeof *h->w);
    memcpy(h->b, t->best_b, (size_t)h->n_classes * sizeof *h->b);
    if (h->kind == NS_HEAD_MLP) {
        memcpy(h->w1, t->best_w1, (size_t)h->hidden * (size_t)h->d * sizeof *h->w1);
        memcpy(h->b1, t->best_b1, (size_t)h->hidden * sizeof *h->b1);
    }
}

/* ---- softmax ------------------------------------------------------------------- */

typedef struct sm_ctx {
    ns_trainer *t;
    ns_sm_work w;
    ns_tr_cuda *cuda; /* the device's objective when not NULL */
    ns_status cuda_st;
    int stop_err;
} sm_ctx;

static double sm_fn(void *ctx, const double *x, double *grad)
{
    sm_ctx *c = ctx;
    if (c->cuda)
        return c->cuda_st != NS_OK ? NAN
                                   : ns_tr_cuda_sm_objective(c->cuda, c->t->o.l2, x, grad,
                                                             &c->cuda_st);
    return ns_sm_objective(&c->t->tr, c->t->o.l2, &c->w, x, grad);
}

static int sm_iter(void *ctx, int it, const double *x, double f)
{
    sm_ctx *c = ctx;
    ns_head *h = c->t->h;
    const size_t nw = (size_t)h->n_classes * (size_t)h->d;
    for (size_t k = 0; k < nw; k++)
        h->w[k] = (float)x[k];
    for (int k = 0; k < h->n_classes; k++)
        h->b[k] = (float)x[nw + (size_t)k];
    int r = ns_tr_record(c->t, it, f);
    if (r < 0)
        c->stop_err = 1;
    return r != 0;
}

static ns_status train_softmax(ns_trainer *t)
{
    ns_head *h = t->h;
    const size_t nw = (size_t)h->n_classes * (size_t)h->d, np = nw + (size_t)h->n_classes;
    sm_ctx c = {t, {0}, NULL, NS_OK, 0};
    double *theta = malloc(np * sizeof *theta);
    ns_status st = NS_OK;
    int iters = 0;
    if (!theta) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory for %zu parameters", np);
        goto done;
    }
    if (t->device == NS_DEVICE_CUDA) {
        if ((st = ns_tr_cuda_open(t, h->n_classes, &c.cuda)) != NS_OK)
            goto done;
    } else if ((st = ns_sm_work_init(&c.w, h->d, h->n_classes, omp_get_max_threads())) !=
               NS_OK) {
        goto done;
    }
    for (size_t k = 0; k < nw; k++)
        theta[k] = h->w[k];
    for (int k = 0; k < h->n_classes; k++)
        theta[nw + (size_t)k] = h->b[k];
    ns_lbfgs_opts lo = {10, t->max_epochs, t->o.tol, 1e-10};
    ns_tr_snapshot(t);
    if ((st = ns_lbfgs(sm_fn, sm_iter, &c, theta, np, &lo, &iters)) != NS_OK)
        goto done;
    if (c.cuda_st != NS_OK) {
        st = c.cuda_st;
        goto done;
    }
    if (c.stop_err) {
        st = ns_error_wrap(NS_ERR_INTERNAL, "train: validation failed");
        goto done;
    }
    if (iters == 0) { /* already optimal at the start: record where it stands */
        double *g = malloc(np * sizeof *g);
        if (!g) {
            st = ns_error(NS_ERR_NOMEM, "train: out of memory for %zu parameters", np);
            goto done;
        }
        sm_iter(&c, 0, theta, sm_fn(&c, theta, g));
        free(g);
    }
done:
    ns_tr_cuda_close(c.cuda);
    ns_sm_work_release(&c.w);
    free(theta);
    return st;
}

/* ---- setup ---------------------------------------------------------------------- */

static ns_status apply_init(ns_trainer *t, const ns_head *init)
{
    ns_head *h = t->h;
    const ns_dataset *ds = t->ds;
    ns_status st = ns_head_check_model(init, ds->model_id, ds->d);
    if (st != NS_OK)
        return ns_error_wrap(NS_ERR_USAGE, "--init");
    if (init->kind != h->kind)
        return ns_error(NS_ERR_USAGE, "--init head %.12s is a %s head, but --head is %s",
                        init->head_id, ns_head_kind_name(init->kind), ns_head_kind_name(h->kind));
    const size_t in = h->kind == NS_HEAD_MLP ? (size_t)h->hidden : (size_t)h->d;
    for (int c0 = 0; c0 < init->n_classes; c0++) {
        int c = -1;
        for (int k = 0; k < h->n_classes && c < 0; k++)
            if (strcmp(h->classes[k], init->classes[c0]) == 0)
                c = k;
        if (c < 0)
            return ns_error(NS_ERR_USAGE, "--init head %.12s has class '%s', which the dataset "
                            "%.12s does not: its classes must be a subset of the dataset's",
                            init->head_id, init->classes[c0], ds->dataset_id);
        memcpy(h->w + (size_t)c * in, init->w + (size_t)c0 * in, in * sizeof *h->w);
        h->b[c] = init->b[c0];
    }
    if (h->kind == NS_HEAD_MLP) {
        memcpy(h->w1, init->w1, (size_t)h->hidden * (size_t)h->d * sizeof *h->w1);
        memcpy(h->b1, init->b1, (size_t)h->hidden * sizeof *h->b1);
    }
    return NS_OK;
}

static ns_status setup(ns_trainer *t, const ns_dataset *ds, const ns_train_opts *o)
{
    const int C = (int)ds->n_classes;
    const size_t D = (size_t)ds->d;
    t->ds = ds;
    t->o = *o;
    t->C = C;
    for (size_t i = 0; i < ds->n; i++) {
        t->n_train += ds->split[i] == NS_SPLIT_TRAIN;
        t->n_val += ds->split[i] == NS_SPLIT_VAL;
    }
    if (t->n_train == 0)
        return ns_error(NS_ERR_USAGE, "dataset %.12s has no frames in its train split",
                        ds->dataset_id);
    if (C < 2)
        return ns_error(NS_ERR_USAGE, "dataset %.12s has %d class; a classifier needs two or "
                        "more", ds->dataset_id, C);
    t->train_rows = malloc(t->n_train * sizeof *t->train_rows);
    t->val_x = malloc((t->n_val ? t->n_val : 1) * D * sizeof *t->val_x);
    t->val_y = malloc((t->n_val ? t->n_val : 1) * sizeof *t->val_y);
    t->val_z = malloc((t->n_val ? t->n_val : 1) * (size_t)C * sizeof *t->val_z);
    t->cw = calloc((size_t)C, sizeof *t->cw);
    t->counts = calloc((size_t)C, sizeof *t->counts);
    if (!t->train_rows || !t->val_x || !t->val_y || !t->val_z || !t->cw || !t->counts)
        return ns_error(NS_ERR_NOMEM, "train: out of memory for %zu frames", ds->n);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->label[i] < 0 || ds->label[i] >= C || ds->split[i] > NS_SPLIT_TEST)
            return ns_error(NS_ERR_USAGE, "dataset %.12s: frame %zu has label %d, split %u",
                            ds->dataset_id, i, (int)ds->label[i], (unsigned)ds->split[i]);
    size_t a = 0, v = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->split[i] == NS_SPLIT_TRAIN) {
            t->train_rows[a++] = i;
            t->counts[ds->label[i]]++;
        } else if (ds->split[i] == NS_SPLIT_VAL) {
            memcpy(t->val_x + v * D, ds->emb + i * D, D * sizeof *t->val_x);
            t->val_y[v++] = ds->label[i];
        }
    }
    int present = 0;
    for (int c = 0; c < C; c++)
        present += t->counts[c] > 0;
    double norm = 0.0;
    for (int c = 0; c < C; c++) {
        /* sklearn's "balanced": n / (classes present * n_c); absent classes get 0. */
        t->cw[c] = !o->balanced ? 1.0
                   : t->counts[c] ? (double)t->n_train / ((double)present * (double)t->counts[c])
                                  : 0.0;
        norm += t->cw[c] * (double)t->counts[c];
    }
    t->tr = (ns_tr_rows){ds->emb, ds->d, C, t->train_rows, t->n_train, ds->label, t->cw, norm};
    t->best_val = INFINITY;
    t->max_epochs = o->epochs > 0 ? o->epochs : o->kind == NS_HEAD_MLP ? 30 : 200;
    t->patience = o->patience != 0 ? o->patience : o->kind == NS_HEAD_MLP ? 5 : 20;
    return NS_OK;
}

static void release(ns_trainer *t)
{
    free(t->train_rows);
    free(t->val_x);
    free(t->val_y);
    free(t->val_z);
    free(t->cw);
    free(t->counts);
    free(t->best_w);
    free(t->best_b);
    free(t->best_w1);
    free(t->best_b1);
}

static ns_status set_provenance(ns_head *h, const ns_dataset *ds, const ns_train_opts *o,
                                const ns_head *init, ns_device dev)
{
    char buf[1024];
    memcpy(h->model_id, ds->model_id, sizeof h->model_id);
    memcpy(h->dataset_id, ds->dataset_id, sizeof h->dataset_id);
    snprintf(buf, sizeof buf, "head=%s hidden=%d l2=%.17g class_weight=%s seed=%llu epochs=%d "
             "batch=%d lr=%.17g patience=%d tol=%.17g device=%s init=%s",
             ns_head_kind_name(o->kind), h->hidden, o->l2, o->balanced ? "balanced" : "none",
             (unsigned long long)o->seed, o->epochs, o->batch, o->lr, o->patience, o->tol,
             ns_device_name(dev), init ? init->head_id : "none");
    h->options = strdup(buf);
    h->label_sets = strdup(ds->label_sets ? ds->label_sets : "");
    if (!h->options || !h->label_sets)
        return ns_error(NS_ERR_NOMEM, "train: out of memory");
    return NS_OK;
}

ns_status ns_train(const ns_dataset *ds, const ns_train_opts *o, const ns_head *init,
                   ns_train_progress_fn progress, void *ctx, ns_head *out)
{
    ns_status st;
    ns_trainer t;
    ns_head h;
    ns_device dev;
    memset(&t, 0, sizeof t);
    memset(&h, 0, sizeof h);
    memset(out, 0, sizeof *out);
    if (o->l2 < 0 || !isfinite(o->l2) || o->batch < 1 || !(o->lr > 0) || o->epochs < 0) {
        st = ns_error(NS_ERR_USAGE, "train: bad options (l2 %g, batch %d, lr %g, epochs %d)",
                      o->l2, o->batch, o->lr, o->epochs);
        goto done;
    }
    if ((st = ns_train_device(o->device, &dev)) != NS_OK)
        goto done;
    int hidden = o->kind == NS_HEAD_MLP ? (init && init->kind == NS_HEAD_MLP ? init->hidden
                                                                              : o->hidden)
                                        : 0;
    if ((st = setup(&t, ds, o)) != NS_OK ||
        (st = ns_head_alloc(&h, o->kind, ds->d, hidden, (int)ds->n_classes)) != NS_OK)
        goto done;
    memcpy(h.classes, ds->classes, ds->n_classes * sizeof *h.classes);
    t.h = &h;
    t.progress = progress;
    t.ctx = ctx;
    h.epochs = calloc((size_t)t.max_epochs + 1, sizeof *h.epochs);
    const size_t in = o->kind == NS_HEAD_MLP ? (size_t)hidden : (size_t)ds->d;
    t.best_w = malloc(ds->n_classes * in * sizeof *t.best_w);
    t.best_b = malloc(ds->n_classes * sizeof *t.best_b);
    if (o->kind == NS_HEAD_MLP) {
        t.best_w1 = malloc((size_t)hidden * (size_t)ds->d * sizeof *t.best_w1);
        t.best_b1 = malloc((size_t)hidden * sizeof *t.best_b1);
    }
    if (!h.epochs || !t.best_w || !t.best_b ||
        (o->kind == NS_HEAD_MLP && (!t.best_w1 || !t.best_b1))) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory for the head");
        goto done;
    }
    if (o->kind == NS_HEAD_MLP)
        ns_tr_mlp_init(&t);
    if (init && (st = apply_init(&t, init)) != NS_OK)
        goto done;
    t.device = dev;
    st = o->kind != NS_HEAD_MLP ? train_softmax(&t)
         : dev == NS_DEVICE_CUDA ? ns_tr_cuda_train_mlp(&t)
                                 : ns_tr_train_mlp(&t);
    if (st != NS_OK)
        goto done;
    restore_best(&t);
    /* Temperature on the val split, from the head's own prediction code. */
    if (t.n_val > 0) {
        h.temperature = 1.0f;
        if ((st = ns_head_logits(&h, t.val_x, t.n_val, t.val_z)) != NS_OK)
            goto done;
        h.temperature = ns_train_fit_temperature(t.val_z, t.val_y, t.n_val, t.C);
    }
    if ((st = set_provenance(&h, ds, o, init, dev)) != NS_OK)
        goto done;
    ns_head_content_id(&h, h.head_id);
    *out = h;
    memset(&h, 0, sizeof h);
done:
    release(&t);
    ns_head_release(&h);
    return st;
}

ns_status ns_train_device(ns_device want, ns_device *got)
{
    /* auto stays on the CPU: a head trains in seconds there, bit-reproducibly
     * at a given thread count, and the CUDA path has yet to pass its parity
     * test on a device (tests/test_train_gpu.c).  cuda asks for it. */
    *got = NS_DEVICE_CPU;
    if (want != NS_DEVICE_CUDA)
        return NS_OK;
    return ns_device_resolve(NS_DEVICE_CUDA, got);
}
