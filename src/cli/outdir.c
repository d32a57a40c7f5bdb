/* outdir.c -- an output directory that appears whole: files are written
 * into DIR.tmp.<pid>, which then replaces DIR, so a reader sees the old
 * complete set or the new one.  A marker file names the command and the
 * files it wrote: only a directory it describes (or an empty one) is ever
 * replaced, so --out can never delete a store or a user's own files. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/fsutil.h"
#include "nightshift/reference.h"
#include "nightshift/strbuf.h"

#define MARKER ".nightshift-output"

void ns_cli_remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int is_store_dir(const char *dir)
{
    char p[PATH_MAX];
    struct stat sb;
    if (snprintf(p, sizeof p, "%s/catalog.h5", dir) < (int)sizeof p && stat(p, &sb) == 0)
        return 1;
    return snprintf(p, sizeof p, "%s/shards", dir) < (int)sizeof p && stat(p, &sb) == 0 &&
           S_ISDIR(sb.st_mode) &&
           snprintf(p, sizeof p, "%s/lock", dir) < (int)sizeof p && stat(p, &sb) == 0;
}

ns_status ns_cli_check_outside_store(const char *path)
{
    char cur[PATH_MAX], abs[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return ns_error(NS_ERR_USAGE, "--out path too long");
    /* The deepest part of the path that exists, resolved: the output may
     * not exist yet, its parents may not either. */
    while (!realpath(cur, abs)) {
        char *slash = strrchr(cur, '/');
        if (errno != ENOENT && errno != ENOTDIR)
            return ns_error(NS_ERR_IO, "cannot resolve --out '%s': %s", path, strerror(errno));
        if (!slash)
            snprintf(cur, sizeof cur, ".");
        else if (slash == cur)
            cur[1] = '\0';
        else
            *slash = '\0';
    }
    char below[NAME_MAX + 1] = ""; /* the component under abs on the way to path */
    for (;;) {
        /* STORE/runs is the nightly job's run folder (docs/nightly.md): its
         * reports and references are outputs, never store data. */
        if (is_store_dir(abs) && strcmp(below, "runs") != 0)
            return ns_error(NS_ERR_USAGE,
                            "--out '%s' is inside the store '%s': outputs go outside it "
                            "(or under its runs/ folder)", path, abs);
        if (is_store_dir(abs))
            return NS_OK;
        char *slash = strrchr(abs, '/');
        if (!slash || slash == abs)
            break;
        snprintf(below, sizeof below, "%s", slash + 1);
        *slash = '\0';
    }
    return is_store_dir("/") ? ns_error(NS_ERR_USAGE, "--out '%s' is inside a store", path)
                             : NS_OK;
}

static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* Legacy outputs (before the marker) held only our report files. */
static int legacy_name(const char *name)
{
    static const char *ext[] = {".h5", ".csv", ".json", ".html", ".png", ".svg"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
        if (strcmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

/* NS_OK when DIR may be replaced by CMD's output: missing, empty, or a
 * directory of plain files that CMD wrote. */
static ns_status check_replaceable(const char *dir, const char *cmd)
{
    char p[PATH_MAX], list[16384], want[64];
    struct stat sb;
    struct dirent *e;
    DIR *d;
    FILE *f;
    size_t n = 0;
    int entries = 0, ours = 0, legacy = 0;
    ns_status st = NS_OK;
    if (lstat(dir, &sb) != 0)
        return errno == ENOENT ? NS_OK
                               : ns_error(NS_ERR_IO, "cannot stat --out '%s': %s", dir,
                                          strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ns_error(NS_ERR_USAGE, "--out '%s' exists and is not a directory", dir);
    snprintf(want, sizeof want, "nightshift %s\n", cmd);
    list[0] = '\0';
    if (snprintf(p, sizeof p, "%s/" MARKER, dir) < (int)sizeof p && (f = fopen(p, "r"))) {
        n = fread(list, 1, sizeof list - 1, f);
        list[n] = '\0';
        fclose(f);
        if (strncmp(list, want, strlen(want)) != 0) {
            char *nl = strchr(list, '\n');
            if (nl)
                *nl = '\0';
            return ns_error(NS_ERR_USAGE,
                            "--out '%s' holds the output of another command ('%.40s'), not "
                            "of %s: choose another directory",
                            dir, strncmp(list, "nightshift ", 11) ? "?" : list + 11, cmd);
        }
        ours = 1;
    }
    if (!(d = opendir(dir)))
        return ns_error(NS_ERR_IO, "cannot read --out '%s': %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL && st == NS_OK) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, MARKER))
            continue;
        entries++;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p ||
            lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            (ours ? !listed(list, e->d_name) : !legacy_name(e->d_name)))
            st = ns_error(NS_ERR_USAGE,
                          "--out '%s' holds '%s', which %s did not write: refusing to replace "
                          "it (move it away or choose another directory)",
                          dir, e->d_name, cmd);
        else if (!ours && (!strcmp(e->d_name, "report.html") || !strcmp(e->d_name, "detect.h5")))
            legacy = 1;
    }
    closedir(d);
    if (st == NS_OK && entries && !ours && !legacy)
        st = ns_error(NS_ERR_USAGE,
                      "--out '%s' is not empty and is not a %s output: refusing to replace it",
                      dir, cmd);
    return st;
}

/* After a kill: DIR.old.<pid> of a dead run is the last complete output
 * when DIR itself is missing (the two-rename fallback's window); every
 * other leftover of a dead run is removed. */
static void recover(const char *dir)
{
    char parent[PATH_MAX], p[PATH_MAX];
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    size_t blen = strlen(base);
    struct stat sb;
    struct dirent *e;
    DIR *d;
    long pid;
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else
        snprintf(parent, sizeof parent, "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
    if (!(d = opendir(parent)))
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, blen) != 0 ||
            (strncmp(e->d_name + blen, ".tmp.", 5) && strncmp(e->d_name + blen, ".old.", 5)) ||
            !ns_is_tmp_name(e->d_name, &pid) || ns_pid_alive(pid))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", parent, e->d_name) >= (int)sizeof p)
            continue;
        if (!strncmp(e->d_name + blen, ".old.", 5) && stat(dir, &sb) != 0 && errno == ENOENT &&
            rename(p, dir) == 0) {
            ns_fsync_parent(dir);
            continue;
        }
        ns_cli_remove_flat_dir(p);
    }
    closedir(d);
}

ns_status ns_cli_outdir_check(const char *out, const char *cmd)
{
    ns_status st = ns_cli_check_outside_store(out);
    if (st != NS_OK)
        return st;
    recover(out);
    return check_replaceable(out, cmd);
}

ns_status ns_cli_check_ref_out(const char *out)
{
    struct stat sb;
    ns_reference old;
    ns_status st = ns_cli_check_outside_store(out);
    if (st != NS_OK)
        return st;
    ns_tmp_sweep(out);
    if (stat(out, &sb) != 0)
        return NS_OK;
    if (!S_ISREG(sb.st_mode))
        return ns_error(NS_ERR_USAGE, "--out '%s' exists and is not a file", out);
    memset(&old, 0, sizeof old);
    st = ns_reference_load(out, &old);
    ns_reference_release(&old);
    if (st != NS_OK)
        return ns_error_wrap(NS_ERR_USAGE,
                             "--out '%s' exists and is not a reference we can replace", out);
    return NS_OK;
}

ns_status ns_cli_outdir_begin(ns_cli_outdir *o, const char *out, const char *cmd)
{
    size_t len = strlen(out);
    ns_status st;
    memset(o, 0, sizeof *o);
    while (len > 1 && out[len - 1] == '/')
        len--;
    if (len == 0)
        return ns_error(NS_ERR_USAGE, "--out is empty");
    if (len + 32 >= sizeof o->dir)
        return ns_error(NS_ERR_USAGE, "--out path too long");
    memcpy(o->dir, out, len);
    o->dir[len] = '\0';
    snprintf(o->cmd, sizeof o->cmd, "%s", cmd);
    if ((st = ns_cli_check_outside_store(o->dir)) != NS_OK)
        return st;
    recover(o->dir);
    if ((st = check_replaceable(o->dir, cmd)) != NS_OK)
        return st;
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", o->dir, (long)getpid());
    ns_cli_remove_flat_dir(o->tmp);
    st = ns_mkdir_p(o->tmp);
    if (st != NS_OK)
        o->tmp[0] = '\0';
    return st;
}

/* The marker lists what was written, so a later run knows it may replace
 * exactly these files. */
static ns_status write_marker(const ns_cli_outdir *o)
{
    char p[PATH_MAX + 64];
    ns_strbuf b = {0};
    struct dirent *e;
    DIR *d = opendir(o->tmp);
    ns_status st;
    if (!d)
        return ns_error(NS_ERR_IO, "cannot read '%s': %s", o->tmp, strerror(errno));
    ns_strbuf_printf(&b, "nightshift %s\n", o->cmd);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && !strchr(e->d_name, '\n'))
            ns_strbuf_printf(&b, "%s\n", e->d_name);
    closedir(d);
    snprintf(p, sizeof p, "%s/" MARKER, o->tmp);
    st = ns_strbuf_status(&b);
    if (st == NS_OK)
        st = ns_write_file(p, b.data, b.len, NS_WRITE_DURABLE);
    ns_strbuf_release(&b);
    return st;
}

ns_status ns_cli_outdir_commit(ns_cli_outdir *o)
{
    struct stat sb;
    char old[PATH_MAX + 40];
    ns_status st = write_marker(o);
    if (st == NS_OK)
        st = ns_fsync_dir(o->tmp);
    if (st == NS_OK)
        st = check_replaceable(o->dir, o->cmd);
    if (st != NS_OK)
        return st;
    snprintf(old, sizeof old, "%s.old.%ld", o->dir, (long)getpid());
    if (stat(o->dir, &sb) == 0) {
        /* One exchange: OUT is never missing, not even for an instant.
         * The old set then sits under the temp name, removed below or,
         * after a kill, by the next run. */
        if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->dir, RENAME_EXCHANGE) == 0) {
            ns_fsync_parent(o->dir);
            ns_cli_remove_flat_dir(o->tmp);
            o->tmp[0] = '\0';
            return NS_OK;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
            return ns_error(NS_ERR_IO, "cannot swap '%s' into '%s': %s", o->tmp, o->dir,
                            strerror(errno));
        /* No exchange on this file system: two renames, and the next run
         * restores DIR.old.<pid> if we die between them. */
        if (rename(o->dir, old) != 0)
            return ns_error(NS_ERR_IO, "cannot move the old '%s' aside: %s", o->dir,
                            strerror(errno));
    }
    if (rename(o->tmp, o->dir) != 0) {
        st = ns_error(NS_ERR_IO, "cannot rename '%s' to '%s': %s", o->tmp, o->dir,
                      strerror(errno));
        rename(old, o->dir);
        return st;
    }
    o->tmp[0] = '\0';
    ns_fsync_parent(o->dir);
    ns_cli_remove_flat_dir(old);
    return NS_OK;
}

void ns_cli_outdir_abort(ns_cli_outdir *o)
{
    if (o->tmp[0])
        ns_cli_remove_flat_dir(o->tmp);
    o->tmp[0] = '\0';
}
