/* compute.c -- one switch from the detect stage to the CPU or CUDA kernels. */
#include "compute.h"

#include "nightshift/knn.h"
#include "nightshift/mmd.h"
#include "ns_cuda.h"

ns_status ns_det_knn(ns_device dev, const float *q, size_t nq, const float *b, size_t nb, int d,
                     int k, const int64_t *qgroup, const int64_t *bgroup, int threads,
                     float *dist, int64_t *idx)
{
    switch (dev) {
    case NS_DEVICE_CUDA:
        return ns_cuda_knn_search(q, nq, b, nb, d, k, qgroup, bgroup, threads, dist, idx);
    case NS_DEVICE_REF:
        return ns_ref_knn_search(q, nq, b, nb, d, k, qgroup, bgroup, dist, idx);
    default:
        return ns_knn_search(q, nq, b, nb, d, k, qgroup, bgroup, threads, dist, idx);
    }
}

ns_status ns_det_block_sums(ns_device dev, const float *x, size_t n, int d, const size_t *off,
                            size_t nblocks, double sigma, int threads, double *S)
{
    switch (dev) {
    case NS_DEVICE_CUDA:
        return ns_cuda_mmd_block_sums(x, n, d, off, nblocks, sigma, threads, S);
    case NS_DEVICE_REF:
        return ns_ref_mmd_block_sums(x, n, d, off, nblocks, sigma, S);
    default:
        return ns_mmd_block_sums(x, n, d, off, nblocks, sigma, threads, S);
    }
}

ns_status ns_det_kmeans_fit(ns_device dev, const float *x, size_t n, int d,
                            const ns_kmeans_opts *o, ns_kmeans_result *r)
{
    /* No plain C fit exists (the reference is one Lloyd step): REF runs the CPU fit. */
    if (dev == NS_DEVICE_CUDA)
        return ns_cuda_kmeans_fit(x, n, d, o, r);
    return ns_kmeans_fit(x, n, d, o, r);
}

ns_status ns_det_kmeans_assign(ns_device dev, const float *x, size_t n, int d, const float *c,
                               int k, int *assign, float *dist2)
{
    switch (dev) {
    case NS_DEVICE_CUDA:
        return ns_cuda_kmeans_assign(x, n, d, c, k, assign, dist2);
    case NS_DEVICE_REF:
        return ns_ref_kmeans_assign(x, n, d, c, k, assign, dist2);
    default:
        return ns_kmeans_assign(x, n, d, c, k, assign, dist2);
    }
}
