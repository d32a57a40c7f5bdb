/* jpeg.c -- JPEG decode to S x S RGB through TurboJPEG.
 *
 * Decoding at full size and then shrinking wastes most of the IDCT work, so
 * the decoder asks TurboJPEG for the smallest fast DCT-domain scale (1/2,
 * 1/4, 1/8; see pick_scale) whose output still covers the part of the frame
 * that maps onto the S x S result, then area-resizes that.  TurboJPEG errors are translated here, once: warnings
 * (a truncated or damaged stream that still decoded) are NS_OK with
 * info->warning set, fatal errors are NS_ERR_CORRUPT.
 */
#include "nightshift/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

struct ns_decoder {
    tjhandle tj;
    uint8_t *scratch;   /* (scaled_h, scaled_w, 3 or 4): the DCT-scaled frame */
    size_t scratch_cap; /* bytes; grows to the largest frame, never shrinks */
    ns_resize_cache *rc;
};

static const char *const fit_names[] = {
    [NS_FIT_SQUASH] = "squash",
    [NS_FIT_CROP] = "crop",
    [NS_FIT_PAD] = "pad",
};

ns_status ns_fit_parse(const char *s, ns_fit *out)
{
    for (int i = 0; i < (int)(sizeof fit_names / sizeof fit_names[0]); i++) {
        if (s && strcmp(s, fit_names[i]) == 0) {
            *out = (ns_fit)i;
            return NS_OK;
        }
    }
    return ns_error(NS_ERR_USAGE, "unknown fit '%s' (want squash, crop or pad)", s ? s : "");
}

const char *ns_fit_name(ns_fit fit)
{
    if ((unsigned)fit >= sizeof fit_names / sizeof fit_names[0])
        return "unknown";
    return fit_names[fit];
}

void ns_decode_limits_default(ns_decode_limits *lim)
{
    lim->max_width = 16384;
    lim->max_height = 16384;
    lim->max_pixels = 100000000u;
}

ns_status ns_decoder_create(ns_decoder **out)
{
    ns_status st = NS_OK;
    ns_decoder *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d) {
        st = ns_error(NS_ERR_NOMEM, "JPEG decoder: out of memory");
        goto done;
    }
    d->tj = tjInitDecompress();
    if (!d->tj) {
        st = ns_error(NS_ERR_INTERNAL, "JPEG decoder: tjInitDecompress failed: %s",
                      tjGetErrorStr2(NULL));
        goto done;
    }
    st = ns_resize_cache_create(&d->rc);
    if (st != NS_OK)
        goto done;
    *out = d;
    d = NULL;
done:
    ns_decoder_free(d);
    return st;
}

void ns_decoder_free(ns_decoder *d)
{
    if (!d)
        return;
    if (d->tj)
        tjDestroy(d->tj);
    free(d->scratch);
    ns_resize_cache_free(d->rc);
    free(d);
}

size_t ns_decoder_scratch_bytes(const ns_decoder *d) { return d->scratch_cap; }

/* Walks the marker segments up to the first SOF.  Tells progressive (SOF2,
 * SOF6, SOF10, SOF14) from sequential, which TurboJPEG 2.1 does not report,
 * and whether the SOF segment lies wholly inside the buffer: on a stream cut
 * inside it, tjDecompressHeader3 "succeeds" with made-up sizes.  Returns 1
 * (complete SOF found), 0 (the stream ends or scans begin before one) or -1
 * (cannot tell: junk between segments, or too many segments to walk). */
static int scan_sof(const uint8_t *p, size_t n, int *progressive)
{
    size_t i = 2;
    *progressive = 0;
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
        return 0;
    for (int seg = 0; seg < 4096; seg++) {
        if (i >= n)
            return 0;
        if (p[i] != 0xFF)
            return -1; /* libjpeg skips such junk with a warning */
        while (i < n && p[i] == 0xFF) /* fill bytes */
            i++;
        if (i >= n)
            return 0;
        uint8_t m = p[i++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) /* no length field */
            continue;
        if (m == 0xDA || m == 0xD9) /* scan data or end before any SOF */
            return 0;
        if (i + 2 > n)
            return 0;
        size_t len = ((size_t)p[i] << 8) | p[i + 1];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
            return len >= 8 && i + len <= n;
        }
        if (len < 2)
            return -1;
        i += len;
    }
    return -1;
}

/* After a fatal error inside tjDecompressHeader3, TurboJPEG 2.1 leaves the
 * libjpeg object mid-header, and the next, valid, JPEG then fails ("Bogus
 * DQT index").  A fresh handle is the only reset the API offers; errors are
 * rare, so the allocation is off the per-frame path.  Call after the error
 * message has been recorded: it lives in the old handle. */
static void reset_handle(ns_decoder *d)
{
    tjDestroy(d->tj);
    d->tj = tjInitDecompress(); /* NULL is retried on the next frame */
}

static ns_status read_header(ns_decoder *d, const uint8_t *jpg, size_t n, ns_decode_info *info)
{
    /* TurboJPEG returns success without touching these for a datastream it
     * reads as tables-only (e.g. SOI then junk with no marker): unset must be
     * recognisable, not whatever the stack held (which once let such a frame
     * through to the decoder as "damaged"). */
    int w = -1, h = -1, subsamp = -1, cs = -1;
    memset(info, 0, sizeof *info);
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return ns_error(NS_ERR_NOMEM, "JPEG decoder: tjInitDecompress failed: %s",
                        tjGetErrorStr2(NULL));
    if (!jpg || n == 0)
        return ns_error(NS_ERR_CORRUPT, "JPEG is empty");
    if (tjDecompressHeader3(d->tj, jpg, (unsigned long)n, &w, &h, &subsamp, &cs) != 0) {
        const char *msg = tjGetErrorStr2(d->tj);
        /* Odd but valid files (unusual sampling) are not corrupt. */
        ns_status code = strstr(msg, "subsampling") ? NS_ERR_UNSUPPORTED : NS_ERR_CORRUPT;
        ns_error(code, "JPEG header: %s", msg);
        reset_handle(d);
        return code;
    }
    if (w < 0 || h < 0)
        return ns_error(NS_ERR_CORRUPT, "JPEG has no frame header (no image in the datastream)");
    if (scan_sof(jpg, n, &info->progressive) == 0)
        return ns_error(NS_ERR_CORRUPT, "JPEG header is truncated (no complete frame header)");
    if (w <= 0 || h <= 0)
        return ns_error(NS_ERR_CORRUPT, "JPEG header declares an empty %dx%d image", w, h);
    info->width = info->scaled_w = w;
    info->height = info->scaled_h = h;
    info->subsamp = subsamp;
    info->colorspace = cs;
    return NS_OK;
}

ns_status ns_decode_header(ns_decoder *d, const uint8_t *jpg, size_t n, ns_decode_info *info)
{
    ns_decode_info local;
    return read_header(d, jpg, n, info ? info : &local);
}

/* Smallest scaling factor (<= 1) whose output covers the part of the frame
 * that maps onto S x S, among 1/1, 1/2, 1/4 and 1/8.  Those are the scales
 * libjpeg-turbo decodes fastest: measured here on 1280x720 q90 frames, 1/2
 * (640x360) decodes in 1.73 ms and 3/8 (480x270), though smaller, in 2.13 ms,
 * and the larger picture also gives the area resize more to average.  When
 * even 1/1 falls short (a frame smaller than S) it is 1/1 and the resize
 * upscales: DCT-domain upscaling buys nothing over that. */
static int fast_scale(tjscalingfactor f)
{
    return f.num == 1 && (f.denom == 1 || f.denom == 2 || f.denom == 4 || f.denom == 8);
}

static tjscalingfactor pick_scale(int w, int h, int S, ns_fit fit)
{
    int n = 0;
    tjscalingfactor best = {1, 1};
    long long best_px = (long long)w * h;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    int m = w < h ? w : h, l = w < h ? h : w;
    for (int i = 0; sf && i < n; i++) {
        if (!fast_scale(sf[i]))
            continue;
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        int ok;
        switch (fit) {
        case NS_FIT_CROP: ok = TJSCALED(m, sf[i]) >= S; break;
        case NS_FIT_PAD: ok = TJSCALED(l, sf[i]) >= S; break;
        default: ok = sw >= S && sh >= S; break;
        }
        if (ok && (long long)sw * sh < best_px) {
            best = sf[i];
            best_px = (long long)sw * sh;
        }
    }
    return best;
}

static ns_status check_limits(const ns_decode_info *info, const ns_decode_limits *lim)
{
    uint64_t px = (uint64_t)info->width * (uint64_t)info->height;
    if (info->width > lim->max_width || info->height > lim->max_height)
        return ns_error(NS_ERR_LIMIT,
                        "JPEG declares %dx%d, over the limit of %dx%d (--max-side)",
                        info->width, info->height, (int)lim->max_width, (int)lim->max_height);
    if (px > lim->max_pixels)
        return ns_error(NS_ERR_LIMIT,
                        "JPEG declares %dx%d = %llu pixels, over the limit of %llu (--max-pixels)",
                        info->width, info->height, (unsigned long long)px,
                        (unsigned long long)lim->max_pixels);
    return NS_OK;
}

/* Adobe (inverted) CMYK as libjpeg-turbo hands it over: 255 is no ink, so
 * R = C*K/255 etc.  In place: the RGB write never overtakes the CMYK read. */
static void cmyk_to_rgb(uint8_t *p, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        unsigned c = p[4 * i], m = p[4 * i + 1], y = p[4 * i + 2], k = p[4 * i + 3];
        p[3 * i + 0] = (uint8_t)((c * k + 127) / 255);
        p[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
        p[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

ns_status ns_decode_fit(ns_decoder *d, const uint8_t *jpg, size_t n, int S, ns_fit fit,
                        const ns_decode_limits *lim, uint8_t *out, ns_decode_info *info)
{
    ns_status st;
    ns_decode_info local;
    ns_decode_limits deflim;
    if (!info)
        info = &local;
    if (!lim) {
        ns_decode_limits_default(&deflim);
        lim = &deflim;
    }
    if (S <= 0 || !out || (unsigned)fit > NS_FIT_PAD) {
        memset(info, 0, sizeof *info);
        st = ns_error(NS_ERR_USAGE, "JPEG decode: bad output size %d or fit %d", S, (int)fit);
        goto done;
    }
    st = read_header(d, jpg, n, info);
    if (st != NS_OK)
        goto done;
    st = check_limits(info, lim);
    if (st != NS_OK)
        goto done;

    tjscalingfactor sf = pick_scale(info->width, info->height, S, fit);
    int sw = TJSCALED(info->width, sf), sh = TJSCALED(info->height, sf);
    int cmyk = info->colorspace == TJCS_CMYK || info->colorspace == TJCS_YCCK;
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t need = (size_t)sw * (size_t)sh * (size_t)tjPixelSize[pf];
    info->scaled_w = sw;
    info->scaled_h = sh;
    if (need > d->scratch_cap) {
        /* Free first: the old contents are not needed, and this keeps the
         * peak at one buffer. */
        free(d->scratch);
        d->scratch_cap = 0;
        d->scratch = malloc(need);
        if (!d->scratch) {
            st = ns_error(NS_ERR_NOMEM, "JPEG %dx%d: out of memory for the %dx%d frame",
                          info->width, info->height, sw, sh);
            goto done;
        }
        d->scratch_cap = need;
    }
    /* Flags 0: the accurate integer IDCT, and warnings do not stop decoding. */
    if (tjDecompress2(d->tj, jpg, (unsigned long)n, d->scratch, sw, 0, sh, pf, 0) != 0) {
        const char *msg = tjGetErrorStr2(d->tj);
        if (tjGetErrorCode(d->tj) != TJERR_WARNING) {
            st = ns_error(strstr(msg, "Unsupported") ? NS_ERR_UNSUPPORTED : NS_ERR_CORRUPT,
                          "JPEG %dx%d: %s", info->width, info->height, msg);
            reset_handle(d);
            goto done;
        }
        info->warning = 1;
        snprintf(info->warning_msg, sizeof info->warning_msg, "%s", msg);
    }
    if (cmyk)
        cmyk_to_rgb(d->scratch, (size_t)sw * (size_t)sh);

    size_t stride = (size_t)sw * 3;
    switch (fit) {
    case NS_FIT_CROP: {
        /* Whole scaled pixels: an odd margin puts the square up to half a
         * scaled pixel off centre, below what the resize would blur anyway. */
        int side = sw < sh ? sw : sh;
        const uint8_t *src = d->scratch + (size_t)((sh - side) / 2) * stride
                             + (size_t)((sw - side) / 2) * 3;
        st = ns_resize_area_cached(d->rc, src, side, side, stride, out, S, S, (size_t)S * 3);
        break;
    }
    case NS_FIT_PAD: {
        /* Inner size from the original aspect: DCT scaling rounds each side. */
        int iw = S, ih = S;
        if (info->width >= info->height)
            ih = (int)(((int64_t)S * info->height + info->width / 2) / info->width);
        else
            iw = (int)(((int64_t)S * info->width + info->height / 2) / info->height);
        iw = iw < 1 ? 1 : iw;
        ih = ih < 1 ? 1 : ih;
        memset(out, 0, (size_t)S * S * 3);
        uint8_t *dst = out + (size_t)((S - ih) / 2) * S * 3 + (size_t)((S - iw) / 2) * 3;
        st = ns_resize_area_cached(d->rc, d->scratch, sw, sh, stride, dst, iw, ih, (size_t)S * 3);
        break;
    }
    default:
        st = ns_resize_area_cached(d->rc, d->scratch, sw, sh, stride, out, S, S, (size_t)S * 3);
        break;
    }
done:
    return st;
}
