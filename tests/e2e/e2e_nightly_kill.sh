#!/usr/bin/env bash
# End to end: kill -9 `nightshift nightly` at 20 random moments, rerunning each
# time, and compare with an uninterrupted run of the same nights:
#  - after every kill, no stage the manifest recorded as done before the run
#    was redone (its record, start time and key included, is unchanged);
#  - each night's final exit code, the store (nights, clips, frames, shards,
#    embeddings), every detect verdict and the glove night's labeling batch
#    (selection, tasks.csv, image names) equal the uninterrupted run's;
#  - the killed store verifies, and no stage process outlives its nightly.
source "$(dirname "$0")/lib.sh"

D=$T/data
"$NS_GEN" glove --out "$D" --nights 5 --cameras 3 --clips 5 --frames 12 --seed 11 \
  --shift glove:5:cam01,cam02 >/dev/null
mapfile -t nights < <(ls "$D" | grep -E '^[0-9]{4}-' | sort)
conf() { # store name -> config path
  cat >"$T/$1.yaml" <<EOF
store: $T/$1
inbox: $D/{night}
manifest: $D/manifest.csv
reference: {policy: last, last: 3, min_nights: 3}
detect: {perms: 200}
select: {budget: 20}
EOF
  echo "$T/$1.yaml"
}
A=$(conf plain)
B=$(conf killed)

# What must be equal: the store's content and each night's detect verdict.
state() {
  $PY - "$1" <<'PY'
import glob, hashlib, json, sys, h5py
s = sys.argv[1]
with h5py.File(f"{s}/catalog.h5", "r") as c:
    clips = sorted((r["night"].decode() if isinstance(r["night"], bytes) else str(r["night"]),
                    r["sha256"].decode() if isinstance(r["sha256"], bytes) else str(r["sha256"]))
                   for r in c["clips"][:])
print("clips", len(clips), hashlib.sha256(repr(clips).encode()).hexdigest()[:16])
print("shards", len(glob.glob(f"{s}/shards/*/*.h5")))
print("embeddings", len(glob.glob(f"{s}/embeddings/*/*.h5")))
for f in sorted(glob.glob(f"{s}/runs/detect/*/summary.json")):
    d = json.load(open(f))
    print(d["night"], d["verdict"], d["p_value"], d["novel_frames"], d["novel_conditions"])
import tarfile
for f in sorted(glob.glob(f"{s}/runs/select/*/selection.csv")):
    print(f[len(s):], hashlib.sha256(open(f, "rb").read()).hexdigest()[:16])
for f in sorted(glob.glob(f"{s}/runs/labeling/*")):
    t = tarfile.open(f)
    print(f[len(s):], sorted(t.getnames()),
          hashlib.sha256(t.extractfile("tasks.csv").read()).hexdigest()[:16])
for f in sorted(glob.glob(f"{s}/runs/*/manifest.json")):
    m = json.load(open(f))
    print(m["night"], "exit", m["exit_code"], [x["status"] for x in m["stages"]])
PY
}
# The records of the stages done so far: "stage start seconds key" lines.
done_records() {
  [ -f "$1" ] || return 0
  $PY - "$1" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["stages"]:
    if s["status"] == "done":
        print(s["stage"], s["start"], s["seconds"], s["key"])
PY
}

plain_rc=() plain_ms=()
for n in "${nights[@]}"; do
  rc=0; t0=$(date +%s%N)
  "$NS_BIN" nightly --config "$A" --night "$n" -q || rc=$?
  plain_rc+=("$rc")
  plain_ms+=($((($(date +%s%N) - t0) / 1000000)))
done
check "the uninterrupted run finds the glove night and exports a batch" test "${plain_rc[4]}" -eq 4
check "  the batch opens with tar" sh -c "tar tf '$T/plain/runs/labeling/tasks-${nights[4]}.tar' >/dev/null"

# Four kills a night, each at a random moment of what the night has left: a
# kill that comes after the run ended is no kill, so that moment is drawn
# again (earlier) until one lands.
RANDOM=15
kills=0 redone=0 orphans=0
for i in "${!nights[@]}"; do
  n=${nights[$i]}
  man=$T/killed/runs/$n/manifest.json
  span=${plain_ms[$i]}
  for _ in 1 2 3 4; do
    for try in 1 2 3 4 5 6 7 8; do
      before=$(done_records "$man")
      "$NS_BIN" nightly --config "$B" --night "$n" --wait -q >/dev/null 2>&1 &
      pid=$!
      ms=$((RANDOM % (span / (try * try * try) + 1)))
      sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
      landed=0
      kill -9 "$pid" 2>/dev/null && landed=1
      wait "$pid" 2>/dev/null
      sleep 0.1
      if pgrep -P "$pid" >/dev/null 2>&1; then orphans=$((orphans + 1)); fi
      after=$(done_records "$man")
      # Every record done before the run is still there, unchanged.
      while IFS= read -r line; do
        [ -z "$line" ] && continue
        grep -qxF "$line" <<<"$after" || redone=$((redone + 1))
      done <<<"$before"
      [ "$landed" -eq 1 ] && { kills=$((kills + 1)); break; }
    done
  done
  rc=0; "$NS_BIN" nightly --config "$B" --night "$n" --wait -q || rc=$?
  check "night $n after kills: exit $rc as uninterrupted (${plain_rc[$i]})" test "$rc" -eq "${plain_rc[$i]}"
done
check "20 kills landed while nightly ran ($kills)" test "$kills" -eq 20
check "nothing the manifest said was done was redone" test "$redone" -eq 0
check "no stage outlived its killed nightly" test "$orphans" -eq 0
state "$T/plain" | sed 's/^2026-[0-9-]* exit.*//' >"$T/plain.state"
state "$T/killed" | sed 's/^2026-[0-9-]* exit.*//' >"$T/killed.state"
check "final state equals the uninterrupted run's" cmp -s "$T/plain.state" "$T/killed.state"
diff "$T/plain.state" "$T/killed.state" | head
check "every night's manifest ends with its exit code" \
  test "$(state "$T/killed" | grep -c ' exit [034] ')" -eq 5
check "the killed store verifies" "$NS_BIN" verify --store "$T/killed" --quiet
finish
