/* kcenter_bench.c -- k-center greedy at the scale (200,000 x 512,
 * budget 2,000) on embeddings shaped like ours: frames of a clip are near
 * duplicates, clips of a camera and condition share a scene.  Writes the
 * matrix for the Python peers (--dump FILE), or times ns_kcenter_greedy.
 *   kcenter_bench [--n N] [--d D] [--budget B] [--dump FILE]
 * Prints kcenter_seconds, kcenter_cpu_seconds, evaluated_share, peak_rss_mb
 * and the first picks (the peers print the same, to compare). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nightshift/kcenter.h"

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u1 = ((double)(rng(s) >> 11) + 1.0) * 0x1.0p-53, u2 = (double)(rng(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static double now(int cpu)
{
    struct timespec t;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t n = 200000, budget = 2000;
    int d = 512;
    const char *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--d")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--budget")) budget = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dump")) dump = argv[i + 1];
    }
    /* 400 scenes (say 8 cameras x 50 conditions), clips of 32 frames: clip
     * offset 0.35, frame jitter 0.1 of the scene spread, then unit length */
    const size_t n_scenes = 400, per_clip = 32;
    float *x = malloc(n * (size_t)d * sizeof *x), *sc = malloc(n_scenes * (size_t)d * sizeof *sc);
    float *co = malloc((size_t)d * sizeof *co);
    uint64_t s = 42;
    for (size_t i = 0; i < n_scenes * (size_t)d; i++)
        sc[i] = gauss(&s);
    for (size_t i = 0; i < n; i++) {
        if (i % per_clip == 0) {
            size_t k = rng(&s) % n_scenes;
            for (int t = 0; t < d; t++)
                co[t] = sc[k * (size_t)d + t] + 0.35f * gauss(&s);
        }
        double nn = 0;
        float *xi = x + i * (size_t)d;
        for (int t = 0; t < d; t++) {
            xi[t] = co[t] + 0.1f * gauss(&s);
            nn += (double)xi[t] * xi[t];
        }
        for (int t = 0; t < d; t++)
            xi[t] = (float)(xi[t] / sqrt(nn));
    }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(x, sizeof *x, n * (size_t)d, f) != n * (size_t)d || fclose(f)) {
            fprintf(stderr, "cannot write %s\n", dump);
            return 1;
        }
        return 0;
    }
    size_t *picks = malloc(budget * sizeof *picks), got = 0;
    double t0 = now(0), c0 = now(1);
    ns_kcenter *k = NULL;
    if (ns_kcenter_create(x, n, d, budget, &k) != NS_OK) {
        fprintf(stderr, "%s\n", ns_errmsg());
        return 1;
    }
    /* the peers start at row 0 too */
    for (size_t b = 0; b < budget; b++) {
        size_t r = 0;
        float g;
        if (b > 0 && !ns_kcenter_farthest(k, NULL, &r, &g))
            break;
        picks[got++] = r;
        if (ns_kcenter_add(k, r) != NS_OK) {
            fprintf(stderr, "%s\n", ns_errmsg());
            return 1;
        }
    }
    double w = now(0) - t0, c = now(1) - c0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("kcenter_seconds %.3f\nkcenter_cpu_seconds %.3f\n", w, c);
    printf("evaluated_share %.4f\n", (double)ns_kcenter_evaluated(k) / ((double)n * (double)got));
    printf("peak_rss_mb %.0f (data %.0f)\n", (double)ru.ru_maxrss / 1024.0,
           (double)n * d * 4 / 1048576.0);
    printf("first_picks");
    for (size_t b = 0; b < got && b < 8; b++)
        printf(" %zu", picks[b]);
    printf("\n");
    ns_kcenter_free(k);
    free(picks);
    free(x);
    free(sc);
    free(co);
    return 0;
}
