/* nightshift -- the command-line entry point: a git-style table of commands. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"ingest", cmd_ingest, "read archived clips (tar/zip of JPEGs, MJPEG, MJPEG AVI) into the store"},
    {"info", cmd_info, "summarise a store (nights, cameras, clips, frames, QC); --devices lists GPUs"},
    {"verify", cmd_verify, "check every shard of a store: format, counts, checksums"},
    {"embed", cmd_embed, "embed stored frames with a CNN backbone (CPU or CUDA), shard by shard"},
    {"model", cmd_model, "describe, import (ONNX, torchvision) or write out a backbone model"},
    {"reference", cmd_reference, "condense reference nights into a reference file for detect"},
    {"detect", cmd_detect, "compare a night with a reference: shift test, novel conditions, report"},
    {"dataset", cmd_dataset, "build a leakage-safe train/val/test dataset from labelled frames; describe one"},
    {"select", cmd_select, "pick frames to label from detect outputs (novelty, uncertainty, coverage)"},
    {"export", cmd_export, "write selected frames as a labeling tar (CSV, Label Studio, CVAT)"},
    {"labels", cmd_labels, "import labels (CSV, Label Studio JSON) as versioned sets; summarise them"},
    {"nightly", cmd_nightly, "the whole night from a YAML config, resumable; exit code for cron"},
    {"train", cmd_train, "train a classifier head (softmax or MLP) on a dataset's embeddings"},
    {"head", cmd_head, "describe a head file (head info HEAD.h5)"},
    {"predict", cmd_predict, "a head's top class, probability and margin per stored frame, as CSV"},
    {"evaluate", cmd_evaluate, "score a head per slice with clip-bootstrap intervals; label-free expected accuracy"},
    {"gate", cmd_gate, "candidate vs production head: paired clip bootstrap per slice; exit 0/3/4"},
    {"registry", cmd_registry, "the head registry: production and candidate heads, promote, rollback"},
    {"slurm", cmd_slurm, "slurm submit: the night as a chain of Slurm jobs (arrays for ingest, embed)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nightshift <command> [options]   (nightshift <command> --help)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nEvery command that works on a store takes --store DIR (default: $NIGHTSHIFT_STORE).\n"
               "Exit codes: 0 ok, 1 failure, 2 usage error, 3 shift found (detect --fail-on-shift,\n"
               "nightly) or gate REJECT, 4 INSUFFICIENT evidence (detect, gate), 75 store busy,\n"
               "143 nightly stopped by SIGTERM (rerun resumes).\n"
               "The demo data generator is the separate program nightshift-gen.\n");
}

int main(int argc, char **argv)
{
    /* HDF5 allocates a chunk-sized buffer (about 2 MiB) for writes that touch
     * part of a chunk and frees it after; glibc would hand each one back to
     * the kernel, and on these machines every fresh 4 KB page costs ~12 us.
     * Keeping such blocks in the heap makes the default environment as fast
     * as a tuned GLIBC_TUNABLES one, with no setting asked of the user. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_TOP_PAD, 64 << 20);
    if (argc < 2) {
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("nightshift %s\n", NS_VERSION);
        return NS_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return NS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nightshift: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return NS_EXIT_USAGE;
}
