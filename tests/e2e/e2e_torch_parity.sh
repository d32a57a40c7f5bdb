#!/usr/bin/env bash
# End to end: torchvision backbones (resnet18, mobilenet_v2, random weights,
# seed 0) converted by tools/torch2ns.py must load in `nightshift model info`;
# when the binary has `embed`, its embeddings of a tiny ingested scenario must
# match PyTorch's (tools/torch_embed.py on the same view.h5 frames) to a
# relative error below 1e-4 per frame.  mobilenet_v2 runs at 160 on 224 frames,
# so the non-integer area resize is compared as well.  Skips (77) without
# torch, torchvision and onnx for /usr/bin/python3.
source "$(dirname "$0")/lib.sh"

if ! $PY -c "import torch, torchvision, onnx" 2>/dev/null; then
  echo "SKIP: $PY cannot import torch, torchvision and onnx"
  rm -rf "$T"
  exit 77
fi
tools=$NS_SRC/tools
start=$(date +%s)

# arch:size pairs
models="resnet18:224 mobilenet_v2:160"
for m in $models; do
  arch=${m%%:*} size=${m##*:}
  expect_rc 0 "torch2ns $arch at $size" \
    $PY "$tools/torch2ns.py" "$arch" "$T/$arch.h5" --seed 0 --size "$size"
  expect_rc 0 "nightshift model info loads $arch" \
    sh -c "'$NS_BIN' model info '$T/$arch.h5' > '$T/$arch.info'"
done
check "resnet18 embeds the 512-dim pooled features" grep -q "embedding dim 512" "$T/resnet18.info"
check "mobilenet_v2 embeds the 1280-dim pooled features" \
  grep -q "embedding dim 1280" "$T/mobilenet_v2.info"

if ! "$NS_BIN" embed --help >/dev/null 2>&1; then
  echo "# embedding comparison skipped: '$NS_BIN' has no embed command"
  echo "# took $(($(date +%s) - start)) s"
  finish
fi

"$NS_GEN" glove --out "$T/data" --nights 1 --cameras 1 --clips 1 --frames 8 \
  --width 320 --height 240 --seed 3 >/dev/null
night=$(basename "$(find "$T/data" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
expect_rc 0 "ingest the scenario" \
  "$NS_BIN" ingest --store "$T/store" --night "$night" --quiet "$T/data/$night"
for m in $models; do
  arch=${m%%:*} size=${m##*:}
  expect_rc 0 "nightshift embed $arch" \
    "$NS_BIN" embed --store "$T/store" --model "$T/$arch.h5" --device cpu --quiet
  expect_rc 0 "torch_embed $arch" \
    $PY "$tools/torch_embed.py" "$arch" "$T/$arch.ref.npy" --view "$T/store/view.h5" \
    --seed 0 --size "$size"
  $PY - "$T/store" "$T/$arch.h5" "$T/$arch.ref.npy" <<'PY' \
    && ok "$arch: nightshift matches PyTorch (relative error < 1e-4)" \
    || not_ok "$arch: nightshift matches PyTorch (relative error < 1e-4)"
import glob, sys
import h5py, numpy as np
store, model, ref = sys.argv[1:4]
mid = h5py.File(model, "r").attrs["model_id"]
mid = mid.decode() if isinstance(mid, bytes) else mid
# The view concatenates the shards in catalog order; so do we.
with h5py.File(f"{store}/catalog.h5", "r") as c:
    ids = [int(r["id"]) for r in c["shards"][:]]
got = []
for sid in ids:
    files = [p for p in (f"{store}/embeddings/{mid}/{sid:06d}.h5",
                         f"{store}/embeddings/{mid}/{sid}.h5") if glob.os.path.exists(p)]
    assert len(files) == 1, (sid, files)
    with h5py.File(files[0], "r") as f:
        got.append(f["embeddings"][...])
got = np.concatenate(got)
want = np.load(ref)
assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
rel = np.linalg.norm(got - want, axis=1) / np.maximum(np.linalg.norm(want, axis=1), 1e-30)
print(f"# max relative error {rel.max():.3g} over {len(rel)} frames")
assert np.all(rel < 1e-4), rel
PY
done
echo "# took $(($(date +%s) - start)) s"
finish
