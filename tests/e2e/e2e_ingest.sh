#!/usr/bin/env bash
# End to end: a multi-night scenario in every clip format through the real
# binary; re-ingest adds nothing; info, verify; the store read back with h5py
# and compared with an independent decode (PIL, full resolution, box filter).
source "$(dirname "$0")/lib.sh"

data=$T/data
store=$T/store
"$NS_GEN" glove --out "$data" --nights 3 --cameras 2 --clips 2 --frames 12 --seed 7 >/dev/null
n_clips=$(find "$data" -type f \( -name '*.tar*' -o -name '*.zip' -o -name '*.mjpg' -o -name '*.avi' \) | wc -l)
check "generator wrote 12 clips in all formats" test "$n_clips" -eq 12

for night in "$data"/20*; do
  expect_rc 0 "ingest night $(basename "$night")" \
    "$NS_BIN" ingest --store "$store" --night "$(basename "$night")" --manifest "$data/manifest.csv" \
    --summary "$T/sum-$(basename "$night").json" --quiet "$night"
done

$PY - "$T" "$data" <<'PY' && ok "summaries count every clip once" || not_ok "summaries count every clip once"
import json, glob, sys
t, data = sys.argv[1], sys.argv[2]
tot = {"ingested": 0, "stored": 0}
for f in sorted(glob.glob(t + "/sum-*.json")):
    s = json.load(open(f))
    assert s["ns_format"] == "nightshift-ingest-summary" and s["status"] == "ok", s
    tot["ingested"] += s["clips"]["ingested"]
    tot["stored"] += s["frames"]["stored"]
    assert s["frames"]["failed"] == 0 and s["problems"] == [], s
assert tot["ingested"] == 12, tot
assert tot["stored"] == 12 * 12, tot
PY

before=$(shard_hashes "$store")
out=$("$NS_BIN" ingest --store "$store" --manifest "$data/manifest.csv" --summary "$T/again.json" "$data")
check "re-ingest of everything adds nothing" \
  $PY -c "import json,sys; s=json.load(open('$T/again.json')); sys.exit(not (s['clips']['duplicate']==12 and s['clips']['ingested']==0 and s['shards_committed']==0))"
check "re-ingest leaves shards byte-identical" test "$before" = "$(shard_hashes "$store")"

"$NS_BIN" info --store "$store" --json > "$T/info.json"
check "info --json counts" $PY -c "
import json; i = json.load(open('$T/info.json'))
assert i['nights'] == 3 and i['cameras'] == 2 and i['clips'] == 12 and i['frames'] == 144, i
assert i['frame_size'] == 224 and i['bytes_on_disk'] > 144 * 224 * 224 * 3, i
assert [n['night'] for n in i['per_night']] == sorted(n['night'] for n in i['per_night'])
"
check "info prints a summary" sh -c "'$NS_BIN' info --store '$store' | grep -q 'clips       12'"
expect_rc 0 "verify passes" "$NS_BIN" verify --store "$store"

# Read the store as a user would (h5py, from another directory) and compare
# every stored frame of the archive clips with PIL's own decode + box resize.
check "h5py view matches an independent decode" $PY - "$store" "$data" <<'PY'
import h5py, io, os, sys, tarfile, zipfile
import numpy as np
from PIL import Image
store, data = sys.argv[1], sys.argv[2]
os.chdir("/")
with h5py.File(os.path.join(store, "view.h5"), "r") as v:
    assert v.attrs["ns_format"] in (b"nightshift-view", "nightshift-view")
    frames = v["frames"]
    S = frames.shape[1]
    assert frames.shape[1:] == (S, S, 3) and frames.dtype == np.uint8
    clips = v["clips"][:]
    fclip = v["frame/clip"][:]
    members = v["frame/member"][:]
    worst, checked = 0.0, 0
    for ci, c in enumerate(clips):
        src = c["source"].decode()
        rows = np.nonzero(fclip == ci)[0]
        assert len(rows) == c["frames_stored"], (src, len(rows))
        if src.endswith(".zip"):
            z = zipfile.ZipFile(src); get = lambda m: z.read(m)
        elif ".tar" in src and not src.endswith(".zst"):  # Python 3.11's tarfile has no zstd
            t = tarfile.open(src); get = lambda m: t.extractfile(m).read()
        else:
            continue
        for r in rows:
            m = members[r].decode()
            im = Image.open(io.BytesIO(get(m))).convert("RGB").resize((S, S), Image.BOX)
            d = np.abs(np.asarray(im, np.int16) - frames[r].astype(np.int16)).mean()
            worst = max(worst, d); checked += 1
    # TurboJPEG decodes at a reduced DCT scale before the area resize; PIL
    # decodes at full size.  Both are area averages of the same picture.
    assert checked >= 48 and worst < 3.0, (checked, worst)
    print("frames compared", checked, "worst mean abs diff", round(worst, 3))
PY

check "h5py reads per-frame props and clip table" $PY - "$store" <<'PY'
import h5py, sys, numpy as np
with h5py.File(sys.argv[1] + "/view.h5", "r") as v:
    p = v["frame/props"][:]
    names = [n.decode() if isinstance(n, bytes) else n for n in v["frame/props"].attrs["names"]]
    assert p.shape == (144, len(names)) and "mean_luma" in names, (p.shape, names)
    luma = p[:, names.index("mean_luma")]
    assert 10 < luma.mean() < 245 and np.isfinite(p).all()
    c = v["clips"][:]
    assert len(c) == 12 and set(x.decode() for x in c["camera"]) == {"cam01", "cam02"}, c["camera"]
    assert all(len(x) == 64 for x in c["sha256"])
    ts = v["frame/timestamp"][:]
    assert np.isfinite(ts).all(), "manifest gives start times and fps"
PY

# The shard checksum, recomputed as docs/store.md tells users to.
check "shard checksums match docs/store.md's recipe" \
  env PYTHONPATH="$NS_SRC/tests/e2e" $PY - "$store" <<'PY'
import h5py, sys
from shard_checksum import shard_checksum
store = sys.argv[1]
with h5py.File(store + "/catalog.h5", "r") as c:
    assert c.attrs["ns_format_version"] == 2
    for row in c["shards"][:]:
        got = row["checksum"].decode()
        assert got.startswith("xxh3-128-tree:"), got
        assert shard_checksum(store + "/" + row["path"].decode(), "xxh3-128-tree") == got, row["path"]
PY

expect_rc 2 "ingest without inputs is a usage error" "$NS_BIN" ingest --store "$store"
expect_rc 2 "unknown option is a usage error" "$NS_BIN" ingest --store "$store" --bogus x
expect_rc 2 "bad night is a usage error" "$NS_BIN" ingest --store "$store" --night 2026-02-30 "$data"
expect_rc 1 "info on a missing store fails" "$NS_BIN" info --store "$T/nothing"
expect_rc 0 "--version" "$NS_BIN" --version
expect_rc 0 "ingest --help" "$NS_BIN" ingest --help
finish
