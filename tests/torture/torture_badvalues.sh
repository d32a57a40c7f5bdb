#!/usr/bin/env bash
# Regression for issue 16 defects 7 and 8: bad option values are usage errors
# (exit 2 with a message, as ingest gives), and non-finite values in a
# reference or an embeddings file are refused at load with a message naming
# the file and the dataset, never read as "0 frames novel".
source "$(dirname "$0")/lib.sh"
make_store || { echo "fixture failed"; exit 1; }
S=$T/store
det() { "$NS_BIN" detect --store "$S" --reference "$T/ref.h5" --out "$T/out" --quiet "$@"; }
# expect_usage "description" command...: exit 2 and one line on stderr that says why
expect_usage() {
  local d=$1; shift
  local rc=0
  "$@" >/dev/null 2>"$T/err.txt" || rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l < "$T/err.txt")" -ge 1 ] && ! grep -q "no frames" "$T/err.txt"
  then ok "$d (exit 2)"; else not_ok "$d (exit $rc, want 2: $(head -c 200 "$T/err.txt"))"; fi
}

# ---- defect 7: dates are real calendar dates, checked in one place -------------
for n in 2026-13-45 '' ../../x 2026-02-30 2026-11-00 2100-02-29 2026-1-04 '2026-11-04 '; do
  expect_usage "detect --night '$n'" det --night "$n"
done
check "the message names the bad night" grep -q "2026-11-04 " "$T/err.txt"
for spec in 2026-13-01..2026-13-05 2026-11-01..2026-11-31 ..2026-02-30 2026-11-01,2026-11-32; do
  expect_usage "reference build --nights $spec" \
    "$NS_BIN" reference build --store "$S" --nights "$spec" --out "$T/r2.h5"
done
check "no reference was written" test ! -e "$T/r2.h5"
expect_usage "embed --nights 2026-13-01.." "$NS_BIN" embed --store "$S" --nights 2026-13-01..
expect_usage "embed --precision bf16 --device cpu" \
  "$NS_BIN" embed --store "$S" --device cpu --precision bf16
expect_usage "embed --precision tf32 --device cpu" \
  "$NS_BIN" embed --store "$S" --device cpu --precision tf32
check "the precision message says what is needed" grep -q "needs --device cuda" "$T/err.txt"
expect_usage "embed --precision fp16" "$NS_BIN" embed --store "$S" --precision fp16
expect_usage "nightly --night 2026-02-29" "$NS_BIN" nightly --store "$S" --night 2026-02-29
# Numbers out of range and unknown enum values, with every required option
# given (so that the value itself is what gets refused).
for a in "--alpha 0" "--alpha 1.5" "--alpha nan" "--frame-alpha -1" "--perms 0" \
         "--perms 99999999999999999999" "--min-clips 1" "--novel-k abc" "--threads 0" \
         "--permute rows" "--device tpu" "--seed -3"; do
  # shellcheck disable=SC2086
  expect_usage "detect $a" det --night 2026-11-04 $a
done
for a in "--batch 0" "--batch 5000" "--size 100" "--task 3/2" "--device tpu"; do
  # shellcheck disable=SC2086
  expect_usage "embed $a" "$NS_BIN" embed --store "$S" $a
done
check "no detect output from the refused runs" test ! -e "$T/out"
expect_rc 0 "a good detect still runs" det --night 2026-11-04
rm -rf "$T/out"

# ---- defect 8: non-finite values refused at load ------------------------------
# mutate SRC DST PYTHON: DST is SRC with the change made through h5py (f is the file).
mutate() { cp "$1" "$2" && $PY -c "import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r+')
$3
f.close()" "$2"; }
refuse() { # refuse "description" REF WORD...: detect exits 1 naming the file and WORDs
  local d=$1 ref=$2; shift 2
  local rc=0
  "$NS_BIN" detect --store "$S" --night 2026-11-04 --reference "$ref" --out "$T/out" --quiet \
    >/dev/null 2>"$T/err.txt" || rc=$?
  local good=1
  [ "$rc" -eq 1 ] || good=0
  grep -qF "$ref" "$T/err.txt" || good=0
  for w in "$@"; do grep -qF -- "$w" "$T/err.txt" || good=0; done
  if [ $good -eq 1 ]; then ok "$d (exit 1)"; else not_ok "$d (exit $rc: $(head -c 300 "$T/err.txt"))"; fi
}
mutate "$T/ref.h5" "$T/nanloco.h5" "f['sample/loco'][...] = np.nan"
refuse "a reference whose loco distances are all NaN" "$T/nanloco.h5" "/sample/loco"
mutate "$T/ref.h5" "$T/neg.h5" "l = f['sample/loco'][...]; l[3] = -1; f['sample/loco'][...] = l"
refuse "a negative loco distance" "$T/neg.h5" "/sample/loco[3]"
mutate "$T/ref.h5" "$T/infloco.h5" "l = f['sample/loco'][...]; l[5] = np.inf; f['sample/loco'][...] = l"
refuse "an infinite loco distance where the frame has its k neighbours" "$T/infloco.h5" "/sample/loco[5]"
mutate "$T/ref.h5" "$T/nanemb.h5" "e = f['sample/emb'][...]; e[7, 2] = np.nan; f['sample/emb'][...] = e"
refuse "a NaN in the sample embeddings" "$T/nanemb.h5" "/sample/emb row 7"
mutate "$T/ref.h5" "$T/infemb.h5" "e = f['sample/emb'][...]; e[0, 0] = -np.inf; f['sample/emb'][...] = e"
refuse "an infinity in the sample embeddings" "$T/infemb.h5" "/sample/emb row 0"
mutate "$T/ref.h5" "$T/nancent.h5" "c = f['kmeans/centroids'][...]; c[1, 1] = np.nan; f['kmeans/centroids'][...] = c"
refuse "a NaN centroid" "$T/nancent.h5" "/kmeans/centroids row 1"
mutate "$T/ref.h5" "$T/nansigma.h5" "f.attrs['sigma'] = np.float64('nan')"
refuse "a NaN kernel bandwidth" "$T/nansigma.h5" "sigma"
check "no detect output from the refused references" test ! -e "$T/out"

# Tonight's embeddings: a NaN row in the shard's embeddings file is refused
# too, naming that file; a damaged file (wrong format) is not read as embeddings.
E=$(ls "$S"/embeddings/*/000004.h5)
cp "$E" "$T/emb.bak"
$PY -c "import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r+'); e = f['embeddings'][...]; e[2, 0] = np.nan; f['embeddings'][...] = e" "$E"
rc=0; det --night 2026-11-04 2>"$T/err.txt" >/dev/null || rc=$?
check "detect refuses NaN embeddings (exit $rc)" test "$rc" -eq 1
check "... naming the embeddings file and the row" sh -c \
  "grep -qF '$E' '$T/err.txt' && grep -q 'row 2' '$T/err.txt' && grep -q 'non-finite' '$T/err.txt'"
cp "$T/emb.bak" "$E"
$PY -c "import sys, h5py; f = h5py.File(sys.argv[1], 'r+'); f.attrs['ns_format'] = 'nightshift-reference'" "$E"
rc=0; det --night 2026-11-04 2>"$T/err.txt" >/dev/null || rc=$?
check "detect refuses an embeddings file of another format (exit $rc)" sh -c \
  "test $rc -eq 1 && grep -q '000004.h5' '$T/err.txt'"
cp "$T/emb.bak" "$E"

# A reference from another store: its clips are none of this store's.
mutate "$T/ref.h5" "$T/other.h5" "c = f['clips'][...]; c['sha256'] = b'0' * 64; f['clips'][...] = c
f.attrs['store'] = np.bytes_(b'/elsewhere/\x1b[31mstore')"
rc=0; det --night 2026-11-04 --reference "$T/other.h5" 2>"$T/err.txt" >/dev/null || rc=$?
# (det's own --reference comes first; getopt takes the last one given)
check "detect runs with a reference of another store (exit $rc)" test "$rc" -eq 0
check "... and warns that it was built from another store" grep -q "built from another store" "$T/err.txt"
check "... with the file's store path escaped" sh -c "grep -qF '\\x1b[31m' '$T/err.txt' && ! grep -qP '\\x1b' '$T/err.txt'"
rm -rf "$T/out"
det --night 2026-11-04 2>"$T/err.txt" >/dev/null
check "no such warning with the store's own reference" sh -c "! grep -q 'another store' '$T/err.txt'"

# An inbox file whose name carries a terminal escape and a newline: ingest's
# per-input line shows both escaped, on one line (it printed them raw).
mkdir -p "$T/esc"
printf 'not a clip' >"$T/esc/"$'\x1b[31mcam1_20261101T000000\nforged.tar'
"$NS_BIN" ingest --store "$T/esc-store" --night 2026-11-01 "$T/esc" 2>"$T/esc.err" >/dev/null
check "an input named with ESC and a newline is reported escaped, on one line" sh -c \
  "grep -qF '\\x1b[31mcam1_20261101T000000\\x0aforged.tar: unrecognised' '$T/esc.err' &&
   ! grep -qP '\\x1b' '$T/esc.err' && [ \$(wc -l <'$T/esc.err') -eq 1 ]"
finish
