/* nightly_stages.c -- what each stage of the nightly job runs, which inputs
 * its key covers, and which outputs prove it done.
 *
 * Every stage is the stage command itself, run as a child of the same binary
 * (/proc/self/exe), so `nightshift ingest` and the nightly job never diverge,
 * a killed child leaves exactly what the command's own crash safety leaves,
 * and Slurm job steps can run one stage each (`nightly --only STAGE`).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "nightly_run.h"
#include "nightshift/fsutil.h"
#include "nightshift/store.h"

volatile sig_atomic_t ns_nightly_stop = 0;
static volatile sig_atomic_t child_pid = 0;

/* ---- running a stage's command ----------------------------------------------- */

void ns_argv_add(ns_argv *a, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof a->buf - a->used;
    va_start(ap, fmt);
    int n = vsnprintf(a->buf + a->used, room, fmt, ap);
    va_end(ap);
    /* Options come from our config; overflowing either bound is our bug. */
    if (n < 0 || (size_t)n >= room || a->n >= (int)(sizeof a->v / sizeof a->v[0]) - 1)
        abort();
    a->v[a->n++] = a->buf + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)n + 1;
}

void ns_nightly_forward(int sig); /* from cmd_nightly.c's handler */
void ns_nightly_forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

ns_status ns_nightly_spawn(ns_night_run *r, const char *stage, char *const *argv, int *rc)
{
    char log[PATH_MAX + 64], lockfd[32];
    snprintf(log, sizeof log, "%s/%s.log", r->logs, stage);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0666);
    *rc = 1;
    if (fd < 0)
        return ns_error(NS_ERR_IO, "cannot open log '%s': %s", log, strerror(errno));
    dprintf(fd, "---- nightshift");
    for (int i = 1; argv[i]; i++)
        dprintf(fd, " %s", argv[i]);
    dprintf(fd, "\n");
    snprintf(lockfd, sizeof lockfd, "%d", r->lock_fd);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return ns_error(NS_ERR_IO, "cannot start stage %s: %s", stage, strerror(errno));
    }
    if (pid == 0) {
        /* A nightly killed with -9 must not leave its stage running on: the
         * next run would find the store locked by an orphan. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(137);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        int fl = fcntl(r->lock_fd, F_GETFD);
        if (fl >= 0)
            fcntl(r->lock_fd, F_SETFD, fl & ~FD_CLOEXEC);
        setenv("NIGHTSHIFT_LOCK_FD", lockfd, 1);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execv(r->self, argv);
        dprintf(STDERR_FILENO, "nightly: cannot run '%s': %s\n", r->self, strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    close(fd);
    /* A stop that arrived just before the child existed is passed on now. */
    if (ns_nightly_stop)
        kill(pid, (int)ns_nightly_stop);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            child_pid = 0;
            return ns_error(NS_ERR_IO, "waiting for stage %s: %s", stage, strerror(errno));
        }
    }
    child_pid = 0;
    if (WIFSIGNALED(status)) {
        *rc = 128 + WTERMSIG(status);
        return ns_error(NS_ERR_INTERRUPTED, "stage %s stopped by signal %d (log: %s)", stage,
                        WTERMSIG(status), log);
    }
    *rc = WEXITSTATUS(status);
    if (*rc == 0)
        return NS_OK;
    if (ns_nightly_stop)
        return ns_error(NS_ERR_INTERRUPTED, "stage %s interrupted (log: %s)", stage, log);
    return ns_error(*rc == NS_EXIT_USAGE ? NS_ERR_USAGE
                    : *rc == NS_EXIT_BUSY ? NS_ERR_BUSY
                                          : NS_ERR_IO,
                    "stage %s failed with exit %d (log: %s)", stage, *rc, log);
}

/* ---- helpers ----------------------------------------------------------------- */

void ns_stage_key(ns_stage_record *rec, const char *extra)
{
    const char *parts[2 + 2 * 16];
    size_t n = 0;
    parts[n++] = rec->stage;
    parts[n++] = NS_VERSION;
    for (size_t i = 0; i < rec->n_inputs && n + 2 < sizeof parts / sizeof parts[0]; i++) {
        parts[n++] = rec->inputs[i].name;
        parts[n++] = rec->inputs[i].sha256;
    }
    if (extra)
        parts[n++] = extra;
    ns_nightly_strings_sha(parts, n, rec->key);
}

/* The options of a stage as its last input (a hash over the strings), then
 * the key over every input. */
ns_status ns_stage_options(ns_stage_record *rec, const char *const *kv, size_t n)
{
    char hex[NS_SHA256_HEX];
    ns_nightly_strings_sha(kv, n, hex);
    ns_status st = ns_stage_add(&rec->inputs, &rec->n_inputs, "options", hex);
    if (st == NS_OK)
        ns_stage_key(rec, NULL);
    return st;
}

void ns_stage_skip(ns_stage_record *rec, const char *note)
{
    snprintf(rec->status, sizeof rec->status, "skipped");
    rec->note = strdup(note);
    ns_stage_key(rec, note);
}

ns_status ns_stage_command(ns_night_run *r, ns_argv *a, const char *subdir, ...)
{
    va_list ap;
    a->n = 0;
    a->used = 0;
    if (subdir) {
        char dir[PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s/%s", r->runs, subdir);
        ns_status st = ns_mkdir_p(dir);
        if (st != NS_OK)
            return st;
    }
    ns_argv_add(a, "nightshift");
    va_start(ap, subdir);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;)
        ns_argv_add(a, "%s", w);
    va_end(ap);
    return NS_OK;
}

const char *ns_stage_rel(const ns_night_run *r, const char *path)
{
    size_t n = strlen(r->runs);
    return strncmp(path, r->runs, n) == 0 && path[n] == '/' ? path + n + 1 : path;
}

ns_status ns_stage_output(ns_night_run *r, ns_stage_record *rec, const char *rel)
{
    char path[2 * PATH_MAX], hex[NS_SHA256_HEX];
    if (rel[0] == '/')
        snprintf(path, sizeof path, "%s", rel);
    else
        snprintf(path, sizeof path, "%s/%s", r->runs, rel);
    ns_status st = ns_nightly_file_sha(path, hex);
    if (st == NS_ERR_IO && access(path, F_OK) != 0)
        return ns_error(NS_ERR_NOT_FOUND, "output '%s' is missing", path);
    return st == NS_OK ? ns_stage_add(&rec->outputs, &rec->n_outputs, rel, hex) : st;
}

const char *ns_stage_upstream(const ns_night_run *r, int stage)
{
    return r->have[stage] && r->cur[stage].n_outputs ? r->cur[stage].outputs[0].sha256 : "";
}

static void fmt_g(char *buf, size_t cap, double v)
{
    snprintf(buf, cap, "%.17g", v);
}

/* ---- ingest ------------------------------------------------------------------ */

static ns_status ingest_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char hex[NS_SHA256_HEX], every[32], fps[40];
    size_t n_files = 0;
    char *inbox = ns_nightly_subst(r->cfg.inbox, r->night);
    char *manifest = ns_nightly_subst(r->cfg.manifest, r->night);
    ns_status st;
    if (!inbox || (r->cfg.manifest && !manifest)) {
        st = ns_error(NS_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = ns_nightly_tree_digest(inbox, hex, &n_files)) != NS_OK) {
        if (st == NS_ERR_NOT_FOUND)
            st = ns_error(NS_ERR_NOT_FOUND, "the inbox '%s' of night %s does not exist", inbox,
                          r->night);
        goto done;
    }
    if ((st = ns_stage_add(&rec->inputs, &rec->n_inputs, inbox, hex)) != NS_OK)
        goto done;
    if (manifest) {
        if ((st = ns_nightly_file_sha(manifest, hex)) != NS_OK ||
            (st = ns_stage_add(&rec->inputs, &rec->n_inputs, manifest, hex)) != NS_OK)
            goto done;
    }
    snprintf(every, sizeof every, "every=%d", r->cfg.every);
    fmt_g(fps, sizeof fps, r->cfg.fps);
    const char *kv[] = {r->cfg.store, r->night, r->cfg.name_pattern ? r->cfg.name_pattern : "",
                        every, fps};
    st = ns_stage_options(rec, kv, 5);
done:
    free(inbox);
    free(manifest);
    return st;
}

static ns_status ingest_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_stage_command(r, &a, NULL, "ingest", "--store", r->cfg.store, "--night", r->night, NULL);
    ns_argv_add(&a, "--summary");
    ns_argv_add(&a, "%s/ingest.json", r->dir);
    if (r->cfg.manifest) {
        char *m = ns_nightly_subst(r->cfg.manifest, r->night);
        ns_argv_add(&a, "--manifest");
        ns_argv_add(&a, "%s", m ? m : "");
        free(m);
    }
    if (r->cfg.name_pattern) {
        ns_argv_add(&a, "--name-pattern");
        ns_argv_add(&a, "%s", r->cfg.name_pattern);
    }
    if (r->cfg.every > 1) {
        ns_argv_add(&a, "--every");
        ns_argv_add(&a, "%d", r->cfg.every);
    }
    if (r->cfg.fps > 0) {
        ns_argv_add(&a, "--fps");
        ns_argv_add(&a, "%.17g", r->cfg.fps);
    }
    ns_argv_add(&a, "%s", rec->inputs[0].name); /* the inbox, {night} filled in */
    return ns_nightly_spawn(r, "ingest", a.v, &rc);
}

static ns_status ingest_measure(ns_night_run *r, ns_stage_record *rec)
{
    char path[2 * PATH_MAX], rel[64];
    snprintf(rel, sizeof rel, "%s/ingest.json", r->night);
    ns_status st = ns_stage_output(r, rec, rel);
    if (st != NS_OK)
        return st;
    snprintf(path, sizeof path, "%s/%s", r->runs, rel);
    if ((st = ns_ingest_brief_read(path, &r->ing)) != NS_OK)
        return st;
    r->have_ing = 1;
    rec->count = r->ing.frames_stored;
    snprintf(rec->unit, sizeof rec->unit, "frames");
    return NS_OK;
}

/* ---- embed ------------------------------------------------------------------- */

static ns_status model_input(ns_night_run *r, ns_stage_record *rec)
{
    char hex[NS_SHA256_HEX];
    const char *m = r->cfg.model;
    if (strcmp(m, "default") == 0)
        return ns_stage_add(&rec->inputs, &rec->n_inputs, "model default", "");
    ns_status st = ns_nightly_file_sha(m, hex);
    return st == NS_OK ? ns_stage_add(&rec->inputs, &rec->n_inputs, m, hex) : st;
}

static ns_status embed_prepare(ns_night_run *r, ns_stage_record *rec)
{
    ns_status st;
    if ((st = ns_stage_add(&rec->inputs, &rec->n_inputs, "ingest", ns_stage_upstream(r, NS_STAGE_INGEST))) !=
            NS_OK ||
        (st = model_input(r, rec)) != NS_OK)
        return st;
    ns_stage_key(rec, NULL);
    return NS_OK;
}

static ns_status embed_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_stage_command(r, &a, NULL, "embed", "--store", r->cfg.store, "--model", r->cfg.model,
                     "--device", r->cfg.device, NULL);
    /* Every night's missing frames, not only tonight's: a night whose embed
     * never finished would otherwise hold up every reference it belongs to. */
    ns_argv_add(&a, "--quiet");
    return ns_nightly_spawn(r, "embed", a.v, &rc);
}

/* The output of embed: the embedding files of tonight's shards, by name,
 * size and time, under every model folder. */
static ns_status embed_measure(ns_night_run *r, ns_stage_record *rec)
{
    ns_store *s = NULL;
    ns_sha256 h;
    uint8_t d[NS_SHA256_LEN];
    char hex[NS_SHA256_HEX], dir[PATH_MAX + 16];
    size_t n_shards = 0, found = 0;
    DIR *md = NULL;
    ns_status st = ns_store_open_read(r->cfg.store, &s);
    if (st != NS_OK)
        return st;
    const ns_shard_entry *sh = ns_store_shards(s, &n_shards);
    ns_sha256_init(&h);
    snprintf(dir, sizeof dir, "%s/embeddings", r->cfg.store);
    md = opendir(dir);
    struct dirent *e;
    while (md && (e = readdir(md)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        for (size_t i = 0; i < n_shards; i++) {
            char path[2 * PATH_MAX];
            struct stat sb;
            if (strcmp(sh[i].night, r->night) != 0)
                continue;
            snprintf(path, sizeof path, "%s/%s/%06u.h5", dir, e->d_name, sh[i].id);
            if (stat(path, &sb) != 0)
                continue;
            char line[PATH_MAX + 96];
            int n = snprintf(line, sizeof line, "%s/%06u %lld %lld.%09ld", e->d_name, sh[i].id,
                             (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
                             (long)sb.st_mtim.tv_nsec);
            ns_sha256_update(&h, line, (size_t)n + 1);
            found++;
        }
    }
    if (md)
        closedir(md);
    ns_sha256_final(&h, d);
    ns_sha256_hex(d, hex);
    size_t mine = 0;
    for (size_t i = 0; i < n_shards; i++)
        mine += strcmp(sh[i].night, r->night) == 0;
    ns_store_close(s);
    if (mine > 0 && found == 0)
        return ns_error(NS_ERR_NOT_FOUND, "no embeddings of night %s", r->night);
    rec->count = found;
    snprintf(rec->unit, sizeof rec->unit, "shards");
    return ns_stage_add(&rec->outputs, &rec->n_outputs, "embeddings", hex);
}

/* ---- reference ---------------------------------------------------------------- */

/* Nights before tonight whose manifest shows ingest done and detect not
 * flagging a shift: the candidates for a "last N" reference. */
static ns_status accepted_nights(ns_night_run *r, char (**out)[16], size_t *n)
{
    struct dirent **names = NULL;
    int k = scandir(r->runs, &names, NULL, alphasort);
    char (*acc)[16] = NULL;
    size_t na = 0;
    ns_status st = NS_OK;
    *out = NULL;
    *n = 0;
    if (k < 0)
        return errno == ENOENT ? NS_OK
                               : ns_error(NS_ERR_IO, "cannot read '%s': %s", r->runs,
                                          strerror(errno));
    acc = calloc((size_t)k + 1, sizeof *acc);
    if (!acc)
        st = ns_error(NS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        char path[2 * PATH_MAX];
        ns_run_manifest m;
        if (st == NS_OK && strlen(nm) == 10 && nm[4] == '-' && nm[7] == '-' &&
            strcmp(nm, r->night) < 0) {
            snprintf(path, sizeof path, "%s/%s/manifest.json", r->runs, nm);
            if (ns_run_manifest_load(path, &m) == NS_OK) {
                ns_stage_record *ing = ns_run_manifest_find(&m, "ingest");
                ns_stage_record *emb = ns_run_manifest_find(&m, "embed");
                ns_stage_record *det = ns_run_manifest_find(&m, "detect");
                if (ing && !strcmp(ing->status, "done") && emb && !strcmp(emb->status, "done") &&
                    !(det && !strcmp(det->verdict, "shift")))
                    snprintf(acc[na++], 16, "%s", nm);
                ns_run_manifest_release(&m);
            } else {
                ns_error_clear(); /* an unreadable night is no reference night */
            }
        }
        free(names[i]);
    }
    free(names);
    if (st != NS_OK) {
        free(acc);
        return st;
    }
    *out = acc;
    *n = na;
    return NS_OK;
}

static int night_in(const char *spec, const char *night)
{
    const char *dots = strstr(spec, "..");
    if (dots) {
        char from[16] = "", to[16] = "";
        snprintf(from, sizeof from, "%.*s", (int)(dots - spec), spec);
        snprintf(to, sizeof to, "%s", dots + 2);
        return (!from[0] || strcmp(night, from) >= 0) && (!to[0] || strcmp(night, to) <= 0);
    }
    size_t nl = strlen(night);
    for (const char *p = spec; (p = strstr(p, night)) != NULL; p += nl)
        if ((p == spec || p[-1] == ',') && (p[nl] == '\0' || p[nl] == ','))
            return 1;
    return 0;
}

/* The latest night a fixed spec names ("" when open-ended). */
static void last_night(const char *spec, char out[16])
{
    const char *dots = strstr(spec, "..");
    out[0] = '\0';
    if (dots) {
        snprintf(out, 16, "%.10s", dots + 2);
        return;
    }
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 10 && strncmp(p, out, 10) > 0)
            snprintf(out, 16, "%.10s", p);
        p += n + (p[n] == ',');
    }
}

static ns_status reference_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char spec[4096] = "", cap[32], seed[32], hex[NS_SHA256_HEX];
    ns_status st;
    r->ref_path[0] = '\0';
    if (r->cfg.ref_policy == NS_REF_FIXED) {
        char last[16];
        snprintf(spec, sizeof spec, "%s", r->cfg.ref_nights);
        last_night(spec, last);
        if (!last[0] || strcmp(r->night, last) <= 0) {
            char note[160];
            snprintf(note, sizeof note, "tonight is in the reference period %.100s%s", spec,
                     last[0] ? "" : " (open-ended)");
            ns_stage_skip(rec, note);
            return NS_OK;
        }
    } else {
        char (*acc)[16] = NULL;
        size_t na = 0, used = 0;
        if ((st = accepted_nights(r, &acc, &na)) != NS_OK)
            return st;
        if (na < (size_t)r->cfg.ref_min_nights) {
            free(acc);
            char note[160];
            snprintf(note, sizeof note, "%zu accepted night(s) before %s, the reference needs %d",
                     na, r->night, r->cfg.ref_min_nights);
            ns_stage_skip(rec, note);
            return NS_OK;
        }
        size_t first = na > (size_t)r->cfg.ref_last ? na - (size_t)r->cfg.ref_last : 0;
        for (size_t i = first; i < na; i++)
            used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%s", i > first ? "," : "",
                                     acc[i]);
        free(acc);
    }
    char *name = malloc(strlen(spec) + 8);
    if (!name)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    snprintf(name, strlen(spec) + 8, "nights:%s", spec);
    const char *one[] = {spec};
    ns_nightly_strings_sha(one, 1, hex);
    st = ns_stage_add(&rec->inputs, &rec->n_inputs, name, hex);
    free(name);
    if (st != NS_OK || (st = model_input(r, rec)) != NS_OK)
        return st;
    snprintf(cap, sizeof cap, "%" PRIu64, r->cfg.ref_frame_cap);
    snprintf(seed, sizeof seed, "%" PRIu64, r->cfg.ref_seed);
    const char *kv[] = {cap, seed};
    if ((st = ns_stage_options(rec, kv, 2)) != NS_OK)
        return st;
    /* Content-addressed: nights that share a reference period share the file. */
    memcpy(hex, rec->key, sizeof hex);
    snprintf(r->ref_path, sizeof r->ref_path, "%.4000s/references/ref-%.16s.h5", r->runs, hex);
    return NS_OK;
}

static ns_status reference_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    struct stat sb;
    if (stat(r->ref_path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        rec->note = strdup("reused the reference of an earlier night");
        return NS_OK;
    }
    ns_status st = ns_stage_command(r, &a, "references", "reference", "build", "--store",
                                    r->cfg.store, NULL);
    if (st != NS_OK)
        return st;
    ns_argv_add(&a, "--nights");
    ns_argv_add(&a, "%s", rec->inputs[0].name + 7); /* "nights:<spec>" */
    ns_argv_add(&a, "--model");
    ns_argv_add(&a, "%s", r->cfg.model);
    ns_argv_add(&a, "--frame-cap");
    ns_argv_add(&a, "%" PRIu64, r->cfg.ref_frame_cap);
    ns_argv_add(&a, "--seed");
    ns_argv_add(&a, "%" PRIu64, r->cfg.ref_seed);
    ns_argv_add(&a, "--device");
    ns_argv_add(&a, "%s", r->cfg.device);
    ns_argv_add(&a, "--out");
    ns_argv_add(&a, "%s", r->ref_path);
    return ns_nightly_spawn(r, "reference", a.v, &rc);
}

static ns_status reference_measure(ns_night_run *r, ns_stage_record *rec)
{
    const char *rel = r->ref_path + strlen(r->runs) + 1;
    rec->count = 1;
    snprintf(rec->unit, sizeof rec->unit, "file");
    return ns_stage_output(r, rec, rel);
}

/* ---- detect ------------------------------------------------------------------ */

static ns_status detect_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char a[40], fa[40], p[32], mc[32], tf[32], sd[32];
    ns_status st;
    snprintf(r->detect_dir, sizeof r->detect_dir, "%.4000s/detect/%s", r->runs, r->night);
    const char *why = NULL;
    if (!r->ref_path[0])
        why = "no reference yet";
    else if (r->have[NS_STAGE_REFERENCE] && r->cur[NS_STAGE_REFERENCE].n_inputs &&
             night_in(r->cur[NS_STAGE_REFERENCE].inputs[0].name + 7, r->night))
        why = "tonight is part of the reference period";
    if (why) {
        ns_stage_skip(rec, why);
        return NS_OK;
    }
    if ((st = ns_stage_add(&rec->inputs, &rec->n_inputs, "reference",
                           ns_stage_upstream(r, NS_STAGE_REFERENCE))) != NS_OK ||
        (st = ns_stage_add(&rec->inputs, &rec->n_inputs, "embeddings",
                           ns_stage_upstream(r, NS_STAGE_EMBED))) != NS_OK)
        return st;
    fmt_g(a, sizeof a, r->cfg.alpha);
    fmt_g(fa, sizeof fa, r->cfg.frame_alpha);
    snprintf(p, sizeof p, "%d", r->cfg.perms);
    snprintf(mc, sizeof mc, "%d", r->cfg.min_clips);
    snprintf(tf, sizeof tf, "%d", r->cfg.test_frames);
    snprintf(sd, sizeof sd, "%" PRIu64, r->cfg.detect_seed);
    const char *kv[] = {r->night, a, fa, p, mc, tf, sd};
    return ns_stage_options(rec, kv, 7);
}

static ns_status detect_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_status st = ns_stage_command(r, &a, "detect", "detect", "--store", r->cfg.store, "--night",
                                    r->night, NULL);
    if (st != NS_OK)
        return st;
    ns_argv_add(&a, "--reference");
    ns_argv_add(&a, "%s", r->ref_path);
    ns_argv_add(&a, "--out");
    ns_argv_add(&a, "%s", r->detect_dir);
    ns_argv_add(&a, "--alpha");
    ns_argv_add(&a, "%.17g", r->cfg.alpha);
    ns_argv_add(&a, "--frame-alpha");
    ns_argv_add(&a, "%.17g", r->cfg.frame_alpha);
    ns_argv_add(&a, "--perms");
    ns_argv_add(&a, "%d", r->cfg.perms);
    ns_argv_add(&a, "--min-clips");
    ns_argv_add(&a, "%d", r->cfg.min_clips);
    ns_argv_add(&a, "--test-frames");
    ns_argv_add(&a, "%d", r->cfg.test_frames);
    ns_argv_add(&a, "--seed");
    ns_argv_add(&a, "%" PRIu64, r->cfg.detect_seed);
    ns_argv_add(&a, "--device");
    ns_argv_add(&a, "%s", r->cfg.device);
    st = ns_nightly_spawn(r, "detect", a.v, &rc);
    /* INSUFFICIENT (exit 4): a thin night, reported in full; the stage is done. */
    return rc == NS_EXIT_INSUFFICIENT ? NS_OK : st;
}

static ns_status detect_measure(ns_night_run *r, ns_stage_record *rec)
{
    static const char *const files[] = {"summary.json", "detect.h5", "report.html"};
    char rel[96], path[2 * PATH_MAX];
    ns_status st;
    for (size_t i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "detect/%s/%s", r->night, files[i]);
        if ((st = ns_stage_output(r, rec, rel)) != NS_OK)
            return st;
    }
    snprintf(path, sizeof path, "%s/detect/%s/summary.json", r->runs, r->night);
    if ((st = ns_detect_brief_read(path, &r->det)) != NS_OK)
        return st;
    r->have_det = 1;
    rec->count = r->det.frames;
    snprintf(rec->unit, sizeof rec->unit, "frames");
    snprintf(rec->verdict, sizeof rec->verdict, "%s", r->det.verdict);
    return NS_OK;
}

static const ns_stage_def ingest_def = {"ingest", ingest_prepare, ingest_execute, ingest_measure};
static const ns_stage_def embed_def = {"embed", embed_prepare, embed_execute, embed_measure};
static const ns_stage_def reference_def = {"reference", reference_prepare, reference_execute,
                                           reference_measure};
static const ns_stage_def detect_def = {"detect", detect_prepare, detect_execute, detect_measure};

const ns_stage_def *const ns_stages[NS_STAGE_COUNT] = {
    &ingest_def, &embed_def, &reference_def, &detect_def, &ns_stage_select_def,
    &ns_stage_dataset_def, &ns_stage_train_def, &ns_stage_gate_def,
};
