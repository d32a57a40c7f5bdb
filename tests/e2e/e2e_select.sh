#!/usr/bin/env bash
# End to end: detect -> select -> export -> a simulated labeler -> labels
# import -> select again -> dataset build -> dataset info, on the glove
# scenario with black gloves on one camera of eight on the last night.
#  - a 5% budget holds >= 3x the novel-frame share of a random pick (truth
#    from the generator's labels.csv), every novel condition is covered, no
#    two picks of a clip closer than the minimum gap, same seed same file;
#  - the tar opens with tar; tasks.csv, Label Studio JSON and CVAT XML parse
#    and name every image in it; the images are the clips' own JPEG bytes;
#  - the filled tasks.csv imports; labelled frames are never picked again;
#  - hostile source names stay data: formula-safe cells, generated names.
source "$(dirname "$0")/lib.sh"

G="$T/glove" ST="$T/store"
"$NS_GEN" glove --out "$G" --nights 6 --cameras 8 --clips 6 --frames 10 \
  --width 160 --height 120 --seed 5 --shift glove:6:cam03 >/dev/null
for night in "$G"/20*; do
  "$NS_BIN" ingest --store "$ST" --night "$(basename "$night")" --manifest "$G/manifest.csv" \
    --quiet "$night" >/dev/null
done
"$NS_BIN" embed --store "$ST" --device cpu --quiet >/dev/null
"$NS_BIN" reference build --store "$ST" --nights 2026-11-01..2026-11-05 --out "$T/ref.h5" >/dev/null
"$NS_BIN" detect --store "$ST" --night 2026-11-06 --reference "$T/ref.h5" --out "$T/det" >/dev/null || true

expect_rc 2 "select without --budget is a usage error" "$NS_BIN" select --store "$ST" \
  --detect "$T/det" --out "$T/x.csv"
expect_rc 1 "select with a missing detect output fails" sh -c "'$NS_BIN' select --store '$ST' \
  --detect '$T/nosuch' --budget 5 --out '$T/x.csv' 2> '$T/nosuch.err'"
check "the message names it" grep -q "nosuch" "$T/nosuch.err"
check "no selection written" test ! -e "$T/x.csv"
# 5% of tonight's 480 frames
expect_rc 0 "select a 5% budget" "$NS_BIN" select --store "$ST" --detect "$T/det" --budget 24 \
  --min-gap 3 --seed 7 --out "$T/sel.csv"
expect_rc 0 "the same seed again" "$NS_BIN" select --store "$ST" --detect "$T/det" --budget 24 \
  --min-gap 3 --seed 7 --out "$T/sel2.csv" --quiet
check "deterministic for a seed" cmp -s "$T/sel.csv" "$T/sel2.csv"
check "selection: novel share, conditions, gaps" $PY - "$T/sel.csv" "$G/labels.csv" "$T/det/detect.h5" "$G" <<'PY'
import csv, sys, collections, h5py, os
sel = list(csv.DictReader(open(sys.argv[1])))
truth = {(r["path"], int(r["frame"])): r for r in csv.DictReader(open(sys.argv[2]))}
def black(r):
    return truth[(os.path.relpath(r["source"], sys.argv[4]), int(r["frame"]))]["glove"] == "black"
tonight = [t for t in truth.values() if t["night"] == "2026-11-06"]
base = sum(t["glove"] == "black" for t in tonight) / len(tonight)
share = sum(black(r) for r in sel) / len(sel)
print(f"novel share {share:.3f} vs random {base:.3f}: {share / base:.1f}x")
assert len(sel) == 24 and share >= 3 * base, (share, base)
f = h5py.File(sys.argv[3], "r")
novel = {int(c["id"]) for c in f["conditions"][:] if c["novel"]}
got = {int(r["condition"]) for r in sel if r["reason"].startswith("novel_c")}
assert novel and novel <= got, (novel, got)
for r in sel:
    if r["reason"].startswith("novel_c"):
        assert r["reason"] == "novel_c" + r["condition"] and r["novel_condition"] == "1"
    assert r["reason"].startswith("novel_c") or r["reason"] in ("coverage", "camera_balance", "uncertain")
by = collections.defaultdict(list)
for r in sel:
    by[r["clip"]].append(int(r["frame"]))
for c, fr in by.items():
    fr.sort()
    assert all(b - a >= 3 for a, b in zip(fr, fr[1:])), (c, fr)
assert len({(r["clip"], r["frame"]) for r in sel}) == len(sel)
PY

# ---- export -----------------------------------------------------------------
expect_rc 0 "export" "$NS_BIN" export --store "$ST" --selection "$T/sel.csv" --out "$T/tasks.tar"
check "the tar opens with tar" sh -c "tar tf '$T/tasks.tar' > '$T/list.txt'"
check "no temp file left" sh -c "! ls '$T' | grep -q 'tasks.tar.tmp'"
check "package: tasks.csv, Label Studio JSON, CVAT XML name every image" $PY - "$T/tasks.tar" \
  "$T/sel.csv" "$G" <<'PY'
import csv, io, json, sys, tarfile, hashlib, xml.etree.ElementTree as ET
t = tarfile.open(sys.argv[1])
names = t.getnames()
imgs = [n for n in names if n.startswith("images/")]
assert {"README.txt", "tasks.csv", "labelstudio.json", "cvat.xml"} <= set(names), names
assert len(imgs) == 24 and all(n.endswith(".jpg") and "/" not in n[7:] for n in imgs), imgs
tasks = list(csv.DictReader(io.StringIO(t.extractfile("tasks.csv").read().decode())))
ls = json.loads(t.extractfile("labelstudio.json").read())
root = ET.fromstring(t.extractfile("cvat.xml").read())
assert root.find("version").text == "1.1"
assert sorted(r["file"] for r in tasks) == sorted(imgs)
assert sorted(x["data"]["image"] for x in ls) == sorted(imgs)
assert sorted(i.get("name") for i in root.iter("image")) == sorted(imgs)
sel = list(csv.DictReader(open(sys.argv[2])))
for r, s, x in zip(tasks, sel, ls):
    assert r["clip"] == s["clip"] == x["data"]["clip"] and int(r["frame"]) == int(s["frame"]) == x["data"]["frame"]
    assert r["label"] == "" and r["reason"] == s["reason"]
    assert r["jpeg"] == "original"
    data = t.extractfile(r["file"]).read()
    assert data[:2] == b"\xff\xd8"
# the original bytes: a tar clip's member is byte-identical
import os
for r, s in zip(tasks, sel):
    src = s["source"]
    if src.endswith(".tar"):
        with tarfile.open(src) as c:
            assert c.extractfile(s["member"]).read() == t.extractfile(r["file"]).read()
        break
PY

# ---- a labeler answers from the generator's truth ------------------------------
$PY - "$T/tasks.tar" "$T/sel.csv" "$G/labels.csv" "$T/filled.csv" "$G" <<'PY'
import csv, io, os, sys, tarfile
t = tarfile.open(sys.argv[1])
tasks = list(csv.DictReader(io.StringIO(t.extractfile("tasks.csv").read().decode())))
src = {r["clip"]: os.path.relpath(r["source"], sys.argv[5]) for r in csv.DictReader(open(sys.argv[2]))}
truth = {(r["path"], r["frame"]): r["label"] for r in csv.DictReader(open(sys.argv[3]))}
with open(sys.argv[4], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(tasks[0].keys()))
    w.writeheader()
    for r in tasks:
        r["label"] = truth[(src[r["clip"]], r["frame"])]
        w.writerow(r)
PY
expect_rc 0 "the filled tasks.csv imports" sh -c "'$NS_BIN' labels import --store '$ST' --set round1 \
  '$T/filled.csv' | tee '$T/import.txt' | grep -q '24 imported'"
expect_rc 0 "select after labelling" "$NS_BIN" select --store "$ST" --detect "$T/det" --budget 24 \
  --seed 7 --out "$T/sel3.csv" --quiet
check "labelled frames are never picked again" $PY - "$T/sel.csv" "$T/sel3.csv" <<'PY'
import csv, sys
a = {(r["clip"], r["frame"]) for r in csv.DictReader(open(sys.argv[1]))}
b = [(r["clip"], r["frame"]) for r in csv.DictReader(open(sys.argv[2]))]
assert len(b) == 24 and not a & set(b), a & set(b)
PY
expect_rc 0 "dataset build from the returned labels" sh -c "'$NS_BIN' dataset build --store '$ST' \
  --nights 2026-11-06 --split-by none --out '$T/ds.h5' > '$T/build.txt'"
expect_rc 0 "dataset info" sh -c "'$NS_BIN' dataset info '$T/ds.h5' | tee '$T/dsinfo.txt' | grep -q 24"

# ---- hostile selection rows ----------------------------------------------------
{ head -1 "$T/sel.csv"; sed -n 2p "$T/sel.csv"; echo "nosuchclip,0"; echo "=cmd|x,1";
  sed -n 2p "$T/sel.csv" | sed 's/,\([0-9]*\),cam/,99999,cam/'; } > "$T/bad.csv"
expect_rc 1 "export leaves bad rows out, exports the rest" sh -c "'$NS_BIN' export --store '$ST' \
  --selection '$T/bad.csv' --out '$T/bad.tar' 2> '$T/bad.err' > '$T/bad.out'"
check "the good row is exported" grep -q "export: 1 frames" "$T/bad.out"
check "bad rows are named by line" grep -q "bad.csv' line 3: unknown clip" "$T/bad.err"
check "the partial package is written" test -s "$T/bad.tar"
finish
