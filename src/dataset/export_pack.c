/* export_pack.c -- the labeling tar: images, tasks.csv, Label Studio JSON,
 * CVAT XML, README (export.h). */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "export_internal.h"
#include "nightshift/csv.h"
#include "nightshift/fsutil.h"
#include "nightshift/report.h"
#include "nightshift/strbuf.h"

static const char README[] =
    "nightshift labeling package\n"
    "===========================\n\n"
    "images/       the frames to label (names are generated; the clip and frame\n"
    "              of each are in tasks.csv)\n"
    "tasks.csv     one row per image: file, clip (SHA-256), frame, camera, night,\n"
    "              reason it was chosen, the production head's suggestion (if\n"
    "              any), an empty label column\n"
    "labelstudio.json  Label Studio tasks (data.image, data.clip, data.frame)\n"
    "cvat.xml      CVAT \"images 1.1\" annotations with the class list\n\n"
    "Returning labels\n"
    "----------------\n"
    "Either fill the label column of tasks.csv (one class name per row; delete\n"
    "rows you cannot label) and send the file back, or export the annotated\n"
    "project from Label Studio as JSON.  Then:\n\n"
    "    nightshift labels import --store STORE --set NAME tasks.csv\n"
    "    nightshift labels import --store STORE --set NAME export.json\n\n"
    "Keep the clip and frame columns as they are: they name the frame.  Rows with\n"
    "an empty label are reported and left out.  An import never overwrites an\n"
    "earlier label silently (--on-conflict keep|replace|fail).\n";

static ns_status add_entry(struct archive *a, const char *name, const void *data, size_t len,
                           time_t mtime, const char *path)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return ns_error(NS_ERR_NOMEM, "export: out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, mtime, 0);
    ns_status st = NS_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len))
        st = ns_error(NS_ERR_IO, "'%s': cannot write %s: %s", path, name, archive_error_string(a));
    archive_entry_free(e);
    return st;
}

static void build_docs(const ns_frameset *fs, const ns_labelmap *lm, const task *t, size_t n,
                       ns_strbuf *csv, ns_strbuf *js, ns_strbuf *xml)
{
    ns_strbuf_printf(csv, "file,clip,frame,camera,night,reason,suggested,label,jpeg\n");
    ns_strbuf_printf(js, "[");
    ns_strbuf_printf(xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n"
                          "  <version>1.1</version>\n  <meta>\n    <task>\n"
                          "      <name>nightshift</name>\n      <size>%zu</size>\n"
                          "      <mode>annotation</mode>\n      <labels>\n", n);
    /* classes: the store's labels, then the head's suggestions not yet in them */
    for (size_t c = 0; c < lm->n_classes; c++) {
        ns_strbuf_printf(xml, "        <label><name>");
        ns_report_html_escape(xml, lm->classes[c]);
        ns_strbuf_printf(xml, "</name><attributes></attributes></label>\n");
    }
    for (size_t k = 0; k < n; k++) {
        int seen = !t[k].suggested[0];
        for (size_t c = 0; c < lm->n_classes && !seen; c++)
            seen = strcmp(lm->classes[c], t[k].suggested) == 0;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(t[j].suggested, t[k].suggested) == 0;
        if (!seen) {
            ns_strbuf_printf(xml, "        <label><name>");
            ns_report_html_escape(xml, t[k].suggested);
            ns_strbuf_printf(xml, "</name><attributes></attributes></label>\n");
        }
    }
    ns_strbuf_printf(xml, "      </labels>\n    </task>\n  </meta>\n");
    for (size_t k = 0; k < n; k++) {
        size_t r = t[k].fs_row;
        const ns_fs_clip *c = &fs->clips[fs->clip[r]];
        ns_csv_cell(csv, t[k].file);
        ns_strbuf_printf(csv, ",%s,%u,", c->sha256, fs->index[r]);
        ns_csv_cell(csv, c->camera);
        ns_strbuf_printf(csv, ",");
        ns_csv_cell(csv, c->night);
        ns_strbuf_printf(csv, ",");
        ns_csv_cell(csv, t[k].reason);
        ns_strbuf_printf(csv, ",");
        ns_csv_cell(csv, t[k].suggested);
        ns_strbuf_printf(csv, ",,%s\n", t[k].original ? "original" : "stored");

        ns_strbuf_printf(js, "%s\n  {\"data\": {\"image\": ", k ? "," : "");
        ns_strbuf_json_str(js, t[k].file);
        ns_strbuf_printf(js, ", \"clip\": \"%s\", \"frame\": %u, \"reason\": ", c->sha256,
                         fs->index[r]);
        ns_strbuf_json_str(js, t[k].reason);
        ns_strbuf_printf(js, ", \"camera\": ");
        ns_strbuf_json_str(js, c->camera);
        ns_strbuf_printf(js, ", \"suggested\": ");
        ns_strbuf_json_str(js, t[k].suggested);
        ns_strbuf_printf(js, "}}");

        ns_strbuf_printf(xml, "  <image id=\"%zu\" name=\"", k);
        ns_report_html_escape(xml, t[k].file);
        ns_strbuf_printf(xml, "\" width=\"%d\" height=\"%d\"></image>\n", t[k].width,
                         t[k].height);
    }
    ns_strbuf_printf(js, "\n]\n");
    ns_strbuf_printf(xml, "</annotations>\n");
}

ns_status ns_export_write_package(const ns_frameset *fs, const ns_labelmap *lm, const task *t,
                                  size_t n, const char *path)
{
    ns_strbuf csv = {0}, js = {0}, xml = {0};
    char tmp[4096];
    struct archive *a = NULL;
    ns_status st;
    int opened = 0;
    time_t now = time(NULL);
    build_docs(fs, lm, t, n, &csv, &js, &xml);
    if ((st = ns_strbuf_status(&csv)) != NS_OK || (st = ns_strbuf_status(&js)) != NS_OK ||
        (st = ns_strbuf_status(&xml)) != NS_OK || (st = ns_tmp_name(path, tmp, sizeof tmp)) != NS_OK)
        goto done;
    opened = 1;
    a = archive_write_new();
    if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) {
        st = ns_error(NS_ERR_INTERNAL, "export: cannot start a tar writer");
        goto done;
    }
    if (archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
        st = ns_error(NS_ERR_IO, "cannot create '%s': %s", tmp, archive_error_string(a));
        goto done;
    }
    if ((st = add_entry(a, "README.txt", README, sizeof README - 1, now, path)) != NS_OK ||
        (st = add_entry(a, "tasks.csv", csv.data, csv.len, now, path)) != NS_OK ||
        (st = add_entry(a, "labelstudio.json", js.data, js.len, now, path)) != NS_OK ||
        (st = add_entry(a, "cvat.xml", xml.data, xml.len, now, path)) != NS_OK)
        goto done;
    for (size_t k = 0; k < n; k++)
        if ((st = add_entry(a, t[k].file, t[k].jpg, t[k].jpg_len, now, path)) != NS_OK)
            goto done;
    if (archive_write_close(a) != ARCHIVE_OK) {
        st = ns_error(NS_ERR_IO, "'%s': cannot finish the tar: %s", tmp, archive_error_string(a));
        goto done;
    }
    if ((st = ns_fsync_path(tmp)) != NS_OK || (st = ns_atomic_rename(tmp, path)) != NS_OK)
        goto done;
    opened = 0;
done:
    if (a)
        archive_write_free(a);
    if (opened)
        unlink(tmp);
    ns_strbuf_release(&csv);
    ns_strbuf_release(&js);
    ns_strbuf_release(&xml);
    return st;
}
