#!/usr/bin/python3
"""peer_train.py DIR softmax|mlp [HIDDEN EPOCHS BATCH L2] -- the Python peers of
bench/train/run.sh on the same arrays (head_arrays.py), 2 threads.

softmax: scikit-learn LogisticRegression(solver="lbfgs") with its defaults
         (C = 1, max_iter = 100, tol = 1e-4): the fit alone is timed.
mlp:     PyTorch CPU, Linear(D, HIDDEN) -> ReLU -> Linear(HIDDEN, C), Adam
         (lr 1e-3, weight_decay = L2: the coupled L2 nightshift uses),
         CrossEntropyLoss, shuffled batches, the val loss and accuracy after
         each epoch (as nightshift's early stopping computes them): the whole
         loop is timed.
Prints "seconds accuracy" (test accuracy)."""
import sys
import time

import numpy as np

d, kind = sys.argv[1], sys.argv[2]
xtr, ytr = np.load(d + "/xtr.npy"), np.load(d + "/ytr.npy")
xva, yva = np.load(d + "/xva.npy"), np.load(d + "/yva.npy")
xte, yte = np.load(d + "/xte.npy"), np.load(d + "/yte.npy")
if kind == "softmax":
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    with threadpool_limits(2):
        t = time.perf_counter()
        m = LogisticRegression(solver="lbfgs").fit(xtr, ytr)
        secs = time.perf_counter() - t
    print("%.3f %.4f" % (secs, m.score(xte, yte)))
else:
    import torch
    hidden, epochs, batch, l2 = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    torch.set_num_threads(2)
    torch.manual_seed(1)
    C = int(ytr.max()) + 1
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, C))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=l2)
    lossf = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr.astype(np.int64))
    XV, YV = torch.from_numpy(xva), torch.from_numpy(yva.astype(np.int64))
    g = torch.Generator().manual_seed(1)
    t = time.perf_counter()
    for e in range(epochs):
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = lossf(net(X[idx]), Y[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            zv = net(XV)
            vl, va = lossf(zv, YV).item(), (zv.argmax(1) == YV).float().mean().item()
    secs = time.perf_counter() - t
    with torch.no_grad():
        acc = (net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print("%.3f %.4f" % (secs, acc))
