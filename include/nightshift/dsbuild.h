/* dsbuild.h -- `dataset build`: the labelled frames of some nights, their
 * embeddings, group splits (split.h) and the leakage audit, as one
 * ns_dataset ready for ns_dataset_save.  Documented in docs/dataset.md. */
#ifndef NIGHTSHIFT_DSBUILD_H
#define NIGHTSHIFT_DSBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/dataset.h"
#include "nightshift/split.h"
#include "nightshift/status.h"
#include "nightshift/store.h"
#include "nightshift/warn.h"

typedef struct ns_dsbuild_opts {
    const char *nights;            /* FROM..TO, last:N or a list (required) */
    const char *frames_csv;        /* only these frames (columns clip, frame), or NULL */
    const char *model;             /* model file or "default" */
    const char *label_sets;        /* comma-separated set names, NULL for all */
    const char *const *detect;     /* detect outputs (dirs or detect.h5) for conditions */
    size_t n_detect;
    const char *golden;            /* a golden dataset that must share no clip, or NULL */
    ns_split_opts split;
    ns_audit_opts audit;
    int content_hash;              /* hash stored pixels for the exact-duplicate check */
} ns_dsbuild_opts;

void ns_dsbuild_default_opts(ns_dsbuild_opts *o);

typedef struct ns_dsbuild_report {
    size_t n_nights, n_clips, n_groups;
    size_t n_split[3];             /* frames per split */
    size_t frames_unlabelled;      /* --frames rows without a label */
    size_t frames_not_found;       /* --frames rows not in the nights */
    size_t with_condition;         /* frames given a condition by --detect */
    uint64_t n_test_leaked;
    size_t audited[3];             /* queries examined: test->train, val->train, test->val */
    double seconds_read, seconds_audit;
    ns_warnings problems;
} ns_dsbuild_report;

void ns_dsbuild_report_release(ns_dsbuild_report *r);

/* Builds the dataset into out (audit included; the caller refuses to save
 * it when out->audit.passed is 0; dataset_id is left to ns_dataset_save).  NS_ERR_NOT_FOUND when the nights hold
 * no labelled frame, NS_ERR_EXISTS when the golden set shares a clip. */
ns_status ns_dataset_build(ns_store *s, const ns_dsbuild_opts *o, ns_dataset *out,
                           ns_dsbuild_report *rep);

#endif
