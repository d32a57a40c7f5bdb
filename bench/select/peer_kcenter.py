"""peer_kcenter.py FILE N D BUDGET -- k-center greedy the straightforward way
in numpy and in PyTorch (CPU): per step one matrix-vector product for the
distances to the new center (||x||^2 - 2 x.c + ||c||^2), a minimum and an
argmax; state O(N).  Prints <name>_seconds, <name>_cpu_seconds, first picks."""
import sys, time
import numpy as np

path, n, d, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
which = sys.argv[5].split(",") if len(sys.argv) > 5 else ["numpy", "torch"]
X = np.fromfile(path, dtype=np.float32).reshape(n, d)


def numpy_kcenter():
    sq = np.einsum("ij,ij->i", X, X)
    mind = np.full(n, np.inf, dtype=np.float32)
    picks, c = [], 0
    for _ in range(budget):
        picks.append(c)
        dist = sq - 2.0 * (X @ X[c]) + sq[c]
        np.minimum(mind, dist, out=mind)
        c = int(np.argmax(mind))
    return picks


def torch_kcenter():
    import torch
    torch.set_num_threads(2)
    T = torch.from_numpy(X)
    sq = (T * T).sum(1)
    mind = torch.full((n,), float("inf"))
    picks, c = [], 0
    with torch.no_grad():
        for _ in range(budget):
            picks.append(c)
            dist = sq - 2.0 * torch.mv(T, T[c]) + sq[c]
            torch.minimum(mind, dist, out=mind)
            c = int(torch.argmax(mind))
    return picks


for name in which:
    fn = numpy_kcenter if name == "numpy" else torch_kcenter
    t0, c0 = time.perf_counter(), time.process_time()
    p = fn()
    print(f"{name}_seconds {time.perf_counter() - t0:.3f}")
    print(f"{name}_cpu_seconds {time.process_time() - c0:.3f}")
    print(f"{name}_first_picks", " ".join(map(str, p[:8])))
