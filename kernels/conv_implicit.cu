// conv_implicit.cu -- dense convolutions as an implicit GEMM: twin of
// ns_ref_conv2d for groups == 1, fp32.
//
// Why: the im2col form writes and reads back a col 9x (3x3) to 49x (the 7x7
// stem) the size of its input and then reorders the GEMM's output; on an H200
// resnet18's stem ran at 7.9 TFLOP/s and its 56x56 layers at 12 that way,
// against 27-29 for the 14x14 and 7x7 layers whose col is small.  Here each
// block gathers its tile of the col from x straight into shared memory and
// writes NCHW with the bias and activation applied, so neither the col nor
// the reorder touches memory.
//
// The GEMM: y (c_out, n * P) = w (c_out, K) . col (K, n * P), K = c_in * kh *
// kw, P = h_out * w_out, col[(ci, ky, kx)][(img, oy, ox)] = x[img, ci, oy * sh
// - pt + ky * dh, ox * sw - pl + kx * dw] (0 outside).  A block of 256
// threads computes a BM x BN tile of y with 8 x 8 values per thread (two 4 x
// 4 quadrants, so shared-memory reads are float4 and conflict-free), over K
// in steps of 8 with two shared buffers: the next step's global loads are in
// flight while the current one is multiplied.  Each value is one fp32 FMA
// chain over k in order.
#include <limits.h>
#include <stdint.h>

#define WHERE "kernels/conv_implicit.cu"
#include "ops_internal.cuh"

namespace {

const int kBK = 8;

struct implicit_args {
    int c_in, h, w, c_out, kh, kw, sh, sw, pt, pl, dh, dw, w_out;
    int P;    // h_out * w_out
    int K;    // c_in * kh * kw
    int cols; // images * P, the GEMM's n
    int vec4; // P % 4 == 0 and y 16-byte aligned: float4 stores
    ns_act_kind kind;
    float a, b;
};

// BM x BN tile, BM * BN = 256 * 64.  BM = 128, BN = 128 in general; BM = 64,
// BN = 256 for layers of <= 64 output channels (resnet's stem and layer1),
// which would leave half of a 128-row tile idle.
template <int BM, int BN>
__global__ void __launch_bounds__(256, 2)
    implicit_conv_kernel(const float *__restrict__ x, const float *__restrict__ wt,
                         const float *__restrict__ bias, float *__restrict__ y,
                         implicit_args g)
{
    static_assert(BM * BN == 256 * 64, "256 threads of 8 x 8 values");
    const int A_PER = BM * kBK / 256; // weights loaded per thread and step (4 or 2)
    const int A_TPR = kBK / A_PER;    // threads per row of the weights' tile
    const int B_TPR = BN / 4;         // threads per row of the col's tile (4 columns each)
    const int B_ROWS = kBK * B_TPR / 256; // col rows loaded per thread and step (1 or 2)
    const int TX = BN / 8;            // threads along n

    __shared__ __align__(16) float As[2][kBK][BM];
    __shared__ __align__(16) float Bs[2][kBK][BN];

    const int tid = threadIdx.x;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int khw = g.kh * g.kw, hw = g.h * g.w;

    // This thread's share of the loads: weights row a_m, k a_k.. a_k + A_PER - 1;
    // col rows b_k + (kBK / B_ROWS) r, columns b_n + B_TPR j (a warp reads 32
    // adjacent columns of one row).  Four columns per thread whatever BN is,
    // because their offsets live in registers: the columns' (img, oy, ox) never
    // change over k, so they are worked out once; a column past the end gets a
    // row far outside the image, so every tap of it reads as 0.
    const int a_m = tid / A_TPR, a_k = (tid % A_TPR) * A_PER;
    const int b_k = tid / B_TPR, b_n = tid % B_TPR;
    int img_off[4], iy0[4], ix0[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int n = n0 + b_n + B_TPR * j;
        if (n < g.cols) {
            int img = n / g.P, q = n - img * g.P;
            int oy = q / g.w_out, ox = q - oy * g.w_out;
            img_off[j] = img * g.c_in * hw;
            iy0[j] = oy * g.sh - g.pt;
            ix0[j] = ox * g.sw - g.pl;
        } else {
            img_off[j] = 0;
            iy0[j] = INT_MIN / 2;
            ix0[j] = 0;
        }
    }
    const bool a_row_ok = m0 + a_m < g.c_out;
    const float *a_src = wt + (size_t)(a_row_ok ? m0 + a_m : 0) * g.K;

    float a_reg[A_PER], b_reg[B_ROWS][4];
    auto load = [&](int k0) {
#pragma unroll
        for (int i = 0; i < A_PER; i++) {
            int k = k0 + a_k + i;
            a_reg[i] = a_row_ok && k < g.K ? __ldg(a_src + k) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < B_ROWS; r++) {
            int k = k0 + b_k + (kBK / B_ROWS) * r;
            int ci = -1, ky = 0, kx = 0;
            if (k < g.K) {
                ci = k / khw;
                int rem = k - ci * khw;
                ky = rem / g.kw;
                kx = rem - ky * g.kw;
            }
            int ch = ci * hw, dy = ky * g.dh, dx = kx * g.dw;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int iy = iy0[j] + dy, ix = ix0[j] + dx;
                bool ok =
                    ci >= 0 && (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;
                b_reg[r][j] = ok ? __ldg(x + img_off[j] + ch + iy * g.w + ix) : 0.0f;
            }
        }
    };
    auto store = [&](int buf) {
#pragma unroll
        for (int i = 0; i < A_PER; i++)
            As[buf][a_k + i][a_m] = a_reg[i];
#pragma unroll
        for (int r = 0; r < B_ROWS; r++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                Bs[buf][b_k + (kBK / B_ROWS) * r][b_n + B_TPR * j] = b_reg[r][j];
    };

    // Rows ty * 4 + {0..3} and BM / 2 + ty * 4 + {0..3}; columns likewise in
    // halves of BN.
    const int tx = tid % TX, ty = tid / TX;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
            acc[i][j] = 0.0f;

    const int steps = (g.K + kBK - 1) / kBK;
    load(0);
    store(0);
    __syncthreads();
    for (int s = 0; s < steps; s++) {
        const int cur = s & 1;
        if (s + 1 < steps)
            load((s + 1) * kBK);
#pragma unroll
        for (int kk = 0; kk < kBK; kk++) {
            float a[8], b[8];
            float4 t;
            t = *reinterpret_cast<const float4 *>(&As[cur][kk][ty * 4]);
            a[0] = t.x, a[1] = t.y, a[2] = t.z, a[3] = t.w;
            t = *reinterpret_cast<const float4 *>(&As[cur][kk][BM / 2 + ty * 4]);
            a[4] = t.x, a[5] = t.y, a[6] = t.z, a[7] = t.w;
            t = *reinterpret_cast<const float4 *>(&Bs[cur][kk][tx * 4]);
            b[0] = t.x, b[1] = t.y, b[2] = t.z, b[3] = t.w;
            t = *reinterpret_cast<const float4 *>(&Bs[cur][kk][BN / 2 + tx * 4]);
            b[4] = t.x, b[5] = t.y, b[6] = t.z, b[7] = t.w;
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int j = 0; j < 8; j++)
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        // One barrier per step: the buffer written here was last read in the
        // step before, which every thread finished before passing its barrier.
        if (s + 1 < steps)
            store(cur ^ 1);
        __syncthreads();
    }

    // y[img, m, q] for column n = img * P + q.  With P % 4 == 0 four columns
    // from a multiple of 4 share one image and are contiguous in y.
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int m = m0 + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4);
        if (m >= g.c_out)
            continue;
        float bv = bias ? __ldg(bias + m) : 0.0f;
#pragma unroll
        for (int h2 = 0; h2 < 2; h2++) {
            int n = n0 + h2 * (BN / 2) + tx * 4;
            if (n >= g.cols)
                continue;
            float v[4];
#pragma unroll
            for (int j = 0; j < 4; j++)
                v[j] = act_apply(g.kind, g.a, g.b, acc[i][h2 * 4 + j] + bv);
            if (g.vec4) {
                int img = n / g.P, q = n - img * g.P;
                *reinterpret_cast<float4 *>(y + ((size_t)img * g.c_out + m) * g.P + q) =
                    make_float4(v[0], v[1], v[2], v[3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    int nj = n + j;
                    if (nj < g.cols) {
                        int img = nj / g.P, q = nj - img * g.P;
                        y[((size_t)img * g.c_out + m) * g.P + q] = v[j];
                    }
                }
            }
        }
    }
}

} // namespace

// Called by ns_cuda_conv2d for an ungrouped conv on an fp32 context with the
// implicit form on; x, w, bias, y device pointers as there.
ns_status ns_cu_conv_implicit(ns_cuda_ctx *ctx, const ns_conv_params *p, const float *x,
                              const float *w, const float *bias, ns_act act, float *y)
{
    ns_status st = NS_OK;
    const size_t P = (size_t)p->h_out * p->w_out;
    const size_t in_img = (size_t)p->c_in * p->h * p->w, out_img = (size_t)p->c_out * P;
    const size_t K = (size_t)p->c_in * p->kh * p->kw;
    size_t big = in_img > out_img ? in_img : out_img;
    if (P > big)
        big = P;
    USAGE_IF(p->groups != 1 || big == 0 || big > (size_t)INT_MAX || K > (size_t)INT_MAX,
             WHERE ": implicit conv: groups %d, %zu values per image: not supported",
             p->groups, big);
    {
        // The kernel's offsets are 32-bit: rounds of images whose input, output
        // and columns all stay under 2^31 (at batch 256 every resnet layer is one).
        int chunk = (int)((size_t)INT_MAX / big);
        if (chunk > p->n)
            chunk = p->n;
        implicit_args g;
        g.c_in = p->c_in, g.h = p->h, g.w = p->w, g.c_out = p->c_out;
        g.kh = p->kh, g.kw = p->kw, g.sh = p->stride_h, g.sw = p->stride_w;
        g.pt = p->pad_top, g.pl = p->pad_left, g.dh = p->dil_h, g.dw = p->dil_w;
        g.w_out = p->w_out, g.P = (int)P, g.K = (int)K;
        g.kind = act.kind, g.a = act.a, g.b = act.b;
        for (int i0 = 0; i0 < p->n; i0 += chunk) {
            int imgs = p->n - i0 < chunk ? p->n - i0 : chunk;
            float *yr = y + (size_t)i0 * out_img;
            g.cols = (int)(P * (size_t)imgs);
            g.vec4 = P % 4 == 0 && ((uintptr_t)yr & 15) == 0;
            const float *xr = x + (size_t)i0 * in_img;
            if (p->c_out <= 64) {
                dim3 grid((unsigned)((g.cols + 255) / 256), (unsigned)((p->c_out + 63) / 64));
                implicit_conv_kernel<64, 256><<<grid, 256, 0, ctx->stream>>>(xr, w, bias, yr, g);
            } else {
                dim3 grid((unsigned)((g.cols + 127) / 128), (unsigned)((p->c_out + 127) / 128));
                implicit_conv_kernel<128, 128><<<grid, 256, 0, ctx->stream>>>(xr, w, bias, yr, g);
            }
            CUDA_TRY(cudaGetLastError());
        }
    }
done:
    return st;
}
