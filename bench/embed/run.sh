#!/usr/bin/env bash
# bench/embed/run.sh [BUILD_DIR] -- executor images/s next to a PyTorch peer.
#
# For resnet18@224, mobilenet_v2@224 (torchvision, seeded random init as
# tools/torch2ns.py makes it, classifier removed) and the default backbone @112,
# all fed 224x224 uint8 frames (so the default's area resize is in the work):
#   nightshift  nightshift-bench-exec (bench/embed/exec_bench.c): the model planned
#               with ns_exec_create on the cpu device, batch 64, one warm-up batch,
#               then >= NS_BENCH_SECS (3) s of batches
#   peer        bench/embed/peer_torch.py on Debian's /usr/bin/python3 (torch 1.13):
#               the same network, weights and frames, preprocessing by torch on
#               the uint8 frames, eval + inference_mode, batch 64, in the faster memory
#               format (contiguous or channels_last, per environment and model)
# with OMP_NUM_THREADS=2 and torch.set_num_threads(2), in two environments
# (the machine's as is, and tuned: OpenBLAS overrides removed, glibc malloc
# keeping big blocks; the peer gets it too), NS_BENCH_REPS (3) repetitions with
# the environments alternating.  The table (medians; ours/peer ratios taken
# within each repetition, with their range) comes last, after the max |ours -
# peer| of the embeddings and the top 5 nodes of resnet18's profile (tuned).
#
# BUILD_DIR (default: build) must hold nightshift-bench-exec and nightshift
# (Release).  Converted models are cached in ${NS_BENCH_DATA:-/tmp/ns-bench-embed}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
data=${NS_BENCH_DATA:-/tmp/ns-bench-embed}
reps=${NS_BENCH_REPS:-3}
secs=${NS_BENCH_SECS:-3}
bench=$build/nightshift-bench-exec
ns=$build/nightshift
python=/usr/bin/python3
batch=64
S=224
export OMP_NUM_THREADS=2

for x in "$bench" "$ns"; do
    [[ -x $x ]] || { echo "run.sh: $x missing; build it first:" \
        "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j" >&2; exit 1; }
done
log() { echo "run.sh: $*" >&2; }

# --- models, converted once ------------------------------------------------------
mkdir -p "$data"
for a in resnet18 mobilenet_v2; do
    if [[ ! -f $data/$a.h5 ]]; then
        log "converting $a (torch2ns.py, seed 0, 224)"
        $python "$root/tools/torch2ns.py" "$a" "$data/$a.h5.tmp" --size 224 >&2
        mv "$data/$a.h5.tmp" "$data/$a.h5"
    fi
done
# The default backbone as a file, for the peer to read (ours uses "default").
"$ns" model default --out "$data/default112.h5" --size 112 --seed 1 >/dev/null

tmp=$(mktemp -d /tmp/ns-bench-embed-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

models=(resnet18 mobilenet_v2 default)
declare -A ours_arg=([resnet18]=$data/resnet18.h5 [mobilenet_v2]=$data/mobilenet_v2.h5
    [default]=default)
declare -A peer_file=([resnet18]=$data/resnet18.h5 [mobilenet_v2]=$data/mobilenet_v2.h5
    [default]=$data/default112.h5)
declare -A peer_arch=([resnet18]=resnet18 [mobilenet_v2]=mobilenet_v2 [default]=file)
declare -A insize=([resnet18]=224 [mobilenet_v2]=224 [default]=112)
# The peer's memory format, the faster of the two as measured on this machine for
# each environment and model (see bench/README.md): which one wins depends on the
# OpenBLAS settings.  NS_BENCH_PEER_FORMAT=contiguous|channels_last forces one.
declare -A fmt=([default.resnet18]=channels_last [default.mobilenet_v2]=channels_last
    [default.default]=channels_last [tuned.resnet18]=channels_last
    [tuned.mobilenet_v2]=contiguous [tuned.default]=contiguous)
if [[ -n ${NS_BENCH_PEER_FORMAT:-} ]]; then
    for k in "${!fmt[@]}"; do fmt[$k]=$NS_BENCH_PEER_FORMAT; done
fi

# --- environments ------------------------------------------------------------------
# shellcheck source=bench/lib.sh
source "$here/../lib.sh" # tunables, in_env, median

# The frames both sides see: written once by ours, read raw by the peer.
"$bench" default --batch $batch --size $S --secs 0.01 --frames-out "$tmp/frames.u8" >/dev/null

ours_ips() { # ENV MODEL [extra args]
    local e=$1 m=$2
    shift 2
    in_env "$e" "$bench" "${ours_arg[$m]}" --batch $batch --size $S --secs "$secs" "$@" \
        >"$tmp/ours.$e.$m.txt"
    awk '/^images_per_s/ {print $2}' "$tmp/ours.$e.$m.txt"
}
peer_ips() { # ENV MODEL [extra args]
    local e=$1 m=$2
    shift 2
    in_env "$e" $python "$here/peer_torch.py" "${peer_file[$m]}" --arch "${peer_arch[$m]}" \
        --frames "$tmp/frames.u8" --size $S --batch $batch --secs "$secs" --threads 2 \
        --memory-format "${fmt[$e.$m]}" "$@" | awk '/^images_per_s/ {print $2}'
}

declare -A all res
for ((r = 1; r <= reps; r++)); do
    for e in default tuned; do
        for m in "${models[@]}"; do
            extra_o=() extra_p=()
            if ((r == 1)) && [[ $e == default ]]; then
                extra_o=(--emb-out "$tmp/ours.$m.f32") extra_p=(--emb-out "$tmp/peer.$m.f32")
            fi
            o=$(ours_ips $e "$m" "${extra_o[@]}") p=$(peer_ips $e "$m" "${extra_p[@]}")
            all[$e.$m.o]+=" $o" all[$e.$m.p]+=" $p"
            all[$e.$m.r]+=" $(awk -v a="$o" -v b="$p" 'BEGIN {print a / b}')"
            log "$e rep $r $m: ours $o  peer $p images/s"
        done
    done
done
summarize all res

echo
echo "parity (warm-up batch, default env): max |ours - peer| / max |peer| of the embeddings"
for m in "${models[@]}"; do
    $python -c 'import sys, numpy as np
a = np.fromfile(sys.argv[2], np.float32); b = np.fromfile(sys.argv[3], np.float32)
print("  %-13s %.2e  (max |peer| %.3g)" % (sys.argv[1], abs(a - b).max() / abs(b).max(), abs(b).max()))' \
        "$m" "$tmp/ours.$m.f32" "$tmp/peer.$m.f32"
done
echo
echo "top 5 nodes of our resnet18 profile (tuned env, last repetition):"
sed -n '3,9p' "$tmp/ours.tuned.resnet18.txt" | sed 's/^/  /'

echo
echo "embed benchmark: batch $batch, frames ${S}x${S} uint8, OMP_NUM_THREADS=2 / torch 2 threads," \
    "median of $reps x >= ${secs}s ($(uname -m), $(nproc) cores)"
printf '%-8s %-13s %6s %10s %9s %8s %13s  %s\n' env model input ours peer ours/peer range \
    'peer format'
for e in default tuned; do
    for m in "${models[@]}"; do
        awk -v e=$e -v m="$m" -v s="${insize[$m]}" -v o="${res[$e.$m.o]}" -v p="${res[$e.$m.p]}" \
            -v r="${res[$e.$m.r]}" -v lo="${res[$e.$m.r.lo]}" -v hi="${res[$e.$m.r.hi]}" \
            -v f="${fmt[$e.$m]}" 'BEGIN {
            printf "%-8s %-13s %6d %10.1f %9.1f %7.2fx %6.2f-%.2fx  %s\n", e, m, s, o, p, r, lo, hi, f }'
    done
done
echo "(images/s; ours/peer is the median of per-repetition ratios, range over repetitions)"
