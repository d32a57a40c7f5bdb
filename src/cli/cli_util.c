#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/fsutil.h"

int ns_exit_code(ns_status st)
{
    switch (st) {
    case NS_OK: return NS_EXIT_OK;
    case NS_ERR_USAGE: return NS_EXIT_USAGE;
    case NS_ERR_BUSY: return NS_EXIT_BUSY;
    case NS_ERR_INTERRUPTED: return NS_EXIT_INTERRUPTED;
    default: return NS_EXIT_FAILURE;
    }
}

int ns_cli_fail(const char *cmd, ns_status st)
{
    fprintf(stderr, "nightshift %s: %s\n", cmd, ns_errmsg()[0] ? ns_errmsg() : ns_strerror(st));
    return ns_exit_code(st);
}

const char *ns_cli_store(const char *opt)
{
    static int warned;
    const char *env = getenv("NIGHTSHIFT_STORE");
    const char *dir = opt && *opt ? opt : env && *env ? env : NULL;
    char why[PATH_MAX + 160];
    /* A warning, not a refusal: a team store shared through a group is
     * normal, and a cron job must not stop over a mode bit. */
    if (dir && !warned && ns_dir_untrusted(dir, why, sizeof why)) {
        warned = 1;
        fprintf(stderr, "nightshift: warning: store %s\n", why);
    }
    return dir;
}

int ns_cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

int ns_cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return 0;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30, end++;
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end != '\0' || (v && mul > UINT64_MAX / v))
        return 0;
    *out = (uint64_t)v * mul;
    return 1;
}

void ns_cli_progress_init(ns_cli_progress *p, int enabled)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->enabled = enabled;
    p->interval = p->tty ? 0.25 : 5.0;
    p->last = p->tty ? -1e9 : 0; /* logs: first line after one interval */
}

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

void ns_cli_progress_show(ns_cli_progress *p, const char *what, size_t done, size_t total,
                          uint64_t frames, double elapsed, double frac, int force)
{
    ns_cli_progress_show_units(p, what, "clips", done, total, frames, elapsed, frac, force);
}

void ns_cli_progress_show_units(ns_cli_progress *p, const char *what, const char *units,
                                size_t done, size_t total, uint64_t frames, double elapsed,
                                double frac, int force)
{
    char eta[32];
    if (!p->enabled || (!force && elapsed - p->last < p->interval))
        return;
    p->last = elapsed;
    double rate = elapsed > 0 ? (double)frames / elapsed : 0;
    fmt_eta(frac > 0.001 ? elapsed * (1 - frac) / frac : -1, eta, sizeof eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s: %zu/%zu %s, %" PRIu64 " frames, %.0f frames/s, ETA %s",
                what, done, total, units, frames, rate, eta);
        p->line_open = 1;
    } else {
        fprintf(stderr, "%s: %zu/%zu %s, %" PRIu64 " frames, %.0f frames/s, %.0f s elapsed, ETA %s\n",
                what, done, total, units, frames, rate, elapsed, eta);
    }
    fflush(stderr);
}

void ns_cli_progress_clear(ns_cli_progress *p)
{
    if (p->line_open) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->line_open = 0;
    }
}

static int env_int(const char *name, long lo, long *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return 0;
    errno = 0;
    *out = strtol(v, &end, 10);
    return !errno && !*end && *out >= lo;
}

int ns_cli_parse_task(const char *s, int *index, int *count)
{
    long i, n, lo = 0;
    char *end;
    if (strcmp(s, "slurm") == 0) {
        if (!env_int("SLURM_ARRAY_TASK_ID", 0, &i) || !env_int("SLURM_ARRAY_TASK_COUNT", 1, &n))
            return 0;
        if (!env_int("SLURM_ARRAY_TASK_MIN", 0, &lo))
            lo = 0;
        i -= lo;
    } else {
        errno = 0;
        i = strtol(s, &end, 10);
        if (errno || end == s || *end != '/')
            return 0;
        s = end + 1;
        n = strtol(s, &end, 10);
        if (errno || end == s || *end)
            return 0;
    }
    if (n < 1 || n > 100000 || i < 0 || i >= n)
        return 0;
    *index = (int)i;
    *count = (int)n;
    return 1;
}
