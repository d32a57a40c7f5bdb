# shellcheck shell=bash
# bench/lib.sh -- sourced by the bench/*/run.sh scripts: the two environments
# every benchmark reports, and the median of its repetitions.

# "tuned": OpenBLAS picks its own kernels (this machine forces Haswell ones) and
# glibc keeps big freed blocks instead of returning them to the kernel (a fresh
# 4 KB page costs ~12 us here).  "default": the machine's environment as it is.
tunables=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432
tunables+=:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456
in_env() { # ENV CMD...
    local e=$1
    shift
    if [[ $e == tuned ]]; then
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE GLIBC_TUNABLES=$tunables "$@"
    else
        "$@"
    fi
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
