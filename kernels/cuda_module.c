/* cuda_module.c -- the entry point of libnightshift_cuda.so (see cuda_api.h).
 *
 * Built into the module only, with hidden visibility: the functions below
 * stand in for the binary's own, forwarding to the pointers it handed over,
 * and the kernels bind to them, not to whatever the host process exports.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cuda_api.h"
#include "../src/detect/kmeans_internal.h"

static const ns_cuda_host *svc;

ns_status ns_error(ns_status code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return svc->error(code, "%s", msg);
}

ns_status ns_kmeans_check_assign(const char *where, const float *x, size_t n, int d,
                                 const float *c, int k, const void *out)
{
    return svc->kmeans_check_assign(where, x, n, d, c, k, out);
}

ns_status ns_kmeans_check_fit(const char *where, const float *x, size_t n, int d,
                              const ns_kmeans_opts *o)
{
    return svc->kmeans_check_fit(where, x, n, d, o);
}

ns_status ns_kmeans_fit(const float *x, size_t n, int d, const ns_kmeans_opts *o,
                        ns_kmeans_result *r)
{
    return svc->kmeans_fit(x, n, d, o, r);
}

void ns_kmeans_repair(const float *x, size_t n, int d, int k, int *assign, double *dist,
                      size_t *counts, double *sums)
{
    svc->kmeans_repair(x, n, d, k, assign, dist, counts, sums);
}

void ns_kmeans_result_release(ns_kmeans_result *r) { svc->kmeans_result_release(r); }

#define NS_CUDA_API_ENTRY(kind, ret, name, params, args) name,

__attribute__((visibility("default"))) const ns_cuda_api *ns_cuda_module_api(const ns_cuda_host *h)
{
    static const ns_cuda_api api = {NS_CUDA_API_VERSION, sizeof(ns_cuda_api),
                                    NS_CUDA_API(NS_CUDA_API_ENTRY)};
    if (!h || h->version != NS_CUDA_API_VERSION)
        return NULL;
    svc = h;
    return &api;
}
