/* model.h -- an embedding backbone: an in-memory graph of ops.h operators,
 * its HDF5 file format, and the built-in default backbone.
 *
 * Model file  (ns_format = "nightshift-model", ns_format_version = 1)
 * -------------------------------------------------------------------
 * Root attributes (scalars unless shown; strings fixed-length, ASCII):
 *   ns_format        "nightshift-model"
 *   ns_format_version int32 1
 *   name             display name (< 64 bytes); not part of model_id
 *   input_size       int32 S: the input is (N, 3, S, S) float32
 *   channel_order    "rgb" or "bgr"
 *   mean, std        float32 (3): x = (pixel / 255 - mean) / std, in the
 *                    model's channel order
 *   output           name of the output node (< 64 bytes)
 *   embedding_dim    int32 D: elements per sample of the output node
 *   l2_normalize     int32 0/1: consumers receive unit-length embeddings
 *                    (the executor normalises unless the output is L2Norm)
 *   model_id         64 lowercase hex digits: SHA-256 of the canonical
 *                    serialisation below; written on save, checked on load
 *   writer           "nightshift x.y.z" (informational)
 *
 * /nodes  compound (K), one row per node, in any order (saved topologically):
 *   name    string, 64 bytes NUL-padded, unique, non-empty
 *   op      string, 32 bytes: ONNX spelling ("Conv", "BatchNormalization",
 *           "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Silu"
 *           (ONNX: Sigmoid+Mul), "Add", "Mul", "MaxPool", "AveragePool",
 *           "GlobalAveragePool", "Flatten", "Gemm", "Concat") plus "Input"
 *           (the one graph input) and "L2Norm" (row-wise L2 normalisation)
 *   inputs  string[4], 64 bytes each: names of the input nodes, "" = unused;
 *           used slots come first
 *   iattr   int32[16], indexed by NS_IA_* (kernel, stride, pads, dilation,
 *           groups, ceil_mode, count_include_pad, axis); unused slots 0
 *   fattr   float32[4], indexed by NS_FA_* (Clip min/max, HardSigmoid
 *           alpha/beta, BatchNormalization epsilon); unused slots 0
 *
 * /weights/<node>/<name>  float32 datasets, contiguous:
 *   Conv                W (c_out, c_in / groups, kh, kw), optional B (c_out)
 *   BatchNormalization  gamma, beta, mean, var (c)
 *   Gemm                W (m, k) (ONNX transB = 1), optional B (m)
 *   other ops           none
 *
 * Shapes are per sample (the batch dimension is left out): the Input is
 * (3, S, S); Conv, pools and elementwise ops keep rank 3 (c, h, w);
 * GlobalAveragePool gives (c, 1, 1); Flatten (axis 1) gives (c * h * w);
 * Gemm and L2Norm work on rank 1.  Add needs equal shapes; Mul also takes a
 * (c, 1, 1) second input (squeeze-excite); Concat joins channels (axis 1).
 *
 * Canonical serialisation for model_id (all integers little-endian, floats
 * as their IEEE-754 binary32 bits little-endian, strings NUL-padded):
 *   "nightshift-model-v1" NUL
 *   u32 input_size, u32 bgr, f32 mean[3], f32 std[3], u32 embedding_dim,
 *   u32 l2_normalize, output[64], u32 node count; then per node in the
 *   model's topological order: name[64], op[32], inputs[4][64], i32 iattr[16],
 *   f32 fattr[4], u32 weight count, and per weight (in the order of the table
 *   above): name[16], u32 rank, u32 dims[4] (unused 0), f32 data[].
 * The name is left out, so renaming a model keeps its id.
 *
 * Errors from ns_model_load, each naming the file and the node:
 *   NS_ERR_IO          the file cannot be opened;
 *   NS_ERR_FORMAT      not an HDF5 file, another ns_format or version, a
 *                      missing attribute, a graph that is not a DAG
 *                      ("cyclic graph"), inputs naming unknown nodes, wrong
 *                      input counts, impossible shapes, an output whose size
 *                      is not embedding_dim;
 *   NS_ERR_CORRUPT     truncated or unreadable HDF5, a missing or unexpected
 *                      weight, a weight of the wrong shape, a model_id that
 *                      does not match the content;
 *   NS_ERR_UNSUPPORTED op names we do not execute (all of them listed).
 * ns_model_load folds each BatchNormalization into the Conv before it (the
 * model keeps the file's model_id: folding changes rounding, not meaning).
 */
#ifndef NIGHTSHIFT_MODEL_H
#define NIGHTSHIFT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "nightshift/sha256.h"
#include "nightshift/status.h"
#include "nightshift/strbuf.h"

#define NS_MODEL_FORMAT "nightshift-model"
#define NS_MODEL_FORMAT_VERSION 1
#define NS_MODEL_NAME_LEN 64    /* node, model and output names, NUL included */
#define NS_MODEL_OP_LEN 32
#define NS_MODEL_MAX_INPUTS 4
#define NS_MODEL_IATTRS 16
#define NS_MODEL_FATTRS 4
#define NS_MODEL_MAX_WEIGHTS 4
#define NS_MODEL_WNAME_LEN 16
#define NS_MODEL_MAX_NODES 65536

typedef enum ns_op {
    NS_OP_INPUT = 0,
    NS_OP_CONV,
    NS_OP_BATCHNORM,
    NS_OP_RELU,
    NS_OP_CLIP,
    NS_OP_SIGMOID,
    NS_OP_HARDSIGMOID,
    NS_OP_HARDSWISH,
    NS_OP_SILU,
    NS_OP_ADD,
    NS_OP_MUL,
    NS_OP_MAXPOOL,
    NS_OP_AVGPOOL,
    NS_OP_GLOBALAVGPOOL,
    NS_OP_FLATTEN,
    NS_OP_GEMM,
    NS_OP_CONCAT,
    NS_OP_L2NORM,
    NS_OP_COUNT
} ns_op;

/* Slots of the integer attributes. */
enum {
    NS_IA_KH = 0, NS_IA_KW, NS_IA_STRIDE_H, NS_IA_STRIDE_W,
    NS_IA_PAD_TOP, NS_IA_PAD_LEFT, NS_IA_PAD_BOTTOM, NS_IA_PAD_RIGHT,
    NS_IA_DIL_H, NS_IA_DIL_W, NS_IA_GROUPS, NS_IA_CEIL_MODE,
    NS_IA_COUNT_INCLUDE_PAD, NS_IA_AXIS
};
/* Slots of the float attributes (per op). */
enum {
    NS_FA_MIN = 0, NS_FA_MAX = 1,      /* Clip */
    NS_FA_ALPHA = 0, NS_FA_BETA = 1,   /* HardSigmoid */
    NS_FA_EPS = 0                      /* BatchNormalization */
};

/* ONNX spelling of an op ("Conv"); "?" when out of range. */
const char *ns_op_name(ns_op op);
/* The op spelled name; -1 when unknown. */
int ns_op_parse(const char *name);

typedef struct ns_model_weight {
    char name[NS_MODEL_WNAME_LEN];   /* "W", "B", "gamma", "beta", "mean", "var" */
    int rank;
    int dims[4];                     /* unused dims 1 */
    size_t count;                    /* product of dims */
    float *data;                     /* (dims), inside ns_model.weights */
} ns_model_weight;

typedef struct ns_model_node {
    char name[NS_MODEL_NAME_LEN];
    ns_op op;
    int n_inputs;
    int inputs[NS_MODEL_MAX_INPUTS]; /* indices of earlier nodes (topological order) */
    int32_t iattr[NS_MODEL_IATTRS];  /* NS_IA_* */
    float fattr[NS_MODEL_FATTRS];    /* NS_FA_* */
    int n_weights;
    ns_model_weight weights[NS_MODEL_MAX_WEIGHTS];
    int rank;                        /* 3: (c, h, w), 1: (d) */
    int shape[3];                    /* output per sample; unused dims 1 */
} ns_model_node;

/* What the root attributes say besides the id. */
typedef struct ns_model_info {
    char name[NS_MODEL_NAME_LEN];
    int input_size;                  /* S: input (3, S, S) */
    int bgr;                         /* 1: channel order B, G, R */
    float mean[3], std[3];           /* on 0..1 values, model channel order */
    char output[NS_MODEL_NAME_LEN];
    int embed_dim;
    int l2_normalize;
} ns_model_info;

typedef struct ns_model {
    ns_model_info info;
    char id[NS_SHA256_HEX];          /* hex model_id */
    ns_model_node *nodes;            /* (n_nodes) topological order; nodes[0] need not be Input */
    size_t n_nodes;
    int input;                       /* index of the Input node */
    int output;                      /* index of the output node */
    float *weights;                  /* (n_weight_floats) every weight, one allocation */
    size_t n_weight_floats;
} ns_model;

/* Rows of the /nodes table, as in the file (names instead of indices). */
typedef struct ns_model_node_rec {
    char name[NS_MODEL_NAME_LEN];
    char op[NS_MODEL_OP_LEN];
    char inputs[NS_MODEL_MAX_INPUTS][NS_MODEL_NAME_LEN];
    int32_t iattr[NS_MODEL_IATTRS];
    float fattr[NS_MODEL_FATTRS];
} ns_model_node_rec;

/* A weight as found in a file or built in memory. */
typedef struct ns_model_weight_rec {
    size_t node;                     /* row in the node records */
    char name[NS_MODEL_WNAME_LEN];
    int rank;
    int dims[4];
    const float *data;               /* (dims); copied by ns_model_build */
} ns_model_weight_rec;

/* Validates a graph (names, ops, inputs, cycles, weights, shapes), sorts it
 * topologically, copies the weights into one allocation and computes the
 * model id.  origin names the source in messages (a file path).  Errors as
 * documented above for ns_model_load. */
ns_status ns_model_build(const ns_model_info *info, const ns_model_node_rec *recs, size_t n_recs,
                         const ns_model_weight_rec *weights, size_t n_weights, const char *origin,
                         ns_model **out);

/* Hex SHA-256 of the canonical serialisation of m (see above). */
void ns_model_compute_id(const ns_model *m, char hex[NS_SHA256_HEX]);

/* Folds every BatchNormalization that is the only consumer of a Conv into
 * that Conv (weights and bias) and removes it; shapes are unchanged.
 * *folded (may be NULL) receives the count.  Keeps m->id. */
ns_status ns_model_fold_batchnorm(ns_model *m, int *folded);

/* The built-in backbone: a seeded random-feature CNN.  Five 3x3 stride-2
 * convolutions 3-32-64-128-256-512 with ReLU (He-uniform weights from a
 * portable xoshiro256** stream, zero bias), GlobalAveragePool, Flatten,
 * L2Norm: 512-dim unit embeddings, ImageNet mean/std, RGB.  Identical bytes
 * on every machine, so the model id is stable for (input_size, seed).
 * Random convolutional features followed by a two-sample test are a strong
 * label-free detector of dataset shift (Rabanser, Guennemann, Lipton,
 * "Failing Loudly", NeurIPS 2019), and need no downloaded weights.
 * input_size: 112 or 128 (NS_ERR_USAGE otherwise). */
#define NS_MODEL_DEFAULT_DIM 512
ns_status ns_model_default(int input_size, uint64_t seed, ns_model **out);

/* Human-readable summary: name, id, input, nodes with output shapes,
 * parameter count, embedding dim.  NS_ERR_NOMEM when an append failed. */
ns_status ns_model_describe(const ns_model *m, ns_strbuf *out);

/* Learnable parameters (all weight floats). */
size_t ns_model_param_count(const ns_model *m);

void ns_model_free(ns_model *m); /* NULL-safe */

/* Writes the model atomically (temp file, fsync, rename, fsync directory);
 * model_id is recomputed from the content. */
ns_status ns_model_save(const char *path, const ns_model *m);
/* Reads, validates and folds BatchNormalization (errors above). */
ns_status ns_model_load(const char *path, ns_model **out);
/* The same from a file's bytes in memory (HDF5's core driver); name is what
 * messages call it.  The fuzz target of tests/fuzz uses it. */
ns_status ns_model_load_image(const void *buf, size_t len, const char *name, ns_model **out);

#endif
