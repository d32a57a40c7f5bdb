/* conv_bench.c -- GFLOP/s of ns_cpu_conv2d on resnet18-like shapes, batch 16,
 * next to plain cblas_sgemm at the equivalent GEMM shape (the same per-image
 * M x N x K run n times, threaded by OpenBLAS), and next to the threading
 * strategy ns_cpu_conv2d did not choose: images in turn, each sgemm threaded
 * by OpenBLAS (ns_cpu_conv2d itself runs images in parallel, one
 * single-threaded sgemm each).
 *
 * Build and run from the repository root:
 *   cc -O3 -march=native -Iinclude bench/embed/conv_bench.c src/embed/ops_cpu.c \
 *      src/embed/ops_ref.c src/core/status.c src/io/resize.c \
 *      -lopenblas -fopenmp -lm -lpthread -o /tmp/conv_bench && /tmp/conv_bench
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "nightshift/ops.h"

typedef struct shape {
    const char *name;
    int c_in, h, c_out, k, stride, pad;
} shape;

static const shape shapes[] = {
    {"stem 7x7 s2 3->64 @224", 3, 224, 64, 7, 2, 3},
    {"3x3 64->64 @56", 64, 56, 64, 3, 1, 1},
    {"3x3 s2 64->128 @56", 64, 56, 128, 3, 2, 1},
    {"3x3 128->128 @28", 128, 28, 128, 3, 1, 1},
    {"1x1 s2 128->256 @28", 128, 28, 256, 1, 2, 0},
    {"3x3 256->256 @14", 256, 14, 256, 3, 1, 1},
    {"1x1 256->256 @14", 256, 14, 256, 1, 1, 0},
    {"3x3 512->512 @7", 512, 7, 512, 3, 1, 1},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static float *randf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand() / RAND_MAX - 0.5f;
    return p;
}

/* Best of `reps` timings of fn. */
#define BEST(reps, secs, stmt)                                                            \
    do {                                                                                  \
        secs = 1e30;                                                                      \
        for (int r_ = 0; r_ < (reps); r_++) {                                             \
            double t0_ = now();                                                           \
            stmt;                                                                         \
            double t_ = now() - t0_;                                                      \
            secs = t_ < secs ? t_ : secs;                                                 \
        }                                                                                 \
    } while (0)

/* The alternative: images in turn (batch 1 each, which ns_cpu_conv2d runs
 * with sgemm threaded by OpenBLAS). */
static void conv_image_serial(const ns_conv_params *p, const float *x, const float *w,
                              const float *bias, ns_act act, float *y, float *ws)
{
    ns_conv_params one = *p;
    one.n = 1;
    size_t xs = (size_t)p->c_in * p->h * p->w, ys = (size_t)p->c_out * p->h_out * p->w_out;
    for (int b = 0; b < p->n; b++)
        ns_cpu_conv2d(&one, x + b * xs, w, bias, act, y + b * ys, ws);
}

int main(void)
{
    const int n = 16, reps = 3, threads = omp_get_max_threads();
    ns_act relu = {NS_ACT_RELU, 0, 0};
    printf("batch %d, %d threads, OpenBLAS core %s, OPENBLAS_CORETYPE=%s\n", n, threads,
           openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    printf("%-26s %12s %12s %14s\n", "shape", "conv GF/s", "sgemm GF/s", "in-turn GF/s");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *sh = &shapes[s];
        ns_conv_params p = {.n = n, .c_in = sh->c_in, .h = sh->h, .w = sh->h, .c_out = sh->c_out,
                            .kh = sh->k, .kw = sh->k, .stride_h = sh->stride,
                            .stride_w = sh->stride, .pad_top = sh->pad, .pad_left = sh->pad,
                            .pad_bottom = sh->pad, .pad_right = sh->pad, .dil_h = 1, .dil_w = 1,
                            .groups = 1};
        if (ns_conv_prepare(&p) != NS_OK) {
            fprintf(stderr, "%s: %s\n", sh->name, ns_errmsg());
            return 1;
        }
        int M = p.c_out, N = p.h_out * p.w_out, K = p.c_in * p.kh * p.kw;
        double gflop = 2.0 * n * M * N * K * 1e-9;
        float *x = randf((size_t)n * p.c_in * p.h * p.w), *w = randf((size_t)M * K);
        float *bias = randf((size_t)M), *y = randf((size_t)n * M * N);
        float *col = randf((size_t)K * N);
        float *ws = randf(ns_conv_workspace_floats(&p, threads) + 1);
        double t_conv, t_gemm, t_ser;

        ns_cpu_conv2d(&p, x, w, bias, relu, y, ws);
        BEST(reps, t_conv, ns_cpu_conv2d(&p, x, w, bias, relu, y, ws));
        BEST(reps, t_gemm, for (int b = 0; b < n; b++) cblas_sgemm(
                               CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, w, K,
                               col, N, 0.0f, y + (size_t)b * M * N, N));
        BEST(reps, t_ser, conv_image_serial(&p, x, w, bias, relu, y, ws));
        printf("%-26s %12.1f %12.1f %14.1f\n", sh->name, gflop / t_conv, gflop / t_gemm,
               gflop / t_ser);
        free(x), free(w), free(bias), free(y), free(col), free(ws);
    }
    return 0;
}
