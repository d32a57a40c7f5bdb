/* Private to src/embed/exec*.c: the operator table an executor dispatches
 * through.  One table per device, chosen once in ns_exec_create; every entry
 * has the ns_cuda_* shape (a context, a status) so the run loop is the same
 * for all devices.  Host tables ignore ctx and always succeed. */
#ifndef NIGHTSHIFT_EXEC_INTERNAL_H
#define NIGHTSHIFT_EXEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/ops.h"
#include "nightshift/status.h"

typedef struct ns_exec_backend {
    int on_device; /* 1: tensors live in device memory (upload/download needed) */
    ns_status (*alloc)(void **out, size_t bytes);
    void (*release)(void *p);
    /* Host -> tensor memory (a plain memcpy on the host). */
    ns_status (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Tensor memory -> host, complete on return. */
    ns_status (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    ns_status (*sync)(void *ctx);
    ns_status (*preprocess)(void *ctx, const ns_preproc *pp, const uint8_t *frames, int n, int S,
                            float *y);
    ns_status (*conv)(void *ctx, const ns_conv_params *p, const float *x, const float *w,
                      const float *bias, ns_act act, float *y, float *workspace);
    ns_status (*maxpool)(void *ctx, const ns_pool_params *p, const float *x, float *y);
    ns_status (*avgpool)(void *ctx, const ns_pool_params *p, const float *x, float *y);
    ns_status (*global_avgpool)(void *ctx, const float *x, int n, int c, int hw, float *y);
    ns_status (*act)(void *ctx, ns_act act, float *x, size_t n);
    ns_status (*add)(void *ctx, const float *a, const float *b, float *y, size_t n, ns_act act);
    ns_status (*mul_channel)(void *ctx, const float *x, const float *s, float *y, int n, int c,
                             int hw);
    ns_status (*gemm)(void *ctx, const float *x, const float *w, const float *bias, float *y,
                      int n, int k, int m, ns_act act);
    ns_status (*concat)(void *ctx, const float *const *x, const int *c, int k, int n, int hw,
                        float *y);
    ns_status (*l2norm)(void *ctx, float *x, int n, int d);
} ns_exec_backend;

extern const ns_exec_backend ns_exec_backend_ref;
extern const ns_exec_backend ns_exec_backend_cpu;
extern const ns_exec_backend ns_exec_backend_cuda; /* exec_cuda.c */

#endif
