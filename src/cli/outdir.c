/* outdir.c -- an output directory that appears whole: files are written
 * into DIR.tmp.<pid>, which then replaces DIR (the old one moved aside and
 * removed after), so a reader sees the old complete set or the new one. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nightshift/fsutil.h"

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

ns_status ns_cli_outdir_begin(ns_cli_outdir *o, const char *out)
{
    size_t len = strlen(out);
    memset(o, 0, sizeof *o);
    while (len > 1 && out[len - 1] == '/')
        len--;
    if (len + 32 >= sizeof o->dir)
        return ns_error(NS_ERR_USAGE, "--out path too long");
    memcpy(o->dir, out, len);
    o->dir[len] = '\0';
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", o->dir, (long)getpid());
    ns_cli_remove_flat_dir(o->tmp);
    return ns_mkdir_p(o->tmp);
}

ns_status ns_cli_outdir_commit(ns_cli_outdir *o)
{
    struct stat sb;
    char old[PATH_MAX + 40];
    ns_status st = ns_fsync_dir(o->tmp);
    if (st != NS_OK)
        return st;
    snprintf(old, sizeof old, "%s.old.%ld", o->dir, (long)getpid());
    if (stat(o->dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return ns_error(NS_ERR_USAGE, "--out '%s' exists and is not a directory", o->dir);
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
