#!/usr/bin/env bash
# run.sh [BUILD_DIR] -- k-center greedy over 200,000 x 512 embeddings, budget
# 2,000, on 2 cores: nightshift (exact, triangle-inequality pruning) in the
# default and tuned environments, the numpy and PyTorch peers (tuned) on the
# same matrix in the same run.  Target: >= 3x the best peer, memory O(N).
# NS_BENCH_N, NS_BENCH_BUDGET shrink it for a quick look.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
export n=${NS_BENCH_N:-200000} b=${NS_BENCH_BUDGET:-2000}
d=512
work=$(mktemp -d /tmp/ns-bench-select-XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2
"$build/nightshift-bench-kcenter" --n "$n" --d "$d" --budget "$b" --dump "$work/x.f32"
declare -A W
for e in default tuned; do
  out=$(in_env "$e" "$build/nightshift-bench-kcenter" --n "$n" --d "$d" --budget "$b")
  echo "== nightshift, $e environment"; echo "$out"
  W[$e]=$(awk '/^kcenter_seconds/ {print $2}' <<< "$out")
done
peer=$(in_env tuned /usr/bin/python3 "$here/bench/select/peer_kcenter.py" "$work/x.f32" "$n" "$d" "$b")
echo "== peers (tuned)"; echo "$peer"
np_s=$(awk '/^numpy_seconds/ {print $2}' <<< "$peer")
th_s=$(awk '/^torch_seconds/ {print $2}' <<< "$peer")
awk -v a="${W[default]}" -v t="${W[tuned]}" -v np="$np_s" -v th="$th_s" 'BEGIN {
  best = np < th ? np : th
  printf "k-center %s x %s, budget %s: nightshift %.2f s (default) / %.2f s (tuned), numpy %.2f s, torch %.2f s: %.1fx / %.1fx the best peer\n",
    ENVIRON["n"], 512, ENVIRON["b"], a, t, np, th, best / a, best / t }'
