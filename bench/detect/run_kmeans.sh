#!/usr/bin/env bash
# bench/detect/run_kmeans.sh [BUILD_DIR] -- Lloyd k-means ms/iteration next to its
# GEMM floor, scikit-learn and FAISS.
#
# The problem: x 100,000 x 512 float32 (points around 128 random centres,
# noise larger than their spread, so 20 iterations never converge; fixed seed),
# k = 64, 20 iterations, tol 0, all three starting from the same centroids (our
# k-means++ seeding, written once with x as raw float32 for the peers):
#   ours     nightshift-bench-kmeans (bench/detect/kmeans_bench.c): ns_kmeans_fit,
#            wall time / iterations (the final assignment pass is inside the
#            clock); it also times the floor:
#   sgemm    one cblas_sgemm of x (100000, 512) by c^T (512, 64), on OpenBLAS's
#            threads in the same environment: the distance GEMM of one iteration
#   sklearn  KMeans(algorithm="lloyd", n_init=1, max_iter=20, tol=0, init=those centres)
#   faiss    faiss.Kmeans(niter=20, nredo=1, seed, max_points_per_centroid=n: nothing
#            subsampled).train(x, init_centroids=those centres)
# (the peers: bench/detect/peer_kmeans.py on Debian's /usr/bin/python3), with
# OMP_NUM_THREADS=2 (threadpoolctl / faiss.omp_set_num_threads 2 for the peers),
# in the two environments of bench/lib.sh, NS_BENCH_REPS (3) repetitions with the
# environments alternating.  The table gives medians; the ratios are the medians
# of the per-repetition ratios.  The inertias (sum of squared distances to the
# nearest final centroid, float64; the peers' recomputed the same way) of one
# repetition must agree to 1e-3 relative: the script says so or fails.  Last, the
# mini-batch mode on the same data (batch 4096 rows served through the callback,
# 3 epochs): its whole time next to Lloyd's 20 iterations, and its inertia.
#
# BUILD_DIR (default: build) must hold nightshift-bench-kmeans (Release).  Data is
# cached in ${NS_BENCH_DATA:-/tmp/ns-bench-kmeans} (about 200 MB).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
data=${NS_BENCH_DATA:-/tmp/ns-bench-kmeans}
reps=${NS_BENCH_REPS:-3}
bench=${NS_BENCH_KMEANS:-$build/nightshift-bench-kmeans}
python=/usr/bin/python3
n=100000 d=512 k=64 iters=20 seed=1 mb=4096
export OMP_NUM_THREADS=2

[[ -x $bench ]] || { echo "run_kmeans.sh: $bench missing; build it first:" \
    "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j" >&2; exit 1; }
log() { echo "run_kmeans.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
source "$here/../lib.sh" # tunables, in_env, median

mkdir -p "$data"
x=$data/x.$n.$d.$seed.f32 init=$data/init.$k.$seed.f32
if [[ ! -f $x || ! -f $init ]]; then
    log "writing x and the starting centroids to $data"
    "$bench" --n $n --d $d --k $k --iters 1 --reps 1 --seed $seed \
        --data-out "$x.tmp" --init-out "$init.tmp" >/dev/null
    mv "$x.tmp" "$x"
    mv "$init.tmp" "$init"
fi

tmp=$(mktemp -d /tmp/ns-bench-kmeans-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
val() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

declare -A all res inert
for ((r = 1; r <= reps; r++)); do
    for e in default tuned; do
        in_env $e "$bench" --n $n --d $d --k $k --iters $iters --reps 1 --seed $seed \
            --data-in "$x" --init-in "$init" --minibatch $mb >"$tmp/o"
        in_env $e $python "$here/peer_kmeans.py" "$x" "$init" --n $n --d $d --k $k \
            --iters $iters --threads 2 --seed $seed >"$tmp/p"
        o=$(val ours_ms_per_iter "$tmp/o") f=$(val sgemm_ms "$tmp/o")
        s=$(val sklearn_ms_per_iter "$tmp/p") fa=$(val faiss_ms_per_iter "$tmp/p")
        all[$e.o]+=" $o" all[$e.f]+=" $f" all[$e.s]+=" $s" all[$e.fa]+=" $fa"
        all[$e.mb]+=" $(val minibatch_s "$tmp/o")" inert[$e.mb]=$(val minibatch_inertia "$tmp/o")
        all[$e.of]+=" $(awk -v a="$o" -v b="$f" 'BEGIN {print a / b}')"
        all[$e.so]+=" $(awk -v a="$s" -v b="$o" 'BEGIN {print a / b}')"
        all[$e.fo]+=" $(awk -v a="$fa" -v b="$o" 'BEGIN {print a / b}')"
        inert[$e.o]=$(val ours_inertia "$tmp/o") inert[$e.s]=$(val sklearn_inertia "$tmp/p")
        inert[$e.fa]=$(val faiss_inertia "$tmp/p")
        log "$e rep $r: ours $o  sgemm $f  sklearn $s  faiss $fa ms/iter"
    done
done
# shellcheck disable=SC2086 # the space-separated lists are split on purpose
for key in "${!all[@]}"; do res[$key]=$(median ${all[$key]}); done

echo
echo "k-means benchmark: x ${n}x${d} float32, k=$k, $iters Lloyd iterations from the same" \
    "centroids, OMP_NUM_THREADS=2, median of $reps ($(uname -m), $(nproc) cores)"
printf '%-8s %8s %8s %10s %9s %8s %13s %11s %15s %15s %15s\n' env ours sgemm ours/floor \
    sklearn faiss sklearn/ours faiss/ours 'inertia ours' 'inertia sklearn' 'inertia faiss'
bad=0
for e in default tuned; do
    awk -v e=$e -v o="${res[$e.o]}" -v f="${res[$e.f]}" -v s="${res[$e.s]}" -v fa="${res[$e.fa]}" \
        -v of="${res[$e.of]}" -v so="${res[$e.so]}" -v fo="${res[$e.fo]}" \
        -v io="${inert[$e.o]}" -v is="${inert[$e.s]}" -v ifa="${inert[$e.fa]}" 'BEGIN {
        printf "%-8s %8.1f %8.1f %9.2fx %9.1f %8.1f %12.2fx %10.2fx %15.10g %15.10g %15.10g\n",
            e, o, f, of, s, fa, so, fo, io, is, ifa }'
    awk -v a="${inert[$e.o]}" -v b="${inert[$e.s]}" -v c="${inert[$e.fa]}" 'BEGIN {
        d1 = (a - b) / b; d2 = (a - c) / c; if (d1 < 0) d1 = -d1; if (d2 < 0) d2 = -d2
        exit !(d1 <= 1e-3 && d2 <= 1e-3) }' || bad=1
done
echo "(ms per iteration; ours/floor: ours over the one sgemm; sklearn/ours, faiss/ours: how many" \
    "times faster ours is; ratios are medians of per-repetition ratios)"
if ((bad)); then
    echo "FAIL: inertias differ by more than 1e-3 relative" >&2
    exit 1
fi
echo "inertias agree within 1e-3 relative"
echo
echo "mini-batch (ns_kmeans_fit_minibatch, batch $mb, 3 epochs + the final pass, same start):"
for e in default tuned; do
    awk -v e=$e -v t="${res[$e.mb]}" -v o="${res[$e.o]}" -v it=$iters -v im="${inert[$e.mb]}" \
        -v io="${inert[$e.o]}" 'BEGIN {
        printf "  %-8s %7.2f s (Lloyd: %.2f s)  inertia %.10g, %+.2f%% of Lloyd'"'"'s\n",
            e, t, o * it / 1000, im, 100 * (im - io) / io }'
done
