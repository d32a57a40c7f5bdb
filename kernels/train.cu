// train.cu -- the training heads on the GPU: the softmax objective's loss
// and gradient, the MLP's mini-batch gradient, Adam, and a row gather.
//
// The twins of ns_sm_objective / ns_mlp_batch_grad in src/train/loss.c (whose
// references, ns_*_ref, the parity test tests/test_train_gpu.c compares
// against).  GEMMs go to cuBLAS in fp32; the per-row softmax writes each
// row's loss to its own slot and the bias gradients are column sums in one
// fixed order, so nothing depends on atomics and a run repeats bit for bit.
#define WHERE "kernels/train.cu"
#include "cuda_internal.cuh"
#include "ops_internal.cuh"

// Row-major C (M, N) = op(A) op(B) + beta C through column-major cuBLAS:
// the column-major view of C is C^T = op(B)^T op(A)^T.
static ns_status rm_gemm(ns_cuda_ctx *ctx, bool ta, bool tb, int M, int N, int K, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    ns_status st = NS_OK;
    const float one = 1.0f;
    BLAS_TRY(cublasSgemm(ctx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                         N, M, K, &one, B, ldb, A, lda, &beta, C, ldc));
done:
    return st;
}

// One thread per row: z (n, C) logits -> (softmax - onehot) * sw, loss[i].
__global__ void softmax_grad_kernel(float *z, const int32_t *y, const float *sw, size_t n, int C,
                                    float *loss)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float *r = z + i * C;
    float m = r[0];
    for (int c = 1; c < C; c++)
        m = fmaxf(m, r[c]);
    double s = 0.0;
    for (int c = 0; c < C; c++) {
        r[c] = expf(r[c] - m);
        s += r[c];
    }
    const int yi = y[i];
    loss[i] = (float)(sw[i] * (log(s) - log((double)r[yi])));
    const float inv = (float)(1.0 / s);
    for (int c = 0; c < C; c++)
        r[c] *= inv * sw[i];
    r[yi] -= sw[i];
}

// out[j] = sum over rows i of a[i * cols + j], rows in order (one thread per column).
__global__ void colsum_kernel(const float *a, size_t rows, int cols, float *out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols)
        return;
    double s = 0.0;
    for (size_t i = 0; i < rows; i++)
        s += a[i * cols + j];
    out[j] = (float)s;
}

__global__ void bias_rows_kernel(float *y, const float *b, size_t rows, int cols)
{
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k < rows * cols)
        y[k] = b[k % cols];
}

__global__ void relu_kernel(float *x, size_t n)
{
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k < n)
        x[k] = fmaxf(x[k], 0.0f);
}

__global__ void relu_mask_kernel(float *dh, const float *h, size_t n)
{
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k < n && !(h[k] > 0.0f))
        dh[k] = 0.0f;
}

__global__ void adam_kernel(float *p, const float *g, float *m, float *v, size_t n, float l2,
                            double lr_t, double vcorr)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const double gi = (double)g[i] + (double)l2 * p[i];
    m[i] = (float)(0.9 * m[i] + 0.1 * gi);
    v[i] = (float)(0.999 * v[i] + 0.001 * gi * gi);
    p[i] -= (float)(lr_t * m[i] / (sqrt((double)v[i]) / vcorr + 1e-8));
}

__global__ void gather_rows_kernel(const float *src, const int32_t *idx, size_t n, int d,
                                   float *dst)
{
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k < n * d)
        dst[k] = src[(size_t)idx[k / d] * d + k % d];
}

static unsigned blocks(size_t n)
{
    return (unsigned)((n + kThreads - 1) / kThreads);
}

// Logits z (n, C) = x (n, d) w^T + b.
static ns_status logits(ns_cuda_ctx *ctx, const float *x, size_t n, int d, int C, const float *w,
                        const float *b, float *z)
{
    ns_status st = NS_OK;
    bias_rows_kernel<<<blocks(n * C), kThreads, 0, ctx->stream>>>(z, b, n, C);
    LAUNCHED();
    NS_TRY(rm_gemm(ctx, false, true, (int)n, C, d, x, d, w, d, 1.0f, z, C));
done:
    return st;
}

extern "C" ns_status ns_cuda_sm_objective(ns_cuda_ctx *ctx, const float *x, const int32_t *y,
                                          const float *sw, size_t n, int d, int C,
                                          const float *w, const float *b, float *z, float *loss,
                                          float *gw, float *gb)
{
    ns_status st = NS_OK;
    if (n == 0 || d < 1 || C < 1 || n > (size_t)INT_MAX)
        return ns_error(NS_ERR_USAGE, WHERE ": bad shape (%zu rows, d %d, %d classes)", n, d, C);
    NS_TRY(logits(ctx, x, n, d, C, w, b, z));
    softmax_grad_kernel<<<blocks(n), kThreads, 0, ctx->stream>>>(z, y, sw, n, C, loss);
    LAUNCHED();
    // gw (C, d) = G^T (C, n) x (n, d)
    NS_TRY(rm_gemm(ctx, true, false, C, d, (int)n, z, C, x, d, 0.0f, gw, d));
    colsum_kernel<<<blocks((size_t)C), kThreads, 0, ctx->stream>>>(z, n, C, gb);
    LAUNCHED();
done:
    return st;
}

extern "C" ns_status ns_cuda_mlp_grad(ns_cuda_ctx *ctx, const float *x, const int32_t *y,
                                      const float *sw, int B, int d, int H, int C,
                                      const float *w1, const float *b1, const float *w,
                                      const float *b, float *h, float *dh, float *z, float *loss,
                                      float *gw1, float *gb1, float *gw, float *gb)
{
    ns_status st = NS_OK;
    const size_t nh = (size_t)B * H;
    if (B < 1 || d < 1 || H < 1 || C < 1)
        return ns_error(NS_ERR_USAGE, WHERE ": bad MLP shape (B %d, d %d, H %d, C %d)", B, d, H,
                        C);
    NS_TRY(logits(ctx, x, (size_t)B, d, H, w1, b1, h));
    relu_kernel<<<blocks(nh), kThreads, 0, ctx->stream>>>(h, nh);
    LAUNCHED();
    NS_TRY(logits(ctx, h, (size_t)B, H, C, w, b, z));
    softmax_grad_kernel<<<blocks((size_t)B), kThreads, 0, ctx->stream>>>(z, y, sw, (size_t)B, C,
                                                                          loss);
    LAUNCHED();
    NS_TRY(rm_gemm(ctx, true, false, C, H, B, z, C, h, H, 0.0f, gw, H));   // G^T h
    colsum_kernel<<<blocks((size_t)C), kThreads, 0, ctx->stream>>>(z, (size_t)B, C, gb);
    LAUNCHED();
    NS_TRY(rm_gemm(ctx, false, false, B, H, C, z, C, w, H, 0.0f, dh, H));  // G w
    relu_mask_kernel<<<blocks(nh), kThreads, 0, ctx->stream>>>(dh, h, nh);
    LAUNCHED();
    NS_TRY(rm_gemm(ctx, true, false, H, d, B, dh, H, x, d, 0.0f, gw1, d)); // dh^T x
    colsum_kernel<<<blocks((size_t)H), kThreads, 0, ctx->stream>>>(dh, (size_t)B, H, gb1);
    LAUNCHED();
done:
    return st;
}

extern "C" ns_status ns_cuda_adam(ns_cuda_ctx *ctx, float *p, const float *g, float *m, float *v,
                                  size_t n, float l2, double lr_t, double vcorr)
{
    ns_status st = NS_OK;
    if (n == 0)
        return NS_OK;
    adam_kernel<<<blocks(n), kThreads, 0, ctx->stream>>>(p, g, m, v, n, l2, lr_t, vcorr);
    LAUNCHED();
done:
    return st;
}

extern "C" ns_status ns_cuda_gather_rows(ns_cuda_ctx *ctx, const float *src, const int32_t *idx,
                                         size_t n, int d, float *dst)
{
    ns_status st = NS_OK;
    if (n == 0)
        return NS_OK;
    gather_rows_kernel<<<blocks(n * d), kThreads, 0, ctx->stream>>>(src, idx, n, d, dst);
    LAUNCHED();
done:
    return st;
}
