/* compute.h -- the detect stage's heavy steps on the chosen device.
 *
 * The device is decided once per run (ns_device_resolve) and every kNN
 * search, kernel block sum and k-means call goes through one switch here, so
 * detect.c and reference.c never mention CUDA.  The CUDA versions take the
 * same arguments as the CPU ones (kernels/ns_cuda.h); NS_DEVICE_REF runs the
 * plain C references where one exists (tests).
 */
#ifndef NIGHTSHIFT_DETECT_COMPUTE_H
#define NIGHTSHIFT_DETECT_COMPUTE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/exec.h"
#include "nightshift/kmeans.h"
#include "nightshift/status.h"

ns_status ns_det_knn(ns_device dev, const float *q, size_t nq, const float *b, size_t nb, int d,
                     int k, const int64_t *qgroup, const int64_t *bgroup, int threads,
                     float *dist, int64_t *idx);
ns_status ns_det_block_sums(ns_device dev, const float *x, size_t n, int d, const size_t *off,
                            size_t nblocks, double sigma, int threads, double *S);
ns_status ns_det_kmeans_fit(ns_device dev, const float *x, size_t n, int d,
                            const ns_kmeans_opts *o, ns_kmeans_result *r);
ns_status ns_det_kmeans_assign(ns_device dev, const float *x, size_t n, int d, const float *c,
                               int k, int *assign, float *dist2);

#endif
