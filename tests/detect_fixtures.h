/* detect_fixtures.h -- seeded random data for the detect-stage suites (kNN,
 * k-means, MMD, detect, their GPU twins): the same splitmix64 stream in
 * every suite, so a failing case is reproduced from its seed alone. */
#ifndef NIGHTSHIFT_TESTS_DETECT_FIXTURES_H
#define NIGHTSHIFT_TESTS_DETECT_FIXTURES_H

#include <math.h>
#include <stdint.h>

#include "helpers.h"
#include "nightshift/sha256.h"
#include "nightshift/store.h"

/* splitmix64 step. */
static inline uint64_t ns_test_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float ns_test_rng_unif(uint64_t *s)
{
    return (float)((double)(ns_test_rng_next(s) >> 11) * 0x1.0p-52 - 1.0);
}

/* Standard normal (Box-Muller, two draws per value). */
static inline double ns_test_rng_gauss(uint64_t *s)
{
    double u1 = ((double)(ns_test_rng_next(s) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(ns_test_rng_next(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* malloc that fails the test instead of returning NULL (also for 0 bytes). */
static inline void *ns_test_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A (rows, cols) matrix uniform in [-1, 1) from seed; caller frees. */
static inline float *ns_test_rand_mat(size_t rows, int cols, uint64_t seed)
{
    float *m = ns_test_xmalloc(rows * (size_t)cols * sizeof *m);
    for (size_t i = 0; i < rows * (size_t)cols; i++)
        m[i] = ns_test_rng_unif(&seed);
    return m;
}

/* A clip's sha256 (hex): the digest of "<tag>-<n>", distinct per tag and n. */
static inline void ns_test_clip_sha(const char *tag, int n, char hex[NS_SHA256_HEX])
{
    char buf[64];
    uint8_t d[NS_SHA256_LEN];
    snprintf(buf, sizeof buf, "%s-%d", tag, n);
    ns_sha256_buf(buf, strlen(buf), d);
    ns_sha256_hex(d, hex);
}

#endif
