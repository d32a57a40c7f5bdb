#!/usr/bin/env bash
# run.sh [BUILD_DIR] -- `dataset build` of 200,000 labelled frames (512-d) on a
# synthetic store (bench/detect/synth_store.c), against a plain h5py read of
# the same embeddings in the same run.  The build reads the embeddings, hashes
# the stored pixels, splits, audits (kNN on sampled queries) and writes the
# file; the figure is embedding MB over the build's wall time.  Also times
# `labels import` of the 200,000 labels.  Default and tuned environments.
# The synthetic pixels are all alike and its clips of a camera overlap in
# embedding space, so the audit rightly flags them: the build runs with
# --split-by camera and --max-leak 1 to time the whole audit and the write.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
work=${NS_BENCH_TMP:-$(mktemp -d /tmp/ns-bench-dataset-XXXXXX)}
reps=${NS_BENCH_REPS:-3}
ns=$build/nightshift
py=/usr/bin/python3
echo "== synthetic store: 200,000 frames over 20 nights (50 per clip, 8 cameras)"
rm -rf "$work/store"
"$build/nightshift-bench-synth" --out "$work/store" --ref-nights 20 --ref-frames 200000 \
  --tonight-frames 100 --clip-frames 50 >/dev/null
model=$(ls "$work/store/embeddings")
$py "$here/bench/dataset/make_labels.py" "$work/store" "$work/labels.csv"
/usr/bin/time -f "labels import of 200,000 rows: %e s wall, %M KB peak" \
  "$ns" labels import --store "$work/store" --set bench --quiet "$work/labels.csv"
mb=$(( 200000 * 512 * 4 / 1000000 ))
for e in default tuned; do
  walls=()
  for r in $(seq "$reps"); do
    rm -f "$work/ds.h5"
    start=$(date +%s.%N)
    in_env "$e" "$ns" dataset build --store "$work/store" --nights 2026-10-01..2026-10-20 \
      --split-by camera --max-leak 1 --out "$work/ds.h5" > "$work/build.$e.txt"
    end=$(date +%s.%N)
    walls+=("$(echo "$end - $start" | bc -l)")
  done
  w=$(median "${walls[@]}")
  grep -E "time  |frames  " "$work/build.$e.txt" | sed 's/^/  /'
  load=$(sed -n 's/.*time  *load \([0-9.]*\) s.*/\1/p' "$work/build.$e.txt")
  printf "dataset build (%s): median %.2f s of %s (%s), %.0f MB/s of embeddings overall;\n" \
    "$e" "$w" "$reps" "${walls[*]}" "$(echo "$mb / $w" | bc -l)"
  printf "  its load phase (catalog, labels, embeddings of the last run): %.2f s, %.0f MB/s\n" \
    "$load" "$(echo "$mb / $load" | bc -l)"
done
in_env tuned $py "$here/bench/dataset/peer_h5py.py" "$work/store" "$model" "$reps"
[ -n "${NS_BENCH_TMP:-}" ] || rm -rf "$work"
