/* verify.c -- store summary and read-only integrity verification. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nightshift/strbuf.h"
#include "store_internal.h"

/* ---- summary ---------------------------------------------------------------- */

static _Thread_local uint64_t walk_bytes; /* nftw has no user pointer */

static int add_bytes(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    if (type == FTW_F)
        walk_bytes += (uint64_t)sb->st_size;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct strings among n (sorts the pointer array). */
static size_t distinct(const char **v, size_t n)
{
    size_t d = 0;
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; i < n; i++)
        d += i == 0 || strcmp(v[i], v[i - 1]) != 0;
    return d;
}

ns_status ns_store_summarize(ns_store *s, ns_store_summary *out)
{
    size_t most = s->n_clips > s->n_shards ? s->n_clips : s->n_shards;
    const char **v = malloc((most ? most : 1) * sizeof *v);
    memset(out, 0, sizeof *out);
    if (!v)
        return ns_error(NS_ERR_NOMEM, "no memory to summarize store '%s'", s->dir);
    out->frame_size = s->frame_size;
    out->n_shards = s->n_shards;
    out->n_clips = s->n_clips;
    for (size_t i = 0; i < s->n_shards; i++) {
        const char *n = s->shards[i].night;
        v[i] = n;
        out->n_frames += s->shards[i].n_frames;
        if (i == 0 || strcmp(n, out->first_night) < 0)
            snprintf(out->first_night, sizeof out->first_night, "%s", n);
        if (i == 0 || strcmp(n, out->last_night) > 0)
            snprintf(out->last_night, sizeof out->last_night, "%s", n);
    }
    out->n_nights = distinct(v, s->n_shards);
    for (size_t i = 0; i < s->n_clips; i++) {
        const ns_catalog_clip *c = &s->clips[i];
        v[i] = c->camera;
        out->n_damaged += c->n_damaged;
        out->n_failed += c->n_failed;
        for (int b = 0; b < 6; b++)
            out->qc_clips[b] += (c->qc_flags >> b) & 1u;
    }
    out->n_cameras = distinct(v, s->n_clips);
    free(v);
    walk_bytes = 0;
    if (nftw(s->dir, add_bytes, 16, FTW_PHYS) != 0)
        return ns_error(NS_ERR_IO, "cannot walk store directory '%s'", s->dir);
    out->bytes_on_disk = walk_bytes;
    return NS_OK;
}

/* ---- verification ------------------------------------------------------------- */

static void problem(ns_verify_report *r, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(ns_verify_report *r, int error, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (error)
        r->n_errors++;
    else
        r->n_notes++;
    ns_warn(&r->problems, "%s: %s", error ? "error" : "note", buf);
}

/* The catalog repeats these fields of the shard's own /clips row: a flipped
 * byte in either shows as a difference, named by field. */
static void cross_check_clip(size_t i, const ns_catalog_clip *c, const ns_clip_record *rec,
                             const char *path, ns_verify_report *r)
{
    char a[4 * NS_CAMERA_LEN + 4], b[4 * NS_CAMERA_LEN + 4];
#define NUM_FIELD(name, cat, shard)                                                            \
    if ((cat) != (shard))                                                                       \
        problem(r, 1, "catalog clip %zu (%.12s): field %s is %lu, shard '%s' /clips row %u "    \
                "says %lu", i, rec->sha256, name, (unsigned long)(cat), path, c->row,           \
                (unsigned long)(shard));
#define STR_FIELD(name, cat, shard, len)                                                        \
    if (strncmp(cat, shard, len) != 0) {                                                        \
        ns_text_show(a, sizeof a, cat, len);                                                    \
        ns_text_show(b, sizeof b, shard, len);                                                  \
        problem(r, 1, "catalog clip %zu (%.12s): field %s is '%s', shard '%s' /clips row %u "   \
                "says '%s'", i, rec->sha256, name, a, path, c->row, b);                         \
    }
    STR_FIELD("camera", c->camera, rec->camera, NS_CAMERA_LEN)
    STR_FIELD("night", c->night, rec->night, NS_NIGHT_LEN)
    NUM_FIELD("n_damaged", c->n_damaged, rec->frames_damaged)
    NUM_FIELD("n_failed", c->n_failed, rec->frames_failed)
    NUM_FIELD("qc_flags", c->qc_flags, rec->qc_flags)
#undef NUM_FIELD
#undef STR_FIELD
}

/* The shard table's id and night against the shard's own attributes. */
static void cross_check_entry(hid_t f, const ns_shard_entry *e, const char *path,
                              ns_verify_report *r)
{
    char night[64] = "", a[4 * NS_NIGHT_LEN + 4], b[4 * 64 + 4];
    uint32_t id = 0;
    if (ns_h5_read_attr(f, path, "shard_id", H5T_NATIVE_UINT32, &id) != NS_OK ||
        ns_h5_read_str_attr(f, path, "night", night, sizeof night) != NS_OK) {
        problem(r, 1, "%s", ns_errmsg());
        return;
    }
    if (id != e->id)
        problem(r, 1, "catalog shard '%s': field id is %u, the shard's shard_id is %u", path,
                e->id, id);
    if (strncmp(night, e->night, NS_NIGHT_LEN) != 0) {
        ns_text_show(a, sizeof a, e->night, NS_NIGHT_LEN);
        ns_text_show(b, sizeof b, night, sizeof night);
        problem(r, 1, "catalog shard '%s': field night is '%s', the shard's night is '%s'", path,
                a, b);
    }
}

/* Structural checks through HDF5; returns after the first failure, which
 * makes it return 1 (the file is damaged); catalog mismatches return 0. */
static int check_shard_contents(ns_store *s, size_t k, const char *path, ns_verify_report *r)
{
    const ns_shard_entry *e = &s->shards[k];
    hid_t f = H5I_INVALID_HID, d = H5I_INVALID_HID, t = H5I_INVALID_HID;
    ns_clip_record *recs = NULL;
    int32_t fs = 0;
    uint64_t rows = 0;
    int bad = 1;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        ns_h5_error(NS_ERR_IO, "cannot open");
        problem(r, 1, "shard '%s': %s", path, ns_errmsg());
        goto done;
    }
    if (ns_h5_check_format(f, path, NS_STORE_FORMAT_SHARD) != NS_OK ||
        ns_h5_read_attr(f, path, "frame_size", H5T_NATIVE_INT32, &fs) != NS_OK) {
        problem(r, 1, "%s", ns_errmsg());
        goto done;
    }
    if (fs != s->frame_size) {
        problem(r, 1, "shard '%s': frame_size %d, store has %d", path, (int)fs, s->frame_size);
        goto done;
    }
    if ((d = H5Dopen2(f, "frames", H5P_DEFAULT)) < 0 ||
        ns_h5_rows(d, path, "/frames", &rows) != NS_OK) {
        ns_h5_error(NS_ERR_CORRUPT, "cannot read /frames");
        problem(r, 1, "shard '%s': %s", path, ns_errmsg());
        goto done;
    }
    if (rows != e->n_frames)
        problem(r, 1, "shard '%s': /frames has %llu rows, catalog says %llu", path,
                (unsigned long long)rows, (unsigned long long)e->n_frames);
    H5Dclose(d);
    if ((d = H5Dopen2(f, "clips", H5P_DEFAULT)) < 0 ||
        ns_h5_rows(d, path, "/clips", &rows) != NS_OK) {
        ns_h5_error(NS_ERR_CORRUPT, "cannot read /clips");
        problem(r, 1, "shard '%s': %s", path, ns_errmsg());
        goto done;
    }
    if (rows != e->n_clips) {
        problem(r, 1, "shard '%s': /clips has %llu rows, catalog says %u", path,
                (unsigned long long)rows, e->n_clips);
        bad = 0; /* the shard's checksum decides; the catalog row is wrong */
        goto done;
    }
    recs = calloc(rows ? rows : 1, sizeof *recs);
    t = ns_h5_clip_record_type();
    if (!recs || t < 0 || (rows && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs) < 0)) {
        ns_h5_error(NS_ERR_CORRUPT, "cannot read /clips");
        problem(r, 1, "shard '%s': %s", path, ns_errmsg());
        goto done;
    }
    for (size_t i = 0; i < s->n_clips; i++) {
        const ns_catalog_clip *c = &s->clips[i];
        if (c->shard != k)
            continue;
        if (c->row >= rows || strncmp(recs[c->row].sha256, c->sha256, 64) != 0) {
            char id[4 * NS_SHA256_HEX + 4];
            ns_text_show(id, sizeof id, c->sha256, NS_SHA256_HEX - 1);
            problem(r, 1, "catalog clip %zu: shard '%s' /clips row %u is not clip %s", i, path,
                    c->row, id);
            continue;
        }
        cross_check_clip(i, c, &recs[c->row], path, r);
    }
    cross_check_entry(f, e, path, r);
    bad = 0;
done:
    H5Eclear2(H5E_DEFAULT);
    free(recs);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) ns_h5_fclose(f);
    return bad;
}

ns_status ns_store_shard_check(ns_store *s, size_t k)
{
    const ns_shard_entry *e = &s->shards[k];
    char path[PATH_MAX], got[NS_CHECKSUM_LEN], want[4 * NS_CHECKSUM_LEN + 4];
    ns_checksum_algo algo;
    struct stat sb;
    ns_status st;
    if (k < s->n_checked && s->shard_checked[k])
        return NS_OK;
    if ((st = ns_store_path(s, e->path, path, sizeof path)) != NS_OK)
        return st;
    if (stat(path, &sb) != 0)
        return ns_error(NS_ERR_CORRUPT, "shard '%s' is missing", path);
    if ((uint64_t)sb.st_size != e->file_bytes)
        return ns_error(NS_ERR_CORRUPT, "shard '%s': %llu bytes, catalog says %llu", path,
                        (unsigned long long)sb.st_size, (unsigned long long)e->file_bytes);
    ns_text_show(want, sizeof want, e->checksum, NS_CHECKSUM_LEN - 1);
    if (ns_checksum_parse(e->checksum, &algo) != NS_OK)
        return ns_error(NS_ERR_CORRUPT, "shard '%s': the catalog's checksum '%s' is unreadable",
                        path, want);
    if ((st = ns_checksum_file(path, algo, got)) != NS_OK)
        return st;
    if (strcmp(got, e->checksum) != 0)
        return ns_error(NS_ERR_CORRUPT, "shard '%s': checksum %s does not match the catalog's %s",
                        path, got, want);
    if (k >= s->n_checked) {
        uint8_t *c = realloc(s->shard_checked, s->n_shards);
        if (!c)
            return NS_OK; /* it matched; only the memo is lost */
        memset(c + s->n_checked, 0, s->n_shards - s->n_checked);
        s->shard_checked = c;
        s->n_checked = s->n_shards;
    }
    s->shard_checked[k] = 1;
    return NS_OK;
}

/* Returns 1 when the shard file itself is damaged. */
static int check_shard(ns_store *s, size_t k, ns_verify_report *r)
{
    char path[PATH_MAX];
    struct stat sb;
    int bad = 0;
    r->shards_checked++;
    if (ns_store_path(s, s->shards[k].path, path, sizeof path) != NS_OK) {
        problem(r, 1, "%s", ns_errmsg());
        return 1;
    }
    if (ns_store_shard_check(s, k) != NS_OK) {
        problem(r, 1, "%s", ns_errmsg());
        bad = 1;
    }
    if (stat(path, &sb) == 0)
        bad |= check_shard_contents(s, k, path, r);
    if (bad)
        problem(r, 0, "shard '%s' is damaged (%u clips, %llu frames): 'nightshift verify "
                "--repair' moves it to %s/quarantine/ and drops its clips from the catalog; "
                "then ingest those clips' source files again (the note beside it lists them), "
                "or first put back a good copy from a backup", path, s->shards[k].n_clips,
                (unsigned long long)s->shards[k].n_frames, s->dir);
    return bad;
}

static void check_first_frames(ns_store *s, const char *cat, ns_verify_report *r)
{
    uint64_t shard_first = 0, next = 0;
    size_t ci = 0;
    for (size_t k = 0; k < s->n_shards; k++) {
        next = shard_first;
        for (; ci < s->n_clips && s->clips[ci].shard == k; ci++) {
            const ns_catalog_clip *c = &s->clips[ci];
            if (c->first_frame != next)
                problem(r, 1, "catalog '%s': clip %zu starts at frame %llu, expected %llu", cat,
                        ci, (unsigned long long)c->first_frame, (unsigned long long)next);
            next += c->n_frames;
        }
        if (next - shard_first != s->shards[k].n_frames)
            problem(r, 1, "catalog '%s': clips of shard '%s' hold %llu frames, shard has %llu",
                    cat, s->shards[k].path, (unsigned long long)(next - shard_first),
                    (unsigned long long)s->shards[k].n_frames);
        shard_first += s->shards[k].n_frames;
    }
    if (ci != s->n_clips)
        problem(r, 1, "catalog '%s': clips are not grouped by shard in order (clip %zu)", cat, ci);
}

/* NS_ERR_CORRUPT unless dataset d has `rows` rows and rank 1 + n_trail with
 * trailing dims trail, from one read of its dataspace: readers index rows by
 * the store's frame size, so a reshaped view would be read out of bounds or
 * as the wrong pixels. */
static ns_status check_shape(hid_t d, const char *path, const char *name, uint64_t rows,
                             int n_trail, const hsize_t *trail)
{
    hsize_t dims[H5S_MAX_RANK];
    hid_t sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank >= 1 && rank <= H5S_MAX_RANK && H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        rank = -1;
    if (sp >= 0)
        H5Sclose(sp);
    if (rank < 1)
        return ns_h5_error(NS_ERR_FORMAT, "'%s': cannot read the shape of %s", path, name);
    if (dims[0] != rows)
        return ns_error(NS_ERR_CORRUPT, "'%s': /%s has %llu rows, expected %llu", path, name,
                        (unsigned long long)dims[0], (unsigned long long)rows);
    int ok = rank == 1 + n_trail;
    for (int i = 0; ok && i < n_trail; i++)
        ok = dims[1 + i] == trail[i];
    if (ok)
        return NS_OK;
    char want[64] = "rows";
    for (int i = 0; i < n_trail; i++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, ", %llu", (unsigned long long)trail[i]);
    }
    return ns_error(NS_ERR_CORRUPT, "'%s': /%s has the wrong shape (rank %d), expected (%s)", path,
                    name, rank, want);
}

/* Every dataset of the view has its rows and shape: one per frame, /clips one per clip
 * (users read the view with h5py; a damaged one is rebuilt by the next
 * writer once moved aside).  Issue 16, hostile files: a view missing
 * /frames or with a reshaped dataset passed verify. */
static void check_view_rows(hid_t f, const char *path, uint64_t n_frames, size_t n_clips,
                            int frame_size, ns_verify_report *r)
{
    const hsize_t S = frame_size > 0 ? (hsize_t)frame_size : 0;
    const struct {
        const char *name;
        H5T_class_t cls;
        int n_trail;
        hsize_t trail[3];
    } sets[] = {{"frames", H5T_INTEGER, 3, {S, S, 3}},
                {"frame/clip", H5T_INTEGER, 0, {0}},
                {"frame/index", H5T_INTEGER, 0, {0}},
                {"frame/timestamp", H5T_FLOAT, 0, {0}},
                {"frame/member", H5T_STRING, 0, {0}},
                {"frame/status", H5T_INTEGER, 0, {0}},
                {"frame/props", H5T_FLOAT, 1, {NS_PROP_COUNT}},
                {"clips", H5T_COMPOUND, 0, {0}}};
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        const char *name = sets[k].name;
        uint64_t want = sets[k].cls == H5T_COMPOUND ? n_clips : n_frames;
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = H5I_INVALID_HID;
        ns_status st = d < 0 ? ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /%s", path, name)
                             : check_shape(d, path, name, want, sets[k].n_trail, sets[k].trail);
        if (st == NS_OK && ((t = H5Dget_type(d)) < 0 || H5Tget_class(t) != sets[k].cls))
            st = ns_error(NS_ERR_CORRUPT, "'%s': /%s has the wrong type", path, name);
        if (t >= 0)
            H5Tclose(t);
        if (d >= 0)
            H5Dclose(d);
        if (st != NS_OK) {
            problem(r, 1, "view %s (move it aside; the next writer rebuilds it)", ns_errmsg());
            return;
        }
    }
}

static void check_view(ns_store *s, ns_verify_report *r)
{
    char path[PATH_MAX];
    uint64_t n = 0;
    hid_t f = H5I_INVALID_HID;
    struct stat sb;
    if (ns_store_path(s, "view.h5", path, sizeof path) != NS_OK)
        return;
    if (stat(path, &sb) != 0) {
        problem(r, 0, "view '%s' is missing (the next writer rebuilds it)", path);
        return;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        ns_h5_error(NS_ERR_IO, "cannot open");
        problem(r, 1, "view '%s': %s", path, ns_errmsg());
        return;
    }
    if (ns_h5_check_format(f, path, NS_STORE_FORMAT_VIEW) != NS_OK)
        problem(r, 1, "%s", ns_errmsg());
    else if (ns_h5_read_attr(f, path, "n_frames", H5T_NATIVE_UINT64, &n) != NS_OK)
        problem(r, 1, "%s", ns_errmsg());
    else if (n != s->shard_first[s->n_shards])
        problem(r, 0, "view '%s' is stale: %llu frames, catalog has %llu", path,
                (unsigned long long)n, (unsigned long long)s->shard_first[s->n_shards]);
    else
        check_view_rows(f, path, n, s->n_clips, s->frame_size, r);
    ns_h5_fclose(f);
    H5Eclear2(H5E_DEFAULT);
}

/* Notes files in rel not named by the catalog (orphan shards, temp files). */
static void check_debris(ns_store *s, const char *rel, int shards, ns_verify_report *r)
{
    char dir[PATH_MAX], sub[PATH_MAX];
    struct dirent *e;
    DIR *d;
    if (ns_store_path(s, rel, dir, sizeof dir) != NS_OK || !(d = opendir(dir)))
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
        if (e->d_type == DT_DIR) {
            if (shards && !strcmp(rel, "shards"))
                check_debris(s, sub, 1, r);
            continue;
        }
        int known = 0;
        for (size_t k = 0; shards && k < s->n_shards && !known; k++)
            known = !strcmp(s->shards[k].path, sub);
        if (!known)
            problem(r, 0, "%s '%s/%s' (removed by the next writer)",
                    shards ? "orphan shard" : "temp file", s->dir, sub);
    }
    closedir(d);
}

/* Notes the catalog's and view's temp files that a killed writer left in DIR. */
static void check_root_temps(ns_store *s, ns_verify_report *r)
{
    struct dirent *e;
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, "catalog.h5.tmp.", 15) || !strncmp(e->d_name, "view.h5.tmp.", 12))
            problem(r, 0, "temp file '%s/%s' (removed by the next writer)", s->dir, e->d_name);
    closedir(d);
}

ns_status ns_store_verify(ns_store *s, ns_verify_report *report)
{
    ns_h5_init();
    char cat[PATH_MAX];
    memset(report, 0, sizeof *report);
    ns_h5_init();
    ns_store_path(s, "catalog.h5", cat, sizeof cat);
    report->shard_bad = calloc(s->n_shards ? s->n_shards : 1, 1);
    if (!report->shard_bad)
        return ns_error(NS_ERR_NOMEM, "no memory to verify store '%s'", s->dir);
    size_t shard_errors = 0; /* errors of damaged shards; the rest are the catalog's */
    for (size_t k = 0; k < s->n_shards; k++) {
        size_t before = report->n_errors;
        if ((report->shard_bad[k] = (unsigned char)check_shard(s, k, report)) != 0) {
            report->n_bad_shards++;
            shard_errors += report->n_errors - before;
        }
    }
    check_first_frames(s, cat, report);
    check_view(s, report);
    check_debris(s, "shards", 1, report);
    check_debris(s, "tmp", 0, report);
    check_root_temps(s, report);
    if (report->n_errors > shard_errors)
        problem(report, 0, "the catalog '%s' disagrees with the shards: 'nightshift verify "
                "--repair' rebuilds it and the view from the shards whose checksums match", cat);
    ns_error_clear();
    return NS_OK;
}

void ns_verify_report_release(ns_verify_report *r)
{
    if (!r)
        return;
    ns_warnings_release(&r->problems);
    free(r->shard_bad);
    memset(r, 0, sizeof *r);
}
