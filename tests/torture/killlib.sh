# killlib.sh -- shared by torture_kill_slow.sh and torture_kill_soak.sh: kill -9
# each command that writes, at random moments of its run and at every point the
# kill shim (killshim.c) can stop it (right before and right after each rename,
# fsync and H5Fclose it makes), and rerun it after each kill.  After a kill:
# every file is its old version or its new one (absent counts), an output
# replaced as a set is wholly old or wholly new, the store verifies; after the
# rerun: everything equals an uninterrupted run's result and no temp name is
# left (tests/torture/killstate.py does the comparing).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SHIM=${NS_KILLSHIM:-$(dirname "$NS_BIN")/ns_killshim.so}
[ -f "$SHIM" ] || { echo "SKIP: no kill shim at $SHIM (build target ns_killshim)"; exit 77; }
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) is needed to compare outputs"; exit 77; }
KS="$PY $(dirname "${BASH_SOURCE[0]}")/killstate.py"
W=$T/w            # where each run happens; reset from $T/old.files before each
B=$T/base         # the fixture every command's "before" state is made from
RANDOM=${NS_KILL_SEED:-1616}
KILL_RANDOM=${NS_KILL_RANDOM:-20}
KILL_SHIM=${NS_KILL_SHIM:-1}
summary=()

# nsx ARGS: the binary, under the shim when KILL_ENV says so (exec: a
# background run's pid is the command's own).
# With KILL_GROUP=1 the command leads its own process group (nightly and its
# stage children), and kills take the whole group.
nsx() {
  if [ "${KILL_GROUP:-0}" -eq 1 ]; then exec env ${KILL_ENV:-} setsid "$NS_BIN" "$@"; fi
  exec env ${KILL_ENV:-} "$NS_BIN" "$@"
}
# Hard links: commands replace files by rename, never in place; one that
# wrote in place would change old.files too, and its stamp, so killstate.py
# would still see it.
reset_w() { rm -rf "$W" && cp -al "$T/old.files" "$W"; }

# The fixture: a store of 4 nights (2 cameras, 6 clips of 4 frames),
# embedded and labelled; a reference; night 4's detect output; a selection
# and its tar; a dataset; two heads; a gate report; a registry.
make_base() {
  local S=$B/store n=$NS_BIN night
  "$NS_GEN" glove --out "$T/gen" --nights 5 --cameras 2 --clips 6 --frames 4 \
    --width 64 --height 48 --seed 1 >/dev/null || return 1
  for night in "$T/gen"/2026-11-0[1-4]; do
    $n ingest --store "$S" --size 112 --night "$(basename "$night")" \
      --manifest "$T/gen/manifest.csv" --quiet "$night" >/dev/null || return 1
  done
  $n embed --store "$S" --device cpu --quiet >/dev/null 2>&1 || return 1
  $n reference build --store "$S" --nights 2026-11-01..2026-11-03 --out "$B/ref.h5" >/dev/null || return 1
  grep -E '^path,|,2026-11-0[123],' "$T/gen/labels.csv" >"$B/labels-123.csv"   # night 4 stays unlabelled
  grep -E '^path,|,2026-11-04,' "$T/gen/labels.csv" >"$B/labels-4.csv"
  $n labels import --store "$S" --set glove --quiet "$B/labels-123.csv" >/dev/null || return 1
  $n detect --store "$S" --night 2026-11-04 --reference "$B/ref.h5" --perms 200 --quiet \
    --out "$B/det" >/dev/null 2>&1
  [ -f "$B/det/detect.h5" ] || return 1
  $n select --store "$S" --detect "$B/det" --budget 6 --out "$B/sel.csv" --quiet || return 1
  $n export --store "$S" --selection "$B/sel.csv" --out "$B/tasks.tar" --quiet || return 1
  $n select --store "$S" --detect "$B/det" --budget 10 --seed 2 --out "$B/sel2.csv" --quiet || return 1
  $n dataset build --store "$S" --nights 2026-11-01..2026-11-02 --out "$B/ds.h5" >/dev/null || return 1
  $n dataset build --store "$S" --nights 2026-11-03 --split-by none \
    --out "$B/golden.h5" >/dev/null || return 1
  $n train --dataset "$B/ds.h5" --out "$B/prod.h5" --epochs 20 --quiet || return 1
  $n train --dataset "$B/ds.h5" --out "$B/cand.h5" --head mlp --hidden 16 --epochs 3 --quiet || return 1
  $n gate --candidate "$B/prod.h5" --production "$B/cand.h5" --dataset "$B/golden.h5" \
    --out "$B/gate" --quiet >/dev/null 2>&1
  [ -f "$B/gate/summary.json" ] || return 1
  $n registry add --store "$S" --head "$B/prod.h5" >/dev/null || return 1
  $n registry promote candidate --store "$S" --force --reason "first head" >/dev/null || return 1
  $n registry add --store "$S" --head "$B/cand.h5" >/dev/null || return 1
}

# Each command: prep_NAME makes $T/old.files (the state before) from $B;
# run_NAME runs it in $W (one nsx call); chk_NAME gives killstate's --set and
# --mut roots; vfy_NAME (when set) is the command's own check, run after
# every kill.
store_verify() { "$NS_BIN" verify --store "$W/store" --quiet >/dev/null 2>&1; }
drop_tail_embeddings() { # the embeddings of shards 3 and 4 (nights 3, 4) removed
  rm -f "$1"/store/embeddings/*/000003.h5 "$1"/store/embeddings/*/000004.h5
}
prep_embed() { cp -a "$B" "$T/old.files" && drop_tail_embeddings "$T/old.files"; }
run_embed() { nsx embed --store "$W/store" --device cpu --quiet; }
chk_embed=""
vfy_embed=store_verify

prep_reference() { # the old complete reference: nights 1..2
  cp -a "$B" "$T/old.files" && "$NS_BIN" reference build --store "$T/old.files/store" \
    --nights 2026-11-01..2026-11-02 --out "$T/old.files/ref.h5" >/dev/null 2>&1
}
run_reference() {
  nsx reference build --store "$W/store" --nights 2026-11-01..2026-11-03 --whiten-folds 2 --out "$W/ref.h5"
}
chk_reference=""

prep_detect() { # the old complete output: night 3's
  cp -a "$B" "$T/old.files" && rm -rf "$T/old.files/det" &&
    "$NS_BIN" detect --store "$T/old.files/store" --night 2026-11-03 --reference "$T/old.files/ref.h5" \
      --perms 200 --quiet --out "$T/old.files/det" >/dev/null 2>&1
  mkdir -p "$T/old.files/hist" && [ -f "$T/old.files/det/detect.h5" ]
}
# --history: the report's timeline from a fixed folder, not from OUT's
# neighbours (which the kill itself changes).
run_detect() {
  nsx detect --store "$W/store" --night 2026-11-04 --reference "$W/ref.h5" --perms 200 --quiet \
    --history "$W/hist" --out "$W/det"
}
chk_detect="--set det"

prep_labels() { cp -a "$B" "$T/old.files"; }
run_labels() { nsx labels import --store "$W/store" --set night4 --quiet "$W/labels-4.csv"; }
chk_labels="--loose store/labels"
vfy_labels() { store_verify && "$NS_BIN" labels info --store "$W/store" >/dev/null 2>&1; }

prep_select() { cp -a "$B" "$T/old.files"; }
run_select() { nsx select --store "$W/store" --detect "$W/det" --budget 10 --seed 2 --out "$W/sel.csv" --quiet; }
chk_select=""

prep_export() { cp -a "$B" "$T/old.files"; }
run_export() { nsx export --store "$W/store" --selection "$W/sel2.csv" --out "$W/tasks.tar" --quiet; }
chk_export=""
vfy_export() { [ ! -e "$W/tasks.tar" ] || tar tf "$W/tasks.tar" >/dev/null 2>&1; }

prep_dataset() { cp -a "$B" "$T/old.files"; }
run_dataset() { nsx dataset build --store "$W/store" --nights 2026-11-01..2026-11-03 --out "$W/ds.h5"; }
chk_dataset=""
vfy_dataset() { "$NS_BIN" dataset info "$W/ds.h5" >/dev/null 2>&1; }

prep_train() { cp -a "$B" "$T/old.files"; }
run_train() { nsx train --dataset "$W/ds.h5" --out "$W/prod.h5" --head mlp --hidden 8 --epochs 4 --quiet; }
chk_train=""
vfy_train() { "$NS_BIN" head info "$W/prod.h5" >/dev/null 2>&1; }

prep_gate() { cp -a "$B" "$T/old.files"; }
run_gate() {
  nsx gate --candidate "$W/cand.h5" --production "$W/prod.h5" --dataset "$W/golden.h5" \
    --out "$W/gate" --quiet
}
chk_gate="--set gate"

# The registry is append-only and its entries carry their time: after a
# kill or a rerun the earlier bytes are there unchanged but for the 4 that
# close the JSON ("\n]}\n", which an append moves to the new end), and it
# lists.
reg_check() {
  local old=$T/old.files/store/registry.json
  store_verify && "$NS_BIN" registry list --store "$W/store" >/dev/null 2>&1 &&
    cmp -s -n "$(($(stat -c %s "$old") - 4))" "$old" "$W/store/registry.json"
}
prep_promote() { cp -a "$B" "$T/old.files"; }
run_promote() { nsx registry promote candidate --store "$W/store" --force --reason torture; }
chk_promote="--mut store/registry.json"
vfy_promote=reg_check
nonidem_promote=1
prep_rollback() {
  cp -a "$B" "$T/old.files" && "$NS_BIN" registry promote candidate --store "$T/old.files/store" \
    --force --reason "second head" >/dev/null
}
run_rollback() { nsx registry rollback --store "$W/store" --reason torture; }
chk_rollback="--mut store/registry.json"
vfy_rollback=reg_check
nonidem_rollback=1

# nightly: night 5 (ingest, embed, dataset, train, gate: the labels of
# nights 1-3 are new to it).  Shards, heads and the run's records carry
# their time of writing, so new files are judged by verify and by count.
prep_nightly() {
  cp -a "$B" "$T/old.files" && cat >"$T/old.files/nightly.yaml" <<EOF
store: $W/store
inbox: $T/gen/{night}
manifest: $T/gen/manifest.csv
reference: {policy: last, last: 3, min_nights: 3}
detect: {perms: 200}
EOF
}
run_nightly() { nsx nightly --config "$W/nightly.yaml" --night 2026-11-05 --wait -q; }
chk_nightly="--fresh store --mut store/catalog.h5 --mut store/view.h5 --mut store/registry.json --mut store/runs/2026-11-05"
vfy_nightly=reg_check
grp_nightly=1
stride_nightly=${NS_KILL_NIGHTLY_STRIDE:-5}

# kill_suite NAME: the uninterrupted run, then every shim point, then
# $KILL_RANDOM random moments.
kill_suite() {
  local name=$1 chk vfy rc0 t0 span n k at i try rc ms landed bad=0 shimk=0 shimmiss=0 rk=0
  chk=$(eval echo "\${chk_$name:-}")
  vfy=$(eval echo "\${vfy_$name:-}")
  declare -F "vfy_$name" >/dev/null && vfy=vfy_$name
  local grp stride genv="" nonidem
  nonidem=$(eval echo "\${nonidem_$name:-0}")
  grp=$(eval echo "\${grp_$name:-0}")
  stride=$(eval echo "\${stride_$name:-1}")
  [ "$grp" -eq 1 ] && genv="NS_KILL_GROUP=1 NS_KILL_COUNTER=$T/counter"
  rm -rf "$T/old.files" "$T/new.files" "$T/old.json" "$T/new.json"
  prep_"$name" || { not_ok "$name: preparing the state before failed"; return; }
  $KS snap "$T/old.files" "$T/old.json"
  reset_w
  rc0=0; t0=$(date +%s%N)
  (run_"$name") >"$T/$name.uncut.log" 2>&1 || rc0=$?
  span=$((($(date +%s%N) - t0) / 1000000))
  cp -a "$W" "$T/new.files" && $KS snap "$T/new.files" "$T/new.json"
  if [ "$rc0" -ne 0 ] && [ "$rc0" -ne 3 ] && [ "$rc0" -ne 4 ]; then
    not_ok "$name: the uninterrupted run failed (exit $rc0): $(tail -2 "$T/$name.uncut.log")"; return
  fi
  # after_kill WHAT: the killed state, then the rerun.
  after_kill() {
    local out
    if ! out=$($KS check "$W" "$T/old.json" "$T/new.json" $chk); then
      bad=$((bad + 1)); echo "# $name, $1: after the kill:"; echo "$out"
    fi
    if [ -n "$vfy" ] && ! $vfy; then
      bad=$((bad + 1)); echo "# $name, $1: its check failed after the kill"
    fi
    # A kill after the commit point leaves the new state; rerunning a command
    # that is not idempotent (registry promote, rollback) is then refused,
    # and must change nothing.
    local r=0 done_=0
    [ "$nonidem" -eq 1 ] && $KS check "$W" "$T/old.json" "$T/new.json" $chk --final >/dev/null 2>&1 && done_=1
    (KILL_ENV=; run_"$name") >"$T/$name.rerun.log" 2>&1 || r=$?
    [ "$done_" -eq 1 ] && [ "$nonidem" -eq 1 ] && r=$rc0
    if [ "$r" -ne "$rc0" ]; then
      bad=$((bad + 1)); echo "# $name, $1: the rerun exited $r, not $rc0: $(tail -2 "$T/$name.rerun.log")"
    elif ! out=$($KS check "$W" "$T/old.json" "$T/new.json" $chk --final); then
      bad=$((bad + 1)); echo "# $name, $1: after the rerun:"; echo "$out"
    fi
  }
  n=0
  if [ "$KILL_SHIM" -eq 1 ]; then
    reset_w && rm -f "$T/shim.log"
    rm -f "$T/counter"
    (KILL_GROUP=$grp KILL_ENV="LD_PRELOAD=$SHIM NS_KILL_LOG=$T/shim.log $genv"; run_"$name") >/dev/null 2>&1 || true
    n=$(grep -c . "$T/shim.log" 2>/dev/null || true)
    echo "# $name: uninterrupted run ${span} ms, exit $rc0; $n shim points ($(awk '{print $2}' "$T/shim.log" | sort | uniq -c | awk '{printf "%s %s ", $1, $2}'))"
    for k in $(seq 1 "$stride" "$n"); do
      for at in before after; do
        reset_w && rm -f "$T/counter"
        rc=0
        { (KILL_GROUP=$grp KILL_ENV="LD_PRELOAD=$SHIM NS_KILL_N=$k NS_KILL_AT=$at $genv"; run_"$name") >/dev/null 2>&1; } 2>/dev/null || rc=$?
        if [ "$rc" -ne 137 ]; then shimmiss=$((shimmiss + 1)); echo "# $name: shim point $k $at was not reached (exit $rc)"; continue; fi
        shimk=$((shimk + 1))
        after_kill "$at call $k ($(sed -n "${k}p" "$T/shim.log" | awk '{print $2}'))"
      done
    done
  fi
  [ "$span" -ge 20 ] || span=20
  for i in $(seq 1 "$KILL_RANDOM"); do
    landed=0
    for try in 1 2 3 4 5 6; do
      reset_w
      ms=$((RANDOM * 32768 + RANDOM))
      ms=$((ms % (span / (try * try) + 1)))
      (KILL_GROUP=$grp; run_"$name") >/dev/null 2>&1 &
      local pid=$!
      sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
      if [ "$grp" -eq 1 ]; then kill -9 -- "-$pid" 2>/dev/null; else kill -9 "$pid" 2>/dev/null; fi
      rc=0; wait "$pid" 2>/dev/null || rc=$?
      if [ "$rc" -eq 137 ]; then landed=1; break; fi
    done
    [ "$landed" -eq 1 ] || continue
    rk=$((rk + 1))
    after_kill "random kill $i at ${ms} ms"
  done
  local pts=$((2 * ((n + stride - 1) / stride)))
  check "$name: $shimk shim kills (of $pts points, every $stride of $((2 * n))) and $rk random kills survived" \
    test "$bad" -eq 0 -a "$shimmiss" -eq 0 -a "$rk" -ge "$KILL_RANDOM"
  summary+=("$name: uninterrupted ${span} ms; shim points $((2 * n)), every $stride: killed $shimk; random kills $rk; broken $bad")
}
