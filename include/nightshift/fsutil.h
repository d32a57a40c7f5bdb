/* fsutil.h -- small filesystem helpers for crash-safe output.
 *
 * Every file nightshift publishes appears atomically: it is written under a
 * temporary name "<path>.tmp.<pid>", fsync'd, renamed over the final name, and
 * the directory is fsync'd so the rename itself survives a power cut.  These
 * helpers are that protocol, shared by the store, ingest and report code.
 */
#ifndef NIGHTSHIFT_FSUTIL_H
#define NIGHTSHIFT_FSUTIL_H

#include <stddef.h>

#include "nightshift/status.h"

/* Creates a directory and its missing parents (mode 0755); an existing
 * directory is fine, an existing non-directory is NS_ERR_IO. */
ns_status ns_mkdir_p(const char *path);

/* fsyncs a file or directory by path. */
ns_status ns_fsync_path(const char *path);

/* fsyncs a directory (NS_ERR_IO when path is not a directory). */
ns_status ns_fsync_dir(const char *dir);

/* fsyncs the directory that contains path ("." for a bare name). */
ns_status ns_fsync_parent(const char *path);

/* rename(from, to), then fsyncs the directory of `to` and, when different,
 * the directory of `from`.  Both must be on the same filesystem. */
ns_status ns_atomic_rename(const char *from, const char *to);

enum { NS_WRITE_DURABLE = 1 }; /* fsync the file before and its directory after the rename */

/* Writes a file so that it appears whole or not at all: "<path>.tmp.<pid>",
 * then rename over path; with NS_WRITE_DURABLE also fsync'd, so it survives
 * a crash.  On failure the temp file is removed and path is untouched. */
ns_status ns_write_file(const char *path, const void *data, size_t len, unsigned flags);

/* ns_write_file with NS_WRITE_DURABLE: for small results (summaries, reports). */
ns_status ns_write_file_atomic(const char *path, const void *data, size_t len);

/* Takes an exclusive flock on path (created when missing) and writes our
 * pid into it for the message another taker shows.  NS_ERR_BUSY at once
 * ("<what> is locked by another writer (pid N)") unless wait != 0.  *fd
 * holds the lock until closed. */
ns_status ns_flock_take(const char *path, int wait, const char *what, int *fd);

/* Writes "<path>.tmp.<pid>" into buf (NS_ERR_USAGE when it does not fit),
 * removes the temp files of path that dead writers left (ns_tmp_sweep) and
 * creates the temp empty with O_EXCL | O_NOFOLLOW, mode 0666 less the
 * umask: call it right before writing the temp file, and open it without
 * O_CREAT (or truncate it) to write. */
ns_status ns_tmp_name(const char *path, char *buf, size_t cap);

/* Nonzero, with the reason in why, when the directory is owned by another
 * user or writable by every user: someone else can change its files. */
int ns_dir_untrusted(const char *dir, char *why, size_t cap);

/* Nonzero when name ends in ".tmp.<digits>" or ".old.<digits>": a file or
 * directory still being written or replaced, never a result.  *pid gets
 * the digits when pid is not NULL. */
int ns_is_tmp_name(const char *name, long *pid);

/* Nonzero when the process pid may still be running (so its temp files
 * are not leftovers). */
int ns_pid_alive(long pid);

/* Removes "<path>.tmp.<pid>" files whose writer is gone: a run killed
 * before its rename leaves them behind under a name nobody else reuses. */
void ns_tmp_sweep(const char *path);

#endif
