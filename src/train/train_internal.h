/* train_internal.h -- shared by the files of src/train (and their tests).
 *
 * Every numeric piece has a plain reference (double precision loops,
 * obviously right) and the fast version with the same arguments.
 */
#ifndef NIGHTSHIFT_TRAIN_INTERNAL_H
#define NIGHTSHIFT_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* The training rows of a problem: x row rows[i] with label y[rows[i]] and
 * weight cw[y] / norm (the weights of the rows sum to 1). */
typedef struct ns_tr_rows {
    const float *x;      /* (any, d) */
    int d, C;
    const size_t *rows;  /* (n) */
    size_t n;
    const int32_t *y;    /* indexed by x row */
    const double *cw;    /* (C) class weights */
    double norm;         /* sum over the rows of cw[y] */
} ns_tr_rows;

/* ---- softmax: the full-batch objective ------------------------------------------
 * theta = [W (C, d) row-major, b (C)], double.  Returns the weighted mean
 * cross-entropy + (l2 / 2) ||W||^2 and its gradient (same layout as theta). */

#define NS_SM_BLOCK 256 /* rows per GEMM: about 0.5 MB of x at d = 512 stays in L2 */
#define NS_SM_CHUNKS 32 /* partial sums, fixed: the result does not depend on threads */
#define NS_SM_CHUNK_BYTES ((size_t)256 << 20) /* fewer sums when C x d is large */

typedef struct ns_sm_work {
    int d, C, threads;
    int chunks;          /* partial sums: NS_SM_CHUNKS, fewer for huge heads (sizes only) */
    float *wf, *bf;      /* (C, d), (C) theta as float */
    float *xb;           /* (threads, NS_SM_BLOCK, d) gathered rows */
    float *z;            /* (threads, NS_SM_BLOCK, C) logits, then the loss gradient */
    float *gw;           /* (chunks, C, d) */
    double *gb, *loss;   /* (chunks, C), (chunks) */
} ns_sm_work;

ns_status ns_sm_work_init(ns_sm_work *w, int d, int C, int threads);
void ns_sm_work_release(ns_sm_work *w);
double ns_sm_objective(const ns_tr_rows *r, double l2, ns_sm_work *w, const double *theta,
                       double *grad);
double ns_sm_objective_ref(const ns_tr_rows *r, double l2, const double *theta, double *grad);

/* ---- mlp: one mini-batch -------------------------------------------------------
 * Gradients of the weighted cross-entropy of B rows xb (B, d) with labels yb
 * and weights swb (summing to the batch's share; no L2 here).  Returns the
 * weighted loss sum. */
typedef struct ns_mlp_params {
    int d, hidden, C;
    float *w1, *b1, *w, *b; /* (hidden, d), (hidden), (C, hidden), (C) */
} ns_mlp_params;

/* Scratch: h and dh (B, hidden), z (B, C), gb (C). */
double ns_mlp_batch_grad(const ns_mlp_params *p, const float *xb, const int32_t *yb,
                         const float *swb, int B, float *h, float *dh, float *z, double *gb,
                         ns_mlp_params *g);
double ns_mlp_batch_grad_ref(const ns_mlp_params *p, const float *xb, const int32_t *yb,
                             const float *swb, int B, ns_mlp_params *g);

/* ---- L-BFGS ----------------------------------------------------------------------- */
typedef double (*ns_lbfgs_fn)(void *ctx, const double *x, double *grad);
/* Called after each accepted step with the iteration (1-based); nonzero stops. */
typedef int (*ns_lbfgs_iter_fn)(void *ctx, int iter, const double *x, double f);

typedef struct ns_lbfgs_opts {
    int m;          /* history pairs: 10 */
    int max_iter;
    double gtol;    /* max |g| */
    double ftol;    /* relative decrease of f over one step */
} ns_lbfgs_opts;

/* Minimises fn from x (updated in place).  *iters gets the iterations run. */
ns_status ns_lbfgs(ns_lbfgs_fn fn, ns_lbfgs_iter_fn iter, void *ctx, double *x, size_t n,
                   const ns_lbfgs_opts *o, int *iters);

#endif
