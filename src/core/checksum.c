#include "nightshift/checksum.h"
#include "nightshift/sha256.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define XXH128_LEN 16
#define LEAF_MAX NS_SHA256_LEN /* the larger leaf digest */

static const struct {
    const char *name, *tag;
    size_t len; /* digest bytes */
} algos[] = {
    [NS_CHECKSUM_XXH3_128_TREE] = {"xxh3-128-tree", "nightshift-xxh3-128-tree-v1", XXH128_LEN},
    [NS_CHECKSUM_SHA256_TREE] = {"sha256-tree", "nightshift-sha256-tree-v1", NS_SHA256_LEN},
};
#define N_ALGOS (sizeof algos / sizeof algos[0])

const char *ns_checksum_algo_name(ns_checksum_algo algo)
{
    return (size_t)algo < N_ALGOS ? algos[algo].name : "unknown";
}

void ns_checksum_join(ns_checksum_algo algo, const char *hex, char out[NS_CHECKSUM_LEN])
{
    snprintf(out, NS_CHECKSUM_LEN, "%s:%s", ns_checksum_algo_name(algo), hex);
}

ns_status ns_checksum_parse(const char *checksum, ns_checksum_algo *algo)
{
    const char *colon = strchr(checksum, ':');
    if (!colon)
        return ns_error(NS_ERR_FORMAT, "checksum '%.80s' names no algorithm", checksum);
    for (size_t a = 0; a < N_ALGOS; a++) {
        size_t nl = strlen(algos[a].name);
        if ((size_t)(colon - checksum) != nl || strncmp(checksum, algos[a].name, nl) != 0)
            continue;
        const char *hex = colon + 1;
        if (strlen(hex) != 2 * algos[a].len || strspn(hex, "0123456789abcdef") != 2 * algos[a].len)
            return ns_error(NS_ERR_FORMAT, "checksum '%.80s': not %zu lowercase hex digits", checksum,
                            2 * algos[a].len);
        *algo = (ns_checksum_algo)a;
        return NS_OK;
    }
    return ns_error(NS_ERR_FORMAT, "checksum '%.80s': unknown algorithm", checksum);
}

/* Read buffer per hashing thread: fits L2, one allocation per file.  Not a
 * static thread-local: glibc zeroes all static TLS in every thread the
 * process creates, and at ~12 us per first-touched page that cost showed up
 * in profiles of ingest, which starts threads per shard. */
#define READ_BUF (256u << 10)

/* One running digest of either algorithm. */
typedef struct leaf_hash {
    ns_checksum_algo algo;
    ns_sha256 sha;
    XXH3_state_t *xxh;
} leaf_hash;

static int leaf_init(leaf_hash *h, ns_checksum_algo algo)
{
    h->algo = algo;
    h->xxh = NULL;
    if (algo == NS_CHECKSUM_SHA256_TREE) {
        ns_sha256_init(&h->sha);
        return 0;
    }
    h->xxh = XXH3_createState();
    return h->xxh && XXH3_128bits_reset(h->xxh) == XXH_OK ? 0 : ENOMEM;
}

static void leaf_update(leaf_hash *h, const void *p, size_t n)
{
    if (h->algo == NS_CHECKSUM_SHA256_TREE)
        ns_sha256_update(&h->sha, p, n);
    else
        XXH3_128bits_update(h->xxh, p, n);
}

static void leaf_final(leaf_hash *h, uint8_t *out)
{
    if (h->algo == NS_CHECKSUM_SHA256_TREE) {
        ns_sha256_final(&h->sha, out);
        return;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
    memcpy(out, c.digest, XXH128_LEN);
    XXH3_freeState(h->xxh);
    h->xxh = NULL;
}

/* Hashes bytes [off, off + len) of fd with pread into the thread's buffer:
 * no mapping, so the shard's pages never count against our resident set. */
static int hash_range(int fd, ns_checksum_algo algo, uint64_t off, uint64_t len, uint8_t *buf,
                      uint8_t *out)
{
    leaf_hash h;
    int e = leaf_init(&h, algo);
    while (e == 0 && len > 0) {
        size_t want = len < READ_BUF ? (size_t)len : READ_BUF;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = r < 0 ? errno : EIO; /* a shrinking file is an error too */
            break;
        }
        leaf_update(&h, buf, (size_t)r);
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    if (e == 0)
        leaf_final(&h, out);
    else if (h.xxh)
        XXH3_freeState(h.xxh);
    return e;
}

ns_status ns_checksum_file(const char *path, ns_checksum_algo algo, char out[NS_CHECKSUM_LEN])
{
    static const char digits[] = "0123456789abcdef";
    ns_status st = NS_OK;
    struct stat sb;
    uint8_t *leaves = NULL, *bufs = NULL, root[LEAF_MAX];
    char hex[2 * LEAF_MAX + 1];
    uint64_t size, block = NS_CHECKSUM_TREE_BLOCK, n_blocks, le[2];
    size_t dl, tl;
    int err = 0, fd = -1, threads = omp_get_max_threads();
    leaf_hash h;

    if ((size_t)algo >= N_ALGOS)
        return ns_error(NS_ERR_USAGE, "checksum: unknown algorithm %d", (int)algo);
    dl = algos[algo].len;
    tl = strlen(algos[algo].tag);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        st = ns_error(NS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    size = (uint64_t)sb.st_size;
    n_blocks = (size + block - 1) / block;
    if ((uint64_t)threads > n_blocks)
        threads = n_blocks > 0 ? (int)n_blocks : 1;
    leaves = malloc(n_blocks ? n_blocks * dl : 1);
    bufs = malloc((size_t)threads * READ_BUF);
    if (!leaves || !bufs) {
        st = ns_error(NS_ERR_NOMEM, "out of memory hashing '%s'", path);
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (uint64_t i = 0; i < n_blocks; i++) {
        uint64_t off = i * block, len = size - off < block ? size - off : block;
        uint8_t *buf = bufs + (size_t)omp_get_thread_num() * READ_BUF;
        int e = hash_range(fd, algo, off, len, buf, leaves + i * dl);
        if (e) {
#pragma omp atomic write
            err = e;
        }
    }
    if (err) {
        st = ns_error(err == ENOMEM ? NS_ERR_NOMEM : NS_ERR_IO, "cannot hash '%s': %s", path,
                      strerror(err));
        goto done;
    }
    if (leaf_init(&h, algo) != 0) {
        st = ns_error(NS_ERR_NOMEM, "out of memory hashing '%s'", path);
        goto done;
    }
    le[0] = htole64(block);
    le[1] = htole64(size);
    leaf_update(&h, algos[algo].tag, tl);
    leaf_update(&h, le, sizeof le);
    leaf_update(&h, leaves, n_blocks * dl);
    leaf_final(&h, root);
    for (size_t i = 0; i < dl; i++) {
        hex[2 * i] = digits[root[i] >> 4];
        hex[2 * i + 1] = digits[root[i] & 15];
    }
    hex[2 * dl] = '\0';
    ns_checksum_join(algo, hex, out);
done:
    free(leaves);
    free(bufs);
    close(fd);
    return st;
}
