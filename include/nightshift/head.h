/* head.h -- a classifier head on frozen embeddings: the model that train
 * writes, predict, evaluate, gate, detect --head and select --head read.
 *
 * File  (ns_format = "nightshift-head", version 1), written atomically,
 * documented in docs/head.md by the module that writes it (src/store/headfile.c):
 * weights, class list, temperature, the embedding model id it expects,
 * training metrics per epoch, the dataset id and label sets it was trained
 * on, and its own content SHA-256 as head id.
 *
 * The fields below are the contract; the writer may add more (metrics,
 * options) without breaking readers.
 */
#ifndef NIGHTSHIFT_HEAD_H
#define NIGHTSHIFT_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/labels.h"
#include "nightshift/sha256.h"
#include "nightshift/status.h"

#define NS_HEAD_FORMAT "nightshift-head"
#define NS_HEAD_FORMAT_VERSION 1

typedef enum ns_head_kind { NS_HEAD_SOFTMAX = 0, NS_HEAD_MLP = 1 } ns_head_kind;

typedef struct ns_head_epoch {
    int epoch;
    double train_loss, val_loss, val_accuracy;
} ns_head_epoch;

typedef struct ns_head {
    ns_head_kind kind;
    int d;          /* embedding dimension */
    int hidden;     /* MLP width; 0 for softmax */
    int n_classes;
    /* softmax: logits = W x + b, W (n_classes, d).
     * mlp:     h = relu(W1 x + b1), W1 (hidden, d); logits = W h + b, W (n_classes, hidden). */
    float *w1, *b1; /* NULL for softmax */
    float *w, *b;
    float temperature; /* probabilities are softmax(logits / temperature) */
    char (*classes)[NS_LABEL_LEN];
    char head_id[NS_SHA256_HEX];    /* SHA-256 of the content (weights, classes, temperature, model id) */
    char model_id[NS_SHA256_HEX];   /* the embedding model it expects */
    char dataset_id[NS_SHA256_HEX]; /* trained on ("" when unknown) */
    char *label_sets;               /* malloc'd, comma-separated "name@version" */
    size_t n_epochs;
    ns_head_epoch *epochs;          /* training metrics, may be NULL */
    char *options;                  /* malloc'd training options "key=value ...", may be NULL */
    double created;                 /* unix seconds of the save (provenance, not content) */
} ns_head;

/* Allocates the weights (zeroed) and the class list for this shape; h is
 * zeroed first, temperature set to 1.  hidden is ignored for softmax. */
ns_status ns_head_alloc(ns_head *h, ns_head_kind kind, int d, int hidden, int n_classes);

/* "softmax" or "mlp". */
const char *ns_head_kind_name(ns_head_kind kind);

/* Hex SHA-256 of the content, the head id: kind, d, hidden, n_classes
 * (int32 LE), w1, b1 (mlp only), w, b, temperature (float32 LE), the class
 * names NUL-padded to NS_LABEL_LEN and model_id NUL-padded to NS_SHA256_HEX.
 * Metrics, dataset id and label sets are provenance, not content. */
void ns_head_content_id(const ns_head *h, char hex[NS_SHA256_HEX]);

/* Fills h->head_id from the content, then writes path atomically. */
ns_status ns_head_save(ns_head *h, const char *path);

/* Reads and checks a head (format, shapes, finite weights, head id). */
ns_status ns_head_load(const char *path, ns_head *out);

/* Refuses (NS_ERR_USAGE, naming both ids) embeddings of another model. */
ns_status ns_head_check_model(const ns_head *h, const char *model_id, int d);

/* Temperature-scaled class probabilities: prob (n, n_classes), row-major.
 * emb (n, h->d).  Deterministic and thread-count independent. */
ns_status ns_head_predict(const ns_head *h, const float *emb, size_t n, float *prob);

/* Raw logits before the temperature: logits (n, n_classes).  The same
 * arithmetic as ns_head_predict, row by row: a frame's values never depend on
 * the batch it came in or the thread count. */
ns_status ns_head_logits(const ns_head *h, const float *emb, size_t n, float *logits);

/* Per row of prob (n, n_classes): the top class, its probability and the
 * margin to the runner-up (top - second; the top probability when there is
 * one class).  Ties go to the lower class index.  Any output may be NULL. */
void ns_head_top(const float *prob, size_t n, int n_classes, int32_t *top, float *p,
                 float *margin);

void ns_head_release(ns_head *h); /* NULL-safe, idempotent */

#endif
