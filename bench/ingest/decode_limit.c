/* build: cc -O2 -ffp-contract=off -fopenmp -I include bench/ingest/decode_limit.c -o decode_limit -lturbojpeg -lm
 *
 * decode_limit -- the fastest ingest could possibly go: JPEG decode plus the
 * resize to S x S, on all cores, with nothing else (no archive reading, no
 * hashing, no store).  Ingest's frames per second are compared with this.
 *
 *   decode_limit [--synthetic N] [-S size] [--seconds T] [FILE|DIR ...]
 *
 * Frames come from JPEG files (directories: their .jpg and .jpeg files, not
 * recursive), or --synthetic N makes N 1280x720 quality-90 frames with
 * photo-like content (gradients, shapes, noise: ~100-200 KB each).  Each
 * frame is decoded with TurboJPEG at the DCT scale ns_decode_fit picks for
 * "squash" (the smallest of 1/2, 1/4, 1/8 with both sides >= S), then area-resized to
 * S x S with the project's own resize, which this file includes directly
 * (src/io/resize.c, plus src/core/status.c for its error type) so that the
 * program links with nothing but libturbojpeg, libgomp and libm.  One
 * TurboJPEG handle, scratch buffer and resize cache per thread, reused.
 * Passes over all frames repeat until at least T seconds (default 2) have
 * gone by.  Prints one line on stdout:
 *
 *   decode_limit_fps <frames per second> threads <n>
 */
#include <dirent.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <turbojpeg.h>

#include "../../src/core/status.c"
#include "../../src/io/resize.c"

typedef struct frame {
    uint8_t *jpg;
    size_t n;
} frame;

typedef struct frames {
    frame *v;
    size_t n, cap;
} frames;

static void die(const char *what)
{
    fprintf(stderr, "decode_limit: %s\n", what);
    exit(1);
}

static void push(frames *f, uint8_t *jpg, size_t n)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        if (!f->v)
            die("out of memory");
    }
    f->v[f->n].jpg = jpg;
    f->v[f->n++].n = n;
}

static void load_file(frames *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "decode_limit: cannot open '%s'\n", path);
        exit(1);
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len)
        die("cannot read a file");
    fclose(fp);
    push(f, buf, (size_t)len);
}

static int has_jpeg_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static void load_path(frames *f, const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) {
        load_file(f, path);
        return;
    }
    struct dirent *e;
    char full[4096];
    while ((e = readdir(dir)) != NULL) {
        if (!has_jpeg_ext(e->d_name))
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        load_file(f, full);
    }
    closedir(dir);
}

static uint32_t xs(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A factory-camera-like frame: lit gradient background, a few flat shapes
 * with hard edges, sensor noise. */
static void synth_frame(uint8_t *p, int w, int h, uint32_t seed)
{
    uint32_t s = seed * 2654435761u | 1u;
    int cx[6], cy[6], rad[6], col[6][3];
    for (int k = 0; k < 6; k++) {
        cx[k] = (int)(xs(&s) % (uint32_t)w);
        cy[k] = (int)(xs(&s) % (uint32_t)h);
        rad[k] = 30 + (int)(xs(&s) % 150);
        for (int c = 0; c < 3; c++)
            col[k][c] = (int)(xs(&s) % 256);
    }
    int phase = (int)(xs(&s) % 256);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v[3] = {60 + 120 * x / w + phase / 8, 50 + 140 * y / h, 90 + 60 * (x + y) / (w + h)};
            for (int k = 0; k < 6; k++) {
                int dx = x - cx[k], dy = y - cy[k];
                int in = k & 1 ? (abs(dx) < rad[k] && abs(dy) < rad[k] / 2)
                               : (dx * dx + dy * dy < rad[k] * rad[k]);
                if (in)
                    for (int c = 0; c < 3; c++)
                        v[c] = col[k][c] + (dx + dy) / 16;
            }
            int noise = (int)(xs(&s) % 13) - 6;
            for (int c = 0; c < 3; c++) {
                int t = v[c] + noise;
                p[((size_t)y * w + x) * 3 + c] = (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
            }
        }
}

static void make_synthetic(frames *f, int count)
{
    const int w = 1280, h = 720;
    for (int i = 0; i < count; i++)
        push(f, NULL, 0);
#pragma omp parallel
    {
        tjhandle tj = tjInitCompress();
        uint8_t *rgb = malloc((size_t)w * h * 3);
        if (!tj || !rgb)
            die("cannot set up the compressor");
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < count; i++) {
            unsigned char *buf = NULL;
            unsigned long len = 0;
            synth_frame(rgb, w, h, (uint32_t)i + 1);
            if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &buf, &len, TJSAMP_420, 90, 0) != 0)
                die(tjGetErrorStr2(tj));
            f->v[i].jpg = malloc(len);
            if (!f->v[i].jpg)
                die("out of memory");
            memcpy(f->v[i].jpg, buf, len);
            f->v[i].n = len;
            tjFree(buf);
        }
        free(rgb);
        tjDestroy(tj);
    }
}

/* Same rule as ns_decode_fit with the "squash" fit: the smallest of 1/1,
 * 1/2, 1/4, 1/8 with both scaled sides >= S, else 1/1. */
static tjscalingfactor pick_scale(int w, int h, int S)
{
    int n = 0;
    tjscalingfactor best = {1, 1}, *sf = tjGetScalingFactors(&n);
    long long best_px = (long long)w * h;
    for (int i = 0; sf && i < n; i++) {
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        int fast = sf[i].num == 1 && (sf[i].denom == 1 || sf[i].denom == 2 ||
                                      sf[i].denom == 4 || sf[i].denom == 8);
        if (fast && sw >= S && sh >= S && (long long)sw * sh < best_px) {
            best = sf[i];
            best_px = (long long)sw * sh;
        }
    }
    return best;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    frames f = {0};
    int S = 224, synthetic = 0;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--synthetic") && i + 1 < argc)
            synthetic = atoi(argv[++i]);
        else if ((!strcmp(argv[i], "-S") || !strcmp(argv[i], "--size")) && i + 1 < argc)
            S = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: decode_limit [--synthetic N] [-S size] [--seconds T] [FILE|DIR ...]\n");
            return 0;
        } else
            load_path(&f, argv[i]);
    }
    if (synthetic > 0)
        make_synthetic(&f, synthetic);
    if (f.n == 0 || S <= 0)
        die("no frames (give JPEG files/directories or --synthetic N) or bad -S");
    size_t bytes = 0;
    for (size_t i = 0; i < f.n; i++)
        bytes += f.v[i].n;
    fprintf(stderr, "decode_limit: %zu frames, mean %.1f KB, S=%d\n", f.n,
            (double)bytes / (double)f.n / 1024.0, S);

    long long done_frames = 0, failed = 0;
    int threads = 1;
    double t0 = 0, t1 = 0;
#pragma omp parallel reduction(+ : failed)
    {
        tjhandle tj = tjInitDecompress();
        ns_resize_cache *rc = NULL;
        uint8_t *scratch = NULL, *out = malloc((size_t)S * S * 3);
        size_t cap = 0;
        if (!tj || !out || ns_resize_cache_create(&rc) != NS_OK)
            die("cannot set up a decoder");
#pragma omp single
        {
            threads = omp_get_num_threads();
            t0 = now();
        }
        for (;;) {
#pragma omp for schedule(dynamic, 2)
            for (size_t i = 0; i < f.n; i++) {
                int w, h, ss, cs;
                if (tjDecompressHeader3(tj, f.v[i].jpg, f.v[i].n, &w, &h, &ss, &cs) != 0) {
                    failed++;
                    continue;
                }
                tjscalingfactor sf = pick_scale(w, h, S);
                int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
                size_t need = (size_t)sw * sh * 3;
                if (need > cap) {
                    free(scratch);
                    scratch = malloc(need);
                    if (!scratch)
                        die("out of memory");
                    cap = need;
                }
                if (tjDecompress2(tj, f.v[i].jpg, f.v[i].n, scratch, sw, 0, sh, TJPF_RGB, 0) != 0
                    && tjGetErrorCode(tj) != TJERR_WARNING) {
                    failed++;
                    continue;
                }
                if (ns_resize_area_cached(rc, scratch, sw, sh, (size_t)sw * 3, out, S, S,
                                          (size_t)S * 3) != NS_OK)
                    die("resize failed");
            }
            /* the implicit barrier above ends the pass for everyone */
            int stop = 0;
#pragma omp single copyprivate(stop)
            {
                done_frames += (long long)f.n;
                t1 = now();
                stop = t1 - t0 >= seconds;
            }
            if (stop)
                break;
        }
        free(scratch);
        free(out);
        ns_resize_cache_free(rc);
        tjDestroy(tj);
    }
    if (failed > 0)
        fprintf(stderr, "decode_limit: %lld frame decodes failed (counted as done)\n", failed);
    printf("decode_limit_fps %.1f threads %d\n", (double)done_frames / (t1 - t0), threads);
    for (size_t i = 0; i < f.n; i++)
        free(f.v[i].jpg);
    free(f.v);
    return 0;
}
