/* ns_cuda.h -- the plain C face of nightshift's CUDA code.
 *
 * Everything CUDA lives behind this header.  Builds with nvcc put the kernels
 * in the module libnightshift_cuda.so, which cuda_loader.c opens on the first
 * call (cuda_api.h); builds without nvcc link cuda_stub.c instead.  Either
 * way, without a usable module the functions report NS_ERR_NODEV with the
 * reason; the structs here never change shape with the build.
 */
#ifndef NIGHTSHIFT_NS_CUDA_H
#define NIGHTSHIFT_NS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/kmeans.h"
#include "nightshift/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Inside the extern "C" block: ops.h and exec.h have no C++ guards. */
#include "nightshift/exec.h"
#include "nightshift/ops.h"

#define NS_CUDA_MAX_DEVICES 16

typedef struct ns_cuda_device {
    int index;
    char name[256];
    size_t total_mem;   /* bytes */
    int cc_major, cc_minor;
    int sm_count;
    int kernel_ok;      /* 1 when a test kernel ran and returned the right result */
} ns_cuda_device;

/* 1 when this binary was built with the CUDA kernels, else 0. */
int ns_cuda_built(void);

/* Where the CUDA module was loaded from (*loaded = 1), or why it could not be
 * (*loaded = 0); loads it if no call has yet.  Built without CUDA: the
 * reason is "built without CUDA". */
const char *ns_cuda_module(int *loaded);

/* 0 when this node shows no sign of a GPU driver: none of /dev/nvidiactl,
 * /dev/nvidia0, /proc/driver/nvidia/version or /dev/dxg (WSL2) exists.  Then
 * --device auto picks the CPU without loading the CUDA module, whose CUDA
 * runtime and cuBLAS start-up otherwise cost ~0.5 s and ~150-200 MB of
 * resident memory on every CPU-only node.  1 otherwise, or when
 * NIGHTSHIFT_CUDA_PROBE=always; ns_cuda_devices then says what is there.
 * Always 0 in a build without CUDA. */
int ns_cuda_driver_present(void);

/* CUDA runtime version as reported by cudaRuntimeGetVersion (0 from cuda_stub.c). */
int ns_cuda_runtime_version(void);

/* Lists up to cap devices.  NS_ERR_NODEV with a message when the build has
 * no CUDA or the driver/device is missing; *count is then 0. */
ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count);

/* Reference for the self-test kernel: out[i] = a * i + b (mod 2^32). */
void ns_ref_iota_affine(uint32_t *out, size_t n, uint32_t a, uint32_t b);

/* The same on device `dev`, copied back to host `out`. */
ns_status ns_cuda_iota_affine(int dev, uint32_t *out, size_t n, uint32_t a, uint32_t b);

/* ---- embedding operators on device -------------------------------------------
 *
 * The ns_cuda_* twins of the ns_ref_* operators in nightshift/ops.h: the same
 * arguments and semantics, but every tensor is a device pointer and work is
 * queued on the context's stream (call ns_cuda_ctx_sync, or download, to wait).
 * Errors of the CUDA runtime and cuBLAS come back as statuses with a message.
 * The operators do not select the device themselves: with several GPUs, a
 * thread calls cudaSetDevice (via ns_cuda_ctx_create) before using a context.
 */

typedef struct ns_cuda_ctx ns_cuda_ctx;

/* Selects `device`, creates a stream and a cuBLAS handle bound to it. */
ns_status ns_cuda_ctx_create(int device, ns_cuda_ctx **out);
void ns_cuda_ctx_free(ns_cuda_ctx *ctx); /* NULL-safe */
/* Waits for everything queued on the context's stream. */
ns_status ns_cuda_ctx_sync(ns_cuda_ctx *ctx);

/* Device memory (bytes; *out is NULL on failure). */
ns_status ns_cuda_malloc(void **out, size_t bytes);
void ns_cuda_free(void *dev); /* NULL-safe */
/* Host -> device, queued on the stream; host must stay valid until the next
 * sync (pinned host memory makes the copy truly asynchronous). */
ns_status ns_cuda_upload(ns_cuda_ctx *ctx, void *dev, const void *host, size_t bytes);
/* Host -> device on a second stream, so that it overlaps the work queued on
 * the context's stream (the next batch's frames while this one computes).
 * host must stay unchanged until the copy is over: ns_cuda_ahead_join makes
 * the context's stream wait for it, ns_cuda_ahead_sync the calling thread.
 * Both return at once when nothing was ever uploaded ahead. */
ns_status ns_cuda_upload_ahead(ns_cuda_ctx *ctx, void *dev, const void *host, size_t bytes);
ns_status ns_cuda_ahead_join(ns_cuda_ctx *ctx);
ns_status ns_cuda_ahead_sync(ns_cuda_ctx *ctx);
/* Device -> host after the work queued before it; returns when host is filled. */
ns_status ns_cuda_download(ns_cuda_ctx *ctx, void *host, const void *dev, size_t bytes);
/* Page-locked host memory for fast transfers. */
ns_status ns_cuda_host_alloc(void **out, size_t bytes);
void ns_cuda_host_free(void *host); /* NULL-safe */

/* Floats of device scratch ns_cuda_conv2d needs (p prepared); 0 when none.
 * Sized for p->n images, it also serves any call with fewer. */
size_t ns_cuda_conv_workspace_floats(const ns_conv_params *p);

ns_status ns_cuda_conv2d(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                         const float *w, const float *bias, ns_act act, float *y,
                         float *workspace);
ns_status ns_cuda_maxpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x, float *y);
ns_status ns_cuda_avgpool(ns_cuda_ctx *ctx, const ns_pool_params *p, const float *x, float *y);
ns_status ns_cuda_global_avgpool(ns_cuda_ctx *ctx, const float *x, int n, int c, int hw,
                                 float *y);
ns_status ns_cuda_act(ns_cuda_ctx *ctx, ns_act act, float *x, size_t n);
ns_status ns_cuda_add(ns_cuda_ctx *ctx, const float *a, const float *b, float *y, size_t n,
                      ns_act act);
ns_status ns_cuda_mul_channel(ns_cuda_ctx *ctx, const float *x, const float *s, float *y, int n,
                              int c, int hw);
ns_status ns_cuda_gemm(ns_cuda_ctx *ctx, const float *x, const float *w, const float *bias,
                       float *y, int n, int k, int m, ns_act act);
/* x: a host array of k device pointers; c: host array of k channel counts. */
ns_status ns_cuda_concat(ns_cuda_ctx *ctx, const float *const *x, const int *c, int k, int n,
                         int hw, float *y);
ns_status ns_cuda_l2norm(ns_cuda_ctx *ctx, float *x, int n, int d);
/* frames: device (n, S, S, 3) uint8; y: device (n, 3, size, size). */
ns_status ns_cuda_preprocess(ns_cuda_ctx *ctx, const ns_preproc *pp, const uint8_t *frames,
                             int n, int S, float *y);

/* ---- reduced precision ------------------------------------------------------------
 *
 * ns_cuda_conv2d (except depthwise, a direct fp32 kernel) and ns_cuda_gemm
 * follow the context's precision (nightshift/exec.h; NS_PREC_FP32 after
 * ns_cuda_ctx_create): tf32 runs the same GEMMs with
 * CUBLAS_COMPUTE_32F_FAST_TF32; bf16 runs them with bf16 A and B (the
 * activations converted per GEMM into a scratch the context owns, the
 * weights taken from a bf16 mirror made once here), fp32 accumulate and
 * fp32 output.  In bf16 every weight pointer those two operators get must
 * lie inside [weights, weights + n_weights), the fp32 device array mirrored;
 * others are NS_ERR_USAGE.  scratch_elems: the most bf16 values one GEMM's
 * activations need (ns_cuda_bf16_conv_elems per conv, n * k per gemm).  The
 * device pointer `weights` must outlive the context's use of it. */
ns_status ns_cuda_ctx_set_precision(ns_cuda_ctx *ctx, ns_precision prec, const float *weights,
                                    size_t n_weights, size_t scratch_elems);
/* bf16 values of activation scratch ns_cuda_conv2d needs for p in bf16
 * (p->n images or fewer). */
size_t ns_cuda_bf16_conv_elems(const ns_conv_params *p);

/* fp32 -> bf16 (the upper 16 bits of the rounded float), round to nearest
 * even; NaN becomes a quiet NaN, overflow becomes infinity. */
uint16_t ns_ref_f32_to_bf16(float x);
void ns_ref_f32_to_bf16_array(const float *x, uint16_t *y, size_t n);

/* ---- Winograd F(2x2, 3x3) (kernels/wino.h) -------------------------------------
 *
 * ns_cuda_conv2d computes 3x3 stride-1 ungrouped convolutions in fp32 with
 * Winograd F(2x2, 3x3) (16 cuBLAS GEMMs over the channels instead of one
 * 2.25x larger im2col GEMM) unless the context was created with
 * NS_CUDA_CONV_WINOGRAD=0 in the environment; tf32 and bf16 keep im2col. */
/* 1 when ctx computes eligible convs by Winograd (fp32 only). */
int ns_cuda_ctx_winograd(const ns_cuda_ctx *ctx);
/* Implicit GEMM (kernels/conv_implicit.cu): ungrouped fp32 convs gathered
 * straight from x into the GEMM's tiles, bias and activation fused, no col.
 * By default every ungrouped conv that Winograd does not take;
 * NS_CUDA_CONV_IMPLICIT=1 leaves 1x1 stride-1 convs to cuBLAS, =0 turns it
 * off (im2col + cuBLAS).  Returns 0 (off), 1 or 2 (all). */
int ns_cuda_ctx_implicit(const ns_cuda_ctx *ctx);
/* p is a 3x3, stride 1, undilated, ungrouped conv (prepared). */
int ns_conv_winograd_ok(const ns_conv_params *p);
/* The CUDA path's algorithm step for step on the CPU (y as ns_ref_conv2d's);
 * NS_ERR_USAGE when !ns_conv_winograd_ok(p), NS_ERR_NOMEM. */
ns_status ns_ref_conv2d_winograd(const ns_conv_params *p, const float *x, const float *w,
                                 const float *bias, ns_act act, float *y);
float ns_ref_bf16_to_f32(uint16_t h);
/* The same on device, queued on the context's stream; x and y device pointers. */
ns_status ns_cuda_f32_to_bf16(ns_cuda_ctx *ctx, const float *x, uint16_t *y, size_t n);

/* ---- detect stage on device ---------------------------------------------------
 *
 * Twins of the detect stage's CPU functions with the same arguments and
 * contracts (nightshift/kmeans.h, knn.h, mmd.h), host pointers in and out:
 * each call uploads its inputs, computes on the calling thread's current
 * device and downloads the results.  Distances are one fp32 cuBLAS SGEMM per
 * tile (TF32 off) in the ||a||^2 - 2 a.b + ||b||^2 form; sums accumulate in
 * double in a fixed order, so results are deterministic run to run (no
 * floating-point atomics).  Near-ties may resolve differently from the CPU
 * path: distances reported (kmeans dist2, knn dist) are recomputed exactly in
 * double for the chosen neighbours.  A cached cuBLAS handle and grow-only
 * device buffers are shared by these calls (serialised by a mutex); errors of
 * the CUDA runtime and cuBLAS come back as statuses with a message, no device
 * as NS_ERR_NODEV.
 */

/* ns_kmeans_assign on the GPU. */
ns_status ns_cuda_kmeans_assign(const float *x, size_t n, int d, const float *c, int k,
                                int *assign, float *dist2);

/* ns_kmeans_fit with the Lloyd iterations on the GPU (o->threads only sizes
 * the CPU seeding).  Without o->init the seeds are the CPU's k-means++ seeds,
 * computed on the host by ns_kmeans_fit with max_iter 0 (O(n k d) on the CPU:
 * pass init, e.g. those seeds kept from an earlier call, when that matters).
 * Same tolerance rule, empty-cluster repair (done on the host, rarely) and
 * result as the CPU; centroid sums are in double, so centroids match the CPU
 * to float rounding when the assignments agree. */
ns_status ns_cuda_kmeans_fit(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                             ns_kmeans_result *r);

/* ns_knn_search on the GPU; threads is unused.  k above 128 is
 * NS_ERR_UNSUPPORTED. */
ns_status ns_cuda_knn_search(const float *q, size_t nq, const float *b, size_t nb, int d, int k,
                             const int64_t *qgroup, const int64_t *bgroup, int threads,
                             float *dist, int64_t *idx);

/* ns_mmd_block_sums on the GPU; threads is unused.  S is exactly symmetric;
 * k(x_i, x_i) counts as exactly 1. */
ns_status ns_cuda_mmd_block_sums(const float *x, size_t n, int d, const size_t *off,
                                 size_t nblocks, double sigma, int threads, double *S);

/* Frees the cached handle and device buffers of the calls above (they are
 * made again on the next call).  Safe to call any time, also without CUDA. */
void ns_cuda_detect_release(void);

/* ---- training heads (kernels/train.cu) ----------------------------------------
 * Device pointers, queued on ctx's stream; the twins of src/train/loss.c.
 * ns_cuda_sm_objective: z (n, C) scratch; loss (n) the weighted loss of each
 * row (the host sums them); gw (C, d), gb (C) the gradient without the L2
 * term.  ns_cuda_mlp_grad: one batch of B rows; h, dh (B, H), z (B, C),
 * loss (B) scratch and per-row losses; g* the gradients without L2.
 * ns_cuda_adam: PyTorch's Adam step on n parameters with gradient g + l2 p
 * (lr_t = lr / (1 - beta1^t), vcorr = sqrt(1 - beta2^t)).
 * ns_cuda_gather_rows: dst (n, d) = src rows idx. */
ns_status ns_cuda_sm_objective(ns_cuda_ctx *ctx, const float *x, const int32_t *y,
                               const float *sw, size_t n, int d, int C, const float *w,
                               const float *b, float *z, float *loss, float *gw, float *gb);
ns_status ns_cuda_mlp_grad(ns_cuda_ctx *ctx, const float *x, const int32_t *y, const float *sw,
                           int B, int d, int H, int C, const float *w1, const float *b1,
                           const float *w, const float *b, float *h, float *dh, float *z,
                           float *loss, float *gw1, float *gb1, float *gw, float *gb);
ns_status ns_cuda_adam(ns_cuda_ctx *ctx, float *p, const float *g, float *m, float *v, size_t n,
                       float l2, double lr_t, double vcorr);
ns_status ns_cuda_gather_rows(ns_cuda_ctx *ctx, const float *src, const int32_t *idx, size_t n,
                              int d, float *dst);

#ifdef __cplusplus
}
#endif
#endif
