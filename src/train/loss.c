/* loss.c -- the training losses and their gradients: the softmax head's
 * full-batch objective and the MLP's mini-batch gradient, each fast (GEMMs
 * through OpenBLAS) and as a double-precision reference.
 *
 * The softmax objective is evaluated block by block: the logits of a block of
 * rows (one GEMM), their softmax and the loss gradient in place, then the
 * weight gradient of the block (the second GEMM) while its rows are still in
 * cache, so each evaluation reads the embeddings from memory once.  Blocks
 * add into a fixed number of partial sums (NS_SM_CHUNKS, fewer for a huge
 * C x d; sizes decide, never threads), reduced in order: the result is the
 * same bits at any thread count.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

ns_status ns_sm_work_init(ns_sm_work *w, int d, int C, int threads)
{
    memset(w, 0, sizeof *w);
    w->d = d;
    w->C = C;
    w->threads = threads < 1 ? 1 : threads;
    const size_t T = (size_t)w->threads, D = (size_t)d, K = (size_t)C;
    size_t fit = NS_SM_CHUNK_BYTES / (K * D * sizeof(float));
    w->chunks = fit >= NS_SM_CHUNKS ? NS_SM_CHUNKS : fit < 1 ? 1 : (int)fit;
    const size_t CH = (size_t)w->chunks;
    w->wf = malloc(K * D * sizeof *w->wf);
    w->bf = malloc(K * sizeof *w->bf);
    w->xb = malloc(T * NS_SM_BLOCK * D * sizeof *w->xb);
    w->z = malloc(T * NS_SM_BLOCK * K * sizeof *w->z);
    w->gw = malloc(CH * K * D * sizeof *w->gw);
    w->gb = malloc(CH * K * sizeof *w->gb);
    w->loss = malloc(CH * sizeof *w->loss);
    if (!w->wf || !w->bf || !w->xb || !w->z || !w->gw || !w->gb || !w->loss) {
        ns_sm_work_release(w);
        return ns_error(NS_ERR_NOMEM, "train: out of memory for the softmax work space");
    }
    return NS_OK;
}

void ns_sm_work_release(ns_sm_work *w)
{
    free(w->wf);
    free(w->bf);
    free(w->xb);
    free(w->z);
    free(w->gw);
    free(w->gb);
    free(w->loss);
    memset(w, 0, sizeof *w);
}

/* Row-wise: z (rows, C) logits -> loss gradient (p - onehot) * weight, in
 * place; returns the weighted loss sum, adds the column sums to gb. */
static double softmax_grad_rows(float *z, int rows, int C, const int32_t *y, const float *sw,
                                double *gb)
{
    double loss = 0.0;
    for (int i = 0; i < rows; i++) {
        float *r = z + (size_t)i * C;
        float m = r[0];
        for (int c = 1; c < C; c++)
            m = r[c] > m ? r[c] : m;
        double s = 0.0;
        for (int c = 0; c < C; c++) {
            r[c] = expf(r[c] - m);
            s += r[c];
        }
        const int yi = y[i];
        /* log p_y = z_y - m - log s; r[yi] holds exp(z_y - m) */
        loss += sw[i] * (log(s) - log((double)r[yi]));
        const float inv = (float)(1.0 / s);
        for (int c = 0; c < C; c++)
            r[c] = r[c] * inv * sw[i];
        r[yi] -= sw[i];
        for (int c = 0; c < C; c++)
            gb[c] += r[c];
    }
    return loss;
}

double ns_sm_objective(const ns_tr_rows *r, double l2, ns_sm_work *w, const double *theta,
                       double *grad)
{
    const int d = r->d, C = r->C;
    const size_t D = (size_t)d, K = (size_t)C, nw = K * D;
    for (size_t k = 0; k < nw; k++)
        w->wf[k] = (float)theta[k];
    for (size_t c = 0; c < K; c++)
        w->bf[c] = (float)theta[nw + c];
    const size_t nblocks = (r->n + NS_SM_BLOCK - 1) / NS_SM_BLOCK;
    const size_t chunks = nblocks < (size_t)w->chunks ? nblocks : (size_t)w->chunks;
    const double inv_norm = r->norm > 0 ? 1.0 / r->norm : 0.0;
#pragma omp parallel num_threads(w->threads)
    {
        const int t = omp_get_thread_num();
        float *xb = w->xb + (size_t)t * NS_SM_BLOCK * D;
        float *z = w->z + (size_t)t * NS_SM_BLOCK * K;
        int32_t yb[NS_SM_BLOCK];
        float sw[NS_SM_BLOCK];
        /* This task's own setting: OpenBLAS stays serial inside (see mmd.c). */
        omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
        for (size_t ch = 0; ch < chunks; ch++) {
            float *gw = w->gw + ch * nw;
            double *gb = w->gb + ch * K;
            double loss = 0.0;
            memset(gb, 0, K * sizeof *gb);
            /* Blocks ch, ch + chunks, ...: a fixed assignment of blocks to sums. */
            for (size_t blk = ch, first = 1; blk < nblocks; blk += chunks, first = 0) {
                const size_t i0 = blk * NS_SM_BLOCK;
                const int rows = (int)(r->n - i0 < NS_SM_BLOCK ? r->n - i0 : NS_SM_BLOCK);
                const size_t *ix = r->rows + i0;
                const float *xp = r->x + ix[0] * D;
                int contiguous = 1;
                for (int i = 1; i < rows && contiguous; i++)
                    contiguous = ix[i] == ix[0] + (size_t)i;
                if (!contiguous) {
                    for (int i = 0; i < rows; i++)
                        memcpy(xb + (size_t)i * D, r->x + ix[i] * D, D * sizeof *xb);
                    xp = xb;
                }
                for (int i = 0; i < rows; i++) {
                    yb[i] = r->y[ix[i]];
                    sw[i] = (float)(r->cw[yb[i]] * inv_norm);
                    memcpy(z + (size_t)i * K, w->bf, K * sizeof *z);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, C, d, 1.0f, xp, d,
                            w->wf, d, 1.0f, z, C);
                loss += softmax_grad_rows(z, rows, C, yb, sw, gb);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, d, rows, 1.0f, z, C, xp,
                            d, first ? 0.0f : 1.0f, gw, d);
            }
            w->loss[ch] = loss;
        }
    }
    double f = 0.0;
    memset(grad, 0, (nw + K) * sizeof *grad);
    for (size_t ch = 0; ch < chunks; ch++) {
        f += w->loss[ch];
        const float *gw = w->gw + ch * nw;
        for (size_t k = 0; k < nw; k++)
            grad[k] += gw[k];
        for (size_t c = 0; c < K; c++)
            grad[nw + c] += w->gb[ch * K + c];
    }
    double reg = 0.0;
    for (size_t k = 0; k < nw; k++) {
        reg += theta[k] * theta[k];
        grad[k] += l2 * theta[k];
    }
    return f + 0.5 * l2 * reg;
}

double ns_sm_objective_ref(const ns_tr_rows *r, double l2, const double *theta, double *grad)
{
    const int d = r->d, C = r->C;
    const size_t nw = (size_t)C * (size_t)d;
    double f = 0.0, *z = malloc((size_t)C * sizeof *z);
    memset(grad, 0, (nw + (size_t)C) * sizeof *grad);
    for (size_t i = 0; i < r->n; i++) {
        const float *x = r->x + r->rows[i] * (size_t)d;
        const int y = r->y[r->rows[i]];
        const double sw = r->cw[y] / r->norm;
        double m = -INFINITY, s = 0.0;
        for (int c = 0; c < C; c++) {
            z[c] = theta[nw + c];
            for (int k = 0; k < d; k++)
                z[c] += theta[(size_t)c * d + k] * x[k];
            m = z[c] > m ? z[c] : m;
        }
        for (int c = 0; c < C; c++)
            s += exp(z[c] - m);
        f += sw * (m + log(s) - z[y]);
        for (int c = 0; c < C; c++) {
            double g = sw * (exp(z[c] - m) / s - (c == y));
            for (int k = 0; k < d; k++)
                grad[(size_t)c * d + k] += g * x[k];
            grad[nw + c] += g;
        }
    }
    for (size_t k = 0; k < nw; k++) {
        f += 0.5 * l2 * theta[k] * theta[k];
        grad[k] += l2 * theta[k];
    }
    free(z);
    return f;
}

/* ---- mlp ----------------------------------------------------------------------- */

double ns_mlp_batch_grad(const ns_mlp_params *p, const float *xb, const int32_t *yb,
                         const float *swb, int B, float *h, float *dh, float *z, double *gb,
                         ns_mlp_params *g)
{
    const int d = p->d, H = p->hidden, C = p->C;
    for (int i = 0; i < B; i++)
        memcpy(h + (size_t)i * H, p->b1, (size_t)H * sizeof *h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, d, 1.0f, xb, d, p->w1, d, 1.0f, h,
                H);
    for (size_t k = 0; k < (size_t)B * H; k++)
        h[k] = h[k] > 0.0f ? h[k] : 0.0f;
    for (int i = 0; i < B; i++)
        memcpy(z + (size_t)i * C, p->b, (size_t)C * sizeof *z);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, H, 1.0f, h, H, p->w, H, 1.0f, z, C);
    memset(gb, 0, (size_t)C * sizeof *gb);
    double loss = softmax_grad_rows(z, B, C, yb, swb, gb);
    for (int c = 0; c < C; c++)
        g->b[c] = (float)gb[c];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, H, B, 1.0f, z, C, h, H, 0.0f, g->w, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, C, 1.0f, z, C, p->w, H, 0.0f, dh,
                H);
    for (size_t k = 0; k < (size_t)B * H; k++)
        dh[k] = h[k] > 0.0f ? dh[k] : 0.0f;
    memset(g->b1, 0, (size_t)H * sizeof *g->b1);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < H; j++)
            g->b1[j] += dh[(size_t)i * H + j];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, d, B, 1.0f, dh, H, xb, d, 0.0f, g->w1,
                d);
    return loss;
}

double ns_mlp_batch_grad_ref(const ns_mlp_params *p, const float *xb, const int32_t *yb,
                             const float *swb, int B, ns_mlp_params *g)
{
    const int d = p->d, H = p->hidden, C = p->C;
    double *h = malloc((size_t)H * sizeof *h), *z = malloc((size_t)C * sizeof *z),
           *dh = malloc((size_t)H * sizeof *dh);
    double loss = 0.0;
    memset(g->w1, 0, (size_t)H * d * sizeof *g->w1);
    memset(g->b1, 0, (size_t)H * sizeof *g->b1);
    memset(g->w, 0, (size_t)C * H * sizeof *g->w);
    memset(g->b, 0, (size_t)C * sizeof *g->b);
    for (int i = 0; i < B; i++) {
        const float *x = xb + (size_t)i * d;
        for (int j = 0; j < H; j++) {
            double v = p->b1[j];
            for (int k = 0; k < d; k++)
                v += (double)p->w1[(size_t)j * d + k] * x[k];
            h[j] = v > 0 ? v : 0;
        }
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) {
            z[c] = p->b[c];
            for (int j = 0; j < H; j++)
                z[c] += (double)p->w[(size_t)c * H + j] * h[j];
            m = z[c] > m ? z[c] : m;
        }
        for (int c = 0; c < C; c++)
            s += exp(z[c] - m);
        loss += swb[i] * (m + log(s) - z[yb[i]]);
        for (int j = 0; j < H; j++)
            dh[j] = 0;
        for (int c = 0; c < C; c++) {
            double gz = swb[i] * (exp(z[c] - m) / s - (c == yb[i]));
            g->b[c] += (float)gz;
            for (int j = 0; j < H; j++) {
                g->w[(size_t)c * H + j] += (float)(gz * h[j]);
                dh[j] += gz * p->w[(size_t)c * H + j];
            }
        }
        for (int j = 0; j < H; j++) {
            if (h[j] <= 0)
                continue;
            g->b1[j] += (float)dh[j];
            for (int k = 0; k < d; k++)
                g->w1[(size_t)j * d + k] += (float)(dh[j] * x[k]);
        }
    }
    free(h);
    free(z);
    free(dh);
    return loss;
}
