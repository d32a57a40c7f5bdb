/* reference.h -- the reference period condensed into one file, so nightly
 * detection costs O(tonight), not O(history).
 *
 * Building: the clips of the chosen nights are sampled whole (seeded, in a
 * random clip order, until the frame cap would be exceeded; a reference under
 * the cap is kept entire), then from the sample:
 *   - k-means centroids (ns_kmeans_fit) with counts and radii;
 *   - the whitening of the embedding space (whiten.h: the Ledoit-Wolf shrunk
 *     covariance of the sample, z = W (x - mean)), unless opts.whiten = 0;
 *     novelty distances are measured in the whitened space;
 *   - leave-one-clip-out kNN distances: for every sample frame the distance
 *     to its k-th nearest sample frame of ANOTHER clip (ns_knn_search with
 *     clip groups): the calibration of tonight's novelty scores, per camera
 *     where the camera has NS_REF_CAM_CALIB_MIN sampled frames
 *     (ns_reference_pvalue).  With whitening they are CROSS-FITTED: the
 *     clips are split into whiten_folds folds (round robin per camera in a
 *     seeded order) and the frames of each fold are whitened with the
 *     transform fitted without that fold.  Why: tonight's frames never take
 *     part in the fit, and in a high-dimensional space a frame that did is
 *     measurably closer to its neighbours after whitening (measured on the
 *     semantic scenario of docs/detect.md, 1,920 frames in 512 dimensions:
 *     with in-sample distances 14-36% of null frames had p < 0.05).  The
 *     neighbours (loco_idx) stay those of the raw space: they are the
 *     "nearest normal frames" that the attribution compares with, and in the
 *     whitened space they match the change itself (measured: a glove
 *     condition's luma read +0.5 instead of -1.5 standard deviations);
 *   - the Gaussian kernel bandwidth by the median heuristic (ns_mmd_median_sigma);
 *   - property statistics: mean and standard deviation of each photometric
 *     property over all sample frames and per camera, and the standard
 *     deviation of the leave-one-clip-out paired property differences
 *     (frame minus the mean of its k nearest other-clip neighbours), which
 *     scales the attribution of tonight's changes.
 *
 * File  (ns_format = "nightshift-reference", version 2), written atomically
 *   attributes: model_id, model_name, dim (int32), knn_k (int32), kmeans_k
 *       (int32), seed (uint64), sigma (float64), nights_from, nights_to
 *       (strings), n_nights (int32), frame_cap (uint64), clips_total,
 *       frames_total (uint64: in the chosen nights, before sampling),
 *       store (path as given), created (float64), writer
 *   /nights          string (n_nights), fixed NS_NIGHT_LEN
 *   /sample/emb      float32 (n, dim)
 *   /sample/props    float32 (n, NS_PROP_COUNT); attribute "names"
 *   /sample/clip     uint32 (n)  row in /clips
 *   /sample/index    uint32 (n)  frame number within its clip
 *   /sample/timestamp float64 (n)
 *   /sample/member   string (n), fixed NS_MEMBER_LEN: source member names
 *   /sample/view_row uint64 (n)  row in the store's view (thumbnails)
 *   /sample/loco     float32 (n) leave-one-clip-out k-th NN distance
 *   /sample/loco_idx int64 (n, knn_k) those neighbours (rows of /sample), nearest first
 *   /clips           compound (n_clips): sha256, camera, night, source,
 *                    start_time, first (uint64), n (uint64), catalog_row (uint32)
 *   /kmeans/centroids float32 (kmeans_k, dim); /kmeans/counts uint64 (kmeans_k);
 *   /kmeans/radius_mean, /kmeans/radius_max float32 (kmeans_k): distances of
 *                    members to their centroid; attribute inertia (float64)
 *   /props/mean, /props/std, /props/delta_std  float64 (NS_PROP_COUNT)
 *   /props/cameras   string (n_cameras); /props/camera_mean, /props/camera_std
 *                    float64 (n_cameras, NS_PROP_COUNT); /props/camera_n uint64
 *   version 2 adds the root attributes whiten (int32, 0 or 1), whiten_folds
 *       (int32) and, when whiten = 1:
 *   /whiten/mean     float32 (dim); /whiten/matrix float32 (dim, dim), lower
 *                    triangular W; attribute shrinkage (float64)
 *       (/sample/loco is then the cross-fitted distance in the whitened space;
 *       /sample/loco_idx stays the raw-space neighbours of version 1).
 *   Version 1 files (no whitening) still load: whiten = 0, format_version = 1,
 *   novelty in the raw embedding space as before; rebuilding gives whitening.
 */
#ifndef NIGHTSHIFT_REFERENCE_H
#define NIGHTSHIFT_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/exec.h"
#include "nightshift/frameset.h"
#include "nightshift/image.h"
#include "nightshift/status.h"
#include "nightshift/store.h"
#include "nightshift/whiten.h"

#define NS_REF_FORMAT "nightshift-reference"
#define NS_REF_FORMAT_VERSION 2

typedef struct ns_reference {
    char model_id[NS_SHA256_HEX];
    char model_name[128];
    int knn_k, kmeans_k;
    uint64_t seed;
    double sigma;
    size_t n_nights;
    char (*nights)[NS_NIGHT_LEN];    /* (n_nights) ascending */
    uint64_t frame_cap, clips_total, frames_total;
    char store[NS_SOURCE_LEN];
    double created;
    int format_version;              /* of the file it was loaded from (built: current) */
    int whiten;                      /* 1: novelty distances in the whitened space */
    int whiten_folds;                /* cross-fitting folds of the loco distances */
    ns_whiten wh;                    /* whiten = 1 only */
    ns_frameset sample;              /* the sampled clips, whole */
    float *loco;                     /* (sample.n) row-aligned */
    float *loco_sorted;              /* (sample.n) ascending: the calibration */
    int64_t *loco_idx;               /* (sample.n, knn_k) other-clip neighbours, nearest first */
    float *centroids;                /* (kmeans_k, d) */
    uint64_t *counts;                /* (kmeans_k) */
    float *radius_mean, *radius_max; /* (kmeans_k) */
    double inertia;
    double prop_mean[NS_PROP_COUNT], prop_std[NS_PROP_COUNT], prop_delta_std[NS_PROP_COUNT];
    size_t n_cameras;
    char (*cameras)[NS_CAMERA_LEN];  /* (n_cameras) ascending */
    double *cam_mean, *cam_std;      /* (n_cameras, NS_PROP_COUNT) */
    uint64_t *cam_n;                 /* (n_cameras) */
    /* Derived, not stored (ns_reference_calibrate): the sample's loco
     * distances grouped by camera in cameras' order, each group ascending;
     * group c is [cam_loco_off[c], cam_loco_off[c + 1]). */
    float *cam_loco_sorted;          /* (sample.n) */
    size_t *cam_loco_off;            /* (n_cameras + 1) */
    /* Derived, not stored: the sample in the novelty space (whitened when
     * whiten = 1, else NULL and sample.emb serves; ns_reference_space). */
    float *wemb;                     /* (sample.n, d) */
} ns_reference;

/* The reference sample in the space novelty is measured in. */
static inline const float *ns_reference_space(const ns_reference *r)
{
    return r->wemb ? r->wemb : r->sample.emb;
}

/* A camera's own calibration needs this many sampled frames; with fewer
 * (or a camera the reference never saw) the pooled one serves. */
#define NS_REF_CAM_CALIB_MIN 100

typedef struct ns_reference_opts {
    const char *nights;      /* spec for ns_nights_select (required) */
    const char *model;       /* model file or "default" (the default backbone, 112, seed 1) */
    uint64_t frame_cap;      /* 20000 */
    int knn_k;               /* 5 */
    int kmeans_k;            /* 16 */
    int whiten;              /* 1: whiten the embedding space (0: raw distances) */
    int whiten_folds;        /* 5: cross-fitting folds of the calibration */
    uint64_t seed;           /* 1 */
    int threads;             /* 0: OpenMP's default */
    ns_device device;        /* AUTO: k-means and the kNN calibration on the GPU when
                              * the build has CUDA and a device answers */
} ns_reference_opts;

void ns_reference_default_opts(ns_reference_opts *o);

/* Builds the reference from an open store.  Needs at least 3 clips (NS_ERR_USAGE
 * saying how many there are); every shard of the sample must be embedded with
 * the model (NS_ERR_NOT_FOUND). */
ns_status ns_reference_build(ns_store *s, const ns_reference_opts *o, ns_reference *out);

/* The same after the model is resolved (o->model is ignored): what
 * ns_reference_build calls with the model's id, name and embedding
 * dimension; tests build from synthetic embeddings through it. */
ns_status ns_reference_build_from(ns_store *s, const char *model_id, const char *model_name,
                                  int dim, const ns_reference_opts *o, ns_reference *out);

/* Atomic write (temp, fsync, rename, fsync dir) and checked read (format,
 * version, shapes; NS_ERR_FORMAT / NS_ERR_CORRUPT naming the file). */
ns_status ns_reference_save(const ns_reference *r, const char *path);
ns_status ns_reference_load(const char *path, ns_reference *out);

/* Row of camera in r->cameras, or -1. */
long ns_reference_camera(const ns_reference *r, const char *camera);

/* Fills loco_sorted, the per-camera tables and the whitened sample from
 * loco, the sample, cameras and the whitening; build and load call it. */
ns_status ns_reference_calibrate(ns_reference *r);

/* Empirical p-value of a k-th neighbour distance from `camera`: the share
 * of the reference's leave-one-clip-out distances at least as large, taken
 * over that camera's sampled frames (NS_REF_CAM_CALIB_MIN or more), else
 * over all of them.  Per camera because scenes differ in how much they vary:
 * a busy camera's spread would otherwise hide a change at a quiet one. */
double ns_reference_pvalue(const ns_reference *r, const char *camera, float score);

void ns_reference_release(ns_reference *r); /* NULL-safe, idempotent */

#endif
