/* killshim.c -- an LD_PRELOAD library that stops the process with SIGKILL
 * right before or right after the Nth call of one of the calls where a crash
 * hurts most: rename/renameat/renameat2 (the commit points), fsync/fdatasync
 * (durability) and H5Fclose (HDF5 writes its metadata there).  The torture
 * kill suites (tests/torture/torture_kill_*.sh) stop a command at every one.
 *
 * Environment:
 *   NS_KILL_OP=rename,fsync,H5Fclose   which calls count (a comma list, or
 *                                      "all", the default); renameat and
 *                                      renameat2 count as rename, fdatasync
 *                                      as fsync
 *   NS_KILL_N=k                        kill at the kth counted call (1-based);
 *                                      unset or 0: count only, never kill
 *   NS_KILL_AT=before|after            before the real call, or after it
 *                                      returned [before]
 *   NS_KILL_COUNTER=FILE               count across processes (nightly runs
 *                                      its stages as children): the count
 *                                      lives in FILE, taken under flock;
 *                                      without it each process counts alone
 *   NS_KILL_LOG=FILE                   count mode: append "N op pid" per call
 *   NS_KILL_GROUP=1                    kill the whole process group (a
 *                                      nightly with its stage), not only the
 *                                      calling process
 *
 *   NS_KILL_SIG=STOP                   stop (SIGSTOP) instead of dying: the
 *                                      call goes ahead once SIGCONT comes, so
 *                                      a command can be held mid-commit while
 *                                      another runs (torture_concurrency.sh)
 *   NS_KILL_PIDFILE=FILE               with STOP: the stopped pid is written
 *                                      there first
 *
 * Separate from faultshim.c (which makes calls fail): this one never changes
 * what a call does, it only decides when the process dies.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

typedef int64_t hid_t; /* HDF5 1.10+: hid_t is int64_t; herr_t is int */

enum { OP_RENAME = 1, OP_FSYNC = 2, OP_H5FCLOSE = 4 };

static int ops_mask(void)
{
    const char *s = getenv("NS_KILL_OP");
    if (!s || !*s || strcmp(s, "all") == 0)
        return OP_RENAME | OP_FSYNC | OP_H5FCLOSE;
    int m = 0;
    if (strstr(s, "rename"))
        m |= OP_RENAME;
    if (strstr(s, "fsync"))
        m |= OP_FSYNC;
    if (strstr(s, "H5Fclose"))
        m |= OP_H5FCLOSE;
    return m;
}

static long g_local; /* the count when no NS_KILL_COUNTER is given */

/* The number of this call (1-based), shared across processes when asked. */
static long next_count(void)
{
    const char *path = getenv("NS_KILL_COUNTER");
    if (!path || !*path)
        return __atomic_add_fetch(&g_local, 1, __ATOMIC_SEQ_CST);
    int saved = errno;
    long n = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        errno = saved;
        return __atomic_add_fetch(&g_local, 1, __ATOMIC_SEQ_CST);
    }
    flock(fd, LOCK_EX);
    char buf[32] = {0};
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    if (r > 0)
        n = strtol(buf, NULL, 10);
    n++;
    int len = snprintf(buf, sizeof buf, "%ld\n", n);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        n = -n; /* a lost count: never matches k, shows in the log */
    flock(fd, LOCK_UN);
    close(fd);
    errno = saved;
    return n;
}

static void die(void)
{
    const char *g = getenv("NS_KILL_GROUP");
    const char *sig = getenv("NS_KILL_SIG");
    if (sig && strcmp(sig, "STOP") == 0) {
        int saved = errno;
        const char *pf = getenv("NS_KILL_PIDFILE");
        int fd = pf && *pf ? open(pf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        if (fd >= 0) {
            char line[32];
            int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
            if (write(fd, line, (size_t)len) != len) {
                /* the test then times out waiting for the pid, and says so */
            }
            close(fd);
        }
        kill(getpid(), SIGSTOP);
        errno = saved;
        return; /* resumed: the call goes ahead */
    }
    if (g && *g == '1')
        kill(0, SIGKILL);
    kill(getpid(), SIGKILL);
    _exit(137); /* not reached */
}

/* Called around each interposed call: returns nonzero when the process must
 * die after the real call (it has already died when the kill is "before"). */
static int check(int op, const char *name)
{
    if (!(ops_mask() & op))
        return 0;
    long n = next_count();
    const char *ks = getenv("NS_KILL_N");
    long k = ks ? strtol(ks, NULL, 10) : 0;
    if (k <= 0) {
        const char *log = getenv("NS_KILL_LOG");
        if (log && *log) {
            int saved = errno;
            int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0) {
                char line[96];
                int len = snprintf(line, sizeof line, "%ld %s %ld\n", n, name, (long)getpid());
                if (write(fd, line, (size_t)len) != len) {
                    /* a lost count line shows as a short count; nothing to do here */
                }
                close(fd);
            }
            errno = saved;
        }
        return 0;
    }
    if (n != k)
        return 0;
    const char *at = getenv("NS_KILL_AT");
    if (at && strcmp(at, "after") == 0)
        return 1;
    die();
    return 0;
}

#define REAL(type, name, args)                                                                   \
    static type(*real) args;                                                                     \
    if (!real)                                                                                   \
        *(void **)&real = dlsym(RTLD_NEXT, name);                                                \
    if (!real) {                                                                                 \
        errno = ENOSYS;                                                                          \
        return -1;                                                                               \
    }

int rename(const char *from, const char *to)
{
    REAL(int, "rename", (const char *, const char *));
    int after = check(OP_RENAME, "rename");
    int rc = real(from, to);
    if (after)
        die();
    return rc;
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
    REAL(int, "renameat", (int, const char *, int, const char *));
    int after = check(OP_RENAME, "renameat");
    int rc = real(fd1, from, fd2, to);
    if (after)
        die();
    return rc;
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
    REAL(int, "renameat2", (int, const char *, int, const char *, unsigned int));
    int after = check(OP_RENAME, "renameat2");
    int rc = real(fd1, from, fd2, to, flags);
    if (after)
        die();
    return rc;
}

int fsync(int fd)
{
    REAL(int, "fsync", (int));
    int after = check(OP_FSYNC, "fsync");
    int rc = real(fd);
    if (after)
        die();
    return rc;
}

int fdatasync(int fd)
{
    REAL(int, "fdatasync", (int));
    int after = check(OP_FSYNC, "fdatasync");
    int rc = real(fd);
    if (after)
        die();
    return rc;
}

int H5Fclose(hid_t id)
{
    REAL(int, "H5Fclose", (hid_t));
    int after = check(OP_H5FCLOSE, "H5Fclose");
    int rc = real(id);
    if (after)
        die();
    return rc;
}
