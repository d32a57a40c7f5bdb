/* nightshift model -- inspect, import and write out backbones. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_import.h"
#include "nightshift/model.h"
#include "nightshift/strbuf.h"

typedef struct model_opts {
    const char *out;
    uint64_t size;       /* default backbone input size; import: 0 = the converter's */
    uint64_t seed;       /* default backbone seed */
    int size_given, seed_given;
    int import_only;     /* an option that only `import` takes was given */
    ns_import_opts imp;
} model_opts;

static void default_opts(model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 112;
    o->seed = 1;
    o->imp.seed = -1;
}

static void help(void)
{
    model_opts d;
    default_opts(&d);
    printf("usage: nightshift model info FILE|default [--size N] [--seed N]\n"
           "       nightshift model default --out FILE [--size N] [--seed N]\n"
           "       nightshift model import MODEL.onnx|ARCH --out FILE.h5 [options]\n\n"
           "  info       describe a model file, or the built-in default backbone\n"
           "  default    write the built-in default backbone to FILE\n"
           "  import     convert an ONNX backbone, or a torchvision architecture (resnet18,\n"
           "             mobilenet_v2, ...: random weights from --seed, or --weights)\n"
           "  --out FILE        the model file to write\n"
           "  --size N          default backbone: input size, 112 or 128 [%llu];\n"
           "                    import: input size S [the ONNX input's; 224 for ARCH]\n"
           "  --seed N          default backbone seed [%llu]; ARCH: torch.manual_seed [0]\n\n"
           "import options:\n"
           "  --output NODE     embedding node (ONNX node or tensor name) [the input of the\n"
           "                    last Gemm, i.e. the classifier is dropped]\n"
           "  --l2norm          append an L2Norm node (unit-length embeddings)\n"
           "  --mean R,G,B      normalisation on 0..1 pixels [ImageNet's 0.485,0.456,0.406]\n"
           "  --std R,G,B       [ImageNet's 0.229,0.224,0.225]\n"
           "  --name NAME       display name [the file name; ARCH-seedN]\n"
           "  --channel-order rgb|bgr   ONNX only [rgb]\n"
           "  --weights FILE    ARCH only: a state_dict saved with torch.save\n"
           "  --keep-onnx FILE  ARCH only: also keep the exported ONNX\n\n"
           "The default backbone is a seeded random-feature CNN: untrained random\n"
           "convolutions plus a two-sample test are a strong label-free shift detector\n"
           "(Rabanser et al., \"Failing Loudly\", NeurIPS 2019).  For production, import\n"
           "the backbone of your own model.\n\n"
           "import runs tools/onnx2ns.py (MODEL.onnx, or a file that starts like ONNX) or\n"
           "tools/torch2ns.py (ARCH) with %s ($NIGHTSHIFT_PYTHON overrides; it\n"
           "needs numpy, h5py, onnx, and for ARCH torch and torchvision).  The scripts are\n"
           "looked up in $NIGHTSHIFT_TOOLS when set, else beside this binary:\n"
           "../share/nightshift/tools, the sources of the build tree it sits in, ../tools,\n"
           "../../tools.  The result is loaded and checked before it appears at --out;\n"
           "on failure nothing is written there.  Exit 2 for usage errors and operators\n"
           "the converter cannot map (all listed), 1 for other failures.\n",
           (unsigned long long)d.size, (unsigned long long)d.seed, NS_IMPORT_PYTHON);
}

/* "R,G,B" -> three finite numbers. */
static int parse3(const char *s, double v[3])
{
    char buf[128], *save = NULL, *tok;
    int k = 0;
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
        return 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (k >= 3 || !ns_cli_parse_double(tok, &v[k++]))
            return 0;
    return k == 3;
}

static int bad_value(const char *opt, const char *val)
{
    fprintf(stderr, "nightshift model: invalid %s '%s'\n", opt, val);
    return NS_EXIT_USAGE;
}

enum { O_OUT = 'o', O_SIZE = 's', O_SEED = 'r', O_HELP = 'h', O_OUTPUT = 256, O_L2NORM,
       O_MEAN, O_STD, O_NAME, O_ORDER, O_WEIGHTS, O_KEEP };

/* Parses argv into o; -1 when parsing went through, else the exit code. */
static int parse(int argc, char **argv, model_opts *o)
{
    static const struct option longopts[] = {
        {"out", required_argument, 0, O_OUT},         {"size", required_argument, 0, O_SIZE},
        {"seed", required_argument, 0, O_SEED},       {"output", required_argument, 0, O_OUTPUT},
        {"l2norm", no_argument, 0, O_L2NORM},         {"mean", required_argument, 0, O_MEAN},
        {"std", required_argument, 0, O_STD},         {"name", required_argument, 0, O_NAME},
        {"channel-order", required_argument, 0, O_ORDER},
        {"weights", required_argument, 0, O_WEIGHTS}, {"keep-onnx", required_argument, 0, O_KEEP},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    ns_import_opts *imp = &o->imp;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        o->import_only |= c >= O_OUTPUT;
        switch (c) {
        case O_OUT: o->out = optarg; break;
        case O_SIZE:
            if (!ns_cli_parse_u64(optarg, &o->size) || o->size < 1 || o->size > 4096)
                return bad_value("--size", optarg);
            o->size_given = 1;
            break;
        case O_SEED:
            if (!ns_cli_parse_u64(optarg, &o->seed))
                return bad_value("--seed", optarg);
            o->seed_given = 1;
            break;
        case O_OUTPUT: imp->output = optarg; break;
        case O_L2NORM: imp->l2norm = 1; break;
        case O_MEAN:
            if (!parse3(optarg, imp->mean))
                return bad_value("--mean (want R,G,B)", optarg);
            imp->has_mean = 1;
            break;
        case O_STD:
            if (!parse3(optarg, imp->std) || !imp->std[0] || !imp->std[1] || !imp->std[2])
                return bad_value("--std (want R,G,B, none 0)", optarg);
            imp->has_std = 1;
            break;
        case O_NAME: imp->name = optarg; break;
        case O_ORDER:
            if (strcmp(optarg, "rgb") != 0 && strcmp(optarg, "bgr") != 0)
                return bad_value("--channel-order (rgb or bgr)", optarg);
            imp->channel_order = optarg;
            break;
        case O_WEIGHTS: imp->weights = optarg; break;
        case O_KEEP: imp->keep_onnx = optarg; break;
        case O_HELP: help(); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift model --help'\n"); return NS_EXIT_USAGE;
        }
    }
    imp->out = o->out;
    imp->size = o->size_given ? (int)o->size : 0;
    if (o->seed_given && o->seed > (uint64_t)INT64_MAX)
        return bad_value("--seed", "(too large)");
    imp->seed = o->seed_given ? (int64_t)o->seed : -1;
    return -1;
}

int cmd_model(int argc, char **argv)
{
    const char *verb, *what = NULL;
    int rc = NS_EXIT_OK;
    ns_model *m = NULL;
    ns_strbuf b = {0};
    ns_status st;
    model_opts o;
    default_opts(&o);
    if ((rc = parse(argc, argv, &o)) >= 0)
        return rc;
    rc = NS_EXIT_OK;
    if (optind >= argc) {
        help();
        return NS_EXIT_USAGE;
    }
    verb = argv[optind];
    if (optind + 1 < argc)
        what = argv[optind + 1];
    if (optind + 2 < argc) {
        fprintf(stderr, "nightshift model %s: unexpected argument '%s'\n", verb, argv[optind + 2]);
        return NS_EXIT_USAGE;
    }
    if (o.import_only && strcmp(verb, "import") != 0) {
        fprintf(stderr, "nightshift model %s: --output, --l2norm, --mean, --std, --name, "
                "--channel-order, --weights and --keep-onnx are options of 'model import'\n", verb);
        return NS_EXIT_USAGE;
    }
    if (strcmp(verb, "info") == 0) {
        if (!what) {
            fprintf(stderr, "nightshift model info: give a model FILE or 'default'\n");
            return NS_EXIT_USAGE;
        }
        st = strcmp(what, "default") == 0 ? ns_model_default((int)o.size, o.seed, &m)
                                           : ns_model_load(what, &m);
        if (st == NS_OK)
            st = ns_model_describe(m, &b);
        if (st != NS_OK) {
            rc = ns_cli_fail("model", st);
            goto done;
        }
        fputs(b.data ? b.data : "", stdout);
    } else if (strcmp(verb, "default") == 0) {
        if (!o.out) {
            fprintf(stderr, "nightshift model default: give --out FILE\n");
            return NS_EXIT_USAGE;
        }
        st = ns_model_default((int)o.size, o.seed, &m);
        if (st == NS_OK)
            st = ns_model_save(o.out, m);
        if (st != NS_OK) {
            rc = ns_cli_fail("model", st);
            goto done;
        }
        printf("model: wrote the default backbone (input %d, seed %llu) to %s\n", (int)o.size,
               (unsigned long long)o.seed, o.out);
    } else if (strcmp(verb, "import") == 0) {
        if (!what || !o.out) {
            fprintf(stderr, "nightshift model import: give MODEL.onnx or a torchvision "
                    "architecture, and --out FILE.h5\n");
            return NS_EXIT_USAGE;
        }
        rc = ns_cli_model_import(what, &o.imp);
    } else {
        fprintf(stderr, "nightshift model: unknown verb '%s' (info, import, default)\n", verb);
        return NS_EXIT_USAGE;
    }
done:
    ns_strbuf_release(&b);
    ns_model_free(m);
    return rc;
}
