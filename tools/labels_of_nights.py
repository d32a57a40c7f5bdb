#!/usr/bin/python3
"""The generator's labels of nights FROM..TO as a `labels import` CSV.

usage: labels_of_nights.py LABELS.csv FROM TO OUT.csv

LABELS.csv is the labels.csv that `nightshift-gen glove` writes (path, night,
frame, label, ...); OUT gets clip (the file name), frame and label, as a team of
labelers would send them back.  Used by the demo and the nightly tests.
"""
import csv
import os
import sys

if len(sys.argv) != 5:
    sys.exit(__doc__.strip().splitlines()[2])
src, lo, hi, out = sys.argv[1:]
with open(src, newline="") as f:
    rows = [r for r in csv.DictReader(f) if lo <= r["night"] <= hi]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["clip", "frame", "label"])
    for r in rows:
        w.writerow([os.path.basename(r["path"]), r["frame"], r["label"]])
