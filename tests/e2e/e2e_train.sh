#!/bin/bash
# e2e_train.sh -- train, head info and predict through the binary: the softmax
# head against scikit-learn on the same arrays, the MLP, --init, the model
# check, predictions over a store, and bad input.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import h5py, numpy' 2>/dev/null || { echo "skip: no h5py/numpy"; exit 77; }

A=$T/arrays
check "synthetic arrays" "$PY" "$NS_SRC/tests/e2e/head_arrays.py" "$A" --train 6000 --val 1000 \
  --test 3000 --dim 64 --classes 10 --seed 3
# sklearn's default C = 1 is l2 = 1 / n_train in our parametrisation.
L2=$("$PY" -c 'print(1 / 6000)')
check "train softmax" "$NS_BIN" train --dataset "$A/ds.h5" --class-weight none --l2 "$L2" \
  --out "$T/sm.h5" --quiet
rc=0
"$PY" "$NS_SRC/tests/e2e/sklearn_compare.py" "$A" "$T/sm.h5" "$L2" || rc=$?
if [ "$rc" -eq 77 ]; then echo "skip - no sklearn for the comparison"
elif [ "$rc" -eq 0 ]; then ok "softmax accuracy within 0.5 points of sklearn"
else not_ok "softmax accuracy within 0.5 points of sklearn"; fi

"$NS_BIN" head info "$T/sm.h5" > "$T/info.txt"
check "head info names the kind" grep -q "kind           softmax: dimension 64, 10 classes" "$T/info.txt"
check "head info shows the epochs" grep -q "best$" "$T/info.txt"
check "head info shows the options" grep -q "class_weight=none" "$T/info.txt"

check "train mlp" "$NS_BIN" train --dataset "$A/ds.h5" --head mlp --hidden 32 --epochs 8 \
  --out "$T/mlp.h5" --quiet
check "mlp is reproducible" "$NS_BIN" train --dataset "$A/ds.h5" --head mlp --hidden 32 \
  --epochs 8 --out "$T/mlp2.h5" --quiet
id1=$("$PY" -c 'import h5py,sys; print(h5py.File(sys.argv[1])["/"].attrs["head_id"].decode())' "$T/mlp.h5")
id2=$("$PY" -c 'import h5py,sys; print(h5py.File(sys.argv[1])["/"].attrs["head_id"].decode())' "$T/mlp2.h5")
check "same seed, same head id" test "$id1" = "$id2"
check "fine-tune from the softmax head" "$NS_BIN" train --dataset "$A/ds.h5" --init "$T/sm.h5" \
  --epochs 5 --out "$T/ft.h5" --quiet
expect_rc 2 "--init of another kind is refused" "$NS_BIN" train --dataset "$A/ds.h5" --head mlp \
  --init "$T/sm.h5" --out "$T/bad.h5" --quiet
expect_rc 2 "--hidden that contradicts --init" "$NS_BIN" train --dataset "$A/ds.h5" --head mlp \
  --hidden 8 --init "$T/mlp.h5" --out "$T/bad.h5" --quiet
expect_rc 2 "unknown head kind" "$NS_BIN" train --dataset "$A/ds.h5" --head tree --out "$T/bad.h5"
expect_rc 1 "a dataset that is not one" "$NS_BIN" train --dataset "$T/info.txt" --out "$T/bad.h5"
expect_rc 1 "a head file that is not one" "$NS_BIN" head info "$T/info.txt"
check "nothing written on failure" test ! -e "$T/bad.h5"

# predict over a store of synthetic embeddings of the default model.
S=$T/store
check "synthetic store" "$(dirname "$NS_GEN")/nightshift-bench-synth" --out "$S" --ref-nights 1 \
  --ref-frames 200 --tonight-frames 100 --clip-frames 20
MID=$("$NS_BIN" model info default | awk '$1 == "id" {print $2}')
check "arrays of the default model" "$PY" "$NS_SRC/tests/e2e/head_arrays.py" "$T/a512" \
  --train 600 --val 200 --test 200 --dim 512 --classes 3 --model-id "$MID"
check "train a head for the store" "$NS_BIN" train --dataset "$T/a512/ds.h5" --out "$T/h512.h5" --quiet
check "predict" "$NS_BIN" predict --store "$S" --head "$T/h512.h5" --nights .. --out "$T/pred.csv" --quiet
check "one row per frame" test "$(tail -n +2 "$T/pred.csv" | wc -l)" -eq 300
check "the header" test "$(head -1 "$T/pred.csv")" = "clip,member,index,camera,night,class,probability,margin"
check "probabilities and margins in range" "$PY" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert all(0 < float(r["probability"]) <= 1 and 0 <= float(r["margin"]) <= float(r["probability"]) for r in rows)
assert {r["class"] for r in rows} <= {"class_00", "class_01", "class_02"}
assert len({r["clip"] for r in rows}) == 15
' "$T/pred.csv"
expect_rc 1 "a head of another model is refused" "$NS_BIN" predict --store "$S" --head "$T/sm.h5" \
  --nights .. --out "$T/pred2.csv" --quiet
"$NS_BIN" predict --store "$S" --head "$T/sm.h5" --nights .. --out "$T/pred2.csv" --quiet 2> "$T/err.txt"
check "the refusal names the model" grep -q "expects embeddings of model" "$T/err.txt"
check "no partial predictions" test ! -e "$T/pred2.csv"
finish
