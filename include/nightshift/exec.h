/* exec.h -- running a backbone model on batches of stored frames.
 *
 * An executor is planned once for (model, device, max batch, frame size):
 * every activation buffer and the conv workspace are allocated then and
 * reused for every batch.  Frames go in as the store keeps them, uint8
 * (n, S, S, 3) RGB; preprocessing (resize to the model's input when it is
 * smaller than S, scaling, mean/std, channel order) is fused into the first
 * step.  Out come float32 embeddings (n, dim), L2-normalised when the model
 * says so.
 *
 * Devices: NS_DEVICE_REF runs the plain C reference operators (tests),
 * NS_DEVICE_CPU the OpenMP/OpenBLAS ones, NS_DEVICE_CUDA the kernels/ ones;
 * NS_DEVICE_AUTO picks CUDA when the build has it and a device answers,
 * else the CPU, and ns_exec_device says which it picked.
 *
 * Precision (CUDA only; the CPU and reference executors are fp32):
 * NS_PREC_FP32, the default, is exact fp32 throughout.  NS_PREC_TF32 runs
 * the convolution and fully-connected GEMMs on TF32 tensor cores (inputs
 * rounded to 10-bit mantissas, fp32 accumulate); NS_PREC_BF16 feeds them
 * bf16 inputs (weights converted once at planning, activations per GEMM;
 * 7-bit mantissas, fp32 accumulate and output).  Everything that is not a
 * GEMM (depthwise convs, pooling, activations, adds, L2 norm) stays fp32.
 * Expected relative error per embedding against fp32: about 1e-3 (tf32) and
 * 1e-2 (bf16), model dependent; tests/test_exec_gpu.c states the bounds.
 */
#ifndef NIGHTSHIFT_EXEC_H
#define NIGHTSHIFT_EXEC_H

#include <stdint.h>

#include "nightshift/model.h"
#include "nightshift/status.h"
#include "nightshift/strbuf.h"

typedef enum ns_device {
    NS_DEVICE_AUTO = 0,
    NS_DEVICE_CPU,
    NS_DEVICE_CUDA,
    NS_DEVICE_REF,
} ns_device;

ns_status ns_device_parse(const char *s, ns_device *out); /* auto|cpu|cuda|ref */
const char *ns_device_name(ns_device d);
/* AUTO becomes CUDA when the build has it and a device answers, else CPU;
 * CUDA without a usable device is NS_ERR_NODEV; CPU and REF stay. */
ns_status ns_device_resolve(ns_device want, ns_device *got);

typedef enum ns_precision {
    NS_PREC_FP32 = 0,
    NS_PREC_TF32,
    NS_PREC_BF16,
} ns_precision;

ns_status ns_precision_parse(const char *s, ns_precision *out); /* fp32|tf32|bf16 */
const char *ns_precision_name(ns_precision p);

typedef struct ns_exec ns_exec;

/* ns_exec_create's arguments that have defaults; zeroed = {AUTO, FP32}. */
typedef struct ns_exec_opts {
    ns_device device;
    ns_precision precision;
    /* CUDA: synchronise the stream after every node so that ns_exec_profile's
     * per-node times are real.  Costs the overlap of one node's launch with
     * the previous node's work; off, the per-node times on CUDA are launch
     * times and only the total is real. */
    int sync_nodes;
} ns_exec_opts;

/* Plans m for up to max_batch frames of S x S.  NS_ERR_USAGE when the model's
 * input is larger than S (the store's frames cannot serve it), NS_ERR_NODEV
 * for NS_DEVICE_CUDA without a usable device, NS_ERR_NOMEM. */
ns_status ns_exec_create(const ns_model *m, ns_device dev, int max_batch, int S, ns_exec **out);
/* The same with options: a precision other than fp32 on a device other
 * than CUDA (AUTO resolving to the CPU included) is NS_ERR_UNSUPPORTED. */
ns_status ns_exec_create_opts(const ns_model *m, const ns_exec_opts *o, int max_batch, int S,
                              ns_exec **out);
ns_device ns_exec_device(const ns_exec *e);
ns_precision ns_exec_precision(const ns_exec *e);
int ns_exec_dim(const ns_exec *e);
/* emb (n, dim) from frames (n, S, S, 3); 1 <= n <= max_batch. */
ns_status ns_exec_run(ns_exec *e, const uint8_t *frames, int n, float *emb);
/* The same, told the next batch (next, next_n frames; NULL for none): on CUDA
 * its frames are copied to the GPU while this batch computes, and the next
 * call with exactly (next, next_n) skips its upload.  next must not change
 * until that call.  Any other next call just uploads as usual.  On the CPU
 * next is ignored.  NIGHTSHIFT_UPLOAD_AHEAD=0 turns the overlap off. */
ns_status ns_exec_run_next(ns_exec *e, const uint8_t *frames, int n, float *emb,
                           const uint8_t *next, int next_n);
/* Time spent per node over all runs so far, one line per node, slowest first. */
ns_status ns_exec_profile(const ns_exec *e, ns_strbuf *out);
void ns_exec_free(ns_exec *e); /* NULL-safe */

#endif
