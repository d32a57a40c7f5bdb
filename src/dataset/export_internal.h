/* export_internal.h -- export.c (frames) and export_pack.c (the tar). */
#ifndef NIGHTSHIFT_EXPORT_INTERNAL_H
#define NIGHTSHIFT_EXPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/frameset.h"
#include "nightshift/labels.h"

typedef struct task {
    size_t fs_row;              /* row in the frameset */
    char reason[32];            /* from the selection (untrusted text) */
    char suggested[NS_LABEL_LEN]; /* from the selection (untrusted text) */
    char file[160];             /* generated name in the tar */
    uint8_t *jpg;               /* malloc'd, or tjAlloc'd when tj_owned */
    size_t jpg_len;
    int tj_owned, original;
    int width, height;
} task;

/* Writes the tar (export.h) atomically at path. */
ns_status ns_export_write_package(const ns_frameset *fs, const ns_labelmap *lm, const task *t,
                                  size_t n, const char *path);

#endif
