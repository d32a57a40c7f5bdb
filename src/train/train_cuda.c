/* train_cuda.c -- the CUDA paths of ns_train: the train split's embeddings
 * go to the device once; the softmax objective (L-BFGS stays on the host, in
 * double) and the MLP's batches and Adam steps run there.  The validation,
 * early stopping and temperature are the CPU's, on the head's own prediction
 * code, so both devices pick their best epoch by the same arithmetic.
 * Kernels: kernels/train.cu; parity: tests/test_train_gpu.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ns_cuda.h"
#include "train_common.h"

struct ns_tr_cuda {
    ns_cuda_ctx *ctx;
    size_t n;
    int d, C;
    float *x, *sw, *z, *loss, *gw, *gb, *w, *b; /* device */
    int32_t *y;                                   /* device */
    float *hw, *hgw, *hgb, *hloss;                /* host mirrors */
};

void ns_tr_cuda_close(ns_tr_cuda *c)
{
    if (!c)
        return;
    void *dev[] = {c->x, c->sw, c->z, c->loss, c->gw, c->gb, c->w, c->b, c->y};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        ns_cuda_free(dev[i]);
    free(c->hw);
    free(c->hgw);
    free(c->hgb);
    free(c->hloss);
    ns_cuda_ctx_free(c->ctx);
    free(c);
}

/* The train rows, their labels and weights on the device, in train_rows
 * order; runs of consecutive rows go up in one copy each. */
static ns_status upload_train(ns_tr_cuda *c, const ns_trainer *t)
{
    ns_status st = NS_OK;
    const size_t n = t->n_train, D = (size_t)t->ds->d;
    int32_t *y = malloc(n * sizeof *y);
    float *sw = malloc(n * sizeof *sw);
    if (!y || !sw) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory for %zu labels", n);
        goto done;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && t->train_rows[j] == t->train_rows[i] + (j - i))
            j++;
        if ((st = ns_cuda_upload(c->ctx, c->x + i * D, t->ds->emb + t->train_rows[i] * D,
                                 (j - i) * D * sizeof(float))) != NS_OK)
            goto done;
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = t->ds->label[t->train_rows[i]];
        sw[i] = (float)(t->cw[y[i]] / t->tr.norm);
    }
    if ((st = ns_cuda_upload(c->ctx, c->y, y, n * sizeof *y)) != NS_OK ||
        (st = ns_cuda_upload(c->ctx, c->sw, sw, n * sizeof *sw)) != NS_OK)
        goto done;
done:
    free(y);
    free(sw);
    return st;
}

ns_status ns_tr_cuda_open(const ns_trainer *t, int z_cols, ns_tr_cuda **out)
{
    ns_status st;
    const size_t n = t->n_train, D = (size_t)t->ds->d, C = (size_t)t->C;
    ns_tr_cuda *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return ns_error(NS_ERR_NOMEM, "train: out of memory");
    c->n = n;
    c->d = t->ds->d;
    c->C = t->C;
    if ((st = ns_cuda_ctx_create(0, &c->ctx)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->x, n * D * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->y, n * sizeof(int32_t))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->sw, n * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->z, n * (size_t)z_cols * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->loss, n * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->gw, C * D * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->gb, C * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->w, C * D * sizeof(float))) != NS_OK ||
        (st = ns_cuda_malloc((void **)&c->b, C * sizeof(float))) != NS_OK)
        goto done;
    c->hw = malloc((C * D + C) * sizeof *c->hw);
    c->hgw = malloc(C * D * sizeof *c->hgw);
    c->hgb = malloc(C * sizeof *c->hgb);
    c->hloss = malloc(n * sizeof *c->hloss);
    if (!c->hw || !c->hgw || !c->hgb || !c->hloss) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    st = upload_train(c, t);
done:
    if (st != NS_OK) {
        ns_tr_cuda_close(c);
        return ns_error_wrap(st, "train --device cuda");
    }
    *out = c;
    return NS_OK;
}

double ns_tr_cuda_sm_objective(ns_tr_cuda *c, double l2, const double *theta, double *grad,
                               ns_status *status)
{
    const size_t D = (size_t)c->d, C = (size_t)c->C, nw = C * D;
    ns_status st;
    for (size_t k = 0; k < nw + C; k++)
        c->hw[k] = (float)theta[k];
    if ((st = ns_cuda_upload(c->ctx, c->w, c->hw, nw * sizeof(float))) != NS_OK ||
        (st = ns_cuda_upload(c->ctx, c->b, c->hw + nw, C * sizeof(float))) != NS_OK ||
        (st = ns_cuda_sm_objective(c->ctx, c->x, c->y, c->sw, c->n, c->d, c->C, c->w, c->b,
                                   c->z, c->loss, c->gw, c->gb)) != NS_OK ||
        (st = ns_cuda_download(c->ctx, c->hloss, c->loss, c->n * sizeof(float))) != NS_OK ||
        (st = ns_cuda_download(c->ctx, c->hgw, c->gw, nw * sizeof(float))) != NS_OK ||
        (st = ns_cuda_download(c->ctx, c->hgb, c->gb, C * sizeof(float))) != NS_OK) {
        *status = st;
        return NAN; /* L-BFGS backs off a NaN; the caller stops on *status */
    }
    double f = 0.0, reg = 0.0;
    for (size_t i = 0; i < c->n; i++)
        f += c->hloss[i];
    for (size_t k = 0; k < nw; k++) {
        grad[k] = c->hgw[k] + l2 * theta[k];
        reg += theta[k] * theta[k];
    }
    for (size_t k = 0; k < C; k++)
        grad[nw + k] = c->hgb[k];
    return f + 0.5 * l2 * reg;
}

/* ---- mlp --------------------------------------------------------------------- */

typedef struct mlp_dev {
    float *p, *g, *m, *v;  /* (np) w1, b1, w, b in that order */
    float *xb, *h, *dh, *zb, *swb;
    int32_t *idx, *yb;
} mlp_dev;

static void mlp_dev_free(mlp_dev *m)
{
    void *dev[] = {m->p, m->g, m->m, m->v, m->xb, m->h, m->dh, m->zb, m->swb, m->idx, m->yb};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        ns_cuda_free(dev[i]);
}

static ns_status params_move(ns_cuda_ctx *ctx, ns_head *h, float *dev, int up)
{
    const size_t n1 = (size_t)h->hidden * (size_t)h->d, H = (size_t)h->hidden,
                 n2 = (size_t)h->n_classes * H, C = (size_t)h->n_classes;
    float *host[4] = {h->w1, h->b1, h->w, h->b};
    const size_t len[4] = {n1, H, n2, C};
    size_t off = 0;
    ns_status st = NS_OK;
    for (int k = 0; k < 4 && st == NS_OK; k++) {
        st = up ? ns_cuda_upload(ctx, dev + off, host[k], len[k] * sizeof(float))
                : ns_cuda_download(ctx, host[k], dev + off, len[k] * sizeof(float));
        off += len[k];
    }
    return st;
}

ns_status ns_tr_cuda_train_mlp(ns_trainer *t)
{
    ns_head *h = t->h;
    const int d = h->d, H = h->hidden, C = h->n_classes, B = t->o.batch;
    const size_t n1 = (size_t)H * d, n2 = (size_t)C * H, np = n1 + H + n2 + C, n = t->n_train;
    ns_tr_cuda *c = NULL;
    mlp_dev m;
    ns_status st;
    size_t *perm = malloc(n * sizeof *perm);
    int32_t *idx = malloc((size_t)B * sizeof *idx), *yb = malloc((size_t)B * sizeof *yb);
    float *swb = malloc((size_t)B * sizeof *swb), *zeros = calloc(np, sizeof *zeros);
    float *loss = malloc(n * sizeof *loss);
    memset(&m, 0, sizeof m);
    if (!perm || !idx || !yb || !swb || !zeros || !loss) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory for the MLP's work space");
        goto done;
    }
    if ((st = ns_tr_cuda_open(t, 1, &c)) != NS_OK)
        goto done;
    const size_t bd = (size_t)B * d, bh = (size_t)B * H, bc = (size_t)B * C;
    if ((st = ns_cuda_malloc((void **)&m.p, np * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.g, np * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.m, np * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.v, np * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.xb, bd * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.h, bh * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.dh, bh * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.zb, bc * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.swb, (size_t)B * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.idx, (size_t)B * 4)) != NS_OK ||
        (st = ns_cuda_malloc((void **)&m.yb, (size_t)B * 4)) != NS_OK ||
        (st = ns_cuda_upload(c->ctx, m.m, zeros, np * 4)) != NS_OK ||
        (st = ns_cuda_upload(c->ctx, m.v, zeros, np * 4)) != NS_OK ||
        (st = params_move(c->ctx, h, m.p, 1)) != NS_OK)
        goto done;
    float *p1 = m.p, *pb1 = m.p + n1, *pw = pb1 + H, *pb = pw + n2;
    float *g1 = m.g, *gb1 = m.g + n1, *gw = gb1 + H, *gb = gw + n2;
    /* Positions in the device's copy of the train rows, in the CPU's order. */
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t rng = ns_tr_batch_seed(t);
    long step = 0;
    ns_tr_snapshot(t);
    for (int epoch = 1; epoch <= t->max_epochs; epoch++) {
        ns_tr_shuffle(perm, n, &rng);
        for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
            const int Bn = (int)(n - b0 < (size_t)B ? n - b0 : (size_t)B);
            double wsum = 0.0;
            for (int i = 0; i < Bn; i++) {
                idx[i] = (int32_t)perm[b0 + (size_t)i];
                yb[i] = t->ds->label[t->train_rows[perm[b0 + (size_t)i]]];
                wsum += t->cw[yb[i]];
            }
            if (!(wsum > 0))
                continue;
            for (int i = 0; i < Bn; i++)
                swb[i] = (float)(t->cw[yb[i]] / wsum);
            step++;
            const double lr_t = t->o.lr / (1.0 - pow(0.9, (double)step));
            const double vcorr = sqrt(1.0 - pow(0.999, (double)step));
            const float l2 = (float)t->o.l2;
            if ((st = ns_cuda_upload(c->ctx, m.idx, idx, (size_t)Bn * 4)) != NS_OK ||
                (st = ns_cuda_upload(c->ctx, m.yb, yb, (size_t)Bn * 4)) != NS_OK ||
                (st = ns_cuda_upload(c->ctx, m.swb, swb, (size_t)Bn * 4)) != NS_OK ||
                (st = ns_cuda_gather_rows(c->ctx, c->x, m.idx, (size_t)Bn, d, m.xb)) != NS_OK ||
                (st = ns_cuda_mlp_grad(c->ctx, m.xb, m.yb, m.swb, Bn, d, H, C, p1, pb1, pw, pb,
                                       m.h, m.dh, m.zb, c->loss + b0, g1, gb1, gw, gb)) != NS_OK ||
                (st = ns_cuda_adam(c->ctx, p1, g1, m.m, m.v, n1, l2, lr_t, vcorr)) != NS_OK ||
                (st = ns_cuda_adam(c->ctx, pb1, gb1, m.m + n1, m.v + n1, (size_t)H, 0.0f, lr_t,
                                   vcorr)) != NS_OK ||
                (st = ns_cuda_adam(c->ctx, pw, gw, m.m + n1 + H, m.v + n1 + H, n2, l2, lr_t,
                                   vcorr)) != NS_OK ||
                (st = ns_cuda_adam(c->ctx, pb, gb, m.m + n1 + H + n2, m.v + n1 + H + n2,
                                   (size_t)C, 0.0f, lr_t, vcorr)) != NS_OK)
                goto done;
        }
        if ((st = ns_cuda_download(c->ctx, loss, c->loss, n * sizeof *loss)) != NS_OK ||
            (st = params_move(c->ctx, h, m.p, 0)) != NS_OK)
            goto done;
        /* Per-row losses are weighted within their batch (a batch's rows sum
         * to its mean): the epoch's loss weights batches by size, as the CPU's. */
        double loss_sum = 0.0, reg = 0.0;
        for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
            const size_t Bn = n - b0 < (size_t)B ? n - b0 : (size_t)B;
            double s = 0.0;
            for (size_t i = b0; i < b0 + Bn; i++)
                s += loss[i];
            loss_sum += (double)Bn * s;
        }
        for (size_t k = 0; k < n1; k++)
            reg += (double)h->w1[k] * h->w1[k];
        for (size_t k = 0; k < n2; k++)
            reg += (double)h->w[k] * h->w[k];
        int r = ns_tr_record(t, epoch, loss_sum / (double)n + 0.5 * t->o.l2 * reg);
        if (r < 0) {
            st = ns_error_wrap(NS_ERR_INTERNAL, "train: validation failed");
            goto done;
        }
        if (r)
            break;
    }
done:
    mlp_dev_free(&m);
    ns_tr_cuda_close(c);
    free(perm);
    free(idx);
    free(yb);
    free(swb);
    free(zeros);
    free(loss);
    return st;
}
