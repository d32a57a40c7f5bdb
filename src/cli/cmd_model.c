/* nightshift model -- inspect, write out and (later) import backbones. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nightshift/model.h"
#include "nightshift/strbuf.h"

static void help(void)
{
    printf("usage: nightshift model info FILE|default [--size N] [--seed N]\n"
           "       nightshift model default --out FILE [--size N] [--seed N]\n\n"
           "  info       describe a model file, or the built-in default backbone\n"
           "  default    write the built-in default backbone to FILE\n"
           "  --size N   default backbone input size, 112 or 128 [112]\n"
           "  --seed N   default backbone seed [1]\n\n"
           "The default backbone is a seeded random-feature CNN: untrained random\n"
           "convolutions plus a two-sample test are a strong label-free shift detector\n"
           "(Rabanser et al., \"Failing Loudly\", NeurIPS 2019).  For production, import\n"
           "the backbone of your own model (tools/onnx2ns.py, to come).\n");
}

int cmd_model(int argc, char **argv)
{
    static const struct option longopts[] = {{"out", required_argument, 0, 'o'},
                                              {"size", required_argument, 0, 's'},
                                              {"seed", required_argument, 0, 'r'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *out = NULL, *verb, *what = NULL;
    uint64_t size = 112, seed = 1;
    int c, rc = NS_EXIT_OK;
    ns_model *m = NULL;
    ns_strbuf b = {0};
    ns_status st;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (!ns_cli_parse_u64(optarg, &size)) {
                fprintf(stderr, "nightshift model: invalid --size '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'r':
            if (!ns_cli_parse_u64(optarg, &seed)) {
                fprintf(stderr, "nightshift model: invalid --seed '%s'\n", optarg);
                return NS_EXIT_USAGE;
            }
            break;
        case 'h': help(); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift model --help'\n"); return NS_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        help();
        return NS_EXIT_USAGE;
    }
    verb = argv[optind];
    if (optind + 1 < argc)
        what = argv[optind + 1];
    if (strcmp(verb, "info") == 0) {
        if (!what) {
            fprintf(stderr, "nightshift model info: give a model FILE or 'default'\n");
            return NS_EXIT_USAGE;
        }
        st = strcmp(what, "default") == 0 ? ns_model_default((int)size, seed, &m)
                                           : ns_model_load(what, &m);
        if (st == NS_OK)
            st = ns_model_describe(m, &b);
        if (st != NS_OK) {
            rc = ns_cli_fail("model", st);
            goto done;
        }
        fputs(b.data ? b.data : "", stdout);
    } else if (strcmp(verb, "default") == 0) {
        if (!out) {
            fprintf(stderr, "nightshift model default: give --out FILE\n");
            return NS_EXIT_USAGE;
        }
        st = ns_model_default((int)size, seed, &m);
        if (st == NS_OK)
            st = ns_model_save(out, m);
        if (st != NS_OK) {
            rc = ns_cli_fail("model", st);
            goto done;
        }
        printf("model: wrote the default backbone (input %d, seed %llu) to %s\n", (int)size,
               (unsigned long long)seed, out);
    } else {
        fprintf(stderr, "nightshift model: unknown verb '%s' (info, default)\n", verb);
        return NS_EXIT_USAGE;
    }
done:
    ns_strbuf_release(&b);
    ns_model_free(m);
    return rc;
}
