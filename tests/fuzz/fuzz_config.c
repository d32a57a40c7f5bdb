/* fuzz_config.c -- libFuzzer target: the nightly job's YAML config parser,
 * src/nightly/config.c over libcyaml and libyaml.  A config that loads must
 * print as YAML that loads back to the same config (same hash). */
#include "nightshift/nightly.h"
#include "nightshift/strbuf.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *path = ns_fuzz_file(data, n, ".nightly.yaml");
    ns_nightly_config c, back;
    ns_nightly_config_defaults(&c);
    ns_nightly_config_defaults(&back);
    if (ns_nightly_config_load(path, &c) == NS_OK) {
        ns_strbuf out = {0};
        char h1[NS_SHA256_HEX], h2[NS_SHA256_HEX];
        (void)ns_nightly_config_check(&c);
        ns_nightly_config_print(&c, &out);
        ns_nightly_config_hash(&c, h1);
        const char *p2 = ns_fuzz_file((const uint8_t *)(out.data ? out.data : ""), out.len,
                                      ".printed.yaml");
        if (ns_nightly_config_load(p2, &back) != NS_OK) {
            fprintf(stderr, "printed config does not load: %s\n---\n%s---\n", ns_errmsg(),
                    out.data ? out.data : "");
            abort();
        }
        ns_nightly_config_hash(&back, h2);
        NS_FUZZ_CHECK(strcmp(h1, h2) == 0);
        ns_strbuf_release(&out);
    } else {
        ns_fuzz_check_text(ns_errmsg());
    }
    ns_nightly_config_release(&c);
    ns_nightly_config_release(&back);
    return 0;
}
