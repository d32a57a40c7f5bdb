/* gate.h -- may the candidate head replace the production head?
 *
 * Both heads are scored on the same evaluation frames (evalset.h).  Every
 * check compares them on one slice with a paired clip bootstrap (the same
 * clips resampled for both: bootstrap.h), so the interval is on the paired
 * delta, candidate minus production (for ECE: production minus candidate,
 * so a positive delta is always "candidate better").
 *
 * Checks: the primary metric on all frames (its delta must stay above
 * primary_min_delta), ECE on all frames (may worsen by at most ece_margin),
 * and accuracy on each slice of a deciding kind (camera, class, subset by
 * default) with that kind's margin.  A slice with fewer clips than
 * min_clips (or frames than min_frames) is reported but cannot decide.
 *
 * Decision, per check: p_noninf and p_inf are the bootstrap's one-sided
 * p-values of "delta <= -margin" and "delta >= -margin"; p = 2 min(p_noninf,
 * p_inf), Holm-adjusted over the deciding checks at family level alpha.
 * The check's interval is the two-sided percentile interval at its Holm
 * level alpha / (m - rank + 1): a lower bound above -margin is
 * non-inferior, an upper bound below -margin inferior, else undecided (and
 * Holm's step-down leaves everything after the first undecided check
 * undecided too).  McNemar's test on the frames is reported beside it; it
 * ignores that frames of a clip are correlated, so it does not decide.
 *
 * Verdict: REJECT when a check is inferior; PROMOTE when every deciding
 * check is non-inferior (the primary one among them); else INSUFFICIENT,
 * with the clips each undecided check would need (power estimate from the
 * bootstrap standard error, which shrinks as 1/sqrt(clips)).
 */
#ifndef NIGHTSHIFT_GATE_H
#define NIGHTSHIFT_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/evalset.h"
#include "nightshift/status.h"
#include "nightshift/strbuf.h"

#define NS_GATE_MAX_OVERRIDES 64
#define NS_GATE_MAX_SUBSETS 32

typedef enum ns_gate_metric {
    NS_GATE_ACCURACY = 0,
    NS_GATE_MACRO_F1,
    NS_GATE_ECE,
} ns_gate_metric;

extern const char *const ns_gate_metric_names[3]; /* "accuracy", "macro_f1", "ece" */

typedef struct ns_gate_override {
    ns_slice_kind kind;
    char name[NS_LABEL_LEN];
    double margin; /* NaN: this slice does not decide */
} ns_gate_override;

typedef struct ns_gate_policy {
    ns_gate_metric primary;        /* accuracy or macro_f1 */
    double primary_min_delta;      /* -0.01: non-inferior with margin 0.01 */
    double margin[NS_SLICE_KINDS]; /* per kind; NaN: reported, does not decide */
    size_t n_overrides;
    ns_gate_override overrides[NS_GATE_MAX_OVERRIDES];
    double ece_margin;             /* candidate ECE may exceed production's by this */
    int min_clips;                 /* a slice needs this many clips to decide */
    int min_frames;                /* and this many frames */
    double alpha;                  /* family-wise error over the deciding checks */
    double power;                  /* of the "more clips" estimate */
    int n_rep;                     /* bootstrap replicates */
    uint64_t seed;
    size_t n_subsets;
    ns_subset_def subsets[NS_GATE_MAX_SUBSETS];
} ns_gate_policy;

void ns_gate_default_policy(ns_gate_policy *p);
/* Reads a policy file over the values already in p: "key = value" lines,
 * '#' comments, blank lines.  Keys (docs/gate.md):
 *   primary_metric, primary_min_delta, margin.KIND, margin.KIND.NAME,
 *   ece_margin, min_clips, min_frames, alpha, power, replicates, seed, subset.NAME
 * A margin of "off" makes that kind or slice report only.  An unknown key
 * or a bad value is NS_ERR_USAGE naming file, line and key. */
ns_status ns_gate_policy_load(const char *path, ns_gate_policy *p);
/* The policy in the file's own syntax (what --help prints and OUT keeps). */
void ns_gate_policy_format(const ns_gate_policy *p, ns_strbuf *sb);
/* The margin for a slice: its override, else its kind's (NaN: not deciding). */
double ns_gate_policy_margin(const ns_gate_policy *p, const ns_slice *s);

typedef enum ns_gate_decision {
    NS_GATE_NONINFERIOR = 0,
    NS_GATE_INFERIOR,
    NS_GATE_UNDECIDED,
    NS_GATE_REPORTED, /* not deciding: kind off, or too few clips */
} ns_gate_decision;

extern const char *const ns_gate_decision_names[4];

typedef enum ns_gate_verdict { NS_GATE_PROMOTE = 0, NS_GATE_REJECT, NS_GATE_INSUFFICIENT } ns_gate_verdict;

extern const char *const ns_gate_verdict_names[3]; /* "promote", "reject", "insufficient" */

typedef struct ns_gate_check {
    size_t slice;           /* in the eval set */
    ns_gate_metric metric;
    int primary;            /* the primary-metric check */
    int new_class;          /* a class the production head cannot predict: it scores 0 */
    double margin;          /* delta must stay above -margin; NaN when not deciding */
    size_t n_frames, n_clips;
    double cand, prod;      /* the metric of each head on the slice */
    double delta;           /* paired point delta, positive = candidate better */
    double se;              /* bootstrap standard deviation of the delta */
    double lo95, hi95;      /* plain 95% percentile interval */
    double level;           /* two-sided miscoverage of [lo, hi] (Holm level) */
    double lo, hi;          /* the interval that decides */
    double p_noninf, p_inf, p, p_holm;
    uint64_t fixed, broken; /* frames production got wrong and the candidate right; the reverse */
    double mcnemar_p;
    ns_gate_decision decision;
    const char *why;        /* static text for REPORTED ("too few clips", ...) */
    long more_clips;        /* UNDECIDED: more clips needed; -1 when no estimate */
} ns_gate_check;

typedef struct ns_gate_result {
    ns_gate_verdict verdict;
    size_t n_checks, n_deciding;
    ns_gate_check *checks;
    int n_rep;
    double seconds_bootstrap;
} ns_gate_result;

/* Scores both heads' predictions on es under policy pol. */
ns_status ns_gate_run(const ns_eval_set *es, const ns_dataset *ds, const ns_eval_pred *cand,
                      const ns_eval_pred *prod, const ns_gate_policy *pol, int threads,
                      ns_gate_result *out);
void ns_gate_result_release(ns_gate_result *r); /* NULL-safe, idempotent */

/* The parts, public for tests and the benchmark. */
/* Holm step-down adjusted p-values of p (n); rank (n) gets each p's
 * 0-based position in ascending order (ties by index). */
void ns_gate_holm(const double *p, size_t n, double *p_adj, size_t *rank);
/* McNemar's two-sided p for b and c discordant pairs: exact binomial up
 * to 50 pairs, else chi-square with continuity correction.  1 when b+c = 0. */
double ns_gate_mcnemar(uint64_t b, uint64_t c);
/* Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9). */
double ns_gate_norm_quantile(double p);
/* Fills a check's se, lo95/hi95, p_noninf, p_inf, p from the bootstrap
 * deltas reps (n_rep, sorted here). */
void ns_gate_check_from_reps(ns_gate_check *c, double *reps, int n_rep);
/* Holm over the deciding checks, their intervals at their levels (from
 * each check's sorted reps), decisions, clip estimates and the verdict. */
ns_gate_verdict ns_gate_decide(const ns_gate_policy *pol, ns_gate_check *checks, size_t n,
                               double *const *sorted_reps, int n_rep);

#endif
