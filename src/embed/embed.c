/* embed.c -- the embed stage driver (see include/nightshift/embed.h). */
#include "nightshift/embed.h"

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

static double now_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* One shard: frames in batches through the executor into a new file. */
static ns_status embed_shard(ns_store *s, ns_exec *e, const ns_embed_opts *o,
                             ns_embed_summary *sum, const ns_shard_entry *sh, uint64_t first,
                             uint8_t *frames, float *emb, ns_embed_progress *prog,
                             const struct timespec *t0)
{
    ns_status st;
    ns_emb_writer *w = NULL;
    st = ns_emb_begin(s, sum->model_id, sum->model_name, sum->dim, sh,
                      ns_device_name(sum->device), &w);
    for (uint64_t row = 0; st == NS_OK && row < sh->n_frames;) {
        size_t n = sh->n_frames - row < (uint64_t)o->batch ? (size_t)(sh->n_frames - row)
                                                           : (size_t)o->batch;
        if (o->cancel && *o->cancel) {
            st = ns_error(NS_ERR_INTERRUPTED, "interrupted in shard '%s'", sh->path);
            break;
        }
        if ((st = ns_store_read_frames(s, first + row, n, frames)) != NS_OK ||
            (st = ns_exec_run(e, frames, (int)n, emb)) != NS_OK ||
            (st = ns_emb_append(w, emb, n)) != NS_OK)
            break;
        row += n;
        sum->frames += n;
        prog->frames_done += n;
        if (o->on_progress) {
            prog->elapsed = now_since(t0);
            o->on_progress(o->ctx, prog);
        }
    }
    if (st == NS_OK) {
        st = ns_emb_commit(w);
        w = NULL;
    }
    ns_emb_discard(w);
    return st;
}

ns_status ns_embed_run(const char *store_dir, const ns_embed_opts *o, ns_embed_summary *sum)
{
    ns_status st;
    ns_store *s = NULL;
    ns_model *m = NULL;
    ns_exec *e = NULL;
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
    if ((st = ns_exec_create(m, o->device, o->batch, ns_store_frame_size(s), &e)) != NS_OK)
        goto done;
    sum->device = ns_exec_device(e);
    sum->dim = ns_exec_dim(e);
    if ((st = ns_emb_lock(s, sum->model_id, o->wait, &lock_fd)) != NS_OK)
        goto done;
    frame_bytes = (size_t)ns_store_frame_size(s) * ns_store_frame_size(s) * 3;
    frames = malloc((size_t)o->batch * frame_bytes);
    emb = malloc((size_t)o->batch * (size_t)sum->dim * sizeof *emb);
    if (!frames || !emb) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for a batch of %d frames", o->batch);
        goto done;
    }
    madvise(frames, (size_t)o->batch * frame_bytes, MADV_HUGEPAGE);
    shards = ns_store_shards(s, &n_shards);
    for (size_t i = 0; i < n_shards; i++) {
        int present = 0;
        if (!night_selected(o, shards[i].night))
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
        if (!night_selected(o, shards[i].night))
            continue;
        if ((st = ns_emb_present(s, sum->model_id, &shards[i], sum->dim, &present)) != NS_OK)
            goto done;
        if (present)
            continue;
        st = embed_shard(s, e, o, sum, &shards[i], first, frames, emb, &prog, &t0);
        if (st != NS_OK)
            goto done;
        sum->shards_embedded++;
        prog.shards_done++;
    }
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
