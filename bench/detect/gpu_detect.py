#!/usr/bin/python3
"""gpu_detect.py -- the PyTorch peer of nightshift-bench-detect: the same detect
steps, written the way a careful PyTorch user would, on the same GPU.

    gpu_detect.py [--reps R] [--iters I] [--scale F] [--device cuda]

Same workloads, sizes, data kind (random L2-normalised float32 rows) and
timing rules as bench/detect/gpu_detect_bench.c: host arrays in and out
(numpy -> device -> numpy inside the timed region), best of R after one
warm-up, strict fp32 (TF32 off for matmul and cuDNN), torch.cuda.synchronize()
around every timed region.

  kmeans  x (100000, 512), k 64, init the first k rows; per iteration:
          d2 = ||x||^2 - 2 x c^T + ||c||^2 (addmm), argmin, index_add_ sums
          (float32), bincount, mean (an empty cluster keeps its centre); then
          a final assignment.  ms_per_iter = (t(1 + I) - t(1)) / I.
  knn     50000 queries x 20000 base, k 5: per 4096-query chunk
          addmm distances, topk(largest=False), sqrt of the clamped values.
  mmd     (30000, 512) in 300 blocks of 100 rows, sigma 1: per 3000-row chunk
          exp(-d2 / 2 sigma^2) against all rows, block sums in float64 via
          view(...).sum(dtype=float64) (full rows: no symmetry shortcut).

Prints `<name> <value>` lines with the same names as ours, then a table.
"""
import argparse
import sys
import time

import numpy as np
import torch


def embeddings(rows, d, seed):
    g = np.random.default_rng(seed)
    x = g.uniform(-1.0, 1.0, size=(rows, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def sync():
    torch.cuda.synchronize()


def kmeans(xh, k, iters, dev):
    x = torch.from_numpy(xh).to(dev)
    c = x[:k].clone()
    xx = (x * x).sum(1, keepdim=True)
    for _ in range(iters):
        d2 = torch.addmm(xx, x, c.t(), beta=1.0, alpha=-2.0) + (c * c).sum(1)[None]
        a = d2.argmin(1)
        sums = torch.zeros_like(c).index_add_(0, a, x)
        counts = torch.bincount(a, minlength=k)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None].float(), c)
    d2 = torch.addmm(xx, x, c.t(), beta=1.0, alpha=-2.0) + (c * c).sum(1)[None]
    a = d2.argmin(1)
    return c.cpu().numpy(), a.cpu().numpy()


def knn(qh, bh, k, dev, chunk=4096):
    q = torch.from_numpy(qh).to(dev)
    b = torch.from_numpy(bh).to(dev)
    bb = (b * b).sum(1)[None]
    dist, idx = [], []
    for i0 in range(0, q.shape[0], chunk):
        qc = q[i0:i0 + chunk]
        d2 = torch.addmm(bb, qc, b.t(), beta=1.0, alpha=-2.0) + (qc * qc).sum(1, keepdim=True)
        v, i = torch.topk(d2, k, dim=1, largest=False)
        dist.append(v.clamp_min(0).sqrt())
        idx.append(i)
    return torch.cat(dist).cpu().numpy(), torch.cat(idx).cpu().numpy()


def mmd(xh, nblocks, size, sigma, dev, chunk_blocks=30):
    x = torch.from_numpy(xh).to(dev)
    xx = (x * x).sum(1)
    gamma = 1.0 / (2.0 * sigma * sigma)
    S = torch.empty(nblocks, nblocks, dtype=torch.float64, device=dev)
    for a0 in range(0, nblocks, chunk_blocks):
        a1 = min(a0 + chunk_blocks, nblocks)
        xc = x[a0 * size:a1 * size]
        d2 = torch.addmm(xx[None], xc, x.t(), beta=1.0, alpha=-2.0) + xx[a0 * size:a1 * size, None]
        K = torch.exp(d2.clamp_min_(0).mul_(-gamma))
        S[a0:a1] = K.view(a1 - a0, size, nblocks, size).sum(dim=(1, 3), dtype=torch.float64)
        del d2, K
    return S.cpu().numpy()


def best_of(reps, fn):
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_detect: no CUDA device", file=sys.stderr)
        return 77
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    d, k, knn_k = 512, 64, 5
    n_km, nq, nb = int(100000 * a.scale), int(50000 * a.scale), int(20000 * a.scale)
    nblocks = int(300 * a.scale)
    x = embeddings(n_km, d, 1)
    b = embeddings(nb, d, 2)
    print(f"device {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}")

    t1 = best_of(a.reps, lambda: kmeans(x, k, 1, dev))
    t2 = best_of(a.reps, lambda: kmeans(x, k, 1 + a.iters, dev))
    tk = best_of(a.reps, lambda: knn(x[:nq], b, knn_k, dev))
    tm = best_of(a.reps, lambda: mmd(x[:nblocks * 100], nblocks, 100, 1.0, dev))
    per_iter = (t2 - t1) / a.iters
    print(f"kmeans_setup_ms {t1:.3f}")
    print(f"kmeans_ms_per_iter {per_iter:.4f}")
    print(f"knn_ms {tk:.3f}")
    print(f"mmd_ms {tm:.3f}")
    print(f"\n{'kernel':8} {'workload':44} {'ms':>12}")
    rows = [("kmeans", f"{n_km} x {d}, k {k}: one Lloyd iteration", per_iter),
            ("kmeans", "setup: upload, 2 assignment passes", t1),
            ("knn", f"{nq} q x {nb} base x {d}, k {knn_k}", tk),
            ("mmd", f"{nblocks * 100} x {d}, {nblocks} blocks of 100", tm)]
    for name, w, ms in rows:
        print(f"{name:8} {w:44} {ms:12.3f}")
    print(f"torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
