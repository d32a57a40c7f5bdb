/* glove.c -- the glove-shift scenario generator (see glove.h). */
#include "glove.h"

#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "nightshift/fsutil.h"
#include "scene.h"

const char *const ns_glove_shift_names[NS_SHIFT_KIND_COUNT] = {"glove", "light", "bump", "object"};

#define NIGHT_START_S (18 * 3600) /* the night shift runs 18:00..06:00 */
#define SHIFT_LEN_S (12 * 3600)

void ns_glove_default_opts(ns_glove_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->out = NULL;
    o->nights = 6;
    snprintf(o->start, sizeof(o->start), "2026-11-01");
    o->cameras = 3;
    o->clips = 2;
    o->frames = 40;
    o->width = 640;
    o->height = 480;
    o->quality = 90;
    o->fps = 10.0;
    for (int i = 0; i < NS_GEN_FORMAT_COUNT; i++)
        o->formats[i] = (ns_gen_format)i;
    o->n_formats = NS_GEN_FORMAT_COUNT;
    o->seed = 1;
    o->shifts[0].kind = NS_SHIFT_GLOVE;
    o->shifts[0].night = 5;
    o->shifts[0].cameras = 0x3; /* cam01, cam02 */
    o->n_shifts = 1;
    o->threads = 0;
}

static ns_status parse_int(const char *s, int lo, int hi, const char *what, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return ns_error(NS_ERR_USAGE, "%s '%s' is not an integer in %d..%d", what, s, lo, hi);
    *out = (int)v;
    return NS_OK;
}

ns_status ns_glove_parse_shift(const char *s, ns_glove_shift *out)
{
    char buf[512], *save = NULL;
    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
        return ns_error(NS_ERR_USAGE, "shift '%s' too long", s);
    memset(out, 0, sizeof(*out));
    char *kind = strtok_r(buf, ":", &save), *night = strtok_r(NULL, ":", &save);
    char *cams = strtok_r(NULL, ":", &save), *clips = strtok_r(NULL, ":", &save);
    if (!kind || !night || strtok_r(NULL, ":", &save))
        return ns_error(NS_ERR_USAGE, "shift '%s' is not KIND:NIGHT[:CAM,CAM..[:CLIPS]]", s);
    out->kind = -1;
    for (int k = 0; k < NS_SHIFT_KIND_COUNT; k++)
        if (strcmp(kind, ns_glove_shift_names[k]) == 0)
            out->kind = k;
    if (out->kind < 0)
        return ns_error(NS_ERR_USAGE, "shift '%s': unknown kind '%s' (glove, light, bump, object)", s,
                        kind);
    ns_status st = parse_int(night, 1, 100000, "shift night", &out->night);
    if (st == NS_OK && clips)
        st = parse_int(clips, 1, 1000000, "shift clips", &out->clips);
    if (st != NS_OK)
        return st;
    if (!cams) {
        out->cameras = ~0ull;
        return NS_OK;
    }
    char *save2 = NULL;
    for (char *c = strtok_r(cams, ",", &save2); c; c = strtok_r(NULL, ",", &save2)) {
        int idx = 1;
        st = parse_int(strncmp(c, "cam", 3) == 0 ? c + 3 : c, 1, NS_GLOVE_MAX_CAMERAS,
                       "shift camera", &idx);
        if (st != NS_OK)
            return st;
        out->cameras |= 1ull << (idx - 1);
    }
    return NS_OK;
}

ns_status ns_glove_parse_formats(const char *s, ns_glove_opts *o)
{
    char buf[512], *save = NULL;
    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
        return ns_error(NS_ERR_USAGE, "format list '%s' too long", s);
    o->n_formats = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_formats == (int)(sizeof(o->formats) / sizeof(o->formats[0])))
            return ns_error(NS_ERR_USAGE, "format list '%s' has too many entries", s);
        ns_status st = ns_gen_format_parse(t, &o->formats[o->n_formats]);
        if (st != NS_OK)
            return st;
        o->n_formats++;
    }
    if (o->n_formats == 0)
        return ns_error(NS_ERR_USAGE, "empty format list");
    return NS_OK;
}

/* ---- plan ------------------------------------------------------------------ */

typedef struct job {
    char rel[160];            /* path relative to DIR */
    int night, camera, clip;  /* 0-based */
    ns_gen_format fmt;
    int idx1;
    int64_t start;            /* unix seconds */
    int glove, dim, bump, object;
    uint64_t key;
    size_t first;             /* offset of its frames in the steps array */
    uint64_t bytes;
    ns_status st;
    char err[256];
} job;

static int shift_on(const ns_glove_opts *o, int kind, int night, int camera, int clip)
{
    for (int i = 0; i < o->n_shifts; i++)
        if (o->shifts[i].kind == kind && night + 1 >= o->shifts[i].night &&
            (o->shifts[i].cameras >> camera) & 1 &&
            (o->shifts[i].clips <= 0 || clip < o->shifts[i].clips))
            return 1;
    return 0;
}

static void night_name(int64_t day0, int n, char out[11])
{
    time_t t = (time_t)((day0 + n) * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static ns_status parse_date(const char *s, int64_t *day)
{
    int y, m, d, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || s[used] || used != 10 || y < 1970)
        return ns_error(NS_ERR_USAGE, "start date '%s' is not YYYY-MM-DD", s);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *day = (int64_t)timegm(&tm) / 86400;
    char back[11];
    night_name(*day, 0, back);
    if (strcmp(back, s) != 0) /* timegm normalises 2026-02-30 silently */
        return ns_error(NS_ERR_USAGE, "start date '%s' does not exist", s);
    return NS_OK;
}

static ns_status plan(const ns_glove_opts *o, int64_t day0, job *jobs)
{
    size_t j = 0, first = 0;
    int n_avi = 0;
    for (int n = 0; n < o->nights; n++) {
        char night[11];
        night_name(day0, n, night);
        for (int c = 0; c < o->cameras; c++) {
            int64_t slot = SHIFT_LEN_S / o->clips;
            for (int k = 0; k < o->clips; k++, j++) {
                job *jb = &jobs[j];
                jb->night = n;
                jb->camera = c;
                jb->clip = k;
                jb->fmt = o->formats[j % (size_t)o->n_formats];
                jb->idx1 = jb->fmt == NS_GEN_AVI ? (n_avi++ % 2 == 0) : 0;
                jb->key = ns_gen_key(o->seed, (uint64_t)n, (uint64_t)c, (uint64_t)k, 0);
                /* Cameras start a little apart; clips within their slot at random. */
                int64_t jit = slot > 8 ? (int64_t)(ns_gen_mix(jb->key) % (uint64_t)(slot / 4 + 1)) : 0;
                int64_t sec = NIGHT_START_S + (int64_t)k * slot + (int64_t)c * 53 + jit;
                sec = sec < NIGHT_START_S + SHIFT_LEN_S ? sec : NIGHT_START_S + SHIFT_LEN_S - 1;
                jb->start = (day0 + n) * 86400 + sec;
                int64_t tod = sec % 86400;
                snprintf(jb->rel, sizeof(jb->rel), "%s/cam%02d/cam%02d_%s_%02d%02d%02d.%s", night,
                         c + 1, c + 1, night, (int)(tod / 3600), (int)(tod / 60 % 60),
                         (int)(tod % 60), ns_gen_format_ext(jb->fmt));
                jb->glove = shift_on(o, NS_SHIFT_GLOVE, n, c, k) ? NS_GLOVE_BLACK : NS_GLOVE_GRAY;
                jb->dim = shift_on(o, NS_SHIFT_LIGHT, n, c, k);
                jb->bump = shift_on(o, NS_SHIFT_BUMP, n, c, k);
                jb->object = shift_on(o, NS_SHIFT_OBJECT, n, c, k);
                jb->first = first;
                first += (size_t)o->frames;
            }
        }
    }
    return NS_OK;
}

/* ---- per-thread work ---------------------------------------------------------- */

typedef struct worker {
    ns_scene_renderer *R;
    tjhandle tj;
    uint8_t *rgb;          /* (H, W, 3) */
    uint8_t *jpg;          /* tjBufSize bytes: one encoded frame */
    unsigned long jpg_cap;
    ns_gen_buf arena;      /* the clip's JPEGs back to back */
    ns_gen_buf out;        /* the clip file */
    size_t *off, *len;     /* (frames) */
    ns_gen_member *members;/* (frames) */
    char *names;           /* (frames, 32) */
} worker;

static void worker_release(worker *w)
{
    ns_scene_renderer_free(w->R);
    if (w->tj)
        tjDestroy(w->tj);
    free(w->rgb);
    tjFree(w->jpg);
    ns_gen_buf_release(&w->arena);
    ns_gen_buf_release(&w->out);
    free(w->off);
    free(w->len);
    free(w->members);
    free(w->names);
    memset(w, 0, sizeof(*w));
}

static ns_status worker_init(worker *w, const ns_glove_opts *o)
{
    memset(w, 0, sizeof(*w));
    ns_status st = ns_scene_renderer_create(o->width, o->height, &w->R);
    if (st != NS_OK)
        return st;
    size_t nf = (size_t)o->frames;
    w->tj = tjInitCompress();
    w->rgb = malloc((size_t)o->width * (size_t)o->height * 3);
    w->jpg_cap = tjBufSize(o->width, o->height, TJSAMP_420);
    w->jpg = tjAlloc((int)w->jpg_cap);
    w->off = malloc(nf * sizeof(size_t));
    w->len = malloc(nf * sizeof(size_t));
    w->members = calloc(nf, sizeof(ns_gen_member));
    w->names = malloc(nf * 32);
    if (!w->tj)
        return ns_error(NS_ERR_INTERNAL, "cannot start a JPEG encoder: %s", tjGetErrorStr());
    if (!w->rgb || !w->jpg || !w->off || !w->len || !w->members || !w->names)
        return ns_error(NS_ERR_NOMEM, "out of memory for the frame buffers");
    return NS_OK;
}

static ns_status make_clip(worker *w, const ns_glove_opts *o, const ns_scene_station *stations,
                           job *jb, uint8_t *steps)
{
    ns_scene_clip c;
    ns_scene_clip_init(&c, &stations[jb->camera], jb->key, jb->glove);
    if (jb->dim)
        ns_scene_clip_dim(&c);
    if (jb->bump)
        ns_scene_clip_bump(&c);
    if (jb->object)
        ns_scene_clip_object(&c, (float)o->width / (float)o->height);
    ns_scene_plan_steps(jb->key, o->frames, steps);
    c.n_frames = o->frames;
    c.steps = steps;
    ns_scene_begin_clip(w->R, &c);
    w->arena.len = 0;
    for (int f = 0; f < o->frames; f++) {
        ns_scene_render_frame(w->R, &c, f, w->rgb);
        unsigned long size = w->jpg_cap;
        if (tjCompress2(w->tj, w->rgb, o->width, 0, o->height, TJPF_RGB, &w->jpg, &size,
                        TJSAMP_420, o->quality, TJFLAG_NOREALLOC) != 0)
            return ns_error(NS_ERR_INTERNAL, "JPEG encoding failed for '%s' frame %d: %s", jb->rel,
                            f, tjGetErrorStr2(w->tj));
        w->off[f] = w->arena.len;
        w->len[f] = size;
        ns_status st = ns_gen_buf_append(&w->arena, w->jpg, size);
        if (st != NS_OK)
            return st;
    }
    for (int f = 0; f < o->frames; f++) { /* arena stops moving once every frame is in */
        char *name = w->names + (size_t)f * 32;
        snprintf(name, 32, "frame_%d.jpg", f);
        w->members[f] = (ns_gen_member){name, w->arena.p + w->off[f], w->len[f],
                                        NS_GEN_MEMBER_FILE, NULL};
    }
    w->out.len = 0;
    ns_status st;
    if (jb->fmt == NS_GEN_MJPEG) {
        st = ns_gen_mjpeg(&w->out, w->members, (size_t)o->frames);
    } else if (jb->fmt == NS_GEN_AVI) {
        ns_gen_avi_opts ao = {o->width, o->height, o->fps, jb->idx1, "MJPG"};
        st = ns_gen_avi(&w->out, &ao, w->members, (size_t)o->frames);
    } else {
        st = ns_gen_archive(&w->out, jb->fmt, w->members, (size_t)o->frames, jb->start);
    }
    if (st != NS_OK)
        return ns_error_wrap(st, "'%s'", jb->rel);
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", o->out, jb->rel);
    jb->bytes = w->out.len;
    return ns_gen_save(path, w->out.p, w->out.len, 0);
}

/* ---- outputs ------------------------------------------------------------------ */

static ns_status bprintf(ns_gen_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static ns_status bprintf(ns_gen_buf *b, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(room ? (char *)b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return ns_error(NS_ERR_INTERNAL, "formatting failed");
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return NS_OK;
        }
        ns_status st = ns_gen_buf_reserve(b, (size_t)n + 1);
        if (st != NS_OK)
            return st;
    }
    return ns_error(NS_ERR_INTERNAL, "formatting failed");
}

/* RFC 4180 cell: quoted when needed, leading ' against spreadsheet formulas. */
static ns_status csv_cell(ns_gen_buf *b, const char *s, int last)
{
    ns_status st = NS_OK;
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    int guard = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
    if (quote && (st = ns_gen_buf_append(b, "\"", 1)) != NS_OK)
        return st;
    if (guard && (st = ns_gen_buf_append(b, "'", 1)) != NS_OK)
        return st;
    for (const char *p = s; *p && st == NS_OK; p++) {
        st = ns_gen_buf_append(b, p, 1);
        if (*p == '"' && st == NS_OK)
            st = ns_gen_buf_append(b, "\"", 1); /* doubled inside quotes */
    }
    if (quote && st == NS_OK)
        st = ns_gen_buf_append(b, "\"", 1);
    if (st == NS_OK)
        st = ns_gen_buf_append(b, last ? "\n" : ",", 1);
    return st;
}

static void iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static ns_status write_manifest(const ns_glove_opts *o, const job *jobs, size_t n_jobs,
                                int64_t day0, ns_gen_buf *b)
{
    ns_status st = bprintf(b, "path,camera,start_time,fps,night\n");
    for (size_t j = 0; j < n_jobs && st == NS_OK; j++) {
        char cam[16], t[32], night[11], fps[32];
        snprintf(cam, sizeof(cam), "cam%02d", jobs[j].camera + 1);
        iso_time(jobs[j].start, t);
        night_name(day0, jobs[j].night, night);
        snprintf(fps, sizeof(fps), "%g", o->fps);
        const char *cells[5] = {jobs[j].rel, cam, t, fps, night};
        for (int i = 0; i < 5 && st == NS_OK; i++)
            st = csv_cell(b, cells[i], i == 4);
    }
    return st;
}

static ns_status write_labels(const ns_glove_opts *o, const job *jobs, size_t n_jobs,
                              const uint8_t *steps, int64_t day0, ns_gen_buf *b)
{
    ns_status st = bprintf(b, "path,frame,member,label,glove,camera,night,object\n");
    for (size_t j = 0; j < n_jobs && st == NS_OK; j++) {
        const job *jb = &jobs[j];
        char cam[16], night[11];
        snprintf(cam, sizeof(cam), "cam%02d", jb->camera + 1);
        night_name(day0, jb->night, night);
        int stream = jb->fmt == NS_GEN_MJPEG || jb->fmt == NS_GEN_AVI;
        for (int f = 0; f < o->frames && st == NS_OK; f++) {
            char idx[16], member[32];
            snprintf(idx, sizeof(idx), "%d", f);
            snprintf(member, sizeof(member), stream ? "#%d" : "frame_%d.jpg", f);
            const char *cells[8] = {jb->rel, idx, member, ns_scene_step_names[steps[jb->first + (size_t)f]],
                                    jb->glove == NS_GLOVE_BLACK ? "black" : "gray", cam, night,
                                    jb->object ? "drill" : "none"};
            for (int i = 0; i < 8 && st == NS_OK; i++)
                st = csv_cell(b, cells[i], i == 7);
        }
    }
    return st;
}

static ns_status write_truth(const ns_glove_opts *o, const job *jobs, const uint8_t *steps,
                             int64_t day0, ns_gen_buf *b)
{
    ns_status st = bprintf(b, "{\n  \"format\": \"nightshift-gen-truth\",\n  \"version\": 1,\n"
                              "  \"scenario\": \"glove\",\n  \"params\": {\"nights\": %d, \"start\": \"%s\", "
                              "\"cameras\": %d, \"clips\": %d, \"frames\": %d, \"width\": %d, "
                              "\"height\": %d, \"quality\": %d, \"fps\": %g, \"seed\": %llu, \"formats\": [",
                           o->nights, o->start, o->cameras, o->clips, o->frames, o->width, o->height,
                           o->quality, o->fps, (unsigned long long)o->seed);
    for (int i = 0; i < o->n_formats && st == NS_OK; i++)
        st = bprintf(b, "%s\"%s\"", i ? ", " : "", ns_gen_format_name(o->formats[i]));
    if (st == NS_OK)
        st = bprintf(b, "]},\n  \"labels\": [");
    for (int s = 0; s < NS_STEP_COUNT && st == NS_OK; s++)
        st = bprintf(b, "%s\"%s\"", s ? ", " : "", ns_scene_step_names[s]);
    if (st == NS_OK)
        st = bprintf(b, "],\n  \"shifts\": [");
    for (int i = 0; i < o->n_shifts && st == NS_OK; i++) {
        const ns_glove_shift *sh = &o->shifts[i];
        char from[11];
        night_name(day0, sh->night - 1, from);
        st = bprintf(b, "%s\n    {\"kind\": \"%s\", \"from_night\": \"%s\", \"night_index\": %d, \"nights\": [",
                     i ? "," : "", ns_glove_shift_names[sh->kind], from, sh->night);
        int first = 1;
        for (int n = sh->night - 1; n < o->nights && st == NS_OK; n++, first = 0) {
            char night[11];
            night_name(day0, n, night);
            st = bprintf(b, "%s\"%s\"", first ? "" : ", ", night);
        }
        if (st == NS_OK)
            st = bprintf(b, "], \"cameras\": [");
        first = 1;
        for (int c = 0; c < o->cameras && st == NS_OK; c++)
            if ((sh->cameras >> c) & 1) {
                st = bprintf(b, "%s\"cam%02d\"", first ? "" : ", ", c + 1);
                first = 0;
            }
        if (st == NS_OK)
            st = bprintf(b, "]}");
    }
    if (st == NS_OK)
        st = bprintf(b, "\n  ],\n  \"nights\": [");
    uint64_t tot_glove[2] = {0, 0}, tot_label[NS_STEP_COUNT] = {0};
    size_t j = 0;
    for (int n = 0; n < o->nights && st == NS_OK; n++) {
        char night[11];
        night_name(day0, n, night);
        st = bprintf(b, "%s\n    {\"night\": \"%s\", \"cameras\": [", n ? "," : "", night);
        for (int c = 0; c < o->cameras && st == NS_OK; c++) {
            uint64_t glove[2] = {0, 0}, label[NS_STEP_COUNT] = {0};
            int dim = 0, bump = 0, object = 0;
            for (int k = 0; k < o->clips; k++, j++) {
                glove[jobs[j].glove] += (uint64_t)o->frames;
                dim = jobs[j].dim;
                bump = jobs[j].bump;
                object += jobs[j].object;
                for (int f = 0; f < o->frames; f++)
                    label[steps[jobs[j].first + (size_t)f]]++;
            }
            st = bprintf(b, "%s\n      {\"camera\": \"cam%02d\", \"clips\": %d, \"frames\": %llu, "
                            "\"glove\": {\"gray\": %llu, \"black\": %llu}, \"light\": %s, \"bump\": %s, "
                            "\"object_clips\": %d, \"labels\": {",
                         c ? "," : "", c + 1, o->clips, (unsigned long long)(glove[0] + glove[1]),
                         (unsigned long long)glove[0], (unsigned long long)glove[1],
                         dim ? "true" : "false", bump ? "true" : "false", object);
            for (int s = 0; s < NS_STEP_COUNT && st == NS_OK; s++) {
                st = bprintf(b, "%s\"%s\": %llu", s ? ", " : "", ns_scene_step_names[s],
                             (unsigned long long)label[s]);
                tot_label[s] += label[s];
            }
            tot_glove[0] += glove[0];
            tot_glove[1] += glove[1];
            if (st == NS_OK)
                st = bprintf(b, "}}");
        }
        if (st == NS_OK)
            st = bprintf(b, "\n    ]}");
    }
    if (st == NS_OK)
        st = bprintf(b, "\n  ],\n  \"totals\": {\"clips\": %llu, \"frames\": %llu, \"glove\": {\"gray\": %llu, "
                        "\"black\": %llu}, \"labels\": {",
                     (unsigned long long)o->nights * (unsigned long long)o->cameras * (unsigned long long)o->clips,
                     (unsigned long long)(tot_glove[0] + tot_glove[1]), (unsigned long long)tot_glove[0],
                     (unsigned long long)tot_glove[1]);
    for (int s = 0; s < NS_STEP_COUNT && st == NS_OK; s++)
        st = bprintf(b, "%s\"%s\": %llu", s ? ", " : "", ns_scene_step_names[s],
                     (unsigned long long)tot_label[s]);
    if (st == NS_OK)
        st = bprintf(b, "}}\n}\n");
    return st;
}

/* ---- driver -------------------------------------------------------------------- */

static ns_status check_opts(const ns_glove_opts *o)
{
    if (!o->out || !*o->out)
        return ns_error(NS_ERR_USAGE, "--out DIR is required");
    if (o->nights < 1 || o->nights > 3650 || o->cameras < 1 || o->cameras > NS_GLOVE_MAX_CAMERAS ||
        o->clips < 1 || o->clips > 1000 || o->frames < 1 || o->frames > 100000)
        return ns_error(NS_ERR_USAGE, "need 1..3650 nights, 1..%d cameras, 1..1000 clips, "
                                      "1..100000 frames", NS_GLOVE_MAX_CAMERAS);
    if (o->width < 16 || o->height < 16 || o->width > 8192 || o->height > 8192)
        return ns_error(NS_ERR_USAGE, "frame size %dx%d out of range 16..8192", o->width, o->height);
    if (o->quality < 1 || o->quality > 100)
        return ns_error(NS_ERR_USAGE, "quality %d out of range 1..100", o->quality);
    if (!(o->fps > 0.0 && o->fps <= 1000.0))
        return ns_error(NS_ERR_USAGE, "fps %g out of range (0, 1000]", o->fps);
    if (o->n_formats < 1)
        return ns_error(NS_ERR_USAGE, "no clip formats");
    return NS_OK;
}

ns_status ns_glove_generate(const ns_glove_opts *o, ns_glove_stats *stats)
{
    ns_status st = NS_OK;
    job *jobs = NULL;
    uint8_t *steps = NULL;
    ns_gen_buf b = {0};
    double t0 = omp_get_wtime();
    int64_t day0 = 0;
    memset(stats, 0, sizeof(*stats));
    if ((st = check_opts(o)) != NS_OK || (st = parse_date(o->start, &day0)) != NS_OK)
        goto done;
    size_t n_jobs = (size_t)o->nights * (size_t)o->cameras * (size_t)o->clips;
    size_t n_frames = n_jobs * (size_t)o->frames;
    jobs = calloc(n_jobs, sizeof(job));
    steps = malloc(n_frames);
    if (!jobs || !steps) {
        st = ns_error(NS_ERR_NOMEM, "out of memory planning %zu clips", n_jobs);
        goto done;
    }
    plan(o, day0, jobs);
    ns_scene_station stations[NS_GLOVE_MAX_CAMERAS];
    for (int c = 0; c < o->cameras; c++)
        ns_scene_station_init(&stations[c], o->seed, c, (float)o->width / (float)o->height);
    for (size_t j = 0; j < n_jobs && st == NS_OK; j += (size_t)o->clips) {
        char dir[4400];
        const char *rel = jobs[j].rel, *slash = strrchr(rel, '/');
        snprintf(dir, sizeof(dir), "%s/%.*s", o->out, (int)(slash - rel), rel);
        st = ns_mkdir_p(dir);
    }
    if (st != NS_OK)
        goto done;

    int failed = 0;
    int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    {
        worker w;
        ns_status wst = worker_init(&w, o);
        char werr[256] = "";
        if (wst != NS_OK)
            ns_errmsg_copy(werr, sizeof(werr));
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < n_jobs; j++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop)
                continue;
            jobs[j].st = wst != NS_OK ? wst : make_clip(&w, o, stations, &jobs[j], steps + jobs[j].first);
            if (jobs[j].st != NS_OK) {
                if (wst != NS_OK)
                    snprintf(jobs[j].err, sizeof(jobs[j].err), "%s", werr);
                else
                    ns_errmsg_copy(jobs[j].err, sizeof(jobs[j].err));
#pragma omp atomic write
                failed = 1;
            }
        }
        worker_release(&w);
    }
    for (size_t j = 0; j < n_jobs; j++) {
        if (jobs[j].st != NS_OK) {
            st = ns_error(jobs[j].st, "%s", jobs[j].err);
            goto done;
        }
        stats->bytes += jobs[j].bytes;
    }

    char path[4400];
    snprintf(path, sizeof(path), "%s/manifest.csv", o->out);
    if ((st = write_manifest(o, jobs, n_jobs, day0, &b)) != NS_OK ||
        (st = ns_gen_save(path, b.p, b.len, 1)) != NS_OK)
        goto done;
    b.len = 0;
    snprintf(path, sizeof(path), "%s/labels.csv", o->out);
    if ((st = write_labels(o, jobs, n_jobs, steps, day0, &b)) != NS_OK ||
        (st = ns_gen_save(path, b.p, b.len, 1)) != NS_OK)
        goto done;
    b.len = 0;
    snprintf(path, sizeof(path), "%s/truth.json", o->out);
    if ((st = write_truth(o, jobs, steps, day0, &b)) != NS_OK ||
        (st = ns_gen_save(path, b.p, b.len, 1)) != NS_OK)
        goto done;
    stats->clips = n_jobs;
    stats->frames = n_frames;
    stats->seconds = omp_get_wtime() - t0;
done:
    free(jobs);
    free(steps);
    ns_gen_buf_release(&b);
    return st;
}
