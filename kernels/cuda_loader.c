/* cuda_loader.c -- ns_cuda.h in a binary built with CUDA: opens
 * libnightshift_cuda.so on the first call and forwards every call to it.
 *
 * The module is looked for, in order, at $NIGHTSHIFT_CUDA_MODULE, next to the
 * running executable (build trees, bundles), in the install's library folder
 * and on the loader's search path.  When none loads (no CUDA runtime on this
 * node, a module from another build), every entry point behaves as in a build
 * without CUDA, with the reason in the message.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_api.h"
#include "../src/detect/kmeans_internal.h"

#define MODULE_NAME "libnightshift_cuda.so"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const ns_cuda_api *api;
static char where[PATH_MAX + 64];
static char why[2048];

static const ns_cuda_host services = {
    NS_CUDA_API_VERSION,  ns_error,           ns_kmeans_check_assign, ns_kmeans_check_fit,
    ns_kmeans_fit,        ns_kmeans_repair,   ns_kmeans_result_release,
};

/* 1 and api set when path loaded; otherwise the reason appended to why. */
static int try_load(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    size_t used = strlen(why);
    const char *sep = used ? "; " : "";
    if (!h) {
        snprintf(why + used, sizeof why - used, "%s%s", sep, dlerror());
        return 0;
    }
    ns_cuda_module_entry entry = (ns_cuda_module_entry)dlsym(h, NS_CUDA_MODULE_ENTRY);
    const ns_cuda_api *a = entry ? entry(&services) : NULL;
    if (!a || a->version != NS_CUDA_API_VERSION || a->size != sizeof *a) {
        snprintf(why + used, sizeof why - used, "%s%s: from another nightshift build", sep, path);
        dlclose(h);
        return 0;
    }
    api = a;
    snprintf(where, sizeof where, "%s", path);
    return 1;
}

static void load(void)
{
    char path[PATH_MAX + 64];
    const char *env = getenv("NIGHTSHIFT_CUDA_MODULE");
    if (env && *env) {
        try_load(env); /* named explicitly: nothing else is tried */
        return;
    }
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
    if (n > 0) {
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash) {
            snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", MODULE_NAME);
            if (try_load(path))
                return;
        }
    }
#ifdef NS_CUDA_MODULE_DIR
    if (try_load(NS_CUDA_MODULE_DIR "/" MODULE_NAME))
        return;
#endif
    try_load(MODULE_NAME);
}

static int load_done; /* set (release) once load() has run */

static void load_once(void)
{
    load();
    __atomic_store_n(&load_done, 1, __ATOMIC_RELEASE);
}

static const ns_cuda_api *get(void)
{
    pthread_once(&once, load_once);
    return api;
}

/* The module if it is loaded, without loading it. */
static const ns_cuda_api *peek(void)
{
    return __atomic_load_n(&load_done, __ATOMIC_ACQUIRE) ? api : NULL;
}

const char *ns_cuda_module(int *loaded)
{
    *loaded = get() != NULL;
    return *loaded ? where : why;
}

int ns_cuda_built(void) { return 1; }

int ns_cuda_driver_present(void)
{
    static const char *const signs[] = {"/dev/nvidiactl", "/dev/nvidia0",
                                        "/proc/driver/nvidia/version", "/dev/dxg"};
    const char *e = getenv("NIGHTSHIFT_CUDA_PROBE");
    if (e && strcmp(e, "always") == 0)
        return 1;
    for (size_t i = 0; i < sizeof signs / sizeof signs[0]; i++)
        if (access(signs[i], F_OK) == 0)
            return 1;
    return 0;
}

static ns_status no_module(void)
{
    return ns_error(NS_ERR_NODEV, "the CUDA module could not be loaded: %s", why);
}

/* Entry points that hand out resources say so even without the module. */
ns_status ns_cuda_devices(ns_cuda_device *out, int cap, int *count)
{
    *count = 0;
    return get() ? api->ns_cuda_devices(out, cap, count) : no_module();
}

ns_status ns_cuda_ctx_create(int device, ns_cuda_ctx **out)
{
    *out = NULL;
    return get() ? api->ns_cuda_ctx_create(device, out) : no_module();
}

ns_status ns_cuda_malloc(void **out, size_t bytes)
{
    *out = NULL;
    return get() ? api->ns_cuda_malloc(out, bytes) : no_module();
}

ns_status ns_cuda_host_alloc(void **out, size_t bytes)
{
    *out = NULL;
    return get() ? api->ns_cuda_host_alloc(out, bytes) : no_module();
}

#define FWD_S(ret, name, params, args)                                                         \
    ret name params { return get() ? api->name args : no_module(); }
/* The V entry points are releases: what the module never handed out needs
 * none, so they never load it (the CPU executor frees its NULL GPU buffers). */
#define FWD_V(ret, name, params, args)                                                         \
    ret name params                                                                            \
    {                                                                                          \
        if (peek())                                                                            \
            api->name args;                                                                    \
    }
#define FWD_Z(ret, name, params, args)                                                         \
    ret name params { return get() ? api->name args : 0; }
#define FWD_H(ret, name, params, args)
#define FWD(kind, ret, name, params, args) FWD_##kind(ret, name, params, args)
NS_CUDA_API(FWD)
