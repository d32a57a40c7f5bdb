#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "nightshift/fsutil.h"

static size_t read_all(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

START_TEST(test_mkdir_p)
{
    char dir[PATH_MAX], p[PATH_MAX + 64];
    struct stat sb;
    ns_test_tmpdir(dir, sizeof dir, "fsutil");
    snprintf(p, sizeof p, "%s/a/b/c/", dir);
    ck_assert_ns_ok(ns_mkdir_p(p));
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_ns_ok(ns_mkdir_p(p)); /* existing is fine */
    ck_assert_ns_ok(ns_fsync_dir(p));
    ck_assert_ns_ok(ns_fsync_parent(p));
    /* a file in the way is an error naming it */
    snprintf(p, sizeof p, "%s/file", dir);
    ck_assert_ns_ok(ns_write_file_atomic(p, "x", 1));
    snprintf(p, sizeof p, "%s/file/sub", dir);
    ck_assert_int_eq(ns_mkdir_p(p), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/file"));
    snprintf(p, sizeof p, "%s/file", dir);
    ck_assert_int_eq(ns_fsync_dir(p), NS_ERR_IO);
}
END_TEST

START_TEST(test_write_atomic_replaces)
{
    char dir[PATH_MAX], p[PATH_MAX + 64], tmp[PATH_MAX + 96], buf[64];
    ns_test_tmpdir(dir, sizeof dir, "fsutil");
    snprintf(p, sizeof p, "%s/report.txt", dir);
    ck_assert_ns_ok(ns_write_file_atomic(p, "first version\n", 14));
    ck_assert_uint_eq(read_all(p, buf, sizeof buf), 14);
    ck_assert_ns_ok(ns_write_file_atomic(p, "v2", 2));
    ck_assert_uint_eq(read_all(p, buf, sizeof buf), 2);
    ck_assert_mem_eq(buf, "v2", 2);
    ck_assert_ns_ok(ns_write_file_atomic(p, "", 0));
    ck_assert_uint_eq(read_all(p, buf, sizeof buf), 0);
    /* the non-durable mode replaces just the same */
    ck_assert_ns_ok(ns_write_file(p, "v3!", 3, 0));
    ck_assert_uint_eq(read_all(p, buf, sizeof buf), 3);
    ck_assert_mem_eq(buf, "v3!", 3);
    /* no temp file is left behind */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* missing directory: error, nothing created */
    snprintf(p, sizeof p, "%s/missing/x.txt", dir);
    ck_assert_int_eq(ns_write_file_atomic(p, "x", 1), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "missing/x.txt"));
}
END_TEST

/* A writer killed before its rename leaves "<path>.tmp.<pid>"; the next
 * writer of that path removes it (train kept a dead run's head.h5.tmp.PID
 * forever), and leaves a live writer's and other files' temp names alone. */
START_TEST(test_tmp_name_sweeps_dead_writers)
{
    char dir[PATH_MAX], p[PATH_MAX + 64], dead[PATH_MAX + 96], live[PATH_MAX + 96],
        other[PATH_MAX + 96], tmp[PATH_MAX + 96];
    ns_test_tmpdir(dir, sizeof dir, "fsutil");
    snprintf(p, sizeof p, "%s/head.h5", dir);
    snprintf(dead, sizeof dead, "%s.tmp.99999999", p);
    snprintf(live, sizeof live, "%s.tmp.1", p);
    snprintf(other, sizeof other, "%s/ds.h5.tmp.99999999", dir);
    ck_assert_ns_ok(ns_write_file(dead, "half", 4, 0));
    ck_assert_ns_ok(ns_write_file(live, "live", 4, 0));
    ck_assert_ns_ok(ns_write_file(other, "other", 5, 0));
    ck_assert_ns_ok(ns_tmp_name(p, tmp, sizeof tmp));
    ck_assert_int_ne(access(dead, F_OK), 0);
    ck_assert_int_eq(access(live, F_OK), 0); /* pid 1 is alive */
    ck_assert_int_eq(access(other, F_OK), 0);
    ck_assert_ns_ok(ns_write_file(dead, "half", 4, 0));
    ck_assert_ns_ok(ns_write_file_atomic(p, "v1", 2));
    ck_assert_int_ne(access(dead, F_OK), 0);
}
END_TEST

/* A link planted under our temp name must not make the writer truncate its
 * target; the temp is ours, created afresh, with the umask's mode. */
START_TEST(test_tmp_name_exclusive)
{
    char dir[PATH_MAX], p[PATH_MAX + 64], tmp[PATH_MAX + 96], victim[PATH_MAX + 64],
        planted[PATH_MAX + 96], why[PATH_MAX + 200], buf[16];
    struct stat sb;
    mode_t old;
    ns_test_tmpdir(dir, sizeof dir, "fsutil");
    snprintf(p, sizeof p, "%s/catalog.h5", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(planted, sizeof planted, "%s.tmp.%ld", p, (long)getpid());
    ck_assert_ns_ok(ns_write_file(victim, "precious", 8, 0));
    ck_assert_int_eq(symlink(victim, planted), 0);
    old = umask(027);
    ck_assert_ns_ok(ns_tmp_name(p, tmp, sizeof tmp));
    umask(old);
    ck_assert_str_eq(tmp, planted);
    ck_assert_int_eq(lstat(tmp, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_uint_eq(sb.st_size, 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0640);
    ck_assert_uint_eq(read_all(victim, buf, sizeof buf), 8);
    ck_assert_mem_eq(buf, "precious", 8);
    /* a link planted between the temp's creation and the write is refused */
    ck_assert_int_eq(unlink(tmp), 0);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    ck_assert_ns_ok(ns_write_file(p, "new", 3, 0)); /* makes its temp afresh */
    ck_assert_uint_eq(read_all(victim, buf, sizeof buf), 8);
    ck_assert_uint_eq(read_all(p, buf, sizeof buf), 3);
    /* a directory in the way is an error naming it, and nothing is removed */
    ck_assert_int_eq(mkdir(planted, 0700), 0);
    ck_assert_int_eq(ns_tmp_name(p, tmp, sizeof tmp), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "catalog.h5.tmp."));
    ck_assert_str_eq(tmp, "");
    ck_assert_int_eq(rmdir(planted), 0);
    /* a directory every user may write to is untrusted; ours at 0700 is not */
    ck_assert_int_eq(chmod(dir, 0700), 0);
    ck_assert_int_eq(ns_dir_untrusted(dir, why, sizeof why), 0);
    ck_assert_int_eq(chmod(dir, 0777), 0);
    ck_assert_int_eq(ns_dir_untrusted(dir, why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, "writable by every user (mode 0777)"));
    ck_assert_int_eq(chmod(dir, 0700), 0);
}
END_TEST

START_TEST(test_atomic_rename_across_dirs)
{
    char dir[PATH_MAX], a[PATH_MAX + 64], b[PATH_MAX + 64], sub[PATH_MAX + 64], buf[16];
    ns_test_tmpdir(dir, sizeof dir, "fsutil");
    snprintf(sub, sizeof sub, "%s/d1", dir);
    ck_assert_ns_ok(ns_mkdir_p(sub));
    snprintf(a, sizeof a, "%s/d1/f", dir);
    snprintf(b, sizeof b, "%s/g", dir);
    ck_assert_ns_ok(ns_write_file_atomic(a, "abc", 3));
    ck_assert_ns_ok(ns_fsync_path(a));
    ck_assert_ns_ok(ns_atomic_rename(a, b));
    ck_assert_int_ne(access(a, F_OK), 0);
    ck_assert_uint_eq(read_all(b, buf, sizeof buf), 3);
    ck_assert_int_eq(ns_atomic_rename(a, b), NS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "d1/f"));
    ck_assert_int_eq(ns_fsync_path(a), NS_ERR_IO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fsutil");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_mkdir_p);
    tcase_add_test(tc, test_write_atomic_replaces);
    tcase_add_test(tc, test_atomic_rename_across_dirs);
    tcase_add_test(tc, test_tmp_name_sweeps_dead_writers);
    tcase_add_test(tc, test_tmp_name_exclusive);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
