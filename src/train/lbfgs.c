/* lbfgs.c -- limited-memory BFGS for the softmax head (Nocedal and Wright,
 * Numerical Optimization, algorithms 7.4 and 7.5).
 *
 * The line search is backtracking from the unit step with the Armijo
 * condition, and a pair enters the memory only with positive curvature
 * (s.y > 0), which keeps the inverse Hessian estimate positive definite.  For
 * the smooth, convex, L2-regularised softmax loss the unit step is accepted
 * almost always, so an iteration costs one evaluation; a strong-Wolfe search
 * would spend evaluations (each a full pass over the embeddings) to buy
 * nothing here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

#define ARMIJO 1e-4
#define MAX_BACKTRACK 30

static double vdot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double maxabs(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* dir = -H g by the two-loop recursion over the k newest pairs (ring at head). */
static void direction(const double *g, const double *S, const double *Y, const double *rho,
                      double *alpha, int k, int head, int m, size_t n, double *dir)
{
    for (size_t i = 0; i < n; i++)
        dir[i] = -g[i];
    for (int j = 0; j < k; j++) {
        int p = (head - 1 - j + m) % m;
        alpha[p] = rho[p] * vdot(S + (size_t)p * n, dir, n);
        const double *y = Y + (size_t)p * n;
        for (size_t i = 0; i < n; i++)
            dir[i] -= alpha[p] * y[i];
    }
    if (k > 0) {
        int p = (head - 1 + m) % m;
        const double *y = Y + (size_t)p * n;
        double gamma = 1.0 / (rho[p] * vdot(y, y, n));
        for (size_t i = 0; i < n; i++)
            dir[i] *= gamma;
    }
    for (int j = k - 1; j >= 0; j--) {
        int p = (head - 1 - j + m) % m;
        double beta = rho[p] * vdot(Y + (size_t)p * n, dir, n);
        const double *s = S + (size_t)p * n;
        for (size_t i = 0; i < n; i++)
            dir[i] += (alpha[p] - beta) * s[i];
    }
}

ns_status ns_lbfgs(ns_lbfgs_fn fn, ns_lbfgs_iter_fn iter, void *ctx, double *x, size_t n,
                   const ns_lbfgs_opts *o, int *iters)
{
    const int m = o->m > 0 ? o->m : 10;
    double *buf = malloc(((size_t)4 + 2 * (size_t)m) * n * sizeof *buf);
    double *rho = malloc((size_t)m * 2 * sizeof *rho);
    *iters = 0;
    if (!buf || !rho) {
        free(buf);
        free(rho);
        return ns_error(NS_ERR_NOMEM, "L-BFGS: out of memory for %zu parameters", n);
    }
    double *g = buf, *dir = buf + n, *xn = buf + 2 * n, *gn = buf + 3 * n;
    double *S = buf + 4 * n, *Y = S + (size_t)m * n, *alpha = rho + m;
    double f = fn(ctx, x, g);
    int k = 0, head = 0;
    for (int it = 1; it <= o->max_iter && maxabs(g, n) > o->gtol; it++) {
        direction(g, S, Y, rho, alpha, k, head, m, n, dir);
        double dg = vdot(dir, g, n);
        if (!(dg < 0.0)) { /* not a descent direction: forget the memory */
            k = 0;
            for (size_t i = 0; i < n; i++)
                dir[i] = -g[i];
            dg = -vdot(g, g, n);
        }
        /* Without curvature information, a first step of unit length. */
        double step = k == 0 ? fmin(1.0, 1.0 / sqrt(-dg)) : 1.0, fn_new = f;
        int ok = 0;
        for (int bt = 0; bt < MAX_BACKTRACK; bt++, step *= 0.5) {
            for (size_t i = 0; i < n; i++)
                xn[i] = x[i] + step * dir[i];
            fn_new = fn(ctx, xn, gn);
            if (isfinite(fn_new) && fn_new <= f + ARMIJO * step * dg) {
                ok = 1;
                break;
            }
        }
        if (!ok) /* no decrease left at double precision: converged */
            break;
        double *s = S + (size_t)head * n, *y = Y + (size_t)head * n;
        for (size_t i = 0; i < n; i++) {
            s[i] = xn[i] - x[i];
            y[i] = gn[i] - g[i];
        }
        double sy = vdot(s, y, n);
        if (sy > 1e-12 * vdot(y, y, n)) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            k = k < m ? k + 1 : m;
        }
        double rel = (f - fn_new) / fmax(fmax(fabs(f), fabs(fn_new)), 1.0);
        memcpy(x, xn, n * sizeof *x);
        memcpy(g, gn, n * sizeof *g);
        f = fn_new;
        *iters = it;
        if ((iter && iter(ctx, it, x, f)) || rel <= o->ftol)
            break;
    }
    free(buf);
    free(rho);
    return NS_OK;
}
