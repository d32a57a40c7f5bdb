/* metrics.c -- the per-frame sums and the metrics made from them. */
#include "nightshift/metrics.h"

#include <math.h>

void ns_ev_add(double *row, int n_classes, int label, int pred, double conf, double p_true)
{
    int ok = pred >= 0 && pred == label;
    int b = (int)(conf * NS_EV_BINS);
    double p = p_true > NS_EV_PMIN ? p_true : NS_EV_PMIN;
    b = b < 0 ? 0 : b >= NS_EV_BINS ? NS_EV_BINS - 1 : b;
    row[NS_EV_N] += 1;
    row[NS_EV_CORRECT] += ok;
    row[NS_EV_NLL] -= log(p > 1 ? 1 : p);
    row[NS_EV_BIN + 3 * b] += 1;
    row[NS_EV_BIN + 3 * b + 1] += conf;
    row[NS_EV_BIN + 3 * b + 2] += ok;
    if (label >= 0 && label < n_classes) {
        row[ns_ev_class(label)] += ok;
        row[ns_ev_class(label) + 1] += 1;
    }
    if (pred >= 0 && pred < n_classes)
        row[ns_ev_class(pred) + 2] += 1;
}

double ns_ev_accuracy(const double *s)
{
    return s[NS_EV_N] > 0 ? s[NS_EV_CORRECT] / s[NS_EV_N] : NAN;
}

double ns_ev_log_loss(const double *s)
{
    return s[NS_EV_N] > 0 ? s[NS_EV_NLL] / s[NS_EV_N] : NAN;
}

double ns_ev_ece(const double *s)
{
    double e = 0;
    if (!(s[NS_EV_N] > 0))
        return NAN;
    for (int b = 0; b < NS_EV_BINS; b++)
        e += fabs(s[NS_EV_BIN + 3 * b + 1] - s[NS_EV_BIN + 3 * b + 2]);
    return e / s[NS_EV_N];
}

double ns_ev_expected_accuracy(const double *s)
{
    double c = 0;
    if (!(s[NS_EV_N] > 0))
        return NAN;
    for (int b = 0; b < NS_EV_BINS; b++)
        c += s[NS_EV_BIN + 3 * b + 1];
    return c / s[NS_EV_N];
}

double ns_ev_precision(const double *s, int k)
{
    const double *c = s + ns_ev_class(k);
    return c[2] > 0 ? c[0] / c[2] : NAN;
}

double ns_ev_recall(const double *s, int k)
{
    const double *c = s + ns_ev_class(k);
    return c[1] > 0 ? c[0] / c[1] : NAN;
}

double ns_ev_f1(const double *s, int k)
{
    const double *c = s + ns_ev_class(k);
    return c[1] + c[2] > 0 ? 2 * c[0] / (c[1] + c[2]) : NAN;
}

double ns_ev_macro_f1(const double *s, int n_classes)
{
    double sum = 0;
    int m = 0;
    for (int k = 0; k < n_classes; k++) {
        const double *c = s + ns_ev_class(k);
        if (c[1] + c[2] > 0) {
            sum += 2 * c[0] / (c[1] + c[2]);
            m++;
        }
    }
    return m ? sum / m : NAN;
}

double ns_ev_expected_accuracy_probs(const float *prob, size_t n, int n_classes)
{
    double s = 0;
    if (n == 0 || n_classes <= 0)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        const float *p = prob + i * (size_t)n_classes;
        float m = p[0];
        for (int k = 1; k < n_classes; k++)
            m = p[k] > m ? p[k] : m;
        s += m;
    }
    return s / (double)n;
}
