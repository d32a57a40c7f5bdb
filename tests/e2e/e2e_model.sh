#!/usr/bin/env bash
# End to end: nightshift model info|default, and bad model files through the binary.
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
finish
