/* bootstrap.h -- the clip bootstrap on per-clip sufficient statistics.
 *
 * Frames of one clip are correlated (same minute, same camera, same glove),
 * so a confidence interval that resamples frames is falsely narrow.  Every
 * interval of evaluate and gate resamples whole clips instead.  Whatever the
 * metric, each clip is first reduced to a row of q sums (frames, correct
 * frames, per-bin confidences, per-class counts: metrics.h), and replicate b
 * draws n_clips clips with replacement and adds up their rows.  For a pair
 * of heads the row holds both heads' sums, so both are resampled on the same
 * clips: the paired bootstrap.
 *
 * With many sums per clip, the sums of a block of replicates are one GEMM:
 * the (replicates, clips) matrix of multinomial draw counts times the
 * (clips, q) matrix of rows; with a few, the drawn rows are added directly.
 * Replicate b draws from its own splitmix64 stream (seed, stream, b), so the
 * result does not depend on the thread count or the block size.
 */
#ifndef NIGHTSHIFT_BOOTSTRAP_H
#define NIGHTSHIFT_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* The clip index of draw j of replicate b (0 <= result < n_clips): the
 * definition every path follows. */
typedef struct ns_boot_stream {
    uint64_t state;
    uint64_t n;
} ns_boot_stream;

void ns_boot_stream_init(ns_boot_stream *r, uint64_t seed, uint64_t stream, uint64_t rep,
                         size_t n_clips);
size_t ns_boot_stream_next(ns_boot_stream *r);

/* out (n_rep, q): for each replicate, the sums of the drawn clips' rows of
 * stats (n_clips, q), row-major.  threads <= 0: OpenMP's default.
 * NS_ERR_USAGE for n_clips == 0 or q <= 0, NS_ERR_NOMEM. */
ns_status ns_boot_clip_sums(const double *stats, size_t n_clips, int q, int n_rep,
                            uint64_t seed, uint64_t stream, int threads, double *out);

/* Reference: the same draws, each drawn clip's row added in turn, for
 * replicates first_rep .. first_rep + n_rep - 1.  (With a few sums per clip,
 * ns_boot_clip_sums runs this, in parallel over replicates.) */
void ns_boot_clip_sums_ref(const double *stats, size_t n_clips, int q, int n_rep,
                           uint64_t seed, uint64_t stream, double *out, uint64_t first_rep);

/* Quantile p (0..1) of v (n values, NaN skipped; sorted in place), linear
 * interpolation between order statistics (type 7).  NaN when none is finite. */
double ns_boot_quantile_sorted(const double *sorted, size_t n, double p);
/* Sorts v ascending with NaNs moved to the end; returns the finite count. */
size_t ns_boot_sort(double *v, size_t n);

/* Mean and standard deviation of the finite values of v. */
void ns_boot_moments(const double *v, size_t n, double *mean, double *sd);

#endif
