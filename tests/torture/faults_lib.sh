# faults_lib.sh -- the fault-injection loop (issue 16), shared by
# torture_faults.sh (a strided sample of N per op and command, CI) and
# torture_faults_soak.sh (every N = 1..count: every call site of a run).
#
# For each command that writes, a count run under the shim (faultshim.c)
# says how many write/pwrite/fsync/rename/open/mmap/malloc calls the command
# makes; then, for each chosen N, the Nth call of that op fails and:
#   - the exit code is < 128 (no crash), no sanitizer report, no HDF5-DIAG;
#   - a failure says so in one line "nightshift CMD: ..." naming a file;
#   - every file that existed before is byte-identical (the command's own
#     commit points excepted: ingest's catalog and view), no temp file is
#     left, and `verify` passes;
#   - ingest's JSON summary counts only the clips the catalog holds;
#   - the rerun without the fault succeeds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SHIM=${NS_FAULTSHIM:-}
OPS="write pwrite fsync rename open mmap malloc"
[ -n "$SHIM" ] && [ -f "$SHIM" ] || { echo "SKIP: no fault shim (NS_FAULTSHIM)"; exit 77; }
# An ASan binary needs its runtime first in the preload list; its allocator
# never calls ours, so the malloc op is left out there (the build's own
# leak checking still runs on every error path).
PRELOAD=$SHIM
ASAN_LIB=$(ldd "$NS_BIN" | awk '/libasan/ {print $3; exit}')
if [ -n "$ASAN_LIB" ]; then
  PRELOAD="$ASAN_LIB:$SHIM"
  OPS="write pwrite fsync rename open mmap"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
fi
FAULT_ENV=()
ns() { env "${FAULT_ENV[@]}" "$NS_BIN" "$@"; }
errno_for() { # op round -> the errno injected
  case $1 in
    pwrite) [ $(($2 % 2)) -eq 0 ] && echo ENOSPC || echo EIO ;;
    write) [ $(($2 % 2)) -eq 0 ] && echo EDQUOT || echo ENOSPC ;;
    open) [ $(($2 % 2)) -eq 0 ] && echo EACCES || echo EIO ;;
    mmap | malloc) echo ENOMEM ;;
    *) echo EIO ;;
  esac
}

# The fixture: 5 nights generated, nights 1-4 ingested, 1-3 embedded, a
# reference of nights 1-2.  Commands work on a copy in $W.
make_base() {
  local B=$T/base
  "$NS_GEN" glove --out "$T/gen" --nights 5 --cameras 2 --clips 6 --frames 4 \
    --width 160 --height 120 --seed 1 >/dev/null || return 1
  for n in 2026-11-01 2026-11-02 2026-11-03 2026-11-04; do
    "$NS_BIN" ingest --store "$B/store" --night $n --manifest "$T/gen/manifest.csv" --quiet \
      "$T/gen/$n" >/dev/null || return 1
  done
  "$NS_BIN" embed --store "$B/store" --device cpu --nights 2026-11-01..2026-11-03 --quiet \
    >/dev/null 2>&1 || return 1
  "$NS_BIN" reference build --store "$B/store" --nights 2026-11-01..2026-11-02 \
    --out "$B/ref.h5" >/dev/null 2>&1 || return 1
}

# One function per command: runs it in $W through ns (the shim's env).
run_ingest() {
  ns ingest --store "$W/store" --night 2026-11-05 --manifest "$T/gen/manifest.csv" \
    --shard-frames 8 --summary "$W/sum.json" --quiet "$T/gen/2026-11-05"
}
run_embed() { ns embed --store "$W/store" --device cpu --quiet; }
run_reference() {
  ns reference build --store "$W/store" --nights 2026-11-01..2026-11-03 --out "$W/ref.h5"
}
run_detect() {
  ns detect --store "$W/store" --night 2026-11-03 --reference "$W/ref.h5" --perms 50 \
    --out "$W/det/2026-11-03" --quiet
}
mutable_ingest="./store/catalog.h5 ./store/view.h5"
# nightly's stages commit one by one: ingest (catalog, view) and retrain
# (registry) may be done when a later stage fails.
mutable_nightly="$mutable_ingest ./store/registry.json"
# A failed fsync of the store directory comes after the registry's rename:
# the new registry may be in place (the rerun then finds it done).
mutable_registry="./store/registry.json"
run_labels() { ns labels import --store "$W/store" --set again --quiet "$T/labels.csv"; }
run_select() {
  ns select --store "$W/store" --detect "$W/det3" --budget 6 --out "$W/sel2.csv" --quiet
}
run_export() { ns export --store "$W/store" --selection "$W/sel.csv" --out "$W/tasks.tar"; }
run_dataset() {
  ns dataset build --store "$W/store" --nights 2026-11-01..2026-11-03 --out "$W/ds2.h5"
}
run_train() { ns train --dataset "$W/ds.h5" --out "$W/head2.h5" --l2 1e-4 --seed 1 --quiet; }
run_gate() {
  ns gate --candidate "$W/head.h5" --production "$W/head.h5" --dataset "$W/ds.h5" \
    --out "$W/gate" --quiet
}
run_registry() { ns registry promote candidate --store "$W/store" --gate "$W/g-a"; }
run_nightly() { ns nightly --config "$W/n.yaml" --night 2026-11-05 --quiet; }

# The later commands' inputs: a detect output, a selection, labels, a
# dataset, a head, a registry with a candidate and a PROMOTE gate report,
# and a nightly config.  fault_case copies base to the same $W each time,
# so the config can name $T/w.
make_base_more() {
  local B=$T/base id
  "$NS_BIN" detect --store "$B/store" --night 2026-11-03 --reference "$B/ref.h5" --perms 50 \
    --out "$B/det3" --quiet >/dev/null 2>&1
  [ -f "$B/det3/detect.h5" ] || return 1
  "$NS_BIN" select --store "$B/store" --detect "$B/det3" --budget 6 --out "$B/sel.csv" \
    --quiet >/dev/null 2>&1 || return 1
  grep -v 2026-11-05 "$T/gen/labels.csv" >"$T/labels.csv" # the nights in the store
  "$NS_BIN" labels import --store "$B/store" --set glove --quiet "$T/labels.csv" \
    >/dev/null 2>&1 || return 1
  "$NS_BIN" dataset build --store "$B/store" --nights 2026-11-01..2026-11-03 --out "$B/ds.h5" \
    >/dev/null 2>&1 || return 1
  "$NS_BIN" train --dataset "$B/ds.h5" --out "$B/head.h5" --l2 1e-4 --seed 1 --quiet \
    >/dev/null 2>&1 || return 1
  "$NS_BIN" registry add --store "$B/store" --head "$B/head.h5" >/dev/null 2>&1 || return 1
  id=$($PY -c "import json,sys;r=json.load(open(sys.argv[1]));print(r['entries'][-1]['head_id'])" \
    "$B/store/registry.json" 2>/dev/null) || return 1
  mkdir -p "$B/g-a"
  cat >"$B/g-a/summary.json" <<EOF
{"format":"nightshift-gate-summary","version":1,"verdict":"promote","exit_code":0,
 "candidate":{"head_id":"$id","path":"$T/w/head.h5","kind":"softmax","temperature":1,
              "accuracy":{"value":0.9,"ci_low":0.85,"ci_high":0.95}},
 "production":{"head_id":"","path":"","kind":"","temperature":1,
               "accuracy":{"value":0,"ci_low":0,"ci_high":0}},
 "dataset_id":"x","frames":10,"clips":5,"replicates":100,"alpha":0.05,
 "checks":[],"new_classes":[],"files":{"report":"report.html"}}
EOF
  cat >"$B/n.yaml" <<EOF
store: $T/w/store
inbox: $T/gen/{night}
manifest: $T/gen/manifest.csv
reference:
  policy: last
  last: 2
  min_nights: 2
detect:
  perms: 50
EOF
}

hashes() { (cd "$1" && find . -type f ! -name lock ! -name '*.lock' ! -name '*.out' ! -name '*.err' | sort | xargs -r sha256sum); }
tmp_left() { (cd "$1" && find . -name '*.tmp.*' | head -3); }

# The catalog's clips against the summary's "ingested", for ingest.
summary_truthful() {
  [ -f "$W/sum.json" ] || return 0 # the summary's own write may be the fault
  $PY - "$W/sum.json" "$W/store/catalog.h5" "$BASE_CLIPS" <<'EOF'
import json, sys, h5py
s = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "r") as f:
    n = len(f["clips"])
got = s["clips"]["ingested"]
if got != n - int(sys.argv[3]):
    print(f"summary says {got} clips ingested, the catalog gained {n - int(sys.argv[3])}")
    sys.exit(1)
EOF
}

CASES=0
FAULTED=0
LIBCASES=0
# fault_case CMD OP N ERRNO: one injected failure and its checks.
fault_case() {
  local cmd=$1 op=$2 n=$3 err=$4 rc=0 what="$1 $2#$3 $4" before after bad="" f
  W=$T/w
  rm -rf "$W" && cp -a "$T/base" "$W"
  before=$(hashes "$W")
  FAULT_ENV=(LD_PRELOAD="$PRELOAD" NS_FAULT_OP="$op" NS_FAULT_N="$n" NS_FAULT_ERRNO="$err"
             NS_FAULT_LOG="$W/fault.out")
  [ "$err" = ENOSPC ] && FAULT_ENV+=(NS_FAULT_PERSIST=1)
  "run_$cmd" >"$W/cmd.out" 2>"$W/cmd.err" || rc=$?
  FAULT_ENV=()
  CASES=$((CASES + 1))
  [ -s "$W/fault.out" ] && FAULTED=$((FAULTED + 1))
  # A malloc that fails inside a library (HDF5, OpenBLAS, libgomp) is that
  # library's to handle: HDF5 1.10 exit()s with 255 when its id registry
  # cannot allocate.  Such a case must still lose nothing (earlier bytes,
  # verify, rerun), but its exit code and message are the library's.
  local lib=0 who
  who=$(awk '{print $4; exit}' "$W/fault.out" 2>/dev/null)
  if [ "$op" = malloc ] && [ -n "$who" ] && [ "$who" != "$(basename "$NS_BIN")" ]; then
    lib=1
    LIBCASES=$((LIBCASES + 1))
  fi
  grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$W/cmd.err" && bad="$bad; sanitizer report"
  # Whoever failed, our message must not print a NULL string.
  grep -q '(null)' "$W/cmd.err" && bad="$bad; '(null)' in the message"
  if [ $lib -eq 0 ]; then
    [ "$rc" -lt 128 ] || bad="$bad; crashed (exit $rc)"
    grep -q 'HDF5-DIAG' "$W/cmd.err" "$W/cmd.out" && bad="$bad; raw HDF5 error stack"
    LC_ALL=C grep -qP '[\x01-\x08\x0b-\x1f\x7f]' "$W/cmd.err" && bad="$bad; control bytes on stderr"
  fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "${WANT_RC:-0}" ]; then
    [ $lib -eq 1 ] || grep -qE "^nightshift [a-z]+( [a-z]+)?: .*('[^']+'|\(log: /)" "$W/cmd.err" ||
      bad="$bad; no 'nightshift $cmd: ... 'FILE'' line"
    after=$(hashes "$W")
    while read -r _ f; do
      case " ${mut:-} " in *" $f "*) continue ;; esac
      bad="$bad; $f changed or vanished"
    done < <(comm -23 <(sort <<<"$before") <(sort <<<"$after"))
    [ $lib -eq 1 ] || [ -z "$(tmp_left "$W")" ] ||
      bad="$bad; temp left: $(tmp_left "$W" | tr '\n' ' ')"
  fi
  "$NS_BIN" verify --store "$W/store" --quiet >/dev/null 2>"$W/verify.err" ||
    bad="$bad; verify fails: $(head -c 200 "$W/verify.err")"
  [ "$cmd" = ingest ] && { summary_truthful >"$W/sum.err" 2>&1 || bad="$bad; $(cat "$W/sum.err")"; }
  if [ "$rc" -ne "${WANT_RC:-0}" ]; then
    local rc2=0
    "run_$cmd" >/dev/null 2>"$W/rerun.err" || rc2=$?
    [ "$rc2" -eq "${WANT_RC:-0}" ] || bad="$bad; rerun exit $rc2: $(head -c 200 "$W/rerun.err")"
  fi
  if [ -n "$bad" ]; then
    not_ok "$what (exit $rc: $(head -c 160 "$W/cmd.err" | tr '\n' ' '))$bad"
    cp -a "$W" "$T/fail-$cmd-$op-$n" 2>/dev/null
  fi
  return 0
}

# count_calls CMD: the ops' call counts of a clean run, into COUNT_<op>.
count_calls() {
  local cmd=$1 rc=0
  W=$T/w
  rm -rf "$W" && cp -a "$T/base" "$W"
  FAULT_ENV=(LD_PRELOAD="$PRELOAD" NS_FAULT_COUNT="$W/count.out")
  "run_$cmd" >/dev/null 2>"$W/cmd.err" || rc=$?
  FAULT_ENV=()
  WANT_RC=$rc
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || [ "$rc" -eq 4 ] || { not_ok "$cmd: clean run exits $rc: $(head -c 300 "$W/cmd.err")"; return 1; }
  for op in $OPS; do
    eval "COUNT_$op=$(awk -v o="$op" '$1 == o {s += $2} END {print s + 0}' "$W/count.out")"
  done
}

# fault_loop CMD SAMPLES: SAMPLES values of N per op, spread over 1..count
# (SAMPLES=all: every N); the phase moves with the command so that commands
# together sample different call sites.
CMD_INDEX=0
fault_loop() {
  local cmd=$1 k=$2 c n i round=0 cases0=$CASES
  mut=""
  eval "mut=\${mutable_$cmd:-}"
  [ "$cmd" = ingest ] && BASE_CLIPS=$($PY -c "import h5py;print(len(h5py.File('$T/base/store/catalog.h5','r')['clips']))")
  count_calls "$cmd" || return 0
  CMD_INDEX=$((CMD_INDEX + 1))
  local sites=""
  for op in $OPS; do
    eval "c=\$COUNT_$op"
    sites="$sites $op=$c"
    [ "$c" -gt 0 ] || continue
    if [ "$k" = all ]; then
      local cap=${NS_SOAK_MAX:-$c}
      for ((n = 1; n <= c && n <= cap; n++)); do
        fault_case "$cmd" "$op" "$n" "$(errno_for "$op" "$n")"
      done
    else
      for ((i = 0; i < k; i++)); do
        # N at (i + phase) / k of the way, phase in (0, 1) from the command
        n=$(( 1 + (c * (100 * i + (37 * CMD_INDEX + 13 * round) % 100)) / (100 * k) ))
        [ "$n" -le "$c" ] || n=$c
        fault_case "$cmd" "$op" "$n" "$(errno_for "$op" $((i + CMD_INDEX)))"
      done
    fi
    round=$((round + 1))
  done
  ok "$cmd: $((CASES - cases0)) injected failures, calls:$sites"
  echo "# FIGURES $cmd cases=$((CASES - cases0))$sites"
}
