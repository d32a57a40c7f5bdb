/* config.c -- the nightly job's YAML configuration: schema, defaults, print. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/detect.h"
#include "nightshift/nightly.h"
#include "nightshift/reference.h"
#include "yaml.h"

/* The file as libcyaml fills it: a pointer per scalar, NULL when the key is
 * absent, so a default is kept only where the file says nothing. */
typedef struct raw_ingest {
    int *every;
    double *fps;
} raw_ingest;

typedef struct raw_reference {
    int *policy;
    char *nights;
    int *last;
    int *min_nights;
    uint64_t *frame_cap;
    uint64_t *seed;
} raw_reference;

typedef struct raw_detect {
    double *alpha, *frame_alpha;
    int *perms, *min_clips, *test_frames;
    uint64_t *seed;
} raw_detect;

typedef struct raw_select {
    int *budget, *min_gap;
    uint64_t *seed;
    char *export_dir;
} raw_select;

typedef struct raw_train {
    int *head;
    uint64_t *seed;
} raw_train;

typedef struct raw_gate {
    char *policy;
} raw_gate;

typedef struct raw_config {
    char *store, *runs, *inbox, *name_pattern, *manifest, *model;
    int *device;
    raw_ingest *ingest;
    raw_reference *reference;
    raw_detect *detect;
    raw_select *select;
    raw_train *train;
    raw_gate *gate;
} raw_config;

static const cyaml_strval_t policy_names[] = {{"fixed", NS_REF_FIXED}, {"last", NS_REF_LAST}};
static const char *const device_names[] = {"auto", "cpu", "cuda"};
static const cyaml_strval_t device_vals[] = {{"auto", 0}, {"cpu", 1}, {"cuda", 2}};

#define OPT CYAML_FLAG_OPTIONAL
/* null (as --print-config writes an unset key) loads as unset. */
#define STR(key, st, m) \
    CYAML_FIELD_STRING_PTR(key, OPT | CYAML_FLAG_POINTER_NULL_STR, st, m, 0, CYAML_UNLIMITED)

static const cyaml_schema_field_t ingest_fields[] = {
    CYAML_FIELD_INT_PTR("every", OPT, raw_ingest, every),
    CYAML_FIELD_FLOAT_PTR("fps", OPT, raw_ingest, fps),
    CYAML_FIELD_END};

static const cyaml_schema_field_t reference_fields[] = {
    CYAML_FIELD_ENUM_PTR("policy", OPT | CYAML_FLAG_STRICT, raw_reference, policy, policy_names,
                         2),
    STR("nights", raw_reference, nights),
    CYAML_FIELD_INT_PTR("last", OPT, raw_reference, last),
    CYAML_FIELD_INT_PTR("min_nights", OPT, raw_reference, min_nights),
    CYAML_FIELD_UINT_PTR("frame_cap", OPT, raw_reference, frame_cap),
    CYAML_FIELD_UINT_PTR("seed", OPT, raw_reference, seed),
    CYAML_FIELD_END};

static const cyaml_schema_field_t detect_fields[] = {
    CYAML_FIELD_FLOAT_PTR("alpha", OPT, raw_detect, alpha),
    CYAML_FIELD_FLOAT_PTR("frame_alpha", OPT, raw_detect, frame_alpha),
    CYAML_FIELD_INT_PTR("perms", OPT, raw_detect, perms),
    CYAML_FIELD_INT_PTR("min_clips", OPT, raw_detect, min_clips),
    CYAML_FIELD_INT_PTR("test_frames", OPT, raw_detect, test_frames),
    CYAML_FIELD_UINT_PTR("seed", OPT, raw_detect, seed),
    CYAML_FIELD_END};

static const cyaml_schema_field_t select_fields[] = {
    CYAML_FIELD_INT_PTR("budget", OPT, raw_select, budget),
    CYAML_FIELD_UINT_PTR("seed", OPT, raw_select, seed),
    CYAML_FIELD_INT_PTR("min_gap", OPT, raw_select, min_gap),
    STR("export", raw_select, export_dir),
    CYAML_FIELD_END};

static const cyaml_strval_t head_vals[] = {{"softmax", 0}, {"mlp", 1}};
static const char *const head_names[] = {"softmax", "mlp"};

static const cyaml_schema_field_t train_fields[] = {
    CYAML_FIELD_ENUM_PTR("head", OPT | CYAML_FLAG_STRICT, raw_train, head, head_vals, 2),
    CYAML_FIELD_UINT_PTR("seed", OPT, raw_train, seed),
    CYAML_FIELD_END};

static const cyaml_schema_field_t gate_fields[] = {
    STR("policy", raw_gate, policy), CYAML_FIELD_END};

static const cyaml_schema_field_t top_fields[] = {
    STR("store", raw_config, store),
    STR("runs", raw_config, runs),
    STR("inbox", raw_config, inbox),
    STR("name_pattern", raw_config, name_pattern),
    STR("manifest", raw_config, manifest),
    STR("model", raw_config, model),
    CYAML_FIELD_ENUM_PTR("device", OPT | CYAML_FLAG_STRICT, raw_config, device, device_vals, 3),
    CYAML_FIELD_MAPPING_PTR("ingest", OPT, raw_config, ingest, ingest_fields),
    CYAML_FIELD_MAPPING_PTR("reference", OPT, raw_config, reference, reference_fields),
    CYAML_FIELD_MAPPING_PTR("detect", OPT, raw_config, detect, detect_fields),
    CYAML_FIELD_MAPPING_PTR("select", OPT, raw_config, select, select_fields),
    CYAML_FIELD_MAPPING_PTR("train", OPT, raw_config, train, train_fields),
    CYAML_FIELD_MAPPING_PTR("gate", OPT, raw_config, gate, gate_fields),
    CYAML_FIELD_END};

static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config, top_fields)};

void ns_nightly_config_defaults(ns_nightly_config *c)
{
    ns_detect_opts d;
    ns_reference_opts r;
    ns_detect_default_opts(&d);
    ns_reference_default_opts(&r);
    memset(c, 0, sizeof *c);
    c->every = 1;
    c->fps = 0;
    c->model = strdup("default");
    c->device = strdup("auto");
    c->ref_policy = NS_REF_LAST;
    c->ref_last = 7;
    c->ref_min_nights = 3;
    c->ref_frame_cap = r.frame_cap;
    c->ref_seed = r.seed;
    c->alpha = d.alpha;
    c->frame_alpha = d.frame_alpha;
    c->perms = d.n_perm;
    c->min_clips = d.min_clips;
    c->test_frames = d.test_frames_per_clip;
    c->detect_seed = d.seed;
    c->select_budget = 200;
    c->select_seed = 1;
    c->select_min_gap = 3;
    c->train_head = strdup("softmax");
    c->train_seed = 1;
}

ns_status ns_nightly_config_set(char **field, const char *value)
{
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return ns_error(NS_ERR_NOMEM, "out of memory");
    free(*field);
    *field = v;
    return NS_OK;
}

static ns_status take(char **field, char *value)
{
    return value ? ns_nightly_config_set(field, value) : NS_OK;
}

ns_status ns_nightly_config_load(const char *path, ns_nightly_config *c)
{
    raw_config *raw = NULL;
    ns_status st = ns_yaml_load(path, &top_schema, (void **)&raw, 0, NS_ERR_USAGE);
    if (st != NS_OK)
        return st;
    if (!raw) /* an empty document: every default */
        return ns_nightly_config_set(&c->source, path);
    if ((st = ns_nightly_config_set(&c->source, path)) != NS_OK ||
        (st = take(&c->store, raw->store)) != NS_OK || (st = take(&c->runs, raw->runs)) != NS_OK ||
        (st = take(&c->inbox, raw->inbox)) != NS_OK ||
        (st = take(&c->name_pattern, raw->name_pattern)) != NS_OK ||
        (st = take(&c->manifest, raw->manifest)) != NS_OK ||
        (st = take(&c->model, raw->model)) != NS_OK)
        goto done;
    if (raw->device && (st = ns_nightly_config_set(&c->device, device_names[*raw->device])) != NS_OK)
        goto done;
    if (raw->ingest) {
        if (raw->ingest->every)
            c->every = *raw->ingest->every;
        if (raw->ingest->fps)
            c->fps = *raw->ingest->fps;
    }
    if (raw->reference) {
        raw_reference *r = raw->reference;
        if (r->policy)
            c->ref_policy = (ns_ref_policy)*r->policy;
        if ((st = take(&c->ref_nights, r->nights)) != NS_OK)
            goto done;
        if (r->last)
            c->ref_last = *r->last;
        if (r->min_nights)
            c->ref_min_nights = *r->min_nights;
        if (r->frame_cap)
            c->ref_frame_cap = *r->frame_cap;
        if (r->seed)
            c->ref_seed = *r->seed;
    }
    if (raw->detect) {
        raw_detect *d = raw->detect;
        if (d->alpha)
            c->alpha = *d->alpha;
        if (d->frame_alpha)
            c->frame_alpha = *d->frame_alpha;
        if (d->perms)
            c->perms = *d->perms;
        if (d->min_clips)
            c->min_clips = *d->min_clips;
        if (d->test_frames)
            c->test_frames = *d->test_frames;
        if (d->seed)
            c->detect_seed = *d->seed;
    }
    if (raw->select) {
        raw_select *sl = raw->select;
        if (sl->budget)
            c->select_budget = *sl->budget;
        if (sl->seed)
            c->select_seed = *sl->seed;
        if (sl->min_gap)
            c->select_min_gap = *sl->min_gap;
        if ((st = take(&c->label_export, sl->export_dir)) != NS_OK)
            goto done;
    }
    if (raw->train) {
        if (raw->train->head &&
            (st = ns_nightly_config_set(&c->train_head, head_names[*raw->train->head])) != NS_OK)
            goto done;
        if (raw->train->seed)
            c->train_seed = *raw->train->seed;
    }
    if (raw->gate && (st = take(&c->gate_policy, raw->gate->policy)) != NS_OK)
        goto done;
done:
    ns_yaml_free(&top_schema, raw);
    return st;
}

ns_status ns_nightly_config_check(const ns_nightly_config *c)
{
    const char *src = c->source && c->source[0] ? c->source : "the configuration";
    if (!c->store || !c->store[0])
        return ns_error(NS_ERR_USAGE, "%s: no store (set the key 'store' or --store)", src);
    if (!c->inbox || !c->inbox[0])
        return ns_error(NS_ERR_USAGE, "%s: no inbox (set the key 'inbox' or --inbox)", src);
    if (c->every < 1)
        return ns_error(NS_ERR_USAGE, "%s: ingest.every must be >= 1 (is %d)", src, c->every);
    if (!(c->fps >= 0) || !isfinite(c->fps))
        return ns_error(NS_ERR_USAGE, "%s: ingest.fps must be >= 0", src);
    if (c->ref_policy == NS_REF_FIXED && (!c->ref_nights || !c->ref_nights[0]))
        return ns_error(NS_ERR_USAGE, "%s: reference.policy fixed needs reference.nights", src);
    if (c->ref_policy == NS_REF_LAST && (c->ref_last < 1 || c->ref_min_nights < 1 ||
                                         c->ref_min_nights > c->ref_last))
        return ns_error(NS_ERR_USAGE,
                        "%s: reference.last (%d) and reference.min_nights (%d) must satisfy "
                        "1 <= min_nights <= last",
                        src, c->ref_last, c->ref_min_nights);
    if (c->ref_frame_cap < 1)
        return ns_error(NS_ERR_USAGE, "%s: reference.frame_cap must be >= 1", src);
    if (!(c->alpha > 0 && c->alpha < 1) || !(c->frame_alpha > 0 && c->frame_alpha < 1))
        return ns_error(NS_ERR_USAGE, "%s: detect.alpha and detect.frame_alpha must be in (0, 1)",
                        src);
    if (c->perms < 1 || c->min_clips < 1)
        return ns_error(NS_ERR_USAGE, "%s: detect.perms and detect.min_clips must be >= 1", src);
    if (c->select_budget < 0 || c->select_min_gap < 0)
        return ns_error(NS_ERR_USAGE, "%s: select.budget and select.min_gap must be >= 0", src);
    return NS_OK;
}

/* YAML double-quoted scalar: JSON's escapes are YAML's too. */
static void put_str(ns_strbuf *b, const char *key, const char *v, const char *indent)
{
    ns_strbuf_printf(b, "%s%s: ", indent, key);
    if (v)
        ns_strbuf_json_str(b, v);
    else
        ns_strbuf_printf(b, "null");
    ns_strbuf_append(b, "\n", 1);
}

static void put_num(ns_strbuf *b, const char *key, double v, const char *indent)
{
    ns_strbuf_printf(b, "%s%s: ", indent, key);
    ns_strbuf_json_num(b, v);
    ns_strbuf_append(b, "\n", 1);
}

void ns_nightly_config_print(const ns_nightly_config *c, ns_strbuf *b)
{
    const char *in = "  ";
    ns_strbuf_printf(b, "# effective nightly configuration (defaults filled in)\n");
    put_str(b, "store", c->store, "");
    put_str(b, "runs", c->runs, "");
    put_str(b, "inbox", c->inbox, "");
    put_str(b, "name_pattern", c->name_pattern, "");
    put_str(b, "manifest", c->manifest, "");
    put_str(b, "model", c->model, "");
    ns_strbuf_printf(b, "device: %s\n", c->device);
    ns_strbuf_printf(b, "ingest:\n%severy: %d\n", in, c->every);
    put_num(b, "fps", c->fps, in);
    ns_strbuf_printf(b, "reference:\n%spolicy: %s\n", in,
                     c->ref_policy == NS_REF_FIXED ? "fixed" : "last");
    put_str(b, "nights", c->ref_nights, in);
    ns_strbuf_printf(b, "%slast: %d\n%smin_nights: %d\n%sframe_cap: %" PRIu64 "\n"
                     "%sseed: %" PRIu64 "\n",
                     in, c->ref_last, in, c->ref_min_nights, in, c->ref_frame_cap, in, c->ref_seed);
    ns_strbuf_printf(b, "detect:\n");
    put_num(b, "alpha", c->alpha, in);
    put_num(b, "frame_alpha", c->frame_alpha, in);
    ns_strbuf_printf(b, "%sperms: %d\n%smin_clips: %d\n%stest_frames: %d\n%sseed: %" PRIu64 "\n",
                     in, c->perms, in, c->min_clips, in, c->test_frames, in, c->detect_seed);
    ns_strbuf_printf(b, "select:\n%sbudget: %d\n%sseed: %" PRIu64 "\n%smin_gap: %d\n", in,
                     c->select_budget, in, c->select_seed, in, c->select_min_gap);
    put_str(b, "export", c->label_export, in);
    ns_strbuf_printf(b, "train:\n%shead: %s\n%sseed: %" PRIu64 "\ngate:\n", in, c->train_head, in,
                     c->train_seed);
    put_str(b, "policy", c->gate_policy, in);
}

void ns_nightly_config_hash(const ns_nightly_config *c, char hex[NS_SHA256_HEX])
{
    ns_strbuf b = {0};
    uint8_t d[NS_SHA256_LEN];
    ns_nightly_config_print(c, &b);
    ns_sha256_buf(b.data ? b.data : "", b.len, d);
    ns_sha256_hex(d, hex);
    ns_strbuf_release(&b);
}

char *ns_nightly_subst(const char *s, const char *night)
{
    if (!s)
        return NULL;
    size_t n = 0, nl = strlen(night);
    for (const char *p = strstr(s, "{night}"); p; p = strstr(p + 7, "{night}"))
        n++;
    char *out = malloc(strlen(s) + n * nl + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p;) {
        if (!strncmp(p, "{night}", 7)) {
            memcpy(o, night, nl);
            o += nl;
            p += 7;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

void ns_nightly_config_release(ns_nightly_config *c)
{
    if (!c)
        return;
    free(c->source);
    free(c->store);
    free(c->runs);
    free(c->inbox);
    free(c->name_pattern);
    free(c->manifest);
    free(c->model);
    free(c->device);
    free(c->ref_nights);
    free(c->label_export);
    free(c->train_head);
    free(c->gate_policy);
    memset(c, 0, sizeof *c);
}
