/* exec_bench.c -- images/s of the executor on one model, and where the time goes.
 *
 *   nightshift-bench-exec MODEL|default [--batch N] [--size S] [--secs T]
 *                         [--device cpu|ref|cuda|auto] [--precision fp32|tf32|bf16]
 *                         [--default-size N] [--seed N] [--frames-out FILE] [--emb-out FILE]
 *                         [--sync-nodes]
 *
 * MODEL is a model file or "default" (the built-in backbone, input
 * --default-size [112], --seed [1]).  The model is planned once for --batch
 * [64] frames of S x S [224]; one warm-up batch runs outside the clock, then
 * batches of the same random-but-fixed uint8 frames run until at least --secs
 * [3] seconds have passed.  Prints `images_per_s <v>` and then the executor's
 * per-node profile (which includes the warm-up batch: planning-time faults
 * are not in it, but first-run cache effects are).  Threads come from
 * OMP_NUM_THREADS as for the library.  --precision [fp32] picks the GEMM
 * precision of the cuda executor (exec.h; tf32 and bf16 need --device cuda).
 * --sync-nodes synchronises the cuda stream after every node, so the profile's
 * per-node times are real (and images/s lower); without it they are launch times.
 *
 * For parity checks against a peer, --frames-out writes the frames as raw
 * uint8 (batch, S, S, 3) and --emb-out the warm-up batch's embeddings as raw
 * float32 (batch, dim).
 *
 * Built with the project: cmake --build BUILD --target nightshift-bench-exec
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/exec.h"
#include "nightshift/model.h"
#include "nightshift/status.h"
#include "nightshift/strbuf.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static ns_status write_raw(const char *path, const void *p, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return ns_error(NS_ERR_IO, "cannot create '%s'", path);
    size_t w = fwrite(p, 1, bytes, f);
    if (fclose(f) != 0 || w != bytes)
        return ns_error(NS_ERR_IO, "cannot write '%s'", path);
    return NS_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: nightshift-bench-exec MODEL|default [--batch N] [--size S] [--secs T]\n"
                    "       [--device cpu|ref|cuda|auto] [--precision fp32|tf32|bf16]\n"
                    "       [--default-size N] [--seed N] [--frames-out FILE] [--emb-out FILE]\n"
                    "       [--sync-nodes]\n");
    return 2;
}

/* Parses a positive integer option value; 0 when it is not one. */
static long pos_long(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (end != s && *end == '\0' && v > 0) ? v : 0;
}

int main(int argc, char **argv)
{
    const char *model_arg = NULL, *frames_out = NULL, *emb_out = NULL;
    long batch = 64, S = 224, dsize = 112, seed = 1;
    double secs = 3.0;
    ns_exec_opts eo = {.device = NS_DEVICE_CPU, .precision = NS_PREC_FP32};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            if (model_arg)
                return usage();
            model_arg = a;
            continue;
        }
        if (strcmp(a, "--sync-nodes") == 0) {
            eo.sync_nodes = 1;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--batch") == 0)
            batch = pos_long(v);
        else if (strcmp(a, "--size") == 0)
            S = pos_long(v);
        else if (strcmp(a, "--default-size") == 0)
            dsize = pos_long(v);
        else if (strcmp(a, "--seed") == 0)
            seed = pos_long(v);
        else if (strcmp(a, "--secs") == 0)
            secs = atof(v);
        else if (strcmp(a, "--frames-out") == 0)
            frames_out = v;
        else if (strcmp(a, "--emb-out") == 0)
            emb_out = v;
        else if (strcmp(a, "--device") == 0) {
            if (ns_device_parse(v, &eo.device) != NS_OK)
                return usage();
        } else if (strcmp(a, "--precision") == 0) {
            if (ns_precision_parse(v, &eo.precision) != NS_OK)
                return usage();
        } else
            return usage();
        if (batch <= 0 || S <= 0 || dsize <= 0 || seed <= 0 || !(secs > 0))
            return usage();
    }
    if (!model_arg || batch > 4096 || S > 4096)
        return usage();

    int rc = 1;
    ns_model *m = NULL;
    ns_exec *e = NULL;
    uint8_t *frames = NULL;
    float *emb = NULL;
    ns_strbuf prof = {0};
    ns_status st = strcmp(model_arg, "default") == 0
                       ? ns_model_default((int)dsize, (uint64_t)seed, &m)
                       : ns_model_load(model_arg, &m);
    if (st != NS_OK)
        goto done;
    st = ns_exec_create_opts(m, &eo, (int)batch, (int)S, &e);
    if (st != NS_OK)
        goto done;
    size_t nfr = (size_t)batch * (size_t)S * (size_t)S * 3;
    frames = malloc(nfr);
    emb = malloc((size_t)batch * (size_t)ns_exec_dim(e) * sizeof *emb);
    if (!frames || !emb) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for %ld frames", batch);
        goto done;
    }
    /* Fixed LCG bytes: the same frames every run, nothing constant that a
     * kernel could shortcut. */
    uint32_t x = 12345;
    for (size_t i = 0; i < nfr; i++) {
        x = x * 1664525u + 1013904223u;
        frames[i] = (uint8_t)(x >> 24);
    }

    st = ns_exec_run(e, frames, (int)batch, emb); /* warm-up */
    if (st != NS_OK)
        goto done;
    if (frames_out && (st = write_raw(frames_out, frames, nfr)) != NS_OK)
        goto done;
    if (emb_out && (st = write_raw(emb_out, emb, (size_t)batch * (size_t)ns_exec_dim(e) *
                                                    sizeof *emb)) != NS_OK)
        goto done;
    long batches = 0;
    double t0 = now(), t = t0;
    while (t - t0 < secs) {
        /* As nightshift embed runs: the next batch (here the same frames) is
         * handed over with this one, so on CUDA its upload overlaps this
         * batch's compute (NIGHTSHIFT_UPLOAD_AHEAD=0 to time without). */
        st = ns_exec_run_next(e, frames, (int)batch, emb, frames, (int)batch);
        if (st != NS_OK)
            goto done;
        batches++;
        t = now();
    }
    printf("images_per_s %.2f\n", (double)(batches * batch) / (t - t0));
    printf("model %s device %s precision %s batch %ld size %ld batches %ld secs %.3f\n",
           m->info.name, ns_device_name(ns_exec_device(e)),
           ns_precision_name(ns_exec_precision(e)), batch, S, batches, t - t0);
    st = ns_exec_profile(e, &prof);
    if (st != NS_OK)
        goto done;
    fputs(prof.data ? prof.data : "", stdout);
    rc = 0;

done:
    if (st != NS_OK)
        fprintf(stderr, "nightshift-bench-exec: %s: %s\n", ns_strerror(st), ns_errmsg());
    ns_strbuf_release(&prof);
    free(emb);
    free(frames);
    ns_exec_free(e);
    ns_model_free(m);
    return rc;
}
