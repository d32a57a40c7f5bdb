#!/usr/bin/python3
"""bounds_inputs.py OUT_DIR GEN_DIR MODEL.h5 CLIP_SHA -- the inputs of
torture_bounds.sh: each claims or expands to far more than it holds."""
import glob, io, os, struct, sys, tarfile, zipfile, zlib
import h5py, numpy as np

out, gen, model, sha = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
# A real JPEG from the generator's clips.
jpeg = None
for z in sorted(glob.glob(os.path.join(gen, "*/*/*.zip"))):
    with zipfile.ZipFile(z) as f:
        names = [n for n in f.namelist() if n.endswith(".jpg")]
        if names:
            jpeg = f.read(names[0])
            break
assert jpeg and jpeg[:2] == b"\xff\xd8"

# 1. Decompression bomb: a tar.gz whose members are JPEGs padded with 60 MB of
# zeros (under the 64 MB member limit each; 12 of them expand to 720 MB).
with tarfile.open(os.path.join(out, "cam01_2026-11-05_010000.tar.gz"), "w:gz", compresslevel=1) as t:
    pad = jpeg + b"\0" * (60 << 20)
    for i in range(12):
        ti = tarfile.TarInfo("frame_%d.jpg" % i)
        ti.size = len(pad)
        t.addfile(ti, io.BytesIO(pad))

# 2. A 60000x60000 JPEG header (the SOF's height and width patched).
j = bytearray(jpeg)
i = 2
while i < len(j):
    assert j[i] == 0xFF
    m, ln = j[i + 1], struct.unpack(">H", j[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        j[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
        break
    i += 2 + ln
with tarfile.open(os.path.join(out, "cam01_2026-11-05_020000.tar"), "w") as t:
    for k in range(3):
        ti = tarfile.TarInfo("frame_%d.jpg" % k)
        ti.size = len(j)
        t.addfile(ti, io.BytesIO(bytes(j)))

# 3. A zip whose member claims 4 GB (sizes in both headers patched; the data
# is a small deflate stream).
zp = os.path.join(out, "cam01_2026-11-05_030000.zip")
with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("frame_0.jpg", jpeg)
b = bytearray(open(zp, "rb").read())
claim = struct.pack("<I", 0xFFFFFFF0)
lh = b.find(b"PK\x03\x04")
b[lh + 22:lh + 26] = claim                 # local header: uncompressed size
ch = b.find(b"PK\x01\x02")
b[ch + 24:ch + 28] = claim                 # central directory: uncompressed size
open(zp, "wb").write(bytes(b))

# 4. A labels CSV with a 100 MB line.
with open(os.path.join(out, "labels.csv"), "w") as f:
    f.write("clip,frame,label\n%s,0,glove\n" % sha)
    f.write("%s,1,%s\n" % (sha, "x" * (100 << 20)))
    f.write("%s,2,hand\n" % sha)

# 5. A model whose first weight claims 2^31 elements (chunked, never written).
mp = os.path.join(out, "model.h5")
with open(model, "rb") as s, open(mp, "wb") as d:
    d.write(s.read())
with h5py.File(mp, "r+") as f:
    name = "weights/conv1/W"
    attrs = dict(f[name].attrs)
    del f[name]
    ds = f.create_dataset(name, shape=(2 ** 31 // 27, 3, 3, 3), dtype="f4", chunks=(1, 3, 3, 3))
    for k, v in attrs.items():
        ds.attrs[k] = v
