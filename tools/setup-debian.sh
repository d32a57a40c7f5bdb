#!/usr/bin/env bash
# setup-debian.sh -- installs the Debian 12 packages nightshift builds, tests and
# benchmarks with.  Installs only what is missing; runs apt-get as root or via sudo.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config git
  libhdf5-dev hdf5-tools            # the store
  libopenblas-openmp-dev            # BLAS sharing OpenMP's thread pool
  libturbojpeg0-dev                 # JPEG decode (TurboJPEG API)
  libarchive-dev nettle-dev         # tar/zip clips; SHA-256 (clip ids)
  libxxhash-dev python3-xxhash      # shard checksums (XXH3-128); tests check them from Python
  libcyaml-dev libyaml-dev          # the nightly job's YAML config (schema-checked)
  check                             # unit tests
  clang libclang-rt-14-dev libomp-14-dev ccache   # tests/fuzz: libFuzzer targets (tools/fuzz.sh)
  python3 python3-h5py python3-numpy python3-pil   # tests read the store like users do
  python3-torch python3-torchvision python3-onnx    # PyTorch parity of the backbones, onnx2ns.py
  chromium                          # the detect report must open in a headless browser
  python3-sklearn python3-faiss     # k-means peers in bench/detect
  slurm-wlm munge                   # the real one-node Slurm cluster of tests/slurm
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
