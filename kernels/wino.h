/* wino.h -- Winograd F(2x2, 3x3) tile transforms, shared by the plain C
 * reference (ref.c) and the CUDA kernels (conv.cu): one source for both.
 *
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR
 * 2016).  A 2x2 output tile of a 3x3 stride-1 convolution comes from a 4x4
 * input tile d:  Y = A^T [ (G g G^T) .* (B^T d B) ] A,  summed over input
 * channels inside the brackets: 16 multiplications per tile and channel pair
 * instead of 36, the sums over channels being 16 GEMMs.  Floating-point error
 * grows by a small constant factor over direct convolution (the transforms'
 * entries are 0, +-1 and +-1/2).
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * Tiles are row-major 4x4 (u, d, v, m) and 2x2 (y).  Not a public contract. */
#ifndef NIGHTSHIFT_WINO_H
#define NIGHTSHIFT_WINO_H

#ifdef __CUDACC__
#define NS_WINO_FN static inline __host__ __device__
#else
#define NS_WINO_FN static inline
#endif

/* u = G g G^T for a 3x3 filter g (row-major). */
NS_WINO_FN void ns_wino_filter(const float *g, float *u)
{
    float t[4][3];
    for (int j = 0; j < 3; j++) {
        float a = g[j], b = g[3 + j], c = g[6 + j];
        t[0][j] = a;
        t[1][j] = 0.5f * (a + b + c);
        t[2][j] = 0.5f * (a - b + c);
        t[3][j] = c;
    }
    for (int i = 0; i < 4; i++) {
        float a = t[i][0], b = t[i][1], c = t[i][2];
        u[i * 4 + 0] = a;
        u[i * 4 + 1] = 0.5f * (a + b + c);
        u[i * 4 + 2] = 0.5f * (a - b + c);
        u[i * 4 + 3] = c;
    }
}

/* v = B^T d B. */
NS_WINO_FN void ns_wino_input(const float *d, float *v)
{
    float t[4][4];
    for (int j = 0; j < 4; j++) {
        float d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j];
        t[0][j] = d0 - d2;
        t[1][j] = d1 + d2;
        t[2][j] = d2 - d1;
        t[3][j] = d1 - d3;
    }
    for (int i = 0; i < 4; i++) {
        float d0 = t[i][0], d1 = t[i][1], d2 = t[i][2], d3 = t[i][3];
        v[i * 4 + 0] = d0 - d2;
        v[i * 4 + 1] = d1 + d2;
        v[i * 4 + 2] = d2 - d1;
        v[i * 4 + 3] = d1 - d3;
    }
}

/* y = A^T m A. */
NS_WINO_FN void ns_wino_output(const float *m, float *y)
{
    float t[2][4];
    for (int j = 0; j < 4; j++) {
        float m0 = m[j], m1 = m[4 + j], m2 = m[8 + j], m3 = m[12 + j];
        t[0][j] = m0 + m1 + m2;
        t[1][j] = m1 - m2 - m3;
    }
    for (int i = 0; i < 2; i++) {
        y[i * 2 + 0] = t[i][0] + t[i][1] + t[i][2];
        y[i * 2 + 1] = t[i][1] - t[i][2] - t[i][3];
    }
}

/* The input side of one tile: the 4x4 patch of an h x w plane whose top
 * left is (y0, x0), zero outside the plane, transformed, its 16 values
 * stored at v[xi * stride]. */
NS_WINO_FN void ns_wino_input_tile(const float *plane, int h, int w, int y0, int x0, float *v,
                                   size_t stride)
{
    float d[16], t[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int iy = y0 + i, ix = x0 + j;
            d[i * 4 + j] = iy >= 0 && iy < h && ix >= 0 && ix < w ? plane[iy * w + ix] : 0.0f;
        }
    ns_wino_input(d, t);
    for (int xi = 0; xi < 16; xi++)
        v[xi * stride] = t[xi];
}

/* The output side of one tile: y (2x2) from the 16 products at m[xi * stride]. */
NS_WINO_FN void ns_wino_output_tile(const float *m, size_t stride, float *y)
{
    float t[16];
    for (int xi = 0; xi < 16; xi++)
        t[xi] = m[xi * stride];
    ns_wino_output(t, y);
}

/* 3x3, stride 1, no dilation, no groups: what the transforms serve. */
NS_WINO_FN int ns_wino_ok(int kh, int kw, int sh, int sw, int dh, int dw, int groups)
{
    return kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 && groups == 1;
}

#endif
