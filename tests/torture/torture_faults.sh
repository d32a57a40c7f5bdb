#!/usr/bin/env bash
# Fault injection (issue 16): for every command that writes, the Nth write,
# pwrite, fsync, rename, open, mmap or malloc fails (faultshim.c, LD_PRELOAD)
# for a strided sample of N over each op's calls; see faults_lib.sh for the
# checks.  torture_faults_soak.sh runs every N.  Also the regressions of
# issue 16 defects 2 (ENOSPC crashed ingest at exit, summary overcounted)
# and 9 (raw HDF5 stacks, newlines and corrupt bytes reached the terminal).
source "$(dirname "$0")/faults_lib.sh"
make_base && make_base_more || { echo "fixture failed"; exit 1; }
K=${NS_FAULT_SAMPLES:-1}

# Defect 2: a disk that fills at each of the store's writes of an ingest:
# exit 1 (not 139), one line naming the file, a truthful summary.
mut=$mutable_ingest
BASE_CLIPS=$($PY -c "import h5py;print(len(h5py.File('$T/base/store/catalog.h5','r')['clips']))")
count_calls ingest
crash=0
for ((n = 1; n <= COUNT_pwrite; n += (COUNT_pwrite + 5) / 6)); do
  f0=$failed
  fault_case ingest pwrite "$n" ENOSPC
  [ "$failed" -eq "$f0" ] || crash=1
done
check "ingest on a full disk: exit 1, one line naming the file, summary truthful" test $crash -eq 0

# Defect 9: embed on EACCES and ENOSPC prints one line, no HDF5 stack.
count_calls embed
for spec in "open $((COUNT_open / 2 + 1)) EACCES" "pwrite $((COUNT_pwrite / 2 + 1)) ENOSPC"; do
  set -- $spec
  W=$T/w && rm -rf "$W" && cp -a "$T/base" "$W"
  FAULT_ENV=(LD_PRELOAD="$PRELOAD" NS_FAULT_OP=$1 NS_FAULT_N=$2 NS_FAULT_ERRNO=$3 NS_FAULT_PERSIST=1)
  rc=0; run_embed >/dev/null 2>"$W/e.txt" || rc=$?
  FAULT_ENV=()
  check "embed, $3 on $1: exit 1 ($rc), one line ($(wc -l <"$W/e.txt")), no HDF5-DIAG" \
    test "$rc" -eq 1 -a "$(wc -l <"$W/e.txt")" -eq 1 -a "$(grep -c HDF5-DIAG "$W/e.txt")" -eq 0
done
# verify shows a corrupt checksum's bytes escaped, on one line.
W=$T/w && rm -rf "$W" && cp -a "$T/base" "$W"
$PY - "$W/store/catalog.h5" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    d = f["shards"]; row = d[0]
    row["checksum"] = b"xxh3-128-tree:\x1b[31m\nforged\xff"
    d[0] = row
PYEOF
rc=0; "$NS_BIN" verify --store "$W/store" >"$W/v.out" 2>"$W/v.err" || rc=$?
check "verify fails on the forged checksum (exit $rc)" test "$rc" -eq 1
no_ctl() { ! LC_ALL=C grep -qP '[\x01-\x08\x0b-\x1f\x7f]' "$@"; }
check "verify escapes its bytes: no control bytes printed" no_ctl "$W/v.err" "$W/v.out"
check "verify's message shows them as \\xNN" grep -qF '\x1b[31m\x0aforged\xff' "$W/v.err"

# The loop.
# Under ASan each case costs about 3x: the sanitizer pass loops over half the
# commands (store writers and the parsers), the main pass over all twelve.
cmds="ingest embed reference detect labels select export dataset train gate registry nightly"
[ -n "$ASAN_LIB" ] && cmds="ingest embed detect labels dataset gate"
for cmd in ${NS_FAULT_CMDS:-$cmds}; do
  fault_loop "$cmd" "$K"
done
echo "# FIGURES total cases=$CASES faulted=$FAULTED in-library-malloc=$LIBCASES"
finish
