/* qc.h -- per-clip quality checks computed while frames are stored.
 *
 * Frozen camera: a stored frame whose mean absolute difference from the
 * previous stored frame is below frozen_mad (0..255) repeats it; the clip is
 * flagged when frozen_run or more frames in a row are the same picture.
 * All-black / all-white: frac_black (frac_white) of a frame >= dark_frac.
 * Resolution change: a frame whose original size differs from the previous
 * decoded frame's.  Gaps: frame numbers taken from member names that jump
 * by more than one (streams and AVIs number frames by position, so never).
 */
#ifndef NIGHTSHIFT_QC_H
#define NIGHTSHIFT_QC_H

#include <stdint.h>

#include "nightshift/clip.h"
#include "nightshift/status.h"
#include "nightshift/store.h"

typedef struct ns_qc_opts {
    float frozen_mad; /* default 0.5 */
    int frozen_run;   /* default 3 */
    float dark_frac;  /* default 0.98 */
} ns_qc_opts;

void ns_qc_opts_default(ns_qc_opts *o);

typedef struct ns_qc {
    ns_qc_opts opts;
    int S;
    uint8_t *prev;    /* (S, S, 3) last stored frame of the previous batch; owned */
    int have_prev;
    int32_t prev_w, prev_h;
    uint32_t run, longest_run;
    uint32_t frozen, black, white, res_changes;
} ns_qc;

ns_status ns_qc_init(ns_qc *q, int S, const ns_qc_opts *opts);
void ns_qc_release(ns_qc *q);
/* Forgets the previous clip; allocates nothing. */
void ns_qc_reset(ns_qc *q);
/* A stored frame with original size w x h, its properties, and its mean
 * absolute difference from the previous stored frame of the clip (negative
 * when it is the first).  The difference is an argument so that callers can
 * compute it in parallel; ns_qc_mad_prev gives it against the frame kept by
 * ns_qc_keep.  A failed frame: props NULL, w = h = 0. */
void ns_qc_frame(ns_qc *q, float mad, const float *props, int32_t w, int32_t h);
/* Keeps frame as the previous stored frame for the next batch. */
void ns_qc_keep(ns_qc *q, const uint8_t *frame);
/* MAD of frame against the kept frame, or -1 when none is kept. */
float ns_qc_mad_prev(const ns_qc *q, const uint8_t *frame);
/* Number gaps over every frame seen in the clip (not just sampled ones). */
uint32_t ns_qc_gaps(const ns_clip *clip);
/* Writes counts and NS_QC_* flags into rec (frames_damaged/failed must be set). */
void ns_qc_finish(const ns_qc *q, uint32_t gaps, ns_clip_record *rec);

#endif
