#!/usr/bin/env bash
# End to end: nightshift embed over a generated store: files per shard and
# model, resume after kill -9, two models side by side, night selection, and
# the documented errors (bad model, model larger than the store's frames).
source "$(dirname "$0")/lib.sh"

data=$T/data
store=$T/store
"$NS_GEN" glove --out "$data" --nights 2 --cameras 2 --clips 2 --frames 10 --width 320 --height 240 --seed 9 >/dev/null
"$NS_BIN" ingest --store "$store" --manifest "$data/manifest.csv" --quiet "$data" >/dev/null
id=$("$NS_BIN" model info default | awk '/^id/{print $2}')

expect_rc 0 "embed with the default backbone on the CPU" \
  sh -c "'$NS_BIN' embed --store '$store' --device cpu --quiet > '$T/embed1.txt'"
check "two shards embedded" grep -q "2 shards embedded, 0 already present" "$T/embed1.txt"
check "embeddings read back with h5py" $PY - "$store" "$id" <<'PY'
import h5py, glob, sys, numpy as np
store, mid = sys.argv[1:3]
files = sorted(glob.glob(f"{store}/embeddings/{mid}/*.h5"))
assert len(files) == 2, files
with h5py.File(store + "/catalog.h5", "r") as c:
    shards = {int(r["id"]): r for r in c["shards"][:]}
for f in files:
    with h5py.File(f, "r") as e:
        assert e.attrs["ns_format"] in (b"nightshift-embeddings", "nightshift-embeddings")
        assert e.attrs["model_id"].decode() == mid
        sh = shards[int(e.attrs["shard_id"])]
        x = e["embeddings"][:]
        assert x.shape == (sh["n_frames"], 512) and x.dtype == np.float32, x.shape
        n = np.linalg.norm(x, axis=1)
        assert np.allclose(n, 1, atol=1e-4), n
        assert e.attrs["ns_format_version"] == 2
        assert e.attrs["shard_checksum"].decode() == sh["checksum"].decode()
        assert x.std(axis=0).mean() > 1e-4  # different frames, different embeddings
PY
# A Slurm task on one core and nightly on two must embed alike, to the bit:
# the datasets and heads made from them are content-addressed.
for t in 1 3; do
  rm -rf "$T/thr$t" && mkdir -p "$T/thr$t" && cp "$store/catalog.h5" "$store/view.h5" "$T/thr$t/" &&
    cp -r "$store/shards" "$T/thr$t/"
  OMP_NUM_THREADS=$t "$NS_BIN" embed --store "$T/thr$t" --device cpu --quiet >/dev/null 2>&1
done
check "1, 2 and 3 threads give bit-identical embeddings" $PY - "$store" "$T/thr1" "$T/thr3" "$id" <<'PY'
import h5py, glob, sys, numpy as np
*stores, mid = sys.argv[1:]
sets = [sorted(glob.glob(f"{s}/embeddings/{mid}/*.h5")) for s in stores]
assert all(len(f) == 2 for f in sets), sets
for files in zip(*sets):
    xs = [h5py.File(f, "r")["embeddings"][:] for f in files]
    assert all(np.array_equal(xs[0], x) for x in xs[1:]), [np.abs(xs[0] - x).max() for x in xs[1:]]
PY
expect_rc 0 "rerun finds everything present" sh -c "'$NS_BIN' embed --store '$store' --device cpu --quiet | grep -q '0 shards embedded, 2 already present'"
expect_rc 0 "a second model sits beside the first" "$NS_BIN" embed --store "$store" --device cpu --seed 2 --quiet
check "two model directories" test "$(ls -d "$store"/embeddings/*/ | wc -l)" -eq 2

# Resume: kill -9 in the middle, the rerun completes; no temp file survives.
rm -rf "$store/embeddings"
"$NS_BIN" embed --store "$store" --device cpu --batch 4 --quiet >/dev/null 2>&1 & pid=$!
sleep 0.3; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
expect_rc 0 "rerun after kill -9 completes" "$NS_BIN" embed --store "$store" --device cpu --quiet
check "no temp files left" sh -c "! find '$store/embeddings' -name '*.tmp.*' | grep -q ."
check "both shards present after resume" test "$(ls "$store/embeddings/$id"/*.h5 | wc -l)" -eq 2

first=$(ls "$data" | grep '^20' | head -1)
expect_rc 0 "--nights selects one night" sh -c "'$NS_BIN' embed --store '$store' --device cpu --seed 3 --nights $first --quiet | grep -q '1 shards embedded'"

"$NS_BIN" model default --out "$T/m.h5" >/dev/null
head -c 5000 "$T/m.h5" > "$T/bad.h5"
before=$(find "$store/embeddings" -type f | sort | xargs sha256sum)
expect_rc 1 "a truncated model file fails" "$NS_BIN" embed --store "$store" --model "$T/bad.h5" --quiet
check "...and writes nothing" test "$before" = "$(find "$store/embeddings" -type f | sort | xargs sha256sum)"
"$NS_BIN" ingest --store "$T/small" --size 96 --quiet "$data/$first" >/dev/null
expect_rc 2 "a model larger than the store's frames is refused" "$NS_BIN" embed --store "$T/small" --quiet
check "...naming both sizes" sh -c "'$NS_BIN' embed --store '$T/small' --quiet 2>&1 | grep -q 96"
check "...and writes nothing" test ! -e "$T/small/embeddings/$id/000001.h5"
expect_rc 2 "bad --device" "$NS_BIN" embed --store "$store" --device tpu
expect_rc 2 "bad --nights" "$NS_BIN" embed --store "$store" --nights 2026-13-01

# Stores written before catalog format 2 (shards checksummed with a SHA-256
# tree, embeddings naming it shard_sha256) keep working: verify checks the old
# digests, their embeddings still count, and the next ingest writes the catalog
# back as format 2 with the old shards' digests kept.
v1=$T/v1store
rm -rf "$v1" && cp -r "$store" "$v1"
check "a store turned back into catalog format 1" \
  env PYTHONPATH="$NS_SRC/tests/e2e" $PY - "$v1" <<'PY'
import glob, h5py, numpy as np, sys
from shard_checksum import shard_checksum
store = sys.argv[1]
def sha_tree(path):  # format 1 stored the bare hex
    return shard_checksum(path, "sha256-tree").split(":", 1)[1]
hexes = {}
with h5py.File(store + "/catalog.h5", "r+") as c:
    old = c["shards"][:]
    dt = np.dtype([("sha256", "S65") if n == "checksum" else (n, old.dtype[n]) for n in old.dtype.names])
    new = np.zeros(len(old), dt)
    for n in old.dtype.names:
        if n != "checksum":
            new[n] = old[n]
    for i, row in enumerate(old):
        hexes[int(row["id"])] = sha_tree(store + "/" + row["path"].decode())
        new["sha256"][i] = hexes[int(row["id"])].encode()
    del c["shards"]
    c["shards"] = new
    c.attrs["ns_format_version"] = np.int32(1)
files = glob.glob(store + "/embeddings/*/*.h5")
assert files
for f in files:
    with h5py.File(f, "r+") as e:
        e.attrs["ns_format_version"] = np.int32(1)
        e.attrs["shard_sha256"] = np.bytes_(hexes[int(e.attrs["shard_id"])])
        del e.attrs["shard_checksum"]
PY
expect_rc 0 "verify checks a format 1 store's SHA-256 digests" "$NS_BIN" verify --store "$v1"
check "...whose embeddings still count as present" \
  sh -c "'$NS_BIN' embed --store '$v1' --device cpu --quiet | grep -q '0 shards embedded, 2 already present'"
"$NS_GEN" glove --out "$T/data2" --nights 1 --cameras 1 --clips 1 --frames 5 --width 320 --height 240 --seed 10 >/dev/null
expect_rc 0 "ingest appends to a format 1 store" \
  "$NS_BIN" ingest --store "$v1" --manifest "$T/data2/manifest.csv" --quiet "$T/data2"
check "...and writes its catalog back as format 2, old digests kept" $PY - "$v1" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1] + "/catalog.h5", "r") as c:
    assert c.attrs["ns_format_version"] == 2
    ck = [r["checksum"].decode() for r in c["shards"][:]]
assert len(ck) == 3, ck
assert all(x.startswith("sha256-tree:") for x in ck[:2]) and ck[2].startswith("xxh3-128-tree:"), ck
PY
expect_rc 0 "verify checks both algorithms" "$NS_BIN" verify --store "$v1"
old=$(ls "$v1"/shards/*/000001.h5)
$PY -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(-1000, 2); b = f.read(1); f.seek(-1000, 2); f.write(bytes([b[0] ^ 1]))" "$old"
expect_rc 1 "verify finds a flipped bit in an old shard" sh -c "'$NS_BIN' verify --store '$v1' > '$T/v1verify.txt' 2>&1"
check "...naming the shard and its SHA-256 digest" grep -q "000001.h5.*checksum sha256-tree:" "$T/v1verify.txt"

# A CUDA build keeps its kernels in libnightshift_cuda.so, opened on first use:
# the binary itself starts without the CUDA runtime, and a missing module is
# an error for --device cuda, the CPU for --device auto.
if "$NS_BIN" info --devices --json | grep -q '"cuda_built": true'; then
  check "the binary does not link the CUDA runtime" \
    sh -c "! ldd '$NS_BIN' | grep -q 'libcudart\|libcublas'"
  check "info --devices names the module it loaded" \
    sh -c "'$NS_BIN' info --devices --json | grep -q '\"cuda_module\": \".*libnightshift_cuda.so\"'"
  rm -rf "$T/nomod" && cp -r "$store" "$T/nomod" && rm -rf "$T/nomod/embeddings"
  # The reference for "the same embeddings": an explicit CPU run at the default
  # batch ($store's files may hold the killed run's batch-4 shard, and the
  # batch changes GEMM shapes, hence the last bits).
  rm -rf "$T/cpuref" && cp -r "$T/nomod" "$T/cpuref"
  "$NS_BIN" embed --store "$T/cpuref" --device cpu --quiet >/dev/null
  expect_rc 1 "--device cuda without the module fails" \
    sh -c "NIGHTSHIFT_CUDA_MODULE=$T/none.so '$NS_BIN' embed --store '$T/nomod' --device cuda --quiet 2>'$T/nomod.err'"
  check "...saying the module could not be loaded, and why" \
    grep -q "CUDA module could not be loaded: .*none.so" "$T/nomod.err"
  check "...and writes no embeddings" sh -c "! ls '$T/nomod/embeddings/$id'/*.h5 2>/dev/null"
  expect_rc 0 "--device auto without the module runs on the CPU" \
    sh -c "NIGHTSHIFT_CUDA_MODULE=$T/none.so '$NS_BIN' embed --store '$T/nomod' --quiet >/dev/null"
  # No GPU driver on this node: --device auto must not load the module at
  # all (cuBLAS's start-up costs ~150-200 MB and 0.5 s); probing on request.
  if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ] && [ ! -e /proc/driver/nvidia/version ] &&
     [ ! -e /dev/dxg ]; then
    rm -rf "$T/noprobe" && cp -r "$store" "$T/noprobe" && rm -rf "$T/noprobe/embeddings"
    check "without a GPU driver, --device auto does not open the CUDA module" \
      sh -c "! LD_DEBUG=files '$NS_BIN' embed --store '$T/noprobe' --quiet 2>&1 | grep -q 'libnightshift_cuda.so'"
    rm -rf "$T/noprobe/embeddings"
    check "...and NIGHTSHIFT_CUDA_PROBE=always opens it" \
      sh -c "NIGHTSHIFT_CUDA_PROBE=always LD_DEBUG=files '$NS_BIN' embed --store '$T/noprobe' --quiet 2>&1 | grep -q 'libnightshift_cuda.so'"
  fi
  check "...with the same embeddings as an explicit --device cpu" $PY - "$T/cpuref" "$T/nomod" "$id" <<'PY'
import h5py, glob, sys, numpy as np
a, b, mid = sys.argv[1:4]
fa = sorted(glob.glob(f"{a}/embeddings/{mid}/*.h5")); fb = sorted(glob.glob(f"{b}/embeddings/{mid}/*.h5"))
assert len(fa) == len(fb) == 2, (fa, fb)
for x, y in zip(fa, fb):
    with h5py.File(x, "r") as p, h5py.File(y, "r") as q:
        assert np.array_equal(p["embeddings"][:], q["embeddings"][:])
PY
fi
finish
