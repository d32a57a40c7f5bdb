/* view.c -- DIR/view.h5: one file that shows every shard as one table.
 *
 * The frame columns are virtual datasets mapping each shard in catalog order;
 * source file names are relative ("shards/<night>/<id>.h5"), which HDF5
 * resolves against the view file's own directory, so a moved or copied store
 * keeps working.  /frame/clip and /clips are real (small) datasets.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

typedef struct view_clip {
    ns_catalog_clip cat;
    ns_clip_record rec;
} view_clip;

typedef struct vcol {
    const char *name;
    hid_t type;
    int tail_rank;
    hsize_t tail[3];
} vcol;

/* Creates one concatenating virtual dataset (or an empty ordinary one when
 * there is nothing to map: HDF5 wants at least one mapping for a VDS). */
static ns_status make_vds(hid_t f, const ns_store *s, const char *path, const vcol *c)
{
    ns_status st = NS_OK;
    const int rank = 1 + c->tail_rank;
    hsize_t dims[4] = {s->shard_first[s->n_shards]}, start[4] = {0}, count[4];
    hid_t vsp = H5I_INVALID_HID, src = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hid_t d = H5I_INVALID_HID;
    char srcname[64];
    int nmap = 0;
    snprintf(srcname, sizeof srcname, "/%s", c->name);
    memcpy(dims + 1, c->tail, (size_t)c->tail_rank * sizeof *dims);
    memcpy(count + 1, c->tail, (size_t)c->tail_rank * sizeof *dims);
    if ((vsp = H5Screate_simple(rank, dims, NULL)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0)
        goto h5fail;
    for (size_t k = 0; k < s->n_shards; k++) {
        if (s->shards[k].n_frames == 0)
            continue;
        start[0] = s->shard_first[k];
        count[0] = s->shards[k].n_frames;
        if ((src = H5Screate_simple(rank, count, NULL)) < 0 ||
            H5Sselect_hyperslab(vsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Pset_virtual(dcpl, vsp, s->shards[k].path, srcname, src) < 0)
            goto h5fail;
        H5Sclose(src);
        src = H5I_INVALID_HID;
        nmap++;
    }
    if (H5Sselect_all(vsp) < 0)
        goto h5fail;
    d = H5Dcreate2(f, c->name, c->type, vsp, H5P_DEFAULT, nmap ? dcpl : H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (c->tail_rank == 1 && ns_h5_write_prop_names(d) < 0))
        goto h5fail;
    goto done;
h5fail:
    st = ns_h5_error(NS_ERR_IO, "'%s': cannot create virtual dataset /%s", path, c->name);
done:
    if (d >= 0) H5Dclose(d);
    if (src >= 0) H5Sclose(src);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (vsp >= 0) H5Sclose(vsp);
    return st;
}

/* /frame/clip: the global clip row of every frame, written in blocks. */
static ns_status write_frame_clip(hid_t f, const ns_store *s, const char *path)
{
    ns_status st = NS_OK;
    const uint64_t total = s->shard_first[s->n_shards];
    const size_t block = 1u << 18;
    hsize_t dims[1] = {total};
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    uint32_t *buf = NULL;
    size_t fill = 0, ci = 0, ci_left = 0;
    uint64_t row = 0;
    if ((sp = H5Screate_simple(1, dims, NULL)) < 0 ||
        (d = H5Dcreate2(f, "frame/clip", H5T_NATIVE_UINT32, sp, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot create /frame/clip", path);
        goto done;
    }
    if (total == 0)
        goto done;
    buf = malloc((total < block ? total : block) * sizeof *buf);
    if (!buf) {
        st = ns_error(NS_ERR_NOMEM, "no memory for the view's /frame/clip");
        goto done;
    }
    /* Catalog clips are in view order, so a single pass fills the column. */
    while (row < total) {
        while (ci_left == 0 && ci < s->n_clips)
            ci_left = s->clips[ci++].n_frames;
        if (ci_left == 0) {
            st = ns_error(NS_ERR_CORRUPT, "store '%s': catalog clips cover fewer frames than "
                          "its shards", s->dir);
            goto done;
        }
        buf[fill++] = (uint32_t)(ci - 1);
        ci_left--;
        if (fill == block || row + 1 == total) {
            hsize_t start[1] = {row + 1 - fill}, count[1] = {fill};
            if ((msp = H5Screate_simple(1, count, NULL)) < 0 ||
                H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dwrite(d, H5T_NATIVE_UINT32, msp, sp, H5P_DEFAULT, buf) < 0) {
                st = ns_h5_error(NS_ERR_IO, "'%s': cannot write /frame/clip", path);
                goto done;
            }
            H5Sclose(msp);
            msp = H5I_INVALID_HID;
            fill = 0;
        }
        row++;
    }
done:
    free(buf);
    if (msp >= 0) H5Sclose(msp);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

/* Inserts every member of compound src into t at offset base. */
static herr_t copy_members(hid_t t, hid_t src, size_t base)
{
    int n = H5Tget_nmembers(src);
    herr_t r = n < 0 ? -1 : 0;
    for (int i = 0; i < n && r >= 0; i++) {
        char *name = H5Tget_member_name(src, (unsigned)i);
        hid_t mt = H5Tget_member_type(src, (unsigned)i);
        r = (name && mt >= 0)
                ? H5Tinsert(t, name, base + H5Tget_member_offset(src, (unsigned)i), mt)
                : -1;
        if (mt >= 0)
            H5Tclose(mt);
        H5free_memory(name);
    }
    return r;
}

/* /clips: catalog rows joined with each clip's record from its shard. */
static ns_status write_clips(hid_t f, ns_store *s, const char *path)
{
    ns_status st = NS_OK;
    hsize_t dims[1] = {s->n_clips};
    hid_t cat = H5I_INVALID_HID, vt = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    hid_t rt = H5I_INVALID_HID, sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hid_t msp = H5I_INVALID_HID;
    view_clip *buf = NULL;
    size_t most = 1, ci = 0;
    for (size_t k = 0; k < s->n_shards; k++)
        if (s->shards[k].n_clips > most)
            most = s->shards[k].n_clips;
    if ((cat = ns_h5_catalog_clip_type()) < 0 ||
        (vt = H5Tcreate(H5T_COMPOUND, sizeof(view_clip))) < 0 || copy_members(vt, cat, 0) < 0 ||
        ns_h5_insert_record_fields(vt, offsetof(view_clip, rec), 1) < 0 ||
        (rt = H5Tcreate(H5T_COMPOUND, sizeof(view_clip))) < 0 ||
        ns_h5_insert_record_fields(rt, offsetof(view_clip, rec), 0) < 0 ||
        (ft = H5Tcopy(vt)) < 0 || H5Tpack(ft) < 0 ||
        (sp = H5Screate_simple(1, dims, NULL)) < 0 ||
        (d = H5Dcreate2(f, "clips", ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot create /clips", path);
        goto done;
    }
    buf = calloc(most, sizeof *buf);
    if (!buf) {
        st = ns_error(NS_ERR_NOMEM, "no memory for %zu clip records", most);
        goto done;
    }
    for (size_t k = 0; k < s->n_shards; k++) {
        ns_shard_handle *h = NULL;
        size_t n = s->shards[k].n_clips;
        if (n == 0)
            continue;
        if ((st = ns_store_shard_open(s, k, &h)) != NS_OK)
            goto done;
        if (H5Dread(h->clips, rt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            st = ns_h5_error(NS_ERR_CORRUPT, "cannot read /clips of shard '%s/%s'", s->dir,
                             s->shards[k].path);
            goto done;
        }
        for (size_t j = 0; j < n; j++, ci++) {
            if (ci >= s->n_clips || s->clips[ci].shard != k || s->clips[ci].row != j) {
                st = ns_error(NS_ERR_CORRUPT, "store '%s': catalog clip %zu out of order", s->dir,
                              ci);
                goto done;
            }
            buf[j].cat = s->clips[ci];
        }
        hsize_t start[1] = {ci - n}, count[1] = {n};
        if ((msp = H5Screate_simple(1, count, NULL)) < 0 ||
            H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(d, vt, msp, sp, H5P_DEFAULT, buf) < 0) {
            st = ns_h5_error(NS_ERR_IO, "'%s': cannot write /clips", path);
            goto done;
        }
        H5Sclose(msp);
        msp = H5I_INVALID_HID;
    }
done:
    free(buf);
    if (msp >= 0) H5Sclose(msp);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (rt >= 0) H5Tclose(rt);
    if (vt >= 0) H5Tclose(vt);
    if (cat >= 0) H5Tclose(cat);
    return st;
}

static ns_status write_links(hid_t f, const ns_store *s, const char *path)
{
    ns_status st = NS_OK;
    char name[32];
    hid_t g = H5Gcreate2(f, "shards", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return ns_h5_error(NS_ERR_IO, "'%s': cannot create /shards", path);
    for (size_t k = 0; k < s->n_shards; k++) {
        snprintf(name, sizeof name, "%06u", (unsigned)s->shards[k].id);
        if (H5Lcreate_external(s->shards[k].path, "/", g, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
            st = ns_h5_error(NS_ERR_IO, "'%s': cannot link /shards/%s", path, name);
            break;
        }
    }
    H5Gclose(g);
    return st;
}

ns_status ns_view_write(ns_store *s)
{
    ns_h5_init();
    char path[PATH_MAX], tmp[PATH_MAX];
    ns_status st;
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    int32_t fs = s->frame_size, ver = NS_STORE_FORMAT_VERSION;
    uint64_t counts[3] = {s->shard_first[s->n_shards], s->n_shards, s->n_clips};
    const hsize_t S = (hsize_t)s->frame_size;
    tmp[0] = '\0';
    if ((st = ns_store_path(s, "view.h5", path, sizeof path)) != NS_OK ||
        (st = ns_tmp_name(path, tmp, sizeof tmp)) != NS_OK)
        goto done;
    if ((mt = ns_h5_str_type(NS_MEMBER_LEN)) < 0 ||
        (f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (g = H5Gcreate2(f, "frame", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create view '%s'", tmp);
        goto done;
    }
    if (ns_h5_attr_str(f, "ns_format", NS_STORE_FORMAT_VIEW) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_num(f, "frame_size", H5T_NATIVE_INT32, &fs) < 0 ||
        ns_h5_attr_num(f, "n_frames", H5T_NATIVE_UINT64, &counts[0]) < 0 ||
        ns_h5_attr_num(f, "n_shards", H5T_NATIVE_UINT64, &counts[1]) < 0 ||
        ns_h5_attr_num(f, "n_clips", H5T_NATIVE_UINT64, &counts[2]) < 0) {
        st = ns_h5_error(NS_ERR_IO, "'%s': cannot write root attributes", tmp);
        goto done;
    }
    const vcol cols[] = {
        {"frames", H5T_NATIVE_UINT8, 3, {S, S, 3}},
        {"frame/index", H5T_NATIVE_UINT32, 0, {0}},
        {"frame/timestamp", H5T_NATIVE_DOUBLE, 0, {0}},
        {"frame/member", mt, 0, {0}},
        {"frame/status", H5T_NATIVE_UINT8, 0, {0}},
        {"frame/props", H5T_NATIVE_FLOAT, 1, {NS_PROP_COUNT}},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if ((st = make_vds(f, s, tmp, &cols[i])) != NS_OK)
            goto done;
    if ((st = write_frame_clip(f, s, tmp)) != NS_OK || (st = write_clips(f, s, tmp)) != NS_OK ||
        (st = write_links(f, s, tmp)) != NS_OK)
        goto done;
    H5Gclose(g);
    g = H5I_INVALID_HID;
    herr_t r = ns_h5_fclose(f);
    f = H5I_INVALID_HID;
    if (r < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot close view '%s'", tmp);
        goto done;
    }
    if ((st = ns_fsync_path(tmp)) == NS_OK)
        st = ns_atomic_rename(tmp, path);
done:
    if (g >= 0) H5Gclose(g);
    if (f >= 0) ns_h5_fclose(f);
    if (mt >= 0) H5Tclose(mt);
    if (st != NS_OK && tmp[0])
        unlink(tmp);
    return st;
}

int ns_view_is_current(ns_store *s)
{
    char path[PATH_MAX];
    uint64_t n[3] = {0};
    int ok = 0;
    hid_t f = H5I_INVALID_HID;
    if (ns_store_path(s, "view.h5", path, sizeof path) != NS_OK || access(path, F_OK) != 0)
        return 0;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    ok = ns_h5_check_format(f, path, NS_STORE_FORMAT_VIEW) == NS_OK &&
         ns_h5_read_attr(f, path, "n_frames", H5T_NATIVE_UINT64, &n[0]) == NS_OK &&
         ns_h5_read_attr(f, path, "n_shards", H5T_NATIVE_UINT64, &n[1]) == NS_OK &&
         ns_h5_read_attr(f, path, "n_clips", H5T_NATIVE_UINT64, &n[2]) == NS_OK &&
         n[0] == s->shard_first[s->n_shards] && n[1] == s->n_shards && n[2] == s->n_clips;
    ns_h5_fclose(f);
    ns_error_clear();
    return ok;
}
