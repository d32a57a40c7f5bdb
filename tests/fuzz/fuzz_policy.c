/* fuzz_policy.c -- libFuzzer target: the gate policy file parser of
 * src/eval/policy.c ("key = value" lines).  A policy that loads must format
 * as a file that loads back to the same policy. */
#include "nightshift/gate.h"
#include "nightshift/strbuf.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *path = ns_fuzz_file(data, n, ".policy");
    static ns_gate_policy p, back;
    ns_gate_default_policy(&p);
    if (ns_gate_policy_load(path, &p) == NS_OK) {
        ns_strbuf a = {0}, b = {0};
        ns_gate_policy_format(&p, &a);
        const char *p2 = ns_fuzz_file((const uint8_t *)(a.data ? a.data : ""), a.len,
                                      ".printed.policy");
        ns_gate_default_policy(&back);
        if (ns_gate_policy_load(p2, &back) != NS_OK) {
            fprintf(stderr, "formatted policy does not load: %s\n---\n%s---\n", ns_errmsg(),
                    a.data ? a.data : "");
            abort();
        }
        ns_gate_policy_format(&back, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            fprintf(stderr, "policy changes on reload:\n---\n%s---\n%s---\n", a.data, b.data);
            abort();
        }
        ns_strbuf_release(&a);
        ns_strbuf_release(&b);
    } else {
        ns_fuzz_check_text(ns_errmsg());
    }
    return 0;
}
