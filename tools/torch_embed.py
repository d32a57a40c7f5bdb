#!/usr/bin/python3
"""torch_embed.py -- PyTorch reference embeddings, computed as nightshift does.

    torch_embed.py ARCH OUT.npy (--npy FRAMES.npy | --view STORE/view.h5 [--rows A:B])
                   [--weights FILE.pth] [--seed N] [--size S] [--l2norm]

The network is the one torch2ns.py converts (same ARCH, --weights/--seed)
with its final classifier layer (the last nn.Linear: resnet fc, mobilenet_v2
classifier[1]) replaced by Identity, which is what torch2ns.py keeps by
default.  Frames are uint8 (n, S, S, 3) RGB, from a .npy file or from rows
[A, B) of a store's view.h5 /frames.  Preprocessing follows
ns_ref_preprocess (src/embed/ops_ref.c): when the model input is smaller than
S the frame is area-resized in uint8 -- the exact area average (integer
overlap weights, any factor), rounded half up to uint8, as ns_resize_area
does -- then x = (v / 255 - mean) / std in double, stored as float32.
torch.nn.functional.interpolate(mode='area') is not used: it is adaptive
average pooling, which for non-integer factors averages whole overlapping
pixels instead of weighting them by overlap, and it does not round to uint8.
Writes float32 (n, D).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx2ns  # noqa: E402


def area_weights(S, size):
    """w (size, S) int64: overlap of output cell o and source pixel s, in units of
    1/size of a source pixel (so each row sums to S), as ns_resize_area."""
    o = np.arange(size)[:, None].astype(np.int64)
    s = np.arange(S)[None, :].astype(np.int64)
    lo = np.maximum(o * S, s * size)
    hi = np.minimum((o + 1) * S, (s + 1) * size)
    return np.maximum(hi - lo, 0)


def preprocess(frames, size, mean, std):
    """(n, S, S, 3) uint8 RGB -> (n, 3, size, size) float32, as ns_ref_preprocess."""
    S = frames.shape[1]
    if size > S:
        raise SystemExit(f"torch_embed: the model input {size} is larger than the frames {S}")
    if size < S:
        w = area_weights(S, size)
        f = frames.astype(np.int64)
        # Exact integer sums (at most S^2 * 255 each), then one double division.
        acc = np.einsum("ys,nsxc->nyxc", w, f)
        acc = np.einsum("xs,nysc->nyxc", w, acc)
        v = np.floor(acc / float(S * S) + 0.5)
        frames = np.minimum(v, 255).astype(np.uint8)
    x = frames.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    m = np.asarray(mean, np.float32).astype(np.float64)[None, :, None, None]
    sd = np.asarray(std, np.float32).astype(np.float64)[None, :, None, None]
    return ((x - m) / sd).astype(np.float32)


def backbone(arch, weights, seed):
    import torch
    import torch2ns
    m = torch2ns.build_model(arch, weights, seed)
    last = None
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear):
            last = name
    if last is None:
        raise SystemExit(f"torch_embed: {arch} has no nn.Linear classifier to remove")
    parent, _, leaf = last.rpartition(".")
    owner = m.get_submodule(parent) if parent else m
    setattr(owner, leaf, torch.nn.Identity())
    return m.eval()


def load_frames(a):
    if a.npy:
        fr = np.load(a.npy)
    else:
        import h5py
        with h5py.File(a.view, "r") as f:
            d = f["frames"]
            lo, hi = 0, d.shape[0]
            if a.rows:
                s, _, e = a.rows.partition(":")
                lo = int(s) if s else 0
                hi = int(e) if e else d.shape[0]
            fr = d[lo:hi]
    if fr.dtype != np.uint8 or fr.ndim != 4 or fr.shape[3] != 3 or fr.shape[1] != fr.shape[2]:
        raise SystemExit(f"torch_embed: frames must be uint8 (n, S, S, 3), got {fr.dtype} "
                         f"{fr.shape}")
    return fr


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch")
    p.add_argument("out", help="output .npy, float32 (n, D)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--npy", help="uint8 (n, S, S, 3) frames")
    src.add_argument("--view", help="a store's view.h5")
    p.add_argument("--rows", metavar="A:B", help="rows [A, B) of the view's /frames [all]")
    p.add_argument("--weights", metavar="FILE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=224, help="model input size [224]")
    p.add_argument("--mean", type=float, nargs=3, default=onnx2ns.IMAGENET_MEAN)
    p.add_argument("--std", type=float, nargs=3, default=onnx2ns.IMAGENET_STD)
    p.add_argument("--l2norm", action="store_true")
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    frames = load_frames(a)
    m = backbone(a.arch, a.weights, a.seed)
    outs = []
    with torch.no_grad():
        for b in range(0, len(frames), a.batch):
            x = torch.from_numpy(preprocess(frames[b:b + a.batch], a.size, a.mean, a.std))
            y = m(x).reshape(x.shape[0], -1)
            if a.l2norm:
                y = torch.nn.functional.normalize(y, dim=1)
            outs.append(y.numpy().astype(np.float32))
    emb = np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
    np.save(a.out, emb)
    print(f"{a.out}: {emb.shape[0]} x {emb.shape[1] if emb.ndim == 2 else 0} embeddings",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
