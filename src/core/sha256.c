#include "nightshift/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(ns_sha256), "ns_sha256 too small for nettle");

void ns_sha256_init(ns_sha256 *h) { sha256_init((struct sha256_ctx *)h); }

void ns_sha256_update(ns_sha256 *h, const void *data, size_t n)
{
    sha256_update((struct sha256_ctx *)h, n, data);
}

void ns_sha256_final(ns_sha256 *h, uint8_t out[NS_SHA256_LEN])
{
    sha256_digest((struct sha256_ctx *)h, NS_SHA256_LEN, out);
}

void ns_sha256_buf(const void *data, size_t n, uint8_t out[NS_SHA256_LEN])
{
    ns_sha256 h;
    ns_sha256_init(&h);
    ns_sha256_update(&h, data, n);
    ns_sha256_final(&h, out);
}

ns_status ns_sha256_fd(int fd, const char *name, uint64_t size, uint8_t *dst,
                       uint8_t out[NS_SHA256_LEN])
{
    /* On the stack, not heap or thread-local: fresh pages cost ~12 us each to
     * first touch on these machines, and glibc zeroes all static TLS in every
     * new thread.  64 KB stays in L2 between the copy and the hash; into dst,
     * 1 MB pieces still do. */
    uint8_t buf[64 << 10];
    const size_t piece = dst ? (size_t)1 << 20 : sizeof buf;
    ns_sha256 h;
    uint64_t off = 0;
    ns_sha256_init(&h);
    while (off < size) {
        uint8_t *to = dst ? dst + off : buf;
        size_t want = size - off < piece ? (size_t)(size - off) : piece;
        ssize_t r = pread(fd, to, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ns_error(NS_ERR_IO, "cannot read '%s': %s", name, strerror(errno));
        if (r == 0)
            return ns_error(NS_ERR_IO, "'%s' shrank while being read (%llu of %llu bytes)", name,
                            (unsigned long long)off, (unsigned long long)size);
        ns_sha256_update(&h, to, (size_t)r);
        off += (uint64_t)r;
    }
    ns_sha256_final(&h, out);
    return NS_OK;
}

ns_status ns_sha256_file(const char *path, uint8_t out[NS_SHA256_LEN])
{
    ns_status st;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0)
        st = ns_error(NS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    else
        st = ns_sha256_fd(fd, path, (uint64_t)sb.st_size, NULL, out);
    close(fd);
    return st;
}

void ns_sha256_hex(const uint8_t digest[NS_SHA256_LEN], char hex[NS_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < NS_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ns_status ns_sha256_parse(const char *hex, uint8_t digest[NS_SHA256_LEN])
{
    for (int i = 0; i < NS_SHA256_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return ns_error(NS_ERR_FORMAT, "not a SHA-256 hex digest: '%.70s'", hex);
        digest[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[64] != '\0')
        return ns_error(NS_ERR_FORMAT, "not a SHA-256 hex digest: '%.70s'", hex);
    return NS_OK;
}
