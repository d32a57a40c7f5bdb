/* yaml.c -- libcyaml with its log turned into one file:line message. */
#include "yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "nightshift/strbuf.h"

typedef struct yaml_log {
    char problem[512]; /* the first message that is not a backtrace frame */
    int line, col;     /* innermost frame */
    char path[256];    /* field names, outermost first */
} yaml_log;

static void prepend_field(yaml_log *l, const char *name, size_t n)
{
    char tmp[sizeof l->path];
    size_t old = strlen(l->path);
    if (n + 1 + old >= sizeof tmp) /* a path this deep is no config of ours */
        return;
    memcpy(tmp, name, n);
    tmp[n] = '.';
    memcpy(tmp + n + (old ? 1 : 0), l->path, old + 1);
    memcpy(l->path, tmp, sizeof tmp);
}

static void log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    yaml_log *l = ctx;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, args);
    msg[strcspn(msg, "\n")] = '\0';
    if (level < CYAML_LOG_WARNING)
        return;
    const char *at = strstr(msg, "(line: ");
    if (at) {
        int line = 0, col = 0;
        if (sscanf(at, "(line: %d, column: %d)", &line, &col) == 2 && l->line == 0) {
            l->line = line;
            l->col = col;
        }
        /* Frames run innermost first: each field name goes in front. */
        const char *f = strstr(msg, "field '");
        if (f) {
            f += 7;
            const char *e = strchr(f, '\'');
            if (e)
                prepend_field(l, f, (size_t)(e - f));
        }
        return;
    }
    if (strstr(msg, "Backtrace:") || l->problem[0])
        return;
    const char *p = msg;
    if (!strncmp(p, "Load: ", 6))
        p += 6;
    if (!strncmp(p, "libyaml: ", 9))
        p += 9;
    snprintf(l->problem, sizeof l->problem, "%s", p);
}

/* libcyaml places an unknown key of the top-level mapping at the value
 * before it.  The key's own place comes from a walk over libyaml's events:
 * the first mapping key named `key` whose enclosing keys spell `within`. */
static void find_key(const char *path, const char *within, const char *key, int *line, int *col)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t p;
    yaml_event_t ev;
    enum { MAX_DEPTH = 32 };
    char keys[MAX_DEPTH][64];  /* the key that opened each level */
    int is_map[MAX_DEPTH], want_key[MAX_DEPTH], depth = 0, done = 0;
    char cur[64] = "";
    if (!f)
        return;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return;
    }
    yaml_parser_set_input_file(&p, f);
    while (!done && yaml_parser_parse(&p, &ev)) {
        int top = depth - 1;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth < MAX_DEPTH) {
                snprintf(keys[depth], sizeof keys[depth], "%s", cur);
                is_map[depth] = ev.type == YAML_MAPPING_START_EVENT;
                want_key[depth] = 1;
            }
            /* Levels past MAX_DEPTH are not tracked; a deeper document is
             * still parsed (and refused by the schema), never indexed past. */
            if (top >= 0 && top < MAX_DEPTH && is_map[top])
                want_key[top] = 1;
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            if (top >= 0 && top < MAX_DEPTH && is_map[top] && want_key[top]) {
                snprintf(cur, sizeof cur, "%s", (const char *)ev.data.scalar.value);
                want_key[top] = 0;
                char encl[256] = "";
                for (int i = 1; i <= top; i++) /* level 0 is the document's mapping */
                    snprintf(encl + strlen(encl), sizeof encl - strlen(encl), "%s%s",
                             i > 1 ? "." : "", keys[i]);
                if (!strcmp(cur, key) && !strcmp(encl, within)) {
                    *line = (int)ev.start_mark.line + 1;
                    *col = (int)ev.start_mark.column + 1;
                    done = 1;
                }
            } else if (top >= 0 && top < MAX_DEPTH && is_map[top]) {
                want_key[top] = 1;
            }
            break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(f);
}

ns_status ns_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out,
                       int ignore_unknown, ns_status bad_status)
{
    yaml_log l;
    memset(&l, 0, sizeof l);
    *out = NULL;
    if (access(path, R_OK) != 0)
        return ns_error(errno == ENOENT ? NS_ERR_NOT_FOUND : NS_ERR_IO, "cannot read '%s': %s",
                        path, strerror(errno));
    cyaml_config_t cfg = {
        .log_fn = log_fn,
        .log_ctx = &l,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_WARNING,
        .flags = ignore_unknown ? CYAML_CFG_IGNORE_UNKNOWN_KEYS : CYAML_CFG_DEFAULT,
    };
    cyaml_err_t e = cyaml_load_file(path, &cfg, schema, (cyaml_data_t **)out, NULL);
    if (e == CYAML_OK)
        return NS_OK;
    *out = NULL;
    if (e == CYAML_ERR_FILE_OPEN)
        return ns_error(NS_ERR_IO, "cannot read '%s'", path);
    /* libyaml leaves its problem text NULL when its own malloc failed, and
     * libcyaml prints that NULL as "(null)". */
    if (e == CYAML_ERR_OOM || e == CYAML_ERR_LIBYAML_PARSER_INIT ||
        e == CYAML_ERR_LIBYAML_EVENT_INIT ||
        (e == CYAML_ERR_LIBYAML_PARSER && (!l.problem[0] || strstr(l.problem, "(null)"))))
        return ns_error(NS_ERR_NOMEM, "out of memory reading '%s'", path);
    const char *problem = l.problem[0] ? l.problem : cyaml_strerror(e);
    if (e == CYAML_ERR_INVALID_KEY && !strncmp(problem, "Unexpected key: ", 16))
        find_key(path, l.path, problem + 16, &l.line, &l.col);
    /* libcyaml quotes the file's keys and values: escape their control bytes. */
    char shown[4 * 200 + 8], fields[4 * 200 + 8];
    ns_text_show(shown, sizeof shown, problem, 200);
    ns_text_show(fields, sizeof fields, l.path, 200);
    if (l.line > 0)
        return ns_error(bad_status, "%s:%d:%d: %s%s%s%s", path, l.line, l.col, shown,
                        l.path[0] ? " (in " : "", fields, l.path[0] ? ")" : "");
    return ns_error(bad_status, "%s: %s", path, shown);
}

void ns_yaml_free(const cyaml_schema_value_t *schema, void *data)
{
    if (!data)
        return;
    cyaml_config_t cfg = {.mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR};
    cyaml_free(&cfg, schema, data, 0);
}
