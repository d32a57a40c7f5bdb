#!/usr/bin/python3
"""sklearn_compare.py DIR HEAD.h5 L2 -- the softmax head's test accuracy
(computed from the head file with numpy, as docs/head.md shows) against
scikit-learn's LogisticRegression(lbfgs) fitted on the same train arrays with
the same penalty (C = 1 / (l2 * n_train)).  Prints both; exits 1 when they
differ by more than 0.5 points, 77 when sklearn is missing."""
import sys

import numpy as np

try:
    import h5py
    from sklearn.linear_model import LogisticRegression
except ImportError:
    sys.exit(77)

d, head, l2 = sys.argv[1], sys.argv[2], float(sys.argv[3])
xtr, ytr = np.load(d + "/xtr.npy"), np.load(d + "/ytr.npy")
xte, yte = np.load(d + "/xte.npy"), np.load(d + "/yte.npy")
with h5py.File(head, "r") as f:
    W, b, T = f["w"][:], f["b"][:], float(f.attrs["temperature"])
    names = [c.decode() for c in f["classes"][:]]
z = (xte @ W.T + b) / T
ours = float(np.mean(np.argmax(z, axis=1) == yte))
assert names == ["class_%02d" % c for c in range(len(names))], names
lr = LogisticRegression(C=1.0 / (l2 * len(ytr)), max_iter=2000, tol=1e-6)
lr.fit(xtr, ytr)
theirs = float(lr.score(xte, yte))
print("nightshift %.4f  sklearn %.4f  difference %.2f points" % (ours, theirs,
                                                                  100 * (ours - theirs)))
sys.exit(0 if abs(ours - theirs) <= 0.005 else 1)
