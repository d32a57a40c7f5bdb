/* embed.c -- the embed stage driver (see include/nightshift/embed.h). */
#include "nightshift/embed.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/clipmeta.h"
#include "nightshift/embeddings.h"
#include "nightshift/model.h"

void ns_embed_default_opts(ns_embed_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = "default";
    o->default_size = 112;
    o->default_seed = 1;
    o->device = NS_DEVICE_AUTO;
    o->batch = 64;
}

ns_status ns_embed_parse_nights(const char *s, ns_embed_opts *o)
{
    const char *dots = strstr(s, "..");
    char from[32] = "", to[32] = "";
    if (!dots) {
        snprintf(from, sizeof from, "%s", s);
        snprintf(to, sizeof to, "%s", s);
    } else {
        snprintf(from, sizeof from, "%.*s", (int)(dots - s), s);
        snprintf(to, sizeof to, "%s", dots + 2);
    }
    o->nights_from[0] = o->nights_to[0] = '\0';
    if ((from[0] && ns_parse_night(from, o->nights_from) != NS_OK) ||
        (to[0] && ns_parse_night(to, o->nights_to) != NS_OK) || (!from[0] && !to[0]))
        return ns_error(NS_ERR_USAGE,
                        "--nights '%s': want YYYY-MM-DD, FROM..TO, FROM.. or ..TO", s);
    if (from[0] && to[0] && strcmp(from, to) > 0)
        return ns_error(NS_ERR_USAGE, "--nights '%s': the range is empty", s);
    return NS_OK;
}

static int night_selected(const ns_embed_opts *o, const char *night)
{
    return (!o->nights_from[0] || strcmp(night, o->nights_from) >= 0) &&
           (!o->nights_to[0] || strcmp(night, o->nights_to) <= 0);
}

/* A task of a sharded run takes shards by id, which later commits never
 * change, so a retried task finds the same shards. */
static int shard_selected(const ns_embed_opts *o, const ns_shard_entry *sh)
{
    return night_selected(o, sh->night) &&
           (o->task_count <= 0 || (int)(sh->id % (uint32_t)o->task_count) == o->task_index);
}

static double now_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* One shard is a two-stage pipeline: an I/O thread, the only one making
 * HDF5 calls, reads batches ahead and appends finished batches' embeddings
 * while the calling thread runs batch k through the executor (whose OpenMP
 * team or GPU does the work).  Three slots rotate between the stages: with
 * batch k running and k+1 already read, the executor can send k+1 to the GPU
 * during k (ns_exec_run_next) while the I/O thread reads k+2. */
enum { SLOT_FREE = 0, SLOT_FRAMES, SLOT_EMBEDDED };
enum { NSLOTS = 3 };

typedef struct shard_pipe {
    ns_store *s;
    const ns_shard_entry *sh;
    ns_emb_writer *w;
    uint64_t first;                 /* view row of the shard's first frame */
    int batch, dim;
    size_t frame_bytes;
    uint8_t *frames[NSLOTS];
    float *emb[NSLOTS];
    size_t rows[NSLOTS];
    int state[NSLOTS];
    int stop;                       /* set by the caller on error or cancel */
    ns_status io_st;
    char io_msg[1024];
    pthread_mutex_t mu;
    pthread_cond_t cv;
} shard_pipe;

static void pipe_set(shard_pipe *p, int slot, int state)
{
    pthread_mutex_lock(&p->mu);
    p->state[slot] = state;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits for the slot to reach state; 0 when the pipe was stopped instead. */
static int pipe_wait(shard_pipe *p, int slot, int state)
{
    pthread_mutex_lock(&p->mu);
    while (p->state[slot] != state && !p->stop)
        pthread_cond_wait(&p->cv, &p->mu);
    int ok = p->state[slot] == state;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* Whether the slot is in state now, without waiting. */
static int pipe_peek(shard_pipe *p, int slot, int state)
{
    pthread_mutex_lock(&p->mu);
    int ok = p->state[slot] == state;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void pipe_fail(shard_pipe *p, ns_status st)
{
    pthread_mutex_lock(&p->mu);
    if (p->io_st == NS_OK) {
        p->io_st = st;
        ns_errmsg_copy(p->io_msg, sizeof p->io_msg);
    }
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *io_main(void *arg)
{
    shard_pipe *p = arg;
    ns_status st = NS_OK;
    uint64_t n_frames = p->sh->n_frames, n_batches = (n_frames + (uint64_t)p->batch - 1) / (uint64_t)p->batch;
    for (uint64_t k = 0; k < n_batches + NSLOTS && st == NS_OK; k++) {
        int slot = (int)(k % NSLOTS);
        if (k >= NSLOTS) { /* batch k-NSLOTS lives in this slot: store it first, in order */
            if (!pipe_wait(p, slot, SLOT_EMBEDDED))
                return NULL;
            st = ns_emb_append(p->w, p->emb[slot], p->rows[slot]);
            if (st != NS_OK)
                break;
            pipe_set(p, slot, SLOT_FREE);
        }
        if (k < n_batches) {
            uint64_t row = k * (uint64_t)p->batch;
            size_t n = n_frames - row < (uint64_t)p->batch ? (size_t)(n_frames - row) : (size_t)p->batch;
            st = ns_store_read_frames(p->s, p->first + row, n, p->frames[slot]);
            if (st != NS_OK)
                break;
            p->rows[slot] = n;
            pipe_set(p, slot, SLOT_FRAMES);
        }
    }
    if (st != NS_OK)
        pipe_fail(p, st);
    return NULL;
}

static ns_status embed_shard(ns_store *s, ns_exec *e, const ns_embed_opts *o,
                             ns_embed_summary *sum, const ns_shard_entry *sh, uint64_t first,
                             uint8_t *frames, float *emb, ns_embed_progress *prog,
                             const struct timespec *t0)
{
    ns_status st;
    shard_pipe p;
    pthread_t io;
    int started = 0;
    char device[32];
    uint64_t n_batches = (sh->n_frames + (uint64_t)o->batch - 1) / (uint64_t)o->batch;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.sh = sh;
    p.first = first;
    p.batch = o->batch;
    p.dim = sum->dim;
    p.frame_bytes = (size_t)ns_store_frame_size(s) * ns_store_frame_size(s) * 3;
    for (int i = 0; i < NSLOTS; i++) {
        p.frames[i] = frames + (size_t)i * (size_t)o->batch * p.frame_bytes;
        p.emb[i] = emb + (size_t)i * (size_t)o->batch * (size_t)sum->dim;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    /* fp32 keeps the plain device name, as files written before precisions had. */
    snprintf(device, sizeof device, "%s%s%s", ns_device_name(sum->device),
             sum->precision != NS_PREC_FP32 ? "-" : "",
             sum->precision != NS_PREC_FP32 ? ns_precision_name(sum->precision) : "");
    st = ns_emb_begin(s, sum->model_id, sum->model_name, sum->dim, sh, device, &p.w);
    if (st == NS_OK) {
        if (pthread_create(&io, NULL, io_main, &p) != 0)
            st = ns_error(NS_ERR_INTERNAL, "cannot start the embedding I/O thread");
        else
            started = 1;
    }
    for (uint64_t k = 0; st == NS_OK && k < n_batches; k++) {
        int slot = (int)(k % NSLOTS), after = (int)((k + 1) % NSLOTS);
        if (o->cancel && *o->cancel) {
            st = ns_error(NS_ERR_INTERRUPTED, "interrupted in shard '%s'", sh->path);
            break;
        }
        if (!pipe_wait(&p, slot, SLOT_FRAMES))
            break; /* the I/O thread failed: its status is reported below */
        /* The next batch, when the I/O thread already has it, goes to the GPU
         * while this one computes; its slot stays as it is until it has run. */
        const uint8_t *next = NULL;
        int next_n = 0;
        if (k + 1 < n_batches && pipe_peek(&p, after, SLOT_FRAMES)) {
            next = p.frames[after];
            next_n = (int)p.rows[after];
        }
        if ((st = ns_exec_run_next(e, p.frames[slot], (int)p.rows[slot], p.emb[slot], next,
                                   next_n)) != NS_OK)
            break;
        sum->frames += p.rows[slot];
        prog->frames_done += p.rows[slot];
        pipe_set(&p, slot, SLOT_EMBEDDED);
        if (o->on_progress) {
            prog->elapsed = now_since(t0);
            o->on_progress(o->ctx, prog);
        }
    }
    if (st != NS_OK) {
        char keep[2048];
        ns_errmsg_copy(keep, sizeof keep);
        pipe_fail(&p, st);
        ns_error(st, "%s", keep);
    }
    if (started)
        pthread_join(io, NULL);
    if (st == NS_OK && p.io_st != NS_OK)
        st = ns_error(p.io_st, "%s", p.io_msg);
    if (st == NS_OK) {
        st = ns_emb_commit(p.w);
        p.w = NULL;
    }
    ns_emb_discard(p.w);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    return st;
}

void ns_embed_summary_release(ns_embed_summary *sum)
{
    if (sum)
        ns_warnings_release(&sum->skipped);
}

ns_status ns_embed_run(const char *store_dir, const ns_embed_opts *o, ns_embed_summary *sum)
{
    ns_status st;
    ns_store *s = NULL;
    ns_model *m = NULL;
    ns_exec *e = NULL;
    ns_exec_opts eo = {.device = o->device, .precision = o->precision};
    uint8_t *frames = NULL;
    float *emb = NULL;
    int lock_fd = -1;
    size_t n_shards, frame_bytes;
    uint64_t first = 0;
    ns_embed_progress prog;
    struct timespec t0;
    const ns_shard_entry *shards;

    memset(sum, 0, sizeof *sum);
    memset(&prog, 0, sizeof prog);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (o->batch < 1 || o->batch > 4096) {
        st = ns_error(NS_ERR_USAGE, "--batch must be 1..4096");
        goto done;
    }
    /* The model first: a bad model file writes nothing and takes no lock. */
    st = strcmp(o->model, "default") == 0 ? ns_model_default(o->default_size, o->default_seed, &m)
                                          : ns_model_load(o->model, &m);
    if (st != NS_OK)
        goto done;
    snprintf(sum->model_id, sizeof sum->model_id, "%s", m->id);
    snprintf(sum->model_name, sizeof sum->model_name, "%s", m->info.name);
    if ((st = ns_store_open_read(store_dir, &s)) != NS_OK)
        goto done;
    if ((st = ns_exec_create_opts(m, &eo, o->batch, ns_store_frame_size(s), &e)) != NS_OK)
        goto done;
    sum->device = ns_exec_device(e);
    sum->precision = ns_exec_precision(e);
    sum->dim = ns_exec_dim(e);
    sum->setup_seconds = now_since(&t0);
    st = o->task_count > 0 ? ns_emb_lock_shared(s, sum->model_id, &lock_fd)
                           : ns_emb_lock(s, sum->model_id, o->wait, &lock_fd);
    if (st != NS_OK)
        goto done;
    frame_bytes = (size_t)ns_store_frame_size(s) * ns_store_frame_size(s) * 3;
    double t_alloc = now_since(&t0);
    frames = malloc(NSLOTS * (size_t)o->batch * frame_bytes); /* the pipeline's slots */
    emb = malloc(NSLOTS * (size_t)o->batch * (size_t)sum->dim * sizeof *emb);
    if (!frames || !emb) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for a batch of %d frames", o->batch);
        goto done;
    }
    madvise(frames, NSLOTS * (size_t)o->batch * frame_bytes, MADV_HUGEPAGE);
    /* Touched now, with the set-up: a first-touch page fault costs ~12 us per
     * 4 KB page on these VMs, 0.3 s for three batches of 256 at 224. */
    memset(frames, 0, NSLOTS * (size_t)o->batch * frame_bytes);
    memset(emb, 0, NSLOTS * (size_t)o->batch * (size_t)sum->dim * sizeof *emb);
    sum->setup_seconds += now_since(&t0) - t_alloc;
    shards = ns_store_shards(s, &n_shards);
    for (size_t i = 0; i < n_shards; i++) {
        int present = 0;
        if (!shard_selected(o, &shards[i]))
            continue;
        sum->shards_selected++;
        if ((st = ns_emb_present(s, sum->model_id, &shards[i], sum->dim, &present)) != NS_OK)
            goto done;
        if (present)
            sum->shards_present++;
        else
            prog.frames_total += shards[i].n_frames;
    }
    prog.shards_total = sum->shards_selected - sum->shards_present;
    for (size_t i = 0; i < n_shards; first += shards[i].n_frames, i++) {
        int present = 0;
        if (!shard_selected(o, &shards[i]))
            continue;
        if ((st = ns_emb_present(s, sum->model_id, &shards[i], sum->dim, &present)) != NS_OK)
            goto done;
        if (present)
            continue;
        if ((st = ns_store_shard_check(s, i)) != NS_OK) {
            /* One damaged shard must not stop the nights after it. */
            ns_warn(&sum->skipped, "skipped shard '%s' (night %s): %s", shards[i].path,
                    shards[i].night, ns_errmsg());
            sum->shards_skipped++;
            prog.frames_total -= shards[i].n_frames;
            prog.shards_total--;
            continue;
        }
        st = embed_shard(s, e, o, sum, &shards[i], first, frames, emb, &prog, &t0);
        if (st != NS_OK)
            goto done;
        sum->shards_embedded++;
        prog.shards_done++;
    }
    if (sum->shards_skipped > 0)
        st = ns_error(NS_ERR_CORRUPT, "%zu shards skipped (damaged; the other %zu were embedded): "
                      "run 'nightshift verify --store %s' and see its advice",
                      sum->shards_skipped, sum->shards_embedded, store_dir);
done:
    sum->seconds = now_since(&t0);
    free(frames);
    free(emb);
    if (lock_fd >= 0)
        close(lock_fd);
    ns_exec_free(e);
    ns_model_free(m);
    ns_store_close(s);
    return st;
}
