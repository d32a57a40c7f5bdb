#!/usr/bin/python3
"""acc.py DIR HEAD.h5 -- test accuracy of a nightshift head on DIR/xte.npy
(numpy, as docs/head.md reads a head)."""
import sys

import h5py
import numpy as np

d, head = sys.argv[1], sys.argv[2]
x, y = np.load(d + "/xte.npy"), np.load(d + "/yte.npy")
with h5py.File(head, "r") as f:
    if f.attrs["kind"] in (b"mlp", "mlp"):
        x = np.maximum(x @ f["w1"][:].T + f["b1"][:], 0)
    z = x @ f["w"][:].T + f["b"][:]
print("%.4f" % np.mean(np.argmax(z, axis=1) == y))
