/* embfile.c -- per-shard embedding files (format in include/nightshift/embeddings.h). */
#include "nightshift/embeddings.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

#define EMB_CHUNK_ROWS 1024

struct ns_emb_writer {
    char tmp[PATH_MAX], final[PATH_MAX], dir[PATH_MAX];
    hid_t file, dset;
    int dim;
    uint64_t rows, want;
};

static ns_status model_dir(const ns_store *s, const char *model_id, char *buf, size_t cap)
{
    char rel[128];
    for (const char *p = model_id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return ns_error(NS_ERR_USAGE, "model id '%.70s' is not a hex digest", model_id);
    if (strlen(model_id) != 64)
        return ns_error(NS_ERR_USAGE, "model id '%.70s' is not a hex digest", model_id);
    snprintf(rel, sizeof rel, "embeddings/%s", model_id);
    return ns_store_path(s, rel, buf, cap);
}

ns_status ns_emb_file_path(const ns_store *s, const char *model_id, uint32_t shard, char *buf,
                          size_t cap)
{
    char dir[PATH_MAX];
    ns_status st = model_dir(s, model_id, dir, sizeof dir);
    if (st != NS_OK)
        return st;
    if ((size_t)snprintf(buf, cap, "%s/%06u.h5", dir, shard) >= cap)
        return ns_error(NS_ERR_USAGE, "path too long under '%s'", dir);
    return NS_OK;
}

/* Removes what a killed run left half-written; the caller holds the lock
 * exclusively. */
static void sweep_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char tmp[PATH_MAX + 260];
        if (!strstr(e->d_name, ".h5.tmp."))
            continue;
        snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
        unlink(tmp);
    }
    if (d)
        closedir(d);
}

static ns_status lock_path(const ns_store *s, const char *model_id, char *dir, size_t cap,
                           char *path, size_t pcap)
{
    ns_status st = model_dir(s, model_id, dir, cap);
    if (st != NS_OK || (st = ns_mkdir_p(dir)) != NS_OK)
        return st;
    if ((size_t)snprintf(path, pcap, "%s/lock", dir) >= pcap)
        return ns_error(NS_ERR_USAGE, "path too long under '%s'", dir);
    return NS_OK;
}

ns_status ns_emb_lock(const ns_store *s, const char *model_id, int wait, int *fd)
{
    char dir[PATH_MAX], path[PATH_MAX + 8], what[PATH_MAX + 64];
    ns_status st = lock_path(s, model_id, dir, sizeof dir, path, sizeof path);
    if (st != NS_OK)
        return st;
    snprintf(what, sizeof what, "embeddings of model %.12s in '%s'", model_id,
             ns_store_dir(s));
    if ((st = ns_flock_take(path, wait, what, fd)) != NS_OK)
        return st;
    sweep_temps(dir);
    return NS_OK;
}

ns_status ns_emb_lock_shared(const ns_store *s, const char *model_id, int *fd)
{
    char dir[PATH_MAX], path[PATH_MAX + 8];
    ns_status st = lock_path(s, model_id, dir, sizeof dir, path, sizeof path);
    if (st != NS_OK)
        return st;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (*fd < 0)
        return ns_error(NS_ERR_IO, "cannot open lock file '%s': %s", path, strerror(errno));
    int alone = flock(*fd, LOCK_EX | LOCK_NB) == 0;
    if (alone)
        sweep_temps(dir);
    while (flock(*fd, LOCK_SH) != 0) {
        if (errno != EINTR) {
            st = ns_error(NS_ERR_IO, "cannot lock '%s': %s", path, strerror(errno));
            close(*fd);
            *fd = -1;
            return st;
        }
    }
    return NS_OK;
}

/* Version 1 files hold the shard's SHA-256 tree as bare hex (shard_sha256),
 * which the catalog now reads as "sha256-tree:<hex>": such files still count. */
static int same_shard_checksum(int version, const char *attr, const char *catalog)
{
    char v1[NS_CHECKSUM_LEN];
    if (version >= 2)
        return strcmp(attr, catalog) == 0;
    ns_checksum_join(NS_CHECKSUM_SHA256_TREE, attr, v1);
    return strcmp(v1, catalog) == 0;
}

/* Opens an existing file and checks every attribute against what it should
 * hold.  *ok = 0 (with no error) when it does not match. */
static ns_status open_checked(const char *path, const char *model_id, const ns_shard_entry *sh,
                              int dim, hid_t *file_out, int *ok)
{
    ns_status st;
    char buf[NS_SOURCE_LEN];
    int32_t d = 0;
    uint64_t n = 0;
    int version = 0;
    hid_t f;
    *ok = 0;
    *file_out = H5I_INVALID_HID;
    errno = 0;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        /* The system refused the open (EACCES, EIO, EMFILE...): an error,
         * not "no embeddings" (issue 16, found by the fault loop). */
        int e = errno;
        H5Eclear2(H5E_DEFAULT);
        if (e != 0 && e != ENOENT)
            return ns_error(NS_ERR_IO, "cannot open embeddings '%s': %s", path, strerror(e));
        return NS_OK; /* not HDF5: damaged, will be rewritten */
    }
    if ((st = ns_h5_check_format_in(f, path, NS_EMB_FORMAT, 1, NS_EMB_FORMAT_VERSION,
                                    &version)) != NS_OK ||
        (st = ns_h5_read_str_attr(f, path, "model_id", buf, sizeof buf)) != NS_OK ||
        strcmp(buf, model_id) != 0 ||
        (st = ns_h5_read_str_attr(f, path, version >= 2 ? "shard_checksum" : "shard_sha256", buf,
                                  sizeof buf)) != NS_OK ||
        !same_shard_checksum(version, buf, sh->checksum) ||
        (st = ns_h5_read_attr(f, path, "dim", H5T_NATIVE_INT32, &d)) != NS_OK || d != dim ||
        (st = ns_h5_read_attr(f, path, "n_frames", H5T_NATIVE_UINT64, &n)) != NS_OK ||
        n != sh->n_frames) {
        ns_h5_fclose(f);
        ns_error_clear();
        return NS_OK;
    }
    *ok = 1;
    *file_out = f;
    return NS_OK;
}

ns_status ns_emb_open_read(const ns_store *s, const char *model_id, const ns_shard_entry *sh,
                           int dim, char *path, size_t cap, hid_t *f)
{
    ns_status st;
    int ok = 0;
    *f = H5I_INVALID_HID;
    ns_h5_init();
    if ((st = ns_emb_file_path(s, model_id, sh->id, path, cap)) != NS_OK)
        return st;
    if (access(path, F_OK) != 0)
        return ns_error(NS_ERR_NOT_FOUND, "night %s shard %u has no embeddings for model %.12s "
                        "-- run `nightshift embed`", sh->night, sh->id, model_id);
    if ((st = open_checked(path, model_id, sh, dim, f, &ok)) != NS_OK)
        return st;
    if (!ok)
        return ns_error(NS_ERR_CORRUPT, "embeddings '%s' are damaged or do not match shard '%s' "
                        "(format, model, checksum, dim %d or %llu frames) -- rerun `nightshift "
                        "embed`", path, sh->path, dim, (unsigned long long)sh->n_frames);
    return NS_OK;
}

ns_status ns_emb_check_finite(const char *path, const float *emb, size_t n, int dim,
                              size_t first_row)
{
    const size_t total = n * (size_t)dim;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(emb[i]))
            return ns_error(NS_ERR_CORRUPT, "'%s': /embeddings row %zu holds a non-finite value "
                            "(%g) -- rerun `nightshift embed`", path,
                            first_row + i / (size_t)dim, (double)emb[i]);
    return NS_OK;
}

ns_status ns_emb_present(const ns_store *s, const char *model_id, const ns_shard_entry *sh,
                         int dim, int *present)
{
    ns_h5_init();
    char path[PATH_MAX];
    hid_t f;
    ns_status st;
    *present = 0;
    ns_h5_init();
    if ((st = ns_emb_file_path(s, model_id, sh->id, path, sizeof path)) != NS_OK)
        return st;
    if (access(path, F_OK) != 0)
        return NS_OK;
    st = open_checked(path, model_id, sh, dim, &f, present);
    if (f >= 0)
        ns_h5_fclose(f);
    return st;
}

ns_status ns_emb_dim(const ns_store *s, const char *model_id, const ns_shard_entry *sh, int *dim)
{
    ns_h5_init();
    char path[PATH_MAX];
    hid_t f = H5I_INVALID_HID;
    int32_t d = 0;
    ns_status st;
    *dim = 0;
    ns_h5_init();
    if ((st = ns_emb_file_path(s, model_id, sh->id, path, sizeof path)) != NS_OK)
        return st;
    if (access(path, F_OK) != 0)
        return ns_error(NS_ERR_NOT_FOUND, "night %s shard %u has no embeddings for model %.12s "
                        "-- run `nightshift embed`", sh->night, sh->id, model_id);
    if ((st = ns_h5_open_read(path, "embeddings", &f)) != NS_OK)
        return st;
    if ((st = ns_h5_read_attr(f, path, "dim", H5T_NATIVE_INT32, &d)) == NS_OK && d < 1)
        st = ns_error(NS_ERR_CORRUPT, "'%s': dim %d", path, (int)d);
    ns_h5_fclose(f);
    *dim = d;
    return st;
}

ns_status ns_emb_begin(const ns_store *s, const char *model_id, const char *model_name, int dim,
                       const ns_shard_entry *sh, const char *device, ns_emb_writer **out)
{
    ns_status st;
    ns_emb_writer *w = calloc(1, sizeof *w);
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hsize_t dims[2] = {0, (hsize_t)dim}, maxd[2] = {H5S_UNLIMITED, (hsize_t)dim},
            chunk[2] = {EMB_CHUNK_ROWS, (hsize_t)dim};
    int32_t version = NS_EMB_FORMAT_VERSION, d32 = dim;
    double created = (double)time(NULL);
    *out = NULL;
    ns_h5_init();
    if (!w)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    w->file = w->dset = H5I_INVALID_HID;
    w->dim = dim;
    w->want = sh->n_frames;
    if ((st = model_dir(s, model_id, w->dir, sizeof w->dir)) != NS_OK ||
        (st = ns_mkdir_p(w->dir)) != NS_OK ||
        (st = ns_emb_file_path(s, model_id, sh->id, w->final, sizeof w->final)) != NS_OK ||
        (st = ns_tmp_name(w->final, w->tmp, sizeof w->tmp)) != NS_OK)
        goto done;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0 || (sp = H5Screate_simple(2, dims, maxd)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, 2, chunk) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        (w->dset = H5Dcreate2(w->file, "embeddings", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl,
                              H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create embeddings file '%s'", w->tmp);
        goto done;
    }
    if (ns_h5_attr_str(w->file, "ns_format", NS_EMB_FORMAT) < 0 ||
        ns_h5_attr_num(w->file, "ns_format_version", H5T_NATIVE_INT32, &version) < 0 ||
        ns_h5_attr_str(w->file, "model_id", model_id) < 0 ||
        ns_h5_attr_str(w->file, "model_name", model_name ? model_name : "") < 0 ||
        ns_h5_attr_num(w->file, "dim", H5T_NATIVE_INT32, &d32) < 0 ||
        ns_h5_attr_num(w->file, "shard_id", H5T_NATIVE_UINT32, &sh->id) < 0 ||
        ns_h5_attr_str(w->file, "shard_path", sh->path) < 0 ||
        ns_h5_attr_str(w->file, "shard_checksum", sh->checksum) < 0 ||
        ns_h5_attr_num(w->file, "n_frames", H5T_NATIVE_UINT64, &sh->n_frames) < 0 ||
        ns_h5_attr_str(w->file, "device", device ? device : "") < 0 ||
        ns_h5_attr_num(w->file, "created", H5T_NATIVE_DOUBLE, &created) < 0 ||
        ns_h5_attr_str(w->file, "writer", "nightshift " NS_VERSION) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot write attributes of '%s'", w->tmp);
        goto done;
    }
done:
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (st != NS_OK)
        ns_emb_discard(w);
    else
        *out = w;
    return st;
}

ns_status ns_emb_append(ns_emb_writer *w, const float *emb, size_t n)
{
    ns_h5_init();
    ns_status st = NS_OK;
    hsize_t size[2] = {w->rows + n, (hsize_t)w->dim}, start[2] = {w->rows, 0},
            count[2] = {n, (hsize_t)w->dim};
    hid_t fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    if (n == 0)
        return NS_OK;
    if (w->rows + n > w->want)
        return ns_error(NS_ERR_USAGE, "'%s': %llu rows for a shard of %llu frames", w->tmp,
                        (unsigned long long)(w->rows + n), (unsigned long long)w->want);
    if (H5Dset_extent(w->dset, size) < 0 || (fsp = H5Dget_space(w->dset)) < 0 ||
        (msp = H5Screate_simple(2, count, NULL)) < 0 ||
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(w->dset, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, emb) < 0)
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot write %zu embeddings", w->tmp, n);
    else
        w->rows += n;
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return st;
}

ns_status ns_emb_commit(ns_emb_writer *w)
{
    ns_h5_init();
    ns_status st = NS_OK;
    herr_t r1, r2;
    if (w->rows != w->want) {
        st = ns_error(NS_ERR_USAGE, "'%s': %llu of %llu rows written; not committed", w->tmp,
                      (unsigned long long)w->rows, (unsigned long long)w->want);
        ns_emb_discard(w);
        return st;
    }
    r1 = H5Dclose(w->dset);
    r2 = ns_h5_fclose(w->file);
    w->dset = w->file = H5I_INVALID_HID;
    if (r1 < 0 || r2 < 0)
        st = ns_h5_error(NS_ERR_IO, "cannot close embeddings file '%s'", w->tmp);
    if (st == NS_OK)
        st = ns_fsync_path(w->tmp);
    if (st == NS_OK)
        st = ns_atomic_rename(w->tmp, w->final);
    if (st != NS_OK) {
        ns_emb_discard(w);
        return st;
    }
    free(w);
    return NS_OK;
}

void ns_emb_discard(ns_emb_writer *w)
{
    ns_h5_init();
    if (!w)
        return;
    if (w->dset >= 0)
        H5Dclose(w->dset);
    if (w->file >= 0)
        ns_h5_fclose(w->file);
    if (w->tmp[0])
        unlink(w->tmp);
    free(w);
}

ns_status ns_emb_read(const ns_store *s, const char *model_id, const ns_shard_entry *sh, int dim,
                      float *out)
{
    char path[PATH_MAX];
    hid_t f = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int ok = 0;
    ns_status st;
    ns_h5_init();
    if ((st = ns_emb_file_path(s, model_id, sh->id, path, sizeof path)) != NS_OK ||
        (st = open_checked(path, model_id, sh, dim, &f, &ok)) != NS_OK)
        return st;
    if (!ok)
        return ns_error(NS_ERR_NOT_FOUND, "no embeddings of model %.12s for shard '%s'",
                        model_id, sh->path);
    d = H5Dopen2(f, "embeddings", H5P_DEFAULT);
    if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read /embeddings", path);
    if (st == NS_OK)
        st = ns_emb_check_finite(path, out, sh->n_frames, dim, 0);
    if (d >= 0)
        H5Dclose(d);
    ns_h5_fclose(f);
    return st;
}
