/* nightshift dataset build|info -- leakage-safe retraining datasets. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "nightshift/clipmeta.h"
#include "nightshift/dsbuild.h"
#include "nightshift/store.h"
#include "nightshift/strbuf.h"

#define SHOW 40
#define MAX_DETECT 64

static const char *const split_names[3] = {"train", "val", "test"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void help(const ns_dsbuild_opts *d)
{
    printf("usage: nightshift dataset build --store DIR --nights SPEC --out DS.h5 [options]\n"
           "       nightshift dataset info DS.h5\n\n"
           "build gathers the labelled frames of the nights (or of a --frames list) with their\n"
           "embeddings into one HDF5 file, split into train/val/test by group so that no clip\n"
           "(and no pair of same-camera clips closer than the guard band) is in two splits,\n"
           "stratified by class, deterministic by seed.  Every build runs a leakage audit\n"
           "(near-duplicates across splits by embedding distance, exact duplicates by content)\n"
           "and writes nothing when the share of leaked test frames exceeds --max-leak.\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR          the store [$NIGHTSHIFT_STORE]\n"
           "  --nights SPEC        FROM..TO, last:N or a comma-separated list (required)\n"
           "  --frames SEL.csv     only these frames (columns clip = SHA-256, frame = number)\n"
           "  --model FILE         the model of the embeddings, or 'default' [%s]\n"
           "  --labels NAMES       only these label sets (comma-separated) [all]\n"
           "  --detect DIR         a detect output (repeatable): the frames' conditions [-1]\n"
           "  --split-by KEY       clip, camera, night or none (all test: a golden set) [%s]\n"
           "  --val F, --test F    fractions of frames [%g, %g]\n"
           "  --guard MINUTES      same-camera clips this close stay together (clip) [%g]\n"
           "  --seed N             seed of the group hash [%" PRIu64 "]\n"
           "  --max-leak F         fail above this share of leaked test frames [%g]\n"
           "  --dup-quantile Q     near-duplicate threshold: this quantile of within-clip\n"
           "                       nearest-neighbour distances [%g]\n"
           "  --dup-threshold D    use this distance instead of calibrating\n"
           "  --audit-sample N     at most N queries per split pair, 0 = all [%zu]\n"
           "  --no-content-hash    skip the exact-duplicate check over stored pixels\n"
           "  --golden DS.h5       a golden set: sharing a clip with these nights is an error\n"
           "  --threads N          kNN threads [OpenMP's default]\n"
           "  --out DS.h5          the dataset, written atomically (required)\n"
           "Exit codes: 0 written, 1 failure (audit above --max-leak, golden overlap, no\n"
           "labelled frames: nothing written), 2 usage.\n",
           d->model, ns_split_by_name(d->split.by), d->split.val, d->split.test,
           d->split.guard_minutes, d->split.seed, d->audit.max_leak, d->audit.quantile,
           d->audit.sample);
}

static void print_audit(const ns_dataset_audit *a)
{
    printf("  leakage audit  %s: %.2f%% of test frames have a near-duplicate in train (max "
           "%.2f%%)\n", a->passed ? "passed" : "FAILED", 100.0 * a->test_leak_share,
           100.0 * a->max_leak);
    printf("                 threshold %.4g, %" PRIu64 " near-duplicate pairs across splits, "
           "%" PRIu64 " exact duplicates\n", a->threshold, a->n_near_dup, a->n_exact_dup);
}

/* Rows per key (class or camera) and split. */
static void print_table(const char *title, const ns_dataset *ds, int by_camera)
{
    size_t n_keys = 0;
    const char **keys = malloc((ds->n + ds->n_classes + 1) * sizeof *keys);
    size_t (*cnt)[3] = calloc(ds->n + ds->n_classes + 1, sizeof *cnt);
    char shown[4 * SHOW + 8];
    if (!keys || !cnt) {
        free(keys);
        free(cnt);
        return;
    }
    if (!by_camera)
        for (size_t c = 0; c < ds->n_classes; c++)
            keys[n_keys++] = ds->classes[c];
    for (size_t i = 0; i < ds->n; i++) {
        size_t k = 0;
        if (by_camera) {
            for (k = 0; k < n_keys && strcmp(keys[k], ds->camera[i]) != 0; k++)
                ;
            if (k == n_keys)
                keys[n_keys++] = ds->camera[i];
        } else {
            k = (size_t)ds->label[i];
        }
        cnt[k][ds->split[i]]++;
    }
    printf("  %-24s %8s %8s %8s\n", title, "train", "val", "test");
    for (size_t k = 0; k < n_keys; k++) {
        ns_text_show(shown, sizeof shown, keys[k], 24);
        printf("    %-22s %8zu %8zu %8zu\n", shown, cnt[k][0], cnt[k][1], cnt[k][2]);
    }
    free(keys);
    free(cnt);
}

static void print_summary(const ns_dataset *ds)
{
    size_t per[3] = {0, 0, 0}, clips[3] = {0, 0, 0};
    for (size_t i = 0; i < ds->n; i++) {
        per[ds->split[i]]++;
        clips[ds->split[i]] += i == 0 || strcmp(ds->clip[i], ds->clip[i - 1]) != 0;
    }
    printf("  frames         %zu (dim %d), %zu classes\n", ds->n, ds->d, ds->n_classes);
    for (int s = 0; s < 3; s++)
        printf("    %-6s %8zu frames  %6zu clips  %5.1f%%\n", split_names[s], per[s], clips[s],
               ds->n ? 100.0 * (double)per[s] / (double)ds->n : 0.0);
    print_table("class", ds, 0);
    print_table("camera", ds, 1);
}

static int info(const char *path)
{
    ns_dataset ds;
    char when[32];
    ns_status st = ns_dataset_load(path, &ds);
    if (st != NS_OK)
        return ns_cli_fail("dataset info", st);
    ns_format_iso_time(ds.created, when);
    printf("dataset %s\n", path);
    printf("  id             %s\n", ds.dataset_id);
    printf("  model          %.12s;  store %.12s;  created %s\n", ds.model_id, ds.store_id, when);
    printf("  nights         %s .. %s;  label sets %s\n", ds.nights_from, ds.nights_to,
           ds.label_sets);
    printf("  split          by %s, val %g, test %g, guard %g min, seed %" PRIu64 "\n",
           ds.split_by, ds.val_fraction, ds.test_fraction, ds.guard_minutes, ds.seed);
    print_summary(&ds);
    print_audit(&ds.audit);
    ns_dataset_release(&ds);
    return NS_EXIT_OK;
}

static int parse_fraction(const char *opt, const char *v, double lo, double hi, double *out)
{
    if (!ns_cli_parse_double(v, out) || !(*out >= lo && *out <= hi)) {
        fprintf(stderr, "nightshift dataset build: --%s must be a number in %g..%g, not '%s'\n",
                opt, lo, hi, v);
        return 0;
    }
    return 1;
}

int cmd_dataset(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},       {"nights", required_argument, 0, 'n'},
        {"frames", required_argument, 0, 'f'},      {"model", required_argument, 0, 'm'},
        {"labels", required_argument, 0, 'L'},      {"detect", required_argument, 0, 'D'},
        {"split-by", required_argument, 0, 'b'},    {"val", required_argument, 0, 'v'},
        {"test", required_argument, 0, 't'},        {"guard", required_argument, 0, 'g'},
        {"seed", required_argument, 0, 'r'},        {"max-leak", required_argument, 0, 'x'},
        {"dup-quantile", required_argument, 0, 'q'}, {"dup-threshold", required_argument, 0, 'T'},
        {"audit-sample", required_argument, 0, 'a'}, {"no-content-hash", no_argument, 0, 'H'},
        {"golden", required_argument, 0, 'G'},      {"threads", required_argument, 0, 'j'},
        {"out", required_argument, 0, 'o'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_dsbuild_opts o;
    ns_dsbuild_report rep;
    ns_dataset ds;
    ns_store *s = NULL;
    const char *store_opt = NULL, *out = NULL, *detect[MAX_DETECT];
    int c, rc = NS_EXIT_OK;
    uint64_t v;
    ns_status st;
    ns_dsbuild_default_opts(&o);
    memset(&rep, 0, sizeof rep);
    memset(&ds, 0, sizeof ds);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help(&o);
        return argc < 2 ? NS_EXIT_USAGE : NS_EXIT_OK;
    }
    if (strcmp(argv[1], "info") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: nightshift dataset info DS.h5\n");
            return NS_EXIT_USAGE;
        }
        return info(argv[2]);
    }
    if (strcmp(argv[1], "build") != 0) {
        fprintf(stderr, "nightshift dataset: unknown subcommand '%s' (build, info)\n", argv[1]);
        return NS_EXIT_USAGE;
    }
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'n': o.nights = optarg; break;
        case 'f': o.frames_csv = optarg; break;
        case 'm': o.model = optarg; break;
        case 'L': o.label_sets = optarg; break;
        case 'G': o.golden = optarg; break;
        case 'o': out = optarg; break;
        case 'H': o.content_hash = 0; break;
        case 'D':
            if (o.n_detect == MAX_DETECT) {
                fprintf(stderr, "nightshift dataset build: at most %d --detect\n", MAX_DETECT);
                return NS_EXIT_USAGE;
            }
            detect[o.n_detect++] = optarg;
            break;
        case 'b':
            if (ns_split_by_parse(optarg, &o.split.by) != NS_OK) {
                fprintf(stderr, "nightshift dataset build: %s\n", ns_errmsg());
                return NS_EXIT_USAGE;
            }
            break;
        case 'v':
            if (!parse_fraction("val", optarg, 0, 0.9, &o.split.val))
                return NS_EXIT_USAGE;
            break;
        case 't':
            if (!parse_fraction("test", optarg, 0, 0.9, &o.split.test))
                return NS_EXIT_USAGE;
            break;
        case 'g':
            if (!parse_fraction("guard", optarg, 0, 1e6, &o.split.guard_minutes))
                return NS_EXIT_USAGE;
            break;
        case 'x':
            if (!parse_fraction("max-leak", optarg, 0, 1, &o.audit.max_leak))
                return NS_EXIT_USAGE;
            break;
        case 'q':
            if (!parse_fraction("dup-quantile", optarg, 0, 1, &o.audit.quantile))
                return NS_EXIT_USAGE;
            break;
        case 'T':
            if (!parse_fraction("dup-threshold", optarg, 0, 1e30, &o.audit.threshold))
                return NS_EXIT_USAGE;
            break;
        case 'r':
        case 'a':
        case 'j':
            if (!ns_cli_parse_u64(optarg, &v) || (c == 'j' && (v < 1 || v > 4096))) {
                fprintf(stderr, "nightshift dataset build: invalid value '%s' for --%s\n", optarg,
                        c == 'r' ? "seed" : c == 'a' ? "audit-sample" : "threads");
                return NS_EXIT_USAGE;
            }
            if (c == 'r') o.split.seed = v;
            else if (c == 'a') o.audit.sample = (size_t)v;
            else o.audit.threads = (int)v;
            break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift dataset --help'\n"); return NS_EXIT_USAGE;
        }
    }
    o.detect = detect;
    const char *store = ns_cli_store(store_opt);
    if (!store || !o.nights || !out) {
        fprintf(stderr, "nightshift dataset build: %s is required\n",
                !store ? "--store (or NIGHTSHIFT_STORE)" : !o.nights ? "--nights" : "--out");
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift dataset build: unexpected argument '%s'\n", argv[optind]);
        return NS_EXIT_USAGE;
    }
    if ((st = ns_store_open_read(store, &s)) != NS_OK)
        return ns_cli_fail("dataset build", st);
    double t0 = now_s();
    st = ns_dataset_build(s, &o, &ds, &rep);
    ns_store_close(s);
    for (size_t i = 0; i < rep.problems.n_kept; i++)
        fprintf(stderr, "nightshift dataset build: %s\n", rep.problems.msgs[i]);
    if (rep.problems.n_total > rep.problems.n_kept)
        fprintf(stderr, "nightshift dataset build: ... and %zu more\n",
                rep.problems.n_total - rep.problems.n_kept);
    if (st != NS_OK) {
        rc = ns_cli_fail("dataset build", st);
        goto done;
    }
    printf("dataset build: %zu nights, %zu clips in %zu groups (split by %s)\n", rep.n_nights,
           rep.n_clips, rep.n_groups, ns_split_by_name(o.split.by));
    if (o.frames_csv)
        printf("  --frames       %zu listed frames without a label, %zu not in these nights\n",
               rep.frames_unlabelled, rep.frames_not_found);
    if (o.n_detect)
        printf("  conditions     %zu of %zu frames from %zu detect output%s\n",
               rep.with_condition, ds.n, o.n_detect, o.n_detect == 1 ? "" : "s");
    print_summary(&ds);
    print_audit(&ds.audit);
    if (rep.audited[0] && rep.audited[0] < rep.n_split[NS_SPLIT_TEST])
        printf("                 (estimated on %zu of %zu test frames; --audit-sample 0 for "
               "all)\n", rep.audited[0], rep.n_split[NS_SPLIT_TEST]);
    if (!ds.audit.passed) {
        printf("  time           load %.2f s, audit %.2f s\n", rep.seconds_read,
               rep.seconds_audit);
        fprintf(stderr, "nightshift dataset build: leakage %.2f%% is above --max-leak %.2f%%; "
                "nothing written (try --split-by camera or night, a larger --guard)\n",
                100.0 * ds.audit.test_leak_share, 100.0 * ds.audit.max_leak);
        rc = NS_EXIT_FAILURE;
        goto done;
    }
    double t1 = now_s();
    if ((st = ns_dataset_save(&ds, out)) != NS_OK) {
        rc = ns_cli_fail("dataset build", st);
        goto done;
    }
    double t2 = now_s();
    printf("  wrote          %s (dataset id %.12s)\n", out, ds.dataset_id);
    printf("  time           load %.2f s, audit %.2f s, write %.2f s; total %.2f s\n",
           rep.seconds_read, rep.seconds_audit, t2 - t1, t2 - t0);
done:
    ns_dataset_release(&ds);
    ns_dsbuild_report_release(&rep);
    return rc;
}
