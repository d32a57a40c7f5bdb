#!/usr/bin/env bash
# Corrupt and hostile files (issue 16): every file nightshift reads --
# shard, catalog, view, embeddings, reference, model, detect output, dataset,
# head, label set, registry, nightly config, labels CSV, gate policy,
# selection CSV -- truncated, bit-flipped in header and data, with datasets
# missing, reshaped, retyped or claiming 2^40 rows, and swapped for another
# nightshift format, fed to the commands that read it (tests/torture/hostile.py
# says what each run must do).  This is the long draw: 12 offsets, every dataset.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hostile_fixture.sh"
$PY -c 'import h5py, numpy' 2>/dev/null || { echo "skip: no h5py/numpy"; exit 77; }
make_hostile_fixture || { echo "fixture failed"; exit 1; }
mode=slow
check "every damaged file is refused cleanly ($mode)" $PY "$NS_SRC/tests/torture/hostile.py" "$T" "$NS_BIN" $mode
check "the store still verifies after the suite restored it" "$NS_BIN" verify --store "$T/store" --quiet
finish
