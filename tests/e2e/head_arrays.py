#!/usr/bin/python3
"""head_arrays.py -- synthetic embeddings for head tests and benches, written
as a nightshift dataset file (docs/dataset.md) and as .npy arrays for the
Python peers.

    head_arrays.py OUT_DIR --train N --val N --test N --dim D --classes C [--seed S]
                   [--overlap F] [--model-id HEX]

The embeddings imitate a CNN's: each class is a mixture of a few "views"
(sub-clusters) in a low-rank subspace, with anisotropic noise shared across
classes, so classes overlap and no linear head reaches 100%; rows are L2
normalised like nightshift's embeddings.  Writes OUT_DIR/ds.h5 and
OUT_DIR/{xtr,ytr,xva,yva,xte,yte}.npy.
"""
import argparse
import hashlib
import os
import sys

import numpy as np

try:
    import h5py
except ImportError:  # the caller decides whether that is a skip
    sys.exit(77)


def make(n, rng, means, basis, noise_scale, views):
    C = means.shape[0]
    y = rng.integers(0, C, n).astype(np.int32)
    v = rng.integers(0, views, n)
    k = basis.shape[0]
    z = means[y, v] + rng.standard_normal((n, k)) * noise_scale
    x = z @ basis + 0.35 * rng.standard_normal((n, basis.shape[1]))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--overlap", type=float, default=1.0)
    ap.add_argument("--model-id", default=hashlib.sha256(b"synthetic-model").hexdigest())
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    k, views = min(32, a.dim), 3
    basis = rng.standard_normal((k, a.dim)) / np.sqrt(k)
    means = rng.standard_normal((a.classes, views, k)) * 1.0
    noise = a.overlap * (0.4 + rng.random(k))  # anisotropic, shared by all classes
    parts = [make(n, rng, means, basis, noise, views) for n in (a.train, a.val, a.test)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    split = np.concatenate([np.full(p[1].shape[0], s, np.uint8) for s, p in enumerate(parts)])
    os.makedirs(a.out, exist_ok=True)
    for name, arr in zip(("xtr", "ytr", "xva", "yva", "xte", "yte"),
                         (parts[0][0], parts[0][1], parts[1][0], parts[1][1], parts[2][0],
                          parts[2][1])):
        np.save(os.path.join(a.out, name + ".npy"), arr)
    n = x.shape[0]
    # Frames of 25 per clip; the split is by row, already grouped by clip since
    # each split is contiguous and clip = row // 25 within a split.
    clip_no = np.concatenate([np.arange(p[1].shape[0]) // 25 + s * 10**6
                              for s, p in enumerate(parts)])
    clips = np.array([hashlib.sha256(b"clip%d" % c).hexdigest().encode() for c in clip_no],
                     dtype="S65")
    index = np.concatenate([np.arange(p[1].shape[0]) % 25 for p in parts]).astype(np.uint32)
    classes = np.array([b"class_%02d" % c for c in range(a.classes)], dtype="S256")
    h = hashlib.sha256()
    h.update(x.astype("<f4").tobytes())
    h.update(y.astype("<i4").tobytes())
    h.update(split.tobytes())
    h.update(classes.tobytes())
    h.update(clips.tobytes())
    h.update(index.astype("<u4").tobytes())
    ds_id = h.hexdigest()
    path = os.path.join(a.out, "ds.h5")
    with h5py.File(path, "w") as f:
        s = lambda v: np.bytes_(v)
        f.attrs["ns_format"] = s("nightshift-dataset")
        f.attrs["ns_format_version"] = np.int32(1)
        f.attrs["dataset_id"] = s(ds_id)
        f.attrs["model_id"] = s(a.model_id)
        f.attrs["dim"] = np.int32(a.dim)
        f.attrs["n_frames"] = np.uint64(n)
        f.attrs["n_classes"] = np.int32(a.classes)
        for key, val in (("split_by", "clip"), ("nights_from", "2026-11-01"),
                         ("nights_to", "2026-11-07"), ("label_sets", "synthetic@000001"),
                         ("store_id", hashlib.sha256(b"no-store").hexdigest()),
                         ("writer", "head_arrays.py")):
            f.attrs[key] = s(val)
        f.attrs["seed"] = np.uint64(a.seed)
        for key, val in (("guard_minutes", 0.0), ("val_fraction", a.val / n),
                         ("test_fraction", a.test / n), ("created", 1.7e9)):
            f.attrs[key] = np.float64(val)
        g = f.create_group("audit")
        for key, val in (("threshold", 0.0), ("test_leak_share", 0.0), ("max_leak", 0.01)):
            g.attrs[key] = np.float64(val)
        g.attrs["n_near_dup"] = np.uint64(0)
        g.attrs["n_exact_dup"] = np.uint64(0)
        g.attrs["passed"] = np.int32(1)
        f["embeddings"] = x
        f["labels"] = y
        f["split"] = split
        f["classes"] = classes
        fr = f.create_group("frames")
        fr["clip"] = clips
        fr["member"] = np.array([b"f%06d.jpg" % i for i in index], dtype="S256")
        fr["camera"] = np.array([b"cam01"] * n, dtype="S64")
        fr["night"] = np.array([b"2026-11-01"] * n, dtype="S11")
        fr["index"] = index
        fr["time"] = np.full(n, np.nan)
        fr["condition"] = np.full(n, -1, np.int32)
        fr["view_row"] = np.arange(n, dtype=np.uint64)


if __name__ == "__main__":
    main()
