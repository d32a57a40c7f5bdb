/* registry.h -- the head registry: which classifier head is in production,
 * which is the candidate, and where each came from.
 *
 * File STORE/registry.json (ns_format "nightshift-registry", version 1):
 *   {"ns_format": ..., "ns_format_version": 1, "entries": [
 *     {"seq", "time" (ISO 8601 UTC), "action" ("add"|"promote"|"rollback"),
 *      "head_id" (64 hex: head.h's content id), "path", "production_before",
 *      "forced" (true|false), "reason", "gate_report", "gate_report_sha256",
 *      "lineage": {"dataset_id", "label_sets", "model_id", "train_config_sha256"}},
 *     ...]}
 * one entry per line.  Append-only: a change rewrites the file atomically
 * (temp, fsync, rename) with the earlier bytes unchanged and one entry more,
 * under STORE/registry.lock.  The aliases are the replay of the entries:
 * "add" makes a head the candidate; "promote" makes it production (and
 * clears the candidate when it was that head); "rollback" returns
 * production to the head before the current one.
 *
 * A promote is refused unless a gate report says PROMOTE for that head
 * against the current production head (any head while the registry has no
 * production yet); --force overrides with a reason, which is recorded.  What
 * the registry reads from `nightshift gate`'s summary.json (other keys are
 * ignored; the lineage keys inside "candidate" are optional):
 *   {"verdict": "promote"|"reject"|"insufficient" (any case), "dataset_id",
 *    "candidate": {"head_id", "path", "dataset_id", "label_sets", "model_id",
 *                  "train_config_sha256"},
 *    "production": {"head_id"}   (absent, null or "" when there was none)}
 */
#ifndef NIGHTSHIFT_REGISTRY_H
#define NIGHTSHIFT_REGISTRY_H

#include <stddef.h>

#include "nightshift/sha256.h"
#include "nightshift/status.h"

#define NS_REGISTRY_FORMAT "nightshift-registry"
#define NS_REGISTRY_FORMAT_VERSION 1

typedef struct ns_lineage {
    char dataset_id[NS_SHA256_HEX];
    char label_sets[512];
    char model_id[NS_SHA256_HEX];
    char train_config_sha256[NS_SHA256_HEX];
} ns_lineage;

typedef struct ns_registry_entry {
    unsigned seq;
    char time[32];
    char action[16];
    char head_id[NS_SHA256_HEX];
    char path[1024];
    char production_before[NS_SHA256_HEX];
    int forced;
    char reason[512];
    char gate_report[1024];
    char gate_report_sha256[NS_SHA256_HEX];
    ns_lineage lineage;
} ns_registry_entry;

typedef struct ns_registry {
    size_t n;
    ns_registry_entry *entries;
    /* the replay */
    char production[NS_SHA256_HEX]; /* "" when none */
    char candidate[NS_SHA256_HEX];  /* "" when none */
} ns_registry;

/* Reads STORE/registry.json; a store without one gives an empty registry. */
ns_status ns_registry_load(const char *store, ns_registry *out);
void ns_registry_release(ns_registry *r);

/* The entry that added head_id (its lineage), or NULL. */
const ns_registry_entry *ns_registry_head(const ns_registry *r, const char *head_id);
/* "production", "candidate", a full id or a unique prefix of >= 8 hex digits
 * to a head id; NS_ERR_NOT_FOUND / NS_ERR_USAGE (ambiguous) otherwise. */
ns_status ns_registry_resolve(const ns_registry *r, const char *name, char id[NS_SHA256_HEX]);

/* Registers a head as the candidate. */
ns_status ns_registry_add(const char *store, const char *head_id, const char *path,
                          const ns_lineage *lin, ns_registry_entry *out);

/* Promotes head (a name for ns_registry_resolve, or a new id when the gate
 * report names it) on the strength of gate_summary (a summary.json or the
 * folder holding it; NULL only with force).  Refusals are NS_ERR_USAGE with
 * the reason; force (with a non-empty reason) overrides them. */
ns_status ns_registry_promote(const char *store, const char *head, const char *gate_summary,
                              int force, const char *reason, ns_registry_entry *out);

/* Production back to the head before it (NS_ERR_USAGE when there is none). */
ns_status ns_registry_rollback(const char *store, const char *reason, ns_registry_entry *out);

#endif
