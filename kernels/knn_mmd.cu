// knn_mmd.cu -- exact kNN and the MMD block sums on the GPU, twins of
// ns_knn_search and ns_mmd_block_sums (see detect.cu for the shared design:
// SGEMM distance tiles, double sums in a fixed order, cached buffers).
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WHERE "kernels/knn_mmd.cu"
#include "detect_internal.cuh"

// ---- kNN -------------------------------------------------------------------------------------

#define KNN_KMAX 128 // per-lane candidate lists live in local memory

// (v, i) before (w, j): smaller distance, then lower base index; -1 (an
// empty slot) sorts after every real index.
__device__ __forceinline__ bool knn_less(float v, long long i, float w, long long j)
{
    return v < w || (v == w && (unsigned long long)i < (unsigned long long)j);
}

__global__ void knn_init_kernel(float *run_d, long long *run_i, size_t total)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < total) {
        run_d[e] = INFINITY;
        run_i[e] = -1;
    }
}

// One warp per query of the tile.  Lane 0 starts from the running top-k of
// the earlier base tiles, every lane keeps a sorted top-k of the columns it
// scans, and k rounds of a warp argmin merge the 32 lists back into the
// running top-k: the k smallest (distance, index) pairs, whatever the tiling.
__global__ void knn_select_kernel(const float *g, int tq, int tb, const float *qq, const float *bb,
                                  const long long *qg, const long long *bg, long long b0, int k,
                                  float *run_d, long long *run_i)
{
    int r = (int)(((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (r >= tq)
        return;
    float ld[KNN_KMAX];
    long long li[KNN_KMAX];
    int cnt = 0;
    float *rd = run_d + (size_t)r * k;
    long long *ri = run_i + (size_t)r * k;
    if (lane == 0)
        for (; cnt < k && ri[cnt] >= 0; cnt++) {
            ld[cnt] = rd[cnt];
            li[cnt] = ri[cnt];
        }
    const float *row = g + (size_t)r * tb;
    float q2 = qq[r];
    long long grp = qg ? qg[r] : 0;
    for (int c = lane; c < tb; c += 32) {
        if (qg && bg[c] == grp)
            continue;
        float v = fmaxf(q2 + bb[c] + row[c], 0.0f);
        long long gi = b0 + c;
        if (v != v || (cnt == k && !knn_less(v, gi, ld[k - 1], li[k - 1])))
            continue;
        int p = cnt < k ? cnt : k - 1;
        for (; p > 0 && knn_less(v, gi, ld[p - 1], li[p - 1]); p--) {
            ld[p] = ld[p - 1];
            li[p] = li[p - 1];
        }
        ld[p] = v;
        li[p] = gi;
        if (cnt < k)
            cnt++;
    }
    int head = 0;
    for (int s = 0; s < k; s++) {
        float bv = head < cnt ? ld[head] : INFINITY;
        long long bi = head < cnt ? li[head] : -1;
        int bl = lane;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            long long oi = __shfl_xor_sync(0xffffffffu, bi, o);
            int ol = __shfl_xor_sync(0xffffffffu, bl, o);
            if (knn_less(ov, oi, bv, bi) || (ov == bv && oi == bi && ol < bl)) {
                bv = ov;
                bi = oi;
                bl = ol;
            }
        }
        if (lane == bl && head < cnt)
            head++;
        if (lane == 0) {
            rd[s] = bv;
            ri[s] = bi;
        }
    }
}

// One warp per query: exact distances of the k found neighbours in double,
// re-sorted (the GEMM form may have ordered near-ties differently), written
// as Euclidean distances.
__global__ void knn_finish_kernel(const float *q, const float *b, int d, int tq, int k,
                                  const long long *run_i, size_t q0, float *dist, long long *idx)
{
    int r = (int)(((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (r >= tq)
        return;
    double ld[KNN_KMAX];
    long long li[KNN_KMAX];
    size_t qi = q0 + (size_t)r;
    for (int s = 0; s < k; s++) {
        long long j = run_i[(size_t)r * k + s];
        double dd = INFINITY;
        if (j >= 0)
            dd = warp_dist2(q + qi * (size_t)d, b + (size_t)j * d, d, lane);
        if (lane == 0) {
            int p = s;
            for (; p > 0 && (dd < ld[p - 1] || (dd == ld[p - 1] &&
                                                 (unsigned long long)j <
                                                     (unsigned long long)li[p - 1]));
                 p--) {
                ld[p] = ld[p - 1];
                li[p] = li[p - 1];
            }
            ld[p] = dd;
            li[p] = j;
        }
    }
    if (lane == 0)
        for (int s = 0; s < k; s++) {
            dist[qi * k + s] = li[s] >= 0 ? (float)sqrt(ld[s]) : INFINITY;
            idx[qi * k + s] = li[s];
        }
}

extern "C" ns_status ns_cuda_knn_search(const float *q, size_t nq, const float *b, size_t nb,
                                        int d, int k, const int64_t *qgroup,
                                        const int64_t *bgroup, int threads, float *dist,
                                        int64_t *idx)
{
    ns_status st = NS_OK;
    int locked = 0;
    float *dq = NULL, *db = NULL, *dqq = NULL, *dbb = NULL, *g = NULL, *rd = NULL, *od = NULL;
    long long *dqg = NULL, *dbg = NULL, *ri = NULL, *oi = NULL;
    size_t tb = 0, tq = 0;
    (void)threads; // the GPU path has no host threads to size
    // Checks in the CPU path's order, so both answer bad input alike.
    if (d < 1 || k < 1)
        return ns_error(NS_ERR_USAGE, WHERE ": knn: need d >= 1 and k >= 1 (d=%d k=%d)", d, k);
    if (k > KNN_KMAX)
        return ns_error(NS_ERR_UNSUPPORTED, WHERE ": knn: k=%d above the GPU limit %d", k,
                        KNN_KMAX);
    if (!qgroup != !bgroup)
        return ns_error(NS_ERR_USAGE, WHERE ": knn: qgroup and bgroup must be given together");
    if (nq == 0)
        return NS_OK;
    if (!q || !dist || (nb > 0 && !b))
        return ns_error(NS_ERR_USAGE, WHERE ": knn: NULL argument");
    if (nb == 0) {
        for (size_t e = 0; e < nq * (size_t)k; e++) {
            dist[e] = INFINITY;
            if (idx)
                idx[e] = -1;
        }
        return NS_OK;
    }
    tb = nb < 16384 ? nb : 16384;
    tq = kTileFloats / tb;
    tq = tq < nq ? tq : nq;
    locked = 1;
    NS_TRY(ns_det_begin());
    DBUF(B_X, dq, nq * (size_t)d);
    DBUF(B_C, db, nb * (size_t)d);
    DBUF(B_XX, dqq, nq);
    DBUF(B_CC, dbb, nb);
    DBUF(B_G, g, tq * tb);
    DBUF(B_RUND, rd, tq * (size_t)k);
    DBUF(B_RUNI, ri, tq * (size_t)k);
    DBUF(B_OUTD, od, nq * (size_t)k);
    DBUF(B_OUTI, oi, nq * (size_t)k);
    CUDA_TRY(cudaMemcpy(dq, q, nq * (size_t)d * sizeof *q, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(db, b, nb * (size_t)d * sizeof *b, cudaMemcpyHostToDevice));
    if (qgroup) {
        DBUF(B_QG, dqg, nq);
        DBUF(B_BG, dbg, nb);
        CUDA_TRY(cudaMemcpy(dqg, qgroup, nq * sizeof *qgroup, cudaMemcpyHostToDevice));
        CUDA_TRY(cudaMemcpy(dbg, bgroup, nb * sizeof *bgroup, cudaMemcpyHostToDevice));
    }
    NS_TRY(ns_det_norms(dq, nq, d, dqq));
    NS_TRY(ns_det_norms(db, nb, d, dbb));
    for (size_t q0 = 0; q0 < nq; q0 += tq) {
        int m = (int)(nq - q0 < tq ? nq - q0 : tq);
        knn_init_kernel<<<(unsigned)(((size_t)m * k + kThreads - 1) / kThreads), kThreads>>>(
            rd, ri, (size_t)m * k);
        LAUNCHED();
        for (size_t b0 = 0; b0 < nb; b0 += tb) {
            int nc = (int)(nb - b0 < tb ? nb - b0 : tb);
            NS_TRY(ns_det_gemm_m2(dq + q0 * (size_t)d, m, db + b0 * (size_t)d, nc, d, g));
            knn_select_kernel<<<warps_grid((size_t)m), kThreads>>>(
                g, m, nc, dqq + q0, dbb + b0, dqg ? dqg + q0 : NULL, dbg ? dbg + b0 : NULL,
                (long long)b0, k, rd, ri);
            LAUNCHED();
        }
        knn_finish_kernel<<<warps_grid((size_t)m), kThreads>>>(dq, db, d, m, k, ri, q0, od, oi);
        LAUNCHED();
    }
    CUDA_TRY(cudaMemcpy(dist, od, nq * (size_t)k * sizeof *dist, cudaMemcpyDeviceToHost));
    if (idx)
        CUDA_TRY(cudaMemcpy(idx, oi, nq * (size_t)k * sizeof *idx, cudaMemcpyDeviceToHost));
done:
    if (locked)
        ns_det_end();
    return st;
}

// ---- MMD block sums ----------------------------------------------------------------------------

// Rows are cut into square tiles; within a tile, a segment is the part of
// one block (clip) that falls in it: (block, first row, end row), rows
// relative to the tile.  Segments of tile t are seg[tile_off[t] .. tile_off[t+1]).
typedef struct mmd_seg {
    int block, lo, hi;
} mmd_seg;

// Stage 1, one warp per row of the row tile: for each column segment, the
// sum over its columns of exp(-d2 * gamma), in double, into
// rowpart (rows, ncs).  On a diagonal tile k(x_i, x_i) is exactly 1.
__global__ void mmd_rows_kernel(const float *g, int ti, int tj, const float *xxi, const float *xxj,
                                const mmd_seg *cseg, int ncs, float gamma, int diag,
                                double *rowpart)
{
    int r = (int)(((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (r >= ti)
        return;
    const float *row = g + (size_t)r * tj;
    float a2 = xxi[r];
    for (int s = 0; s < ncs; s++) {
        double acc = 0.0;
        for (int c = cseg[s].lo + lane; c < cseg[s].hi; c += 32) {
            float v = (diag && c == r) ? 1.0f : expf(-fmaxf(a2 + xxj[c] + row[c], 0.0f) * gamma);
            acc += v;
        }
        acc = warp_sum(acc);
        if (lane == 0)
            rowpart[(size_t)r * ncs + s] = acc;
    }
}

// Stage 2, one warp per (row segment, column segment): sums rowpart down
// the row segment and adds it to S.  In one launch each S cell has one
// writer (blocks are contiguous, so no two blocks both straddle the same
// pair of tiles), hence plain adds, in tile order: deterministic.  Off the
// diagonal the mirror cell gets the same value; on a diagonal tile only
// pairs with b >= a run, so S comes out exactly symmetric.
__global__ void mmd_blocks_kernel(const double *rowpart, const mmd_seg *rseg, int nrs,
                                  const mmd_seg *cseg, int ncs, int diag, size_t nblocks,
                                  double *S)
{
    size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= (size_t)nrs * ncs)
        return;
    int rs = (int)(w / ncs), cs = (int)(w % ncs);
    size_t a = (size_t)rseg[rs].block, bb = (size_t)cseg[cs].block;
    if (diag && bb < a)
        return;
    double acc = 0.0;
    for (int r = rseg[rs].lo + lane; r < rseg[rs].hi; r += 32)
        acc += rowpart[(size_t)r * ncs + cs];
    acc = warp_sum(acc);
    if (lane != 0)
        return;
    if (a == bb) {
        S[a * nblocks + a] += diag ? acc : 2.0 * acc;
    } else {
        S[a * nblocks + bb] += acc;
        S[bb * nblocks + a] += acc;
    }
}

extern "C" ns_status ns_cuda_mmd_block_sums(const float *x, size_t n, int d, const size_t *off,
                                            size_t nblocks, double sigma, int threads, double *S)
{
    ns_status st = NS_OK;
    int locked = 0, maxseg = 0;
    size_t tile = 4096, ntiles = 0, nseg_all = 0;
    mmd_seg *hseg = NULL, *dseg = NULL;
    int *tile_off = NULL;
    float *dx = NULL, *dxx = NULL, *g = NULL;
    double *rowpart = NULL, *dS = NULL;
    (void)threads;
    if (!x || !off || !S)
        return ns_error(NS_ERR_USAGE, WHERE ": mmd: NULL argument");
    if (d < 1 || nblocks < 1 || !(sigma > 0.0) || !isfinite(sigma))
        return ns_error(NS_ERR_USAGE, WHERE ": mmd: need d >= 1, nblocks >= 1, sigma > 0 "
                        "(d=%d nblocks=%zu sigma=%g)", d, nblocks, sigma);
    if (off[0] != 0 || off[nblocks] != n)
        return ns_error(NS_ERR_USAGE, WHERE ": mmd: offsets must run from 0 to n=%zu "
                        "(got %zu..%zu)", n, off[0], off[nblocks]);
    for (size_t a = 0; a < nblocks; a++)
        if (off[a + 1] < off[a])
            return ns_error(NS_ERR_USAGE, WHERE ": mmd: offsets decrease at block %zu", a);
    if (nblocks > INT_MAX)
        return ns_error(NS_ERR_UNSUPPORTED, WHERE ": mmd: %zu blocks is too many", nblocks);
    memset(S, 0, nblocks * nblocks * sizeof *S);
    if (n == 0)
        return NS_OK;

    // Segments of every tile, computed once: at most (blocks + tiles) of them.
    tile = n < tile ? n : tile;
    ntiles = (n + tile - 1) / tile;
    hseg = (mmd_seg *)malloc((nblocks + ntiles) * sizeof *hseg);
    tile_off = (int *)malloc((ntiles + 1) * sizeof *tile_off);
    if (!hseg || !tile_off) {
        st = ns_error(NS_ERR_NOMEM, WHERE ": mmd: cannot allocate segments (%zu blocks)", nblocks);
        goto done;
    }
    {
        size_t a = 0;
        for (size_t t = 0; t < ntiles; t++) {
            size_t r0 = t * tile, r1 = r0 + tile < n ? r0 + tile : n;
            tile_off[t] = (int)nseg_all;
            while (a < nblocks && off[a + 1] <= r0)
                a++;
            for (size_t e = a; e < nblocks && off[e] < r1; e++) {
                if (off[e + 1] == off[e])
                    continue;
                size_t lo = off[e] > r0 ? off[e] : r0, hi = off[e + 1] < r1 ? off[e + 1] : r1;
                hseg[nseg_all].block = (int)e;
                hseg[nseg_all].lo = (int)(lo - r0);
                hseg[nseg_all].hi = (int)(hi - r0);
                nseg_all++;
            }
            int cnt = (int)nseg_all - tile_off[t];
            maxseg = cnt > maxseg ? cnt : maxseg;
        }
        tile_off[ntiles] = (int)nseg_all;
    }

    locked = 1;
    NS_TRY(ns_det_begin());
    DBUF(B_X, dx, n * (size_t)d);
    DBUF(B_XX, dxx, n);
    DBUF(B_G, g, tile * tile);
    DBUF(B_ROWPART, rowpart, tile * (size_t)maxseg);
    DBUF(B_SEG, dseg, nseg_all);
    DBUF(B_S, dS, nblocks * nblocks);
    CUDA_TRY(cudaMemcpy(dx, x, n * (size_t)d * sizeof *x, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(dseg, hseg, nseg_all * sizeof *hseg, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemset(dS, 0, nblocks * nblocks * sizeof *dS));
    NS_TRY(ns_det_norms(dx, n, d, dxx));
    {
        float gamma = (float)(1.0 / (2.0 * sigma * sigma));
        for (size_t ti = 0; ti < ntiles; ti++)
            for (size_t tj = ti; tj < ntiles; tj++) {
                size_t i0 = ti * tile, j0 = tj * tile;
                int mi = (int)(n - i0 < tile ? n - i0 : tile);
                int mj = (int)(n - j0 < tile ? n - j0 : tile);
                int nrs = tile_off[ti + 1] - tile_off[ti], ncs = tile_off[tj + 1] - tile_off[tj];
                int diag = ti == tj;
                NS_TRY(ns_det_gemm_m2(dx + i0 * (size_t)d, mi, dx + j0 * (size_t)d, mj, d, g));
                mmd_rows_kernel<<<warps_grid((size_t)mi), kThreads>>>(
                    g, mi, mj, dxx + i0, dxx + j0, dseg + tile_off[tj], ncs, gamma, diag,
                    rowpart);
                LAUNCHED();
                mmd_blocks_kernel<<<warps_grid((size_t)nrs * ncs), kThreads>>>(
                    rowpart, dseg + tile_off[ti], nrs, dseg + tile_off[tj], ncs, diag, nblocks,
                    dS);
                LAUNCHED();
            }
    }
    CUDA_TRY(cudaMemcpy(S, dS, nblocks * nblocks * sizeof *S, cudaMemcpyDeviceToHost));
done:
    if (locked)
        ns_det_end();
    free(hseg);
    free(tile_off);
    return st;
}
