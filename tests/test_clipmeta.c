#include <math.h>
#include <time.h>

#include "helpers.h"
#include "nightshift/clipmeta.h"
#include "nightshift/csv.h"
#include "nightshift/strbuf.h"

START_TEST(test_iso_time)
{
    double t;
    ck_assert_ns_ok(ns_parse_iso_time("1970-01-01T00:00:00Z", &t));
    ck_assert_double_eq(t, 0);
    ck_assert_ns_ok(ns_parse_iso_time("2026-11-01T22:15:00Z", &t));
    ck_assert_double_eq(t, 1793571300.0);
    ck_assert_ns_ok(ns_parse_iso_time("2026-11-01 23:15:00+01:00", &t));
    ck_assert_double_eq(t, 1793571300.0);
    ck_assert_ns_ok(ns_parse_iso_time("2024-02-29T00:00:00.25", &t));
    ck_assert_double_eq_tol(t, 1709164800.25, 1e-6);
    ck_assert_int_eq(ns_parse_iso_time("2023-02-29T00:00:00Z", &t), NS_ERR_FORMAT);
    ck_assert_int_eq(ns_parse_iso_time("2026-11-01T25:00:00Z", &t), NS_ERR_FORMAT);
    ck_assert_int_eq(ns_parse_iso_time("yesterday", &t), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "yesterday"));
    char buf[32];
    ns_format_iso_time(1793571300.0, buf);
    ck_assert_str_eq(buf, "2026-11-01T22:15:00Z");
    ns_format_iso_time(NAN, buf);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_night)
{
    char n[NS_NIGHT_LEN];
    ck_assert_ns_ok(ns_parse_night("2026-11-26", n));
    ck_assert_str_eq(n, "2026-11-26");
    ck_assert_int_eq(ns_parse_night("2026-13-01", n), NS_ERR_FORMAT);
    ck_assert_int_eq(ns_parse_night("2026-11-1", n), NS_ERR_FORMAT);
    ck_assert_int_eq(ns_parse_night("2100-02-29", n), NS_ERR_FORMAT);
    ck_assert_ns_ok(ns_parse_night("2000-02-29", n));
}
END_TEST

START_TEST(test_name_pattern)
{
    ns_clip_meta m;
    memset(&m, 0, sizeof m);
    m.start_time = NAN;
    ck_assert_ns_ok(ns_name_pattern_check(NS_DEFAULT_NAME_PATTERN));
    ck_assert_int_eq(ns_name_pattern_check("{camera}_{bogus}"), NS_ERR_USAGE);
    ck_assert_int_eq(
        ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, "/x/y/cam01_2026-11-01_221500.tar.gz", &m), 1);
    ck_assert_str_eq(m.camera, "cam01");
    ck_assert_double_eq(m.start_time, 1793571300.0);
    memset(&m, 0, sizeof m);
    m.start_time = NAN;
    ck_assert_int_eq(ns_name_pattern_match("{camera}_{date}_{time}", "line-3.west_20261101_22-15-00.avi", &m), 1);
    ck_assert_str_eq(m.camera, "line-3.west");
    ck_assert_double_eq(m.start_time, 1793571300.0);
    memset(&m, 0, sizeof m);
    m.start_time = NAN;
    ck_assert_int_eq(ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, "holiday.zip", &m), 0);
    /* ISO 8601 date-times, basic and extended, with and without a zone, in
     * the default pattern: 2024-03-06 01:00:00 UTC is 1709686800. */
    {
        static const struct { const char *name; double t; } iso[] = {
            {"cam3_20240306T010000.tar", 1709686800.0},
            {"cam3_20240306T010000Z.tar", 1709686800.0},
            {"cam3_2024-03-06T01:00:00.tar", 1709686800.0},
            {"cam3_2024-03-06T01:00:00Z.tar", 1709686800.0},
            {"cam3_2024-03-06T01-00-00z.mjpg", 1709686800.0},
            {"cam3_2024-03-06T03:00:00+02:00.tar", 1709686800.0},
            {"cam3_20240306T030000+0200.zip", 1709686800.0},
            {"cam3_20240305T200000-05.avi", 1709686800.0},
            {"cam3_2024-03-05T19:30:00-05:30.tar.gz", 1709686800.0},
        };
        for (size_t i = 0; i < sizeof iso / sizeof iso[0]; i++) {
            ns_clip_meta q = {.start_time = NAN};
            ck_assert_msg(ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, iso[i].name, &q) == 1,
                          "%s did not match", iso[i].name);
            ck_assert_str_eq(q.camera, "cam3");
            ck_assert_msg(q.start_time == iso[i].t, "%s: %.0f", iso[i].name, q.start_time);
        }
        ns_clip_meta q = {.start_time = NAN};
        /* not a date-time: month 13, a lone T, a zone past +14 */
        ck_assert_int_eq(ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, "cam3_20241306T010000", &q), 0);
        ck_assert_int_eq(ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, "cam3_20240306T", &q), 0);
        ck_assert_int_eq(ns_name_pattern_match(NS_DEFAULT_NAME_PATTERN, "cam3_20240306T010000+15", &q), 0);
        ck_assert_int_eq(ns_name_pattern_match("{datetime}_{camera}", "20240306T010000_dock-2", &q), 1);
        ck_assert_str_eq(q.camera, "dock-2");
        ck_assert_ns_ok(ns_name_pattern_check(NS_DEFAULT_NAME_PATTERN));
    }
    ck_assert_str_eq(m.camera, "");
    ck_assert(isnan(m.start_time));
    ck_assert_int_eq(ns_name_pattern_match("{*}-{camera}", "site4-cam9.mjpg", &m), 1);
    ck_assert_str_eq(m.camera, "cam9");
}
END_TEST

START_TEST(test_manifest)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], clip[PATH_MAX + 32], other[PATH_MAX + 32];
    ns_manifest *m = NULL;
    ns_clip_meta meta;
    ns_test_tmpdir(dir, sizeof dir, "manifest");
    snprintf(clip, sizeof clip, "%s/a.tar", dir);
    ns_test_write_text(clip, "x");
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    ns_test_write_text(path, "\xEF\xBB\xBFpath,camera,start_time,fps,night,extra\r\n"
                     "a.tar,\"cam, one\",2026-11-01T22:15:00Z,12.5,2026-11-01,x\r\n"
                     "\n"
                     "sub/b.avi,cam2,,,,\n"
                     "elsewhere/b.avi,cam3,,,,\n"
                     "/abs/c.zip,cam4,,,,\n");
    ck_assert_ns_ok(ns_manifest_load(path, &m));
    ck_assert_uint_eq(ns_manifest_rows(m), 4);
    memset(&meta, 0, sizeof meta);
    ck_assert_int_eq(ns_manifest_lookup(m, clip, &meta), 1);
    ck_assert_str_eq(meta.camera, "cam, one");
    ck_assert_double_eq(meta.start_time, 1793571300.0);
    ck_assert_double_eq(meta.fps, 12.5);
    ck_assert_str_eq(meta.night, "2026-11-01");
    /* Name fallback only when unambiguous: b.avi is listed twice. */
    snprintf(other, sizeof other, "%s/nowhere/b.avi", dir);
    ck_assert_int_eq(ns_manifest_lookup(m, other, &meta), 0);
    ck_assert_int_eq(ns_manifest_lookup(m, "/somewhere/else/c.zip", &meta), 1);
    ck_assert_str_eq(meta.camera, "cam4");
    ns_manifest_free(m);

    ns_test_write_text(path, "path,start_time\na.tar,not-a-time\n");
    ck_assert_int_eq(ns_manifest_load(path, &m), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "line 2"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "manifest.csv"));
    ns_test_write_text(path, "file,camera\na.tar,c\n");
    ck_assert_int_eq(ns_manifest_load(path, &m), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'path'"));
    ns_test_write_text(path, "path,fps\na.tar,-3\n");
    ck_assert_int_eq(ns_manifest_load(path, &m), NS_ERR_FORMAT);
    ns_test_write_text(path, "path,camera\n\"a.tar,cam\n");
    ck_assert_int_eq(ns_manifest_load(path, &m), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "unterminated"));
    ck_assert_int_eq(ns_manifest_load("/nonexistent/m.csv", &m), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/nonexistent/m.csv"));
}
END_TEST

START_TEST(test_csv_cells_and_json)
{
    ns_strbuf b = {0};
    ns_csv_cell(&b, "plain");
    ns_strbuf_append(&b, ",", 1);
    ns_csv_cell(&b, "a,\"b\"\nc");
    ns_strbuf_append(&b, ",", 1);
    ns_csv_cell(&b, "=HYPERLINK(\"x\")");
    ns_strbuf_append(&b, ",", 1);
    ns_csv_cell(&b, "@cmd");
    ck_assert_str_eq(b.data, "plain,\"a,\"\"b\"\"\nc\",\"'=HYPERLINK(\"\"x\"\")\",\"'@cmd\"");
    ns_strbuf_release(&b);
    ns_strbuf_json_str(&b, "q\"\\\n\x01 caf\xc3\xa9 \xff");
    ck_assert_str_eq(b.data, "\"q\\\"\\\\\\u000a\\u0001 caf\xc3\xa9 \\ufffd\"");
    ns_strbuf_release(&b);
    ns_strbuf_json_num(&b, 3);
    ns_strbuf_append(&b, " ", 1);
    ns_strbuf_json_num(&b, 0.5);
    ns_strbuf_append(&b, " ", 1);
    ns_strbuf_json_num(&b, NAN);
    ck_assert_str_eq(b.data, "3 0.5 null");
    ck_assert_ns_ok(ns_strbuf_status(&b));
    ns_strbuf_release(&b);
}
END_TEST

/* Found by tests/fuzz (fuzz_namepattern, fuzz_manifest): the untrusted text a
 * message quotes reached the terminal with its control bytes. */
/* fuzz_namepattern: several wildcards against a long name backtracked
 * exponentially (10 s and more); the memoised matcher answers at once. */
START_TEST(test_name_pattern_many_wildcards)
{
    char name[240];
    ns_clip_meta m;
    memset(&m, 0, sizeof m);
    m.start_time = NAN;
    memset(name, 'Z', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    memcpy(name, "c0", 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(ns_name_pattern_match("{*}{camera}{*}{*}{*}{*}{time}", name, &m), 0);
    ck_assert_int_eq(ns_name_pattern_match("{*}{camera}{*}{*}{*}Z", name, &m), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_double_lt((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), 1.0);
}
END_TEST

START_TEST(test_messages_escape_control_bytes)
{
    double t;
    char night[NS_NIGHT_LEN];
    ck_assert_int_eq(ns_name_pattern_check("{camera\x01\x1b[2J}_{date}"), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "{camera\\x01\\x1b[2J}"));
    ck_assert_ptr_null(strchr(ns_errmsg(), '\x1b'));
    ck_assert_int_eq(ns_parse_iso_time("202\b@", &t), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'202\\x08@'"));
    ck_assert_int_eq(ns_parse_night("2026-11\n-01", night), NS_ERR_FORMAT);
    ck_assert_ptr_null(strchr(ns_errmsg(), '\n'));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clipmeta");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_iso_time);
    tcase_add_test(tc, test_night);
    tcase_add_test(tc, test_name_pattern);
    tcase_add_test(tc, test_manifest);
    tcase_add_test(tc, test_csv_cells_and_json);
    tcase_add_test(tc, test_messages_escape_control_bytes);
    tcase_add_test(tc, test_name_pattern_many_wildcards);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
