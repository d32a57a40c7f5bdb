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
 * and non-regular files skipped) into a flat list.  A named path that does
 * not exist is an error naming it. */
ns_status ns_inputs_collect(const char *const *paths, size_t n, ns_input_list *out);
void ns_inputs_release(ns_input_list *l);

#endif
