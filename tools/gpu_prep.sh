#!/usr/bin/env bash
# tools/gpu_prep.sh -- build and bundle everything the GPU machine's one run needs.
#
# Runs on the development machine, from anywhere.  Then, with carry [".devpack"]:
#     bash .devpack/gpu_check.sh
#
#   build-gpu/   Release, CMAKE_CUDA_ARCHITECTURES=90, NS_CUDA=ON
#   .devpack/    ../shared/device/pack.sh bundle of libnightshift_cuda.so, nightshift, nightshift-gen,
#                nightshift-bench-exec, nightshift-bench-detect, test_*_gpu; then
#                models/{resnet18,mobilenet_v2}.h5.xz (timing copies), gpu_check.sh, peer_torch.py
#
# cuBLAS (libcublas + libcublasLt, ~600 MB) is left out of the bundle: even xz'd it
# would not fit the 64 MiB carry.  The GPU machine has nvcc 13.0, so its toolkit (or
# torch's nvidia wheels) provides libcublas.so.13; gpu_check.sh finds it and puts it
# on the loader path.  Set NS_GPU_PREP_NOBUILD=1 to reuse build-gpu as it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build-gpu
out=.devpack
python=/usr/bin/python3
limit=$((64 * 1024 * 1024))
log() { echo "gpu_prep: $*" >&2; }

progs=(nightshift nightshift-gen nightshift-bench-exec nightshift-bench-detect test_detect_gpu test_cuda_gpu
    test_ops_gpu test_exec_gpu)

if [[ -z ${NS_GPU_PREP_NOBUILD:-} ]]; then
    log "configuring and building $build (Release, sm_90)"
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DNS_CUDA=ON >/dev/null
    cmake --build "$build" -j2 --target "${progs[@]}" nightshift_cuda >/dev/null
fi
for p in "${progs[@]}"; do
    [[ -x $build/$p ]] || { log "$build/$p missing"; exit 1; }
done
# The kernels live in a module that the programs open from their own folder
# (kernels/cuda_api.h); pack.sh puts it in bin/ beside them.
[[ -f $build/libnightshift_cuda.so ]] || { log "$build/libnightshift_cuda.so missing"; exit 1; }
grep -q 'NS_HAVE_CUDA=1' "$build/CMakeFiles/nightshift_lib.dir/flags.make" ||
    { log "$build was configured without CUDA"; exit 1; }

# pack.sh copies whatever ldd lists; an ldd on PATH that hides cuBLAS keeps it out.
shim=$(mktemp -d /tmp/ns-gpu-prep.XXXXXX)
trap 'rm -rf "$shim"' EXIT
cat >"$shim/ldd" <<'EOF'
#!/bin/sh
/usr/bin/ldd "$@" | grep -v 'libcublas'
EOF
chmod +x "$shim/ldd"
bins=("$build/libnightshift_cuda.so")
for p in "${progs[@]}"; do bins+=("$build/$p"); done
PATH="$shim:$PATH" ../shared/device/pack.sh "$out" "${bins[@]}" >&2

# Models after packing: pack.sh starts from an empty folder.
mkdir -p "$out/models"
# resnet18's random fp32 weights alone (45 MB) do not fit the carry, and random
# mantissas do not compress: the bundled copies keep the top 16 bits of each weight
# (bf16 truncation, applied in torch2ns's writer before the model_id is computed:
# same graph, shapes and exponents, so the same work and timings), then xz.
# gpu_check.sh unpacks them; they are timing copies, not for parity with the peer.
# The default backbone is made there by `nightshift model default` (deterministic).
for a in resnet18 mobilenet_v2; do
    log "converting $a (torch2ns.py, seed 0, 224, weights bf16-truncated)"
    $python - "$a" "$out/models/$a.h5" >&2 <<'PY'
import sys
import numpy as np
sys.path.insert(0, "tools")
import onnx2ns, torch2ns
write = onnx2ns.write_model
def truncated(path, info, nodes):
    for n in nodes:
        for k, w in n["weights"].items():
            w = np.ascontiguousarray(w, np.float32)
            n["weights"][k] = (w.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    return write(path, info, nodes)
onnx2ns.write_model = truncated
sys.exit(torch2ns.main([sys.argv[1], sys.argv[2], "--size", "224", "--seed", "0"]))
PY
done
xz -T2 -6 "$out"/models/*.h5
cp tools/gpu_check.sh bench/embed/peer_torch.py bench/detect/gpu_detect.py "$out/"

ex=.git/info/exclude
[[ -d .git ]] && { mkdir -p .git/info; grep -qxF '/.devpack/' "$ex" 2>/dev/null ||
    echo '/.devpack/' >>"$ex"; }

bytes=$(du -sb "$out" | cut -f1)
echo "gpu_prep: $out is $(du -sh "$out" | cut -f1) ($bytes bytes) of at most 64 MiB"
ls -l "$out" "$out/models" >&2
if ((bytes >= limit)); then
    log "$out is over the 64 MiB carry limit"
    exit 1
fi
echo "gpu_prep: ready; on the GPU machine: bash $out/gpu_check.sh"
