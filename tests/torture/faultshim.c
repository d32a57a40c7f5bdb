/* faultshim.c -- an LD_PRELOAD shim that makes the Nth call of one system
 * operation fail, for the fault-injection loop (tests/torture/torture_faults.sh).
 *
 * Environment (read once, when the shim is loaded):
 *   NS_FAULT_OP     write|pwrite|fsync|rename|open|mmap|malloc: the op to fail
 *   NS_FAULT_N      which call of it fails (1 = the first)
 *   NS_FAULT_ERRNO  EIO|ENOSPC|EDQUOT|ENOMEM|EACCES (default EIO; malloc: ENOMEM)
 *   NS_FAULT_PERSIST=1  fail call N and every later one (a disk that stays full)
 *   NS_FAULT_COUNT  FILE: at exit, append "op count" per op to FILE (the loop
 *                   runs this first to know N's range: every call site a run makes)
 *   NS_FAULT_LOG    FILE: append "op N errno CALLER" when a fault is injected,
 *                   CALLER the object (program or library) that made the call
 *   NS_FAULT_BT=1   also print the failing call's backtrace on stderr
 *
 * The ops, each counted as one: write = write, writev; pwrite = pwrite,
 * pwrite64, pwritev; fsync = fsync, fdatasync; rename = rename, renameat,
 * renameat2; open = open, open64, openat, openat64, creat, fopen, fopen64;
 * mmap = mmap, mmap64; malloc = malloc, calloc, realloc, posix_memalign,
 * aligned_alloc.  Calls are counted only once the shim's constructor has run
 * (not those of the dynamic loader and of libraries' own start-up), in every
 * thread.  Library-internal calls inside glibc (fwrite's own write) are not
 * interposed; those reach the kernel through the interposed ones only where
 * glibc calls them through the PLT.
 *
 * malloc: dlsym may itself allocate, so until the real functions are known
 * allocations come from a small static arena, and free ignores them.  Under
 * ASan the sanitizer's allocator comes first in the library list and never
 * calls ours: the malloc op is then not counted (the loop says so), the other
 * ops still are (ASan's interceptors call the next definition, ours).
 * This file is built without sanitizer flags (see CMakeLists.txt).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_WRITE, OP_PWRITE, OP_FSYNC, OP_RENAME, OP_OPEN, OP_MMAP, OP_MALLOC, OP_N };
static const char *const op_name[OP_N] = {"write", "pwrite", "fsync", "rename",
                                          "open",  "mmap",   "malloc"};

static int armed;                 /* set by the constructor */
static int fault_op = -1;
static unsigned long fault_n;
static int fault_errno = EIO, persist, want_bt;
static unsigned long calls[OP_N];
static char count_path[4096], log_path[4096];
static __thread int inside;       /* our own bookkeeping must not count */
static __thread void *caller;     /* return address of the interposed call */

/* ---- the real functions ------------------------------------------------------ */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

/* dlsym's own allocations, before real_malloc is known. */
static char boot_arena[64 * 1024] __attribute__((aligned(16)));
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t n)
{
    size_t at = (boot_used + 15) & ~(size_t)15;
    if (at + n > sizeof boot_arena)
        return NULL;
    boot_used = at + n;
    return boot_arena + at;
}

static int in_boot(const void *p)
{
    return (const char *)p >= boot_arena && (const char *)p < boot_arena + sizeof boot_arena;
}

#define RESOLVE(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)

static void resolve(void)
{
    static int done;
    if (done || resolving)
        return;
    resolving = 1;
    RESOLVE(malloc);
    RESOLVE(calloc);
    RESOLVE(realloc);
    RESOLVE(free);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(write);
    RESOLVE(writev);
    RESOLVE(pwrite);
    RESOLVE(pwrite64);
    RESOLVE(pwritev);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(rename);
    RESOLVE(renameat);
    RESOLVE(renameat2);
    RESOLVE(open);
    RESOLVE(open64);
    RESOLVE(openat);
    RESOLVE(openat64);
    RESOLVE(creat);
    RESOLVE(fopen);
    RESOLVE(fopen64);
    RESOLVE(mmap);
    RESOLVE(mmap64);
    resolving = 0;
    done = 1;
}

/* ---- the decision -------------------------------------------------------------- */

static void note_fault(int op, unsigned long n)
{
    char line[512];
    const char *who = "?";
    Dl_info info;
    int fd, len;
    if (!log_path[0])
        return;
    if (caller && dladdr(caller, &info) && info.dli_fname) {
        who = strrchr(info.dli_fname, '/');
        who = who ? who + 1 : info.dli_fname;
    }
    fd = real_open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    len = snprintf(line, sizeof line, "%s %lu %d %s\n", op_name[op], n,
                   op == OP_MALLOC ? ENOMEM : fault_errno, who);
    if (real_write(fd, line, (size_t)len) < 0) {
        /* nothing to do: the log is a diagnostic */
    }
    close(fd);
}

/* 1 when this call must fail (errno set). */
static int fault(int op)
{
    unsigned long n;
    int hit;
    if (!armed || inside)
        return 0;
    n = __atomic_add_fetch(&calls[op], 1, __ATOMIC_RELAXED);
    if (op != fault_op)
        return 0;
    hit = persist ? n >= fault_n : n == fault_n;
    if (!hit)
        return 0;
    inside = 1;
    if (n == fault_n) {
        note_fault(op, n);
        if (want_bt) {
            void *pc[32];
            backtrace_symbols_fd(pc, backtrace(pc, 32), 2);
        }
    }
    inside = 0;
    errno = op == OP_MALLOC ? ENOMEM : fault_errno;
    return 1;
}

static int errno_named(const char *s)
{
    static const struct { const char *name; int value; } t[] = {
        {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"ENOMEM", ENOMEM},
        {"EACCES", EACCES}, {"EPERM", EPERM}, {"EROFS", EROFS}, {"EINTR", EINTR}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].value;
    return atoi(s) > 0 ? atoi(s) : EIO;
}

static void copy_env(char *dst, size_t cap, const char *name)
{
    const char *v = getenv(name);
    snprintf(dst, cap, "%s", v ? v : "");
}

__attribute__((constructor)) static void shim_start(void)
{
    const char *op, *n, *e, *p;
    resolve();
    op = getenv("NS_FAULT_OP");
    n = getenv("NS_FAULT_N");
    e = getenv("NS_FAULT_ERRNO");
    p = getenv("NS_FAULT_PERSIST");
    copy_env(count_path, sizeof count_path, "NS_FAULT_COUNT");
    copy_env(log_path, sizeof log_path, "NS_FAULT_LOG");
    if (op)
        for (int i = 0; i < OP_N; i++)
            if (strcmp(op, op_name[i]) == 0)
                fault_op = i;
    fault_n = n ? strtoul(n, NULL, 10) : 0;
    if (fault_n == 0)
        fault_op = -1;
    if (e)
        fault_errno = errno_named(e);
    persist = p && strcmp(p, "1") == 0;
    want_bt = getenv("NS_FAULT_BT") != NULL;
    armed = 1;
}

__attribute__((destructor)) static void shim_end(void)
{
    char buf[512];
    int len = 0, fd;
    armed = 0;
    if (!count_path[0])
        return;
    for (int i = 0; i < OP_N; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s %lu\n", op_name[i],
                        __atomic_load_n(&calls[i], __ATOMIC_RELAXED));
    fd = real_open(count_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (real_write(fd, buf, (size_t)len) < 0) {
        /* the loop notices a missing count */
    }
    close(fd);
}

/* ---- the interposed functions ------------------------------------------------- */

#define NEED(name) do { if (!real_##name) resolve(); } while (0)

ssize_t write(int fd, const void *b, size_t n)
{
    NEED(write);
    caller = __builtin_return_address(0);
    if (fault(OP_WRITE))
        return -1;
    return real_write(fd, b, n);
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
    NEED(writev);
    caller = __builtin_return_address(0);
    if (fault(OP_WRITE))
        return -1;
    return real_writev(fd, v, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    NEED(pwrite);
    caller = __builtin_return_address(0);
    if (fault(OP_PWRITE))
        return -1;
    return real_pwrite(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
    NEED(pwrite64);
    caller = __builtin_return_address(0);
    if (fault(OP_PWRITE))
        return -1;
    return real_pwrite64(fd, b, n, off);
}

ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
    NEED(pwritev);
    caller = __builtin_return_address(0);
    if (fault(OP_PWRITE))
        return -1;
    return real_pwritev(fd, v, n, off);
}

int fsync(int fd)
{
    NEED(fsync);
    caller = __builtin_return_address(0);
    if (fault(OP_FSYNC))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    NEED(fdatasync);
    caller = __builtin_return_address(0);
    if (fault(OP_FSYNC))
        return -1;
    return real_fdatasync(fd);
}

int rename(const char *a, const char *b)
{
    NEED(rename);
    caller = __builtin_return_address(0);
    if (fault(OP_RENAME))
        return -1;
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
    NEED(renameat);
    caller = __builtin_return_address(0);
    if (fault(OP_RENAME))
        return -1;
    return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
    NEED(renameat2);
    caller = __builtin_return_address(0);
    if (fault(OP_RENAME))
        return -1;
    return real_renameat2(da, a, db, b, flags);
}

/* open's mode is there only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, mode)                                                    \
    do {                                                                          \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                    \
            va_list ap;                                                           \
            va_start(ap, flags);                                                  \
            mode = (mode_t)va_arg(ap, int);                                       \
            va_end(ap);                                                           \
        }                                                                         \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    NEED(open);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return -1;
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    NEED(open64);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return -1;
    return real_open64(path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    NEED(openat);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return -1;
    return real_openat(dir, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    NEED(openat64);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return -1;
    return real_openat64(dir, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    NEED(creat);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return -1;
    return real_creat(path, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    NEED(fopen);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return NULL;
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    NEED(fopen64);
    caller = __builtin_return_address(0);
    if (fault(OP_OPEN))
        return NULL;
    return real_fopen64(path, mode);
}

void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    NEED(mmap);
    caller = __builtin_return_address(0);
    if (fault(OP_MMAP))
        return MAP_FAILED;
    return real_mmap(a, n, prot, flags, fd, off);
}

void *mmap64(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    NEED(mmap64);
    caller = __builtin_return_address(0);
    if (fault(OP_MMAP))
        return MAP_FAILED;
    return real_mmap64(a, n, prot, flags, fd, off);
}

void *malloc(size_t n)
{
    if (!real_malloc) {
        if (resolving)
            return boot_alloc(n);
        resolve();
    }
    caller = __builtin_return_address(0);
    if (fault(OP_MALLOC))
        return NULL;
    return real_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    if (!real_calloc) {
        if (resolving) {
            void *p = n && k > SIZE_MAX / n ? NULL : boot_alloc(k * n);
            return p; /* the arena is static: already zero */
        }
        resolve();
    }
    caller = __builtin_return_address(0);
    if (fault(OP_MALLOC))
        return NULL;
    return real_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    if (!real_realloc) {
        if (resolving)
            return NULL;
        resolve();
    }
    if (in_boot(p)) { /* moves out of the arena */
        size_t have = (size_t)(boot_arena + sizeof boot_arena - (char *)p);
        void *q = real_malloc(n);
        if (q)
            memcpy(q, p, n < have ? n : have);
        return q;
    }
    caller = __builtin_return_address(0);
    if (n > 0 && fault(OP_MALLOC))
        return NULL;
    return real_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_boot(p))
        return;
    if (!real_free)
        resolve();
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    NEED(posix_memalign);
    caller = __builtin_return_address(0);
    if (fault(OP_MALLOC))
        return ENOMEM;
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    NEED(aligned_alloc);
    caller = __builtin_return_address(0);
    if (fault(OP_MALLOC))
        return NULL;
    return real_aligned_alloc(align, n);
}
