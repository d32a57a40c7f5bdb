/* model_import.c -- `nightshift model import`: ONNX and torchvision backbones
 * through the Python converters in tools/.
 *
 * Parsing ONNX means parsing protobuf and folding constants, which the
 * converters already do with Debian's python3-onnx and numpy; a second
 * implementation in C would drift from them.  So the CLI finds the script, runs
 * the interpreter directly (argv, never a shell), and owns what the scripts do
 * not: the converter writes a temp name next to --out, ns_model_load validates
 * the result fully, and only then is it renamed into place.  A failure leaves
 * nothing at --out and an existing file there untouched. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "model_import.h"
#include "nightshift/fsutil.h"
#include "nightshift/model.h"
#include "nightshift/strbuf.h"

extern char **environ;

#define MAX_ARGS 40

static int readable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* Tries dir/script; on success leaves the path in out. */
static int try_dir(const char *dir, const char *script, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, script);
    return n > 0 && (size_t)n < cap && readable(out);
}

/* The source directory CMake recorded for the build tree in bindir ("" if none). */
static void cmake_source_dir(const char *bindir, char *src, size_t cap)
{
    static const char key[] = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    char path[PATH_MAX], line[PATH_MAX + 64];
    FILE *f = NULL;
    src[0] = '\0';
    if (snprintf(path, sizeof path, "%s/CMakeCache.txt", bindir) >= (int)sizeof path)
        return;
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, sizeof key - 1) == 0) {
            const char *v = line + sizeof key - 1;
            size_t n = strcspn(v, "\r\n");
            if (n < cap) {
                memcpy(src, v, n);
                src[n] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

/* Finds tools/<script>: $NIGHTSHIFT_TOOLS when set (and only there); else,
 * relative to this executable, an installed copy (../share/nightshift/tools),
 * the sources of the build tree the binary sits in (CMakeCache.txt), and
 * ../tools, ../../tools.  Resolving /proc/self/exe rather than argv[0]
 * works wherever the binary is called from, through symlinks and PATH. */
static ns_status find_script(const char *script, char *out, size_t cap)
{
    const char *env = getenv("NIGHTSHIFT_TOOLS");
    char exe[PATH_MAX], dir[PATH_MAX], src[PATH_MAX];
    ssize_t n;
    if (env && *env) {
        if (try_dir(env, script, out, cap))
            return NS_OK;
        return ns_error(NS_ERR_NOT_FOUND, "cannot find tools/%s: NIGHTSHIFT_TOOLS='%s' does not "
                        "hold %s", script, env, script);
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"../share/nightshift/tools", NULL, "../tools", "../../tools"};
        for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
            if (rel[k]) {
                if (snprintf(dir, sizeof dir, "%s/%s", exe, rel[k]) >= (int)sizeof dir)
                    continue;
            } else {
                cmake_source_dir(exe, src, sizeof src);
                if (!src[0] || snprintf(dir, sizeof dir, "%s/tools", src) >= (int)sizeof dir)
                    continue;
            }
            if (try_dir(dir, script, out, cap))
                return NS_OK;
        }
    }
    return ns_error(NS_ERR_NOT_FOUND, "cannot find tools/%s (looked beside the nightshift binary "
                    "and in its build tree's sources): set NIGHTSHIFT_TOOLS to the directory that "
                    "holds it", script);
}

/* An ONNX ModelProto starts with field 1 (ir_version, varint: byte 0x08), a
 * small version number, then the tag of another field (varint or bytes). */
static int sniff_onnx(const char *path)
{
    unsigned char b[3];
    int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;
    if (fd < 0)
        return 0;
    if (read(fd, b, sizeof b) == (ssize_t)sizeof b)
        ok = b[0] == 0x08 && b[1] >= 1 && b[1] < 0x80 && (b[2] >> 3) >= 2 && (b[2] >> 3) <= 20 &&
             ((b[2] & 7) == 0 || (b[2] & 7) == 2);
    close(fd);
    return ok;
}

static int is_arch_name(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static int ends_with_onnx(const char *s)
{
    size_t n = strlen(s);
    return n >= 5 && strcasecmp(s + n - 5, ".onnx") == 0;
}

/* --out must be creatable: its directory exists and is writable, and it is
 * not itself a directory.  Checked before a minute of torch export. */
static ns_status check_out(const char *out)
{
    char dir[PATH_MAX];
    struct stat st;
    const char *slash = strrchr(out, '/');
    if (!*out)
        return ns_error(NS_ERR_USAGE, "--out is empty");
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return ns_error(NS_ERR_USAGE, "--out '%s' is a directory", out);
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == out)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - out) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    else
        return ns_error(NS_ERR_USAGE, "--out '%s' is too long", out);
    if (access(dir, W_OK | X_OK) != 0)
        return ns_error(NS_ERR_IO, "cannot write into '%s' (for --out '%s'): %s", dir, out,
                        strerror(errno));
    return NS_OK;
}

/* Runs argv[0] with argv, its stdout sent to our stderr (our stdout carries
 * only the summary), and waits.  *code: its exit status, or 128 + signal. */
static ns_status run_converter(char *const argv[], int *code)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    struct sigaction ign = {0}, old_int, old_quit;
    sigset_t def, none;
    pid_t pid = -1;
    int err, status = 0;
    ns_status st = NS_OK;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    /* Like system(): Ctrl-C stops the converter, and we live to clean up. */
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGQUIT);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    fflush(stdout);
    fflush(stderr);
    err = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
    if (err != 0) {
        st = ns_error(NS_ERR_NOT_FOUND, "cannot run the Python interpreter '%s': %s (set "
                      "NIGHTSHIFT_PYTHON)", argv[0], strerror(err));
        goto done;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            st = ns_error(NS_ERR_INTERNAL, "waiting for '%s': %s", argv[0], strerror(errno));
            goto done;
        }
    }
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (WIFSIGNALED(status))
        st = ns_error(WTERMSIG(status) == SIGINT ? NS_ERR_INTERRUPTED : NS_ERR_INTERNAL,
                      "the converter was killed by signal %d (%s)", WTERMSIG(status),
                      strsignal(WTERMSIG(status)));
done:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return st;
}

/* Numbers for the converters, formatted locale-independently enough: %.9g
 * round-trips a float32 and the C locale is ours (we never call setlocale). */
static void fmt3(char buf[3][32], const double v[3])
{
    for (int k = 0; k < 3; k++)
        snprintf(buf[k], 32, "%.9g", v[k]);
}

int ns_cli_model_import(const char *what, const ns_import_opts *o)
{
    char script[PATH_MAX], tmp[PATH_MAX], size[32], seed[32], mean[3][32], std[3][32];
    char opt[5][PATH_MAX + 32];
    char *argv[MAX_ARGS];
    const char *python = getenv("NIGHTSHIFT_PYTHON");
    int argc = 0, code = 0, rc = NS_EXIT_FAILURE, onnx, created = 0;
    ns_model *m = NULL;
    ns_strbuf b = {0};
    ns_status st;
    struct stat sb;

    if (!python || !*python)
        python = NS_IMPORT_PYTHON;
    onnx = ends_with_onnx(what) || (stat(what, &sb) == 0 && S_ISREG(sb.st_mode) && sniff_onnx(what));
    if (!onnx && stat(what, &sb) == 0 && S_ISREG(sb.st_mode)) {
        fprintf(stderr, "nightshift model import: '%s' is not an ONNX model (nor a torchvision "
                "architecture name)\n", what);
        return NS_EXIT_USAGE;
    }
    if (!onnx && !is_arch_name(what)) {
        fprintf(stderr, "nightshift model import: cannot open '%s': %s\n", what, strerror(ENOENT));
        return NS_EXIT_FAILURE;
    }
    errno = 0;
    if (onnx && !readable(what)) {
        fprintf(stderr, "nightshift model import: cannot open '%s': %s\n", what,
                errno ? strerror(errno) : "not a regular file");
        return NS_EXIT_FAILURE;
    }
    if (onnx && (o->weights || o->keep_onnx || o->seed >= 0)) {
        fprintf(stderr, "nightshift model import: --weights, --seed and --keep-onnx apply to "
                "torchvision architectures, not to the ONNX file '%s'\n", what);
        return NS_EXIT_USAGE;
    }
    if (o->name && strlen(o->name) >= NS_MODEL_NAME_LEN) {
        fprintf(stderr, "nightshift model import: --name is longer than %d bytes\n",
                NS_MODEL_NAME_LEN - 1);
        return NS_EXIT_USAGE;
    }
    if (!onnx && o->channel_order) {
        fprintf(stderr, "nightshift model import: --channel-order applies to ONNX files; "
                "torchvision models are RGB\n");
        return NS_EXIT_USAGE;
    }
    if ((st = check_out(o->out)) != NS_OK ||
        (st = find_script(onnx ? "onnx2ns.py" : "torch2ns.py", script, sizeof script)) != NS_OK)
        return ns_cli_fail("model import", st);
    if (access(python, X_OK) != 0) {
        fprintf(stderr, "nightshift model import: cannot run the Python interpreter '%s': %s "
                "(install python3 with python3-onnx, or set NIGHTSHIFT_PYTHON)\n", python,
                strerror(errno));
        return NS_EXIT_FAILURE;
    }

    /* Options as "--opt=VALUE", so a value starting with '-' stays a value,
     * and "--" before the positionals, so a file named "-x.onnx" is a file. */
    argv[argc++] = (char *)python;
    argv[argc++] = "-B"; /* no __pycache__ in the tools directory */
    argv[argc++] = script;
    {
        const char *names[] = {"output", "name", "weights", "keep-onnx", "channel-order"};
        const char *vals[] = {o->output, o->name, o->weights, o->keep_onnx, o->channel_order};
        for (int k = 0; k < 5; k++) {
            if (!vals[k])
                continue;
            if (snprintf(opt[k], sizeof opt[k], "--%s=%s", names[k], vals[k]) >= (int)sizeof opt[k]) {
                fprintf(stderr, "nightshift model import: --%s is too long\n", names[k]);
                return NS_EXIT_USAGE;
            }
            argv[argc++] = opt[k];
        }
    }
    if (o->l2norm)
        argv[argc++] = "--l2norm";
    if (o->size > 0) {
        snprintf(size, sizeof size, "--size=%d", o->size);
        argv[argc++] = size;
    }
    if (o->seed >= 0) {
        snprintf(seed, sizeof seed, "--seed=%lld", (long long)o->seed);
        argv[argc++] = seed;
    }
    if (o->has_mean) {
        fmt3(mean, o->mean);
        argv[argc++] = "--mean";
        for (int k = 0; k < 3; k++)
            argv[argc++] = mean[k];
    }
    if (o->has_std) {
        fmt3(std, o->std);
        argv[argc++] = "--std";
        for (int k = 0; k < 3; k++)
            argv[argc++] = std[k];
    }
    argv[argc++] = "--";
    argv[argc++] = (char *)what;
    argv[argc++] = tmp;
    argv[argc] = NULL;

    if ((st = ns_tmp_name(o->out, tmp, sizeof tmp)) != NS_OK) /* fills argv's tmp */
        return ns_cli_fail("model import", st);
    created = 1;
    st = run_converter(argv, &code);
    if (st == NS_OK && code != 0) {
        rc = code == NS_EXIT_USAGE ? NS_EXIT_USAGE : NS_EXIT_FAILURE;
        fprintf(stderr, "nightshift model import: conversion of '%s' failed (%s exit status %d)\n",
                what, strrchr(script, '/') + 1, code);
        goto done;
    }
    if (st != NS_OK) {
        rc = ns_cli_fail("model import", st);
        fprintf(stderr, "nightshift model import: conversion of '%s' failed\n", what);
        goto done;
    }
    /* The converter said yes; our loader has the last word. */
    st = ns_model_load(tmp, &m);
    if (st != NS_OK)
        st = ns_error_wrap(st, "the converter's output does not load");
    if (st == NS_OK)
        st = ns_model_describe(m, &b);
    if (st == NS_OK)
        st = ns_atomic_rename(tmp, o->out);
    if (st != NS_OK) {
        rc = ns_cli_fail("model import", st);
        fprintf(stderr, "nightshift model import: conversion of '%s' failed\n", what);
        goto done;
    }
    created = 0;
    fputs(b.data ? b.data : "", stdout);
    printf("model: imported '%s' to %s, model id %s\n", what, o->out, m->id);
    rc = NS_EXIT_OK;
done:
    if (created)
        unlink(tmp);
    ns_strbuf_release(&b);
    ns_model_free(m);
    return rc;
}
