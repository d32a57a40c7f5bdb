"""peer_h5py.py STORE MODEL_ID [REPS] -- the peer of `dataset build`: a plain
h5py read of the same embeddings (every shard's /embeddings into one numpy
array), as a training script would load them.  Prints MB/s (median of REPS)."""
import glob
import statistics
import sys
import time

import h5py
import numpy as np

store, model = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
files = sorted(glob.glob(f"{store}/embeddings/{model}/*.h5"))
rates, total = [], 0
for _ in range(reps):
    t = time.perf_counter()
    parts = [h5py.File(p, "r")["embeddings"][:] for p in files]
    x = np.concatenate(parts)
    dt = time.perf_counter() - t
    total = x.nbytes
    rates.append(total / dt / 1e6)
print(f"peer h5py: {len(files)} files, {x.shape[0]} x {x.shape[1]} float32, {total / 1e6:.1f} MB, "
      f"median {statistics.median(rates):.0f} MB/s (min {min(rates):.0f}, max {max(rates):.0f})")
