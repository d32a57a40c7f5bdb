#!/usr/bin/env bash
# gpu_check.sh -- every GPU check and timing in one go, for the lent GPU machine.
#
# Made by tools/gpu_prep.sh on the development machine, which copies it to .devpack/;
# run from the repository root, with carry [".devpack"]:
#     bash .devpack/gpu_check.sh
#
# Each step runs under `timeout` (the whole script stays inside NS_GPU_BUDGET, 480 s)
# and a failing step never stops the others.  Steps: device listing; the GPU parity
# suites (test_cuda_gpu, test_ops_gpu, test_exec_gpu, test_detect_gpu); nightshift-bench-exec at batch 256 on cuda for resnet18, mobilenet_v2
# and the default backbone (resnet18's per-node profile printed), resnet18 on cuda
# at --precision tf32 and bf16 (3 s each), and resnet18 on the cpu at batch 64 as a
# reference; bench/embed/peer_torch.py on cuda (fp32, TF32 off)
# on the same frames; the detect-stage timings (nightshift-bench-detect against
# bench/detect/gpu_detect.py); nightshift-gen + ingest (51,200 frames) + embed
# --device cuda end to end.
# Logs go to ${NS_GPU_LOG:-/tmp/ns-gpu-check}; the short table comes last.
# Without a GPU the cuda steps fail or skip within seconds and the table still prints.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
dp=.devpack
run=$dp/run
bin=$dp/bin
budget=${NS_GPU_BUDGET:-480}
logs=${NS_GPU_LOG:-/tmp/ns-gpu-check}
rm -rf "$logs"
mkdir -p "$logs"
t_start=$SECONDS
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

names=() results=() figures=()
row() { names+=("$1") results+=("$2") figures+=("${3:-}"); }
left() { echo $((budget - (SECONDS - t_start))); }

# step NAME SECS CMD... -- runs CMD under timeout (capped by what is left of the budget),
# output in $logs/NAME.txt; sets $st to ok, skip (exit 77) or FAIL(rc) and prints a tail.
st=
step() {
    local name=$1 secs=$2 rc l
    shift 2
    l=$(left)
    if ((l < 5)); then
        st=skip
        echo "== $name: skipped, time budget spent"
        return
    fi
    ((secs > l)) && secs=$l
    echo "== $name (<= ${secs}s): $*"
    timeout -k 5 "$secs" "$@" >"$logs/$name.txt" 2>&1
    rc=$?
    case $rc in
        0) st=ok ;;
        77) st=skip ;;
        124 | 137) st="FAIL(timeout)" ;;
        *) st="FAIL($rc)" ;;
    esac
    echo "   -> $st ($((SECONDS - t_start)) s in)"
    tail -n "${TAIL:-4}" "$logs/$name.txt" | sed 's/^/   | /'
}
ips() { awk '/^images_per_s/ {print $2; exit}' "$logs/$1.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- cuBLAS: not bundled (too big), found on this machine ------------------------------
cublas_dir=
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib \
    /usr/lib/x86_64-linux-gnu; do
    [[ -e $d/libcublas.so.13 && -e $d/libcublasLt.so.13 ]] && { cublas_dir=$d; break; }
done
if [[ -z $cublas_dir ]]; then
    # torch's CUDA 13 wheels carry their own copy.
    for sp in $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
        f=$(find "$sp/nvidia" -name 'libcublasLt.so.13' 2>/dev/null | head -1)
        [[ -n $f ]] && { cublas_dir=$(dirname "$f"); break; }
    done
fi
if [[ -n $cublas_dir ]]; then
    echo "cuBLAS: $cublas_dir"
    export LD_LIBRARY_PATH="$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    echo "cuBLAS: libcublas.so.13 not found on this machine; the programs may not load"
fi
"$run" ldd "$bin/nightshift" "$bin/libnightshift_cuda.so" 2>&1 | grep 'not found' | sed 's/^/missing library: /'

# The models travel xz'd (tools/gpu_prep.sh); unpack once.
for f in "$dp"/models/*.h5.xz; do
    [[ -e $f && ! -e ${f%.xz} ]] && xz -dk "$f"
done

# --- devices ------------------------------------------------------------------------
step devices 30 "$run" "$bin/nightshift" info --devices
cat "$logs/devices.txt" | sed 's/^/   : /' | head -8
gpu=0
grep -q '^devices: none' "$logs/devices.txt" || { [[ $st == ok ]] && gpu=1; }
row "info --devices" "$st" "$(grep -m1 -i 'h100\|h200\|nvidia' "$logs/devices.txt" | cut -c1-40)"
((gpu)) || echo "no CUDA device: cuda steps will fail or skip"

# --- parity suites ------------------------------------------------------------------
# The conv's forms other than the default (Winograd for 3x3 stride-1 convs, the
# implicit GEMM of kernels/conv_implicit.cu for the other ungrouped ones) are
# checked and timed too: im2col + cuBLAS (the default until this was measured on an
# H100), its strided-batched variant (0.93-1.01x of it on an H200, not run by
# default), each of the two new forms alone, and the implicit GEMM leaving 1x1
# convs to cuBLAS; "noahead" is the default forms without the next batch's upload
# overlapping this one's compute (src/embed/exec.c ns_exec_run_next).  conv_env VARIANT: the environment that selects it.
conv_env() {
    local base="NS_CUDA_CONV_GEMM=single NS_CUDA_CONV_WINOGRAD=1 NS_CUDA_CONV_IMPLICIT=all"
    case $1 in
        im2col) echo "$base NS_CUDA_CONV_WINOGRAD=0 NS_CUDA_CONV_IMPLICIT=0" ;;
        batched) echo "$base NS_CUDA_CONV_GEMM=batched NS_CUDA_CONV_WINOGRAD=0 NS_CUDA_CONV_IMPLICIT=0" ;;
        winograd) echo "$base NS_CUDA_CONV_IMPLICIT=0" ;;
        implicit) echo "$base NS_CUDA_CONV_WINOGRAD=0" ;;
        implicit_1) echo "$base NS_CUDA_CONV_IMPLICIT=1" ;;
        noahead) echo "$base NIGHTSHIFT_UPLOAD_AHEAD=0" ;;
        *) echo "$base" ;;
    esac
}
# NS_GPU_VARIANTS="..." times only those (the parity suites run regardless).
read -r -a variants <<<"${NS_GPU_VARIANTS:-im2col winograd implicit implicit_1 noahead}"
for t in test_cuda_gpu test_ops_gpu test_exec_gpu test_detect_gpu test_ops_gpu+im2col \
    test_exec_gpu+im2col test_ops_gpu+implicit test_exec_gpu+implicit test_exec_gpu+winograd; do
    v=default
    [[ $t == *+* ]] && v=${t#*+}
    # shellcheck disable=SC2046
    TAIL=3 step "$t" 90 env CK_DEFAULT_TIMEOUT=120 NS_TEST_TMP=/tmp/ns-gpu-test-tmp \
        $(conv_env $v) "$run" "$bin/${t%+*}"
    grep -m6 ':[FE]:' "$logs/$t.txt" | cut -c1-300 | sed 's/^/   ! /'
    [[ $t == test_detect_gpu ]] && det_test_st=$st
    row "$t" "$st" "$(grep -m1 -o '[0-9]*%: Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' \
        "$logs/$t.txt")"
done

# --- timings: ours --------------------------------------------------------------------
models=(resnet18 mobilenet_v2 default)
declare -A arg=([resnet18]=$dp/models/resnet18.h5 [mobilenet_v2]=$dp/models/mobilenet_v2.h5
    [default]=default)
declare -A ours peer var_ips
tmp=$(mktemp -d /tmp/ns-gpu-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The frames the peer reads: the same fixed pixels ours times (a cpu run, so no GPU needed).
step frames 60 "$run" "$bin/nightshift-bench-exec" default --batch 256 --size 224 --secs 0.01 \
    --frames-out "$tmp/frames.u8"
for m in "${models[@]}"; do
    if ((gpu)); then
        TAIL=2 step "ours_cuda_$m" 60 "$run" "$bin/nightshift-bench-exec" "${arg[$m]}" \
            --device cuda --batch 256 --secs 5
        ours[$m]=$(ips "ours_cuda_$m")
    else
        st=skip ours[$m]=
    fi
    row "ours cuda $m b256" "$st" "${ours[$m]:+${ours[$m]} img/s}"
    if ((gpu)); then
        for cv in "${variants[@]}"; do
            # shellcheck disable=SC2046
            TAIL=1 step "ours_cuda_${m}_$cv" 30 env $(conv_env $cv) "$run" \
                "$bin/nightshift-bench-exec" "${arg[$m]}" --device cuda --batch 256 --secs 4
            v=$(ips "ours_cuda_${m}_$cv")
            row "  conv $cv" "$st" "${v:+$v img/s, x$(ratio "$v" "${ours[$m]:-0}") default}"
            var_ips[$m.$cv]=$v
        done
    fi
done
# Where the time goes: the stream synchronised after every node (slower, so a
# separate run from the timing above).
if ((gpu)); then
    TAIL=0 step ours_cuda_resnet18_prof 30 "$run" "$bin/nightshift-bench-exec" "${arg[resnet18]}" \
        --device cuda --batch 256 --secs 2 --sync-nodes
    echo "resnet18 cuda profile, synchronised per node (top of nightshift-bench-exec's report):"
    sed -n '3,16p' "$logs/ours_cuda_resnet18_prof.txt" | sed 's/^/   /'
    for cv in im2col; do
        # shellcheck disable=SC2046
        TAIL=0 step ours_cuda_resnet18_prof_$cv 30 env $(conv_env $cv) "$run" \
            "$bin/nightshift-bench-exec" "${arg[resnet18]}" --device cuda --batch 256 \
            --secs 2 --sync-nodes
        echo "the same with $cv:"
        sed -n '3,24p' "$logs/ours_cuda_resnet18_prof_$cv.txt" | sed 's/^/   /'
    done
fi
# Parity at full scale: resnet18 at batch 256 runs several conv rounds per layer
# (kernels/conv.cu conv_chunk), which the unit shapes of the suites do not reach.
# Both conv GEMM forms on cuda against the cpu executor, same fixed frames.
emb_err=
if ((gpu)); then
    for v in default "${variants[@]}" cpu; do
        dev=cuda
        [[ $v == cpu ]] && dev=cpu
        # shellcheck disable=SC2046
        TAIL=0 step "emb_$v" 60 env $(conv_env $v) "$run" "$bin/nightshift-bench-exec" \
            "${arg[resnet18]}" --device $dev --batch 256 --secs 0.01 --emb-out "$tmp/emb_$v.f32"
    done
    emb_err=$(python3 - "$tmp" default "${variants[@]}" <<'PY' 2>&1
import sys, numpy as np
d = sys.argv[1]
ref = np.fromfile(f"{d}/emb_cpu.f32", np.float32).reshape(256, -1).astype(np.float64)
out = []
for v in sys.argv[2:]:
    x = np.fromfile(f"{d}/emb_{v}.f32", np.float32).reshape(256, -1).astype(np.float64)
    e = np.linalg.norm(x - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-30)
    out.append(f"{v} {e.max():.2e}")
print("max relative error per embedding, cuda vs cpu: " + ", ".join(out))
PY
    )
    echo "   $emb_err"
    st=ok
    [[ $emb_err == max* ]] || st=FAIL
    awk -v s="$emb_err" 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++)
        if (a[i] ~ /e[-+]/ && a[i] + 0 > 1e-4) exit 1 }' || st="FAIL(>1e-4)"
    row "resnet18 b256 cuda vs cpu" "$st" "${emb_err#*cpu: }"
fi

# Reduced GEMM precisions (exec.h): speed against fp32 above; their error is printed
# by test_exec_gpu (look for "vs fp32 reference" in its log).
declare -A prec_ips
for p in tf32 bf16; do
    if ((gpu)); then
        TAIL=2 step "ours_cuda_resnet18_$p" 20 "$run" "$bin/nightshift-bench-exec" \
            "${arg[resnet18]}" --device cuda --precision $p --batch 256 --secs 3
        prec_ips[$p]=$(ips "ours_cuda_resnet18_$p")
    else
        st=skip prec_ips[$p]=
    fi
    row "ours cuda resnet18 $p b256" "$st" \
        "${prec_ips[$p]:+${prec_ips[$p]} img/s, x$(ratio "${prec_ips[$p]}" "${ours[resnet18]:-0}") fp32}"
done
TAIL=2 step ours_cpu_resnet18 60 "$run" "$bin/nightshift-bench-exec" "${arg[resnet18]}" \
    --device cpu --batch 64 --secs 3
cpu_ips=$(ips ours_cpu_resnet18)
row "ours cpu resnet18 b64" "$st" "${cpu_ips:+$cpu_ips img/s}"

# --- timings: the PyTorch peer on cuda ------------------------------------------------
peer_py=bench/embed/peer_torch.py
[[ -f $peer_py ]] || peer_py=$dp/peer_torch.py
export PYTHONPATH="$root/tools${PYTHONPATH:+:$PYTHONPATH}"
have_h5py=0
python3 -c 'import h5py' 2>/dev/null && have_h5py=1
if ((have_h5py)); then
    step default_model 30 "$run" "$bin/nightshift" model default --out "$tmp/default112.h5" \
        --size 112 --seed 1
fi
declare -A pfile=([resnet18]=$dp/models/resnet18.h5 [mobilenet_v2]=$dp/models/mobilenet_v2.h5
    [default]=$tmp/default112.h5)
declare -A parch=([resnet18]=resnet18 [mobilenet_v2]=mobilenet_v2 [default]=file)
for m in "${models[@]}"; do
    if ((!gpu)); then
        st=skip peer[$m]=
        echo "== peer_cuda_$m: skipped, no CUDA device"
    elif [[ $m == default ]] && ((!have_h5py)); then
        st=skip peer[$m]=
        echo "== peer_cuda_$m: skipped, no h5py here to read the default backbone's file"
    else
        # Faster of the two memory formats, as bench/embed/run.sh does on the cpu.
        best= bst=
        # Both memory formats by default; NS_GPU_PEER_FORMAT picks one (on the
        # H200: contiguous for resnet18 and default, channels_last for mobilenet_v2).
        fmts="channels_last contiguous"
        [[ -n ${NS_GPU_PEER_FORMAT:-} ]] && fmts=$(echo "$NS_GPU_PEER_FORMAT" |
            tr ',' '\n' | awk -F= -v m="$m" '$1 == m {print $2}')
        [[ -z $fmts ]] && fmts="channels_last contiguous"
        for f in $fmts; do
            TAIL=2 step "peer_cuda_${m}_$f" 90 python3 "$peer_py" "${pfile[$m]}" \
                --arch "${parch[$m]}" --frames "$tmp/frames.u8" --size 224 --batch 256 \
                --secs 4 --threads "$(nproc)" --memory-format $f --device cuda
            v=$(ips "peer_cuda_${m}_$f")
            [[ $st == ok ]] && bst=ok
            [[ -n $v ]] && awk -v a="$v" -v b="${best:-0}" 'BEGIN {exit !(a > b)}' && best=$v
        done
        st=${bst:-$st} peer[$m]=$best
    fi
    row "peer cuda $m b256" "$st" "${peer[$m]:+${peer[$m]} img/s}"
done

det_test=${det_test_st:-skip}
# --- detect stage timings, ours vs the PyTorch peer (its parity suite ran above) -------
# nightshift-bench-detect and bench/detect/gpu_detect.py on the same workloads (k-means
# 100000 x 512 k 64 per iteration, kNN 50000 x 20000 x 512 k 5, MMD block sums
# 30000 x 512), host arrays in and out on both sides.  Needs the two programs in
# $bin and gpu_detect.py beside this script (tools/gpu_prep.sh).
det_checks=$(grep -m1 -o '[0-9]*%: Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' \
    "$logs/test_detect_gpu.txt")
det_py=bench/detect/gpu_detect.py
[[ -f $det_py ]] || det_py=$dp/gpu_detect.py
if ((gpu)); then
    TAIL=8 step det_ours 120 "$run" "$bin/nightshift-bench-detect" --reps 3 --iters 20
    det_ours=$st
    # The k-means update's old form (kernels/detect.cu, same bits: test_detect_gpu).
    TAIL=3 step det_ours_scan 120 env NS_CUDA_KMEANS_UPDATE=scan "$run" \
        "$bin/nightshift-bench-detect" --reps 3 --iters 20
    TAIL=8 step det_peer 180 python3 "$det_py" --reps 3 --iters 20
    det_peer=$st
else
    det_ours=skip det_peer=skip
fi
# --- embed end to end -------------------------------------------------------------------
rm -rf /tmp/ns-gpu-g /tmp/ns-gpu-s
# 51,200 frames (200 batches): at 12,800 (50 batches, 1.5 s) the run's fixed costs
# (first batch, commit) weighed on the steady rate once compute got fast.
step gen 120 "$run" "$bin/nightshift-gen" glove --out /tmp/ns-gpu-g --nights 1 --cameras 8 \
    --clips 4 --frames "${NS_GPU_E2E_FRAMES:-1600}" --width 320 --height 240 --formats tar,mjpeg
gen_st=$st
step ingest 120 "$run" "$bin/nightshift" ingest --store /tmp/ns-gpu-s --quiet /tmp/ns-gpu-g
ing_st=$st
row "gen + ingest" "$([[ $gen_st == ok ]] && echo "$ing_st" || echo "$gen_st")" \
    "$(grep -o '[0-9.]* frames/s' "$logs/ingest.txt" | head -1)"
emb_fps=
if ((gpu)) && [[ $ing_st == ok ]]; then
    step embed_cuda 120 "$run" "$bin/nightshift" embed --store /tmp/ns-gpu-s \
        --model "${arg[resnet18]}" --device cuda --batch 256 --quiet
    emb_all=$(grep -o '[0-9.]* frames/s (' "$logs/embed_cuda.txt" | tail -1 | cut -d' ' -f1)
    emb_fps=$(grep -o '[0-9.]* frames/s after [0-9.]* s' "$logs/embed_cuda.txt" | tail -1 |
        cut -d' ' -f1)
    emb_setup=$(grep -o 'after [0-9.]* s' "$logs/embed_cuda.txt" | tail -1 | cut -d' ' -f2)
else
    st=skip
fi
row "embed cuda resnet18 b256" "$st" \
    "${emb_fps:+$emb_fps frames/s steady, $emb_all with ${emb_setup} s set-up}"
# --device auto must find the GPU on a node with a driver (it skips the CUDA
# module only where no /dev/nvidia*, /proc/driver/nvidia or /dev/dxg exists).
if ((gpu)) && [[ $ing_st == ok ]]; then
    step embed_auto 60 "$run" "$bin/nightshift" embed --store /tmp/ns-gpu-s --device auto
    [[ $st == ok ]] && ! grep -q ' on cuda' "$logs/embed_auto.txt" && st="FAIL(auto chose $(grep -o ' on [a-z]*' "$logs/embed_auto.txt" | head -1))"
else
    st=skip
fi
row "embed --device auto picks cuda" "$st"

# --- the table --------------------------------------------------------------------------
echo
echo "GPU check ($(SECONDS=$((SECONDS - t_start)); echo $SECONDS) s;" \
    "$(grep -m1 -o 'NVIDIA[^,(]*' "$logs/devices.txt" || echo 'no GPU')," \
    "torch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?');" \
    "logs in $logs)"
printf '%-28s %-14s %s\n' step result figure
for i in "${!names[@]}"; do
    printf '%-28s %-14s %s\n' "${names[$i]}" "${results[$i]}" "${figures[$i]}"
done
echo "ours/peer on cuda (images/s, batch 256, 224x224 uint8 frames, fp32, TF32 off in the peer):"
for m in "${models[@]}"; do
    printf '  %-13s ours %10s  peer %10s  ratio %s\n' "$m" "${ours[$m]:--}" "${peer[$m]:--}" \
        "$(ratio "${ours[$m]:-0}" "${peer[$m]:-0}")"
done
for m in "${models[@]}"; do
    for cv in "${variants[@]}"; do
        v=${var_ips[$m.$cv]:-}
        printf '  %-13s %-14s ours %10s  ratio %s\n' "$m" "$cv" "${v:--}" \
            "$(ratio "${v:-0}" "${peer[$m]:-0}")"
    done
done
grep -h 'vs fp32 reference\|relative difference from fp32' "$logs/test_exec_gpu.txt" 2>/dev/null |
    sed 's/^/  precision error: /'
printf '  embed end to end %s frames/s steady = %s of resnet18 pure compute; cuda/cpu compute %s\n' \
    "${emb_fps:--}" "$(ratio "${emb_fps:-0}" "${ours[resnet18]:-0}")" \
    "$(ratio "${ours[resnet18]:-0}" "${cpu_ips:-0}")"

fig() { [[ -f $logs/$1.txt ]] && awk -v k="$2" '$1 == k {print $2; exit}' "$logs/$1.txt"; }
echo
echo "detect on the GPU: test_detect_gpu $det_test ${det_checks:-}; ours $det_ours, peer $det_peer"
printf '  %-22s %12s %12s %8s\n' figure "ours ms" "peer ms" peer/ours
for f in kmeans_ms_per_iter kmeans_setup_ms knn_ms mmd_ms; do
    o=$(fig det_ours $f) p=$(fig det_peer $f)
    printf '  %-22s %12s %12s %8s\n' "$f" "${o:--}" "${p:--}" "$(ratio "${p:-0}" "${o:-0}")"
done
o=$(fig det_ours_scan kmeans_ms_per_iter) p=$(fig det_peer kmeans_ms_per_iter)
printf '  %-22s %12s %12s %8s\n' "kmeans iter (scan)" "${o:--}" "${p:--}" \
    "$(ratio "${p:-0}" "${o:-0}")"
