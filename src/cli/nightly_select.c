/* nightly_select.c -- the nightly job's fifth stage: when detect found novel
 * conditions tonight, select a labeling batch (`nightshift select` over
 * tonight's detect output, with the registry's production head for the
 * uncertainty term when there is one) and export it for labelers
 * (`nightshift export`).  The batch waiting is exit 4 for the caller.
 *
 * The stage's key covers tonight's detect.h5, the production head and the
 * select options, not the label sets: a night's batch is made once, and
 * labels that come back later do not remake it (they feed the dataset,
 * train and gate stages instead).
 *
 * Outputs: RUNS/select/<night>/selection.csv and EXPORT/tasks-<night>.tar,
 * EXPORT being select.export ("{night}" replaced) or RUNS/labeling.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nightly_run.h"
#include "nightshift/fsutil.h"
#include "nightshift/registry.h"

/* The production head's file, from the registry ("" when none or missing). */
static ns_status production_path(ns_night_run *r, char path[PATH_MAX])
{
    ns_registry reg;
    path[0] = '\0';
    if (!r->m.production_head[0])
        return NS_OK;
    ns_status st = ns_registry_load(r->cfg.store, &reg);
    if (st != NS_OK)
        return st;
    const ns_registry_entry *e = ns_registry_head(&reg, r->m.production_head);
    if (e && access(e->path, R_OK) == 0)
        snprintf(path, PATH_MAX, "%s", e->path);
    ns_registry_release(&reg);
    return NS_OK;
}

static ns_status select_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char budget[32], seed[32], gap[32], head[PATH_MAX];
    const ns_stage_record *det = &r->cur[NS_STAGE_DETECT];
    ns_status st;
    r->batch_path[0] = r->selection_path[0] = '\0';
    r->have_batch = 0;
    r->batch_frames = 0;
    if (r->cfg.select_budget == 0) {
        ns_stage_skip(rec, "select.budget is 0: no labeling batches");
        return NS_OK;
    }
    if (!r->have_det || !r->have[NS_STAGE_DETECT] || det->n_outputs < 2) {
        ns_stage_skip(rec, "no detect result for tonight");
        return NS_OK;
    }
    if (r->det.novel_conditions == 0) {
        ns_stage_skip(rec, "no novel condition tonight");
        return NS_OK;
    }
    /* detect_measure lists summary.json, detect.h5, report.html */
    if ((st = ns_stage_add(&rec->inputs, &rec->n_inputs, "detect", det->outputs[1].sha256)) !=
            NS_OK ||
        (st = production_path(r, head)) != NS_OK)
        return st;
    if (head[0] &&
        (st = ns_stage_add(&rec->inputs, &rec->n_inputs, head, r->m.production_head)) != NS_OK)
        return st;
    char *exp = r->cfg.label_export ? ns_nightly_subst(r->cfg.label_export, r->night) : NULL;
    if (r->cfg.label_export && !exp)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    if (exp)
        snprintf(r->batch_path, sizeof r->batch_path, "%.4000s/tasks-%s.tar", exp, r->night);
    else
        snprintf(r->batch_path, sizeof r->batch_path, "%.4000s/labeling/tasks-%s.tar", r->runs,
                 r->night);
    free(exp);
    snprintf(r->selection_path, sizeof r->selection_path, "%.4000s/select/%s/selection.csv",
             r->runs, r->night);
    snprintf(budget, sizeof budget, "budget=%d", r->cfg.select_budget);
    snprintf(seed, sizeof seed, "seed=%" PRIu64, r->cfg.select_seed);
    snprintf(gap, sizeof gap, "min_gap=%d", r->cfg.select_min_gap);
    const char *kv[] = {budget, seed, gap, r->batch_path};
    return ns_stage_options(rec, kv, 4);
}

/* Rows of a CSV file after its header (quoted newlines are no row ends). */
static ns_status csv_rows(const char *path, uint64_t *rows)
{
    FILE *f = fopen(path, "r");
    uint64_t lines = 0;
    int c, quoted = 0, last = '\n';
    if (!f)
        return ns_error(NS_ERR_NOT_FOUND, "cannot read the selection '%s'", path);
    while ((c = getc(f)) != EOF) {
        if (c == '"')
            quoted = !quoted;
        else if (c == '\n' && !quoted)
            lines++;
        last = c;
    }
    fclose(f);
    lines += last != '\n';
    *rows = lines > 0 ? lines - 1 : 0;
    return NS_OK;
}

static ns_status select_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    char sub[64], dir[PATH_MAX];
    int rc;
    const char *head = rec->n_inputs > 2 ? rec->inputs[1].name : NULL;
    snprintf(sub, sizeof sub, "select/%s", r->night);
    ns_status st = ns_stage_command(r, &a, sub, "select", "--store", r->cfg.store, "--detect",
                                    r->detect_dir, "--out", r->selection_path, NULL);
    if (st != NS_OK)
        return st;
    ns_argv_add(&a, "--budget");
    ns_argv_add(&a, "%d", r->cfg.select_budget);
    ns_argv_add(&a, "--seed");
    ns_argv_add(&a, "%" PRIu64, r->cfg.select_seed);
    ns_argv_add(&a, "--min-gap");
    ns_argv_add(&a, "%d", r->cfg.select_min_gap);
    if (head) {
        ns_argv_add(&a, "--head");
        ns_argv_add(&a, "%s", head);
    }
    if ((st = ns_nightly_spawn(r, "select", a.v, &rc)) != NS_OK ||
        (st = csv_rows(r->selection_path, &r->batch_frames)) != NS_OK)
        return st;
    /* Every candidate already labelled (labels came back for tonight): no
     * batch to export, and no labeling waits. */
    if (r->batch_frames == 0)
        return NS_OK;
    snprintf(dir, sizeof dir, "%s", r->batch_path);
    *strrchr(dir, '/') = '\0';
    if ((st = ns_mkdir_p(dir)) != NS_OK)
        return st;
    ns_stage_command(r, &a, NULL, "export", "--store", r->cfg.store, "--selection",
                     r->selection_path, "--out", r->batch_path, NULL);
    return ns_nightly_spawn(r, "select", a.v, &rc);
}

static ns_status select_measure(ns_night_run *r, ns_stage_record *rec)
{
    ns_status st;
    if ((st = ns_stage_output(r, rec, ns_stage_rel(r, r->selection_path))) != NS_OK ||
        (st = csv_rows(r->selection_path, &r->batch_frames)) != NS_OK)
        return st;
    rec->count = r->batch_frames;
    snprintf(rec->unit, sizeof rec->unit, "frames");
    if (r->batch_frames == 0) {
        free(rec->note);
        if (!(rec->note = strdup("nothing to label: every candidate frame is labelled")))
            return ns_error(NS_ERR_NOMEM, "out of memory");
        return NS_OK;
    }
    if ((st = ns_stage_output(r, rec, ns_stage_rel(r, r->batch_path))) != NS_OK)
        return st;
    r->have_batch = 1;
    return NS_OK;
}

const ns_stage_def ns_stage_select_def = {"select", select_prepare, select_execute,
                                          select_measure};
