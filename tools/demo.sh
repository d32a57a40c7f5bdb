#!/usr/bin/env bash
# demo.sh BUILD_DIR -- the nightly job on built-in demo data: generate the
# glove-shift scenario, ingest it night by night, print the store summary,
# embed every frame with the built-in backbone, build a reference from the
# first five nights and run detect on the last three (black gloves come to two
# cameras on night 7); ends by printing the report's path.
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
echo "== ingesting"
for night in "$out"/data/20*; do
  n=$(basename "$night")
  "$ns" ingest --store "$out/store" --night "$n" --manifest "$out/data/manifest.csv" \
    --summary "$out/ingest-$n.json" "$night"
done
echo "== re-running every night ingests nothing twice"
"$ns" ingest --store "$out/store" --manifest "$out/data/manifest.csv" "$out/data" | tail -1
echo "== store summary"
"$ns" info --store "$out/store"
"$ns" verify --store "$out/store"
echo "== embedding every frame with the built-in backbone"
"$ns" embed --store "$out/store" --model default
echo "== reference: nights 1..5"
mapfile -t nights < <(ls "$out/data" | grep -E '^[0-9]{4}-' | sort)
"$ns" reference build --store "$out/store" --nights "${nights[0]}..${nights[4]}" --out "$out/reference.h5"
for n in "${nights[@]:5}"; do
  echo "== detect $n"
  "$ns" detect --store "$out/store" --night "$n" --reference "$out/reference.h5" --out "$out/detect/$n"
done
echo "demo: store at $out/store (open $out/store/view.h5 with h5py); embeddings under $out/store/embeddings/"
echo "demo: report of the last night: $out/detect/${nights[-1]}/report.html"
