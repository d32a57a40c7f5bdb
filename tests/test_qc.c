#include "helpers.h"
#include "nightshift/image.h"
#include "nightshift/qc.h"

enum { S = 16 };

static void fill(uint8_t *f, uint8_t v)
{
    memset(f, v, (size_t)S * S * 3);
}

START_TEST(test_frozen_black_res_change)
{
    ns_qc q;
    ns_clip_record rec;
    uint8_t f[S * S * 3];
    float props[NS_PROP_COUNT];
    ck_assert_ns_ok(ns_qc_init(&q, S, NULL));
    ns_qc_reset(&q);
    for (int i = 0; i < 5; i++) { /* five identical gray frames: 4 repeats, a frozen run */
        fill(f, 100);
        ns_frame_props(f, S, props);
        ns_qc_frame(&q, ns_qc_mad_prev(&q, f), props, 640, 480);
        ns_qc_keep(&q, f);
    }
    fill(f, 0);
    ns_frame_props(f, S, props);
    ns_qc_frame(&q, ns_qc_mad_prev(&q, f), props, 320, 240); /* black, and a resolution change */
    ns_qc_frame(&q, -1, NULL, 0, 0); /* a failed frame changes nothing */
    memset(&rec, 0, sizeof rec);
    ns_qc_finish(&q, 0, &rec);
    ck_assert_uint_eq(rec.qc_frozen_frames, 4);
    ck_assert_uint_eq(rec.qc_black_frames, 1);
    ck_assert_uint_eq(rec.qc_res_changes, 1);
    ck_assert_uint_eq(rec.qc_flags, NS_QC_FROZEN | NS_QC_BLACK | NS_QC_RES_CHANGE);

    /* A moving scene: no frozen flag; two repeats in a row are under the run of 3. */
    ns_qc_reset(&q);
    ck_assert_float_eq(ns_qc_mad_prev(&q, f), -1.0f); /* reset forgets the kept frame */
    for (int i = 0; i < 6; i++) {
        fill(f, (uint8_t)(i == 3 ? 40 : 40 + 20 * i));
        ns_frame_props(f, S, props);
        ns_qc_frame(&q, ns_qc_mad_prev(&q, f), props, 640, 480);
        ns_qc_keep(&q, f);
    }
    memset(&rec, 0, sizeof rec);
    rec.frames_failed = 1;
    ns_qc_finish(&q, 2, &rec);
    ck_assert_uint_eq(rec.qc_flags, NS_QC_GAPS | NS_QC_DECODE_WARN);
    ck_assert_uint_eq(rec.qc_gaps, 2);
    ns_qc_release(&q);
}
END_TEST

START_TEST(test_gaps_from_numbers)
{
    ns_clip c;
    ns_clip_frame fr[6];
    int64_t nums[6] = {0, 1, 2, 3, 9, 10};
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 6; i++) {
        memset(&fr[i], 0, sizeof fr[i]);
        fr[i].number = nums[i];
    }
    c.frames = fr;
    c.n_frames = 6;
    ck_assert_uint_eq(ns_qc_gaps(&c), 1);
    fr[0].number = -1; /* an unnumbered member is no gap */
    ck_assert_uint_eq(ns_qc_gaps(&c), 1);
    fr[5].number = 30;
    ck_assert_uint_eq(ns_qc_gaps(&c), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_frozen_black_res_change);
    tcase_add_test(tc, test_gaps_from_numbers);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
