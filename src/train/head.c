/* head.c -- the classifier head in memory: allocation, content id, the model
 * check and prediction (include/nightshift/head.h; the file is headfile.c in
 * src/store).
 *
 * Prediction is its own small kernel rather than sgemm: a frame's
 * probabilities must be bit-identical whether predict, detect --head, select
 * --head or evaluate computes them, in whatever batch and with however many
 * threads.  BLAS kernels change their summation order with the matrix edges
 * and the thread split, so each row here is summed in one fixed order.  The
 * cost is small: a head is at most a few hundred thousand multiply-adds per
 * frame, against the millions of the CNN that made the embedding.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/head.h"

#define LANES 16
#define ROWS_PER_TASK 64

const char *ns_head_kind_name(ns_head_kind kind)
{
    return kind == NS_HEAD_MLP ? "mlp" : "softmax";
}

void ns_head_release(ns_head *h)
{
    if (!h)
        return;
    free(h->w1);
    free(h->b1);
    free(h->w);
    free(h->b);
    free(h->classes);
    free(h->label_sets);
    free(h->epochs);
    free(h->options);
    memset(h, 0, sizeof *h);
}

ns_status ns_head_alloc(ns_head *h, ns_head_kind kind, int d, int hidden, int n_classes)
{
    memset(h, 0, sizeof *h);
    if (d < 1 || n_classes < 1 || (kind == NS_HEAD_MLP && hidden < 1) ||
        (kind != NS_HEAD_MLP && kind != NS_HEAD_SOFTMAX))
        return ns_error(NS_ERR_USAGE, "head: bad shape (%s, dimension %d, hidden %d, %d "
                        "classes)", ns_head_kind_name(kind), d, hidden, n_classes);
    if (kind != NS_HEAD_MLP)
        hidden = 0;
    size_t in = kind == NS_HEAD_MLP ? (size_t)hidden : (size_t)d;
    h->kind = kind;
    h->d = d;
    h->hidden = hidden;
    h->n_classes = n_classes;
    h->temperature = 1.0f;
    h->w = calloc((size_t)n_classes * in, sizeof *h->w);
    h->b = calloc((size_t)n_classes, sizeof *h->b);
    h->classes = calloc((size_t)n_classes, sizeof *h->classes);
    if (kind == NS_HEAD_MLP) {
        h->w1 = calloc((size_t)hidden * (size_t)d, sizeof *h->w1);
        h->b1 = calloc((size_t)hidden, sizeof *h->b1);
    }
    if (!h->w || !h->b || !h->classes || (kind == NS_HEAD_MLP && (!h->w1 || !h->b1))) {
        ns_head_release(h);
        return ns_error(NS_ERR_NOMEM, "head: out of memory for %d x %zu weights", n_classes,
                        in);
    }
    return NS_OK;
}

static void hash_i32(ns_sha256 *s, int32_t v)
{
    ns_sha256_update(s, &v, sizeof v);
}

static void hash_padded(ns_sha256 *s, const char *str, size_t width)
{
    char buf[NS_LABEL_LEN];
    size_t len = strnlen(str, width - 1);
    memset(buf, 0, width);
    memcpy(buf, str, len);
    ns_sha256_update(s, buf, width);
}

void ns_head_content_id(const ns_head *h, char hex[NS_SHA256_HEX])
{
    ns_sha256 s;
    uint8_t dig[NS_SHA256_LEN];
    const size_t C = (size_t)h->n_classes, in = h->kind == NS_HEAD_MLP ? (size_t)h->hidden
                                                                        : (size_t)h->d;
    ns_sha256_init(&s);
    hash_i32(&s, (int32_t)h->kind);
    hash_i32(&s, h->d);
    hash_i32(&s, h->hidden);
    hash_i32(&s, h->n_classes);
    if (h->kind == NS_HEAD_MLP) {
        ns_sha256_update(&s, h->w1, (size_t)h->hidden * (size_t)h->d * sizeof *h->w1);
        ns_sha256_update(&s, h->b1, (size_t)h->hidden * sizeof *h->b1);
    }
    ns_sha256_update(&s, h->w, C * in * sizeof *h->w);
    ns_sha256_update(&s, h->b, C * sizeof *h->b);
    ns_sha256_update(&s, &h->temperature, sizeof h->temperature);
    for (size_t c = 0; c < C; c++)
        hash_padded(&s, h->classes[c], NS_LABEL_LEN);
    hash_padded(&s, h->model_id, NS_SHA256_HEX);
    ns_sha256_final(&s, dig);
    ns_sha256_hex(dig, hex);
}

ns_status ns_head_check_model(const ns_head *h, const char *model_id, int d)
{
    if (model_id && strcmp(h->model_id, model_id) != 0)
        return ns_error(NS_ERR_USAGE, "head %.12s expects embeddings of model %.12s, but these "
                        "are of model %.12s: train a head on this model's embeddings, or embed "
                        "with model %.12s", h->head_id, h->model_id, model_id, h->model_id);
    if (d != h->d)
        return ns_error(NS_ERR_USAGE, "head %.12s expects embeddings of dimension %d, got %d",
                        h->head_id, h->d, d);
    return NS_OK;
}

/* A dot product in one fixed order: LANES independent partial sums (which the
 * compiler keeps in vector registers without reassociating anything), then a
 * fixed pairwise reduction. */
static inline float dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[LANES] = {0};
    int k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int j = 0; j < LANES; j++)
            acc[j] += a[k + j] * b[k + j];
    for (int j = 0; k + j < n; j++)
        acc[j] += a[k + j] * b[k + j];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

static ns_status check_head(const ns_head *h)
{
    if (h->d < 1 || h->n_classes < 1 || !h->w || !h->b ||
        (h->kind == NS_HEAD_MLP && (h->hidden < 1 || !h->w1 || !h->b1)))
        return ns_error(NS_ERR_USAGE, "head %.12s is not loaded (no weights)", h->head_id);
    if (!(h->temperature > 0.0f) || !isfinite(h->temperature))
        return ns_error(NS_ERR_CORRUPT, "head %.12s has temperature %g; it must be positive",
                        h->head_id, (double)h->temperature);
    return NS_OK;
}

/* Logits of one frame; hid (hidden) is scratch for the MLP. */
static void row_logits(const ns_head *h, const float *x, float *hid, float *out)
{
    const float *in = x;
    int n_in = h->d;
    if (h->kind == NS_HEAD_MLP) {
        for (int j = 0; j < h->hidden; j++) {
            float v = h->b1[j] + dot(h->w1 + (size_t)j * (size_t)h->d, x, h->d);
            hid[j] = v > 0.0f ? v : 0.0f;
        }
        in = hid;
        n_in = h->hidden;
    }
    for (int c = 0; c < h->n_classes; c++)
        out[c] = h->b[c] + dot(h->w + (size_t)c * (size_t)n_in, in, n_in);
}

/* Temperature-scaled softmax of one row, in place. */
static void row_softmax(float *z, int C, float inv_t)
{
    float m = z[0];
    for (int c = 1; c < C; c++)
        if (z[c] > m)
            m = z[c];
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        z[c] = expf((z[c] - m) * inv_t);
        sum += z[c];
    }
    const float inv = (float)(1.0 / sum);
    for (int c = 0; c < C; c++)
        z[c] *= inv;
}

static ns_status run(const ns_head *h, const float *emb, size_t n, float *out, int probs)
{
    ns_status st = check_head(h);
    if (st != NS_OK)
        return st;
    if (n == 0)
        return NS_OK;
    const int threads = omp_get_max_threads();
    const size_t hid_n = h->kind == NS_HEAD_MLP ? (size_t)h->hidden : 1;
    float *scratch = malloc((size_t)threads * hid_n * sizeof *scratch);
    if (!scratch)
        return ns_error(NS_ERR_NOMEM, "head: out of memory for the hidden layer");
    const size_t tasks = (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    const float inv_t = 1.0f / h->temperature;
    const int C = h->n_classes;
    /* Work per frame is tiny for a softmax head: threads only pay off in bulk. */
    const int parallel = n * (size_t)h->d * (hid_n + (size_t)C) > (size_t)1 << 20;
#pragma omp parallel num_threads(threads) if (parallel)
    {
        float *hid = scratch + (size_t)omp_get_thread_num() * hid_n;
#pragma omp for schedule(static)
        for (size_t t = 0; t < tasks; t++) {
            size_t end = (t + 1) * ROWS_PER_TASK < n ? (t + 1) * ROWS_PER_TASK : n;
            for (size_t i = t * ROWS_PER_TASK; i < end; i++) {
                float *z = out + i * (size_t)C;
                row_logits(h, emb + i * (size_t)h->d, hid, z);
                if (probs)
                    row_softmax(z, C, inv_t);
            }
        }
    }
    free(scratch);
    return NS_OK;
}

ns_status ns_head_logits(const ns_head *h, const float *emb, size_t n, float *logits)
{
    return run(h, emb, n, logits, 0);
}

ns_status ns_head_predict(const ns_head *h, const float *emb, size_t n, float *prob)
{
    return run(h, emb, n, prob, 1);
}

void ns_head_top(const float *prob, size_t n, int n_classes, int32_t *top, float *p,
                 float *margin)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = prob + i * (size_t)n_classes;
        int best = 0;
        float second = 0.0f;
        for (int c = 1; c < n_classes; c++) {
            if (r[c] > r[best]) {
                second = r[best];
                best = c;
            } else if (r[c] > second) {
                second = r[c];
            }
        }
        if (top)
            top[i] = best;
        if (p)
            p[i] = r[best];
        if (margin)
            margin[i] = r[best] - second;
    }
}
