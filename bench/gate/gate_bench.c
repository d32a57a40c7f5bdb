/* gate_bench.c -- the gate's paired clip bootstrap at the scale:
 * 100,000 frames in 2,000 clips, about 30 slices (10 cameras, 3 nights, 12
 * conditions, 5 classes, all), 10,000 replicates.  Times ns_gate_run (per-
 * clip sums, the counts x sums GEMMs, every check's interval, Holm) and
 * writes the per-frame arrays for the numpy peer (peer_gate.py) to read.
 *
 *   nightshift-bench-gate [--frames N] [--clips C] [--reps B] [--threads T]
 *                         [--dump DIR] [--repeat R]
 * Prints "gate_seconds <median>" and every run's time, then the primary
 * check's delta and interval for a cross-check with the peer.
 */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/evalset.h"
#include "nightshift/gate.h"

#define K 5

static uint64_t rng_state = 0x1234567ull;

static double unif(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static int dump(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "gate_bench: cannot write %s\n", path);
        if (f)
            fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"frames", 1, 0, 'n'}, {"clips", 1, 0, 'c'},
                                       {"reps", 1, 0, 'b'},   {"threads", 1, 0, 't'},
                                       {"dump", 1, 0, 'd'},   {"repeat", 1, 0, 'r'},
                                       {0, 0, 0, 0}};
    size_t n = 100000, n_clips = 2000;
    int reps = 10000, threads = 0, repeat = 3, c;
    const char *dir = NULL;
    ns_dataset ds;
    ns_eval_set es;
    ns_eval_pred pc, pp;
    ns_gate_policy pol;
    float *prc, *prp;
    char cls[K][NS_LABEL_LEN];
    double times[32], cpu[32];
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'c': n_clips = strtoull(optarg, NULL, 10); break;
        case 'b': reps = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'd': dir = optarg; break;
        case 'r': repeat = atoi(optarg); break;
        default: return 2;
        }
    }
    if (n_clips == 0 || n < n_clips || repeat < 1 || repeat > 32)
        return 2;
    if (ns_dataset_alloc(&ds, n, 1, K) != NS_OK)
        return 1;
    snprintf(ds.split_by, sizeof ds.split_by, "none");
    for (int k = 0; k < K; k++) {
        snprintf(ds.classes[k], sizeof ds.classes[k], "class%d", k);
        memcpy(cls[k], ds.classes[k], NS_LABEL_LEN);
    }
    prc = malloc(sizeof *prc * n * K);
    prp = malloc(sizeof *prp * n * K);
    if (!prc || !prp)
        return 1;
    /* Clip-correlated outcomes: each clip has its own difficulty, camera,
     * night, condition and a dominant class. */
    for (size_t cl = 0, r = 0; cl < n_clips; cl++) {
        size_t end = (cl + 1) * n / n_clips;
        double diff = unif() * 0.4;
        int cam = (int)(cl % 10), night = (int)(cl % 3), cond = (int)(cl % 12);
        int main_cls = (int)(unif() * K);
        for (; r < end; r++) {
            int lab = unif() < 0.8 ? main_cls : (int)(unif() * K);
            float *a = prc + r * K, *b = prp + r * K;
            int okc = unif() > diff * 0.8, okp = unif() > diff;
            float cc = (float)(0.5 + 0.5 * unif()), cp = (float)(0.5 + 0.5 * unif());
            snprintf(ds.clip[r], sizeof ds.clip[r], "%064zx", cl);
            snprintf(ds.camera[r], sizeof ds.camera[r], "cam%02d", cam);
            snprintf(ds.night[r], sizeof ds.night[r], "2026-03-%02d", night + 1);
            ds.condition[r] = cond;
            ds.label[r] = lab;
            for (int k = 0; k < K; k++) {
                a[k] = (1 - cc) / (K - 1);
                b[k] = (1 - cp) / (K - 1);
            }
            a[okc ? lab : (lab + 1) % K] = cc;
            b[okp ? lab : (lab + 1) % K] = cp;
        }
    }
    if (ns_eval_set_build(&ds, NULL, 0, &es) != NS_OK ||
        ns_eval_pred_from_probs(&es, &ds, prc, K, (const char(*)[NS_LABEL_LEN])cls, &pc) != NS_OK ||
        ns_eval_pred_from_probs(&es, &ds, prp, K, (const char(*)[NS_LABEL_LEN])cls, &pp) != NS_OK) {
        fprintf(stderr, "gate_bench: %s\n", ns_errmsg());
        return 1;
    }
    if (dir) {
        int32_t *cam = malloc(sizeof *cam * n), *night = malloc(sizeof *night * n);
        for (size_t r = 0; r < n; r++) {
            cam[r] = atoi(ds.camera[r] + 3);
            night[r] = atoi(ds.night[r] + 8);
        }
        if (!dump(dir, "label.i32", ds.label, n * 4) || !dump(dir, "cond.i32", ds.condition, n * 4) ||
            !dump(dir, "cam.i32", cam, n * 4) || !dump(dir, "night.i32", night, n * 4) ||
            !dump(dir, "clip.u32", es.clip, n * 4) || !dump(dir, "pred_c.i32", pc.pred, n * 4) ||
            !dump(dir, "pred_p.i32", pp.pred, n * 4) || !dump(dir, "conf_c.f32", pc.conf, n * 4) ||
            !dump(dir, "conf_p.f32", pp.conf, n * 4) || !dump(dir, "ptrue_c.f32", pc.p_true, n * 4) ||
            !dump(dir, "ptrue_p.f32", pp.p_true, n * 4))
            return 1;
        free(cam);
        free(night);
    }
    ns_gate_default_policy(&pol);
    pol.n_rep = reps;
    printf("frames %zu clips %zu slices %zu replicates %d classes %d threads %d\n", n,
           es.n_clips, es.n_slices, reps, K, threads > 0 ? threads : omp_get_max_threads());
    for (int i = 0; i < repeat; i++) {
        ns_gate_result g;
        double t0 = omp_get_wtime(), c0 = cpu_seconds();
        if (ns_gate_run(&es, &ds, &pc, &pp, &pol, threads, &g) != NS_OK) {
            fprintf(stderr, "gate_bench: %s\n", ns_errmsg());
            return 1;
        }
        times[i] = omp_get_wtime() - t0;
        cpu[i] = cpu_seconds() - c0;
        printf("run %d: %.3f s wall, %.3f s CPU (%zu checks, verdict %s)\n", i + 1, times[i],
               cpu[i], g.n_checks, ns_gate_verdict_names[g.verdict]);
        if (i == repeat - 1)
            printf("primary delta %.5f ci95 [%.5f, %.5f] se %.5f\n", g.checks[0].delta,
                   g.checks[0].lo95, g.checks[0].hi95, g.checks[0].se);
        ns_gate_result_release(&g);
    }
    qsort(times, (size_t)repeat, sizeof times[0], cmp_d);
    qsort(cpu, (size_t)repeat, sizeof cpu[0], cmp_d);
    printf("gate_seconds %.3f\ngate_cpu_seconds %.3f\n", times[(repeat - 1) / 2],
           cpu[(repeat - 1) / 2]);
    ns_eval_pred_release(&pc);
    ns_eval_pred_release(&pp);
    ns_eval_set_release(&es);
    ns_dataset_release(&ds);
    free(prc);
    free(prp);
    return 0;
}
