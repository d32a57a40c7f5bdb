#!/usr/bin/env bash
# End to end: labels and datasets on the generated glove scenario.
#  - the generator's labels.csv imports as it is; labels info counts match it;
#  - a hostile CSV: line-numbered messages, good rows kept, exit 1; --strict
#    leaves the store's files byte-identical; conflicts by rule;
#  - a Label Studio JSON export imports;
#  - dataset build + info; h5py reads the file: shapes, no clip in two
#    splits, the dataset id recomputed from the bytes;
#  - a golden set (--split-by none) and the overlap check; --max-leak.
source "$(dirname "$0")/lib.sh"

G="$T/glove" ST="$T/store"
"$NS_GEN" glove --out "$G" --nights 4 --cameras 3 --clips 4 --frames 4 \
  --width 96 --height 72 --seed 3 >/dev/null
for night in "$G"/20*; do
  "$NS_BIN" ingest --store "$ST" --night "$(basename "$night")" \
    --manifest "$G/manifest.csv" --quiet "$night" >/dev/null
done
"$NS_BIN" embed --store "$ST" --device cpu --quiet >/dev/null

labels_state() { (cd "$ST" && find labels -type f 2>/dev/null | sort | xargs -r sha256sum); }

# ---- import the generator's labels as they are ---------------------------------
expect_rc 0 "import labels.csv as it is" sh -c "'$NS_BIN' labels import --store '$ST' --set glove \
  '$G/labels.csv' > '$T/import.txt'"
cat "$T/import.txt"
check "every row imported" grep -q "192 rows from 1 file: 192 imported as glove@1" "$T/import.txt"
expect_rc 0 "the same file again changes nothing" sh -c "'$NS_BIN' labels import --store '$ST' \
  --set glove '$G/labels.csv' | grep -q '0 imported, 192 unchanged'"
check "no second set was written" test "$(ls "$ST/labels" | wc -l)" -eq 1
"$NS_BIN" labels info --store "$ST" > "$T/info.txt"
cat "$T/info.txt"
check "labels info counts match labels.csv" $PY - "$G/labels.csv" "$T/info.txt" <<'PY'
import collections, csv, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
want = collections.Counter(r["label"] for r in rows)
text = open(sys.argv[2]).read()
got = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)  (\S+)$", text, re.M)}
cells = collections.Counter((r["night"], r["camera"]) for r in rows)
for (night, cam), n in cells.items():
    assert re.search(rf"{night}  {cam}\s+{n}\s+4$", text, re.M), (night, cam, n)
assert got == dict(want), (got, want)
PY

# ---- hostile input ------------------------------------------------------------
SHA=$($PY -c "import h5py,sys; f=h5py.File(sys.argv[1]+'/catalog.h5','r'); print(f['clips']['sha256'][0].decode())" "$ST")
$PY - "$T/hostile.csv" "$SHA" <<'PY'
import sys
path, sha = sys.argv[1], sys.argv[2]
rows = [
    b"clip,frame,label",
    f"{sha},0,=HYPERLINK(\"http://x\")".encode(),          # 2 ok (formula stored as data)
    f"{sha},1,<img src=x onerror=alert(1)>".encode(),       # 3 ok (HTML stored as data)
    f"{sha},2".encode(),                                     # 4 wrong field count
    b"nosuchclip.tar,0,idle",                                # 5 unknown clip
    f"{sha},3,".encode(),                                    # 6 empty label
    f"{sha},2,".encode() + b"x" * 5000,                      # 7 label too long
    f"{sha},3,".encode() + b"bad\xff",                       # 8 invalid UTF-8
    f"{sha},0,nul".encode() + b"\x00",                       # 9 NUL
    f"{sha},1,\"never closed".encode(),                      # 10 quote
]
open(path, "wb").write(b"\xef\xbb\xbf" + b"\r\n".join(rows) + b"\r\n")
PY
before=$(labels_state)
expect_rc 1 "--strict refuses the hostile file" sh -c "'$NS_BIN' labels import --store '$ST' \
  --set hostile --strict --on-conflict replace '$T/hostile.csv' 2> '$T/strict.err'"
check "--strict: the store's label files are unchanged" test "$(labels_state)" = "$before"
check "--strict names the file" grep -q "hostile.csv': 7 bad rows; --strict" "$T/strict.err"
expect_rc 1 "the hostile file: bad rows refused, exit 1" sh -c "'$NS_BIN' labels import \
  --store '$ST' --set hostile --on-conflict replace '$T/hostile.csv' > '$T/hostile.out' 2> '$T/hostile.err'"
cat "$T/hostile.err"
for want in "line 4: 2 fields, the header has 3" "line 5: unknown clip 'nosuchclip.tar'" \
    "line 6: label is empty" "line 7: label of 5000 bytes, at most 255" \
    "line 8: label is not valid UTF-8" "line 9: holds 1 NUL byte" \
    "line 10: unterminated quoted field"; do
  check "message: $want" grep -qF "$want" "$T/hostile.err"
done
check "the good rows were imported (replacing)" grep -q "2 imported as hostile@2" "$T/hostile.out"
check "the earlier set is untouched" test "$(labels_state | head -1)" = "$(echo "$before" | head -1)"
"$NS_BIN" labels info --store "$ST" > "$T/info2.txt"
check "labels info shows HTML and formulas as inert text" \
  grep -qF '=HYPERLINK("http://x")' "$T/info2.txt"
check "labels info escapes nothing into the terminal" sh -c "! grep -qP '[\x00-\x08\x1b]' '$T/info2.txt'"

# Conflict: the default rule leaves the frame out and fails.
"$PY" - "$G/labels.csv" "$T/relabel.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))[:3]
for r in rows: r["label"] = "relabelled"
w = csv.DictWriter(open(sys.argv[2], "w", newline=""), fieldnames=list(rows[0].keys()))
w.writeheader(); w.writerows(rows)
PY
expect_rc 1 "a conflicting label fails by default" sh -c "'$NS_BIN' labels import --store '$ST' \
  --set fix '$T/relabel.csv' 2> '$T/conflict.err'"
check "the conflict is reported" grep -q "line 2: frame 0 of clip .* in the store, this row says 'relabelled': left out" "$T/conflict.err"
expect_rc 0 "--on-conflict keep" "$NS_BIN" labels import --store "$ST" --set fix --on-conflict keep --quiet "$T/relabel.csv"
expect_rc 0 "--on-conflict replace" sh -c "'$NS_BIN' labels import --store '$ST' --set fix \
  --on-conflict replace '$T/relabel.csv' | grep -q '3 imported'"

# Label Studio JSON export, as select's tasks come back.
"$PY" - "$ST" "$T/ls.json" <<'PY'
import h5py, json, sys
f = h5py.File(sys.argv[1] + "/catalog.h5", "r")
shas = [s.decode() for s in f["clips"]["sha256"][:4]]
tasks = [{"id": i, "data": {"image": f"{i:05d}_x.jpg", "clip": s, "frame": 3},
          "annotations": [{"result": [{"type": "choices", "value": {"choices": ["inspect"]}}],
                           "completed_by": {"email": "l@x"}}]} for i, s in enumerate(shas)]
tasks.append({"id": 9, "data": {"clip": shas[0], "frame": 2}, "annotations": []})
json.dump(tasks, open(sys.argv[2], "w"))
PY
expect_rc 1 "Label Studio JSON imports (one task unlabelled)" sh -c "'$NS_BIN' labels import \
  --store '$ST' --set studio --on-conflict replace '$T/ls.json' > '$T/ls.out' 2> '$T/ls.err'"
check "the four labelled tasks imported (or already so)" $PY -c "
import re, sys
m = re.search(r'5 rows from 1 file: (\d+) imported as studio@\d+, (\d+) unchanged, 1 bad', open(sys.argv[1]).read())
assert m and int(m.group(1)) + int(m.group(2)) == 4" "$T/ls.out"
check "the unlabelled task is named" grep -q "task 5: no annotation" "$T/ls.err"

# ---- datasets -------------------------------------------------------------------
expect_rc 0 "dataset build" sh -c "'$NS_BIN' dataset build --store '$ST' --nights 2026-11-01..2026-11-03 \
  --out '$T/ds.h5' > '$T/build.txt'"
cat "$T/build.txt"
check "the audit is printed" grep -q "leakage audit  passed" "$T/build.txt"
expect_rc 0 "dataset info" sh -c "'$NS_BIN' dataset info '$T/ds.h5' > '$T/dsinfo.txt'"
cat "$T/dsinfo.txt"
check "info shows splits, classes, cameras" sh -c "grep -q '^    train' '$T/dsinfo.txt' && \
  grep -q 'class' '$T/dsinfo.txt' && grep -q 'cam03' '$T/dsinfo.txt'"
check "h5py reads the dataset; splits by clip; the id matches the bytes" $PY - "$T/ds.h5" <<'PY'
import hashlib, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["ns_format"] == b"nightshift-dataset" or f.attrs["ns_format"] == "nightshift-dataset"
n, d = f["embeddings"].shape
assert n == f.attrs["n_frames"] and d == f.attrs["dim"] == 512 and n == 3 * 3 * 4 * 4
lab, split = f["labels"][:], f["split"][:]
assert lab.min() >= 0 and lab.max() < len(f["classes"]) and set(split) <= {0, 1, 2}
clips = f["frames/clip"][:]
owner = {}
for c, s in zip(clips, split):
    assert owner.setdefault(c, s) == s, "a clip in two splits"
assert set(split) == {0, 1, 2}
h = hashlib.sha256()
for name in ["embeddings", "labels", "split", "classes", "frames/clip", "frames/index"]:
    h.update(np.ascontiguousarray(f[name][:]).tobytes())
aid = f.attrs["dataset_id"]
aid = aid.decode() if isinstance(aid, bytes) else aid
assert h.hexdigest() == aid, (h.hexdigest(), aid)
assert f["audit"].attrs["passed"] == 1
PY

# --frames: only the listed frames (select's CSV shape), unknown ones counted.
$PY - "$T/ds.h5" "$T/sel.csv" <<'PY'
import csv, sys, h5py
f = h5py.File(sys.argv[1], "r")
rows = list(zip(f["frames/clip"][:], f["frames/index"][:]))[::7]
with open(sys.argv[2], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["clip", "source", "member", "frame", "camera", "reason"])
    for c, i in rows:
        w.writerow([c.decode(), "x", "m", int(i), "cam", "coverage"])
    w.writerow(["0" * 64, "x", "m", 0, "cam", "coverage"])
print(len(rows))
PY
expect_rc 0 "dataset build --frames" sh -c "'$NS_BIN' dataset build --store '$ST' --nights 2026-11-01..2026-11-03 \
  --frames '$T/sel.csv' --out '$T/sel.h5' > '$T/sel.txt'"
check "--frames keeps exactly the listed frames" $PY -c "
import csv, sys, h5py
want = {(r['clip'], int(r['frame'])) for r in csv.DictReader(open(sys.argv[2]))}
f = h5py.File(sys.argv[1], 'r')
got = {(c.decode(), int(i)) for c, i in zip(f['frames/clip'][:], f['frames/index'][:])}
assert got == want - {('0' * 64, 0)}, (len(got), len(want))" "$T/sel.h5" "$T/sel.csv"
check "--frames reports the frame not in these nights" grep -q "0 listed frames without a label, 1 not in these nights" "$T/sel.txt"

# A golden set on night 4, with detect's conditions; training on nights
# 1..4 then shares its clips.
"$NS_BIN" reference build --store "$ST" --nights 2026-11-01..2026-11-03 --out "$T/ref.h5" >/dev/null
rc=0
"$NS_BIN" detect --store "$ST" --night 2026-11-04 --reference "$T/ref.h5" --out "$T/det4" \
  >/dev/null 2>&1 || rc=$?
check "detect wrote night 4's results (exit $rc)" test -s "$T/det4/detect.h5"
expect_rc 0 "golden set: --split-by none, conditions from detect" sh -c "'$NS_BIN' dataset build \
  --store '$ST' --nights 2026-11-04 --split-by none --detect '$T/det4' --out '$T/golden.h5' > '$T/golden.txt'"
check "every golden frame got its condition" grep -q "conditions     48 of 48 frames from 1 detect output" "$T/golden.txt"
check "the conditions are detect's own" $PY - "$T/golden.h5" "$T/det4/detect.h5" <<'PY'
import sys, h5py
g, d = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
shas = d["clips"]["sha256"]
want = {(shas[c], i): k for c, i, k in zip(d["frames/clip"][:], d["frames/index"][:], d["frames/condition"][:])}
got = list(zip(g["frames/clip"][:], g["frames/index"][:], g["frames/condition"][:]))
assert len(got) == 48 and all(want[(c, i)] == k for c, i, k in got)
PY
check "the golden set is all test" $PY -c "import h5py,sys; s=h5py.File(sys.argv[1],'r')['split'][:]; assert (s==2).all() and len(s)==48" "$T/golden.h5"
expect_rc 1 "training nights sharing the golden set's clips fail" sh -c "'$NS_BIN' dataset build \
  --store '$ST' --nights 2026-11-01..2026-11-04 --golden '$T/golden.h5' --out '$T/bad.h5' 2> '$T/golden.err'"
check "the overlap is named" grep -q "shares 12 clips" "$T/golden.err"
check "nothing written on the overlap" test ! -e "$T/bad.h5"
expect_rc 0 "disjoint nights pass the golden check" "$NS_BIN" dataset build --store "$ST" \
  --nights 2026-11-01..2026-11-03 --golden "$T/golden.h5" --out "$T/ds2.h5"
check "the same build gives the same dataset id" test "$($PY -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['dataset_id'])" "$T/ds.h5")" = \
  "$($PY -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['dataset_id'])" "$T/ds2.h5")"
expect_rc 1 "a loose near-duplicate threshold fails the audit" sh -c "'$NS_BIN' dataset build \
  --store '$ST' --nights 2026-11-01..2026-11-03 --dup-threshold 100 --out '$T/leaky.h5' > /dev/null 2> '$T/leak.err'"
check "nothing written on a failed audit" test ! -e "$T/leaky.h5"
check "the failure says why" grep -q "above --max-leak" "$T/leak.err"
echo "not a dataset" > "$T/junk.h5"
expect_rc 1 "dataset info on a file that is not a dataset" "$NS_BIN" dataset info "$T/junk.h5"
expect_rc 1 "dataset build without labels in those nights" "$NS_BIN" dataset build --store "$ST" \
  --nights 2026-11-01 --labels nosuchset --out "$T/none.h5"
finish
