/* catalog.c -- STORE/catalog.h5: the shard and clip tables, written
 * atomically and read back with every size checked before allocating. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

static ns_status write_table(hid_t f, const char *path, const char *name, hid_t mtype,
                             const void *rows, size_t n)
{
    ns_status st = NS_OK;
    hsize_t dims[1] = {n};
    hid_t ft = H5I_INVALID_HID, sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    ft = H5Tcopy(mtype);
    if (ft < 0 || H5Tpack(ft) < 0 || (sp = H5Screate_simple(1, dims, NULL)) < 0 ||
        (d = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0))
        st = ns_h5_error(NS_ERR_IO, "cannot write /%s of '%s'", name, path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    return st;
}

static ns_status read_table(hid_t f, const char *path, const char *name, hid_t mtype,
                            size_t elem, void **rows, size_t *n, size_t *cap)
{
    ns_status st = NS_OK;
    uint64_t count = 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return ns_h5_error(NS_ERR_FORMAT, "'%s': cannot open /%s", path, name);
    st = ns_h5_rows(d, path, name, &count);
    if (st != NS_OK)
        goto done;
    /* a hostile extent or element size is refused before any allocation */
    if ((st = ns_h5_check_stored(d, mtype, path, name, count)) != NS_OK)
        goto done;
    *rows = calloc(count ? count : 1, elem);
    if (!*rows) {
        st = ns_error(NS_ERR_NOMEM, "'%s': no memory for %llu rows of /%s", path,
                      (unsigned long long)count, name);
        goto done;
    }
    *n = count;
    *cap = count ? count : 1;
    if (count > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0)
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read /%s", path, name);
done:
    H5Dclose(d);
    return st;
}

ns_status ns_catalog_save(ns_store *s, int *renamed)
{
    ns_h5_init();
    char path[PATH_MAX], tmp[PATH_MAX];
    ns_status st;
    int32_t fs = s->frame_size, ver = NS_CATALOG_FORMAT_VERSION;
    hid_t f = H5I_INVALID_HID, tsh = H5I_INVALID_HID, tcl = H5I_INVALID_HID;
    tmp[0] = '\0';
    if ((st = ns_store_path(s, "catalog.h5", path, sizeof path)) != NS_OK ||
        (st = ns_tmp_name(path, tmp, sizeof tmp)) != NS_OK)
        goto done;
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create catalog '%s'", tmp);
        goto done;
    }
    if (ns_h5_attr_str(f, "ns_format", NS_STORE_FORMAT_CATALOG) < 0 ||
        ns_h5_attr_num(f, "ns_format_version", H5T_NATIVE_INT32, &ver) < 0 ||
        ns_h5_attr_num(f, "frame_size", H5T_NATIVE_INT32, &fs) < 0 ||
        ns_h5_attr_num(f, "created", H5T_NATIVE_DOUBLE, &s->created) < 0 ||
        ns_h5_attr_num(f, "next_shard_id", H5T_NATIVE_UINT32, &s->next_shard_id) < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot write attributes of '%s'", tmp);
        goto done;
    }
    tsh = ns_h5_shard_entry_type(NS_CATALOG_FORMAT_VERSION);
    tcl = ns_h5_catalog_clip_type();
    if (tsh < 0 || tcl < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build catalog types");
        goto done;
    }
    if ((st = write_table(f, tmp, "shards", tsh, s->shards, s->n_shards)) != NS_OK ||
        (st = write_table(f, tmp, "clips", tcl, s->clips, s->n_clips)) != NS_OK)
        goto done;
    herr_t r = ns_h5_fclose(f);
    f = H5I_INVALID_HID;
    if (r < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot close catalog '%s'", tmp);
        goto done;
    }
    if ((st = ns_fsync_path(tmp)) != NS_OK)
        goto done;
    /* The rename is the commit point: once it is done, a failure to sync
     * the directory must not be taken for "not committed" (the caller would
     * unlink a shard the catalog on disk now names). */
    if (rename(tmp, path) != 0) {
        st = ns_error(NS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto done;
    }
    if (renamed)
        *renamed = 1;
    tmp[0] = '\0';
    if ((st = ns_fsync_parent(path)) != NS_OK)
        st = ns_error_wrap(st, "catalog '%s' committed, but not synced", path);
done:
    if (tcl >= 0) H5Tclose(tcl);
    if (tsh >= 0) H5Tclose(tsh);
    if (f >= 0) ns_h5_fclose(f);
    if (st != NS_OK && tmp[0])
        unlink(tmp);
    return st;
}

/* A shard path from the catalog is opened, so it must stay inside DIR. */
static int safe_rel_path(const char *p)
{
    return p[0] && p[0] != '/' && strncmp(p, "shards/", 7) == 0 && !strstr(p, "..");
}

ns_status ns_catalog_load(ns_store *s)
{
    char path[PATH_MAX];
    ns_status st;
    hid_t f = H5I_INVALID_HID, tsh = H5I_INVALID_HID, tcl = H5I_INVALID_HID;
    int32_t fs = 0;
    int version = 0;
    if ((st = ns_store_path(s, "catalog.h5", path, sizeof path)) != NS_OK)
        return st;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        st = ns_h5_error(NS_ERR_FORMAT, "cannot open catalog '%s'", path);
        goto done;
    }
    if ((st = ns_h5_check_format_in(f, path, NS_STORE_FORMAT_CATALOG, 1,
                                    NS_CATALOG_FORMAT_VERSION, &version)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "frame_size", H5T_NATIVE_INT32, &fs)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "created", H5T_NATIVE_DOUBLE, &s->created)) != NS_OK ||
        (st = ns_h5_read_attr(f, path, "next_shard_id", H5T_NATIVE_UINT32,
                              &s->next_shard_id)) != NS_OK)
        goto done;
    if (fs < 1 || fs > 4096) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': frame_size %d out of range", path, (int)fs);
        goto done;
    }
    s->frame_size = fs;
    tsh = ns_h5_shard_entry_type(version);
    tcl = ns_h5_catalog_clip_type();
    if (tsh < 0 || tcl < 0) {
        st = ns_h5_error(NS_ERR_INTERNAL, "cannot build catalog types");
        goto done;
    }
    if ((st = read_table(f, path, "shards", tsh, sizeof(ns_shard_entry), (void **)&s->shards,
                         &s->n_shards, &s->cap_shards)) != NS_OK ||
        (st = read_table(f, path, "clips", tcl, sizeof(ns_catalog_clip), (void **)&s->clips,
                         &s->n_clips, &s->cap_clips)) != NS_OK)
        goto done;
    for (size_t i = 0; i < s->n_shards; i++) {
        ns_shard_entry *e = &s->shards[i];
        e->night[NS_NIGHT_LEN - 1] = e->path[sizeof e->path - 1] = '\0';
        e->checksum[NS_CHECKSUM_LEN - 1] = '\0';
        if (version == 1) {
            char hex[NS_SHA256_HEX];
            memcpy(hex, e->checksum, sizeof hex);
            hex[NS_SHA256_HEX - 1] = '\0';
            ns_checksum_join(NS_CHECKSUM_SHA256_TREE, hex, e->checksum);
        }
        if (!safe_rel_path(e->path)) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': shard %zu has a bad path '%s'", path, i, e->path);
            goto done;
        }
    }
    for (size_t i = 0; i < s->n_clips; i++) {
        ns_catalog_clip *c = &s->clips[i];
        c->sha256[NS_SHA256_HEX - 1] = c->night[NS_NIGHT_LEN - 1] = '\0';
        c->camera[NS_CAMERA_LEN - 1] = '\0';
        if (c->shard >= s->n_shards) {
            st = ns_error(NS_ERR_CORRUPT, "'%s': clip %zu names shard %u of %zu", path, i,
                          c->shard, s->n_shards);
            goto done;
        }
    }
    st = ns_store_index_rebuild(s);
done:
    if (tcl >= 0) H5Tclose(tcl);
    if (tsh >= 0) H5Tclose(tsh);
    if (f >= 0) ns_h5_fclose(f);
    return st;
}
