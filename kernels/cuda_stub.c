/* Linked instead of the .cu files when nvcc is not available. */
#include "ns_cuda.h"

#include <string.h>

int ns_cuda_built(void) { return 0; }

int ns_cuda_driver_present(void) { return 0; }

const char *ns_cuda_module(int *loaded)
{
    *loaded = 0;
    return "built without CUDA";
}

int ns_cuda_runtime_version(void) { return 0; }

ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count)
{
    (void)out;
    (void)cap;
    *count = 0;
    return ns_error(NS_ERR_NODEV, "built without CUDA");
}

ns_status ns_cuda_iota_affine(int dev, uint32_t *out, size_t n, uint32_t a, uint32_t b)
{
    (void)dev; (void)out; (void)n; (void)a; (void)b;
    return ns_error(NS_ERR_NODEV, "built without CUDA");
}

/* ---- embedding operators: every entry point reports the missing build ---- */

#define NS_NO_CUDA() ns_error(NS_ERR_NODEV, "built without CUDA")

ns_status ns_cuda_ctx_create(int device, ns_cuda_ctx **out)
{
    (void)device;
    *out = NULL;
    return NS_NO_CUDA();
}

void ns_cuda_ctx_free(ns_cuda_ctx *ctx) { (void)ctx; }

int ns_cuda_ctx_winograd(const ns_cuda_ctx *ctx)
{
    (void)ctx;
    return 0;
}

int ns_cuda_ctx_implicit(const ns_cuda_ctx *ctx)
{
    (void)ctx;
    return 0;
}

ns_status ns_cuda_ctx_sync(ns_cuda_ctx *ctx)
{
    (void)ctx;
    return NS_NO_CUDA();
}

ns_status ns_cuda_malloc(void **out, size_t bytes)
{
    (void)bytes;
    *out = NULL;
    return NS_NO_CUDA();
}

void ns_cuda_free(void *dev) { (void)dev; }

ns_status ns_cuda_upload(ns_cuda_ctx *ctx, void *dev, const void *host, size_t bytes)
{
    (void)ctx; (void)dev; (void)host; (void)bytes;
    return NS_NO_CUDA();
}

ns_status ns_cuda_upload_ahead(ns_cuda_ctx *ctx, void *dev, const void *host, size_t bytes)
{
    (void)ctx; (void)dev; (void)host; (void)bytes;
    return NS_NO_CUDA();
}

ns_status ns_cuda_ahead_join(ns_cuda_ctx *ctx)
{
    (void)ctx;
    return NS_NO_CUDA();
}

ns_status ns_cuda_ahead_sync(ns_cuda_ctx *ctx)
{
    (void)ctx;
    return NS_NO_CUDA();
}

ns_status ns_cuda_download(ns_cuda_ctx *ctx, void *host, const void *dev, size_t bytes)
{
    (void)ctx; (void)host; (void)dev; (void)bytes;
    return NS_NO_CUDA();
}

ns_status ns_cuda_host_alloc(void **out, size_t bytes)
{
    (void)bytes;
    *out = NULL;
    return NS_NO_CUDA();
}

void ns_cuda_host_free(void *host) { (void)host; }

size_t ns_cuda_conv_workspace_floats(const ns_conv_params *p)
{
    (void)p;
    return 0;
}

ns_status ns_cuda_conv2d(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                         const float *w, const float *bias, ns_act act, float *y,
                         float *workspace)
{
    (void)ctx; (void)p; (void)x; (void)w; (void)bias; (void)act; (void)y; (void)workspace;
    return NS_NO_CUDA();
}

ns_status ns_cuda_maxpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x, float *y)
{
    (void)ctx; (void)p; (void)x; (void)y;
    return NS_NO_CUDA();
}

ns_status ns_cuda_avgpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x, float *y)
{
    (void)ctx; (void)p; (void)x; (void)y;
    return NS_NO_CUDA();
}

ns_status ns_cuda_global_avgpool(ns_cuda_ctx *ctx, const float *x, int n, int c, int hw,
                                 float *y)
{
    (void)ctx; (void)x; (void)n; (void)c; (void)hw; (void)y;
    return NS_NO_CUDA();
}

ns_status ns_cuda_act(ns_cuda_ctx *ctx, ns_act act, float *x, size_t n)
{
    (void)ctx; (void)act; (void)x; (void)n;
    return NS_NO_CUDA();
}

ns_status ns_cuda_add(ns_cuda_ctx *ctx, const float *a, const float *b, float *y, size_t n,
                      ns_act act)
{
    (void)ctx; (void)a; (void)b; (void)y; (void)n; (void)act;
    return NS_NO_CUDA();
}

ns_status ns_cuda_mul_channel(ns_cuda_ctx *ctx, const float *x, const float *s, float *y, int n,
                              int c, int hw)
{
    (void)ctx; (void)x; (void)s; (void)y; (void)n; (void)c; (void)hw;
    return NS_NO_CUDA();
}

ns_status ns_cuda_gemm(ns_cuda_ctx *ctx, const float *x, const float *w, const float *bias,
                       float *y, int n, int k, int m, ns_act act)
{
    (void)ctx; (void)x; (void)w; (void)bias; (void)y; (void)n; (void)k; (void)m; (void)act;
    return NS_NO_CUDA();
}

ns_status ns_cuda_concat(ns_cuda_ctx *ctx, const float *const *x, const int *c, int k, int n,
                         int hw, float *y)
{
    (void)ctx; (void)x; (void)c; (void)k; (void)n; (void)hw; (void)y;
    return NS_NO_CUDA();
}

ns_status ns_cuda_l2norm(ns_cuda_ctx *ctx, float *x, int n, int d)
{
    (void)ctx; (void)x; (void)n; (void)d;
    return NS_NO_CUDA();
}

ns_status ns_cuda_preprocess(ns_cuda_ctx *ctx, const ns_preproc *pp, const uint8_t *frames,
                             int n, int S, float *y)
{
    (void)ctx; (void)pp; (void)frames; (void)n; (void)S; (void)y;
    return NS_NO_CUDA();
}

ns_status ns_cuda_ctx_set_precision(ns_cuda_ctx *ctx, ns_precision prec, const float *weights,
                                    size_t n_weights, size_t scratch_elems)
{
    (void)ctx; (void)prec; (void)weights; (void)n_weights; (void)scratch_elems;
    return NS_NO_CUDA();
}

size_t ns_cuda_bf16_conv_elems(const ns_conv_params *p)
{
    (void)p;
    return 0;
}

ns_status ns_cuda_f32_to_bf16(ns_cuda_ctx *ctx, const float *x, uint16_t *y, size_t n)
{
    (void)ctx; (void)x; (void)y; (void)n;
    return NS_NO_CUDA();
}

/* ---- detect stage ---- */

ns_status ns_cuda_kmeans_assign(const float *x, size_t n, int d, const float *c, int k,
                                int *assign, float *dist2)
{
    (void)x; (void)n; (void)d; (void)c; (void)k; (void)assign; (void)dist2;
    return NS_NO_CUDA();
}

ns_status ns_cuda_kmeans_fit(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                             ns_kmeans_result *r)
{
    (void)x; (void)n; (void)d; (void)o;
    if (r)
        memset(r, 0, sizeof *r); /* "left released", as the CPU's fit on failure */
    return NS_NO_CUDA();
}

ns_status ns_cuda_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                             const int64_t *qgroup, const int64_t *bgroup, int threads,
                             float *dist, int64_t *idx)
{
    (void)q; (void)nq; (void)b; (void)nb; (void)d; (void)k; (void)qgroup; (void)bgroup;
    (void)threads; (void)dist; (void)idx;
    return NS_NO_CUDA();
}

ns_status ns_cuda_mmd_block_sums(const float *x, size_t n, int d, const size_t *off,
                                 size_t nblocks, double sigma, int threads, double *S)
{
    (void)x; (void)n; (void)d; (void)off; (void)nblocks; (void)sigma; (void)threads; (void)S;
    return NS_NO_CUDA();
}

void ns_cuda_detect_release(void) {}

/* ---- training heads ---- */

ns_status ns_cuda_sm_objective(ns_cuda_ctx *ctx, const float *x, const int32_t *y,
                               const float *sw, size_t n, int d, int C, const float *w,
                               const float *b, float *z, float *loss, float *gw, float *gb)
{
    (void)ctx; (void)x; (void)y; (void)sw; (void)n; (void)d; (void)C; (void)w; (void)b;
    (void)z; (void)loss; (void)gw; (void)gb;
    return NS_NO_CUDA();
}

ns_status ns_cuda_mlp_grad(ns_cuda_ctx *ctx, const float *x, const int32_t *y, const float *sw,
                           int B, int d, int H, int C, const float *w1, const float *b1,
                           const float *w, const float *b, float *h, float *dh, float *z,
                           float *loss, float *gw1, float *gb1, float *gw, float *gb)
{
    (void)ctx; (void)x; (void)y; (void)sw; (void)B; (void)d; (void)H; (void)C; (void)w1;
    (void)b1; (void)w; (void)b; (void)h; (void)dh; (void)z; (void)loss; (void)gw1; (void)gb1;
    (void)gw; (void)gb;
    return NS_NO_CUDA();
}

ns_status ns_cuda_adam(ns_cuda_ctx *ctx, float *p, const float *g, float *m, float *v, size_t n,
                       float l2, double lr_t, double vcorr)
{
    (void)ctx; (void)p; (void)g; (void)m; (void)v; (void)n; (void)l2; (void)lr_t; (void)vcorr;
    return NS_NO_CUDA();
}

ns_status ns_cuda_gather_rows(ns_cuda_ctx *ctx, const float *src, const int32_t *idx, size_t n,
                              int d, float *dst)
{
    (void)ctx; (void)src; (void)idx; (void)n; (void)d; (void)dst;
    return NS_NO_CUDA();
}
