// ops_internal.cuh -- what the embedding operators' .cu files share: the
// context, the launch geometry helpers, the activation, the bias/activation
// epilogue and the precision-aware GEMM (both defined in ops.cu).  CUDA C++
// only; not a public contract (ns_cuda.h is).
#ifndef NIGHTSHIFT_OPS_INTERNAL_CUH
#define NIGHTSHIFT_OPS_INTERNAL_CUH

#include <cuda_bf16.h>
#include <string.h>

#include "cuda_internal.cuh"

struct ns_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    ns_precision prec;         // of the conv and dense GEMMs
    const float *w_base;       // bf16: the fp32 weights mirrored (device), w_n floats
    size_t w_n;
    __nv_bfloat16 *w16;        // bf16: (w_n) the mirror
    __nv_bfloat16 *scratch16;  // bf16: (scratch_n) one GEMM's activations
    size_t scratch_n;
    int conv_single;           // one GEMM per round of images (conv2d), not batched
    int conv_wino;             // 3x3 stride-1 fp32 convs by Winograd F(2x2, 3x3)
    int conv_implicit;         // fp32 ungrouped convs by conv_implicit.cu: NS_CU_IMPLICIT_*
    cudaStream_t copy;         // ns_cuda_upload_ahead's stream (made on first use)
    cudaEvent_t ahead;         // recorded after its last copy
};

// ctx->conv_implicit: off; convs that would need an im2col; every ungrouped
// conv (1x1 stride-1 ones too, which otherwise read x as their col).
enum { NS_CU_IMPLICIT_OFF = 0, NS_CU_IMPLICIT_IM2COL = 1, NS_CU_IMPLICIT_ALL = 2 };

// NS_CUDA_CONV_IMPLICIT: "0" off, "1" the im2col convs only, else (unset,
// "all") every ungrouped conv.
static inline int ns_cu_implicit_setting(const char *v)
{
    if (v && strcmp(v, "0") == 0)
        return NS_CU_IMPLICIT_OFF;
    if (v && strcmp(v, "1") == 0)
        return NS_CU_IMPLICIT_IM2COL;
    return NS_CU_IMPLICIT_ALL;
}

#define USAGE_IF(cond, ...)                                                             \
    do {                                                                                \
        if (cond) {                                                                     \
            st = ns_error(NS_ERR_USAGE, __VA_ARGS__);                                   \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

// Grid for a grid-stride loop over n items: enough blocks to fill the GPU,
// capped so huge tensors loop instead of overflowing the grid.
static inline unsigned grid_for(size_t n)
{
    size_t b = (n + kThreads - 1) / kThreads;
    if (b == 0)
        b = 1;
    return (unsigned)(b < 65536 ? b : 65536);
}

__device__ __forceinline__ float act_apply(ns_act_kind kind, float a, float b, float v)
{
    switch (kind) {
    case NS_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case NS_ACT_CLIP:
        return fminf(fmaxf(v, a), b);
    case NS_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case NS_ACT_HARDSIGMOID:
        return fmaxf(0.0f, fminf(1.0f, a * v + b));
    case NS_ACT_HARDSWISH:
        return v * fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) / 6.0f;
    case NS_ACT_SILU:
        return v / (1.0f + expf(-v));
    default:
        return v;
    }
}

// Grid for a kernel looping over `planes` planes of `inner` items each:
// x over the items, y over the planes (both capped; the kernels stride).
// Threads per block for such a kernel: fewer than kThreads for short planes
// (7x7 maps of 49 would otherwise leave 4 of 5 threads idle).
static inline unsigned planes_threads(size_t inner)
{
    return inner >= (size_t)kThreads ? (unsigned)kThreads : (unsigned)((inner + 31) / 32 * 32);
}

static inline dim3 planes_grid(size_t planes, size_t inner)
{
    size_t t = planes_threads(inner);
    size_t bx = (inner + t - 1) / t;
    bx = bx < 1 ? 1 : bx > 1024 ? 1024 : bx;
    size_t by = planes < 1 ? 1 : planes > 65535 ? 65535 : planes;
    return dim3((unsigned)bx, (unsigned)by, 1);
}

// A column-major cuBLAS GEMM, strided-batched: C = op(A) . op(B), batch of them.
typedef struct gemm_args {
    cublasOperation_t ta, tb;
    int m, n, k;
    const float *a;
    int lda;
    long long sa;
    const float *b;
    int ldb;
    long long sb;
    float *c;
    int ldc;
    long long sc;
    int batch;
} ns_cu_gemm_args;

// y = act(y + bias[(i / inner) % channels]) over n values; bias may be NULL.
ns_status ns_cu_bias_act(ns_cuda_ctx *ctx, float *y, size_t n, const float *bias, size_t inner,
                         size_t channels, ns_act act);

// An ungrouped fp32 conv as one implicit GEMM, bias and activation fused
// (conv_implicit.cu); no workspace.
ns_status ns_cu_conv_implicit(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                              const float *w, const float *bias, ns_act act, float *y);

// g in the context's precision (ops.cu says how); act_is_a, act_elems and
// w_elems describe the operands for bf16.
ns_status ns_cu_gemm(ns_cuda_ctx *ctx, const ns_cu_gemm_args *g, int act_is_a, size_t act_elems,
                     size_t w_elems);

#endif
