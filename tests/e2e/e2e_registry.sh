#!/usr/bin/env bash
# End to end: the head registry's refusals and its record.
#  - promote is refused without a gate report, on a REJECT or INSUFFICIENT
#    verdict, on a report about another head, and on a report made against
#    another production head; --force needs a reason and records it;
#  - rollback returns to the previous production and refuses when there is none;
#  - the file only ever grows: each earlier version is a prefix of the next;
#  - lineage (dataset, label sets, model, training config, gate report SHA-256)
#    is kept with each head; nightly reads the production head.
source "$(dirname "$0")/lib.sh"

S=$T/store
# The registry lives in a store: make one with a night of the nightly job.
"$NS_GEN" glove --out "$T/data" --nights 1 --cameras 2 --clips 3 --frames 4 --seed 2 >/dev/null
n=$(ls "$T/data" | grep -E '^[0-9]{4}-' | head -1)
printf 'store: %s\ninbox: %s/data/{night}\nmanifest: %s/data/manifest.csv\n' "$S" "$T" "$T" >"$T/n.yaml"
expect_rc 1 "registry on a folder that is no store" "$NS_BIN" registry add --store "$T" --head-id "$(printf x | sha256sum | cut -c1-64)"
expect_rc 0 "nightly makes the store" "$NS_BIN" nightly --config "$T/n.yaml" --night "$n" -q
check "no production head yet" grep -q '"production_head": ""' "$S/runs/$n/manifest.json"
id() { printf '%s' "$1" | sha256sum | cut -c1-64; }
A=$(id head-a) B=$(id head-b) C=$(id head-c)
reg() { "$NS_BIN" registry "$1" --store "$S" "${@:2}" >>"$T/out.log" 2>&1; }
# gate DIR VERDICT CANDIDATE PRODUCTION: a summary.json laid out as
# `nightshift gate` writes it (src/report/gate_report.c), lineage keys included.
gate() {
  mkdir -p "$1"
  cat >"$1/summary.json" <<EOF
{"format":"nightshift-gate-summary","version":1,"verdict":"$2","exit_code":0,
 "candidate":{"head_id":"$3","path":"/heads/$3.h5","kind":"softmax","temperature":1.2,
              "accuracy":{"value":0.93,"ci_low":0.9,"ci_high":0.95},"label_sets":"night7@000001",
              "model_id":"$(id model)","train_config_sha256":"$(id train)"},
 "production":{"head_id":"$4","path":"/heads/$4.h5","kind":"softmax","temperature":1,
               "accuracy":{"value":0.88,"ci_low":0.85,"ci_high":0.9}},
 "dataset_id":"$(id ds)","frames":400,"clips":40,"replicates":1000,"alpha":0.05,
 "checks":[{"kind":"overall","name":"all","metric":"accuracy","more_clips":null}],
 "new_classes":[],"files":{"report":"report.html"}}
EOF
}
snap() { cp "$S/registry.json" "$T/reg.$1"; }

expect_rc 0 "empty registry lists" reg list
expect_rc 0 "add A" reg add --head-id "$A" --path /heads/a.h5 --dataset-id "$(id ds)" \
  --label-sets night7@000001 --model-id "$(id model)" --train-config-sha256 "$(id train)"
snap 1
expect_rc 1 "adding A twice is refused" reg add --head-id "$A"
expect_rc 2 "a head id that is not 64 hex digits" reg add --head-id xyz
expect_rc 1 "a --head file that is no head is refused" reg add --head "$S/catalog.h5"
check "  and the message names it" grep -q "catalog.h5" "$T/out.log"
expect_rc 2 "--head and --head-id together" reg add --head "$S/catalog.h5" --head-id "$A"
expect_rc 2 "promote without a gate report is refused" reg promote candidate
check "the refusal says why" grep -q "no gate report" "$T/out.log"
B0=$(id baseline)   # the head the gate compared against before any was promoted here
gate "$T/g-reject" reject "$A" "$B0"
expect_rc 2 "promote on a REJECT verdict is refused" reg promote candidate --gate "$T/g-reject"
gate "$T/g-insuf" INSUFFICIENT "$A" "$B0"
expect_rc 2 "promote on an INSUFFICIENT verdict is refused" reg promote candidate --gate "$T/g-insuf"
gate "$T/g-other" promote "$C" "$B0"
expect_rc 2 "a report about another head is refused" reg promote candidate --gate "$T/g-other"
gate "$T/g-a" promote "$A" "$B0"
expect_rc 0 "promote A, the first production head, on its PROMOTE report" \
  reg promote candidate --gate "$T/g-a"
snap 2
"$NS_BIN" registry show production --store "$S" >"$T/show.txt"
check "A is production" grep -q "head $A \[production\]" "$T/show.txt"
check "A's lineage: dataset, label sets, model, train config" \
  sh -c "grep -q '$(id ds)' '$T/show.txt' && grep -q night7@000001 '$T/show.txt' && grep -q '$(id model)' '$T/show.txt' && grep -q '$(id train)' '$T/show.txt'"
check "the promote records the gate report's SHA-256" \
  grep -q "\"gate_report_sha256\": \"$(sha256sum "$T/g-a/summary.json" | cut -c1-64)\"" "$S/registry.json"
# A rerun of a promote that went through (after a crash, or a failed
# directory fsync after its rename) succeeds and records nothing new.
before=$(sha256sum <"$S/registry.json")
expect_rc 0 "promoting production again changes nothing" sh -c "'$NS_BIN' registry promote '$A' \
  --store '$S' --gate '$T/g-a' > '$T/again.txt'"
check "...and says so" grep -q "is already production (entry #[0-9]*); nothing to do" "$T/again.txt"
expect_rc 0 "so does 'promote candidate' with the same gate report" reg promote candidate --gate "$T/g-a"
check "the registry is unchanged" test "$(sha256sum <"$S/registry.json")" = "$before"

reg add --head-id "$B" --path /heads/b.h5
gate "$T/g-b-stale" promote "$B" "$C"
expect_rc 2 "a report against another production head is refused" \
  reg promote candidate --gate "$T/g-b-stale"
check "the refusal names both production heads" grep -q "compared against production ${C:0:12}" "$T/out.log"
expect_rc 2 "--force without --reason is refused" reg promote candidate --force
expect_rc 0 "--force with a reason promotes B" \
  reg promote candidate --gate "$T/g-b-stale" --force --reason "line 3 down, hotfix approved by QA"
snap 3
check "the override is recorded with its reason and what it overrode" \
  sh -c "grep -q '\"forced\": true' '$S/registry.json' && grep -q 'hotfix approved by QA; overrode: the gate report' '$S/registry.json'"
"$NS_BIN" registry list --store "$S" >"$T/list.txt"
check "list shows B as production" grep -q "$B \[production\]" "$T/list.txt"

expect_rc 0 "rollback returns to A" reg rollback --reason "B misreads gloves"
snap 4
"$NS_BIN" registry show production --store "$S" >"$T/show.txt"
check "A is production again" grep -q "head $A \[production\]" "$T/show.txt"
expect_rc 2 "rollback past the first production is refused" reg rollback
gate "$T/g-c" promote "$C" "$A"
expect_rc 0 "promote C on a report against A (a head the registry never saw)" \
  reg promote "$C" --gate "$T/g-c"
snap 5
check "C's dataset comes from its gate report" \
  sh -c "'$NS_BIN' registry show '${C:0:10}' --store '$S' | grep -q '$(id ds)'"
check "C's label sets come from its gate report" \
  sh -c "'$NS_BIN' registry show '${C:0:10}' --store '$S' | grep -q 'night7@000001'"
expect_rc 1 "an unknown head" reg show 00000000
expect_rc 2 "a name that is no head id" reg show prod

# Append-only: each version is the previous one with entries added at the end.
prefix_ok=1
for i in 1 2 3 4; do
  $PY - "$T/reg.$i" "$T/reg.$((i + 1))" <<'PY' || prefix_ok=0
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert a.endswith(b"\n]}\n") and b.startswith(a[:-4]), "not a prefix"
PY
done
check "every version of registry.json starts with the one before" test "$prefix_ok" -eq 1
check "registry.json is JSON with 6 entries" \
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['ns_format']=='nightshift-registry' and len(d['entries'])==6" "$S/registry.json"
cp "$S/registry.json" "$T/good.json"
printf 'garbage' >>"$S/registry.json"
expect_rc 1 "a damaged registry is refused, not rewritten" reg add --head-id "$(id head-d)"
check "the damaged file was left alone" sh -c "tail -c 7 '$S/registry.json' | grep -q garbage"
cp "$T/good.json" "$S/registry.json"

# nightly reads the production head.
expect_rc 0 "nightly again" "$NS_BIN" nightly --config "$T/n.yaml" --night "$n" -q
check "the run manifest names the production head" \
  grep -q "\"production_head\": \"$C\"" "$S/runs/$n/manifest.json"
finish
