/* nightshift verify -- integrity check of every shard; --repair quarantines damaged
 * shards and rebuilds the catalog and view from the good ones. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "nightshift/store.h"

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {{"store", required_argument, 0, 's'},
                                              {"quiet", no_argument, 0, 'q'},
                                              {"repair", no_argument, 0, 'r'},
                                              {"wait", no_argument, 0, 'w'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *store_opt = NULL;
    int quiet = 0, repair = 0, wait = 0, c, rc = NS_EXIT_OK;
    ns_repair_report fix = {0};
    ns_store *s = NULL;
    ns_verify_report rep = {0};
    ns_status st;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'q': quiet = 1; break;
        case 'r': repair = 1; break;
        case 'w': wait = 1; break;
        case 'h':
            printf("usage: nightshift verify --store DIR [--repair [--wait]] [--quiet]\n\n"
                   "Checks every shard named by the catalog: it opens, has the right format and\n"
                   "version, its frame and clip counts match the catalog, and its checksum\n"
                   "(XXH3-128 tree; SHA-256 tree for shards from catalog format 1) matches the\n"
                   "one recorded at commit.  Also checks the single-file view.  Exit 0 when\n"
                   "the store is intact, 1 when any check failed.  Without --repair it\n"
                   "never modifies the store.\n"
                   "  --store DIR   the store [$NIGHTSHIFT_STORE]\n"
                   "  --repair      move damaged shards to DIR/quarantine/ (a note beside each\n"
                   "                says why and what to do), rebuild the catalog and view from\n"
                   "                the good shards, then verify again; takes the writer lock\n"
                   "  --wait        with --repair, wait for a running writer (else exit 75)\n"
                   "  --quiet       print problems only\n");
            return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift verify --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        fprintf(stderr, "nightshift verify: no store: give --store DIR or set NIGHTSHIFT_STORE\n");
        return NS_EXIT_USAGE;
    }
    if (repair) {
        if ((st = ns_store_repair(store, wait, &fix)) != NS_OK) {
            for (size_t i = 0; i < fix.actions.n_kept; i++)
                fprintf(stderr, "verify --repair: %s\n", fix.actions.msgs[i]);
            rc = ns_cli_fail("verify --repair", st);
            goto done;
        }
        for (size_t i = 0; i < fix.actions.n_kept; i++)
            printf("verify --repair: %s\n", fix.actions.msgs[i]);
        if (!fix.rebuilt)
            printf("verify --repair: %s: nothing to repair\n", store);
        else
            printf("verify --repair: %s: %zu problems found; %zu shards moved to quarantine "
                   "(%zu clips, %" PRIu64 " frames dropped), catalog and view rebuilt from %zu "
                   "good shards\n", store, fix.problems_before, fix.shards_quarantined,
                   fix.clips_dropped, fix.frames_dropped, fix.shards_kept);
    }
    st = ns_store_open_read(store, &s);
    if (st == NS_OK)
        st = ns_store_verify(s, &rep);
    if (st != NS_OK) {
        rc = ns_cli_fail("verify", st);
        goto done;
    }
    for (size_t i = 0; i < rep.problems.n_kept; i++)
        fprintf(stderr, "%s\n", rep.problems.msgs[i]);
    if (rep.problems.n_total > rep.problems.n_kept)
        fprintf(stderr, "... and %zu more\n", rep.problems.n_total - rep.problems.n_kept);
    if (rep.n_errors > 0) {
        fprintf(stderr, "nightshift verify: %s: %zu problems in %zu shards checked\n", store,
                rep.n_errors, rep.shards_checked);
        rc = NS_EXIT_FAILURE;
    } else if (!quiet) {
        printf("verify: %s: ok, %zu shards checked, %zu notes\n", store, rep.shards_checked,
               rep.n_notes);
    }
done:
    ns_verify_report_release(&rep);
    ns_repair_report_release(&fix);
    ns_store_close(s);
    return rc;
}
