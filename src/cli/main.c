/* nightshift -- the command-line entry point: a git-style table of commands. */
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
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nightshift <command> [options]   (nightshift <command> --help)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nEvery command that works on a store takes --store DIR (default: $NIGHTSHIFT_STORE).\n"
               "Exit codes: 0 ok, 1 failure, 2 usage error, 75 store busy.\n"
               "The demo data generator is the separate program nightshift-gen.\n");
}

int main(int argc, char **argv)
{
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
