// ops.cu -- the embedding operators on device (fp32), twins of ns_ref_* in ops.h.
//
// Convolutions are im2col over a round of images + cuBLAS SGEMM (one per
// round, or strided-batched over the images or over each image's groups; see
// ns_cuda_conv2d), except depthwise ones, which a direct kernel does in one pass.
// The conv and dense GEMMs may run in tf32 or bf16 (ns_cuda_ctx_set_precision);
// every other kernel here is fp32 whatever the precision.
// Bias and activation are fused into one epilogue pass over the output.
// Everything is queued on the context's stream; CUDA and cuBLAS errors become
// ns_error messages through cuda_internal.cuh, shared with the detect kernels.
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHERE "kernels/ops.cu"
#include "cuda_internal.cuh"
#include "wino.h"

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
};

#define USAGE_IF(cond, ...)                                                             \
    do {                                                                                \
        if (cond) {                                                                     \
            st = ns_error(NS_ERR_USAGE, __VA_ARGS__);                                   \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

// Grid for a grid-stride loop over n items: enough blocks to fill the GPU,
// capped so huge tensors loop instead of overflowing the grid.
static unsigned grid_for(size_t n)
{
    size_t b = (n + kThreads - 1) / kThreads;
    if (b == 0)
        b = 1;
    return (unsigned)(b < 65536 ? b : 65536);
}

// ---- activations ---------------------------------------------------------------

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

// y = act(x + bias[(i / inner) % channels]); bias may be NULL.  Serves as the
// conv epilogue (inner = h_out * w_out) and the gemm one (inner = 1).
__global__ void bias_act_kernel(float *y, size_t n, const float *bias, size_t inner,
                                size_t channels, ns_act_kind kind, float a, float b)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias)
            v += bias[(i / inner) % channels];
        y[i] = act_apply(kind, a, b, v);
    }
}

__global__ void add_kernel(const float *x, const float *z, float *y, size_t n, ns_act_kind kind,
                           float a, float b)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = act_apply(kind, a, b, x[i] + z[i]);
}

__global__ void mul_channel_kernel(const float *x, const float *s, float *y, size_t n, size_t hw)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] * s[i / hw];
}

// The same over planes of `inner` values (a conv's output maps): the channel
// comes once per plane and the index math is 32-bit, not a 64-bit division
// and modulo per element.
__global__ void bias_act_planes_kernel(float *y, unsigned planes, unsigned inner,
                                       const float *bias, unsigned channels, ns_act_kind kind,
                                       float a, float b)
{
    for (unsigned pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        float *yp = y + (size_t)pl * inner;
        float bv = bias ? bias[pl % channels] : 0.0f;
        for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < inner;
             q += gridDim.x * blockDim.x) {
            float v = yp[q];
            if (bias)
                v += bv;
            yp[q] = act_apply(kind, a, b, v);
        }
    }
}

// Grid for a kernel looping over `planes` planes of `inner` items each:
// x over the items, y over the planes (both capped; the kernels stride).
// Threads per block for such a kernel: fewer than kThreads for short planes
// (7x7 maps of 49 would otherwise leave 4 of 5 threads idle).
static unsigned planes_threads(size_t inner)
{
    return inner >= (size_t)kThreads ? (unsigned)kThreads : (unsigned)((inner + 31) / 32 * 32);
}

static dim3 planes_grid(size_t planes, size_t inner)
{
    size_t t = planes_threads(inner);
    size_t bx = (inner + t - 1) / t;
    bx = bx < 1 ? 1 : bx > 1024 ? 1024 : bx;
    size_t by = planes < 1 ? 1 : planes > 65535 ? 65535 : planes;
    return dim3((unsigned)bx, (unsigned)by, 1);
}

static ns_status bias_act(ns_cuda_ctx *ctx, float *y, size_t n, const float *bias, size_t inner,
                          size_t channels, ns_act act)
{
    ns_status st = NS_OK;
    if (n == 0 || (!bias && act.kind == NS_ACT_NONE))
        return NS_OK;
    if (inner >= 32 && n / inner <= 0xFFFFFFFFu && inner <= 0xFFFFFFFFu) {
        bias_act_planes_kernel<<<planes_grid(n / inner, inner), planes_threads(inner), 0,
                                 ctx->stream>>>(
            y, (unsigned)(n / inner), (unsigned)inner, bias, (unsigned)channels, act.kind, act.a,
            act.b);
    } else {
        bias_act_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(y, n, bias, inner, channels,
                                                                   act.kind, act.a, act.b);
    }
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

// ---- context and memory ----------------------------------------------------------

extern "C" ns_status ns_cuda_ctx_create(int device, ns_cuda_ctx **out)
{
    ns_status st = NS_OK;
    ns_cuda_ctx *c = (ns_cuda_ctx *)calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return ns_error(NS_ERR_NOMEM, "kernels/ops.cu: CUDA context: out of memory");
    c->device = device;
    CUDA_TRY(cudaSetDevice(device));
    CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    BLAS_TRY(cublasCreate(&c->blas));
    BLAS_TRY(cublasSetStream(c->blas, c->stream));
    // Full fp32 SGEMM, stated rather than assumed: TF32 tensor cores would miss
    // the reference by ~1e-3.
    BLAS_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    {
        // Which GEMM form conv2d uses (see there); a tuning knob for A/B
        // timings on a new GPU, not a correctness one: both pass the parity tests.
        const char *g = getenv("NS_CUDA_CONV_GEMM");
        c->conv_single = !(g && strcmp(g, "batched") == 0);
        const char *wg = getenv("NS_CUDA_CONV_WINOGRAD");
        c->conv_wino = wg && strcmp(wg, "1") == 0;
    }
    *out = c;
    c = NULL;
done:
    ns_cuda_ctx_free(c);
    return st;
}

extern "C" int ns_cuda_ctx_winograd(const ns_cuda_ctx *ctx) { return ctx && ctx->conv_wino; }

extern "C" void ns_cuda_ctx_free(ns_cuda_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->w16)
        cudaFree(ctx->w16);
    if (ctx->scratch16)
        cudaFree(ctx->scratch16);
    if (ctx->stream) {
        cudaStreamSynchronize(ctx->stream);
        cudaStreamDestroy(ctx->stream);
    }
    free(ctx);
}

extern "C" ns_status ns_cuda_ctx_sync(ns_cuda_ctx *ctx)
{
    ns_status st = NS_OK;
    CUDA_TRY(cudaStreamSynchronize(ctx->stream));
done:
    return st;
}

extern "C" ns_status ns_cuda_malloc(void **out, size_t bytes)
{
    ns_status st = NS_OK;
    *out = NULL;
    CUDA_TRY(cudaMalloc(out, bytes > 0 ? bytes : 4));
done:
    if (st != NS_OK)
        *out = NULL;
    return st;
}

extern "C" void ns_cuda_free(void *dev)
{
    if (dev)
        cudaFree(dev);
}

extern "C" ns_status ns_cuda_host_alloc(void **out, size_t bytes)
{
    ns_status st = NS_OK;
    *out = NULL;
    CUDA_TRY(cudaMallocHost(out, bytes > 0 ? bytes : 4));
done:
    if (st != NS_OK)
        *out = NULL;
    return st;
}

extern "C" void ns_cuda_host_free(void *host)
{
    if (host)
        cudaFreeHost(host);
}

extern "C" ns_status ns_cuda_upload(ns_cuda_ctx *ctx, void *dev, const void *host, size_t bytes)
{
    ns_status st = NS_OK;
    if (bytes > 0)
        CUDA_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, ctx->stream));
done:
    return st;
}

extern "C" ns_status ns_cuda_download(ns_cuda_ctx *ctx, void *host, const void *dev, size_t bytes)
{
    ns_status st = NS_OK;
    if (bytes > 0)
        CUDA_TRY(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    CUDA_TRY(cudaStreamSynchronize(ctx->stream));
done:
    return st;
}

// ---- convolution ------------------------------------------------------------------

static bool conv_is_pointwise(const ns_conv_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
}

static bool conv_is_depthwise(const ns_conv_params *p)
{
    return p->groups > 1 && p->groups == p->c_in;
}

// GEMM operand floats of one image: its col, or x itself for a pointwise conv
// (then c_in * h * w, the same count).
static size_t conv_operand_floats(const ns_conv_params *p)
{
    return (size_t)p->c_in * p->kh * p->kw * p->h_out * p->w_out;
}

// Workspace floats per image: the col, then (single-GEMM form) the GEMM's
// output in (c_out, images * P) order before it is scattered to NCHW.
static size_t conv_ws_per_image(const ns_conv_params *p)
{
    return conv_operand_floats(p) + (size_t)p->c_out * p->h_out * p->w_out;
}

// Images per im2col + GEMM round.  One image per round made resnet18 launch
// ~10,000 small kernels and GEMMs per batch of 256 (0.18x PyTorch on an H200);
// a round covers as many images as kConvScratchFloats (512 MB) of col holds,
// so most layers of a batch of 256 take 1-8 rounds.  A pure function of p:
// the workspace sized for the largest batch serves every smaller one.
static const size_t kConvScratchFloats = (size_t)1 << 27;

static int conv_chunk(const ns_conv_params *p)
{
    size_t per = conv_ws_per_image(p);
    size_t c = per ? kConvScratchFloats / per : (size_t)p->n;
    if (c < 1)
        c = 1;
    if (c > (size_t)p->n)
        c = (size_t)p->n;
    return (int)c;
}

// Winograd: 2x2 output tiles per image, and the workspace per image (V, then
// M: 16 values per tile and input / output channel).  The filter transform U
// (16 * c_out * c_in) sits in front of them.
static size_t wino_tiles(const ns_conv_params *p)
{
    return (size_t)((p->h_out + 1) / 2) * (size_t)((p->w_out + 1) / 2);
}

static size_t wino_per_image(const ns_conv_params *p)
{
    return 16 * ((size_t)p->c_in + p->c_out) * wino_tiles(p);
}

static int wino_chunk(const ns_conv_params *p)
{
    size_t c = kConvScratchFloats / wino_per_image(p);
    if (c < 1)
        c = 1;
    if (c > (size_t)p->n)
        c = (size_t)p->n;
    return (int)c;
}

extern "C" size_t ns_cuda_conv_workspace_floats(const ns_conv_params *p)
{
    if (conv_is_depthwise(p) || conv_is_pointwise(p) || p->n < 1)
        return 0;
    size_t ws = conv_ws_per_image(p) * (size_t)conv_chunk(p);
    if (ns_conv_winograd_ok(p)) { // whether a context uses it is decided later
        size_t wino = 16 * (size_t)p->c_out * p->c_in + wino_per_image(p) * (size_t)wino_chunk(p);
        ws = wino > ws ? wino : ws;
    }
    return ws;
}

// ---- reduced precision ------------------------------------------------------------

__global__ void f32_to_bf16_kernel(const float *x, __nv_bfloat16 *y, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

static ns_status to_bf16(ns_cuda_ctx *ctx, const float *x, __nv_bfloat16 *y, size_t n)
{
    ns_status st = NS_OK;
    if (n == 0)
        return NS_OK;
    f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(x, y, n);
    LAUNCHED();
done:
    return st;
}

extern "C" ns_status ns_cuda_f32_to_bf16(ns_cuda_ctx *ctx, const float *x, uint16_t *y, size_t n)
{
    return to_bf16(ctx, x, (__nv_bfloat16 *)y, n);
}

extern "C" size_t ns_cuda_bf16_conv_elems(const ns_conv_params *p)
{
    // The activation operand of one round of images (conv_chunk).
    if (conv_is_depthwise(p) || p->n < 1)
        return 0;
    return conv_operand_floats(p) * (size_t)conv_chunk(p);
}

extern "C" ns_status ns_cuda_ctx_set_precision(ns_cuda_ctx *ctx, ns_precision prec,
                                               const float *weights, size_t n_weights,
                                               size_t scratch_elems)
{
    ns_status st = NS_OK;
    USAGE_IF(prec != NS_PREC_FP32 && prec != NS_PREC_TF32 && prec != NS_PREC_BF16,
             "kernels/ops.cu: unknown precision %d", (int)prec);
    if (ctx->w16)
        cudaFree(ctx->w16);
    if (ctx->scratch16)
        cudaFree(ctx->scratch16);
    ctx->w16 = ctx->scratch16 = NULL;
    ctx->w_base = NULL;
    ctx->w_n = ctx->scratch_n = 0;
    ctx->prec = NS_PREC_FP32;
    if (prec == NS_PREC_BF16) {
        USAGE_IF(!weights && n_weights > 0, "kernels/ops.cu: bf16: no weights to mirror");
        CUDA_TRY(cudaMalloc((void **)&ctx->w16, (n_weights ? n_weights : 1) * 2));
        CUDA_TRY(cudaMalloc((void **)&ctx->scratch16, (scratch_elems ? scratch_elems : 1) * 2));
        NS_TRY(to_bf16(ctx, weights, ctx->w16, n_weights));
        ctx->w_base = weights;
        ctx->w_n = n_weights;
        ctx->scratch_n = scratch_elems;
    }
    ctx->prec = prec;
done:
    return st;
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
} gemm_args;

// g in tf32 or bf16.  One of A and B holds activations (act_is_a), act_elems
// floats in all (every batch entry), the other weights, w_elems floats.  In
// bf16 the activations go to the context's scratch and the weights come from
// its mirror; output and accumulation stay fp32 (CUBLAS_COMPUTE_32F).
static ns_status gemm_reduced(ns_cuda_ctx *ctx, const gemm_args *g, int act_is_a,
                              size_t act_elems, size_t w_elems)
{
    ns_status st = NS_OK;
    const float alpha = 1.0f, beta = 0.0f;
    if (ctx->prec == NS_PREC_TF32) {
        BLAS_TRY(cublasGemmStridedBatchedEx(
            ctx->blas, g->ta, g->tb, g->m, g->n, g->k, &alpha, g->a, CUDA_R_32F, g->lda, g->sa,
            g->b, CUDA_R_32F, g->ldb, g->sb, &beta, g->c, CUDA_R_32F, g->ldc, g->sc, g->batch,
            CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    } else {
        const float *act = act_is_a ? g->a : g->b, *w = act_is_a ? g->b : g->a;
        uintptr_t wp = (uintptr_t)w, base = (uintptr_t)ctx->w_base;
        USAGE_IF(act_elems > ctx->scratch_n,
                 "kernels/ops.cu: bf16: a GEMM needs %zu activation values, the scratch "
                 "holds %zu", act_elems, ctx->scratch_n);
        USAGE_IF(wp < base || (wp - base) / sizeof(float) + w_elems > ctx->w_n,
                 "kernels/ops.cu: bf16: weights outside the mirrored array");
        NS_TRY(to_bf16(ctx, act, ctx->scratch16, act_elems));
        const __nv_bfloat16 *w16 = ctx->w16 + (wp - base) / sizeof(float);
        const void *a = act_is_a ? (const void *)ctx->scratch16 : (const void *)w16;
        const void *b = act_is_a ? (const void *)w16 : (const void *)ctx->scratch16;
        BLAS_TRY(cublasGemmStridedBatchedEx(
            ctx->blas, g->ta, g->tb, g->m, g->n, g->k, &alpha, a, CUDA_R_16BF, g->lda, g->sa,
            b, CUDA_R_16BF, g->ldb, g->sb, &beta, g->c, CUDA_R_32F, g->ldc, g->sc, g->batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
done:
    return st;
}

// ---- convolution, continued ------------------------------------------------------

// col of a round of images (grid z): row r = (ci, ky, kx) of c_in * kh * kw
// rows (grid y) holds the P = h_out * w_out taps of that filter position
// (grid x, so writes coalesce).  Element (img, r, q) goes to
// col[img * img_stride + r * row_stride + q]: (P) for one image's (rows, P)
// block after another, or (P, images * P) for one (rows, images * P) matrix.
// 32-bit index math within an image.  (Replacing the flat version's 64-bit
// divisions made no measurable difference on resnet18 on an H200: the
// layers' time is in the GEMMs and the col traffic.)
__global__ void im2col_kernel(const float *x, float *col, size_t img_stride, size_t row_stride,
                              int c_in, int h, int w, int kh, int kw, int sh, int sw, int pt,
                              int pl, int dh, int dw, int h_out, int w_out)
{
    int P = h_out * w_out, rows = c_in * kh * kw;
    size_t img = blockIdx.z;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        int kx = r % kw, ky = (r / kw) % kh, ci = r / (kw * kh);
        const float *xp = x + (img * c_in + ci) * (size_t)h * w;
        float *cp = col + img * img_stride + (size_t)r * row_stride;
        int y0 = ky * dh - pt, x0 = kx * dw - pl;
        for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < P; q += gridDim.x * blockDim.x) {
            int oy = q / w_out, ox = q - oy * w_out;
            int iy = oy * sh + y0, ix = ox * sw + x0;
            cp[q] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? xp[iy * w + ix] : 0.0f;
        }
    }
}

// y (images, c_out, P) = act(t + bias) from t (c_out, images * P): the
// single-GEMM form's epilogue, bias and activation fused into the reorder.
__global__ void scatter_bias_act_kernel(const float *t, float *y, unsigned planes, int imgs,
                                        int c_out, int P, const float *bias, ns_act_kind kind,
                                        float a, float b)
{
    for (unsigned pn = blockIdx.y; pn < planes; pn += gridDim.y) {
        int oc = (int)(pn % (unsigned)c_out), img = (int)(pn / (unsigned)c_out);
        const float *tp = t + ((size_t)oc * imgs + img) * P;
        float *yp = y + (size_t)pn * P;
        float bv = bias ? bias[oc] : 0.0f;
        for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < P; q += gridDim.x * blockDim.x) {
            float v = tp[q];
            if (bias)
                v += bv;
            yp[q] = act_apply(kind, a, b, v);
        }
    }
}

// ---- Winograd F(2x2, 3x3) (wino.h; plain C twin: ns_ref_conv2d_winograd) -------------

// U[xi][k][c] = (G g G^T)[xi] for the filter of output k and input c.
__global__ void wino_filter_kernel(const float *w, float *U, size_t kc)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < kc;
         i += (size_t)gridDim.x * blockDim.x) {
        float u[16];
        ns_wino_filter(w + i * 9, u);
        for (int xi = 0; xi < 16; xi++)
            U[(size_t)xi * kc + i] = u[xi];
    }
}

// V[xi][c][t] = (B^T d B)[xi] for tile t = img * tiles + q of a round of
// images; grid y over (image, channel) planes, x over the plane's tiles.
__global__ void wino_input_kernel(const float *x, float *V, unsigned planes, int C, int H, int W,
                                  int pt, int pl, int th, int tw, size_t T)
{
    int tiles = th * tw;
    for (unsigned pn = blockIdx.y; pn < planes; pn += gridDim.y) {
        int c = (int)(pn % (unsigned)C);
        size_t img = pn / (unsigned)C;
        const float *xp = x + (img * C + c) * (size_t)H * W;
        for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < tiles;
             q += gridDim.x * blockDim.x) {
            int ty = q / tw, tx = q - ty * tw;
            float d[16], v[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    int iy = 2 * ty - pt + i, ix = 2 * tx - pl + j;
                    d[i * 4 + j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? xp[iy * W + ix] : 0.0f;
                }
            ns_wino_input(d, v);
            size_t t = img * tiles + q;
            for (int xi = 0; xi < 16; xi++)
                V[((size_t)xi * C + c) * T + t] = v[xi];
        }
    }
}

// y = act(A^T m A + bias) from M[xi][k][t]; grid y over (image, output
// channel) planes, x over the plane's tiles; edge tiles drop what falls outside.
__global__ void wino_output_kernel(const float *M, float *y, unsigned planes, int K, int Ho,
                                   int Wo, int th, int tw, size_t T, const float *bias,
                                   ns_act_kind kind, float a, float b)
{
    int tiles = th * tw;
    for (unsigned pn = blockIdx.y; pn < planes; pn += gridDim.y) {
        int k = (int)(pn % (unsigned)K);
        size_t img = pn / (unsigned)K;
        float *yp = y + (img * K + k) * (size_t)Ho * Wo;
        float bv = bias ? bias[k] : 0.0f;
        for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < tiles;
             q += gridDim.x * blockDim.x) {
            int ty = q / tw, tx = q - ty * tw;
            size_t t = img * tiles + q;
            float m[16], o[4];
            for (int xi = 0; xi < 16; xi++)
                m[xi] = M[((size_t)xi * K + k) * T + t];
            ns_wino_output(m, o);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    int oy = 2 * ty + i, ox = 2 * tx + j;
                    if (oy < Ho && ox < Wo) {
                        float v = o[i * 2 + j];
                        if (bias)
                            v += bv;
                        yp[oy * Wo + ox] = act_apply(kind, a, b, v);
                    }
                }
        }
    }
}

// The Winograd conv: U once, then per round of images V, the 16 GEMMs
// M_xi (K, T) = U_xi (K, C) . V_xi (C, T) as one strided-batched SGEMM, and
// the output transform.  fp32 only.
static ns_status conv_winograd(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                               const float *w, const float *bias, ns_act act, float *y,
                               float *workspace)
{
    ns_status st = NS_OK;
    const int C = p->c_in, K = p->c_out;
    const int th = (p->h_out + 1) / 2, tw = (p->w_out + 1) / 2;
    const size_t tiles = (size_t)th * tw, kc = (size_t)K * C;
    const size_t in_img = (size_t)C * p->h * p->w, out_img = (size_t)K * p->h_out * p->w_out;
    const int chunk = wino_chunk(p);
    const float alpha = 1.0f, beta = 0.0f;
    float *U = workspace, *V = workspace + 16 * kc;
    wino_filter_kernel<<<grid_for(kc), kThreads, 0, ctx->stream>>>(w, U, kc);
    CUDA_TRY(cudaGetLastError());
    for (int i0 = 0; i0 < p->n; i0 += chunk) {
        int imgs = p->n - i0 < chunk ? p->n - i0 : chunk;
        size_t T = tiles * (size_t)imgs;
        float *M = V + 16 * (size_t)C * T;
        wino_input_kernel<<<planes_grid((size_t)imgs * C, tiles), planes_threads(tiles), 0,
                            ctx->stream>>>(x + (size_t)i0 * in_img, V, (unsigned)((size_t)imgs * C),
                                           C, p->h, p->w, p->pad_top, p->pad_left, th, tw, T);
        CUDA_TRY(cudaGetLastError());
        // Row-major M_xi (K, T) = U_xi (K, C) . V_xi (C, T); column-major
        // cuBLAS: M_xi^T (T, K) = V_xi^T (T, C) . U_xi^T (C, K).
        BLAS_TRY(cublasSgemmStridedBatched(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)T, K, C,
                                           &alpha, V, (int)T, (long long)C * (long long)T, U, C,
                                           (long long)kc, &beta, M, (int)T,
                                           (long long)K * (long long)T, 16));
        wino_output_kernel<<<planes_grid((size_t)imgs * K, tiles), planes_threads(tiles), 0,
                             ctx->stream>>>(M, y + (size_t)i0 * out_img,
                                            (unsigned)((size_t)imgs * K), K, p->h_out, p->w_out,
                                            th, tw, T, bias, act.kind, act.a, act.b);
        CUDA_TRY(cudaGetLastError());
    }
done:
    return st;
}

// One thread per output of a depthwise conv (groups == c_in; c_out may be a
// multiple of c_in), bias and activation fused; grid y over the output planes
// (image, channel), x along a plane, 32-bit index math within a plane.
__global__ void depthwise_kernel(const float *x, const float *wt, const float *bias, float *y,
                                 unsigned planes, int c_in, int h, int w, int c_out, int kh,
                                 int kw, int sh, int sw, int pt, int pl, int dh, int dw,
                                 int h_out, int w_out, ns_act_kind kind, float a, float b)
{
    int P = h_out * w_out, mult = c_out / c_in;
    for (unsigned pn = blockIdx.y; pn < planes; pn += gridDim.y) {
        int oc = (int)(pn % (unsigned)c_out);
        size_t img = pn / (unsigned)c_out;
        const float *xp = x + (img * c_in + oc / mult) * (size_t)h * w;
        const float *wp = wt + (size_t)oc * kh * kw;
        float *yp = y + (size_t)pn * P;
        for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < P; q += gridDim.x * blockDim.x) {
            int oy = q / w_out, ox = q - oy * w_out;
            float acc = 0.0f;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh - pt + ky * dh;
                if (iy < 0 || iy >= h)
                    continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * sw - pl + kx * dw;
                    if (ix >= 0 && ix < w)
                        acc += xp[iy * w + ix] * wp[ky * kw + kx];
                }
            }
            if (bias)
                acc += bias[oc];
            yp[q] = act_apply(kind, a, b, acc);
        }
    }
}

extern "C" ns_status ns_cuda_conv2d(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                                    const float *w, const float *bias, ns_act act, float *y,
                                    float *workspace)
{
    ns_status st = NS_OK;
    size_t P = (size_t)p->h_out * p->w_out;
    size_t out_total = (size_t)p->n * p->c_out * P;
    USAGE_IF(p->groups < 1 || p->c_in % p->groups || p->c_out % p->groups || p->h_out < 1 ||
                 p->w_out < 1,
             "kernels/ops.cu: conv2d: parameters not prepared (groups %d, c_in %d, c_out %d, "
             "out %dx%d)",
             p->groups, p->c_in, p->c_out, p->h_out, p->w_out);
    if (out_total == 0)
        goto done;
    if (conv_is_depthwise(p)) {
        depthwise_kernel<<<planes_grid((size_t)p->n * p->c_out, P), planes_threads(P), 0,
                           ctx->stream>>>(
            x, w, bias, y, (unsigned)((size_t)p->n * p->c_out), p->c_in, p->h, p->w, p->c_out,
            p->kh, p->kw, p->stride_h,
            p->stride_w, p->pad_top, p->pad_left, p->dil_h, p->dil_w, p->h_out, p->w_out,
            act.kind, act.a, act.b);
        CUDA_TRY(cudaGetLastError());
        goto done;
    }
    if (ctx->conv_wino && ctx->prec == NS_PREC_FP32 && ns_conv_winograd_ok(p)) {
        USAGE_IF(!workspace, "kernels/ops.cu: conv2d: no workspace (%zu floats needed)",
                 ns_cuda_conv_workspace_floats(p));
        st = conv_winograd(ctx, p, x, w, bias, act, y, workspace);
        goto done;
    }
    {
        bool pointwise = conv_is_pointwise(p);
        USAGE_IF(!pointwise && !workspace,
                 "kernels/ops.cu: conv2d: no workspace (%zu floats needed)",
                 ns_cuda_conv_workspace_floats(p));
        int G = p->groups;
        int cog = p->c_out / G, cig = p->c_in / G;
        int K = cig * p->kh * p->kw;
        size_t in_img = (size_t)p->c_in * p->h * p->w;
        size_t per = conv_operand_floats(p), out_img = (size_t)p->c_out * P;
        int chunk = conv_chunk(p);
        const float alpha = 1.0f, beta = 0.0f;
        // Two GEMM forms (ctx->conv_single; NS_CUDA_CONV_GEMM=batched picks the
        // second), measured against each other in tools/gpu_check.sh:
        //  - single: the round's col as one (K, images * P) matrix and one GEMM
        //    (c_out, K) x (K, images * P), then a reorder to NCHW that also adds
        //    the bias and applies the activation.  Small maps (7x7 = 49) make
        //    poor GEMM tiles on their own;
        //  - batched: per image (K, P) blocks and one strided-batched GEMM over
        //    the images (the weights' stride 0) writing NCHW directly.
        // With groups, or a pointwise conv (x is its own col), it is batched
        // over the groups of each image / over the images.
        int single = ctx->conv_single && G == 1 && !pointwise;
        bool fused_epilogue = false;
        for (int i0 = 0; i0 < p->n; i0 += chunk) {
            int imgs = p->n - i0 < chunk ? p->n - i0 : chunk;
            // a 1x1 stride-1 unpadded conv reads x as its col
            const float *col = x + (size_t)i0 * in_img;
            if (!pointwise) {
                dim3 grid = planes_grid((size_t)p->c_in * p->kh * p->kw, P);
                grid.z = (unsigned)imgs;
                size_t img_stride = single ? P : per, row_stride = single ? P * (size_t)imgs : P;
                im2col_kernel<<<grid, planes_threads(P), 0, ctx->stream>>>(
                    col, workspace, img_stride, row_stride, p->c_in, p->h, p->w, p->kh, p->kw,
                    p->stride_h, p->stride_w, p->pad_top, p->pad_left, p->dil_h, p->dil_w,
                    p->h_out, p->w_out);
                CUDA_TRY(cudaGetLastError());
                col = workspace;
            }
            if (single) {
                // Row-major t (c_out, M) = w (c_out, K) . col (K, M), M = images * P;
                // column-major cuBLAS: t^T (M, c_out) = col^T . w^T.
                int M = (int)(P * (size_t)imgs);
                float *t = workspace + per * (size_t)imgs;
                if (ctx->prec == NS_PREC_FP32) {
                    BLAS_TRY(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, M, p->c_out, K,
                                         &alpha, col, M, w, K, &beta, t, M));
                } else {
                    gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, M, p->c_out, K, col, M, 0,
                                   w, K, 0, t, M, 0, 1};
                    NS_TRY(gemm_reduced(ctx, &g, 1, per * (size_t)imgs, (size_t)p->c_out * K));
                }
                size_t planes = (size_t)imgs * p->c_out;
                scatter_bias_act_kernel<<<planes_grid(planes, P), planes_threads(P), 0,
                                          ctx->stream>>>(t, y + (size_t)i0 * out_img,
                                                         (unsigned)planes, imgs, p->c_out,
                                                         (int)P, bias, act.kind, act.a, act.b);
                CUDA_TRY(cudaGetLastError());
                fused_epilogue = true;
                continue;
            }
            // Row-major y_g (cog, P) = w_g (cog, K) . col_g (K, P); cuBLAS is
            // column-major, so compute y_g^T (P, cog) = col_g^T . w_g^T.
            int G1 = G == 1;
            for (int j = 0; j < (G1 ? 1 : imgs); j++) {
                const float *a = col + (size_t)j * per;
                float *c = y + (size_t)(i0 + j) * out_img;
                long long sa = G1 ? (long long)per : (long long)K * (long long)P;
                long long sb = G1 ? 0 : (long long)cog * K;
                long long sc = G1 ? (long long)out_img : (long long)cog * (long long)P;
                int batch = G1 ? imgs : G;
                if (ctx->prec == NS_PREC_FP32) {
                    BLAS_TRY(cublasSgemmStridedBatched(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N,
                                                       (int)P, cog, K, &alpha, a, (int)P, sa,
                                                       w, K, sb, &beta, c, (int)P, sc, batch));
                } else {
                    gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, (int)P, cog, K, a, (int)P, sa,
                                   w, K, sb, c, (int)P, sc, batch};
                    NS_TRY(gemm_reduced(ctx, &g, 1, G1 ? per * (size_t)imgs : per,
                                        (size_t)p->c_out * K));
                }
            }
        }
        if (!fused_epilogue)
            st = bias_act(ctx, y, out_total, bias, P, (size_t)p->c_out, act);
    }
done:
    return st;
}

// ---- pooling -------------------------------------------------------------------------

// One thread per output.  Windows follow PyTorch/ONNX: they are clipped to
// the padded input (ceil_mode windows may run past it); max ignores padding;
// average divides by the padded window (count_include_pad) or by the input
// cells it covers.  ns_pool_prepare keeps every window on at least one cell.
__global__ void pool_kernel(const float *x, float *y, int n, int c, int h, int w, int kh, int kw,
                            int sh, int sw, int pt, int pl, int pb, int pr, int h_out, int w_out,
                            int is_max, int count_include_pad)
{
    size_t total = (size_t)n * c * h_out * w_out;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % w_out);
        int oy = (int)((i / w_out) % h_out);
        size_t plane = i / ((size_t)w_out * h_out);
        const float *xp = x + plane * (size_t)h * w;
        int y0 = oy * sh - pt, x0 = ox * sw - pl;
        int y1 = min(y0 + kh, h + pb), x1 = min(x0 + kw, w + pr);
        int padded = (y1 - y0) * (x1 - x0);
        y0 = max(y0, 0);
        x0 = max(x0, 0);
        y1 = min(y1, h);
        x1 = min(x1, w);
        float acc = is_max ? -INFINITY : 0.0f;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++) {
                float v = xp[(size_t)yy * w + xx];
                acc = is_max ? fmaxf(acc, v) : acc + v;
            }
        if (!is_max) {
            int cnt = count_include_pad ? padded : (y1 - y0) * (x1 - x0);
            acc = cnt > 0 ? acc / (float)cnt : 0.0f;
        }
        y[i] = acc;
    }
}

static ns_status pool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x, float *y,
                      int is_max)
{
    ns_status st = NS_OK;
    size_t total = (size_t)p->n * p->c * p->h_out * p->w_out;
    if (total == 0)
        return NS_OK;
    pool_kernel<<<grid_for(total), kThreads, 0, ctx->stream>>>(
        x, y, p->n, p->c, p->h, p->w, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_top,
        p->pad_left, p->pad_bottom, p->pad_right, p->h_out, p->w_out, is_max,
        p->count_include_pad);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

extern "C" ns_status ns_cuda_maxpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x,
                                     float *y)
{
    return pool(ctx, p, x, y, 1);
}

extern "C" ns_status ns_cuda_avgpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x,
                                     float *y)
{
    return pool(ctx, p, x, y, 0);
}

// Sum of v over the block, valid in every thread (blockDim.x a multiple of 32).
__device__ float block_sum(float v)
{
    __shared__ float warp_sums[32];
    __shared__ float total;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int nwarps = (int)(blockDim.x >> 5);
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0)
            total = v;
    }
    __syncthreads();
    return total;
}

// One block per row of x (rows, len): y[row] = mean.
__global__ void row_mean_kernel(const float *x, float *y, size_t rows, int len)
{
    for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * (size_t)len;
        float s = 0.0f;
        for (int j = threadIdx.x; j < len; j += blockDim.x)
            s += xr[j];
        s = block_sum(s);
        if (threadIdx.x == 0)
            y[r] = s / (float)len;
        __syncthreads(); // block_sum's shared total is reused by the next row
    }
}

extern "C" ns_status ns_cuda_global_avgpool(ns_cuda_ctx *ctx, const float *x, int n, int c,
                                            int hw, float *y)
{
    ns_status st = NS_OK;
    size_t rows = (size_t)n * c;
    USAGE_IF(hw < 1, "kernels/ops.cu: global_avgpool: empty planes (hw %d)", hw);
    if (rows == 0)
        goto done;
    row_mean_kernel<<<(unsigned)(rows < 65536 ? rows : 65536), kThreads, 0, ctx->stream>>>(
        x, y, rows, hw);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

// ---- elementwise ----------------------------------------------------------------------

extern "C" ns_status ns_cuda_act(ns_cuda_ctx *ctx, ns_act act, float *x, size_t n)
{
    return bias_act(ctx, x, n, NULL, 1, 1, act);
}

extern "C" ns_status ns_cuda_add(ns_cuda_ctx *ctx, const float *a, const float *b, float *y,
                                 size_t n, ns_act act)
{
    ns_status st = NS_OK;
    if (n == 0)
        return NS_OK;
    add_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(a, b, y, n, act.kind, act.a, act.b);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

extern "C" ns_status ns_cuda_mul_channel(ns_cuda_ctx *ctx, const float *x, const float *s,
                                         float *y, int n, int c, int hw)
{
    ns_status st = NS_OK;
    size_t total = (size_t)n * c * hw;
    if (total == 0)
        return NS_OK;
    mul_channel_kernel<<<grid_for(total), kThreads, 0, ctx->stream>>>(x, s, y, total,
                                                                      (size_t)hw);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

// ---- dense -------------------------------------------------------------------------------

extern "C" ns_status ns_cuda_gemm(ns_cuda_ctx *ctx, const float *x, const float *w,
                                  const float *bias, float *y, int n, int k, int m, ns_act act)
{
    ns_status st = NS_OK;
    const float alpha = 1.0f, beta = 0.0f;
    if (n <= 0 || m <= 0)
        return NS_OK;
    if (k <= 0) {
        CUDA_TRY(cudaMemsetAsync(y, 0, (size_t)n * m * sizeof *y, ctx->stream));
    } else {
        // Row-major y (n, m) = x (n, k) . w^T: column-major y^T (m, n) = w . x^T,
        // where w (m, k) row-major is column-major (k, m), hence op T.
        if (ctx->prec == NS_PREC_FP32) {
            BLAS_TRY(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, w, k, x,
                                 k, &beta, y, m));
        } else {
            gemm_args g = {CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, w, k, 0, x, k, 0, y, m, 0, 1};
            NS_TRY(gemm_reduced(ctx, &g, 0, (size_t)n * k, (size_t)m * k));
        }
    }
    st = bias_act(ctx, y, (size_t)n * m, bias, 1, (size_t)m, act);
done:
    return st;
}

extern "C" ns_status ns_cuda_concat(ns_cuda_ctx *ctx, const float *const *x, const int *c, int k,
                                    int n, int hw, float *y)
{
    ns_status st = NS_OK;
    size_t total_c = 0, off = 0;
    for (int i = 0; i < k; i++)
        total_c += (size_t)c[i];
    // Each input is n rows of c_i * hw floats landing at channel offset off
    // of rows total_c * hw long: one 2-D copy per input.
    for (int i = 0; i < k && n > 0 && hw > 0; i++) {
        if (c[i] > 0)
            CUDA_TRY(cudaMemcpy2DAsync(y + off * hw, total_c * hw * sizeof(float), x[i],
                                       (size_t)c[i] * hw * sizeof(float),
                                       (size_t)c[i] * hw * sizeof(float), (size_t)n,
                                       cudaMemcpyDeviceToDevice, ctx->stream));
        off += (size_t)c[i];
    }
done:
    return st;
}

__global__ void l2norm_kernel(float *x, size_t rows, int d)
{
    for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float *xr = x + r * (size_t)d;
        float s = 0.0f;
        for (int j = threadIdx.x; j < d; j += blockDim.x)
            s += xr[j] * xr[j];
        s = block_sum(s);
        if (s > 0.0f) {
            float inv = 1.0f / sqrtf(s);
            for (int j = threadIdx.x; j < d; j += blockDim.x)
                xr[j] *= inv;
        }
        __syncthreads();
    }
}

extern "C" ns_status ns_cuda_l2norm(ns_cuda_ctx *ctx, float *x, int n, int d)
{
    ns_status st = NS_OK;
    if (n <= 0 || d <= 0)
        return NS_OK;
    l2norm_kernel<<<(unsigned)(n < 65536 ? n : 65536), kThreads, 0, ctx->stream>>>(
        x, (size_t)n, d);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}

// ---- preprocessing ------------------------------------------------------------------------

// One thread per output pixel and channel.  Output index o along an axis
// covers source [o*S/size, (o+1)*S/size); counted in units of 1/size source
// pixel every overlap is an integer, so the area sum is an exact integer and
// the mean rounds half up to uint8 exactly as ns_resize_area and the
// reference do.  size == S is the identity.
__global__ void preprocess_kernel(const uint8_t *frames, float *y, int n, int S, int size,
                                  int bgr, float m0, float m1, float m2, float is0, float is1,
                                  float is2)
{
    size_t total = (size_t)n * 3 * size * size;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % size);
        int oy = (int)((i / size) % size);
        int ch = (int)((i / ((size_t)size * size)) % 3);
        size_t img = i / ((size_t)size * size * 3);
        int src_ch = bgr ? 2 - ch : ch;
        const uint8_t *f = frames + img * (size_t)S * S * 3 + src_ch;
        int v;
        if (size == S) {
            v = f[((size_t)oy * S + ox) * 3];
        } else {
            long long ys = (long long)oy * S, ye = ys + S; // in 1/size units
            long long xs = (long long)ox * S, xe = xs + S;
            int j0 = (int)(ys / size), j1 = (int)((ye + size - 1) / size);
            int k0 = (int)(xs / size), k1 = (int)((xe + size - 1) / size);
            unsigned long long acc = 0;
            for (int jy = j0; jy < j1; jy++) {
                long long wy = min(ye, (long long)(jy + 1) * size) - max(ys, (long long)jy * size);
                unsigned long long row = 0;
                for (int jx = k0; jx < k1; jx++) {
                    long long wx =
                        min(xe, (long long)(jx + 1) * size) - max(xs, (long long)jx * size);
                    row += (unsigned long long)wx * f[((size_t)jy * S + jx) * 3];
                }
                acc += (unsigned long long)wy * row;
            }
            unsigned long long area = (unsigned long long)S * S;
            unsigned long long r = (2 * acc + area) / (2 * area); // floor(acc / area + 0.5)
            v = r > 255 ? 255 : (int)r;
        }
        float mean = ch == 0 ? m0 : ch == 1 ? m1 : m2;
        float istd = ch == 0 ? is0 : ch == 1 ? is1 : is2;
        y[i] = ((float)v / 255.0f - mean) * istd;
    }
}

extern "C" ns_status ns_cuda_preprocess(ns_cuda_ctx *ctx, const ns_preproc *pp,
                                        const uint8_t *frames, int n, int S, float *y)
{
    ns_status st = NS_OK;
    size_t total = (size_t)n * 3 * pp->size * pp->size;
    USAGE_IF(pp->size < 1 || pp->size > S,
             "kernels/ops.cu: preprocess: model size %d does not fit %dx%d frames", pp->size, S,
             S);
    USAGE_IF(pp->std[0] == 0.0f || pp->std[1] == 0.0f || pp->std[2] == 0.0f,
             "kernels/ops.cu: preprocess: zero std");
    if (total == 0)
        goto done;
    preprocess_kernel<<<grid_for(total), kThreads, 0, ctx->stream>>>(
        frames, y, n, S, pp->size, pp->bgr, pp->mean[0], pp->mean[1], pp->mean[2],
        1.0f / pp->std[0], 1.0f / pp->std[1], 1.0f / pp->std[2]);
    CUDA_TRY(cudaGetLastError());
done:
    return st;
}
