/* train_mlp.c -- the MLP head: initialisation and mini-batch Adam.
 *
 * Initialisation is PyTorch's nn.Linear default (uniform in +-1/sqrt(fan_in)
 * for weights and biases) from a splitmix64 stream of the seed, and the batch
 * order a Fisher-Yates shuffle of the same stream each epoch, so a seed
 * fixes the run.  Adam is PyTorch's (bias-corrected, eps outside the root),
 * the L2 term enters the gradient like its coupled weight_decay, and each
 * batch's loss is the class-weighted mean, as CrossEntropyLoss(weight=...)
 * computes it: the bench compares like with like.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_common.h"

#define BETA1 0.9
#define BETA2 0.999
#define EPS 1e-8

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float bound)
{
    return (float)(((double)(splitmix(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0) * bound);
}

uint64_t ns_tr_batch_seed(const ns_trainer *t)
{
    return t->o.seed ^ 0x626174636865ULL;
}

void ns_tr_shuffle(size_t *perm, size_t n, uint64_t *rng)
{
    for (size_t i = n > 0 ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(splitmix(rng) % (i + 1));
        size_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

void ns_tr_mlp_init(ns_trainer *t)
{
    ns_head *h = t->h;
    uint64_t s = t->o.seed ^ 0x6e69676874736869ULL;
    const float b1 = (float)(1.0 / sqrt((double)h->d)), b2 = (float)(1.0 / sqrt((double)h->hidden));
    for (size_t k = 0; k < (size_t)h->hidden * (size_t)h->d; k++)
        h->w1[k] = uniform(&s, b1);
    for (int j = 0; j < h->hidden; j++)
        h->b1[j] = uniform(&s, b1);
    for (size_t k = 0; k < (size_t)h->n_classes * (size_t)h->hidden; k++)
        h->w[k] = uniform(&s, b2);
    for (int c = 0; c < h->n_classes; c++)
        h->b[c] = uniform(&s, b2);
}

static void adam(float *p, const float *g, float *m, float *v, size_t n, double lr_t,
                 double vcorr)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = (float)(BETA1 * m[i] + (1.0 - BETA1) * g[i]);
        v[i] = (float)(BETA2 * v[i] + (1.0 - BETA2) * (double)g[i] * g[i]);
        p[i] -= (float)(lr_t * m[i] / (sqrt((double)v[i]) / vcorr + EPS));
    }
}

static double sumsq(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

ns_status ns_tr_train_mlp(ns_trainer *t)
{
    ns_head *h = t->h;
    const int d = h->d, H = h->hidden, C = h->n_classes, B = t->o.batch;
    const size_t n1 = (size_t)H * d, n2 = (size_t)C * H, np = n1 + H + n2 + C;
    const size_t n = t->n_train;
    const double l2 = t->o.l2;
    size_t *perm = malloc(n * sizeof *perm);
    float *xb = malloc((size_t)B * d * sizeof *xb), *swb = malloc((size_t)B * sizeof *swb);
    int32_t *yb = malloc((size_t)B * sizeof *yb);
    float *hb = malloc((size_t)B * H * sizeof *hb), *dh = malloc((size_t)B * H * sizeof *dh);
    float *z = malloc((size_t)B * C * sizeof *z);
    double *gbs = malloc((size_t)C * sizeof *gbs);
    float *grad = malloc(np * sizeof *grad), *mom = calloc(2 * np, sizeof *mom);
    ns_status st = NS_OK;
    if (!perm || !xb || !swb || !yb || !hb || !dh || !z || !gbs || !grad || !mom) {
        st = ns_error(NS_ERR_NOMEM, "train: out of memory for the MLP's work space");
        goto done;
    }
    ns_mlp_params p = {d, H, C, h->w1, h->b1, h->w, h->b};
    ns_mlp_params g = {d, H, C, grad, grad + n1, grad + n1 + H, grad + n1 + H + n2};
    float *m = mom, *v = mom + np;
    uint64_t rng = ns_tr_batch_seed(t);
    memcpy(perm, t->train_rows, n * sizeof *perm);
    long step = 0;
    ns_tr_snapshot(t);
    for (int epoch = 1; epoch <= t->max_epochs; epoch++) {
        ns_tr_shuffle(perm, n, &rng);
        double loss_sum = 0.0;
        for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
            const int Bn = (int)(n - b0 < (size_t)B ? n - b0 : (size_t)B);
            double wsum = 0.0;
            for (int i = 0; i < Bn; i++) {
                const size_t r = perm[b0 + (size_t)i];
                memcpy(xb + (size_t)i * d, t->ds->emb + r * (size_t)d, (size_t)d * sizeof *xb);
                yb[i] = t->ds->label[r];
                wsum += t->cw[yb[i]];
            }
            if (!(wsum > 0)) /* only classes without weight: nothing to learn here */
                continue;
            for (int i = 0; i < Bn; i++)
                swb[i] = (float)(t->cw[yb[i]] / wsum);
            loss_sum += Bn * ns_mlp_batch_grad(&p, xb, yb, swb, Bn, hb, dh, z, gbs, &g);
            for (size_t k = 0; k < n1; k++)
                g.w1[k] += (float)(l2 * p.w1[k]);
            for (size_t k = 0; k < n2; k++)
                g.w[k] += (float)(l2 * p.w[k]);
            step++;
            const double lr_t = t->o.lr / (1.0 - pow(BETA1, (double)step));
            const double vcorr = sqrt(1.0 - pow(BETA2, (double)step));
            adam(p.w1, g.w1, m, v, n1, lr_t, vcorr);
            adam(p.b1, g.b1, m + n1, v + n1, (size_t)H, lr_t, vcorr);
            adam(p.w, g.w, m + n1 + H, v + n1 + H, n2, lr_t, vcorr);
            adam(p.b, g.b, m + n1 + H + n2, v + n1 + H + n2, (size_t)C, lr_t, vcorr);
        }
        double train_loss = loss_sum / (double)n + 0.5 * l2 * (sumsq(p.w1, n1) + sumsq(p.w, n2));
        int r = ns_tr_record(t, epoch, train_loss);
        if (r < 0) {
            st = ns_error_wrap(NS_ERR_INTERNAL, "train: validation failed");
            goto done;
        }
        if (r)
            break;
    }
done:
    free(perm);
    free(xb);
    free(swb);
    free(yb);
    free(hb);
    free(dh);
    free(z);
    free(gbs);
    free(grad);
    free(mom);
    return st;
}
