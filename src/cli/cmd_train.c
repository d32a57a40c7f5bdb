/* nightshift train, nightshift head info -- fit a classifier head on a
 * dataset's embeddings; describe a head file. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/clipmeta.h"
#include "nightshift/strbuf.h"
#include "nightshift/train.h"

#define LOG_INTERVAL 5.0 /* seconds between progress lines off a terminal */

static void help(const ns_train_opts *o)
{
    printf("usage: nightshift train --dataset DS.h5 --out HEAD.h5 [options]\n\n"
           "Fits a classifier head on the dataset's frozen embeddings (its train split),\n"
           "stops early on its val split, fits a temperature on val, and writes the head\n"
           "file atomically (docs/head.md).  The same seed, options, data and thread count\n"
           "give the same head.\n\n"
           "options (defaults in brackets):\n"
           "  --dataset DS.h5         the dataset (nightshift dataset build) (required)\n"
           "  --head softmax|mlp      multinomial logistic regression (full-batch L-BFGS) or\n"
           "                          one hidden ReLU layer (mini-batch Adam) [%s]\n"
           "  --hidden N              MLP width [%d]\n"
           "  --l2 L                  L2 penalty (l2/2)||W||^2 on the weights [%g]\n"
           "  --class-weight balanced|none  weight classes by n / (C * n_c) [%s]\n"
           "  --init HEAD.h5          fine-tune this head: same kind (and width); its classes\n"
           "                          must be a subset of the dataset's, new classes get new rows\n"
           "  --epochs E              most L-BFGS iterations (softmax) or epochs (mlp) [200 / 30]\n"
           "  --patience P            stop after P without a better val loss, -1 never [20 / 5]\n"
           "  --batch B               MLP mini-batch [%d]\n"
           "  --lr R                  Adam step size [%g]\n"
           "  --tol T                 softmax: stop when max |gradient| < T [%g]\n"
           "  --seed S                MLP initialisation and batch order [%" PRIu64 "]\n"
           "  --device auto|cpu|cuda  [%s]\n"
           "  --quiet                 no progress lines\n"
           "  --out HEAD.h5           the head (required)\n"
           "Exit codes: 0 written, 1 failure, 2 usage (bad option, --init that does not fit).\n",
           ns_head_kind_name(o->kind), o->hidden, o->l2, o->balanced ? "balanced" : "none",
           o->batch, o->lr, o->tol, o->seed, ns_device_name(o->device));
}

typedef struct progress {
    int tty, quiet;
    double start, last;
    int max;           /* epochs at most, as the last call said */
    int shown;         /* epoch of the last line printed */
} progress;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int show(void *ctx, const ns_head_epoch *e, int max)
{
    progress *p = ctx;
    double t = now();
    if (p->quiet)
        return 0;
    if (!p->tty && t - p->last < LOG_INTERVAL && e->epoch != 1)
        return 0;
    p->last = t;
    p->max = max;
    p->shown = e->epoch;
    fprintf(stderr, "%strain: epoch %d/%d  loss %.5f  val loss %.5f  val acc %.4f  %.1fs%s",
            p->tty ? "\r" : "", e->epoch, max, e->train_loss, e->val_loss, e->val_accuracy,
            t - p->start, p->tty ? "\033[K" : "\n");
    return 0;
}

static int parse_int(const char *opt, const char *v, int lo, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > 1000000000) {
        fprintf(stderr, "nightshift train: --%s must be an integer >= %d, not '%s'\n", opt, lo, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_num(const char *opt, const char *v, double *out)
{
    if (!ns_cli_parse_double(v, out) || *out < 0) {
        fprintf(stderr, "nightshift train: --%s must be a number >= 0, not '%s'\n", opt, v);
        return 0;
    }
    return 1;
}

static void report(const ns_head *h, const ns_dataset *ds, const char *out, double secs)
{
    size_t best = 0;
    for (size_t e = 1; e < h->n_epochs; e++)
        if (h->epochs[e].val_loss < h->epochs[best].val_loss)
            best = e;
    printf("head %s\n", out);
    printf("  id             %s\n", h->head_id);
    if (h->kind == NS_HEAD_MLP)
        printf("  kind           mlp (dimension %d, hidden %d, %d classes)\n", h->d, h->hidden,
               h->n_classes);
    else
        printf("  kind           softmax (dimension %d, %d classes)\n", h->d, h->n_classes);
    printf("  dataset        %.12s (model %.12s), label sets %s\n", ds->dataset_id, ds->model_id,
           h->label_sets);
    if (h->n_epochs)
        printf("  trained        %zu %s in %.3f s; best %d: val loss %.4f, val accuracy %.4f\n",
               h->n_epochs, h->kind == NS_HEAD_MLP ? "epochs" : "iterations", secs,
               h->epochs[best].epoch, h->epochs[best].val_loss, h->epochs[best].val_accuracy);
    printf("  temperature    %.4f%s\n", (double)h->temperature,
           isnan(h->epochs[0].val_loss) ? " (no val split: not fitted)" : " (fitted on val)");
}

int cmd_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dataset", required_argument, 0, 'd'}, {"head", required_argument, 0, 'k'},
        {"hidden", required_argument, 0, 'H'},  {"l2", required_argument, 0, 'l'},
        {"class-weight", required_argument, 0, 'w'}, {"init", required_argument, 0, 'i'},
        {"epochs", required_argument, 0, 'e'},  {"patience", required_argument, 0, 'p'},
        {"batch", required_argument, 0, 'b'},   {"lr", required_argument, 0, 'r'},
        {"tol", required_argument, 0, 't'},     {"seed", required_argument, 0, 's'},
        {"device", required_argument, 0, 'D'},  {"quiet", no_argument, 0, 'q'},
        {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_train_opts o;
    ns_dataset ds;
    ns_head init, h;
    const char *ds_path = NULL, *init_path = NULL, *out = NULL;
    int c, hidden_set = 0, rc = NS_EXIT_OK;
    uint64_t u;
    ns_status st;
    progress pr = {isatty(2), 0, now(), 0, 0, -1};
    ns_train_default_opts(&o);
    memset(&ds, 0, sizeof ds);
    memset(&init, 0, sizeof init);
    memset(&h, 0, sizeof h);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': ds_path = optarg; break;
        case 'i': init_path = optarg; break;
        case 'o': out = optarg; break;
        case 'q': pr.quiet = 1; break;
        case 'k':
            if (strcmp(optarg, "softmax") == 0)
                o.kind = NS_HEAD_SOFTMAX;
            else if (strcmp(optarg, "mlp") == 0)
                o.kind = NS_HEAD_MLP;
            else {
                fprintf(stderr, "nightshift train: --head is softmax or mlp, not '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'w':
            if (strcmp(optarg, "balanced") != 0 && strcmp(optarg, "none") != 0) {
                fprintf(stderr, "nightshift train: --class-weight is balanced or none, not "
                        "'%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            o.balanced = strcmp(optarg, "balanced") == 0;
            break;
        case 'H':
            if (!parse_int("hidden", optarg, 1, &o.hidden))
                return NS_EXIT_USAGE;
            hidden_set = 1;
            break;
        case 'e':
            if (!parse_int("epochs", optarg, 1, &o.epochs))
                return NS_EXIT_USAGE;
            break;
        case 'p':
            if (!parse_int("patience", optarg, -1, &o.patience))
                return NS_EXIT_USAGE;
            break;
        case 'b':
            if (!parse_int("batch", optarg, 1, &o.batch))
                return NS_EXIT_USAGE;
            break;
        case 'l':
            if (!parse_num("l2", optarg, &o.l2))
                return NS_EXIT_USAGE;
            break;
        case 'r':
            if (!parse_num("lr", optarg, &o.lr) || o.lr == 0)
                return NS_EXIT_USAGE;
            break;
        case 't':
            if (!parse_num("tol", optarg, &o.tol))
                return NS_EXIT_USAGE;
            break;
        case 's':
            if (!ns_cli_parse_u64(optarg, &u)) {
                fprintf(stderr, "nightshift train: --seed must be a number, not '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            o.seed = u;
            break;
        case 'D':
            if (ns_device_parse(optarg, &o.device) != NS_OK || o.device == NS_DEVICE_REF) {
                fprintf(stderr, "nightshift train: --device is auto, cpu or cuda, not '%s'\n",
                        optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: return NS_EXIT_USAGE;
        }
    }
    if (optind < argc || !ds_path || !out) {
        fprintf(stderr, "nightshift train: %s (see --help)\n",
                optind < argc ? "unexpected argument" : "--dataset and --out are required");
        return NS_EXIT_USAGE;
    }
    if ((st = ns_dataset_load(ds_path, &ds)) != NS_OK) {
        rc = ns_cli_fail("train", st);
        goto done;
    }
    if (init_path) {
        if ((st = ns_head_load(init_path, &init)) != NS_OK) {
            rc = ns_cli_fail("train", st);
            goto done;
        }
        if (hidden_set && init.kind == NS_HEAD_MLP && o.hidden != init.hidden) {
            fprintf(stderr, "nightshift train: --hidden %d, but the --init head has width %d\n",
                    o.hidden, init.hidden);
            rc = NS_EXIT_USAGE;
            goto done;
        }
    }
    {
        size_t *cnt = calloc(ds.n_classes, sizeof *cnt);
        for (size_t i = 0; cnt && i < ds.n; i++)
            cnt[ds.label[i]] += ds.split[i] == NS_SPLIT_TRAIN;
        for (size_t k = 0; cnt && k < ds.n_classes; k++)
            if (!cnt[k]) {
                char shown[4 * 64 + 8];
                ns_text_show(shown, sizeof shown, ds.classes[k], 64);
                fprintf(stderr, "nightshift train: warning: class '%s' has no train frames; the "
                        "head will rarely predict it\n", shown);
            }
        free(cnt);
    }
    pr.start = now();
    st = ns_train(&ds, &o, init_path ? &init : NULL, show, &pr, &h);
    double secs = now() - pr.start;
    /* Off a terminal the lines are periodic: the last epoch always gets one. */
    if (st == NS_OK && !pr.tty && h.n_epochs && pr.shown != h.epochs[h.n_epochs - 1].epoch) {
        pr.last = -1e300;
        show(&pr, &h.epochs[h.n_epochs - 1], pr.max);
    }
    if (pr.tty && !pr.quiet)
        fprintf(stderr, "\n");
    if (st != NS_OK) {
        rc = ns_cli_fail("train", st);
        goto done;
    }
    if ((st = ns_head_save(&h, out)) != NS_OK) {
        rc = ns_cli_fail("train", st);
        goto done;
    }
    report(&h, &ds, out, secs);
done:
    ns_head_release(&h);
    ns_head_release(&init);
    ns_dataset_release(&ds);
    return rc;
}

/* ---- head info ------------------------------------------------------------------- */

static int head_info(const char *path)
{
    ns_head h;
    char when[32], shown[4 * 64 + 8];
    ns_status st = ns_head_load(path, &h);
    if (st != NS_OK)
        return ns_cli_fail("head info", st);
    ns_format_iso_time(h.created, when);
    printf("head %s\n", path);
    printf("  id             %s\n", h.head_id);
    if (h.kind == NS_HEAD_MLP)
        printf("  kind           mlp: dimension %d, hidden %d, %d classes\n", h.d, h.hidden,
               h.n_classes);
    else
        printf("  kind           softmax: dimension %d, %d classes\n", h.d, h.n_classes);
    printf("  temperature    %.4f\n", (double)h.temperature);
    printf("  model          %s\n", h.model_id);
    printf("  dataset        %s\n", h.dataset_id[0] ? h.dataset_id : "(unknown)");
    printf("  label sets     %s\n", h.label_sets && h.label_sets[0] ? h.label_sets : "(none)");
    printf("  options        %s\n", h.options && h.options[0] ? h.options : "(none)");
    printf("  created        %s\n", when);
    printf("  classes\n");
    for (int c = 0; c < h.n_classes; c++) {
        ns_text_show(shown, sizeof shown, h.classes[c], 64);
        printf("    %3d  %s\n", c, shown);
    }
    if (h.n_epochs) {
        size_t best = 0;
        for (size_t e = 1; e < h.n_epochs; e++)
            if (h.epochs[e].val_loss < h.epochs[best].val_loss)
                best = e;
        printf("  training       %zu epochs recorded, best %d\n", h.n_epochs,
               h.epochs[best].epoch);
        printf("    %6s %12s %12s %10s\n", "epoch", "train loss", "val loss", "val acc");
        /* All of a short run; the first, best and last five of a long one. */
        for (size_t e = 0; e < h.n_epochs; e++) {
            int keep = h.n_epochs <= 30 || e < 5 || e + 5 >= h.n_epochs || e == best;
            if (!keep) {
                if (e == 5 || e == best + 1)
                    printf("    %6s\n", "...");
                continue;
            }
            printf("    %6d %12.5f %12.5f %10.4f%s\n", h.epochs[e].epoch, h.epochs[e].train_loss,
                   h.epochs[e].val_loss, h.epochs[e].val_accuracy, e == best ? "  best" : "");
        }
    }
    ns_head_release(&h);
    return NS_EXIT_OK;
}

int cmd_head(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: nightshift head info HEAD.h5\n\n"
               "Describes a head file: id, kind and shape, temperature, the embedding model it\n"
               "expects, the dataset and label sets it was trained on, the training options,\n"
               "its classes and the per-epoch training metrics.  Exit codes: 0, 1 failure\n"
               "(not a head, damaged), 2 usage.\n");
        return NS_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "info") != 0) {
        fprintf(stderr, "usage: nightshift head info HEAD.h5\n");
        return NS_EXIT_USAGE;
    }
    return head_info(argv[2]);
}
