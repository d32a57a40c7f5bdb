/* clip.h -- reading one archived video clip into memory as a list of JPEG frames.
 *
 * Supported containers, detected from the bytes (never the extension):
 *   - tar (plain, gzip, xz, zstd, bzip2) and zip archives of JPEG frames,
 *     in natural order of member names (frame_2 before frame_10);
 *   - raw MJPEG streams (concatenated JPEGs, SOI..EOI);
 *   - RIFF AVI with MJPEG video ('movi' list, '00dc'/'00db' chunks, odd-size
 *     padding, with or without 'idx1').  Other codecs: NS_ERR_UNSUPPORTED
 *     "unsupported codec XXXX".
 *
 * A loaded clip owns its compressed frame bytes (read for archives, mmap for
 * AVI/MJPEG files) and a SHA-256 of the whole file.  Member names are kept as
 * data only; they are never used as paths.
 *
 * Safety: archive entry size, total uncompressed bytes, entry count and frame
 * count are capped by ns_clip_limits; exceeding a cap fails the clip with
 * NS_ERR_LIMIT (the caller quarantines it).  Symlinks, directories and other
 * non-regular entries are skipped; members whose bytes are not JPEG (no SOI
 * marker) are skipped; both are counted and warned about.
 *
 * Buffer reuse: an ns_clip must be zeroed before its first ns_clip_load (a
 * zeroed struct is a valid empty clip).  Loading into a clip that holds a
 * previous load reuses its frame array, name buffer and archive data buffer
 * (they only grow), so a loop loading thousands of clips into one ns_clip
 * allocates nothing of ours after warm-up (first-touch page faults are
 * expensive).  The previous clip's mapping and warnings are dropped, and
 * pointers into it become invalid.  ns_clip_release frees everything.
 * libarchive still allocates its own decompressor state per archive.
 *
 * The file's bytes are read into the clip's read buffer when it has one big
 * enough (see ns_clip_lend_buffer), else mapped read-only.  AVI, MJPEG and
 * uncompressed-archive frames point into those bytes (no copies); members of
 * compressed archives are copied into the clip's own buffer.
 */
#ifndef NIGHTSHIFT_CLIP_H
#define NIGHTSHIFT_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/warn.h"

typedef enum ns_clip_format {
    NS_CLIP_UNKNOWN = 0,
    NS_CLIP_TAR,   /* any compression libarchive detects */
    NS_CLIP_ZIP,
    NS_CLIP_MJPEG,
    NS_CLIP_AVI,
} ns_clip_format;

typedef struct ns_clip_limits {
    uint64_t max_entry_bytes; /* one archive member, uncompressed (default 64 MiB) */
    uint64_t max_total_bytes; /* all members of one archive, uncompressed (default 4 GiB) */
    uint64_t max_entries;     /* archive entries of any kind (default 1,000,000) */
    uint64_t max_frames;      /* frames in one clip (default 1,000,000) */
} ns_clip_limits;

void ns_clip_limits_default(ns_clip_limits *lim);

typedef struct ns_clip_frame {
    uint64_t offset;   /* into ns_clip.data */
    uint64_t size;     /* bytes of this JPEG */
    uint64_t name_off; /* into ns_clip.names: member name, or "#<n>" for streams */
    int64_t number;    /* frame number from the member name's last digit run, or the
                          0-based ordinal in stream/AVI order; -1 when unknown */
} ns_clip_frame;

typedef struct ns_clip {
    char path[4096];
    ns_clip_format format;
    char container[16];        /* "tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2", "zip",
                                  "mjpeg", "avi" */
    uint8_t sha256[NS_SHA256_LEN]; /* of the whole file's bytes */
    uint64_t file_bytes;
    double fps;                /* from the AVI header; 0 when unknown */
    int32_t header_width;      /* from the AVI header; 0 when unknown */
    int32_t header_height;
    ns_clip_frame *frames;     /* (n_frames) in playback order */
    size_t n_frames;
    const uint8_t *data;       /* frame bytes; see frames[].offset */
    size_t data_len;
    char *names;               /* NUL-terminated names, see frames[].name_off */
    size_t names_len;
    uint32_t n_skipped_nonregular; /* symlinks, directories, devices */
    uint32_t n_skipped_nonjpeg;    /* members without a JPEG SOI marker */
    ns_warnings warn;          /* per-member problems, each naming the member */
    /* private */
    void *map_;                /* mmap base when data is mapped, else NULL */
    size_t map_len_;
    uint8_t *owned_;           /* malloc'd data when read from an archive */
    size_t owned_cap_;         /* private: bytes allocated at owned_ */
    uint8_t *read_;            /* the file's bytes when read, not mapped */
    size_t read_cap_;          /* private: bytes allocated at read_ */
    size_t frames_cap_;        /* private: entries allocated at frames */
    size_t names_cap_;         /* private: bytes allocated at names */
} ns_clip;

/* Sniffs the first bytes of the file.  NS_ERR_FORMAT when unknown. */
ns_status ns_clip_detect(const char *path, ns_clip_format *fmt);

/* Loads a clip into *out (zeroed, or holding a previous load whose buffers
 * are reused; lim NULL means the defaults).  On failure *out is released
 * (all but a lent read buffer, which stays lent: see ns_clip_lend_buffer) and
 * the message names the file and the problem; statuses: NS_ERR_IO,
 * NS_ERR_FORMAT (unknown container), NS_ERR_CORRUPT (truncated/corrupt
 * archive, no frames; an AVI chunk running past the end of the file keeps the
 * frames before it, with a warning), NS_ERR_UNSUPPORTED
 * (non-MJPEG AVI), NS_ERR_LIMIT (caps exceeded). */
ns_status ns_clip_load(const char *path, const ns_clip_limits *lim, ns_clip *out);

static inline const char *ns_clip_frame_name(const ns_clip *c, size_t i)
{
    return c->names + c->frames[i].name_off;
}

void ns_clip_release(ns_clip *c); /* NULL-safe on zeroed struct */

/* The read buffer: files up to cap bytes are read into buf rather than
 * mapped.  Why a caller would: on these machines the first touch of a fresh
 * mapping's pages costs ~0.45 ms/MB, while a warm buffer reused from clip to
 * clip costs a ~0.12 ms/MB copy (map + hash measured 1.45 ms/MB, read + hash
 * 0.8).  buf is malloc'd, 2 MiB-aligned for huge pages, and the clip frees it
 * on ns_clip_release; lending replaces (frees) a buffer the clip holds. */
void ns_clip_lend_buffer(ns_clip *c, uint8_t *buf, size_t cap);
/* Takes the read buffer back (NULL when none): the clip's frame bytes are
 * gone if they were in it, so only its frame table and names remain usable. */
uint8_t *ns_clip_take_buffer(ns_clip *c, size_t *cap);

/* Natural order: digit runs compare by value ("frame_2" < "frame_10"). */
int ns_natural_cmp(const char *a, const char *b);

#endif
