/* cuda_api.h -- the table between the CUDA module and the binaries that load it.
 *
 * Private to kernels/.  With CUDA built, the kernels and cuBLAS live in a
 * module, libnightshift_cuda.so, that cuda_loader.c opens on the first call
 * of any function in ns_cuda.h.  So a binary starts without the CUDA runtime
 * (CPU-only nodes of a cluster often lack it) and commands that never touch
 * the GPU skip cuBLAS's start-up (about 0.4 s per process here).
 *
 * Each entry: X(kind, return type, name, (parameters), (arguments)), where
 * kind is S (ns_status: NS_ERR_NODEV when the module is missing), H (the same,
 * but written out in cuda_loader.c, which also clears the out-parameter),
 * V (void, a release: nothing happens without the module, and a release
 * never loads it) or Z (a number: 0).
 */
#ifndef NIGHTSHIFT_CUDA_API_H
#define NIGHTSHIFT_CUDA_API_H

#include "ns_cuda.h"

/* Bumped whenever an entry changes: a module from another build is refused. */
#define NS_CUDA_API_VERSION 3

#define NS_CUDA_API(X)                                                                         \
    X(Z, int, ns_cuda_runtime_version, (void), ())                                            \
    X(H, ns_status, ns_cuda_devices, (ns_cuda_device * out, int cap, int *count),             \
      (out, cap, count))                                                                       \
    X(S, ns_status, ns_cuda_iota_affine, (int dev, uint32_t *out, size_t n, uint32_t a,       \
                                          uint32_t b), (dev, out, n, a, b))                    \
    X(H, ns_status, ns_cuda_ctx_create, (int device, ns_cuda_ctx **out), (device, out))       \
    X(V, void, ns_cuda_ctx_free, (ns_cuda_ctx * ctx), (ctx))                                  \
    X(S, ns_status, ns_cuda_ctx_sync, (ns_cuda_ctx * ctx), (ctx))                             \
    X(H, ns_status, ns_cuda_malloc, (void **out, size_t bytes), (out, bytes))                 \
    X(V, void, ns_cuda_free, (void *dev), (dev))                                              \
    X(S, ns_status, ns_cuda_upload, (ns_cuda_ctx * ctx, void *dev, const void *host,          \
                                     size_t bytes), (ctx, dev, host, bytes))                   \
    X(S, ns_status, ns_cuda_download, (ns_cuda_ctx * ctx, void *host, const void *dev,        \
                                       size_t bytes), (ctx, host, dev, bytes))                 \
    X(S, ns_status, ns_cuda_upload_ahead, (ns_cuda_ctx * ctx, void *dev, const void *host,    \
                                           size_t bytes), (ctx, dev, host, bytes))             \
    X(S, ns_status, ns_cuda_ahead_join, (ns_cuda_ctx * ctx), (ctx))                           \
    X(S, ns_status, ns_cuda_ahead_sync, (ns_cuda_ctx * ctx), (ctx))                           \
    X(H, ns_status, ns_cuda_host_alloc, (void **out, size_t bytes), (out, bytes))             \
    X(V, void, ns_cuda_host_free, (void *host), (host))                                       \
    X(Z, size_t, ns_cuda_conv_workspace_floats, (const ns_conv_params *p), (p))               \
    X(S, ns_status, ns_cuda_conv2d, (ns_cuda_ctx * ctx, const ns_conv_params *p,              \
                                     const float *x, const float *w, const float *bias,        \
                                     ns_act act, float *y, float *workspace),                  \
      (ctx, p, x, w, bias, act, y, workspace))                                                 \
    X(S, ns_status, ns_cuda_maxpool, (ns_cuda_ctx * ctx, const ns_pool_params *p,             \
                                      const float *x, float *y), (ctx, p, x, y))               \
    X(S, ns_status, ns_cuda_avgpool, (ns_cuda_ctx * ctx, const ns_pool_params *p,             \
                                      const float *x, float *y), (ctx, p, x, y))               \
    X(S, ns_status, ns_cuda_global_avgpool, (ns_cuda_ctx * ctx, const float *x, int n, int c, \
                                             int hw, float *y), (ctx, x, n, c, hw, y))         \
    X(S, ns_status, ns_cuda_act, (ns_cuda_ctx * ctx, ns_act act, float *x, size_t n),         \
      (ctx, act, x, n))                                                                        \
    X(S, ns_status, ns_cuda_add, (ns_cuda_ctx * ctx, const float *a, const float *b,          \
                                  float *y, size_t n, ns_act act), (ctx, a, b, y, n, act))     \
    X(S, ns_status, ns_cuda_mul_channel, (ns_cuda_ctx * ctx, const float *x, const float *s,  \
                                          float *y, int n, int c, int hw),                     \
      (ctx, x, s, y, n, c, hw))                                                                \
    X(S, ns_status, ns_cuda_gemm, (ns_cuda_ctx * ctx, const float *x, const float *w,         \
                                   const float *bias, float *y, int n, int k, int m,           \
                                   ns_act act), (ctx, x, w, bias, y, n, k, m, act))            \
    X(S, ns_status, ns_cuda_concat, (ns_cuda_ctx * ctx, const float *const *x, const int *c,  \
                                     int k, int n, int hw, float *y), (ctx, x, c, k, n, hw, y)) \
    X(S, ns_status, ns_cuda_l2norm, (ns_cuda_ctx * ctx, float *x, int n, int d),              \
      (ctx, x, n, d))                                                                          \
    X(S, ns_status, ns_cuda_preprocess, (ns_cuda_ctx * ctx, const ns_preproc *pp,             \
                                         const uint8_t *frames, int n, int S, float *y),       \
      (ctx, pp, frames, n, S, y))                                                              \
    X(S, ns_status, ns_cuda_ctx_set_precision, (ns_cuda_ctx * ctx, ns_precision prec,         \
                                                const float *weights, size_t n_weights,        \
                                                size_t scratch_elems),                         \
      (ctx, prec, weights, n_weights, scratch_elems))                                          \
    X(Z, size_t, ns_cuda_bf16_conv_elems, (const ns_conv_params *p), (p))                     \
    X(Z, int, ns_cuda_ctx_winograd, (const ns_cuda_ctx *ctx), (ctx))                          \
    X(Z, int, ns_cuda_ctx_implicit, (const ns_cuda_ctx *ctx), (ctx))                          \
    X(S, ns_status, ns_cuda_f32_to_bf16, (ns_cuda_ctx * ctx, const float *x, uint16_t *y,     \
                                          size_t n), (ctx, x, y, n))                           \
    X(S, ns_status, ns_cuda_kmeans_assign, (const float *x, size_t n, int d, const float *c,  \
                                            int k, int *assign, float *dist2),                 \
      (x, n, d, c, k, assign, dist2))                                                          \
    X(S, ns_status, ns_cuda_kmeans_fit, (const float *x, size_t n, int d,                     \
                                         const ns_kmeans_opts *o, ns_kmeans_result *r),        \
      (x, n, d, o, r))                                                                         \
    X(S, ns_status, ns_cuda_knn_search, (const float *q, size_t nq, const float *b,           \
                                         size_t nb, int d, int k, const int64_t *qgroup,       \
                                         const int64_t *bgroup, int threads, float *dist,      \
                                         int64_t *idx),                                        \
      (q, nq, b, nb, d, k, qgroup, bgroup, threads, dist, idx))                                \
    X(S, ns_status, ns_cuda_mmd_block_sums, (const float *x, size_t n, int d,                 \
                                             const size_t *off, size_t nblocks, double sigma,  \
                                             int threads, double *S),                          \
      (x, n, d, off, nblocks, sigma, threads, S))                                              \
    X(V, void, ns_cuda_detect_release, (void), ())                                            \
    X(S, ns_status, ns_cuda_sm_objective, (ns_cuda_ctx * ctx, const float *x, const int32_t *y, \
                                           const float *sw, size_t n, int d, int C,             \
                                           const float *w, const float *b, float *z,            \
                                           float *loss, float *gw, float *gb),                  \
      (ctx, x, y, sw, n, d, C, w, b, z, loss, gw, gb))                                          \
    X(S, ns_status, ns_cuda_mlp_grad, (ns_cuda_ctx * ctx, const float *x, const int32_t *y,     \
                                       const float *sw, int B, int d, int H, int C,             \
                                       const float *w1, const float *b1, const float *w,        \
                                       const float *b, float *h, float *dh, float *z,           \
                                       float *loss, float *gw1, float *gb1, float *gw,          \
                                       float *gb),                                              \
      (ctx, x, y, sw, B, d, H, C, w1, b1, w, b, h, dh, z, loss, gw1, gb1, gw, gb))              \
    X(S, ns_status, ns_cuda_adam, (ns_cuda_ctx * ctx, float *p, const float *g, float *m,       \
                                   float *v, size_t n, float l2, double lr_t, double vcorr),    \
      (ctx, p, g, m, v, n, l2, lr_t, vcorr))                                                    \
    X(S, ns_status, ns_cuda_gather_rows, (ns_cuda_ctx * ctx, const float *src,                  \
                                          const int32_t *idx, size_t n, int d, float *dst),     \
      (ctx, src, idx, n, d, dst))

#define NS_CUDA_API_FIELD(kind, ret, name, params, args) ret(*name) params;
typedef struct ns_cuda_api {
    int version; /* NS_CUDA_API_VERSION of the module */
    size_t size; /* sizeof(ns_cuda_api) in the module */
    NS_CUDA_API(NS_CUDA_API_FIELD)
} ns_cuda_api;
#undef NS_CUDA_API_FIELD

/* What the module calls back into the binary for: its messages must land in
 * the caller's thread-local error slot, and the CUDA k-means shares the CPU
 * k-means' argument checks and empty-cluster repair.  Passing them in keeps
 * the module free of undefined symbols, so any binary can load it. */
typedef struct ns_cuda_host {
    int version; /* NS_CUDA_API_VERSION of the binary */
    ns_status (*error)(ns_status code, const char *fmt, ...);
    ns_status (*kmeans_check_assign)(const char *where, const float *x, size_t n, int d,
                                     const float *c, int k, const void *out);
    ns_status (*kmeans_check_fit)(const char *where, const float *x, size_t n, int d,
                                  const ns_kmeans_opts *o);
    ns_status (*kmeans_fit)(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                            ns_kmeans_result *r);
    void (*kmeans_repair)(const float *x, size_t n, int d, int k, int *assign, double *dist,
                          size_t *counts, double *sums);
    void (*kmeans_result_release)(ns_kmeans_result *r);
} ns_cuda_host;

/* The module's one exported symbol: its table, or NULL when host->version
 * differs from the module's. */
#define NS_CUDA_MODULE_ENTRY "ns_cuda_module_api"
typedef const ns_cuda_api *(*ns_cuda_module_entry)(const ns_cuda_host *host);

#endif
