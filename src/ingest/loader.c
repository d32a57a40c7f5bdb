/* loader.c -- reads clips ahead of the decoder on a thread of its own.
 *
 * Loading is reading + SHA-256 + (for archives) decompression: serial work that
 * would otherwise leave the decode threads idle between clips.  Inputs are
 * loaded strictly in order into a ring of slots; the consumer takes them in
 * the same order and gives each back when its frames are stored.
 *
 * Clips are read into buffers from a small pool rather than mapped (see
 * ns_clip_lend_buffer for why), each given back as soon as the clip's frames
 * are decoded.  The pool holds at most its budget in bytes: fresh memory costs
 * ~2.6 ms/MB to first touch here, so buffers are few and reused, and none is
 * made before the first clip is taken (then the cores have decoding to do,
 * rather than wait for a first clip that a fresh buffer would delay).  A
 * clip that finds no buffer waits for one while the consumer has a loaded
 * clip to go on with, else it is mapped: so only the first clip is mapped
 * when clips fit the pool.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ingest_internal.h"

enum { SLOT_FREE = 0, SLOT_READY, SLOT_TAKEN };

#define POOL_MIN_CLIPS 3 /* the budget grows to hold this many of the largest clip */
#define POOL_MAX_CLIP ((size_t)32 << 20) /* larger clips are always mapped */
#define POOL_ALIGN ((size_t)2 << 20)

typedef struct pool_buf {
    uint8_t *p;
    size_t cap;
} pool_buf;

struct ns_loader {
    const ns_input_list *inputs;
    ns_clip_limits lim;
    ns_loaded *slots;
    int n_slots;
    size_t next_take;
    pthread_t thread;
    int started;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* any state change */
    /* the buffer pool, under mu */
    pool_buf *free_bufs;
    int n_free;
    size_t total;      /* bytes allocated: lent to slots' clips + free */
    size_t budget;     /* 0: no pool, every clip is mapped */
    int taken_any;     /* a clip has been taken */
};

/* 1 when a loaded clip waits to be taken.  Called locked. */
static int any_ready(const ns_loader *l)
{
    for (int i = 0; i < l->n_slots; i++)
        if (l->slots[i].state_ == SLOT_READY)
            return 1;
    return 0;
}

/* A buffer for a want-byte file, or NULL (map it).  Called unlocked. */
static uint8_t *pool_get(ns_loader *l, size_t want, size_t *cap)
{
    size_t budget = l->budget, need = (want + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    uint8_t *p = NULL;
    *cap = 0;
    if (want == 0 || want > POOL_MAX_CLIP || budget == 0)
        return NULL;
    if (budget < POOL_MIN_CLIPS * need)
        budget = POOL_MIN_CLIPS * need;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int best = -1;
        for (int i = 0; i < l->n_free; i++) /* the smallest that fits */
            if (l->free_bufs[i].cap >= want &&
                (best < 0 || l->free_bufs[i].cap < l->free_bufs[best].cap))
                best = i;
        if (best >= 0) {
            p = l->free_bufs[best].p;
            *cap = l->free_bufs[best].cap;
            l->free_bufs[best] = l->free_bufs[--l->n_free];
            break;
        }
        if (l->taken_any) {
            /* Free buffers too small for this clip make room for a bigger one. */
            while (l->total + need > budget && l->n_free > 0) {
                l->total -= l->free_bufs[l->n_free - 1].cap;
                free(l->free_bufs[--l->n_free].p);
            }
            if (l->total + need <= budget) {
                l->total += need; /* reserved before allocating, outside the lock */
                *cap = need;
                break;
            }
        }
        /* A buffer comes back when a clip's frames are decoded, and may be
         * made once a clip is taken: wait for either while the consumer has
         * a loaded clip to go on with, else map. */
        if (l->stop || !any_ready(l))
            break;
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    if (p || !*cap)
        return p;
    if (posix_memalign((void **)&p, POOL_ALIGN, need) != 0) {
        pthread_mutex_lock(&l->mu);
        l->total -= need;
        pthread_mutex_unlock(&l->mu);
        *cap = 0;
        return NULL; /* mapped instead */
    }
    madvise(p, need, MADV_HUGEPAGE);
    return p;
}

/* Takes the clip's read buffer, if it holds one, back into the pool (a clip
 * keeps a lent buffer whatever becomes of its load).  Called locked. */
static void pool_put(ns_loader *l, ns_clip *c)
{
    size_t cap;
    uint8_t *p = ns_clip_take_buffer(c, &cap);
    if (!p)
        return;
    if (l->n_free == l->n_slots) { /* full: keep the bigger buffers */
        int small = 0;
        for (int j = 1; j < l->n_free; j++)
            if (l->free_bufs[j].cap < l->free_bufs[small].cap)
                small = j;
        if (l->free_bufs[small].cap >= cap) {
            l->total -= cap;
            free(p);
            return;
        }
        l->total -= l->free_bufs[small].cap;
        free(l->free_bufs[small].p);
        l->free_bufs[small] = l->free_bufs[--l->n_free];
    }
    l->free_bufs[l->n_free].p = p;
    l->free_bufs[l->n_free++].cap = cap;
}

static void *loader_main(void *arg)
{
    ns_loader *l = arg;
    for (size_t i = 0; i <= l->inputs->n; i++) {
        ns_loaded *s = &l->slots[i % (size_t)l->n_slots];
        pthread_mutex_lock(&l->mu);
        while (s->state_ != SLOT_FREE && !l->stop)
            pthread_cond_wait(&l->cv, &l->mu);
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        if (i < l->inputs->n) {
            size_t cap;
            s->in = &l->inputs->items[i];
            uint8_t *buf = pool_get(l, (size_t)s->in->bytes, &cap);
            ns_clip_lend_buffer(&s->clip, buf, cap);
            ns_error_clear();
            s->st = ns_clip_load(s->in->path, &l->lim, &s->clip);
            ns_errmsg_copy(s->msg, sizeof s->msg);
        } else {
            s->in = NULL;
            s->st = NS_OK;
            s->msg[0] = '\0';
        }
        pthread_mutex_lock(&l->mu);
        s->state_ = SLOT_READY;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    return NULL;
}

ns_status ns_loader_start(const ns_input_list *inputs, const ns_clip_limits *lim, int slots,
                          size_t pool_budget, ns_loader **out)
{
    ns_loader *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    l->inputs = inputs;
    l->lim = *lim;
    l->n_slots = slots;
    l->budget = pool_budget;
    l->slots = calloc((size_t)slots, sizeof *l->slots);
    l->free_bufs = calloc((size_t)slots, sizeof *l->free_bufs);
    if (!l->slots || !l->free_bufs) {
        free(l->slots);
        free(l->free_bufs);
        free(l);
        return ns_error(NS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        ns_loader_stop(l);
        return ns_error(NS_ERR_INTERNAL, "cannot start the clip loader thread");
    }
    l->started = 1;
    *out = l;
    return NS_OK;
}

ns_loaded *ns_loader_take(ns_loader *l)
{
    ns_loaded *s = &l->slots[l->next_take % (size_t)l->n_slots];
    pthread_mutex_lock(&l->mu);
    while (s->state_ != SLOT_READY)
        pthread_cond_wait(&l->cv, &l->mu);
    s->state_ = SLOT_TAKEN;
    l->taken_any = 1;
    pthread_cond_broadcast(&l->cv); /* a loader waiting for a buffer may have to map */
    pthread_mutex_unlock(&l->mu);
    l->next_take++;
    return s;
}

int ns_loader_ready(ns_loader *l)
{
    ns_loaded *s = &l->slots[l->next_take % (size_t)l->n_slots];
    pthread_mutex_lock(&l->mu);
    int ready = s->state_ == SLOT_READY;
    pthread_mutex_unlock(&l->mu);
    return ready;
}

int ns_loader_slot(const ns_loader *l, const ns_loaded *ld)
{
    return (int)(ld - l->slots);
}

size_t ns_loader_pool_bytes(ns_loader *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->total;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void ns_loader_data_done(ns_loader *l, ns_loaded *ld)
{
    pthread_mutex_lock(&l->mu);
    pool_put(l, &ld->clip);
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void ns_loader_give_back(ns_loader *l, ns_loaded *ld)
{
    pthread_mutex_lock(&l->mu);
    pool_put(l, &ld->clip);
    ld->state_ = SLOT_FREE;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void ns_loader_stop(ns_loader *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    for (int i = 0; i < l->n_slots; i++) {
        ns_clip_release(&l->slots[i].clip);
    }
    for (int i = 0; i < l->n_free; i++)
        free(l->free_bufs[i].p);
    free(l->free_bufs);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->slots);
    free(l);
}
