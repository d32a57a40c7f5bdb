/* image.h -- JPEG decode to the store's working size, and per-frame properties.
 *
 * Decoding uses TurboJPEG with DCT-domain scaling to the smallest scale whose
 * output still covers the target (both sides >= the needed size), then an
 * area-averaging resize to S x S RGB.  Grayscale and progressive JPEGs work;
 * CMYK/YCCK JPEGs are decoded as CMYK and converted to RGB.  Header sizes
 * are checked against ns_decode_limits before any allocation.
 *
 * One ns_decoder per thread: it owns a TurboJPEG handle and a scratch buffer
 * that grows to the largest scaled frame seen and is then reused.
 */
#ifndef NIGHTSHIFT_IMAGE_H
#define NIGHTSHIFT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

typedef enum ns_fit {
    NS_FIT_SQUASH = 0, /* whole frame scaled to S x S (aspect not kept) */
    NS_FIT_CROP,       /* centre square crop, then scaled */
    NS_FIT_PAD,        /* whole frame scaled into S x S, black borders */
} ns_fit;

ns_status ns_fit_parse(const char *s, ns_fit *out); /* "squash"|"crop"|"pad" */
const char *ns_fit_name(ns_fit fit);

typedef struct ns_decode_limits {
    int32_t max_width;   /* default 16384 */
    int32_t max_height;  /* default 16384 */
    uint64_t max_pixels; /* default 100,000,000 */
} ns_decode_limits;

void ns_decode_limits_default(ns_decode_limits *lim);

typedef struct ns_decode_info {
    int32_t width, height;       /* original JPEG size */
    int32_t scaled_w, scaled_h;  /* after DCT scaling */
    int colorspace;              /* TJCS_* */
    int subsamp;                 /* TJSAMP_* */
    int progressive;             /* 1 when progressive (0 when unknown) */
    int warning;                 /* 1 when TurboJPEG reported a non-fatal error:
                                    the frame decoded but is damaged */
    char warning_msg[200];
} ns_decode_info;

typedef struct ns_decoder ns_decoder;

ns_status ns_decoder_create(ns_decoder **out);
void ns_decoder_free(ns_decoder *d); /* NULL-safe */

/* Reads only the header.  NS_ERR_CORRUPT when not a decodable JPEG header. */
ns_status ns_decode_header(ns_decoder *d, const uint8_t *jpg, size_t n, ns_decode_info *info);

/* Decodes jpg into out (S*S*3 bytes, RGB, row-major).  Statuses:
 * NS_ERR_LIMIT (header size over limits; nothing allocated), NS_ERR_CORRUPT
 * (fatal decode error), NS_ERR_UNSUPPORTED.  A non-fatal decode problem is
 * NS_OK with info->warning = 1. */
ns_status ns_decode_fit(ns_decoder *d, const uint8_t *jpg, size_t n, int S, ns_fit fit,
                        const ns_decode_limits *lim, uint8_t *out, ns_decode_info *info);

/* Area-averaging resize of an RGB image (each output pixel is the exact
 * area-weighted mean of the source pixels it covers, rounded to nearest).
 * The same definition serves upscaling: an output footprint then lies in one
 * or two source pixels, which gives nearest-neighbour with a blended pixel
 * where source pixels meet.  Equal sizes copy.  Strides are in bytes. */
void ns_resize_area(const uint8_t *src, int sw, int sh, size_t src_stride,
                    uint8_t *dst, int dw, int dh, size_t dst_stride);

/* Bytes held by the decoder's scratch buffer (grows to the largest scaled
 * frame seen, then stays put). */
size_t ns_decoder_scratch_bytes(const ns_decoder *d);

/* The resize's coefficient tables and row buffer, kept between calls so that
 * per-frame resizing allocates nothing.  ns_resize_area uses a thread-local
 * one; callers that own a per-thread context (the decoder) keep their own.
 * Not thread-safe: one per thread. */
typedef struct ns_resize_cache ns_resize_cache;

ns_status ns_resize_cache_create(ns_resize_cache **out);
void ns_resize_cache_free(ns_resize_cache *c); /* NULL-safe */
/* Same result as ns_resize_area; NS_ERR_NOMEM when the tables cannot grow. */
ns_status ns_resize_area_cached(ns_resize_cache *c, const uint8_t *src, int sw, int sh,
                                size_t src_stride, uint8_t *dst, int dw, int dh,
                                size_t dst_stride);

/* ---- cheap photometric properties, computed on the S x S frame ---------- */

enum {
    NS_PROP_MEAN_LUMA = 0, /* BT.601 luma, 0..255 */
    NS_PROP_MEAN_R,
    NS_PROP_MEAN_G,
    NS_PROP_MEAN_B,
    NS_PROP_SATURATION,    /* mean HSV saturation, 0..1 */
    NS_PROP_CONTRAST,      /* standard deviation of luma */
    NS_PROP_SHARPNESS,     /* variance of the 4-neighbour Laplacian of luma */
    NS_PROP_FRAC_BLACK,    /* share of pixels with luma < 16 */
    NS_PROP_FRAC_WHITE,    /* share of pixels with luma > 239 */
    NS_PROP_COUNT
};

extern const char *const ns_prop_names[NS_PROP_COUNT]; /* "mean_luma", ... */

void ns_frame_props(const uint8_t *rgb, int S, float props[NS_PROP_COUNT]);

/* Mean absolute difference between two S x S RGB frames, 0..255 (frozen-
 * camera detection). */
float ns_frame_mad(const uint8_t *a, const uint8_t *b, int S);

#endif
