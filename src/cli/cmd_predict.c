/* nightshift predict -- a head's top class, probability and margin for every
 * stored frame of some nights (the same ns_head_predict as detect --head and
 * select --head). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/predict.h"
#include "nightshift/strbuf.h"

static void help(void)
{
    printf("usage: nightshift predict --store DIR --head HEAD.h5 --nights SPEC --out PRED.csv\n\n"
           "Applies the head to the stored embeddings of its model and writes one CSV row\n"
           "per frame: clip,member,index,camera,night,class,probability,margin (the top\n"
           "class, its temperature-scaled probability, the gap to the runner-up).  Written\n"
           "atomically.\n\n"
           "  --store DIR       the store [$NIGHTSHIFT_STORE]\n"
           "  --head HEAD.h5    the head (nightshift train)\n"
           "  --nights SPEC     FROM..TO, last:N or a comma-separated list of nights\n"
           "  --out PRED.csv    the predictions\n"
           "  --quiet           no progress lines\n"
           "Exit codes: 0 written, 1 failure (no embeddings of the head's model: run\n"
           "nightshift embed with that model), 2 usage.\n");
}

typedef struct progress {
    int on;
} progress;

static void show(void *ctx, size_t done, size_t total, size_t frames)
{
    progress *p = ctx;
    if (p->on)
        fprintf(stderr, "predict: night %zu/%zu, %zu frames\n", done, total, frames);
}

int cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'}, {"head", required_argument, 0, 'H'},
        {"nights", required_argument, 0, 'n'}, {"out", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_opt = NULL, *head = NULL, *nights = NULL, *out = NULL, *dir;
    int c, rc = NS_EXIT_OK;
    progress pr = {1};
    ns_store *s = NULL;
    ns_head h;
    ns_predict_summary sum;
    ns_status st;
    memset(&h, 0, sizeof h);
    memset(&sum, 0, sizeof sum);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'H': head = optarg; break;
        case 'n': nights = optarg; break;
        case 'o': out = optarg; break;
        case 'q': pr.on = 0; break;
        case 'h': help(); return NS_EXIT_OK;
        default: return NS_EXIT_USAGE;
        }
    }
    if (optind < argc || !head || !nights || !out) {
        fprintf(stderr, "nightshift predict: %s (see --help)\n",
                optind < argc ? "unexpected argument" : "--head, --nights and --out are required");
        return NS_EXIT_USAGE;
    }
    if (!(dir = ns_cli_store(store_opt)))
        return NS_EXIT_USAGE;
    if ((st = ns_head_load(head, &h)) != NS_OK || (st = ns_store_open_read(dir, &s)) != NS_OK ||
        (st = ns_predict_store(s, &h, nights, out, show, &pr, &sum)) != NS_OK) {
        rc = ns_cli_fail("predict", st);
        goto done;
    }
    printf("predictions %s\n", out);
    printf("  head           %.12s (%s, %d classes), model %.12s\n", h.head_id,
           ns_head_kind_name(h.kind), h.n_classes, h.model_id);
    printf("  frames         %zu in %zu clip%s over %zu night%s\n", sum.n_frames, sum.n_clips,
           sum.n_clips == 1 ? "" : "s", sum.n_nights, sum.n_nights == 1 ? "" : "s");
    printf("  expected acc.  %.4f (mean top probability)\n", sum.mean_top);
    for (int k = 0; k < h.n_classes; k++) {
        char shown[4 * 40 + 8];
        ns_text_show(shown, sizeof shown, h.classes[k], 40);
        printf("    %-40s %8zu\n", shown, sum.per_class[k]);
    }
done:
    ns_predict_summary_release(&sum);
    ns_store_close(s);
    ns_head_release(&h);
    return rc;
}
