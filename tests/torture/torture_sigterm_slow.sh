#!/usr/bin/env bash
# SIGTERM (a Slurm time limit) for each long-running command: started on an
# input that keeps it busy, sent SIGTERM $NS_TERM_AT_MS (400) ms into its run, it exits within
# $NS_TERM_LIMIT_MS (3000 ms) with exit 143 (the shell's code for "stopped
# by SIGTERM", nightly's own), leaves the store verifying and no output half
# written, and its rerun completes with no temp name left behind.
# Main pass only (latency means nothing under ASan).
source "$(dirname "$0")/killlib.sh"
LIMIT_MS=${NS_TERM_LIMIT_MS:-3000}
make_base >"$T/base.log" 2>&1 || { echo "fixture failed: $(tail -3 "$T/base.log")"; exit 1; }
"$NS_GEN" glove --out "$T/big" --nights 2 --cameras 3 --clips 6 --frames 24 \
  --width 480 --height 360 --seed 11 >/dev/null
"$NS_GEN" glove --out "$T/gen5" --nights 5 --cameras 2 --clips 6 --frames 4 \
  --width 64 --height 48 --seed 1 >/dev/null
cat >"$B/nightly.yaml" <<EOF
store: $W/store
inbox: $T/gen5/{night}
manifest: $T/gen5/manifest.csv
reference: {policy: last, last: 3, min_nights: 3}
detect: {perms: 20000}
EOF

# Each command; with H=1 busy for many seconds on this fixture (the SIGTERM
# run), with H=0 a small run (the rerun that must complete).
H=0
term_ingest() { nsx ingest --store "$W/new" --manifest "$T/big/manifest.csv" --quiet "$T/big"; }  # the rerun resumes
term_embed() {
  rm -rf "$W/store/embeddings"
  nsx embed --store "$W/store" --device cpu --quiet
}
term_reference() {
  nsx reference build --store "$W/store" --nights 2026-11-01..2026-11-04 \
    --whiten-folds $((H ? 40 : 2)) --out "$W/ref.h5"
}
term_detect() {
  nsx detect --store "$W/store" --night 2026-11-04 --reference "$W/ref.h5" \
    --perms $((H ? 1000000 : 200)) --quiet --out "$W/det"
}
term_select() { nsx select --store "$W/store" --detect "$W/det" --budget $((H ? 60 : 6)) --out "$W/sel.csv" --quiet; }
term_dataset() {
  nsx dataset build --store "$W/store" --nights 2026-11-01..2026-11-04 --audit-sample 0 --out "$W/ds.h5"
}
term_train() {
  nsx train --dataset "$W/ds.h5" --out "$W/prod.h5" --head mlp --hidden 64 \
    --epochs $((H ? 1000000 : 3)) --patience -1 --quiet
}
term_gate() {
  printf 'replicates = %d\n' $((H ? 1000000 : 1000)) >"$W/p.policy"
  nsx gate --candidate "$W/cand.h5" --production "$W/prod.h5" --dataset "$W/golden.h5" \
    --policy "$W/p.policy" --out "$W/gate" --quiet
}
term_nightly() { nsx nightly --config "$W/nightly.yaml" --night 2026-11-05 -q; }

rm -rf "$T/old.files" && cp -a "$B" "$T/old.files"
results=()
AT_MS=${NS_TERM_AT_MS:-400}
for c in ${NS_TERM_CMDS:-ingest embed reference detect select dataset train gate nightly}; do
  # SIGTERM $AT_MS after the start of a heavy run that is still running, or
  # a third of the way through it where the heavy run is shorter than that on this
  # machine (on an idle one embed takes about 0.2 s, detect's night has few clips
  # and so an exact test, as has nightly's; select and dataset build take about 0.1 s).
  # Those short commands are timed by uninterrupted heavy runs first (the
  # others run for many seconds: timing them would cost minutes).
  at=$AT_MS dur=long
  case " ${NS_TERM_TIMED:-embed detect select dataset nightly} " in *" $c "*)
    dur=999999
    for _ in 1 2 3; do # the shortest of three: later runs find a warm page cache
      reset_w
      t0=$(date +%s%N)
      (H=1; term_$c) >/dev/null 2>&1 || true
      d=$((($(date +%s%N) - t0) / 1000000))
      [ "$d" -ge "$dur" ] || dur=$d
    done
    [ $((dur / 3)) -ge "$at" ] || at=$((dur / 3)) ;;
  esac
  reset_w
  (H=1; term_$c) >"$T/$c.term.log" 2>&1 &
  pid=$!
  sleep "$((at / 1000)).$(printf '%03d' $((at % 1000)))"
  running=0; kill -0 "$pid" 2>/dev/null && running=1
  t1=$(date +%s%N)
  kill -TERM "$pid" 2>/dev/null
  rc=0; wait "$pid" 2>/dev/null || rc=$?
  lat=$((($(date +%s%N) - t1) / 1000000))
  results+=("$c: SIGTERM at ${at} ms of a ${dur} ms run: exit $rc after ${lat} ms")
  echo "# ${results[-1]}"
  check "$c was still running when SIGTERM came" test "$running" -eq 1
  check "$c stops within ${LIMIT_MS} ms of SIGTERM (${lat} ms)" test "$lat" -le "$LIMIT_MS"
  check "$c exits 143 on SIGTERM (exit $rc): $(tail -1 "$T/$c.term.log")" test "$rc" -eq 143
  check "$c: the store verifies after SIGTERM" store_verify
  [ ! -d "$W/new" ] || check "$c: the new store verifies after SIGTERM" \
    "$NS_BIN" verify --store "$W/new" --quiet
  # The rerun completes and leaves no temp name (the stopped run's included).
  rr=0; (H=0; term_$c) >"$T/$c.rerun.log" 2>&1 || rr=$?
  check "$c: the rerun completes (exit $rr)" test "$rr" -eq 0 -o "$rr" -eq 3 -o "$rr" -eq 4
  left=$(find "$W" -name '*.tmp.[0-9]*' -o -name '*.old.[0-9]*' | head -3)
  check "$c: no temp name left after the rerun${left:+ ($left)}" test -z "$left"
done
printf '# %s\n' "${results[@]}"
finish
