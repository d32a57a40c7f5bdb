/* detect.h -- tonight against the reference: novelty, the shift test, novel
 * conditions and what changed.
 *
 * 1. Novelty per frame: s = distance to the knn_k-th nearest reference sample
 *    frame; p = ns_knn_pvalue(s) against the reference's leave-one-clip-out
 *    distances; a frame is novel when p < frame_alpha.  Per clip: the share of
 *    novel frames.
 * 2. Shift test: unbiased MMD^2, Gaussian kernel with the reference's
 *    bandwidth, between the reference sample and tonight, on at most
 *    test_frames_per_clip frames per clip (evenly spaced: frames of a clip are
 *    near-duplicates, so more add cost, not evidence), permuting whole clips
 *    within their camera (n_perm times): every night holds every camera, so
 *    the null keeps tonight's camera mix (unrestricted permutations mix
 *    cameras at random and drown any within-camera change).  permute_frames = 1 permutes frames instead: a diagnostic
 *    that shows the inflated false-alarm rate, never the default.
 * 3. Novel conditions: candidates are tonight's frames with p < cand_p and the
 *    reference frames whose own leave-one-clip-out p < cand_p.  Each
 *    candidate's residual (its embedding minus the mean of its kNN reference
 *    neighbours, L2-normalised: the direction in which it differs from the
 *    nearest normal frames) is clustered with k-means (novel_k clusters).
 *    Clustering raw embeddings instead groups frames by camera layout, not by
 *    what changed (measured on the glove scenario: the best raw cluster held
 *    23% of the black-glove frames).  A cluster's signature is the mean paired
 *    property difference of its tonight frames (frame minus its neighbours,
 *    over the reference's delta_std); clusters with >= min_frames tonight
 *    frames and median p <= 2 frame_alpha whose signatures have cosine >=
 *    merge_cos are merged (single linkage) into one condition: black gloves
 *    seen by two cameras are one change.  A condition is novel when tonight's
 *    share of it is >= share_ratio times the reference's ((n_ref + 1) / N_ref)
 *    and it spans 2 clips or more; a condition in one clip is novel on the
 *    strong evidence of NS_DETECT_NOVEL_MIN_CLIPS.
 * 4. Attribution per condition: for each property, the paired z (mean paired
 *    difference / delta_std) and the relative change against the reference
 *    mean of the same cameras; per camera, z against the reference's camera
 *    mean and std.  Properties with |paired z| >= 1 are named, largest first.
 * Everything is deterministic for the seed.
 */
#ifndef NIGHTSHIFT_DETECT_H
#define NIGHTSHIFT_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/exec.h"
#include "nightshift/frameset.h"
#include "nightshift/image.h"
#include "nightshift/mmd.h"
#include "nightshift/reference.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef struct ns_detect_opts {
    double frame_alpha;       /* 0.05 */
    double alpha;             /* 0.05: the shift test's level */
    int n_perm;               /* 1000 */
    int test_frames_per_clip; /* 32 (<= 0: every frame) */
    int permute_frames;       /* 0 */
    int min_clips;            /* 5: clips on each side below which the verdict is
                               * INSUFFICIENT (the test still runs when it can) */
    double cand_p;            /* 0.2 */
    int novel_k;              /* 8 */
    int min_frames;           /* 5 */
    double merge_cos;         /* 0.8 */
    double share_ratio;       /* 3 */
    int max_conditions;       /* 10 reported in detail */
    uint64_t seed;            /* 1 */
    int threads;              /* 0: OpenMP's default */
    ns_device device;         /* AUTO: the GPU for kNN, kernel sums and k-means when
                               * the build has CUDA and a device answers */
    const struct ns_head *head; /* NULL; a production head (head.h): BBSD and the
                               * expected accuracy (see ns_detect_run) */
} ns_detect_opts;

void ns_detect_default_opts(ns_detect_opts *o);

#define NS_DETECT_EXAMPLES 6
#define NS_DETECT_REL_MIN_BASE 2.0 /* boundary frames kept per condition */

/* A condition seen in fewer clips is novel only on strong evidence: the
 * frames of a clip are near-duplicates, so one odd clip is one observation,
 * however many frames it has (measured on synthetic null nights: with the
 * share rule alone a third of them had a "novel" one-clip condition).  The
 * evidence: the clip's median frame p-value is the floor 1 / (n + 1), more
 * than half its frames farther from the reference than any reference frame
 * from its other clips (a knocked camera, a new scene).  The report marks
 * such a condition "1 clip only".  The share rule does not apply to it: the
 * reference candidates k-means put in its cells are not like frames beyond
 * every reference frame. */
#define NS_DETECT_NOVEL_MIN_CLIPS 2

/* The shift test's verdict.  INSUFFICIENT: the night is reported in full
 * (novelty, conditions, attribution need no test), but the clip counts
 * cannot carry the test at its level: fewer than 2 clips on a side (no test
 * at all), fewer than min_clips, no camera on both sides, or a smallest
 * attainable p-value 1 / n_assign above alpha. */
enum { NS_VERDICT_NO_SHIFT = 0, NS_VERDICT_SHIFT, NS_VERDICT_INSUFFICIENT };

/* "no-shift", "shift", "insufficient" (the summary's and detect.h5's words). */
const char *ns_detect_verdict_name(int verdict);

/* With at most this many clip assignments the test enumerates them all
 * (exact p-value) instead of drawing n_perm at random. */
#define NS_DETECT_EXACT_MAX 20000

typedef struct ns_detect_attr {
    double paired_z[NS_PROP_COUNT];  /* mean paired difference / delta_std */
    double rel[NS_PROP_COUNT];       /* (mean - ref mean) / |ref mean| of the same cameras */
    double mean[NS_PROP_COUNT];      /* over the condition's frames */
    double ref_mean[NS_PROP_COUNT];  /* the same cameras' reference mean, weighted by frames */
    /* 1 where ref_mean is far from zero (|ref_mean| >= NS_DETECT_REL_MIN_BASE
     * reference standard deviations): only there is the relative change
     * worth saying (a near-zero base turns 0.2% -> 9.1% into "+4400%"). */
    uint8_t rel_ok[NS_PROP_COUNT];
    int top[NS_PROP_COUNT];          /* property indices by |paired_z| descending */
    int n_top;                       /* how many have |paired_z| >= 1 */
} ns_detect_attr;

typedef struct ns_detect_cam_attr {
    char camera[NS_CAMERA_LEN];
    size_t n;                        /* condition frames from this camera */
    double z[NS_PROP_COUNT];         /* (mean - camera ref mean) / camera ref std; NAN if unknown camera */
    double rel[NS_PROP_COUNT];
    double exp_acc, exp_acc_ref;     /* with a head: mean max-softmax here / in the reference */
} ns_detect_cam_attr;

typedef struct ns_detect_cluster {   /* a k-means cluster of candidates */
    int id;
    size_t n_tonight, n_ref;         /* candidates in it */
    double median_p;                 /* over its tonight frames; NAN if none */
    double signature[NS_PROP_COUNT];
    int condition;                   /* index into conditions, or -1 */
} ns_detect_cluster;

typedef struct ns_detect_condition {
    int id;                          /* rank, 0 = largest */
    int novel;                       /* passes the share criterion (one clip: the
                                      * strong-evidence rule, NS_DETECT_NOVEL_MIN_CLIPS) */
    size_t n_frames, n_ref;          /* tonight frames / reference candidates in it */
    double share_tonight, share_ref; /* of all tonight frames / all reference sample frames */
    size_t n_clips;
    int n_clusters;
    double median_p;
    double t_first, t_last;          /* timestamps (NAN if unknown) */
    int t_from_clips;                /* 1: no frame had a timestamp (no fps), so t_first
                                      * and t_last are its clips' start times */
    size_t medoid;                   /* row in tonight: nearest to the mean residual */
    size_t examples[NS_DETECT_EXAMPLES]; /* rows: frames farthest from the medoid (boundary) */
    int n_examples;
    ns_detect_attr attr;
    size_t n_cams;
    ns_detect_cam_attr *cams;        /* (n_cams) by frames descending */
    double exp_acc, exp_acc_ref;     /* with a head: mean max-softmax of its frames / of the
                                      * reference frames of its cameras (NAN without) */
} ns_detect_condition;

typedef struct ns_detect_clip {
    size_t n_novel;
    double novel_share;
    int condition;                   /* condition holding most of its frames, or -1 */
} ns_detect_clip;

typedef struct ns_detect_result {
    char night[NS_NIGHT_LEN];
    ns_detect_opts opts;             /* as used (seed, k, ...) */
    ns_frameset tonight;             /* loaded frames */
    /* per tonight frame */
    float *score;                    /* (n) kNN distance */
    double *pval;                    /* (n) */
    uint8_t *novel;                  /* (n) p < frame_alpha */
    int *ref_cluster;                /* (n) nearest reference k-means centroid */
    int *cluster;                    /* (n) candidate cluster, or -1 */
    int *condition;                  /* (n) condition, or -1 */
    /* per clip */
    ns_detect_clip *clips;           /* (tonight.n_clips) */
    /* the shift test */
    ns_mmd_test test;                /* null_stats kept */
    double sigma;
    int shift;                       /* verdict == NS_VERDICT_SHIFT */
    int verdict;                     /* NS_VERDICT_* */
    char verdict_reason[256];        /* INSUFFICIENT: why, in words; else "" */
    double n_assign;                 /* clip assignments the test draws from */
    double p_min;                    /* the smallest p the clip counts allow (NAN: no test) */
    int exact;                       /* 1: every assignment enumerated (exact p) */
    size_t n_novel;                  /* novel frames */
    /* reference scores for the histogram: the LOCO distances (not owned) */
    const float *ref_scores;
    size_t n_ref_scores;
    size_t n_ref_frames;             /* reference sample frames */
    /* clusters and conditions */
    size_t n_clusters;
    ns_detect_cluster *clusters;
    size_t n_conditions;
    ns_detect_condition *conditions; /* ranked: novel first, then by n_frames */
    /* reference tonight-vs-reference k-means shares */
    int kmeans_k;
    uint64_t *ref_counts;            /* (kmeans_k) reference sample frames per centroid */
    uint64_t *tonight_counts;        /* (kmeans_k) */
    /* with a head (opts.head) */
    int has_head;
    char head_id[NS_SHA256_HEX];
    int n_classes;
    float *msp;                      /* (n) tonight's temperature-scaled max-softmax */
    double bbsd_p;                   /* Bonferroni over classes of the clip-permutation KS
                                      * p-values (NAN: fewer than 2 clips on a side) */
    double *bbsd_ks, *bbsd_pc;       /* (n_classes) KS statistic and its p-value */
    double exp_acc, exp_acc_ref;     /* mean max-softmax tonight / over the reference */
    double seconds[6];               /* load, knn, test, clusters, attribution, total */
    ns_device device;                /* the one that ran (AUTO resolved) */
} ns_detect_result;

/* With opts.head (detect --head): the head's temperature-scaled softmax on
 * the reference sample and tonight gives the BBSD test (per class, the KS
 * statistic between the two sides' probabilities; p-values from the same
 * within-camera clip permutations as the MMD test, on the same rows, n_perm
 * of them; Bonferroni over the classes), each frame's max-softmax, and the
 * CBPE-style expected accuracy (mean max-softmax: an accuracy estimate for a
 * calibrated head) of the night, each condition and each of its cameras,
 * against the reference's.  The head must expect the reference's model
 * (NS_ERR_USAGE naming both).  The condition search does not use the score
 * yet. */

/* Runs detection for one night of an open store.  Errors before anything is
 * computed: the night has no frames (NS_ERR_NOT_FOUND), its shards lack
 * embeddings for the reference's model (NS_ERR_NOT_FOUND, naming the model).
 * A night with few clips is not an error: the verdict is INSUFFICIENT, with
 * the reason, and everything else is computed. */
ns_status ns_detect_run(ns_store *s, const ns_reference *ref, const char *night,
                        const ns_detect_opts *o, ns_detect_result *r);

void ns_detect_result_release(ns_detect_result *r); /* NULL-safe, idempotent */

#endif
