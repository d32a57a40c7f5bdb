#!/usr/bin/env bash
# run_semantic.sh [BUILD_DIR] -- detection quality on the semantic-novelty
# scenario (issue 13's case): 4 reference nights, tonight 16 clips of 4
# cameras with 50 frames each, 3 clips of cam02 show a drill on the bench, an
# object type the reference never saw, in the station's own tones.  Prints,
# with whitening off (the raw distances of reference format 1) and on, the
# frame AUROC of the novelty score and the precision / recall of the novel
# conditions against the truly new frames (tests/e2e/semantic_check.py), and
# the Python peer's AUROC on the same embeddings (peer_semantic.py), for
# generator seeds 3, 4 and 5.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
ns=$build/nightshift
work=${NS_BENCH_TMP:-$(mktemp -d /tmp/ns-bench-semantic-XXXXXX)}
for seed in ${NS_SEMANTIC_SEEDS:-3 4 5}; do
  d=$work/s$seed
  rm -rf "$d"
  "$build/nightshift-gen" glove --out "$d/data" --nights 5 --cameras 4 --clips 4 --frames 50 \
    --width 320 --height 240 --formats tar --seed "$seed" --shift object:5:cam02:3 >/dev/null
  "$ns" ingest --store "$d/store" --manifest "$d/data/manifest.csv" --quiet "$d/data" >/dev/null
  "$ns" embed --store "$d/store" --device cpu --quiet >/dev/null
  "$ns" reference build --store "$d/store" --nights 2026-11-05 --out "$d/tonight.h5" >/dev/null
  echo "== seed $seed"
  for w in off on; do
    "$ns" reference build --store "$d/store" --nights 2026-11-01..2026-11-04 --whiten "$w" \
      --out "$d/ref-$w.h5" >/dev/null
    rc=0
    "$ns" detect --store "$d/store" --night 2026-11-05 --reference "$d/ref-$w.h5" --out "$d/out-$w" \
      --quiet || rc=$?
    [ "$rc" -le 4 ] || exit "$rc"
    printf 'whiten %-3s ' "$w"
    /usr/bin/python3 "$here/tests/e2e/semantic_check.py" "$d/out-$w" "$d/data" 2026-11-05
  done
  /usr/bin/python3 "$here/bench/detect/peer_semantic.py" "$d/ref-on.h5" "$d/tonight.h5" \
    "$d/data/labels.csv" 2026-11-05
done
[ -n "${NS_BENCH_TMP:-}" ] || rm -rf "$work"
