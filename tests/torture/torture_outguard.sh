#!/usr/bin/env bash
# Regression for issue 16 defects 1, 3 and 4: --out never destroys what is
# not our own output, a kill inside the output swap is recovered, and a dead
# run's temp names are cleaned up and never read as history.
source "$(dirname "$0")/lib.sh"
make_store || { echo "fixture failed"; exit 1; }
S=$T/store
before=$(store_hashes "$S")
det() { "$NS_BIN" detect --store "$S" --night 2026-11-04 --reference "$T/ref.h5" --quiet "$@"; }

# 1: outputs inside the store, or over something that is not ours, refused.
expect_rc 2 "detect --out STORE refused" det --out "$S"
expect_rc 2 "detect --out STORE/ refused" det --out "$S/"
expect_rc 2 "detect --out STORE/shards refused" det --out "$S/shards"
expect_rc 2 "detect --out STORE/new/dir refused" det --out "$S/new/dir"
mkdir -p "$T/user" && echo "my notes" > "$T/user/notes.txt"
expect_rc 2 "detect --out over a user's directory refused" det --out "$T/user"
check "the user's notes.txt is intact" grep -q "my notes" "$T/user/notes.txt"
det --out "$T/user" 2> "$T/err.txt"
check "the message names the file it would lose" grep -q "notes.txt" "$T/err.txt"
check "the message is one line" test "$(wc -l < "$T/err.txt")" -eq 1
expect_rc 2 "detect --out over a plain file refused" det --out "$T/ref.h5"
shard=$(cd "$S" && find shards -name '*.h5' | head -1)
for f in catalog.h5 view.h5 "$shard"; do
  expect_rc 2 "reference build --out STORE/$f refused" \
    "$NS_BIN" reference build --store "$S" --nights 2026-11-01..2026-11-02 --out "$S/$f"
done
expect_rc 2 "reference build --out over a non-reference file refused" \
  "$NS_BIN" reference build --store "$S" --nights 2026-11-01..2026-11-02 --out "$T/user/notes.txt"
check "that file is intact" grep -q "my notes" "$T/user/notes.txt"
check "the store did not change by a byte" test "$before" = "$(store_hashes "$S")"

# Our own outputs are still replaced, legacy ones (no marker) too.
expect_rc 0 "detect into a fresh OUT" det --out "$T/out/2026-11-04"
check "OUT carries the marker" grep -q '^nightshift detect$' "$T/out/2026-11-04/.nightshift-output"
expect_rc 0 "detect replaces its own OUT" det --out "$T/out/2026-11-04"
rm "$T/out/2026-11-04/.nightshift-output"
expect_rc 0 "detect replaces a legacy OUT without a marker" det --out "$T/out/2026-11-04"
mkdir -p "$T/empty"
expect_rc 0 "detect fills an empty directory" det --out "$T/empty"
expect_rc 0 "reference build replaces a reference" \
  "$NS_BIN" reference build --store "$S" --nights 2026-11-01..2026-11-03 --out "$T/ref.h5"
expect_rc 2 "evaluate-style outputs are refused by detect" sh -c \
  "mkdir -p '$T/g' && printf 'nightshift gate\nreport.html\n' > '$T/g/.nightshift-output' && \
   touch '$T/g/report.html' && '$NS_BIN' detect --store '$S' --night 2026-11-04 \
   --reference '$T/ref.h5' --quiet --out '$T/g'"

# 3: a kill between "old aside" and "new in" (the two-rename fallback)
# leaves only OUT.old.PID and OUT.tmp.PID; the next run restores the old
# output before anything else, even when it then fails.
O=$T/out/2026-11-04
h=$(sha256sum < "$O/detect.h5")
mv "$O" "$O.old.$DEAD"
mkdir "$O.tmp.$DEAD" && echo half > "$O.tmp.$DEAD/detect.h5"
expect_rc 1 "a failing rerun (missing reference)" \
  "$NS_BIN" detect --store "$S" --night 2026-11-04 --reference "$T/nope.h5" --quiet --out "$O"
check "the old complete OUT is back" test "$h" = "$(sha256sum < "$O/detect.h5")"
check "the dead run's OUT.tmp is gone" test ! -e "$O.tmp.$DEAD"
check "no OUT.old is left" test ! -e "$O.old.$DEAD"

# 4: leftovers of dead runs are removed by the next run and never read as
# results.  A stale OUT.tmp holding a real detect.h5 of the same night would
# otherwise enter the timeline.
mkdir -p "$T/out/2026-11-03.tmp.$DEAD" && cp "$O/detect.h5" "$T/out/2026-11-03.tmp.$DEAD/"
mkdir -p "$O.tmp.$DEAD" && cp "$O/detect.h5" "$O.tmp.$DEAD/"
expect_rc 0 "detect after a killed run" det --out "$O"
check "its stale OUT.tmp.PID is removed" test ! -e "$O.tmp.$DEAD"
check "a live run's temp dir is left alone" sh -c "mkdir '$O.tmp.$$' && \
  '$NS_BIN' detect --store '$S' --night 2026-11-04 --reference '$T/ref.h5' --quiet --out '$O' && \
  test -d '$O.tmp.$$' && rmdir '$O.tmp.$$'"
echo junk > "$T/ref.h5.tmp.$DEAD"
expect_rc 0 "reference build after a killed run" \
  "$NS_BIN" reference build --store "$S" --nights 2026-11-01..2026-11-03 --out "$T/ref.h5"
check "its stale REF.h5.tmp.PID is removed" test ! -e "$T/ref.h5.tmp.$DEAD"
check "history skips temp names" sh -c "! grep -q '2026-11-03.tmp' '$O/report.html' '$O/summary.json'"
check "the store still did not change by a byte" test "$before" = "$(store_hashes "$S")"
finish
