/* detread.c -- the per-frame part of a detect.h5 read back (detfile.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nightshift/detfile.h"
#include "store_internal.h"

#define MAX_ROWS ((uint64_t)1 << 32)

void ns_det_frames_release(ns_det_frames *f)
{
    if (!f)
        return;
    free(f->clip);
    free(f->index);
    free(f->condition);
    free(f->novel);
    free(f->score);
    free(f->clips);
    free(f->cond_novel);
    free(f->cond_frames);
    memset(f, 0, sizeof *f);
}

/* Only the sha256 field of /clips: HDF5 converts compound members by name. */
static hid_t sha_type(void)
{
    typedef struct { char sha256[NS_SHA256_HEX]; } row;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(row));
    if (t < 0)
        return H5I_INVALID_HID;
    return ns_h5_type_done(t, NS_H5_INS_STR(t, 0, row, sha256));
}

/* Only id, novel and n_frames of /conditions. */
typedef struct cond_row {
    int32_t id, novel;
    uint64_t n_frames;
} cond_row;

static hid_t cond_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(cond_row));
    if (t < 0)
        return H5I_INVALID_HID;
    herr_t e = H5Tinsert(t, "id", HOFFSET(cond_row, id), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "novel", HOFFSET(cond_row, novel), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "n_frames", HOFFSET(cond_row, n_frames), H5T_NATIVE_UINT64);
    return ns_h5_type_done(t, e);
}

/* The conditions table, indexed by id (ids are ranks 0..n-1). */
static ns_status read_conditions(hid_t f, const char *path, ns_det_frames *r)
{
    ns_status st = NS_OK;
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID;
    uint64_t n = 0;
    cond_row *rows = NULL;
    if ((d = H5Dopen2(f, "conditions", H5P_DEFAULT)) < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /conditions", path);
    if ((st = ns_h5_rows(d, path, "/conditions", &n)) != NS_OK)
        goto done;
    if (n >= MAX_ROWS) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': %llu conditions", path, (unsigned long long)n);
        goto done;
    }
    rows = calloc(n ? (size_t)n : 1, sizeof *rows);
    r->cond_novel = calloc(n ? (size_t)n : 1, 1);
    r->cond_frames = calloc(n ? (size_t)n : 1, sizeof *r->cond_frames);
    if (!rows || !r->cond_novel || !r->cond_frames) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %llu conditions", path,
                      (unsigned long long)n);
        goto done;
    }
    if ((t = cond_type()) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the detect condition type");
        goto done;
    }
    if ((st = ns_h5_get(f, path, "conditions", t, 1, n, 0, rows)) != NS_OK)
        goto done;
    r->n_conditions = (size_t)n;
    for (size_t k = 0; k < (size_t)n; k++) {
        if (rows[k].id < 0 || (uint64_t)rows[k].id >= n) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': condition row %zu has id %d of %llu", path, k,
                          (int)rows[k].id, (unsigned long long)n);
            goto done;
        }
        r->cond_novel[rows[k].id] = rows[k].novel != 0;
        r->cond_frames[rows[k].id] = rows[k].n_frames;
    }
done:
    free(rows);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return st;
}

ns_status ns_detfile_frames(const char *path_in, ns_det_frames *out)
{
    ns_h5_init();
    ns_status st;
    ns_det_frames r;
    char path[PATH_MAX];
    struct stat sb;
    hid_t f = H5I_INVALID_HID, t = H5I_INVALID_HID, d = H5I_INVALID_HID;
    uint64_t n = 0, nc = 0;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    if (stat(path_in, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (snprintf(path, sizeof path, "%s/detect.h5", path_in) >= (int)sizeof path)
            return ns_error(NS_ERR_USAGE, "detect path too long: '%.80s'", path_in);
    } else {
        snprintf(path, sizeof path, "%s", path_in);
    }
    if ((st = ns_h5_open_read(path, "detect result", &f)) != NS_OK ||
        (st = ns_h5_check_format_in(f, path, NS_DETECT_FORMAT, 1, NS_DETECT_FORMAT_VERSION,
                                    NULL)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "night", r.night, sizeof r.night)) != NS_OK ||
        (st = ns_h5_read_str_fit(f, path, "model_id", r.model_id, sizeof r.model_id)) != NS_OK)
        goto done;
    if ((d = H5Dopen2(f, "frames/condition", H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /frames/condition", path);
        goto done;
    }
    if ((st = ns_h5_rows(d, path, "/frames/condition", &n)) != NS_OK)
        goto done;
    H5Dclose(d);
    if ((d = H5Dopen2(f, "clips", H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /clips", path);
        goto done;
    }
    if ((st = ns_h5_rows(d, path, "/clips", &nc)) != NS_OK)
        goto done;
    if (n >= MAX_ROWS || nc >= MAX_ROWS) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': %llu frames, %llu clips", path,
                      (unsigned long long)n, (unsigned long long)nc);
        goto done;
    }
    r.n = (size_t)n;
    r.n_clips = (size_t)nc;
    size_t cap = n ? (size_t)n : 1;
    r.clip = malloc(cap * sizeof *r.clip);
    r.index = malloc(cap * sizeof *r.index);
    r.condition = malloc(cap * sizeof *r.condition);
    r.novel = malloc(cap * sizeof *r.novel);
    r.score = malloc(cap * sizeof *r.score);
    r.clips = calloc(nc ? (size_t)nc : 1, sizeof *r.clips);
    if (!r.clip || !r.index || !r.condition || !r.novel || !r.score || !r.clips) {
        st = ns_error(NS_ERR_NOMEM, "'%s': out of memory for %llu frames", path,
                      (unsigned long long)n);
        goto done;
    }
    if ((t = sha_type()) < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build the detect clip type");
        goto done;
    }
    if ((st = ns_h5_get(f, path, "frames/clip", H5T_NATIVE_UINT32, 1, n, 0, r.clip)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/index", H5T_NATIVE_UINT32, 1, n, 0, r.index)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/condition", H5T_NATIVE_INT32, 1, n, 0, r.condition)) !=
            NS_OK ||
        (st = ns_h5_get(f, path, "frames/novel", H5T_NATIVE_UINT8, 1, n, 0, r.novel)) != NS_OK ||
        (st = ns_h5_get(f, path, "frames/score", H5T_NATIVE_FLOAT, 1, n, 0, r.score)) != NS_OK ||
        (st = ns_h5_get(f, path, "clips", t, 1, nc, 0, r.clips)) != NS_OK ||
        (st = read_conditions(f, path, &r)) != NS_OK)
        goto done;
    for (size_t c = 0; c < r.n_clips; c++)
        r.clips[c][NS_SHA256_HEX - 1] = '\0';
    for (size_t i = 0; i < r.n; i++)
        if (r.clip[i] >= r.n_clips || r.condition[i] < -1 ||
            (r.condition[i] >= 0 && (size_t)r.condition[i] >= r.n_conditions)) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': frame %zu names clip %u of %zu, condition %d",
                          path, i, r.clip[i], r.n_clips, (int)r.condition[i]);
            goto done;
        }
    snprintf(r.path, sizeof r.path, "%s", path);
    *out = r;
    memset(&r, 0, sizeof r);
done:
    if (d >= 0) H5Dclose(d);
    if (t >= 0) H5Tclose(t);
    if (f >= 0) ns_h5_fclose(f);
    ns_det_frames_release(&r);
    return st;
}
