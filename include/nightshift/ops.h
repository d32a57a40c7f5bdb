/* ops.h -- the numeric operators of the embedding backbones.
 *
 * Tensors are float32, NCHW, contiguous.  Every operator exists three times
 * with the same arguments:
 *   ns_ref_*   plain C, obviously right, slow: the reference for tests;
 *   ns_cpu_*   OpenMP + OpenBLAS (im2col + cblas_sgemm for convolutions);
 *   ns_cuda_*  kernels/ (device pointers), declared in kernels/ns_cuda.h.
 * Parity tests compare the fast versions with the reference on random shapes.
 * Activations are fused into conv/add/gemm through ns_act.
 */
#ifndef NIGHTSHIFT_OPS_H
#define NIGHTSHIFT_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

typedef enum ns_act_kind {
    NS_ACT_NONE = 0,
    NS_ACT_RELU,
    NS_ACT_CLIP,        /* min(max(x, a), b); ReLU6 is a = 0, b = 6 */
    NS_ACT_SIGMOID,
    NS_ACT_HARDSIGMOID, /* max(0, min(1, a * x + b)); ONNX defaults a = 0.2, b = 0.5 */
    NS_ACT_HARDSWISH,   /* x * relu6(x + 3) / 6 */
    NS_ACT_SILU,        /* x * sigmoid(x) */
} ns_act_kind;

typedef struct ns_act {
    ns_act_kind kind;
    float a, b;
} ns_act;

/* ---- convolution ------------------------------------------------------------ */

typedef struct ns_conv_params {
    int n, c_in, h, w;                /* input (n, c_in, h, w) */
    int c_out, kh, kw;                /* weights (c_out, c_in / groups, kh, kw) */
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dil_h, dil_w;
    int groups;                       /* 1, c_in (depthwise) or any divisor of both */
    int h_out, w_out;                 /* filled by ns_conv_prepare */
} ns_conv_params;

/* Validates the parameters and fills h_out, w_out.  NS_ERR_USAGE with a
 * message for impossible shapes (groups not dividing channels, kernel larger
 * than the padded input, non-positive strides or dilations). */
ns_status ns_conv_prepare(ns_conv_params *p);

/* Floats of scratch ns_cpu_conv2d needs (per thread: an im2col buffer, plus
 * for small output planes a GEMM output of several images and for stride-2
 * convs an even/odd-column copy of one image; for 3x3 and 5x5 depthwise
 * convs one zero-padded plane; 0 for 1x1 stride-1 convs on planes of 256
 * pixels or more, which may then pass a NULL workspace).  ns_cpu_conv2d runs images in
 * parallel on omp_get_max_threads() threads, so the size covers at least
 * that many whatever `threads` says: size the workspace after fixing the
 * OpenMP thread count, and give concurrent callers separate workspaces. */
size_t ns_conv_workspace_floats(const ns_conv_params *p, int threads);

/* y (n, c_out, h_out, w_out) = act(conv(x, w) + bias); bias may be NULL. */
void ns_ref_conv2d(const ns_conv_params *p, const float *x, const float *w, const float *bias,
                   ns_act act, float *y);
void ns_cpu_conv2d(const ns_conv_params *p, const float *x, const float *w, const float *bias,
                   ns_act act, float *y, float *workspace);

/* ---- pooling ---------------------------------------------------------------- */

typedef struct ns_pool_params {
    int n, c, h, w;
    int kh, kw, stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int count_include_pad;            /* average pooling: ONNX count_include_pad */
    int ceil_mode;                    /* ONNX ceil_mode */
    int h_out, w_out;                 /* filled by ns_pool_prepare */
} ns_pool_params;

ns_status ns_pool_prepare(ns_pool_params *p);
void ns_ref_maxpool(const ns_pool_params *p, const float *x, float *y);
void ns_cpu_maxpool(const ns_pool_params *p, const float *x, float *y);
void ns_ref_avgpool(const ns_pool_params *p, const float *x, float *y);
void ns_cpu_avgpool(const ns_pool_params *p, const float *x, float *y);
/* y (n, c) = mean over h * w of x (n, c, h, w). */
void ns_ref_global_avgpool(const float *x, int n, int c, int hw, float *y);
void ns_cpu_global_avgpool(const float *x, int n, int c, int hw, float *y);

/* ---- elementwise ------------------------------------------------------------- */

/* x = act(x), n elements. */
void ns_ref_act(ns_act act, float *x, size_t n);
void ns_cpu_act(ns_act act, float *x, size_t n);
/* y = act(a + b), n elements (y may alias a or b). */
void ns_ref_add(const float *a, const float *b, float *y, size_t n, ns_act act);
void ns_cpu_add(const float *a, const float *b, float *y, size_t n, ns_act act);
/* Squeeze-excite scaling: y (n, c, hw) = x * s (n, c) broadcast over hw. */
void ns_ref_mul_channel(const float *x, const float *s, float *y, int n, int c, int hw);
void ns_cpu_mul_channel(const float *x, const float *s, float *y, int n, int c, int hw);

/* ---- dense ------------------------------------------------------------------- */

/* y (n, m) = act(x (n, k) . w^T + bias), w (m, k) as ONNX Gemm with transB = 1. */
void ns_ref_gemm(const float *x, const float *w, const float *bias, float *y, int n, int k,
                 int m, ns_act act);
void ns_cpu_gemm(const float *x, const float *w, const float *bias, float *y, int n, int k,
                 int m, ns_act act);

/* Channel concat: y (n, sum c_i, hw) from inputs x_i (n, c_i, hw). */
void ns_ref_concat(const float *const *x, const int *c, int k, int n, int hw, float *y);
void ns_cpu_concat(const float *const *x, const int *c, int k, int n, int hw, float *y);

/* Row-wise L2 normalisation of x (n, d) in place; a zero row stays zero. */
void ns_ref_l2norm(float *x, int n, int d);
void ns_cpu_l2norm(float *x, int n, int d);

/* ---- preprocessing ----------------------------------------------------------- */

typedef struct ns_preproc {
    int size;                         /* model input H = W */
    int bgr;                          /* 1: channel order B, G, R */
    float mean[3], std[3];            /* on 0..1 values, in the model's channel order */
} ns_preproc;

/* y (n, 3, size, size) = ((frames (n, S, S, 3) RGB uint8 / 255, area-resized
 * to size when size < S) - mean) / std.  size > S is the caller's error. */
void ns_ref_preprocess(const ns_preproc *pp, const uint8_t *frames, int n, int S, float *y);
void ns_cpu_preprocess(const ns_preproc *pp, const uint8_t *frames, int n, int S, float *y);

/* Folds BatchNormalization into the preceding conv: w (c_out, k) and bias
 * (c_out, created as zeros by the caller when the conv had none). */
void ns_fold_batchnorm(float *w, float *bias, int c_out, size_t k, const float *gamma,
                       const float *beta, const float *mean, const float *var, float eps);

#endif
