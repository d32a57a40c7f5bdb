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

/* LAPACK (OpenBLAS exports it): Cholesky factor and triangular inverse. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda,
                    int *info);

/* The same factor and inverse with LAPACK: C is symmetric, so its row-major
 * array is its column-major one, and the column-major upper factor U
 * (C = U^T U) read row-major is L; U^-1 read row-major is L^-1.  1: C holds
 * L (lower, row-major) and Winv L^-1, zeros above the diagonal; 0: C is not
 * positive definite (Winv untouched); -1: the factor is singular. */
static int cholesky_inverse_fast(double *C, double *Winv, int d)
{
    int info = 0;
    size_t dd = (size_t)d * (size_t)d;
    dpotrf_("U", &d, C, &d, &info);
    if (info != 0)
        return 0;
    memcpy(Winv, C, dd * sizeof *Winv);
    dtrtri_("U", "N", &d, Winv, &d, &info);
    if (info != 0)
        return -1;
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++)
            C[(size_t)i * d + j] = Winv[(size_t)i * d + j] = 0.0;
    return 1;
}

/* From S (d, d, full, the sum of y y^T over m centred rows) and the sum of
 * ||y||^4: lambda, C, L, W = L^-1 into out.  fast: LAPACK's factor and
 * inverse; otherwise the plain loops (the _ref path). */
static ns_status finish(double *S, double sum4, size_t m, int d, const double *mean, int fast,
                        ns_whiten *out)
{
    ns_status st = NS_OK;
    size_t dd = (size_t)d * (size_t)d;
    double *C = malloc(dd * sizeof *C), *Wd = fast ? malloc(dd * sizeof *Wd) : S;
    double tr = 0.0, f2 = 0.0, d2 = 0.0, b2, mu, lambda;
    memset(out, 0, sizeof *out);
    out->mean = malloc((size_t)d * sizeof *out->mean);
    out->W = calloc(dd, sizeof *out->W);
    if (!C || !Wd || !out->mean || !out->W) {
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
        int ok = fast ? cholesky_inverse_fast(C, Wd, d) : cholesky(C, d);
        if (ok < 0) {
            st = ns_error(NS_ERR_INTERNAL, "whitening: the Cholesky factor is singular");
            goto done;
        }
        if (ok)
            break;
        if (lambda >= 1.0) {
            st = ns_error(NS_ERR_INTERNAL, "whitening: the shrunk covariance is not positive "
                          "definite (trace %g)", tr);
            goto done;
        }
        lambda = lambda < 1e-6 ? 1e-6 : (lambda * 10 < 1.0 ? lambda * 10 : 1.0);
    }
    /* W = L^-1, column by column (forward substitution on e_j), in double:
     * S is free now and holds it (the fast path has put it there). */
    if (!fast)
        memset(S, 0, dd * sizeof *S);
    for (int j = 0; j < d && !fast; j++) {
        S[(size_t)j * d + j] = 1.0 / C[(size_t)j * d + j];
        for (int i = j + 1; i < d; i++) {
            double t = 0.0;
            for (int k = j; k < i; k++)
                t -= C[(size_t)i * d + k] * S[(size_t)k * d + j];
            S[(size_t)i * d + j] = t / C[(size_t)i * d + i];
        }
    }
    for (size_t i = 0; i < dd; i++)
        out->W[i] = (float)Wd[i];
    for (int j = 0; j < d; j++)
        out->mean[j] = (float)mean[j];
    out->d = d;
    out->shrinkage = lambda;
done:
    free(C);
    if (fast)
        free(Wd);
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
    st = finish(S, sum4, m, d, mean, 0, out);
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
    st = finish(S, sum4, m, d, mean, 1, out);
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

/* The statistics of one fold's rows about the pivot p (the mean of all rows):
 * u = x - p; P = sum u u^T (lower triangle, from SYRK), su = sum u,
 * v = sum ||u||^2 u, a = sum ||u||^2, A = sum ||u||^4. */
typedef struct fold_stats {
    double *P, *su, *v; /* (d, d), (d), (d) */
    double a, A;
    size_t m;
} fold_stats;

ns_status ns_whiten_fit_folds(const float *x, size_t n, int d, const int *fold, int n_folds,
                              ns_whiten *out, ns_whiten *all)
{
    ns_status st = NS_OK;
    size_t dd = (size_t)d * (size_t)d, per = dd + 2 * (size_t)d, F = (size_t)n_folds;
    /* one block: F fold statistics, then the complement's (same layout),
     * the pivot, the chunk of centred rows and the complement's mean */
    double *buf = NULL, *pivot, *Y, *mean, *Sc, *suc, *vc;
    fold_stats *fs = NULL;
    size_t rows = 0;
    if (n_folds < 1)
        return ns_error(NS_ERR_USAGE, "whitening folds: %d folds", n_folds);
    for (int g = 0; g < n_folds; g++)
        memset(&out[g], 0, sizeof out[g]);
    if (all)
        memset(all, 0, sizeof *all);
    buf = calloc((F + 1) * per + 2 * (size_t)d + (size_t)WH_CHUNK * (size_t)d, sizeof *buf);
    fs = calloc(F, sizeof *fs);
    if (!buf || !fs) {
        st = ns_error(NS_ERR_NOMEM, "no memory to whiten %d dimensions in %d folds", d, n_folds);
        goto done;
    }
    for (size_t g = 0; g < F; g++) {
        fs[g].P = buf + g * per;
        fs[g].su = fs[g].P + dd;
        fs[g].v = fs[g].su + d;
    }
    Sc = buf + F * per;
    suc = Sc + dd;
    vc = suc + d;
    pivot = buf + (F + 1) * per;
    mean = pivot + d;
    Y = mean + d;
    if ((st = kept_mean(x, n, d, NULL, pivot, &rows)) != NS_OK)
        goto done;
    /* Fold by fold, its rows in chunks through SYRK. */
    for (size_t g = 0; g < F; g++) {
        fold_stats *f = &fs[g];
        rows = 0;
        for (size_t i = 0; i <= n; i++) {
            if (rows == WH_CHUNK || (i == n && rows > 0)) {
                cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, (int)rows, 1.0, Y, d, 1.0,
                            f->P, d);
                rows = 0;
            }
            if (i == n)
                break;
            if (fold[i] != (int)g)
                continue;
            double q = 0.0, *y = Y + rows * (size_t)d;
            for (int j = 0; j < d; j++) {
                y[j] = x[i * (size_t)d + (size_t)j] - pivot[j];
                q += y[j] * y[j];
            }
            for (int j = 0; j < d; j++) {
                f->su[j] += y[j];
                f->v[j] += q * y[j];
            }
            f->a += q;
            f->A += q * q;
            f->m++;
            rows++;
        }
    }
    /* The complement of fold g: u' = u - delta with delta = its mean minus
     * the pivot; S = P_c - m delta delta^T, and with q = ||u||^2,
     * b = u.delta, c = ||delta||^2:
     * sum ||u'||^4 = A_c - 4 delta.v_c + 2 c a_c + 4 delta^T P_c delta - 3 m c^2. */
    for (size_t g = 0; g < F + (all != NULL); g++) { /* g == F: no fold left out */
        size_t m = 0;
        double a = 0.0, A = 0.0, c = 0.0, dv = 0.0, dPd = 0.0;
        memset(Sc, 0, per * sizeof *Sc);
        for (size_t h = 0; h < F; h++) {
            if (h == g)
                continue;
            for (size_t i = 0; i < per; i++)
                Sc[i] += fs[h].P[i];
            a += fs[h].a;
            A += fs[h].A;
            m += fs[h].m;
        }
        if (m < 2) {
            st = ns_error(NS_ERR_USAGE, "whitening needs at least 2 rows, not %zu (fold %zu)", m,
                          g);
            goto done;
        }
        for (int j = 0; j < d; j++) {
            double dj = suc[j] / (double)m;
            mean[j] = dj; /* delta for now */
            c += dj * dj;
            dv += dj * vc[j];
        }
        for (int r = 0; r < d; r++) { /* lower triangle of P_c */
            double s = 0.0;
            for (int k = 0; k < r; k++)
                s += Sc[(size_t)r * d + k] * mean[k];
            dPd += mean[r] * (2.0 * s + Sc[(size_t)r * d + r] * mean[r]);
        }
        double sum4 = A - 4.0 * dv + 2.0 * c * a + 4.0 * dPd - 3.0 * (double)m * c * c;
        for (int r = 0; r < d; r++)
            for (int k = 0; k <= r; k++) {
                double s = Sc[(size_t)r * d + k] - (double)m * mean[r] * mean[k];
                Sc[(size_t)r * d + k] = Sc[(size_t)k * d + r] = s;
            }
        for (int j = 0; j < d; j++)
            mean[j] += pivot[j];
        if ((st = finish(Sc, sum4 > 0 ? sum4 : 0.0, m, d, mean, 1, g < F ? &out[g] : all)) !=
            NS_OK)
            goto done;
    }
done:
    if (st != NS_OK) {
        for (int g = 0; g < n_folds; g++)
            ns_whiten_release(&out[g]);
        ns_whiten_release(all);
    }
    free(buf);
    free(fs);
    return st;
}
