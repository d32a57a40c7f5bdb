// detect.cu -- the detect stage's numeric kernels on the GPU: k-means here,
// kNN and MMD block sums in knn_mmd.cu; twins of ns_kmeans_assign,
// ns_kmeans_fit, ns_knn_search and ns_mmd_block_sums with host pointers in
// and out.
//
// Every distance is ||a||^2 - 2 a.b + ||b||^2 with one cuBLAS SGEMM per tile
// (full fp32: TF32 would move near-ties), followed by a kernel that reads the
// tile once.  Results are deterministic run to run: no floating-point atomics
// anywhere; every sum runs in a fixed order (per-warp strided lanes, then a
// fixed shuffle tree, then tiles or segments in index order).
//
// The process keeps one cuBLAS handle and grow-only device buffers, guarded
// by a mutex, so repeated calls (Lloyd iterations, nightly batches) pay for
// neither handle creation nor cudaMalloc; ns_cuda_detect_release frees them.
// Work runs on the calling thread's current device, on the legacy stream.
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WHERE "kernels/detect.cu"
#include "detect_internal.cuh"
#include "../src/detect/detect_util.h"
#include "../src/detect/kmeans_internal.h"

// ---- cached state ------------------------------------------------------------------

static struct {
    pthread_mutex_t lock;
    int device;
    cublasHandle_t blas;
    void *buf[B_COUNT];
    size_t cap[B_COUNT];
} g_det = {PTHREAD_MUTEX_INITIALIZER, -1, NULL, {NULL}, {0}};

static void det_drop(void)
{
    for (int i = 0; i < B_COUNT; i++) {
        if (g_det.buf[i])
            cudaFree(g_det.buf[i]);
        g_det.buf[i] = NULL;
        g_det.cap[i] = 0;
    }
    if (g_det.blas)
        cublasDestroy(g_det.blas);
    g_det.blas = NULL;
    g_det.device = -1;
}

ns_status ns_det_begin(void)
{
    ns_status st = NS_OK;
    int dev = 0;
    pthread_mutex_lock(&g_det.lock);
    CUDA_TRY(cudaGetDevice(&dev));
    if (g_det.blas && g_det.device != dev)
        det_drop();
    if (!g_det.blas) {
        BLAS_TRY(cublasCreate(&g_det.blas));
        g_det.device = dev;
        // Full fp32 stated rather than assumed: TF32 would miss the references.
        BLAS_TRY(cublasSetMathMode(g_det.blas, CUBLAS_DEFAULT_MATH));
    }
done:
    return st;
}

void ns_det_end(void) { pthread_mutex_unlock(&g_det.lock); }

ns_status ns_det_buf(int slot, size_t bytes, void **out)
{
    ns_status st = NS_OK;
    if (bytes == 0)
        bytes = 8;
    if (g_det.cap[slot] < bytes) {
        if (g_det.buf[slot])
            cudaFree(g_det.buf[slot]);
        g_det.buf[slot] = NULL;
        g_det.cap[slot] = 0;
        CUDA_TRY(cudaMalloc(&g_det.buf[slot], bytes));
        g_det.cap[slot] = bytes;
    }
    *out = g_det.buf[slot];
done:
    return st;
}

extern "C" void ns_cuda_detect_release(void)
{
    pthread_mutex_lock(&g_det.lock);
    det_drop();
    pthread_mutex_unlock(&g_det.lock);
}

// Squared norm of each row, accumulated in double and rounded once, as the
// CPU path does.  One warp per row.
__global__ void norms_kernel(const float *x, size_t n, int d, float *out)
{
    size_t r = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (r >= n)
        return;
    const float *xr = x + r * (size_t)d;
    double s = 0.0;
    for (int t = lane; t < d; t += 32)
        s += (double)xr[t] * xr[t];
    s = warp_sum(s);
    if (lane == 0)
        out[r] = (float)s;
}

ns_status ns_det_norms(const float *x, size_t n, int d, float *out)
{
    ns_status st = NS_OK;
    if (n == 0)
        return NS_OK;
    norms_kernel<<<warps_grid(n), kThreads>>>(x, n, d, out);
    LAUNCHED();
done:
    return st;
}

// cuBLAS is column-major: g^T (nc, m) = b . a^T with b read transposed.
ns_status ns_det_gemm_m2(const float *a, int m, const float *b, int nc, int d, float *g)
{
    ns_status st = NS_OK;
    const float alpha = -2.0f, beta = 0.0f;
    BLAS_TRY(cublasSgemm(g_det.blas, CUBLAS_OP_T, CUBLAS_OP_N, nc, m, d, &alpha, b, d, a, d,
                         &beta, g, nc));
done:
    return st;
}

// ---- k-means assignment ------------------------------------------------------------------

// One warp per row of the tile: nearest centroid by the GEMM form (lowest
// index on ties, as the CPU scan), then the exact squared distance to it.
__global__ void argmin_kernel(const float *g, const float *cc, const float *x, const float *c,
                              size_t m, int k, int d, size_t row0, int *assign, double *dist)
{
    size_t r = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (r >= m)
        return;
    const float *row = g + r * (size_t)k;
    float bv = INFINITY;
    int bj = INT_MAX;
    for (int j = lane; j < k; j += 32) {
        float v = row[j] + cc[j];
        if (bj == INT_MAX || v < bv) {
            bv = v;
            bj = j;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_down_sync(0xffffffffu, bv, o);
        int oj = __shfl_down_sync(0xffffffffu, bj, o);
        if (oj != INT_MAX && (bj == INT_MAX || ov < bv || (ov == bv && oj < bj))) {
            bv = ov;
            bj = oj;
        }
    }
    bj = __shfl_sync(0xffffffffu, bj, 0);
    size_t i = row0 + r;
    double dd = warp_dist2(x + i * (size_t)d, c + (size_t)bj * d, d, lane);
    if (lane == 0) {
        assign[i] = bj;
        dist[i] = dd;
    }
}

// Device assignment of x (n, d) to c (k, d), both already on the device:
// assign (n) and exact dist (n, double).
static ns_status assign_pass(const float *x, size_t n, int d, const float *c, int k, int *assign,
                             double *dist)
{
    ns_status st = NS_OK;
    float *cc = NULL, *g = NULL;
    size_t tile = kTileFloats / (size_t)k;
    if (tile < 1)
        tile = 1;
    if (tile > n)
        tile = n;
    if (tile > INT_MAX / 2)
        tile = INT_MAX / 2;
    DBUF(B_CC, cc, k);
    DBUF(B_G, g, tile * (size_t)k);
    NS_TRY(ns_det_norms(c, (size_t)k, d, cc));
    for (size_t r0 = 0; r0 < n; r0 += tile) {
        size_t m = n - r0 < tile ? n - r0 : tile;
        NS_TRY(ns_det_gemm_m2(x + r0 * (size_t)d, (int)m, c, k, d, g));
        argmin_kernel<<<warps_grid(m), kThreads>>>(g, cc, x, c, m, k, d, r0, assign, dist);
        LAUNCHED();
    }
done:
    return st;
}

__global__ void double_to_float_kernel(const double *a, float *b, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        b[i] = (float)a[i];
}

extern "C" ns_status ns_cuda_kmeans_assign(const float *x, size_t n, int d, const float *c, int k,
                                           int *assign, float *dist2)
{
    ns_status st = ns_kmeans_check_assign(WHERE ": kmeans", x, n, d, c, k, assign);
    float *dx = NULL, *dc = NULL, *df = NULL;
    int *da = NULL;
    double *dd = NULL;
    if (st != NS_OK)
        return st;
    NS_TRY(ns_det_begin());
    DBUF(B_X, dx, n * (size_t)d);
    DBUF(B_C, dc, (size_t)k * d);
    DBUF(B_ASSIGN, da, n);
    DBUF(B_DIST, dd, n);
    CUDA_TRY(cudaMemcpy(dx, x, n * (size_t)d * sizeof *x, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(dc, c, (size_t)k * d * sizeof *c, cudaMemcpyHostToDevice));
    NS_TRY(assign_pass(dx, n, d, dc, k, da, dd));
    CUDA_TRY(cudaMemcpy(assign, da, n * sizeof *assign, cudaMemcpyDeviceToHost));
    if (dist2) {
        DBUF(B_OUTD, df, n);
        double_to_float_kernel<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads>>>(dd, df, n);
        LAUNCHED();
        CUDA_TRY(cudaMemcpy(dist2, df, n * sizeof *dist2, cudaMemcpyDeviceToHost));
    }
done:
    ns_det_end();
    return st;
}

// ---- k-means update --------------------------------------------------------------------------

// Points are cut into fixed segments (a function of n only); block
// (centroid j, column slice, segment) sums, in point order and in double,
// f(x[i][t]) over the segment's points with assign[i] == j: f is x itself
// (mode 0) or (x - mean[t])^2 (mode 1).  assign NULL: every point is in 0.
// partial is (nseg, k, d).
__global__ void seg_colsum_kernel(const float *x, size_t n, int d, const int *assign, int k,
                                  int nslices, size_t seg_rows, int mode, const double *mean,
                                  double *partial)
{
    __shared__ int sa[256];
    int j = blockIdx.x / nslices, slice = blockIdx.x % nslices;
    int t = slice * blockDim.x + threadIdx.x;
    size_t seg = blockIdx.y, i0 = seg * seg_rows, i1 = i0 + seg_rows < n ? i0 + seg_rows : n;
    double mu = (mode == 1 && t < d) ? mean[t] : 0.0;
    double acc = 0.0;
    for (size_t b0 = i0; b0 < i1; b0 += blockDim.x) {
        size_t cnt = i1 - b0 < blockDim.x ? i1 - b0 : blockDim.x;
        __syncthreads();
        if (threadIdx.x < cnt)
            sa[threadIdx.x] = assign ? assign[b0 + threadIdx.x] : 0;
        __syncthreads();
        if (t >= d)
            continue;
        for (size_t r = 0; r < cnt; r++) {
            if (sa[r] != j)
                continue;
            double v = x[(b0 + r) * (size_t)d + t];
            if (mode == 1)
                v = (v - mu) * (v - mu);
            acc += v;
        }
    }
    if (t < d)
        partial[(seg * k + j) * (size_t)d + t] = acc;
}

// out (k, d) = sum over segments of partial, in segment order.
__global__ void seg_reduce_kernel(const double *partial, size_t nseg, size_t kd, double *out)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= kd)
        return;
    double s = 0.0;
    for (size_t g = 0; g < nseg; g++)
        s += partial[g * kd + e];
    out[e] = s;
}

static size_t seg_count(size_t n)
{
    size_t nseg = (n + 2047) / 2048;
    return nseg < 1 ? 1 : nseg > 64 ? 64 : nseg;
}

// The same partial sums from a list of each (segment, cluster)'s rows, in
// row order: the identical additions in the identical order, so the same
// bits, but every block reads only its own rows instead of scanning the
// segment's assignments once per cluster (k times over; the scan made a
// Lloyd iteration 3x PyTorch's on an H200).  The default: on an H100 it took
// an iteration of 100,000 x 512, k = 64, from 2.28 to 0.65 ms (PyTorch 0.71).
// NS_CUDA_KMEANS_UPDATE=scan keeps the scan, for A/B runs; test_detect_gpu
// checks that both give the same bits.

// cnt (nseg, k): rows of each cluster in each segment (integer: exact).
__global__ void seg_hist_kernel(const int *assign, size_t n, size_t seg_rows, int k,
                                unsigned *cnt)
{
    size_t seg = blockIdx.x, i0 = seg * seg_rows, i1 = i0 + seg_rows < n ? i0 + seg_rows : n;
    for (int j = threadIdx.x; j < k; j += blockDim.x)
        cnt[seg * k + j] = 0;
    __syncthreads();
    for (size_t i = i0 + threadIdx.x; i < i1; i += blockDim.x)
        atomicAdd(&cnt[seg * k + (assign ? assign[i] : 0)], 1u);
}

// off (nseg, k): where (segment, cluster)'s rows start in perm, clusters in
// order and segments in order within a cluster.  One block: k * nseg is small.
__global__ void seg_offsets_kernel(const unsigned *cnt, size_t nseg, int k,
                                   unsigned long long *off)
{
    __shared__ unsigned long long carry;
    if (threadIdx.x == 0)
        carry = 0;
    __syncthreads();
    for (int j0 = 0; j0 < k; j0 += blockDim.x) {
        int j = j0 + (int)threadIdx.x;
        __shared__ unsigned long long tot[kThreads];
        unsigned long long t = 0;
        if (j < k)
            for (size_t g = 0; g < nseg; g++)
                t += cnt[g * k + j];
        tot[threadIdx.x] = t;
        __syncthreads();
        if (threadIdx.x == 0) { // exclusive scan of this chunk's totals
            unsigned long long c = carry;
            for (int u = 0; u < (int)blockDim.x; u++) {
                unsigned long long v = tot[u];
                tot[u] = c;
                c += v;
            }
            carry = c;
        }
        __syncthreads();
        if (j < k) {
            unsigned long long o = tot[threadIdx.x];
            for (size_t g = 0; g < nseg; g++) {
                off[g * k + j] = o;
                o += cnt[g * k + j];
            }
        }
        __syncthreads();
    }
}

// perm: the rows of (segment, cluster) from off[seg][j] on, ascending; one
// thread per pair walks its segment.
__global__ void seg_perm_kernel(const int *assign, size_t n, size_t seg_rows, size_t nseg, int k,
                                const unsigned long long *off, unsigned *perm)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= nseg * (size_t)k)
        return;
    size_t seg = e / k, i0 = seg * seg_rows, i1 = i0 + seg_rows < n ? i0 + seg_rows : n;
    int j = (int)(e % k);
    unsigned long long o = off[e];
    for (size_t i = i0; i < i1; i++)
        if ((assign ? assign[i] : 0) == j)
            perm[o++] = (unsigned)i;
}

__global__ void seg_colsum_sorted_kernel(const float *x, int d, const unsigned *perm,
                                         const unsigned long long *off, const unsigned *cnt,
                                         int k, int nslices, int mode, const double *mean,
                                         double *partial)
{
    int j = blockIdx.x / nslices, slice = blockIdx.x % nslices;
    int t = slice * blockDim.x + threadIdx.x;
    size_t seg = blockIdx.y;
    if (t >= d)
        return;
    double mu = mode == 1 ? mean[t] : 0.0;
    double acc = 0.0;
    const unsigned *rows = perm + off[seg * k + j];
    unsigned m = cnt[seg * k + j];
    for (unsigned r = 0; r < m; r++) {
        double v = x[(size_t)rows[r] * d + t];
        if (mode == 1)
            v = (v - mu) * (v - mu);
        acc += v;
    }
    partial[(seg * k + j) * (size_t)d + t] = acc;
}

static ns_status column_sums(const float *x, size_t n, int d, const int *assign, int k, int mode,
                             const double *mean, double *partial, double *out)
{
    ns_status st = NS_OK;
    size_t nseg = seg_count(n), seg_rows = (n + nseg - 1) / nseg, kd = (size_t)k * d;
    int nslices = (d + kThreads - 1) / kThreads;
    dim3 grid((unsigned)((size_t)k * nslices), (unsigned)nseg);
    const char *how = getenv("NS_CUDA_KMEANS_UPDATE");
    if (!(how && strcmp(how, "scan") == 0) && n <= 0xFFFFFFFFu) {
        unsigned *perm = NULL, *cnt = NULL;
        unsigned long long *off = NULL;
        size_t pairs = nseg * (size_t)k;
        DBUF(B_PERM, perm, n);
        DBUF(B_SEGCNT, cnt, pairs);
        DBUF(B_SEGOFF, off, pairs);
        seg_hist_kernel<<<(unsigned)nseg, kThreads>>>(assign, n, seg_rows, k, cnt);
        LAUNCHED();
        seg_offsets_kernel<<<1, kThreads>>>(cnt, nseg, k, off);
        LAUNCHED();
        seg_perm_kernel<<<(unsigned)((pairs + kThreads - 1) / kThreads), kThreads>>>(
            assign, n, seg_rows, nseg, k, off, perm);
        LAUNCHED();
        seg_colsum_sorted_kernel<<<grid, kThreads>>>(x, d, perm, off, cnt, k, nslices, mode, mean,
                                                     partial);
    } else {
        seg_colsum_kernel<<<grid, kThreads>>>(x, n, d, assign, k, nslices, seg_rows, mode, mean,
                                              partial);
    }
    LAUNCHED();
    seg_reduce_kernel<<<(unsigned)((kd + kThreads - 1) / kThreads), kThreads>>>(partial, nseg, kd,
                                                                               out);
    LAUNCHED();
done:
    return st;
}

__global__ void count_kernel(const int *assign, size_t n, unsigned long long *counts)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        atomicAdd(&counts[assign[i]], 1ull); // integer: exact in any order
}

// c[j] = sums[j] / counts[j]; an empty cluster keeps its centre.
__global__ void centroid_kernel(const double *sums, const unsigned long long *counts, int k, int d,
                                float *c)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)k * d)
        return;
    unsigned long long m = counts[e / d];
    if (m > 0)
        c[e] = (float)(sums[e] / (double)m);
}

extern "C" ns_status ns_cuda_kmeans_fit(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                                        ns_kmeans_result *r)
{
    ns_status st = NS_OK;
    int k = 0, locked = 0;
    double tol_abs = 0.0, *hsums = NULL, *hdist = NULL, *hmean = NULL;
    unsigned long long *hcounts = NULL, *dcounts = NULL;
    float *prev = NULL, *dx = NULL, *dc = NULL;
    int *da = NULL;
    double *dd = NULL, *dpart = NULL, *dsums = NULL, *dmean = NULL;
    size_t kd = 0, nseg = seg_count(n);

    if (!r)
        return ns_error(NS_ERR_USAGE, WHERE ": kmeans: NULL result");
    memset(r, 0, sizeof *r);
    NS_TRY(ns_kmeans_check_fit(WHERE ": kmeans", x, n, d, o));
    k = o->k;
    kd = (size_t)k * d;
    if (o->init) {
        r->centroids = (float *)malloc(kd * sizeof *r->centroids);
        if (r->centroids)
            memcpy(r->centroids, o->init, kd * sizeof *r->centroids);
    } else {
        // The CPU's k-means++ seeds: its fit with zero iterations returns
        // exactly them (plus one assignment pass we do not use).
        ns_kmeans_opts so = *o;
        so.max_iter = 0;
        NS_TRY(ns_kmeans_fit(x, n, d, &so, r));
        free(r->assign);
        free(r->counts);
        r->assign = NULL;
        r->counts = NULL;
    }
    r->k = k;
    r->d = d;
    r->n = n;
    r->iterations = 0;
    r->assign = (int *)malloc(n * sizeof *r->assign);
    r->counts = (size_t *)malloc((size_t)k * sizeof *r->counts);
    hsums = (double *)malloc(kd * sizeof *hsums);
    hdist = (double *)malloc(n * sizeof *hdist);
    hmean = (double *)malloc((size_t)d * sizeof *hmean);
    hcounts = (unsigned long long *)malloc((size_t)k * sizeof *hcounts);
    prev = (float *)malloc(kd * sizeof *prev);
    if (!r->centroids || !r->assign || !r->counts || !hsums || !hdist || !hmean || !hcounts ||
        !prev) {
        st = ns_error(NS_ERR_NOMEM, WHERE ": kmeans: cannot allocate for n=%zu d=%d k=%d", n, d, k);
        goto done;
    }

    locked = 1;
    NS_TRY(ns_det_begin());
    DBUF(B_X, dx, n * (size_t)d);
    DBUF(B_C, dc, kd);
    DBUF(B_ASSIGN, da, n);
    DBUF(B_DIST, dd, n);
    DBUF(B_PART, dpart, nseg * (kd > (size_t)d ? kd : (size_t)d));
    DBUF(B_SUMS, dsums, kd);
    DBUF(B_MEAN, dmean, d);
    DBUF(B_COUNTS, dcounts, k);
    CUDA_TRY(cudaMemcpy(dx, x, n * (size_t)d * sizeof *x, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(dc, r->centroids, kd * sizeof *dc, cudaMemcpyHostToDevice));

    if (o->tol > 0.0) {
        // Mean per-dimension variance (two passes, as the CPU), the scale of tol.
        double total = 0.0;
        NS_TRY(column_sums(dx, n, d, NULL, 1, 0, NULL, dpart, dsums));
        CUDA_TRY(cudaMemcpy(hmean, dsums, (size_t)d * sizeof *hmean, cudaMemcpyDeviceToHost));
        for (int t = 0; t < d; t++)
            hmean[t] /= (double)n;
        CUDA_TRY(cudaMemcpy(dmean, hmean, (size_t)d * sizeof *hmean, cudaMemcpyHostToDevice));
        NS_TRY(column_sums(dx, n, d, NULL, 1, 1, dmean, dpart, dsums));
        CUDA_TRY(cudaMemcpy(hmean, dsums, (size_t)d * sizeof *hmean, cudaMemcpyDeviceToHost));
        for (int t = 0; t < d; t++)
            total += hmean[t] / (double)n;
        tol_abs = o->tol * (total / d);
    }

    for (int it = 1; it <= o->max_iter; it++) {
        double shift = 0.0;
        int empty = 0;
        NS_TRY(assign_pass(dx, n, d, dc, k, da, dd));
        CUDA_TRY(cudaMemset(dcounts, 0, (size_t)k * sizeof *dcounts));
        count_kernel<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads>>>(da, n, dcounts);
        LAUNCHED();
        NS_TRY(column_sums(dx, n, d, da, k, 0, NULL, dpart, dsums));
        CUDA_TRY(cudaMemcpy(hcounts, dcounts, (size_t)k * sizeof *hcounts, cudaMemcpyDeviceToHost));
        for (int j = 0; j < k; j++)
            empty += hcounts[j] == 0;
        if (empty) {
            CUDA_TRY(cudaMemcpy(r->assign, da, n * sizeof *r->assign, cudaMemcpyDeviceToHost));
            CUDA_TRY(cudaMemcpy(hdist, dd, n * sizeof *hdist, cudaMemcpyDeviceToHost));
            CUDA_TRY(cudaMemcpy(hsums, dsums, kd * sizeof *hsums, cudaMemcpyDeviceToHost));
            // The CPU's repair, on host copies: rare, so the round trip does
            // not matter.  r->counts serves as its size_t count array.
            for (int j = 0; j < k; j++)
                r->counts[j] = (size_t)hcounts[j];
            ns_kmeans_repair(x, n, d, k, r->assign, hdist, r->counts, hsums);
            for (int j = 0; j < k; j++)
                hcounts[j] = r->counts[j];
            CUDA_TRY(cudaMemcpy(dsums, hsums, kd * sizeof *hsums, cudaMemcpyHostToDevice));
            CUDA_TRY(cudaMemcpy(dcounts, hcounts, (size_t)k * sizeof *hcounts,
                                cudaMemcpyHostToDevice));
        }
        centroid_kernel<<<(unsigned)((kd + kThreads - 1) / kThreads), kThreads>>>(dsums, dcounts,
                                                                                  k, d, dc);
        LAUNCHED();
        memcpy(prev, r->centroids, kd * sizeof *prev);
        CUDA_TRY(cudaMemcpy(r->centroids, dc, kd * sizeof *dc, cudaMemcpyDeviceToHost));
        for (int j = 0; j < k; j++)
            shift += ns_dist2_exact(prev + (size_t)j * d, r->centroids + (size_t)j * d, d);
        r->iterations = it;
        if (shift <= tol_abs)
            break;
    }

    // Assignment to the final centres, so assign, counts and inertia agree.
    NS_TRY(assign_pass(dx, n, d, dc, k, da, dd));
    CUDA_TRY(cudaMemcpy(r->assign, da, n * sizeof *r->assign, cudaMemcpyDeviceToHost));
    CUDA_TRY(cudaMemcpy(hdist, dd, n * sizeof *hdist, cudaMemcpyDeviceToHost));
    r->inertia = 0.0;
    for (size_t i = 0; i < n; i++)
        r->inertia += hdist[i];
    memset(r->counts, 0, (size_t)k * sizeof *r->counts);
    for (size_t i = 0; i < n; i++)
        r->counts[r->assign[i]]++;
done:
    if (locked)
        ns_det_end();
    free(hsums);
    free(hdist);
    free(hmean);
    free(hcounts);
    free(prev);
    if (st != NS_OK)
        ns_kmeans_result_release(r);
    return st;
}

