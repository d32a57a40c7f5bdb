/* nightshift nightly -- the whole night as one resumable command: ingest,
 * embed, reference refresh, detect, a labeling batch when detect found novel
 * conditions, and dataset, train and gate when new labels arrived; a run manifest per night records what is
 * done, so a rerun skips it and a killed night resumes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nightly_run.h"
#include "nightshift/clipmeta.h"
#include "nightshift/fsutil.h"
#include "nightshift/morning.h"
#include "nightshift/registry.h"

void ns_nightly_forward(int sig);

static void on_signal(int sig)
{
    ns_nightly_stop = sig;
    ns_nightly_forward(sig);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void help(const ns_nightly_config *d)
{
    printf("usage: nightshift nightly --config FILE [--night DATE] [options]\n\n"
           "Runs the night's stages in order (ingest, embed, reference, detect, select,\n"
           "dataset, train, gate), each as its own command, and records each in RUNS/<night>/manifest.json with its\n"
           "inputs, outputs (SHA-256), the tool version and the config hash.  A rerun\n"
           "skips what is done and redoes what changed; a killed night resumes.  Writes\n"
           "RUNS/<night>/index.html, the page to open in the morning.\n\n"
           "options (defaults in brackets):\n"
           "  --config FILE      the YAML configuration (examples/nightly.yaml)\n"
           "  --night DATE       the night, YYYY-MM-DD [today]\n"
           "  --dry-run          say what would run and why; change nothing\n"
           "  --from STAGE       rerun STAGE and every later stage, done or not\n"
           "  --only STAGE       run STAGE alone (earlier stages must be done)\n"
           "  --until STAGE      stop after STAGE (a later run resumes there; slurm submit\n"
           "                     runs detect and the rest as two jobs this way)\n"
           "  --wait             wait for the store's lock instead of exiting 75\n"
           "  --log-json         log lines as JSON objects (for log shippers)\n"
           "  --quiet, -q        no stage lines and no summary; errors only\n"
           "  --print-config     print the effective configuration and exit\n"
           "  --store DIR        overrides the key store\n"
           "  --inbox PATH       overrides the key inbox ({night} is replaced)\n"
           "  --runs DIR         overrides the key runs [STORE/runs]\n"
           "  --model M          overrides the key model [%s]\n"
           "  --device D         overrides the key device: auto|cpu|cuda [%s]\n"
           "stages: ingest, embed, reference, detect, select (when detect found novel\n"
           "conditions: select and export a labeling batch), dataset, train, gate (when\n"
           "new labels arrived: dataset build, train a candidate, gate it against the\n"
           "registry's production head)\n"
           "Exit codes: 0 nothing needs a human, 3 a shift or novel condition was found,\n"
           "4 a labeling batch is waiting, 5 a candidate head was gated PROMOTE (registry\n"
           "promote is yours to run); when several apply the highest wins (5 > 4 > 3);\n"
           "1 failure, 2 usage or config error, 75 the store is busy, 143 stopped by\n"
           "SIGTERM/SIGINT at a stage boundary (rerun to resume).\n",
           d->model, d->device);
}

static int stage_index(const char *name)
{
    for (int i = 0; i < NS_STAGE_COUNT; i++)
        if (!strcmp(ns_stages[i]->name, name))
            return i;
    return -1;
}

static int valid_night(const char *s)
{
    char out[NS_NIGHT_LEN];
    return ns_parse_night(s, out) == NS_OK; /* a real calendar date */
}

typedef struct log_ctx {
    int json, quiet;
    const char *night;
} log_ctx;

static void log_stage(const log_ctx *l, const ns_stage_record *rec)
{
    char t[32];
    double rate = rec->seconds > 0 ? (double)rec->count / rec->seconds : 0;
    if (l->quiet)
        return;
    ns_nightly_iso(now(), t);
    if (l->json) {
        ns_strbuf b = {0};
        ns_strbuf_printf(&b, "{\"time\":\"%s\",\"night\":\"%s\",\"stage\":\"%s\",\"status\":\"%s\","
                             "\"seconds\":",
                         t, l->night, rec->stage, rec->status);
        ns_strbuf_json_num(&b, rec->seconds);
        ns_strbuf_printf(&b, ",\"count\":%llu,\"unit\":\"%s\",\"rate\":",
                         (unsigned long long)rec->count, rec->unit);
        ns_strbuf_json_num(&b, rate);
        ns_strbuf_printf(&b, ",\"verdict\":\"%s\",\"note\":", rec->verdict);
        ns_strbuf_json_str(&b, rec->note ? rec->note : "");
        ns_strbuf_printf(&b, "}\n");
        if (b.data)
            fputs(b.data, stdout);
        ns_strbuf_release(&b);
    } else {
        printf("%s nightly %s %-9s %-11s %7.2f s", t, l->night, rec->stage, rec->status,
               rec->seconds);
        if (rec->unit[0])
            printf("  %llu %s", (unsigned long long)rec->count, rec->unit);
        if (!strcmp(rec->unit, "frames") && rec->seconds > 0.05 && !strcmp(rec->status, "done"))
            printf(" (%.1f %s/s)", rate, rec->unit);
        if (rec->verdict[0])
            printf("  %s", rec->verdict);
        if (rec->note && rec->note[0])
            printf("  -- %s", rec->note);
        printf("\n");
    }
    fflush(stdout);
}

/* Outputs recorded earlier still on disk with the same bytes? */
static int outputs_same(const ns_stage_record *old, const ns_stage_record *now_rec)
{
    if (old->n_outputs != now_rec->n_outputs)
        return 0;
    for (size_t i = 0; i < old->n_outputs; i++)
        if (strcmp(old->outputs[i].name, now_rec->outputs[i].name) ||
            strcmp(old->outputs[i].sha256, now_rec->outputs[i].sha256))
            return 0;
    return 1;
}

static void copy_record(ns_stage_record *dst, const ns_stage_record *src)
{
    *dst = *src;
    dst->note = src->note ? strdup(src->note) : NULL;
    dst->inputs = dst->outputs = NULL;
    dst->n_inputs = dst->n_outputs = 0;
    for (size_t k = 0; k < src->n_inputs; k++)
        ns_stage_add(&dst->inputs, &dst->n_inputs, src->inputs[k].name, src->inputs[k].sha256);
    for (size_t k = 0; k < src->n_outputs; k++)
        ns_stage_add(&dst->outputs, &dst->n_outputs, src->outputs[k].name, src->outputs[k].sha256);
}

static void fresh(ns_stage_record *rec, const char *stage)
{
    memset(rec, 0, sizeof *rec);
    snprintf(rec->stage, sizeof rec->stage, "%s", stage);
}

/* One stage: decide, run, measure, record.  *ran says whether it ran. */
static ns_status do_stage(ns_night_run *r, int i, int force, int dry, const log_ctx *lc)
{
    const ns_stage_def *def = ns_stages[i];
    ns_stage_record *rec = &r->cur[i], *old;
    ns_status st;
    double t0 = now();
    ns_stage_record_release(rec);
    fresh(rec, def->name);
    r->have[i] = 1;
    if ((st = def->prepare(r, rec)) != NS_OK)
        return st;
    old = ns_run_manifest_find(&r->m, def->name);
    if (rec->status[0]) { /* nothing to do tonight */
        ns_nightly_iso(t0, rec->start);
        ns_nightly_iso(now(), rec->end);
        if (old && !strcmp(old->status, rec->status) && !strcmp(old->key, rec->key)) {
            /* The same reason as last time: the record stays as it was. */
            ns_stage_record_release(rec);
            copy_record(rec, old);
        }
        if (dry) {
            printf("%-9s  would skip: %s\n", def->name, rec->note ? rec->note : "");
            return NS_OK;
        }
        log_stage(lc, rec);
        return ns_run_manifest_put(&r->m, rec);
    }
    if (!force && old && !strcmp(old->status, "done") && !strcmp(old->key, rec->key)) {
        ns_stage_record probe;
        fresh(&probe, def->name);
        ns_status ms = def->measure(r, &probe);
        int same = ms == NS_OK && outputs_same(old, &probe);
        if (same) {
            /* Done with the same inputs and intact outputs: keep the record. */
            ns_stage_record_release(rec);
            copy_record(rec, old);
            ns_stage_record_release(&probe);
            if (dry) {
                printf("%-9s  done earlier, would skip\n", def->name);
            } else if (lc->quiet) {
            } else if (!lc->json) {
                char t[32];
                ns_nightly_iso(now(), t);
                printf("%s nightly %s %-9s done earlier (%s), skipped\n", t, lc->night,
                       def->name, old->end);
            } else {
                ns_stage_record shown = *rec;
                snprintf(shown.status, sizeof shown.status, "done-earlier");
                log_stage(lc, &shown);
            }
            return NS_OK;
        }
        ns_stage_record_release(&probe);
        ns_error_clear();
    }
    if (dry) {
        printf("%-9s  would run: %s\n", def->name,
               force                                 ? "forced (--from/--only)"
               : !old                                ? "not run yet for this night"
               : strcmp(old->status, "done")         ? "did not finish last time"
               : strcmp(old->key, rec->key)          ? "its inputs or options changed"
                                                     : "its outputs changed or are missing");
        return NS_OK;
    }
    ns_nightly_iso(t0, rec->start);
    st = def->execute(r, rec);
    if (st == NS_OK)
        st = def->measure(r, rec);
    rec->seconds = now() - t0;
    ns_nightly_iso(now(), rec->end);
    snprintf(rec->status, sizeof rec->status, "%s",
             st == NS_OK ? "done" : st == NS_ERR_INTERRUPTED ? "interrupted" : "failed");
    if (st != NS_OK && !rec->note)
        rec->note = strdup(ns_errmsg());
    log_stage(lc, rec);
    char keep[1024];
    ns_errmsg_copy(keep, sizeof keep);
    ns_status ps = ns_run_manifest_put(&r->m, rec);
    if (st != NS_OK)
        return ns_error(st, "%s", keep);
    return ps;
}

static int tail_log(const char *logs, const char *stage)
{
    char path[PATH_MAX + 64], line[1024];
    char *lines[8] = {0};
    int n = 0;
    snprintf(path, sizeof path, "%s/%s.log", logs, stage);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        free(lines[n % 8]);
        lines[n % 8] = strdup(line);
        n++;
    }
    fclose(f);
    int first = n > 8 ? n - 8 : 0;
    for (int i = first; i < n; i++) {
        fprintf(stderr, "  | %s", lines[i % 8] ? lines[i % 8] : "\n");
    }
    for (int i = 0; i < 8; i++)
        free(lines[i]);
    return n;
}

static void summary(const ns_night_run *r, int code)
{
    printf("\nnightly %s: ", r->night);
    switch (code) {
    case NS_EXIT_OK: printf("nothing needs a human (exit 0)\n"); break;
    case NS_EXIT_NOVEL: printf("SHIFT OR NOVEL CONDITION FOUND (exit 3)\n"); break;
    case NS_EXIT_BATCH: printf("A LABELING BATCH IS WAITING (exit 4)\n"); break;
    case NS_EXIT_PROMOTE: printf("A CANDIDATE HEAD WAS GATED PROMOTE (exit 5)\n"); break;
    case NS_EXIT_INTERRUPTED: printf("stopped by a signal; rerun to resume (exit 143)\n"); break;
    case NS_EXIT_BUSY: printf("store busy (exit 75)\n"); break;
    default: printf("FAILED (exit %d)\n", code); break;
    }
    for (int i = 0; i < NS_STAGE_COUNT; i++) {
        const ns_stage_record *rec = &r->cur[i];
        if (!r->have[i])
            continue;
        printf("  %-9s %-11s %7.2f s", rec->stage, rec->status[0] ? rec->status : "done",
               rec->seconds);
        if (rec->unit[0])
            printf("  %llu %s", (unsigned long long)rec->count, rec->unit);
        if (rec->note && rec->note[0])
            printf("  -- %s", rec->note);
        printf("\n");
    }
    if (r->have_ing)
        printf("  ingest: %llu inputs, %llu frames seen, %llu stored\n",
               (unsigned long long)r->ing.inputs, (unsigned long long)r->ing.frames_seen,
               (unsigned long long)r->ing.frames_stored);
    if (r->have_det) {
        printf("  detect: %s, p = %.4g, %llu of %llu frames novel, %llu novel condition(s)\n",
               r->det.shift ? "SHIFT" : r->det.verdict, r->det.p_value,
               (unsigned long long)r->det.novel_frames, (unsigned long long)r->det.frames,
               (unsigned long long)r->det.novel_conditions);
        printf("  detect report: %s/report.html\n", r->detect_dir);
    }
    if (r->have_batch)
        printf("  labeling batch: %llu frames in %s (return the filled tasks.csv with "
               "nightshift labels import)\n",
               (unsigned long long)r->batch_frames, r->batch_path);
    if (r->gate_verdict[0])
        printf("  gate: %s for candidate %.12s (registry promote %.12s --gate %s)\n"
               "  gate report: %s/report.html\n",
               r->gate_verdict, r->head_id, r->head_id, r->gate_dir, r->gate_dir);
    printf("  production head: %s (head registry)\n",
           r->m.production_head[0] ? r->m.production_head : "none yet");
    printf("  manifest: %s\n  morning page: %s/index.html\n", r->manifest_path, r->dir);
}

int cmd_nightly(int argc, char **argv)
{
    ns_night_run *r = calloc(1, sizeof *r);
    const char *config = NULL, *night = NULL, *from = NULL, *only = NULL, *until = NULL;
    const char *o_store = NULL, *o_inbox = NULL, *o_runs = NULL, *o_model = NULL, *o_device = NULL;
    int dry = 0, wait = 0, log_json = 0, print_config = 0, quiet = 0, code = NS_EXIT_FAILURE;
    ns_status st = NS_OK;
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'}, {"night", required_argument, 0, 'n'},
        {"dry-run", no_argument, 0, 'D'},      {"from", required_argument, 0, 'f'},
        {"only", required_argument, 0, 'o'},   {"wait", no_argument, 0, 'w'},
        {"log-json", no_argument, 0, 'j'},     {"print-config", no_argument, 0, 'P'},
        {"store", required_argument, 0, 's'},  {"inbox", required_argument, 0, 'i'},
        {"runs", required_argument, 0, 'r'},   {"model", required_argument, 0, 'm'},
        {"device", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"until", required_argument, 0, 'u'},
        {0, 0, 0, 0}};
    if (!r) {
        fprintf(stderr, "nightshift nightly: out of memory\n");
        return NS_EXIT_FAILURE;
    }
    r->lock_fd = -1;
    ns_nightly_config_defaults(&r->cfg);
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "q", longopts, NULL)) != -1;) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'n': night = optarg; break;
        case 'D': dry = 1; break;
        case 'f': from = optarg; break;
        case 'o': only = optarg; break;
        case 'u': until = optarg; break;
        case 'w': wait = 1; break;
        case 'j': log_json = 1; break;
        case 'q': quiet = 1; break;
        case 'P': print_config = 1; break;
        case 's': o_store = optarg; break;
        case 'i': o_inbox = optarg; break;
        case 'r': o_runs = optarg; break;
        case 'm': o_model = optarg; break;
        case 'd': o_device = optarg; break;
        case 'h': help(&r->cfg); code = NS_EXIT_OK; goto out;
        default: code = NS_EXIT_USAGE; goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nightshift nightly: unexpected argument '%s'\n", argv[optind]);
        code = NS_EXIT_USAGE;
        goto out;
    }
    int from_i = from ? stage_index(from) : -1, only_i = only ? stage_index(only) : -1;
    int until_i = until ? stage_index(until) : NS_STAGE_COUNT - 1;
    if ((from && from_i < 0) || (only && only_i < 0) || (from && only) || until_i < 0) {
        fprintf(stderr, "nightshift nightly: %s (stages: ingest, embed, reference, detect, "
                        "select, dataset, train, gate)\n",
                from && only ? "--from and --only exclude each other" : "unknown stage");
        code = NS_EXIT_USAGE;
        goto out;
    }
    if (o_device && strcmp(o_device, "auto") && strcmp(o_device, "cpu") &&
        strcmp(o_device, "cuda")) {
        fprintf(stderr, "nightshift nightly: --device must be auto, cpu or cuda\n");
        code = NS_EXIT_USAGE;
        goto out;
    }
    if (config && (st = ns_nightly_config_load(config, &r->cfg)) != NS_OK)
        goto fail;
    const char *env_store = ns_cli_store(NULL);
    if ((!r->cfg.store && env_store && (st = ns_nightly_config_set(&r->cfg.store, env_store))) ||
        (o_store && (st = ns_nightly_config_set(&r->cfg.store, o_store))) ||
        (o_inbox && (st = ns_nightly_config_set(&r->cfg.inbox, o_inbox))) ||
        (o_runs && (st = ns_nightly_config_set(&r->cfg.runs, o_runs))) ||
        (o_model && (st = ns_nightly_config_set(&r->cfg.model, o_model))) ||
        (o_device && (st = ns_nightly_config_set(&r->cfg.device, o_device))))
        goto fail;
    if (print_config) {
        ns_strbuf b = {0};
        ns_nightly_config_print(&r->cfg, &b);
        fputs(b.data ? b.data : "", stdout);
        ns_strbuf_release(&b);
        code = NS_EXIT_OK;
        goto out;
    }
    if (!config && !o_store && !env_store) {
        fprintf(stderr, "nightshift nightly: --config FILE is required (see --help)\n");
        code = NS_EXIT_USAGE;
        goto out;
    }
    if ((st = ns_nightly_config_check(&r->cfg)) != NS_OK)
        goto fail;
    if (night && !valid_night(night)) {
        fprintf(stderr, "nightshift nightly: --night must be YYYY-MM-DD, not '%s'\n", night);
        code = NS_EXIT_USAGE;
        goto out;
    }
    if (night) {
        snprintf(r->night, sizeof r->night, "%s", night);
    } else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(r->night, sizeof r->night, "%Y-%m-%d", &tm);
    }
    if (r->cfg.runs)
        snprintf(r->runs, sizeof r->runs, "%s", r->cfg.runs);
    else
        snprintf(r->runs, sizeof r->runs, "%s/runs", r->cfg.store);
    snprintf(r->dir, sizeof r->dir, "%.4000s/%s", r->runs, r->night);
    snprintf(r->logs, sizeof r->logs, "%.4000s/logs", r->dir);
    snprintf(r->manifest_path, sizeof r->manifest_path, "%.4000s/manifest.json", r->dir);
    ssize_t sl = readlink("/proc/self/exe", r->self, sizeof r->self - 1);
    if (sl <= 0) {
        st = ns_error(NS_ERR_IO, "cannot find the nightshift binary: %s", strerror(errno));
        goto fail;
    }
    r->self[sl] = '\0';
    if ((st = ns_run_manifest_load(r->manifest_path, &r->m)) != NS_OK)
        goto fail;

    log_ctx lc = {log_json, quiet, r->night};
    if (!dry) {
        char lock[PATH_MAX + 8], what[PATH_MAX + 32];
        if ((st = ns_mkdir_p(r->cfg.store)) != NS_OK)
            goto fail;
        snprintf(lock, sizeof lock, "%s/lock", r->cfg.store);
        snprintf(what, sizeof what, "the store '%s'", r->cfg.store);
        /* One nightly per store, and no other writer, for the whole night. */
        if ((st = ns_flock_take(lock, wait, what, &r->lock_fd)) != NS_OK)
            goto fail;
        if ((st = ns_mkdir_p(r->logs)) != NS_OK)
            goto fail;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        char cfg_hash[NS_SHA256_HEX], t[32];
        ns_nightly_config_hash(&r->cfg, cfg_hash);
        ns_nightly_iso(now(), t);
        snprintf(r->m.night, sizeof r->m.night, "%s", r->night);
        snprintf(r->m.tool_version, sizeof r->m.tool_version, "%s", NS_VERSION);
        memcpy(r->m.config_sha256, cfg_hash, sizeof cfg_hash);
        if (!r->m.started[0])
            memcpy(r->m.started, t, sizeof t);
        r->m.exit_code = -1;
        /* The head the night's gate compares against, as the registry says. */
        ns_registry reg;
        if ((st = ns_registry_load(r->cfg.store, &reg)) != NS_OK)
            goto fail;
        memcpy(r->m.production_head, reg.production, sizeof reg.production);
        ns_registry_release(&reg);
    } else {
        printf("nightly %s (dry run): store %s, runs %s\n", r->night, r->cfg.store, r->runs);
    }

    for (int i = 0; i <= until_i && st == NS_OK; i++) {
        if (ns_nightly_stop) {
            st = ns_error(NS_ERR_INTERRUPTED, "stopped by signal %d before stage %s",
                          (int)ns_nightly_stop, ns_stages[i]->name);
            break;
        }
        int force = (from_i >= 0 && i >= from_i) || only_i == i;
        if (only_i >= 0 && i != only_i) {
            /* Another stage's results, for this one's inputs: as recorded. */
            ns_stage_record *old = ns_run_manifest_find(&r->m, ns_stages[i]->name);
            if (i < only_i && (!old || (strcmp(old->status, "done") && strcmp(old->status,
                                                                             "skipped")))) {
                st = ns_error(NS_ERR_USAGE, "--only %s: stage %s is not done for night %s",
                              only, ns_stages[i]->name, r->night);
                break;
            }
            if (i < only_i) {
                ns_stage_record_release(&r->cur[i]);
                fresh(&r->cur[i], ns_stages[i]->name);
                r->have[i] = 1;
                if ((st = ns_stages[i]->prepare(r, &r->cur[i])) == NS_OK && !r->cur[i].status[0])
                    st = ns_stages[i]->measure(r, &r->cur[i]);
                if (st == NS_OK && !r->cur[i].status[0])
                    snprintf(r->cur[i].status, sizeof r->cur[i].status, "done");
            }
            continue;
        }
        st = do_stage(r, i, force, dry, &lc);
        if (!dry && st != NS_ERR_INTERRUPTED) {
            ns_nightly_iso(now(), r->m.updated);
            ns_status ms = ns_run_manifest_save(&r->m, r->manifest_path);
            if (st == NS_OK)
                st = ms;
        }
        if (st != NS_OK && st != NS_ERR_INTERRUPTED && !dry) {
            char keep[1024];
            ns_errmsg_copy(keep, sizeof keep);
            fprintf(stderr, "nightshift nightly: %s\n", keep);
            if (tail_log(r->logs, ns_stages[i]->name) > 0)
                fprintf(stderr, "  (the end of %s/%s.log)\n", r->logs, ns_stages[i]->name);
            ns_error(st, "%s", keep);
        }
    }
    if (dry) {
        code = st == NS_OK ? NS_EXIT_OK : ns_cli_fail("nightly", st);
        goto out;
    }
    if (st == NS_ERR_INTERRUPTED)
        code = NS_EXIT_INTERRUPTED;
    else if (st != NS_OK)
        code = ns_exit_code(st);
    else if (!strcasecmp(r->gate_verdict, "promote"))
        code = NS_EXIT_PROMOTE;
    else if (r->have_batch)
        code = NS_EXIT_BATCH;
    else if (r->have_det && (r->det.shift || r->det.novel_conditions > 0))
        code = NS_EXIT_NOVEL;
    else
        code = NS_EXIT_OK;
    if (st == NS_ERR_INTERRUPTED)
        fprintf(stderr, "nightshift nightly: %s; rerun to resume\n", ns_errmsg());
    r->m.exit_code = code;
    ns_nightly_iso(now(), r->m.updated);
    {
        ns_status ms = ns_run_manifest_save(&r->m, r->manifest_path);
        ns_morning_page page = {r->night, r->runs, r->dir, &r->m};
        ns_status hs = ns_morning_write(&page);
        if ((ms != NS_OK || hs != NS_OK) && code != NS_EXIT_INTERRUPTED) {
            fprintf(stderr, "nightshift nightly: %s\n", ns_errmsg());
            code = NS_EXIT_FAILURE;
        }
    }
    if (!log_json && !quiet)
        summary(r, code);
    goto out;
fail:
    code = ns_cli_fail("nightly", st);
out:
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    for (int i = 0; i < NS_STAGE_COUNT; i++)
        ns_stage_record_release(&r->cur[i]);
    ns_run_manifest_release(&r->m);
    ns_nightly_config_release(&r->cfg);
    free(r);
    return code;
}
