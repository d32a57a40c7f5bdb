/* scene.c -- the glove-shift station renderer (see scene.h). */
#include "scene.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const ns_scene_step_names[NS_STEP_COUNT] = {
    "pick_part", "place_part", "fasten_screw", "inspect", "idle",
};

#define PI_F 3.14159265f
#define MAX_PRIMS 512
#define NOISE_TAB 65536

enum { P_CAPSULE = 0, P_ELLIPSE, P_BOX };
enum { S_ROUND = 0, S_FLAT, S_SHADOW };
enum { HOLD_NONE = 0, HOLD_PART, HOLD_DRIVER };

/* A shape in pixel coordinates, ready to rasterise. */
typedef struct prim {
    int kind, shade;
    float ax, ay, bx, by; /* capsule ends; centre of ellipse/box in ax, ay */
    float r;              /* capsule radius; box corner radius */
    float ea, eb;         /* ellipse semi-axes; box half sizes */
    float ca, sa;         /* rotation of ellipse/box */
    float rgb[3];         /* for S_SHADOW: rgb[0] is the darkening strength */
    float spec, alpha, soft;
} prim;

/* World (u, v) -> pixel: s * R * ((u, v) - (uc, vc)) + (ox, oy). */
typedef struct view {
    float s, c, sn, uc, vc, ox, oy;
} view;

struct ns_scene_renderer {
    int W, H;
    uint8_t *bg;      /* (H, W, 3) background of the current clip */
    int16_t *noise;   /* (NOISE_TAB + 3W) noise, standard deviation 16 */
    int8_t *noise8;   /* (NOISE_TAB + 3W) the same scaled to the clip's noise level */
    prim *prims;      /* (MAX_PRIMS) scratch */
    int n_prims;
    view v;
    float gain[3], vignette, cx, cy, inv_r2;
    float light[3], half[3];
};

/* ---- small helpers ------------------------------------------------------- */

static float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
/* Plain comparisons: without -ffast-math fminf/fmaxf are library calls. */
static float minf(float a, float b) { return a < b ? a : b; }
static float maxf(float a, float b) { return a > b ? a : b; }

static void set3(float d[3], float r, float g, float b) { d[0] = r; d[1] = g; d[2] = b; }

static float lattice(int ix, int iy, uint32_t salt)
{
    uint32_t h = (uint32_t)ix * 374761393u + (uint32_t)iy * 668265263u + salt * 2246822519u;
    h = (h ^ (h >> 13)) * 1274126177u;
    h ^= h >> 16;
    return (float)(h & 0xffffff) * (1.0f / 16777216.0f);
}

/* Smooth value noise in [0, 1). */
static float vnoise(float x, float y, uint32_t salt)
{
    float fx = floorf(x), fy = floorf(y);
    int ix = (int)fx, iy = (int)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    float a = lattice(ix, iy, salt), b = lattice(ix + 1, iy, salt);
    float c = lattice(ix, iy + 1, salt), d = lattice(ix + 1, iy + 1, salt);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

/* ---- poses ----------------------------------------------------------------- */

typedef struct hand {
    float u, v, ang, curl, scale;
    int hold;
} hand;

typedef struct pose {
    hand h[2];     /* 0 left, 1 right */
    int part_between;
} pose;

static void set_hand(hand *h, float u, float v, float ang, float curl, float scale, int hold)
{
    h->u = u;
    h->v = v;
    h->ang = ang;
    h->curl = curl;
    h->scale = scale;
    h->hold = hold;
}

/* Key pose of a step; occurrence-specific offsets come from rng. */
static void key_pose(const ns_scene_station *st, float aspect, int step, ns_gen_rng *r, pose *p)
{
    const float up = -PI_F / 2;
    float fu = st->fix_u, fv = st->fix_v, mid = aspect * 0.5f;
    memset(p, 0, sizeof(*p));
    switch (step) {
    case NS_STEP_PICK: {
        int t = (int)(ns_gen_next(r) % (uint64_t)st->n_trays);
        int picker = st->tray_u[t] > fu ? 1 : 0;
        float sg = picker ? 1.0f : -1.0f;
        set_hand(&p->h[picker], st->tray_u[t] + sg * 0.02f, st->tray_v[t] + 0.15f,
                 up - sg * 0.25f, 0.55f, 1.0f, HOLD_NONE);
        set_hand(&p->h[1 - picker], fu - sg * 0.17f, fv + 0.30f, up + sg * 0.3f, 0.25f, 1.0f,
                 HOLD_NONE);
        break;
    }
    case NS_STEP_PLACE:
        set_hand(&p->h[1], fu + 0.03f, fv + 0.13f, up - 0.2f, 0.45f, 1.0f, HOLD_PART);
        set_hand(&p->h[0], fu - 0.14f, fv + 0.15f, up + 0.45f, 0.3f, 1.0f, HOLD_NONE);
        break;
    case NS_STEP_FASTEN:
        set_hand(&p->h[1], fu + 0.10f, fv + 0.19f, up - 0.45f, 0.95f, 1.0f, HOLD_DRIVER);
        set_hand(&p->h[0], fu - 0.12f, fv + 0.09f, up + 0.6f, 0.4f, 1.0f, HOLD_NONE);
        break;
    case NS_STEP_INSPECT:
        set_hand(&p->h[1], mid + 0.13f, 0.66f, up - 0.6f, 0.5f, 1.35f, HOLD_NONE);
        set_hand(&p->h[0], mid - 0.13f, 0.66f, up + 0.6f, 0.5f, 1.35f, HOLD_NONE);
        p->part_between = 1;
        break;
    default: /* idle */
        set_hand(&p->h[1], aspect * 0.86f, 0.88f, up - 0.1f, 0.1f, 1.0f, HOLD_NONE);
        set_hand(&p->h[0], aspect * 0.13f, 0.91f, up + 0.15f, 0.15f, 1.0f, HOLD_NONE);
        break;
    }
    for (int i = 0; i < 2; i++) {
        p->h[i].u += ns_gen_range(r, -0.025f, 0.025f);
        p->h[i].v += ns_gen_range(r, -0.02f, 0.02f);
        p->h[i].ang += ns_gen_range(r, -0.12f, 0.12f);
    }
}

static float lerpf(float a, float b, float t) { return a + (b - a) * t; }

/* Pose at (possibly fractional) time tf, without per-frame jitter. */
static void pose_at(const ns_scene_clip *c, float aspect, float tf, pose *out)
{
    int n = c->n_frames;
    int f = (int)floorf(tf);
    f = f < 0 ? 0 : (f >= n ? n - 1 : f);
    int step = c->steps[f];
    int s0 = f;
    while (s0 > 0 && c->steps[s0 - 1] == step)
        s0--;
    int s1 = f;
    while (s1 + 1 < n && c->steps[s1 + 1] == step)
        s1++;
    ns_gen_rng r = {ns_gen_key(c->key, 0x9053, (uint64_t)s0, 0, 0)};
    key_pose(c->station, aspect, step, &r, out);
    int tl = (s1 - s0 + 1) / 2;
    tl = tl > 4 ? 4 : tl;
    float into = tf - (float)s0 + 1.0f;
    if (s0 == 0 || into >= (float)(tl + 1))
        return;
    int prev_step = c->steps[s0 - 1];
    int p0 = s0 - 1;
    while (p0 > 0 && c->steps[p0 - 1] == prev_step)
        p0--;
    pose from;
    ns_gen_rng rp = {ns_gen_key(c->key, 0x9053, (uint64_t)p0, 0, 0)};
    key_pose(c->station, aspect, prev_step, &rp, &from);
    float t = clampf(into / (float)(tl + 1), 0.0f, 1.0f);
    t = t * t * (3 - 2 * t);
    for (int i = 0; i < 2; i++) {
        hand *h = &out->h[i];
        const hand *a = &from.h[i];
        h->u = lerpf(a->u, h->u, t);
        h->v = lerpf(a->v, h->v, t);
        h->ang = lerpf(a->ang, h->ang, t);
        h->curl = lerpf(a->curl, h->curl, t);
        h->scale = lerpf(a->scale, h->scale, t);
        if (t < 0.5f)
            h->hold = a->hold;
    }
    if (t < 0.5f)
        out->part_between = from.part_between;
}

/* Per-frame tremor and step-specific motion. */
static void add_jitter(const ns_scene_clip *c, int f, pose *p)
{
    ns_gen_rng r = {ns_gen_key(c->key, 0x717E, (uint64_t)f, 0, 0)};
    float ph = (float)(c->key & 0xffff) * 0.001f;
    for (int i = 0; i < 2; i++) {
        hand *h = &p->h[i];
        h->u += 0.004f * ns_gen_gauss(&r) + 0.008f * sinf(0.35f * (float)f + ph + (float)i);
        h->v += 0.004f * ns_gen_gauss(&r) + 0.006f * cosf(0.27f * (float)f + ph);
        h->ang += 0.035f * ns_gen_gauss(&r);
        if (h->hold == HOLD_DRIVER)
            h->ang += 0.18f * sinf(1.3f * (float)f + ph);
    }
}

/* ---- primitives ------------------------------------------------------------- */

static void to_px(const view *v, float u, float w, float *x, float *y)
{
    float du = u - v->uc, dv = w - v->vc;
    *x = v->ox + v->s * (v->c * du - v->sn * dv);
    *y = v->oy + v->s * (v->sn * du + v->c * dv);
}

static prim *new_prim(ns_scene_renderer *R, int kind, int shade, const float rgb[3], float spec)
{
    assert(R->n_prims < MAX_PRIMS); /* the scene's shape counts are fixed */
    prim *p = &R->prims[R->n_prims++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->shade = shade;
    if (rgb)
        memcpy(p->rgb, rgb, sizeof(p->rgb));
    p->spec = spec;
    p->alpha = 1.0f;
    p->ca = 1.0f;
    return p;
}

static prim *capsule(ns_scene_renderer *R, float u0, float v0, float u1, float v1, float rad,
                     int shade, const float rgb[3], float spec)
{
    prim *p = new_prim(R, P_CAPSULE, shade, rgb, spec);
    to_px(&R->v, u0, v0, &p->ax, &p->ay);
    to_px(&R->v, u1, v1, &p->bx, &p->by);
    p->r = rad * R->v.s;
    return p;
}

static prim *ellipse(ns_scene_renderer *R, float u, float v, float a, float b, float ang,
                     int shade, const float rgb[3], float spec)
{
    prim *p = new_prim(R, P_ELLIPSE, shade, rgb, spec);
    to_px(&R->v, u, v, &p->ax, &p->ay);
    p->ea = a * R->v.s;
    p->eb = b * R->v.s;
    p->ca = cosf(ang) * R->v.c - sinf(ang) * R->v.sn;
    p->sa = sinf(ang) * R->v.c + cosf(ang) * R->v.sn;
    return p;
}

static prim *box(ns_scene_renderer *R, float u, float v, float hw, float hh, float ang,
                 float corner, int shade, const float rgb[3])
{
    prim *p = ellipse(R, u, v, hw, hh, ang, shade, rgb, 0.0f);
    p->kind = P_BOX;
    p->r = corner * R->v.s;
    return p;
}

static void shadowify(ns_scene_renderer *R, prim *p, float du, float dv, float strength, float soft)
{
    p->shade = S_SHADOW;
    p->rgb[0] = strength;
    p->soft = soft * R->v.s;
    float dx = R->v.s * (R->v.c * du - R->v.sn * dv), dy = R->v.s * (R->v.sn * du + R->v.c * dv);
    p->ax += dx;
    p->ay += dy;
    p->bx += dx;
    p->by += dy;
}

/* ---- rasteriser ----------------------------------------------------------------- */

static void raster(const ns_scene_renderer *R, uint8_t *img, const prim *p)
{
    float ext, x0f, x1f, y0f, y1f;
    if (p->kind == P_CAPSULE) {
        ext = p->r + p->soft + 1.5f;
        x0f = minf(p->ax, p->bx) - ext;
        x1f = maxf(p->ax, p->bx) + ext;
        y0f = minf(p->ay, p->by) - ext;
        y1f = maxf(p->ay, p->by) + ext;
    } else {
        ext = (p->kind == P_BOX ? sqrtf(p->ea * p->ea + p->eb * p->eb) : maxf(p->ea, p->eb)) +
              p->soft + 1.5f;
        x0f = p->ax - ext;
        x1f = p->ax + ext;
        y0f = p->ay - ext;
        y1f = p->ay + ext;
    }
    int x0 = (int)maxf(0.0f, floorf(x0f)), x1 = (int)minf((float)R->W - 1, ceilf(x1f));
    int y0 = (int)maxf(0.0f, floorf(y0f)), y1 = (int)minf((float)R->H - 1, ceilf(y1f));
    if (x0 > x1 || y0 > y1)
        return;
    float bax = p->bx - p->ax, bay = p->by - p->ay;
    float inv_len2 = 1.0f / maxf(bax * bax + bay * bay, 1e-6f);
    float inv_r = 1.0f / maxf(p->r, 1e-3f);
    float minab = minf(p->ea, p->eb);
    const float *L = R->light, *Hh = R->half;
    float lit[3] = {p->rgb[0] * R->gain[0], p->rgb[1] * R->gain[1], p->rgb[2] * R->gain[2]};
    for (int y = y0; y <= y1; y++) {
        float py = (float)y + 0.5f;
        uint8_t *row = img + ((size_t)y * (size_t)R->W) * 3;
        int xa = x0, xb = x1;
        if (p->kind == P_CAPSULE && fabsf(bay) > 1e-3f) {
            /* Only the part of the axis within ext of this row can cover it:
             * a long diagonal sleeve touches a thin band, not its bounding box. */
            float t0 = clampf((py - ext - p->ay) / bay, 0.0f, 1.0f);
            float t1 = clampf((py + ext - p->ay) / bay, 0.0f, 1.0f);
            float xa_f = p->ax + minf(t0, t1) * bax, xb_f = p->ax + maxf(t0, t1) * bax;
            if (bax < 0) {
                float tmp = xa_f;
                xa_f = xb_f;
                xb_f = tmp;
            }
            xa = (int)maxf((float)x0, floorf(xa_f - ext));
            xb = (int)minf((float)x1, ceilf(xb_f + ext));
        }
        for (int x = xa; x <= xb; x++) {
            float px = (float)x + 0.5f;
            float sd, nx = 0, ny = 0;
            if (p->kind == P_CAPSULE) {
                float qx = px - p->ax, qy = py - p->ay;
                float t = clampf((qx * bax + qy * bay) * inv_len2, 0.0f, 1.0f);
                float dx = qx - t * bax, dy = qy - t * bay;
                float d = sqrtf(dx * dx + dy * dy);
                sd = d - p->r;
                nx = dx * inv_r;
                ny = dy * inv_r;
            } else {
                float qx = px - p->ax, qy = py - p->ay;
                float lx = qx * p->ca + qy * p->sa, ly = -qx * p->sa + qy * p->ca;
                if (p->kind == P_ELLIPSE) {
                    float ex = lx / p->ea, ey = ly / p->eb;
                    float d = sqrtf(ex * ex + ey * ey);
                    sd = (d - 1.0f) * minab;
                    float gx = ex * 0.7f, gy = ey * 0.7f; /* palms are flatter than tubes */
                    nx = gx * p->ca - gy * p->sa;
                    ny = gx * p->sa + gy * p->ca;
                } else {
                    float kx = fabsf(lx) - (p->ea - p->r), ky = fabsf(ly) - (p->eb - p->r);
                    float mx = maxf(kx, 0.0f), my = maxf(ky, 0.0f);
                    sd = sqrtf(mx * mx + my * my) + minf(maxf(kx, ky), 0.0f) - p->r;
                }
            }
            float a;
            if (p->shade == S_SHADOW)
                a = clampf(0.5f - sd / maxf(p->soft, 1.0f), 0.0f, 1.0f);
            else
                a = clampf(0.5f - sd, 0.0f, 1.0f);
            if (a <= 0.0f)
                continue;
            a *= p->alpha;
            uint8_t *px8 = row + (size_t)x * 3;
            if (p->shade == S_SHADOW) {
                float m = 1.0f - a * p->rgb[0];
                for (int k = 0; k < 3; k++)
                    px8[k] = (uint8_t)((float)px8[k] * m + 0.5f);
                continue;
            }
            float s, hi = 0.0f;
            if (p->shade == S_ROUND) {
                float n2 = nx * nx + ny * ny;
                float nz = sqrtf(maxf(0.0f, 1.0f - n2));
                float ndl = nx * L[0] + ny * L[1] + nz * L[2];
                float ndh = nx * Hh[0] + ny * Hh[1] + nz * Hh[2];
                s = 0.45f + 0.62f * maxf(ndl, 0.0f);
                if (ndh > 0.0f) {
                    float h2 = ndh * ndh, h4 = h2 * h2, h8 = h4 * h4;
                    hi = p->spec * 170.0f * h8 * h8;
                }
            } else {
                s = sd > -1.5f ? 0.78f : 1.0f; /* dark rim shows the part's edge */
            }
            float rx = px - R->cx, ry = py - R->cy;
            float vig = 1.0f - R->vignette * (rx * rx + ry * ry) * R->inv_r2;
            for (int k = 0; k < 3; k++) {
                float col = (lit[k] * s + hi * R->gain[k]) * vig;
                float o = (float)px8[k];
                px8[k] = (uint8_t)clampf(o + a * (col - o) + 0.5f, 0.0f, 255.0f);
            }
        }
    }
}

static void flush_prims(ns_scene_renderer *R, uint8_t *img)
{
    for (int i = 0; i < R->n_prims; i++)
        raster(R, img, &R->prims[i]);
    R->n_prims = 0;
}

/* ---- renderer ------------------------------------------------------------------- */

ns_status ns_scene_renderer_create(int width, int height, ns_scene_renderer **out)
{
    ns_status st = NS_OK;
    ns_scene_renderer *R = NULL;
    *out = NULL;
    if (width < 16 || height < 16 || width > 8192 || height > 8192) {
        st = ns_error(NS_ERR_USAGE, "frame size %dx%d out of range 16..8192", width, height);
        goto done;
    }
    R = calloc(1, sizeof(*R));
    if (!R) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for the renderer");
        goto done;
    }
    R->W = width;
    R->H = height;
    R->bg = malloc((size_t)width * (size_t)height * 3);
    R->noise = malloc((NOISE_TAB + (size_t)width * 3) * sizeof(int16_t));
    R->noise8 = malloc(NOISE_TAB + (size_t)width * 3);
    R->prims = malloc(MAX_PRIMS * sizeof(prim));
    if (!R->bg || !R->noise || !R->noise8 || !R->prims) {
        st = ns_error(NS_ERR_NOMEM, "out of memory for %dx%d frame buffers", width, height);
        goto done;
    }
    ns_gen_rng r = {0x4E015Eull};
    for (size_t i = 0; i < NOISE_TAB + (size_t)width * 3; i++)
        R->noise[i] = (int16_t)lrintf(clampf(16.0f * ns_gen_gauss(&r), -120.0f, 120.0f));
    *out = R;
    R = NULL;
done:
    ns_scene_renderer_free(R);
    return st;
}

void ns_scene_renderer_free(ns_scene_renderer *r)
{
    if (!r)
        return;
    free(r->bg);
    free(r->noise);
    free(r->noise8);
    free(r->prims);
    free(r);
}

static uint32_t salt_of(const ns_scene_station *st)
{
    return (uint32_t)(st->bench_rgb[0] * 7.0f + st->bench_rgb[2] * 13.0f + st->fix_u * 1000.0f);
}

/* Bench surface, conveyor band and rail at world (u, v). */
static void bench_colour(const ns_scene_station *st, uint32_t salt, float u, float v, float out[3])
{
    float k = st->bench_tex_scale, m;
    switch (st->bench_kind) {
    case 0: {
        float w = vnoise(u * 3.0f / k, v * 9.0f / k, salt) * 7.0f;
        m = 0.86f + 0.09f * sinf(v * 55.0f / k + w) + 0.07f * vnoise(u * 40.0f, v * 5.0f, salt + 1);
        break;
    }
    case 1:
        m = 0.88f + 0.10f * vnoise(u * 2.0f / k, v * 260.0f, salt) +
            0.05f * vnoise(u * 4.0f, v * 4.0f, salt + 2);
        break;
    case 2: {
        m = 0.9f + 0.1f * vnoise(u * 70.0f, v * 70.0f, salt);
        float gu = fabsf(u * 10.0f / k - floorf(u * 10.0f / k + 0.5f));
        float gv = fabsf(v * 10.0f / k - floorf(v * 10.0f / k + 0.5f));
        if (gu < 0.03f || gv < 0.03f)
            m *= 0.85f;
        break;
    }
    default:
        m = 0.94f + 0.06f * vnoise(u * 25.0f, v * 25.0f, salt) +
            0.04f * vnoise(u * 3.0f, v * 3.0f, salt + 3);
        break;
    }
    const float *base = st->bench_rgb;
    float cv = st->conveyor_v;
    if (v < cv - 0.022f) {
        base = st->conveyor_rgb;
        float f = u / st->slat_pitch;
        m = (f - floorf(f) < 0.12f ? 0.6f : 1.0f) * (0.92f + 0.08f * vnoise(u * 30, v * 30, salt));
    } else if (v < cv) {
        base = st->rail_rgb;
        float t = (v - (cv - 0.022f)) / 0.022f;
        m = 0.7f + 0.45f * sinf(t * PI_F);
    } else if (v < cv + 0.02f) {
        m *= 0.72f + 0.28f * (v - cv) / 0.02f; /* the rail's shadow */
    }
    for (int i = 0; i < 3; i++)
        out[i] = base[i] * m;
}

static void station_prims(ns_scene_renderer *R, const ns_scene_clip *c)
{
    const ns_scene_station *st = c->station;
    ns_gen_rng r = {ns_gen_key((uint64_t)salt_of(st), 0x5717, 0, 0, 0)};
    float dark[3];
    for (int i = 0; i < st->n_clutter; i++) {
        float u = st->clutter_u[i], v = st->clutter_v[i], a = st->clutter_ang[i];
        const float *col = st->clutter_rgb[i];
        switch (st->clutter_kind[i]) {
        case 0: box(R, u, v, 0.16f, 0.012f, a, 0.002f, S_FLAT, col); break;
        case 1: box(R, u, v, 0.03f, 0.02f, a, 0.003f, S_FLAT, col); break;
        case 2:
            for (int k = 0; k < 8; k++) {
                float t0 = (float)k * 0.05f, t1 = t0 + 0.05f;
                capsule(R, u + t0 * cosf(a), v + t0 * sinf(a) + 0.02f * sinf(t0 * 20),
                        u + t1 * cosf(a), v + t1 * sinf(a) + 0.02f * sinf(t1 * 20), 0.007f,
                        S_ROUND, col, 0.3f);
            }
            break;
        default:
            shadowify(R, ellipse(R, u, v, 0.045f, 0.045f, 0, S_ROUND, NULL, 0), 0.01f, 0.01f,
                      0.35f, 0.01f);
            ellipse(R, u, v, 0.045f, 0.045f, 0, S_ROUND, col, 0.4f);
            for (int k = 0; k < 6; k++)
                ellipse(R, u + ns_gen_range(&r, -0.025f, 0.025f),
                        v + ns_gen_range(&r, -0.025f, 0.025f), 0.006f, 0.006f, 0, S_ROUND,
                        st->part_rgb, 0.6f);
            break;
        }
    }
    for (int t = 0; t < st->n_trays; t++) {
        float u = st->tray_u[t], v = st->tray_v[t];
        shadowify(R, box(R, u, v, st->tray_hw, st->tray_hh, 0, 0.01f, S_FLAT, NULL), 0.012f,
                  0.015f, 0.45f, 0.015f);
        box(R, u, v, st->tray_hw, st->tray_hh, 0, 0.01f, S_FLAT, st->tray_rgb[t]);
        for (int k = 0; k < 3; k++)
            dark[k] = st->tray_rgb[t][k] * 0.62f;
        box(R, u, v, st->tray_hw - 0.012f, st->tray_hh - 0.012f, 0, 0.006f, S_FLAT, dark);
        for (int iy = 0; iy < 3; iy++)
            for (int ix = 0; ix < 4; ix++) {
                float pu = u - st->tray_hw + 0.03f + (float)ix * (st->tray_hw * 2 - 0.06f) / 3;
                float pv = v - st->tray_hh + 0.028f + (float)iy * (st->tray_hh * 2 - 0.056f) / 2;
                box(R, pu + ns_gen_range(&r, -0.006f, 0.006f), pv + ns_gen_range(&r, -0.005f, 0.005f),
                    0.014f, 0.009f, ns_gen_range(&r, -0.5f, 0.5f), 0.003f, S_FLAT, st->part_rgb);
            }
    }
    float u = st->fix_u, v = st->fix_v;
    shadowify(R, box(R, u, v, st->fix_hw, st->fix_hh, 0, 0.008f, S_FLAT, NULL), 0.015f, 0.02f,
              0.5f, 0.02f);
    box(R, u, v, st->fix_hw, st->fix_hh, 0, 0.008f, S_FLAT, st->fix_rgb);
    for (int k = 0; k < 3; k++)
        dark[k] = st->fix_rgb[k] * 0.55f;
    box(R, u, v, 0.045f, 0.03f, 0, 0.004f, S_FLAT, dark);
    box(R, u, v, 0.032f, 0.022f, 0, 0.003f, S_FLAT, st->part_rgb);
    static const float hole[3] = {20, 20, 22};
    for (int k = 0; k < 4; k++) {
        float hu = u + ((k & 1) ? 1.0f : -1.0f) * (st->fix_hw - 0.022f);
        float hv = v + ((k & 2) ? 1.0f : -1.0f) * (st->fix_hh - 0.02f);
        ellipse(R, hu, hv, 0.008f, 0.008f, 0, S_FLAT, hole, 0);
    }
}

/* The "object" shift's drill: body, handle, battery and chuck, in tones
 * taken from the station (bench and fixture), so luma and colour stay close
 * to the reference while the shape is new. */
static void drill_prims(ns_scene_renderer *R, const ns_scene_clip *c)
{
    const ns_scene_station *st = c->station;
    float body[3], grip[3], metal[3] = {150, 150, 154};
    float u = c->obj_u, v = c->obj_v, a = c->obj_ang, ca = cosf(a), sa = sinf(a);
    for (int k = 0; k < 3; k++) {
        body[k] = 0.55f * st->bench_rgb[k] + 0.45f * st->fix_rgb[k];
        grip[k] = 0.8f * st->bench_rgb[k];
    }
    /* Along the heading: chuck .. body .. motor end; the handle drops below the body. */
    float hu = u - sa * 0.09f, hv = v + ca * 0.09f;
    shadowify(R, capsule(R, u - ca * 0.10f, v - sa * 0.10f, u + ca * 0.08f, v + sa * 0.08f,
                         0.045f, S_ROUND, NULL, 0), 0.012f, 0.015f, 0.4f, 0.015f);
    capsule(R, u + ca * 0.02f, v + sa * 0.02f, hu, hv, 0.032f, S_ROUND, grip, 0.2f);
    box(R, hu - sa * 0.03f, hv + ca * 0.03f, 0.055f, 0.035f, a, 0.01f, S_FLAT, body);
    capsule(R, u - ca * 0.10f, v - sa * 0.10f, u + ca * 0.08f, v + sa * 0.08f, 0.042f, S_ROUND,
            body, 0.4f);
    capsule(R, u - ca * 0.17f, v - sa * 0.17f, u - ca * 0.10f, v - sa * 0.10f, 0.018f, S_ROUND,
            metal, 0.7f);
    ellipse(R, u + ca * 0.05f, v + sa * 0.05f, 0.02f, 0.02f, a, S_ROUND, grip, 0.3f);
}

void ns_scene_begin_clip(ns_scene_renderer *R, const ns_scene_clip *c)
{
    int W = R->W, H = R->H;
    float aspect = (float)W / (float)H;
    view *v = &R->v;
    v->s = (float)H;
    v->c = cosf(c->bump_rot);
    v->sn = sinf(c->bump_rot);
    v->uc = aspect * 0.5f;
    v->vc = 0.5f;
    v->ox = (float)W * (0.5f + c->bump_du);
    v->oy = (float)H * (0.5f + c->bump_dv);
    memcpy(R->gain, c->gain, sizeof(R->gain));
    R->vignette = c->vignette;
    R->cx = (float)W * 0.5f;
    R->cy = (float)H * 0.5f;
    R->inv_r2 = 1.0f / (R->cx * R->cx + R->cy * R->cy);
    memcpy(R->light, c->station->light_dir, sizeof(R->light));
    float hx = R->light[0], hy = R->light[1], hz = R->light[2] + 1.0f;
    float hn = sqrtf(hx * hx + hy * hy + hz * hz);
    set3(R->half, hx / hn, hy / hn, hz / hn);

    float kn = c->noise / 16.0f;
    for (size_t i = 0; i < NOISE_TAB + (size_t)W * 3; i++)
        R->noise8[i] = (int8_t)lrintf(clampf((float)R->noise[i] * kn, -127.0f, 127.0f));

    uint32_t salt = salt_of(c->station);
    float inv_s = 1.0f / v->s;
    for (int y = 0; y < H; y++) {
        uint8_t *row = R->bg + (size_t)y * (size_t)W * 3;
        float py = (float)y + 0.5f - v->oy;
        for (int x = 0; x < W; x++) {
            float px = (float)x + 0.5f - v->ox;
            float u = (px * v->c + py * v->sn) * inv_s + v->uc;
            float w = (-px * v->sn + py * v->c) * inv_s + v->vc;
            float col[3];
            bench_colour(c->station, salt, u, w, col);
            float rx = (float)x + 0.5f - R->cx, ry = (float)y + 0.5f - R->cy;
            float vig = 1.0f - R->vignette * (rx * rx + ry * ry) * R->inv_r2;
            for (int k = 0; k < 3; k++)
                row[x * 3 + k] = (uint8_t)clampf(col[k] * R->gain[k] * vig + 0.5f, 0, 255);
        }
    }
    R->n_prims = 0;
    station_prims(R, c);
    if (c->object)
        drill_prims(R, c);
    flush_prims(R, R->bg);
}

/* ---- hands ----------------------------------------------------------------------- */

static void rot(float a, float *x, float *y)
{
    *x = cosf(a);
    *y = sinf(a);
}

/* Appends one hand's shapes; shadow = 1 appends only its soft shadow. */
static void hand_prims(ns_scene_renderer *R, const ns_scene_clip *c, const hand *h, int right,
                       int shadow, float alpha)
{
    const ns_scene_station *st = c->station;
    float k = c->hand_scale * h->scale * 0.5f; /* 0.5: the constants below are for k = 1 at 2x */
    float dx, dy;
    rot(h->ang, &dx, &dy);
    float qx = -dy, qy = dx; /* perpendicular, to the hand's right when fingers point up */
    float wu = h->u, wv = h->v;
    int first = R->n_prims;
    const float *g = c->glove_rgb;
    float gspec = c->glove == NS_GLOVE_BLACK ? 0.35f : 0.12f;
    if (shadow) {
        /* Raised hands (scale > 1) are further from the bench: larger offset. */
        float off = 0.02f + 0.06f * (h->scale - 1.0f);
        float su = -st->light_dir[0] * off, sv = -st->light_dir[1] * off;
        /* The arm's own shadow hides mostly under the arm: only the hand's is drawn. */
        prim *p = ellipse(R, wu + dx * 0.12f * k, wv + dy * 0.12f * k, 0.12f * k, 0.09f * k, h->ang,
                    S_ROUND, NULL, 0);
        shadowify(R, p, su, sv, 0.4f, 0.02f);
        return;
    }
    capsule(R, wu - dx * 0.06f * k, wv - dy * 0.06f * k, wu - dx * 0.8f, wv - dy * 0.8f, 0.10f * k,
            S_ROUND, c->sleeve_rgb, 0.04f);
    capsule(R, wu - dx * 0.09f * k, wv - dy * 0.09f * k, wu + dx * 0.02f * k, wv + dy * 0.02f * k,
            0.078f * k, S_ROUND, g, gspec);
    ellipse(R, wu + dx * 0.10f * k, wv + dy * 0.10f * k, 0.10f * k, 0.085f * k, h->ang, S_ROUND, g,
            gspec);
    if (h->hold == HOLD_PART) {
        box(R, wu + dx * 0.25f * k, wv + dy * 0.25f * k, 0.064f * k, 0.044f * k, h->ang + 0.3f,
            0.008f * k, S_FLAT, st->part_rgb);
    } else if (h->hold == HOLD_DRIVER) {
        float ex, ey;
        rot(h->ang + (right ? -0.5f : 0.5f), &ex, &ey);
        float cu = wu + dx * 0.10f * k, cv = wv + dy * 0.10f * k;
        static const float metal[3] = {190, 192, 198};
        capsule(R, cu + ex * 0.14f * k, cv + ey * 0.14f * k, cu + ex * 0.34f * k,
                cv + ey * 0.34f * k, 0.009f * k, S_ROUND, metal, 0.7f);
        capsule(R, cu - ex * 0.05f * k, cv - ey * 0.05f * k, cu + ex * 0.15f * k,
                cv + ey * 0.15f * k, 0.03f * k, S_ROUND, st->tool_rgb, 0.5f);
    }
    float side = right ? -1.0f : 1.0f; /* thumbs point towards the body's midline */
    for (int i = 0; i < 4; i++) {
        float off = (-1.5f + (float)i) * 0.041f * k;
        float bu = wu + dx * 0.17f * k + qx * off, bv = wv + dy * 0.17f * k + qy * off;
        float spread = (-1.5f + (float)i) * 0.09f * (1.0f - h->curl);
        float fx, fy;
        rot(h->ang + spread, &fx, &fy);
        int outer = right ? (i == 3) : (i == 0);
        float len = 0.124f * k * (1.0f - 0.6f * h->curl) * (outer ? 0.8f : 1.0f);
        float rad = 0.021f * k * (1.0f + 0.25f * h->curl);
        capsule(R, bu, bv, bu + fx * len, bv + fy * len, rad, S_ROUND, g, gspec);
    }
    float tx, ty;
    rot(h->ang + side * (0.9f - 0.4f * h->curl), &tx, &ty);
    float tu = wu + dx * 0.06f * k + qx * side * 0.07f * k;
    float tv = wv + dy * 0.06f * k + qy * side * 0.07f * k;
    capsule(R, tu, tv, tu + tx * 0.10f * k, tv + ty * 0.10f * k, 0.025f * k, S_ROUND, g, gspec);
    for (int i = first; i < R->n_prims; i++)
        R->prims[i].alpha = alpha;
}

static void pose_prims(ns_scene_renderer *R, const ns_scene_clip *c, const pose *p, float alpha)
{
    for (int i = 0; i < 2; i++)
        hand_prims(R, c, &p->h[i], i == 1, 0, alpha);
    if (p->part_between) {
        float u = (p->h[0].u + p->h[1].u) * 0.5f, v = minf(p->h[0].v, p->h[1].v) - 0.11f;
        prim *b = box(R, u, v, 0.06f, 0.04f, 0.2f * (p->h[1].ang + PI_F / 2), 0.008f, S_FLAT,
                      c->station->part_rgb);
        b->alpha = alpha;
    }
}

void ns_scene_render_frame(ns_scene_renderer *R, const ns_scene_clip *c, int f, uint8_t *rgb)
{
    int W = R->W, H = R->H;
    float aspect = (float)W / (float)H;
    size_t n = (size_t)W * (size_t)H * 3;
    memcpy(rgb, R->bg, n);

    pose base, now, before;
    pose_at(c, aspect, (float)f, &base);
    now = base;
    add_jitter(c, f, &now);
    ns_gen_rng r = {ns_gen_key(c->key, 0xF4A3E, (uint64_t)f, 0, 0)};

    R->n_prims = 0;
    for (int i = 0; i < 2; i++)
        hand_prims(R, c, &now.h[i], i == 1, 1, 1.0f);
    flush_prims(R, rgb);

    /* A hand that moved more than ~2% of the height since the last frame is
     * smeared along its path on some frames, like a real exposure. */
    int blurred = 0;
    if (f > 0) {
        pose_at(c, aspect, (float)f - 1.0f, &before);
        float mv = 0.0f;
        for (int i = 0; i < 2; i++)
            mv = maxf(mv, fabsf(now.h[i].u - before.h[i].u) + fabsf(now.h[i].v - before.h[i].v));
        blurred = mv > 0.02f && ns_gen_unif(&r) < c->blur_prob;
    }
    if (blurred) {
        for (int g = 2; g >= 1; g--) {
            pose ghost;
            pose_at(c, aspect, (float)f - (float)g / 3.0f, &ghost);
            for (int i = 0; i < 2; i++) { /* same tremor as this frame, earlier path */
                ghost.h[i].u += now.h[i].u - base.h[i].u;
                ghost.h[i].v += now.h[i].v - base.h[i].v;
                ghost.h[i].ang += now.h[i].ang - base.h[i].ang;
                ghost.h[i].hold = now.h[i].hold;
            }
            pose_prims(R, c, &ghost, 0.45f);
            flush_prims(R, rgb);
        }
        pose_prims(R, c, &now, 0.7f);
    } else {
        pose_prims(R, c, &now, 1.0f);
    }
    flush_prims(R, rgb);

    /* Sensor noise: one random offset into the Gaussian table per row. */
    size_t rowlen = (size_t)W * 3;
    for (int y = 0; y < H; y++) {
        const int8_t *nz = R->noise8 + (ns_gen_next(&r) % NOISE_TAB);
        uint8_t *row = rgb + (size_t)y * rowlen;
        for (size_t i = 0; i < rowlen; i++) {
            int v = (int)row[i] + (int)nz[i];
            row[i] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
    }
}
