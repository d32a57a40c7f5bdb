/* h5util.c -- HDF5 types, attributes and error translation for the store. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "store_internal.h"

/* HDF5 1.10 frees a file's structures even when H5Fclose fails (a flush that
 * met ENOSPC or EIO) but keeps its id, and the library's exit handler closes
 * that id again: a use after free, SIGSEGV at exit (CVE-2020-10812).  So the
 * library's own handler is never registered (H5dont_atexit runs before any
 * HDF5 call); ours shuts HDF5 down at exit only while no close has failed.
 * After a failed close the process ends without it: the OS frees the rest. */
static volatile int h5_close_failed;

static void h5_term(void)
{
    if (!h5_close_failed)
        H5close();
}

__attribute__((constructor)) static void h5_setup(void)
{
    H5dont_atexit();
    atexit(h5_term);
}

herr_t ns_h5_fclose(hid_t f)
{
    herr_t r = H5Fclose(f);
    if (r < 0)
        h5_close_failed = 1;
    return r;
}

void ns_h5_init(void)
{
    /* The threadsafe build keeps the default error stack per thread, so the
     * auto-print switch must be flipped on each thread that touches HDF5. */
    static _Thread_local int done;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

typedef struct walk_ctx {
    char msg[512];
} walk_ctx;

/* HDF5's messages are for its developers: the sec2 driver's write error runs
 * to a ctime() with its newline, fds and buffer addresses.  Keep the first
 * clause and the system's error text, on one line. */
static void tidy_desc(char *dst, size_t cap, const char *desc, const char *func)
{
    const char *em = strstr(desc, "error message = '");
    size_t n = strcspn(desc, "\n");
    const char *cut = strstr(desc, ", ");
    const char *time = strstr(desc, ": time = ");
    if (time && (size_t)(time - desc) < n)
        n = (size_t)(time - desc);
    if (cut && (size_t)(cut - desc) < n)
        n = (size_t)(cut - desc);
    if (em) {
        const char *e0 = em + strlen("error message = '");
        size_t en = strcspn(e0, "'\n");
        snprintf(dst, cap, "%.*s: %.*s (in %s)", (int)n, desc, (int)en, e0, func);
    } else {
        snprintf(dst, cap, "%.*s (in %s)", (int)n, desc, func);
    }
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    walk_ctx *ctx = data;
    (void)n;
    /* Walked upward the first entry is the innermost: the most specific. */
    if (ctx->msg[0] == '\0' && e->desc && e->desc[0])
        tidy_desc(ctx->msg, sizeof ctx->msg, e->desc, e->func_name ? e->func_name : "?");
    return 0;
}

ns_status ns_h5_error(ns_status code, const char *fmt, ...)
{
    char head[1024];
    walk_ctx ctx = {{0}};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &ctx);
    H5Eclear2(H5E_DEFAULT);
    if (ctx.msg[0])
        return ns_error(code, "%s: %s", head, ctx.msg);
    return ns_error(code, "%s", head);
}

hid_t ns_h5_str_type(size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return H5I_INVALID_HID;
    if (H5Tset_size(t, len) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

herr_t ns_h5_insert_str(hid_t t, const char *name, size_t off, size_t len)
{
    hid_t s = ns_h5_str_type(len);
    herr_t r;
    if (s < 0)
        return -1;
    r = H5Tinsert(t, name, off, s);
    H5Tclose(s);
    return r;
}

hid_t ns_h5_type_done(hid_t t, herr_t r)
{
    if (r < 0 && t >= 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

#define INS NS_H5_INS
#define INS_STR NS_H5_INS_STR

herr_t ns_h5_insert_record_fields(hid_t t, size_t base, int skip_joined)
{
    herr_t r = 0;
    if (!skip_joined)
        r |= INS_STR(t, base, ns_clip_record, sha256);
    r |= INS_STR(t, base, ns_clip_record, source);
    r |= INS_STR(t, base, ns_clip_record, container);
    if (!skip_joined) {
        r |= INS_STR(t, base, ns_clip_record, camera);
        r |= INS_STR(t, base, ns_clip_record, night);
    }
    r |= INS(t, base, ns_clip_record, start_time, H5T_NATIVE_DOUBLE);
    r |= INS(t, base, ns_clip_record, fps, H5T_NATIVE_DOUBLE);
    r |= INS(t, base, ns_clip_record, orig_width, H5T_NATIVE_INT32);
    r |= INS(t, base, ns_clip_record, orig_height, H5T_NATIVE_INT32);
    r |= INS(t, base, ns_clip_record, frames_seen, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, frames_stored, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, frames_damaged, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, frames_failed, H5T_NATIVE_UINT32);
    if (!skip_joined)
        r |= INS(t, base, ns_clip_record, qc_flags, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, qc_frozen_frames, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, qc_black_frames, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, qc_white_frames, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, qc_res_changes, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, qc_gaps, H5T_NATIVE_UINT32);
    r |= INS(t, base, ns_clip_record, ingest_time, H5T_NATIVE_DOUBLE);
    return r < 0 ? -1 : 0;
}

hid_t ns_h5_clip_record_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_clip_record));
    return t < 0 ? t : ns_h5_type_done(t, ns_h5_insert_record_fields(t, 0, 0));
}

hid_t ns_h5_shard_entry_type(int catalog_version)
{
    herr_t r = 0;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_shard_entry));
    if (t < 0)
        return H5I_INVALID_HID;
    r |= INS(t, 0, ns_shard_entry, id, H5T_NATIVE_UINT32);
    r |= INS_STR(t, 0, ns_shard_entry, night);
    r |= INS_STR(t, 0, ns_shard_entry, path);
    r |= INS(t, 0, ns_shard_entry, n_clips, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_shard_entry, n_frames, H5T_NATIVE_UINT64);
    r |= INS(t, 0, ns_shard_entry, file_bytes, H5T_NATIVE_UINT64);
    if (catalog_version >= 2)
        r |= INS_STR(t, 0, ns_shard_entry, checksum);
    else /* the v1 field, read into checksum's place; the caller adds the prefix */
        r |= ns_h5_insert_str(t, "sha256", offsetof(ns_shard_entry, checksum), NS_SHA256_HEX);
    r |= INS(t, 0, ns_shard_entry, committed, H5T_NATIVE_DOUBLE);
    return ns_h5_type_done(t, r);
}

hid_t ns_h5_catalog_clip_type(void)
{
    herr_t r = 0;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ns_catalog_clip));
    if (t < 0)
        return H5I_INVALID_HID;
    r |= INS_STR(t, 0, ns_catalog_clip, sha256);
    r |= INS(t, 0, ns_catalog_clip, shard, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_catalog_clip, row, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_catalog_clip, first_frame, H5T_NATIVE_UINT64);
    r |= INS_STR(t, 0, ns_catalog_clip, night);
    r |= INS_STR(t, 0, ns_catalog_clip, camera);
    r |= INS(t, 0, ns_catalog_clip, n_frames, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_catalog_clip, n_damaged, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_catalog_clip, n_failed, H5T_NATIVE_UINT32);
    r |= INS(t, 0, ns_catalog_clip, qc_flags, H5T_NATIVE_UINT32);
    return ns_h5_type_done(t, r);
}

herr_t ns_h5_attr_str(hid_t obj, const char *name, const char *value)
{
    herr_t r = -1;
    hid_t t = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    size_t len = strlen(value);
    t = H5Tcopy(H5T_C_S1);
    /* NULLTERM counts the NUL in the size: len + 1 keeps every character. */
    if (t < 0 || H5Tset_size(t, len + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)
        goto done;
    sp = H5Screate(H5S_SCALAR);
    if (sp < 0)
        goto done;
    a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, value) < 0)
        goto done;
    r = 0;
done:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return r;
}

herr_t ns_h5_attr_num(hid_t obj, const char *name, hid_t type, const void *value)
{
    herr_t r = -1;
    hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    if (sp < 0)
        goto done;
    a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, value) < 0)
        goto done;
    r = 0;
done:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return r;
}

ns_status ns_h5_read_attr_n(hid_t obj, const char *path, const char *name, hid_t mtype,
                            void *out, long n)
{
    ns_status st = NS_OK;
    hid_t a = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hssize_t got;
    if (H5Aexists(obj, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_FORMAT, "'%s': attribute '%s' is missing", path, name);
    }
    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || (sp = H5Aget_space(a)) < 0) {
        st = ns_h5_error(NS_ERR_FORMAT, "'%s': cannot read attribute '%s'", path, name);
        goto done;
    }
    /* A hostile file must not overrun out with more values than we expect. */
    got = H5Sget_simple_extent_npoints(sp);
    if (got != (hssize_t)n) {
        st = ns_error(NS_ERR_FORMAT, "'%s': attribute '%s' has %lld values, expected %ld", path,
                      name, (long long)got, n);
        goto done;
    }
    if (H5Aread(a, mtype, out) < 0)
        st = ns_h5_error(NS_ERR_FORMAT, "'%s': cannot read attribute '%s'", path, name);
done:
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return st;
}

ns_status ns_h5_read_attr(hid_t obj, const char *path, const char *name, hid_t mtype, void *out)
{
    return ns_h5_read_attr_n(obj, path, name, mtype, out, 1);
}

/* Reads a string attribute of any fixed length into buf (NUL-terminated). */
ns_status ns_h5_read_str_attr(hid_t obj, const char *path, const char *name, char *buf,
                               size_t cap)
{
    ns_status st = NS_OK;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_FORMAT, "'%s': attribute '%s' is missing", path, name);
    }
    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || (ft = H5Aget_type(a)) < 0) {
        st = ns_h5_error(NS_ERR_FORMAT, "'%s': cannot open attribute '%s'", path, name);
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0 ||
        H5Tget_size(ft) >= cap) {
        st = ns_error(NS_ERR_FORMAT, "'%s': attribute '%s' is not a short string", path, name);
        goto done;
    }
    mt = H5Tcopy(ft); /* same type: raw bytes, no padding conversion */
    memset(buf, 0, cap);
    if (mt < 0 || H5Aread(a, mt, buf) < 0)
        st = ns_h5_error(NS_ERR_FORMAT, "'%s': cannot read attribute '%s'", path, name);
done:
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    return st;
}

ns_status ns_h5_check_format(hid_t file, const char *path, const char *want)
{
    return ns_h5_check_format_in(file, path, want, NS_STORE_FORMAT_VERSION,
                                 NS_STORE_FORMAT_VERSION, NULL);
}

ns_status ns_h5_check_format_in(hid_t file, const char *path, const char *want, int lo, int hi,
                                int *version_out)
{
    char fmt[128];
    int32_t version = 0;
    ns_status st = ns_h5_read_str_attr(file, path, "ns_format", fmt, sizeof fmt);
    if (st != NS_OK)
        return ns_error_wrap(NS_ERR_FORMAT, "not a %s file", want);
    if (strcmp(fmt, want) != 0)
        return ns_error(NS_ERR_FORMAT, "'%s': ns_format is '%s', expected '%s'", path, fmt, want);
    st = ns_h5_read_attr(file, path, "ns_format_version", H5T_NATIVE_INT32, &version);
    if (st != NS_OK)
        return st;
    if (version < lo || version > hi) {
        if (lo == hi)
            return ns_error(NS_ERR_FORMAT, "'%s': %s version %d, expected %d", path, want,
                            (int)version, hi);
        return ns_error(NS_ERR_FORMAT, "'%s': %s version %d, expected %d to %d", path, want,
                        (int)version, lo, hi);
    }
    if (version_out)
        *version_out = (int)version;
    return NS_OK;
}

ns_status ns_h5_rows(hid_t dset, const char *path, const char *name, uint64_t *rows)
{
    hsize_t dims[H5S_MAX_RANK];
    hid_t sp = H5Dget_space(dset);
    int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    if (rank < 1)
        return ns_h5_error(NS_ERR_FORMAT, "'%s': cannot read the shape of %s", path, name);
    *rows = dims[0];
    return NS_OK;
}

herr_t ns_h5_write_prop_names(hid_t dset)
{
    herr_t r = -1;
    hsize_t np = NS_PROP_COUNT;
    char names[NS_PROP_COUNT][32];
    hid_t nt = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    memset(names, 0, sizeof names);
    for (int i = 0; i < NS_PROP_COUNT; i++)
        snprintf(names[i], sizeof names[i], "%s", ns_prop_names[i]);
    if ((nt = ns_h5_str_type(sizeof names[0])) < 0 || (sp = H5Screate_simple(1, &np, NULL)) < 0 ||
        (a = H5Acreate2(dset, "names", nt, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, nt, names) < 0)
        goto done;
    r = 0;
done:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (nt >= 0) H5Tclose(nt);
    return r;
}

ns_status ns_h5_save_atomic(const char *path, const char *what, ns_h5_write_fn write, void *ctx)
{
    ns_status st;
    char tmp[PATH_MAX];
    const char *sp = what[0] ? " " : "";
    hid_t f = H5I_INVALID_HID;
    herr_t rc;
    tmp[0] = '\0';
    ns_h5_init();
    if ((st = ns_tmp_name(path, tmp, sizeof tmp)) != NS_OK)
        goto done;
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot create %s%s'%s'", what, sp, tmp);
        goto done;
    }
    if ((st = write(f, tmp, ctx)) != NS_OK)
        goto done;
    rc = ns_h5_fclose(f);
    f = H5I_INVALID_HID;
    if (rc < 0) {
        st = ns_h5_error(NS_ERR_IO, "cannot close %s%s'%s'", what, sp, tmp);
        goto done;
    }
    if ((st = ns_fsync_path(tmp)) != NS_OK)
        goto done;
    st = ns_atomic_rename(tmp, path);
done:
    if (f >= 0) ns_h5_fclose(f);
    if (st != NS_OK && tmp[0])
        unlink(tmp);
    return st;
}

ns_status ns_h5_put(hid_t loc, const char *path, const char *name, hid_t ftype, hid_t mtype,
                    int rank, uint64_t d0, uint64_t d1, const void *data)
{
    ns_status st = NS_OK;
    hsize_t dims[2] = {d0, d1};
    hid_t ft = H5Tcopy(ftype), sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int empty = d0 == 0 || (rank == 2 && d1 == 0);
    if (ft < 0 || (H5Tget_class(ft) == H5T_COMPOUND && H5Tpack(ft) < 0) ||
        (sp = H5Screate_simple(rank, dims, NULL)) < 0 ||
        (d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (!empty && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        st = ns_h5_error(NS_ERR_IO, "cannot write /%s of '%s'", name, path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    return st;
}

ns_status ns_h5_check_stored(hid_t dset, hid_t mtype, const char *path, const char *name,
                             uint64_t rows)
{
    hid_t ft = H5Dget_type(dset);
    size_t fsz = ft >= 0 ? H5Tget_size(ft) : 0, msz = H5Tget_size(mtype);
    if (ft >= 0)
        H5Tclose(ft);
    if (fsz == 0 || fsz > 16 * msz + 1024)
        return ns_error(NS_ERR_CORRUPT, "'%s': /%s has elements of %zu bytes, expected about %zu",
                        path, name, fsz, msz);
    hsize_t stored = H5Dget_storage_size(dset);
    if (rows / 1024 > stored / fsz)
        return ns_error(NS_ERR_CORRUPT, "'%s': /%s claims %llu rows but stores %llu bytes", path,
                        name, (unsigned long long)rows, (unsigned long long)stored);
    return NS_OK;
}

ns_status ns_h5_get(hid_t loc, const char *path, const char *name, hid_t mtype, int rank,
                    uint64_t d0, uint64_t d1, void *out)
{
    ns_status st = NS_OK;
    hsize_t dims[H5S_MAX_RANK] = {0};
    hid_t d = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int got = -1, empty = d0 == 0 || (rank == 2 && d1 == 0);
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_CORRUPT, "'%s': /%s is missing", path, name);
    }
    if ((d = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0) {
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot open /%s", path, name);
        goto done;
    }
    got = H5Sget_simple_extent_ndims(sp);
    if (got != rank || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[0] != d0 ||
        (rank == 2 && dims[1] != d1)) {
        st = ns_error(NS_ERR_CORRUPT, "'%s': /%s has shape (%llu, %llu) of rank %d, expected "
                      "(%llu, %llu) of rank %d", path, name, (unsigned long long)dims[0],
                      (unsigned long long)dims[1], got, (unsigned long long)d0,
                      (unsigned long long)d1, rank);
        goto done;
    }
    if (!empty && (st = ns_h5_check_stored(d, mtype, path, name, d0)) == NS_OK &&
        H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = ns_h5_error(NS_ERR_CORRUPT, "'%s': cannot read /%s", path, name);
done:
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return st;
}

ns_status ns_h5_open_read(const char *path, const char *what, hid_t *out)
{
    *out = H5I_INVALID_HID;
    ns_h5_init();
    if (access(path, R_OK) != 0)
        return ns_error(NS_ERR_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_ERR_FORMAT, "'%s' is not a %s file (not HDF5, or damaged at the "
                        "start)", path, what);
    }
    *out = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*out < 0)
        return ns_h5_error(NS_ERR_CORRUPT, "cannot open %s '%s' (truncated or damaged)", what,
                           path);
    return NS_OK;
}

ns_status ns_h5_read_str_fit(hid_t obj, const char *path, const char *name, char *dst, size_t cap)
{
    char buf[1024];
    ns_status st = ns_h5_read_str_attr(obj, path, name, buf, sizeof buf);
    if (st != NS_OK)
        return st;
    if (strlen(buf) >= cap)
        return ns_error(NS_ERR_CORRUPT, "'%s': attribute '%s' is longer than %zu bytes", path,
                        name, cap - 1);
    memcpy(dst, buf, strlen(buf) + 1);
    return NS_OK;
}

ns_status ns_h5_refuse_foreign(const char *path, const char *what, const char *format,
                               int version)
{
    hid_t f = H5I_INVALID_HID;
    ns_status st;
    if (access(path, F_OK) != 0)
        return NS_OK;
    if ((st = ns_h5_open_read(path, what, &f)) == NS_OK)
        st = ns_h5_check_format_in(f, path, format, 1, version, NULL);
    if (f >= 0)
        ns_h5_fclose(f);
    if (st != NS_OK)
        return ns_error_wrap(NS_ERR_EXISTS, "refusing to replace '%s', which is not a %s", path,
                             what);
    return NS_OK;
}
