#!/usr/bin/env bash
# Concurrency (issue 16): ingest, embed, detect, reference build and nightly
# on one store at once, in every pair.  A holder is stopped (SIGSTOP, by the
# kill shim) right before the rename that commits its work, so the other
# command runs against a store in mid-commit, every time, not by luck:
#  - ingest holder: its shard is in shards/ but not yet in the catalog;
#  - embed holder: its embeddings file is written but not renamed in;
#  - nightly holder: its ingest stage is at that same catalog commit.
# Then:
#  - writers of the same lock exclude each other: exit 75 at once, naming
#    the lock; with --wait they queue and finish after the holder;
#  - readers (detect, reference build) and embed (which takes only its
#    model's lock) see the last committed snapshot: the same result as on the
#    store before the holder started; embed never embeds the half-committed
#    shard;
#  - the holder, resumed, finishes, the store verifies, and the end state
#    equals the serial run's (clips and committed shard bytes).
source "$(dirname "$0")/lib.sh"
SHIM=${NS_KILLSHIM:-$(dirname "$NS_BIN")/ns_killshim.so}
[ -f "$SHIM" ] || { echo "SKIP: no kill shim at $SHIM (build target ns_killshim)"; exit 77; }

# Under ASan the sanitizer's runtime must come first in the preload list.
ASAN_LIB=$(ldd "$NS_BIN" | awk '/libasan/ {print $3; exit}')
PRELOAD=${ASAN_LIB:+$ASAN_LIB:}$SHIM
G=$T/gen W=$T/w
"$NS_GEN" glove --out "$G" --nights 5 --cameras 2 --clips 6 --frames 4 --width 160 --height 120 \
  --seed 1 >/dev/null
for n in "$G"/2026-11-0[1-4]; do
  "$NS_BIN" ingest --store "$T/base4" --night "$(basename "$n")" --manifest "$G/manifest.csv" \
    --quiet "$n" >/dev/null
done
"$NS_BIN" embed --store "$T/base4" --device cpu --quiet >/dev/null 2>&1
"$NS_BIN" reference build --store "$T/base4" --nights 2026-11-01..2026-11-03 --out "$T/ref.h5" >/dev/null
cp -a "$T/base4" "$T/base5"
"$NS_BIN" ingest --store "$T/base5" --night 2026-11-05 --manifest "$G/manifest.csv" --quiet \
  "$G/2026-11-05" >/dev/null
# The serial end states: night 5 ingested (base5), and embedded too (full).
cp -a "$T/base5" "$T/full"
"$NS_BIN" embed --store "$T/full" --device cpu --quiet >/dev/null 2>&1
cat >"$T/n.yaml" <<EOF
store: $W/store
inbox: $G/{night}
manifest: $G/manifest.csv
reference:
  nights: 2026-11-01..2026-11-03
detect:
  perms: 200
select:
  budget: 6
EOF

# The commands, each on $W/store; outputs under $T/o.  args NAME sets A to
# the command's arguments (functions cannot go through timeout or env).
args() {
  case $1 in
    ingest) A=(ingest --store "$W/store" --night 2026-11-05 --manifest "$G/manifest.csv" --quiet
               "$G/2026-11-05") ;;
    embed) A=(embed --store "$W/store" --device cpu --quiet) ;;
    detect) A=(detect --store "$W/store" --night 2026-11-04 --reference "$T/ref.h5" --perms 200
               --seed 1 --quiet --out "$T/o/det") ;;
    reference) A=(reference build --store "$W/store" --nights 2026-11-01..2026-11-03
                  --out "$T/o/ref.h5") ;;
    nightly) A=(nightly --config "$T/n.yaml" --night 2026-11-05) ;;
  esac
}
# ns NAME [OPTION...]: runs it (60 s at most), options before the rest.
ns() { args "$1"; shift; timeout 60 "$NS_BIN" "${A[0]}" "$@" "${A[@]:1}"; }
# What a reader's run must equal: every dataset of its output file (detect's
# scores and test, the reference's statistics), as on the store before any
# holder started.
h5_digest() {
  $PY - "$1" <<'PY'
import h5py, sys, hashlib
with h5py.File(sys.argv[1], "r") as f:
    h = hashlib.sha256()
    def walk(name, o):
        if isinstance(o, h5py.Dataset):
            h.update(name.encode()); h.update(o[()].tobytes())
    f.visititems(walk)
    print(h.hexdigest())
PY
}
emb_shards() { (cd "$1" && ls embeddings/*/ 2>/dev/null | grep -c '^[0-9]*\.h5$'); }

mkdir -p "$W" "$T/o" && cp -a "$T/base4" "$W/store"
DET_RC=0; ns detect >/dev/null 2>&1 || DET_RC=$?
DET=$(h5_digest "$T/o/det/detect.h5")
ns reference >/dev/null 2>&1
REF=$(h5_digest "$T/o/ref.h5")
rc=0; ns nightly >/dev/null 2>&1 || rc=$?
NIGHTLY_RC=$rc

# hold BASE K NAME: the command on a fresh copy of BASE, stopped before its Kth
# rename (counted over its children too); HPID is the command, STOPPED the
# stopped process.
hold() {
  local base=$1 k=$2
  shift 2
  rm -rf "$W" "$T/o" "$T/stopped" "$T/count" && mkdir -p "$W" "$T/o" && cp -a "$T/$base" "$W/store"
  args "$1"
  env LD_PRELOAD="$PRELOAD" NS_KILL_OP=rename NS_KILL_N="$k" NS_KILL_SIG=STOP \
    NS_KILL_PIDFILE="$T/stopped" NS_KILL_COUNTER="$T/count" "$NS_BIN" "${A[@]}" >"$T/holder.out" 2>&1 &
  HPID=$!
  for _ in $(seq 400); do [ -s "$T/stopped" ] && break; sleep 0.05; done
  STOPPED=$(cat "$T/stopped" 2>/dev/null)
  [ -n "$STOPPED" ] && grep -q '^State:.*T' "/proc/$STOPPED/status"
}
release() { # exit code of the holder into HRC
  HRC=0
  kill -CONT "$STOPPED"
  wait "$HPID" || HRC=$?
}
# busy NAME CMD...: exit 75 within 5 s, naming a lock
busy() {
  local name=$1 rc=0 t0 dt
  shift
  t0=$(date +%s%N)
  ns "$@" >"$T/o/busy.out" 2>&1 || rc=$?
  dt=$((($(date +%s%N) - t0) / 1000000))
  check "$name: exit 75 at once ($rc, $dt ms), naming the lock" busy_ok "$rc" "$dt"
}
busy_ok() { [ "$1" -eq 75 ] && [ "$2" -lt 5000 ] && grep -q 'locked by another writer' "$T/o/busy.out"; }
# reader NAME CMD: runs and sees the committed snapshot.
reader() {
  local name=$1 rc=0
  shift
  rm -rf "$T/o/det" "$T/o/ref.h5"
  ns "$@" >"$T/o/reader.out" 2>&1 || rc=$?
  case $name in
    *detect*) check "$name: exit $rc as before, the same scores and test" \
      same_detect "$rc" ;;
    *reference*) check "$name: exit $rc, the same reference" same_reference "$rc" ;;
  esac
}
same_detect() { [ "$1" -eq "$DET_RC" ] && [ "$(h5_digest "$T/o/det/detect.h5")" = "$DET" ]; }
same_reference() { [ "$1" -eq 0 ] && [ "$(h5_digest "$T/o/ref.h5")" = "$REF" ]; }
# after NAME SERIAL [RC]: the holder finished; the store verifies and equals SERIAL.
after() {
  local name=$1 serial=$2
  check "$name: the holder, resumed, exits ${3:-0} ($HRC)" [ "$HRC" -eq "${3:-0}" ]
  check "$name: the store verifies" "$NS_BIN" verify --store "$W/store" --quiet
  check "$name: clips and committed shards equal the serial run's" same_state "$T/$serial"
}
# The committed shards' contents, datasets and attributes, less the clock's
# (when the shard was created, when each clip was ingested).
committed_dumps() {
  $PY - "$1" <<'PY'
import h5py, sys, hashlib
with h5py.File(sys.argv[1] + "/catalog.h5", "r") as c:
    paths = [r["path"].decode() for r in c["shards"][:]]
for p in paths:
    h = hashlib.sha256()
    with h5py.File(sys.argv[1] + "/" + p, "r") as f:
        def walk(name, o):
            h.update(name.encode())
            for k in sorted(set(o.attrs) - {"created"}):
                h.update(k.encode()); h.update(repr(o.attrs[k]).encode())
            if isinstance(o, h5py.Dataset):
                v = o[()]
                if v.dtype.names and "ingest_time" in v.dtype.names:
                    v["ingest_time"] = 0
                h.update(repr(v.tolist()).encode() if o.dtype.hasobject else v.tobytes())
        walk("/", f)
        f.visititems(walk)
    print(p, h.hexdigest())
PY
}
same_state() {
  [ "$(content "$W/store")" = "$(content "$1")" ] &&
    [ "$(committed_dumps "$W/store")" = "$(committed_dumps "$1")" ] &&
    [ "$(emb_shards "$W/store")" -eq "$(emb_shards "$1")" ]
}
# ran_ok RC FILE PATTERN [EMB]: exit 0, PATTERN in FILE, EMB embeddings files.
ran_ok() {
  [ "$1" -eq 0 ] && grep -q "$3" "$2" && { [ -z "${4:-}" ] || [ "$(emb_shards "$W/store")" -eq "$4" ]; }
}

# runs WHAT CMD PATTERN [EMB]: CMD runs beside the holder (exit 0, PATTERN in
# its output, EMB embeddings files in the store when given).
runs() {
  local rc=0
  ns "$2" >"$T/o/run.out" 2>&1 || rc=$?
  check "$1 (exit $rc)" ran_ok "$rc" "$T/o/run.out" "$3" "${4:-}"
}
# readers HOLDER: detect and reference build beside it see the last commit.
readers() { reader "$1 vs detect" detect && reader "$1 vs reference build" reference; }
# queued CMD WANT_RC PATTERN: CMD --wait waits for the holder, then finishes.
queued() {
  local rc=0 waiter
  ns "$1" --wait >"$T/o/wait.out" 2>&1 &
  waiter=$!
  sleep 0.5
  check "$1 --wait queues behind the holder" kill -0 $waiter
  release
  wait $waiter || rc=$?
  check "$1 --wait then finishes (exit $rc, want $2)" \
    sh -c "[ $rc -eq $2 ] && grep -q '$3' '$T/o/wait.out'"
}

# ---- ingest holds the store lock, stopped before its catalog commit --------
check "ingest held before its catalog commit" hold base4 2 ingest
busy "ingest vs ingest" ingest
busy "ingest vs nightly" nightly
runs "ingest vs embed: embed skips the uncommitted shard" embed '0 shards embedded, 4 already present' 4
readers ingest
queued ingest 0 '0 clips ingested, 12 duplicates'
after "ingest" base5

# ---- embed holds its model's lock, stopped before its rename ----------------
check "embed held before its commit" hold base5 1 embed
busy "embed vs embed" embed
runs "embed vs ingest: its clips are there already" ingest '12 duplicates'
readers embed
busy "embed vs nightly (its embed stage)" nightly
rm -rf "$W/store/runs"  # that refused night is not part of the serial state
queued embed 0 '0 shards embedded, 5 already present'
after "embed" full

# ---- nightly holds the store lock for the night; its ingest stage stopped --
check "nightly held at its ingest stage's catalog commit" hold base4 2 nightly
busy "nightly vs nightly" nightly
busy "nightly vs ingest" ingest
runs "nightly vs embed: embed skips the uncommitted shard" embed '0 shards embedded, 4 already present' 4
readers nightly
queued nightly "$NIGHTLY_RC" 'morning page'
after "nightly" full "$NIGHTLY_RC"
finish
