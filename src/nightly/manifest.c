/* manifest.c -- runs/<night>/manifest.json: what each stage of a night did,
 * with the inputs it saw and the outputs it left, so a rerun knows what to
 * skip.  Written as JSON, read back with libcyaml (JSON is YAML flow style). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/fsutil.h"
#include "nightshift/nightly.h"
#include "yaml.h"

/* Every scalar is read as a string: numbers may be null, and strtod is
 * exact enough for seconds and counts. */
typedef struct raw_file {
    char *name;
    char *sha256;
} raw_file;

typedef struct raw_stage {
    char *stage, *status, *key, *note, *start, *end, *seconds, *count, *unit, *verdict;
    raw_file *inputs;
    unsigned inputs_count;
    raw_file *outputs;
    unsigned outputs_count;
} raw_stage;

typedef struct raw_manifest {
    char *format, *version, *night, *tool_version, *config_sha256, *started, *updated, *exit_code,
        *production_head;
    raw_stage *stages;
    unsigned stages_count;
} raw_manifest;

#define OPT CYAML_FLAG_OPTIONAL
#define STR(key, st, m) \
    CYAML_FIELD_STRING_PTR(key, OPT | CYAML_FLAG_POINTER_NULL_STR, st, m, 0, CYAML_UNLIMITED)

static const cyaml_schema_field_t input_fields[] = {
    STR("name", raw_file, name), STR("sha256", raw_file, sha256), CYAML_FIELD_END};
static const cyaml_schema_field_t output_fields[] = {
    STR("path", raw_file, name), STR("sha256", raw_file, sha256), CYAML_FIELD_END};
static const cyaml_schema_value_t input_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_file, input_fields)};
static const cyaml_schema_value_t output_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_file, output_fields)};

static const cyaml_schema_field_t stage_fields[] = {
    STR("stage", raw_stage, stage),
    STR("status", raw_stage, status),
    STR("key", raw_stage, key),
    STR("note", raw_stage, note),
    STR("start", raw_stage, start),
    STR("end", raw_stage, end),
    STR("seconds", raw_stage, seconds),
    STR("count", raw_stage, count),
    STR("unit", raw_stage, unit),
    STR("verdict", raw_stage, verdict),
    CYAML_FIELD_SEQUENCE("inputs", CYAML_FLAG_POINTER | OPT, raw_stage, inputs, &input_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("outputs", CYAML_FLAG_POINTER | OPT, raw_stage, outputs, &output_schema,
                         0, CYAML_UNLIMITED),
    CYAML_FIELD_END};
static const cyaml_schema_value_t stage_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_stage, stage_fields)};

static const cyaml_schema_field_t manifest_fields[] = {
    STR("ns_format", raw_manifest, format),
    STR("ns_format_version", raw_manifest, version),
    STR("night", raw_manifest, night),
    STR("tool_version", raw_manifest, tool_version),
    STR("config_sha256", raw_manifest, config_sha256),
    STR("started", raw_manifest, started),
    STR("updated", raw_manifest, updated),
    STR("exit_code", raw_manifest, exit_code),
    STR("production_head", raw_manifest, production_head),
    CYAML_FIELD_SEQUENCE("stages", CYAML_FLAG_POINTER | OPT, raw_manifest, stages, &stage_schema,
                         0, CYAML_UNLIMITED),
    CYAML_FIELD_END};
static const cyaml_schema_value_t manifest_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_manifest, manifest_fields)};

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void ns_nightly_iso(double t, char buf[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

ns_status ns_stage_add(ns_stage_file **files, size_t *n, const char *name, const char *sha256)
{
    ns_stage_file *nf = realloc(*files, (*n + 1) * sizeof *nf);
    if (!nf)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    *files = nf;
    nf[*n].name = strdup(name ? name : "");
    if (!nf[*n].name)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    copy(nf[*n].sha256, sizeof nf[*n].sha256, sha256);
    (*n)++;
    return NS_OK;
}

static ns_status copy_files(const raw_file *src, size_t n, ns_stage_file **dst, size_t *nd)
{
    ns_status st = NS_OK;
    for (size_t i = 0; i < n && st == NS_OK; i++)
        st = ns_stage_add(dst, nd, src[i].name, src[i].sha256);
    return st;
}

ns_status ns_run_manifest_load(const char *path, ns_run_manifest *m)
{
    raw_manifest *raw = NULL;
    ns_status st;
    memset(m, 0, sizeof *m);
    m->exit_code = -1;
    st = ns_yaml_load(path, &manifest_schema, (void **)&raw, 1, NS_ERR_CORRUPT);
    if (st == NS_ERR_NOT_FOUND) {
        ns_error_clear();
        return NS_OK;
    }
    if (st != NS_OK)
        return st;
    if (!raw || !raw->format || strcmp(raw->format, NS_MANIFEST_FORMAT) != 0) {
        st = ns_error(NS_ERR_FORMAT, "'%s' is not a nightshift run manifest", path);
        goto done;
    }
    if (!raw->version || atoi(raw->version) != NS_MANIFEST_FORMAT_VERSION) {
        st = ns_error(NS_ERR_FORMAT, "'%s': run manifest version %s, this nightshift reads %d",
                      path, raw->version ? raw->version : "(none)", NS_MANIFEST_FORMAT_VERSION);
        goto done;
    }
    copy(m->night, sizeof m->night, raw->night);
    copy(m->tool_version, sizeof m->tool_version, raw->tool_version);
    copy(m->config_sha256, sizeof m->config_sha256, raw->config_sha256);
    copy(m->started, sizeof m->started, raw->started);
    copy(m->updated, sizeof m->updated, raw->updated);
    copy(m->production_head, sizeof m->production_head, raw->production_head);
    m->exit_code = raw->exit_code ? atoi(raw->exit_code) : -1;
    for (unsigned i = 0; i < raw->stages_count && st == NS_OK; i++) {
        const raw_stage *r = &raw->stages[i];
        ns_stage_record rec;
        memset(&rec, 0, sizeof rec);
        copy(rec.stage, sizeof rec.stage, r->stage);
        copy(rec.status, sizeof rec.status, r->status);
        copy(rec.key, sizeof rec.key, r->key);
        copy(rec.start, sizeof rec.start, r->start);
        copy(rec.end, sizeof rec.end, r->end);
        copy(rec.unit, sizeof rec.unit, r->unit);
        copy(rec.verdict, sizeof rec.verdict, r->verdict);
        rec.note = r->note ? strdup(r->note) : NULL;
        rec.seconds = r->seconds ? strtod(r->seconds, NULL) : 0;
        rec.count = r->count ? strtoull(r->count, NULL, 10) : 0;
        if ((st = copy_files(r->inputs, r->inputs_count, &rec.inputs, &rec.n_inputs)) == NS_OK &&
            (st = copy_files(r->outputs, r->outputs_count, &rec.outputs, &rec.n_outputs)) == NS_OK)
            st = ns_run_manifest_put(m, &rec);
        ns_stage_record_release(&rec);
    }
done:
    ns_yaml_free(&manifest_schema, raw);
    if (st != NS_OK)
        ns_run_manifest_release(m);
    return st;
}

static void put_files(ns_strbuf *b, const char *key, const char *name_key,
                      const ns_stage_file *f, size_t n)
{
    ns_strbuf_printf(b, ",\n     \"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        ns_strbuf_printf(b, "%s{\"%s\": ", i ? ", " : "", name_key);
        ns_strbuf_json_str(b, f[i].name);
        ns_strbuf_printf(b, ", \"sha256\": \"%s\"}", f[i].sha256);
    }
    ns_strbuf_append(b, "]", 1);
}

ns_status ns_run_manifest_save(const ns_run_manifest *m, const char *path)
{
    ns_strbuf b = {0};
    ns_status st;
    ns_strbuf_printf(&b, "{\"ns_format\": \"%s\", \"ns_format_version\": %d,\n \"night\": ",
                     NS_MANIFEST_FORMAT, NS_MANIFEST_FORMAT_VERSION);
    ns_strbuf_json_str(&b, m->night);
    ns_strbuf_printf(&b, ", \"tool_version\": ");
    ns_strbuf_json_str(&b, m->tool_version);
    ns_strbuf_printf(&b, ", \"config_sha256\": \"%s\",\n \"started\": \"%s\", \"updated\": \"%s\", "
                         "\"production_head\": \"%s\", \"exit_code\": ",
                     m->config_sha256, m->started, m->updated, m->production_head);
    if (m->exit_code >= 0)
        ns_strbuf_printf(&b, "%d", m->exit_code);
    else
        ns_strbuf_printf(&b, "null");
    ns_strbuf_printf(&b, ",\n \"stages\": [");
    for (size_t i = 0; i < m->n_stages; i++) {
        const ns_stage_record *r = &m->stages[i];
        ns_strbuf_printf(&b, "%s\n    {\"stage\": \"%s\", \"status\": \"%s\", \"key\": \"%s\", "
                             "\"note\": ",
                         i ? "," : "", r->stage, r->status, r->key);
        ns_strbuf_json_str(&b, r->note ? r->note : "");
        ns_strbuf_printf(&b, ",\n     \"start\": \"%s\", \"end\": \"%s\", \"seconds\": ", r->start,
                         r->end);
        ns_strbuf_json_num(&b, r->seconds);
        ns_strbuf_printf(&b, ", \"count\": %llu, \"unit\": \"%s\", \"verdict\": \"%s\"",
                         (unsigned long long)r->count, r->unit, r->verdict);
        put_files(&b, "inputs", "name", r->inputs, r->n_inputs);
        put_files(&b, "outputs", "path", r->outputs, r->n_outputs);
        ns_strbuf_append(&b, "}", 1);
    }
    ns_strbuf_printf(&b, "\n ]}\n");
    if ((st = ns_strbuf_status(&b)) == NS_OK)
        st = ns_write_file_atomic(path, b.data, b.len);
    ns_strbuf_release(&b);
    return st;
}

ns_stage_record *ns_run_manifest_find(ns_run_manifest *m, const char *stage)
{
    for (size_t i = 0; i < m->n_stages; i++)
        if (!strcmp(m->stages[i].stage, stage))
            return &m->stages[i];
    return NULL;
}

ns_status ns_run_manifest_put(ns_run_manifest *m, const ns_stage_record *rec)
{
    ns_stage_record copyrec = *rec, *slot = ns_run_manifest_find(m, rec->stage);
    ns_status st = NS_OK;
    copyrec.note = rec->note ? strdup(rec->note) : NULL;
    copyrec.inputs = copyrec.outputs = NULL;
    copyrec.n_inputs = copyrec.n_outputs = 0;
    if (rec->note && !copyrec.note)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rec->n_inputs && st == NS_OK; i++)
        st = ns_stage_add(&copyrec.inputs, &copyrec.n_inputs, rec->inputs[i].name,
                          rec->inputs[i].sha256);
    for (size_t i = 0; i < rec->n_outputs && st == NS_OK; i++)
        st = ns_stage_add(&copyrec.outputs, &copyrec.n_outputs, rec->outputs[i].name,
                          rec->outputs[i].sha256);
    if (st != NS_OK) {
        ns_stage_record_release(&copyrec);
        return st;
    }
    if (slot) {
        ns_stage_record_release(slot);
        *slot = copyrec;
        return NS_OK;
    }
    ns_stage_record *ns = realloc(m->stages, (m->n_stages + 1) * sizeof *ns);
    if (!ns) {
        ns_stage_record_release(&copyrec);
        return ns_error(NS_ERR_NOMEM, "out of memory");
    }
    m->stages = ns;
    m->stages[m->n_stages++] = copyrec;
    return NS_OK;
}

void ns_stage_record_release(ns_stage_record *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_inputs; i++)
        free(r->inputs[i].name);
    for (size_t i = 0; i < r->n_outputs; i++)
        free(r->outputs[i].name);
    free(r->inputs);
    free(r->outputs);
    free(r->note);
    r->inputs = r->outputs = NULL;
    r->n_inputs = r->n_outputs = 0;
    r->note = NULL;
}

void ns_run_manifest_release(ns_run_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_stages; i++)
        ns_stage_record_release(&m->stages[i]);
    free(m->stages);
    m->stages = NULL;
    m->n_stages = 0;
}
