// cuda_internal.cuh -- what every kernels/*.cu that reports errors shares: the
// one translation of CUDA and cuBLAS errors into ns_error messages, and the
// try-or-goto-done macros built on it.  Include after defining WHERE (the
// file, for messages); the including function needs `ns_status st` and `done:`.
#ifndef NIGHTSHIFT_CUDA_INTERNAL_CUH
#define NIGHTSHIFT_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ns_cuda.h"

#ifndef WHERE
#error "define WHERE (the including file's path) before including cuda_internal.cuh"
#endif

static inline ns_status cuda_fail(cudaError_t err, const char *what)
{
    ns_status code = NS_ERR_INTERNAL;
    if (err == cudaErrorMemoryAllocation)
        code = NS_ERR_NOMEM;
    else if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
             err == cudaErrorInvalidDevice)
        code = NS_ERR_NODEV;
    return ns_error(code, WHERE ": %s: %s", what, cudaGetErrorString(err));
}

static inline ns_status blas_fail(cublasStatus_t err, const char *what)
{
    ns_status code = err == CUBLAS_STATUS_ALLOC_FAILED ? NS_ERR_NOMEM : NS_ERR_INTERNAL;
    return ns_error(code, WHERE ": %s: %s (%s)", what, cublasGetStatusName(err),
                    cublasGetStatusString(err));
}

#define CUDA_TRY(call)                                                                  \
    do {                                                                                \
        cudaError_t err_ = (call);                                                      \
        if (err_ != cudaSuccess) {                                                      \
            st = cuda_fail(err_, #call);                                                \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

#define BLAS_TRY(call)                                                                  \
    do {                                                                                \
        cublasStatus_t err_ = (call);                                                   \
        if (err_ != CUBLAS_STATUS_SUCCESS) {                                            \
            st = blas_fail(err_, #call);                                                \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

#define NS_TRY(expr)                                                                    \
    do {                                                                                \
        if ((st = (expr)) != NS_OK)                                                     \
            goto done;                                                                  \
    } while (0)

#define LAUNCHED() CUDA_TRY(cudaGetLastError())

static const int kThreads = 256;

#endif
