/* whiten.c -- the Ledoit-Wolf shrunk covariance of a sample and its inverse
 * Cholesky factor (contract in include/nightshift/whiten.h). */
#include "nightshift/whiten.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per chunk of the covariance and the transform: the scratch stays in
 * cache-sized pieces and is allocated once per call. */
#define WH_CHUNK 512

void ns_whiten_release(ns_whiten *w)
{
    if (!w)
        return;
    free(w->mean);
    free(w->W);
    memset(w, 0, sizeof *w);
}

static ns_status kept_mean(const float *x, size_t n, int d, const uint8_t *skip, double *mean,
                           size_t *kept)
{
    size_t m = 0;
    memset(mean, 0, (size_t)d * sizeof *mean);
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        for (int j = 0; j < d; j++)
            mean[j] += x[i * (size_t)d + (size_t)j];
        m++;
    }
    if (m < 2)
        return ns_error(NS_ERR_USAGE, "whitening needs at least 2 rows, not %zu", m);
    for (int j = 0; j < d; j++)
        mean[j] /= (double)m;
    *kept = m;
    return NS_OK;
}

/* In place: the lower Cholesky factor of a (d, d); 0 when not positive definite. */
static int cholesky(double *a, int d)
{
    for (int j = 0; j < d; j++) {
        double s = a[(size_t)j * d + j];
        for (int k = 0; k < j; k++)
            s -= a[(size_t)j * d + k] * a[(size_t)j * d + k];
        if (!(s > 0))
            return 0;
        double ljj = sqrt(s);
        a[(size_t)j * d + j] = ljj;
        for (int i = j + 1; i < d; i++) {
            double t = a[(size_t)i * d + j];
            for (int k = 0; k < j; k++)
                t -= a[(size_t)i * d + k] * a[(size_t)j * d + k];
            a[(size_t)i * d + j] = t / ljj;
        }
    }
    return 1;
}

/* From S (d, d, full, the sum of y y^T over m centred rows) and the sum of
 * ||y||^4: lambda, C, L, W = L^-1 into out. */
static ns_status finish(double *S, double sum4, size_t m, int d, const double *mean,
                        ns_whiten *out)
{
    ns_status st = NS_OK;
    size_t dd = (size_t)d * (size_t)d;
    double *C = malloc(dd * sizeof *C);
    double tr = 0.0, f2 = 0.0, d2 = 0.0, b2, mu, lambda;
    memset(out, 0, sizeof *out);
    out->mean = malloc((size_t)d * sizeof *out->mean);
    out->W = calloc(dd, sizeof *out->W);
    if (!C || !out->mean || !out->W) {
        st = ns_error(NS_ERR_NOMEM, "no memory to whiten %d dimensions", d);
        goto done;
    }
    for (size_t i = 0; i < dd; i++)
        S[i] /= (double)m;
    for (int j = 0; j < d; j++)
        tr += S[(size_t)j * d + j];
    mu = tr / d;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = S[(size_t)i * d + j], e = s - (i == j ? mu : 0.0);
            f2 += s * s;
            d2 += e * e;
        }
    /* b^2 = (1/m^2) sum_i ||y_i y_i^T - S||_F^2 = (sum_i ||y_i||^4 / m - ||S||_F^2) / m. */
    b2 = (sum4 / (double)m - f2) / (double)m;
    if (b2 < 0)
        b2 = 0;
    lambda = d2 > 0 ? (b2 < d2 ? b2 / d2 : 1.0) : 1.0;
    for (;;) {
        for (size_t i = 0; i < dd; i++)
            C[i] = (1.0 - lambda) * S[i];
        for (int j = 0; j < d; j++)
            C[(size_t)j * d + j] += lambda * (mu > 0 ? mu : 1.0);
        if (cholesky(C, d))
            break;
        if (lambda >= 1.0) {
            st = ns_error(NS_ERR_INTERNAL, "whitening: the shrunk covariance is not positive "
                          "definite (trace %g)", tr);
            goto done;
        }
        lambda = lambda < 1e-6 ? 1e-6 : (lambda * 10 < 1.0 ? lambda * 10 : 1.0);
    }
    /* W = L^-1, column by column (forward substitution on e_j), in double:
     * S is free now and holds it. */
    memset(S, 0, dd * sizeof *S);
    for (int j = 0; j < d; j++) {
        S[(size_t)j * d + j] = 1.0 / C[(size_t)j * d + j];
        for (int i = j + 1; i < d; i++) {
            double t = 0.0;
            for (int k = j; k < i; k++)
                t -= C[(size_t)i * d + k] * S[(size_t)k * d + j];
            S[(size_t)i * d + j] = t / C[(size_t)i * d + i];
        }
    }
    for (size_t i = 0; i < dd; i++)
        out->W[i] = (float)S[i];
    for (int j = 0; j < d; j++)
        out->mean[j] = (float)mean[j];
    out->d = d;
    out->shrinkage = lambda;
done:
    free(C);
    if (st != NS_OK)
        ns_whiten_release(out);
    return st;
}

ns_status ns_whiten_fit_ref(const float *x, size_t n, int d, const uint8_t *skip,
                            ns_whiten *out)
{
    size_t m = 0, dd = (size_t)d * (size_t)d;
    double *mean = malloc((size_t)d * sizeof *mean), *S = calloc(dd, sizeof *S);
    double *y = malloc((size_t)d * sizeof *y), sum4 = 0.0;
    ns_status st = NS_OK;
    memset(out, 0, sizeof *out);
    if (!mean || !S || !y) {
        st = ns_error(NS_ERR_NOMEM, "no memory to whiten %d dimensions", d);
        goto done;
    }
    if ((st = kept_mean(x, n, d, skip, mean, &m)) != NS_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        double q = 0.0;
        if (skip && skip[i])
            continue;
        for (int j = 0; j < d; j++) {
            y[j] = x[i * (size_t)d + (size_t)j] - mean[j];
            q += y[j] * y[j];
        }
        sum4 += q * q;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                S[(size_t)a * d + b] += y[a] * y[b];
    }
    st = finish(S, sum4, m, d, mean, out);
done:
    free(mean);
    free(S);
    free(y);
    return st;
}

ns_status ns_whiten_fit(const float *x, size_t n, int d, const uint8_t *skip, ns_whiten *out)
{
    size_t m = 0, dd = (size_t)d * (size_t)d, rows = 0;
    double *mean = malloc((size_t)d * sizeof *mean), *S = calloc(dd, sizeof *S);
    double *Y = malloc((size_t)WH_CHUNK * (size_t)d * sizeof *Y), sum4 = 0.0;
    ns_status st = NS_OK;
    memset(out, 0, sizeof *out);
    if (!mean || !S || !Y) {
        st = ns_error(NS_ERR_NOMEM, "no memory to whiten %d dimensions", d);
        goto done;
    }
    if ((st = kept_mean(x, n, d, skip, mean, &m)) != NS_OK)
        goto done;
    for (size_t i = 0; i <= n; i++) {
        if (rows == WH_CHUNK || (i == n && rows > 0)) {
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, (int)rows, 1.0, Y, d, 1.0, S,
                        d);
            rows = 0;
        }
        if (i == n)
            break;
        if (skip && skip[i])
            continue;
        double q = 0.0, *y = Y + rows * (size_t)d;
        for (int j = 0; j < d; j++) {
            y[j] = x[i * (size_t)d + (size_t)j] - mean[j];
            q += y[j] * y[j];
        }
        sum4 += q * q;
        rows++;
    }
    for (int a = 0; a < d; a++) /* SYRK filled the lower triangle */
        for (int b = a + 1; b < d; b++)
            S[(size_t)a * d + b] = S[(size_t)b * d + a];
    st = finish(S, sum4, m, d, mean, out);
done:
    free(mean);
    free(S);
    free(Y);
    return st;
}

ns_status ns_whiten_apply_ref(const ns_whiten *w, const float *x, size_t n, float *out)
{
    int d = w->d;
    double *y = malloc((size_t)d * sizeof *y);
    if (!y)
        return ns_error(NS_ERR_NOMEM, "no memory to whiten %d dimensions", d);
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < d; j++)
            y[j] = (double)x[i * (size_t)d + (size_t)j] - w->mean[j];
        for (int a = 0; a < d; a++) {
            double s = 0.0;
            for (int b = 0; b <= a; b++)
                s += (double)w->W[(size_t)a * d + b] * y[b];
            out[i * (size_t)d + (size_t)a] = (float)s;
        }
    }
    free(y);
    return NS_OK;
}

ns_status ns_whiten_apply(const ns_whiten *w, const float *x, size_t n, float *out)
{
    int d = w->d;
    float *tmp = malloc((size_t)WH_CHUNK * (size_t)d * sizeof *tmp);
    if (!tmp)
        return ns_error(NS_ERR_NOMEM, "no memory to whiten %zu rows", n);
    for (size_t i0 = 0; i0 < n; i0 += WH_CHUNK) {
        size_t m = n - i0 < WH_CHUNK ? n - i0 : WH_CHUNK;
        for (size_t i = 0; i < m; i++)
            for (int j = 0; j < d; j++)
                tmp[i * (size_t)d + (size_t)j] = x[(i0 + i) * (size_t)d + (size_t)j] - w->mean[j];
        /* The chunk is copied out first, so out may be x. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, d, d, 1.0f, tmp, d, w->W, d,
                    0.0f, out + i0 * (size_t)d, d);
    }
    free(tmp);
    return NS_OK;
}
