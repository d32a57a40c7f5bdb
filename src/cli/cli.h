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
    NS_EXIT_INSUFFICIENT = 4, /* detect: too few clips for the shift test (outputs written) */
    NS_EXIT_BUSY = 75, /* EX_TEMPFAIL: the store is locked by another run */
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

int cmd_ingest(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_reference(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_labels(int argc, char **argv);
int cmd_nightly(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_registry(int argc, char **argv);

#endif
