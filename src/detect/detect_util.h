/* detect_util.h -- small helpers the detect-stage files (and their CUDA
 * twins in kernels/) share: the splitmix64 stream, the exact squared
 * distance, qsort comparators.  Plain C, header-only.  Not a public contract. */
#ifndef NIGHTSHIFT_DETECT_UTIL_H
#define NIGHTSHIFT_DETECT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define NS_SM64_GOLDEN 0x9E3779B97F4A7C15ull

/* splitmix64's output function: also a good 64-bit hash of z. */
static inline uint64_t ns_sm64_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* splitmix64 step: portable, the same stream on every platform (unlike rand()). */
static inline uint64_t ns_sm64_next(uint64_t *s)
{
    return ns_sm64_mix(*s += NS_SM64_GOLDEN);
}

/* Exact squared distance of two rows, one running sum in double (the
 * reference order: fast paths with their own order keep their own). */
static inline double ns_dist2_exact(const float *a, const float *b, int d)
{
    double s = 0.0;
    for (int t = 0; t < d; t++) {
        double u = (double)a[t] - (double)b[t];
        s += u * u;
    }
    return s;
}

/* Ascending qsort comparators (NaN-free input). */
static inline int ns_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static inline int ns_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline int ns_cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

#endif
