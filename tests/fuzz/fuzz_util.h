/* fuzz_util.h -- shared by the libFuzzer targets of tests/fuzz/.
 *
 * Loaders that take a path get the input through a per-process file under
 * $TMPDIR (or /tmp), rewritten for every input; the library's own reading code
 * is then what is fuzzed, not a copy of it.  NS_FUZZ_CHECK aborts on a broken
 * invariant, which libFuzzer reports as a crash with the input saved. */
#ifndef NS_FUZZ_UTIL_H
#define NS_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_FUZZ_CHECK(cond)                                                             \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* Messages reach terminals and logs: no control bytes may come through
 * from the input (they are escaped where untrusted text is quoted). */
static inline void ns_fuzz_check_text(const char *msg)
{
    if (!msg)
        return;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "fuzz: control byte 0x%02x in message: %s\n", *p, msg);
            abort();
        }
}

/* Writes data to a file named after the pid and suffix; returns its path
 * (static storage) or aborts: the harness itself failing is not a finding. */
static inline const char *ns_fuzz_file(const uint8_t *data, size_t n, const char *suffix)
{
    static char path[512];
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    snprintf(path, sizeof path, "%s/nsfuzz.%ld%s", dir, (long)getpid(), suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    NS_FUZZ_CHECK(fd >= 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        NS_FUZZ_CHECK(w > 0);
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* A NUL-terminated copy of the input (malloc'd). */
static inline char *ns_fuzz_str(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    NS_FUZZ_CHECK(s);
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
