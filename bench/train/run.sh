#!/usr/bin/env bash
# bench/train/run.sh [BUILD_DIR] -- nightshift train against its Python peers
# on the same arrays, 2 threads.
#
# Data (bench/../tests/e2e/head_arrays.py, cached in ${NS_BENCH_DATA:-/tmp/ns-bench-train}):
# 50,000 train, 5,000 val, 10,000 test embeddings of dimension 512 in 10 classes,
# L2-normalised, each class a mixture of three views in a 32-dimensional subspace
# with shared anisotropic noise (--overlap 1.4), so the classes overlap.
#
#   softmax  nightshift train --head softmax --class-weight none --l2 2e-5 (= sklearn's
#            C = 1 at n = 50,000), defaults otherwise (L-BFGS, early stopping on val,
#            temperature) vs sklearn LogisticRegression(lbfgs) with its defaults;
#   mlp      nightshift train --head mlp --hidden 256 --epochs 10 --batch 256
#            --patience -1 --class-weight none --l2 1e-5 vs PyTorch CPU with the same
#            width, epochs, batch, Adam and L2, val loss and accuracy after each epoch.
# Our time is ns_train alone ("trained ... in S s"), also the whole command (reading
# the 130 MB dataset, writing the head); the peers' the fit alone.  Accuracy is on
# the test arrays, ours read from the head file with numpy (bench/train/acc.py).
# Environments (bench/lib.sh): default, and tuned for both sides; NS_BENCH_REPS (1)
# repetitions.  The table gives medians; ratios are peer / ours.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
data=${NS_BENCH_DATA:-/tmp/ns-bench-train}
reps=${NS_BENCH_REPS:-1}
python=/usr/bin/python3
ns=$build/nightshift
export OMP_NUM_THREADS=2
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
log() { echo "run.sh: $*" >&2; }

if [[ ! -f $data/ds.h5 ]]; then
    log "writing the arrays to $data"
    "$python" "$root/tests/e2e/head_arrays.py" "$data" --train 50000 --val 5000 --test 10000 \
        --dim 512 --classes 10 --overlap 1.4 --seed 7
fi

ours() { # ENV OUT ARGS... -> "train_s wall_s accuracy"
    local e=$1 out=$2
    shift 2
    local t0 t1 line
    rm -f "$out"
    t0=$(date +%s.%N)
    line=$(in_env "$e" "$ns" train --dataset "$data/ds.h5" --out "$out" --quiet "$@" | grep trained)
    t1=$(date +%s.%N)
    local s
    s=$(sed -E 's/.* in ([0-9.]+) s;.*/\1/' <<<"$line")
    echo "$s $(echo "$t1 - $t0" | bc -l) $("$python" "$here/acc.py" "$data" "$out")"
}

declare -A L R
for ((r = 0; r < reps; r++)); do
    for e in default tuned; do
        read -r ts tw ta < <(ours "$e" "$data/sm.h5" --class-weight none --l2 2e-5)
        read -r ps pa < <(in_env "$e" "$python" "$here/peer_train.py" "$data" softmax)
        L[sm.$e.ours]+=" $ts"; L[sm.$e.wall]+=" $tw"; L[sm.$e.acc]+=" $ta"
        L[sm.$e.peer]+=" $ps"; L[sm.$e.pacc]+=" $pa"
        L[sm.$e.ratio]+=" $(echo "$ps / $ts" | bc -l)"
        log "softmax $e: ours ${ts}s (command ${tw}s) acc $ta; sklearn ${ps}s acc $pa"
        read -r ms mw ma < <(ours "$e" "$data/mlp.h5" --head mlp --hidden 256 --epochs 10 \
            --batch 256 --patience -1 --class-weight none --l2 1e-5)
        read -r qs qa < <(in_env "$e" "$python" "$here/peer_train.py" "$data" mlp 256 10 256 1e-5)
        L[mlp.$e.ours]+=" $ms"; L[mlp.$e.wall]+=" $mw"; L[mlp.$e.acc]+=" $ma"
        L[mlp.$e.peer]+=" $qs"; L[mlp.$e.pacc]+=" $qa"
        L[mlp.$e.ratio]+=" $(echo "$qs / $ms" | bc -l)"
        log "mlp $e: ours ${ms}s (command ${mw}s) acc $ma; torch ${qs}s acc $qa"
    done
done
summarize L R
printf '%-8s %-8s %10s %10s %8s %10s %8s %8s\n' head env ours_s command_s acc peer_s peer_acc \
    speedup
for h in sm mlp; do
    for e in default tuned; do
        printf '%-8s %-8s %10.3f %10.3f %8.4f %10.3f %8.4f %7.2fx\n' "$h" "$e" "${R[$h.$e.ours]}" \
            "${R[$h.$e.wall]}" "${R[$h.$e.acc]}" "${R[$h.$e.peer]}" "${R[$h.$e.pacc]}" \
            "${R[$h.$e.ratio]}"
    done
done
