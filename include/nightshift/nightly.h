/* nightly.h -- the nightly job's configuration and its run manifest.
 *
 * Config: one YAML file (examples/nightly.yaml documents every key), parsed
 * with libcyaml against a schema: an unknown key, a wrong type or a YAML
 * syntax error is NS_ERR_USAGE with "FILE:LINE:COLUMN: ..." in the message.
 * Every key has a default (ns_nightly_config_defaults); a key the file leaves
 * out keeps it, a command-line flag set after loading wins over both.
 *
 * Manifest: RUNS/<night>/manifest.json (ns_format "nightshift-run-manifest",
 * ns_format_version 1), rewritten atomically after every stage:
 *   {"ns_format", "ns_format_version", "night", "tool_version",
 *    "config_sha256", "started", "updated", "production_head" (the head
 *    registry's production head when the night began, "" when none), "exit_code",
 *    "stages": [{"stage", "status" ("done"|"skipped"|"failed"|"interrupted"),
 *                "key" (SHA-256 over the stage's inputs, options and the tool
 *                version: equal key and intact outputs mean nothing to redo),
 *                "note", "start", "end" (ISO 8601 UTC), "seconds",
 *                "count", "unit",
 *                "verdict" (detect: "shift"|"no-shift"|"insufficient", else ""),
 *                "inputs":  [{"name", "sha256"}],
 *                "outputs": [{"path", "sha256"}]}]}
 * It is JSON and read back with the same YAML parser (JSON is YAML's flow
 * style), so nightshift needs no second parser.
 */
#ifndef NIGHTSHIFT_NIGHTLY_H
#define NIGHTSHIFT_NIGHTLY_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/strbuf.h"

#define NS_MANIFEST_FORMAT "nightshift-run-manifest"
#define NS_MANIFEST_FORMAT_VERSION 1

typedef enum ns_ref_policy {
    NS_REF_FIXED = 0, /* reference.nights, built once */
    NS_REF_LAST = 1,  /* the last reference.last accepted nights before tonight */
} ns_ref_policy;

/* The effective configuration.  Strings are malloc'd (or NULL = unset). */
typedef struct ns_nightly_config {
    char *source;       /* the file it came from ("" for defaults only) */
    char *store;        /* required */
    char *runs;         /* run folders; NULL: STORE/runs */
    char *inbox;        /* the night's clips; "{night}" is replaced */
    char *name_pattern; /* NULL: ingest's default */
    char *manifest;     /* clip manifest CSV; "{night}" is replaced; NULL: none */
    int every;          /* ingest --every (1) */
    double fps;         /* ingest --fps (0: all) */
    char *model;        /* backbone: "default" or a model file */
    char *device;       /* auto|cpu|cuda, for embed, reference and detect */
    ns_ref_policy ref_policy;
    char *ref_nights;   /* fixed: FROM..TO or a list */
    int ref_last;       /* last: N accepted nights (7) */
    int ref_min_nights; /* last: no reference before this many (3) */
    uint64_t ref_frame_cap;
    uint64_t ref_seed;
    double alpha, frame_alpha;
    int perms, min_clips, test_frames;
    uint64_t detect_seed;
    int select_budget;  /* frames per labeling batch (200; 0: no batches) */
    uint64_t select_seed;
    int select_min_gap; /* frames between picks of one clip (3) */
    char *label_export; /* labeling batches' folder, "{night}" replaced; NULL: RUNS/labeling */
    char *train_head;   /* softmax | mlp */
    uint64_t train_seed;
    char *gate_policy;  /* a gate policy file; NULL: gate's default policy */
} ns_nightly_config;

void ns_nightly_config_defaults(ns_nightly_config *c);

/* Loads path over the defaults.  NS_ERR_USAGE "FILE:LINE:COL: ..." for an
 * unknown key, a wrong type, a bad value or a syntax error; NS_ERR_IO when
 * the file cannot be read. */
ns_status ns_nightly_config_load(const char *path, ns_nightly_config *c);

/* Checks what loading alone cannot (required keys, policy needs).  Called
 * after flags are applied. */
ns_status ns_nightly_config_check(const ns_nightly_config *c);

/* Replaces *field with a copy of value (flags override keys). */
ns_status ns_nightly_config_set(char **field, const char *value);

/* The effective config as YAML that loads back to the same config. */
void ns_nightly_config_print(const ns_nightly_config *c, ns_strbuf *out);

/* SHA-256 hex of the printed config (source excluded). */
void ns_nightly_config_hash(const ns_nightly_config *c, char hex[NS_SHA256_HEX]);

/* s with every "{night}" replaced by night, malloc'd (NULL for NULL). */
char *ns_nightly_subst(const char *s, const char *night);

void ns_nightly_config_release(ns_nightly_config *c);

/* ---- inputs and outputs ---------------------------------------------------- */

/* SHA-256 hex of a file's bytes. */
ns_status ns_nightly_file_sha(const char *path, char hex[NS_SHA256_HEX]);

/* SHA-256 hex over a directory tree's listing: every regular file's path
 * relative to dir, size and modification time, in byte order of the paths
 * (hidden names skipped).  Cheap where hashing the clips would not be; the
 * clips' own SHA-256 ids are ingest's business.  *n_files gets the count.
 * A regular file instead of a directory is listed as itself. */
ns_status ns_nightly_tree_digest(const char *dir, char hex[NS_SHA256_HEX], size_t *n_files);

/* SHA-256 hex over NUL-separated strings: the key of a stage's options. */
void ns_nightly_strings_sha(const char *const *parts, size_t n, char hex[NS_SHA256_HEX]);

/* What the nightly job reads back from the stage commands' own summaries
 * (their JSON; unknown keys are skipped, so the writers may add fields). */
typedef struct ns_ingest_brief {
    char status[16];        /* ok, interrupted, error */
    uint64_t inputs, frames_seen, frames_stored;
} ns_ingest_brief;
ns_status ns_ingest_brief_read(const char *summary_json, ns_ingest_brief *out);

typedef struct ns_detect_brief {
    char night[16];
    char verdict[16];       /* "shift", "no-shift", "insufficient" (too few clips to test) */
    int shift;              /* verdict "shift" */
    double p_value, mmd2;   /* NaN when the file says null */
    uint64_t clips, frames, novel_frames, conditions, novel_conditions;
} ns_detect_brief;
ns_status ns_detect_brief_read(const char *summary_json, ns_detect_brief *out);

/* The verdict of a gate summary.json ("promote", "reject", "insufficient"). */
ns_status ns_gate_verdict_read(const char *summary_json, char verdict[16]);

/* ---- the run manifest ---------------------------------------------------- */

#define NS_STAGE_NAME_LEN 32

typedef struct ns_stage_file {
    char *name;                 /* input name, or output path relative to RUNS */
    char sha256[NS_SHA256_HEX]; /* hex */
} ns_stage_file;

typedef struct ns_stage_record {
    char stage[NS_STAGE_NAME_LEN];
    char status[16];            /* done, skipped, failed, interrupted */
    char key[NS_SHA256_HEX];
    char *note;                 /* one line for people, may be NULL */
    char start[32], end[32];    /* ISO 8601 UTC */
    double seconds;
    uint64_t count;             /* items the stage handled */
    char unit[16];              /* what count counts */
    char verdict[16];           /* detect: its summary's verdict; else "" */
    size_t n_inputs, n_outputs;
    ns_stage_file *inputs, *outputs;
} ns_stage_record;

typedef struct ns_run_manifest {
    char night[16];
    char tool_version[32];
    char config_sha256[NS_SHA256_HEX];
    char started[32], updated[32];
    char production_head[NS_SHA256_HEX]; /* the registry's, when the night began ("" none) */
    int exit_code;              /* -1 while running */
    size_t n_stages;
    ns_stage_record *stages;
} ns_run_manifest;

/* Reads path; a missing file gives an empty manifest (n_stages 0) and NS_OK. */
ns_status ns_run_manifest_load(const char *path, ns_run_manifest *m);
/* Writes path atomically (temp, fsync, rename, fsync the directory). */
ns_status ns_run_manifest_save(const ns_run_manifest *m, const char *path);
/* The record of a stage, or NULL. */
ns_stage_record *ns_run_manifest_find(ns_run_manifest *m, const char *stage);
/* Replaces (or appends) the record of rec->stage with a deep copy of rec. */
ns_status ns_run_manifest_put(ns_run_manifest *m, const ns_stage_record *rec);
void ns_run_manifest_release(ns_run_manifest *m);

/* Adds a file to a record (deep copies). */
ns_status ns_stage_add(ns_stage_file **files, size_t *n, const char *name, const char *sha256);
void ns_stage_record_release(ns_stage_record *r);

/* "YYYY-MM-DDTHH:MM:SSZ" for unix seconds t. */
void ns_nightly_iso(double t, char buf[32]);

#endif
