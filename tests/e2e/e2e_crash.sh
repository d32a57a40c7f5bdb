#!/usr/bin/env bash
# End to end: crash safety.  kill -9 the ingest at many random moments (at
# least 20), rerun each time; the store always verifies, committed shards are
# never changed, and in the end every clip is present exactly once.
source "$(dirname "$0")/lib.sh"
rounds=${NS_CRASH_ROUNDS:-24}
RANDOM=4242 # reproducible kill times

data=$T/data
store=$T/store
"$NS_GEN" glove --out "$data" --nights 2 --cameras 3 --clips 4 --frames 24 --width 480 --height 360 --seed 11 >/dev/null
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

# How long an uninterrupted run takes, to spread the kills over it.
t0=$(date +%s%N)
"$NS_BIN" ingest --store "$T/timing" --manifest "$data/manifest.csv" --shard-frames 48 --quiet "$data" >/dev/null
span_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$span_ms" -ge 200 ] || span_ms=200
t_ms=$span_ms
echo "# an uninterrupted ingest takes ${t_ms} ms; killing within that span"

prev=""
kills=0
for i in $(seq 1 "$rounds"); do
  "$NS_BIN" ingest --store "$store" --manifest "$data/manifest.csv" --shard-frames 48 --quiet "$data" >/dev/null 2>&1 &
  pid=$!
  delay=$(( RANDOM % span_ms ))
  sleep "$($PY -c "print($delay / 1000)")"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  if ! "$NS_BIN" verify --store "$store" --quiet >"$T/verify.$i" 2>&1 && [ -f "$store/catalog.h5" ]; then
    not_ok "round $i (kill after ${delay} ms): verify failed: $(head -3 "$T/verify.$i")"
  fi
  now=$(committed)
  # Every shard committed before this round is still there, byte for byte.
  missing=$(comm -23 <(echo "$prev" | sort) <(echo "$now" | sort) | grep -c . || true)
  if [ "$missing" -ne 0 ]; then not_ok "round $i: $missing committed shards changed or vanished"; fi
  prev=$now
done
check "killed at least 20 runs mid-flight ($kills of $rounds)" test "$kills" -ge 20
check "no round broke the store" test "$failed" -eq 0

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
