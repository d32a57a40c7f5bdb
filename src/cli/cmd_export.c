/* nightshift export -- selected frames as a labeling tar (export.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nightshift/export.h"
#include "nightshift/store.h"

static void help(void)
{
    printf("usage: nightshift export --store DIR --selection SEL.csv --out TASKS.tar\n\n"
           "Writes the frames of a selection (`nightshift select`) as a tar for labelers:\n"
           "images/ (the clip's own JPEG bytes when its file is still at the ingested path\n"
           "and unchanged, else the stored frame encoded), tasks.csv with an empty label\n"
           "column, labelstudio.json, cvat.xml (CVAT images 1.1) and README.txt.  The\n"
           "returned tasks.csv (or a Label Studio export) imports with `labels import`.\n\n"
           "options:\n"
           "  --store DIR          the store [$NIGHTSHIFT_STORE]\n"
           "  --selection SEL.csv  the selection (required)\n"
           "  --out TASKS.tar      the package (required)\n"
           "  --quiet              no summary line\n"
           "Exit codes: 0 ok, 1 failure or some rows left out (the rest exported), 2 usage.\n");
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'}, {"selection", required_argument, 0, 'S'},
        {"out", required_argument, 0, 'o'},   {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *store_opt = NULL, *sel = NULL, *out = NULL;
    int c, quiet = 0;
    ns_store *s = NULL;
    ns_export_report rep;
    ns_status st;
    memset(&rep, 0, sizeof rep);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'S': sel = optarg; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift export --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store)
        return NS_EXIT_USAGE;
    if (!sel || !out || optind < argc) {
        fprintf(stderr, "nightshift export: --selection and --out are required\n");
        return NS_EXIT_USAGE;
    }
    if ((st = ns_store_open_read(store, &s)) != NS_OK)
        return ns_cli_fail("export", st);
    st = ns_export_run(s, sel, out, &rep);
    ns_store_close(s);
    for (size_t i = 0; i < rep.problems.n_kept; i++)
        fprintf(stderr, "  %s\n", rep.problems.msgs[i]);
    if (rep.problems.n_total > rep.problems.n_kept)
        fprintf(stderr, "  ... and %zu more\n", rep.problems.n_total - rep.problems.n_kept);
    if (st != NS_OK) {
        ns_export_report_release(&rep);
        return ns_cli_fail("export", st);
    }
    if (!quiet || rep.bad_rows)
        printf("export: %zu frames (%zu original JPEG bytes, %zu encoded from the store), %zu bad "
               "rows left out -> %s\n",
               rep.exported, rep.original, rep.reencoded, rep.bad_rows, out);
    int rc = rep.bad_rows ? NS_EXIT_FAILURE : NS_EXIT_OK;
    ns_export_report_release(&rep);
    return rc;
}
