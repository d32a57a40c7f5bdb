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

# summarize LISTS RESULTS: LISTS is an associative array of space-separated
# repetition values; RESULTS[key] gets their median, RESULTS[key.lo] and
# RESULTS[key.hi] their smallest and largest.
# shellcheck disable=SC2004 # the arrays are associative: their keys are strings
summarize() {
    local -n _lists=$1 _res=$2
    local k
    for k in "${!_lists[@]}"; do
        # shellcheck disable=SC2086 # the space-separated lists are split on purpose
        _res[$k]=$(median ${_lists[$k]})
        # shellcheck disable=SC2086
        _res[$k.lo]=$(printf '%s\n' ${_lists[$k]} | sort -g | head -1)
        # shellcheck disable=SC2086
        _res[$k.hi]=$(printf '%s\n' ${_lists[$k]} | sort -g | tail -1)
    done
}
