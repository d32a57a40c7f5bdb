/* nightshift embed -- every stored frame of the chosen nights through a backbone. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nightshift/embed.h"

static volatile sig_atomic_t g_cancel;

static void on_signal(int sig)
{
    (void)sig;
    g_cancel = 1;
}

static void on_progress(void *ctx, const ns_embed_progress *p)
{
    ns_cli_progress *prog = ctx;
    double frac = p->frames_total ? (double)p->frames_done / (double)p->frames_total : 0;
    ns_cli_progress_show_units(prog, "embed", "shards", p->shards_done, p->shards_total,
                               p->frames_done, p->elapsed, frac, 0);
}

static void help(const ns_embed_opts *d)
{
    printf("usage: nightshift embed --store DIR [options]\n\n"
           "Embeds every stored frame that has no embeddings from this model yet, one file\n"
           "per shard under STORE/embeddings/<model_id>/, each committed atomically: a\n"
           "killed run keeps finished shards and a rerun resumes.\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR        the store [$NIGHTSHIFT_STORE]\n"
           "  --model FILE       a nightshift model file, or 'default' [%s]\n"
           "  --size N           input of the default backbone, 112 or 128 [%d]\n"
           "  --seed N           seed of the default backbone [%" PRIu64 "]\n"
           "  --device D         auto|cpu|cuda [auto: the GPU when built with CUDA and present]\n"
           "  --precision P      fp32|tf32|bf16: the GPU's conv and dense GEMMs [fp32, exact];\n"
           "                     tf32 and bf16 need --device cuda and keep im2col convs, so\n"
           "                     on an H200 resnet18 ran at 0.57x (tf32) and 0.49x (bf16)\n"
           "                     the fp32 speed, off by about 8e-4 and 1e-2 relative per\n"
           "                     embedding: use fp32.  The model id stays the\n"
           "                     same: embed a reference and the nights compared with it at\n"
           "                     the same precision (files record it as device cuda-tf32...)\n"
           "  --batch N          frames per batch [%d]\n"
           "  --nights RANGE     YYYY-MM-DD, FROM..TO, FROM.. or ..TO [all]\n"
           "  --wait             wait for another run of the same model instead of exiting 75\n"
           "  --task I/N | slurm embed only the shards whose id %% N == I, concurrently with\n"
           "                     the other tasks (Slurm array tasks: 'slurm')\n"
           "  --quiet            no progress\n"
           "The default backbone is a seeded random-feature CNN: a sound label-free shift\n"
           "detector (Rabanser et al., NeurIPS 2019); import your production backbone for\n"
           "production use.  Exit codes: 0 ok, 1 failure, 2 usage, 75 busy.\n",
           d->model, d->default_size, d->default_seed, d->batch);
}

int cmd_embed(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'}, {"model", required_argument, 0, 'm'},
        {"size", required_argument, 0, 'z'},  {"seed", required_argument, 0, 'r'},
        {"device", required_argument, 0, 'd'}, {"batch", required_argument, 0, 'b'},
        {"nights", required_argument, 0, 'n'}, {"wait", no_argument, 0, 'w'},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {"precision", required_argument, 0, 'p'}, {"task", required_argument, 0, 't'},
        {0, 0, 0, 0}};
    ns_embed_opts o;
    ns_embed_summary sum;
    ns_cli_progress prog;
    const char *store_opt = NULL;
    int c, quiet = 0;
    uint64_t v;
    ns_status st;
    ns_embed_default_opts(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'm': o.model = optarg; break;
        case 'z':
            if (!ns_cli_parse_u64(optarg, &v) || (v != 112 && v != 128)) {
                fprintf(stderr, "nightshift embed: --size must be 112 or 128\n");
                return NS_EXIT_USAGE;
            }
            o.default_size = (int)v;
            break;
        case 'r':
            if (!ns_cli_parse_u64(optarg, &o.default_seed)) {
                fprintf(stderr, "nightshift embed: invalid --seed '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'd':
            if (ns_device_parse(optarg, &o.device) != NS_OK) {
                fprintf(stderr, "nightshift embed: --device must be auto, cpu or cuda\n");
                return NS_EXIT_USAGE;
            }
            break;
        case 'p':
            if (ns_precision_parse(optarg, &o.precision) != NS_OK) {
                fprintf(stderr, "nightshift embed: --precision must be fp32, tf32 or bf16\n");
                return NS_EXIT_USAGE;
            }
            break;
        case 'b':
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 4096) {
                fprintf(stderr, "nightshift embed: --batch must be 1..4096\n");
                return NS_EXIT_USAGE;
            }
            o.batch = (int)v;
            break;
        case 'n':
            if (ns_embed_parse_nights(optarg, &o) != NS_OK) {
                fprintf(stderr, "nightshift embed: %s\n", ns_errmsg());
                return NS_EXIT_USAGE;
            }
            break;
        case 'w': o.wait = 1; break;
        case 't':
            if (!ns_cli_parse_task(optarg, &o.task_index, &o.task_count)) {
                fprintf(stderr, "nightshift embed: --task '%s': want I/N with 0 <= I < N, or "
                                "slurm inside an array job\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'q': quiet = 1; break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift embed --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        fprintf(stderr, "nightshift embed: no store: give --store DIR or set NIGHTSHIFT_STORE\n");
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift embed: unexpected argument '%s'\n", argv[optind]);
        return NS_EXIT_USAGE;
    }
    if (o.precision != NS_PREC_FP32) {
        /* A reduced precision the run's device cannot give is the user's
         * choice to correct: a usage error, like ingest's. */
        ns_device got = o.device;
        if (o.device == NS_DEVICE_AUTO && ns_device_resolve(o.device, &got) != NS_OK)
            got = NS_DEVICE_CPU;
        if (got == NS_DEVICE_CPU || got == NS_DEVICE_REF) {
            fprintf(stderr, "nightshift embed: --precision %s needs --device cuda (the %s "
                            "executor is fp32 only)\n",
                    ns_precision_name(o.precision), ns_device_name(got));
            return NS_EXIT_USAGE;
        }
    }
    ns_cli_progress_init(&prog, !quiet);
    o.on_progress = on_progress;
    o.ctx = &prog;
    o.cancel = &g_cancel;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    st = ns_embed_run(store, &o, &sum);
    ns_cli_progress_clear(&prog);
    for (size_t i = 0; i < sum.skipped.n_kept; i++)
        fprintf(stderr, "nightshift embed: warning: %s\n", sum.skipped.msgs[i]);
    if (sum.skipped.n_total > sum.skipped.n_kept)
        fprintf(stderr, "nightshift embed: warning: ... and %zu more shards skipped\n",
                sum.skipped.n_total - sum.skipped.n_kept);
    if (sum.model_id[0] && sum.dim > 0)
        printf("embed: model %s (%.12s, %d dims) on %s%s%s: %zu shards embedded, %zu already "
               "present, %" PRIu64 " frames in %.1f s, %.0f frames/s (%.0f frames/s after "
               "%.2f s of set-up)\n",
               sum.model_name, sum.model_id, sum.dim, ns_device_name(sum.device),
               sum.precision != NS_PREC_FP32 ? "-" : "",
               sum.precision != NS_PREC_FP32 ? ns_precision_name(sum.precision) : "",
               sum.shards_embedded, sum.shards_present, sum.frames, sum.seconds,
               sum.seconds > 0 ? (double)sum.frames / sum.seconds : 0.0,
               sum.seconds > sum.setup_seconds
                   ? (double)sum.frames / (sum.seconds - sum.setup_seconds) : 0.0,
               sum.setup_seconds);
    int rc = st == NS_OK ? NS_EXIT_OK : ns_cli_fail("embed", st);
    ns_embed_summary_release(&sum);
    return rc;
}
