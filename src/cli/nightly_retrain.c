/* nightly_retrain.c -- the nightly job's last three stages, run when new
 * labels have arrived since the last dataset: dataset build, train, gate.
 *
 * "New labels" is content-addressed: the dataset's file is named after the
 * key of the store's label sets (their listing), the model and the options,
 * so a night whose labels were already built from skips all three, and a
 * night killed half-way resumes from its own manifest.  The candidate is
 * registered in the head registry; the gate compares it with the registry's
 * production head, and a PROMOTE verdict is exit 5 for the caller.  Nobody
 * is promoted here: that stays `nightshift registry promote`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nightly_run.h"
#include "nightshift/fsutil.h"
#include "nightshift/head.h"
#include "nightshift/registry.h"

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Done tonight already (the manifest decides, not the file's presence). */
static int done_tonight(ns_night_run *r, const char *stage, const char *key)
{
    ns_stage_record *old = ns_run_manifest_find(&r->m, stage);
    return old && !strcmp(old->status, "done") && !strcmp(old->key, key);
}

/* ---- dataset ----------------------------------------------------------------- */

static ns_status dataset_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char dir[PATH_MAX + 16], hex[NS_SHA256_HEX];
    size_t n_files = 0;
    ns_status st;
    r->dataset_path[0] = '\0';
    snprintf(dir, sizeof dir, "%s/labels", r->cfg.store);
    st = ns_nightly_tree_digest(dir, hex, &n_files);
    if (st == NS_ERR_NOT_FOUND || (st == NS_OK && n_files == 0)) {
        ns_error_clear();
        ns_stage_skip(rec, "no labels in the store yet");
        return NS_OK;
    }
    if (st != NS_OK || (st = ns_stage_add(&rec->inputs, &rec->n_inputs, "labels", hex)) != NS_OK)
        return st;
    const char *model = strcmp(r->cfg.model, "default") ? r->cfg.model : "default";
    const char *kv[] = {model};
    if ((st = ns_stage_options(rec, kv, 1)) != NS_OK)
        return st;
    snprintf(r->dataset_path, sizeof r->dataset_path, "%.4000s/datasets/ds-%.16s.h5", r->runs,
             rec->key);
    if (is_file(r->dataset_path) && !done_tonight(r, "dataset", rec->key)) {
        char note[160];
        snprintf(note, sizeof note, "no new labels since %.100s was built", ns_stage_rel(r, r->dataset_path));
        r->dataset_path[0] = '\0';
        ns_stage_skip(rec, note);
    }
    return NS_OK;
}

static ns_status dataset_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_status st = ns_stage_command(r, &a, "datasets", "dataset", "build", "--store",
                                    r->cfg.store, NULL);
    if (st != NS_OK)
        return st;
    ns_argv_add(&a, "--nights");
    ns_argv_add(&a, "..%s", r->night);
    ns_argv_add(&a, "--model");
    ns_argv_add(&a, "%s", r->cfg.model);
    ns_argv_add(&a, "--out");
    ns_argv_add(&a, "%s", r->dataset_path);
    return ns_nightly_spawn(r, "dataset", a.v, &rc);
}

static ns_status dataset_measure(ns_night_run *r, ns_stage_record *rec)
{
    rec->count = 1;
    snprintf(rec->unit, sizeof rec->unit, "file");
    return ns_stage_output(r, rec, ns_stage_rel(r, r->dataset_path));
}

/* ---- train -------------------------------------------------------------------- */

static ns_status train_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char seed[32];
    ns_status st;
    r->head_path[0] = r->head_id[0] = '\0';
    if (!r->dataset_path[0]) {
        ns_stage_skip(rec, "no new dataset tonight");
        return NS_OK;
    }
    if ((st = ns_stage_add(&rec->inputs, &rec->n_inputs, "dataset",
                           ns_stage_upstream(r, NS_STAGE_DATASET))) != NS_OK)
        return st;
    snprintf(seed, sizeof seed, "%" PRIu64, r->cfg.train_seed);
    const char *kv[] = {r->cfg.train_head, seed};
    if ((st = ns_stage_options(rec, kv, 2)) != NS_OK)
        return st;
    snprintf(r->head_path, sizeof r->head_path, "%.4000s/heads/head-%.16s.h5", r->runs, rec->key);
    return NS_OK;
}

static ns_status train_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_status st = ns_stage_command(r, &a, "heads", "train", "--dataset", r->dataset_path, NULL);
    if (st != NS_OK)
        return st;
    ns_argv_add(&a, "--head");
    ns_argv_add(&a, "%s", r->cfg.train_head);
    ns_argv_add(&a, "--seed");
    ns_argv_add(&a, "%" PRIu64, r->cfg.train_seed);
    ns_argv_add(&a, "--device");
    ns_argv_add(&a, "%s", r->cfg.device);
    ns_argv_add(&a, "--quiet");
    ns_argv_add(&a, "--out");
    ns_argv_add(&a, "%s", r->head_path);
    return ns_nightly_spawn(r, "train", a.v, &rc);
}

/* The candidate's id, and its entry in the registry (added once). */
static ns_status train_measure(ns_night_run *r, ns_stage_record *rec)
{
    ns_head h;
    ns_lineage lin;
    ns_status st = ns_stage_output(r, rec, ns_stage_rel(r, r->head_path));
    if (st != NS_OK)
        return st;
    memset(&h, 0, sizeof h);
    if ((st = ns_head_load(r->head_path, &h)) != NS_OK)
        return st;
    memset(&lin, 0, sizeof lin);
    snprintf(r->head_id, sizeof r->head_id, "%s", h.head_id);
    snprintf(lin.dataset_id, sizeof lin.dataset_id, "%s", h.dataset_id);
    snprintf(lin.model_id, sizeof lin.model_id, "%s", h.model_id);
    snprintf(lin.label_sets, sizeof lin.label_sets, "%s", h.label_sets ? h.label_sets : "");
    snprintf(lin.train_config_sha256, sizeof lin.train_config_sha256, "%s",
             rec->n_inputs > 1 ? rec->inputs[1].sha256 : "");
    ns_head_release(&h);
    st = ns_registry_add(r->cfg.store, r->head_id, r->head_path, &lin, NULL);
    if (st == NS_ERR_EXISTS) {
        ns_error_clear();
        st = NS_OK;
    }
    rec->count = 1;
    snprintf(rec->unit, sizeof rec->unit, "head");
    return st;
}

/* ---- gate --------------------------------------------------------------------- */

static ns_status gate_prepare(ns_night_run *r, ns_stage_record *rec)
{
    char hex[NS_SHA256_HEX];
    ns_registry reg;
    ns_status st;
    r->gate_verdict[0] = '\0';
    snprintf(r->gate_dir, sizeof r->gate_dir, "%.4000s/gate/%s", r->runs, r->night);
    if (!r->head_path[0]) {
        ns_stage_skip(rec, "no new candidate tonight");
        return NS_OK;
    }
    if ((st = ns_registry_load(r->cfg.store, &reg)) != NS_OK)
        return st;
    const ns_registry_entry *prod = reg.production[0] ? ns_registry_head(&reg, reg.production)
                                                      : NULL;
    const char *why = !reg.production[0]           ? "no production head yet: promote the first "
                                                     "one with nightshift registry promote --force"
                      : !prod || !is_file(prod->path) ? "the production head's file is not at "
                                                        "the path the registry names"
                      : !strcmp(reg.production, r->head_id) ? "the candidate is the production head"
                                                             : NULL;
    if (why) {
        ns_registry_release(&reg);
        ns_stage_skip(rec, why);
        return NS_OK;
    }
    st = ns_stage_add(&rec->inputs, &rec->n_inputs, "candidate",
                      ns_stage_upstream(r, NS_STAGE_TRAIN));
    if (st == NS_OK)
        st = ns_stage_add(&rec->inputs, &rec->n_inputs, prod->path, reg.production);
    if (st == NS_OK)
        st = ns_stage_add(&rec->inputs, &rec->n_inputs, "dataset",
                          ns_stage_upstream(r, NS_STAGE_DATASET));
    if (st == NS_OK && r->cfg.gate_policy) {
        if ((st = ns_nightly_file_sha(r->cfg.gate_policy, hex)) == NS_OK)
            st = ns_stage_add(&rec->inputs, &rec->n_inputs, r->cfg.gate_policy, hex);
    }
    ns_registry_release(&reg);
    if (st == NS_OK)
        ns_stage_key(rec, NULL);
    return st;
}

static ns_status gate_execute(ns_night_run *r, ns_stage_record *rec)
{
    ns_argv a;
    int rc;
    ns_status st = ns_stage_command(r, &a, "gate", "gate", "--candidate", r->head_path,
                                    "--production", rec->inputs[1].name, "--dataset",
                                    r->dataset_path, "--store", r->cfg.store, NULL);
    if (st != NS_OK)
        return st;
    if (r->cfg.gate_policy) {
        ns_argv_add(&a, "--policy");
        ns_argv_add(&a, "%s", r->cfg.gate_policy);
    }
    ns_argv_add(&a, "--out");
    ns_argv_add(&a, "%s", r->gate_dir);
    st = ns_nightly_spawn(r, "gate", a.v, &rc);
    /* REJECT (3) and INSUFFICIENT (4) are verdicts, written in full: done. */
    return rc == NS_EXIT_SHIFT || rc == NS_EXIT_INSUFFICIENT ? NS_OK : st;
}

static ns_status gate_measure(ns_night_run *r, ns_stage_record *rec)
{
    char relp[96], path[2 * PATH_MAX];
    ns_status st;
    snprintf(relp, sizeof relp, "gate/%s/summary.json", r->night);
    if ((st = ns_stage_output(r, rec, relp)) != NS_OK)
        return st;
    snprintf(relp, sizeof relp, "gate/%s/report.html", r->night);
    if ((st = ns_stage_output(r, rec, relp)) != NS_OK)
        return st;
    snprintf(path, sizeof path, "%s/summary.json", r->gate_dir);
    if ((st = ns_gate_verdict_read(path, r->gate_verdict)) != NS_OK)
        return st;
    snprintf(rec->verdict, sizeof rec->verdict, "%s", r->gate_verdict);
    rec->count = 1;
    snprintf(rec->unit, sizeof rec->unit, "verdict");
    return NS_OK;
}

const ns_stage_def ns_stage_dataset_def = {"dataset", dataset_prepare, dataset_execute,
                                           dataset_measure};
const ns_stage_def ns_stage_train_def = {"train", train_prepare, train_execute, train_measure};
const ns_stage_def ns_stage_gate_def = {"gate", gate_prepare, gate_execute, gate_measure};
