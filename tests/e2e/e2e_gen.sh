#!/usr/bin/env bash
# e2e_gen.sh -- end-to-end checks of nightshift-gen (the demo/test data generator).
#
# Environment: NS_GEN (path of nightshift-gen), NS_TEST_TMP (scratch directory).
# Generates a small glove scenario twice with different thread counts and
# compares every byte, cross-checks labels.csv, manifest.csv and truth.json,
# checks each clip's container by its magic bytes and structure, opens frames
# with PIL, and checks the bad-input corpus against its expect.csv.
# Prints "N passed, M failed"; exit 0 only when nothing failed.
set -u

GEN=${NS_GEN:-}
PY=/usr/bin/python3
if [[ -z "$GEN" || ! -x "$GEN" ]]; then
    echo "e2e_gen: NS_GEN is not an executable: '$GEN'" >&2
    exit 1
fi
if ! "$PY" -c 'import PIL' 2>/dev/null; then
    echo "e2e_gen: $PY without PIL; skipping" >&2
    exit 77
fi
BASE=${NS_TEST_TMP:-/tmp}
mkdir -p "$BASE"
T=$(mktemp -d "$BASE/e2e_gen.XXXXXX")
trap 'rm -rf "$T"' EXIT

passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$T/last.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        sed 's/^/     /' "$T/last.log" | head -20
    fi
}

exit_code_is() { # exit_code_is WANT COMMAND...
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    local got=$?
    [[ $got -eq $want ]] || { echo "exit code $got, want $want: $*"; return 1; }
}

hash_tree() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum); }

# ---- CLI ----------------------------------------------------------------------
check "help exits 0" exit_code_is 0 "$GEN" --help
check "glove --help shows defaults" bash -c "'$GEN' glove --help | grep -q 'default 2026-11-01'"
check "no command is a usage error" exit_code_is 2 "$GEN"
check "unknown command is a usage error" exit_code_is 2 "$GEN" frobnicate
check "glove without --out is a usage error" exit_code_is 2 "$GEN" glove
check "bad integer is a usage error" exit_code_is 2 "$GEN" glove --out "$T/x" --frames ten
check "bad shift is a usage error" exit_code_is 2 "$GEN" glove --out "$T/x" --shift gloves:3
check "bad format is a usage error" exit_code_is 2 "$GEN" glove --out "$T/x" --formats tar,rar
check "impossible date is a usage error" exit_code_is 2 "$GEN" glove --out "$T/x" --start 2026-02-30

# ---- glove scenario, twice -------------------------------------------------------
ARGS=(glove --nights 3 --cameras 2 --clips 4 --frames 6 --width 160 --height 120
      --shift glove:3:cam01 --shift light:2:cam02 --shift bump:3:2 --seed 7)
check "glove scenario, 1 thread" "$GEN" "${ARGS[@]}" --out "$T/a" --threads 1
check "glove scenario, 2 threads" "$GEN" "${ARGS[@]}" --out "$T/b" --threads 2
check "byte-identical across thread counts" \
    bash -c "diff <(cd '$T/a' && find . -type f | LC_ALL=C sort | xargs sha256sum) \
                  <(cd '$T/b' && find . -type f | LC_ALL=C sort | xargs sha256sum)"
check "other seed gives other frames" bash -c "
    '$GEN' ${ARGS[*]} --seed 8 --out '$T/c' --threads 2 >/dev/null &&
    ! cmp -s '$T/a/2026-11-01/cam01/cam01_2026-11-01_'*.tar '$T/c/2026-11-01/cam01/'*.tar"

check "labels, manifest and truth agree" "$PY" - "$T/a" <<'EOF'
import csv, json, os, re, sys, collections
d = sys.argv[1]
truth = json.load(open(os.path.join(d, "truth.json")))
assert truth["format"] == "nightshift-gen-truth" and truth["version"] == 1
p = truth["params"]
n_clips = p["nights"] * p["cameras"] * p["clips"]
man = list(csv.DictReader(open(os.path.join(d, "manifest.csv"))))
assert list(man[0].keys()) == ["path", "camera", "start_time", "fps", "night"], man[0].keys()
assert len(man) == n_clips == truth["totals"]["clips"], (len(man), n_clips)
for r in man:
    assert os.path.isfile(os.path.join(d, r["path"])), r["path"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["start_time"]), r
    night, cam, name = r["path"].split("/")
    assert night == r["night"] and cam == r["camera"] and name.startswith(f"{cam}_{night}_"), r
    hh = int(r["start_time"][11:13])
    assert hh >= 18 or hh < 6, r  # night shift
    assert float(r["fps"]) == p["fps"]
lab = list(csv.DictReader(open(os.path.join(d, "labels.csv"))))
assert list(lab[0].keys()) == ["path", "frame", "member", "label", "glove", "camera", "night", "object"]
assert {r["object"] for r in lab} == {"none"}  # no object shift in this run
assert len(lab) == n_clips * p["frames"] == truth["totals"]["frames"], len(lab)
per_clip = collections.Counter(r["path"] for r in lab)
assert set(per_clip) == {r["path"] for r in man} and set(per_clip.values()) == {p["frames"]}
counts = collections.defaultdict(collections.Counter)
for r in lab:
    assert r["label"] in truth["labels"], r
    stream = r["path"].endswith((".mjpg", ".avi"))
    assert r["member"] == (f"#{r['frame']}" if stream else f"frame_{r['frame']}.jpg"), r
    k = (r["night"], r["camera"])
    counts[k][r["glove"]] += 1
    counts[k][r["label"]] += 1
black_seen = set()
for n in truth["nights"]:
    for c in n["cameras"]:
        k = (n["night"], c["camera"])
        for g in ("gray", "black"):
            assert c["glove"][g] == counts[k][g], (k, g, c["glove"], counts[k])
        for l, v in c["labels"].items():
            assert v == counts[k][l], (k, l)
        if c["glove"]["black"]:
            black_seen.add(k)
assert black_seen == {("2026-11-03", "cam01")}, black_seen
kinds = {s["kind"]: s for s in truth["shifts"]}
assert kinds["glove"]["cameras"] == ["cam01"] and kinds["glove"]["from_night"] == "2026-11-03"
assert kinds["light"]["nights"] == ["2026-11-02", "2026-11-03"] and kinds["light"]["cameras"] == ["cam02"]
assert sum(truth["totals"]["labels"].values()) == len(lab)
used = {l for l, v in truth["totals"]["labels"].items() if v}
assert len(used) >= 4, used  # the step plan visits most steps even in short clips
EOF

check "every clip's container by magic bytes and structure" "$PY" - "$T/a" <<'EOF'
import csv, os, shutil, struct, subprocess, sys, tarfile, zipfile, io
d = sys.argv[1]
magic = {".tar.gz": b"\x1f\x8b", ".tar.xz": b"\xfd7zXZ\x00", ".tar.zst": b"\x28\xb5\x2f\xfd",
         ".tar.bz2": b"BZh", ".zip": b"PK\x03\x04", ".mjpg": b"\xff\xd8\xff"}
frames = 6
seen = set()
avi_idx1 = []
odd_total = 0
for r in csv.DictReader(open(os.path.join(d, "manifest.csv"))):
    path = os.path.join(d, r["path"])
    data = open(path, "rb").read()
    ext = next((e for e in (".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2", ".tar", ".zip",
                            ".mjpg", ".avi") if path.endswith(e)))
    seen.add(ext)
    if ext == ".tar":
        assert data[257:262] == b"ustar", path
    elif ext == ".avi":
        assert data[:4] == b"RIFF" and data[8:12] == b"AVI ", path
        assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size"
        i = data.index(b"strh")
        assert data[i + 8:i + 12] == b"vids" and data[i + 12:i + 16] == b"MJPG", path
        scale, rate = struct.unpack("<II", data[i + 28:i + 36])
        assert rate / scale == 10.0, (scale, rate)
        j = data.index(b"strf")
        assert data[j + 24:j + 28] == b"MJPG", path
        m = data.index(b"movi")
        pos, n, odd = m + 4, 0, 0
        end = m + struct.unpack("<I", data[m - 4:m])[0]  # LIST size counts from "movi"
        while pos < end:
            cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
            assert cid == b"00dc" and data[pos + 8:pos + 10] == b"\xff\xd8", (path, pos)
            odd += size & 1
            pos += 8 + size + (size & 1)
            n += 1
        assert n == frames and pos == end, (n, pos, end)
        avi_idx1.append(data[end:end + 4] == b"idx1")
        odd_total += odd
        if avi_idx1[-1]:  # entries point at their chunks, offsets from the "movi" fourcc
            k = end + 8
            for e in range(n):
                cid, flags, off, size = struct.unpack("<4sIII", data[k + 16 * e:k + 16 * e + 16])
                assert cid == b"00dc" and data[m + off:m + off + 4] == b"00dc", (path, e)
                assert struct.unpack("<I", data[m + off + 4:m + off + 8])[0] == size
    else:
        assert data.startswith(magic[ext]), (path, data[:8])
    if ext == ".tar.zst":  # Python's tarfile has no zstd; use the zstd tool when present
        if shutil.which("zstd"):
            raw = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
            names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
            assert names == [f"frame_{i}.jpg" for i in range(frames)], names
    elif ext.startswith(".tar"):
        names = tarfile.open(path).getnames()
        assert names == [f"frame_{i}.jpg" for i in range(frames)], names
    elif ext == ".zip":
        assert zipfile.ZipFile(path).namelist() == [f"frame_{i}.jpg" for i in range(frames)]
    elif ext == ".mjpg":
        assert data.count(b"\xff\xd8\xff") == frames and data.endswith(b"\xff\xd9")
assert len(seen) == 8, seen
assert True in avi_idx1 and False in avi_idx1, avi_idx1  # readers see both kinds
assert odd_total > 0  # odd-sized chunks and their padding byte occur
EOF

check "PIL opens frames of every container" "$PY" - "$T/a" <<'EOF'
import csv, io, os, sys, tarfile, zipfile
from PIL import Image
d = sys.argv[1]
opened = 0
for r in csv.DictReader(open(os.path.join(d, "manifest.csv"))):
    path = os.path.join(d, r["path"])
    if path.endswith(".zip"):
        blobs = [zipfile.ZipFile(path).read("frame_0.jpg")]
    elif path.endswith(".tar.zst"):
        continue  # no zstd in Python's tarfile
    elif ".tar" in path:
        t = tarfile.open(path)
        blobs = [t.extractfile(m).read() for m in t.getmembers()[:2]]
    else:
        data = open(path, "rb").read()
        s = data.index(b"\xff\xd8\xff")
        blobs = [data[s:data.index(b"\xff\xd9", s) + 2]]
    for b in blobs:
        im = Image.open(io.BytesIO(b))
        im.load()
        assert im.size == (160, 120) and im.mode == "RGB", (path, im.size, im.mode)
        opened += 1
assert opened >= 20, opened
EOF

check "'file' recognises JPEG members" bash -c "
    command -v file >/dev/null || exit 0
    cd '$T' && mkdir -p x && tar -xf \$(ls a/2026-11-01/cam01/*.tar | head -1) -C x frame_0.jpg &&
    file x/frame_0.jpg | grep -q 'JPEG image data'"

check "--shift none: no black gloves" bash -c "
    '$GEN' glove --out '$T/n' --nights 2 --cameras 1 --clips 1 --frames 3 --width 64 --height 48 \
        --shift none >/dev/null && ! grep -q ',black,' '$T/n/labels.csv' &&
    grep -q '\"shifts\": \[$' '$T/n/truth.json'"

check "--shift object:2:cam02:1: the drill in the first cam02 clip of night 2 on" "$PY" - "$GEN" "$T/o" <<'EOF'
import collections, csv, json, subprocess, sys
gen, d = sys.argv[1:3]
subprocess.run([gen, "glove", "--out", d, "--nights", "3", "--cameras", "2", "--clips", "2",
                "--frames", "3", "--width", "96", "--height", "72", "--formats", "tar",
                "--shift", "object:2:cam02:1"], check=True, stdout=subprocess.DEVNULL)
lab = list(csv.DictReader(open(f"{d}/labels.csv")))
clips = collections.defaultdict(set)
for r in lab:
    clips[r["object"]].add((r["night"], r["camera"], r["path"]))
assert {(n, c) for n, c, _ in clips["drill"]} == {("2026-11-02", "cam02"), ("2026-11-03", "cam02")}, clips["drill"]
assert len(clips["drill"]) == 2, clips["drill"]
t = json.load(open(f"{d}/truth.json"))
got = {(n["night"], c["camera"]): c["object_clips"] for n in t["nights"] for c in n["cameras"]}
assert got[("2026-11-02", "cam02")] == 1 and got[("2026-11-01", "cam02")] == 0, got
EOF
check "--shift object:2:cam02:0 is a usage error" exit_code_is 2 "$GEN" glove --out "$T/o0" --shift object:2:cam02:0

# ---- bad-input corpus -------------------------------------------------------------
check "bad corpus" "$GEN" bad --out "$T/bad1"
check "bad corpus is deterministic" bash -c "
    '$GEN' bad --out '$T/bad2' >/dev/null &&
    diff <(cd '$T/bad1' && find . -type f | LC_ALL=C sort | xargs sha256sum) \
         <(cd '$T/bad2' && find . -type f | LC_ALL=C sort | xargs sha256sum)"
check "bad corpus has every file of expect.csv" "$PY" - "$T/bad1" <<'EOF'
import csv, os, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "expect.csv"))))
assert list(rows[0].keys()) == ["file", "outcome", "frames_stored", "frames_damaged",
                                "frames_failed", "qc", "message"]
want = {"good_reference.tar", "truncated_jpeg.tar", "corrupt_jpeg.tar", "nonjpeg_member.tar",
        "huge_header.tar", "truncated_archive.tar.gz", "corrupt_zip.zip", "traversal.tar",
        "symlink.tar", "bomb.tar.gz", "many_entries.tar", "avi_chunk_past_eof.avi",
        "avi_no_frames.avi", "avi_h264.avi", "random_bytes.bin", "empty.mjpg", "gray.mjpg",
        "progressive.tar", "cmyk.tar", "frozen.tar", "black.tar", "res_change.tar", "gaps.tar"}
assert {r["file"] for r in rows} == want, want ^ {r["file"] for r in rows}
qc_names = {"frozen", "black", "white", "res_change", "gaps", "decode_warn"}
for r in rows:
    assert os.path.isfile(os.path.join(d, r["file"])), r["file"]
    assert r["outcome"] in ("ingested", "quarantined", "unsupported", "unrecognised"), r
    assert all(q in qc_names for q in r["qc"].split("|") if q), r
    assert r["message"] == r["message"].lower(), r
    for k in ("frames_stored", "frames_damaged", "frames_failed"):
        assert r[k].isdigit(), r
EOF
check "bad corpus files are what they claim" "$PY" - "$T/bad1" <<'EOF'
import io, os, sys, tarfile
from PIL import Image
Image.MAX_IMAGE_PIXELS = None  # huge_header.tar claims 60000 x 60000 on purpose
d = sys.argv[1]
f = lambda n: os.path.join(d, n)
t = tarfile.open(f("traversal.tar"))
assert "../../etc/evil_1.jpg" in t.getnames() and "/abs/frame_2.jpg" in t.getnames()
kinds = [m.type for m in tarfile.open(f("symlink.tar")).getmembers()]
assert tarfile.SYMTYPE in kinds and tarfile.DIRTYPE in kinds
m = tarfile.open(f("bomb.tar.gz")).getmember("frame_2.jpg")
assert m.size == 200 << 20 and os.path.getsize(f("bomb.tar.gz")) < 4 << 20
assert len(tarfile.open(f("many_entries.tar")).getnames()) == 3000
im = Image.open(io.BytesIO(tarfile.open(f("huge_header.tar")).extractfile("frame_4.jpg").read()))
assert im.size == (60000, 60000), im.size
im = Image.open(io.BytesIO(tarfile.open(f("cmyk.tar")).extractfile("frame_0.jpg").read()))
assert im.mode == "CMYK", im.mode
im = Image.open(io.BytesIO(tarfile.open(f("progressive.tar")).extractfile("frame_0.jpg").read()))
assert im.info.get("progressive") or im.info.get("progression"), im.info
im = Image.open(io.BytesIO(open(f("gray.mjpg"), "rb").read()))
assert im.mode == "L", im.mode
sizes = {Image.open(io.BytesIO(t.extractfile(m).read())).size
         for t in [tarfile.open(f("res_change.tar"))] for m in t.getmembers()}
assert sizes == {(160, 120), (320, 240)}, sizes
assert tarfile.open(f("gaps.tar")).getnames()[4] == "frame_9.jpg"
fr = tarfile.open(f("frozen.tar"))
assert len({fr.extractfile(m).read() for m in fr.getmembers()}) == 1
data = open(f("avi_h264.avi"), "rb").read()
assert data.count(b"H264") == 2
data = open(f("avi_chunk_past_eof.avi"), "rb").read()
last = data.rindex(b"00dc")
assert last + 8 + int.from_bytes(data[last + 4:last + 8], "little") > len(data)
assert os.path.getsize(f("empty.mjpg")) == 0
try:
    tarfile.open(f("truncated_archive.tar.gz")).getnames()
    raise AssertionError("truncated archive reads completely")
except (tarfile.TarError, EOFError, OSError):
    pass
EOF

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
