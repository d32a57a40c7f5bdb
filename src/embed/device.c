/* device.c -- the devices and precisions a run can ask for, and the one
 * decision of which device actually runs (shared by embed and detect). */
#include <string.h>

#include "nightshift/exec.h"
#include "ns_cuda.h"

static const char *const device_names[] = {"auto", "cpu", "cuda", "ref"};

ns_status ns_device_parse(const char *s, ns_device *out)
{
    for (int d = 0; d < 4; d++)
        if (s && strcmp(s, device_names[d]) == 0) {
            *out = (ns_device)d;
            return NS_OK;
        }
    return ns_error(NS_ERR_USAGE, "unknown device '%s' (auto, cpu, cuda or ref)", s ? s : "");
}

const char *ns_device_name(ns_device d)
{
    return (unsigned)d < 4 ? device_names[d] : "?";
}

static const char *const precision_names[] = {"fp32", "tf32", "bf16"};

ns_status ns_precision_parse(const char *s, ns_precision *out)
{
    for (int p = 0; p < 3; p++)
        if (s && strcmp(s, precision_names[p]) == 0) {
            *out = (ns_precision)p;
            return NS_OK;
        }
    return ns_error(NS_ERR_USAGE, "unknown precision '%s' (fp32, tf32 or bf16)", s ? s : "");
}

const char *ns_precision_name(ns_precision p)
{
    return (unsigned)p < 3 ? precision_names[p] : "?";
}

ns_status ns_device_resolve(ns_device want, ns_device *got)
{
    ns_cuda_device devs[NS_CUDA_MAX_DEVICES];
    int count = 0;
    ns_status st;
    *got = want;
    if (want == NS_DEVICE_CPU || want == NS_DEVICE_REF)
        return NS_OK;
    if (want != NS_DEVICE_AUTO && want != NS_DEVICE_CUDA)
        return ns_error(NS_ERR_USAGE, "unknown device %d", (int)want);
    if (want == NS_DEVICE_AUTO && !ns_cuda_driver_present()) {
        *got = NS_DEVICE_CPU; /* no driver: not worth loading the CUDA module to hear it */
        return NS_OK;
    }
    st = ns_cuda_devices(devs, NS_CUDA_MAX_DEVICES, &count);
    if (st == NS_OK && count < 1)
        st = ns_error(NS_ERR_NODEV, "no CUDA device found");
    if (st == NS_OK) {
        *got = NS_DEVICE_CUDA;
        return NS_OK;
    }
    if (want == NS_DEVICE_CUDA)
        return ns_error_wrap(NS_ERR_NODEV, "device cuda");
    ns_error_clear();
    *got = NS_DEVICE_CPU;
    return NS_OK;
}
