#!/usr/bin/env bash
# fuzz-seeds.sh -- makes the seed corpus of every libFuzzer target of tests/fuzz
# from the generators, at test time (nothing large is committed):
#
#   tools/fuzz-seeds.sh GEN NIGHTSHIFT FUZZ_BUILD OUT
#
# GEN: nightshift-gen; NIGHTSHIFT: the nightshift binary (its --help prints the
# default gate policy); FUZZ_BUILD: the clang build of tests/fuzz (its
# fuzz_model_seeds writes small model files).  Writes OUT/<target>/ for
# avi mjpeg archive namepattern manifest labels config policy model.  The small
# hand-written and regression inputs of tests/corpus/fuzz/<target>/ are a
# second corpus directory of each run (tools/fuzz.sh), not copied here.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 GEN NIGHTSHIFT FUZZ_BUILD OUT" >&2; exit 2; }
gen=$1 ns=$2 fb=$3 out=$4
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT
max=$((256 * 1024)) # bigger seeds slow every execution down

for t in avi mjpeg archive namepattern manifest labels config policy model; do
  mkdir -p "$out/$t"
done
# Every container, two nights, tiny frames: the glove scenario rotates formats.
"$gen" glove --out "$work/glove" --nights 2 --cameras 2 --clips 6 --frames 3 \
  --width 32 --height 24 --seed 7 >/dev/null
"$gen" bad --out "$work/bad" >/dev/null
i=0
while IFS= read -r f; do
  [ "$(stat -c %s "$f")" -le $max ] || continue
  i=$((i + 1))
  base=$(basename "$f")
  case "$base" in
    *.avi) cp "$f" "$out/avi/$i-$base" ;;
    *.mjpg|*.mjpeg) cp "$f" "$out/mjpeg/$i-$base" ;;
    *.tar|*.tar.*|*.zip) cp "$f" "$out/archive/$i-$base" ;;
    *) continue ;;
  esac
  # The file name goes to the name-pattern target under the default pattern
  # and the ones the docs show.
  for p in '{camera}_{date}_{time}|{camera}_{datetime}' '{camera}_{date}_{time}' \
           '{*}/{camera}/{camera}_{datetime}' '{camera}-{date}T{time}'; do
    printf '%s\n%s' "$p" "${f#"$work"/}" >"$out/namepattern/$i-$(echo "$p" | cksum | cut -d' ' -f1)"
  done
done < <(find "$work/glove" "$work/bad" -type f | sort)
cp "$work/glove/manifest.csv" "$out/manifest/glove.csv"
head -4 "$work/glove/manifest.csv" >"$out/manifest/glove-head.csv"
cp "$work/glove/labels.csv" "$out/labels/glove.csv"
head -5 "$work/glove/labels.csv" >"$out/labels/glove-head.csv"
cp "$here/examples/nightly.yaml" "$out/config/example.yaml"
# The example without comments: shorter inputs, the same keys.
grep -v '^ *#' "$here/examples/nightly.yaml" | sed 's/ *#.*//' >"$out/config/example-bare.yaml"
# The default gate policy, as `gate --help` prints it, and the docs' example.
"$ns" gate --help 2>&1 | sed -n '/^primary_metric/,/^$/p' >"$out/policy/default.policy"
sed -n '/^# release policy/,/^```/p' "$here/docs/gate.md" | sed '$d' >"$out/policy/docs.policy"
"$fb/fuzz_model_seeds" "$out/model"
echo "fuzz-seeds: $(find "$out" -type f | wc -l) seeds in $out"
