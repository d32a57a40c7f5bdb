/* train_common.h -- the state ns_train shares between train.c (setup,
 * early stopping, softmax) and train_mlp.c. */
#ifndef NIGHTSHIFT_TRAIN_COMMON_H
#define NIGHTSHIFT_TRAIN_COMMON_H

#include "nightshift/train.h"
#include "train_internal.h"

typedef struct ns_trainer {
    const ns_dataset *ds;
    ns_train_opts o;
    int C;
    ns_head *h;               /* the head being trained (epochs filled as it goes) */
    size_t *train_rows;       /* (n_train) rows of ds in the train split */
    size_t n_train, n_val;
    float *val_x;             /* (n_val, d) gathered once */
    int32_t *val_y;           /* (n_val) */
    float *val_z;             /* (n_val, C) logits */
    double *cw;               /* (C) class weights */
    size_t *counts;           /* (C) train frames per class */
    ns_tr_rows tr;
    int max_epochs, patience, since_best;
    double best_val;
    float *best_w, *best_b, *best_w1, *best_b1; /* the best iterate so far */
    ns_device device;         /* CPU or CUDA, resolved */
    ns_train_progress_fn progress;
    void *ctx;
} ns_trainer;

/* Val loss (class-weighted log loss) and accuracy of t->h; NaN without val. */
ns_status ns_tr_eval_val(ns_trainer *t, double *loss, double *acc);
/* Records an epoch, keeps the best iterate; 1 to stop, -1 on error. */
int ns_tr_record(ns_trainer *t, int epoch, double train_loss);
void ns_tr_snapshot(ns_trainer *t);
/* AUTO -> the CPU (see train.c); CUDA without a device refused with the reason. */
ns_status ns_train_device(ns_device want, ns_device *got);

void ns_tr_mlp_init(ns_trainer *t);
ns_status ns_tr_train_mlp(ns_trainer *t);
/* The MLP's batch order: the stream's start for the seed, and one epoch's
 * Fisher-Yates shuffle (the same on both devices). */
uint64_t ns_tr_batch_seed(const ns_trainer *t);
void ns_tr_shuffle(size_t *perm, size_t n, uint64_t *rng);

/* CUDA (train_cuda.c): the train rows on the device; z_cols columns of
 * scratch per row (the softmax's C). */
typedef struct ns_tr_cuda ns_tr_cuda;
ns_status ns_tr_cuda_open(const ns_trainer *t, int z_cols, ns_tr_cuda **out);
void ns_tr_cuda_close(ns_tr_cuda *c);
/* The softmax objective as ns_sm_objective computes it; NaN and *status set
 * on a device error. */
double ns_tr_cuda_sm_objective(ns_tr_cuda *c, double l2, const double *theta, double *grad,
                               ns_status *status);
ns_status ns_tr_cuda_train_mlp(ns_trainer *t);

#endif
