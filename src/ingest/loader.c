/* loader.c -- reads clips ahead of the decoder on a thread of its own.
 *
 * Loading is mmap + SHA-256 + (for archives) decompression: serial work that
 * would otherwise leave the decode threads idle between clips.  Inputs are
 * loaded strictly in order into a ring of slots; the consumer takes them in
 * the same order and gives each back when its frames are stored.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"

enum { SLOT_FREE = 0, SLOT_READY, SLOT_TAKEN };

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
};

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
            s->in = &l->inputs->items[i];
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
                          ns_loader **out)
{
    ns_loader *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    l->inputs = inputs;
    l->lim = *lim;
    l->n_slots = slots;
    l->slots = calloc((size_t)slots, sizeof *l->slots);
    if (!l->slots) {
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

void ns_loader_give_back(ns_loader *l, ns_loaded *ld)
{
    pthread_mutex_lock(&l->mu);
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
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->slots);
    free(l);
}
