/* nightshift slurm submit -- the nightly job spread over a Slurm cluster.
 *
 * Writes four sbatch scripts into RUNS/<night>/slurm/ and submits them in a
 * chain: an ingest array (each task commits its own shards, ingest --task),
 * an embed array over the shards (embed --task, on the GPU partition), then
 * `nightly --until detect` and `nightly` for the rest, each job depending
 * on the one before with afterok.  The nightly job resumes from its run
 * manifest, so the last two find ingest and embed done and carry on; the
 * store, reports and verdicts equal those of `nightshift nightly` run on one
 * machine.  Submitting again after a failure or scancel is safe: finished
 * clips and shards are skipped, and each task retries itself a few times.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/clipmeta.h"
#include "nightshift/fsutil.h"
#include "nightshift/nightly.h"
#include "nightshift/strbuf.h"

#define MAX_SBATCH_ARGS 32

typedef struct submit_opts {
    const char *config, *night, *partition, *gpu_partition, *gres, *time_limit, *sbatch;
    const char *extra[MAX_SBATCH_ARGS];
    int n_extra;
    int tasks, embed_tasks, cpus, retries, print;
} submit_opts;

static void help(void)
{
    printf("usage: nightshift slurm submit --config FILE --night YYYY-MM-DD [options]\n\n"
           "Runs the night's job on a Slurm cluster: writes sbatch scripts to\n"
           "RUNS/<night>/slurm/ and submits them as a chain, each job with\n"
           "--dependency=afterok on the one before:\n"
           "  1. ingest: a job array of --tasks tasks, each ingesting its share of the\n"
           "     inbox into its own shards (ingest --task slurm);\n"
           "  2. embed: a job array over the new shards on the GPU partition;\n"
           "  3. detect: nightly --until detect (reference refresh and detect);\n"
           "  4. the rest: nightly (selection and export, dataset, train and gate).\n"
           "Array tasks retry themselves; a task that finds its clips or shards done\n"
           "does nothing, so submitting again after a failure or scancel completes the\n"
           "night with nothing lost or repeated.  The store must be on a file system\n"
           "every node mounts at the same path (docs/slurm.md).\n\n"
           "options:\n"
           "  --config FILE         the nightly config (see nightshift nightly --help)\n"
           "  --night YYYY-MM-DD    the night to run\n"
           "  --tasks N             ingest array tasks [4]\n"
           "  --embed-tasks N       embed array tasks [--tasks]\n"
           "  --partition P         partition of the CPU jobs [the cluster's default]\n"
           "  --gpu-partition P     partition of the embed array [--partition]\n"
           "  --gres SPEC           generic resources of an embed task, e.g. gpu:1 [none]\n"
           "  --cpus-per-task N     cores of each task [2]\n"
           "  --time LIMIT          time limit of each job, sbatch syntax [none]\n"
           "  --retries N           attempts of each array task before it fails [3]\n"
           "  --sbatch-arg ARG      one more sbatch option for every job (repeatable),\n"
           "                        e.g. --sbatch-arg=--account=vision\n"
           "  --sbatch PATH         the sbatch program [sbatch]\n"
           "  --print               write the scripts and print them; submit nothing\n"
           "Prints the job ids, one line per job.  The night's exit code (0, 3, 4 or\n"
           "5 as for nightly) is in RUNS/<night>/manifest.json; the Slurm jobs end 0\n"
           "for all of those, so the afterok chain goes on.\n"
           "Exit codes: 0 submitted (or printed), 1 failure, 2 usage error.\n");
}

/* Appends s as one shell word in single quotes. */
static void shq(ns_strbuf *b, const char *s)
{
    ns_strbuf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            ns_strbuf_append(b, "'\\''", 4);
        else
            ns_strbuf_append(b, p, 1);
    }
    ns_strbuf_append(b, "'", 1);
}

static void header(ns_strbuf *b, const submit_opts *o, const char *name, const char *night,
                   const char *partition, const char *logs, int array)
{
    ns_strbuf_printf(b, "#!/bin/bash\n# Written by nightshift slurm submit for night %s.\n",
                     night);
    ns_strbuf_printf(b, "#SBATCH --job-name=ns-%s-%s\n", name, night);
    if (array > 0)
        ns_strbuf_printf(b, "#SBATCH --array=0-%d\n", array - 1);
    if (partition)
        ns_strbuf_printf(b, "#SBATCH --partition=%s\n", partition);
    ns_strbuf_printf(b, "#SBATCH --cpus-per-task=%d\n", o->cpus);
    if (o->time_limit)
        ns_strbuf_printf(b, "#SBATCH --time=%s\n", o->time_limit);
    ns_strbuf_printf(b, "#SBATCH --output=%s/%s-%s.out\n", logs, name,
                     array > 0 ? "%A_%a" : "%j");
    ns_strbuf_printf(b, "set -u\n");
}

/* A retry loop around one nightshift command; codes 3, 4 and 5 of nightly
 * are news for people, not failures of the job. */
static void retry_body(ns_strbuf *b, const submit_opts *o, const char *what, const char *cmd,
                       int news_ok)
{
    ns_strbuf_printf(b,
                     "rc=1\n"
                     "for attempt in $(seq %d); do\n"
                     "  %s\n"
                     "  rc=$?\n"
                     "  case $rc in\n"
                     "    0) exit 0 ;;\n"
                     "%s"
                     "    2) echo \"nightshift %s: usage error, not retried\" >&2; exit 2 ;;\n"
                     "  esac\n"
                     "  echo \"nightshift %s: attempt $attempt exited $rc\" >&2\n"
                     "  sleep $((attempt * 5))\n"
                     "done\n"
                     "exit $rc\n",
                     o->retries, cmd, news_ok ? "    3|4|5) echo \"night exit code $rc\"; exit 0 ;;\n" : "",
                     what, what);
}

static ns_status write_script(const char *path, const ns_strbuf *b)
{
    ns_status st = ns_strbuf_status(b);
    if (st == NS_OK)
        st = ns_write_file_atomic(path, b->data, b->len);
    if (st == NS_OK && chmod(path, 0755) != 0)
        st = ns_error(NS_ERR_IO, "cannot make '%s' executable: %s", path, strerror(errno));
    return st;
}

/* Runs sbatch with args and the script; *job gets the job id (--parsable). */
static ns_status sbatch(const submit_opts *o, const char *dep, const char *script, long *job)
{
    char *argv[MAX_SBATCH_ARGS + 8], depopt[64], out[256];
    int n = 0, fds[2], status;
    argv[n++] = (char *)o->sbatch;
    argv[n++] = "--parsable";
    if (dep) {
        snprintf(depopt, sizeof depopt, "--dependency=afterok:%s", dep);
        argv[n++] = depopt;
        argv[n++] = "--kill-on-invalid-dep=yes";
    }
    for (int i = 0; i < o->n_extra; i++)
        argv[n++] = (char *)o->extra[i];
    argv[n++] = (char *)script;
    argv[n] = NULL;
    if (pipe(fds) != 0)
        return ns_error(NS_ERR_IO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ns_error(NS_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    ssize_t len = 0, r;
    while ((r = read(fds[0], out + len, sizeof out - 1 - (size_t)len)) > 0 ||
           (r < 0 && errno == EINTR))
        if (r > 0)
            len += r;
    close(fds[0]);
    out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ns_error(NS_ERR_IO, "sbatch of '%s' failed (exit %d)", script,
                        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    char *end;
    *job = strtol(out, &end, 10); /* "ID" or "ID;cluster" */
    if (end == out || *job <= 0)
        return ns_error(NS_ERR_IO, "sbatch of '%s' printed no job id", script);
    return NS_OK;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!ns_cli_parse_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi)
        return 0;
    *out = (int)v;
    return 1;
}

static int submit(int argc, char **argv)
{
    submit_opts o = {.tasks = 4, .cpus = 2, .retries = 3, .sbatch = "sbatch"};
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'},     {"night", required_argument, 0, 'n'},
        {"tasks", required_argument, 0, 't'},      {"embed-tasks", required_argument, 0, 'e'},
        {"partition", required_argument, 0, 'p'},  {"gpu-partition", required_argument, 0, 'g'},
        {"gres", required_argument, 0, 'G'},       {"cpus-per-task", required_argument, 0, 'C'},
        {"time", required_argument, 0, 'T'},       {"retries", required_argument, 0, 'r'},
        {"sbatch-arg", required_argument, 0, 'a'}, {"sbatch", required_argument, 0, 'S'},
        {"print", no_argument, 0, 'P'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ns_nightly_config cfg;
    ns_strbuf text[4] = {{0}}, b = {0};
    ns_status st = NS_OK;
    int code = NS_EXIT_FAILURE;
    char self[PATH_MAX], runs[PATH_MAX], dir[PATH_MAX], logs[PATH_MAX + 8];
    char scripts[4][PATH_MAX + 32], cfgabs[PATH_MAX];
    char *inbox = NULL, *manifest = NULL;
    static const char *names[4] = {"ingest", "embed", "detect", "finish"};

    ns_nightly_config_defaults(&cfg);
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (c) {
        case 'c': o.config = optarg; break;
        case 'n': o.night = optarg; break;
        case 't':
            if (!parse_int(optarg, 1, 10000, &o.tasks)) goto bad;
            break;
        case 'e':
            if (!parse_int(optarg, 1, 10000, &o.embed_tasks)) goto bad;
            break;
        case 'p': o.partition = optarg; break;
        case 'g': o.gpu_partition = optarg; break;
        case 'G': o.gres = optarg; break;
        case 'C':
            if (!parse_int(optarg, 1, 1024, &o.cpus)) goto bad;
            break;
        case 'T': o.time_limit = optarg; break;
        case 'r':
            if (!parse_int(optarg, 1, 100, &o.retries)) goto bad;
            break;
        case 'a':
            if (o.n_extra == MAX_SBATCH_ARGS) goto bad;
            o.extra[o.n_extra++] = optarg;
            break;
        case 'S': o.sbatch = optarg; break;
        case 'P': o.print = 1; break;
        case 'h': help(); code = NS_EXIT_OK; goto out;
        default: code = NS_EXIT_USAGE; goto out;
        }
    }
    if (!o.config || !o.night || optind < argc) {
        fprintf(stderr, "nightshift slurm submit: --config FILE and --night YYYY-MM-DD are "
                        "required (see --help)\n");
        code = NS_EXIT_USAGE;
        goto out;
    }
    char night[NS_NIGHT_LEN];
    if (ns_parse_night(o.night, night) != NS_OK) {
        fprintf(stderr, "nightshift slurm submit: --night must be YYYY-MM-DD, not '%s'\n",
                o.night);
        code = NS_EXIT_USAGE;
        goto out;
    }
    if (!o.embed_tasks)
        o.embed_tasks = o.tasks;
    if (!o.gpu_partition)
        o.gpu_partition = o.partition;
    if ((st = ns_nightly_config_load(o.config, &cfg)) != NS_OK ||
        (st = ns_nightly_config_check(&cfg)) != NS_OK) {
        code = st == NS_ERR_USAGE ? NS_EXIT_USAGE : NS_EXIT_FAILURE;
        goto fail;
    }
    if (!cfg.inbox) {
        st = ns_error(NS_ERR_USAGE, "%s: the key inbox is needed to ingest on the cluster",
                      o.config);
        code = NS_EXIT_USAGE;
        goto fail;
    }
    /* The jobs run elsewhere, later, from another directory: absolute paths. */
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0 || !realpath(o.config, cfgabs)) {
        st = ns_error(NS_ERR_IO, "cannot resolve '%s' or the nightshift binary: %s", o.config,
                      strerror(errno));
        goto fail;
    }
    self[sl] = '\0';
    if (cfg.runs)
        snprintf(runs, sizeof runs, "%s", cfg.runs);
    else
        snprintf(runs, sizeof runs, "%s/runs", cfg.store);
    snprintf(dir, sizeof dir, "%.4000s/%s/slurm", runs, night);
    snprintf(logs, sizeof logs, "%s/logs", dir);
    if ((st = ns_mkdir_p(logs)) != NS_OK)
        goto fail;
    for (int i = 0; i < 4; i++)
        snprintf(scripts[i], sizeof scripts[i], "%s/%d-%s.sbatch", dir, i + 1, names[i]);
    inbox = ns_nightly_subst(cfg.inbox, night);
    manifest = ns_nightly_subst(cfg.manifest, night);

    /* 1. ingest */
    ns_strbuf cmd = {0};
    header(&b, &o, names[0], night, o.partition, logs, o.tasks);
    shq(&cmd, self);
    ns_strbuf_printf(&cmd, " ingest --quiet --task slurm --threads %d --store ", o.cpus);
    shq(&cmd, cfg.store);
    ns_strbuf_printf(&cmd, " --night %s", night);
    if (manifest) {
        ns_strbuf_printf(&cmd, " --manifest ");
        shq(&cmd, manifest);
    }
    if (cfg.name_pattern) {
        ns_strbuf_printf(&cmd, " --name-pattern ");
        shq(&cmd, cfg.name_pattern);
    }
    if (cfg.every > 1)
        ns_strbuf_printf(&cmd, " --every %d", cfg.every);
    if (cfg.fps > 0)
        ns_strbuf_printf(&cmd, " --fps %.17g", cfg.fps);
    ns_strbuf_printf(&cmd, " ");
    shq(&cmd, inbox);
    retry_body(&b, &o, "ingest task $SLURM_ARRAY_TASK_ID", cmd.data ? cmd.data : "", 0);
    ns_strbuf_release(&cmd);
    text[0] = b;
    b = (ns_strbuf){0};

    /* 2. embed */
    header(&b, &o, names[1], night, o.gpu_partition, logs, o.embed_tasks);
    if (o.gres)
        ns_strbuf_printf(&b, "#SBATCH --gres=%s\n", o.gres);
    shq(&cmd, self);
    ns_strbuf_printf(&cmd, " embed --quiet --task slurm --store ");
    shq(&cmd, cfg.store);
    ns_strbuf_printf(&cmd, " --nights %s --model ", night);
    shq(&cmd, cfg.model ? cfg.model : "default");
    if (cfg.device) {
        ns_strbuf_printf(&cmd, " --device ");
        shq(&cmd, cfg.device);
    }
    retry_body(&b, &o, "embed task $SLURM_ARRAY_TASK_ID", cmd.data ? cmd.data : "", 0);
    ns_strbuf_release(&cmd);
    text[1] = b;
    b = (ns_strbuf){0};

    /* 3. detect, 4. the rest: the nightly job itself, resuming. */
    for (int i = 2; i < 4; i++) {
        header(&b, &o, names[i], night, o.partition, logs, 0);
        shq(&cmd, self);
        ns_strbuf_printf(&cmd, " nightly --wait --config ");
        shq(&cmd, cfgabs);
        ns_strbuf_printf(&cmd, " --night %s%s", night, i == 2 ? " --until detect" : "");
        retry_body(&b, &o, names[i], cmd.data ? cmd.data : "", 1);
        ns_strbuf_release(&cmd);
        text[i] = b;
        b = (ns_strbuf){0};
    }
    for (int i = 0; i < 4; i++)
        if ((st = write_script(scripts[i], &text[i])) != NS_OK)
            goto fail;
    if (o.print) {
        for (int i = 0; i < 4; i++)
            printf("==> %s <==\n%s", scripts[i], text[i].data);
        code = NS_EXIT_OK;
        goto out;
    }
    char prev[32] = "";
    for (int i = 0; i < 4; i++) {
        long job = 0;
        if ((st = sbatch(&o, i ? prev : NULL, scripts[i], &job)) != NS_OK)
            goto fail;
        snprintf(prev, sizeof prev, "%ld", job);
        printf("%s %ld\n", names[i], job);
        fflush(stdout);
    }
    code = NS_EXIT_OK;
    goto out;
bad:
    fprintf(stderr, "nightshift slurm submit: invalid value '%s' (see --help)\n", optarg);
    code = NS_EXIT_USAGE;
    goto out;
fail:
    fprintf(stderr, "nightshift slurm submit: %s\n", ns_errmsg());
out:
    ns_strbuf_release(&b);
    for (int i = 0; i < 4; i++)
        ns_strbuf_release(&text[i]);
    free(inbox);
    free(manifest);
    ns_nightly_config_release(&cfg);
    return code;
}

int cmd_slurm(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "submit") == 0)
        return submit(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help();
        return NS_EXIT_OK;
    }
    fprintf(stderr, "usage: nightshift slurm submit --config FILE --night DATE [options] "
                    "(see nightshift slurm submit --help)\n");
    return NS_EXIT_USAGE;
}
