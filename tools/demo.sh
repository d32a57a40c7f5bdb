#!/usr/bin/env bash
# demo.sh BUILD_DIR -- the nightly job on built-in demo data: generate the
# glove-shift scenario (8 nights, black gloves reach two cameras on night 7),
# then run `nightshift nightly` night by night as cron would, with a config
# whose reference is the first five nights.  Each night ingests, embeds and
# (from night 6 on) detects; the exit code says whether a human is needed.
# After night 7 the generator's own labels stand in for the labelers (a real
# site labels the exported frames): with new labels the next night also builds
# a dataset, trains a candidate head and, once a production head exists, gates
# it.  Ends with the gate verdict and the paths of the detect and gate reports
# and the last night's morning page.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
out=${NS_DEMO_OUT:-$here/demo-out}
ns=$build/nightshift
gen=$build/nightshift-gen
rm -rf "$out"
mkdir -p "$out"
echo "== generating the glove-shift scenario into $out/data"
"$gen" glove --out "$out/data" --nights 8 --cameras 3 --clips 6 --frames 10 \
  --shift glove:7:cam01,cam02
mapfile -t nights < <(ls "$out/data" | grep -E '^[0-9]{4}-' | sort)
cat >"$out/nightly.yaml" <<EOF
# The demo's nightly configuration (every key: examples/nightly.yaml).
store: $out/store
runs: $out/runs
inbox: $out/data/{night}
manifest: $out/data/manifest.csv
model: default
reference:
  policy: fixed
  nights: "${nights[0]}..${nights[4]}"
EOF
echo "== config: $out/nightly.yaml"
meaning() {
  case $1 in
  0) echo "nothing needs a human" ;;
  3) echo "a shift or novel condition was found" ;;
  4) echo "a labeling batch is waiting" ;;
  5) echo "a candidate head was gated PROMOTE" ;;
  *) echo "see the log above" ;;
  esac
}
# label NIGHT_FROM NIGHT_TO SET: the generator's labels of those nights, imported
# as one label set, as if labelers had sent them back.
label() {
  /usr/bin/python3 "$here/tools/labels_of_nights.py" "$out/data/labels.csv" "$1" "$2" "$out/labels-$3.csv"
  "$ns" labels import --store "$out/store" --set "$3" "$out/labels-$3.csv"
}
codes=()
night() {
  echo "== nightshift nightly --night $1"
  rc=0
  "$ns" nightly --config "$out/nightly.yaml" --night "$1" || rc=$?
  case $rc in 0 | 3 | 4 | 5) ;; *) echo "demo: nightly failed on $1 (exit $rc)" >&2; exit "$rc" ;; esac
  codes+=("$1: exit $rc ($(meaning "$rc"))")
}
for n in "${nights[@]:0:7}"; do night "$n"; done
echo "== labels for nights 1-7 come back (the generator's labels stand in for the labelers)"
label "${nights[0]}" "${nights[6]}" first-batch
night "${nights[7]}"
echo "== the first candidate becomes production by hand: there is nothing to gate it against"
"$ns" registry promote candidate --store "$out/store" --force \
  --reason "first head of the demo: no production head to compare with"
echo "== labels for night 8 come back; rerun night 8: a new candidate is gated against production"
label "${nights[7]}" "${nights[7]}" second-batch
night "${nights[7]}"
echo "== rerunning the last night redoes nothing (every stage is in its manifest)"
"$ns" nightly --config "$out/nightly.yaml" --night "${nights[-1]}" --dry-run
echo "== the store"
"$ns" info --store "$out/store"
"$ns" verify --store "$out/store"
echo "== the head registry"
"$ns" registry list --store "$out/store"
echo "== night by night"
printf '  %s\n' "${codes[@]}"
echo "demo: store at $out/store (open $out/store/view.h5 with h5py)"
echo "demo: detect report of the last night: $out/runs/detect/${nights[-1]}/report.html"
verdict=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"].upper())' \
  "$out/runs/gate/${nights[-1]}/summary.json")
echo "demo: gate verdict for the candidate of ${nights[-1]}: $verdict"
echo "demo: gate report: $out/runs/gate/${nights[-1]}/report.html"
echo "demo: morning page of the last night: $out/runs/${nights[-1]}/index.html"
