/* test_labels.c -- label set files, effective labels, the CSV reader on
 * hostile input, and labels import. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "detect_fixtures.h"
#include "helpers.h"
#include "nightshift/csv.h"
#include "nightshift/labelimport.h"
#include "nightshift/labels.h"
#include "nightshift/store.h"

static void make_set(ns_labelset *set, const char *name, size_t n, const char *const *classes,
                     size_t n_classes, int clip0, int cls_shift)
{
    memset(set, 0, sizeof *set);
    ck_assert_ns_ok(ns_labelset_alloc(set, n, n_classes));
    snprintf(set->name, sizeof set->name, "%s", name);
    snprintf(set->on_conflict, sizeof set->on_conflict, "fail");
    set->sources = strdup("a.csv\nb.csv");
    for (size_t c = 0; c < n_classes; c++)
        snprintf(set->classes[c], NS_LABEL_LEN, "%s", classes[c]);
    /* Two frames per clip; clip hashes sort in their own order, so rows are
     * sorted after filling. */
    for (size_t i = 0; i < n; i++) {
        ns_test_clip_sha("lbl", clip0 + (int)(i / 2), set->clip[i]);
        set->index[i] = (uint32_t)(i % 2) * 3;
        set->cls[i] = (int32_t)((i + (size_t)cls_shift) % n_classes);
        set->time[i] = NAN;
        set->confidence[i] = 0.5f;
        snprintf(set->annotator[i], NS_ANNOTATOR_LEN, "ann%zu", i % 3);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int c = strcmp(set->clip[j - 1], set->clip[j]);
            if (c < 0 || (c == 0 && set->index[j - 1] < set->index[j]))
                break;
            char tmp[NS_SHA256_HEX];
            memcpy(tmp, set->clip[j], NS_SHA256_HEX);
            memcpy(set->clip[j], set->clip[j - 1], NS_SHA256_HEX);
            memcpy(set->clip[j - 1], tmp, NS_SHA256_HEX);
            uint32_t ti = set->index[j];
            set->index[j] = set->index[j - 1];
            set->index[j - 1] = ti;
            int32_t tc = set->cls[j];
            set->cls[j] = set->cls[j - 1];
            set->cls[j - 1] = tc;
        }
}

static ns_store *empty_store(char *dir, size_t cap)
{
    ns_store *s = NULL;
    ns_test_tmpdir(dir, cap, "labels");
    ck_assert_ns_ok(ns_store_open_write(dir, 16, 0, &s));
    return s;
}

START_TEST(test_labelset_files)
{
    char dir[PATH_MAX];
    const char *c1[] = {"idle", "pick", "=SUM(A1)"}, *c2[] = {"<b>new</b>", "pick"};
    ns_labelset a, b, *sets = NULL;
    size_t n = 0;
    ns_labelmap m;
    ns_store *s = empty_store(dir, sizeof dir);

    /* No labels yet: an empty map, not an error. */
    ck_assert_ns_ok(ns_labels_load(s, NULL, &m));
    ck_assert_uint_eq(m.n, 0);
    ns_labels_release(&m);

    make_set(&a, "glove", 10, c1, 3, 0, 0);
    ck_assert_ns_ok(ns_labelset_commit(s, &a));
    ck_assert_uint_eq(a.version, 1);
    /* The second set relabels clips 3 and 4 (rows 6..9 of the first) and
     * adds clips 5 and 6, with a class list of its own. */
    make_set(&b, "review", 8, c2, 2, 3, 1);
    ck_assert_ns_ok(ns_labelset_commit(s, &b));
    ck_assert_uint_eq(b.version, 2);

    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(sets[0].name, "glove");
    ck_assert_str_eq(sets[1].name, "review");
    ck_assert_uint_eq(sets[0].n, 10);
    ck_assert_str_eq(sets[0].classes[2], "=SUM(A1)");
    ck_assert_str_eq(sets[0].sources, "a.csv\nb.csv");
    ck_assert_mem_eq(sets[0].cls, a.cls, 10 * sizeof(int32_t));
    ck_assert_str_eq(sets[1].annotator[1], b.annotator[1]);
    ns_labelsets_free(sets, n);

    ck_assert_ns_ok(ns_labels_load(s, NULL, &m));
    ck_assert_uint_eq(m.n, 10 + 8 - 4);
    ck_assert_uint_eq(m.n_sets, 2);
    ck_assert_str_eq(m.sets[0], "glove@1");
    ck_assert_str_eq(m.sets[1], "review@2");
    /* Union of classes in first-seen order. */
    ck_assert_uint_eq(m.n_classes, 4);
    ck_assert_str_eq(m.classes[0], "idle");
    ck_assert_str_eq(m.classes[3], "<b>new</b>");
    /* Newest set wins for the frames both label. */
    for (size_t i = 0; i < b.n; i++) {
        int32_t got = ns_labels_find(&m, b.clip[i], b.index[i]);
        ck_assert_str_eq(m.classes[got], c2[b.cls[i]]);
    }
    for (size_t i = 0; i < a.n; i++) {
        int in_b = 0;
        for (size_t j = 0; j < b.n; j++)
            in_b |= strcmp(a.clip[i], b.clip[j]) == 0 && a.index[i] == b.index[j];
        if (!in_b)
            ck_assert_str_eq(m.classes[ns_labels_find(&m, a.clip[i], a.index[i])], c1[a.cls[i]]);
    }
    ck_assert_int_eq(ns_labels_find(&m, a.clip[0], 1), -1);
    ck_assert_int_eq(ns_labels_find(&m, "0000", 0), -1);
    ns_labels_release(&m);

    /* Only the named sets. */
    ck_assert_ns_ok(ns_labels_load(s, "glove,other", &m));
    ck_assert_uint_eq(m.n, 10);
    ck_assert_uint_eq(m.n_sets, 1);
    ns_labels_release(&m);
    ns_labels_release(&m);

    /* Invalid sets are refused before anything is written. */
    a.cls[0] = 5;
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_CORRUPT);
    a.cls[0] = 0;
    snprintf(a.name, sizeof a.name, "../evil");
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_USAGE);
    snprintf(a.name, sizeof a.name, "glove");
    memcpy(a.clip[1], a.clip[0], NS_SHA256_HEX);
    a.index[1] = a.index[0];
    ck_assert_ns_status(ns_labelset_commit(s, &a), NS_ERR_CORRUPT);
    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ck_assert_uint_eq(n, 2);
    ns_labelsets_free(sets, n);
    ns_labelset_release(&a);
    ns_labelset_release(&b);
    ns_store_close(s);
}
END_TEST

/* A damaged set is an error naming the file, never a silently smaller map. */
/* A store holding one committed 4-label set; its file (path) opened for writing. */
static hid_t committed_set(char *dir, size_t dcap, char *path, size_t pcap, ns_labelset *a,
                           ns_store **s)
{
    const char *c1[] = {"idle", "pick"};
    *s = empty_store(dir, dcap);
    make_set(a, "glove", 4, c1, 2, 0, 0);
    ck_assert_ns_ok(ns_labelset_commit(*s, a));
    snprintf(path, pcap, "%s/labels/000001-glove.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    return f;
}

START_TEST(test_labelset_damaged)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    ns_labelset a;
    ns_labelmap m;
    ns_store *s = NULL;
    hid_t f = committed_set(dir, sizeof dir, path, sizeof path, &a, &s);
    hid_t d = H5Dopen2(f, "label", H5P_DEFAULT);
    int32_t bad[4] = {0, 1, 2, 0};
    ck_assert(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    ck_assert_ns_status(ns_labels_load(s, NULL, &m), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "000001-glove.h5"));
    /* Temps of a killed import are neither read nor kept. */
    snprintf(path, sizeof path, "%s/labels/000002-x.h5.tmp.123", dir);
    ns_test_write_text(path, "partial");
    ns_labelset_release(&a);
    ns_store_close(s);
}
END_TEST

/* A flipped type message made /index claim 1.4 GB per element and HDF5 sized
 * its conversion buffer by it (1428 MB peak RSS for `labels info`, found by
 * flipping bytes of a label set): refused before the read, naming the file. */
START_TEST(test_labelset_absurd_element)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    ns_labelset a, b;
    ns_store *s = NULL;
    hid_t f = committed_set(dir, sizeof dir, path, sizeof path, &a, &s);
    ck_assert(H5Ldelete(f, "index", H5P_DEFAULT) >= 0);
    hid_t t = H5Tcopy(H5T_STD_U32LE);
    ck_assert(H5Tset_size(t, (size_t)1 << 30) >= 0);
    hsize_t dims[1] = {4};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "index", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    ck_assert_ns_status(ns_labelset_read(path, &b), NS_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "000001-glove.h5"));
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/index has elements of 1073741824 bytes"));
    ns_labelset_release(&a);
    ns_store_close(s);
}
END_TEST

/* ---- the CSV reader on hostile bytes ----------------------------------------- */

static void write_bytes(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

START_TEST(test_csv_hostile)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    ns_csv_reader r;
    int more = 0;
    static const char text[] = "\xEF\xBB\xBF" "a,b\r\n"
                               "1,x\0y\r\n"
                               "2,\"q\"\"uote,d\"\r\n"
                               "\r\n"
                               "3,\"multi\nline\"\n"
                               "4,\"open";
    ns_test_tmpdir(dir, sizeof dir, "labels-csv");
    snprintf(path, sizeof path, "%s/h.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    ck_assert_ns_ok(ns_csv_open(path, &r));
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert(more && r.n_fields == 2 && r.line == 1);
    ck_assert_str_eq(r.fields[0], "a"); /* BOM skipped */
    ck_assert_str_eq(r.fields[1], "b"); /* CR not part of the field */
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert_uint_eq(r.line, 2);
    ck_assert_uint_eq(r.nul_bytes, 1);
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert_uint_eq(r.line, 3);
    ck_assert_uint_eq(r.nul_bytes, 0);
    ck_assert_str_eq(r.fields[1], "q\"uote,d");
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert_uint_eq(r.line, 5);
    ck_assert_str_eq(r.fields[1], "multi\nline");
    ck_assert_ns_status(ns_csv_next(&r, &more), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "line 7: unterminated"));
    ns_csv_close(&r);

    /* Too many fields: that record is skipped whole and reading goes on. */
    char wide[4096];
    size_t o = (size_t)snprintf(wide, sizeof wide, "h\n");
    for (int i = 0; i < NS_CSV_MAX_FIELDS + 5; i++)
        o += (size_t)snprintf(wide + o, sizeof wide - o, "%d,", i);
    o += (size_t)snprintf(wide + o, sizeof wide - o, "\"x\ny\"\nlast\n");
    write_bytes(path, wide, o);
    ck_assert_ns_ok(ns_csv_open(path, &r));
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert_ns_status(ns_csv_next(&r, &more), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "line 2: more than"));
    ck_assert_ns_ok(ns_csv_next(&r, &more));
    ck_assert(more && r.n_fields == 1 && r.line == 4);
    ck_assert_str_eq(r.fields[0], "last");
    ns_csv_close(&r);
}
END_TEST

/* ---- import -------------------------------------------------------------------- */

#define S 16
#define NCLIP 4
#define NFRAME 4
static const char *const SOURCES[NCLIP] = {"/data/2026-11-01/cam01/a.tar",
                                           "/data/2026-11-01/cam02/a.tar",
                                           "/data/2026-11-02/cam01/b.tar",
                                           "/data/2026-11-02/cam02/c =x <y>.zip"};
static char SHA[NCLIP][NS_SHA256_HEX];

/* Four clips over two nights; frames stored as numbers 0, 2, 4, 6 with
 * members frame_<n>.jpg. */
static ns_store *import_store(char *dir, size_t cap)
{
    static uint8_t px[NFRAME * S * S * 3];
    ns_store *s = NULL;
    ns_shard_writer *w = NULL;
    ns_test_tmpdir(dir, cap, "labels-import");
    ck_assert_ns_ok(ns_store_open_write(dir, S, 0, &s));
    for (int c = 0; c < NCLIP; c++) {
        ns_frame_record recs[NFRAME];
        ns_clip_record r;
        const char *night = c < 2 ? "2026-11-01" : "2026-11-02";
        if (c == 0 || c == 2)
            ck_assert_ns_ok(ns_shard_begin(s, night, &w));
        ck_assert_ns_ok(ns_shard_begin_clip(w));
        memset(recs, 0, sizeof recs);
        for (int i = 0; i < NFRAME; i++) {
            recs[i].index = (uint32_t)(2 * i);
            recs[i].timestamp = NAN;
            snprintf(recs[i].member, sizeof recs[i].member, "frame_%d.jpg", 2 * i);
        }
        memset(px, c * 40, sizeof px);
        ck_assert_ns_ok(ns_shard_append(w, px, recs, NFRAME));
        memset(&r, 0, sizeof r);
        ns_test_clip_sha("import", c, r.sha256);
        memcpy(SHA[c], r.sha256, NS_SHA256_HEX);
        snprintf(r.source, sizeof r.source, "%s", SOURCES[c]);
        snprintf(r.camera, sizeof r.camera, "cam%02d", 1 + c % 2);
        snprintf(r.container, sizeof r.container, "tar");
        r.start_time = NAN;
        r.frames_stored = r.frames_seen = NFRAME;
        ck_assert_ns_ok(ns_shard_end_clip(w, &r));
        if (c == 1 || c == 3)
            ck_assert_ns_ok(ns_shard_commit(w));
    }
    return s;
}

static void run_import(ns_store *s, const char *path, const char *set, ns_conflict_rule rule,
                       int strict, ns_labels_import_report *rep)
{
    ns_labels_import_opts o;
    ns_labels_import_default_opts(&o);
    o.set_name = set;
    o.on_conflict = rule;
    o.strict = strict;
    const char *files[1] = {path};
    ck_assert_ns_ok(ns_labels_import(s, &o, files, 1, rep));
}

static int has_problem(const ns_labels_import_report *rep, const char *needle)
{
    for (size_t i = 0; i < rep->problems.n_kept; i++)
        if (strstr(rep->problems.msgs[i], needle))
            return 1;
    return 0;
}

#define ASSERT_PROBLEM(rep, needle) \
    ck_assert_msg(has_problem(rep, needle), "no problem mentions '%s'", needle)

static int32_t label_of(ns_store *s, int clip, uint32_t index, char *name, size_t cap)
{
    ns_labelmap m;
    ck_assert_ns_ok(ns_labels_load(s, NULL, &m));
    int32_t k = ns_labels_find(&m, SHA[clip], index);
    if (name)
        snprintf(name, cap, "%s", k >= 0 ? m.classes[k] : "");
    ns_labels_release(&m);
    return k;
}

static size_t n_sets(ns_store *s)
{
    ns_labelset *sets = NULL;
    size_t n = 0;
    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ns_labelsets_free(sets, n);
    return n;
}

START_TEST(test_import_hostile)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], buf[16384], name[NS_LABEL_LEN];
    ns_labels_import_report rep;
    ns_store *s = import_store(dir, sizeof dir);
    size_t o = 0;
    char long_label[5001];
    memset(long_label, 'x', 5000);
    long_label[5000] = '\0';
    /* Line numbers in comments: the checks below name them. */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "\xEF\xBB\xBF" "clip,frame,label,annotator\r\n");
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,0,idle,ann\r\n", SHA[0]);          /* 2 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%.12s,frame_2.jpg,pick,ann\r\n", SHA[1]); /* 3 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,4,=SUM(A1),ann\r\n", SOURCES[2]);  /* 4 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "2026-11-02/cam02/c =x <y>.zip,6,<script>alert(1)</script>,\r\n"); /* 5 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "b.tar,2,+cmd|calc,\r\n");            /* 6 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,0,idle\r\n", SHA[2]);             /* 7 count */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "0123456789abcdef0123,0,idle,\r\n");  /* 8 unknown */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "a.tar,0,idle,\r\n");                 /* 9 ambiguous */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,99,idle,\r\n", SHA[0]);           /* 10 no frame */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,2,bad\xC3\x28utf,\r\n", SHA[0]);  /* 11 utf-8 */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,2,%s,\r\n", SHA[3], long_label);  /* 12 long */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,4,,\r\n", SHA[3]);                /* 13 empty */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,6,@here,\r\n", SHA[0]);           /* 14 ok */
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,4,-1,\"x\"\r\n", SHA[0]);         /* 15 ok */
    size_t nul_at = o + 71;
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,0,nul_Xhere,\r\n", SHA[3]);       /* 16 NUL */
    buf[nul_at] = '\0';
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,2,\"unterminated,\r\n", SHA[2]);  /* 17 quote */
    ck_assert(buf[nul_at - 1] == '_');
    snprintf(path, sizeof path, "%s/hostile.csv", dir);
    write_bytes(path, buf, o);

    /* --strict: the file is left out whole, nothing is written. */
    run_import(s, path, "hostile", NS_CONFLICT_FAIL, 1, &rep);
    ck_assert_uint_eq(rep.imported, 0);
    ck_assert_uint_eq(rep.files_rejected, 1);
    ck_assert_str_eq(rep.set, "");
    ck_assert_uint_eq(n_sets(s), 0);
    ns_labels_import_report_release(&rep);

    run_import(s, path, "hostile", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.rows, 16);
    ck_assert_uint_eq(rep.imported, 7);
    ck_assert_uint_eq(rep.bad_rows, 9);
    ck_assert_str_eq(rep.set, "hostile@1");
    ASSERT_PROBLEM(&rep, "line 7: 3 fields, the header has 4");
    ASSERT_PROBLEM(&rep, "line 8: unknown clip '0123456789abcdef0123'");
    ASSERT_PROBLEM(&rep, "line 9: ambiguous clip 'a.tar': 2 clips match");
    ASSERT_PROBLEM(&rep, "line 10: clip");
    ASSERT_PROBLEM(&rep, "has no frame number '99'");
    ASSERT_PROBLEM(&rep, "line 11: label is not valid UTF-8");
    ASSERT_PROBLEM(&rep, "line 12: label of 5000 bytes, at most 255");
    ASSERT_PROBLEM(&rep, "line 13: label is empty");
    ASSERT_PROBLEM(&rep, "line 16: holds 1 NUL byte");
    ASSERT_PROBLEM(&rep, "line 17: unterminated quoted field");
    ns_labels_import_report_release(&rep);

    ck_assert_int_ge(label_of(s, 0, 0, name, sizeof name), 0);
    ck_assert_str_eq(name, "idle");
    label_of(s, 1, 2, name, sizeof name);
    ck_assert_str_eq(name, "pick");
    label_of(s, 2, 4, name, sizeof name);
    ck_assert_str_eq(name, "=SUM(A1)"); /* data, never a formula */
    label_of(s, 3, 6, name, sizeof name);
    ck_assert_str_eq(name, "<script>alert(1)</script>");
    label_of(s, 2, 2, name, sizeof name);
    ck_assert_str_eq(name, "+cmd|calc");
    label_of(s, 0, 6, name, sizeof name);
    ck_assert_str_eq(name, "@here");
    label_of(s, 0, 4, name, sizeof name);
    ck_assert_str_eq(name, "-1");
    ck_assert_int_eq(label_of(s, 3, 0, NULL, 0), -1);
    ck_assert_int_eq(label_of(s, 0, 2, NULL, 0), -1);

    /* The same file again changes nothing and writes no set. */
    run_import(s, path, "hostile", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.imported, 0);
    ck_assert_uint_eq(rep.unchanged, 7);
    ck_assert_uint_eq(n_sets(s), 1);
    ns_labels_import_report_release(&rep);

    /* A file that is not there, and a header without a label column. */
    snprintf(path, sizeof path, "%s/none.csv", dir);
    run_import(s, path, "x", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.files_rejected, 1);
    ASSERT_PROBLEM(&rep, "none.csv");
    ns_labels_import_report_release(&rep);
    snprintf(path, sizeof path, "%s/nolabel.csv", dir);
    ns_test_write_text(path, "clip,frame,klass\nx,0,idle\n");
    run_import(s, path, "x", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.files_rejected, 1);
    ASSERT_PROBLEM(&rep, "no 'label' column");
    ns_labels_import_report_release(&rep);
    ck_assert_uint_eq(n_sets(s), 1);
    ns_store_close(s);
}
END_TEST

START_TEST(test_import_conflicts)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], buf[4096], name[NS_LABEL_LEN];
    ns_labels_import_report rep;
    ns_store *s = import_store(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.csv", dir);
    snprintf(buf, sizeof buf, "clip,frame,label\n%s,0,idle\n%s,2,idle\n%s,0,pick\n", SHA[0],
             SHA[0], SHA[1]);
    ns_test_write_text(path, buf);
    run_import(s, path, "first", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.imported, 3);
    ns_labels_import_report_release(&rep);

    /* Clip 0 frame 0 relabelled, frame 2 the same, clip 2 new; clip 3 frame
     * 0 twice with different labels inside this file. */
    snprintf(path, sizeof path, "%s/b.csv", dir);
    snprintf(buf, sizeof buf,
             "clip,frame,label\n%s,0,pick\n%s,2,idle\n%s,0,inspect\n%s,0,idle\n%s,0,pick\n",
             SHA[0], SHA[0], SHA[2], SHA[3], SHA[3]);
    ns_test_write_text(path, buf);
    run_import(s, path, "second", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.imported, 1);
    ck_assert_uint_eq(rep.unchanged, 1);
    ck_assert_uint_eq(rep.conflicts, 2);
    ck_assert_uint_eq(rep.conflicts_refused, 2);
    ASSERT_PROBLEM(&rep, "line 2: frame 0 of clip");
    ASSERT_PROBLEM(&rep, "is labelled 'idle' in the store, this row says 'pick'");
    ASSERT_PROBLEM(&rep, "by line 5 of");
    ns_labels_import_report_release(&rep);
    label_of(s, 0, 0, name, sizeof name);
    ck_assert_str_eq(name, "idle");
    ck_assert_int_eq(label_of(s, 3, 0, NULL, 0), -1);

    run_import(s, path, "third", NS_CONFLICT_KEEP, 0, &rep);
    ck_assert_uint_eq(rep.imported, 1); /* clip 3 frame 0: the first row of the file */
    ns_labels_import_report_release(&rep);
    label_of(s, 0, 0, name, sizeof name);
    ck_assert_str_eq(name, "idle");
    label_of(s, 3, 0, name, sizeof name);
    ck_assert_str_eq(name, "idle");

    run_import(s, path, "fourth", NS_CONFLICT_REPLACE, 0, &rep);
    ck_assert_uint_eq(rep.imported, 2); /* clip 0 frame 0, clip 3 frame 0 (last row) */
    ns_labels_import_report_release(&rep);
    label_of(s, 0, 0, name, sizeof name);
    ck_assert_str_eq(name, "pick");
    label_of(s, 3, 0, name, sizeof name);
    ck_assert_str_eq(name, "pick");
    label_of(s, 2, 0, name, sizeof name);
    ck_assert_str_eq(name, "inspect");
    ck_assert_uint_eq(n_sets(s), 4);
    ns_store_close(s);
}
END_TEST

START_TEST(test_import_columns_and_json)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], buf[8192], name[NS_LABEL_LEN];
    ns_labels_import_report rep;
    ns_labels_import_opts o;
    ns_store *s = import_store(dir, sizeof dir);
    const char *files[1] = {path};

    /* The generator's shape: path, frame, member, label; --columns maps
     * another header. */
    snprintf(path, sizeof path, "%s/g.csv", dir);
    snprintf(buf, sizeof buf, "file,idx,step,who,when,p\n%s,frame_4.jpg,fasten,kim,"
             "2026-11-02T03:04:05Z,0.75\n%s,6,fasten,kim,1700000000,2\n", SOURCES[2], SOURCES[2]);
    ns_test_write_text(path, buf);
    ns_labels_import_default_opts(&o);
    o.columns = "clip=file,frame=idx,label=step,annotator=who,time=when,confidence=p";
    ck_assert_ns_ok(ns_labels_import(s, &o, files, 1, &rep));
    ck_assert_uint_eq(rep.imported, 1);
    ASSERT_PROBLEM(&rep, "line 3: confidence '2' is not a number in 0..1");
    ns_labels_import_report_release(&rep);
    o.columns = "clip=file,color=red";
    ck_assert_ns_status(ns_labels_import(s, &o, files, 1, &rep), NS_ERR_USAGE);
    ns_labels_import_report_release(&rep);
    ns_labelset *sets = NULL;
    size_t n = 0;
    ck_assert_ns_ok(ns_labelsets_read(s, NULL, &sets, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(sets[0].annotator[0], "kim");
    ck_assert(fabs(sets[0].time[0] - 1793588645.0) < 1e-6);
    ck_assert(fabsf(sets[0].confidence[0] - 0.75f) < 1e-6f);
    ns_labelsets_free(sets, n);

    /* Label Studio export: nested data, an unlabelled task, a cancelled
     * annotation before a real one, \u escapes, a task that is no object. */
    snprintf(path, sizeof path, "%s/ls.json", dir);
    snprintf(buf, sizeof buf,
             "[\n"
             " {\"id\": 1, \"data\": {\"image\": \"00001_cam01.jpg\", \"clip\": \"%s\", "
             "\"frame\": 2, \"reason\": \"novel_c3\"},\n"
             "  \"annotations\": [{\"was_cancelled\": true, \"result\": []},\n"
             "   {\"result\": [{\"type\": \"choices\", \"value\": {\"choices\": "
             "[\"gl\\u00f6ve \\\"x\\\"\"]}}], \"completed_by\": {\"email\": \"a@b.c\"}, "
             "\"updated_at\": \"2026-11-03T01:02:03.5Z\"}]},\n"
             " {\"id\": 2, \"data\": {\"clip\": \"%s\", \"frame\": \"frame_6.jpg\"}, "
             "\"annotations\": []},\n"
             " 17,\n"
             " {\"data\": {\"clip\": \"%s\", \"frame\": 0}, \"annotations\": [{\"result\": "
             "[{\"type\": \"choices\", \"value\": {\"choices\": [\"idle\"]}}], "
             "\"completed_by\": 3}]}\n"
             "]\n", SHA[1], SHA[1], SHA[3]);
    ns_test_write_text(path, buf);
    run_import(s, path, "studio", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.rows, 4);
    ck_assert_uint_eq(rep.imported, 2);
    ck_assert_uint_eq(rep.bad_rows, 2);
    ASSERT_PROBLEM(&rep, "task 2: no annotation");
    ASSERT_PROBLEM(&rep, "task 3: not an object");
    ns_labels_import_report_release(&rep);
    label_of(s, 1, 2, name, sizeof name);
    ck_assert_str_eq(name, "gl\xC3\xB6ve \"x\"");
    label_of(s, 3, 0, name, sizeof name);
    ck_assert_str_eq(name, "idle");

    /* Broken JSON: the tasks before the error count, the error names the line. */
    snprintf(buf, sizeof buf, "[{\"data\": {\"clip\": \"%s\", \"frame\": 4}, \"annotations\": "
             "[{\"result\": [{\"value\": {\"choices\": [\"idle\"]}}]}]},\n{\"data\": {\"clip\": tru",
             SHA[1]);
    ns_test_write_text(path, buf);
    run_import(s, path, "broken", NS_CONFLICT_FAIL, 0, &rep);
    ck_assert_uint_eq(rep.imported, 1);
    ASSERT_PROBLEM(&rep, "line 2: invalid JSON in task 2");
    ns_labels_import_report_release(&rep);
    /* Deep nesting is refused, not recursed into. */
    o.columns = NULL;
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k, "[");
    for (int i = 0; i < 100; i++)
        buf[k++] = '[';
    buf[k] = '\0';
    ns_test_write_text(path, buf);
    run_import(s, path, "deep", NS_CONFLICT_FAIL, 0, &rep);
    ASSERT_PROBLEM(&rep, "deeper than 32");
    ns_labels_import_report_release(&rep);
    ns_store_close(s);
}
END_TEST

/* A damaged label set stops an import before it reads anything. */
START_TEST(test_import_damaged_store)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], buf[512];
    ns_labels_import_report rep;
    ns_labels_import_opts o;
    ns_store *s = import_store(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/labels", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/labels/000001-old.h5", dir);
    ns_test_write_text(path, "not hdf5");
    snprintf(path, sizeof path, "%s/x.csv", dir);
    snprintf(buf, sizeof buf, "clip,frame,label\n%s,0,idle\n", SHA[0]);
    ns_test_write_text(path, buf);
    ns_labels_import_default_opts(&o);
    const char *files[1] = {path};
    ck_assert_ns_status(ns_labels_import(s, &o, files, 1, &rep), NS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "000001-old.h5"));
    ns_labels_import_report_release(&rep);
    ns_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("labels");
    TCase *tc = tcase_create("sets");
    tcase_add_test(tc, test_labelset_files);
    tcase_add_test(tc, test_labelset_damaged);
    tcase_add_test(tc, test_labelset_absurd_element);
    suite_add_tcase(s, tc);
    tc = tcase_create("import");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_csv_hostile);
    tcase_add_test(tc, test_import_hostile);
    tcase_add_test(tc, test_import_conflicts);
    tcase_add_test(tc, test_import_columns_and_json);
    tcase_add_test(tc, test_import_damaged_store);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
