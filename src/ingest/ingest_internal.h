/* Private to src/ingest. */
#ifndef NIGHTSHIFT_INGEST_INTERNAL_H
#define NIGHTSHIFT_INGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

typedef struct ns_input {
    char *path;
    uint64_t bytes;
    int walked;      /* found by walking a directory (not named on the command line) */
} ns_input;

typedef struct ns_input_list {
    ns_input *items;
    size_t n, cap;
    uint64_t total_bytes;
} ns_input_list;

/* Expands files and directories (recursively, natural order, hidden entries
 * and non-regular files skipped) into a flat list.  A directory whose real
 * path is skip_dir (the store itself, when it sits among the inputs) is not
 * entered.  A named path that does not exist is an error naming it. */
ns_status ns_inputs_collect(const char *const *paths, size_t n, const char *skip_dir,
                           ns_input_list *out);
void ns_inputs_release(ns_input_list *l);
/* Keeps the inputs i with i % count == index: a sharded run's own part. */
void ns_inputs_keep_task(ns_input_list *l, int index, int count);

#endif

/* ---- the loader: a thread that reads the next clips while frames decode ---- */

#include "nightshift/clip.h"

typedef struct ns_loaded {
    ns_clip clip;           /* buffers reused from one load to the next */
    const ns_input *in;     /* NULL marks the end of the inputs */
    ns_status st;           /* of ns_clip_load */
    char msg[1024];         /* its message (messages are thread-local) */
    int state_;             /* private */
} ns_loaded;

typedef struct ns_loader ns_loader;

/* Starts loading inputs in order into a ring of `slots` clips.  Clips are
 * read into buffers from a pool of at most pool_budget bytes (grown to hold
 * three of the largest clip; 0: no pool), else mapped; see loader.c. */
ns_status ns_loader_start(const ns_input_list *inputs, const ns_clip_limits *lim, int slots,
                          size_t pool_budget, ns_loader **out);
/* The next input in order, waiting until it is loaded. */
ns_loaded *ns_loader_take(ns_loader *l);
/* 1 when ns_loader_take would not wait. */
int ns_loader_ready(ns_loader *l);
/* Index of a taken slot in the ring (stable until given back). */
int ns_loader_slot(const ns_loader *l, const ns_loaded *ld);
/* The taken clip's frames are all decoded: its bytes may go (its frame table,
 * names and warnings stay until it is given back). */
void ns_loader_data_done(ns_loader *l, ns_loaded *ld);
/* Bytes the pool holds now, lent or free. */
size_t ns_loader_pool_bytes(ns_loader *l);
/* Returns a taken slot for reuse. */
void ns_loader_give_back(ns_loader *l, ns_loaded *ld);
/* Stops the thread and frees every slot; NULL-safe. */
void ns_loader_stop(ns_loader *l);
