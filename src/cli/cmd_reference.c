/* nightshift reference build|info -- condense reference nights into one file. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nightshift/reference.h"
#include "nightshift/store.h"

static void help(const ns_reference_opts *d)
{
    printf("usage: nightshift reference build --store DIR --nights SPEC --out REF.h5 [options]\n"
           "       nightshift reference info REF.h5\n\n"
           "build condenses the chosen nights into a reference file: a seeded sample of whole\n"
           "clips with their embeddings and photometric properties, k-means centroids, the\n"
           "leave-one-clip-out kNN distances that calibrate novelty, the kernel bandwidth\n"
           "and per-camera property statistics.  Nightly detection then costs O(tonight).\n"
           "The nights must be embedded with the model first (nightshift embed).\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR        the store [$NIGHTSHIFT_STORE]\n"
           "  --nights SPEC      FROM..TO (inclusive; an end may be empty), last:N, or a\n"
           "                     comma-separated list of nights (required)\n"
           "  --model FILE       the model the embeddings came from, or 'default' [%s]\n"
           "  --out REF.h5       the reference file, written atomically (required)\n"
           "  --frame-cap N      at most N frames in the sample, whole clips [%" PRIu64 "]\n"
           "  --knn-k N          k of the kNN novelty score [%d]\n"
           "  --kmeans-k N       k-means clusters of the reference [%d]\n"
           "  --whiten on|off    measure novelty in the whitened space (Ledoit-Wolf shrunk\n"
           "                     covariance; off: raw distances, as format version 1) [%s]\n"
           "  --whiten-folds N   cross-fitting folds of the whitened calibration [%d]\n"
           "  --seed N           seed of the sampling and k-means [%" PRIu64 "]\n"
           "  --threads N        worker threads [OpenMP's default]\n"
           "  --device D         auto|cpu|cuda: where k-means and the kNN calibration run\n"
           "                     [auto: the GPU when built with CUDA and present]\n"
           "Exit codes: 0 ok, 1 failure, 2 usage (also: fewer than 3 clips).\n",
           d->model, d->frame_cap, d->knn_k, d->kmeans_k, d->whiten ? "on" : "off",
           d->whiten_folds, d->seed);
}

static int info(const char *path)
{
    ns_reference r;
    memset(&r, 0, sizeof r);
    ns_status st = ns_reference_load(path, &r);
    if (st != NS_OK)
        return ns_cli_fail("reference info", st);
    printf("reference %s\n", path);
    printf("  model        %s (%.12s), %d dims\n", r.model_name, r.model_id, r.sample.d);
    printf("  nights       %zu: %s .. %s\n", r.n_nights, r.n_nights ? r.nights[0] : "",
           r.n_nights ? r.nights[r.n_nights - 1] : "");
    printf("  sample       %zu frames from %zu clips (of %" PRIu64 " frames, %" PRIu64
           " clips; cap %" PRIu64 ")\n",
           r.sample.n, r.sample.n_clips, r.frames_total, r.clips_total, r.frame_cap);
    printf("  cameras      %zu\n", r.n_cameras);
    printf("  kNN k        %d;  k-means k %d (inertia %.4g);  sigma %.4g;  seed %" PRIu64 "\n",
           r.knn_k, r.kmeans_k, r.inertia, r.sigma, r.seed);
    if (r.whiten)
        printf("  novelty      whitened (Ledoit-Wolf shrinkage %.4g), calibration cross-fitted "
               "over %d folds; format version %d\n", r.wh.shrinkage, r.whiten_folds,
               r.format_version);
    else
        printf("  novelty      raw embedding distances%s; format version %d\n",
               r.format_version < 2 ? " (version 1: rebuild for whitened novelty)" : "",
               r.format_version);
    ns_reference_release(&r);
    return NS_EXIT_OK;
}

int cmd_reference(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},    {"nights", required_argument, 0, 'n'},
        {"model", required_argument, 0, 'm'},    {"out", required_argument, 0, 'o'},
        {"frame-cap", required_argument, 0, 'c'}, {"knn-k", required_argument, 0, 'k'},
        {"kmeans-k", required_argument, 0, 'K'}, {"seed", required_argument, 0, 'r'},
        {"threads", required_argument, 0, 't'},  {"device", required_argument, 0, 'd'},
        {"whiten", required_argument, 0, 'w'},   {"whiten-folds", required_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_reference_opts o;
    ns_reference ref;
    ns_store *s = NULL;
    const char *store_opt = NULL, *out = NULL;
    int c, rc = NS_EXIT_OK;
    uint64_t v;
    ns_status st;
    ns_reference_default_opts(&o);
    memset(&ref, 0, sizeof ref);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help(&o);
        return argc < 2 ? NS_EXIT_USAGE : NS_EXIT_OK;
    }
    if (strcmp(argv[1], "info") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: nightshift reference info REF.h5\n");
            return NS_EXIT_USAGE;
        }
        return info(argv[2]);
    }
    if (strcmp(argv[1], "build") != 0) {
        fprintf(stderr, "nightshift reference: unknown subcommand '%s' (build, info)\n", argv[1]);
        return NS_EXIT_USAGE;
    }
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'n': o.nights = optarg; break;
        case 'm': o.model = optarg; break;
        case 'o': out = optarg; break;
        case 'c':
        case 'k':
        case 'K':
        case 't':
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > (c == 'c' ? UINT64_C(1) << 32 : 4096)) {
                fprintf(stderr, "nightshift reference: invalid value '%s' for --%s\n", optarg,
                        c == 'c' ? "frame-cap" : c == 'k' ? "knn-k" : c == 'K' ? "kmeans-k" : "threads");
                return NS_EXIT_USAGE;
            }
            if (c == 'c') o.frame_cap = v;
            else if (c == 'k') o.knn_k = (int)v;
            else if (c == 'K') o.kmeans_k = (int)v;
            else o.threads = (int)v;
            break;
        case 'w':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                fprintf(stderr, "nightshift reference: --whiten must be on or off\n");
                return NS_EXIT_USAGE;
            }
            o.whiten = strcmp(optarg, "on") == 0;
            break;
        case 'f':
            if (!ns_cli_parse_u64(optarg, &v) || v < 2 || v > 1000) {
                fprintf(stderr, "nightshift reference: --whiten-folds must be 2..1000\n");
                return NS_EXIT_USAGE;
            }
            o.whiten_folds = (int)v;
            break;
        case 'r':
            if (!ns_cli_parse_u64(optarg, &o.seed)) {
                fprintf(stderr, "nightshift reference: invalid --seed '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'd':
            if (ns_device_parse(optarg, &o.device) != NS_OK) {
                fprintf(stderr, "nightshift reference: --device must be auto, cpu or cuda\n");
                return NS_EXIT_USAGE;
            }
            break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift reference --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store || !o.nights || !out) {
        fprintf(stderr, "nightshift reference build: %s is required\n",
                !store ? "--store (or NIGHTSHIFT_STORE)" : !o.nights ? "--nights" : "--out");
        return NS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift reference build: unexpected argument '%s'\n", argv[optind]);
        return NS_EXIT_USAGE;
    }
    st = ns_cli_check_ref_out(out);
    if (st == NS_OK)
        st = ns_store_open_read(store, &s);
    if (st == NS_OK)
        st = ns_reference_build(s, &o, &ref);
    if (st == NS_OK)
        st = ns_reference_save(&ref, out);
    if (st != NS_OK) {
        rc = ns_cli_fail("reference build", st);
        goto done;
    }
    printf("reference: %zu nights (%s..%s), %zu of %" PRIu64 " clips, %zu frames sampled; "
           "model %s (%.12s); k-means k=%d, kNN k=%d, sigma %.4g -> %s\n",
           ref.n_nights, ref.nights[0], ref.nights[ref.n_nights - 1], ref.sample.n_clips,
           ref.clips_total, ref.sample.n, ref.model_name, ref.model_id, ref.kmeans_k, ref.knn_k,
           ref.sigma, out);
done:
    ns_reference_release(&ref);
    ns_store_close(s);
    return rc;
}
