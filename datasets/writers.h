/* writers.h -- clip container writers for the generator: tar (plain, gzip, xz,
 * zstd, bzip2) and zip through libarchive, raw MJPEG, and RIFF AVI (MJPEG).
 *
 * Every writer appends to a caller-owned, reusable memory buffer, so a clip
 * can be built, inspected or damaged (bad-input corpus) and then saved
 * atomically with ns_gen_save().  All output is deterministic: fixed mtime,
 * uid/gid 1000 "line", permissions 0644 (0755 for directories), no gzip
 * timestamp, and minimal compression levels (frames are JPEG already).
 *
 * AVI layout written by ns_gen_avi():
 *   RIFF 'AVI '
 *     LIST 'hdrl'
 *       'avih' (56 bytes)  dwMicroSecPerFrame from fps, dwFlags AVIF_HASINDEX when
 *                          idx1 is written, dwTotalFrames, dwWidth, dwHeight
 *       LIST 'strl'
 *         'strh' (56)      fccType 'vids', fccHandler = fourcc, dwScale/dwRate
 *                          (1/fps for integral fps, else 1000/round(1000 fps))
 *         'strf' (40)      BITMAPINFOHEADER, biCompression = fourcc
 *     LIST 'movi'          '00dc' chunks, odd sizes padded with one zero byte
 *     'idx1'               optional: '00dc', AVIIF_KEYFRAME, offset from the
 *                          'movi' fourcc, size; one entry per frame
 */
#ifndef NIGHTSHIFT_GEN_WRITERS_H
#define NIGHTSHIFT_GEN_WRITERS_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* ---- growable byte buffer, reused across clips ------------------------- */

typedef struct ns_gen_buf {
    uint8_t *p;
    size_t len, cap;
} ns_gen_buf;

ns_status ns_gen_buf_reserve(ns_gen_buf *b, size_t extra);
ns_status ns_gen_buf_append(ns_gen_buf *b, const void *data, size_t n);
void ns_gen_buf_release(ns_gen_buf *b); /* caller-owned struct: frees, zeroes */

/* Writes data to path atomically (path.tmp.<pid>, optional fsync, rename;
 * with durable = 1 also fsyncs the file and its directory). */
ns_status ns_gen_save(const char *path, const void *data, size_t n, int durable);


/* ---- containers ---------------------------------------------------------- */

typedef enum ns_gen_format {
    NS_GEN_TAR = 0,
    NS_GEN_TAR_GZ,
    NS_GEN_TAR_XZ,
    NS_GEN_TAR_ZST,
    NS_GEN_TAR_BZ2,
    NS_GEN_ZIP,
    NS_GEN_MJPEG,
    NS_GEN_AVI,
    NS_GEN_FORMAT_COUNT
} ns_gen_format;

/* "tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2", "zip", "mjpeg", "avi" */
const char *ns_gen_format_name(ns_gen_format f);
/* File extension: as the name, except "mjpg" for MJPEG. */
const char *ns_gen_format_ext(ns_gen_format f);
/* Accepts names and extensions; NS_ERR_USAGE otherwise. */
ns_status ns_gen_format_parse(const char *s, ns_gen_format *out);

enum { NS_GEN_MEMBER_FILE = 0, NS_GEN_MEMBER_DIR, NS_GEN_MEMBER_SYMLINK };

typedef struct ns_gen_member {
    const char *name;
    const uint8_t *data; /* NULL with size > 0: that many zero bytes, streamed */
    uint64_t size;
    int type;            /* NS_GEN_MEMBER_* */
    const char *link;    /* symlink target */
} ns_gen_member;

/* Appends a tar/zip archive of the members to out (fmt must be an archive
 * format).  mtime: seconds since the epoch, stamped on every entry. */
ns_status ns_gen_archive(ns_gen_buf *out, ns_gen_format fmt, const ns_gen_member *m, size_t n,
                         int64_t mtime);

/* Appends the frames' bytes back to back (raw MJPEG stream). */
ns_status ns_gen_mjpeg(ns_gen_buf *out, const ns_gen_member *frames, size_t n);

typedef struct ns_gen_avi_opts {
    int width, height;
    double fps;
    int idx1;            /* 1: write the idx1 index */
    char fourcc[5];      /* "MJPG" normally */
} ns_gen_avi_opts;

/* Appends an AVI with one video stream, one '00dc' chunk per frame. */
ns_status ns_gen_avi(ns_gen_buf *out, const ns_gen_avi_opts *o, const ns_gen_member *frames,
                     size_t n);

#endif
