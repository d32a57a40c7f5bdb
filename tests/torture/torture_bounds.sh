#!/usr/bin/env bash
# Resource bounds (issue 16): peak RSS stays bounded whatever an input claims.
# Each input (tests/torture/bounds_inputs.py) claims or expands to far more
# than it holds; the command must refuse it or get through it, never crash,
# and its peak RSS (GNU time's maximum resident set size) stays under the
# bound stated with each case.
source "$(dirname "$0")/lib.sh"
[ -x /usr/bin/time ] || { echo "skip: no /usr/bin/time"; exit 77; }
$PY -c 'import h5py, numpy' 2>/dev/null || { echo "skip: no h5py/numpy"; exit 77; }
make_store || { echo "fixture failed"; exit 1; }
"$NS_BIN" model default --out "$T/model.h5" >/dev/null || exit 1
SHA=$($PY -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['clips'][0]['sha256'].decode())" "$T/store/catalog.h5")
B=$T/bounds
$PY "$NS_SRC/tests/torture/bounds_inputs.py" "$B" "$T/gen" "$T/model.h5" "$SHA" || exit 1
# bounded LIMIT_MB "description" WANT_RCS command...: exit in WANT_RCS (e.g.
# "1 2"), no signal, peak RSS < LIMIT_MB.
bounded() {
  local lim=$1 d=$2 want=$3; shift 3
  local rc=0
  /usr/bin/time -f '%M' -o "$T/rss" "$@" >/dev/null 2>"$T/err.txt" || rc=$?
  local kb; kb=$(tail -1 "$T/rss")
  local mb=$((kb / 1024))
  echo "# $d: exit $rc, peak RSS $mb MB (bound $lim MB)"
  if [[ " $want " == *" $rc "* ]] && [ "$mb" -lt "$lim" ]; then ok "$d: exit $rc, $mb MB < $lim MB"
  else not_ok "$d: exit $rc (want $want), $mb MB (bound $lim MB): $(head -c 300 "$T/err.txt")"; fi
}
ing=("$NS_BIN" ingest --store "$T/store" --night 2026-11-05 --quiet)
before=$(store_hashes "$T/store")
# The tar.gz bomb: 12 JPEGs padded with 60 MB of zeros each (720 MB inflated,
# under every limit); bytes after a JPEG's end marker are dropped as read, so
# one member is in memory at a time (1089 MB peak before).
bounded 300 "ingest a tar.gz bomb (12 x 60 MB padded JPEGs)" "0 1" "${ing[@]}" "$B/cam01_2026-11-05_010000.tar.gz"
bounded 300 "ingest 60000x60000 JPEG headers" "0 1" "${ing[@]}" "$B/cam01_2026-11-05_020000.tar"
bounded 300 "ingest a zip whose member claims 4 GB" "0 1" "${ing[@]}" "$B/cam01_2026-11-05_030000.zip"
bounded 400 "labels import with a 100 MB line" "0 1" \
  "$NS_BIN" labels import --store "$T/store" --set big --quiet "$B/labels.csv"
bounded 300 "model info on a weight claiming 2^31 elements" "1 2" "$NS_BIN" model info "$B/model.h5"
check "... refused, naming the file" grep -qF "$B/model.h5" "$T/err.txt"
bounded 300 "embed with that model" "1 2" "$NS_BIN" embed --store "$T/store" --model "$B/model.h5" --quiet
expect_rc 0 "the store verifies afterwards" "$NS_BIN" verify --store "$T/store" --quiet
finish
