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

/* Outcome of one decoded batch slot, written by one OpenMP thread. */
typedef struct slot {
    ns_status st;
    int32_t w, h;
    int damaged;
    char msg[240];
    float props[NS_PROP_COUNT];
} slot;

typedef struct night_writer {
    char night[NS_NIGHT_LEN];
    ns_shard_writer *w;
} night_writer;

/* Set of clip digests ingested by this run (open addressing on the hash's
 * own first bytes, which are uniformly distributed). */
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
    uint8_t *batch;        /* (B, S, S, 3), one arena for the whole run */
    size_t batch_bytes;
    slot *slots;           /* (B) */
    ns_frame_record *recs; /* (B) */
    size_t *sel;           /* sampled frame ordinals of the current clip */
    size_t sel_cap;
    ns_clip clip;          /* reused across clips: buffers grow once */
    ns_qc qc;
    ns_manifest *manifest;
    night_writer cur;      /* the open shard and its night */
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
    if (!s->cap)
        return 0;
    size_t h;
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
    size_t h;
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

static void report(run *r, const char *path, ns_outcome oc, const char *reason,
                   const ns_clip_record *rec)
{
    r->sum->clips[oc]++;
    if (r->o->on_clip) {
        ns_ingest_clip_result res = {path, oc, reason ? reason : "", rec, &r->clip.warn};
        r->o->on_clip(r->o->ctx, &res);
    }
}

static ns_status problem(run *r, const char *path, ns_outcome oc, const char *reason)
{
    report(r, path, oc, reason, NULL);
    return add_problem(r->sum, path, oc, reason);
}

static ns_status commit_writer(run *r, night_writer *nw);

/* The store keeps one shard open at a time, so a clip of another night
 * commits the current shard first.  Inputs walked in name order keep a
 * night's clips together, so this rarely splits a night. */
static ns_status writer_for(run *r, const char *night, ns_shard_writer **out)
{
    ns_status st;
    night_writer *nw = &r->cur;
    if (nw->w && strcmp(nw->night, night) != 0) {
        st = commit_writer(r, nw);
        if (st != NS_OK)
            return st;
    }
    if (!nw->w) {
        st = ns_shard_begin(r->store, night, &nw->w);
        if (st != NS_OK)
            return st;
        snprintf(nw->night, sizeof nw->night, "%s", night);
    }
    *out = nw->w;
    return NS_OK;
}

static ns_status commit_writer(run *r, night_writer *nw)
{
    ns_status st;
    size_t frames;
    if (!nw->w)
        return NS_OK;
    frames = ns_shard_frames(nw->w);
    st = ns_shard_commit(nw->w);
    nw->w = NULL;
    if (st == NS_OK && frames > 0)
        r->sum->shards_committed++;
    return st;
}

/* Chooses which frames of the clip to decode: every Nth, and at most
 * o->fps per second when the clip's frame rate is known. */
static ns_status select_frames(run *r, double fps, size_t *n_sel)
{
    const ns_ingest_opts *o = r->o;
    size_t n = r->clip.n_frames, k = 0;
    long last_bucket = -1;
    if (n > r->sel_cap) {
        size_t *p = realloc(r->sel, n * sizeof *p);
        if (!p)
            return ns_error(NS_ERR_NOMEM, "out of memory");
        r->sel = p;
        r->sel_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (o->every > 1 && i % (size_t)o->every != 0)
            continue;
        if (o->fps > 0 && fps > 0) {
            long bucket = (long)floor((double)i * o->fps / fps + 1e-9);
            if (bucket == last_bucket)
                continue;
            last_bucket = bucket;
        }
        r->sel[k++] = i;
    }
    *n_sel = k;
    return NS_OK;
}

static void decode_batch(run *r, size_t first, size_t count)
{
    const ns_ingest_opts *o = r->o;
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->threads)
    for (size_t j = 0; j < count; j++) {
        ns_decoder *d = r->dec[omp_get_thread_num()];
        const ns_clip_frame *f = &r->clip.frames[r->sel[first + j]];
        slot *s = &r->slots[j];
        uint8_t *out = r->batch + j * r->frame_bytes;
        ns_decode_info info;
        memset(&info, 0, sizeof info);
        s->st = ns_decode_fit(d, r->clip.data + f->offset, f->size, r->S, o->fit,
                              &o->decode_limits, out, &info);
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
}

static const char *clip_reason(ns_status st, ns_outcome *oc)
{
    switch (st) {
    case NS_ERR_FORMAT: *oc = NS_OUTCOME_UNRECOGNISED; break;
    case NS_ERR_UNSUPPORTED: *oc = NS_OUTCOME_UNSUPPORTED; break;
    case NS_ERR_IO: *oc = NS_OUTCOME_ERROR; break;
    default: *oc = NS_OUTCOME_QUARANTINED; break;
    }
    return ns_errmsg();
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

static int cancelled(const run *r) { return r->o->cancel && *r->o->cancel; }

static void progress(run *r)
{
    if (!r->o->on_progress)
        return;
    r->prog.elapsed = now_since(&r->t0);
    r->prog.frames_stored = r->sum->frames_stored;
    r->o->on_progress(r->o->ctx, &r->prog);
}

/* One clip, start to end.  Problems with the clip are reported and return
 * NS_OK; only store failures, out-of-memory and cancellation stop the run. */
static ns_status process_clip(run *r, const ns_input *in)
{
    const ns_ingest_opts *o = r->o;
    ns_status st;
    ns_outcome oc;
    ns_clip_meta meta;
    ns_clip_record rec;
    ns_shard_writer *w = NULL;
    char hex[NS_SHA256_HEX];
    size_t n_sel = 0;
    int clip_open = 0;

    ns_warnings_release(&r->clip.warn);
    st = ns_clip_load(in->path, &o->clip_limits, &r->clip);
    if (st != NS_OK) {
        const char *why = clip_reason(st, &oc);
        if (st == NS_ERR_NOMEM)
            return st;
        if (oc == NS_OUTCOME_UNRECOGNISED && in->walked && !clip_like_name(in->path)) {
            r->sum->files_skipped++; /* a README or manifest beside the clips */
            return NS_OK;
        }
        return problem(r, in->path, oc, why);
    }
    ns_sha256_hex(r->clip.sha256, hex);
    if (ns_store_find_clip(r->store, hex) >= 0 || digest_has(&r->seen, r->clip.sha256)) {
        report(r, in->path, NS_OUTCOME_DUPLICATE, "", NULL);
        return NS_OK;
    }

    memset(&meta, 0, sizeof meta);
    meta.start_time = NAN;
    if (!ns_manifest_lookup(r->manifest, in->path, &meta) && o->name_pattern && *o->name_pattern)
        ns_name_pattern_match(o->name_pattern, in->path, &meta);
    memset(&rec, 0, sizeof rec);
    memcpy(rec.sha256, hex, sizeof hex);
    snprintf(rec.source, sizeof rec.source, "%s", in->path);
    snprintf(rec.container, sizeof rec.container, "%s", r->clip.container);
    snprintf(rec.camera, sizeof rec.camera, "%s", meta.camera[0] ? meta.camera : o->default_camera);
    snprintf(rec.night, sizeof rec.night, "%s", meta.night[0] ? meta.night : r->default_night);
    rec.start_time = meta.start_time;
    rec.fps = r->clip.fps > 0 ? r->clip.fps : meta.fps;
    rec.frames_seen = (uint32_t)r->clip.n_frames;
    if (o->fps > 0 && rec.fps <= 0)
        ns_warn(&r->clip.warn, "clip '%s': frame rate unknown, --fps not applied", in->path);

    st = select_frames(r, rec.fps, &n_sel);
    if (st != NS_OK)
        return st;
    st = writer_for(r, rec.night, &w);
    if (st != NS_OK)
        return st;
    st = ns_shard_begin_clip(w);
    if (st != NS_OK)
        return st;
    clip_open = 1;
    ns_qc_reset(&r->qc);

    for (size_t first = 0; first < n_sel; first += (size_t)r->B) {
        size_t count = n_sel - first < (size_t)r->B ? n_sel - first : (size_t)r->B, kept = 0;
        if (cancelled(r)) {
            st = ns_error(NS_ERR_INTERRUPTED, "interrupted while ingesting '%s'", in->path);
            goto done;
        }
        decode_batch(r, first, count);
        for (size_t j = 0; j < count; j++) {
            const slot *s = &r->slots[j];
            size_t ord = r->sel[first + j];
            const ns_clip_frame *f = &r->clip.frames[ord];
            const char *member = ns_clip_frame_name(&r->clip, ord);
            if (s->st != NS_OK) {
                rec.frames_failed++;
                ns_qc_frame(&r->qc, NULL, NULL, s->w, s->h);
                ns_warn(&r->clip.warn, "clip '%s': member '%s': frame failed: %s", in->path,
                        member, s->msg);
                continue;
            }
            if (s->damaged) {
                rec.frames_damaged++;
                ns_warn(&r->clip.warn, "clip '%s': member '%s': frame damaged: %s", in->path,
                        member, s->msg);
            }
            if (rec.orig_width == 0) {
                rec.orig_width = s->w;
                rec.orig_height = s->h;
            }
            if (kept != j)
                memcpy(r->batch + kept * r->frame_bytes, r->batch + j * r->frame_bytes,
                       r->frame_bytes);
            ns_frame_record *fr = &r->recs[kept];
            double number = f->number >= 0 ? (double)f->number : (double)ord;
            fr->index = (uint32_t)ord;
            fr->timestamp = isfinite(rec.start_time) && rec.fps > 0
                                ? rec.start_time + number / rec.fps
                                : NAN;
            snprintf(fr->member, sizeof fr->member, "%s", member);
            fr->status = s->damaged ? NS_FRAME_DAMAGED : NS_FRAME_OK;
            memcpy(fr->props, s->props, sizeof fr->props);
            ns_qc_frame(&r->qc, r->batch + kept * r->frame_bytes, s->props, s->w, s->h);
            kept++;
        }
        if (kept > 0) {
            st = ns_shard_append(w, r->batch, r->recs, kept);
            if (st != NS_OK)
                goto done;
        }
        rec.frames_stored += (uint32_t)kept;
        progress(r);
    }

    r->sum->frames_seen += rec.frames_seen;
    r->sum->frames_skipped += rec.frames_seen - n_sel;
    r->sum->frames_failed += rec.frames_failed;
    if (rec.frames_stored == 0) {
        clip_open = 0;
        st = ns_shard_abort_clip(w);
        if (st != NS_OK)
            goto done;
        st = problem(r, in->path, NS_OUTCOME_QUARANTINED,
                     n_sel == 0 ? "no frames selected by --every/--fps"
                                : "no frame of the clip could be decoded");
        goto done;
    }
    ns_qc_finish(&r->qc, ns_qc_gaps(&r->clip), &rec);
    rec.ingest_time = (double)time(NULL);
    clip_open = 0;
    st = ns_shard_end_clip(w, &rec);
    if (st != NS_OK)
        goto done;
    st = digest_add(&r->seen, r->clip.sha256);
    if (st != NS_OK)
        goto done;
    r->sum->frames_stored += rec.frames_stored;
    r->sum->frames_damaged += rec.frames_damaged;
    report(r, in->path, NS_OUTCOME_INGESTED, "", &rec);
    if (ns_shard_frames(w) >= o->shard_frames)
        st = commit_writer(r, &r->cur);
done:
    if (clip_open) {
        ns_status s2 = ns_shard_abort_clip(w);
        if (st == NS_OK)
            st = s2;
    }
    return st;
}

static ns_status run_init(run *r, const char *store_dir, const ns_ingest_opts *o,
                          ns_ingest_summary *sum)
{
    ns_status st;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->sum = sum;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    if (o->night[0]) {
        st = ns_parse_night(o->night, r->default_night);
        if (st != NS_OK)
            return ns_error_wrap(NS_ERR_USAGE, "--night");
    } else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(r->default_night, sizeof r->default_night, "%Y-%m-%d", &tm);
    }
    if (o->every < 1 || o->batch < 1 || o->fps < 0 || o->shard_frames < 1)
        return ns_error(NS_ERR_USAGE, "--every, --batch and --shard-frames must be positive");
    if (o->name_pattern && *o->name_pattern) {
        st = ns_name_pattern_check(o->name_pattern);
        if (st != NS_OK)
            return st;
    }
    if (o->manifest) {
        st = ns_manifest_load(o->manifest, &r->manifest);
        if (st != NS_OK)
            return st;
    }
    st = ns_store_open_write(store_dir, o->frame_size, o->wait, &r->store);
    if (st != NS_OK)
        return st;
    r->S = ns_store_frame_size(r->store);
    r->frame_bytes = (size_t)r->S * r->S * 3;
    r->threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    r->B = o->batch;
    r->dec = calloc((size_t)r->threads, sizeof *r->dec);
    r->slots = calloc((size_t)r->B, sizeof *r->slots);
    r->recs = calloc((size_t)r->B, sizeof *r->recs);
    r->batch_bytes = (size_t)r->B * r->frame_bytes;
    /* One 2 MiB-aligned arena so transparent huge pages can back it: the
     * batch is rewritten for every clip, and first-touch faults are costly. */
    if (posix_memalign((void **)&r->batch, 1 << 21, r->batch_bytes) != 0)
        r->batch = NULL;
    if (!r->dec || !r->slots || !r->recs || !r->batch)
        return ns_error(NS_ERR_NOMEM, "out of memory for %d decode buffers", r->B);
    madvise(r->batch, r->batch_bytes, MADV_HUGEPAGE);
    for (int i = 0; i < r->threads; i++) {
        st = ns_decoder_create(&r->dec[i]);
        if (st != NS_OK)
            return st;
    }
    return ns_qc_init(&r->qc, r->S, &o->qc);
}

static void run_release(run *r)
{
    ns_shard_discard(r->cur.w);
    if (r->dec)
        for (int i = 0; i < r->threads; i++)
            ns_decoder_free(r->dec[i]);
    free(r->dec);
    free(r->slots);
    free(r->recs);
    free(r->batch);
    free(r->sel);
    free(r->seen.keys);
    free(r->seen.used);
    ns_clip_release(&r->clip);
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
    st = run_init(&r, store_dir, o, sum);
    if (st != NS_OK)
        goto done;
    st = ns_inputs_collect(inputs, n_inputs, &list);
    if (st != NS_OK)
        goto done;
    sum->inputs = list.n;
    r.prog.clips_total = list.n;
    r.prog.bytes_total = list.total_bytes;
    for (size_t i = 0; i < list.n; i++) {
        if (cancelled(&r)) {
            st = ns_error(NS_ERR_INTERRUPTED, "interrupted after %zu of %zu inputs", i, list.n);
            break;
        }
        st = process_clip(&r, &list.items[i]);
        if (st != NS_OK)
            break;
        r.prog.clips_done = i + 1;
        r.prog.bytes_done += list.items[i].bytes;
        sum->bytes_in += list.items[i].bytes;
        progress(&r);
    }
    /* Whatever stopped the run, clips already closed are committed: an
     * interrupted nightly job keeps its work. */
    if (st == NS_OK || st == NS_ERR_INTERRUPTED) {
        char keep[2048];
        ns_errmsg_copy(keep, sizeof keep);
        ns_status cs = commit_writer(&r, &r.cur);
        if (cs != NS_OK)
            st = cs;
        else if (st != NS_OK)
            ns_error(st, "%s", keep);
    }
done:
    sum->seconds = now_since(&r.t0);
    ns_inputs_release(&list);
    run_release(&r);
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
