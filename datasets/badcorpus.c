/* badcorpus.c -- the bad-input corpus (see badcorpus.h). */
#include "badcorpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "nightshift/fsutil.h"
#include "scene.h"
#include "writers.h"

#define SMALL_W 160
#define SMALL_H 120
#define BIG_W 320
#define BIG_H 240
#define MAX_MEMBERS 3100
#define ARENA_BYTES (16u << 20) /* every case fits; member pointers stay valid */

enum { V_NORMAL = 0, V_GRAY, V_PROGRESSIVE, V_CMYK, V_BLACK, V_BIG };

typedef struct corpus {
    const char *dir;
    uint64_t seed;
    ns_scene_renderer *R[2]; /* SMALL and BIG */
    ns_scene_station station[2];
    tjhandle tj;
    tjhandle tj_prog;        /* progressive only: libjpeg-turbo 2.1 leaves a handle that
                                once encoded progressive writing corrupt baseline files */
    uint8_t *rgb;            /* (BIG_H, BIG_W, 3) */
    uint8_t *cmyk;           /* (BIG_H, BIG_W, 4) */
    ns_gen_buf arena;        /* JPEGs and other member bytes of the current case */
    ns_gen_buf out;          /* the current file */
    ns_gen_buf expect;       /* expect.csv */
    ns_gen_member m[MAX_MEMBERS];
    char names[MAX_MEMBERS][40];
    size_t n;
    size_t n_files;
} corpus;

/* ---- building members ------------------------------------------------------- */

static void reset(corpus *c)
{
    c->arena.len = 0;
    c->out.len = 0;
    c->n = 0;
}

static ns_status add_member(corpus *c, const char *name, const uint8_t *data, uint64_t size,
                            int type, const char *link)
{
    if (c->n == MAX_MEMBERS)
        return ns_error(NS_ERR_INTERNAL, "bad corpus: too many members");
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
    c->m[c->n] = (ns_gen_member){c->names[c->n], data, size, type, link};
    c->n++;
    return NS_OK;
}

/* Appends bytes to the arena without ever moving it. */
static ns_status arena_put(corpus *c, const void *data, size_t n, uint8_t **where)
{
    if (c->arena.cap - c->arena.len < n)
        return ns_error(NS_ERR_INTERNAL, "bad corpus: case exceeds its %u-byte arena", ARENA_BYTES);
    *where = c->arena.p + c->arena.len;
    if (data)
        memcpy(*where, data, n);
    c->arena.len += n;
    return NS_OK;
}

/* Renders frame f of a little clip (clip id k) and adds it as a JPEG member. */
static ns_status add_frame(corpus *c, const char *name, int variant, int k, int f)
{
    int big = variant == V_BIG;
    int W = big ? BIG_W : SMALL_W, H = big ? BIG_H : SMALL_H;
    uint8_t steps[16];
    ns_scene_clip clip;
    uint64_t key = ns_gen_key(c->seed, 0xBAD, (uint64_t)k, 0, 0);
    ns_scene_clip_init(&clip, &c->station[big], key, NS_GLOVE_GRAY);
    ns_scene_plan_steps(key, 16, steps);
    clip.n_frames = 16;
    clip.steps = steps;
    ns_scene_begin_clip(c->R[big], &clip);
    ns_scene_render_frame(c->R[big], &clip, f % 16, c->rgb);
    const uint8_t *src = c->rgb;
    int pf = TJPF_RGB, samp = TJSAMP_420, flags = 0;
    size_t npx = (size_t)W * (size_t)H;
    if (variant == V_BLACK) {
        /* Lens cap on: dark sensor noise only, so frames still differ. */
        ns_gen_rng r = {ns_gen_key(key, 0xB1AC, (uint64_t)f, 0, 0)};
        for (size_t i = 0; i < npx * 3; i++)
            c->rgb[i] = (uint8_t)(2 + ns_gen_next(&r) % 6);
    } else if (variant == V_GRAY) {
        samp = TJSAMP_GRAY;
    } else if (variant == V_PROGRESSIVE) {
        flags = TJFLAG_PROGRESSIVE;
    } else if (variant == V_CMYK) {
        for (size_t i = 0; i < npx; i++) {
            int r = c->rgb[i * 3], g = c->rgb[i * 3 + 1], b = c->rgb[i * 3 + 2];
            int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
            c->cmyk[i * 4 + 0] = (uint8_t)(mx - r);
            c->cmyk[i * 4 + 1] = (uint8_t)(mx - g);
            c->cmyk[i * 4 + 2] = (uint8_t)(mx - b);
            c->cmyk[i * 4 + 3] = (uint8_t)(255 - mx);
        }
        src = c->cmyk;
        pf = TJPF_CMYK;
    }
    unsigned long cap = tjBufSize(W, H, TJSAMP_444), size = cap;
    uint8_t *dst;
    ns_status st = arena_put(c, NULL, cap, &dst);
    if (st != NS_OK)
        return st;
    tjhandle tj = variant == V_PROGRESSIVE ? c->tj_prog : c->tj;
    if (tjCompress2(tj, src, W, 0, H, pf, &dst, &size, samp, 85, flags | TJFLAG_NOREALLOC) != 0)
        return ns_error(NS_ERR_INTERNAL, "JPEG encoding failed: %s", tjGetErrorStr2(tj));
    c->arena.len -= cap - size;
    return add_member(c, name, dst, size, NS_GEN_MEMBER_FILE, NULL);
}

static ns_status add_frames(corpus *c, int variant, int k, int from, int to)
{
    ns_status st = NS_OK;
    for (int f = from; f < to && st == NS_OK; f++) {
        char name[32];
        snprintf(name, sizeof(name), "frame_%d.jpg", f);
        st = add_frame(c, name, variant, k, f);
    }
    return st;
}

/* ---- writing ------------------------------------------------------------------ */

static ns_status save(corpus *c, const char *file)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", c->dir, file);
    c->n_files++;
    return ns_gen_save(path, c->out.p, c->out.len, 0);
}

static ns_status archive_to_out(corpus *c, ns_gen_format fmt)
{
    return ns_gen_archive(&c->out, fmt, c->m, c->n, 1793491200); /* 2026-11-01T00:00:00Z */
}

static ns_status write_archive(corpus *c, const char *file, ns_gen_format fmt)
{
    ns_status st = archive_to_out(c, fmt);
    return st != NS_OK ? st : save(c, file);
}

static ns_status avi_to_out(corpus *c, const char *fourcc, int idx1)
{
    ns_gen_avi_opts o = {SMALL_W, SMALL_H, 10.0, idx1, ""};
    memcpy(o.fourcc, fourcc, 5);
    return ns_gen_avi(&c->out, &o, c->m, c->n);
}

static ns_status expect(corpus *c, const char *file, const char *outcome, int stored, int damaged,
                        int failed, const char *qc, const char *msg)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s,%s,%d,%d,%d,%s,%s\n", file, outcome, stored, damaged,
                     failed, qc, msg);
    return ns_gen_buf_append(&c->expect, line, (size_t)n);
}

/* ---- the cases ----------------------------------------------------------------- */

static ns_status case_archives(corpus *c)
{
    ns_status st;
    uint8_t *p = NULL;
    reset(c);
    if ((st = add_frames(c, V_NORMAL, 1, 0, 8)) != NS_OK ||
        (st = write_archive(c, "good_reference.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "good_reference.tar", "ingested", 8, 0, 0, "", "")) != NS_OK)
        return st;

    reset(c); /* the entropy-coded data ends early: libjpeg pads and warns */
    if ((st = add_frames(c, V_NORMAL, 2, 0, 8)) != NS_OK)
        return st;
    c->m[3].size = c->m[3].size * 6 / 10;
    if ((st = write_archive(c, "truncated_jpeg.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "truncated_jpeg.tar", "ingested", 8, 1, 0, "decode_warn", "")) != NS_OK)
        return st;

    reset(c); /* SOI then bytes that never form a marker: no header at all */
    if ((st = add_frames(c, V_NORMAL, 3, 0, 8)) != NS_OK || (st = arena_put(c, NULL, 2002, &p)) != NS_OK)
        return st;
    ns_gen_rng r = {ns_gen_key(c->seed, 0xC0, 0, 0, 0)};
    p[0] = 0xFF;
    p[1] = 0xD8;
    for (int i = 2; i < 2002; i++)
        p[i] = (uint8_t)(ns_gen_next(&r) % 0xFF);
    c->m[2].data = p;
    c->m[2].size = 2002;
    if ((st = write_archive(c, "corrupt_jpeg.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "corrupt_jpeg.tar", "ingested", 7, 0, 1, "decode_warn", "")) != NS_OK)
        return st;

    reset(c);
    static const char readme[] = "Station camera export. Frames are frame_<n>.jpg.\n";
    if ((st = add_frames(c, V_NORMAL, 4, 0, 4)) != NS_OK ||
        (st = add_member(c, "README.txt", (const uint8_t *)readme, sizeof(readme) - 1,
                         NS_GEN_MEMBER_FILE, NULL)) != NS_OK ||
        (st = add_frames(c, V_NORMAL, 4, 4, 8)) != NS_OK ||
        (st = write_archive(c, "nonjpeg_member.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "nonjpeg_member.tar", "ingested", 8, 0, 0, "", "")) != NS_OK)
        return st;

    reset(c); /* a valid frame whose SOF claims 60000 x 60000 */
    if ((st = add_frames(c, V_NORMAL, 5, 0, 8)) != NS_OK)
        return st;
    uint8_t *j = (uint8_t *)c->m[4].data;
    int patched = 0;
    for (size_t i = 2; i + 9 < c->m[4].size && !patched; i++)
        if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) {
            j[i + 5] = 0xEA; /* height 60000 */
            j[i + 6] = 0x60;
            j[i + 7] = 0xEA; /* width 60000 */
            j[i + 8] = 0x60;
            patched = 1;
        }
    if (!patched)
        return ns_error(NS_ERR_INTERNAL, "bad corpus: no SOF marker in the encoded frame");
    if ((st = write_archive(c, "huge_header.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "huge_header.tar", "ingested", 7, 0, 1, "decode_warn", "limit")) != NS_OK)
        return st;

    reset(c);
    if ((st = add_frames(c, V_NORMAL, 6, 0, 8)) != NS_OK ||
        (st = archive_to_out(c, NS_GEN_TAR_GZ)) != NS_OK)
        return st;
    c->out.len /= 2;
    if ((st = save(c, "truncated_archive.tar.gz")) != NS_OK ||
        (st = expect(c, "truncated_archive.tar.gz", "quarantined", 0, 0, 0, "", "")) != NS_OK)
        return st;

    /* Local header kept recognisable, its name/extra lengths point past the end;
     * central directory and end record signatures destroyed. */
    reset(c);
    if ((st = add_frames(c, V_NORMAL, 7, 0, 8)) != NS_OK || (st = archive_to_out(c, NS_GEN_ZIP)) != NS_OK)
        return st;
    uint8_t *z = c->out.p;
    z[26] = z[27] = z[28] = z[29] = 0xFF;
    for (size_t i = 4; i + 4 <= c->out.len; i++)
        if (z[i] == 'P' && z[i + 1] == 'K' && ((z[i + 2] == 1 && z[i + 3] == 2) ||
                                               (z[i + 2] == 5 && z[i + 3] == 6) ||
                                               (z[i + 2] == 3 && z[i + 3] == 4)))
            z[i] = z[i + 1] = 'X';
    if ((st = save(c, "corrupt_zip.zip")) != NS_OK ||
        (st = expect(c, "corrupt_zip.zip", "quarantined", 0, 0, 0, "", "")) != NS_OK)
        return st;

    reset(c);
    if ((st = add_frames(c, V_NORMAL, 8, 0, 1)) != NS_OK ||
        (st = add_frame(c, "../../etc/evil_1.jpg", V_NORMAL, 8, 1)) != NS_OK ||
        (st = add_frame(c, "/abs/frame_2.jpg", V_NORMAL, 8, 2)) != NS_OK ||
        (st = add_frames(c, V_NORMAL, 8, 3, 6)) != NS_OK ||
        (st = write_archive(c, "traversal.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "traversal.tar", "ingested", 6, 0, 0, "", "")) != NS_OK)
        return st;

    reset(c);
    if ((st = add_member(c, "clips/", NULL, 0, NS_GEN_MEMBER_DIR, NULL)) != NS_OK ||
        (st = add_frames(c, V_NORMAL, 9, 0, 3)) != NS_OK ||
        (st = add_member(c, "frame_3.jpg", NULL, 0, NS_GEN_MEMBER_SYMLINK, "frame_0.jpg")) != NS_OK ||
        (st = add_frames(c, V_NORMAL, 9, 4, 7)) != NS_OK ||
        (st = write_archive(c, "symlink.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "symlink.tar", "ingested", 6, 0, 0, "", "")) != NS_OK)
        return st;

    reset(c); /* 200 MiB of zeros deflate to ~200 KiB */
    if ((st = add_frames(c, V_NORMAL, 10, 0, 2)) != NS_OK ||
        (st = add_member(c, "frame_2.jpg", NULL, 200ull << 20, NS_GEN_MEMBER_FILE, NULL)) != NS_OK ||
        (st = add_frames(c, V_NORMAL, 10, 3, 5)) != NS_OK ||
        (st = write_archive(c, "bomb.tar.gz", NS_GEN_TAR_GZ)) != NS_OK ||
        (st = expect(c, "bomb.tar.gz", "quarantined", 0, 0, 0, "", "limit")) != NS_OK)
        return st;

    reset(c); /* 3000 entries: 6 frames among 2994 small sidecar files */
    static const uint8_t meta[] = "exposure=auto\n";
    if ((st = add_frames(c, V_NORMAL, 11, 0, 3)) != NS_OK)
        return st;
    for (int i = 0; i < 2994 && st == NS_OK; i++) {
        char name[32];
        snprintf(name, sizeof(name), "meta/%04d.txt", i);
        st = add_member(c, name, meta, sizeof(meta) - 1, NS_GEN_MEMBER_FILE, NULL);
    }
    if (st != NS_OK || (st = add_frames(c, V_NORMAL, 11, 3, 6)) != NS_OK ||
        (st = write_archive(c, "many_entries.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "many_entries.tar", "ingested", 6, 0, 0, "", "")) != NS_OK)
        return st;
    return NS_OK;
}

static ns_status case_avi(corpus *c)
{
    ns_status st;
    reset(c); /* recording cut off inside the last chunk */
    if ((st = add_frames(c, V_NORMAL, 12, 0, 8)) != NS_OK || (st = avi_to_out(c, "MJPG", 0)) != NS_OK)
        return st;
    uint64_t last = c->m[7].size;
    c->out.len = c->out.len - (size_t)(last + (last & 1)) + (size_t)(last / 2);
    if ((st = save(c, "avi_chunk_past_eof.avi")) != NS_OK ||
        (st = expect(c, "avi_chunk_past_eof.avi", "ingested", 7, 0, 0, "", "past end")) != NS_OK)
        return st;

    reset(c);
    if ((st = avi_to_out(c, "MJPG", 1)) != NS_OK || (st = save(c, "avi_no_frames.avi")) != NS_OK ||
        (st = expect(c, "avi_no_frames.avi", "quarantined", 0, 0, 0, "", "no video frames")) != NS_OK)
        return st;

    reset(c); /* H.264 access units: start code, SPS, PPS, IDR slice */
    static const uint8_t nal[] = {0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF,
                                  0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, 0, 0, 0, 1, 0x65, 0x88,
                                  0x84, 0x00, 0x33, 0xFF};
    for (int i = 0; i < 6 && st == NS_OK; i++)
        st = add_member(c, "#", nal, sizeof(nal), NS_GEN_MEMBER_FILE, NULL);
    if (st != NS_OK || (st = avi_to_out(c, "H264", 1)) != NS_OK ||
        (st = save(c, "avi_h264.avi")) != NS_OK ||
        (st = expect(c, "avi_h264.avi", "unsupported", 0, 0, 0, "", "unsupported codec h264")) != NS_OK)
        return st;
    return NS_OK;
}

static ns_status case_streams(corpus *c)
{
    ns_status st;
    reset(c); /* random bytes that start like no known container */
    if ((st = ns_gen_buf_reserve(&c->out, 4096)) != NS_OK)
        return st;
    ns_gen_rng r = {ns_gen_key(c->seed, 0x4A4D, 0, 0, 0)};
    for (int i = 0; i < 4096; i++)
        c->out.p[i] = (uint8_t)ns_gen_next(&r);
    c->out.p[0] = 0x00;
    c->out.p[1] = 0x4E;
    c->out.len = 4096;
    if ((st = save(c, "random_bytes.bin")) != NS_OK ||
        (st = expect(c, "random_bytes.bin", "unrecognised", 0, 0, 0, "", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = save(c, "empty.mjpg")) != NS_OK ||
        (st = expect(c, "empty.mjpg", "unrecognised", 0, 0, 0, "", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_GRAY, 13, 0, 8)) != NS_OK || (st = ns_gen_mjpeg(&c->out, c->m, c->n)) != NS_OK ||
        (st = save(c, "gray.mjpg")) != NS_OK ||
        (st = expect(c, "gray.mjpg", "ingested", 8, 0, 0, "", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_PROGRESSIVE, 14, 0, 8)) != NS_OK ||
        (st = write_archive(c, "progressive.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "progressive.tar", "ingested", 8, 0, 0, "", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_CMYK, 15, 0, 8)) != NS_OK ||
        (st = write_archive(c, "cmyk.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "cmyk.tar", "ingested", 8, 0, 0, "", "")) != NS_OK)
        return st;
    return NS_OK;
}

static ns_status case_qc(corpus *c)
{
    ns_status st;
    reset(c); /* a hung camera repeats one frame */
    if ((st = add_frame(c, "frame_0.jpg", V_NORMAL, 16, 0)) != NS_OK)
        return st;
    for (int f = 1; f < 8 && st == NS_OK; f++) {
        char name[32];
        snprintf(name, sizeof(name), "frame_%d.jpg", f);
        st = add_member(c, name, c->m[0].data, c->m[0].size, NS_GEN_MEMBER_FILE, NULL);
    }
    if (st != NS_OK || (st = write_archive(c, "frozen.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "frozen.tar", "ingested", 8, 0, 0, "frozen", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_BLACK, 17, 0, 8)) != NS_OK ||
        (st = write_archive(c, "black.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "black.tar", "ingested", 8, 0, 0, "black", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_NORMAL, 18, 0, 4)) != NS_OK || (st = add_frames(c, V_BIG, 18, 4, 8)) != NS_OK ||
        (st = write_archive(c, "res_change.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "res_change.tar", "ingested", 8, 0, 0, "res_change", "")) != NS_OK)
        return st;
    reset(c);
    if ((st = add_frames(c, V_NORMAL, 19, 0, 4)) != NS_OK || (st = add_frames(c, V_NORMAL, 19, 9, 13)) != NS_OK ||
        (st = write_archive(c, "gaps.tar", NS_GEN_TAR)) != NS_OK ||
        (st = expect(c, "gaps.tar", "ingested", 8, 0, 0, "gaps", "")) != NS_OK)
        return st;
    return NS_OK;
}

ns_status ns_badcorpus_generate(const char *dir, uint64_t seed, size_t *n_files)
{
    ns_status st = NS_OK;
    corpus *c = calloc(1, sizeof(corpus));
    *n_files = 0;
    if (!c) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for the bad corpus");
        goto done;
    }
    c->dir = dir;
    c->seed = seed;
    if ((st = ns_mkdir_p(dir)) != NS_OK ||
        (st = ns_scene_renderer_create(SMALL_W, SMALL_H, &c->R[0])) != NS_OK ||
        (st = ns_scene_renderer_create(BIG_W, BIG_H, &c->R[1])) != NS_OK ||
        (st = ns_gen_buf_reserve(&c->arena, ARENA_BYTES)) != NS_OK)
        goto done;
    ns_scene_station_init(&c->station[0], seed, 0, (float)SMALL_W / SMALL_H);
    ns_scene_station_init(&c->station[1], seed, 0, (float)BIG_W / BIG_H);
    c->tj = tjInitCompress();
    c->tj_prog = tjInitCompress();
    c->rgb = malloc((size_t)BIG_W * BIG_H * 3);
    c->cmyk = malloc((size_t)BIG_W * BIG_H * 4);
    if (!c->tj || !c->tj_prog || !c->rgb || !c->cmyk) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for the bad corpus frame buffers");
        goto done;
    }
    static const char header[] = "file,outcome,frames_stored,frames_damaged,frames_failed,qc,message\n";
    if ((st = ns_gen_buf_append(&c->expect, header, sizeof(header) - 1)) != NS_OK ||
        (st = case_archives(c)) != NS_OK || (st = case_avi(c)) != NS_OK ||
        (st = case_streams(c)) != NS_OK || (st = case_qc(c)) != NS_OK)
        goto done;
    char path[4400];
    snprintf(path, sizeof(path), "%s/expect.csv", dir);
    if ((st = ns_gen_save(path, c->expect.p, c->expect.len, 1)) != NS_OK)
        goto done;
    *n_files = c->n_files;
done:
    if (c) {
        ns_scene_renderer_free(c->R[0]);
        ns_scene_renderer_free(c->R[1]);
        if (c->tj)
            tjDestroy(c->tj);
        if (c->tj_prog)
            tjDestroy(c->tj_prog);
        free(c->rgb);
        free(c->cmyk);
        ns_gen_buf_release(&c->arena);
        ns_gen_buf_release(&c->out);
        ns_gen_buf_release(&c->expect);
        free(c);
    }
    return st;
}
