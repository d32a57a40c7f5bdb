#!/usr/bin/env bash
# End to end: nightshift model info|default|import, and bad model files through
# the binary.  The import checks need torch, torchvision and onnx for
# /usr/bin/python3; without them the script exits 77 after the other checks.
source "$(dirname "$0")/lib.sh"

expect_rc 0 "model info default" sh -c "'$NS_BIN' model info default > '$T/info.txt'"
check "describes a 512-dim L2-normalised backbone" grep -q "embedding dim 512, L2-normalised" "$T/info.txt"
expect_rc 0 "model default --out" "$NS_BIN" model default --out "$T/def.h5" --size 128 --seed 7
check "file info matches the built-in model's id" sh -c "
  a=\$('$NS_BIN' model info default --size 128 --seed 7 | awk '/^id/{print \$2}')
  b=\$('$NS_BIN' model info '$T/def.h5' | awk '/^id/{print \$2}')
  [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
check "h5py reads the format attributes" $PY -c "
import h5py; f = h5py.File('$T/def.h5', 'r')
assert f.attrs['ns_format'] in (b'nightshift-model', 'nightshift-model') and f.attrs['ns_format_version'] == 1
assert int(f.attrs['input_size']) == 128 and int(f.attrs['embedding_dim']) == 512"
head -c 4000 "$T/def.h5" > "$T/truncated.h5"
expect_rc 1 "a truncated model file fails" "$NS_BIN" model info "$T/truncated.h5"
check "...naming the file" sh -c "'$NS_BIN' model info '$T/truncated.h5' 2>&1 | grep -q truncated.h5"
echo "not hdf5" > "$T/text.h5"
expect_rc 1 "a text file is not a model" "$NS_BIN" model info "$T/text.h5"
expect_rc 1 "a missing model file" "$NS_BIN" model info "$T/none.h5"
expect_rc 2 "unknown verb" "$NS_BIN" model frobnicate
expect_rc 2 "bad --size" "$NS_BIN" model info default --size abc

# ---- model import ------------------------------------------------------------------
if ! $PY -c "import torch, torchvision, onnx" 2>/dev/null; then
  echo "SKIP: $PY cannot import torch, torchvision and onnx: model import not tested"
  [ "$failed" -eq 0 ] || finish
  rm -rf "$T"
  exit 77
fi
start=$(date +%s)
# A tiny conv net, and one whose embedding path holds ops we do not map.
$PY - "$T" <<'PY' || not_ok "export the test ONNX files"
import sys, torch
t = sys.argv[1]
torch.manual_seed(0)
class Tiny(torch.nn.Module):
    def __init__(self, bad=False):
        super().__init__()
        self.bad = bad
        self.c1, self.bn = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 16, 3, 1, 1)
        self.fc = torch.nn.Linear(16, 5)
    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = torch.nn.functional.max_pool2d(x, 2)
        x = self.c2(x)
        x = torch.softmax(torch.nn.functional.leaky_relu(x), 1) if self.bad else torch.relu(x)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))
for name, bad in (("tiny", False), ("bad", True)):
    m = Tiny(bad).eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5); m.bn.running_var.uniform_(0.5, 2)
        torch.onnx.export(m, torch.zeros(1, 3, 32, 32), f"{t}/{name}.onnx", opset_version=13,
                          input_names=["input"], output_names=["logits"])
PY

expect_rc 0 "import an ONNX file" sh -c "'$NS_BIN' model import '$T/tiny.onnx' --out '$T/tiny.h5' > '$T/tiny.out'"
check "...prints the model info summary and the id" sh -c "
  grep -q '^id ' '$T/tiny.out' && grep -q 'embedding dim 16' '$T/tiny.out' &&
  grep -q \"model: imported '$T/tiny.onnx' to $T/tiny.h5, model id \" '$T/tiny.out'"
expect_rc 0 "model info reads the import" sh -c "'$NS_BIN' model info '$T/tiny.h5' > '$T/tiny.info'"
$PY "$NS_SRC/tools/onnx2ns.py" "$T/tiny.onnx" "$T/tiny.direct.h5" 2>/dev/null
check "the file is byte for byte what tools/onnx2ns.py writes" cmp -s "$T/tiny.h5" "$T/tiny.direct.h5"
check "...so the model ids match" sh -c "
  a=\$(awk '/^id/{print \$2}' '$T/tiny.info')
  b=\$('$NS_BIN' model info '$T/tiny.direct.h5' | awk '/^id/{print \$2}')
  [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
check "no temp file is left beside --out" sh -c "! ls '$T'/tiny.h5.tmp.* 2>/dev/null"
# Options pass through; a file without the .onnx suffix is recognised by its bytes.
cp "$T/tiny.onnx" "$T/tiny.model"
expect_rc 0 "import options and content sniffing" "$NS_BIN" model import "$T/tiny.model" \
  --out "$T/tiny2.h5" --l2norm --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 --name 'tiny $(two)' \
  --output /c2/Conv
$PY "$NS_SRC/tools/onnx2ns.py" "$T/tiny.onnx" "$T/tiny2.direct.h5" --l2norm --mean 0.5 0.5 0.5 \
  --std 0.25 0.25 0.25 --name 'tiny $(two)' --output /c2/Conv 2>/dev/null
check "...same content as onnx2ns.py with the same options" cmp -s "$T/tiny2.h5" "$T/tiny2.direct.h5"
check "...the name arrives verbatim, the output is the L2Norm of the conv" sh -c "
  '$NS_BIN' model info '$T/tiny2.h5' > '$T/tiny2.info' && grep -q 'tiny \$(two)' '$T/tiny2.info' &&
  grep -q 'embedding dim 1024, L2-normalised' '$T/tiny2.info'"

# torchvision: seeded random weights, nothing downloaded.
expect_rc 0 "import torchvision resnet18 (seed 0, 64x64)" sh -c \
  "'$NS_BIN' model import resnet18 --seed 0 --size 64 --out '$T/r18.h5' > '$T/r18.out'"
check "...a 512-dim embedding named resnet18-seed0" sh -c "
  grep -q 'embedding dim 512' '$T/r18.out' && grep -q 'resnet18-seed0' '$T/r18.out'"
$PY "$NS_SRC/tools/torch2ns.py" resnet18 "$T/r18.direct.h5" --seed 0 --size 64 2>/dev/null
check "...byte for byte what tools/torch2ns.py writes" cmp -s "$T/r18.h5" "$T/r18.direct.h5"

# Failures leave nothing at --out, and an existing --out as it was.
expect_rc 2 "unsupported ops: the converter's exit status" sh -c \
  "'$NS_BIN' model import '$T/bad.onnx' --out '$T/bad.h5' 2> '$T/bad.err'"
check "...every unsupported op is listed" sh -c "grep -q Softmax '$T/bad.err' && grep -q LeakyRelu '$T/bad.err'"
check "...and the failure is ours too" grep -q "nightshift model import: conversion of '$T/bad.onnx' failed" "$T/bad.err"
check "...nothing at --out, no temp file" sh -c "! ls '$T'/bad.h5* 2>/dev/null"
cp "$T/def.h5" "$T/keep.h5"
expect_rc 2 "a failed import over an existing file" "$NS_BIN" model import "$T/bad.onnx" --out "$T/keep.h5" 2>/dev/null
check "...leaves it untouched" cmp -s "$T/keep.h5" "$T/def.h5"
mkdir "$T/empty"
expect_rc 1 "NIGHTSHIFT_TOOLS without the scripts" sh -c \
  "NIGHTSHIFT_TOOLS='$T/empty' '$NS_BIN' model import '$T/tiny.onnx' --out '$T/x.h5' 2> '$T/tools.err'"
check "...says which script and what to set" sh -c "
  grep -q 'cannot find tools/onnx2ns.py' '$T/tools.err' && grep -q NIGHTSHIFT_TOOLS '$T/tools.err'"
expect_rc 1 "a missing interpreter" sh -c \
  "NIGHTSHIFT_PYTHON='$T/no-python' '$NS_BIN' model import resnet18 --out '$T/x.h5' 2> '$T/py.err'"
check "...names it" grep -q "cannot run the Python interpreter '$T/no-python'" "$T/py.err"
# A converter that exits 0 but writes junk: our loader has the last word.
mkdir "$T/fake"
cat > "$T/fake/onnx2ns.py" <<'PY'
import json, sys
open(sys.argv[-1], "w").write("junk")
json.dump(sys.argv[1:], open(sys.argv[-1] + ".argv", "w"))
PY
expect_rc 1 "a converter's unloadable output is refused" env NIGHTSHIFT_TOOLS="$T/fake" \
  "$NS_BIN" model import "$T/tiny.onnx" --out "$T/keep.h5" --name 'a b;$(x)' 2>/dev/null
check "...the existing file stays" cmp -s "$T/keep.h5" "$T/def.h5"
check "...arguments reach the script as argv, no shell" $PY -c "
import glob, json; [f] = glob.glob('$T/keep.h5.tmp.*.argv')
a = json.load(open(f)); assert a[:3] == ['--name=a b;\$(x)', '--', '$T/tiny.onnx'], a"
echo "not onnx" > "$T/notes.txt"
expect_rc 2 "a file that is not ONNX" "$NS_BIN" model import "$T/notes.txt" --out "$T/x.h5"
expect_rc 1 "a missing .onnx file" "$NS_BIN" model import "$T/none.onnx" --out "$T/x.h5"
expect_rc 2 "--weights with an ONNX file" "$NS_BIN" model import "$T/tiny.onnx" --weights w.pth --out "$T/x.h5"
expect_rc 2 "import without --out" "$NS_BIN" model import "$T/tiny.onnx"
expect_rc 2 "bad --mean" "$NS_BIN" model import "$T/tiny.onnx" --out "$T/x.h5" --mean 1,2
check "no failed import wrote --out" sh -c "! ls '$T'/x.h5* 2>/dev/null"
echo "# import checks took $(($(date +%s) - start)) s"
finish
