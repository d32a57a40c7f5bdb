/* exec_cuda.c -- the executor's CUDA operator table: thin adapters from the
 * generic (void *ctx) entries to kernels/ns_cuda.h.  Builds without CUDA link
 * kernels/cuda_stub.c, whose entries report NS_ERR_NODEV; ns_exec_create
 * never picks this table there. */
#include "exec_internal.h"
#include "ns_cuda.h"

static ns_status cu_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    return ns_cuda_upload(ctx, dst, src, bytes);
}

static ns_status cu_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    return ns_cuda_download(ctx, dst, src, bytes);
}

static ns_status cu_sync(void *ctx) { return ns_cuda_ctx_sync(ctx); }

static ns_status cu_preprocess(void *ctx, const ns_preproc *pp, const uint8_t *frames, int n,
                               int S, float *y)
{
    return ns_cuda_preprocess(ctx, pp, frames, n, S, y);
}

static ns_status cu_conv(void *ctx, const ns_conv_params *p, const float *x, const float *w,
                         const float *bias, ns_act act, float *y, float *workspace)
{
    return ns_cuda_conv2d(ctx, p, x, w, bias, act, y, workspace);
}

static ns_status cu_maxpool(void *ctx, const ns_pool_params *p, const float *x, float *y)
{
    return ns_cuda_maxpool(ctx, p, x, y);
}

static ns_status cu_avgpool(void *ctx, const ns_pool_params *p, const float *x, float *y)
{
    return ns_cuda_avgpool(ctx, p, x, y);
}

static ns_status cu_gap(void *ctx, const float *x, int n, int c, int hw, float *y)
{
    return ns_cuda_global_avgpool(ctx, x, n, c, hw, y);
}

static ns_status cu_act(void *ctx, ns_act act, float *x, size_t n)
{
    return ns_cuda_act(ctx, act, x, n);
}

static ns_status cu_add(void *ctx, const float *a, const float *b, float *y, size_t n, ns_act act)
{
    return ns_cuda_add(ctx, a, b, y, n, act);
}

static ns_status cu_mul_channel(void *ctx, const float *x, const float *s, float *y, int n, int c,
                                int hw)
{
    return ns_cuda_mul_channel(ctx, x, s, y, n, c, hw);
}

static ns_status cu_gemm(void *ctx, const float *x, const float *w, const float *bias, float *y,
                         int n, int k, int m, ns_act act)
{
    return ns_cuda_gemm(ctx, x, w, bias, y, n, k, m, act);
}

static ns_status cu_concat(void *ctx, const float *const *x, const int *c, int k, int n, int hw,
                           float *y)
{
    return ns_cuda_concat(ctx, x, c, k, n, hw, y);
}

static ns_status cu_l2norm(void *ctx, float *x, int n, int d) { return ns_cuda_l2norm(ctx, x, n, d); }

const ns_exec_backend ns_exec_backend_cuda = {
    .on_device = 1,
    .alloc = ns_cuda_malloc,
    .release = ns_cuda_free,
    .upload = cu_upload,
    .download = cu_download,
    .sync = cu_sync,
    .preprocess = cu_preprocess,
    .conv = cu_conv,
    .maxpool = cu_maxpool,
    .avgpool = cu_avgpool,
    .global_avgpool = cu_gap,
    .act = cu_act,
    .add = cu_add,
    .mul_channel = cu_mul_channel,
    .gemm = cu_gemm,
    .concat = cu_concat,
    .l2norm = cu_l2norm,
};
