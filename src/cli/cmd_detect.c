/* nightshift detect -- one night against a reference: the shift test, novel
 * conditions and what changed, written as HDF5, CSV, JSON and one HTML page. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/clipmeta.h"
#include "nightshift/detect.h"
#include "nightshift/detfile.h"
#include "nightshift/fsutil.h"
#include "nightshift/head.h"
#include "nightshift/image.h"
#include "nightshift/model.h"
#include "nightshift/reference.h"
#include "nightshift/report.h"
#include "nightshift/store.h"
#include "nightshift/strbuf.h"

static void help(const ns_detect_opts *d)
{
    printf("usage: nightshift detect --store DIR --night YYYY-MM-DD --reference REF.h5 --out DIR\n"
           "                         [options]\n\n"
           "Compares one night's frames with a reference (nightshift reference build): a\n"
           "kNN novelty score and p-value per frame, an MMD two-sample test that permutes\n"
           "whole clips, novel conditions with thumbnails and the photometric properties\n"
           "that changed.  OUT gets detect.h5, clusters.csv, clips.csv, frames.csv,\n"
           "summary.json and report.html, all at once (written aside, then renamed).\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR          the store [$NIGHTSHIFT_STORE]\n"
           "  --night DATE         the night to test (required)\n"
           "  --reference REF.h5   the reference file (required)\n"
           "  --out DIR            output directory (required; replaced when it exists)\n"
           "  --head HEAD.h5       a production head (nightshift train): the BBSD test on its\n"
           "                       softmax, max-softmax per frame, expected accuracy per\n"
           "                       condition and camera\n"
           "  --model FILE         refuse to run unless the reference used this model\n"
           "                       (a file or 'default') [the reference's own]\n"
           "  --perms N            clip permutations of the shift test [%d]\n"
           "  --alpha A            level of the shift test [%g]\n"
           "  --frame-alpha A      a frame is novel when its p-value is below A [%g]\n"
           "  --test-frames N      frames per clip in the shift test [%d]\n"
           "  --min-clips N        below N clips on a side the verdict is INSUFFICIENT\n"
           "                       (the test still runs, exactly when few) [%d]\n"
           "  --novel-k N          k-means clusters of the novelty candidates [%d]\n"
           "  --seed N             seed of permutations and clustering [%" PRIu64 "]\n"
           "  --permute MODE       clips, or frames (a diagnostic that shows why frames\n"
           "                       must not be permuted: their p-values are far too small)\n"
           "  --history DIR        earlier nights' outputs for the timeline [parent of --out]\n"
           "  --fail-on-shift      exit 3 when the test finds a shift\n"
           "  --threads N          worker threads [OpenMP's default]\n"
           "  --device D           auto|cpu|cuda: where kNN, kernel sums and k-means run\n"
           "                       [auto: the GPU when built with CUDA and present]\n"
           "  --quiet              only errors\n"
           "Exit codes: 0 ok, 1 failure, 2 usage (also: a reference from another model),\n"
           "3 shift found with --fail-on-shift, 4 INSUFFICIENT: too few clips for the test\n"
           "(every output is still written).\n",
           d->n_perm, d->alpha, d->frame_alpha, d->test_frames_per_clip, d->min_clips,
           d->novel_k, d->seed);
}

static ns_status check_model(const char *spec, const ns_reference *ref)
{
    ns_model *m = NULL;
    ns_status st = strcmp(spec, "default") == 0 ? ns_model_default(112, 1, &m)
                                                : ns_model_load(spec, &m);
    if (st != NS_OK)
        return st;
    if (strcmp(m->id, ref->model_id) != 0)
        st = ns_error(NS_ERR_USAGE,
                      "the reference was built with model %s (%.12s) but --model '%s' is %s "
                      "(%.12s): build a reference with this model",
                      ref->model_name, ref->model_id, spec, m->info.name, m->id);
    ns_model_free(m);
    return st;
}

static void iso_time(double t, char *buf, size_t cap)
{
    if (!isfinite(t)) {
        snprintf(buf, cap, "?");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%H:%M", &tm);
}

static void print_result(const ns_detect_result *r, const char *out)
{
    const ns_mmd_test *t = &r->test;
    if (r->verdict == NS_VERDICT_INSUFFICIENT)
        printf("detect %s: INSUFFICIENT (%s; MMD^2 %.3g, p = %.4g%s)\n", r->night,
               r->verdict_reason, t->mmd2, t->p_value, r->exact ? ", exact" : "");
    else
        printf("detect %s: %s (MMD^2 %.3g, p = %.4g with %d %s %s; %zu clips tonight vs "
               "%zu in the reference)\n",
               r->night, r->shift ? "SHIFT DETECTED" : "no shift detected", t->mmd2, t->p_value,
               t->n_perm, r->exact ? "(all) clip" : r->opts.permute_frames ? "frame" : "clip",
               r->exact ? "assignments" : "permutations", t->blocks_x, t->blocks_y);
    printf("  %zu of %zu frames novel (p < %g)\n", r->n_novel, r->tonight.n, r->opts.frame_alpha);
    if (r->has_head)
        printf("  head %.12s: BBSD p = %.4g (KS per class, %d classes, Bonferroni, clip "
               "permutations); expected accuracy %.2f (reference %.2f)\n",
               r->head_id, r->bbsd_p, r->n_classes, r->exp_acc, r->exp_acc_ref);
    for (size_t i = 0; i < r->n_conditions && i < 3; i++) {
        const ns_detect_condition *c = &r->conditions[i];
        char a[16], b[16], what[256] = "";
        if (!c->novel)
            break;
        iso_time(c->t_first, a, sizeof a);
        iso_time(c->t_last, b, sizeof b);
        if (c->attr.n_top > 0)
            ns_report_attr_text(&c->attr, what, sizeof what);
        printf("  novel condition %zu: %zu frames, %zu clip%s, %zu camera(s), %s%s-%s UTC%s%s\n",
               i + 1, c->n_frames, c->n_clips, c->n_clips == 1 ? " only" : "s", c->n_cams,
               c->t_from_clips ? "clips starting " : "", a, b, what[0] ? "; " : "", what);
        if (r->has_head)
            printf("    expected accuracy %.2f (reference %.2f)\n", c->exp_acc, c->exp_acc_ref);
    }
    printf("  time (%s): load %.2f s, kNN %.2f s, shift test %.2f s, clusters %.2f s, attribution "
           "%.2f s; total %.2f s\n",
           ns_device_name(r->device), r->seconds[0], r->seconds[1], r->seconds[2], r->seconds[3],
           r->seconds[4],
           r->seconds[5]);
    printf("  report: %s/report.html\n", out);
}

/* A store is identified by the content hashes of its clips: a reference none
 * of whose clips this store holds was built from another store (issue 16
 * defect 8).  Retention may have dropped some reference nights, so only
 * "none at all" is worth a warning. */
static void warn_other_store(const char *ref_path, const ns_reference *ref, const ns_store *s,
                             const char *store)
{
    size_t found = 0;
    for (size_t c = 0; c < ref->sample.n_clips; c++)
        found += ns_store_find_clip(s, ref->sample.clips[c].sha256) >= 0;
    char from[4 * 200 + 4]; /* the file's own words: escaped for the terminal */
    if (ref->sample.n_clips == 0 || found > 0)
        return;
    ns_text_show(from, sizeof from, ref->store, 200);
    fprintf(stderr, "nightshift detect: warning: reference '%s' was built from another "
            "store ('%s'): none of its %zu clips is in store '%s'\n", ref_path, from,
            ref->sample.n_clips, store);
}

int cmd_detect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},     {"night", required_argument, 0, 'n'},
        {"reference", required_argument, 0, 'R'}, {"out", required_argument, 0, 'o'},
        {"model", required_argument, 0, 'm'},     {"perms", required_argument, 0, 'P'},
        {"alpha", required_argument, 0, 'a'},     {"frame-alpha", required_argument, 0, 'f'},
        {"test-frames", required_argument, 0, 'T'}, {"min-clips", required_argument, 0, 'C'},
        {"novel-k", required_argument, 0, 'K'},   {"seed", required_argument, 0, 'r'},
        {"permute", required_argument, 0, 'p'},   {"history", required_argument, 0, 'H'},
        {"fail-on-shift", no_argument, 0, 'F'},   {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},           {"device", required_argument, 0, 'd'},
        {"head", required_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_detect_opts o;
    ns_detect_result r;
    ns_reference ref;
    ns_report_opts ro;
    ns_store *s = NULL;
    ns_history_point *hist = NULL;
    size_t n_hist = 0;
    const char *store_opt = NULL, *night = NULL, *ref_path = NULL, *out = NULL, *model = NULL;
    const char *history = NULL, *head_path = NULL;
    ns_head head;
    char path[PATH_MAX], hist_dir[PATH_MAX];
    ns_cli_outdir od;
    int c, quiet = 0, fail_on_shift = 0, rc = NS_EXIT_OK;
    uint64_t v;
    double x;
    ns_status st;
    ns_detect_default_opts(&o);
    memset(&r, 0, sizeof r);
    memset(&head, 0, sizeof head);
    memset(&ref, 0, sizeof ref);
    memset(&od, 0, sizeof od);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'n': night = optarg; break;
        case 'R': ref_path = optarg; break;
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case 'E': head_path = optarg; break;
        case 'H': history = optarg; break;
        case 'F': fail_on_shift = 1; break;
        case 'q': quiet = 1; break;
        case 'd':
            if (ns_device_parse(optarg, &o.device) != NS_OK) {
                fprintf(stderr, "nightshift detect: --device must be auto, cpu or cuda\n");
                return NS_EXIT_USAGE;
            }
            break;
        case 'p':
            if (strcmp(optarg, "clips") == 0)
                o.permute_frames = 0;
            else if (strcmp(optarg, "frames") == 0)
                o.permute_frames = 1;
            else {
                fprintf(stderr, "nightshift detect: --permute must be clips or frames\n");
                return NS_EXIT_USAGE;
            }
            break;
        case 'a':
        case 'f':
            if (!ns_cli_parse_double(optarg, &x) || x <= 0 || x >= 1) {
                fprintf(stderr, "nightshift detect: --%s must be in (0, 1)\n",
                        c == 'a' ? "alpha" : "frame-alpha");
                return NS_EXIT_USAGE;
            }
            if (c == 'a') o.alpha = x;
            else o.frame_alpha = x;
            break;
        case 'r':
            if (!ns_cli_parse_u64(optarg, &o.seed)) {
                fprintf(stderr, "nightshift detect: invalid --seed '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'P':
        case 'T':
        case 'C':
        case 'K':
        case 't':
            if (!ns_cli_parse_u64(optarg, &v) || v < (c == 'C' ? 2 : 1) || v > 1000000) {
                fprintf(stderr, "nightshift detect: invalid value '%s' for --%s\n", optarg,
                        c == 'P' ? "perms" : c == 'T' ? "test-frames" : c == 'C' ? "min-clips"
                        : c == 'K' ? "novel-k" : "threads");
                return NS_EXIT_USAGE;
            }
            if (c == 'P') o.n_perm = (int)v;
            else if (c == 'T') o.test_frames_per_clip = (int)v;
            else if (c == 'C') o.min_clips = (int)v;
            else if (c == 'K') o.novel_k = (int)v;
            else o.threads = (int)v;
            break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift detect --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store || !night || !ref_path || !out) {
        fprintf(stderr, "nightshift detect: %s is required\n",
                !store ? "--store (or NIGHTSHIFT_STORE)" : !night ? "--night"
                : !ref_path ? "--reference" : "--out");
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift detect: unexpected argument '%s'\n", argv[optind]);
        return NS_EXIT_USAGE;
    }
    char night_buf[NS_NIGHT_LEN];
    if (ns_parse_night(night, night_buf) != NS_OK) {
        fprintf(stderr, "nightshift detect: --night: %s\n", ns_errmsg());
        return NS_EXIT_USAGE;
    }
    size_t out_len = strlen(out);
    while (out_len > 1 && out[out_len - 1] == '/')
        out_len--;
    if (out_len + 32 >= sizeof path) {
        fprintf(stderr, "nightshift detect: --out path too long\n");
        return NS_EXIT_USAGE;
    }
    char out_dir[PATH_MAX];
    memcpy(out_dir, out, out_len);
    out_dir[out_len] = '\0';

    st = ns_cli_outdir_check(out_dir, "detect");
    if (st == NS_OK)
        st = ns_reference_load(ref_path, &ref);
    if (st == NS_OK && model)
        st = check_model(model, &ref);
    if (st == NS_OK && ref.format_version < 2 && !quiet)
        fprintf(stderr, "nightshift detect: note: '%s' is a version %d reference without "
                "whitening; novelty uses raw distances (rebuild it for whitened novelty)\n",
                ref_path, ref.format_version);
    if (st == NS_OK && head_path) {
        st = ns_head_load(head_path, &head);
        if (st == NS_OK)
            st = ns_head_check_model(&head, ref.model_id, ref.sample.d);
        o.head = &head;
    }
    if (st == NS_OK)
        st = ns_store_open_read(store, &s);
    if (st == NS_OK)
        warn_other_store(ref_path, &ref, s, store);
    if (st == NS_OK)
        st = ns_detect_run(s, &ref, night, &o, &r);
    if (st != NS_OK)
        goto fail;

    /* Earlier nights: sibling output directories by default. */
    if (history) {
        snprintf(hist_dir, sizeof hist_dir, "%s", history);
    } else {
        const char *slash = strrchr(out_dir, '/');
        if (!slash)
            snprintf(hist_dir, sizeof hist_dir, ".");
        else if (slash == out_dir)
            snprintf(hist_dir, sizeof hist_dir, "/");
        else
            snprintf(hist_dir, sizeof hist_dir, "%.*s", (int)(slash - out_dir), out_dir);
    }
    st = ns_detfile_history(hist_dir, ref.model_id, &ref, night, 60, &hist, &n_hist);
    if (st != NS_OK)
        goto fail;

    /* Everything is written aside and swapped in, so OUT is either the old
     * complete set or the new one. */
    st = ns_cli_outdir_begin(&od, out_dir, "detect");
    if (st != NS_OK)
        goto fail;
    ns_report_default_opts(&ro);
    ro.history = hist;
    ro.n_history = n_hist;
    if (snprintf(path, sizeof path, "%s/detect.h5", od.tmp) >= (int)sizeof path) {
        st = ns_error(NS_ERR_USAGE, "--out path too long");
        goto fail;
    }
    st = ns_detfile_save(&r, &ref, path);
    if (st == NS_OK)
        st = ns_report_write(s, &ref, &r, &ro, od.tmp);
    if (st == NS_OK)
        st = ns_cli_outdir_commit(&od);
    if (st != NS_OK)
        goto fail;
    if (!quiet)
        print_result(&r, out_dir);
    if (fail_on_shift && r.shift)
        rc = NS_EXIT_SHIFT;
    else if (r.verdict == NS_VERDICT_INSUFFICIENT)
        rc = NS_EXIT_INSUFFICIENT;
    goto done;
fail:
    rc = ns_cli_fail("detect", st);
done:
    ns_cli_outdir_abort(&od);
    free(hist);
    ns_detect_result_release(&r);
    ns_reference_release(&ref);
    ns_head_release(&head);
    ns_store_close(s);
    return rc;
}
