/* test_head.c -- the head in memory and on disk: round trip, head id,
 * hostile files, the model check, and prediction against a double-precision
 * reference (softmax and MLP, temperature, batch and thread independence). */
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/head.h"

static void fill(ns_head *h, ns_head_kind kind, int d, int hidden, int C, uint64_t seed)
{
    ck_assert_ns_ok(ns_head_alloc(h, kind, d, hidden, C));
    int in = kind == NS_HEAD_MLP ? hidden : d;
    for (size_t i = 0; i < (size_t)C * (size_t)in; i++)
        h->w[i] = ns_test_rng_unif(&seed);
    for (int c = 0; c < C; c++) {
        h->b[c] = 0.1f * ns_test_rng_unif(&seed);
        snprintf(h->classes[c], NS_LABEL_LEN, c == 1 ? "=cmd|' /C calc'!A0" : "class_%d", c);
    }
    if (kind == NS_HEAD_MLP) {
        for (size_t i = 0; i < (size_t)hidden * (size_t)d; i++)
            h->w1[i] = ns_test_rng_unif(&seed);
        for (int j = 0; j < hidden; j++)
            h->b1[j] = 0.1f * ns_test_rng_unif(&seed);
    }
    h->temperature = 1.7f;
    memset(h->model_id, 'a', NS_SHA256_HEX - 1);
    memset(h->dataset_id, 'd', NS_SHA256_HEX - 1);
    h->label_sets = strdup("night-a@000001,night-b@000002");
    h->options = strdup("head=softmax l2=0.0001");
    h->n_epochs = 3;
    h->epochs = calloc(3, sizeof *h->epochs);
    for (int e = 0; e < 3; e++)
        h->epochs[e] = (ns_head_epoch){e + 1, 1.0 / (e + 1), 1.5 / (e + 1), 0.5 + 0.1 * e};
}

static float *random_emb(size_t n, int d, uint64_t seed)
{
    float *x = malloc(n * (size_t)d * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n * (size_t)d; i++)
        x[i] = ns_test_rng_unif(&seed);
    return x;
}

/* The straightforward reference: the formula in double precision. */
static void ref_predict(const ns_head *h, const float *x, size_t n, double *prob)
{
    const int C = h->n_classes;
    double *hid = malloc((size_t)(h->hidden > 0 ? h->hidden : 1) * sizeof *hid);
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * (size_t)h->d;
        double *z = prob + i * (size_t)C, m = -INFINITY, s = 0;
        for (int j = 0; j < h->hidden; j++) {
            double v = h->b1[j];
            for (int k = 0; k < h->d; k++)
                v += (double)h->w1[(size_t)j * h->d + k] * xi[k];
            hid[j] = v > 0 ? v : 0;
        }
        for (int c = 0; c < C; c++) {
            double v = h->b[c];
            if (h->kind == NS_HEAD_MLP)
                for (int j = 0; j < h->hidden; j++)
                    v += (double)h->w[(size_t)c * h->hidden + j] * hid[j];
            else
                for (int k = 0; k < h->d; k++)
                    v += (double)h->w[(size_t)c * h->d + k] * xi[k];
            z[c] = v / h->temperature;
            m = z[c] > m ? z[c] : m;
        }
        for (int c = 0; c < C; c++)
            s += (z[c] = exp(z[c] - m));
        for (int c = 0; c < C; c++)
            z[c] /= s;
    }
    free(hid);
}

static void check_against_ref(ns_head_kind kind, int d, int hidden, int C, size_t n)
{
    ns_head h;
    fill(&h, kind, d, hidden, C, 1000 + (uint64_t)d * 7 + (uint64_t)C);
    float *x = random_emb(n, d, 99 + n), *p = malloc(n * (size_t)C * sizeof *p);
    double *r = malloc(n * (size_t)C * sizeof *r);
    ck_assert_ns_ok(ns_head_predict(&h, x, n, p));
    ref_predict(&h, x, n, r);
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        for (int c = 0; c < C; c++) {
            double got = p[i * (size_t)C + c], want = r[i * (size_t)C + c];
            /* float accumulation over d <= 512 terms of size ~1: relative 1e-5 of the logit
             * scale ends up well under 1e-4 in a probability. */
            ck_assert_msg(fabs(got - want) < 1e-4, "%s d=%d C=%d row %zu class %d: %g vs %g",
                          ns_head_kind_name(kind), d, C, i, c, got, want);
            sum += got;
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "row %zu sums to %g", i, sum);
    }
    free(x);
    free(p);
    free(r);
    ns_head_release(&h);
}

START_TEST(test_predict_matches_reference)
{
    check_against_ref(NS_HEAD_SOFTMAX, 1, 0, 1, 3);
    check_against_ref(NS_HEAD_SOFTMAX, 7, 0, 3, 65);
    check_against_ref(NS_HEAD_SOFTMAX, 512, 0, 10, 300);
    check_against_ref(NS_HEAD_MLP, 5, 3, 2, 10);
    check_against_ref(NS_HEAD_MLP, 33, 17, 4, 129);
    check_against_ref(NS_HEAD_MLP, 512, 64, 10, 200);
}
END_TEST

START_TEST(test_temperature_scales_logits)
{
    ns_head h;
    fill(&h, NS_HEAD_SOFTMAX, 16, 0, 4, 5);
    const size_t n = 20;
    float *x = random_emb(n, 16, 6), *z = malloc(n * 4 * sizeof *z), *p = malloc(n * 4 * sizeof *p);
    ck_assert_ns_ok(ns_head_logits(&h, x, n, z));
    for (float T = 0.25f; T < 5.0f; T *= 2.0f) {
        h.temperature = T;
        ck_assert_ns_ok(ns_head_predict(&h, x, n, p));
        for (size_t i = 0; i < n; i++)
            for (int c = 1; c < 4; c++) {
                /* log p_c - log p_0 = (z_c - z_0) / T */
                double lr = log(p[i * 4 + c]) - log(p[i * 4]);
                double want = (z[i * 4 + c] - z[i * 4]) / T;
                ck_assert_msg(fabs(lr - want) < 1e-3 * (1 + fabs(want)), "T=%g: %g vs %g", T, lr,
                              want);
            }
    }
    h.temperature = 0.0f;
    ck_assert_ns_status(ns_head_predict(&h, x, n, p), NS_ERR_CORRUPT);
    free(x);
    free(z);
    free(p);
    ns_head_release(&h);
}
END_TEST

/* A frame's probabilities are the same bits in any batch and at any thread count. */
START_TEST(test_predict_deterministic)
{
    ns_head h;
    fill(&h, NS_HEAD_MLP, 128, 96, 6, 11);
    const size_t n = 1000;
    float *x = random_emb(n, 128, 12), *a = malloc(n * 6 * sizeof *a),
          *b = malloc(n * 6 * sizeof *b);
    omp_set_num_threads(1);
    ck_assert_ns_ok(ns_head_predict(&h, x, n, a));
    omp_set_num_threads(2);
    ck_assert_ns_ok(ns_head_predict(&h, x, n, b));
    ck_assert(memcmp(a, b, n * 6 * sizeof *a) == 0);
    ck_assert_ns_ok(ns_head_predict(&h, x + 77 * 128, 5, b));
    ck_assert(memcmp(a + 77 * 6, b, 5 * 6 * sizeof *a) == 0);
    free(x);
    free(a);
    free(b);
    ns_head_release(&h);
}
END_TEST

START_TEST(test_top_and_margin)
{
    const float p[] = {0.2f, 0.5f, 0.3f, 0.4f, 0.4f, 0.2f, 1.0f, 0.0f, 0.0f};
    int32_t top[3];
    float q[3], m[3];
    ns_head_top(p, 3, 3, top, q, m);
    ck_assert_int_eq(top[0], 1);
    ck_assert_float_eq_tol(q[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(m[0], 0.2f, 1e-6f);
    ck_assert_int_eq(top[1], 0); /* a tie goes to the lower index, margin 0 */
    ck_assert_float_eq_tol(m[1], 0.0f, 1e-7f);
    ck_assert_int_eq(top[2], 0);
    ck_assert_float_eq_tol(m[2], 1.0f, 1e-7f);
    const float one[] = {1.0f};
    ns_head_top(one, 1, 1, top, q, m);
    ck_assert_int_eq(top[0], 0);
    ck_assert_float_eq_tol(m[0], 1.0f, 1e-7f);
}
END_TEST

static void assert_same(const ns_head *a, const ns_head *b)
{
    int in = a->kind == NS_HEAD_MLP ? a->hidden : a->d;
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_int_eq(a->d, b->d);
    ck_assert_int_eq(a->hidden, b->hidden);
    ck_assert_int_eq(a->n_classes, b->n_classes);
    ck_assert(memcmp(a->w, b->w, (size_t)a->n_classes * in * sizeof *a->w) == 0);
    ck_assert(memcmp(a->b, b->b, (size_t)a->n_classes * sizeof *a->b) == 0);
    if (a->kind == NS_HEAD_MLP) {
        ck_assert(memcmp(a->w1, b->w1, (size_t)a->hidden * a->d * sizeof *a->w1) == 0);
        ck_assert(memcmp(a->b1, b->b1, (size_t)a->hidden * sizeof *a->b1) == 0);
    }
    ck_assert(a->temperature == b->temperature);
    for (int c = 0; c < a->n_classes; c++)
        ck_assert_str_eq(a->classes[c], b->classes[c]);
    ck_assert_str_eq(a->head_id, b->head_id);
    ck_assert_str_eq(a->model_id, b->model_id);
    ck_assert_str_eq(a->dataset_id, b->dataset_id);
    ck_assert_str_eq(a->label_sets, b->label_sets);
    ck_assert_str_eq(a->options, b->options);
    ck_assert_uint_eq(a->n_epochs, b->n_epochs);
    for (size_t e = 0; e < a->n_epochs; e++) {
        ck_assert_int_eq(a->epochs[e].epoch, b->epochs[e].epoch);
        ck_assert(a->epochs[e].val_accuracy == b->epochs[e].val_accuracy);
        ck_assert(a->epochs[e].train_loss == b->epochs[e].train_loss);
        ck_assert(a->epochs[e].val_loss == b->epochs[e].val_loss);
    }
}

START_TEST(test_round_trip)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_test_tmpdir(dir, sizeof dir, "head");
    snprintf(path, sizeof path, "%s/h.h5", dir);
    for (int k = 0; k < 2; k++) {
        ns_head h, back;
        fill(&h, k ? NS_HEAD_MLP : NS_HEAD_SOFTMAX, 9, k ? 5 : 0, 3, 21);
        ck_assert_ns_ok(ns_head_save(&h, path));
        ck_assert_uint_eq(strlen(h.head_id), 64);
        char id[NS_SHA256_HEX];
        ns_head_content_id(&h, id);
        ck_assert_str_eq(id, h.head_id);
        ck_assert_ns_ok(ns_head_load(path, &back));
        assert_same(&h, &back);
        ns_head_release(&back);
        ns_head_release(&back); /* idempotent */
        ns_head_release(&h);
    }
    ns_head_release(NULL);
}
END_TEST

/* The id covers weights, classes, temperature and model, not provenance. */
START_TEST(test_head_id_content)
{
    ns_head h;
    char a[NS_SHA256_HEX], b[NS_SHA256_HEX];
    fill(&h, NS_HEAD_MLP, 6, 4, 3, 31);
    ns_head_content_id(&h, a);
    h.dataset_id[0] = 'e';
    h.n_epochs = 1;
    ns_head_content_id(&h, b);
    ck_assert_str_eq(a, b);
    h.w1[3] += 1e-6f;
    ns_head_content_id(&h, b);
    ck_assert_str_ne(a, b);
    h.w1[3] -= 1e-6f;
    h.temperature = 1.0f;
    ns_head_content_id(&h, b);
    ck_assert_str_ne(a, b);
    h.temperature = 1.7f;
    h.model_id[5] = 'b';
    ns_head_content_id(&h, b);
    ck_assert_str_ne(a, b);
    h.model_id[5] = 'a';
    snprintf(h.classes[2], NS_LABEL_LEN, "other");
    ns_head_content_id(&h, b);
    ck_assert_str_ne(a, b);
    ns_head_release(&h);
}
END_TEST

static void poke_float(const char *path, const char *name, float v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t start[2] = {0, 0}, one[2] = {1, 1};
    ck_assert(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
    hid_t ms = H5Screate_simple(H5Sget_simple_extent_ndims(fs), one, NULL);
    ck_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

START_TEST(test_hostile_files)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], other[PATH_MAX + 16];
    ns_head h, back;
    ns_test_tmpdir(dir, sizeof dir, "head");
    snprintf(path, sizeof path, "%s/h.h5", dir);
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    fill(&h, NS_HEAD_MLP, 4, 3, 2, 41);
    ck_assert_ns_ok(ns_head_save(&h, path));

    /* A changed weight no longer matches the id. */
    poke_float(path, "w1", 0.123f);
    ck_assert_ns_status(ns_head_load(path, &back), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "head_id"));
    ck_assert_ptr_null(back.w);
    /* A non-finite weight is named. */
    poke_float(path, "b", NAN);
    ck_assert_ns_status(ns_head_load(path, &back), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/b"));

    /* Not HDF5, missing, and a file that is not a head is never replaced. */
    ns_test_write_text(other, "my notes\n");
    ck_assert_ns_status(ns_head_load(other, &back), NS_ERR_FORMAT);
    ck_assert_ns_status(ns_head_save(&h, other), NS_ERR_EXISTS);
    FILE *fp = fopen(other, "r");
    char buf[32] = {0};
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, fp));
    fclose(fp);
    ck_assert_str_eq(buf, "my notes\n");
    snprintf(other, sizeof other, "%s/missing.h5", dir);
    ck_assert_ns_status(ns_head_load(other, &back), NS_ERR_IO);

    /* Bad content is refused before anything is written. */
    h.temperature = -1.0f;
    ck_assert_ns_status(ns_head_save(&h, other), NS_ERR_USAGE);
    ck_assert_int_ne(access(other, F_OK), 0);
    h.temperature = 1.0f;
    memcpy(h.classes[1], h.classes[0], NS_LABEL_LEN);
    ck_assert_ns_status(ns_head_save(&h, other), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "twice"));
    snprintf(h.classes[1], NS_LABEL_LEN, "b");
    h.model_id[0] = '\0';
    ck_assert_ns_status(ns_head_save(&h, other), NS_ERR_USAGE);
    ns_head_release(&h);
}
END_TEST

START_TEST(test_check_model)
{
    ns_head h;
    char other[NS_SHA256_HEX];
    fill(&h, NS_HEAD_SOFTMAX, 8, 0, 2, 51);
    ns_head_content_id(&h, h.head_id);
    ck_assert_ns_ok(ns_head_check_model(&h, h.model_id, 8));
    ck_assert_ns_ok(ns_head_check_model(&h, NULL, 8));
    memset(other, 'f', NS_SHA256_HEX - 1);
    other[NS_SHA256_HEX - 1] = '\0';
    ck_assert_ns_status(ns_head_check_model(&h, other, 8), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "aaaaaaaaaaaa"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "ffffffffffff"));
    ck_assert_ns_status(ns_head_check_model(&h, h.model_id, 16), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "dimension 8"));
    ns_head_release(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("head");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_predict_matches_reference);
    tcase_add_test(tc, test_temperature_scales_logits);
    tcase_add_test(tc, test_predict_deterministic);
    tcase_add_test(tc, test_top_and_margin);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_head_id_content);
    tcase_add_test(tc, test_hostile_files);
    tcase_add_test(tc, test_check_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ns_test_run(suite());
}
