#!/usr/bin/env bash
# run_detect.sh [BUILD_DIR] -- the whole detect stage at the issue's scale: a
# night of 50,000 frames against a reference period of 200,000 frames, 1,000
# clip permutations, on a synthetic store (bench/detect/synth_store.c: real
# store files, clip-correlated 512-d embeddings under the default backbone's
# id).  Prints where the time goes, in the default and the tuned environment.
# Target: under a minute on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
work=${NS_BENCH_TMP:-$(mktemp -d /tmp/ns-bench-detect-XXXXXX)}
ns=$build/nightshift
echo "== synthetic store: 200,000 reference frames over 20 nights + 50,000 tonight (50 per clip)"
rm -rf "$work/store"
"$build/nightshift-bench-synth" --out "$work/store" --ref-nights 20 --ref-frames 200000 \
  --tonight-frames 50000 --clip-frames 50 --shift 0.1
for e in default tuned; do
  echo "== $e environment"
  /usr/bin/time -f "reference build: %e s wall, %M KB peak" \
    bash -c "$(declare -f in_env); tunables=$tunables; in_env $e '$ns' reference build --store '$work/store' \
      --nights 2026-10-01..2026-10-20 --out '$work/ref.h5'"
  /usr/bin/time -f "detect: %e s wall, %M KB peak" \
    bash -c "$(declare -f in_env); tunables=$tunables; in_env $e '$ns' detect --store '$work/store' \
      --night 2026-11-01 --reference '$work/ref.h5' --out '$work/out' --perms 1000"
done
[ -n "${NS_BENCH_TMP:-}" ] || rm -rf "$work"
