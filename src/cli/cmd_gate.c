/* nightshift gate -- may the candidate head replace the production head?
 * Exit 0 promote, 3 reject, 4 insufficient evidence: cron and Slurm afterok
 * chains go on only on promote. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/evalreport.h"
#include "nightshift/gate.h"

static void help(const ns_gate_policy *p)
{
    ns_strbuf sb = {0};
    ns_gate_policy_format(p, &sb);
    printf("usage: nightshift gate --candidate HEAD.h5 --production HEAD.h5 --dataset DS.h5\n"
           "                       --out DIR [--policy FILE] [--store DIR] [options]\n\n"
           "Scores both heads on the same frames (the dataset's test split, or every frame of\n"
           "a golden set built with --split-by none) and decides per slice with a paired clip\n"
           "bootstrap (the same clips resampled for both), McNemar's test beside it, Holm over\n"
           "the deciding slices.  A slice is non-inferior when the lower bound of its corrected\n"
           "interval on candidate - production lies above -margin, inferior when the upper\n"
           "bound lies below, else undecided.  Slices: all frames (primary metric, ECE),\n"
           "each camera, night, detect condition, class, and the policy's golden subsets;\n"
           "a class the production head cannot predict scores 0 for it.  OUT gets checks.csv,\n"
           "changed.csv, policy.txt, summary.json and report.html, all at once.\n\n"
           "options:\n"
           "  --candidate HEAD.h5  the head that wants to ship (required)\n"
           "  --production HEAD.h5 the head in production (required)\n"
           "  --dataset DS.h5      the evaluation dataset (required)\n"
           "  --out DIR            output directory (required; replaced when it exists)\n"
           "  --policy FILE        the policy (key = value lines, '#' comments; below)\n"
           "  --store DIR          the store the dataset came from: thumbnails [none]\n"
           "  --threads N          worker threads [OpenMP's default]\n"
           "  --quiet              only the verdict line\n\n"
           "The default policy, in the file's syntax (margin.KIND.NAME = M overrides one slice;\n"
           "'off' makes a kind or slice report only; subset.NAME = field=value ... with fields\n"
           "camera, night, condition, class defines a golden subset, margin.subset applies):\n\n%s\n"
           "Exit codes: 0 PROMOTE (every deciding check non-inferior, the primary one among\n"
           "them), 3 REJECT (a check inferior), 4 INSUFFICIENT EVIDENCE (none inferior, some\n"
           "undecided: the report says how many more clips each needs), 1 failure, 2 usage\n"
           "(also: a head for another embedding model, a bad policy file).\n",
           sb.data ? sb.data : "");
    ns_strbuf_release(&sb);
}

static void print_result(const ns_gate_result *g, const ns_eval_set *es, const char *dir,
                         int quiet)
{
    static const char *const big[3] = {"PROMOTE", "REJECT", "INSUFFICIENT EVIDENCE"};
    printf("gate: %s (%zu deciding checks over %zu frames in %zu clips, %d paired clip "
           "resamples)\n", big[g->verdict], g->n_deciding, es->n, es->n_clips, g->n_rep);
    if (quiet)
        return;
    for (size_t i = 0; i < g->n_checks; i++) {
        const ns_gate_check *c = &g->checks[i];
        const ns_slice *s = &es->slices[c->slice];
        if (c->decision == NS_GATE_REPORTED && !c->new_class)
            continue;
        if (c->decision == NS_GATE_NONINFERIOR && !c->primary && !c->new_class && i > 1)
            continue;
        printf("  %s %s %s: delta %+.3f [%+.3f, %+.3f] margin %.3f, %s", ns_slice_kind_names[s->kind],
               s->kind == NS_SLICE_ALL ? "" : s->name, ns_gate_metric_names[c->metric], c->delta,
               c->lo, c->hi, c->margin, ns_gate_decision_names[c->decision]);
        if (c->decision == NS_GATE_UNDECIDED && c->more_clips >= 0)
            printf(" (about %ld more clips)", c->more_clips);
        if (c->new_class)
            printf(" (new in the candidate: production scores 0)");
        printf("\n");
    }
    printf("  report: %s/report.html\n", dir);
}

int cmd_gate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"candidate", required_argument, 0, 'C'}, {"production", required_argument, 0, 'P'},
        {"dataset", required_argument, 0, 'D'},   {"out", required_argument, 0, 'o'},
        {"policy", required_argument, 0, 'p'},    {"store", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'},   {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    ns_gate_policy *pol = malloc(sizeof *pol);
    const char *cand_path = NULL, *prod_path = NULL, *ds_path = NULL, *out = NULL;
    const char *policy = NULL, *store = NULL;
    ns_head hc, hp;
    ns_dataset ds;
    ns_eval_set es;
    ns_eval_pred pc, pp;
    ns_eval_result rc, rp;
    ns_gate_result g;
    ns_cli_outdir od;
    ns_store *s = NULL;
    ns_report_opts ro;
    int c, quiet = 0, threads = 0, rc_exit = NS_EXIT_OK;
    uint64_t v;
    ns_status st;
    if (!pol) {
        fprintf(stderr, "nightshift gate: out of memory\n");
        return NS_EXIT_FAILURE;
    }
    ns_gate_default_policy(pol);
    memset(&hc, 0, sizeof hc);
    memset(&hp, 0, sizeof hp);
    memset(&ds, 0, sizeof ds);
    memset(&es, 0, sizeof es);
    memset(&pc, 0, sizeof pc);
    memset(&pp, 0, sizeof pp);
    memset(&rc, 0, sizeof rc);
    memset(&rp, 0, sizeof rp);
    memset(&g, 0, sizeof g);
    memset(&od, 0, sizeof od);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'C': cand_path = optarg; break;
        case 'P': prod_path = optarg; break;
        case 'D': ds_path = optarg; break;
        case 'o': out = optarg; break;
        case 'p': policy = optarg; break;
        case 's': store = optarg; break;
        case 'q': quiet = 1; break;
        case 't':
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 4096) {
                fprintf(stderr, "nightshift gate: invalid --threads '%s'\n", optarg);
                free(pol);
                return NS_EXIT_USAGE;
            }
            threads = (int)v;
            break;
        case 'h': help(pol); free(pol); return NS_EXIT_OK;
        default:
            fprintf(stderr, "see 'nightshift gate --help'\n");
            free(pol);
            return NS_EXIT_USAGE;
        }
    }
    if (!cand_path || !prod_path || !ds_path || !out) {
        fprintf(stderr, "nightshift gate: %s is required\n",
                !cand_path ? "--candidate" : !prod_path ? "--production"
                : !ds_path ? "--dataset" : "--out");
        free(pol);
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift gate: unexpected argument '%s'\n", argv[optind]);
        free(pol);
        return NS_EXIT_USAGE;
    }
    if ((policy && (st = ns_gate_policy_load(policy, pol)) != NS_OK) ||
        (st = ns_head_load(cand_path, &hc)) != NS_OK ||
        (st = ns_head_load(prod_path, &hp)) != NS_OK ||
        (st = ns_dataset_load(ds_path, &ds)) != NS_OK ||
        (st = ns_eval_set_build(&ds, pol->subsets, pol->n_subsets, &es)) != NS_OK ||
        (st = ns_eval_pred_from_head(&es, &ds, &hc, &pc)) != NS_OK ||
        (st = ns_eval_pred_from_head(&es, &ds, &hp, &pp)) != NS_OK ||
        (st = ns_gate_run(&es, &ds, &pc, &pp, pol, threads, &g)) != NS_OK ||
        /* calibration and per-slice metrics of each head, for the report */
        (st = ns_eval_run(&es, &ds, &pc, 1000, 0.95, pol->seed, threads, &rc)) != NS_OK ||
        (st = ns_eval_run(&es, &ds, &pp, 1000, 0.95, pol->seed, threads, &rp)) != NS_OK)
        goto fail;
    for (size_t k = 0; k < ds.n_classes; k++)
        if (pc.known[k] && !pp.known[k] && !quiet) {
            char shown[4 * 64 + 8]; /* a labeler's class name: escaped */
            ns_text_show(shown, sizeof shown, ds.classes[k], 64);
            printf("gate: class '%s' is new in the candidate: the production head cannot "
                   "predict it and scores 0 there\n", shown);
        }
    s = ns_cli_thumb_store("gate", store, &ds);
    ns_report_default_opts(&ro);
    {
        ns_evrep_head ec = {cand_path,   hc.head_id,  ns_head_kind_name(hc.kind),
                            hc.temperature, hc.n_classes, pc.known, hc.dataset_id,
                            hc.label_sets, hc.model_id};
        ns_evrep_head ep = {prod_path,   hp.head_id,  ns_head_kind_name(hp.kind),
                            hp.temperature, hp.n_classes, pp.known, hp.dataset_id,
                            hp.label_sets, hp.model_id};
        if ((st = ns_cli_outdir_begin(&od, out, "gate")) != NS_OK ||
            (st = ns_gate_report_write(s, &ds, &es, pol, &g, &pc, &pp, &rc, &rp, &ec, &ep, &ro,
                                       od.tmp)) != NS_OK ||
            (st = ns_cli_outdir_commit(&od)) != NS_OK)
            goto fail;
    }
    print_result(&g, &es, od.dir, quiet);
    rc_exit = ns_gate_exit_code(g.verdict);
    goto done;
fail:
    rc_exit = ns_cli_fail("gate", st);
done:
    ns_cli_outdir_abort(&od);
    ns_store_close(s);
    ns_gate_result_release(&g);
    ns_eval_result_release(&rc);
    ns_eval_result_release(&rp);
    ns_eval_pred_release(&pc);
    ns_eval_pred_release(&pp);
    ns_eval_set_release(&es);
    ns_dataset_release(&ds);
    ns_head_release(&hc);
    ns_head_release(&hp);
    free(pol);
    return rc_exit;
}
