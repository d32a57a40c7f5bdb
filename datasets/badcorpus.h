/* badcorpus.h -- the bad-input corpus: one small clip per failure mode.
 *
 * ns_badcorpus_generate() writes into DIR (160x120 frames, 6..10 per clip):
 *   good_reference.tar, truncated_jpeg.tar, corrupt_jpeg.tar, nonjpeg_member.tar,
 *   huge_header.tar, truncated_archive.tar.gz, corrupt_zip.zip, traversal.tar,
 *   symlink.tar, bomb.tar.gz, many_entries.tar, avi_chunk_past_eof.avi,
 *   avi_no_frames.avi, avi_h264.avi, random_bytes.bin, empty.mjpg, gray.mjpg,
 *   progressive.tar, cmyk.tar, frozen.tar, black.tar, res_change.tar, gaps.tar
 * and DIR/expect.csv:
 *   file,outcome,frames_stored,frames_damaged,frames_failed,qc,message
 *     outcome   ingested | quarantined | unsupported | unrecognised
 *     frames_*  exact counts under default limits (stored includes damaged)
 *     qc        '|'-joined NS_QC names that must be set (frozen, black, white,
 *               res_change, gaps, decode_warn); others may be set too
 *     message   lowercase substring the clip's error or one of its warnings
 *               must contain (compare case-insensitively); empty: any
 * The bytes depend only on the seed.
 */
#ifndef NIGHTSHIFT_GEN_BADCORPUS_H
#define NIGHTSHIFT_GEN_BADCORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* Creates DIR if needed; *n_files receives the number of clip files. */
ns_status ns_badcorpus_generate(const char *dir, uint64_t seed, size_t *n_files);

#endif
