/* gen_main.c -- nightshift-gen: deterministic demo and test data.
 *
 *   nightshift-gen glove --out DIR [options]   the glove-shift scenario (glove.h)
 *   nightshift-gen bad --out DIR [--seed N]    the bad-input corpus (badcorpus.h)
 *
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badcorpus.h"
#include "glove.h"

enum { EXIT_USAGE = 2 };

static void glove_usage(FILE *f)
{
    ns_glove_opts d;
    ns_glove_default_opts(&d);
    fprintf(f,
            "usage: nightshift-gen glove --out DIR [options]\n"
            "\n"
            "Renders night-shift clips of assembly stations where the plant switches\n"
            "from gray to black gloves, with manifest.csv, labels.csv and truth.json.\n"
            "\n"
            "  --out DIR          output directory (required)\n"
            "  --nights N         nights to generate (default %d)\n"
            "  --start DATE       first night, YYYY-MM-DD (default %s)\n"
            "  --cameras N        cameras cam01..camNN (default %d)\n"
            "  --clips N          clips per camera per night (default %d)\n"
            "  --frames N         frames per clip (default %d)\n"
            "  --width N          frame width (default %d)\n"
            "  --height N         frame height (default %d)\n"
            "  --quality N        JPEG quality 1..100 (default %d)\n"
            "  --fps X            frame rate (default %g)\n"
            "  --formats LIST     clips cycle through these (default "
            "tar,tar.gz,tar.xz,tar.zst,tar.bz2,zip,mjpeg,avi)\n"
            "  --seed N           random seed (default %llu)\n"
            "  --shift KIND:NIGHT[:CAM,CAM..[:CLIPS]]\n"
            "                     inject a change from 1-based NIGHT on (all cameras when\n"
            "                     none listed; only the first CLIPS clips of each camera and\n"
            "                     night when given); KIND is glove (black gloves), light\n"
            "                     (dimmer, warmer), bump (camera moved and rotated) or\n"
            "                     object (a new object type, a drill, on the bench in the\n"
            "                     station's own tones); repeatable;\n"
            "                     'none' for no change (default glove:5:cam01,cam02)\n"
            "  --threads N        worker threads (default: OpenMP's, OMP_NUM_THREADS);\n"
            "                     the output does not depend on it\n"
            "  --help             this text\n",
            d.nights, d.start, d.cameras, d.clips, d.frames, d.width, d.height, d.quality, d.fps,
            (unsigned long long)d.seed);
}

static void bad_usage(FILE *f)
{
    fprintf(f, "usage: nightshift-gen bad --out DIR [--seed N]\n"
               "\n"
               "Writes the bad-input corpus: one small clip per failure mode, and\n"
               "expect.csv with the outcome ingest should report for each (default seed 1).\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nightshift-gen <command> [options]\n"
               "\n"
               "commands:\n"
               "  glove   the glove-shift scenario (nightshift-gen glove --help)\n"
               "  bad     the bad-input corpus (nightshift-gen bad --help)\n");
}

static int usage_error(const char *cmd)
{
    fprintf(stderr, "nightshift-gen %s: %s\n", cmd, ns_errmsg());
    return EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_num(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -1000000000L || v > 1000000000L)
        return -1;
    *out = (int)v;
    return 0;
}

static int cmd_glove(int argc, char **argv)
{
    enum { O_OUT = 256, O_NIGHTS, O_START, O_CAMERAS, O_CLIPS, O_FRAMES, O_WIDTH, O_HEIGHT,
           O_QUALITY, O_FPS, O_FORMATS, O_SEED, O_SHIFT, O_THREADS, O_HELP };
    static const struct option longopts[] = {
        {"out", required_argument, 0, O_OUT},         {"nights", required_argument, 0, O_NIGHTS},
        {"start", required_argument, 0, O_START},     {"cameras", required_argument, 0, O_CAMERAS},
        {"clips", required_argument, 0, O_CLIPS},     {"frames", required_argument, 0, O_FRAMES},
        {"width", required_argument, 0, O_WIDTH},     {"height", required_argument, 0, O_HEIGHT},
        {"quality", required_argument, 0, O_QUALITY}, {"fps", required_argument, 0, O_FPS},
        {"formats", required_argument, 0, O_FORMATS}, {"seed", required_argument, 0, O_SEED},
        {"shift", required_argument, 0, O_SHIFT},     {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    ns_glove_opts o;
    ns_glove_default_opts(&o);
    int shifts_given = 0, c, *num = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        num = NULL;
        switch (c) {
        case O_OUT: o.out = optarg; break;
        case O_NIGHTS: num = &o.nights; break;
        case O_CAMERAS: num = &o.cameras; break;
        case O_CLIPS: num = &o.clips; break;
        case O_FRAMES: num = &o.frames; break;
        case O_WIDTH: num = &o.width; break;
        case O_HEIGHT: num = &o.height; break;
        case O_QUALITY: num = &o.quality; break;
        case O_THREADS: num = &o.threads; break;
        case O_START:
            if (strlen(optarg) != 10) {
                ns_error(NS_ERR_USAGE, "start date '%s' is not YYYY-MM-DD", optarg);
                return usage_error("glove");
            }
            memcpy(o.start, optarg, 11);
            break;
        case O_FPS: {
            char *end = NULL;
            o.fps = strtod(optarg, &end);
            if (end == optarg || *end) {
                ns_error(NS_ERR_USAGE, "fps '%s' is not a number", optarg);
                return usage_error("glove");
            }
            break;
        }
        case O_FORMATS:
            if (ns_glove_parse_formats(optarg, &o) != NS_OK)
                return usage_error("glove");
            break;
        case O_SEED:
            if (parse_u64(optarg, &o.seed) != 0) {
                ns_error(NS_ERR_USAGE, "seed '%s' is not a non-negative integer", optarg);
                return usage_error("glove");
            }
            break;
        case O_SHIFT:
            if (!shifts_given)
                o.n_shifts = 0; /* any --shift replaces the default */
            shifts_given = 1;
            if (strcmp(optarg, "none") == 0)
                break;
            if (o.n_shifts == NS_GLOVE_MAX_SHIFTS) {
                ns_error(NS_ERR_USAGE, "more than %d shifts", NS_GLOVE_MAX_SHIFTS);
                return usage_error("glove");
            }
            if (ns_glove_parse_shift(optarg, &o.shifts[o.n_shifts]) != NS_OK)
                return usage_error("glove");
            o.n_shifts++;
            break;
        case O_HELP: glove_usage(stdout); return 0;
        default: glove_usage(stderr); return EXIT_USAGE;
        }
        if (num && parse_num(optarg, num) != 0) {
            ns_error(NS_ERR_USAGE, "option --%s: '%s' is not an integer",
                     longopts[c - O_OUT].name, optarg);
            return usage_error("glove");
        }
    }
    if (optind < argc) {
        ns_error(NS_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
        return usage_error("glove");
    }
    if (o.threads < 0) {
        ns_error(NS_ERR_USAGE, "--threads %d is negative", o.threads);
        return usage_error("glove");
    }
    ns_glove_stats stats;
    ns_status st = ns_glove_generate(&o, &stats);
    if (st == NS_ERR_USAGE)
        return usage_error("glove");
    if (st != NS_OK) {
        fprintf(stderr, "nightshift-gen glove: %s\n", ns_errmsg());
        return 1;
    }
    printf("nightshift-gen glove: %llu clips, %llu frames, %.1f MB in %s in %.2f s (%.0f frames/s)\n",
           (unsigned long long)stats.clips, (unsigned long long)stats.frames,
           (double)stats.bytes / 1e6, o.out, stats.seconds,
           stats.seconds > 0 ? (double)stats.frames / stats.seconds : 0.0);
    return 0;
}

static int cmd_bad(int argc, char **argv)
{
    static const struct option longopts[] = {{"out", required_argument, 0, 'o'},
                                             {"seed", required_argument, 0, 's'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *out = NULL;
    uint64_t seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (parse_u64(optarg, &seed) != 0) {
                ns_error(NS_ERR_USAGE, "seed '%s' is not a non-negative integer", optarg);
                return usage_error("bad");
            }
            break;
        case 'h': bad_usage(stdout); return 0;
        default: bad_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        ns_error(NS_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
        return usage_error("bad");
    }
    if (!out) {
        ns_error(NS_ERR_USAGE, "--out DIR is required");
        return usage_error("bad");
    }
    size_t n_files = 0;
    ns_status st = ns_badcorpus_generate(out, seed, &n_files);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift-gen bad: %s\n", ns_errmsg());
        return st == NS_ERR_USAGE ? EXIT_USAGE : 1;
    }
    printf("nightshift-gen bad: %zu files and expect.csv in %s\n", n_files, out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "glove") == 0)
        return cmd_glove(argc - 1, argv + 1);
    if (strcmp(argv[1], "bad") == 0)
        return cmd_bad(argc - 1, argv + 1);
    fprintf(stderr, "nightshift-gen: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
