/* shard.c -- writing one shard file and committing it into the store. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

enum { COL_FRAMES, COL_CLIP, COL_INDEX, COL_TS, COL_MEMBER, COL_STATUS, COL_PROPS, COL_N };
static const char *const col_name[COL_N] = {"frames",          "frame/clip",   "frame/index",
                                            "frame/timestamp", "frame/member", "frame/status",
                                            "frame/props"};
#define COLUMN_CHUNK 4096
#define FRAME_CHUNK_BYTES (2u << 20)
#define FLUSH_BYTES ((uint64_t)8 << 20) /* frame bytes between background flushes */

/* The disk behind these machines writes at about 1.1 GB/s only when asked to
 * flush, so one fsync of a whole 240 MB shard at commit took 0.2 s, after the
 * run's last frame.  A thread of the writer's own asks for fdatasync every
 * FLUSH_BYTES while frames are still decoding (it waits on the disk, not the
 * CPU), leaving the commit's fsync 16 ms in the ingest benchmark (34 ms with
 * 32 MB between flushes).  Its first error is kept and fails the commit: after
 * a failed flush, a later fsync may no longer report it. */
typedef struct flusher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;                       /* read-only, of the temp file; -1: no flusher */
    int running, stop;
    int last;                     /* the next flush is the commit's full fsync */
    uint64_t asked, served;       /* flush requests made and taken */
    int err;                      /* errno of the first failed fdatasync */
} flusher;

struct ns_shard_writer {
    ns_store *s;
    uint32_t id;
    char night[NS_NIGHT_LEN];
    char tmp_path[PATH_MAX];
    char rel_path[256];           /* shards/<night>/<id>.h5 */
    hid_t file;
    hid_t col[COL_N];
    hid_t t_member;               /* fixed NS_MEMBER_LEN string */
    uint64_t rows;                /* rows written, open clip included */
    uint64_t clip_start;          /* first row of the open clip */
    int clip_open, broken;
    ns_clip_record *recs;         /* (cap_clips) closed clips, written at commit */
    uint32_t *clip_frames;        /* (cap_clips) frames stored per clip */
    size_t n_clips, cap_clips;
    /* staging columns for one append, carved from one block */
    void *stage;
    size_t stage_cap;             /* rows */
    uint32_t *st_clip, *st_index; /* (stage_cap) */
    double *st_ts;                /* (stage_cap) */
    char *st_member;              /* (stage_cap, NS_MEMBER_LEN) */
    uint8_t *st_status;           /* (stage_cap) */
    float *st_props;              /* (stage_cap, NS_PROP_COUNT) */
    char checksum[NS_CHECKSUM_LEN]; /* of the finished file, set by finish_file */
    flusher fl;
    uint64_t flush_rows;          /* rows at the last flush request */
};

static void *flusher_main(void *arg)
{
    flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stop && f->served == f->asked)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->served == f->asked)
            break; /* stopping, nothing left to do */
        f->served = f->asked;
        int last = f->last;
        pthread_mutex_unlock(&f->mu);
        int r = last ? fsync(f->fd) : fdatasync(f->fd), e = r != 0 ? errno : 0;
        pthread_mutex_lock(&f->mu);
        if (e && !f->err)
            f->err = e;
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Without a flusher (no fd, no thread) everything still works: the commit's
 * fsync just has more to do. */
static void flusher_start(flusher *f, const char *path)
{
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return;
    if (pthread_mutex_init(&f->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&f->cv, NULL) != 0) {
        pthread_mutex_destroy(&f->mu);
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0) {
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        goto fail;
    }
    f->running = 1;
    return;
fail:
    close(f->fd);
    f->fd = -1;
}

/* last: the commit's fsync (file size and all), after which nothing is asked. */
static void flusher_ask(flusher *f, int last)
{
    if (!f->running)
        return;
    pthread_mutex_lock(&f->mu);
    f->asked++;
    f->last = last;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Waits for a flush in progress and ends the thread; returns its first error
 * (0 when every flush succeeded). */
static int flusher_stop(flusher *f)
{
    int err = 0;
    if (f->running) {
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        if (!f->last)
            f->asked = f->served; /* what is not flushed yet, the commit's fsync does */
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        f->running = 0;
        err = f->err;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    return err;
}

static int valid_night(const char *n)
{
    /* The night is a path component: only YYYY-MM-DD digits and dashes. */
    for (int i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? n[i] != '-' : (n[i] < '0' || n[i] > '9'))
            return 0;
    return n[10] == '\0';
}

static double now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Shape of one row of each column (after the extendible first dimension). */
static int col_tail(const ns_shard_writer *w, int c, hsize_t *tail)
{
    hsize_t S = (hsize_t)w->s->frame_size;
    switch (c) {
    case COL_FRAMES: tail[0] = S; tail[1] = S; tail[2] = 3; return 3;
    case COL_PROPS: tail[0] = NS_PROP_COUNT; return 1;
    default: return 0;
    }
}

static hid_t col_type(const ns_shard_writer *w, int c)
{
    switch (c) {
    case COL_FRAMES: case COL_STATUS: return H5T_NATIVE_UINT8;
    case COL_CLIP: case COL_INDEX: return H5T_NATIVE_UINT32;
    case COL_TS: return H5T_NATIVE_DOUBLE;
    case COL_MEMBER: return w->t_member;
    default: return H5T_NATIVE_FLOAT;
    }
}

size_t ns_store_frame_chunk_rows(int S)
{
    double c = (double)FRAME_CHUNK_BYTES / ((double)S * S * 3);
    long r = lround(c);
    return r < 1 ? 1 : (size_t)r;
}

static ns_status create_columns(ns_shard_writer *w)
{
    ns_status st = NS_OK;
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    hid_t g = H5I_INVALID_HID;
    g = H5Gcreate2(w->file, "frame", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot create /frame", w->tmp_path);
        goto done;
    }
    for (int c = 0; c < COL_N; c++) {
        hsize_t dims[4] = {0}, maxd[4] = {H5S_UNLIMITED}, chunk[4];
        int rank = 1 + col_tail(w, c, dims + 1);
        size_t row_bytes = H5Tget_size(col_type(w, c));
        for (int k = 1; k < rank; k++) {
            maxd[k] = dims[k];
            chunk[k] = dims[k];
            row_bytes *= dims[k];
        }
        chunk[0] = c == COL_FRAMES ? ns_store_frame_chunk_rows(w->s->frame_size) : COLUMN_CHUNK;
        /* No compression (docs/store.md).  /frames gets no chunk cache: with
         * no filter and no fill, HDF5 then writes every append, partial
         * chunks too, straight from the batch into the file.  Cached, each
         * new 2 MB chunk was zeroed in fresh memory and the frames copied in
         * first: ingest ran 3-4% slower (paired runs, bench/ingest).  The
         * small columns keep four chunks, so their appends of a batch's rows
         * fill a chunk in memory before it is written. */
        size_t cache = c == COL_FRAMES ? 0 : 4 * chunk[0] * row_bytes;
        if ((sp = H5Screate_simple(rank, dims, maxd)) < 0 ||
            (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, rank, chunk) < 0 ||
            /* Every row is written before commit: filling chunks first is wasted work. */
            H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
            (dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
            H5Pset_chunk_cache(dapl, 1031, cache, 1.0) < 0 ||
            (w->col[c] = H5Dcreate2(w->file, col_name[c], col_type(w, c), sp, H5P_DEFAULT, dcpl,
                                    dapl)) < 0) {
            st = ns_h5_error(NS_ERR_IO, "'%s': cannot create /%s", w->tmp_path, col_name[c]);
            goto done;
        }
        H5Sclose(sp);
        H5Pclose(dcpl);
        H5Pclose(dapl);
        sp = dcpl = dapl = H5I_INVALID_HID;
    }
    if (ns_h5_write_prop_names(w->col[COL_PROPS]) < 0)
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot write /frame/props names", w->tmp_path);
done:
    if (g >= 0) H5Gclose(g);
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (dapl >= 0) H5Pclose(dapl);
    return st;
}

static void close_handles(ns_shard_writer *w)
{
    for (int c = 0; c < COL_N; c++) {
        if (w->col[c] >= 0)
            H5Dclose(w->col[c]);
        w->col[c] = H5I_INVALID_HID;
    }
    if (w->file >= 0)
        ns_h5_fclose(w->file);
    w->file = H5I_INVALID_HID;
}

static void writer_free(ns_shard_writer *w)
{
    flusher_stop(&w->fl);
    close_handles(w);
    if (w->t_member >= 0)
        H5Tclose(w->t_member);
    if (w->tmp_path[0])
        unlink(w->tmp_path); /* ENOENT after a commit's rename: harmless */
    if (w->s->active == w)
        w->s->active = NULL;
    free(w->stage);
    free(w->recs);
    free(w->clip_frames);
    free(w);
}

void ns_shard_discard(ns_shard_writer *w)
{
    ns_h5_init();
    if (w)
        writer_free(w);
}

ns_status ns_shard_begin(ns_store *s, const char *night, ns_shard_writer **out)
{
    ns_h5_init();
    ns_shard_writer *w = NULL;
    char tmpdir[PATH_MAX], name[64];
    ns_status st = NS_OK;
    *out = NULL;
    if (!s->writable)
        return ns_error(NS_ERR_USAGE, "store '%s' is open read-only", s->dir);
    if (s->active)
        return ns_error(NS_ERR_USAGE, "store '%s' already has a shard being written", s->dir);
    if (!night || !valid_night(night))
        return ns_error(NS_ERR_USAGE, "bad night '%s' (want YYYY-MM-DD)", night ? night : "");
    w = calloc(1, sizeof *w);
    if (!w)
        return ns_error(NS_ERR_NOMEM, "no memory for a shard writer");
    w->s = s;
    w->fl.fd = -1;
    w->file = w->t_member = H5I_INVALID_HID;
    for (int c = 0; c < COL_N; c++)
        w->col[c] = H5I_INVALID_HID;
    s->active = w;
    w->id = s->next_shard_id;
    if (s->shared && (st = ns_store_take_shard_id(s, &w->id)) != NS_OK)
        goto done;
    snprintf(w->night, sizeof w->night, "%s", night);
    snprintf(name, sizeof name, "%06u.h5", (unsigned)w->id);
    snprintf(w->rel_path, sizeof w->rel_path, "shards/%s/%s", night, name);
    if ((st = ns_store_path(s, "tmp", tmpdir, sizeof tmpdir)) != NS_OK)
        goto done;
    if ((size_t)snprintf(w->tmp_path, sizeof w->tmp_path, "%s/%s.tmp.%ld", tmpdir, name,
                         (long)getpid()) >= sizeof w->tmp_path) {
        w->tmp_path[0] = '\0';
        st = ns_error(NS_ERR_USAGE, "store path too long: '%s'", s->dir);
        goto done;
    }
    if ((w->t_member = ns_h5_str_type(NS_MEMBER_LEN)) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the member type");
        goto done;
    }
    w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create shard '%s'", w->tmp_path);
        goto done;
    }
    if ((st = create_columns(w)) == NS_OK)
        flusher_start(&w->fl, w->tmp_path);
done:
    if (st != NS_OK)
        writer_free(w);
    else
        *out = w;
    return st;
}

ns_status ns_shard_begin_clip(ns_shard_writer *w)
{
    ns_h5_init();
    if (w->broken)
        return ns_error(NS_ERR_USAGE, "shard '%s' failed earlier; discard it", w->tmp_path);
    if (w->clip_open)
        return ns_error(NS_ERR_USAGE, "shard '%s': a clip is already open", w->tmp_path);
    w->clip_open = 1;
    w->clip_start = w->rows;
    return NS_OK;
}

static ns_status stage_reserve(ns_shard_writer *w, size_t n)
{
    if (n <= w->stage_cap)
        return NS_OK;
    size_t cap = n < 256 ? 256 : n;
    size_t per = 2 * sizeof(uint32_t) + sizeof(double) + NS_MEMBER_LEN + 1 +
                 NS_PROP_COUNT * sizeof(float);
    /* Doubles first, then 4-byte columns, then bytes: every column aligned. */
    char *p = malloc(cap * per);
    if (!p)
        return ns_error(NS_ERR_NOMEM, "no memory to stage %zu frames", cap);
    free(w->stage);
    w->stage = p;
    w->stage_cap = cap;
    w->st_ts = (double *)p;
    w->st_clip = (uint32_t *)(p + cap * sizeof(double));
    w->st_index = w->st_clip + cap;
    w->st_props = (float *)(w->st_index + cap);
    w->st_member = (char *)(w->st_props + cap * NS_PROP_COUNT);
    w->st_status = (uint8_t *)(w->st_member + cap * NS_MEMBER_LEN);
    return NS_OK;
}

/* Sets every column to `rows` rows (grow for append, shrink for abort). */
static ns_status set_rows(ns_shard_writer *w, uint64_t rows)
{
    for (int c = 0; c < COL_N; c++) {
        hsize_t dims[4];
        int rank = 1 + col_tail(w, c, dims + 1);
        (void)rank;
        dims[0] = rows;
        if (H5Dset_extent(w->col[c], dims) < 0) {
            w->broken = 1;
            return ns_h5_error(NS_ERR_IO, "'%s': cannot resize /%s to %llu rows", w->tmp_path,
                               col_name[c], (unsigned long long)rows);
        }
    }
    return NS_OK;
}

static void maybe_flush(ns_shard_writer *w)
{
    uint64_t S = (uint64_t)w->s->frame_size, row_bytes = S * S * 3;
    if (w->rows < w->flush_rows) /* an aborted clip took rows back */
        w->flush_rows = w->rows;
    if ((w->rows - w->flush_rows) * row_bytes >= FLUSH_BYTES) {
        w->flush_rows = w->rows;
        flusher_ask(&w->fl, 0);
    }
}

ns_status ns_shard_append(ns_shard_writer *w, const uint8_t *frames, const ns_frame_record *recs,
                          size_t n)
{
    ns_h5_init();
    ns_status st = NS_OK;
    hid_t fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    if (w->broken)
        return ns_error(NS_ERR_USAGE, "shard '%s' failed earlier; discard it", w->tmp_path);
    if (!w->clip_open)
        return ns_error(NS_ERR_USAGE, "shard '%s': append outside a clip", w->tmp_path);
    if (n == 0)
        return NS_OK;
    if ((st = stage_reserve(w, n)) != NS_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        const ns_frame_record *r = &recs[i];
        char *m = w->st_member + i * NS_MEMBER_LEN;
        size_t len = strnlen(r->member, NS_MEMBER_LEN);
        w->st_clip[i] = (uint32_t)w->n_clips;
        w->st_index[i] = r->index;
        w->st_ts[i] = r->timestamp;
        memcpy(m, r->member, len);
        memset(m + len, 0, NS_MEMBER_LEN - len); /* NUL-padded, no stale bytes */
        w->st_status[i] = r->status;
        memcpy(w->st_props + i * NS_PROP_COUNT, r->props, sizeof r->props);
    }
    const void *src[COL_N] = {frames,      w->st_clip,   w->st_index, w->st_ts,
                              w->st_member, w->st_status, w->st_props};
    if ((st = set_rows(w, w->rows + n)) != NS_OK)
        return st;
    for (int c = 0; c < COL_N; c++) {
        hsize_t start[4] = {w->rows, 0, 0, 0}, count[4];
        int rank = 1 + col_tail(w, c, count + 1);
        count[0] = n;
        fsp = H5Dget_space(w->col[c]);
        msp = H5Screate_simple(rank, count, NULL);
        if (fsp < 0 || msp < 0 ||
            H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(w->col[c], col_type(w, c), msp, fsp, H5P_DEFAULT, src[c]) < 0) {
            w->broken = 1;
            st = ns_h5_error(NS_ERR_IO, "'%s': cannot write %zu rows of /%s", w->tmp_path, n,
                             col_name[c]);
            goto done;
        }
        H5Sclose(fsp);
        H5Sclose(msp);
        fsp = msp = H5I_INVALID_HID;
    }
    w->rows += n;
    maybe_flush(w);
done:
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return st;
}

ns_status ns_shard_abort_clip(ns_shard_writer *w)
{
    ns_h5_init();
    if (!w->clip_open)
        return NS_OK;
    w->clip_open = 0;
    if (w->broken)
        return ns_error(NS_ERR_USAGE, "shard '%s' failed earlier; discard it", w->tmp_path);
    w->rows = w->clip_start;
    return set_rows(w, w->rows);
}

static int valid_hex(const char *h)
{
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return h[64] == '\0';
}

/* A clip id already committed or already in this shard drops the open clip's
 * frames and is NS_ERR_EXISTS; the writer stays usable. */
ns_status ns_shard_end_clip(ns_shard_writer *w, const ns_clip_record *rec)
{
    ns_h5_init();
    ns_status st;
    if (w->broken)
        return ns_error(NS_ERR_USAGE, "shard '%s' failed earlier; discard it", w->tmp_path);
    if (!w->clip_open)
        return ns_error(NS_ERR_USAGE, "shard '%s': end_clip without begin_clip", w->tmp_path);
    if (!valid_hex(rec->sha256)) {
        ns_shard_abort_clip(w);
        return ns_error(NS_ERR_USAGE, "clip '%.*s': id is not 64 lowercase hex digits",
                        NS_SOURCE_LEN, rec->source);
    }
    int dup = ns_store_find_clip(w->s, rec->sha256) >= 0;
    for (size_t i = 0; i < w->n_clips && !dup; i++)
        dup = strcmp(w->recs[i].sha256, rec->sha256) == 0;
    if (dup) {
        st = ns_shard_abort_clip(w);
        if (st != NS_OK)
            return st;
        return ns_error(NS_ERR_EXISTS, "clip %s is already in store '%s'", rec->sha256,
                        w->s->dir);
    }
    if (w->n_clips == w->cap_clips) {
        size_t cap = w->cap_clips ? 2 * w->cap_clips : 64;
        ns_clip_record *r = realloc(w->recs, cap * sizeof *r);
        if (r)
            w->recs = r;
        uint32_t *f = r ? realloc(w->clip_frames, cap * sizeof *f) : NULL;
        if (f)
            w->clip_frames = f;
        if (!r || !f)
            return ns_error(NS_ERR_NOMEM, "no memory for %zu clip records", cap);
        w->cap_clips = cap;
    }
    ns_clip_record *r = &w->recs[w->n_clips];
    *r = *rec;
    r->camera[NS_CAMERA_LEN - 1] = r->source[NS_SOURCE_LEN - 1] = '\0';
    r->container[sizeof r->container - 1] = '\0';
    snprintf(r->night, sizeof r->night, "%s", w->night); /* the shard's night is the clip's */
    w->clip_frames[w->n_clips] = (uint32_t)(w->rows - w->clip_start);
    w->n_clips++;
    w->clip_open = 0;
    return NS_OK;
}

size_t ns_shard_frames(const ns_shard_writer *w)
{
    return (size_t)(w->clip_open ? w->clip_start : w->rows);
}

size_t ns_shard_clips(const ns_shard_writer *w) { return w->n_clips; }

/* fsync waits for the disk and the checksum for the CPU: run them together
 * (both only read the finished file).  The flusher thread does the fsync;
 * the checksum runs here, on this thread's OpenMP team, which is warm from
 * decoding (a fresh thread would start a team of its own, while the idle
 * decode workers spin beside it). */
static ns_status fsync_and_hash(ns_shard_writer *w)
{
    ns_status st;
    int err, ran = w->fl.running;
    flusher_ask(&w->fl, 1);
    st = ns_checksum_file(w->tmp_path, NS_CHECKSUM_XXH3_128_TREE, w->checksum);
    err = flusher_stop(&w->fl);
    if (err)
        return ns_error(NS_ERR_IO, "cannot write shard '%s' to disk: %s", w->tmp_path,
                        strerror(err));
    if (!ran && st == NS_OK)
        st = ns_fsync_path(w->tmp_path); /* no flusher thread: sync here */
    return st;
}

/* Writes /clips and the root attributes, closes, fsyncs and hashes the temp file. */
static ns_status finish_file(ns_shard_writer *w)
{
    ns_status st = NS_OK;
    hid_t mt = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {w->n_clips};
    int32_t fs = w->s->frame_size, ver = NS_STORE_FORMAT_VERSION;
    double created = now_unix();
    mt = ns_h5_clip_record_type();
    ft = mt >= 0 ? H5Tcopy(mt) : H5I_INVALID_HID;
    if (ft < 0 || H5Tpack(ft) < 0 || (sp = H5Screate_simple(1, dims, NULL)) < 0 ||
        (d = H5Dcreate2(w->file, "clips", ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->recs) < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot write /clips", w->tmp_path);
        goto done;
    }
    if (ns_h5_attr_str(w->file, "ns_format", NS_STORE_FORMAT_SHARD) < 0 ||
        ns_h5_attr_num(w->file, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_num(w->file, "frame_size", H5T_NATIVE_INT32, &fs) < 0 ||
        ns_h5_attr_str(w->file, "night", w->night) < 0 ||
        ns_h5_attr_num(w->file, "shard_id", H5T_NATIVE_UINT32, &w->id) < 0 ||
        ns_h5_attr_num(w->file, "created", H5T_NATIVE_DOUBLE, &created) < 0 ||
        ns_h5_attr_str(w->file, "writer", "nightshift " NS_VERSION) < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot write root attributes", w->tmp_path);
        goto done;
    }
    H5Dclose(d);
    d = H5I_INVALID_HID;
    for (int c = 0; c < COL_N; c++) {
        herr_t r = H5Dclose(w->col[c]);
        w->col[c] = H5I_INVALID_HID;
        if (r < 0) {
            st = ns_h5_error(NS_ERR_IO, "'%s': cannot flush /%s", w->tmp_path, col_name[c]);
            goto done;
        }
    }
    herr_t r = ns_h5_fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (r < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot close shard '%s'", w->tmp_path);
        goto done;
    }
    st = fsync_and_hash(w);
done:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (mt >= 0) H5Tclose(mt);
    return st;
}

ns_status ns_shard_commit(ns_shard_writer *w)
{
    ns_h5_init();
    ns_store *s = w->s;
    char final[PATH_MAX], nightdir[PATH_MAX];
    struct stat sb;
    ns_status st = NS_OK;
    int moved = 0, committed = 0;
    size_t old_shards = s->n_shards, old_clips = s->n_clips;
    uint32_t old_next = s->next_shard_id;
    if (w->broken) {
        st = ns_error(NS_ERR_USAGE, "shard '%s' failed earlier; not committed", w->tmp_path);
        goto done;
    }
    if (w->clip_open) {
        st = ns_error(NS_ERR_USAGE, "shard '%s': commit with a clip still open", w->tmp_path);
        goto done;
    }
    if (w->n_clips == 0)
        goto done; /* nothing to commit */
    if (s->shared) {
        /* The slow part (flush, fsync, checksum) stays outside the lock. */
        if ((st = finish_file(w)) != NS_OK || (st = ns_store_catalog_lock(s)) != NS_OK)
            goto done;
        old_shards = s->n_shards;
        old_clips = s->n_clips;
        old_next = s->next_shard_id;
        for (size_t i = 0; i < w->n_clips; i++)
            if (ns_store_find_clip(s, w->recs[i].sha256) >= 0) {
                st = ns_error(NS_ERR_EXISTS,
                              "shard '%s': clip %s was committed by another writer meanwhile; "
                              "not committed (a rerun ingests the rest)",
                              w->tmp_path, w->recs[i].sha256);
                goto done;
            }
    }
    /* Room first: after the rename nothing may fail for lack of memory. */
    if ((st = ns_store_reserve(s, 1, w->n_clips)) != NS_OK ||
        (st = ns_store_path(s, w->rel_path, final, sizeof final)) != NS_OK)
        goto done;
    snprintf(nightdir, sizeof nightdir, "%s/shards/%s", s->dir, w->night);
    if ((!s->shared && (st = finish_file(w)) != NS_OK) || (st = ns_mkdir_p(nightdir)) != NS_OK)
        goto done;
    if ((st = ns_atomic_rename(w->tmp_path, final)) != NS_OK)
        goto done;
    moved = 1;
    if (stat(final, &sb) != 0) {
        st = ns_error(NS_ERR_IO, "cannot stat shard '%s': %s", final, strerror(errno));
        goto done;
    }

    ns_shard_entry *e = &s->shards[s->n_shards];
    memset(e, 0, sizeof *e);
    e->id = w->id;
    snprintf(e->night, sizeof e->night, "%s", w->night);
    snprintf(e->path, sizeof e->path, "%s", w->rel_path);
    e->n_clips = (uint32_t)w->n_clips;
    e->n_frames = w->rows;
    e->file_bytes = (uint64_t)sb.st_size;
    /* the renamed file is the hashed one */
    memcpy(e->checksum, w->checksum, sizeof e->checksum);
    e->committed = now_unix();
    uint64_t first = s->shard_first[s->n_shards];
    for (size_t i = 0; i < w->n_clips; i++) {
        const ns_clip_record *r = &w->recs[i];
        ns_catalog_clip *c = &s->clips[s->n_clips + i];
        memset(c, 0, sizeof *c);
        memcpy(c->sha256, r->sha256, NS_SHA256_HEX);
        c->shard = (uint32_t)s->n_shards;
        c->row = (uint32_t)i;
        c->first_frame = first;
        memcpy(c->night, r->night, NS_NIGHT_LEN);
        memcpy(c->camera, r->camera, NS_CAMERA_LEN);
        c->n_frames = w->clip_frames[i];
        c->n_damaged = r->frames_damaged;
        c->n_failed = r->frames_failed;
        c->qc_flags = r->qc_flags;
        first += w->clip_frames[i];
    }
    s->n_shards++;
    s->n_clips += w->n_clips;
    if (!s->shared) /* a shared writer took its id at the start */
        s->next_shard_id++;
    st = ns_catalog_save(s, &committed);
    if (!committed)
        goto done;
    {
        /* Committed even when the directory sync failed: finish the commit
         * (index, view), then report the first failure. */
        ns_status sync_st = st;
        char keep[512] = "";
        if (sync_st != NS_OK)
            ns_errmsg_copy(keep, sizeof keep);
        if ((st = ns_store_index_rebuild(s)) != NS_OK)
            goto done;
        if ((st = ns_view_write(s)) != NS_OK)
            st = ns_error_wrap(st, "shard '%s' committed, but the view is stale", final);
        else if (sync_st != NS_OK)
            st = ns_error(sync_st, "%s", keep);
    }
done:
    if (st != NS_OK && !committed) {
        s->n_shards = old_shards;
        s->n_clips = old_clips;
        s->next_shard_id = old_next;
        if (moved) {
            unlink(final);
            ns_fsync_dir(nightdir);
            rmdir(nightdir); /* only succeeds when we just made it */
        }
    }
    ns_store_catalog_unlock(s);
    writer_free(w);
    return st;
}
