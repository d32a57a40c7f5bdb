"""peer_semantic.py REF.h5 TONIGHT.h5 LABELS.csv NIGHT -- the Python peer of
run_semantic.sh: frame AUROC of the k-th nearest neighbour distance (k from
the reference) with numpy/sklearn on the same embeddings, raw and whitened
with sklearn's Ledoit-Wolf covariance (what nightshift's reference stores).
TONIGHT.h5 is a reference file built over tonight alone: its sample holds
every frame of the night (under the frame cap)."""
import csv, os, sys, time

import h5py
import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

ref_path, t_path, labels, night = sys.argv[1:5]
R, T = h5py.File(ref_path), h5py.File(t_path)
k = int(R.attrs["knn_k"])
xr = R["sample/emb"][:].astype(np.float64)
xt = T["sample/emb"][:].astype(np.float64)
clips, ct, mem = T["clips"][:], T["sample/clip"][:], T["sample/member"][:]
truth = {}
for r in csv.DictReader(open(labels)):
    if r["night"] == night:
        truth[(os.path.basename(r["path"]), r["member"])] = r["object"] != "none"
y = np.array([truth[(os.path.basename(clips[c]["source"].decode()), m.decode())] for c, m in zip(ct, mem)])


def kth(q, b):
    d2 = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None]
    return np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0))


t0 = time.perf_counter()
raw = roc_auc_score(y, kth(xt, xr))
lw = LedoitWolf().fit(xr)
L = np.linalg.cholesky(lw.covariance_)
W = np.linalg.inv(L)
zr, zt = (xr - lw.location_) @ W.T, (xt - lw.location_) @ W.T
white = roc_auc_score(y, kth(zt, zr))
print(f"peer (numpy/sklearn): frame AUROC raw kNN {raw:.3f}, Ledoit-Wolf whitened kNN {white:.3f} "
      f"(shrinkage {lw.shrinkage_:.4g}); {len(xt)} frames, {int(y.sum())} new; {time.perf_counter() - t0:.2f} s")
