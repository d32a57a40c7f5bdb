#!/usr/bin/env bash
# End to end: the generated bad-input corpus.  Every file gets its documented
# outcome and message, the run goes on, and nothing already stored changes.
source "$(dirname "$0")/lib.sh"

good=$T/good
bad=$T/bad
store=$T/store
"$NS_GEN" glove --out "$good" --nights 1 --cameras 1 --clips 2 --frames 8 --seed 3 >/dev/null
"$NS_GEN" bad --out "$bad" >/dev/null
check "corpus has an expectations table" test -s "$bad/expect.csv"
expect_rc 0 "ingest a good night first" "$NS_BIN" ingest --store "$store" --night 2026-11-01 --quiet "$good"
before=$(shard_hashes "$store")
"$NS_BIN" info --store "$store" --json > "$T/info-before.json"

rc=0
# random_bytes.bin is named explicitly: in a directory walk, files that neither
# sniff as clips nor carry a clip extension are skipped quietly (manifests, notes).
"$NS_BIN" ingest --store "$store" --night 2026-11-02 --summary "$T/bad.json" "$bad" "$bad/random_bytes.bin" \
  >"$T/bad.out" 2>"$T/bad.err" || rc=$?
check "the run over the bad corpus completes (exit 0)" test "$rc" -eq 0
check "no crash message" sh -c "! grep -qiE 'segmentation|abort|sanitizer' '$T/bad.err'"
still_there() { [ -z "$(comm -23 <(echo "$1") <(shard_hashes "$store"))" ]; }
check "earlier shards byte-identical" still_there "$before"
expect_rc 0 "verify passes after the bad run" "$NS_BIN" verify --store "$store"

check "every corpus file has its documented outcome" $PY - "$bad" "$T/bad.json" "$store" "$T/bad.err" <<'PY'
import csv, json, sys, h5py
bad, summ, store, errf = sys.argv[1:5]
s = json.load(open(summ))
err = open(errf, errors="replace").read().lower()
probs = {p["path"].rsplit("/", 1)[-1]: p for p in s["problems"]}
with h5py.File(store + "/view.h5", "r") as v:
    clips = {c["source"].decode().rsplit("/", 1)[-1]: c for c in v["clips"][:]}
qcbits = {"frozen": 1, "black": 2, "white": 4, "res_change": 8, "gaps": 16, "decode_warn": 32}
bad_rows = []
for row in csv.DictReader(open(bad + "/expect.csv")):
    f, oc, msg = row["file"], row["outcome"], row["message"].lower()
    def fail(why): bad_rows.append(f"{f}: {why}")
    if oc == "ingested":
        if f not in clips: fail("not stored: " + str(probs.get(f))); continue
        c = clips[f]
        for key, col in (("frames_stored", "frames_stored"), ("frames_damaged", "frames_damaged"), ("frames_failed", "frames_failed")):
            if row[key] != "" and int(row[key]) != int(c[col]):
                fail(f"{col} {int(c[col])} != {row[key]}")
        for q in filter(None, row["qc"].split("|")):
            if not c["qc_flags"] & qcbits[q]: fail(f"qc {q} not flagged ({int(c['qc_flags'])})")
        if msg and msg not in err: fail(f"warning '{msg}' not printed")
    else:
        p = probs.get(f)
        if p is None: fail(f"expected {oc}, got stored={f in clips}"); continue
        if p["outcome"] != oc: fail(f"outcome {p['outcome']} != {oc}")
        if msg and msg not in p["reason"].lower(): fail(f"reason '{p['reason']}' lacks '{msg}'")
        if f not in p["path"] or f not in p["reason"]: fail("message does not name the file")
if bad_rows:
    print("\n".join(bad_rows)); sys.exit(1)
PY

# Stored clips' member names are data, never paths: nothing escaped the store.
check "no file written outside the store" sh -c "! find '$T' -name 'evil_*' | grep -q ."

# A rerun changes nothing: good ones are duplicates, bad ones are re-reported.
before=$(shard_hashes "$store")
"$NS_BIN" ingest --store "$store" --night 2026-11-02 --summary "$T/again.json" --quiet "$bad" 2>/dev/null
check "rerun stores nothing new" $PY -c "import json,sys; s=json.load(open('$T/again.json')); sys.exit(not (s['clips']['ingested']==0 and s['shards_committed']==0))"
check "rerun leaves shards identical" test "$before" = "$(shard_hashes "$store")"

# Limits are configurable: a small entry cap quarantines the many-entry archive.
if [ -f "$bad/many_entries.tar" ]; then
  "$NS_BIN" ingest --store "$T/store2" --night 2026-11-02 --max-entries 100 --summary "$T/lim.json" \
    --quiet "$bad/many_entries.tar" 2>/dev/null
  check "--max-entries quarantines" $PY -c "import json,sys; s=json.load(open('$T/lim.json')); p=s['problems']; sys.exit(not (len(p)==1 and p[0]['outcome']=='quarantined' and 'limit' in p[0]['reason'].lower()))"
fi
expect_rc 1 "--strict exits 1 when clips were not ingested" \
  "$NS_BIN" ingest --store "$T/store3" --night 2026-11-02 --strict --quiet "$bad/random_bytes.bin"
expect_rc 1 "a missing input fails and names it" sh -c "'$NS_BIN' ingest --store '$T/store3' /no/such/clip.tar 2>&1 | grep -q '/no/such/clip.tar' && exit 1"
finish
