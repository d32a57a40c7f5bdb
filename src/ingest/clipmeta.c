#include "nightshift/clipmeta.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nightshift/csv.h"
#include "nightshift/strbuf.h"

typedef struct manifest_row {
    char *real;       /* realpath of the clip, NULL when it does not exist now */
    char *base;       /* file name */
    ns_clip_meta meta;
} manifest_row;

struct ns_manifest {
    manifest_row *rows;
    size_t n;
};

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no timegm/TZ games). */
static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

ns_status ns_parse_night(const char *s, char out[NS_NIGHT_LEN])
{
    int y, m, d;
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d) || m < 1 || m > 12 || d < 1 ||
        d > days_in_month(y, m))
        return ns_error(NS_ERR_FORMAT, "'%s' is not a date of the form YYYY-MM-DD", ns_show(s).s);
    memcpy(out, s, 11);
    return NS_OK;
}

ns_status ns_parse_iso_time(const char *s, double *out)
{
    int y, mo, d, h, mi, se;
    double frac = 0;
    const char *p;
    if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &se))
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        goto bad;
    p = s + 19;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p)) {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            goto bad;
        offset = sign * (oh * 3600L + om * 60L);
        p += 6;
    }
    if (*p != '\0')
        goto bad;
    *out = (double)(days_from_civil(y, mo, d) * 86400L + h * 3600L + mi * 60L + se - offset) + frac;
    return NS_OK;
bad:
    return ns_error(NS_ERR_FORMAT, "'%s' is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SS[Z|+hh:mm])",
                    ns_show(s).s);
}

void ns_format_iso_time(double t, char out[32])
{
    if (!isfinite(t)) {
        out[0] = '\0';
        return;
    }
    time_t tt = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

ns_status ns_manifest_load(const char *csv_path, ns_manifest **out)
{
    ns_status st = NS_OK;
    ns_csv_reader r;
    ns_manifest *m = NULL;
    size_t cap = 0;
    int more = 0, c_path, c_cam, c_time, c_fps, c_night;
    char dir[PATH_MAX];
    *out = NULL;
    st = ns_csv_open(csv_path, &r);
    if (st != NS_OK)
        return ns_error_wrap(st, "manifest");
    snprintf(dir, sizeof dir, "%s", csv_path);
    {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        st = ns_error(NS_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = ns_csv_next(&r, &more);
    if (st != NS_OK)
        goto done;
    c_path = more ? ns_csv_column(&r, "path") : -1;
    if (c_path < 0) {
        st = ns_error(NS_ERR_FORMAT, "manifest '%s': header has no 'path' column", csv_path);
        goto done;
    }
    c_cam = ns_csv_column(&r, "camera");
    c_time = ns_csv_column(&r, "start_time");
    c_fps = ns_csv_column(&r, "fps");
    c_night = ns_csv_column(&r, "night");
    for (;;) {
        manifest_row row;
        char full[PATH_MAX * 2], real[PATH_MAX];
        st = ns_csv_next(&r, &more);
        if (st != NS_OK || !more)
            goto done;
        size_t line = r.line;
        memset(&row, 0, sizeof row);
        row.meta.start_time = NAN;
#define FIELD(c) ((c) >= 0 && (size_t)(c) < r.n_fields ? r.fields[c] : "")
        const char *path = FIELD(c_path);
        if (!*path) {
            st = ns_error(NS_ERR_FORMAT, "manifest '%s' line %zu: empty path", csv_path, line);
            goto done;
        }
        snprintf(row.meta.camera, sizeof row.meta.camera, "%s", FIELD(c_cam));
        if (*FIELD(c_time) && ns_parse_iso_time(FIELD(c_time), &row.meta.start_time) != NS_OK) {
            st = ns_error_wrap(NS_ERR_FORMAT, "manifest '%s' line %zu", csv_path, line);
            goto done;
        }
        if (*FIELD(c_fps)) {
            char *end;
            row.meta.fps = strtod(FIELD(c_fps), &end);
            if (*end || !(row.meta.fps > 0) || row.meta.fps > 10000) {
                st = ns_error(NS_ERR_FORMAT, "manifest '%s' line %zu: bad fps '%s'", csv_path,
                              line, ns_show(FIELD(c_fps)).s);
                goto done;
            }
        }
        if (*FIELD(c_night) && ns_parse_night(FIELD(c_night), row.meta.night) != NS_OK) {
            st = ns_error_wrap(NS_ERR_FORMAT, "manifest '%s' line %zu", csv_path, line);
            goto done;
        }
#undef FIELD
        if (path[0] == '/')
            snprintf(full, sizeof full, "%s", path);
        else
            snprintf(full, sizeof full, "%s/%s", dir, path);
        row.real = realpath(full, real) ? strdup(real) : NULL;
        row.base = strdup(base_name(path));
        if (!row.base) {
            free(row.real);
            st = ns_error(NS_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (m->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            manifest_row *nr = realloc(m->rows, ncap * sizeof *nr);
            if (!nr) {
                free(row.real);
                free(row.base);
                st = ns_error(NS_ERR_NOMEM, "out of memory");
                goto done;
            }
            m->rows = nr;
            cap = ncap;
        }
        m->rows[m->n++] = row;
    }
done:
    ns_csv_close(&r);
    if (st != NS_OK) {
        ns_manifest_free(m);
        return st;
    }
    *out = m;
    return NS_OK;
}

void ns_manifest_free(ns_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->rows[i].real);
        free(m->rows[i].base);
    }
    free(m->rows);
    free(m);
}

size_t ns_manifest_rows(const ns_manifest *m) { return m ? m->n : 0; }

int ns_manifest_lookup(const ns_manifest *m, const char *clip_path, ns_clip_meta *meta)
{
    char real[PATH_MAX];
    const manifest_row *hit = NULL;
    if (!m)
        return 0;
    if (realpath(clip_path, real)) {
        for (size_t i = 0; i < m->n && !hit; i++)
            if (m->rows[i].real && strcmp(m->rows[i].real, real) == 0)
                hit = &m->rows[i];
    }
    if (!hit) {
        /* Fall back to the file name, but only when it is unambiguous. */
        const char *base = base_name(clip_path);
        size_t found = 0;
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->rows[i].base, base) == 0) {
                hit = &m->rows[i];
                found++;
            }
        if (found != 1)
            hit = NULL;
    }
    if (!hit)
        return 0;
    *meta = hit->meta;
    return 1;
}

/* ---- file-name patterns ---------------------------------------------------- */

enum { TOK_LIT, TOK_CAMERA, TOK_DATE, TOK_TIME, TOK_DATETIME, TOK_ANY, TOK_ALT };

/* Reads the token at pattern p; returns its length in the pattern (0 = bad). */
static size_t pattern_token(const char *p, int *kind)
{
    static const struct { const char *name; int kind; } toks[] = {
        {"{camera}", TOK_CAMERA}, {"{date}", TOK_DATE},   {"{time}", TOK_TIME},
        {"{datetime}", TOK_DATETIME}, {"{*}", TOK_ANY}};
    if (*p == '|') {
        *kind = TOK_ALT;
        return 1;
    }
    if (*p != '{') {
        *kind = TOK_LIT;
        return 1;
    }
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        size_t n = strlen(toks[i].name);
        if (strncmp(p, toks[i].name, n) == 0) {
            *kind = toks[i].kind;
            return n;
        }
    }
    return 0;
}

ns_status ns_name_pattern_check(const char *pattern)
{
    if (!pattern || !*pattern)
        return ns_error(NS_ERR_USAGE, "empty file-name pattern");
    for (const char *p = pattern; *p;) {
        int kind = TOK_LIT;
        size_t n = pattern_token(p, &kind);
        if (n == 0)
            return ns_error(NS_ERR_USAGE,
                            "file-name pattern '%s': unknown token at '%s' (known: {camera} "
                            "{date} {time} {datetime} {*}, and | between alternatives)",
                            ns_show(pattern).s, ns_show(p).s);
        p += n;
    }
    return NS_OK;
}

static int camera_char(char c) { return isalnum((unsigned char)c) || c == '-' || c == '.'; }

typedef struct capture {
    char camera[NS_CAMERA_LEN];
    int y, mo, d, h, mi, s;
    int offset;                 /* seconds east of UTC ({datetime} with a zone) */
    int has_cam, has_date, has_time;
} capture;

/* An ISO 8601 date at s, basic (YYYYMMDD) or extended (YYYY-MM-DD); its length, or 0. */
static size_t iso_date(const char *s, int *y, int *mo, int *d)
{
    size_t w = 0;
    if (digits(s, 4, y) && s[4] == '-' && digits(s + 5, 2, mo) && s[7] == '-' &&
        digits(s + 8, 2, d))
        w = 10;
    else if (digits(s, 4, y) && digits(s + 4, 2, mo) && digits(s + 6, 2, d))
        w = 8;
    return w && *mo >= 1 && *mo <= 12 && *d >= 1 && *d <= days_in_month(*y, *mo) ? w : 0;
}

/* A time of day at s, basic (HHMMSS) or with ':' or '-' between the fields
 * (file systems that forbid ':' get '-'); its length, or 0. */
static size_t iso_clock(const char *s, int *h, int *mi, int *se)
{
    size_t w = 0;
    if (digits(s, 2, h) && (s[2] == ':' || s[2] == '-') && digits(s + 3, 2, mi) &&
        s[5] == s[2] && digits(s + 6, 2, se))
        w = 8;
    else if (digits(s, 2, h) && digits(s + 2, 2, mi) && digits(s + 4, 2, se))
        w = 6;
    return w && *h < 24 && *mi < 60 && *se < 61 ? w : 0;
}

/* The zone designators a date-time may end in, longest first at s: "Z",
 * "+HH:MM", "+HHMM", "+HH" (or '-'); their lengths into len[], offsets
 * into off[]; returns how many apply (the empty zone is the caller's). */
static int iso_zones(const char *s, size_t len[3], int off[3])
{
    int n = 0, hh, mm;
    if (*s == 'Z' || *s == 'z') {
        len[0] = 1;
        off[0] = 0;
        return 1;
    }
    if ((*s != '+' && *s != '-') || !digits(s + 1, 2, &hh) || hh > 14)
        return 0;
    int sign = *s == '-' ? -1 : 1;
    if (s[3] == ':' && digits(s + 4, 2, &mm) && mm < 60) {
        len[n] = 6;
        off[n++] = sign * (hh * 3600 + mm * 60);
    } else if (digits(s + 3, 2, &mm) && mm < 60) {
        len[n] = 5;
        off[n++] = sign * (hh * 3600 + mm * 60);
    }
    len[n] = 3;
    off[n++] = sign * hh * 3600;
    return n;
}

/* Backtracking matcher, memoised: a pattern with several wildcards ("{*}{*}{*}")
 * against a long name backtracks exponentially (fuzz_namepattern found a
 * 10-second name).  Captures are written only on the success path, so a
 * (pattern offset, name offset) that failed once fails again: remember it. */
typedef struct {
    const char *p0, *s0;
    unsigned char failed[512][(NAME_MAX + 2 + 7) / 8]; /* (pattern, name) offsets */
} match_memo;

static int match_body(const char *p, const char *s, capture *c, match_memo *m);

static int match_at(const char *p, const char *s, capture *c, match_memo *m)
{
    size_t po = (size_t)(p - m->p0), so = (size_t)(s - m->s0);
    int memo = po < 512 && so < NAME_MAX + 2;
    if (memo && (m->failed[po][so / 8] >> (so % 8) & 1))
        return 0;
    int r = match_body(p, s, c, m);
    if (!r && memo)
        m->failed[po][so / 8] |= (unsigned char)(1u << (so % 8));
    return r;
}

static int match_body(const char *p, const char *s, capture *c, match_memo *m)
{
    int kind = TOK_LIT;
    size_t n;
    if (*p == '\0')
        return *s == '\0';
    n = pattern_token(p, &kind);
    if (kind == TOK_LIT)
        return *s == *p && match_at(p + 1, s + 1, c, m);
    if (kind == TOK_DATE) {
        int y, mo, d;
        if (digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &mo) && s[7] == '-' &&
            digits(s + 8, 2, &d) && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo) &&
            match_at(p + n, s + 10, c, m)) {
            c->y = y, c->mo = mo, c->d = d, c->has_date = 1;
            return 1;
        }
        if (digits(s, 4, &y) && digits(s + 4, 2, &mo) && digits(s + 6, 2, &d) && mo >= 1 &&
            mo <= 12 && d >= 1 && d <= days_in_month(y, mo) && match_at(p + n, s + 8, c, m)) {
            c->y = y, c->mo = mo, c->d = d, c->has_date = 1;
            return 1;
        }
        return 0;
    }
    if (kind == TOK_DATETIME) {
        int y, mo, d, h, mi, se, off[3];
        size_t wd = iso_date(s, &y, &mo, &d), wt, zl[3];
        if (!wd || (s[wd] != 'T' && s[wd] != 't') || !(wt = iso_clock(s + wd + 1, &h, &mi, &se)))
            return 0;
        const char *end = s + wd + 1 + wt;
        int nz = iso_zones(end, zl, off);
        for (int z = 0; z <= nz; z++) { /* each zone form, then none (UTC) */
            size_t l = z < nz ? zl[z] : 0;
            if (match_at(p + n, end + l, c, m)) {
                c->y = y, c->mo = mo, c->d = d, c->h = h, c->mi = mi, c->s = se;
                c->offset = z < nz ? off[z] : 0;
                c->has_date = c->has_time = 1;
                return 1;
            }
        }
        return 0;
    }
    if (kind == TOK_TIME) {
        int h, mi, se;
        for (int sep = 0; sep < 3; sep++) {
            char ch = "\0-:"[sep];
            size_t w = ch ? 8 : 6;
            if (ch ? (digits(s, 2, &h) && s[2] == ch && digits(s + 3, 2, &mi) && s[5] == ch &&
                      digits(s + 6, 2, &se))
                   : (digits(s, 2, &h) && digits(s + 2, 2, &mi) && digits(s + 4, 2, &se))) {
                if (h < 24 && mi < 60 && se < 61 && match_at(p + n, s + w, c, m)) {
                    c->h = h, c->mi = mi, c->s = se, c->has_time = 1;
                    return 1;
                }
            }
        }
        return 0;
    }
    /* {camera} and {*}: shortest first, so literals after them bind early. */
    size_t max = strlen(s);
    for (size_t len = kind == TOK_ANY ? 0 : 1; len <= max; len++) {
        if (kind == TOK_CAMERA && (len >= NS_CAMERA_LEN || !camera_char(s[len - 1])))
            break;
        if (match_at(p + n, s + len, c, m)) {
            if (kind == TOK_CAMERA) {
                memcpy(c->camera, s, len);
                c->camera[len] = '\0';
                c->has_cam = 1;
            }
            return 1;
        }
    }
    return 0;
}

int ns_name_pattern_match(const char *pattern, const char *path, ns_clip_meta *meta)
{
    char name[NAME_MAX + 1];
    capture c;
    memset(&c, 0, sizeof c);
    snprintf(name, sizeof name, "%s", base_name(path));
    /* Strip the extension(s) of known containers: "a.tar.gz" -> "a". */
    static const char *const exts[] = {".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2", ".tgz",
                                       ".tar", ".zip", ".mjpg", ".mjpeg", ".avi"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t nl = strlen(name), el = strlen(exts[i]);
        if (nl > el && strcasecmp(name + nl - el, exts[i]) == 0) {
            name[nl - el] = '\0';
            break;
        }
    }
    /* Alternatives ("a|b"): the first that matches the whole name. */
    char alt[512];
    const char *p = pattern;
    int hit = 0;
    match_memo *memo = malloc(sizeof *memo);
    if (!memo)
        return 0;
    while (!hit && *p) {
        size_t len = strcspn(p, "|");
        if (len < sizeof alt) {
            memcpy(alt, p, len);
            alt[len] = '\0';
            memset(&c, 0, sizeof c);
            memset(memo, 0, sizeof *memo);
            memo->p0 = alt;
            memo->s0 = name;
            hit = len > 0 && match_at(alt, name, &c, memo);
        }
        p += len + (p[len] == '|');
    }
    free(memo);
    if (!hit)
        return 0;
    if (c.has_cam)
        snprintf(meta->camera, sizeof meta->camera, "%s", c.camera);
    if (c.has_date) {
        double day = (double)days_from_civil(c.y, c.mo, c.d) * 86400.0;
        if (c.has_time)
            meta->start_time = day + c.h * 3600.0 + c.mi * 60.0 + c.s - c.offset;
    }
    return 1;
}
