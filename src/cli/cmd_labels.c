/* nightshift labels import|info -- labels for stored frames, as versioned sets. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/clipmeta.h"
#include "nightshift/labelimport.h"
#include "nightshift/labels.h"
#include "nightshift/store.h"
#include "nightshift/strbuf.h"

#define SHOW 60

static void help(const ns_labels_import_opts *d)
{
    printf("usage: nightshift labels import --store DIR [options] FILE...\n"
           "       nightshift labels info --store DIR\n\n"
           "import reads CSV files (columns clip, frame, label; optional annotator, time,\n"
           "confidence) or Label Studio JSON exports and appends them to the store as one new\n"
           "label set, atomically.  clip is the clip's SHA-256, a unique prefix of >= 12 hex\n"
           "digits, its source path as ingested, or its file name when unique; frame is the\n"
           "frame number in its clip (0-based) or its member name.  Bad rows are reported with\n"
           "file and line and left out; nothing stored is ever changed.\n\n"
           "options (defaults in brackets):\n"
           "  --store DIR            the store [$NIGHTSHIFT_STORE]\n"
           "  --set NAME             name of the new label set [%s]\n"
           "  --columns MAP          our=theirs column names, e.g. clip=path,label=step\n"
           "  --on-conflict RULE     a frame already labelled otherwise: fail (leave the frame\n"
           "                         out), keep (the earlier label) or replace [%s]\n"
           "  --strict               leave out a whole file when any row of it is bad\n"
           "  --wait                 wait for another writer instead of exit 75\n"
           "  --quiet                print the summary only when something was left out\n"
           "Exit codes: 0 every row imported (or already so labelled), 1 some rows or files\n"
           "were left out (the rest was imported) or the import failed, 2 usage, 75 store busy.\n",
           d->set_name, ns_conflict_rule_name(d->on_conflict));
}

static void print_problems(const ns_warnings *w)
{
    for (size_t i = 0; i < w->n_kept; i++)
        fprintf(stderr, "  %s\n", w->msgs[i]);
    if (w->n_total > w->n_kept)
        fprintf(stderr, "  ... and %zu more\n", w->n_total - w->n_kept);
}

static int import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, 0, 's'},  {"set", required_argument, 0, 'n'},
        {"columns", required_argument, 0, 'c'}, {"on-conflict", required_argument, 0, 'r'},
        {"strict", no_argument, 0, 'S'},       {"quiet", no_argument, 0, 'q'},
        {"wait", no_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    ns_labels_import_opts o;
    ns_labels_import_report rep;
    ns_store *s = NULL;
    const char *store_opt = NULL;
    int c, quiet = 0, wait = 0;
    ns_status st;
    ns_labels_import_default_opts(&o);
    memset(&rep, 0, sizeof rep);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'n': o.set_name = optarg; break;
        case 'c': o.columns = optarg; break;
        case 'r':
            if (ns_conflict_rule_parse(optarg, &o.on_conflict) != NS_OK) {
                fprintf(stderr, "nightshift labels import: %s\n", ns_errmsg());
                return NS_EXIT_USAGE;
            }
            break;
        case 'S': o.strict = 1; break;
        case 'q': quiet = 1; break;
        case 'w': wait = 1; break;
        case 'h': help(&o); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift labels --help'\n"); return NS_EXIT_USAGE;
        }
    }
    const char *store = ns_cli_store(store_opt);
    if (!store)
        return NS_EXIT_USAGE;
    if (optind >= argc) {
        fprintf(stderr, "nightshift labels import: no CSV or JSON files given\n");
        return NS_EXIT_USAGE;
    }
    /* A label import never creates a store: only an existing one is opened. */
    if ((st = ns_store_open_read(store, &s)) != NS_OK)
        return ns_cli_fail("labels import", st);
    ns_store_close(s);
    s = NULL;
    if ((st = ns_store_open_write(store, 0, wait, &s)) != NS_OK)
        return ns_cli_fail("labels import", st);
    st = ns_labels_import(s, &o, (const char *const *)argv + optind, (size_t)(argc - optind),
                          &rep);
    ns_store_close(s);
    /* One problem is one line that names its file (what a log grep finds);
     * several are a count and an indented list. */
    if (rep.problems.n_total == 1 && rep.problems.n_kept == 1)
        fprintf(stderr, "nightshift labels import: %s\n", rep.problems.msgs[0]);
    else if (rep.problems.n_total) {
        fprintf(stderr, "nightshift labels import: %zu problems:\n", rep.problems.n_total);
        print_problems(&rep.problems);
    }
    if (st != NS_OK) {
        ns_labels_import_report_release(&rep);
        return ns_cli_fail("labels import", st);
    }
    if (!quiet || rep.bad_rows || rep.files_rejected || rep.conflicts_refused) {
        printf("labels import: %zu rows from %zu file%s: %zu imported%s%s, %zu unchanged, %zu bad, "
               "%zu conflict%s (%zu left out), %zu file%s left out\n",
               rep.rows, rep.files, rep.files == 1 ? "" : "s", rep.imported,
               rep.set[0] ? " as " : "", rep.set, rep.unchanged, rep.bad_rows, rep.conflicts,
               rep.conflicts == 1 ? "" : "s", rep.conflicts_refused, rep.files_rejected,
               rep.files_rejected == 1 ? "" : "s");
    }
    int rc = rep.bad_rows || rep.files_rejected || rep.conflicts_refused ? NS_EXIT_FAILURE
                                                                          : NS_EXIT_OK;
    ns_labels_import_report_release(&rep);
    return rc;
}

/* ---- info --------------------------------------------------------------------- */

typedef struct cell {
    char night[NS_NIGHT_LEN];
    char camera[NS_CAMERA_LEN];
    size_t frames, clips;
    long last_clip;
} cell;

static int cmp_cell(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    int c = strcmp(x->night, y->night);
    return c ? c : strcmp(x->camera, y->camera);
}

static int info(int argc, char **argv)
{
    static const struct option longopts[] = {{"store", required_argument, 0, 's'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *store_opt = NULL;
    ns_store *s = NULL;
    ns_labelset *sets = NULL;
    size_t n_sets = 0, n_cells = 0, unknown = 0;
    ns_labelmap m;
    cell *cells = NULL;
    size_t *counts = NULL;
    char shown[4 * SHOW + 8], when[32];
    int c, rc = NS_EXIT_OK;
    ns_status st;
    memset(&m, 0, sizeof m);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's')
            store_opt = optarg;
        else if (c == 'h') {
            printf("usage: nightshift labels info --store DIR\n");
            return NS_EXIT_OK;
        } else
            return NS_EXIT_USAGE;
    }
    const char *store = ns_cli_store(store_opt);
    if (!store)
        return NS_EXIT_USAGE;
    if ((st = ns_store_open_read(store, &s)) != NS_OK ||
        (st = ns_labelsets_read(s, NULL, &sets, &n_sets)) != NS_OK ||
        (st = ns_labels_merge(sets, n_sets, &m)) != NS_OK) {
        rc = ns_cli_fail("labels info", st);
        goto done;
    }
    printf("labels of %s\n", store);
    printf("  label sets   %zu\n", n_sets);
    for (size_t i = 0; i < n_sets; i++) {
        size_t n_src = 1;
        for (const char *p = sets[i].sources; p && *p; p++)
            n_src += *p == '\n';
        ns_format_iso_time(sets[i].created, when);
        ns_text_show(shown, sizeof shown, sets[i].name, SHOW);
        printf("    %s@%u  %zu labels, %zu classes, %s, on-conflict %s, %zu file%s\n", shown,
               sets[i].version, sets[i].n, sets[i].n_classes, when, sets[i].on_conflict, n_src,
               n_src == 1 ? "" : "s");
    }
    size_t total = 0;
    for (size_t i = 0; i < n_sets; i++)
        total += sets[i].n;
    printf("  labelled     %zu frames (%zu labels in all, %zu superseded)\n", m.n, total,
           total - m.n);
    counts = calloc(m.n_classes ? m.n_classes : 1, sizeof *counts);
    cells = calloc(m.n ? m.n : 1, sizeof *cells);
    if (!counts || !cells) {
        fprintf(stderr, "nightshift labels info: out of memory\n");
        rc = NS_EXIT_FAILURE;
        goto done;
    }
    for (size_t i = 0; i < m.n; i++)
        counts[m.cls[i]]++;
    printf("  classes      %zu\n", m.n_classes);
    for (size_t k = 0; k < m.n_classes; k++) {
        ns_text_show(shown, sizeof shown, m.classes[k], SHOW);
        printf("    %8zu  %s\n", counts[k], shown);
    }
    /* Labels are sorted by clip, so each clip's frames are one run. */
    for (size_t i = 0; i < m.n; i++) {
        long row = ns_store_find_clip(s, m.clip[i]);
        if (row < 0) {
            unknown++;
            continue;
        }
        if (i > 0 && strcmp(m.clip[i], m.clip[i - 1]) == 0 && n_cells > 0 &&
            cells[n_cells - 1].last_clip == row) {
            cells[n_cells - 1].frames++;
            continue;
        }
        size_t nc = 0;
        const ns_catalog_clip *cc = ns_store_clips(s, &nc) + row;
        cells[n_cells] = (cell){"", "", 1, 1, row};
        memcpy(cells[n_cells].night, cc->night, NS_NIGHT_LEN);
        memcpy(cells[n_cells].camera, cc->camera, NS_CAMERA_LEN);
        n_cells++;
    }
    qsort(cells, n_cells, sizeof *cells, cmp_cell);
    printf("  per night and camera (frames, clips)\n");
    for (size_t i = 0; i < n_cells;) {
        size_t j = i, frames = 0, clips = 0;
        for (; j < n_cells && cmp_cell(&cells[i], &cells[j]) == 0; j++) {
            frames += cells[j].frames;
            clips += cells[j].clips;
        }
        ns_text_show(shown, sizeof shown, cells[i].camera, SHOW);
        printf("    %s  %-16s %8zu  %6zu\n", cells[i].night, shown, frames, clips);
        i = j;
    }
    if (unknown)
        printf("  %zu labelled frames belong to clips no longer in the store\n", unknown);
done:
    free(counts);
    free(cells);
    ns_labels_release(&m);
    ns_labelsets_free(sets, n_sets);
    ns_store_close(s);
    return rc;
}

int cmd_labels(int argc, char **argv)
{
    ns_labels_import_opts d;
    ns_labels_import_default_opts(&d);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help(&d);
        return argc < 2 ? NS_EXIT_USAGE : NS_EXIT_OK;
    }
    if (strcmp(argv[1], "import") == 0)
        return import(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return info(argc - 1, argv + 1);
    fprintf(stderr, "nightshift labels: unknown subcommand '%s' (import, info)\n", argv[1]);
    return NS_EXIT_USAGE;
}
