/* nightshift registry -- list, show, add, promote, rollback heads. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/head.h"
#include "nightshift/registry.h"

static void help(void)
{
    printf("usage: nightshift registry list|show|add|promote|rollback --store DIR [options]\n\n"
           "The head registry (STORE/registry.json): every classifier head by content id\n"
           "with its lineage, and the aliases production and candidate.  Append-only; each\n"
           "change is one more entry, written atomically.\n\n"
           "  list                          heads, aliases and the history\n"
           "  show NAME                     one head: production, candidate, an id or a\n"
           "                                prefix of 8+ hex digits; its lineage and entries\n"
           "  add --head HEAD.h5 [--train-config-sha256 H]\n"
           "                                register a head as the candidate: its id, model,\n"
           "                                dataset and label sets come from the file\n"
           "  add --head-id ID [--path P] [--dataset-id ID] [--label-sets S] [--model-id ID]\n"
           "      [--train-config-sha256 H]  the same for a head file kept elsewhere\n"
           "  promote [NAME] --gate DIR     make the head production; refused unless the\n"
           "                                gate report (DIR/summary.json) says PROMOTE for\n"
           "                                it against the current production head\n"
           "  promote NAME --force --reason TEXT   override the refusal (recorded)\n"
           "  rollback [--reason TEXT]      production back to the head before it\n\n"
           "  --store DIR                   the store [$NIGHTSHIFT_STORE]\n"
           "Exit codes: 0 ok, 1 failure, 2 usage or a refused promote/rollback.\n");
}

static const char *or_none(const char *s)
{
    return s && s[0] ? s : "-";
}

static void print_entry(const ns_registry_entry *e)
{
    printf("  #%-3u %s  %-8s %.12s", e->seq, e->time, e->action, or_none(e->head_id));
    if (e->production_before[0] && strcmp(e->action, "add"))
        printf("  (production was %.12s)", e->production_before);
    if (e->gate_report_sha256[0])
        printf("  gate report %.12s", e->gate_report_sha256);
    if (e->forced)
        printf("  FORCED");
    if (e->reason[0])
        printf("  reason: %s", e->reason);
    printf("\n");
}

static void print_lineage(const ns_lineage *l)
{
    printf("  dataset      %s\n  label sets   %s\n  model        %s\n  train config %s\n",
           or_none(l->dataset_id), or_none(l->label_sets), or_none(l->model_id),
           or_none(l->train_config_sha256));
}

static int do_list(const ns_registry *r)
{
    printf("production  %s\ncandidate   %s\n", or_none(r->production), or_none(r->candidate));
    if (r->n == 0) {
        printf("(the registry is empty)\n");
        return NS_EXIT_OK;
    }
    printf("heads:\n");
    for (size_t i = 0; i < r->n; i++) {
        const ns_registry_entry *e = &r->entries[i];
        int first = 1;
        for (size_t j = 0; j < i; j++)
            first &= strcmp(r->entries[j].head_id, e->head_id) != 0;
        if (!first || !e->head_id[0])
            continue;
        printf("  %s%s%s  dataset %.12s  model %.12s\n", e->head_id,
               strcmp(e->head_id, r->production) ? "" : " [production]",
               strcmp(e->head_id, r->candidate) ? "" : " [candidate]",
               or_none(e->lineage.dataset_id), or_none(e->lineage.model_id));
    }
    printf("history:\n");
    for (size_t i = 0; i < r->n; i++)
        print_entry(&r->entries[i]);
    return NS_EXIT_OK;
}

static int do_show(const ns_registry *r, const char *name)
{
    char id[NS_SHA256_HEX];
    ns_status st = ns_registry_resolve(r, name, id);
    if (st != NS_OK)
        return ns_cli_fail("registry", st);
    const ns_registry_entry *added = ns_registry_head(r, id), *last = NULL;
    printf("head %s%s%s\n", id, strcmp(id, r->production) ? "" : " [production]",
           strcmp(id, r->candidate) ? "" : " [candidate]");
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].head_id, id))
            last = &r->entries[i];
    const ns_registry_entry *src = added ? added : last;
    if (src) {
        printf("  path         %s\n", or_none(src->path));
        print_lineage(&src->lineage);
    }
    printf("entries:\n");
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].head_id, id) || !strcmp(r->entries[i].production_before, id))
            print_entry(&r->entries[i]);
    return NS_EXIT_OK;
}

int cmd_registry(int argc, char **argv)
{
    const char *store_opt = NULL, *gate = NULL, *reason = NULL, *head_id = NULL, *path = "";
    const char *head_file = NULL;
    int force = 0;
    ns_lineage lin;
    ns_registry_entry e;
    ns_status st;
    memset(&lin, 0, sizeof lin);
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},      {"gate", required_argument, 0, 'g'},
        {"force", no_argument, 0, 'f'},            {"reason", required_argument, 0, 'r'},
        {"head-id", required_argument, 0, 'i'},    {"path", required_argument, 0, 'p'},
        {"dataset-id", required_argument, 0, 'D'}, {"label-sets", required_argument, 0, 'L'},
        {"model-id", required_argument, 0, 'M'},   {"train-config-sha256", required_argument, 0, 'T'},
        {"head", required_argument, 0, 'H'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        help();
        return argc < 2 ? NS_EXIT_USAGE : NS_EXIT_OK;
    }
    const char *sub = argv[1];
    optind = 2;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'g': gate = optarg; break;
        case 'f': force = 1; break;
        case 'r': reason = optarg; break;
        case 'i': head_id = optarg; break;
        case 'H': head_file = optarg; break;
        case 'p': path = optarg; break;
        case 'D': snprintf(lin.dataset_id, sizeof lin.dataset_id, "%s", optarg); break;
        case 'L': snprintf(lin.label_sets, sizeof lin.label_sets, "%s", optarg); break;
        case 'M': snprintf(lin.model_id, sizeof lin.model_id, "%s", optarg); break;
        case 'T':
            snprintf(lin.train_config_sha256, sizeof lin.train_config_sha256, "%s", optarg);
            break;
        case 'h': help(); return NS_EXIT_OK;
        default: return NS_EXIT_USAGE;
        }
    }
    const char *name = optind < argc ? argv[optind] : NULL;
    if (optind + (name ? 1 : 0) < argc) {
        fprintf(stderr, "nightshift registry: unexpected argument '%s'\n", argv[optind + 1]);
        return NS_EXIT_USAGE;
    }
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        fprintf(stderr, "nightshift registry: no store (--store DIR or $NIGHTSHIFT_STORE)\n");
        return NS_EXIT_USAGE;
    }
    if (!strcmp(sub, "list") || !strcmp(sub, "show")) {
        ns_registry r;
        if ((st = ns_registry_load(store, &r)) != NS_OK)
            return ns_cli_fail("registry", st);
        int rc;
        if (!strcmp(sub, "show") && !name) {
            fprintf(stderr, "nightshift registry show: which head? (production, candidate, an id)\n");
            rc = NS_EXIT_USAGE;
        } else {
            rc = !strcmp(sub, "list") ? do_list(&r) : do_show(&r, name);
        }
        ns_registry_release(&r);
        return rc;
    }
    if (!strcmp(sub, "add")) {
        if (!head_id == !head_file) {
            fprintf(stderr, "nightshift registry add: --head HEAD.h5 or --head-id ID\n");
            return NS_EXIT_USAGE;
        }
        if (head_file) {
            ns_head h;
            char full[PATH_MAX], id[NS_SHA256_HEX];
            memset(&h, 0, sizeof h);
            if ((st = ns_head_load(head_file, &h)) != NS_OK)
                return ns_cli_fail("registry", st);
            snprintf(id, sizeof id, "%s", h.head_id);
            snprintf(lin.model_id, sizeof lin.model_id, "%s", h.model_id);
            snprintf(lin.dataset_id, sizeof lin.dataset_id, "%s", h.dataset_id);
            snprintf(lin.label_sets, sizeof lin.label_sets, "%s", h.label_sets ? h.label_sets : "");
            ns_head_release(&h);
            st = ns_registry_add(store, id, realpath(head_file, full) ? full : head_file, &lin, &e);
        } else {
            st = ns_registry_add(store, head_id, path, &lin, &e);
        }
        if (st != NS_OK)
            return ns_cli_fail("registry", st);
        printf("registry: head %.12s added as candidate (entry #%u)\n", e.head_id, e.seq);
        return NS_EXIT_OK;
    }
    if (!strcmp(sub, "promote")) {
        if ((st = ns_registry_promote(store, name, gate, force, reason, &e)) == NS_ERR_EXISTS) {
            printf("registry: %s; nothing to do\n", ns_errmsg());
            return NS_EXIT_OK;
        }
        if (st != NS_OK)
            return ns_cli_fail("registry", st);
        printf("registry: head %.12s is production (was %s)%s (entry #%u)\n", e.head_id,
               e.production_before[0] ? e.production_before : "none",
               e.forced ? ", FORCED" : "", e.seq);
        return NS_EXIT_OK;
    }
    if (!strcmp(sub, "rollback")) {
        if ((st = ns_registry_rollback(store, reason ? reason : "", &e)) != NS_OK)
            return ns_cli_fail("registry", st);
        printf("registry: production back to %.12s (was %.12s) (entry #%u)\n", e.head_id,
               e.production_before, e.seq);
        return NS_EXIT_OK;
    }
    fprintf(stderr, "nightshift registry: unknown subcommand '%s' (list, show, add, promote, "
                    "rollback)\n", sub);
    return NS_EXIT_USAGE;
}
