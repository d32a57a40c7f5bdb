#!/usr/bin/env bash
# demo.sh BUILD_DIR -- the nightly job on built-in demo data: generate the
# glove-shift scenario (8 nights, black gloves reach two cameras on night 7),
# then run `nightshift nightly` night by night as cron would, with a config
# whose reference is the first five nights.  Each night ingests, embeds and
# (from night 6 on) detects; the exit code says whether a human is needed.
# Ends with the paths of the last night's detect report and morning page.
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
  *) echo "see the log above" ;;
  esac
}
codes=()
for n in "${nights[@]}"; do
  echo "== nightshift nightly --night $n"
  rc=0
  "$ns" nightly --config "$out/nightly.yaml" --night "$n" || rc=$?
  case $rc in 0 | 3 | 4) ;; *) echo "demo: nightly failed on $n (exit $rc)" >&2; exit "$rc" ;; esac
  codes+=("$n: exit $rc ($(meaning "$rc"))")
done
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
echo "demo: morning page of the last night: $out/runs/${nights[-1]}/index.html"
