#!/usr/bin/env bash
# End to end: reference build + detect on generated scenarios.
#  - power: the glove-shift night is detected (p < 0.01), the top novel
#    condition is >= 90% black-glove frames and holds >= 80% of them, and its
#    attribution names luma; likewise for the lighting drop;
#  - outputs: detect.h5, CSVs, summary.json, report.html (opens in headless
#    Chromium, not blank), byte-identical reruns, hostile names escaped;
#  - bad input: a night with no frames, a reference from another model:
#    documented exit codes, clear messages, nothing half-written;
#  - too few clips for the test: INSUFFICIENT (exit 4), every output written.
source "$(dirname "$0")/lib.sh"

# scenario NAME SHIFT: 6 nights, the change on night 6; reference = nights 1..5.
scenario() {
  local name=$1 shift=$2
  "$NS_GEN" glove --out "$T/$name" --nights 6 --cameras 3 --clips 16 --frames 6 \
    --width 320 --height 240 --seed 1 --shift "$shift" >/dev/null
}
scenario glove glove:6:cam01,cam02
scenario light light:6

# Hostile names: cam03's night-6 clips of the glove scenario get a camera id
# and file names made to break HTML and spreadsheets.
$PY - "$T/glove" <<'PY'
import csv, os, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/manifest.csv")))
for r in rows:
    if r["camera"] == "cam03" and r["night"] == "2026-11-06":
        old = r["path"]
        new = os.path.join(os.path.dirname(old), '=HYPERLINK("x")&<img src=x onerror=alert(1)>' + os.path.basename(old))
        os.rename(os.path.join(d, old), os.path.join(d, new))
        r["path"] = new
        r["camera"] = '<script>alert("cam")</script>,"x"'
with open(f"{d}/manifest.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
PY

for name in glove light; do
  for night in "$T/$name"/20*; do
    "$NS_BIN" ingest --store "$T/$name.store" --night "$(basename "$night")" \
      --manifest "$T/$name/manifest.csv" --quiet "$night" >/dev/null
  done
  "$NS_BIN" embed --store "$T/$name.store" --device cpu --quiet >/dev/null
done

expect_rc 0 "reference build over nights 1..5" \
  "$NS_BIN" reference build --store "$T/glove.store" --nights 2026-11-01..2026-11-05 --out "$T/glove.ref.h5"
expect_rc 0 "reference info" sh -c "'$NS_BIN' reference info '$T/glove.ref.h5' | grep -q 'sample'"
expect_rc 0 "detect the glove night" sh -c "'$NS_BIN' detect --store '$T/glove.store' --night 2026-11-06 \
  --reference '$T/glove.ref.h5' --out '$T/out/2026-11-06' > '$T/detect.txt'"
cat "$T/detect.txt"
for f in detect.h5 clusters.csv clips.csv frames.csv summary.json report.html; do
  check "output $f" test -s "$T/out/2026-11-06/$f"
done
check "the command prints the report path" grep -q "report: $T/out/2026-11-06/report.html" "$T/detect.txt"

# Power: the test rejects and the top novel condition is the black gloves.
check "glove power: p < 0.01, top condition >= 90% black and >= 80% of them, luma named" \
  $PY "$NS_SRC/tests/e2e/power_check.py" "$T/out/2026-11-06" "$T/glove" glove

expect_rc 0 "reference + detect the lighting drop" sh -c "'$NS_BIN' reference build --store '$T/light.store' \
  --nights 2026-11-01..2026-11-05 --out '$T/light.ref.h5' >/dev/null && '$NS_BIN' detect --store '$T/light.store' \
  --night 2026-11-06 --reference '$T/light.ref.h5' --out '$T/light.out' --quiet"
check "light power: p < 0.01, top condition holds >= 80% of the night, luma named" \
  $PY "$NS_SRC/tests/e2e/power_check.py" "$T/light.out" "$T/light" light

# A night before the shift against the same reference: no alarm expected
# (it is in the reference, so this is a sanity check, not calibration:
# e2e_detect_null.sh does that), and the timeline picks up both nights.
expect_rc 0 "detect night 5 (in the reference)" "$NS_BIN" detect --store "$T/glove.store" --night 2026-11-05 \
  --reference "$T/glove.ref.h5" --out "$T/out/2026-11-05" --quiet
check "night 5 is not a shift" $PY -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['verdict']=='no-shift', s['p_value']" "$T/out/2026-11-05/summary.json"
expect_rc 0 "detect night 6 again, into another directory" "$NS_BIN" detect --store "$T/glove.store" \
  --night 2026-11-06 --reference "$T/glove.ref.h5" --out "$T/again/2026-11-06" --quiet
for f in clusters.csv clips.csv frames.csv summary.json report.html; do
  check "$f is byte-identical for identical inputs" cmp -s "$T/again/2026-11-06/$f" "$T/out/2026-11-06/$f"
done
expect_rc 0 "rerun night 6 in place (timeline: night 5 found beside it)" "$NS_BIN" detect --store "$T/glove.store" \
  --night 2026-11-06 --reference "$T/glove.ref.h5" --out "$T/out/2026-11-06" --quiet
check "the report has a timeline with night 5" grep -q "2026-11-05" "$T/out/2026-11-06/report.html"

# Escaping: hostile camera and file names never appear raw.
html=$T/out/2026-11-06/report.html
check "no raw <script> or <img in the report" sh -c "! grep -qi -e '<script' -e '<img src=x' '$html'"
check "the hostile camera is shown escaped" grep -q '&lt;script&gt;alert(&quot;cam&quot;)&lt;/script&gt;' "$html"
check "the report is self-contained (no http, no src= URLs but data:)" sh -c \
  "! grep -Eo '(src|href)=\"[^\"#]*' '$html' | grep -v 'src=\"data:image/' | grep -q ."
check "report under 4 MB" test "$(stat -c %s "$html")" -lt 4000000
check "CSV cells guarded against formulas and parse back" $PY - "$T/out/2026-11-06" <<'PY'
import csv, sys
out = sys.argv[1]
seen = False
for name in ("frames.csv", "clips.csv"):
    for r in csv.DictReader(open(f"{out}/{name}", newline="")):
        for v in r.values():
            assert not (v and v[0] in "=+-@\t\r" and not v.lstrip("-").replace(".", "", 1).replace("e", "", 1).replace("-", "").isdigit()), (name, v)
        if "HYPERLINK" in r.get("source", ""):
            seen = True
            assert r["source"].startswith("'") or "/" in r["source"].split("HYPERLINK")[0], r["source"]
assert seen, "hostile source not in the CSVs"
PY
check "summary.json is valid JSON" $PY -c "import json,sys; json.load(open(sys.argv[1]))" "$T/out/2026-11-06/summary.json"
rc=0
bash "$NS_SRC/tests/e2e/check_report_chromium.sh" "$html" "$T/shot.png" || rc=$?
if [ "$rc" -eq 77 ]; then echo "skip - chromium not installed"; else check "report opens in headless Chromium, screenshot not blank" test "$rc" -eq 0; fi

# Bad input.
before=$(cd "$T/out" && find . -type f | sort | xargs sha256sum)
expect_rc 1 "a night with no frames" sh -c "'$NS_BIN' detect --store '$T/glove.store' --night 2030-01-01 \
  --reference '$T/glove.ref.h5' --out '$T/out/2030-01-01' 2> '$T/err1.txt'"
check "  message names the night" grep -q "2030-01-01" "$T/err1.txt"
check "  nothing written" test ! -e "$T/out/2030-01-01"
"$NS_BIN" model default --seed 2 --out "$T/other.h5" >/dev/null
expect_rc 2 "a reference built with another model" sh -c "'$NS_BIN' detect --store '$T/glove.store' --night 2026-11-06 \
  --reference '$T/glove.ref.h5' --model '$T/other.h5' --out '$T/out/2026-11-06' 2> '$T/err2.txt'"
check "  message names both models" grep -q "reference was built with model" "$T/err2.txt"
expect_rc 1 "a reference whose model never embedded the night" sh -c "'$NS_BIN' reference build --store '$T/glove.store' \
  --nights 2026-11-01..2026-11-05 --model '$T/other.h5' --out '$T/other.ref.h5' 2> '$T/err3.txt'"
check "  message says to run embed" grep -q "nightshift embed" "$T/err3.txt"
check "  no reference file written" test ! -e "$T/other.ref.h5"
expect_rc 4 "fewer clips than --min-clips: INSUFFICIENT (exit 4), not a usage error" sh -c "'$NS_BIN' detect \
  --store '$T/glove.store' --night 2026-11-06 --reference '$T/glove.ref.h5' --min-clips 50 --out '$T/thin' > '$T/thin.txt'"
check "  it says so, with the counts" grep -q "INSUFFICIENT (48 clips tonight vs 240 in the reference, fewer than the 50" "$T/thin.txt"
for f in detect.h5 clusters.csv clips.csv frames.csv summary.json report.html; do
  check "  the thin night still writes $f" test -s "$T/thin/$f"
done
check "  summary.json: verdict insufficient, reason, p_min; conditions kept" $PY - "$T/thin" <<'PY'
import json, sys, h5py
s = json.load(open(f"{sys.argv[1]}/summary.json"))
assert s["verdict"] == "insufficient" and "the 50 on each side" in s["verdict_reason"], s["verdict_reason"]
assert 0 < s["p_min"] < 0.01 and s["p_value"] is not None, (s["p_min"], s["p_value"])
assert s["top_conditions"] and s["top_conditions"][0]["novel"], s["top_conditions"][:1]
with h5py.File(f"{sys.argv[1]}/detect.h5") as f:
    v = f.attrs["verdict"]
    assert (v.decode() if isinstance(v, bytes) else v) == "insufficient", v
PY
check "  the report says why" grep -q "Insufficient clips for the shift test" "$T/thin/report.html"
expect_rc 1 "a reference over nights the store does not have" sh -c "'$NS_BIN' reference build --store '$T/glove.store' \
  --nights 2030-01-01..2030-02-01 --out '$T/none.ref.h5' 2> '$T/err5.txt'"
check "  message names the nights" grep -q "2030-01-01" "$T/err5.txt"
printf 'not hdf5' > "$T/bad.ref.h5"
expect_rc 1 "a corrupt reference file" sh -c "'$NS_BIN' detect --store '$T/glove.store' --night 2026-11-06 \
  --reference '$T/bad.ref.h5' --out '$T/out/2026-11-06' 2> '$T/err6.txt'"
check "  message names the file" grep -q "bad.ref.h5" "$T/err6.txt"
after=$(cd "$T/out" && find . -type f | sort | xargs sha256sum)
check "earlier outputs unchanged after the failures" test "$before" = "$after"
check "no temporary directories left" sh -c "! ls -d '$T'/out/*.tmp.* '$T'/out/*.old.* 2>/dev/null | grep -q ."
# The device: on a GPU machine the CUDA kernels must agree with the CPU on the
# verdict and the conditions; without one, --device cuda is a clear error.
if "$NS_BIN" info --devices 2>&1 | grep -q "devices: none"; then
  expect_rc 1 "--device cuda without a GPU" sh -c "'$NS_BIN' detect --store '$T/glove.store' --night 2026-11-06 \
    --reference '$T/glove.ref.h5' --out '$T/gpu' --device cuda 2> '$T/err7.txt'"
  check "  message names the device" grep -q "device cuda" "$T/err7.txt"
  check "  nothing written" test ! -e "$T/gpu"
else
  expect_rc 0 "detect with --device cuda" "$NS_BIN" detect --store "$T/glove.store" --night 2026-11-06 \
    --reference "$T/glove.ref.h5" --out "$T/gpu" --device cuda --quiet
  check "  the GPU agrees with the CPU on the verdict and the top condition" $PY - "$T/gpu" "$T/out/2026-11-06" <<'PY'
import json, sys
g, c = (json.load(open(f"{d}/summary.json")) for d in sys.argv[1:3])
assert g["verdict"] == c["verdict"], (g["verdict"], c["verdict"])
assert abs(g["mmd2"] - c["mmd2"]) <= 1e-4 * abs(c["mmd2"]) + 1e-9, (g["mmd2"], c["mmd2"])
tg, tc = g["top_conditions"][0], c["top_conditions"][0]
assert abs(tg["frames"] - tc["frames"]) <= 0.02 * tc["frames"] + 2, (tg["frames"], tc["frames"])
PY
fi
expect_rc 3 "--fail-on-shift exits 3 on the glove night" "$NS_BIN" detect --store "$T/glove.store" --night 2026-11-06 \
  --reference "$T/glove.ref.h5" --out "$T/fail" --fail-on-shift --quiet
finish
