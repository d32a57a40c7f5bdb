#include "nightshift/qc.h"

#include <stdlib.h>
#include <string.h>

#include "nightshift/image.h"

void ns_qc_opts_default(ns_qc_opts *o)
{
    o->frozen_mad = 0.5f;
    o->frozen_run = 3;
    o->dark_frac = 0.98f;
}

ns_status ns_qc_init(ns_qc *q, int S, const ns_qc_opts *opts)
{
    memset(q, 0, sizeof *q);
    if (opts)
        q->opts = *opts;
    else
        ns_qc_opts_default(&q->opts);
    q->S = S;
    q->prev = malloc((size_t)S * S * 3);
    if (!q->prev)
        return ns_error(NS_ERR_NOMEM, "out of memory for QC state");
    return NS_OK;
}

void ns_qc_release(ns_qc *q)
{
    free(q->prev);
    memset(q, 0, sizeof *q);
}

void ns_qc_reset(ns_qc *q)
{
    q->have_prev = 0;
    q->prev_w = q->prev_h = 0;
    q->run = q->longest_run = 0;
    q->frozen = q->black = q->white = q->res_changes = 0;
}

void ns_qc_frame(ns_qc *q, float mad, const float *props, int32_t w, int32_t h)
{
    if (w > 0 && h > 0) {
        if (q->prev_w > 0 && (w != q->prev_w || h != q->prev_h))
            q->res_changes++;
        q->prev_w = w;
        q->prev_h = h;
    }
    if (!props)
        return;
    if (props[NS_PROP_FRAC_BLACK] >= q->opts.dark_frac)
        q->black++;
    if (props[NS_PROP_FRAC_WHITE] >= q->opts.dark_frac)
        q->white++;
    if (mad >= 0 && mad < q->opts.frozen_mad) {
        q->frozen++;
        q->run++;
        if (q->run > q->longest_run)
            q->longest_run = q->run;
    } else {
        q->run = 0;
    }
}

void ns_qc_keep(ns_qc *q, const uint8_t *frame)
{
    memcpy(q->prev, frame, (size_t)q->S * q->S * 3);
    q->have_prev = 1;
}

float ns_qc_mad_prev(const ns_qc *q, const uint8_t *frame)
{
    return q->have_prev ? ns_frame_mad(frame, q->prev, q->S) : -1.0f;
}

uint32_t ns_qc_gaps(const ns_clip *clip)
{
    uint32_t gaps = 0;
    int64_t last = -1;
    for (size_t i = 0; i < clip->n_frames; i++) {
        int64_t n = clip->frames[i].number;
        if (n < 0)
            continue;
        if (last >= 0 && n > last + 1)
            gaps++;
        last = n;
    }
    return gaps;
}

void ns_qc_finish(const ns_qc *q, uint32_t gaps, ns_clip_record *rec)
{
    rec->qc_frozen_frames = q->frozen;
    rec->qc_black_frames = q->black;
    rec->qc_white_frames = q->white;
    rec->qc_res_changes = q->res_changes;
    rec->qc_gaps = gaps;
    rec->qc_flags = 0;
    /* run counts repeats, so run + 1 frames showed the same picture. */
    if (q->longest_run + 1 >= (uint32_t)q->opts.frozen_run && q->longest_run > 0)
        rec->qc_flags |= NS_QC_FROZEN;
    if (q->black)
        rec->qc_flags |= NS_QC_BLACK;
    if (q->white)
        rec->qc_flags |= NS_QC_WHITE;
    if (q->res_changes)
        rec->qc_flags |= NS_QC_RES_CHANGE;
    if (gaps)
        rec->qc_flags |= NS_QC_GAPS;
    if (rec->frames_damaged || rec->frames_failed)
        rec->qc_flags |= NS_QC_DECODE_WARN;
}
