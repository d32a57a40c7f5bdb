#include "nightshift/csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

ns_status ns_csv_open(const char *path, ns_csv_reader *r)
{
    ns_status st = NS_OK;
    FILE *f = NULL;
    struct stat sb;
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    f = fopen(path, "rb");
    if (!f) {
        st = ns_error(NS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = ns_error(NS_ERR_IO, "'%s' is not a regular file", path);
        goto done;
    }
    r->text = malloc((size_t)sb.st_size + 1);
    if (!r->text) {
        st = ns_error(NS_ERR_NOMEM, "cannot read '%s': out of memory", path);
        goto done;
    }
    r->len = fread(r->text, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        st = ns_error(NS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto done;
    }
    r->text[r->len] = '\0';
    if (r->len >= 3 && memcmp(r->text, "\xEF\xBB\xBF", 3) == 0)
        r->pos = 3;
    r->line = r->next_line = 1;
done:
    if (f)
        fclose(f);
    if (st != NS_OK)
        ns_csv_close(r);
    return st;
}

ns_status ns_csv_next(ns_csv_reader *r, int *more)
{
    char *t = r->text;
    size_t line_at_start;
    int overflow = 0;
    r->n_fields = 0;
    r->nul_bytes = 0;
    /* Blank lines between records are skipped. */
    while (r->pos < r->len && (t[r->pos] == '\n' || t[r->pos] == '\r')) {
        if (t[r->pos] == '\n')
            r->next_line++;
        r->pos++;
    }
    if (r->pos >= r->len) {
        *more = 0;
        return NS_OK;
    }
    *more = 1;
    line_at_start = r->line = r->next_line;
    for (;;) {
        char *out = t + r->pos; /* unquoting writes in place, never ahead of reading */
        char *field = out;
        /* Past the limit the record is still read to its end, so the next
         * call starts on the next record. */
        if (r->n_fields == NS_CSV_MAX_FIELDS) {
            overflow = 1;
            r->n_fields--;
        }
        if (t[r->pos] == '"') {
            r->pos++;
            for (;;) {
                if (r->pos >= r->len)
                    return ns_error(NS_ERR_FORMAT, "'%s' line %zu: unterminated quoted field",
                                    r->path, line_at_start);
                char c = t[r->pos++];
                if (c == '"') {
                    if (r->pos < r->len && t[r->pos] == '"') {
                        *out++ = '"';
                        r->pos++;
                        continue;
                    }
                    break;
                }
                if (c == '\n')
                    r->next_line++;
                r->nul_bytes += c == '\0';
                *out++ = c;
            }
            /* Anything between the closing quote and the separator is kept. */
            while (r->pos < r->len && t[r->pos] != ',' && t[r->pos] != '\n' && t[r->pos] != '\r') {
                r->nul_bytes += t[r->pos] == '\0';
                *out++ = t[r->pos++];
            }
        } else {
            while (r->pos < r->len && t[r->pos] != ',' && t[r->pos] != '\n' && t[r->pos] != '\r') {
                r->nul_bytes += t[r->pos] == '\0';
                *out++ = t[r->pos++];
            }
        }
        r->fields[r->n_fields++] = field;
        if (r->pos >= r->len) {
            *out = '\0';
            break;
        }
        char sep = t[r->pos];
        *out = '\0';
        r->pos++;
        if (sep == ',')
            continue;
        if (sep == '\r' && r->pos < r->len && t[r->pos] == '\n')
            r->pos++;
        r->next_line++;
        break;
    }
    if (overflow)
        return ns_error(NS_ERR_FORMAT, "'%s' line %zu: more than %d fields", r->path,
                        line_at_start, NS_CSV_MAX_FIELDS);
    return NS_OK;
}

int ns_csv_column(const ns_csv_reader *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (strcmp(r->fields[i], name) == 0)
            return (int)i;
    return -1;
}

void ns_csv_close(ns_csv_reader *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

void ns_csv_cell(ns_strbuf *b, const char *cell)
{
    const char *s = cell ? cell : "";
    int guard = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
                s[0] == '\r';
    int quote = guard || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        ns_strbuf_append(b, s, strlen(s));
        return;
    }
    ns_strbuf_append(b, "\"", 1);
    if (guard)
        ns_strbuf_append(b, "'", 1);
    for (; *s; s++) {
        if (*s == '"')
            ns_strbuf_append(b, "\"\"", 2);
        else
            ns_strbuf_append(b, s, 1);
    }
    ns_strbuf_append(b, "\"", 1);
}
