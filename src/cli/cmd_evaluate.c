/* nightshift evaluate -- one head on a dataset's test split (or a whole
 * golden set), per slice, with clip-bootstrap intervals and a report. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/evalreport.h"
#include "nightshift/evaluate.h"
#include "nightshift/sha256.h"

typedef struct eval_opts {
    int n_rep;
    double level;
    uint64_t seed;
    int threads;
} eval_opts;

static void help(const eval_opts *d)
{
    printf("usage: nightshift evaluate --head HEAD.h5 --dataset DS.h5 --out DIR [options]\n\n"
           "Scores a head on the dataset's test split (every frame of a dataset built with\n"
           "--split-by none: a golden evaluation set): accuracy, per-class precision, recall\n"
           "and F1, macro-F1, confusion matrix, log loss, ECE with a reliability diagram,\n"
           "and the label-free expected accuracy (mean temperature-scaled max probability)\n"
           "beside the true accuracy, all per slice (camera, night, detect condition, class)\n"
           "with percentile intervals from resampling whole clips.  OUT gets metrics.csv,\n"
           "slices.csv, confusion.csv, summary.json and report.html, all at once.\n\n"
           "options (defaults in brackets):\n"
           "  --head HEAD.h5       the head (required)\n"
           "  --dataset DS.h5      the dataset (required)\n"
           "  --out DIR            output directory (required; replaced when it exists)\n"
           "  --store DIR          the store the dataset came from: thumbnails in the report\n"
           "                       [none]\n"
           "  --replicates N       clip bootstrap resamples [%d]\n"
           "  --level L            interval coverage [%g]\n"
           "  --seed N             seed of the resamples [%" PRIu64 "]\n"
           "  --threads N          worker threads [OpenMP's default]\n"
           "  --quiet              only errors\n"
           "Exit codes: 0 ok, 1 failure, 2 usage (also: a head for another embedding model,\n"
           "a dataset without test frames).\n",
           d->n_rep, d->level, d->seed);
}

/* The dataset's store_id is the SHA-256 of the store's real path: with
 * another store, view rows would show other frames. */
static int same_store(const char *dir, const char *want)
{
    char real[PATH_MAX], hex[NS_SHA256_HEX];
    uint8_t d[NS_SHA256_LEN];
    const char *p = realpath(dir, real) ? real : dir;
    ns_sha256_buf(p, strlen(p), d);
    ns_sha256_hex(d, hex);
    return strcmp(hex, want) == 0;
}

/* Opens --store for thumbnails; NULL (with a warning) when it cannot be used. */
ns_store *ns_cli_thumb_store(const char *cmd, const char *dir, const ns_dataset *ds)
{
    ns_store *s = NULL;
    if (!dir)
        return NULL;
    if (!same_store(dir, ds->store_id)) {
        fprintf(stderr, "nightshift %s: warning: the dataset was not built from the store '%s': "
                        "no thumbnails\n", cmd, dir);
        return NULL;
    }
    if (ns_store_open_read(dir, &s) != NS_OK) {
        fprintf(stderr, "nightshift %s: warning: %s: no thumbnails\n", cmd, ns_errmsg());
        return NULL;
    }
    return s;
}

int cmd_evaluate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"head", required_argument, 0, 'H'},       {"dataset", required_argument, 0, 'D'},
        {"out", required_argument, 0, 'o'},        {"store", required_argument, 0, 's'},
        {"replicates", required_argument, 0, 'B'}, {"level", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 'r'},       {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    eval_opts o = {2000, 0.95, 20260101, 0};
    const char *head_path = NULL, *ds_path = NULL, *out = NULL, *store = NULL;
    ns_head h;
    ns_dataset ds;
    ns_eval_set es;
    ns_eval_pred p;
    ns_eval_result r;
    ns_cli_outdir od;
    ns_store *s = NULL;
    ns_report_opts ro;
    int c, quiet = 0, rc = NS_EXIT_OK;
    uint64_t v;
    double x;
    ns_status st;
    memset(&h, 0, sizeof h);
    memset(&ds, 0, sizeof ds);
    memset(&es, 0, sizeof es);
    memset(&p, 0, sizeof p);
    memset(&r, 0, sizeof r);
    memset(&od, 0, sizeof od);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': head_path = optarg; break;
        case 'D': ds_path = optarg; break;
        case 'o': out = optarg; break;
        case 's': store = optarg; break;
        case 'q': quiet = 1; break;
        case 'B':
        case 't':
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 1000000) {
                fprintf(stderr, "nightshift evaluate: invalid value '%s' for --%s\n", optarg,
                        c == 'B' ? "replicates" : "threads");
                return NS_EXIT_USAGE;
            }
            if (c == 'B') o.n_rep = (int)v;
            else o.threads = (int)v;
            break;
        case 'l':
            if (!ns_cli_parse_double(optarg, &x) || x <= 0 || x >= 1) {
                fprintf(stderr, "nightshift evaluate: --level must be in (0, 1)\n");
                return NS_EXIT_USAGE;
            }
            o.level = x;
            break;
        case 'r':
            if (!ns_cli_parse_u64(optarg, &o.seed)) {
                fprintf(stderr, "nightshift evaluate: invalid --seed '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift evaluate --help'\n"); return NS_EXIT_USAGE;
        }
    }
    if (!head_path || !ds_path || !out) {
        fprintf(stderr, "nightshift evaluate: %s is required\n",
                !head_path ? "--head" : !ds_path ? "--dataset" : "--out");
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift evaluate: unexpected argument '%s'\n", argv[optind]);
        return NS_EXIT_USAGE;
    }
    if ((st = ns_head_load(head_path, &h)) != NS_OK ||
        (st = ns_dataset_load(ds_path, &ds)) != NS_OK ||
        (st = ns_eval_set_build(&ds, NULL, 0, &es)) != NS_OK ||
        (st = ns_eval_pred_from_head(&es, &ds, &h, &p)) != NS_OK ||
        (st = ns_eval_run(&es, &ds, &p, o.n_rep, o.level, o.seed, o.threads, &r)) != NS_OK)
        goto fail;
    s = ns_cli_thumb_store("evaluate", store, &ds);
    ns_report_default_opts(&ro);
    {
        ns_evrep_head eh = {head_path,  h.head_id,  ns_head_kind_name(h.kind), h.temperature,
                            h.n_classes, p.known, h.dataset_id, h.label_sets, h.model_id};
        if ((st = ns_cli_outdir_begin(&od, out, "evaluate")) != NS_OK ||
            (st = ns_evaluate_report_write(s, &ds, &es, &p, &r, &eh, &ro, od.tmp)) != NS_OK ||
            (st = ns_cli_outdir_commit(&od)) != NS_OK)
            goto fail;
    }
    if (!quiet) {
        const ns_eval_slice_metrics *a = &r.slice[0];
        double cm, cx;
        size_t cn;
        ns_eval_cbpe_error(&es, &r, 20, &cm, &cx, &cn);
        printf("evaluate %.12s on %zu frames in %zu clips (%s): accuracy %.3f [%.3f, %.3f], "
               "macro-F1 %.3f, log loss %.3f, ECE %.3f\n", h.head_id, es.n, es.n_clips,
               es.all_rows ? "all frames" : "test split", a->accuracy.est, a->accuracy.lo,
               a->accuracy.hi, a->macro_f1.est, a->log_loss.est, a->ece.est);
        printf("  expected accuracy without labels %.3f (true %.3f); over %zu camera/condition "
               "slices off by %.3f on average, %.3f at most\n", a->expected_accuracy.est,
               a->accuracy.est, cn, cm, cx);
        for (size_t k = 0; k < ds.n_classes && k < 20; k++)
            if (!p.known[k]) {
                char shown[4 * 64 + 8]; /* a labeler's class name: escaped */
                ns_text_show(shown, sizeof shown, ds.classes[k], 64);
                printf("  class '%s' is not one the head can predict: it scores 0 there\n", shown);
            }
        printf("  report: %s/report.html\n", od.dir);
    }
    goto done;
fail:
    rc = ns_cli_fail("evaluate", st);
done:
    ns_cli_outdir_abort(&od);
    ns_store_close(s);
    ns_eval_result_release(&r);
    ns_eval_pred_release(&p);
    ns_eval_set_release(&es);
    ns_dataset_release(&ds);
    ns_head_release(&h);
    return rc;
}
