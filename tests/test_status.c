#include <string.h>
#include <xxhash.h>

#include "helpers.h"
#include "nightshift/checksum.h"
#include "nightshift/sha256.h"
#include "nightshift/warn.h"

START_TEST(test_error_message_and_wrap)
{
    ns_error_clear();
    ck_assert_str_eq(ns_errmsg(), "");
    ck_assert_int_eq(ns_error(NS_ERR_IO, "cannot open '%s'", "a.tar"), NS_ERR_IO);
    ck_assert_str_eq(ns_errmsg(), "cannot open 'a.tar'");
    ck_assert_int_eq(ns_error_wrap(NS_ERR_CORRUPT, "clip %d", 3), NS_ERR_CORRUPT);
    ck_assert_str_eq(ns_errmsg(), "clip 3: cannot open 'a.tar'");
    ck_assert_str_eq(ns_strerror(NS_ERR_BUSY), "busy");
    ck_assert_str_eq(ns_strerror((ns_status)999), "unknown status");
}
END_TEST

START_TEST(test_sha256_vectors)
{
    /* FIPS 180-2 test vectors. */
    uint8_t d[32];
    char hex[NS_SHA256_HEX];
    ns_sha256_buf("abc", 3, d);
    ns_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ns_sha256_buf("", 0, d);
    ns_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint8_t back[32];
    ck_assert_ns_ok(ns_sha256_parse(hex, back));
    ck_assert_mem_eq(back, d, 32);
    ck_assert_int_eq(ns_sha256_parse("zz", back), NS_ERR_FORMAT);
}
END_TEST

START_TEST(test_sha256_file_matches_buffer)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    static uint8_t data[3 << 20];
    uint8_t a[32], b[32];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 131u + (i >> 7));
    ns_test_tmpdir(dir, sizeof dir, "sha");
    snprintf(path, sizeof path, "%s/f.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, sizeof data, f), sizeof data);
    fclose(f);
    ck_assert_ns_ok(ns_sha256_file(path, a));
    ns_sha256_buf(data, sizeof data, b);
    ck_assert_mem_eq(a, b, 32);
    ck_assert_int_eq(ns_sha256_file("/nonexistent/x", a), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/nonexistent/x"));
}
END_TEST

/* Leaf digests for the tree written out by hand. */
static size_t leaf_sha256(const uint8_t *p, size_t n, uint8_t *out)
{
    ns_sha256_buf(p, n, out);
    return 32;
}

static size_t leaf_xxh3(const uint8_t *p, size_t n, uint8_t *out)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out, c.digest, 16);
    return 16;
}

/* The tree digest written out by hand from its definition in checksum.h. */
static void tree_by_hand(ns_checksum_algo algo, const uint8_t *data, size_t size,
                         char out[NS_CHECKSUM_LEN])
{
    const char *tag = algo == NS_CHECKSUM_SHA256_TREE ? "nightshift-sha256-tree-v1"
                                                      : "nightshift-xxh3-128-tree-v1";
    size_t (*leaf)(const uint8_t *, size_t, uint8_t *) =
        algo == NS_CHECKSUM_SHA256_TREE ? leaf_sha256 : leaf_xxh3;
    size_t block = NS_CHECKSUM_TREE_BLOCK, n = (size + block - 1) / block, tl = strlen(tag), dl;
    uint8_t *buf = malloc(tl + 16 + n * 32), *p = buf, root[32];
    char *o = out;
    memcpy(p, tag, tl);
    p += tl;
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)((uint64_t)block >> (8 * i));
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)((uint64_t)size >> (8 * i));
    for (size_t b = 0; b < n; b++)
        p += leaf(data + b * block, size - b * block < block ? size - b * block : block, p);
    dl = leaf(buf, (size_t)(p - buf), root);
    o += sprintf(o, "%s:", ns_checksum_algo_name(algo));
    for (size_t i = 0; i < dl; i++)
        o += sprintf(o, "%02x", root[i]);
    free(buf);
}

START_TEST(test_checksum_tree)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], a[NS_CHECKSUM_LEN], b[NS_CHECKSUM_LEN];
    size_t sizes[] = {0, 1000, NS_CHECKSUM_TREE_BLOCK, 2 * NS_CHECKSUM_TREE_BLOCK + 12345};
    size_t max = sizes[3];
    uint8_t *data = malloc(max);
    ns_checksum_algo algo = (ns_checksum_algo)_i, parsed;
    for (size_t i = 0; i < max; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    ns_test_tmpdir(dir, sizeof dir, "tree");
    snprintf(path, sizeof path, "%s/f.bin", dir);
    for (size_t k = 0; k < 4; k++) {
        FILE *f = fopen(path, "wb");
        ck_assert_uint_eq(fwrite(data, 1, sizes[k], f), sizes[k]);
        fclose(f);
        ck_assert_ns_ok(ns_checksum_file(path, algo, a));
        tree_by_hand(algo, data, sizes[k], b);
        ck_assert_str_eq(a, b);
        ck_assert_ns_ok(ns_checksum_parse(a, &parsed));
        ck_assert_int_eq(parsed, algo);
    }
    data[max - 1] ^= 1; /* one flipped bit in the last block changes the digest */
    tree_by_hand(algo, data, max, b);
    ck_assert_str_ne(a, b);
    free(data);
}
END_TEST

/* Pinned values (from Python: hashlib, xxhash) of 1000 bytes i*7 mod 256:
 * the format must never drift, or old stores stop verifying. */
START_TEST(test_checksum_known_values)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], got[NS_CHECKSUM_LEN];
    uint8_t data[1000];
    FILE *f;
    for (int i = 0; i < 1000; i++)
        data[i] = (uint8_t)(i * 7);
    ns_test_tmpdir(dir, sizeof dir, "known");
    snprintf(path, sizeof path, "%s/f.bin", dir);
    f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(data, 1, sizeof data, f), sizeof data);
    fclose(f);
    ck_assert_ns_ok(ns_checksum_file(path, NS_CHECKSUM_XXH3_128_TREE, got));
    ck_assert_str_eq(got, "xxh3-128-tree:53409bbdc703350f5d8eeddd8ce4b772");
    ck_assert_ns_ok(ns_checksum_file(path, NS_CHECKSUM_SHA256_TREE, got));
    ck_assert_str_eq(got, "sha256-tree:862b3e157c6642617c03db30382d4644b467e564fc86342d2d83edf6b063e4a7");
}
END_TEST

START_TEST(test_checksum_parse_rejects)
{
    static const char *bad[] = {
        "", "abc", "md5:0123", "sha256-tree:", "xxh3-128-tree:0123",
        "xxh3-128-tree:0123456789abcdef0123456789ABCDEF", /* upper case */
        "sha256-tree:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "xxh3-128-tree:0123456789abcdef0123456789abcdef00", /* too long */
    };
    ns_checksum_algo a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(ns_checksum_parse(bad[i], &a), NS_ERR_FORMAT);
    ck_assert_ns_ok(ns_checksum_parse("xxh3-128-tree:0123456789abcdef0123456789abcdef", &a));
    ck_assert_int_eq(a, NS_CHECKSUM_XXH3_128_TREE);
}
END_TEST

START_TEST(test_warnings_are_bounded)
{
    ns_warnings w = {0}, all = {0};
    for (int i = 0; i < 1000; i++)
        ns_warn(&w, "frame %d broken", i);
    ck_assert_uint_eq(w.n_total, 1000);
    ck_assert_uint_eq(w.n_kept, NS_WARN_KEEP);
    ck_assert_str_eq(w.msgs[0], "frame 0 broken");
    ns_warn(&all, "first");
    ns_warn_merge(&all, &w);
    ck_assert_uint_eq(all.n_total, 1001);
    ck_assert_uint_eq(all.n_kept, NS_WARN_KEEP);
    ns_warnings_release(&w);
    ns_warnings_release(&all);
    ck_assert_uint_eq(w.n_total, 0);
}
END_TEST

/* Issue 16 defect 9: a message is one printable line, whatever it quotes. */
START_TEST(test_error_message_is_one_printable_line)
{
    ns_warnings w = {0};
    ns_error(NS_ERR_IO, "cannot write '%s': %s", "a\nb\033[31m.h5", "failed: time = x\n, fd = 3");
    ck_assert_str_eq(ns_errmsg(), "cannot write 'a\\x0ab\\x1b[31m.h5': failed: time = x\\x0a, fd = 3");
    ns_error_wrap(NS_ERR_IO, "shard '%s'", "c\rd");
    ck_assert_str_eq(ns_errmsg(), "shard 'c\\x0dd': cannot write 'a\\x0ab\\x1b[31m.h5': failed: time = "
                                  "x\\x0a, fd = 3");
    ns_error(NS_ERR_CORRUPT, "checksum %s", "\xff\xfe\x01ok");
    ck_assert_str_eq(ns_errmsg(), "checksum \\xff\\xfe\\x01ok");
    ns_error(NS_ERR_IO, "caf\xc3\xa9"); /* valid UTF-8 stays */
    ck_assert_str_eq(ns_errmsg(), "caf\xc3\xa9");
    ns_error(NS_ERR_IO, "x\xc2\x9b" "31m \xc2\x85 \xc2\xa0"); /* C1 CSI and NEL escaped, NBSP stays */
    ck_assert_str_eq(ns_errmsg(), "x\\xc2\\x9b" "31m \\xc2\\x85 \xc2\xa0");
    ns_warn(&w, "camera '%s'", "cam\n03");
    ck_assert_str_eq(w.msgs[0], "camera 'cam\\x0a03'");
    ns_warnings_release(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_error_message_and_wrap);
    tcase_add_test(tc, test_sha256_vectors);
    tcase_add_test(tc, test_sha256_file_matches_buffer);
    tcase_add_loop_test(tc, test_checksum_tree, 0, 2);
    tcase_add_test(tc, test_checksum_known_values);
    tcase_add_test(tc, test_checksum_parse_rejects);
    tcase_add_test(tc, test_warnings_are_bounded);
    tcase_add_test(tc, test_error_message_is_one_printable_line);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
