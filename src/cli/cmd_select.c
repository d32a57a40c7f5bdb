/* nightshift select -- frames to label, from detect outputs (select.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/select.h"
#include "nightshift/store.h"

static void help(const ns_select_opts *d)
{
    printf("usage: nightshift select --store DIR --detect DIR... --budget N --out SEL.csv "
           "[options]\n\n"
           "Picks N frames to label from the detect outputs of one or more nights: novel\n"
           "conditions first (quotas by size and novelty), then the head's most uncertain\n"
           "frames (with --head), a per-camera floor, then k-center coverage seeded with\n"
           "the frames already labelled.  Labelled frames are never picked; picks of one\n"
           "clip keep a minimum gap.  Deterministic for a seed.  See docs/select.md.\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR              the store [$NIGHTSHIFT_STORE]\n"
           "  --detect DIR             a detect output (directory or detect.h5); repeatable\n"
           "  --budget N               frames to pick (required)\n"
           "  --out SEL.csv            the selection (required)\n"
           "  --head HEAD.h5           production head: uncertainty term and suggested labels\n"
           "  --uncertainty margin|entropy  [margin]\n"
           "  --seed S                 [%llu]\n"
           "  --min-gap FRAMES         between picks of one clip [%d]\n"
           "  --min-gap-seconds S      the gap in seconds instead (frames with timestamps)\n"
           "  --min-dist D             minimum embedding distance between picks of one clip,\n"
           "                           and to a center for uncertain picks [%g: off]\n"
           "  --w-novel W              budget share of novel conditions [%g]\n"
           "  --w-uncertain W          budget share of uncertain frames (with --head) [%g]\n"
           "  --w-camera W             share spread as a per-camera floor [%g]\n"
           "  --min-per-condition N    picks per novel condition at least [%d]\n"
           "  --quiet                  no summary line\n"
           "Exit codes: 0 ok, 1 failure, 2 usage.\n",
           (unsigned long long)d->seed, d->min_gap, d->min_dist, d->w_novel, d->w_uncertain,
           d->w_camera, d->min_per_condition);
}

static int bad(const char *what, const char *arg)
{
    fprintf(stderr, "nightshift select: bad %s '%s'\n", what, arg);
    return NS_EXIT_USAGE;
}

int cmd_select(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},        {"detect", required_argument, 0, 'd'},
        {"budget", required_argument, 0, 'b'},       {"out", required_argument, 0, 'o'},
        {"head", required_argument, 0, 'H'},         {"uncertainty", required_argument, 0, 'u'},
        {"seed", required_argument, 0, 'S'},         {"min-gap", required_argument, 0, 'g'},
        {"min-gap-seconds", required_argument, 0, 'G'}, {"min-dist", required_argument, 0, 'D'},
        {"w-novel", required_argument, 0, '1'},      {"w-uncertain", required_argument, 0, '2'},
        {"w-camera", required_argument, 0, '3'},     {"min-per-condition", required_argument, 0, 'm'},
        {"quiet", no_argument, 0, 'q'},              {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_select_opts o;
    ns_select_result r;
    const char *store_opt = NULL, *out = NULL;
    const char **detect = calloc((size_t)argc + 1, sizeof *detect);
    size_t n_detect = 0;
    uint64_t u;
    int c, quiet = 0, rc = NS_EXIT_OK;
    ns_store *s = NULL;
    ns_status st;
    ns_select_default_opts(&o);
    memset(&r, 0, sizeof r);
    if (!detect)
        return NS_EXIT_FAILURE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'd': detect[n_detect++] = optarg; break;
        case 'b':
            if (!ns_cli_parse_u64(optarg, &u) || u == 0 || u > 100000000) {
                rc = bad("--budget", optarg);
                goto done;
            }
            o.budget = (size_t)u;
            break;
        case 'o': out = optarg; break;
        case 'H': o.head = optarg; break;
        case 'u':
            if (strcmp(optarg, "margin") == 0)
                o.uncertainty = NS_UNC_MARGIN;
            else if (strcmp(optarg, "entropy") == 0)
                o.uncertainty = NS_UNC_ENTROPY;
            else {
                rc = bad("--uncertainty (margin or entropy)", optarg);
                goto done;
            }
            break;
        case 'S':
            if (!ns_cli_parse_u64(optarg, &o.seed) && strcmp(optarg, "0") != 0) {
                rc = bad("--seed", optarg);
                goto done;
            }
            if (strcmp(optarg, "0") == 0)
                o.seed = 0;
            break;
        case 'g':
            if ((!ns_cli_parse_u64(optarg, &u) && strcmp(optarg, "0") != 0) || u > 1000000) {
                rc = bad("--min-gap", optarg);
                goto done;
            }
            o.min_gap = strcmp(optarg, "0") == 0 ? 0 : (int)u;
            break;
        case 'G': case 'D': case '1': case '2': case '3': {
            double v;
            if (!ns_cli_parse_double(optarg, &v) || v < 0) {
                rc = bad("number", optarg);
                goto done;
            }
            if (c == 'G') o.min_gap_seconds = v;
            else if (c == 'D') o.min_dist = v;
            else if (c == '1') o.w_novel = v;
            else if (c == '2') o.w_uncertain = v;
            else o.w_camera = v;
            break;
        }
        case 'm':
            if ((!ns_cli_parse_u64(optarg, &u) && strcmp(optarg, "0") != 0) || u > 1000000) {
                rc = bad("--min-per-condition", optarg);
                goto done;
            }
            o.min_per_condition = strcmp(optarg, "0") == 0 ? 0 : (int)u;
            break;
        case 'q': quiet = 1; break;
        case 'h': help(&o); goto done;
        default: fprintf(stderr, "see 'nightshift select --help'\n"); rc = NS_EXIT_USAGE; goto done;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        rc = NS_EXIT_USAGE;
        goto done;
    }
    if (!out || n_detect == 0 || o.budget == 0 || optind < argc) {
        fprintf(stderr, "nightshift select: --detect, --budget and --out are required%s\n",
                optind < argc ? " (and no other arguments)" : "");
        rc = NS_EXIT_USAGE;
        goto done;
    }
    o.detect = detect;
    o.n_detect = n_detect;
    if ((st = ns_store_open_read(store, &s)) != NS_OK ||
        (st = ns_select_run(s, &o, &r)) != NS_OK || (st = ns_select_write_csv(&r, out)) != NS_OK) {
        rc = ns_cli_fail("select", st);
        goto done;
    }
    if (!quiet)
        printf("select: %zu of %zu candidate frames (%zu labelled frames as seeds, %zu novel "
               "conditions with %zu frames): %zu novel, %zu uncertain, %zu camera_balance, %zu "
               "coverage -> %s\n",
               r.n, r.n_candidates, r.n_seeds, r.n_novel_conditions, r.n_novel_frames,
               r.per_reason[NS_REASON_NOVEL], r.per_reason[NS_REASON_UNCERTAIN],
               r.per_reason[NS_REASON_CAMERA], r.per_reason[NS_REASON_COVERAGE], out);
done:
    ns_select_result_release(&r);
    ns_store_close(s);
    free(detect);
    return rc;
}
