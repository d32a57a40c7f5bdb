"""make_labels.py STORE OUT.csv -- one label for every frame of a synthetic
store (bench/detect/synth_store.c), as `labels import` reads them: clip
SHA-256, frame number, a class drawn from the clip and frame."""
import csv
import sys

import h5py

store, out = sys.argv[1], sys.argv[2]
classes = ["idle", "pick_part", "place_part", "fasten_screw", "inspect"]
cat = h5py.File(f"{store}/catalog.h5", "r")
view = h5py.File(f"{store}/view.h5", "r")
clips = cat["clips"][:]
index = view["frame/index"][:]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["clip", "frame", "label"])
    for c in clips:
        sha = c["sha256"].decode()
        first, n = int(c["first_frame"]), int(c["n_frames"])
        for i in range(first, first + n):
            w.writerow([sha, int(index[i]), classes[(hash(sha[:8]) + i // 10) % 5]])
