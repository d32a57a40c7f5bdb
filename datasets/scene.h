/* scene.h -- procedural renderer of a factory assembly station seen from above.
 *
 * Each camera has its own station (bench surface, conveyor edge, fixture, part
 * trays, clutter), drawn from a seeded per-camera description.  A clip is a
 * sequence of task steps performed by two gloved hands; the step changes every
 * few frames and the hands move smoothly between the key poses of the steps.
 * Per clip: worker (sleeve colour, hand size), lighting gain and colour
 * temperature, vignetting and sensor noise level.  Per frame: pose jitter,
 * occasional motion blur, Gaussian-ish sensor noise.
 *
 * Everything is a pure function of the seeds: a frame's pixels depend only on
 * (seed, night, camera, clip, frame) and the clip parameters, never on which
 * thread renders it or in which order.
 *
 * Geometry: "world" units are image heights; u runs 0..W/H left to right and v
 * 0..1 top to bottom.  A similarity transform (scale H, optional rotation and
 * offset for a bumped camera) maps world to pixels.
 */
#ifndef NIGHTSHIFT_GEN_SCENE_H
#define NIGHTSHIFT_GEN_SCENE_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/status.h"

/* ---- deterministic random numbers ------------------------------------- */

static inline uint64_t ns_gen_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Key for one object of the scenario: hash of its coordinates. */
static inline uint64_t ns_gen_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c,
                                  uint64_t d)
{
    uint64_t h = ns_gen_mix(seed ^ 0x6E69676874736869ull);
    h = ns_gen_mix(h ^ a);
    h = ns_gen_mix(h ^ (b + 0x100));
    h = ns_gen_mix(h ^ (c + 0x10000));
    return ns_gen_mix(h ^ (d + 0x1000000));
}

typedef struct ns_gen_rng {
    uint64_t s;
} ns_gen_rng;

static inline uint64_t ns_gen_next(ns_gen_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline float ns_gen_unif(ns_gen_rng *r)
{
    return (float)(ns_gen_next(r) >> 40) * (1.0f / 16777216.0f);
}

static inline float ns_gen_range(ns_gen_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * ns_gen_unif(r);
}

/* Approximately standard normal (sum of four uniforms, rescaled). */
static inline float ns_gen_gauss(ns_gen_rng *r)
{
    float s = ns_gen_unif(r) + ns_gen_unif(r) + ns_gen_unif(r) + ns_gen_unif(r);
    return (s - 2.0f) * 1.7320508f;
}

/* ---- task steps --------------------------------------------------------- */

enum {
    NS_STEP_PICK = 0,  /* one hand reaches into the part tray */
    NS_STEP_PLACE,     /* part held above the fixture */
    NS_STEP_FASTEN,    /* screwdriver in the fist, pointed at the fixture */
    NS_STEP_INSPECT,   /* both hands raised towards the camera holding a part */
    NS_STEP_IDLE,      /* hands resting away from the centre */
    NS_STEP_COUNT
};

extern const char *const ns_scene_step_names[NS_STEP_COUNT]; /* "pick_part", ... */

enum { NS_GLOVE_GRAY = 0, NS_GLOVE_BLACK = 1 };

/* ---- descriptions ------------------------------------------------------- */

#define NS_SCENE_MAX_TRAYS 2
#define NS_SCENE_MAX_CLUTTER 4

/* One camera's station; every position in world units. */
typedef struct ns_scene_station {
    int bench_kind;         /* 0 wood, 1 brushed steel, 2 ESD mat, 3 laminate */
    float bench_rgb[3];
    float bench_tex_scale;  /* texture feature size */
    float conveyor_v;       /* lower edge of the conveyor band along the top */
    float conveyor_rgb[3];
    float rail_rgb[3];
    float slat_pitch;       /* spacing of belt slats */
    float fix_u, fix_v;     /* fixture centre */
    float fix_hw, fix_hh;   /* fixture half sizes */
    float fix_rgb[3];
    int n_trays;
    float tray_u[NS_SCENE_MAX_TRAYS], tray_v[NS_SCENE_MAX_TRAYS];
    float tray_hw, tray_hh;
    float tray_rgb[NS_SCENE_MAX_TRAYS][3];
    float part_rgb[3];
    int n_clutter;          /* tape marks, labels, cable */
    int clutter_kind[NS_SCENE_MAX_CLUTTER];
    float clutter_u[NS_SCENE_MAX_CLUTTER], clutter_v[NS_SCENE_MAX_CLUTTER];
    float clutter_ang[NS_SCENE_MAX_CLUTTER];
    float clutter_rgb[NS_SCENE_MAX_CLUTTER][3];
    float tool_rgb[3];      /* screwdriver handle */
    float light_dir[3];     /* unit vector towards the key light */
} ns_scene_station;

void ns_scene_station_init(ns_scene_station *st, uint64_t seed, int camera, float aspect);

/* One clip: who works, how it is lit, how the camera sits, what happens. */
typedef struct ns_scene_clip {
    const ns_scene_station *station;
    uint64_t key;           /* ns_gen_key(seed, night, camera, clip); frames mix in their index */
    int glove;              /* NS_GLOVE_* */
    float glove_rgb[3];
    float sleeve_rgb[3];
    float hand_scale;
    float gain[3];          /* per-channel lighting gain (colour temperature, light shift) */
    float vignette;         /* 0 none .. ~0.5 strong darkening in the corners */
    float noise;            /* sensor noise standard deviation in 8-bit levels */
    float blur_prob;        /* chance that a fast-moving frame shows motion blur */
    float bump_rot;         /* camera rotation, radians */
    float bump_du, bump_dv; /* camera offset, fractions of width and height */
    int object;             /* 1: a cordless drill lies on the bench (a new object type) */
    float obj_u, obj_v, obj_ang; /* its place, world units, and heading */
    int n_frames;
    const uint8_t *steps;   /* (n_frames) NS_STEP_* of each frame */
} ns_scene_clip;

/* Fills the clip parameters that follow from its key (worker, lighting,
 * noise).  The caller then sets glove, bump and light shifts, and steps. */
void ns_scene_clip_init(ns_scene_clip *c, const ns_scene_station *st, uint64_t key, int glove);

/* Applies the "light" shift: about half the light, warmer tint. */
void ns_scene_clip_dim(ns_scene_clip *c);
/* Applies the "bump" shift: view moved ~8% and rotated ~3 degrees. */
void ns_scene_clip_bump(ns_scene_clip *c);

/* Applies the "object" shift: a cordless drill, an object type the station
 * never shows otherwise, lies on the bench near the worker.  Its colours are
 * the station's own bench and fixture tones, so the frame's photometric
 * statistics barely move: only what is on the bench is new. */
void ns_scene_clip_object(ns_scene_clip *c, float aspect);

/* Plans the task steps of an n-frame clip: runs of 5..12 frames, each step
 * different from the one before. */
void ns_scene_plan_steps(uint64_t key, int n_frames, uint8_t *steps);

/* ---- rendering ------------------------------------------------------------ */

typedef struct ns_scene_renderer ns_scene_renderer;

/* Allocates every buffer for W x H frames once; rendering never allocates. */
ns_status ns_scene_renderer_create(int width, int height, ns_scene_renderer **out);
void ns_scene_renderer_free(ns_scene_renderer *r); /* NULL-safe */

/* Renders the static background of a clip (station, lighting, camera pose). */
void ns_scene_begin_clip(ns_scene_renderer *r, const ns_scene_clip *c);

/* Renders frame f of the clip begun last into rgb (W*H*3, row-major RGB). */
void ns_scene_render_frame(ns_scene_renderer *r, const ns_scene_clip *c, int f, uint8_t *rgb);

#endif
