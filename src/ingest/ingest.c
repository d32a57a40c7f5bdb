/* ingest.c -- the ingest driver.
 *
 * Three kinds of work overlap:
 *   - the loader thread (loader.c) reads the next clips: read, SHA-256,
 *     decompression;
 *   - the OpenMP team decodes batch k: up to `batch` frames, possibly from
 *     several clips, each thread with its own TurboJPEG decoder;
 *   - meanwhile thread 0, the calling thread and the only one that makes HDF5
 *     calls, appends batch k-1 to the shard, closes finished clips and
 *     commits shards (fsync included) before it joins the decoding.
 * Between regions the calling thread finalises the decoded batch in frame
 * order (records, QC) and fills the next one.  Memory is bounded by the
 * loader's ring of clips plus two batches, whatever the input size.
 */
#include "nightshift/ingest.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>

#include "ingest_internal.h"
#include "nightshift/clipmeta.h"

#define LOADER_SLOTS 6
/* Read buffers for three 15 MB clips (the benchmark's 100 frames of 720p):
 * the two a batch spans and the next.  Fresh memory costs ~2.6 ms/MB to touch
 * here, so a bigger pool would cost more than mapping the odd clip. */
#define LOADER_POOL_BYTES ((size_t)48 << 20)

static const char *const outcome_names[NS_OUTCOME_COUNT] = {
    "ingested", "duplicate", "quarantined", "unsupported", "unrecognised", "error"};

const char *ns_outcome_name(ns_outcome o)
{
    return (unsigned)o < NS_OUTCOME_COUNT ? outcome_names[o] : "?";
}

void ns_ingest_default_opts(ns_ingest_opts *o)
{
    memset(o, 0, sizeof *o);
    o->name_pattern = NS_DEFAULT_NAME_PATTERN;
    o->default_camera = "unknown";
    o->every = 1;
    o->fit = NS_FIT_SQUASH;
    o->batch = 128;
    o->shard_frames = 20000;
    ns_clip_limits_default(&o->clip_limits);
    ns_decode_limits_default(&o->decode_limits);
    ns_qc_opts_default(&o->qc);
}

/* Outcome of one decoded frame, written by one OpenMP thread. */
typedef struct slot {
    ns_status st;
    int32_t w, h;
    int damaged;
    float mad;                  /* to the clip's previous stored frame; < 0: none */
    char msg[240];
    float props[NS_PROP_COUNT];
} slot;

typedef struct job {
    int cs;                     /* clip state (= loader slot) */
    int cont;                   /* the clip had frames in an earlier batch */
    size_t ord;                 /* frame ordinal in the clip */
} job;

/* Consecutive stored rows of one clip in a finalised batch. */
typedef struct segment {
    int cs;
    size_t first, n;
    int last;                   /* holds the clip's final frames: close it */
} segment;

typedef struct batch {
    uint8_t *frames;            /* (B, S, S, 3) */
    slot *slots;                /* (B) */
    ns_frame_record *recs;      /* (B) compacted: stored frames only */
    job *jobs;                  /* (B) */
    segment *seg;               /* (B) */
    size_t count, kept, n_seg;
} batch;

typedef struct clip_state {
    ns_loaded *ld;
    ns_clip_record rec;
    size_t *sel;                /* sampled ordinals; grows once, reused */
    size_t sel_cap, n_sel, n_sched, n_final;
    int begun;                  /* begin_clip issued */
    int decoded;                /* every frame decoded: its bytes went back to the loader */
} clip_state;

/* Clip digests taken by this run (open addressing on the hash's own bytes). */
typedef struct digest_set {
    uint8_t (*keys)[NS_SHA256_LEN];
    uint8_t *used;
    size_t cap, n;
} digest_set;

typedef struct run {
    const ns_ingest_opts *o;
    ns_store *store;
    int S, threads, B;
    size_t frame_bytes;
    ns_decoder **dec;
    uint8_t *arena;             /* both batches' frames, one 2 MiB-aligned block */
    size_t arena_bytes;
    batch bt[2];
    clip_state cs[LOADER_SLOTS];
    ns_qc qc;
    ns_manifest *manifest;
    ns_loader *loader;
    ns_shard_writer *w;
    char w_night[NS_NIGHT_LEN];
    int w_clip_open;
    /* Counted as ingested but in the open shard: uncounted if it is lost. */
    size_t w_clips;
    uint64_t w_stored, w_damaged;
    char w_last_sha[NS_SHA256_HEX]; /* of its last clip: in the catalog iff committed */
    digest_set seen;
    ns_ingest_summary *sum;
    ns_ingest_progress prog;
    struct timespec t0;
    char default_night[NS_NIGHT_LEN];
} run;

static double now_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int digest_has(const digest_set *s, const uint8_t *d)
{
    size_t h;
    if (!s->cap)
        return 0;
    memcpy(&h, d, sizeof h);
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i])
            return 0;
        if (memcmp(s->keys[i], d, NS_SHA256_LEN) == 0)
            return 1;
    }
}

static ns_status digest_add(digest_set *s, const uint8_t *d)
{
    size_t h;
    if ((s->n + 1) * 2 > s->cap) {
        digest_set g = {0};
        g.cap = s->cap ? s->cap * 2 : 256;
        g.keys = malloc(g.cap * sizeof *g.keys);
        g.used = calloc(g.cap, 1);
        if (!g.keys || !g.used) {
            free(g.keys);
            free(g.used);
            return ns_error(NS_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->used[i])
                digest_add(&g, s->keys[i]);
        free(s->keys);
        free(s->used);
        *s = g;
    }
    memcpy(&h, d, sizeof h);
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i]) {
            s->used[i] = 1;
            memcpy(s->keys[i], d, NS_SHA256_LEN);
            s->n++;
            return NS_OK;
        }
    }
}

static ns_status add_problem(ns_ingest_summary *sum, const char *path, ns_outcome oc,
                             const char *reason)
{
    ns_ingest_problem *p = realloc(sum->problems, (sum->n_problems + 1) * sizeof *p);
    if (!p)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    sum->problems = p;
    p[sum->n_problems].path = strdup(path);
    p[sum->n_problems].reason = strdup(reason);
    p[sum->n_problems].outcome = oc;
    if (!p[sum->n_problems].path || !p[sum->n_problems].reason) {
        free(p[sum->n_problems].path);
        free(p[sum->n_problems].reason);
        return ns_error(NS_ERR_NOMEM, "out of memory");
    }
    sum->n_problems++;
    return NS_OK;
}

static void progress(run *r)
{
    if (!r->o->on_progress)
        return;
    r->prog.elapsed = now_since(&r->t0);
    r->prog.frames_stored = r->sum->frames_stored;
    r->o->on_progress(r->o->ctx, &r->prog);
}

/* A clip is done (any outcome): count it, tell the caller, free its slot. */
static ns_status clip_done(run *r, ns_loaded *ld, ns_outcome oc, const char *reason,
                           const ns_clip_record *rec)
{
    ns_status st = NS_OK;
    r->sum->clips[oc]++;
    if (r->o->on_clip) {
        ns_ingest_clip_result res = {ld->in->path, oc, reason ? reason : "", rec, &ld->clip.warn};
        r->o->on_clip(r->o->ctx, &res);
    }
    if (oc != NS_OUTCOME_INGESTED && oc != NS_OUTCOME_DUPLICATE)
        st = add_problem(r->sum, ld->in->path, oc, reason);
    r->prog.clips_done++;
    r->prog.bytes_done += ld->in->bytes;
    r->sum->bytes_in += ld->in->bytes;
    ns_loader_give_back(r->loader, ld);
    return st;
}

/* The open shard's clips never reached the catalog: the summary must not
 * count them (they are ingested by a rerun). */
static void uncount_shard(run *r)
{
    r->sum->clips[NS_OUTCOME_INGESTED] -= r->w_clips;
    r->sum->frames_stored -= r->w_stored;
    r->sum->frames_damaged -= r->w_damaged;
    r->w_clips = 0;
    r->w_stored = r->w_damaged = 0;
}

static ns_status commit_shard(run *r)
{
    ns_status st;
    size_t clips;
    if (!r->w)
        return NS_OK;
    clips = ns_shard_clips(r->w);
    st = ns_shard_commit(r->w);
    r->w = NULL;
    /* A commit can fail after the catalog took the shard (a stale view):
     * the catalog says which. */
    if (clips > 0 && (st == NS_OK || ns_store_find_clip(r->store, r->w_last_sha) >= 0))
        r->sum->shards_committed++;
    else
        uncount_shard(r);
    r->w_clips = 0;
    r->w_stored = r->w_damaged = 0;
    return st;
}

/* The store keeps one shard open at a time, so a clip of another night
 * commits the current shard first.  Inputs walked in name order keep a
 * night's clips together, so this rarely splits a night. */
static ns_status begin_clip(run *r, const char *night)
{
    ns_status st;
    if (r->w && strcmp(r->w_night, night) != 0 && (st = commit_shard(r)) != NS_OK)
        return st;
    if (!r->w) {
        if ((st = ns_shard_begin(r->store, night, &r->w)) != NS_OK)
            return st;
        snprintf(r->w_night, sizeof r->w_night, "%s", night);
    }
    if ((st = ns_shard_begin_clip(r->w)) != NS_OK)
        return st;
    r->w_clip_open = 1;
    return NS_OK;
}

/* Thread 0's half of a region: store a finalised batch, close finished clips. */
static ns_status append_batch(run *r, batch *b)
{
    ns_status st = NS_OK;
    for (size_t i = 0; i < b->n_seg && st == NS_OK; i++) {
        const segment *g = &b->seg[i];
        clip_state *c = &r->cs[g->cs];
        if (g->n > 0) {
            if (!c->begun && (st = begin_clip(r, c->rec.night)) != NS_OK)
                break;
            c->begun = 1;
            st = ns_shard_append(r->w, b->frames + g->first * r->frame_bytes, b->recs + g->first,
                                 g->n);
            if (st != NS_OK)
                break;
        }
        if (!g->last)
            continue;
        r->sum->frames_seen += c->rec.frames_seen;
        r->sum->frames_failed += c->rec.frames_failed;
        if (!c->begun) {
            st = clip_done(r, c->ld, NS_OUTCOME_QUARANTINED, "no frame of the clip could be decoded",
                           NULL);
            continue;
        }
        c->rec.ingest_time = (double)time(NULL);
        st = ns_shard_end_clip(r->w, &c->rec);
        r->w_clip_open = 0;
        if (st == NS_ERR_EXISTS) { /* defensive: the catalog already had it */
            st = clip_done(r, c->ld, NS_OUTCOME_DUPLICATE, "", NULL);
            continue;
        }
        if (st != NS_OK)
            break;
        r->sum->frames_stored += c->rec.frames_stored;
        r->sum->frames_damaged += c->rec.frames_damaged;
        r->w_clips++;
        r->w_stored += c->rec.frames_stored;
        r->w_damaged += c->rec.frames_damaged;
        memcpy(r->w_last_sha, c->rec.sha256, NS_SHA256_HEX);
        st = clip_done(r, c->ld, NS_OUTCOME_INGESTED, "", &c->rec);
        if (st == NS_OK && ns_shard_frames(r->w) >= r->o->shard_frames)
            st = commit_shard(r);
    }
    b->n_seg = 0;
    return st;
}

/* What a failed load means for the clip. */
static ns_outcome load_outcome(ns_status st)
{
    switch (st) {
    case NS_ERR_FORMAT: return NS_OUTCOME_UNRECOGNISED;
    case NS_ERR_UNSUPPORTED: return NS_OUTCOME_UNSUPPORTED;
    case NS_ERR_IO: return NS_OUTCOME_ERROR;
    default: return NS_OUTCOME_QUARANTINED;
    }
}

/* The format is always sniffed from the bytes; the name only decides whether
 * an unrecognised file found in a directory walk is worth reporting (a
 * broken "x.avi" is, a manifest.csv beside the clips is not). */
static int clip_like_name(const char *path)
{
    static const char *const exts[] = {".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.zst",
                                       ".tar.bz2", ".zip", ".avi", ".mjpg", ".mjpeg"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(path + n - e, exts[i]) == 0)
            return 1;
    }
    return 0;
}

/* Chooses which frames to decode: every Nth, and at most o->fps per second
 * when the clip's frame rate is known. */
static ns_status select_frames(run *r, clip_state *c)
{
    const ns_ingest_opts *o = r->o;
    size_t n = c->ld->clip.n_frames, k = 0;
    long last_bucket = -1;
    if (n > c->sel_cap) {
        size_t *p = realloc(c->sel, n * sizeof *p);
        if (!p)
            return ns_error(NS_ERR_NOMEM, "out of memory");
        c->sel = p;
        c->sel_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (o->every > 1 && i % (size_t)o->every != 0)
            continue;
        if (o->fps > 0 && c->rec.fps > 0) {
            long bucket = (long)floor((double)i * o->fps / c->rec.fps + 1e-9);
            if (bucket == last_bucket)
                continue;
            last_bucket = bucket;
        }
        c->sel[k++] = i;
    }
    c->n_sel = k;
    return NS_OK;
}

/* Takes the next loaded clip and decides what happens to it.  Sets *active
 * to its state index when it has frames to decode, else -1.  *eof at the end. */
static ns_status take_clip(run *r, int *active, int *eof)
{
    const ns_ingest_opts *o = r->o;
    ns_loaded *ld = ns_loader_take(r->loader);
    clip_state *c;
    ns_clip_meta meta;
    ns_outcome oc;
    ns_status st;
    *active = -1;
    if (!ld->in) {
        *eof = 1;
        return NS_OK;
    }
    if (ld->st != NS_OK) {
        oc = load_outcome(ld->st);
        if (ld->st == NS_ERR_NOMEM)
            return ns_error(NS_ERR_NOMEM, "%s", ld->msg);
        if (oc == NS_OUTCOME_UNRECOGNISED && ld->in->walked && !clip_like_name(ld->in->path)) {
            r->sum->files_skipped++; /* a README or manifest beside the clips */
            r->prog.clips_done++;
            r->prog.bytes_done += ld->in->bytes;
            ns_loader_give_back(r->loader, ld);
            return NS_OK;
        }
        return clip_done(r, ld, oc, ld->msg, NULL);
    }
    char hex[NS_SHA256_HEX];
    ns_sha256_hex(ld->clip.sha256, hex);
    if (ns_store_find_clip(r->store, hex) >= 0 || digest_has(&r->seen, ld->clip.sha256))
        return clip_done(r, ld, NS_OUTCOME_DUPLICATE, "", NULL);
    /* Taken now, not when stored, so a second copy later in this run is a
     * duplicate even while the first is still being decoded. */
    if ((st = digest_add(&r->seen, ld->clip.sha256)) != NS_OK)
        return st;

    c = &r->cs[ns_loader_slot(r->loader, ld)];
    c->ld = ld;
    c->n_sched = c->n_final = 0;
    c->begun = c->decoded = 0;
    memset(&meta, 0, sizeof meta);
    meta.start_time = NAN;
    if (!ns_manifest_lookup(r->manifest, ld->in->path, &meta) && o->name_pattern &&
        *o->name_pattern)
        ns_name_pattern_match(o->name_pattern, ld->in->path, &meta);
    ns_clip_record *rec = &c->rec;
    memset(rec, 0, sizeof *rec);
    memcpy(rec->sha256, hex, sizeof hex);
    snprintf(rec->source, sizeof rec->source, "%s", ld->in->path);
    snprintf(rec->container, sizeof rec->container, "%s", ld->clip.container);
    snprintf(rec->camera, sizeof rec->camera, "%s", meta.camera[0] ? meta.camera : o->default_camera);
    snprintf(rec->night, sizeof rec->night, "%s", meta.night[0] ? meta.night : r->default_night);
    rec->start_time = meta.start_time;
    rec->fps = ld->clip.fps > 0 ? ld->clip.fps : meta.fps;
    rec->frames_seen = (uint32_t)ld->clip.n_frames;
    if (o->fps > 0 && rec->fps <= 0)
        ns_warn(&ld->clip.warn, "clip '%s': frame rate unknown, --fps not applied", ld->in->path);
    if ((st = select_frames(r, c)) != NS_OK)
        return st;
    r->sum->frames_skipped += rec->frames_seen - c->n_sel;
    if (c->n_sel == 0) {
        r->sum->frames_seen += rec->frames_seen;
        return clip_done(r, ld, NS_OUTCOME_QUARANTINED, "no frames selected by --every/--fps", NULL);
    }
    *active = ns_loader_slot(r->loader, ld);
    return NS_OK;
}

/* Fills b with frames to decode.  Waits for the loader only when there is
 * nothing else to do: the pending batch's clips hold loader slots until they
 * are stored, so waiting then could wait for ourselves. */
static ns_status fill_batch(run *r, batch *b, const batch *pending, int *active, int *eof)
{
    ns_status st;
    b->count = 0;
    while (b->count < (size_t)r->B && !*eof) {
        if (*active < 0) {
            if ((b->count > 0 || pending->n_seg > 0) && !ns_loader_ready(r->loader))
                break; /* decode or store what we have rather than wait */
            if ((st = take_clip(r, active, eof)) != NS_OK)
                return st;
            continue;
        }
        clip_state *c = &r->cs[*active];
        int cont = c->n_sched > 0;
        while (c->n_sched < c->n_sel && b->count < (size_t)r->B) {
            job *j = &b->jobs[b->count++];
            j->cs = *active;
            j->cont = cont;
            j->ord = c->sel[c->n_sched++];
        }
        if (c->n_sched == c->n_sel)
            *active = -1;
    }
    return NS_OK;
}

/* The team's half of a region: decode, then differences to previous frames. */
static void decode_batch(run *r, batch *b)
{
    const ns_ingest_opts *o = r->o;
#pragma omp for schedule(dynamic, 1)
    for (size_t j = 0; j < b->count; j++) {
        const job *jb = &b->jobs[j];
        const ns_clip *clip = &r->cs[jb->cs].ld->clip;
        const ns_clip_frame *f = &clip->frames[jb->ord];
        slot *s = &b->slots[j];
        uint8_t *out = b->frames + j * r->frame_bytes;
        ns_decode_info info;
        memset(&info, 0, sizeof info);
        s->st = ns_decode_fit(r->dec[omp_get_thread_num()], clip->data + f->offset, f->size, r->S,
                              o->fit, &o->decode_limits, out, &info);
        s->w = info.width;
        s->h = info.height;
        s->damaged = info.warning;
        s->msg[0] = '\0';
        if (s->st != NS_OK)
            ns_errmsg_copy(s->msg, sizeof s->msg);
        else if (info.warning)
            snprintf(s->msg, sizeof s->msg, "%s", info.warning_msg);
        if (s->st == NS_OK)
            ns_frame_props(out, r->S, s->props);
    }
#pragma omp for schedule(static)
    for (size_t j = 0; j < b->count; j++) {
        slot *s = &b->slots[j];
        const uint8_t *frame = b->frames + j * r->frame_bytes;
        s->mad = -1.0f;
        if (s->st != NS_OK)
            continue;
        size_t p = j;
        while (p > 0 && b->jobs[p - 1].cs == b->jobs[j].cs && b->slots[p - 1].st != NS_OK)
            p--;
        if (p > 0 && b->jobs[p - 1].cs == b->jobs[j].cs)
            s->mad = ns_frame_mad(frame, b->frames + (p - 1) * r->frame_bytes, r->S);
        else if (b->jobs[j].cont)
            s->mad = ns_qc_mad_prev(&r->qc, frame);
    }
}

/* In frame order: records, QC, compaction to stored frames, segments. */
static void finalize_batch(run *r, batch *b)
{
    segment *g = NULL;
    b->kept = 0;
    b->n_seg = 0;
    for (size_t j = 0; j < b->count; j++) {
        const job *jb = &b->jobs[j];
        const slot *s = &b->slots[j];
        clip_state *c = &r->cs[jb->cs];
        const ns_clip *clip = &c->ld->clip;
        const char *member = ns_clip_frame_name(clip, jb->ord);
        if (!g || g->cs != jb->cs) {
            g = &b->seg[b->n_seg++];
            g->cs = jb->cs;
            g->first = b->kept;
            g->n = 0;
            g->last = 0;
            if (c->n_final == 0)
                ns_qc_reset(&r->qc);
        }
        c->n_final++;
        if (c->n_final == c->n_sel)
            g->last = 1;
        if (s->st != NS_OK) {
            c->rec.frames_failed++;
            ns_qc_frame(&r->qc, -1.0f, NULL, s->w, s->h);
            ns_warn(&c->ld->clip.warn, "clip '%s': member '%s': frame failed: %s",
                    c->ld->in->path, member, s->msg);
        } else {
            if (s->damaged) {
                c->rec.frames_damaged++;
                ns_warn(&c->ld->clip.warn, "clip '%s': member '%s': frame damaged: %s",
                        c->ld->in->path, member, s->msg);
            }
            if (c->rec.orig_width == 0) {
                c->rec.orig_width = s->w;
                c->rec.orig_height = s->h;
            }
            if (b->kept != j)
                memcpy(b->frames + b->kept * r->frame_bytes, b->frames + j * r->frame_bytes,
                       r->frame_bytes);
            ns_frame_record *fr = &b->recs[b->kept];
            int64_t num = clip->frames[jb->ord].number;
            double number = num >= 0 ? (double)num : (double)jb->ord;
            fr->index = (uint32_t)jb->ord;
            fr->timestamp = isfinite(c->rec.start_time) && c->rec.fps > 0
                                ? c->rec.start_time + number / c->rec.fps
                                : NAN;
            snprintf(fr->member, sizeof fr->member, "%s", member);
            fr->status = s->damaged ? NS_FRAME_DAMAGED : NS_FRAME_OK;
            memcpy(fr->props, s->props, sizeof fr->props);
            ns_qc_frame(&r->qc, s->mad, s->props, s->w, s->h);
            c->rec.frames_stored++;
            b->kept++;
            g->n++;
        }
        if (g->last)
            ns_qc_finish(&r->qc, ns_qc_gaps(clip), &c->rec);
    }
    /* The clip that goes on into the next batch needs its last stored frame. */
    if (g && !g->last && g->n > 0)
        ns_qc_keep(&r->qc, b->frames + (b->kept - 1) * r->frame_bytes);
}

static int cancelled(const run *r) { return r->o->cancel && *r->o->cancel; }

/* Clips whose last frames were in b need their bytes no more: the loader
 * reuses the buffer for a clip ahead instead of making a fresh one. */
static void release_decoded(run *r, const batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        clip_state *c = &r->cs[b->jobs[i].cs];
        if (!c->decoded && c->n_sched == c->n_sel) {
            c->decoded = 1;
            ns_loader_data_done(r->loader, c->ld);
        }
    }
}

static ns_status run_loop(run *r)
{
    ns_status st = NS_OK, ast = NS_OK;
    batch *cur = &r->bt[0], *pending = &r->bt[1];
    int active = -1, eof = 0;
    pending->n_seg = 0;
    for (;;) {
        if (cancelled(r)) {
            st = ns_error(NS_ERR_INTERRUPTED, "interrupted after %zu of %zu inputs",
                          r->prog.clips_done, r->prog.clips_total);
            break;
        }
        if ((st = fill_batch(r, cur, pending, &active, &eof)) != NS_OK)
            break;
        if (cur->count == 0 && pending->n_seg == 0)
            break;
#pragma omp parallel num_threads(r->threads)
        {
            if (omp_get_thread_num() == 0)
                ast = append_batch(r, pending);
            decode_batch(r, cur);
        }
        if ((st = ast) != NS_OK)
            break;
        release_decoded(r, cur);
        finalize_batch(r, cur);
        progress(r);
        batch *t = pending;
        pending = cur;
        cur = t;
    }
    if (st == NS_OK || st == NS_ERR_INTERRUPTED) {
        /* Finished clips are kept whatever stopped the run. */
        char keep[2048];
        ns_errmsg_copy(keep, sizeof keep);
        ns_status s2 = append_batch(r, pending);
        if (s2 == NS_OK && r->w_clip_open) {
            s2 = ns_shard_abort_clip(r->w);
            r->w_clip_open = 0;
        }
        if (s2 == NS_OK)
            s2 = commit_shard(r);
        if (s2 != NS_OK)
            st = s2;
        else if (st != NS_OK)
            ns_error(st, "%s", keep);
    }
    return st;
}

/* The options' checks; before anything starts. */
static ns_status run_check(run *r, const ns_ingest_opts *o, ns_ingest_summary *sum)
{
    ns_status st;
    if (o->night[0]) {
        if (ns_parse_night(o->night, r->default_night) != NS_OK)
            return ns_error_wrap(NS_ERR_USAGE, "--night");
    } else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(r->default_night, sizeof r->default_night, "%Y-%m-%d", &tm);
    }
    memcpy(sum->night, r->default_night, sizeof sum->night);
    if (o->every < 1 || o->batch < 1 || o->fps < 0 || o->shard_frames < 1)
        return ns_error(NS_ERR_USAGE, "--every, --batch and --shard-frames must be positive");
    if (o->name_pattern && *o->name_pattern && (st = ns_name_pattern_check(o->name_pattern)) != NS_OK)
        return st;
    return o->manifest ? ns_manifest_load(o->manifest, &r->manifest) : NS_OK;
}

/* First-touch faults of the arena cost the same whoever takes them, but
 * while the loader reads the first clip the cores have nothing else to do:
 * the team touches 2 MiB slabs until that clip is ready, and the decoders
 * touch the rest as they write.  The arena's faults took 4 to 50 ms of an
 * ingest's start here, as fresh memory happened to be cheap or not; a full
 * touch held the first batch back by the difference. */
static void pretouch_arena(run *r)
{
    size_t slabs = (r->arena_bytes + (1u << 21) - 1) >> 21, next = 0;
#pragma omp parallel num_threads(r->threads)
    for (;;) {
        size_t i = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED), off = i << 21;
        if (i >= slabs || ns_loader_ready(r->loader))
            break;
        size_t len = r->arena_bytes - off < (1u << 21) ? r->arena_bytes - off : (1u << 21);
        memset(r->arena + off, 0, len);
    }
}

/* The store, the decoders and the batch arena: run while the loader reads
 * and hashes the first clip, when the cores would otherwise wait. */
static ns_status run_init(run *r, const char *store_dir, const ns_ingest_opts *o)
{
    ns_status st;
    st = o->task_count > 0 ? ns_store_open_append(store_dir, o->frame_size, &r->store)
                           : ns_store_open_write(store_dir, o->frame_size, o->wait, &r->store);
    if (st != NS_OK)
        return st;
    r->S = ns_store_frame_size(r->store);
    r->frame_bytes = (size_t)r->S * r->S * 3;
    r->threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    r->B = o->batch;
    r->dec = calloc((size_t)r->threads, sizeof *r->dec);
    r->arena_bytes = 2 * (size_t)r->B * r->frame_bytes;
    /* One 2 MiB-aligned arena so transparent huge pages can back it: it is
     * rewritten for every batch, and first-touch page faults are costly. */
    if (posix_memalign((void **)&r->arena, 1 << 21, r->arena_bytes) != 0)
        r->arena = NULL;
    if (!r->dec || !r->arena)
        return ns_error(NS_ERR_NOMEM, "out of memory for %d decode buffers", r->B);
    madvise(r->arena, r->arena_bytes, MADV_HUGEPAGE);
    pretouch_arena(r);
    for (int i = 0; i < 2; i++) {
        batch *b = &r->bt[i];
        b->frames = r->arena + (size_t)i * r->B * r->frame_bytes;
        b->slots = calloc((size_t)r->B, sizeof *b->slots);
        b->recs = calloc((size_t)r->B, sizeof *b->recs);
        b->jobs = calloc((size_t)r->B, sizeof *b->jobs);
        b->seg = calloc((size_t)r->B, sizeof *b->seg);
        if (!b->slots || !b->recs || !b->jobs || !b->seg)
            return ns_error(NS_ERR_NOMEM, "out of memory for %d decode buffers", r->B);
    }
    for (int i = 0; i < r->threads; i++)
        if ((st = ns_decoder_create(&r->dec[i])) != NS_OK)
            return st;
    return ns_qc_init(&r->qc, r->S, &o->qc);
}

static void run_release(run *r)
{
    ns_loader_stop(r->loader);
    if (r->w)
        uncount_shard(r);
    ns_shard_discard(r->w);
    if (r->dec)
        for (int i = 0; i < r->threads; i++)
            ns_decoder_free(r->dec[i]);
    free(r->dec);
    free(r->arena);
    for (int i = 0; i < 2; i++) {
        free(r->bt[i].slots);
        free(r->bt[i].recs);
        free(r->bt[i].jobs);
        free(r->bt[i].seg);
    }
    for (int i = 0; i < LOADER_SLOTS; i++)
        free(r->cs[i].sel);
    free(r->seen.keys);
    free(r->seen.used);
    ns_qc_release(&r->qc);
    ns_manifest_free(r->manifest);
    ns_store_close(r->store);
}

ns_status ns_ingest_run(const char *store_dir, const char *const *inputs, size_t n_inputs,
                        const ns_ingest_opts *o, ns_ingest_summary *sum)
{
    ns_status st;
    run r;
    ns_input_list list = {0};
    memset(sum, 0, sizeof *sum);
    memset(&r, 0, sizeof r);
    r.o = o;
    r.sum = sum;
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    if ((st = run_check(&r, o, sum)) != NS_OK)
        goto done;
    if ((st = ns_inputs_collect(inputs, n_inputs, store_dir, &list)) != NS_OK)
        goto done;
    if (o->task_count > 0)
        ns_inputs_keep_task(&list, o->task_index, o->task_count);
    sum->inputs = list.n;
    r.prog.clips_total = list.n;
    r.prog.bytes_total = list.total_bytes;
    /* The loader first: it works on the clips alone (read, SHA-256), and
     * whether a clip is already stored is asked only once the store is open.
     * If the store is busy the loader is stopped having read a clip or two. */
    if ((st = ns_loader_start(&list, &o->clip_limits, LOADER_SLOTS, LOADER_POOL_BYTES,
                              &r.loader)) != NS_OK ||
        (st = run_init(&r, store_dir, o)) != NS_OK)
        goto done;
    st = run_loop(&r);
done:
    sum->seconds = now_since(&r.t0);
    run_release(&r); /* stops the loader before the input list goes */
    ns_inputs_release(&list);
    return st;
}

void ns_ingest_summary_release(ns_ingest_summary *s)
{
    for (size_t i = 0; i < s->n_problems; i++) {
        free(s->problems[i].path);
        free(s->problems[i].reason);
    }
    free(s->problems);
    memset(s, 0, sizeof *s);
}
