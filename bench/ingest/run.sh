#!/usr/bin/env bash
# bench/ingest/run.sh [BUILD_DIR] -- ingest throughput next to its ceiling and a peer.
#
# Measures, in one run and for two environments (the machine's as is, and a
# tuned one: OpenBLAS overrides removed, glibc malloc keeping big blocks),
#   decode_limit  JPEG decode + resize alone on all cores (bench/ingest/decode_limit.c,
#                 compiled here into a temp dir) over the same frames, extracted
#   nightshift    `nightshift ingest` of the tar clips into a fresh store
#                 (frames_per_second from its --summary)
#   peer(PIL)     bench/ingest/peer_pil.py, the same work in Python (PIL + numpy
#                 + h5py) with a thread pool, on /usr/bin/python3
# each three times (median), plus nightshift's peak RSS on half and all clips.
# The table comes last.  Ratios are the figures to quote: machines are shared.
#
# BUILD_DIR (default: build) must hold nightshift and nightshift-gen (Release).
# The clip set (16 tar clips x 100 frames, 1280x720, JPEG q90) is generated once
# and cached in ${NS_BENCH_DATA:-/tmp/ns-bench-ingest}.  NS_BENCH_REPS sets the
# repetitions (default 3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
data=${NS_BENCH_DATA:-/tmp/ns-bench-ingest}
reps=${NS_BENCH_REPS:-3}
ns=$build/nightshift
gen=$build/nightshift-gen
python=/usr/bin/python3
threads=$(nproc)
S=224
night=2026-11-01

for x in "$ns" "$gen"; do
    [[ -x $x ]] || { echo "run.sh: $x missing; build it first:" \
        "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/ns-bench-ingest-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
log() { echo "run.sh: $*" >&2; }

# --- decode_limit, built with the command in its first comment line ---------
cmd=$(sed -n '1s|^/\* *build: *||p' "$here/decode_limit.c")
[[ -n $cmd ]] || cmd="cc -O2 -ffp-contract=off -fopenmp -I include bench/ingest/decode_limit.c -o decode_limit -lturbojpeg -lm"
cmd=${cmd//-o decode_limit/-o $tmp/decode_limit}
log "building decode_limit: $cmd"
(cd "$root" && eval "$cmd")

# --- the clip set, cached ----------------------------------------------------
if [[ ! -f $data/.complete ]]; then
    log "generating clips into $data"
    rm -rf "$data"
    mkdir -p "$data"
    "$gen" glove --out "$data/clips" --nights 1 --cameras 4 --clips 4 --frames 100 \
        --width 1280 --height 720 --quality 90 --formats tar >&2
    # the same frames as loose JPEG files, for decode_limit
    for t in "$data"/clips/*/*/*.tar; do
        d=$data/jpg/$(basename "$t" .tar)
        mkdir -p "$d"
        tar -xf "$t" -C "$d"
    done
    touch "$data/.complete"
fi
mapfile -t clips < <(find "$data/clips" -name '*.tar' | sort)
half=("${clips[@]:0:$((${#clips[@]} / 2))}")
nframes=$(find "$data/jpg" -name '*.jpg' | wc -l)

# --- environments --------------------------------------------------------------
# shellcheck source=bench/lib.sh
source "$here/../lib.sh" # tunables, in_env, median

# Each measurement starts with the previous one's files deleted and the page
# cache's dirty data written out (sync), so that no run pays for another's
# writeback: nightshift and the peer each write a 240 MB file.
settle() { rm -rf "$tmp/store" "$tmp/sum.json" "$tmp/peer.h5"; sync; }
limit_fps() {
    settle
    in_env "$1" "$tmp/decode_limit" -S $S "$data"/jpg/* | awk '/^decode_limit_fps/ {print $2}'
}
ns_fps() {
    settle
    in_env "$1" "$ns" ingest --store "$tmp/store" --night $night --threads "$threads" \
        --size $S --quiet --summary "$tmp/sum.json" "${clips[@]}" >/dev/null
    $python -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames_per_second"])' "$tmp/sum.json"
}
peer_fps() {
    settle
    in_env "$1" $python "$here/peer_pil.py" --threads "$threads" --size $S --out "$tmp/peer.h5" \
        "${clips[@]}" | awk '/^peer_fps/ {print $2}'
}

# Repetitions outermost and the environments alternating inside, so that a
# noisy minute on a shared machine hits both rows alike.  The ratios are taken
# within each repetition (figures measured seconds apart), then the median.
declare -A all res
for ((r = 1; r <= reps; r++)); do
    for e in default tuned; do
        l=$(limit_fps $e) n=$(ns_fps $e) p=$(peer_fps $e)
        all[$e.l]+=" $l" all[$e.n]+=" $n" all[$e.p]+=" $p"
        all[$e.nl]+=" $(awk -v a="$n" -v b="$l" 'BEGIN {print a / b}')"
        all[$e.np]+=" $(awk -v a="$n" -v b="$p" 'BEGIN {print a / b}')"
        log "$e rep $r: decode_limit $l  nightshift $n  peer $p frames/s"
    done
done
summarize all res

# --- peak RSS of nightshift ingest, half and all clips (default environment) --
peak_rss_mb() { # CLIP...
    rm -rf "$tmp/store"
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -v -o "$tmp/time.txt" "$ns" ingest --store "$tmp/store" --night $night \
            --threads "$threads" --size $S --quiet "$@" >/dev/null 2>&1
        awk -F: '/Maximum resident set size/ {printf "%.0f\n", $2 / 1024}' "$tmp/time.txt"
    else
        $python -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("%.0f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' \
            "$ns" ingest --store "$tmp/store" --night $night --threads "$threads" --size $S --quiet "$@"
    fi
}
frames_in() { local n=0 t; for t in "$@"; do n=$((n + $(tar -tf "$t" | grep -c '\.jpe\?g$'))); done; echo $n; }
rss_half=$(peak_rss_mb "${half[@]}")
rss_full=$(peak_rss_mb "${clips[@]}")

# --- the table -----------------------------------------------------------------
echo
echo "ingest benchmark: $nframes frames 1280x720 q90 -> ${S}x${S}, $threads threads," \
    "median of $reps ($(uname -m), $(nproc) cores)"
printf '%-8s %13s %11s %10s %9s %8s\n' env decode_limit nightshift 'peer(PIL)' ns/limit ns/peer
for e in default tuned; do
    awk -v e=$e -v l="${res[$e.l]}" -v n="${res[$e.n]}" -v p="${res[$e.p]}" \
        -v nl="${res[$e.nl]}" -v np="${res[$e.np]}" 'BEGIN {
        printf "%-8s %13.1f %11.1f %10.1f %9.2f %7.1fx\n", e, l, n, p, nl, np }'
done
rng() { echo "${res[$1.lo]}-${res[$1.hi]}" | awk -F- -v x="${2:-}" '{printf "%.2f-%.2f%s", $1, $2, x}'; }
echo "range over repetitions: default ns/limit $(rng default.nl) ns/peer $(rng default.np x);" \
    "tuned ns/limit $(rng tuned.nl) ns/peer $(rng tuned.np x)"
echo "(frames/s; ratios are medians of per-repetition ratios)"
echo "peak RSS nightshift: $(frames_in "${half[@]}") frames (${#half[@]} clips) $rss_half MB," \
    "$nframes frames (${#clips[@]} clips) $rss_full MB"
