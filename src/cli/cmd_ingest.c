/* nightshift ingest -- archived clips into the store. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/fsutil.h"
#include "nightshift/ingest.h"
#include "nightshift/strbuf.h"

static volatile sig_atomic_t g_cancel;

static void on_signal(int sig)
{
    (void)sig;
    g_cancel = 1;
}

typedef struct ctx {
    ns_cli_progress prog;
    int quiet;
    int verbose;
} ctx;

static void on_clip(void *vc, const ns_ingest_clip_result *r)
{
    ctx *c = vc;
    size_t shown = r->warn ? r->warn->n_kept : 0;
    /* An input's name is anyone's who can write to the inbox: escaped. */
    char path[4 * 1024 + 8];
    ns_text_show(path, sizeof path, r->path, 1024);
    if (r->outcome == NS_OUTCOME_INGESTED || r->outcome == NS_OUTCOME_DUPLICATE) {
        if (c->verbose) {
            ns_cli_progress_clear(&c->prog);
            fprintf(stderr, "%s: %s\n", path, ns_outcome_name(r->outcome));
        }
    } else {
        ns_cli_progress_clear(&c->prog);
        fprintf(stderr, "nightshift ingest: %s: %s: %s\n", path, ns_outcome_name(r->outcome),
                r->reason);
    }
    if (c->quiet || !r->warn || r->warn->n_total == 0)
        return;
    ns_cli_progress_clear(&c->prog);
    if (!c->verbose && shown > 5)
        shown = 5;
    for (size_t i = 0; i < shown; i++)
        fprintf(stderr, "warning: %s\n", r->warn->msgs[i]);
    if (r->warn->n_total > shown)
        fprintf(stderr, "warning: ... and %zu more warnings for '%s'\n", r->warn->n_total - shown,
                path);
}

static void on_progress(void *vc, const ns_ingest_progress *p)
{
    ctx *c = vc;
    double frac = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total : 0;
    ns_cli_progress_show(&c->prog, "ingest", p->clips_done, p->clips_total, p->frames_stored,
                         p->elapsed, frac, 0);
}

static ns_status write_summary(const char *path, const char *store, const ns_ingest_summary *s,
                               ns_status run_st)
{
    ns_strbuf b = {0};
    ns_status st;
    ns_strbuf_printf(&b, "{\n  \"ns_format\": \"nightshift-ingest-summary\",\n"
                         "  \"ns_format_version\": 1,\n  \"status\": ");
    ns_strbuf_json_str(&b, run_st == NS_OK ? "ok"
                           : run_st == NS_ERR_INTERRUPTED ? "interrupted" : "error");
    ns_strbuf_printf(&b, ",\n  \"error\": ");
    ns_strbuf_json_str(&b, run_st == NS_OK ? "" : ns_errmsg());
    ns_strbuf_printf(&b, ",\n  \"store\": ");
    ns_strbuf_json_str(&b, store);
    ns_strbuf_printf(&b, ",\n  \"night\": ");
    ns_strbuf_json_str(&b, s->night);
    ns_strbuf_printf(&b, ",\n  \"inputs\": %zu,\n  \"files_skipped\": %zu,\n  \"clips\": {",
                     s->inputs, s->files_skipped);
    for (int i = 0; i < NS_OUTCOME_COUNT; i++)
        ns_strbuf_printf(&b, "%s\"%s\": %zu", i ? ", " : "", ns_outcome_name(i), s->clips[i]);
    ns_strbuf_printf(&b,
                     "},\n  \"frames\": {\"seen\": %" PRIu64 ", \"stored\": %" PRIu64
                     ", \"damaged\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"skipped\": %" PRIu64
                     "},\n  \"shards_committed\": %zu,\n  \"bytes_in\": %" PRIu64
                     ",\n  \"seconds\": ",
                     s->frames_seen, s->frames_stored, s->frames_damaged, s->frames_failed,
                     s->frames_skipped, s->shards_committed, s->bytes_in);
    ns_strbuf_json_num(&b, s->seconds);
    ns_strbuf_printf(&b, ",\n  \"frames_per_second\": ");
    ns_strbuf_json_num(&b, s->seconds > 0 ? floor((double)s->frames_stored / s->seconds * 10) / 10 : 0);
    ns_strbuf_printf(&b, ",\n  \"problems\": [");
    for (size_t i = 0; i < s->n_problems; i++) {
        ns_strbuf_printf(&b, "%s\n    {\"path\": ", i ? "," : "");
        ns_strbuf_json_str(&b, s->problems[i].path);
        ns_strbuf_printf(&b, ", \"outcome\": \"%s\", \"reason\": ",
                         ns_outcome_name(s->problems[i].outcome));
        ns_strbuf_json_str(&b, s->problems[i].reason);
        ns_strbuf_printf(&b, "}");
    }
    ns_strbuf_printf(&b, "%s]\n}\n", s->n_problems ? "\n  " : "");
    st = ns_strbuf_status(&b);
    if (st == NS_OK)
        st = ns_write_file_atomic(path, b.data, b.len);
    ns_strbuf_release(&b);
    return st;
}

static void help(const ns_ingest_opts *d)
{
    printf("usage: nightshift ingest --store DIR [options] INPUT...\n\n"
           "Reads clips (tar, tar.gz/xz/zst/bz2 and zip archives of JPEG frames, raw MJPEG\n"
           "streams, MJPEG AVI) from files and directories (recursive) into the store.\n"
           "Clips already in the store (same SHA-256) are skipped.\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR            the store [$NIGHTSHIFT_STORE]; created when missing\n"
           "  --night YYYY-MM-DD     night of the clips [today]; a manifest 'night' column wins\n"
           "  --manifest CSV         path,camera,start_time,fps,night per clip\n"
           "  --name-pattern PAT     camera/start time from file names [%s]; '' disables\n"
           "  --camera NAME          camera when nothing else says [%s]\n"
           "  --every N              keep every Nth frame [%d]\n"
           "  --fps F                keep at most F frames per second when the rate is known [all]\n"
           "  --size S               working frame size S x S for a new store [%d]\n"
           "  --fit MODE             squash|crop|pad [%s]\n"
           "  --threads N            decode threads [all cores]\n"
           "  --batch N              frames decoded per batch [%d]\n"
           "  --shard-frames N       commit a shard every N frames [%zu]\n"
           "  --wait                 wait for the store lock instead of exiting 75\n"
           "  --task I/N | slurm     ingest only the inputs i with i %% N == I, as one of N\n"
           "                         concurrent writers (Slurm array tasks: 'slurm'); waits\n"
           "                         for an exclusive writer rather than exiting 75\n"
           "  --summary FILE.json    write the run summary as JSON\n"
           "  --max-entry-bytes N    archive member limit, uncompressed [%" PRIu64 "]\n"
           "  --max-total-bytes N    archive total limit, uncompressed [%" PRIu64 "]\n"
           "  --max-entries N        archive entry limit [%" PRIu64 "]\n"
           "  --max-frames N         frames per clip limit [%" PRIu64 "]\n"
           "  --max-pixels N         JPEG width x height limit [%" PRIu64 "]\n"
           "  --max-side N           JPEG width or height limit [%d]\n"
           "  --frozen-mad X         mean abs difference below which frames repeat [%.2f]\n"
           "  --strict               exit 1 when any clip was not ingested\n"
           "  --quiet | --verbose    fewer / more messages\n"
           "Sizes take K, M, G suffixes.  Exit codes: 0 ok, 1 failure, 2 usage, 75 store busy.\n",
           d->name_pattern, d->default_camera, d->every, NS_STORE_DEFAULT_FRAME_SIZE,
           ns_fit_name(d->fit), d->batch, d->shard_frames, d->clip_limits.max_entry_bytes,
           d->clip_limits.max_total_bytes, d->clip_limits.max_entries, d->clip_limits.max_frames,
           d->decode_limits.max_pixels, (int)d->decode_limits.max_width, (double)d->qc.frozen_mad);
}

enum {
    OPT_STORE = 256, OPT_NIGHT, OPT_MANIFEST, OPT_PATTERN, OPT_CAMERA, OPT_EVERY, OPT_FPS,
    OPT_SIZE, OPT_FIT, OPT_THREADS, OPT_BATCH, OPT_SHARD, OPT_WAIT, OPT_TASK, OPT_SUMMARY, OPT_MAX_ENTRY,
    OPT_MAX_TOTAL, OPT_MAX_ENTRIES, OPT_MAX_FRAMES, OPT_MAX_PIXELS, OPT_MAX_SIDE, OPT_FROZEN,
    OPT_STRICT, OPT_QUIET, OPT_VERBOSE, OPT_HELP
};

static const struct option longopts[] = {
    {"store", required_argument, 0, OPT_STORE}, {"night", required_argument, 0, OPT_NIGHT},
    {"manifest", required_argument, 0, OPT_MANIFEST},
    {"name-pattern", required_argument, 0, OPT_PATTERN},
    {"camera", required_argument, 0, OPT_CAMERA}, {"every", required_argument, 0, OPT_EVERY},
    {"fps", required_argument, 0, OPT_FPS}, {"size", required_argument, 0, OPT_SIZE},
    {"fit", required_argument, 0, OPT_FIT}, {"threads", required_argument, 0, OPT_THREADS},
    {"batch", required_argument, 0, OPT_BATCH},
    {"shard-frames", required_argument, 0, OPT_SHARD}, {"wait", no_argument, 0, OPT_WAIT},
    {"task", required_argument, 0, OPT_TASK}, {"summary", required_argument, 0, OPT_SUMMARY},
    {"max-entry-bytes", required_argument, 0, OPT_MAX_ENTRY},
    {"max-total-bytes", required_argument, 0, OPT_MAX_TOTAL},
    {"max-entries", required_argument, 0, OPT_MAX_ENTRIES},
    {"max-frames", required_argument, 0, OPT_MAX_FRAMES},
    {"max-pixels", required_argument, 0, OPT_MAX_PIXELS},
    {"max-side", required_argument, 0, OPT_MAX_SIDE},
    {"frozen-mad", required_argument, 0, OPT_FROZEN}, {"strict", no_argument, 0, OPT_STRICT},
    {"quiet", no_argument, 0, OPT_QUIET}, {"verbose", no_argument, 0, OPT_VERBOSE},
    {"help", no_argument, 0, OPT_HELP}, {0, 0, 0, 0}};

static int bad_value(const char *opt, const char *v)
{
    fprintf(stderr, "nightshift ingest: invalid value '%s' for --%s\n", v, opt);
    return NS_EXIT_USAGE;
}

int cmd_ingest(int argc, char **argv)
{
    ns_ingest_opts o;
    ns_ingest_summary sum;
    ctx c;
    const char *store_opt = NULL, *summary_path = NULL;
    int strict = 0, c_opt, rc;
    uint64_t v;
    ns_status st;

    ns_ingest_default_opts(&o);
    memset(&c, 0, sizeof c);
    optind = 1;
    while ((c_opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        double x;
        switch (c_opt) {
        case OPT_STORE: store_opt = optarg; break;
        case OPT_NIGHT: snprintf(o.night, sizeof o.night, "%s", optarg); break;
        case OPT_MANIFEST: o.manifest = optarg; break;
        case OPT_PATTERN: o.name_pattern = optarg; break;
        case OPT_CAMERA: o.default_camera = optarg; break;
        case OPT_EVERY:
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 1000000) return bad_value("every", optarg);
            o.every = (int)v;
            break;
        case OPT_FPS:
            if (!ns_cli_parse_double(optarg, &o.fps) || !(o.fps > 0)) return bad_value("fps", optarg);
            break;
        case OPT_SIZE:
            if (!ns_cli_parse_u64(optarg, &v) || v < 16 || v > 1024) return bad_value("size", optarg);
            o.frame_size = (int)v;
            break;
        case OPT_FIT:
            if (ns_fit_parse(optarg, &o.fit) != NS_OK) return bad_value("fit", optarg);
            break;
        case OPT_THREADS:
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 1024) return bad_value("threads", optarg);
            o.threads = (int)v;
            break;
        case OPT_BATCH:
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 4096) return bad_value("batch", optarg);
            o.batch = (int)v;
            break;
        case OPT_SHARD:
            if (!ns_cli_parse_u64(optarg, &v) || v < 1) return bad_value("shard-frames", optarg);
            o.shard_frames = (size_t)v;
            break;
        case OPT_WAIT: o.wait = 1; break;
        case OPT_TASK:
            if (!ns_cli_parse_task(optarg, &o.task_index, &o.task_count)) return bad_value("task", optarg);
            break;
        case OPT_SUMMARY: summary_path = optarg; break;
        case OPT_MAX_ENTRY:
            if (!ns_cli_parse_u64(optarg, &o.clip_limits.max_entry_bytes)) return bad_value("max-entry-bytes", optarg);
            break;
        case OPT_MAX_TOTAL:
            if (!ns_cli_parse_u64(optarg, &o.clip_limits.max_total_bytes)) return bad_value("max-total-bytes", optarg);
            break;
        case OPT_MAX_ENTRIES:
            if (!ns_cli_parse_u64(optarg, &o.clip_limits.max_entries)) return bad_value("max-entries", optarg);
            break;
        case OPT_MAX_FRAMES:
            if (!ns_cli_parse_u64(optarg, &o.clip_limits.max_frames)) return bad_value("max-frames", optarg);
            break;
        case OPT_MAX_PIXELS:
            if (!ns_cli_parse_u64(optarg, &o.decode_limits.max_pixels)) return bad_value("max-pixels", optarg);
            break;
        case OPT_MAX_SIDE:
            if (!ns_cli_parse_u64(optarg, &v) || v < 1 || v > 65535) return bad_value("max-side", optarg);
            o.decode_limits.max_width = o.decode_limits.max_height = (int32_t)v;
            break;
        case OPT_FROZEN:
            if (!ns_cli_parse_double(optarg, &x) || x < 0) return bad_value("frozen-mad", optarg);
            o.qc.frozen_mad = (float)x;
            break;
        case OPT_STRICT: strict = 1; break;
        case OPT_QUIET: c.quiet = 1; break;
        case OPT_VERBOSE: c.verbose = 1; break;
        case OPT_HELP: help(&o); return NS_EXIT_OK;
        default:
            fprintf(stderr, "see 'nightshift ingest --help'\n");
            return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        fprintf(stderr, "nightshift ingest: no store: give --store DIR or set NIGHTSHIFT_STORE\n");
        return NS_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "nightshift ingest: no INPUT given (files or directories of clips)\n");
        return NS_EXIT_USAGE;
    }
    ns_cli_progress_init(&c.prog, !c.quiet);
    o.on_clip = on_clip;
    o.on_progress = on_progress;
    o.ctx = &c;
    o.cancel = &g_cancel;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    st = ns_ingest_run(store, (const char *const *)argv + optind, (size_t)(argc - optind), &o, &sum);
    ns_cli_progress_clear(&c.prog);
    if (st != NS_OK)
        rc = ns_cli_fail("ingest", st);
    else
        rc = NS_EXIT_OK;
    if (st == NS_OK || st == NS_ERR_INTERRUPTED) {
        printf("ingest: %zu inputs: %zu clips ingested, %zu duplicates skipped, %zu quarantined, "
               "%zu unsupported, %zu unrecognised, %zu unreadable; %" PRIu64 " frames stored (%"
               PRIu64 " damaged, %" PRIu64 " failed) in %zu shards; %.1f s, %.0f frames/s\n",
               sum.inputs, sum.clips[NS_OUTCOME_INGESTED], sum.clips[NS_OUTCOME_DUPLICATE],
               sum.clips[NS_OUTCOME_QUARANTINED], sum.clips[NS_OUTCOME_UNSUPPORTED],
               sum.clips[NS_OUTCOME_UNRECOGNISED], sum.clips[NS_OUTCOME_ERROR], sum.frames_stored,
               sum.frames_damaged, sum.frames_failed, sum.shards_committed, sum.seconds,
               sum.seconds > 0 ? (double)sum.frames_stored / sum.seconds : 0.0);
        if (strict && sum.n_problems > 0 && rc == NS_EXIT_OK)
            rc = NS_EXIT_FAILURE;
    }
    if (summary_path && st != NS_ERR_USAGE && st != NS_ERR_BUSY) {
        ns_status ws = write_summary(summary_path, store, &sum, st);
        if (ws != NS_OK) {
            fprintf(stderr, "nightshift ingest: %s\n", ns_errmsg());
            if (rc == NS_EXIT_OK)
                rc = NS_EXIT_FAILURE;
        }
    }
    ns_ingest_summary_release(&sum);
    return rc;
}
