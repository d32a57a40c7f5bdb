/* registry.c -- STORE/registry.json: an append-only list of what happened to
 * the heads (added, promoted, rolled back), replayed into the aliases. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nightshift/fsutil.h"
#include "nightshift/nightly.h"
#include "nightshift/registry.h"
#include "nightshift/strbuf.h"
#include "yaml.h"

#define OPT CYAML_FLAG_OPTIONAL
#define STR(key, st, m) \
    CYAML_FIELD_STRING_PTR(key, OPT | CYAML_FLAG_POINTER_NULL_STR, st, m, 0, CYAML_UNLIMITED)

typedef struct raw_lineage {
    char *dataset_id, *label_sets, *model_id, *train_config_sha256;
} raw_lineage;

static const cyaml_schema_field_t lineage_fields[] = {
    STR("dataset_id", raw_lineage, dataset_id), STR("label_sets", raw_lineage, label_sets),
    STR("model_id", raw_lineage, model_id),
    STR("train_config_sha256", raw_lineage, train_config_sha256), CYAML_FIELD_END};

typedef struct raw_entry {
    char *seq, *time, *action, *head_id, *path, *production_before, *forced, *reason,
        *gate_report, *gate_report_sha256;
    raw_lineage *lineage;
} raw_entry;

static const cyaml_schema_field_t entry_fields[] = {
    STR("seq", raw_entry, seq),
    STR("time", raw_entry, time),
    STR("action", raw_entry, action),
    STR("head_id", raw_entry, head_id),
    STR("path", raw_entry, path),
    STR("production_before", raw_entry, production_before),
    STR("forced", raw_entry, forced),
    STR("reason", raw_entry, reason),
    STR("gate_report", raw_entry, gate_report),
    STR("gate_report_sha256", raw_entry, gate_report_sha256),
    CYAML_FIELD_MAPPING_PTR("lineage", OPT, raw_entry, lineage, lineage_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t entry_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_entry, entry_fields)};

typedef struct raw_registry {
    char *format, *version;
    raw_entry *entries;
    unsigned entries_count;
} raw_registry;

static const cyaml_schema_field_t registry_fields[] = {
    STR("ns_format", raw_registry, format), STR("ns_format_version", raw_registry, version),
    CYAML_FIELD_SEQUENCE("entries", CYAML_FLAG_POINTER | OPT, raw_registry, entries,
                         &entry_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END};
static const cyaml_schema_value_t registry_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_registry, registry_fields)};

/* What a gate summary tells the registry. */
typedef struct raw_gate_head {
    char *head_id, *path, *dataset_id, *label_sets, *model_id, *train_config_sha256;
} raw_gate_head;

static const cyaml_schema_field_t gate_head_fields[] = {
    STR("head_id", raw_gate_head, head_id), STR("path", raw_gate_head, path),
    STR("dataset_id", raw_gate_head, dataset_id), STR("label_sets", raw_gate_head, label_sets),
    STR("model_id", raw_gate_head, model_id),
    STR("train_config_sha256", raw_gate_head, train_config_sha256), CYAML_FIELD_END};

typedef struct raw_gate {
    char *verdict, *dataset_id;
    raw_gate_head *candidate, *production;
} raw_gate;

static const cyaml_schema_field_t gate_fields[] = {
    STR("verdict", raw_gate, verdict),
    STR("dataset_id", raw_gate, dataset_id),
    CYAML_FIELD_MAPPING_PTR("candidate", OPT | CYAML_FLAG_POINTER_NULL_STR, raw_gate, candidate,
                            gate_head_fields),
    CYAML_FIELD_MAPPING_PTR("production", OPT | CYAML_FLAG_POINTER_NULL_STR, raw_gate,
                            production, gate_head_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t gate_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_gate, gate_fields)};

static void copy_s(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}
#define COPY(dst, src) copy_s((dst), sizeof(dst), (src))

static void registry_path(const char *store, char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", store, name);
}

static void replay(ns_registry *r)
{
    /* Productions in order; a rollback steps back one. */
    size_t depth = 0;
    char (*stack)[NS_SHA256_HEX] = calloc(r->n + 1, sizeof *stack);
    r->production[0] = r->candidate[0] = '\0';
    for (size_t i = 0; stack && i < r->n; i++) {
        const ns_registry_entry *e = &r->entries[i];
        if (!strcmp(e->action, "add")) {
            COPY(r->candidate, e->head_id);
        } else if (!strcmp(e->action, "promote")) {
            COPY(stack[depth], e->head_id);
            depth++;
            if (!strcmp(r->candidate, e->head_id))
                r->candidate[0] = '\0';
        } else if (!strcmp(e->action, "rollback") && depth > 0) {
            depth--;
        }
    }
    if (stack && depth > 0)
        COPY(r->production, stack[depth - 1]);
    free(stack);
}

ns_status ns_registry_load(const char *store, ns_registry *out)
{
    char path[PATH_MAX];
    raw_registry *raw = NULL;
    memset(out, 0, sizeof *out);
    registry_path(store, path, sizeof path, "registry.json");
    ns_status st = ns_yaml_load(path, &registry_schema, (void **)&raw, 0, NS_ERR_CORRUPT);
    if (st == NS_ERR_NOT_FOUND) {
        ns_error_clear();
        return NS_OK;
    }
    if (st != NS_OK)
        return st;
    if (!raw || !raw->format || strcmp(raw->format, NS_REGISTRY_FORMAT) != 0 || !raw->version ||
        atoi(raw->version) != NS_REGISTRY_FORMAT_VERSION) {
        st = ns_error(NS_ERR_FORMAT, "'%s' is not a nightshift registry of version %d", path,
                      NS_REGISTRY_FORMAT_VERSION);
        goto done;
    }
    out->entries = calloc(raw->entries_count + 1, sizeof *out->entries);
    if (!out->entries) {
        st = ns_error(NS_ERR_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    for (unsigned i = 0; i < raw->entries_count; i++) {
        const raw_entry *s = &raw->entries[i];
        ns_registry_entry *e = &out->entries[i];
        e->seq = s->seq ? (unsigned)strtoul(s->seq, NULL, 10) : i + 1;
        COPY(e->time, s->time);
        COPY(e->action, s->action);
        COPY(e->head_id, s->head_id);
        COPY(e->path, s->path);
        COPY(e->production_before, s->production_before);
        e->forced = s->forced && !strcmp(s->forced, "true");
        COPY(e->reason, s->reason);
        COPY(e->gate_report, s->gate_report);
        COPY(e->gate_report_sha256, s->gate_report_sha256);
        if (s->lineage) {
            COPY(e->lineage.dataset_id, s->lineage->dataset_id);
            COPY(e->lineage.label_sets, s->lineage->label_sets);
            COPY(e->lineage.model_id, s->lineage->model_id);
            COPY(e->lineage.train_config_sha256, s->lineage->train_config_sha256);
        }
    }
    out->n = raw->entries_count;
    replay(out);
done:
    ns_yaml_free(&registry_schema, raw);
    if (st != NS_OK)
        ns_registry_release(out);
    return st;
}

void ns_registry_release(ns_registry *r)
{
    if (!r)
        return;
    free(r->entries);
    memset(r, 0, sizeof *r);
}

const ns_registry_entry *ns_registry_head(const ns_registry *r, const char *head_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].action, "add") && !strcmp(r->entries[i].head_id, head_id))
            return &r->entries[i];
    return NULL;
}

static int is_hex(const char *s, size_t min)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
            return 0;
    return n >= min && n <= 64;
}

ns_status ns_registry_resolve(const ns_registry *r, const char *name, char id[NS_SHA256_HEX])
{
    const char *alias = !strcmp(name, "production") ? r->production
                        : !strcmp(name, "candidate") ? r->candidate
                                                     : NULL;
    const char *found = NULL;
    size_t n = strlen(name);
    id[0] = '\0';
    if (alias) {
        if (!alias[0])
            return ns_error(NS_ERR_NOT_FOUND, "the registry has no %s head", name);
        snprintf(id, NS_SHA256_HEX, "%s", alias);
        return NS_OK;
    }
    if (!is_hex(name, 8))
        return ns_error(NS_ERR_USAGE, "'%s' is no head id (64 hex digits, or a prefix of 8 or "
                                      "more) nor production or candidate", name);
    for (size_t i = 0; i < r->n; i++) {
        const char *h = r->entries[i].head_id;
        if (strncmp(h, name, n) != 0)
            continue;
        if (found && strcmp(found, h) != 0)
            return ns_error(NS_ERR_USAGE, "head id prefix '%s' is ambiguous", name);
        found = h;
    }
    if (!found)
        return ns_error(NS_ERR_NOT_FOUND, "no head %s in the registry", name);
    snprintf(id, NS_SHA256_HEX, "%s", found);
    return NS_OK;
}

static void iso_now(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ns_nightly_iso((double)ts.tv_sec, buf);
}

static void entry_json(ns_strbuf *b, const ns_registry_entry *e)
{
    ns_strbuf_printf(b, "  {\"seq\": %u, \"time\": \"%s\", \"action\": \"%s\", \"head_id\": \"%s\", "
                        "\"path\": ",
                     e->seq, e->time, e->action, e->head_id);
    ns_strbuf_json_str(b, e->path);
    ns_strbuf_printf(b, ", \"production_before\": \"%s\", \"forced\": %s, \"reason\": ",
                     e->production_before, e->forced ? "true" : "false");
    ns_strbuf_json_str(b, e->reason);
    ns_strbuf_printf(b, ", \"gate_report\": ");
    ns_strbuf_json_str(b, e->gate_report);
    ns_strbuf_printf(b, ", \"gate_report_sha256\": \"%s\", \"lineage\": {\"dataset_id\": \"%s\", "
                        "\"label_sets\": ",
                     e->gate_report_sha256, e->lineage.dataset_id);
    ns_strbuf_json_str(b, e->lineage.label_sets);
    ns_strbuf_printf(b, ", \"model_id\": \"%s\", \"train_config_sha256\": \"%s\"}}",
                     e->lineage.model_id, e->lineage.train_config_sha256);
}

static const char closing[] = "\n]}\n";

/* Appends e (seq filled in) to the file: the earlier bytes stay as they are. */
static ns_status append(const char *store, ns_registry *r, ns_registry_entry *e)
{
    char path[PATH_MAX];
    ns_strbuf b = {0};
    FILE *f = NULL;
    ns_status st = NS_OK;
    registry_path(store, path, sizeof path, "registry.json");
    e->seq = (unsigned)r->n + 1;
    iso_now(e->time);
    f = fopen(path, "rb");
    if (f) {
        char buf[65536];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0)
            ns_strbuf_append(&b, buf, k);
        fclose(f);
        size_t cl = sizeof closing - 1;
        if (b.len < cl || memcmp(b.data + b.len - cl, closing, cl) != 0) {
            st = ns_error(NS_ERR_CORRUPT, "'%s' does not end as a registry should; not touched",
                          path);
            goto done;
        }
        b.len -= cl;
        b.data[b.len] = '\0';
        ns_strbuf_printf(&b, "%s\n", r->n ? "," : "");
    } else if (errno == ENOENT) {
        ns_strbuf_printf(&b, "{\"ns_format\": \"%s\", \"ns_format_version\": %d, \"entries\": [\n",
                         NS_REGISTRY_FORMAT, NS_REGISTRY_FORMAT_VERSION);
    } else {
        st = ns_error(NS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto done;
    }
    entry_json(&b, e);
    ns_strbuf_append(&b, closing, sizeof closing - 1);
    if ((st = ns_strbuf_status(&b)) == NS_OK)
        st = ns_write_file_atomic(path, b.data, b.len);
done:
    ns_strbuf_release(&b);
    return st;
}

/* Loads the registry under its lock; the caller appends and unlocks. */
static ns_status begin(const char *store, ns_registry *r, int *lock_fd)
{
    char path[PATH_MAX], what[PATH_MAX + 32];
    struct stat sb;
    *lock_fd = -1;
    registry_path(store, path, sizeof path, "catalog.h5");
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return ns_error(NS_ERR_NOT_FOUND, "'%s' is not a nightshift store (no catalog.h5)", store);
    registry_path(store, path, sizeof path, "registry.lock");
    snprintf(what, sizeof what, "the registry of '%s'", store);
    ns_status st = ns_flock_take(path, 1, what, lock_fd);
    if (st == NS_OK && (st = ns_registry_load(store, r)) != NS_OK) {
        close(*lock_fd);
        *lock_fd = -1;
    }
    return st;
}

static ns_status finish(const char *store, ns_registry *r, ns_registry_entry *e, int lock_fd,
                        ns_registry_entry *out)
{
    ns_status st = append(store, r, e);
    if (st == NS_OK && out)
        *out = *e;
    ns_registry_release(r);
    close(lock_fd);
    return st;
}

ns_status ns_registry_add(const char *store, const char *head_id, const char *path,
                          const ns_lineage *lin, ns_registry_entry *out)
{
    ns_registry r;
    ns_registry_entry e;
    int fd;
    if (!is_hex(head_id, 64))
        return ns_error(NS_ERR_USAGE, "'%s' is no head id (64 lower-case hex digits)", head_id);
    ns_status st = begin(store, &r, &fd);
    if (st != NS_OK)
        return st;
    if (ns_registry_head(&r, head_id)) {
        ns_registry_release(&r);
        close(fd);
        return ns_error(NS_ERR_EXISTS, "head %.12s is already in the registry", head_id);
    }
    memset(&e, 0, sizeof e);
    COPY(e.action, "add");
    COPY(e.head_id, head_id);
    COPY(e.path, path);
    COPY(e.production_before, r.production);
    if (lin)
        e.lineage = *lin;
    return finish(store, &r, &e, fd, out);
}

/* The entry that made id production (0 when none says so). */
static unsigned last_promote(const ns_registry *r, const char *id)
{
    for (size_t i = r->n; i-- > 0;)
        if (!strcmp(r->entries[i].head_id, id) &&
            (!strcmp(r->entries[i].action, "promote") || !strcmp(r->entries[i].action, "rollback")))
            return r->entries[i].seq;
    return 0;
}

static int ieq(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

ns_status ns_registry_promote(const char *store, const char *head, const char *gate_summary,
                              int force, const char *reason, ns_registry_entry *out)
{
    ns_registry r;
    ns_registry_entry e;
    raw_gate *g = NULL;
    char gpath[PATH_MAX + 16] = "", id[NS_SHA256_HEX] = "", why[512] = "";
    int fd;
    struct stat sb;
    if (force && (!reason || !reason[0]))
        return ns_error(NS_ERR_USAGE, "--force needs --reason TEXT: the override is recorded");
    ns_status st = begin(store, &r, &fd);
    if (st != NS_OK)
        return st;
    memset(&e, 0, sizeof e);
    if (gate_summary) {
        snprintf(gpath, sizeof gpath, "%s", gate_summary);
        if (stat(gpath, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(gpath, sizeof gpath, "%.*s/summary.json", PATH_MAX - 1, gate_summary);
        if ((st = ns_yaml_load(gpath, &gate_schema, (void **)&g, 1, NS_ERR_FORMAT)) != NS_OK) {
            if (!force)
                goto done;
            snprintf(why, sizeof why, "%s", ns_errmsg());
            ns_error_clear();
            st = NS_OK;
        }
    }
    const char *gate_cand = g && g->candidate ? g->candidate->head_id : NULL;
    const char *gate_prod = g && g->production && g->production->head_id
                                ? g->production->head_id
                                : "";
    /* Which head: as named, else the one the gate report judged. */
    if (head) {
        if ((st = ns_registry_resolve(&r, head, id)) != NS_OK) {
            /* "candidate" is gone once promoted: a rerun of the same promote
             * (after a crash, or a failed directory fsync that came after
             * the rename) means the head its gate report judged. */
            int rerun = !strcmp(head, "candidate") && gate_cand && r.production[0] &&
                        !strcmp(gate_cand, r.production);
            if (st != NS_ERR_NOT_FOUND || (!is_hex(head, 64) && !rerun))
                goto done;
            ns_error_clear();
            st = NS_OK;
            COPY(id, rerun ? gate_cand : head);
        }
    } else if (gate_cand) {
        COPY(id, gate_cand);
    } else if (r.candidate[0]) {
        COPY(id, r.candidate);
    } else {
        st = ns_error(NS_ERR_USAGE, "which head? name one (or candidate), or give a gate report");
        goto done;
    }
    if (!strcmp(id, r.production)) {
        /* Not an error: promoting what is production already changes
         * nothing, and a rerun must succeed. */
        st = ns_error(NS_ERR_EXISTS, "head %.12s is already production (entry #%u)", id,
                      last_promote(&r, id));
        goto done;
    }
    if (!why[0]) {
        if (!g)
            snprintf(why, sizeof why, "no gate report given (--gate DIR)");
        else if (!ieq(g->verdict, "promote"))
            snprintf(why, sizeof why, "the gate report %s says %s, not PROMOTE", gpath,
                     g->verdict ? g->verdict : "nothing");
        else if (!gate_cand || strcmp(gate_cand, id) != 0)
            snprintf(why, sizeof why, "the gate report %s judged head %.12s, not %.12s", gpath,
                     gate_cand ? gate_cand : "(none)", id);
        else if (r.production[0] && strcmp(gate_prod, r.production) != 0)
            snprintf(why, sizeof why,
                     "the gate report %s compared against production %.12s, but production is "
                     "%.12s now",
                     gpath, gate_prod[0] ? gate_prod : "(none)",
                     r.production[0] ? r.production : "(none)");
    }
    if (why[0] && !force) {
        st = ns_error(NS_ERR_USAGE, "promote refused: %s (--force --reason TEXT overrides)", why);
        goto done;
    }
    COPY(e.action, "promote");
    COPY(e.head_id, id);
    COPY(e.production_before, r.production);
    e.forced = why[0] != 0;
    if (force)
        snprintf(e.reason, sizeof e.reason, "%s%s%s", reason, why[0] ? "; overrode: " : "", why);
    const ns_registry_entry *added = ns_registry_head(&r, id);
    if (added) {
        e.lineage = added->lineage;
        COPY(e.path, added->path);
    } else if (g && g->candidate && gate_cand && !strcmp(gate_cand, id)) {
        COPY(e.path, g->candidate->path);
        COPY(e.lineage.dataset_id, g->candidate->dataset_id ? g->candidate->dataset_id
                                                            : g->dataset_id);
        COPY(e.lineage.label_sets, g->candidate->label_sets);
        COPY(e.lineage.model_id, g->candidate->model_id);
        COPY(e.lineage.train_config_sha256, g->candidate->train_config_sha256);
    }
    if (g) {
        COPY(e.gate_report, gpath);
        if ((st = ns_nightly_file_sha(gpath, e.gate_report_sha256)) != NS_OK)
            goto done;
    }
    ns_yaml_free(&gate_schema, g);
    return finish(store, &r, &e, fd, out);
done:
    ns_yaml_free(&gate_schema, g);
    ns_registry_release(&r);
    close(fd);
    return st;
}

ns_status ns_registry_rollback(const char *store, const char *reason, ns_registry_entry *out)
{
    ns_registry r, after;
    ns_registry_entry e;
    int fd;
    ns_status st = begin(store, &r, &fd);
    if (st != NS_OK)
        return st;
    memset(&e, 0, sizeof e);
    COPY(e.action, "rollback");
    COPY(e.production_before, r.production);
    COPY(e.reason, reason);
    /* What production becomes: replay with this entry added. */
    after = r;
    after.entries = calloc(r.n + 1, sizeof *after.entries);
    if (!after.entries) {
        st = ns_error(NS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(after.entries, r.entries, r.n * sizeof *r.entries);
    after.entries[r.n] = e;
    after.n = r.n + 1;
    replay(&after);
    COPY(e.head_id, after.production);
    free(after.entries);
    if (!r.production[0] || !e.head_id[0]) {
        st = ns_error(NS_ERR_USAGE, "rollback refused: %s",
                      r.production[0] ? "there is no production head before the current one"
                                      : "there is no production head");
        goto fail;
    }
    const ns_registry_entry *added = ns_registry_head(&r, e.head_id);
    if (added) {
        e.lineage = added->lineage;
        COPY(e.path, added->path);
    }
    return finish(store, &r, &e, fd, out);
fail:
    ns_registry_release(&r);
    close(fd);
    return st;
}
