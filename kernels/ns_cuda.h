/* ns_cuda.h -- the plain C face of nightshift's CUDA code.
 *
 * Everything CUDA lives behind this header.  Builds without nvcc link
 * cuda_stub.c instead, whose functions report "built without CUDA"
 * (NS_ERR_NODEV); the structs here never change shape with the build.
 */
#ifndef NIGHTSHIFT_NS_CUDA_H
#define NIGHTSHIFT_NS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NS_CUDA_MAX_DEVICES 16

typedef struct ns_cuda_device {
    int index;
    char name[256];
    size_t total_mem;   /* bytes */
    int cc_major, cc_minor;
    int sm_count;
    int kernel_ok;      /* 1 when a test kernel ran and returned the right result */
} ns_cuda_device;

/* 1 when this binary contains the CUDA kernels, else 0. */
int ns_cuda_built(void);

/* CUDA runtime version as reported by cudaRuntimeGetVersion (0 in stub). */
int ns_cuda_runtime_version(void);

/* Lists up to cap devices.  NS_ERR_NODEV with a message when the build has
 * no CUDA or the driver/device is missing; *count is then 0. */
ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count);

/* Reference for the self-test kernel: out[i] = a * i + b (mod 2^32). */
void ns_ref_iota_affine(uint32_t *out, size_t n, uint32_t a, uint32_t b);

/* The same on device `dev`, copied back to host `out`. */
ns_status ns_cuda_iota_affine(int dev, uint32_t *out, size_t n, uint32_t a, uint32_t b);

#ifdef __cplusplus
}
#endif
#endif
