/* station.c -- the seeded descriptions of stations and clips (see scene.h):
 * what each camera's bench looks like, who works a clip and how it is lit, and
 * the order of task steps.  Drawing them is scene.c's job. */
#include "scene.h"

#include <math.h>
#include <string.h>

#define PI_F 3.14159265f

static float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

static void set3(float d[3], float r, float g, float b)
{
    d[0] = r;
    d[1] = g;
    d[2] = b;
}

static void jitter3(ns_gen_rng *r, float d[3], float amount)
{
    for (int i = 0; i < 3; i++)
        d[i] = clampf(d[i] + ns_gen_range(r, -amount, amount), 0.0f, 255.0f);
}

/* ---- station -------------------------------------------------------------- */

void ns_scene_station_init(ns_scene_station *st, uint64_t seed, int camera, float aspect)
{
    ns_gen_rng r = {ns_gen_key(seed, 0xCA3E7A, (uint64_t)camera, 0, 0)};
    memset(st, 0, sizeof(*st));
    /* Cameras differ in kind of bench first, so neighbouring cameras never look alike. */
    st->bench_kind = (camera + (int)(ns_gen_next(&r) % 4)) % 4;
    switch (st->bench_kind) {
    case 0: set3(st->bench_rgb, 176, 132, 88); break;  /* wood */
    case 1: set3(st->bench_rgb, 150, 154, 158); break; /* brushed steel */
    case 2: set3(st->bench_rgb, 62, 112, 92); break;   /* green ESD mat */
    default: set3(st->bench_rgb, 112, 128, 150); break; /* blue-gray laminate */
    }
    jitter3(&r, st->bench_rgb, 14);
    st->bench_tex_scale = ns_gen_range(&r, 0.7f, 1.4f);
    st->conveyor_v = ns_gen_range(&r, 0.10f, 0.20f);
    if (ns_gen_unif(&r) < 0.5f)
        set3(st->conveyor_rgb, 40, 42, 44);
    else
        set3(st->conveyor_rgb, 46, 70, 52);
    jitter3(&r, st->conveyor_rgb, 8);
    set3(st->rail_rgb, 175, 178, 182);
    jitter3(&r, st->rail_rgb, 15);
    st->slat_pitch = ns_gen_range(&r, 0.05f, 0.09f);

    float mid = aspect * 0.5f;
    st->fix_u = mid + ns_gen_range(&r, -0.14f, 0.14f);
    st->fix_v = ns_gen_range(&r, 0.36f, 0.48f);
    st->fix_hw = ns_gen_range(&r, 0.09f, 0.13f);
    st->fix_hh = ns_gen_range(&r, 0.06f, 0.085f);
    static const float fix_colours[4][3] = {
        {190, 192, 196}, {52, 86, 160}, {36, 36, 38}, {200, 110, 40}};
    memcpy(st->fix_rgb, fix_colours[ns_gen_next(&r) % 4], sizeof(st->fix_rgb));
    jitter3(&r, st->fix_rgb, 10);

    st->n_trays = 1 + (int)(ns_gen_next(&r) % 2);
    st->tray_hw = ns_gen_range(&r, 0.07f, 0.10f);
    st->tray_hh = ns_gen_range(&r, 0.05f, 0.075f);
    float side = ns_gen_unif(&r) < 0.5f ? -1.0f : 1.0f;
    static const float tray_colours[4][3] = {
        {40, 90, 190}, {190, 50, 40}, {220, 180, 40}, {90, 90, 96}};
    for (int i = 0; i < st->n_trays; i++) {
        float s = i == 0 ? side : -side;
        st->tray_u[i] = st->fix_u + s * ns_gen_range(&r, 0.30f, 0.40f);
        st->tray_u[i] = clampf(st->tray_u[i], 0.12f, aspect - 0.12f);
        st->tray_v[i] = ns_gen_range(&r, 0.30f, 0.52f);
        memcpy(st->tray_rgb[i], tray_colours[ns_gen_next(&r) % 4], sizeof(st->tray_rgb[i]));
        jitter3(&r, st->tray_rgb[i], 12);
    }
    set3(st->part_rgb, 186, 184, 178);
    jitter3(&r, st->part_rgb, 20);

    st->n_clutter = 2 + (int)(ns_gen_next(&r) % 3);
    for (int i = 0; i < st->n_clutter; i++) {
        st->clutter_kind[i] = (int)(ns_gen_next(&r) % 4);
        st->clutter_u[i] = ns_gen_range(&r, 0.05f, aspect - 0.05f);
        st->clutter_v[i] = ns_gen_range(&r, st->conveyor_v + 0.06f, 0.95f);
        st->clutter_ang[i] = ns_gen_range(&r, -0.6f, 0.6f);
        switch (st->clutter_kind[i]) {
        case 0: set3(st->clutter_rgb[i], 225, 190, 30); break; /* floor tape */
        case 1: set3(st->clutter_rgb[i], 235, 235, 228); break; /* label */
        case 2: set3(st->clutter_rgb[i], 30, 30, 32); break;    /* cable */
        default: set3(st->clutter_rgb[i], 140, 140, 145); break; /* screw dish */
        }
    }
    static const float tool_colours[3][3] = {{200, 30, 30}, {230, 190, 20}, {30, 120, 200}};
    memcpy(st->tool_rgb, tool_colours[ns_gen_next(&r) % 3], sizeof(st->tool_rgb));
    float lx = ns_gen_range(&r, -0.5f, 0.5f), ly = ns_gen_range(&r, -0.6f, -0.2f);
    float lz = 0.85f;
    float n = sqrtf(lx * lx + ly * ly + lz * lz);
    set3(st->light_dir, lx / n, ly / n, lz / n);
}

/* ---- clip ------------------------------------------------------------------ */

void ns_scene_clip_init(ns_scene_clip *c, const ns_scene_station *st, uint64_t key, int glove)
{
    ns_gen_rng r = {key ^ 0xC11Bull};
    memset(c, 0, sizeof(*c));
    c->station = st;
    c->key = key;
    c->glove = glove;
    if (glove == NS_GLOVE_BLACK)
        set3(c->glove_rgb, 28, 28, 32);
    else
        set3(c->glove_rgb, 135, 135, 140);
    jitter3(&r, c->glove_rgb, 4);
    static const float sleeves[5][3] = {
        {40, 62, 120}, {30, 40, 70}, {60, 90, 60}, {120, 120, 126}, {150, 60, 40}};
    memcpy(c->sleeve_rgb, sleeves[ns_gen_next(&r) % 5], sizeof(c->sleeve_rgb));
    jitter3(&r, c->sleeve_rgb, 10);
    c->hand_scale = ns_gen_range(&r, 1.25f, 1.45f);
    float g = ns_gen_range(&r, 0.88f, 1.10f), t = ns_gen_range(&r, -0.06f, 0.06f);
    set3(c->gain, g * (1 + t), g, g * (1 - t));
    c->vignette = ns_gen_range(&r, 0.12f, 0.35f);
    c->noise = ns_gen_range(&r, 1.0f, 2.4f);
    c->blur_prob = ns_gen_range(&r, 0.2f, 0.6f);
}

void ns_scene_clip_dim(ns_scene_clip *c)
{
    c->gain[0] *= 0.55f * 1.10f;
    c->gain[1] *= 0.55f;
    c->gain[2] *= 0.55f * 0.80f;
    c->noise *= 1.4f;
}

void ns_scene_clip_bump(ns_scene_clip *c)
{
    c->bump_rot = 3.0f * PI_F / 180.0f;
    c->bump_du = 0.08f;
    c->bump_dv = 0.05f;
}

void ns_scene_clip_object(ns_scene_clip *c, float aspect)
{
    ns_gen_rng r = {c->key ^ 0x0B1EC7ull};
    const ns_scene_station *st = c->station;
    /* Lower bench, on the side away from the fixture: in view, rarely under the hands. */
    float side = st->fix_u < aspect * 0.5f ? 1.0f : -1.0f;
    c->object = 1;
    c->obj_u = clampf(st->fix_u + side * ns_gen_range(&r, 0.28f, 0.38f), 0.18f, aspect - 0.18f);
    c->obj_v = ns_gen_range(&r, 0.62f, 0.74f);
    c->obj_ang = ns_gen_range(&r, -0.5f, 0.5f);
}

void ns_scene_plan_steps(uint64_t key, int n_frames, uint8_t *steps)
{
    ns_gen_rng r = {key ^ 0x57E95ull};
    int f = 0, prev = -1;
    while (f < n_frames) {
        int st;
        /* Mostly the work cycle in order, sometimes a detour. */
        if (prev >= 0 && ns_gen_unif(&r) < 0.65f)
            st = (prev + 1) % NS_STEP_COUNT;
        else
            do
                st = (int)(ns_gen_next(&r) % NS_STEP_COUNT);
            while (st == prev);
        int len = 5 + (int)(ns_gen_next(&r) % 8);
        for (int i = 0; i < len && f < n_frames; i++)
            steps[f++] = (uint8_t)st;
        prev = st;
    }
}

