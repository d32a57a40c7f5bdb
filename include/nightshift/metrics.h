/* metrics.h -- classification metrics of one head, as sums that add up.
 *
 * Every metric evaluate and gate report is a function of a few sums over
 * frames, so a clip reduces to one row of sums and the clip bootstrap
 * (bootstrap.h) only adds rows.  The row of one head over n_classes classes
 * has ns_ev_q(n_classes) doubles:
 *   [NS_EV_N]        frames
 *   [NS_EV_CORRECT]  frames whose top class is the label
 *   [NS_EV_NLL]      sum of -log p(label), p clipped at NS_EV_PMIN
 *   [NS_EV_BIN + 3b] per confidence bin b of NS_EV_BINS equal-width bins
 *                    of the max probability: frames, sum of max probability,
 *                    correct frames
 *   [ns_ev_class(k)] per class k: true positives, frames labelled k, frames
 *                    predicted k
 * A frame whose prediction is no class of the evaluation set (a head class
 * the dataset lacks) has pred -1: it is wrong and predicts no class.
 */
#ifndef NIGHTSHIFT_METRICS_H
#define NIGHTSHIFT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define NS_EV_BINS 15
#define NS_EV_PMIN 1e-15 /* log loss clip (scikit-learn's eps) */

enum { NS_EV_N = 0, NS_EV_CORRECT = 1, NS_EV_NLL = 2, NS_EV_BIN = 3 };

static inline int ns_ev_class(int k)
{
    return NS_EV_BIN + 3 * NS_EV_BINS + 3 * k;
}

static inline int ns_ev_q(int n_classes)
{
    return ns_ev_class(n_classes);
}

/* One frame's outcome: label and pred are classes of the evaluation set
 * (pred -1: none of them), conf the temperature-scaled max probability,
 * p_true the probability of the label (0 when the head lacks that class). */
void ns_ev_add(double *row, int n_classes, int label, int pred, double conf, double p_true);

/* Metrics from a row of sums s (NaN where undefined, e.g. no frames). */
double ns_ev_accuracy(const double *s);
double ns_ev_log_loss(const double *s);
/* Expected calibration error: sum over bins of |frames' mean confidence -
 * accuracy| weighted by the bin's share of frames. */
double ns_ev_ece(const double *s);
/* The accuracy the head expects from its own confidences, with no labels
 * (CBPE): the mean temperature-scaled max probability. */
double ns_ev_expected_accuracy(const double *s);
/* Macro-F1 over the classes that are labelled or predicted in s (as
 * scikit-learn's f1_score(average="macro") over the labels present). */
double ns_ev_macro_f1(const double *s, int n_classes);
double ns_ev_precision(const double *s, int k);
double ns_ev_recall(const double *s, int k);
double ns_ev_f1(const double *s, int k);

/* Label-free expected accuracy straight from probabilities: the mean over n
 * rows of the max of prob (n, n_classes).  NaN for n == 0.  The function
 * detect --head and select --head use. */
double ns_ev_expected_accuracy_probs(const float *prob, size_t n, int n_classes);

#endif
