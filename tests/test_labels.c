/* test_labels.c -- label set files, effective labels, the CSV reader on
 * hostile input, and labels import. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/labels.h"
#include "nightshift/store.h"

static void make_set(ns_labelset *set, const char *name, size_t n, const char *const *classes,
                     size_t n_classes, int clip0, int cls_shift)
{
    memset(set, 0, sizeof *set);
    ck_assert_ns_ok(ns_labelset_alloc(set, n, n_classes));
    snprintf(set->name, sizeof set->name, "%s", name);
    snprintf(set->on_conflict, sizeof set->on_conflict, "fail");
    set->sources = strdup("a.csv\nb.csv");
    for (size_t c = 0; c < n_classes; c++)
        snprintf(set->classes[c], NS_LABEL_LEN, "%s", classes[c]);
    /* Two frames per clip; clip hashes sort in their own order, so rows are
     * sorted after filling. */
    for (size_t i = 0; i < n; i++) {
        ns_test_clip_sha("lbl", clip0 + (int)(i / 2), set->clip[i]);
        set->index[i] = (uint32_t)(i % 2) * 3;
        set->cls[i] = (int32_t)((i + (size_t)cls_shift) % n_classes);
        set->time[i] = NAN;
        set->confidence[i] = 0.5f;
        snprintf(set->annotator[i], NS_ANNOTATOR_LEN, "ann%zu", i % 3);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int c = strcmp(set->clip[j - 1], set->clip[j]);
            if (c < 0 || (c == 0 && set->index[j - 1] < set->index[j]))
                break;
            char tmp[NS_SHA256_HEX];
            memcpy(tmp, set->clip[j], NS_SHA256_HEX);
            memcpy(set->clip[j], set->clip[j - 1], NS_SHA256_HEX);
            memcpy(set->clip[j - 1], tmp, NS_SHA256_HEX);
            uint32_t ti = set->index[j];
            set->index[j] = set->index[j - 1];
            set->index[j - 1] = ti;
            int32_t tc = set->cls[j];
            set->cls[j] = set->cls[j - 1];
            set->cls[j - 1] = tc;
        }
}

static ns_store *empty_store(char *dir, size_t cap)
{
    ns_store *s = NULL;
    ns_test_tmpdir(dir, cap, "labels");
    ck_assert_ns_ok(ns_store_open_write(dir, 16, 0, &s));
    return s;
}

START_TEST(test_labelset_files)
{
    char dir[PATH_MAX];
    const char *c1[] = {"idle", "pick", "=SUM(A1)"}, *c2[] = {"<b>new</b>", "pick"};
    ns_labelset a, b, *sets = NULL;
    size_t n = 0;
    ns_labelmap m;
    ns_store *s = empty_store(dir, sizeof dir);

    /* No labels yet: an empty map, not an error. */
    ck_assert_ns_ok(ns_labels_load(s, NULL, &m));
    ck_assert_uint_eq(m.n, 0);
    ns_labels_release(&m);

    make_set(&a, "glove", 10, c1, 3, 0, 0);
    ck_assert_ns_ok(ns_labelset_commit(s, &a));
    ck_assert_uint_eq(a.version, 1);
    /* The second set relabels clips 3 and 4 (rows 6..9 of the first) and
     * adds clips 5 and 6, with a class list of its own. */
    make_set(&b, "review", 8, c2, 2, 3, 1);
    ck_assert_ns_ok(ns_labelset_commit(s, &b));
    ck_assert_uint_eq(b.version, 2);

    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(sets[0].name, "glove");
    ck_assert_str_eq(sets[1].name, "review");
    ck_assert_uint_eq(sets[0].n, 10);
    ck_assert_str_eq(sets[0].classes[2], "=SUM(A1)");
    ck_assert_str_eq(sets[0].sources, "a.csv\nb.csv");
    ck_assert_mem_eq(sets[0].cls, a.cls, 10 * sizeof(int32_t));
    ck_assert_str_eq(sets[1].annotator[1], b.annotator[1]);
    ns_labelsets_free(sets, n);

    ck_assert_ns_ok(ns_labels_load(s, NULL, &m));
    ck_assert_uint_eq(m.n, 10 + 8 - 4);
    ck_assert_uint_eq(m.n_sets, 2);
    ck_assert_str_eq(m.sets[0], "glove@1");
    ck_assert_str_eq(m.sets[1], "review@2");
    /* Union of classes in first-seen order. */
    ck_assert_uint_eq(m.n_classes, 4);
    ck_assert_str_eq(m.classes[0], "idle");
    ck_assert_str_eq(m.classes[3], "<b>new</b>");
    /* Newest set wins for the frames both label. */
    for (size_t i = 0; i < b.n; i++) {
        int32_t got = ns_labels_find(&m, b.clip[i], b.index[i]);
        ck_assert_str_eq(m.classes[got], c2[b.cls[i]]);
    }
    for (size_t i = 0; i < a.n; i++) {
        int in_b = 0;
        for (size_t j = 0; j < b.n; j++)
            in_b |= strcmp(a.clip[i], b.clip[j]) == 0 && a.index[i] == b.index[j];
        if (!in_b)
            ck_assert_str_eq(m.classes[ns_labels_find(&m, a.clip[i], a.index[i])], c1[a.cls[i]]);
    }
    ck_assert_int_eq(ns_labels_find(&m, a.clip[0], 1), -1);
    ck_assert_int_eq(ns_labels_find(&m, "0000", 0), -1);
    ns_labels_release(&m);

    /* Only the named sets. */
    ck_assert_ns_ok(ns_labels_load(s, "glove,other", &m));
    ck_assert_uint_eq(m.n, 10);
    ck_assert_uint_eq(m.n_sets, 1);
    ns_labels_release(&m);
    ns_labels_release(&m);

    /* Invalid sets are refused before anything is written. */
    a.cls[0] = 5;
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_CORRUPT);
    a.cls[0] = 0;
    snprintf(a.name, sizeof a.name, "../evil");
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_USAGE);
    snprintf(a.name, sizeof a.name, "glove");
    memcpy(a.clip[1], a.clip[0], NS_SHA256_HEX);
    a.index[1] = a.index[0];
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_CORRUPT);
    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ck_assert_uint_eq(n, 2);
    ns_labelsets_free(sets, n);
    ns_labelset_release(&a);
    ns_labelset_release(&b);
    ns_store_close(s);
}
END_TEST

/* A damaged set is an error naming the file, never a silently smaller map. */
START_TEST(test_labelset_damaged)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    const char *c1[] = {"idle", "pick"};
    ns_labelset a;
    ns_labelmap m;
    ns_store *s = empty_store(dir, sizeof dir);
    make_set(&a, "glove", 4, c1, 2, 0, 0);
    ck_assert_ns_ok(ns_labelset_commit(s, &a));
    snprintf(path, sizeof path, "%s/labels/000001-glove.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, "label", H5P_DEFAULT);
    int32_t bad[4] = {0, 1, 2, 0};
    ck_assert(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    ck_assert_ns_status(ns_labels_load(s, NULL, &m), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "000001-glove.h5"));
    /* Temps of a killed import are neither read nor kept. */
    snprintf(path, sizeof path, "%s/labels/000002-x.h5.tmp.123", dir);
    ns_test_write_text(path, "partial");
    ns_labelset_release(&a);
    ns_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("labels");
    TCase *tc = tcase_create("sets");
    tcase_add_test(tc, test_labelset_files);
    tcase_add_test(tc, test_labelset_damaged);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
