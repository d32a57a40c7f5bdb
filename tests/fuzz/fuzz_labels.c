/* fuzz_labels.c -- libFuzzer target: `labels import` of one file (CSV, or
 * Label Studio JSON when it starts with '['), src/dataset/labels_import.c
 * over src/io/csv.c and src/dataset/lsjson.c, against a small store of four
 * clips made once at start-up (sources and members in tests/corpus/fuzz/labels/
 * seeds resolve against it).  A committed label set is deleted again, so every
 * input meets the same store. */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "nightshift/labelimport.h"
#include "nightshift/store.h"
#include "fuzz_util.h"

#define S 16
#define NCLIP 4
#define NFRAME 4

static ns_store *g_store;
static char g_labels_dir[600];

static const char *const SOURCES[NCLIP] = {"/data/2026-11-01/cam01/a.tar",
                                           "/data/2026-11-01/cam02/a.tar",
                                           "/data/2026-11-02/cam01/b.tar",
                                           "/data/2026-11-02/cam02/c =x <y>.zip"};

static void make_store(void)
{
    static uint8_t px[NFRAME * S * S * 3];
    char dir[512];
    const char *tmp = getenv("TMPDIR");
    ns_shard_writer *w = NULL;
    snprintf(dir, sizeof dir, "%s/nsfuzz-labels.%ld", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    NS_FUZZ_CHECK(ns_store_open_write(dir, S, 0, &g_store) == NS_OK);
    for (int c = 0; c < NCLIP; c++) {
        ns_frame_record recs[NFRAME];
        ns_clip_record r;
        const char *night = c < 2 ? "2026-11-01" : "2026-11-02";
        if (c == 0 || c == 2)
            NS_FUZZ_CHECK(ns_shard_begin(g_store, night, &w) == NS_OK);
        NS_FUZZ_CHECK(ns_shard_begin_clip(w) == NS_OK);
        memset(recs, 0, sizeof recs);
        for (int i = 0; i < NFRAME; i++) {
            recs[i].index = (uint32_t)(2 * i);
            recs[i].timestamp = NAN;
            snprintf(recs[i].member, sizeof recs[i].member, "frame_%d.jpg", 2 * i);
        }
        memset(px, c * 40, sizeof px);
        NS_FUZZ_CHECK(ns_shard_append(w, px, recs, NFRAME) == NS_OK);
        memset(&r, 0, sizeof r);
        /* Ids "aaaa...", "bbbb...": seeds name clips by them too. */
        memset(r.sha256, 'a' + c, NS_SHA256_HEX - 1);
        r.sha256[NS_SHA256_HEX - 1] = '\0';
        snprintf(r.source, sizeof r.source, "%s", SOURCES[c]);
        snprintf(r.camera, sizeof r.camera, "cam%02d", 1 + c % 2);
        snprintf(r.container, sizeof r.container, "tar");
        r.night[0] = '\0';
        r.start_time = NAN;
        r.frames_stored = r.frames_seen = NFRAME;
        NS_FUZZ_CHECK(ns_shard_end_clip(w, &r) == NS_OK);
        if (c == 1 || c == 3)
            NS_FUZZ_CHECK(ns_shard_commit(w) == NS_OK);
    }
    snprintf(g_labels_dir, sizeof g_labels_dir, "%s/labels", dir);
}

/* Back to a store without label sets. */
static void drop_label_sets(void)
{
    DIR *d = opendir(g_labels_dir);
    struct dirent *e;
    char p[1200];
    if (!d)
        return;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", g_labels_dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (!g_store)
        make_store();
    const char *path = ns_fuzz_file(data, n, ".labels.csv");
    ns_labels_import_opts o;
    ns_labels_import_report rep;
    ns_labels_import_default_opts(&o);
    o.set_name = "fuzz";
    /* The last byte picks the conflict rule and --strict: all paths get fuzzed. */
    if (n > 0) {
        o.on_conflict = (ns_conflict_rule)(data[n - 1] % 3);
        o.strict = (data[n - 1] >> 2) & 1;
    }
    const char *files[1] = {path};
    ns_status st = ns_labels_import(g_store, &o, files, 1, &rep);
    if (st != NS_OK)
        ns_fuzz_check_text(ns_errmsg());
    NS_FUZZ_CHECK(rep.bad_rows <= rep.rows + 1);
    NS_FUZZ_CHECK(rep.imported <= rep.rows);
    for (size_t i = 0; i < rep.problems.n_kept; i++)
        ns_fuzz_check_text(rep.problems.msgs[i]);
    if (rep.set[0])
        drop_label_sets();
    ns_labels_import_report_release(&rep);
    return 0;
}
