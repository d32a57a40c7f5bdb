// ops.cu -- the embedding operators on device (fp32), twins of ns_ref_* in ops.h,
// and the CUDA context they share; convolutions are in conv.cu.
//
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
#include "ops_internal.cuh"

// ---- activations ---------------------------------------------------------------

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

ns_status ns_cu_bias_act(ns_cuda_ctx *ctx, float *y, size_t n, const float *bias, size_t inner,
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
        // Winograd and the implicit GEMM are the default forms: on an H100
        // they took resnet18 from 0.46x PyTorch's throughput to 1.00x (docs/gpu.md).
        // "0" turns either off, for A/B timings; NS_CUDA_CONV_IMPLICIT=1 leaves
        // 1x1 stride-1 convs to cuBLAS.
        const char *wg = getenv("NS_CUDA_CONV_WINOGRAD");
        c->conv_wino = !(wg && strcmp(wg, "0") == 0);
        c->conv_implicit = ns_cu_implicit_setting(getenv("NS_CUDA_CONV_IMPLICIT"));
    }
    *out = c;
    c = NULL;
done:
    ns_cuda_ctx_free(c);
    return st;
}

extern "C" int ns_cuda_ctx_winograd(const ns_cuda_ctx *ctx) { return ctx && ctx->conv_wino; }

extern "C" int ns_cuda_ctx_implicit(const ns_cuda_ctx *ctx) { return ctx ? ctx->conv_implicit : 0; }

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
    if (ctx->copy) {
        cudaStreamSynchronize(ctx->copy);
        cudaStreamDestroy(ctx->copy);
    }
    if (ctx->ahead)
        cudaEventDestroy(ctx->ahead);
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

extern "C" ns_status ns_cuda_upload_ahead(ns_cuda_ctx *ctx, void *dev, const void *host,
                                         size_t bytes)
{
    ns_status st = NS_OK;
    if (!ctx->copy)
        CUDA_TRY(cudaStreamCreateWithFlags(&ctx->copy, cudaStreamNonBlocking));
    if (!ctx->ahead)
        CUDA_TRY(cudaEventCreateWithFlags(&ctx->ahead, cudaEventDisableTiming));
    if (bytes > 0)
        CUDA_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, ctx->copy));
    CUDA_TRY(cudaEventRecord(ctx->ahead, ctx->copy));
done:
    return st;
}

extern "C" ns_status ns_cuda_ahead_join(ns_cuda_ctx *ctx)
{
    ns_status st = NS_OK;
    if (ctx->ahead)
        CUDA_TRY(cudaStreamWaitEvent(ctx->stream, ctx->ahead, 0));
done:
    return st;
}

extern "C" ns_status ns_cuda_ahead_sync(ns_cuda_ctx *ctx)
{
    ns_status st = NS_OK;
    if (ctx->ahead)
        CUDA_TRY(cudaEventSynchronize(ctx->ahead));
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

// g in the context's precision.  fp32: cublasSgemm for one unstrided GEMM,
// cublasSgemmStridedBatched otherwise.  tf32 and bf16: one of A and B holds
// activations (act_is_a), act_elems floats in all (every batch entry), the
// other weights, w_elems floats.  In bf16 the activations go to the
// context's scratch and the weights come from its mirror; output and
// accumulation stay fp32 (CUBLAS_COMPUTE_32F).
ns_status ns_cu_gemm(ns_cuda_ctx *ctx, const ns_cu_gemm_args *g, int act_is_a, size_t act_elems,
                     size_t w_elems)
{
    ns_status st = NS_OK;
    const float alpha = 1.0f, beta = 0.0f;
    if (ctx->prec == NS_PREC_FP32) {
        if (g->batch == 1 && g->sa == 0 && g->sb == 0 && g->sc == 0)
            BLAS_TRY(cublasSgemm(ctx->blas, g->ta, g->tb, g->m, g->n, g->k, &alpha, g->a, g->lda,
                                 g->b, g->ldb, &beta, g->c, g->ldc));
        else
            BLAS_TRY(cublasSgemmStridedBatched(ctx->blas, g->ta, g->tb, g->m, g->n, g->k, &alpha,
                                               g->a, g->lda, g->sa, g->b, g->ldb, g->sb, &beta,
                                               g->c, g->ldc, g->sc, g->batch));
    } else if (ctx->prec == NS_PREC_TF32) {
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
    return ns_cu_bias_act(ctx, x, n, NULL, 1, 1, act);
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
    if (n <= 0 || m <= 0)
        return NS_OK;
    if (k <= 0) {
        CUDA_TRY(cudaMemsetAsync(y, 0, (size_t)n * m * sizeof *y, ctx->stream));
    } else {
        // Row-major y (n, m) = x (n, k) . w^T: column-major y^T (m, n) = w . x^T,
        // where w (m, k) row-major is column-major (k, m), hence op T.
        ns_cu_gemm_args g = {CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, w, k, 0, x, k, 0, y, m, 0, 1};
        NS_TRY(ns_cu_gemm(ctx, &g, 0, (size_t)n * k, (size_t)m * k));
    }
    st = ns_cu_bias_act(ctx, y, (size_t)n * m, bias, 1, (size_t)m, act);
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
