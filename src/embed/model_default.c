/* model_default.c -- the built-in backbone: a seeded random-feature CNN.
 *
 * Why random weights: shift detection needs features that move when the
 * pixels' distribution moves, not features that name objects.  Rabanser,
 * Guennemann and Lipton ("Failing Loudly", NeurIPS 2019) found untrained
 * random networks followed by a two-sample test among the strongest
 * label-free shift detectors.  A seeded net needs no download and no
 * licence, and the same (input_size, seed) gives the same model id anywhere.
 *
 * Why this generator: rand() and Box-Muller (log, cos) differ between libcs
 * and libms; xoshiro256** seeded by splitmix64 is pure integer arithmetic,
 * and He-uniform weights need only sqrt, which IEEE 754 rounds exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nightshift/model.h"

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [-1, 1): 53 random bits, exact in a double. */
static double uniform_pm1(rng *r)
{
    return (double)(xoshiro_next(r) >> 11) * 0x1.0p-52 - 1.0;
}

#define N_CONV 5

ns_status ns_model_default(int input_size, uint64_t seed, ns_model **out)
{
    static const int chans[N_CONV + 1] = {3, 32, 64, 128, 256, NS_MODEL_DEFAULT_DIM};
    ns_model_node_rec recs[1 + 2 * N_CONV + 3];
    ns_model_weight_rec wrec[N_CONV];
    ns_model_info info;
    char origin[64];
    float *buf = NULL;
    size_t total = 0, used = 0, n = 0;
    uint64_t sm = seed;
    rng r;
    ns_status st;
    *out = NULL;
    if (input_size != 112 && input_size != 128)
        return ns_error(NS_ERR_USAGE, "default model: input size %d (112 or 128)", input_size);
    for (int l = 0; l < N_CONV; l++)
        total += (size_t)chans[l + 1] * chans[l] * 9;
    buf = malloc(total * sizeof *buf);
    if (!buf)
        return ns_error(NS_ERR_NOMEM, "default model: out of memory");
    for (int i = 0; i < 4; i++)
        r.s[i] = splitmix64(&sm);

    memset(&info, 0, sizeof info);
    memset(recs, 0, sizeof recs);
    snprintf(info.name, sizeof info.name, "nightshift-random-cnn-%d-seed%llu", input_size,
             (unsigned long long)seed);
    info.input_size = input_size;
    /* ImageNet statistics: centre the inputs the way the He initialisation
     * assumes, without claiming the features are ImageNet features. */
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    memcpy(info.mean, mean, sizeof mean);
    memcpy(info.std, sd, sizeof sd);
    info.embed_dim = NS_MODEL_DEFAULT_DIM;
    info.l2_normalize = 1;
    snprintf(info.output, sizeof info.output, "embedding");

    snprintf(recs[n].name, NS_MODEL_NAME_LEN, "input");
    snprintf(recs[n++].op, NS_MODEL_OP_LEN, "Input");
    for (int l = 0; l < N_CONV; l++) {
        ns_model_node_rec *c = &recs[n++], *a = &recs[n++];
        size_t fan_in = (size_t)chans[l] * 9, count = (size_t)chans[l + 1] * fan_in;
        double bound = sqrt(6.0 / (double)fan_in); /* He-uniform: variance 2 / fan_in */
        snprintf(c->name, NS_MODEL_NAME_LEN, "conv%d", l + 1);
        snprintf(c->op, NS_MODEL_OP_LEN, "Conv");
        memcpy(c->inputs[0], c[-1].name, NS_MODEL_NAME_LEN);
        c->iattr[NS_IA_KH] = c->iattr[NS_IA_KW] = 3;
        c->iattr[NS_IA_STRIDE_H] = c->iattr[NS_IA_STRIDE_W] = 2;
        c->iattr[NS_IA_PAD_TOP] = c->iattr[NS_IA_PAD_LEFT] = 1;
        c->iattr[NS_IA_PAD_BOTTOM] = c->iattr[NS_IA_PAD_RIGHT] = 1;
        c->iattr[NS_IA_DIL_H] = c->iattr[NS_IA_DIL_W] = 1;
        c->iattr[NS_IA_GROUPS] = 1;
        snprintf(a->name, NS_MODEL_NAME_LEN, "relu%d", l + 1);
        snprintf(a->op, NS_MODEL_OP_LEN, "Relu");
        memcpy(a->inputs[0], c->name, NS_MODEL_NAME_LEN);
        for (size_t i = 0; i < count; i++)
            buf[used + i] = (float)(uniform_pm1(&r) * bound);
        wrec[l] = (ns_model_weight_rec){.node = (size_t)(c - recs), .name = "W", .rank = 4,
                                        .dims = {chans[l + 1], chans[l], 3, 3},
                                        .data = buf + used};
        used += count;
    }
    snprintf(recs[n].name, NS_MODEL_NAME_LEN, "pool");
    snprintf(recs[n].op, NS_MODEL_OP_LEN, "MaxPool");
    memcpy(recs[n].inputs[0], recs[n - 1].name, NS_MODEL_NAME_LEN);
    recs[n].iattr[NS_IA_KH] = recs[n].iattr[NS_IA_KW] = 4;
    recs[n].iattr[NS_IA_STRIDE_H] = recs[n].iattr[NS_IA_STRIDE_W] = 4;
    recs[n].iattr[NS_IA_DIL_H] = recs[n].iattr[NS_IA_DIL_W] = 1;
    n++;
    snprintf(recs[n].name, NS_MODEL_NAME_LEN, "flatten");
    snprintf(recs[n].op, NS_MODEL_OP_LEN, "Flatten");
    memcpy(recs[n].inputs[0], recs[n - 1].name, NS_MODEL_NAME_LEN);
    recs[n].iattr[NS_IA_AXIS] = 1;
    n++;
    snprintf(recs[n].name, NS_MODEL_NAME_LEN, "embedding");
    snprintf(recs[n].op, NS_MODEL_OP_LEN, "L2Norm");
    memcpy(recs[n].inputs[0], recs[n - 1].name, NS_MODEL_NAME_LEN);
    n++;
    snprintf(origin, sizeof origin, "default model %d/%llu", input_size,
             (unsigned long long)seed);
    st = ns_model_build(&info, recs, n, wrec, N_CONV, origin, out);
    free(buf);
    return st;
}
