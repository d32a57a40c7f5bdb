/* train.h -- fitting a classifier head (head.h) on a dataset's frozen
 * embeddings (dataset.h).
 *
 * softmax: multinomial logistic regression, full-batch L-BFGS; the loss and
 *          its gradient are two GEMMs per row block.
 * mlp:     one hidden ReLU layer, mini-batch Adam.
 * Both minimise the class-weighted mean cross-entropy on the train split plus
 * (l2 / 2) * ||weights||^2 (biases are not penalised), stop early on the val
 * split's weighted log loss (keeping the best iterate), then fit a
 * temperature on val.  The same seed, options, data and thread count give
 * the same head bits.  Method and file: docs/head.md.
 */
#ifndef NIGHTSHIFT_TRAIN_H
#define NIGHTSHIFT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/dataset.h"
#include "nightshift/exec.h"
#include "nightshift/head.h"
#include "nightshift/status.h"

typedef struct ns_train_opts {
    ns_head_kind kind; /* NS_HEAD_SOFTMAX */
    int hidden;        /* MLP width: 256 */
    double l2;         /* 1e-4 */
    int balanced;      /* class weights n / (C * n_c) from the train split: 1 */
    uint64_t seed;     /* MLP initialisation and batch order: 1 */
    int epochs;        /* most L-BFGS iterations (softmax) or epochs (mlp); 0: 200 / 30 */
    int batch;         /* MLP mini-batch: 256 */
    double lr;         /* Adam step: 1e-3 */
    int patience;      /* iterations / epochs without a better val loss before stopping;
                        * 0: 20 (softmax) / 5 (mlp); negative: never stop early */
    double tol;        /* softmax: stop when max |gradient| < tol: 1e-5 */
    ns_device device;  /* NS_DEVICE_AUTO */
} ns_train_opts;

void ns_train_default_opts(ns_train_opts *o);

/* One line of progress per iteration or epoch; e->val_* are NaN without a
 * val split.  Return nonzero to stop (the best head so far is kept). */
typedef int (*ns_train_progress_fn)(void *ctx, const ns_head_epoch *e, int max_epochs);

/* Trains a head on ds.  init, when not NULL, is a head to fine-tune: same
 * kind and width, its model must be the dataset's, and its classes a subset
 * of the dataset's (new classes start from zero rows, softmax, or small
 * random rows, mlp).  out gets the head (classes in the dataset's order,
 * metrics, dataset id, label sets, options); it is not saved. */
ns_status ns_train(const ns_dataset *ds, const ns_train_opts *o, const ns_head *init,
                   ns_train_progress_fn progress, void *ctx, ns_head *out);

/* The temperature T > 0 minimising the mean log loss of softmax(z / T) over
 * n rows of logits z (n, C) with labels y; 1 when n is 0. */
float ns_train_fit_temperature(const float *logits, const int32_t *y, size_t n, int C);

#endif
