/* detfile.h -- detection results as HDF5, and the nightly history read back.
 *
 * File OUT/detect.h5  (ns_format = "nightshift-detect", version 1), atomic
 *   attributes: night, model_id, reference_nights_from, reference_nights_to,
 *       seed (uint64), n_perm (int32), permute ("clips"|"frames"), sigma,
 *       mmd2, p_value, null_mean, null_sd (float64), clips_tonight, clips_ref,
 *       frames_tonight, frames_ref, frames_test_tonight, frames_test_ref,
 *       n_novel (uint64), shift (int32), alpha, frame_alpha (float64),
 *       knn_k, kmeans_k, novel_k (int32), created, writer; verdict
 *       ("shift"|"no-shift"|"insufficient"), verdict_reason, p_min (float64:
 *       the smallest p the clip counts allow); with detect --head also
 *       head_id, bbsd_p, expected_accuracy, expected_accuracy_ref (float64)
 *   /frames/score float32 (n), /frames/p_value float64 (n), /frames/novel
 *       uint8 (n), /frames/ref_cluster, /frames/cluster, /frames/condition
 *       int32 (n), /frames/clip uint32 (n), /frames/index uint32 (n),
 *       /frames/view_row uint64 (n)
 *   /clips compound (n_clips): sha256, camera, source, start_time, n_frames,
 *       n_novel, novel_share, condition
 *   /test/null float64 (n_perm)
 *   /clusters compound: id, n_tonight, n_ref, median_p, condition
 *   /conditions compound: id, novel, n_frames, n_ref, share_tonight,
 *       share_ref, n_clips, n_clusters, median_p, t_first, t_last, medoid
 *       (view row), paired_z[NS_PROP_COUNT], rel[NS_PROP_COUNT], exp_acc,
 *       exp_acc_ref (float64: the head's mean max-softmax, NaN without --head)
 *   /kmeans/ref_counts, /kmeans/tonight_counts uint64 (kmeans_k)
 */
#ifndef NIGHTSHIFT_DETFILE_H
#define NIGHTSHIFT_DETFILE_H

#include <limits.h>
#include <stddef.h>

#include "nightshift/detect.h"
#include "nightshift/reference.h"
#include "nightshift/status.h"

#define NS_DETECT_FORMAT "nightshift-detect"
#define NS_DETECT_FORMAT_VERSION 1

ns_status ns_detfile_save(const ns_detect_result *r, const ns_reference *ref, const char *path);

/* One earlier night's result, for the report's timeline. */
typedef struct ns_history_point {
    char night[NS_NIGHT_LEN];
    double mmd2, p_value, novel_share;
    int shift;
} ns_history_point;

/* Scans DIR/<any>/detect.h5 (one level) for results of the same model and
 * reference nights and a night before `before`; ascending by night, one per
 * night (the newest file wins), at most max points (the latest).  Files that
 * are not ours or unreadable are skipped silently (the history is a
 * convenience; they are reported nowhere).  A missing DIR gives 0 points. */
ns_status ns_detfile_history(const char *dir, const char *model_id, const ns_reference *ref,
                             const char *before, size_t max, ns_history_point **out,
                             size_t *n);

/* The per-frame part of a detect.h5, for the stages that follow detection
 * (dataset build, selection). */
typedef struct ns_det_frames {
    char path[PATH_MAX];           /* the detect.h5 read (messages name it) */
    char night[NS_NIGHT_LEN];
    char model_id[NS_SHA256_HEX];
    size_t n;
    uint32_t *clip;                /* (n) row in clips */
    uint32_t *index;               /* (n) frame number within its clip */
    int32_t *condition;            /* (n) -1 none */
    uint8_t *novel;                /* (n) */
    float *score;                  /* (n) kNN novelty score */
    size_t n_clips;
    char (*clips)[NS_SHA256_HEX];  /* (n_clips) clip SHA-256 */
    size_t n_conditions;
    uint8_t *cond_novel;           /* (n_conditions) by condition id: 1 when novel */
    uint64_t *cond_frames;         /* (n_conditions) tonight's frames in it */
} ns_det_frames;

/* Reads path (a detect.h5, or a directory holding one), checking format,
 * shapes, clip rows and condition ids. */
ns_status ns_detfile_frames(const char *path, ns_det_frames *out);
void ns_det_frames_release(ns_det_frames *f); /* NULL-safe, idempotent */

#endif
