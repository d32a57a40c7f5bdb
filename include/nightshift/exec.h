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

typedef struct ns_exec ns_exec;

/* Plans m for up to max_batch frames of S x S.  NS_ERR_USAGE when the model's
 * input is larger than S (the store's frames cannot serve it), NS_ERR_NODEV
 * for NS_DEVICE_CUDA without a usable device, NS_ERR_NOMEM. */
ns_status ns_exec_create(const ns_model *m, ns_device dev, int max_batch, int S, ns_exec **out);
ns_device ns_exec_device(const ns_exec *e);
int ns_exec_dim(const ns_exec *e);
/* emb (n, dim) from frames (n, S, S, 3); 1 <= n <= max_batch. */
ns_status ns_exec_run(ns_exec *e, const uint8_t *frames, int n, float *emb);
/* Time spent per node over all runs so far, one line per node, slowest first. */
ns_status ns_exec_profile(const ns_exec *e, ns_strbuf *out);
void ns_exec_free(ns_exec *e); /* NULL-safe */

#endif
