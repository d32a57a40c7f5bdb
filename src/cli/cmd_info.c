/* nightshift info -- store summary, or the CUDA devices this build can use. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nightshift/store.h"
#include "nightshift/strbuf.h"
#include "ns_cuda.h"

static const char *const qc_names[6] = {"frozen", "black", "white", "res_change", "gaps",
                                        "decode_warn"};

typedef struct night_row {
    char night[NS_NIGHT_LEN];
    size_t clips;
    uint64_t frames;
} night_row;

/* Per-night rows in catalog order of first appearance, sorted by date. */
static size_t nights_of(const ns_catalog_clip *clips, size_t n, night_row *rows, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && strcmp(rows[j].night, clips[i].night) != 0)
            j++;
        if (j == k) {
            if (k == cap)
                continue;
            memset(&rows[k], 0, sizeof rows[k]);
            snprintf(rows[k].night, sizeof rows[k].night, "%s", clips[i].night);
            k++;
        }
        rows[j].clips++;
        rows[j].frames += clips[i].n_frames;
    }
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && strcmp(rows[j - 1].night, rows[j].night) > 0; j--) {
            night_row t = rows[j];
            rows[j] = rows[j - 1];
            rows[j - 1] = t;
        }
    return k;
}

static int devices(int json)
{
    ns_cuda_device devs[NS_CUDA_MAX_DEVICES];
    int n = 0;
    ns_status st = ns_cuda_devices(devs, NS_CUDA_MAX_DEVICES, &n);
    if (json) {
        ns_strbuf b = {0};
        int loaded = 0;
        const char *module = ns_cuda_module(&loaded);
        ns_strbuf_printf(&b, "{\"cuda_built\": %s, \"cuda_runtime\": %d, \"cuda_module\": ",
                         ns_cuda_built() ? "true" : "false", ns_cuda_runtime_version());
        ns_strbuf_json_str(&b, loaded ? module : "");
        ns_strbuf_printf(&b, ", \"error\": ");
        ns_strbuf_json_str(&b, st == NS_OK ? "" : ns_errmsg());
        ns_strbuf_printf(&b, ", \"devices\": [");
        for (int i = 0; i < n; i++) {
            ns_strbuf_printf(&b, "%s{\"index\": %d, \"name\": ", i ? ", " : "", devs[i].index);
            ns_strbuf_json_str(&b, devs[i].name);
            ns_strbuf_printf(&b, ", \"memory_bytes\": %zu, \"compute_capability\": \"%d.%d\", "
                                 "\"sms\": %d, \"kernel_ok\": %s}",
                             devs[i].total_mem, devs[i].cc_major, devs[i].cc_minor,
                             devs[i].sm_count, devs[i].kernel_ok ? "true" : "false");
        }
        ns_strbuf_printf(&b, "]}\n");
        fputs(b.data ? b.data : "{}\n", stdout);
        ns_strbuf_release(&b);
        return NS_EXIT_OK;
    }
    printf("cuda: %s", ns_cuda_built() ? "built in" : "built without CUDA");
    if (ns_cuda_built()) {
        int loaded = 0;
        const char *module = ns_cuda_module(&loaded);
        if (loaded)
            printf(" (runtime %d, module %s)", ns_cuda_runtime_version(), module);
    }
    printf("\n");
    if (st != NS_OK) {
        printf("devices: none (%s); nightshift will use the CPU\n", ns_errmsg());
        return NS_EXIT_OK;
    }
    for (int i = 0; i < n; i++)
        printf("device %d: %s, %.1f GiB, compute %d.%d, %d SMs, self-test %s\n", devs[i].index,
               devs[i].name, (double)devs[i].total_mem / (1 << 30), devs[i].cc_major,
               devs[i].cc_minor, devs[i].sm_count, devs[i].kernel_ok ? "ok" : "FAILED");
    return NS_EXIT_OK;
}

static void help(void)
{
    printf("usage: nightshift info --store DIR [--json]\n"
           "       nightshift info --devices [--json]\n\n"
           "  --store DIR   the store [$NIGHTSHIFT_STORE]\n"
           "  --json        machine-readable output (for scripts)\n"
           "  --devices     list CUDA devices instead (no store needed)\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {{"store", required_argument, 0, 's'},
                                              {"json", no_argument, 0, 'j'},
                                              {"devices", no_argument, 0, 'd'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *store_opt = NULL;
    int json = 0, want_devices = 0, c, rc = NS_EXIT_OK;
    ns_store *s = NULL;
    ns_store_summary sum;
    ns_status st;
    night_row rows[512];
    size_t n_rows, n_clips;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'j': json = 1; break;
        case 'd': want_devices = 1; break;
        case 'h': help(); return NS_EXIT_OK;
        default: fprintf(stderr, "see 'nightshift info --help'\n"); return NS_EXIT_USAGE;
        }
    }
    if (want_devices)
        return devices(json);
    const char *store = ns_cli_store(store_opt);
    if (!store) {
        fprintf(stderr, "nightshift info: no store: give --store DIR or set NIGHTSHIFT_STORE\n");
        return NS_EXIT_USAGE;
    }
    st = ns_store_open_read(store, &s);
    if (st == NS_OK)
        st = ns_store_summarize(s, &sum);
    if (st != NS_OK) {
        rc = ns_cli_fail("info", st);
        goto done;
    }
    const ns_catalog_clip *clips = ns_store_clips(s, &n_clips);
    n_rows = nights_of(clips, n_clips, rows, sizeof rows / sizeof rows[0]);
    if (json) {
        ns_strbuf b = {0};
        ns_strbuf_printf(&b, "{\n  \"store\": ");
        ns_strbuf_json_str(&b, store);
        ns_strbuf_printf(&b,
                         ",\n  \"frame_size\": %d,\n  \"shards\": %zu,\n  \"nights\": %zu,\n"
                         "  \"cameras\": %zu,\n  \"clips\": %zu,\n  \"frames\": %" PRIu64 ",\n"
                         "  \"frames_damaged\": %" PRIu64 ",\n  \"frames_failed\": %" PRIu64 ",\n"
                         "  \"bytes_on_disk\": %" PRIu64 ",\n  \"first_night\": ",
                         sum.frame_size, sum.n_shards, sum.n_nights, sum.n_cameras, sum.n_clips,
                         sum.n_frames, sum.n_damaged, sum.n_failed, sum.bytes_on_disk);
        ns_strbuf_json_str(&b, sum.first_night);
        ns_strbuf_printf(&b, ",\n  \"last_night\": ");
        ns_strbuf_json_str(&b, sum.last_night);
        ns_strbuf_printf(&b, ",\n  \"qc_clips\": {");
        for (int i = 0; i < 6; i++)
            ns_strbuf_printf(&b, "%s\"%s\": %zu", i ? ", " : "", qc_names[i], sum.qc_clips[i]);
        ns_strbuf_printf(&b, "},\n  \"per_night\": [");
        for (size_t i = 0; i < n_rows; i++)
            ns_strbuf_printf(&b, "%s\n    {\"night\": \"%s\", \"clips\": %zu, \"frames\": %" PRIu64 "}",
                             i ? "," : "", rows[i].night, rows[i].clips, rows[i].frames);
        ns_strbuf_printf(&b, "%s]\n}\n", n_rows ? "\n  " : "");
        st = ns_strbuf_status(&b);
        if (st == NS_OK)
            fputs(b.data, stdout);
        else
            rc = ns_cli_fail("info", st);
        ns_strbuf_release(&b);
        goto done;
    }
    printf("store       %s\n", store);
    printf("frame size  %d x %d RGB\n", sum.frame_size, sum.frame_size);
    printf("nights      %zu", sum.n_nights);
    if (sum.n_nights)
        printf(" (%s .. %s)", sum.first_night, sum.last_night);
    printf("\ncameras     %zu\nclips       %zu\nframes      %" PRIu64 " (%" PRIu64
           " damaged; %" PRIu64 " failed and not stored)\nshards      %zu\n",
           sum.n_cameras, sum.n_clips, sum.n_frames, sum.n_damaged, sum.n_failed, sum.n_shards);
    printf("on disk     %.1f MiB\n", (double)sum.bytes_on_disk / (1 << 20));
    printf("QC clips   ");
    for (int i = 0; i < 6; i++)
        printf(" %s=%zu", qc_names[i], sum.qc_clips[i]);
    printf("\n");
    for (size_t i = 0; i < n_rows; i++)
        printf("  night %s: %zu clips, %" PRIu64 " frames\n", rows[i].night, rows[i].clips,
               rows[i].frames);
done:
    ns_store_close(s);
    return rc;
}
