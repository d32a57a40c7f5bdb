#!/usr/bin/env bash
# End to end: crash safety.  kill -9 the ingest at many random moments (at
# least 20), rerun each time; the store always verifies, committed shards are
# never changed, and in the end every clip is present exactly once.
source "$(dirname "$0")/lib.sh"
want_kills=${NS_CRASH_KILLS:-20}
RANDOM=4242 # reproducible kill times

data=$T/data
store=$T/store
"$NS_GEN" glove --out "$data" --nights 2 --cameras 3 --clips 6 --frames 24 --width 480 --height 360 --seed 11 >/dev/null
total=$(find "$data" -path '*/20*/*' -type f | wc -l)

committed() { # "path sha256" of every shard the catalog names
  [ -f "$store/catalog.h5" ] || return 0
  $PY - "$store" <<'PY'
import h5py, hashlib, sys
store = sys.argv[1]
with h5py.File(store + "/catalog.h5", "r") as c:
    for p in c["shards"]["path"]:
        p = p.decode()
        print(p, hashlib.sha256(open(store + "/" + p, "rb").read()).hexdigest())
PY
}
clips_in_store() {
  [ -f "$store/catalog.h5" ] || { echo 0; return; }
  $PY -c "import h5py; print(len(h5py.File('$store/catalog.h5','r')['clips']))"
}

# How long an uninterrupted run takes, to spread the kills over it.
t0=$(date +%s%N)
"$NS_BIN" ingest --store "$T/timing" --manifest "$data/manifest.csv" --shard-frames 48 --quiet "$data" >/dev/null
span_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$span_ms" -ge 200 ] || span_ms=200
t_ms=$span_ms
echo "# an uninterrupted ingest takes ${t_ms} ms; killing within that span"

prev=""
kills=0
broken=0
round=0
# Each round kills at a random moment within the work still left, so the
# store fills up gradually; rounds that finish before the kill do not count.
while [ "$kills" -lt "$want_kills" ] && [ "$round" -lt $((want_kills * 3)) ]; do
  round=$((round + 1))
  left=$(( total - $(clips_in_store) ))
  if [ "$left" -le 1 ]; then # refill: a new store continues the test on fresh work
    store=$T/store$round; prev=""; left=$total
  fi
  window=$(( span_ms * left / total ))
  [ "$window" -ge 50 ] || window=50
  delay=$(( RANDOM % window ))
  "$NS_BIN" ingest --store "$store" --manifest "$data/manifest.csv" --shard-frames 48 --quiet "$data" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  if [ -f "$store/catalog.h5" ] && ! "$NS_BIN" verify --store "$store" --quiet >"$T/verify.$round" 2>&1; then
    broken=$((broken + 1)); echo "# round $round (kill after ${delay} ms): verify failed: $(head -3 "$T/verify.$round")"
  fi
  now=$(committed)
  # Every shard committed before this round is still there, byte for byte.
  missing=$(comm -23 <(echo "$prev" | sort) <(echo "$now" | sort) | grep -c . || true)
  if [ "$missing" -ne 0 ]; then broken=$((broken + 1)); echo "# round $round: $missing committed shards changed or vanished"; fi
  prev=$now
done
check "no round broke the store ($round rounds)" test "$broken" -eq 0
check "killed at least $want_kills runs mid-flight ($kills)" test "$kills" -ge "$want_kills"

expect_rc 0 "a final run completes" "$NS_BIN" ingest --store "$store" --manifest "$data/manifest.csv" --shard-frames 48 --quiet "$data"
expect_rc 0 "verify" "$NS_BIN" verify --store "$store"
check "every clip present exactly once ($total clips)" $PY - "$store" "$total" <<'PY'
import h5py, sys
store, total = sys.argv[1], int(sys.argv[2])
with h5py.File(store + "/catalog.h5", "r") as c:
    shas = [s.decode() for s in c["clips"]["sha256"]]
with h5py.File(store + "/view.h5", "r") as v:
    n = v["frames"].shape[0]
    stored = int(v["clips"]["frames_stored"].sum())
assert len(shas) == len(set(shas)) == total, (len(shas), len(set(shas)), total)
assert n == stored, (n, stored)
PY
check "no temp files left after a clean run" sh -c "! find '$store' -name '*.tmp.*' | grep -q ."
finish
