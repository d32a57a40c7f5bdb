// conv.cu -- convolutions on device, twins of ns_ref_conv2d (and, for the
// opt-in Winograd path, of ns_ref_conv2d_winograd).
//
// im2col over a round of images + cuBLAS SGEMM (one per round, or
// strided-batched over the images or over each image's groups; see
// ns_cuda_conv2d), except depthwise convolutions, which a direct kernel does
// in one pass.  The GEMMs follow the context's precision (ns_cu_gemm).
#include <stdint.h>
#include <stdlib.h>

#define WHERE "kernels/conv.cu"
#include "ops_internal.cuh"
#include "wino.h"

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

// Images of `per` workspace floats each that kConvScratchFloats holds, 1 to n.
static int round_images(size_t per, int n)
{
    size_t c = per ? kConvScratchFloats / per : (size_t)n;
    if (c < 1)
        c = 1;
    if (c > (size_t)n)
        c = (size_t)n;
    return (int)c;
}

static int conv_chunk(const ns_conv_params *p) { return round_images(conv_ws_per_image(p), p->n); }

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

static int wino_chunk(const ns_conv_params *p) { return round_images(wino_per_image(p), p->n); }

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

extern "C" size_t ns_cuda_bf16_conv_elems(const ns_conv_params *p)
{
    // The activation operand of one round of images (conv_chunk).
    if (conv_is_depthwise(p) || p->n < 1)
        return 0;
    return conv_operand_floats(p) * (size_t)conv_chunk(p);
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
            ns_wino_input_tile(xp, H, W, 2 * ty - pt, 2 * tx - pl,
                               V + (size_t)c * T + img * tiles + q, (size_t)C * T);
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
            float o[4];
            ns_wino_output_tile(M + (size_t)k * T + img * tiles + q, (size_t)K * T, o);
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
        // fp32 only (ns_cuda_conv2d): the bf16 arguments are never read.
        ns_cu_gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, (int)T, K, C, V, (int)T,
                       (long long)C * (long long)T, U, C, (long long)kc, M, (int)T,
                       (long long)K * (long long)T, 16};
        NS_TRY(ns_cu_gemm(ctx, &g, 1, 16 * (size_t)C * T, 16 * kc));
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
             "kernels/conv.cu: conv2d: parameters not prepared (groups %d, c_in %d, c_out %d, "
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
    // The workspace is asked for whenever ns_cuda_conv_workspace_floats says so,
    // whichever form runs: the contract must not depend on the context.
    USAGE_IF(!conv_is_pointwise(p) && !workspace,
             "kernels/conv.cu: conv2d: no workspace (%zu floats needed)",
             ns_cuda_conv_workspace_floats(p));
    if (ctx->conv_wino && ctx->prec == NS_PREC_FP32 && ns_conv_winograd_ok(p)) {
        st = conv_winograd(ctx, p, x, w, bias, act, y, workspace);
        goto done;
    }
    if (ctx->conv_implicit && ctx->prec == NS_PREC_FP32 && p->groups == 1 &&
        (ctx->conv_implicit == NS_CU_IMPLICIT_ALL || !conv_is_pointwise(p))) {
        st = ns_cu_conv_implicit(ctx, p, x, w, bias, act, y);
        goto done;
    }
    {
        bool pointwise = conv_is_pointwise(p);
        int G = p->groups;
        int cog = p->c_out / G, cig = p->c_in / G;
        int K = cig * p->kh * p->kw;
        size_t in_img = (size_t)p->c_in * p->h * p->w;
        size_t per = conv_operand_floats(p), out_img = (size_t)p->c_out * P;
        int chunk = conv_chunk(p);
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
                ns_cu_gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, M, p->c_out, K, col, M, 0,
                               w, K, 0, t, M, 0, 1};
                NS_TRY(ns_cu_gemm(ctx, &g, 1, per * (size_t)imgs, (size_t)p->c_out * K));
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
                ns_cu_gemm_args g = {CUBLAS_OP_N, CUBLAS_OP_N, (int)P, cog, K, a, (int)P, sa,
                               w, K, sb, c, (int)P, sc, batch};
                NS_TRY(ns_cu_gemm(ctx, &g, 1, G1 ? per * (size_t)imgs : per,
                                (size_t)p->c_out * K));
            }
        }
        if (!fused_epilogue)
            st = ns_cu_bias_act(ctx, y, out_total, bias, P, (size_t)p->c_out, act);
    }
done:
    return st;
}
