/* test_dataset.c -- the dataset file: round trip, content id, hostile files. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/dataset.h"

/* A small dataset with every field set to something recognisable. */
static void fill(ns_dataset *ds, size_t n, int d)
{
    uint64_t rng = 42;
    ck_assert_ns_ok(ns_dataset_alloc(ds, n, d, 3));
    snprintf(ds->classes[0], NS_LABEL_LEN, "idle");
    snprintf(ds->classes[1], NS_LABEL_LEN, "=HYPERLINK(\"x\")");
    snprintf(ds->classes[2], NS_LABEL_LEN, "<b>pick</b>");
    for (size_t i = 0; i < n * (size_t)d; i++)
        ds->emb[i] = ns_test_rng_unif(&rng);
    for (size_t i = 0; i < n; i++) {
        ns_test_clip_sha("ds-clip", (int)(i / 4), ds->clip[i]);
        snprintf(ds->member[i], NS_MEMBER_LEN, "frame_%zu.jpg", i % 4);
        snprintf(ds->camera[i], NS_CAMERA_LEN, "cam%02zu", i % 3);
        snprintf(ds->night[i], NS_NIGHT_LEN, "2026-11-%02zu", 1 + i / 8);
        ds->label[i] = (int32_t)(i % 3);
        ds->split[i] = (uint8_t)((i / 4) % 3);
        ds->index[i] = (uint32_t)(i % 4);
        ds->time[i] = i % 5 ? 1.7e9 + (double)i : NAN;
        ds->condition[i] = (int32_t)(i % 4) - 1;
        ds->view_row[i] = 1000 + i;
    }
    memset(ds->model_id, 'a', NS_SHA256_HEX - 1);
    memset(ds->store_id, 'b', NS_SHA256_HEX - 1);
    snprintf(ds->split_by, sizeof ds->split_by, "clip");
    ds->seed = 7;
    ds->guard_minutes = 10;
    ds->val_fraction = 0.1;
    ds->test_fraction = 0.2;
    snprintf(ds->nights_from, NS_NIGHT_LEN, "2026-11-01");
    snprintf(ds->nights_to, NS_NIGHT_LEN, "2026-11-03");
    free(ds->label_sets);
    ds->label_sets = strdup("glove@1,extra@3");
    ds->audit = (ns_dataset_audit){0.25, 3, 1, 0.005, 0.01, 1};
    ds->created = 1.8e9;
}

START_TEST(test_round_trip)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_dataset a, b;
    fill(&a, 24, 5);
    ns_test_tmpdir(dir, sizeof dir, "dataset");
    snprintf(path, sizeof path, "%s/ds.h5", dir);
    ck_assert_ns_ok(ns_dataset_save(&a, path));
    ck_assert_int_eq((int)strlen(a.dataset_id), 64);
    ck_assert_ns_ok(ns_dataset_load(path, &b));
    ck_assert_uint_eq(b.n, a.n);
    ck_assert_int_eq(b.d, a.d);
    ck_assert_uint_eq(b.n_classes, 3);
    ck_assert_str_eq(b.dataset_id, a.dataset_id);
    ck_assert_mem_eq(b.emb, a.emb, a.n * (size_t)a.d * sizeof(float));
    ck_assert_mem_eq(b.label, a.label, a.n * sizeof(int32_t));
    ck_assert_mem_eq(b.split, a.split, a.n);
    ck_assert_mem_eq(b.index, a.index, a.n * sizeof(uint32_t));
    ck_assert_mem_eq(b.condition, a.condition, a.n * sizeof(int32_t));
    ck_assert_mem_eq(b.view_row, a.view_row, a.n * sizeof(uint64_t));
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_str_eq(b.clip[i], a.clip[i]);
        ck_assert_str_eq(b.member[i], a.member[i]);
        ck_assert_str_eq(b.camera[i], a.camera[i]);
        ck_assert_str_eq(b.night[i], a.night[i]);
        ck_assert(isnan(a.time[i]) ? isnan(b.time[i]) : b.time[i] == a.time[i]);
    }
    for (int c = 0; c < 3; c++)
        ck_assert_str_eq(b.classes[c], a.classes[c]);
    ck_assert_str_eq(b.model_id, a.model_id);
    ck_assert_str_eq(b.store_id, a.store_id);
    ck_assert_str_eq(b.split_by, "clip");
    ck_assert_str_eq(b.label_sets, "glove@1,extra@3");
    ck_assert_str_eq(b.nights_from, "2026-11-01");
    ck_assert_str_eq(b.nights_to, "2026-11-03");
    ck_assert_uint_eq(b.seed, 7);
    ck_assert(b.guard_minutes == 10 && b.val_fraction == 0.1 && b.test_fraction == 0.2);
    ck_assert(b.created == 1.8e9);
    ck_assert(b.audit.threshold == 0.25 && b.audit.n_near_dup == 3 && b.audit.n_exact_dup == 1 &&
              b.audit.test_leak_share == 0.005 && b.audit.max_leak == 0.01 && b.audit.passed);

    /* The id depends on the content only: another creation time, the same id;
     * one label changed, another id. */
    char id[NS_SHA256_HEX];
    a.created = 1.9e9;
    ck_assert_ns_ok(ns_dataset_save(&a, path));
    ck_assert_str_eq(a.dataset_id, b.dataset_id);
    a.label[3] = (a.label[3] + 1) % 3;
    ns_dataset_content_id(&a, id);
    ck_assert_str_ne(id, b.dataset_id);
    ns_dataset_release(&a);
    ns_dataset_release(&b);
    ns_dataset_release(&b); /* idempotent */
}
END_TEST

/* Garbage after the NUL of a caller's string buffer never reaches the id. */
START_TEST(test_id_ignores_padding)
{
    ns_dataset a, b;
    char dir[PATH_MAX], p1[PATH_MAX + 16], p2[PATH_MAX + 16];
    fill(&a, 8, 3);
    fill(&b, 8, 3);
    memset(b.classes[1] + strlen(b.classes[1]) + 1, 'x', 10);
    memset(b.clip[2] + NS_SHA256_HEX - 1, 0, 1);
    ns_test_tmpdir(dir, sizeof dir, "dataset");
    snprintf(p1, sizeof p1, "%s/a.h5", dir);
    snprintf(p2, sizeof p2, "%s/b.h5", dir);
    ck_assert_ns_ok(ns_dataset_save(&a, p1));
    ck_assert_ns_ok(ns_dataset_save(&b, p2));
    ck_assert_str_eq(a.dataset_id, b.dataset_id);
    ns_dataset_release(&a);
    ns_dataset_release(&b);
}
END_TEST

/* Edits one int32 dataset of an existing file in place. */
static void poke_i32(const char *path, const char *name, hsize_t row, int32_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert(d >= 0);
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, (hsize_t[]){1}, NULL);
    hsize_t start[1] = {row}, count[1] = {1};
    ck_assert(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0);
    ck_assert(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

START_TEST(test_hostile_files)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], other[PATH_MAX + 16];
    ns_dataset a, b;
    fill(&a, 12, 4);
    ns_test_tmpdir(dir, sizeof dir, "dataset");
    snprintf(path, sizeof path, "%s/ds.h5", dir);
    ck_assert_ns_ok(ns_dataset_save(&a, path));

    /* A changed label is caught by the content id. */
    poke_i32(path, "labels", 2, (a.label[2] + 1) % 3);
    ck_assert_ns_status(ns_dataset_load(path, &b), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "dataset_id"));
    /* A label outside the class list is refused before that. */
    poke_i32(path, "labels", 2, 7);
    ck_assert_ns_status(ns_dataset_load(path, &b), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "label 7"));

    /* Not HDF5, missing, and a file that is not ours: never replaced. */
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    ns_test_write_text(other, "my notes\n");
    ck_assert_ns_status(ns_dataset_load(other, &b), NS_ERR_FORMAT);
    ck_assert_ns_status(ns_dataset_save(&a, other), NS_ERR_EXISTS);
    FILE *f = fopen(other, "rb");
    char buf[16] = {0};
    ck_assert(fread(buf, 1, sizeof buf - 1, f) > 0);
    fclose(f);
    ck_assert_str_eq(buf, "my notes\n");
    snprintf(other, sizeof other, "%s/missing.h5", dir);
    ck_assert_ns_status(ns_dataset_load(other, &b), NS_ERR_IO);

    /* Invalid content is not written. */
    snprintf(other, sizeof other, "%s/bad.h5", dir);
    a.split[0] = 9;
    ck_assert_ns_status(ns_dataset_save(&a, other), NS_ERR_USAGE);
    ck_assert_int_ne(access(other, F_OK), 0);
    a.split[0] = 0;
    a.emb[5] = NAN;
    ck_assert_ns_status(ns_dataset_save(&a, other), NS_ERR_USAGE);
    ck_assert_int_ne(access(other, F_OK), 0);
    ns_dataset_release(&a);
}
END_TEST

START_TEST(test_empty)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_dataset a, b;
    ck_assert_ns_ok(ns_dataset_alloc(&a, 0, 16, 0));
    snprintf(a.split_by, sizeof a.split_by, "none");
    ns_test_tmpdir(dir, sizeof dir, "dataset");
    snprintf(path, sizeof path, "%s/ds.h5", dir);
    ck_assert_ns_ok(ns_dataset_save(&a, path));
    ck_assert_ns_ok(ns_dataset_load(path, &b));
    ck_assert_uint_eq(b.n, 0);
    ck_assert_int_eq(b.d, 16);
    ns_dataset_release(&a);
    ns_dataset_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("file");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_id_ignores_padding);
    tcase_add_test(tc, test_hostile_files);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
