#!/usr/bin/env bash
# The semantic-novelty scenario (nightshift-gen --shift object: a drill on the
# bench of cam02 in 3 of tonight's 16 clips, in the station's own tones):
#  - whitening: the frame AUROC of the novelty score against the truly new
#    frames is 0.84 with a whitened reference against 0.68 with raw distances
#    (generator seed 3; asserted: >= 0.80 and >= raw + 0.1);
#  - the same nights without the drill: no more than 5% of tonight's frames
#    novel at p < 0.05 (the cross-fitted calibration errs on the safe side);
#  - a version 1 reference (no whitening) still works, with a note;
#  - a night of 4 clips (one per camera) against a one-night reference (4
#    clips per camera): INSUFFICIENT with exit 4, every output written, the
#    exact test over all 5^4 = 625 within-camera clip assignments.
source "$(dirname "$0")/lib.sh"

gen() { # DIR SEED SHIFT
  "$NS_GEN" glove --out "$1" --nights 5 --cameras 4 --clips 4 --frames 30 --width 320 --height 240 \
    --formats tar --seed "$2" --shift "$3" >/dev/null
}
gen "$T/sem" 3 object:5:cam02:3
gen "$T/null" 3 none
for d in sem null; do
  "$NS_BIN" ingest --store "$T/$d.store" --manifest "$T/$d/manifest.csv" --quiet "$T/$d" >/dev/null
  "$NS_BIN" embed --store "$T/$d.store" --device cpu --quiet >/dev/null
done
for w in on off; do
  expect_rc 0 "reference build --whiten $w" "$NS_BIN" reference build --store "$T/sem.store" \
    --nights 2026-11-01..2026-11-04 --whiten "$w" --out "$T/ref-$w.h5"
  expect_rc 0 "detect with whitening $w" "$NS_BIN" detect --store "$T/sem.store" --night 2026-11-05 \
    --reference "$T/ref-$w.h5" --out "$T/out-$w" --quiet
done
check "reference info says whitened" sh -c "'$NS_BIN' reference info '$T/ref-on.h5' | grep -q 'novelty      whitened'"
check "whitened AUROC >= 0.80" $PY "$NS_SRC/tests/e2e/semantic_check.py" "$T/out-on" "$T/sem" 2026-11-05 --min-auroc 0.80
check "whitening adds >= 0.1 AUROC over raw distances" $PY - "$T" "$NS_SRC/tests/e2e/semantic_check.py" <<'PY'
import re, subprocess, sys
t, script = sys.argv[1:3]
a = {}
for w in ("on", "off"):
    txt = subprocess.run([sys.executable, script, f"{t}/out-{w}", f"{t}/sem", "2026-11-05"],
                         capture_output=True, text=True, check=True).stdout
    a[w] = float(re.search(r"AUROC ([0-9.]+)", txt).group(1))
print("frame AUROC", a)
assert a["on"] >= a["off"] + 0.1, a
PY

# The same nights without the drill, against the null store's own reference.
expect_rc 0 "null nights: reference and detect" sh -c "'$NS_BIN' reference build --store '$T/null.store' \
  --nights 2026-11-01..2026-11-04 --out '$T/null-ref.h5' >/dev/null && '$NS_BIN' detect --store '$T/null.store' \
  --night 2026-11-05 --reference '$T/null-ref.h5' --out '$T/null-out' --quiet"
check "null night: at most 5% of frames novel" $PY -c "import json,sys; s=json.load(open(sys.argv[1])); \
assert s['novel_frames'] <= 0.05 * s['frames']['tonight'], s['novel_frames']" "$T/null-out/summary.json"

# Version 1 (no whitening): loads, scores with raw distances, says so.
cp "$T/ref-off.h5" "$T/ref-v1.h5"
$PY -c "import h5py, numpy, sys; f = h5py.File(sys.argv[1], 'r+'); f.attrs['ns_format_version'] = numpy.int32(1); \
[f.attrs.__delitem__(k) for k in ('whiten', 'whiten_folds')]" "$T/ref-v1.h5"
expect_rc 0 "detect with a version 1 reference" sh -c "'$NS_BIN' detect --store '$T/sem.store' --night 2026-11-05 \
  --reference '$T/ref-v1.h5' --out '$T/out-v1' > /dev/null 2> '$T/v1.err'"
check "  the note says to rebuild" grep -q "version 1 reference without whitening" "$T/v1.err"
check "  the same scores as --whiten off" cmp -s "$T/out-v1/frames.csv" "$T/out-off/frames.csv"

# A thin night: one clip per camera, from another generator seed, as night 2026-11-09.
"$NS_GEN" glove --out "$T/thin" --nights 1 --cameras 4 --clips 1 --frames 30 --width 320 --height 240 \
  --formats tar --seed 8 --start 2026-11-09 --shift none >/dev/null
"$NS_BIN" ingest --store "$T/sem.store" --manifest "$T/thin/manifest.csv" --quiet "$T/thin" >/dev/null
"$NS_BIN" embed --store "$T/sem.store" --device cpu --quiet >/dev/null
"$NS_BIN" reference build --store "$T/sem.store" --nights 2026-11-01 --out "$T/ref-one.h5" >/dev/null
expect_rc 4 "a 4-clip night: INSUFFICIENT, exit 4" sh -c "'$NS_BIN' detect --store '$T/sem.store' --night 2026-11-09 \
  --reference '$T/ref-one.h5' --out '$T/thin-out' > '$T/thin.txt'"
cat "$T/thin.txt"
for f in detect.h5 clusters.csv clips.csv frames.csv summary.json report.html; do
  check "  writes $f" test -s "$T/thin-out/$f"
done
check "  summary: insufficient, exact over 5^4 = 625 assignments (p >= 1/625)" $PY - "$T/thin-out/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["verdict"] == "insufficient" and s["exact"] is True, s
assert abs(s["p_min"] - 1 / 625) < 1e-12 and s["p_value"] >= s["p_min"], (s["p_min"], s["p_value"])
assert "4 clips tonight" in s["verdict_reason"] and "1/625" in s["verdict_reason"], s["verdict_reason"]
assert s["clips"]["tonight"] == 4 and s["frames"]["tonight"] == 120, s["clips"]
PY
finish
