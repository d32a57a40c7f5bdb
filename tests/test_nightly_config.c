/* test_nightly_config.c -- the nightly YAML config loader's messages (the
 * rest of the loader is covered end to end by e2e_nightly and by
 * tests/fuzz/fuzz_config). */
#include "helpers.h"
#include "nightshift/nightly.h"

/* Found by tests/fuzz/fuzz_config: libcyaml quotes the key it does not know,
 * and its control bytes reached the message (and the terminal) raw. */
START_TEST(test_unknown_key_message_is_escaped)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_nightly_config c;
    ns_test_tmpdir(dir, sizeof dir, "nightly-config");
    snprintf(path, sizeof path, "%s/n.yaml", dir);
    ns_test_write_text(path, "inbox: /x\ns\t\ttore: /s\n");
    ns_nightly_config_defaults(&c);
    ck_assert_int_eq(ns_nightly_config_load(path, &c), NS_ERR_USAGE);
    const char *m = ns_errmsg();
    ck_assert_msg(strstr(m, "s\\x09\\x09tore") != NULL, "message: %s", m);
    for (const char *p = m; *p; p++)
        ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte in: %s", m);
    ck_assert_ptr_nonnull(strstr(m, "n.yaml:2:"));
    ns_nightly_config_release(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nightly_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_unknown_key_message_is_escaped);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
