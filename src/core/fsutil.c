#include "nightshift/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

ns_status ns_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    struct stat st;
    if (len == 0 || len >= sizeof buf)
        return ns_error(NS_ERR_USAGE, "cannot create directory '%s': bad path length", path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Walk forward creating each component; EEXIST is checked with stat
     * so a file in the way is reported rather than silently accepted. */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0) {
            int err = errno;
            if (err != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                ns_status code = ns_error(NS_ERR_IO, "cannot create directory '%s': %s", buf,
                                          err == EEXIST ? "not a directory" : strerror(err));
                return code;
            }
        }
        buf[i] = saved;
    }
    return NS_OK;
}

static ns_status fsync_open(const char *path, int flags, const char *what)
{
    ns_status st = NS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0)
        return ns_error(NS_ERR_IO, "cannot open %s '%s' to sync it: %s", what, path,
                        strerror(errno));
    /* Some filesystems refuse fsync on directories (EINVAL); the data is as
     * durable as they can make it, so that is not an error. */
    if (fsync(fd) != 0 && errno != EINVAL)
        st = ns_error(NS_ERR_IO, "cannot fsync '%s': %s", path, strerror(errno));
    close(fd);
    return st;
}

ns_status ns_fsync_path(const char *path) { return fsync_open(path, 0, "file"); }

ns_status ns_fsync_dir(const char *dir) { return fsync_open(dir, O_DIRECTORY, "directory"); }

/* Copies the directory part of path into buf ("." when none). */
static void dir_of(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, cap, ".");
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/x" -> "/" */
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, path, n);
    buf[n] = '\0';
}

ns_status ns_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    return ns_fsync_dir(dir);
}

ns_status ns_atomic_rename(const char *from, const char *to)
{
    char dfrom[PATH_MAX], dto[PATH_MAX];
    ns_status st;
    if (rename(from, to) != 0)
        return ns_error(NS_ERR_IO, "cannot rename '%s' to '%s': %s", from, to, strerror(errno));
    dir_of(from, dfrom, sizeof dfrom);
    dir_of(to, dto, sizeof dto);
    st = ns_fsync_dir(dto);
    if (st == NS_OK && strcmp(dfrom, dto) != 0)
        st = ns_fsync_dir(dfrom);
    return st;
}

ns_status ns_tmp_name(const char *path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= cap)
        return ns_error(NS_ERR_USAGE, "path too long: '%s'", path);
    /* Every writer asks for its temp name right before writing: the moment
     * to drop what a killed writer of the same file left (train's head,
     * dataset build's file, export's tar kept them forever). */
    ns_tmp_sweep(path);
    /* Created here, exclusively and never through a link: a symlink planted
     * under the temp name would otherwise have HDF5, fopen or libarchive
     * truncate whatever it points at.  0666 leaves the mode to the umask. */
    for (int tries = 0;; tries++) {
        int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return NS_OK;
        }
        /* Our own earlier try, or something planted: unlink removes a link,
         * never its target, and the retry is exclusive again. */
        if (errno != EEXIST || tries > 0 || unlink(buf) != 0) {
            ns_status st = ns_error(NS_ERR_IO, "cannot create temp file '%s': %s", buf,
                                    strerror(errno));
            buf[0] = '\0'; /* nothing of ours to remove */
            return st;
        }
    }
}

int ns_dir_untrusted(const char *dir, char *why, size_t cap)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return 0;
    if (sb.st_uid != geteuid()) {
        snprintf(why, cap, "'%s' is owned by another user (uid %ld, you are %ld): its owner can "
                 "change what you read and write there", dir, (long)sb.st_uid, (long)geteuid());
        return 1;
    }
    if (sb.st_mode & S_IWOTH) {
        snprintf(why, cap, "'%s' is writable by every user (mode %04o): anyone can replace "
                 "its files; chmod o-w it", dir, (unsigned)(sb.st_mode & 07777));
        return 1;
    }
    return 0;
}

int ns_is_tmp_name(const char *name, long *pid)
{
    const char *p = strrchr(name, '.');
    if (!p || p[1] == '\0' || p - name < 4)
        return 0;
    for (const char *q = p + 1; *q; q++)
        if (*q < '0' || *q > '9')
            return 0;
    if (strncmp(p - 4, ".tmp", 4) != 0 && strncmp(p - 4, ".old", 4) != 0)
        return 0;
    if (pid)
        *pid = strtol(p + 1, NULL, 10);
    return 1;
}

int ns_pid_alive(long pid)
{
    if (pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

void ns_tmp_sweep(const char *path)
{
    char dir[PATH_MAX], p[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    struct dirent *e;
    DIR *d;
    long pid;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir)
        return;
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (!(d = opendir(dir)))
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(e->d_name + blen, ".tmp.", 5) != 0 ||
            !ns_is_tmp_name(e->d_name, &pid) || ns_pid_alive(pid))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
            unlink(p);
    }
    closedir(d);
}

ns_status ns_write_file_atomic(const char *path, const void *data, size_t len)
{
    return ns_write_file(path, data, len, NS_WRITE_DURABLE);
}

ns_status ns_write_file(const char *path, const void *data, size_t len, unsigned flags)
{
    char tmp[PATH_MAX];
    const char *p = data;
    int fd = -1;
    ns_status st = ns_tmp_name(path, tmp, sizeof tmp);
    if (st != NS_OK)
        return st;
    fd = open(tmp, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        st = ns_error(NS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            st = ns_error(NS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
            goto done;
        }
        p += w;
        len -= (size_t)w;
    }
    if ((flags & NS_WRITE_DURABLE) && fsync(fd) != 0) {
        st = ns_error(NS_ERR_IO, "cannot fsync '%s': %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = ns_error(NS_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (flags & NS_WRITE_DURABLE)
        st = ns_atomic_rename(tmp, path);
    else if (rename(tmp, path) != 0)
        st = ns_error(NS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (st != NS_OK)
        unlink(tmp); /* harmless when the rename already happened: ENOENT */
    return st;
}

/* `nightshift nightly` holds the store's lock for the whole night and runs
 * each stage as a child process; the child must not wait for its own parent.
 * The parent names the descriptor in NIGHTSHIFT_LOCK_FD: when it is the same
 * file as fd, the child takes a duplicate, which shares the parent's lock
 * (flock locks belong to the open file description), and lets fd go.  Any
 * other file takes the lock the ordinary way. */
static int inherited_lock(int fd, int *fd_out)
{
    const char *env = getenv("NIGHTSHIFT_LOCK_FD");
    struct stat a, b;
    char *end;
    if (!env || !*env)
        return 0;
    long held = strtol(env, &end, 10);
    if (*end || held < 0 || held > 1 << 20 || fstat((int)held, &a) != 0 || fstat(fd, &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    int dup_fd = fcntl((int)held, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0 || flock(dup_fd, LOCK_EX | LOCK_NB) != 0) {
        if (dup_fd >= 0)
            close(dup_fd);
        return 0;
    }
    close(fd);
    *fd_out = dup_fd;
    return 1;
}

ns_status ns_flock_take(const char *path, int wait, const char *what, int *fd_out)
{
    char pidbuf[32];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    *fd_out = -1;
    if (fd < 0)
        return ns_error(NS_ERR_IO, "cannot open lock file '%s': %s", path, strerror(errno));
    if (inherited_lock(fd, fd_out))
        return NS_OK;
    while (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        ns_status st;
        if (errno == EWOULDBLOCK) {
            ssize_t r = pread(fd, pidbuf, sizeof pidbuf - 1, 0);
            pidbuf[r > 0 ? r : 0] = '\0';
            st = ns_error(NS_ERR_BUSY, "%s is locked by another writer (pid %ld)", what,
                          strtol(pidbuf, NULL, 10));
        } else {
            st = ns_error(NS_ERR_IO, "cannot lock '%s': %s", path, strerror(errno));
        }
        close(fd);
        return st;
    }
    /* The pid is only for the message another taker shows; best effort. */
    int n = snprintf(pidbuf, sizeof pidbuf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pidbuf, (size_t)n, 0) != n) {
        close(fd);
        return ns_error(NS_ERR_IO, "cannot write lock file '%s': %s", path, strerror(errno));
    }
    *fd_out = fd;
    return NS_OK;
}
