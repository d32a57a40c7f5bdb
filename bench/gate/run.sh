#!/usr/bin/env bash
# run.sh [BUILD_DIR] -- the gate's paired clip bootstrap at the issue's scale
# (100,000 frames, 2,000 clips, 31 slices, 10,000 resamples) against the numpy
# peer doing the same work on the same arrays, in the default and the tuned
# environment.  Target: under 2 s on 2 cores.  Wall time is what the target
# is about; CPU time is printed too, because on a shared machine it is the
# steadier figure.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
work=$(mktemp -d /tmp/ns-bench-gate-XXXXXX)
trap 'rm -rf "$work"' EXIT
repeat=${NS_BENCH_REPEAT:-5}
"$build/nightshift-bench-gate" --dump "$work" --repeat 1 > /dev/null
for e in default tuned; do
  echo "== $e environment"
  ours=$(in_env "$e" "$build/nightshift-bench-gate" --repeat "$repeat")
  echo "$ours"
  peer=$(in_env tuned /usr/bin/python3 "$here/bench/gate/peer_gate.py" "$work" "$repeat")
  echo "$peer"
  w=$(awk '/^gate_seconds/ {print $2}' <<< "$ours")
  c=$(awk '/^gate_cpu_seconds/ {print $2}' <<< "$ours")
  pw=$(awk '/^peer_seconds/ {print $2}' <<< "$peer")
  pc=$(awk '/^peer_cpu_seconds/ {print $2}' <<< "$peer")
  awk -v w="$w" -v c="$c" -v pw="$pw" -v pc="$pc" -v e="$e" 'BEGIN {
    printf "%s: nightshift %.3f s wall (%.3f s CPU), numpy peer (tuned) %.3f s wall (%.3f s CPU): %.1fx wall, %.1fx CPU\n",
      e, w, c, pw, pc, pw / w, pc / c }'
done
