#!/usr/bin/env bash
# Calibration of the shift test on generated nights with no injected change:
# the clip-permutation test's false-alarm rate at alpha = 0.05 is at most 0.08
# over 40 null nights, while the same nights tested with frame-level
# permutation reject far more often (frames of a clip are correlated, so
# frame permutations understate the null's spread).  This is why nightshift
# permutes clips.
source "$(dirname "$0")/lib.sh"

n_ref=8
n_null=${NS_NULL_NIGHTS:-40}
nights=$((n_ref + n_null))
"$NS_GEN" glove --out "$T/data" --nights "$nights" --cameras 3 --clips 3 --frames 12 \
  --width 320 --height 240 --formats tar,mjpeg --seed 11 --shift none >/dev/null
"$NS_BIN" ingest --store "$T/store" --manifest "$T/data/manifest.csv" --quiet "$T/data" >/dev/null
"$NS_BIN" embed --store "$T/store" --device cpu --quiet >/dev/null
mapfile -t all < <(ls "$T/data" | grep -E '^[0-9]{4}-' | sort)
expect_rc 0 "reference over the first $n_ref nights" "$NS_BIN" reference build --store "$T/store" \
  --nights "${all[0]}..${all[$((n_ref - 1))]}" --out "$T/ref.h5"

: > "$T/p.txt"
for ((i = n_ref; i < nights; i++)); do
  night=${all[$i]}
  for mode in clips frames; do
    "$NS_BIN" detect --store "$T/store" --night "$night" --reference "$T/ref.h5" \
      --out "$T/out-$mode/$night" --permute "$mode" --perms 500 --quiet || { not_ok "detect $night ($mode)"; continue; }
    $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], s['p_value'])" \
      "$T/out-$mode/$night/summary.json" "$mode" "$night" >> "$T/p.txt"
  done
done
check "false-alarm rates: clips <= 0.08, frames inflated" $PY - "$T/p.txt" "$n_null" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
n = int(sys.argv[2])
rate = {}
for mode in ("clips", "frames"):
    p = [float(r[2]) for r in rows if r[0] == mode]
    assert len(p) == n, (mode, len(p))
    rate[mode] = sum(x < 0.05 for x in p) / n
print(f"false-alarm rate at alpha 0.05 over {n} null nights: clip permutation {rate['clips']:.3f}, "
      f"frame permutation {rate['frames']:.3f}")
assert rate["clips"] <= 0.08, rate
assert rate["frames"] >= 0.2 and rate["frames"] > 2 * rate["clips"], rate
PY
finish
