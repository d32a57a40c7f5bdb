#!/usr/bin/python3
"""peer_pil.py -- the ingest a careful Python user would write, to compare with ours.

    /usr/bin/python3 bench/ingest/peer_pil.py [--threads N] [--size S] --out F.h5 INPUT...

Same work as `nightshift ingest` on tar clips of JPEG frames, with Debian's PIL,
numpy and h5py:
  - each clip file (INPUTs: .tar files or directories searched recursively, in
    natural name order) is read once; its SHA-256 is taken from those bytes;
  - members are read with tarfile in natural name order (frame_2 before frame_10);
  - each JPEG is decoded with PIL at a reduced DCT scale (img.draft('RGB', (S, S))
    picks the smallest libjpeg scale, 1/1..1/8, with both sides >= S, like ours),
    then area-averaged to S x S (Image.BOX);
  - nine photometric properties per frame with numpy (mean luma BT.601, mean R,
    G, B, HSV saturation mean, luma std, Laplacian variance of luma, fraction
    of luma < 16 and > 239);
  - frames (N, S, S, 3) uint8 chunked ~2 MiB, uncompressed, the properties
    (N, 9) float32, clip and frame index per frame, and a clip table (path,
    sha256, frames) go to one HDF5 file written by the main thread only.
Decode, resize and properties run on a ThreadPoolExecutor over frames (PIL and
numpy release the GIL in the heavy parts); the main thread reads, hashes and
writes while the pool works, keeping a bounded window of frames in flight.

Prints one line: peer_fps <frames/s> frames <n> seconds <s>, timed from the first
read to the closed output file.
"""
import argparse
import collections
import concurrent.futures
import hashlib
import io
import os
import re
import sys
import tarfile
import time

import h5py
import numpy as np
from PIL import Image

NPROPS = 9


def natural_key(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def find_clips(inputs):
    clips = []
    for p in inputs:
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [os.path.join(root, f) for f in files
                          if f.endswith(".tar") and not f.startswith(".")]
            clips += sorted(found, key=natural_key)
        else:
            clips.append(p)
    return clips


def props(a):
    """The nine properties of one (S, S, 3) uint8 frame."""
    f = a.astype(np.float32)
    luma = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    mean_rgb = f.reshape(-1, 3).mean(axis=0)
    mx = a.max(axis=2).astype(np.float32)
    mn = a.min(axis=2).astype(np.float32)
    sat = np.divide(mx - mn, mx, out=np.zeros_like(mx), where=mx > 0)
    lap = (4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1]
           - luma[1:-1, :-2] - luma[1:-1, 2:])
    return np.array([luma.mean(), mean_rgb[0], mean_rgb[1], mean_rgb[2], sat.mean(),
                     luma.std(), lap.var(), (luma < 16).mean(), (luma > 239).mean()],
                    dtype=np.float32)


def decode(buf, S):
    img = Image.open(io.BytesIO(buf))
    img.draft("RGB", (S, S))
    img = img.convert("RGB")
    if img.size != (S, S):
        img = img.resize((S, S), Image.BOX)
    a = np.asarray(img)
    return a, props(a)


class Writer:
    """Owns the HDF5 file; appends batches of frames."""

    def __init__(self, path, S, batch):
        self.f = h5py.File(path, "w")
        chunk = max(1, (2 << 20) // (S * S * 3))
        self.frames = self.f.create_dataset("frames", (0, S, S, 3), np.uint8,
                                            maxshape=(None, S, S, 3), chunks=(chunk, S, S, 3))
        self.props = self.f.create_dataset("frame/props", (0, NPROPS), np.float32,
                                           maxshape=(None, NPROPS), chunks=(4096, NPROPS))
        self.clip = self.f.create_dataset("frame/clip", (0,), np.uint32, maxshape=(None,),
                                          chunks=(4096,))
        self.index = self.f.create_dataset("frame/index", (0,), np.uint32, maxshape=(None,),
                                           chunks=(4096,))
        self.n = 0
        self.buf = np.empty((batch, S, S, 3), np.uint8)  # reused for every batch
        self.pbuf = np.empty((batch, NPROPS), np.float32)
        self.cbuf = np.empty(batch, np.uint32)
        self.ibuf = np.empty(batch, np.uint32)
        self.k = 0

    def add(self, frame, p, clip, index):
        self.buf[self.k] = frame
        self.pbuf[self.k] = p
        self.cbuf[self.k] = clip
        self.ibuf[self.k] = index
        self.k += 1
        if self.k == len(self.buf):
            self.flush()

    def flush(self):
        k, n = self.k, self.n
        if k == 0:
            return
        for d in (self.frames, self.props, self.clip, self.index):
            d.resize(n + k, axis=0)
        self.frames[n:n + k] = self.buf[:k]
        self.props[n:n + k] = self.pbuf[:k]
        self.clip[n:n + k] = self.cbuf[:k]
        self.index[n:n + k] = self.ibuf[:k]
        self.n += k
        self.k = 0

    def close(self, clips):
        self.flush()
        self.f.create_dataset("clips/path", data=np.array([c[0] for c in clips], dtype="S"))
        self.f.create_dataset("clips/sha256", data=np.array([c[1] for c in clips], dtype="S64"))
        self.f.create_dataset("clips/n_frames", data=np.array([c[2] for c in clips], np.uint32))
        self.f.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", required=True)
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    S = a.size

    t0 = time.perf_counter()
    clips = find_clips(a.inputs)
    w = Writer(a.out, S, a.batch)
    done = []
    inflight = collections.deque()  # futures in frame order
    window = 2 * a.batch

    def drain(limit):
        while len(inflight) > limit:
            fut, ci, fi = inflight.popleft()
            frame, p = fut.result()
            w.add(frame, p, ci, fi)

    with concurrent.futures.ThreadPoolExecutor(max_workers=a.threads) as pool:
        for ci, path in enumerate(clips):
            with open(path, "rb") as fh:
                data = fh.read()
            sha = hashlib.sha256(data).hexdigest()
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
                members = [m for m in tf.getmembers()
                           if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg"))]
                members.sort(key=lambda m: natural_key(m.name))
                for fi, m in enumerate(members):
                    buf = tf.extractfile(m).read()
                    inflight.append((pool.submit(decode, buf, S), ci, fi))
                    drain(window)
            done.append((path, sha, len(members)))
        drain(0)
    w.close(done)
    secs = time.perf_counter() - t0
    print("peer_fps %.1f frames %d seconds %.3f" % (w.n / secs if secs > 0 else 0, w.n, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
