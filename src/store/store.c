/* store.c -- opening a store, the writer lock, and reading (the catalog
 * file itself: catalog.c). */
#define _GNU_SOURCE
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

ns_status ns_store_path(const ns_store *s, const char *rel, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", s->dir, rel);
    if (n < 0 || (size_t)n >= cap)
        return ns_error(NS_ERR_USAGE, "path too long: '%s/%s'", s->dir, rel);
    return NS_OK;
}

/* ---- the lock ------------------------------------------------------------- */

static ns_status take_lock(ns_store *s, int wait)
{
    char path[PATH_MAX], what[PATH_MAX + 16];
    ns_status st = ns_store_path(s, "lock", path, sizeof path);
    if (st != NS_OK)
        return st;
    snprintf(what, sizeof what, "store '%s'", s->dir);
    return ns_flock_take(path, wait, what, &s->lock_fd);
}

/* A shared writer: the writer lock exclusively when no one else holds it
 * (*alone = 1: debris may be cleared), else shared, waiting out an
 * exclusive writer. */
static ns_status take_lock_shared(ns_store *s, int *alone)
{
    char path[PATH_MAX];
    ns_status st = ns_store_path(s, "lock", path, sizeof path);
    if (st != NS_OK)
        return st;
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (s->lock_fd < 0)
        return ns_error(NS_ERR_IO, "cannot open lock file '%s': %s", path, strerror(errno));
    *alone = flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0;
    if (!*alone)
        while (flock(s->lock_fd, LOCK_SH) != 0)
            if (errno != EINTR)
                return ns_error(NS_ERR_IO, "cannot lock '%s': %s", path, strerror(errno));
    return NS_OK;
}

/* Converts the exclusive hold of a lone shared writer to a shared one. */
static ns_status share_lock(ns_store *s)
{
    while (flock(s->lock_fd, LOCK_SH) != 0)
        if (errno != EINTR)
            return ns_error(NS_ERR_IO, "cannot share the lock of store '%s': %s", s->dir,
                            strerror(errno));
    return NS_OK;
}

ns_status ns_store_reserve(ns_store *s, size_t more_shards, size_t more_clips)
{
    if (s->n_shards + more_shards > s->cap_shards) {
        size_t cap = (s->n_shards + more_shards) * 2;
        ns_shard_entry *p = realloc(s->shards, cap * sizeof *p);
        uint64_t *q = realloc(s->shard_first, (cap + 1) * sizeof *q);
        if (p)
            s->shards = p;
        if (q)
            s->shard_first = q;
        if (!p || !q)
            return ns_error(NS_ERR_NOMEM, "no memory for %zu shard rows", cap);
        s->cap_shards = cap;
    }
    if (s->n_clips + more_clips > s->cap_clips) {
        size_t cap = (s->n_clips + more_clips) * 2;
        ns_catalog_clip *p = realloc(s->clips, cap * sizeof *p);
        if (!p)
            return ns_error(NS_ERR_NOMEM, "no memory for %zu clip rows", cap);
        s->clips = p;
        s->cap_clips = cap;
    }
    return NS_OK;
}

ns_status ns_store_catalog_lock(ns_store *s)
{
    char path[PATH_MAX];
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    ns_status st = ns_store_path(s, "catalog.lock", path, sizeof path);
    if (st != NS_OK)
        return st;
    s->catalog_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (s->catalog_fd < 0)
        return ns_error(NS_ERR_IO, "cannot open catalog lock '%s': %s", path, strerror(errno));
    while (fcntl(s->catalog_fd, F_SETLKW, &fl) != 0) {
        if (errno != EINTR) {
            st = ns_error(NS_ERR_IO, "cannot lock '%s': %s", path, strerror(errno));
            ns_store_catalog_unlock(s);
            return st;
        }
    }
    /* Others have committed since we last looked: read the catalog afresh. */
    free(s->shards);
    free(s->clips);
    s->shards = NULL;
    s->clips = NULL;
    s->n_shards = s->n_clips = s->cap_shards = s->cap_clips = 0;
    ns_store_cache_drop(s);
    if ((st = ns_catalog_load(s)) != NS_OK)
        ns_store_catalog_unlock(s);
    return st;
}

void ns_store_catalog_unlock(ns_store *s)
{
    if (s->catalog_fd >= 0)
        close(s->catalog_fd); /* releases the record lock */
    s->catalog_fd = -1;
}

ns_status ns_store_take_shard_id(ns_store *s, uint32_t *id)
{
    ns_status st = ns_store_catalog_lock(s);
    if (st != NS_OK)
        return st;
    *id = s->next_shard_id++;
    st = ns_catalog_save(s, NULL);
    ns_store_catalog_unlock(s);
    return st;
}

static size_t hash_hex(const char *hex)
{
    /* The id is already a uniform hash: its first 16 hex digits suffice. */
    uint64_t h = 0;
    for (int i = 0; i < 16 && hex[i]; i++)
        h = h * 16 + (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : (hex[i] | 32) - 'a' + 10);
    return (size_t)(h ^ (h >> 29));
}

ns_status ns_store_index_rebuild(ns_store *s)
{
    uint64_t *first = realloc(s->shard_first, (s->cap_shards + 1) * sizeof *first);
    if (!first)
        return ns_error(NS_ERR_NOMEM, "no memory for the shard index");
    s->shard_first = first;
    first[0] = 0;
    for (size_t i = 0; i < s->n_shards; i++)
        first[i + 1] = first[i] + s->shards[i].n_frames;
    size_t cap = 16;
    while (cap < 2 * s->n_clips)
        cap *= 2;
    if (cap != s->hash_cap) {
        free(s->hash);
        s->hash = malloc(cap * sizeof *s->hash);
        s->hash_cap = s->hash ? cap : 0;
        if (!s->hash)
            return ns_error(NS_ERR_NOMEM, "no memory for the clip index");
    }
    memset(s->hash, 0, cap * sizeof *s->hash);
    for (size_t i = 0; i < s->n_clips; i++) {
        size_t h = hash_hex(s->clips[i].sha256) & (cap - 1);
        while (s->hash[h])
            h = (h + 1) & (cap - 1);
        s->hash[h] = (uint32_t)(i + 1);
    }
    return NS_OK;
}

long ns_store_find_clip(const ns_store *s, const char sha256_hex[NS_SHA256_HEX])
{
    if (!s->hash_cap)
        return -1;
    size_t h = hash_hex(sha256_hex) & (s->hash_cap - 1);
    for (; s->hash[h]; h = (h + 1) & (s->hash_cap - 1)) {
        uint32_t i = s->hash[h] - 1;
        if (strncmp(s->clips[i].sha256, sha256_hex, NS_SHA256_HEX - 1) == 0)
            return (long)i;
    }
    return -1;
}

/* ---- opening -------------------------------------------------------------- */

/* 1 when name is something a store (or a crashed store creation) holds. */
static int store_entry(const char *name)
{
    /* runs/: the nightly job keeps its run folders here by default and takes
     * the lock before the first ingest creates the store. */
    return !strcmp(name, "lock") || !strcmp(name, "tmp") || !strcmp(name, "shards") ||
           !strcmp(name, "runs") ||
           !strncmp(name, "catalog.h5", 10) || !strncmp(name, "view.h5", 7);
}

/* Classifies DIR: 0 missing, 1 empty (or only our own leftovers), 2 foreign. */
static ns_status dir_state(const char *dir, int *state)
{
    struct dirent *e;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *state = 0;
            return NS_OK;
        }
        return ns_error(NS_ERR_IO, "cannot open store directory '%s': %s", dir, strerror(errno));
    }
    *state = 1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !store_entry(e->d_name)) {
            *state = 2;
            break;
        }
    }
    closedir(d);
    return NS_OK;
}

static ns_status store_alloc(const char *dir, ns_store **out)
{
    ns_store *s = calloc(1, sizeof *s);
    size_t len = strlen(dir);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return ns_error(NS_ERR_NOMEM, "no memory to open store '%s'", dir);
    }
    while (len > 1 && s->dir[len - 1] == '/')
        s->dir[--len] = '\0';
    s->lock_fd = s->catalog_fd = -1;
    for (int i = 0; i < NS_STORE_CACHE; i++) {
        s->cache[i].shard = -1;
        s->cache[i].file = s->cache[i].frames = s->cache[i].clips = H5I_INVALID_HID;
    }
    *out = s;
    return NS_OK;
}

static int catalog_exists(const ns_store *s)
{
    char path[PATH_MAX];
    struct stat sb;
    return ns_store_path(s, "catalog.h5", path, sizeof path) == NS_OK && stat(path, &sb) == 0;
}

ns_status ns_store_open_read(const char *dir, ns_store **out)
{
    ns_store *s = NULL;
    int state = 0;
    ns_status st;
    *out = NULL;
    ns_h5_init();
    if ((st = store_alloc(dir, &s)) != NS_OK)
        return st;
    if (!catalog_exists(s)) {
        if ((st = dir_state(s->dir, &state)) != NS_OK)
            goto done;
        if (state == 2)
            st = ns_error(NS_ERR_FORMAT, "'%s' is not a nightshift store (no catalog.h5)", s->dir);
        else
            st = ns_error(NS_ERR_NOT_FOUND, "no store at '%s'", s->dir);
        goto done;
    }
    st = ns_catalog_load(s);
    s->check_shards = 1; /* corrupt pixels are never read silently */
done:
    if (st != NS_OK)
        ns_store_close(s);
    else
        *out = s;
    return st;
}

/* Removes the files in DIR/rel; with check_catalog, those the catalog names stay. */
static ns_status sweep_dir(const ns_store *s, const char *rel, int check_catalog)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *e;
    ns_status st = ns_store_path(s, rel, dir, sizeof dir);
    DIR *d;
    if (st != NS_OK)
        return st;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? NS_OK
                               : ns_error(NS_ERR_IO, "cannot list '%s': %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_type == DT_DIR)
            continue;
        int keep = 0;
        if (check_catalog) {
            char relp[PATH_MAX];
            snprintf(relp, sizeof relp, "%s/%s", rel, e->d_name);
            for (size_t i = 0; i < s->n_shards && !keep; i++)
                keep = strcmp(s->shards[i].path, relp) == 0;
        }
        if (keep)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        if (unlink(path) != 0 && errno != ENOENT && errno != EISDIR) {
            st = ns_error(NS_ERR_IO, "cannot remove leftover '%s': %s", path, strerror(errno));
            break;
        }
    }
    closedir(d);
    return st;
}

/* Removes temp files of the catalog and view left in DIR by a killed writer. */
static ns_status sweep_root_temps(const ns_store *s)
{
    char path[PATH_MAX];
    struct dirent *e;
    ns_status st = NS_OK;
    DIR *d = opendir(s->dir);
    if (!d)
        return ns_error(NS_ERR_IO, "cannot list '%s': %s", s->dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "catalog.h5.tmp.", 15) != 0 && strncmp(e->d_name, "view.h5.tmp.", 12) != 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name) >= sizeof path)
            continue;
        if (unlink(path) != 0 && errno != ENOENT) {
            st = ns_error(NS_ERR_IO, "cannot remove leftover '%s': %s", path, strerror(errno));
            break;
        }
    }
    closedir(d);
    return st;
}

/* Deletes the files in DIR/tmp, the catalog's and view's temp files, and
 * shard files the catalog does not name (crash debris). */
static ns_status clean_debris(const ns_store *s)
{
    char dir[PATH_MAX], rel[PATH_MAX];
    struct dirent *e;
    DIR *d;
    ns_status st = sweep_dir(s, "tmp", 0);
    if (st == NS_OK)
        st = sweep_root_temps(s);
    if (st != NS_OK || (st = ns_store_path(s, "shards", dir, sizeof dir)) != NS_OK)
        return st;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? NS_OK
                               : ns_error(NS_ERR_IO, "cannot list '%s': %s", dir, strerror(errno));
    while (st == NS_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        snprintf(rel, sizeof rel, "shards/%s", e->d_name);
        st = sweep_dir(s, rel, 1);
    }
    closedir(d);
    return st;
}

enum { OPEN_SHARED = 1, OPEN_NO_VIEW = 2 };

static ns_status open_writer(const char *dir, int frame_size, int wait, int mode,
                             ns_store **out)
{
    const int shared = mode & OPEN_SHARED;
    ns_store *s = NULL;
    int state = 0, alone = 1;
    char sub[PATH_MAX];
    ns_status st;
    *out = NULL;
    ns_h5_init();
    if (frame_size < 0 || frame_size > 4096)
        return ns_error(NS_ERR_USAGE, "frame size %d out of range (1..4096)", frame_size);
    if ((st = store_alloc(dir, &s)) != NS_OK)
        return st;
    s->writable = 1;
    s->shared = shared;
    if (!catalog_exists(s)) {
        /* Checked before the lock so a foreign directory gets no lock file. */
        if ((st = dir_state(s->dir, &state)) != NS_OK)
            goto done;
        if (state == 2) {
            st = ns_error(NS_ERR_FORMAT, "'%s' is not a nightshift store (no catalog.h5)", s->dir);
            goto done;
        }
        if ((st = ns_mkdir_p(s->dir)) != NS_OK)
            goto done;
    }
    if ((st = shared ? take_lock_shared(s, &alone) : take_lock(s, wait)) != NS_OK)
        goto done;
    if (!alone) { /* another shared writer has set the store up */
        if ((st = ns_store_catalog_lock(s)) != NS_OK)
            goto done;
        ns_store_catalog_unlock(s);
        if (frame_size && frame_size != s->frame_size)
            st = ns_error(NS_ERR_USAGE, "store '%s' holds %dx%d frames, not %dx%d", s->dir,
                          s->frame_size, s->frame_size, frame_size, frame_size);
        goto done;
    }
    if ((st = ns_store_path(s, "tmp", sub, sizeof sub)) != NS_OK || (st = ns_mkdir_p(sub)) != NS_OK ||
        (st = ns_store_path(s, "shards", sub, sizeof sub)) != NS_OK || (st = ns_mkdir_p(sub)) != NS_OK)
        goto done;
    if (!catalog_exists(s)) { /* under the lock: only one creator wins */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->frame_size = frame_size ? frame_size : NS_STORE_DEFAULT_FRAME_SIZE;
        s->created = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
        s->next_shard_id = 1;
        if ((st = ns_store_index_rebuild(s)) != NS_OK || (st = ns_catalog_save(s, NULL)) != NS_OK)
            goto done;
    } else {
        if ((st = ns_catalog_load(s)) != NS_OK)
            goto done;
        if (frame_size && frame_size != s->frame_size) {
            st = ns_error(NS_ERR_USAGE, "store '%s' holds %dx%d frames, not %dx%d", s->dir,
                          s->frame_size, s->frame_size, frame_size, frame_size);
            goto done;
        }
    }
    if ((st = clean_debris(s)) != NS_OK)
        goto done;
    if (!(mode & OPEN_NO_VIEW) && !ns_view_is_current(s) && (st = ns_view_write(s)) != NS_OK)
        goto done;
    if (shared)
        st = share_lock(s);
done:
    if (st != NS_OK)
        ns_store_close(s);
    else
        *out = s;
    return st;
}

ns_status ns_store_open_write(const char *dir, int frame_size, int wait, ns_store **out)
{
    return open_writer(dir, frame_size, wait, 0, out);
}

ns_status ns_store_open_append(const char *dir, int frame_size, ns_store **out)
{
    return open_writer(dir, frame_size, 1, OPEN_SHARED, out);
}

ns_status ns_store_open_repair(const char *dir, int wait, ns_store **out)
{
    return open_writer(dir, 0, wait, OPEN_NO_VIEW, out);
}

void ns_store_cache_drop(ns_store *s)
{
    for (int i = 0; i < NS_STORE_CACHE; i++) {
        ns_shard_handle *h = &s->cache[i];
        if (h->clips >= 0) H5Dclose(h->clips);
        if (h->frames >= 0) H5Dclose(h->frames);
        if (h->file >= 0) ns_h5_fclose(h->file);
        h->file = h->frames = h->clips = H5I_INVALID_HID;
        h->shard = -1;
    }
}

void ns_store_close(ns_store *s)
{
    ns_h5_init();
    if (!s)
        return;
    if (s->active)
        ns_shard_discard(s->active);
    ns_store_cache_drop(s);
    ns_store_catalog_unlock(s);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->shards);
    free(s->clips);
    free(s->shard_first);
    free(s->hash);
    free(s->shard_checked);
    free(s->dir);
    free(s);
}

const char *ns_store_dir(const ns_store *s) { return s->dir; }
int ns_store_frame_size(const ns_store *s) { return s->frame_size; }

const ns_shard_entry *ns_store_shards(const ns_store *s, size_t *n)
{
    *n = s->n_shards;
    return s->shards;
}

const ns_catalog_clip *ns_store_clips(const ns_store *s, size_t *n)
{
    *n = s->n_clips;
    return s->clips;
}

/* ---- reading -------------------------------------------------------------- */

ns_status ns_store_shard_open(ns_store *s, size_t shard, ns_shard_handle **out)
{
    ns_h5_init();
    ns_shard_handle *h = NULL;
    char path[PATH_MAX];
    int32_t fs = 0;
    ns_status st = NS_OK;
    for (int i = 0; i < NS_STORE_CACHE; i++) {
        if (s->cache[i].shard == (long)shard) {
            s->cache[i].used = ++s->clock;
            *out = &s->cache[i];
            return NS_OK;
        }
        if (!h || s->cache[i].used < h->used)
            h = &s->cache[i];
    }
    if (h->clips >= 0) H5Dclose(h->clips);
    if (h->frames >= 0) H5Dclose(h->frames);
    if (h->file >= 0) ns_h5_fclose(h->file);
    h->file = h->frames = h->clips = H5I_INVALID_HID;
    h->shard = -1;
    if ((s->check_shards && (st = ns_store_shard_check(s, shard)) != NS_OK) ||
        (st = ns_store_path(s, s->shards[shard].path, path, sizeof path)) != NS_OK)
        return st;
    h->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h->file < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot open shard '%s'", path);
        goto done;
    }
    if ((st = ns_h5_check_format(h->file, path, NS_STORE_FORMAT_SHARD)) != NS_OK ||
        (st = ns_h5_read_attr(h->file, path, "frame_size", H5T_NATIVE_INT32, &fs)) != NS_OK)
        goto done;
    if (fs != s->frame_size) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': frame_size %d, store has %d", path, (int)fs,
                      s->frame_size);
        goto done;
    }
    h->frames = H5Dopen2(h->file, "frames", H5P_DEFAULT);
    h->clips = H5Dopen2(h->file, "clips", H5P_DEFAULT);
    if (h->frames < 0 || h->clips < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /frames or /clips", path);
        goto done;
    }
    h->shard = (long)shard;
    h->used = ++s->clock;
    *out = h;
done:
    if (st != NS_OK) {
        if (h->clips >= 0) H5Dclose(h->clips);
        if (h->frames >= 0) H5Dclose(h->frames);
        if (h->file >= 0) ns_h5_fclose(h->file);
        h->file = h->frames = h->clips = H5I_INVALID_HID;
    }
    return st;
}

ns_status ns_store_read_frames(ns_store *s, uint64_t row, size_t n, uint8_t *out)
{
    ns_h5_init();
    const size_t S = (size_t)s->frame_size, fbytes = S * S * 3;
    const uint64_t total = s->shard_first[s->n_shards];
    ns_status st = NS_OK;
    hid_t fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    if (row > total || n > total - row)
        return ns_error(NS_ERR_USAGE, "store '%s': frames %llu..%llu past the end (%llu frames)",
                        s->dir, (unsigned long long)row, (unsigned long long)(row + n),
                        (unsigned long long)total);
    while (n > 0) {
        /* First shard whose end lies past row (skips empty shards). */
        size_t lo = 0, hi = s->n_shards - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s->shard_first[mid + 1] > row)
                hi = mid;
            else
                lo = mid + 1;
        }
        ns_shard_handle *h = NULL;
        uint64_t off = row - s->shard_first[lo];
        uint64_t cnt = s->shards[lo].n_frames - off;
        if (cnt > n)
            cnt = n;
        if ((st = ns_store_shard_open(s, lo, &h)) != NS_OK)
            goto done;
        hsize_t start[4] = {off, 0, 0, 0}, count[4] = {cnt, S, S, 3};
        fsp = H5Dget_space(h->frames);
        msp = H5Screate_simple(4, count, NULL);
        if (fsp < 0 || msp < 0 ||
            H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(h->frames, H5T_NATIVE_UINT8, msp, fsp, H5P_DEFAULT, out) < 0) {
            st = ns_h5_error(NS_ERR_IO, "cannot read frames %llu..%llu of shard '%s/%s'",
                             (unsigned long long)off, (unsigned long long)(off + cnt), s->dir,
                             s->shards[lo].path);
            goto done;
        }
        H5Sclose(fsp);
        H5Sclose(msp);
        fsp = msp = H5I_INVALID_HID;
        out += cnt * fbytes;
        row += cnt;
        n -= cnt;
    }
done:
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return st;
}

ns_status ns_store_clip_record(ns_store *s, size_t i, ns_clip_record *out)
{
    ns_h5_init();
    ns_status st = NS_OK;
    ns_shard_handle *h = NULL;
    hid_t fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID, t = H5I_INVALID_HID;
    hsize_t start[1], one[1] = {1};
    if (i >= s->n_clips)
        return ns_error(NS_ERR_USAGE, "store '%s': no clip %zu (%zu clips)", s->dir, i, s->n_clips);
    if ((st = ns_store_shard_open(s, s->clips[i].shard, &h)) != NS_OK)
        return st;
    start[0] = s->clips[i].row;
    memset(out, 0, sizeof *out);
    t = ns_h5_clip_record_type();
    fsp = H5Dget_space(h->clips);
    msp = H5Screate_simple(1, one, NULL);
    if (t < 0 || fsp < 0 || msp < 0 ||
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, one, NULL) < 0 ||
        H5Dread(h->clips, t, msp, fsp, H5P_DEFAULT, out) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot read clip row %u of shard '%s/%s'",
                         s->clips[i].row, s->dir, s->shards[s->clips[i].shard].path);
        goto done;
    }
    out->sha256[NS_SHA256_HEX - 1] = out->camera[NS_CAMERA_LEN - 1] = '\0';
    out->night[NS_NIGHT_LEN - 1] = out->source[NS_SOURCE_LEN - 1] = '\0';
    out->container[sizeof out->container - 1] = '\0';
done:
    if (t >= 0) H5Tclose(t);
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return st;
}
