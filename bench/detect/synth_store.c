/* synth_store.c -- a store of synthetic embeddings at production scale, for
 * timing the detect stage without hours of rendering and embedding.
 *
 *   nightshift-bench-synth --out DIR [--ref-nights N] [--ref-frames N]
 *                          [--tonight-frames N] [--clip-frames N] [--dim D]
 *                          [--shift FRACTION] [--seed N]
 *
 * Writes DIR as a real store: reference nights 2026-10-01.. and tonight
 * 2026-11-01, frame_size 16 (the pixels are not what is timed), clips of
 * --clip-frames frames over 8 cameras, and embeddings under the default
 * backbone's model id, so `nightshift reference build --model default` and
 * `nightshift detect` run on it unchanged.  An embedding is the camera's
 * centre plus a per-clip offset plus per-frame noise, L2-normalised, like the
 * clip-correlated vectors a CNN produces; --shift moves that fraction of
 * tonight's clips along one direction and darkens their properties.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/embeddings.h"
#include "nightshift/model.h"
#include "nightshift/store.h"

#define S 16
#define CAMS 8
#define BATCH 1024

static uint64_t rng_state;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(void) { return (double)(next_u64() >> 11) * 0x1.0p-53; }

static double gauss(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

typedef struct synth {
    int d;
    float *centre;   /* (CAMS, d) */
    float *dir;      /* (d) the shift direction */
    float *offset;   /* (d) current clip's offset */
    float *emb;      /* (BATCH, d) */
    uint8_t *frames; /* (BATCH, S, S, 3) */
    ns_frame_record *recs;
} synth;

static ns_status write_night(ns_store *s, synth *y, const char *model_id, const char *night,
                             double t0, size_t frames, size_t clip_frames, double shift,
                             uint64_t *clip_no)
{
    ns_shard_writer *w = NULL;
    ns_emb_writer *ew = NULL;
    size_t n_clips = (frames + clip_frames - 1) / clip_frames, nb = 0;
    const ns_shard_entry *sh;
    size_t n_sh;
    ns_status st = ns_shard_begin(s, night, &w);
    if (st != NS_OK)
        return st;
    /* The embeddings follow the frames: the same generator is replayed. */
    uint64_t saved = rng_state;
    for (int pass = 0; pass < 2; pass++) {
        rng_state = saved;
        if (pass == 1) {
            sh = ns_store_shards(s, &n_sh);
            st = ns_emb_begin(s, model_id, "synthetic", y->d, &sh[n_sh - 1], "cpu", &ew);
            if (st != NS_OK)
                goto done;
        }
        for (size_t c = 0; c < n_clips; c++) {
            size_t nf = c + 1 < n_clips ? clip_frames : frames - c * clip_frames;
            int cam = (int)(next_u64() % CAMS);
            int shifted = uniform() < shift;
            for (int j = 0; j < y->d; j++)
                y->offset[j] = (float)(0.5 * gauss() / sqrt((double)y->d));
            if (pass == 0 && (st = ns_shard_begin_clip(w)) != NS_OK)
                goto done;
            for (size_t f = 0; f < nf; f++) {
                float *e = y->emb + nb * (size_t)y->d;
                double norm = 0;
                for (int j = 0; j < y->d; j++) {
                    double v = y->centre[(size_t)cam * y->d + j] + y->offset[j] +
                               0.3 * gauss() / sqrt((double)y->d) + (shifted ? 0.8 * y->dir[j] : 0);
                    e[j] = (float)v;
                    norm += v * v;
                }
                for (int j = 0; j < y->d; j++)
                    e[j] = (float)(e[j] / sqrt(norm));
                ns_frame_record *r = &y->recs[nb];
                memset(r, 0, sizeof *r);
                r->index = (uint32_t)f;
                r->timestamp = t0 + (double)c * 60 + (double)f * 0.1;
                snprintf(r->member, sizeof r->member, "frame_%zu.jpg", f);
                for (int p = 0; p < NS_PROP_COUNT; p++)
                    r->props[p] = (float)(50 + 10 * cam + p + gauss());
                if (shifted)
                    r->props[NS_PROP_MEAN_LUMA] -= 20;
                if (++nb == BATCH || f + 1 == nf) {
                    st = pass == 0 ? ns_shard_append(w, y->frames, y->recs, nb)
                                   : ns_emb_append(ew, y->emb, nb);
                    if (st != NS_OK)
                        goto done;
                    nb = 0;
                }
            }
            if (pass == 0) {
                ns_clip_record rec;
                memset(&rec, 0, sizeof rec);
                snprintf(rec.sha256, sizeof rec.sha256, "%064" PRIx64, ++*clip_no);
                snprintf(rec.source, sizeof rec.source, "synthetic/%s/clip_%zu.tar", night, c);
                snprintf(rec.container, sizeof rec.container, "tar");
                snprintf(rec.camera, sizeof rec.camera, "cam%02d", cam + 1);
                snprintf(rec.night, sizeof rec.night, "%s", night);
                rec.start_time = t0 + (double)c * 60;
                rec.fps = 10;
                rec.orig_width = 640;
                rec.orig_height = 480;
                rec.frames_seen = rec.frames_stored = (uint32_t)nf;
                if ((st = ns_shard_end_clip(w, &rec)) != NS_OK)
                    goto done;
            }
        }
        if (pass == 0) {
            st = ns_shard_commit(w);
            w = NULL;
            if (st != NS_OK)
                goto done;
        }
    }
    st = ns_emb_commit(ew);
    ew = NULL;
done:
    ns_shard_discard(w);
    ns_emb_discard(ew);
    return st;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    size_t ref_nights = 20, ref_frames = 200000, tonight = 50000, clip_frames = 50;
    int d = 512;
    double shift = 0;
    uint64_t seed = 1, clip_no = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--out")) out = v;
        else if (!strcmp(k, "--ref-nights")) ref_nights = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--ref-frames")) ref_frames = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--tonight-frames")) tonight = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--clip-frames")) clip_frames = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--dim")) d = atoi(v);
        else if (!strcmp(k, "--shift")) shift = atof(v);
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "synth_store: unknown option %s\n", k);
            return 2;
        }
    }
    if (!out || ref_nights < 1 || ref_nights > 28 || clip_frames < 1 || d < 1) {
        fprintf(stderr, "usage: nightshift-bench-synth --out DIR [--ref-nights 1..28] "
                        "[--ref-frames N] [--tonight-frames N] [--clip-frames N] [--dim D] "
                        "[--shift F] [--seed N]\n");
        return 2;
    }
    ns_model *m = NULL;
    ns_store *s = NULL;
    synth y;
    memset(&y, 0, sizeof y);
    y.d = d;
    ns_status st = ns_model_default(112, 1, &m);
    if (st == NS_OK && m->info.embed_dim != d)
        st = ns_error(NS_ERR_USAGE, "the default backbone has %d dims, not %d", m->info.embed_dim, d);
    if (st != NS_OK)
        goto done;
    y.centre = malloc(sizeof(float) * CAMS * (size_t)d);
    y.dir = malloc(sizeof(float) * (size_t)d);
    y.offset = malloc(sizeof(float) * (size_t)d);
    y.emb = malloc(sizeof(float) * BATCH * (size_t)d);
    y.frames = calloc(BATCH, S * S * 3);
    y.recs = malloc(sizeof(ns_frame_record) * BATCH);
    if (!y.centre || !y.dir || !y.offset || !y.emb || !y.frames || !y.recs) {
        st = ns_error(NS_ERR_NOMEM, "out of memory");
        goto done;
    }
    rng_state = seed;
    for (size_t j = 0; j < (size_t)CAMS * (size_t)d; j++)
        y.centre[j] = (float)(gauss() / sqrt((double)d));
    for (int j = 0; j < d; j++)
        y.dir[j] = (float)(gauss() / sqrt((double)d));
    if ((st = ns_store_open_write(out, S, 0, &s)) != NS_OK)
        goto done;
    for (size_t n = 0; n < ref_nights && st == NS_OK; n++) {
        char night[NS_NIGHT_LEN];
        snprintf(night, sizeof night, "2026-10-%02zu", n + 1);
        size_t fr = ref_frames / ref_nights + (n < ref_frames % ref_nights);
        st = write_night(s, &y, m->id, night, 1790000000.0 + 86400.0 * (double)n, fr, clip_frames,
                         0, &clip_no);
    }
    if (st == NS_OK)
        st = write_night(s, &y, m->id, "2026-11-01", 1792000000.0, tonight, clip_frames, shift,
                         &clip_no);
done:
    ns_store_close(s);
    ns_model_free(m);
    free(y.centre);
    free(y.dir);
    free(y.offset);
    free(y.emb);
    free(y.frames);
    free(y.recs);
    if (st != NS_OK) {
        fprintf(stderr, "synth_store: %s\n", ns_errmsg());
        return 1;
    }
    printf("synth_store: %zu reference frames over %zu nights + %zu tonight in %s\n", ref_frames,
           ref_nights, tonight, out);
    return 0;
}
