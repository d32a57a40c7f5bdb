/* dataset.c -- the in-memory dataset: allocation, content id (dataset.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/dataset.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the dataset id hashes little-endian bytes as they are in memory");

void ns_dataset_release(ns_dataset *ds)
{
    if (!ds)
        return;
    free(ds->emb);
    free(ds->label);
    free(ds->split);
    free(ds->classes);
    free(ds->clip);
    free(ds->member);
    free(ds->camera);
    free(ds->night);
    free(ds->index);
    free(ds->time);
    free(ds->condition);
    free(ds->view_row);
    free(ds->label_sets);
    memset(ds, 0, sizeof *ds);
}

ns_status ns_dataset_alloc(ns_dataset *ds, size_t n, int d, size_t n_classes)
{
    size_t cap = n ? n : 1;
    memset(ds, 0, sizeof *ds);
    if (d < 1 || (size_t)d > ((size_t)1 << 40) / cap)
        return ns_error(NS_ERR_USAGE, "dataset: bad shape (%zu, %d)", n, d);
    ds->n = n;
    ds->d = d;
    ds->n_classes = n_classes;
    ds->emb = malloc(cap * (size_t)d * sizeof *ds->emb);
    ds->label = calloc(cap, sizeof *ds->label);
    ds->split = calloc(cap, sizeof *ds->split);
    ds->classes = calloc(n_classes ? n_classes : 1, sizeof *ds->classes);
    ds->clip = calloc(cap, sizeof *ds->clip);
    ds->member = calloc(cap, sizeof *ds->member);
    ds->camera = calloc(cap, sizeof *ds->camera);
    ds->night = calloc(cap, sizeof *ds->night);
    ds->index = calloc(cap, sizeof *ds->index);
    ds->time = malloc(cap * sizeof *ds->time);
    ds->condition = malloc(cap * sizeof *ds->condition);
    ds->view_row = calloc(cap, sizeof *ds->view_row);
    ds->label_sets = calloc(1, 1);
    if (!ds->emb || !ds->label || !ds->split || !ds->classes || !ds->clip || !ds->member ||
        !ds->camera || !ds->night || !ds->index || !ds->time || !ds->condition ||
        !ds->view_row || !ds->label_sets) {
        ns_dataset_release(ds);
        return ns_error(NS_ERR_NOMEM, "no memory for a dataset of %zu frames (dim %d)", n, d);
    }
    for (size_t i = 0; i < n; i++) {
        ds->time[i] = NAN;
        ds->condition[i] = -1;
    }
    return NS_OK;
}

/* A fixed-width string as the file stores it: bytes after the NUL are zero. */
static void hash_str(ns_sha256 *h, const char *s, size_t width)
{
    char buf[NS_LABEL_LEN > NS_SHA256_HEX ? NS_LABEL_LEN : NS_SHA256_HEX];
    size_t len = strnlen(s, width);
    memset(buf, 0, width);
    memcpy(buf, s, len);
    ns_sha256_update(h, buf, width);
}

void ns_dataset_content_id(const ns_dataset *ds, char hex[NS_SHA256_HEX])
{
    ns_sha256 h;
    uint8_t dig[NS_SHA256_LEN];
    ns_sha256_init(&h);
    ns_sha256_update(&h, ds->emb, ds->n * (size_t)ds->d * sizeof *ds->emb);
    ns_sha256_update(&h, ds->label, ds->n * sizeof *ds->label);
    ns_sha256_update(&h, ds->split, ds->n * sizeof *ds->split);
    for (size_t c = 0; c < ds->n_classes; c++)
        hash_str(&h, ds->classes[c], NS_LABEL_LEN);
    for (size_t i = 0; i < ds->n; i++)
        hash_str(&h, ds->clip[i], NS_SHA256_HEX);
    ns_sha256_update(&h, ds->index, ds->n * sizeof *ds->index);
    ns_sha256_final(&h, dig);
    ns_sha256_hex(dig, hex);
}
