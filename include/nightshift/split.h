/* split.h -- leakage-safe train/val/test splits by group, and the leakage
 * audit (dataset build; documented in docs/dataset.md).
 *
 * Groups:
 *   clip    a clip, joined with the clips of the same camera that start
 *           within guard minutes of its end (chains included), so frames a
 *           few minutes apart never sit in different splits;
 *   camera  every clip of a camera;  night  every clip of a night;
 *   none    everything in test (a golden evaluation set).
 * A group's key is its earliest clip's SHA-256 (its camera, its night),
 * and u = SHA-256(seed, key) as a number in [0, 1) says where it goes:
 * test below test, val below test + val, train above.  For clip and night
 * groups the assignment is stratified: groups are visited in time order
 * (night, then start), and a group whose hashed split already holds its
 * share of the group's class (its frames' majority label) goes to the
 * split furthest below its share instead.  Each decision depends only on
 * earlier groups, so adding later nights never moves an earlier frame.
 * Camera groups are few: they are ranked by u and the first
 * round(test * n) go to test, the next round(val * n) to val (at least one
 * each when there are three cameras or more and the fraction is > 0).
 */
#ifndef NIGHTSHIFT_SPLIT_H
#define NIGHTSHIFT_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/dataset.h"
#include "nightshift/status.h"

typedef enum ns_split_by {
    NS_SPLIT_BY_CLIP = 0,
    NS_SPLIT_BY_CAMERA,
    NS_SPLIT_BY_NIGHT,
    NS_SPLIT_BY_NONE
} ns_split_by;

ns_status ns_split_by_parse(const char *s, ns_split_by *out);
const char *ns_split_by_name(ns_split_by b);

typedef struct ns_split_clip {
    const char *key;        /* the clip's SHA-256 */
    const char *camera;
    const char *night;
    double start, end;      /* unix seconds of the first and last frame; NaN unknown */
    size_t n_frames;        /* its frames in the dataset */
    int32_t cls;            /* majority class of those frames (the stratum), -1 none */
} ns_split_clip;

typedef struct ns_split_opts {
    ns_split_by by;
    double val, test;       /* fractions of frames, val + test < 1 */
    double guard_minutes;   /* clip groups only; 0 turns the guard off */
    uint64_t seed;
} ns_split_opts;

void ns_split_default_opts(ns_split_opts *o);

/* split[i] gets NS_SPLIT_* of clip i; group[i] (may be NULL) the group it
 * was assigned with (0..n_groups-1, in time order). */
ns_status ns_split_assign(const ns_split_clip *clips, size_t n, const ns_split_opts *o,
                          uint8_t *split, size_t *group, size_t *n_groups);

/* The hash of a group key, in [0, 1). */
double ns_split_unit(uint64_t seed, const char *key);

/* ---- leakage audit ---------------------------------------------------------------- */

typedef struct ns_audit_opts {
    double max_leak;        /* share of test frames with a near-duplicate in train */
    double quantile;        /* of within-clip nearest-neighbour distances: the threshold */
    double threshold;       /* > 0: use this distance instead of calibrating */
    int k;                  /* neighbours examined per frame for the pair count */
    size_t sample;          /* at most this many test -> train queries, evenly spaced
                             * (an estimate of the share; 0 = every frame); the
                             * val -> train and test -> val pair counts a quarter */
    int threads;
} ns_audit_opts;

void ns_audit_default_opts(ns_audit_opts *o);

/* emb (n, d) in clip-grouped rows (clip[i] equal for a clip's rows), split
 * per row, content_hash per row (0 = unknown, never matched).  A test frame
 * leaks when a train frame lies within the threshold or has its exact
 * content; passed = test_leak_share <= max_leak.  n_near_dup counts the
 * cross-split (query, neighbour) pairs under the threshold among each val
 * and test frame's k nearest train frames and each test frame's k nearest
 * val frames; n_exact_dup the cross-split pairs of equal content hashes.
 * n_test_leaked counts the test frames behind test_leak_share (of the
 * sampled ones when o->sample cuts the queries); audited[p] the queries
 * examined for test->train, val->train, test->val. */
ns_status ns_leak_audit(const float *emb, size_t n, int d, const uint32_t *clip,
                        const uint8_t *split, const uint64_t *content_hash,
                        const ns_audit_opts *o, ns_dataset_audit *audit,
                        uint64_t *n_test_leaked, size_t audited[3]);

#endif
