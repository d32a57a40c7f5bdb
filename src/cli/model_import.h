/* model_import.h -- `nightshift model import`: runs the Python converters in
 * tools/ (onnx2ns.py, torch2ns.py) and publishes their output once it loads.
 * Private to src/cli (cmd_model.c parses the options, model_import.c runs them). */
#ifndef NIGHTSHIFT_CLI_MODEL_IMPORT_H
#define NIGHTSHIFT_CLI_MODEL_IMPORT_H

#include <stdint.h>

#define NS_IMPORT_PYTHON "/usr/bin/python3" /* Debian's, with python3-onnx; $NIGHTSHIFT_PYTHON overrides */

typedef struct ns_import_opts {
    const char *out;           /* --out FILE.h5 (required) */
    const char *output;        /* --output NODE: embedding node; NULL: input of the last Gemm */
    const char *name;          /* --name: display name; NULL: the converter's default */
    const char *weights;       /* --weights FILE.pth (architectures only) */
    const char *keep_onnx;     /* --keep-onnx FILE.onnx (architectures only) */
    const char *channel_order; /* --channel-order rgb|bgr (ONNX files only); NULL: rgb */
    int l2norm;                /* --l2norm: append an L2Norm node */
    int size;                  /* --size S; 0: the ONNX input's (ONNX), 224 (architectures) */
    int64_t seed;              /* --seed N (architectures); -1: the converter's default (0) */
    int has_mean, has_std;
    double mean[3], std[3];    /* --mean/--std R,G,B; ImageNet's when not given */
} ns_import_opts;

/* Converts `what` (an ONNX file or a torchvision architecture name) into
 * o->out.  Prints the converter's messages (its stderr, and its stdout sent
 * to our stderr), then the `model info` summary on stdout.  Returns an exit
 * code: 0 written; 1 conversion or load failure; 2 usage errors and
 * operators the converter cannot map (the converter's own convention).  On
 * failure nothing appears at o->out and an existing file there is untouched. */
int ns_cli_model_import(const char *what, const ns_import_opts *o);

#endif
