/* nightly_run.h -- shared by cmd_nightly.c (the job) and nightly_stages.c
 * (what each stage runs and records). */
#ifndef NIGHTSHIFT_CLI_NIGHTLY_RUN_H
#define NIGHTSHIFT_CLI_NIGHTLY_RUN_H

#include <limits.h>
#include <signal.h>

#include "nightshift/nightly.h"

enum {
    NS_STAGE_INGEST,
    NS_STAGE_EMBED,
    NS_STAGE_REFERENCE,
    NS_STAGE_DETECT,
    NS_STAGE_SELECT,  /* novel conditions found: select and export a labeling batch */
    NS_STAGE_DATASET, /* the three run when new labels arrived (nightly_retrain.c) */
    NS_STAGE_TRAIN,
    NS_STAGE_GATE,
    NS_STAGE_COUNT
};

/* Exit codes of the nightly job (README "Exit codes").  When several apply
 * the highest wins: 5 over 4 over 3 (a PROMOTE night may also have a batch
 * waiting and a shift; the summary and the morning page list each). */
enum {
    NS_EXIT_NOVEL = 3,      /* a shift or a novel condition was found */
    NS_EXIT_BATCH = 4,      /* a labeling batch was exported for tonight and is waiting */
    NS_EXIT_PROMOTE = 5,    /* a candidate head was gated PROMOTE */
};

typedef struct ns_night_run {
    ns_nightly_config cfg;
    char night[16];
    char runs[PATH_MAX];     /* the runs folder */
    char dir[PATH_MAX];      /* runs/<night> */
    char logs[PATH_MAX];     /* runs/<night>/logs */
    char manifest_path[PATH_MAX];
    char self[PATH_MAX];     /* the binary the stages run */
    ns_run_manifest m;
    ns_stage_record cur[NS_STAGE_COUNT]; /* this run's view of each stage */
    int have[NS_STAGE_COUNT];
    int lock_fd;
    /* results the later stages and the summary use */
    char ref_path[PATH_MAX]; /* "" when there is no reference tonight */
    char detect_dir[PATH_MAX];
    ns_detect_brief det;
    int have_det;
    ns_ingest_brief ing;
    int have_ing;
    char selection_path[PATH_MAX]; /* RUNS/select/<night>/selection.csv */
    char batch_path[PATH_MAX];     /* the labeling tar; "" when no batch tonight */
    uint64_t batch_frames;         /* frames in it */
    int have_batch;
    char dataset_path[PATH_MAX]; /* "" when no dataset tonight */
    char head_path[PATH_MAX];    /* the candidate trained tonight */
    char head_id[NS_SHA256_HEX];
    char gate_dir[PATH_MAX];
    char gate_verdict[16];       /* "" when the gate did not run */
} ns_night_run;

typedef struct ns_stage_def {
    const char *name;
    /* Fills rec's inputs and key.  May decide the stage has nothing to do
     * tonight: status "skipped" and a note, and no execute. */
    ns_status (*prepare)(ns_night_run *r, ns_stage_record *rec);
    /* Runs the stage's command (a child process). */
    ns_status (*execute)(ns_night_run *r, ns_stage_record *rec);
    /* Outputs and count from what is on disk, and the results the run
     * needs (NS_ERR_NOT_FOUND when an output is missing). */
    ns_status (*measure)(ns_night_run *r, ns_stage_record *rec);
} ns_stage_def;

extern const ns_stage_def *const ns_stages[NS_STAGE_COUNT];
extern const ns_stage_def ns_stage_select_def, ns_stage_dataset_def, ns_stage_train_def, ns_stage_gate_def;

/* A child's argv, built in one buffer (our own options: overflow is a bug). */
typedef struct ns_argv {
    char buf[16384];
    size_t used;
    char *v[64];
    int n;
} ns_argv;
void ns_argv_add(ns_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* rec->key from the stage name, the tool version, the inputs and extra. */
void ns_stage_key(ns_stage_record *rec, const char *extra);
/* The options as the last input (a hash over the strings), then rec->key. */
ns_status ns_stage_options(ns_stage_record *rec, const char *const *kv, size_t n);
/* Nothing to do tonight: status "skipped", the note, a key over the note. */
void ns_stage_skip(ns_stage_record *rec, const char *note);
/* Makes RUNS/<subdir> (unless NULL) and starts a with "nightshift" and the
 * words that follow, up to a NULL. */
ns_status ns_stage_command(ns_night_run *r, ns_argv *a, const char *subdir, ...)
    __attribute__((sentinel));
/* path relative to RUNS when it lies inside, else path itself. */
const char *ns_stage_rel(const ns_night_run *r, const char *path);
/* Adds RUNS/rel (or rel itself, when absolute) with its SHA-256
 * (NS_ERR_NOT_FOUND when missing). */
ns_status ns_stage_output(ns_night_run *r, ns_stage_record *rec, const char *rel);
/* The SHA-256 of an earlier stage's first output tonight ("" when none). */
const char *ns_stage_upstream(const ns_night_run *r, int stage);

/* Stop requested (SIGTERM, SIGINT): the signal number, else 0. */
extern volatile sig_atomic_t ns_nightly_stop;

/* Runs `self argv...` with stdout and stderr appended to logs/<stage>.log,
 * the store's lock handed down, SIGTERM passed on.  NS_OK when it exits 0;
 * NS_ERR_USAGE / NS_ERR_BUSY for 2 / 75, NS_ERR_INTERRUPTED when it stopped
 * on a signal, NS_ERR_IO otherwise, each with the log's path in the message.
 * *rc gets the exit code (or 128 + signal). */
ns_status ns_nightly_spawn(ns_night_run *r, const char *stage, char *const *argv, int *rc);

#endif
