/* cli.h -- shared by main.c and the cmd_*.c files (the only code that prints). */
#ifndef NIGHTSHIFT_CLI_H
#define NIGHTSHIFT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "nightshift/status.h"

/* Exit codes, documented in README.md. */
enum {
    NS_EXIT_OK = 0,
    NS_EXIT_FAILURE = 1,
    NS_EXIT_USAGE = 2,
    NS_EXIT_SHIFT = 3, /* detect --fail-on-shift: the night differs from the reference */
    NS_EXIT_REJECT = 3,       /* gate: the candidate is inferior on some slice */
    NS_EXIT_INSUFFICIENT = 4, /* detect: too few clips for the shift test (outputs written);
                                 gate: no slice inferior, some undecided */
    NS_EXIT_BUSY = 75, /* EX_TEMPFAIL: the store is locked by another run */
    NS_EXIT_INTERRUPTED = 143, /* 128 + SIGTERM: stopped by SIGTERM/SIGINT (NS_ERR_INTERRUPTED)
                                * at a batch or stage boundary; the rerun resumes */
};

int ns_exit_code(ns_status st);
/* Prints "nightshift <cmd>: <message>" for st to stderr and returns the exit code. */
int ns_cli_fail(const char *cmd, ns_status st);
/* The store directory from --store or $NIGHTSHIFT_STORE; NULL (and a usage
 * message printed) when neither is set. */
const char *ns_cli_store(const char *opt);

/* Parses a positive integer or size with optional K/M/G suffix (binary). */
int ns_cli_parse_u64(const char *s, uint64_t *out);

/* Parses a finite decimal number; 0 on garbage. */
int ns_cli_parse_double(const char *s, double *out);
/* A task of a sharded run: "I/N" (0 <= I < N), or "slurm" for the array task
 * Slurm names in SLURM_ARRAY_TASK_ID / _MIN / _COUNT.  1 on success. */
int ns_cli_parse_task(const char *s, int *index, int *count);

/* Progress: a live line on a terminal, a log line every few seconds otherwise. */
typedef struct ns_cli_progress {
    int tty;
    int enabled;
    double last;       /* seconds at last output */
    double interval;   /* between log lines when not on a terminal */
    int line_open;     /* a \r line is on screen */
} ns_cli_progress;

void ns_cli_progress_init(ns_cli_progress *p, int enabled);
/* done/total clips, frames so far, elapsed seconds, fraction done (0..1) for the ETA. */
void ns_cli_progress_show(ns_cli_progress *p, const char *what, size_t done, size_t total,
                          uint64_t frames, double elapsed, double frac, int force);
/* The same with another unit than "clips" for done/total. */
void ns_cli_progress_show_units(ns_cli_progress *p, const char *what, const char *units,
                                size_t done, size_t total, uint64_t frames, double elapsed,
                                double frac, int force);
/* Ends a live line so the next message starts clean. */
void ns_cli_progress_clear(ns_cli_progress *p);

/* An output directory that appears whole (outdir.c): write into o->tmp,
 * then commit swaps it in for o->dir; abort removes it.  begin refuses an
 * OUT inside a store or holding anything but CMD's own earlier output, and
 * cleans up (or restores) what a killed run left. */
typedef struct ns_cli_outdir {
    char dir[4096];
    char tmp[4096 + 32];
    char cmd[32];
} ns_cli_outdir;
ns_status ns_cli_outdir_begin(ns_cli_outdir *o, const char *out, const char *cmd);
/* NS_ERR_USAGE when path (existing or not) lies inside a store directory. */
ns_status ns_cli_check_outside_store(const char *path);
/* Early form of begin's checks (and leftover recovery), for a command that
 * should refuse OUT before its long computation. */
ns_status ns_cli_outdir_check(const char *out, const char *cmd);
/* reference build --out: outside any store, and an existing file only when
 * it is a reference; leftover REF.h5.tmp.<pid> of dead runs removed. */
ns_status ns_cli_check_ref_out(const char *out);
ns_status ns_cli_outdir_commit(ns_cli_outdir *o);
void ns_cli_outdir_abort(ns_cli_outdir *o);
/* Removes a directory of plain files (our own output directories). */
void ns_cli_remove_flat_dir(const char *dir);

/* --store for report thumbnails (cmd_evaluate.c): NULL, with a warning on
 * stderr, when it is not the store the dataset was built from. */
struct ns_dataset;
struct ns_store *ns_cli_thumb_store(const char *cmd, const char *dir, const struct ns_dataset *ds);

int cmd_ingest(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_reference(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_labels(int argc, char **argv);
int cmd_select(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_nightly(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_gate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_slurm(int argc, char **argv);

#endif
