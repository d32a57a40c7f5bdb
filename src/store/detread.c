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

ns_status ns_detfile_frames(const char *path_in, ns_det_frames *out)
{
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
        (st = ns_h5_get(f, path, "clips", t, 1, nc, 0, r.clips)) != NS_OK)
        goto done;
    for (size_t c = 0; c < r.n_clips; c++)
        r.clips[c][NS_SHA256_HEX - 1] = '\0';
    for (size_t i = 0; i < r.n; i++)
        if (r.clip[i] >= r.n_clips || r.condition[i] < -1) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': frame %zu names clip %u of %zu, condition %d",
                          path, i, r.clip[i], r.n_clips, (int)r.condition[i]);
            goto done;
        }
    *out = r;
    memset(&r, 0, sizeof r);
done:
    if (d >= 0) H5Dclose(d);
    if (t >= 0) H5Tclose(t);
    if (f >= 0) H5Fclose(f);
    ns_det_frames_release(&r);
    return st;
}
