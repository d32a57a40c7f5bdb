/* test_image.c -- JPEG decode-to-fit, area resize and frame properties.
 * JPEGs are made here with tjCompress2, so every case is deterministic. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <turbojpeg.h>

#include "helpers.h"
#include "nightshift/image.h"

/* ---- fixtures ------------------------------------------------------------ */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Gradients, a few blocks and a little noise: compresses like a photo. */
static uint8_t *make_rgb(int w, int h, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(p);
    uint32_t s = seed | 1u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            int n = (int)(rng_next(&s) % 17) - 8;
            int r = 255 * x / (w > 1 ? w - 1 : 1), g = 255 * y / (h > 1 ? h - 1 : 1);
            int b = ((x / 37 + y / 23) & 1) ? 200 : 40;
            int v[3] = {r + n, g + n, b + n};
            for (int c = 0; c < 3; c++)
                q[c] = (uint8_t)(v[c] < 0 ? 0 : v[c] > 255 ? 255 : v[c]);
        }
    return p;
}

static uint8_t *make_noise(int w, int h, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(p);
    uint32_t s = seed | 1u;
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        p[i] = (uint8_t)(rng_next(&s) >> 24);
    return p;
}

/* Compresses pixels (format pf) into a malloc'd JPEG. */
static uint8_t *compress(const uint8_t *px, int w, int h, int pf, int subsamp, int q, int flags,
                         size_t *n)
{
    tjhandle tj = tjInitCompress();
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ck_assert_ptr_nonnull(tj);
    ck_assert_msg(tjCompress2(tj, px, w, 0, h, pf, &buf, &len, subsamp, q, flags) == 0, "%s",
                  tjGetErrorStr2(tj));
    uint8_t *out = malloc(len);
    ck_assert_ptr_nonnull(out);
    memcpy(out, buf, len);
    tjFree(buf);
    tjDestroy(tj);
    *n = len;
    return out;
}

static uint8_t *make_jpeg(int w, int h, uint32_t seed, int subsamp, int flags, size_t *n)
{
    uint8_t *rgb = make_rgb(w, h, seed);
    uint8_t *j = compress(rgb, w, h, TJPF_RGB, subsamp, 90, flags, n);
    free(rgb);
    return j;
}

/* Full-size decode with plain TurboJPEG, the reference path. */
static uint8_t *full_decode(const uint8_t *jpg, size_t n, int *w, int *h)
{
    tjhandle tj = tjInitDecompress();
    int ss, cs;
    ck_assert_int_eq(tjDecompressHeader3(tj, jpg, n, w, h, &ss, &cs), 0);
    uint8_t *p = malloc((size_t)*w * *h * 3);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(tjDecompress2(tj, jpg, n, p, *w, 0, *h, TJPF_RGB, 0), 0);
    tjDestroy(tj);
    return p;
}

/* Naive area resize in double precision: integrates the source over each
 * output footprint in real coordinates, independent of the fast path's
 * integer bookkeeping. */
static void ref_resize(const uint8_t *src, int sw, int sh, size_t ss, uint8_t *dst, int dw,
                       int dh, size_t ds)
{
    double fx = (double)sw / dw, fy = (double)sh / dh;
    for (int oy = 0; oy < dh; oy++)
        for (int ox = 0; ox < dw; ox++) {
            double y0 = oy * fy, y1 = (oy + 1) * fy, x0 = ox * fx, x1 = (ox + 1) * fx;
            double acc[3] = {0, 0, 0};
            for (int y = (int)floor(y0); y < sh && y < y1; y++) {
                double wy = fmin(y1, y + 1.0) - fmax(y0, (double)y);
                if (wy <= 0)
                    continue;
                for (int x = (int)floor(x0); x < sw && x < x1; x++) {
                    double wx = fmin(x1, x + 1.0) - fmax(x0, (double)x);
                    if (wx <= 0)
                        continue;
                    for (int c = 0; c < 3; c++)
                        acc[c] += wx * wy * src[(size_t)y * ss + 3 * (size_t)x + c];
                }
            }
            for (int c = 0; c < 3; c++) {
                double v = floor(acc[c] / (fx * fy) + 0.5);
                dst[(size_t)oy * ds + 3 * (size_t)ox + c] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
}

static double mad_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

/* ---- fit names ----------------------------------------------------------- */

START_TEST(test_fit_parse_and_name)
{
    ns_fit f;
    ck_assert_ns_ok(ns_fit_parse("crop", &f));
    ck_assert_int_eq(f, NS_FIT_CROP);
    ck_assert_ns_ok(ns_fit_parse("pad", &f));
    ck_assert_int_eq(f, NS_FIT_PAD);
    ck_assert_ns_ok(ns_fit_parse("squash", &f));
    ck_assert_int_eq(f, NS_FIT_SQUASH);
    ck_assert_ns_status(ns_fit_parse("stretch", &f), NS_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "stretch"));
    ck_assert_str_eq(ns_fit_name(NS_FIT_PAD), "pad");
    ck_assert_str_eq(ns_fit_name((ns_fit)42), "unknown");
    ns_decode_limits lim;
    ns_decode_limits_default(&lim);
    ck_assert_int_eq(lim.max_width, 16384);
    ck_assert_int_eq(lim.max_height, 16384);
    ck_assert_uint_eq(lim.max_pixels, 100000000u);
}
END_TEST

/* ---- resize -------------------------------------------------------------- */

static const int resize_cases[][4] = {
    {480, 270, 224, 224}, {333, 201, 224, 224}, {16, 16, 224, 224}, {100, 50, 37, 91},
    {7, 5, 3, 11},        {224, 224, 224, 224}, {1, 1, 5, 5},       {640, 480, 97, 13},
    {5, 300, 300, 5},     {224, 224, 224, 112},
};

START_TEST(test_resize_matches_reference)
{
    /* Tolerance: max abs diff 1 (float vs double at a rounding tie). */
    int i = _i;
    int sw = resize_cases[i][0], sh = resize_cases[i][1];
    int dw = resize_cases[i][2], dh = resize_cases[i][3];
    size_t ss = (size_t)sw * 3 + 5, ds = (size_t)dw * 3 + 7; /* strides with slack */
    uint8_t *src = calloc((size_t)sh * ss, 1), *a = calloc((size_t)dh * ds, 1);
    uint8_t *b = calloc((size_t)dh * ds, 1), *c = calloc((size_t)dh * ds, 1);
    uint8_t *noise = make_noise(sw, sh, 7u + (uint32_t)i);
    for (int y = 0; y < sh; y++)
        memcpy(src + (size_t)y * ss, noise + (size_t)y * sw * 3, (size_t)sw * 3);
    ns_resize_area(src, sw, sh, ss, a, dw, dh, ds);
    ref_resize(src, sw, sh, ss, b, dw, dh, ds);
    ns_resize_cache *rc = NULL;
    ck_assert_ns_ok(ns_resize_cache_create(&rc));
    ck_assert_ns_ok(ns_resize_area_cached(rc, src, sw, sh, ss, c, dw, dh, ds));
    ns_resize_cache_free(rc);
    int maxd = 0;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw * 3; x++) {
            size_t k = (size_t)y * ds + x;
            int d = abs((int)a[k] - (int)b[k]);
            maxd = d > maxd ? d : maxd;
            ck_assert_int_eq(a[k], c[k]);
        }
    ck_assert_msg(maxd <= 1, "%dx%d -> %dx%d: max diff %d", sw, sh, dw, dh, maxd);
    if (sw == dw && sh == dh) /* equal sizes copy exactly */
        for (int y = 0; y < dh; y++)
            ck_assert_mem_eq(a + (size_t)y * ds, src + (size_t)y * ss, (size_t)sw * 3);
    free(src);
    free(a);
    free(b);
    free(c);
    free(noise);
}
END_TEST

/* The AVX-512 passes and the SSE2 path give the same bits (the same IEEE
 * operations per output, nothing fused), on every case above and on the
 * ingest's common shapes.  On a CPU without AVX-512 both runs take one path. */
START_TEST(test_resize_paths_identical)
{
    static const int extra[][4] = {{640, 360, 224, 224}, {640, 480, 224, 224},
                                   {320, 240, 112, 112}, {1280, 720, 225, 223}};
    int n_base = (int)(sizeof resize_cases / sizeof resize_cases[0]);
    int i = _i;
    const int *cs = i < n_base ? resize_cases[i] : extra[i - n_base];
    int sw = cs[0], sh = cs[1], dw = cs[2], dh = cs[3];
    size_t ss = (size_t)sw * 3 + 5, ds = (size_t)dw * 3 + 7;
    uint8_t *src = calloc((size_t)sh * ss, 1), *a = calloc((size_t)dh * ds, 1);
    uint8_t *b = calloc((size_t)dh * ds, 1);
    uint8_t *noise = make_noise(sw, sh, 11u + (uint32_t)i);
    ns_resize_cache *rc = NULL;
    for (int y = 0; y < sh; y++)
        memcpy(src + (size_t)y * ss, noise + (size_t)y * sw * 3, (size_t)sw * 3);
    ck_assert_ns_ok(ns_resize_cache_create(&rc));
    unsetenv("NIGHTSHIFT_RESIZE");
    ck_assert_ns_ok(ns_resize_area_cached(rc, src, sw, sh, ss, a, dw, dh, ds));
    setenv("NIGHTSHIFT_RESIZE", "portable", 1);
    ck_assert_ns_ok(ns_resize_area_cached(rc, src, sw, sh, ss, b, dw, dh, ds));
    unsetenv("NIGHTSHIFT_RESIZE");
    for (int y = 0; y < dh; y++)
        ck_assert_msg(memcmp(a + (size_t)y * ds, b + (size_t)y * ds, (size_t)dw * 3) == 0,
                      "%dx%d -> %dx%d: row %d differs", sw, sh, dw, dh, y);
    ns_resize_cache_free(rc);
    free(src);
    free(a);
    free(b);
    free(noise);
}
END_TEST

START_TEST(test_resize_uniform_and_upscale_blocks)
{
    /* A uniform image stays uniform; a 2x upscale repeats each pixel. */
    uint8_t src[4 * 3 * 3], dst[8 * 6 * 3];
    for (int i = 0; i < 12; i++) {
        src[3 * i] = (uint8_t)(i * 20);
        src[3 * i + 1] = 77;
        src[3 * i + 2] = (uint8_t)(255 - i);
    }
    ns_resize_area(src, 4, 3, 12, dst, 8, 6, 24);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++)
            ck_assert_mem_eq(dst + y * 24 + x * 3, src + (y / 2) * 12 + (x / 2) * 3, 3);
    /* 2x downscale of that is the original again */
    uint8_t back[4 * 3 * 3];
    ns_resize_area(dst, 8, 6, 24, back, 4, 3, 12);
    ck_assert_mem_eq(back, src, sizeof src);
}
END_TEST

/* ---- decode -------------------------------------------------------------- */

START_TEST(test_scale_choice)
{
    static const struct { int w, h, S; ns_fit fit; int sw, sh; } c[] = {
        {1280, 720, 224, NS_FIT_SQUASH, 640, 360}, /* 1/2: 1/4 gives 180 < 224; 3/8 is slower */
        {1280, 720, 224, NS_FIT_CROP, 640, 360},
        {1920, 1080, 224, NS_FIT_SQUASH, 480, 270}, /* 1/4 */
        {4000, 3000, 224, NS_FIT_SQUASH, 500, 375}, /* 1/8 */
        {1280, 720, 224, NS_FIT_PAD, 320, 180},    /* 1/4: long side 320 >= 224 */
        {640, 480, 224, NS_FIT_SQUASH, 320, 240},  /* 1/2 */
        {333, 201, 224, NS_FIT_SQUASH, 333, 201},  /* 1/1: 201 < 224 already */
        {333, 201, 96, NS_FIT_SQUASH, 167, 101},   /* 1/2: 1/4 gives 51 < 96 */
        {16, 16, 224, NS_FIT_SQUASH, 16, 16},      /* smaller than S: no DCT upscale */
    };
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t n;
        uint8_t *j = make_jpeg(c[i].w, c[i].h, 3, TJSAMP_420, 0, &n);
        uint8_t *out = malloc((size_t)c[i].S * c[i].S * 3);
        ns_decode_info info;
        ck_assert_ns_ok(ns_decode_fit(d, j, n, c[i].S, c[i].fit, NULL, out, &info));
        ck_assert_int_eq(info.width, c[i].w);
        ck_assert_int_eq(info.height, c[i].h);
        ck_assert_msg(info.scaled_w == c[i].sw && info.scaled_h == c[i].sh,
                      "case %zu: scaled %dx%d, want %dx%d", i, info.scaled_w, info.scaled_h,
                      c[i].sw, c[i].sh);
        ck_assert_int_eq(info.warning, 0);
        ck_assert_int_eq(info.subsamp, TJSAMP_420);
        ck_assert_int_eq(info.colorspace, TJCS_YCbCr);
        free(out);
        free(j);
    }
    ns_decoder_free(d);
}
END_TEST

START_TEST(test_decode_fit_matches_full_decode)
{
    /* decode_fit vs full-size decode + reference resize.  DCT scaling is a
     * different low-pass than area averaging: allow a mean abs diff of 2.5
     * (observed 0.9-1.7 on this noisy content); at scale 1/1 the paths are
     * the same and the max diff is 1. */
    static const int sizes[][2] = {{640, 480}, {1280, 720}, {333, 201}, {16, 16}};
    const int S = 224;
    ns_decoder *d = NULL;
    uint8_t *out = malloc((size_t)S * S * 3), *ref = malloc((size_t)S * S * 3);
    ck_assert_ns_ok(ns_decoder_create(&d));
    for (int i = 0; i < 4; i++)
        for (int fit = NS_FIT_SQUASH; fit <= NS_FIT_PAD; fit++) {
            int w = sizes[i][0], h = sizes[i][1], fw, fh;
            size_t n;
            uint8_t *j = make_jpeg(w, h, 11u + (uint32_t)i, TJSAMP_420, 0, &n);
            uint8_t *full = full_decode(j, n, &fw, &fh);
            ns_decode_info info;
            ck_assert_ns_ok(ns_decode_fit(d, j, n, S, (ns_fit)fit, NULL, out, &info));
            memset(ref, 0, (size_t)S * S * 3);
            if (fit == NS_FIT_SQUASH) {
                ref_resize(full, w, h, (size_t)w * 3, ref, S, S, (size_t)S * 3);
            } else if (fit == NS_FIT_CROP) {
                int m = w < h ? w : h;
                /* decode_fit crops in scaled pixels; at 1/1 and for even
                 * margins this is the same region */
                const uint8_t *src = full + (size_t)((h - m) / 2) * w * 3 + (size_t)((w - m) / 2) * 3;
                ref_resize(src, m, m, (size_t)w * 3, ref, S, S, (size_t)S * 3);
            } else {
                int iw = w >= h ? S : (int)lround((double)S * w / h);
                int ih = w >= h ? (int)lround((double)S * h / w) : S;
                ref_resize(full, w, h, (size_t)w * 3, ref + (size_t)((S - ih) / 2) * S * 3
                           + (size_t)((S - iw) / 2) * 3, iw, ih, (size_t)S * 3);
            }
            double m = mad_bytes(out, ref, (size_t)S * S * 3);
            ck_assert_msg(m <= 2.5, "%dx%d %s: mean abs diff %.3f", w, h, ns_fit_name(fit), m);
            if (info.scaled_w == w) {
                int maxd = 0;
                for (size_t k = 0; k < (size_t)S * S * 3; k++) {
                    int dd = abs((int)out[k] - (int)ref[k]);
                    maxd = dd > maxd ? dd : maxd;
                }
                ck_assert_msg(maxd <= 1, "%dx%d %s at 1/1: max diff %d", w, h,
                              ns_fit_name(fit), maxd);
            }
            free(full);
            free(j);
        }
    ns_decoder_free(d);
    free(out);
    free(ref);
}
END_TEST

/* 400x200 blue frame, green bands at x < 100 and x >= 300 (outside the centre
 * square), red square x 150..249, y 50..149 (the centre). */
static uint8_t *geometry_jpeg(int w, int h, size_t *n)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            int cx = x - w / 2, cy = y - h / 2;
            int m = (w < h ? w : h) / 2;
            int outside = w >= h ? (cx < -m || cx >= m) : (cy < -m || cy >= m);
            q[0] = 0, q[1] = 0, q[2] = 255;
            if (outside)
                q[0] = 0, q[1] = 255, q[2] = 0;
            if (abs(2 * cx + 1) <= m && abs(2 * cy + 1) <= m)
                q[0] = 255, q[1] = 0, q[2] = 0;
        }
    uint8_t *j = compress(p, w, h, TJPF_RGB, TJSAMP_444, 95, 0, n);
    free(p);
    return j;
}

static void px_near(const uint8_t *out, int S, int x, int y, int r, int g, int b)
{
    const uint8_t *q = out + ((size_t)y * S + x) * 3;
    ck_assert_msg(abs(q[0] - r) <= 12 && abs(q[1] - g) <= 12 && abs(q[2] - b) <= 12,
                  "pixel (%d,%d) = %d,%d,%d, want ~%d,%d,%d", x, y, q[0], q[1], q[2], r, g, b);
}

START_TEST(test_crop_and_pad_geometry)
{
    const int S = 64;
    size_t n;
    uint8_t out[64 * 64 * 3];
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    uint8_t *j = geometry_jpeg(400, 200, &n);

    /* crop: the centre 200x200 square fills the frame; red is its middle half */
    ck_assert_ns_ok(ns_decode_fit(d, j, n, S, NS_FIT_CROP, NULL, out, NULL));
    px_near(out, S, 32, 32, 255, 0, 0);
    px_near(out, S, 20, 20, 255, 0, 0);
    px_near(out, S, 4, 32, 0, 0, 255);
    px_near(out, S, 59, 4, 0, 0, 255);
    /* The crop offset is a whole scaled pixel (here 37 for 37.5), so the
     * outermost output columns may carry a trace of green; nothing inside. */
    for (int y = 0; y < S; y++)
        for (int x = 1; x < S - 1; x++)
            ck_assert_msg(out[(y * S + x) * 3 + 1] < 40, "green leaked into the crop at %d,%d", x, y);

    /* pad: 64x32 inner image at rows 16..47, borders exactly 0 */
    ns_decode_info info;
    ck_assert_ns_ok(ns_decode_fit(d, j, n, S, NS_FIT_PAD, NULL, out, &info));
    for (int y = 0; y < S; y++)
        if (y < 16 || y >= 48)
            for (int x = 0; x < S * 3; x++)
                ck_assert_msg(out[y * S * 3 + x] == 0, "pad border not black at row %d", y);
    px_near(out, S, 32, 32, 255, 0, 0); /* red square: x 24..39, rows 24..39 */
    px_near(out, S, 32, 19, 0, 0, 255);
    px_near(out, S, 4, 32, 0, 255, 0);  /* the green band is kept */
    px_near(out, S, 28, 36, 255, 0, 0);
    free(j);

    /* tall frame pads left and right */
    j = geometry_jpeg(200, 400, &n);
    ck_assert_ns_ok(ns_decode_fit(d, j, n, S, NS_FIT_PAD, NULL, out, &info));
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            if (x < 16 || x >= 48)
                ck_assert_mem_eq(out + ((size_t)y * S + x) * 3, "\0\0\0", 3);
    px_near(out, S, 32, 32, 255, 0, 0);
    px_near(out, S, 32, 4, 0, 255, 0);
    free(j);
    ns_decoder_free(d);
}
END_TEST

/* Offset of the SOF0 marker (FF C0) of a baseline JPEG. */
static size_t find_sof(const uint8_t *j, size_t n)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (j[i] == 0xFF && j[i + 1] == 0xC0)
            return i;
    ck_abort_msg("no SOF0 marker");
    return 0;
}

START_TEST(test_limits)
{
    size_t n;
    uint8_t out[32 * 32 * 3];
    ns_decode_info info;
    ns_decode_limits lim;
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    uint8_t *j = make_jpeg(64, 48, 5, TJSAMP_420, 0, &n);

    /* custom small limits */
    ns_decode_limits_default(&lim);
    lim.max_width = 32;
    ck_assert_ns_status(ns_decode_fit(d, j, n, 32, NS_FIT_SQUASH, &lim, out, &info), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "64x48"));
    ns_decode_limits_default(&lim);
    lim.max_pixels = 64 * 48 - 1;
    ck_assert_ns_status(ns_decode_fit(d, j, n, 32, NS_FIT_SQUASH, &lim, out, &info), NS_ERR_LIMIT);
    ck_assert_uint_eq(ns_decoder_scratch_bytes(d), 0); /* nothing allocated */
    lim.max_pixels = 64 * 48;
    lim.max_width = 64;
    lim.max_height = 48;
    ck_assert_ns_ok(ns_decode_fit(d, j, n, 32, NS_FIT_SQUASH, &lim, out, &info));

    /* a header that declares 60000x60000 */
    ns_decoder *d2 = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d2));
    size_t sof = find_sof(j, n);
    j[sof + 5] = 60000 >> 8, j[sof + 6] = 60000 & 0xFF; /* height */
    j[sof + 7] = 60000 >> 8, j[sof + 8] = 60000 & 0xFF; /* width */
    ck_assert_ns_ok(ns_decode_header(d2, j, n, &info));
    ck_assert_int_eq(info.width, 60000);
    ck_assert_int_eq(info.height, 60000);
    ck_assert_ns_status(ns_decode_fit(d2, j, n, 32, NS_FIT_SQUASH, NULL, out, &info), NS_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "60000x60000"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "16384x16384"));
    ck_assert_uint_eq(ns_decoder_scratch_bytes(d2), 0);
    free(j);
    ns_decoder_free(d);
    ns_decoder_free(d2);
}
END_TEST

START_TEST(test_truncated_and_garbage)
{
    size_t n;
    uint8_t out[64 * 64 * 3];
    ns_decode_info info;
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    for (int prog = 0; prog <= 1; prog++) {
        uint8_t *j = make_jpeg(640, 480, 9, TJSAMP_420, prog ? TJFLAG_PROGRESSIVE : 0, &n);
        /* Cut at 60%: the headers survive, so libjpeg pads the missing data
         * and warns; TurboJPEG reports that as TJERR_WARNING. */
        ck_assert_ns_ok(ns_decode_fit(d, j, n * 6 / 10, 64, NS_FIT_SQUASH, NULL, out, &info));
        ck_assert_int_eq(info.warning, 1);
        ck_assert_msg(strstr(info.warning_msg, "Premature end of JPEG file") != NULL, "%s",
                      info.warning_msg);
        ck_assert_int_eq(info.progressive, prog);
        /* the intact file has no warning, and the message is cleared */
        ck_assert_ns_ok(ns_decode_fit(d, j, n, 64, NS_FIT_SQUASH, NULL, out, &info));
        ck_assert_int_eq(info.warning, 0);
        ck_assert_str_eq(info.warning_msg, "");
        /* cut inside the headers: fatal (inside the SOF TurboJPEG itself
         * reports made-up sizes; the decoder must not believe them) */
        ck_assert_ns_status(ns_decode_fit(d, j, 100, 64, NS_FIT_SQUASH, NULL, out, &info),
                            NS_ERR_CORRUPT);
        for (size_t cut = 0; cut < 2000 && cut < n; cut += 7) {
            ns_status st = ns_decode_fit(d, j, cut, 64, NS_FIT_SQUASH, NULL, out, &info);
            ck_assert_msg(st == NS_OK || st == NS_ERR_CORRUPT, "cut at %zu: %s", cut,
                          ns_errmsg());
        }
        if (!prog) {
            size_t sof = find_sof(j, n);
            for (size_t cut = sof + 1; cut < sof + 19; cut++)
                ck_assert_ns_status(ns_decode_fit(d, j, cut, 64, NS_FIT_SQUASH, NULL, out, &info),
                                    NS_ERR_CORRUPT);
        }
        free(j);
    }
    uint8_t *g = make_noise(100, 100, 3);
    ck_assert_ns_status(ns_decode_fit(d, g, 30000, 64, NS_FIT_SQUASH, NULL, out, &info),
                        NS_ERR_CORRUPT);
    ck_assert_ns_status(ns_decode_header(d, g, 30000, &info), NS_ERR_CORRUPT);
    g[0] = 0xFF, g[1] = 0xD8; /* a JPEG signature does not make it one */
    ck_assert_ns_status(ns_decode_fit(d, g, 30000, 64, NS_FIT_SQUASH, NULL, out, &info),
                        NS_ERR_CORRUPT);
    ck_assert_ns_status(ns_decode_fit(d, g, 0, 64, NS_FIT_SQUASH, NULL, out, &info),
                        NS_ERR_CORRUPT);
    /* SOI then junk that never forms a marker: TurboJPEG reads it as a
     * tables-only datastream and reports success without a size */
    for (int i = 2; i < 2002; i++)
        g[i] = (uint8_t)(g[i] % 0xFF);
    ck_assert_ns_status(ns_decode_header(d, g, 2002, &info), NS_ERR_CORRUPT);
    ck_assert_msg(strstr(ns_errmsg(), "no frame header") != NULL, "%s", ns_errmsg());
    ck_assert_ns_status(ns_decode_fit(d, g, 2002, 64, NS_FIT_SQUASH, NULL, out, &info),
                        NS_ERR_CORRUPT);
    ck_assert_ns_status(ns_decode_fit(d, NULL, 10, 64, NS_FIT_SQUASH, NULL, out, &info),
                        NS_ERR_CORRUPT);
    /* the decoder recovers from every failure above: a good frame decodes */
    uint8_t *ok = make_jpeg(80, 60, 4, TJSAMP_420, 0, &n);
    ck_assert_ns_ok(ns_decode_fit(d, ok, n, 64, NS_FIT_SQUASH, NULL, out, &info));
    ck_assert_int_eq(info.warning, 0);
    free(ok);
    free(g);
    ns_decoder_free(d);
}
END_TEST

START_TEST(test_gray_and_progressive)
{
    const int w = 320, h = 240, S = 64;
    size_t n, np;
    uint8_t out[64 * 64 * 3], outp[64 * 64 * 3];
    ns_decode_info info;
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));

    uint8_t *rgb = make_rgb(w, h, 21);
    uint8_t *gray = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        gray[i] = rgb[3 * i];
    uint8_t *j = compress(gray, w, h, TJPF_GRAY, TJSAMP_GRAY, 95, 0, &n);
    ck_assert_ns_ok(ns_decode_fit(d, j, n, S, NS_FIT_SQUASH, NULL, out, &info));
    ck_assert_int_eq(info.colorspace, TJCS_GRAY);
    ck_assert_int_eq(info.subsamp, TJSAMP_GRAY);
    for (int k = 0; k < S * S; k++) {
        ck_assert_int_eq(out[3 * k], out[3 * k + 1]);
        ck_assert_int_eq(out[3 * k], out[3 * k + 2]);
    }
    /* R is the x gradient: left dark, right bright */
    ck_assert_int_lt(out[(32 * S + 2) * 3], 30);
    ck_assert_int_gt(out[(32 * S + 61) * 3], 225);
    free(j);

    j = compress(rgb, w, h, TJPF_RGB, TJSAMP_420, 90, 0, &n);
    uint8_t *jp = compress(rgb, w, h, TJPF_RGB, TJSAMP_420, 90, TJFLAG_PROGRESSIVE, &np);
    ck_assert_ns_ok(ns_decode_header(d, j, n, &info));
    ck_assert_int_eq(info.progressive, 0);
    ck_assert_ns_ok(ns_decode_header(d, jp, np, &info));
    ck_assert_int_eq(info.progressive, 1);
    ck_assert_int_eq(info.width, w);
    ck_assert_ns_ok(ns_decode_fit(d, j, n, S, NS_FIT_SQUASH, NULL, out, &info));
    ck_assert_int_eq(info.progressive, 0);
    ck_assert_ns_ok(ns_decode_fit(d, jp, np, S, NS_FIT_SQUASH, NULL, outp, &info));
    ck_assert_int_eq(info.progressive, 1);
    /* same coefficients, different entropy coding: identical pixels */
    ck_assert_mem_eq(out, outp, sizeof out);
    free(j);
    free(jp);
    free(gray);
    free(rgb);
    ns_decoder_free(d);
}
END_TEST

START_TEST(test_cmyk_round_trip)
{
    /* RGB -> Adobe-inverted CMYK by the inverse of R = C*K/255 -> YCCK JPEG
     * -> decode_fit at 1/1 must give the RGB back within JPEG loss. */
    const int w = 96, h = 64;
    uint8_t *rgb = make_rgb(w, h, 33);
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        int k = r > g ? (r > b ? r : b) : (g > b ? g : b);
        cmyk[4 * i + 0] = (uint8_t)(k ? (r * 255 + k / 2) / k : 255);
        cmyk[4 * i + 1] = (uint8_t)(k ? (g * 255 + k / 2) / k : 255);
        cmyk[4 * i + 2] = (uint8_t)(k ? (b * 255 + k / 2) / k : 255);
        cmyk[4 * i + 3] = (uint8_t)k;
    }
    size_t n;
    uint8_t *j = compress(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 100, 0, &n);
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    ns_decode_info info;
    uint8_t *out = malloc((size_t)w * w * 3), *ref = malloc((size_t)w * w * 3);
    ck_assert_ns_ok(ns_decode_fit(d, j, n, w, NS_FIT_SQUASH, NULL, out, &info));
    ck_assert_int_eq(info.colorspace, TJCS_YCCK);
    ck_assert_int_eq(info.scaled_w, w);
    ref_resize(rgb, w, h, (size_t)w * 3, ref, w, w, (size_t)w * 3);
    double m = mad_bytes(out, ref, (size_t)w * w * 3);
    ck_assert_msg(m < 2.0, "CMYK round trip mean abs diff %.3f", m); /* observed 0.4 */
    free(out);
    free(ref);
    free(j);
    free(cmyk);
    free(rgb);
    ns_decoder_free(d);
}
END_TEST

START_TEST(test_scratch_reused)
{
    const int S = 224;
    size_t n1, n2, n3;
    uint8_t *big = make_jpeg(1280, 720, 1, TJSAMP_420, 0, &n1);
    uint8_t *mid = make_jpeg(640, 480, 2, TJSAMP_422, 0, &n2);
    uint8_t *tiny = make_jpeg(16, 16, 3, TJSAMP_444, 0, &n3);
    uint8_t *out = malloc((size_t)S * S * 3);
    ns_decoder *d = NULL;
    ck_assert_ns_ok(ns_decoder_create(&d));
    ck_assert_uint_eq(ns_decoder_scratch_bytes(d), 0);
    ck_assert_ns_ok(ns_decode_fit(d, big, n1, S, NS_FIT_SQUASH, NULL, out, NULL));
    size_t cap = ns_decoder_scratch_bytes(d);
    ck_assert_uint_eq(cap, 640 * 360 * 3);
    for (int i = 0; i < 100; i++) {
        const uint8_t *j = i % 3 == 0 ? big : i % 3 == 1 ? mid : tiny;
        size_t n = i % 3 == 0 ? n1 : i % 3 == 1 ? n2 : n3;
        ck_assert_ns_ok(ns_decode_fit(d, j, n, S, (ns_fit)(i % 3), NULL, out, NULL));
        ck_assert_uint_eq(ns_decoder_scratch_bytes(d), cap);
    }
    ns_decoder_free(d);
    free(out);
    free(big);
    free(mid);
    free(tiny);
}
END_TEST

/* ---- properties ---------------------------------------------------------- */

static void fill(uint8_t *p, int S, int r, int g, int b)
{
    for (int k = 0; k < S * S; k++)
        p[3 * k] = (uint8_t)r, p[3 * k + 1] = (uint8_t)g, p[3 * k + 2] = (uint8_t)b;
}

START_TEST(test_props_known_frames)
{
    enum { S = 32 };
    uint8_t f[S * S * 3];
    float p[NS_PROP_COUNT];
    ck_assert_str_eq(ns_prop_names[NS_PROP_MEAN_LUMA], "mean_luma");
    ck_assert_str_eq(ns_prop_names[NS_PROP_FRAC_WHITE], "frac_white");
    ck_assert_str_eq(ns_prop_names[NS_PROP_SHARPNESS], "sharpness");

    fill(f, S, 0, 0, 0);
    ns_frame_props(f, S, p);
    ck_assert_float_eq(p[NS_PROP_MEAN_LUMA], 0.f);
    ck_assert_float_eq(p[NS_PROP_FRAC_BLACK], 1.f);
    ck_assert_float_eq(p[NS_PROP_FRAC_WHITE], 0.f);
    ck_assert_float_eq(p[NS_PROP_SATURATION], 0.f);

    fill(f, S, 128, 128, 128);
    ns_frame_props(f, S, p);
    ck_assert_float_eq_tol(p[NS_PROP_MEAN_LUMA], 128.f, 1e-4f);
    ck_assert_float_eq(p[NS_PROP_CONTRAST], 0.f);
    ck_assert_float_eq(p[NS_PROP_SHARPNESS], 0.f);
    ck_assert_float_eq(p[NS_PROP_SATURATION], 0.f);
    ck_assert_float_eq(p[NS_PROP_FRAC_BLACK], 0.f);

    fill(f, S, 255, 0, 0);
    ns_frame_props(f, S, p);
    ck_assert_float_eq(p[NS_PROP_SATURATION], 1.f);
    ck_assert_float_eq(p[NS_PROP_MEAN_R], 255.f);
    ck_assert_float_eq(p[NS_PROP_MEAN_G], 0.f);
    ck_assert_float_eq_tol(p[NS_PROP_MEAN_LUMA], 0.299f * 255, 1e-3f);

    fill(f, S, 255, 255, 255);
    ns_frame_props(f, S, p);
    ck_assert_float_eq(p[NS_PROP_FRAC_WHITE], 1.f);

    /* half black, half white rows: contrast 127.5, luma 127.5 */
    for (int y = 0; y < S; y++)
        memset(f + (size_t)y * S * 3, y < S / 2 ? 0 : 255, S * 3);
    ns_frame_props(f, S, p);
    ck_assert_float_eq_tol(p[NS_PROP_CONTRAST], 127.5f, 1e-3f);
    ck_assert_float_eq_tol(p[NS_PROP_MEAN_LUMA], 127.5f, 1e-3f);
    ck_assert_float_eq_tol(p[NS_PROP_FRAC_BLACK], 0.5f, 1e-6f);

    /* checkerboard: every interior Laplacian is +-4*255, mean 0 -> 1040400 */
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            memset(f + ((size_t)y * S + x) * 3, (x + y) & 1 ? 255 : 0, 3);
    ns_frame_props(f, S, p);
    ck_assert_float_eq_tol(p[NS_PROP_SHARPNESS], 1040400.f, 1.f);
    ck_assert_float_eq_tol(p[NS_PROP_CONTRAST], 127.5f, 1e-3f);

    /* a linear ramp has zero Laplacian everywhere */
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            memset(f + ((size_t)y * S + x) * 3, 4 * x + 2 * y, 3);
    ns_frame_props(f, S, p);
    ck_assert_float_eq(p[NS_PROP_SHARPNESS], 0.f);
    ck_assert_float_gt(p[NS_PROP_CONTRAST], 10.f);
}
END_TEST

START_TEST(test_props_match_naive)
{
    /* Against a straightforward double implementation on noise. */
    enum { S = 57 };
    uint8_t *f = make_noise(S, S, 99);
    float p[NS_PROP_COUNT];
    ns_frame_props(f, S, p);
    double L[S][S], sl = 0, sl2 = 0, sat = 0, sr = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const uint8_t *q = f + ((size_t)y * S + x) * 3;
            L[y][x] = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
            sl += L[y][x];
            sl2 += L[y][x] * L[y][x];
            sr += q[0];
            double mx = fmax(q[0], fmax(q[1], q[2])), mn = fmin(q[0], fmin(q[1], q[2]));
            sat += mx > 0 ? (mx - mn) / mx : 0;
        }
    double n = S * S, ml = sl / n;
    double sa = 0, sa2 = 0, m = (S - 2) * (S - 2);
    for (int y = 1; y < S - 1; y++)
        for (int x = 1; x < S - 1; x++) {
            double a = 4 * L[y][x] - L[y - 1][x] - L[y + 1][x] - L[y][x - 1] - L[y][x + 1];
            sa += a;
            sa2 += a * a;
        }
    ck_assert_double_eq_tol(p[NS_PROP_MEAN_LUMA], ml, 1e-3);
    ck_assert_double_eq_tol(p[NS_PROP_MEAN_R], sr / n, 1e-3);
    ck_assert_double_eq_tol(p[NS_PROP_SATURATION], sat / n, 1e-5);
    ck_assert_double_eq_tol(p[NS_PROP_CONTRAST], sqrt(sl2 / n - ml * ml), 1e-3);
    double var = sa2 / m - (sa / m) * (sa / m);
    ck_assert_double_eq_tol(p[NS_PROP_SHARPNESS], var, var * 1e-5);
    free(f);
}
END_TEST

/* The AVX-512 VBMI sums and the plain loop give the same bits, on sizes
 * around the 32-pixel vector width and on the patterns that push each sum to
 * its range: noise, dark and bright frames (the black/white counts), pure
 * primaries (saturation's exact-1 case), a 0/255 checkerboard (the largest
 * Laplacian), and the largest frame the props accept.  On a CPU without VBMI
 * both runs take the plain path. */
static const int props_sizes[] = {1, 2, 3, 4, 5, 31, 32, 33, 34, 63, 64, 65, 66, 100, 223, 224, 225, 4096};

START_TEST(test_props_paths_identical)
{
    int S = props_sizes[_i];
    size_t n = (size_t)S * S * 3;
    uint8_t *f = malloc(n), *noise = make_noise(S, S, 5u + (uint32_t)_i);
    ck_assert_ptr_nonnull(f);
    for (int pat = 0; pat < 6; pat++) {
        for (size_t i = 0; i < n; i++) {
            size_t px = i / 3, x = px % (size_t)S, y = px / (size_t)S;
            switch (pat) {
            case 0: f[i] = noise[i]; break;
            case 1: f[i] = (uint8_t)(noise[i] / 16); break;         /* dark */
            case 2: f[i] = (uint8_t)(240 + noise[i] % 16); break;   /* bright */
            case 3: f[i] = i % 3 == px % 3 ? noise[i] | 1 : 0; break; /* primaries */
            case 4: f[i] = (x + y) % 2 ? 255 : 0; break;            /* checkerboard */
            default: f[i] = (uint8_t)((x * 255 / (size_t)S + noise[i] % 8) & 255); break;
            }
        }
        float a[NS_PROP_COUNT], b[NS_PROP_COUNT];
        unsetenv("NIGHTSHIFT_PROPS");
        ns_frame_props(f, S, a);
        setenv("NIGHTSHIFT_PROPS", "portable", 1);
        ns_frame_props(f, S, b);
        unsetenv("NIGHTSHIFT_PROPS");
        for (int k = 0; k < NS_PROP_COUNT; k++)
            ck_assert_msg(memcmp(&a[k], &b[k], sizeof a[k]) == 0, "S=%d pattern %d: %s %.9g vs %.9g",
                          S, pat, ns_prop_names[k], a[k], b[k]);
    }
    free(f);
    free(noise);
}
END_TEST

START_TEST(test_mad)
{
    enum { S = 16 };
    uint8_t a[S * S * 3], b[S * S * 3];
    fill(a, S, 10, 20, 30);
    memcpy(b, a, sizeof a);
    ck_assert_float_eq(ns_frame_mad(a, b, S), 0.f);
    fill(b, S, 11, 18, 30); /* |1| + |2| + 0 per pixel */
    ck_assert_float_eq_tol(ns_frame_mad(a, b, S), 1.f, 1e-6f);
    fill(a, S, 0, 0, 0);
    fill(b, S, 255, 255, 255);
    ck_assert_float_eq(ns_frame_mad(a, b, S), 255.f);
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fit_parse_and_name);
    tcase_add_loop_test(tc, test_resize_matches_reference, 0,
                        (int)(sizeof resize_cases / sizeof resize_cases[0]));
    tcase_add_loop_test(tc, test_resize_paths_identical, 0,
                        (int)(sizeof resize_cases / sizeof resize_cases[0]) + 4);
    tcase_add_test(tc, test_resize_uniform_and_upscale_blocks);
    tcase_add_test(tc, test_scale_choice);
    tcase_add_test(tc, test_decode_fit_matches_full_decode);
    tcase_add_test(tc, test_crop_and_pad_geometry);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_truncated_and_garbage);
    tcase_add_test(tc, test_gray_and_progressive);
    tcase_add_test(tc, test_cmyk_round_trip);
    tcase_add_test(tc, test_scratch_reused);
    tcase_add_test(tc, test_props_known_frames);
    tcase_add_test(tc, test_props_match_naive);
    tcase_add_loop_test(tc, test_props_paths_identical, 0,
                        (int)(sizeof props_sizes / sizeof props_sizes[0]));
    tcase_add_test(tc, test_mad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ns_test_run(image_suite()); }
