#!/usr/bin/env bash
# End to end: one writer at a time.  A second ingest exits 75 at once; with
# --wait it waits and then adds its clips.
source "$(dirname "$0")/lib.sh"

data=$T/data
store=$T/store
"$NS_GEN" glove --out "$data" --nights 2 --cameras 2 --clips 3 --frames 40 --seed 5 >/dev/null
night1=$(ls "$data" | grep '^20' | head -1)
night2=$(ls "$data" | grep '^20' | tail -1)
expect_rc 0 "create the store" "$NS_BIN" ingest --store "$store" --night 2026-11-01 --quiet \
  "$(find "$data/$night1" -type f | head -1)"

# Hold the lock from outside with flock(1) on the same file, as a long ingest would.
flock "$store/lock" sleep 8 &
holder=$!
# Wait until the holder really has the lock (a loaded machine can be slow).
for _ in $(seq 100); do flock -n "$store/lock" true || break; sleep 0.05; done
start=$(date +%s.%N)
expect_rc 75 "second writer exits 75 at once" "$NS_BIN" ingest --store "$store" --quiet "$data/$night1"
elapsed=$($PY -c "print(round($(date +%s.%N) - $start, 2))")
check "...without waiting (${elapsed}s)" $PY -c "import sys; sys.exit(not $elapsed < 2.0)"
check "the busy message names the store" sh -c "'$NS_BIN' ingest --store '$store' --quiet '$data/$night1' 2>&1 | grep -q 'locked'"
expect_rc 0 "--wait waits for the lock and ingests" "$NS_BIN" ingest --store "$store" --wait --quiet "$data/$night1"
wait $holder

# Two real ingests at once: exactly one gets the lock without --wait.
"$NS_BIN" ingest --store "$store" --night 2026-11-02 --quiet --threads 1 "$data/$night2" & a=$!
"$NS_BIN" ingest --store "$store" --night 2026-11-02 --quiet --threads 1 "$data/$night2" & b=$!
ra=0; rb=0
wait $a || ra=$?
wait $b || rb=$?
check "concurrent ingests: one ran, the other 75 or nothing to do ($ra, $rb)" \
  sh -c "[ '$ra$rb' = '075' ] || [ '$ra$rb' = '750' ] || [ '$ra$rb' = '00' ]"
expect_rc 0 "then the rest ingests with --wait" "$NS_BIN" ingest --store "$store" --wait --quiet "$data"
check "every clip stored exactly once" $PY - "$store" "$data" <<'PY'
import h5py, sys, glob, os
store, data = sys.argv[1:3]
with h5py.File(store + "/catalog.h5", "r") as c:
    shas = [s.decode() for s in c["clips"]["sha256"]]
n = len([f for f in glob.glob(data + "/20*/*/*") if os.path.isfile(f)])
assert len(shas) == len(set(shas)) == n, (len(shas), len(set(shas)), n)
PY
expect_rc 0 "verify" "$NS_BIN" verify --store "$store" --quiet
finish
