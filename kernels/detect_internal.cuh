// detect_internal.cuh -- what kernels/detect.cu and kernels/knn_mmd.cu share:
// the cached cuBLAS handle and device buffers, row norms and the distance
// GEMM.  Error translation comes from cuda_internal.cuh; include after
// defining WHERE (the file, for messages).
#ifndef NIGHTSHIFT_DETECT_INTERNAL_CUH
#define NIGHTSHIFT_DETECT_INTERNAL_CUH

#include "cuda_internal.cuh"

static const int kWarps = kThreads / 32;
// Largest distance tile (floats): 256 MB, far below any GPU we run on, and
// big enough that every tile keeps the whole GPU busy.
static const size_t kTileFloats = (size_t)64 << 20;

// Cached device buffers, one slot per role; a slot may serve other roles in
// other functions (none of them runs while another holds the lock).
enum {
    B_X, B_C, B_XX, B_CC, B_G, B_ASSIGN, B_DIST, B_PART, B_SUMS, B_COUNTS, B_MEAN,
    B_QG, B_BG, B_RUND, B_RUNI, B_OUTD, B_OUTI, B_SEG, B_ROWPART, B_S, B_PERM, B_SEGCNT,
    B_SEGOFF, B_COUNT
};

// Takes the lock (always: ns_det_end releases it, also after a failure) and
// readies the cuBLAS handle for the calling thread's current device.
ns_status ns_det_begin(void);
void ns_det_end(void);
// Device buffer of `slot` with room for at least `bytes` (contents not kept).
ns_status ns_det_buf(int slot, size_t bytes, void **out);
// out (n) = squared norms of the rows of x (n, d), summed in double.
ns_status ns_det_norms(const float *x, size_t n, int d, float *out);
// Row-major g (m, nc) = -2 a (m, d) . b (nc, d)^T.
ns_status ns_det_gemm_m2(const float *a, int m, const float *b, int nc, int d, float *g);

#define DBUF(slot, ptr, count)                                                          \
    NS_TRY(ns_det_buf((slot), (size_t)(count) * sizeof *(ptr), (void **)&(ptr)))

// Grid of kThreads-thread blocks with one warp per row.
static inline unsigned warps_grid(size_t rows)
{
    size_t b = (rows + kWarps - 1) / kWarps;
    return (unsigned)(b > 0 ? b : 1);
}

__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v; // complete in lane 0
}

// Exact squared distance of two rows, valid in lane 0.
__device__ __forceinline__ double warp_dist2(const float *a, const float *b, int d, int lane)
{
    double s = 0.0;
    for (int t = lane; t < d; t += 32) {
        double u = (double)a[t] - (double)b[t];
        s += u * u;
    }
    return warp_sum(s);
}

#endif
