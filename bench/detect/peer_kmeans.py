#!/usr/bin/python3
"""peer_kmeans.py -- Lloyd k-means with scikit-learn and FAISS from given centres.

    peer_kmeans.py X.f32 INIT.f32 --n N --d D --k K [--iters 20] [--threads 2]
                   [--which sklearn,faiss] [--seed 1]

X (N, D) and INIT (K, D) are raw float32, row-major, as nightshift-bench-kmeans
writes them.  Each peer runs exactly the iterations ours does, from the same
starting centres:

  sklearn  KMeans(algorithm="lloyd", n_init=1, max_iter=I, tol=0, init=INIT),
           under threadpoolctl's limit of --threads (its OpenMP loop and BLAS);
  faiss    faiss.Kmeans(niter=I, nredo=1, seed, max_points_per_centroid=N so
           nothing is subsampled, min_points_per_centroid=1 so it does not warn)
           .train(x, init_centroids=INIT), faiss.omp_set_num_threads(--threads).

Prints `<peer>_ms_per_iter` (fit/train wall time divided by the iterations)
and `<peer>_inertia`: the sum of squared distances of every point to its
nearest final centroid, computed the same way (float64) for both, outside
the clock.
"""
import argparse
import sys
import time

import numpy as np


def inertia(x, c):
    # Exact nearest-centre distances in float64, in chunks to bound memory.
    total = 0.0
    cc = (c.astype(np.float64) ** 2).sum(1)
    for i in range(0, len(x), 8192):
        xi = x[i:i + 8192].astype(np.float64)
        d = (xi ** 2).sum(1)[:, None] - 2.0 * xi @ c.T.astype(np.float64) + cc[None, :]
        j = d.argmin(1)
        total += ((xi - c[j].astype(np.float64)) ** 2).sum()
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("x")
    ap.add_argument("init")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--which", default="sklearn,faiss")
    a = ap.parse_args()
    x = np.fromfile(a.x, np.float32).reshape(a.n, a.d)
    init = np.fromfile(a.init, np.float32).reshape(a.k, a.d)

    for peer in a.which.split(","):
        if peer == "sklearn":
            from sklearn.cluster import KMeans
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=a.threads):
                km = KMeans(n_clusters=a.k, algorithm="lloyd", n_init=1, max_iter=a.iters,
                            tol=0.0, init=init, random_state=a.seed)
                t0 = time.perf_counter()
                km.fit(x)
                t = time.perf_counter() - t0
            iters, c = km.n_iter_, km.cluster_centers_.astype(np.float32)
        elif peer == "faiss":
            import faiss
            faiss.omp_set_num_threads(a.threads)
            km = faiss.Kmeans(a.d, a.k, niter=a.iters, nredo=1, seed=a.seed, verbose=False,
                              max_points_per_centroid=a.n, min_points_per_centroid=1)
            t0 = time.perf_counter()
            km.train(x, init_centroids=init)
            t = time.perf_counter() - t0
            iters, c = a.iters, km.centroids
        else:
            sys.exit("peer_kmeans.py: unknown peer %r" % peer)
        print("%s_ms_per_iter %.3f" % (peer, 1e3 * t / iters))
        print("%s_iterations %d" % (peer, iters))
        print("%s_inertia %.10g" % (peer, inertia(x, c)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
