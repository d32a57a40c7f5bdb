#!/usr/bin/env bash
# bench/nightly/run.sh BUILD_DIR [REPS] -- the cost of the nightly job over
# its stages: the demo scenario (8 nights, 3 cameras, 6 clips of 10 frames,
# glove shift on night 7) run night by night with `nightshift nightly`, and
# the same commands with the same options run by hand (ingest, embed,
# reference build, detect, and select + export of a labeling batch on the
# nights whose detect summary counts novel conditions), on fresh stores,
# alternating, REPS times (default 3).  Prints each pair and the median ratio
# nightly / by hand (the target: at most 1.10).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
reps=${2:-3}
ns=$build/nightshift
tmp=$(mktemp -d /tmp/bench-nightly-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$build/nightshift-gen" glove --out "$tmp/data" --nights 8 --cameras 3 --clips 6 --frames 10 \
  --shift glove:7:cam01,cam02 >/dev/null
mapfile -t nights < <(ls "$tmp/data" | grep -E '^[0-9]{4}-' | sort)
spec="${nights[0]}..${nights[4]}"
now() { date +%s.%N; }

by_hand() { # store runs
  local s=$1 r=$2
  mkdir -p "$r/references" "$r/detect" "$r/labeling"
  for i in "${!nights[@]}"; do
    n=${nights[$i]}
    mkdir -p "$r/$n"
    "$ns" ingest --store "$s" --night "$n" --summary "$r/$n/ingest.json" \
      --manifest "$tmp/data/manifest.csv" "$tmp/data/$n" >/dev/null 2>&1
    "$ns" embed --store "$s" --model default --device auto --quiet >/dev/null 2>&1
    [ "$i" -lt 5 ] && continue
    [ -f "$r/references/ref.h5" ] ||
      "$ns" reference build --store "$s" --nights "$spec" --model default --frame-cap 20000 \
        --seed 1 --device auto --out "$r/references/ref.h5" >/dev/null 2>&1
    "$ns" detect --store "$s" --night "$n" --reference "$r/references/ref.h5" \
      --out "$r/detect/$n" --alpha 0.05 --frame-alpha 0.05 --perms 1000 --min-clips 5 \
      --test-frames 32 --seed 1 --device auto >/dev/null 2>&1 || true
    grep -q '"novel_conditions":0[,}]' "$r/detect/$n/summary.json" && continue
    mkdir -p "$r/select/$n"
    "$ns" select --store "$s" --detect "$r/detect/$n" --out "$r/select/$n/selection.csv" \
      --budget 200 --seed 1 --min-gap 3 >/dev/null 2>&1
    "$ns" export --store "$s" --selection "$r/select/$n/selection.csv" \
      --out "$r/labeling/tasks-$n.tar" >/dev/null 2>&1
  done
}
nightly() { # store runs
  cat >"$tmp/n.yaml" <<EOF2
store: $1
runs: $2
inbox: $tmp/data/{night}
manifest: $tmp/data/manifest.csv
reference: {policy: fixed, nights: "$spec"}
EOF2
  for n in "${nights[@]}"; do
    "$ns" nightly --config "$tmp/n.yaml" --night "$n" -q || [ $? -eq 3 -o $? -eq 4 ]
  done
}
batches() { # runs: what the labeling batches hold
  (cd "$1" && sha256sum select/*/selection.csv && for t in labeling/*.tar; do echo "$t"; tar tf "$t"; done)
}
# Wall time is what the target is about; CPU time (user + sys of every
# process) is printed too, since on a shared machine it is the steadier figure.
TIMEFORMAT='%R %U %S'
ratios=() cpu_ratios=()
for k in $(seq "$reps"); do
  rm -rf "$tmp/s" "$tmp/r"
  { time by_hand "$tmp/s" "$tmp/r"; } 2>"$tmp/t1"
  batches "$tmp/r" >"$tmp/batches.hand"
  rm -rf "$tmp/s" "$tmp/r"
  { time nightly "$tmp/s" "$tmp/r"; } 2>"$tmp/t2"
  # The same work on both sides: the same selections, the same tar members.
  batches "$tmp/r" >"$tmp/batches.nightly"
  cmp -s "$tmp/batches.hand" "$tmp/batches.nightly" ||
    { echo "bench: nightly and by hand made different batches" >&2; exit 1; }
  read -r hw hu hs <"$tmp/t1"
  read -r nw nu nsys <"$tmp/t2"
  ratio=$(echo "scale=4; $nw / $hw" | bc)
  cratio=$(echo "scale=4; ($nu + $nsys) / ($hu + $hs)" | bc)
  ratios+=("$ratio") cpu_ratios+=("$cratio")
  printf 'rep %d: by hand %.2f s (cpu %.2f s), nightly %.2f s (cpu %.2f s), ratio %.3f (cpu %.3f)\n' \
    "$k" "$hw" "$(echo "$hu + $hs" | bc)" "$nw" "$(echo "$nu + $nsys" | bc)" "$ratio" "$cratio"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median nightly / by hand: wall $(median "${ratios[@]}"), cpu $(median "${cpu_ratios[@]}")" \
  "(target <= 1.10); load: $(cut -d' ' -f1-3 /proc/loadavg)"
