#!/usr/bin/python3
"""hostile.py -- feeds every file nightshift reads, damaged, to the commands
that read it (issue 16, "Corrupt and hostile files").

Usage: hostile.py FIXTURE_DIR NS_BIN MODE   (MODE fast | asan | slow)

For each file kind: truncation at random offsets, flipped bytes in the header
and in the data, and, for HDF5 files, a valid file with the right ns_format
but a dataset missing, wrongly shaped, wrongly typed, or claiming 2^40 rows
(chunked, never written: a tiny file that would make a loader allocate
terabytes), and a file of another nightshift format in its place.  Text
inputs get truncation, flips, an empty file, binary garbage and an HDF5 file.

Outcome required of every run: exit 1 or 2, or 0 where the damage left the
content valid (a flip in a CSV cell, in unused HDF5 space), with
  - never a signal or exit >= 128, never a hang (20 s), peak RSS < 400 MB;
  - on failure one message on stderr that names the file (its base name),
    no raw HDF5 diagnostics;
  - structural damage (truncation, missing/reshaped/retyped/absurd
    datasets, another format) is never accepted (exit 0);
  - a shard is checksummed: verify refuses every change to its content.
Prints one line per failure and a summary; exit 1 when anything failed.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

T, BIN, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
S = os.path.join(T, "store")
RSS_LIMIT_KB = 400 * 1024
rng = random.Random(16)
N_OFFSETS = {"fast": 2, "asan": 1, "slow": 12}[MODE]
N_DSETS = {"fast": 1, "asan": 1, "slow": 1000}[MODE]

failures = []
stats = {"runs": 0, "files": 0, "mutations": 0, "accepted": 0, "max_rss_kb": 0}
kinds_tried = {}


def one(pattern):
    import glob
    hits = sorted(glob.glob(os.path.join(T, pattern)))
    assert hits, pattern
    return hits[0]


def run(cmd):
    """(rc, stderr, seconds, peak RSS KB) of one command, killed after 20 s."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=T)
    t0 = time.time()
    err = b""
    os.set_blocking(p.stderr.fileno(), False)
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        chunk = p.stderr.read()
        if chunk:
            err += chunk
        if pid:
            break
        if time.time() - t0 > 20:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            return "hang", err.decode("utf-8", "replace"), 20, ru.ru_maxrss
        time.sleep(0.005)
    chunk = p.stderr.read()
    if chunk:
        err += chunk
    p.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    return rc, err.decode("utf-8", "replace"), time.time() - t0, ru.ru_maxrss


# ---- the targets -------------------------------------------------------------
model_dir = os.path.dirname(one("store/embeddings/*/000004.h5"))
out = os.path.join(T, "hostile-out")
TARGETS = [
    # name, path, is_hdf5, [reader commands], the commands that must refuse
    # structural damage (they read every dataset of the file; verify also
    # refuses any change to a shard: its content is checksummed)
    ("shard", one("store/shards/2026-11-04/000004.h5"), True,
     [["verify", "--store", S], ["detect", "--store", S, "--night", "2026-11-04", "--reference",
                                 "ref.h5", "--out", out, "--quiet"]], {"verify"}),
    ("catalog", os.path.join(S, "catalog.h5"), True, [["info", "--store", S], ["verify", "--store", S]], {"verify"}),
    ("view", os.path.join(S, "view.h5"), True, [["verify", "--store", S]], {"verify"}),
    ("embeddings", os.path.join(model_dir, "000004.h5"), True,
     [["detect", "--store", S, "--night", "2026-11-04", "--reference", "ref.h5", "--out", out,
       "--quiet"]], {"detect"}),
    ("reference", os.path.join(T, "ref.h5"), True,
     [["detect", "--store", S, "--night", "2026-11-04", "--reference", "ref.h5", "--out", out,
       "--quiet"]], {"detect"}),
    ("model", os.path.join(T, "model.h5"), True, [["model", "info", "model.h5"]], {"model"}),
    ("detect-output", os.path.join(T, "det/2026-11-04/detect.h5"), True,
     [["select", "--store", S, "--detect", "det/2026-11-04", "--budget", "4", "--out",
       os.path.join(out, "sel.csv")]], set()),
    ("dataset", os.path.join(T, "ds.h5"), True,
     [["dataset", "info", "ds.h5"], ["train", "--dataset", "ds.h5", "--out", os.path.join(out, "h.h5"),
                                     "--quiet"]], {"train"}),
    ("head", os.path.join(T, "head.h5"), True,
     [["head", "info", "head.h5"], ["predict", "--store", S, "--head", "head.h5", "--nights",
                                    "2026-11-04", "--out", os.path.join(out, "p.csv"), "--quiet"]],
     {"head"}),
    ("label-set", one("store/labels/*.h5"), True, [["labels", "info", "--store", S]], set()),
    ("registry", os.path.join(S, "registry.json"), False, [["registry", "list", "--store", S]], set()),
    ("nightly-config", os.path.join(T, "nightly.yaml"), False,
     [["nightly", "--config", "nightly.yaml", "--print-config"]], set()),
    ("labels-csv", os.path.join(T, "labels.csv"), False,
     [["labels", "import", "--store", S, "--set", "hostile", "labels.csv", "--quiet"]], set()),
    ("policy", os.path.join(T, "policy.txt"), False,
     [["gate", "--candidate", "head.h5", "--production", "head.h5", "--dataset", "ds.h5",
       "--policy", "policy.txt", "--out", os.path.join(out, "gate"), "--quiet"]], set()),
    ("selection-csv", os.path.join(T, "sel.csv"), False,
     [["export", "--store", S, "--selection", "sel.csv", "--out", os.path.join(out, "t.tar")]],
     set()),
]
OTHER = {"reference": "head.h5", "head": "ref.h5", "dataset": "model.h5", "model": "ds.h5",
         "detect-output": "ref.h5", "shard": "model.h5", "catalog": "ds.h5", "view": "head.h5",
         "embeddings": "ref.h5", "label-set": "ds.h5"}


# ---- mutations ---------------------------------------------------------------
def datasets(path):
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


def copy_attrs(src, dst):
    for k, v in src.attrs.items():
        dst.attrs[k] = v


def h5_struct(path, name, how):
    with h5py.File(path, "r+") as f:
        d = f[name]
        data, attrs, dt = d[...], dict(d.attrs), d.dtype
        del f[name]
        if how == "missing":
            return
        if how == "shape":
            if data.ndim >= 2:
                new = data.reshape(data.shape[0], -1)[:, :-1] if data.shape[-1] > 1 else data[..., 0]
            elif data.shape and data.shape[0] > 1:
                new = data[:-1]
            else:
                new = np.zeros((3, 3), dtype=dt) if dt.kind != "V" else np.concatenate([data, data])
            nd = f.create_dataset(name, data=new)
        elif how == "type":
            if dt.kind in "fiu":
                nd = f.create_dataset(name, shape=data.shape, dtype="S3")
            else:
                nd = f.create_dataset(name, shape=data.shape, dtype="f4")
        elif how == "absurd":
            shape = (2 ** 40,) + data.shape[1:] if data.ndim else (2 ** 40,)
            nd = f.create_dataset(name, shape=shape, dtype=dt, chunks=(1,) + data.shape[1:] if data.ndim else (1,),
                                  maxshape=(None,) + data.shape[1:] if data.ndim else (None,))
        for k, v in attrs.items():
            nd.attrs[k] = v


def flip(path, lo, hi):
    size = os.path.getsize(path)
    hi = min(hi, size)
    if hi <= lo:
        return False
    with open(path, "r+b") as f:
        for _ in range(4):
            at = rng.randrange(lo, hi)
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ (1 << rng.randrange(8)) ^ 0x40]))
    return True


def mutations(name, path, is_h5):
    """(kind, label, apply(path) -> bool applied, structural)"""
    size = os.path.getsize(path)
    out = []
    for _ in range(N_OFFSETS):
        at = rng.randrange(1, size)
        out.append(("truncate", "at %d of %d" % (at, size), lambda p, at=at: (os.truncate(p, at), True)[1], True))
    hdr = 512 if is_h5 else min(64, size)
    for _ in range(max(1, N_OFFSETS // 2)):
        out.append(("flip-header", "", lambda p, hdr=hdr: flip(p, 0, hdr), False))
        out.append(("flip-data", "", lambda p, hdr=hdr: flip(p, hdr, size), False))
    if is_h5:
        names = datasets(path)
        for how in ("missing", "shape", "type", "absurd"):
            pick = names if len(names) <= N_DSETS else rng.sample(names, N_DSETS)
            for n in pick:
                out.append((how, "/" + n, lambda p, n=n, how=how: (h5_struct(p, n, how), True)[1], True))
        if name in OTHER:
            other = os.path.join(T, OTHER[name])
            out.append(("other-format", OTHER[name], lambda p, o=other: (shutil.copyfile(o, p), True)[1], True))
    else:
        out.append(("empty", "", lambda p: (open(p, "w").close(), True)[1], True))
        out.append(("garbage", "", lambda p: (open(p, "wb").write(os.urandom(4096)), True)[1], False))
        out.append(("other-format", "ref.h5", lambda p: (shutil.copyfile(os.path.join(T, "ref.h5"), p), True)[1], False))
    return out


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


backup_dir = os.path.join(T, "hostile-backup")
os.makedirs(backup_dir, exist_ok=True)
labels_dir = os.path.join(S, "labels")
shutil.copytree(labels_dir, os.path.join(backup_dir, "labels"))

for name, path, is_h5, cmds, strict in TARGETS:
    stats["files"] += 1
    base = os.path.basename(path)
    keep = os.path.join(backup_dir, name)
    shutil.copyfile(path, keep)
    for kind, label, apply, structural in mutations(name, path, is_h5):
        shutil.copyfile(keep, path)
        try:
            if not apply(path):
                continue
        except Exception as e:  # a mutation h5py cannot make
            print("# skip %s %s %s: %s" % (name, kind, label, e))
            continue
        if digest(path) == digest(keep):
            continue
        stats["mutations"] += 1
        kinds_tried[kind] = kinds_tried.get(kind, 0) + 1
        for cmd in cmds:
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            rc, err, secs, rss = run([BIN] + cmd)
            stats["runs"] += 1
            stats["max_rss_kb"] = max(stats["max_rss_kb"], rss)
            what = "%s %s %s | %s" % (name, kind, label, " ".join(cmd[:2]))
            problem = None
            if rc == "hang":
                problem = "hang (killed after 20 s)"
            elif rc < 0 or rc >= 128:
                problem = "crash (exit %s)" % rc
            elif rss > RSS_LIMIT_KB:
                problem = "peak RSS %d MB" % (rss // 1024)
            elif rc not in (0, 1, 2) and not (cmd[0] == "gate" and rc in (3, 4)):
                problem = "exit %d" % rc
            elif rc in (1, 2) and base not in err:
                problem = "message does not name %s: %s" % (base, err.strip()[:300])
            elif "HDF5-DIAG" in err:
                problem = "raw HDF5 diagnostics on stderr"
            elif rc == 0 and is_h5 and cmd[0] in strict and (
                    structural or (name == "shard" and cmd[0] == "verify")):
                problem = "accepted (exit 0)"
            if rc == 0:
                stats["accepted"] += 1
            if problem:
                failures.append(what + ": " + problem)
                print("not ok - " + what + ": " + problem)
        # restore the store's label sets after an import that succeeded
        if name == "labels-csv":
            shutil.rmtree(labels_dir)
            shutil.copytree(os.path.join(backup_dir, "labels"), labels_dir)
    shutil.copyfile(keep, path)

print("hostile: %d files, %d damaged versions (%s), %d runs, %d accepted (exit 0), peak RSS "
      "%.0f MB, %d failures" % (stats["files"], stats["mutations"],
                                ", ".join("%s %d" % kv for kv in sorted(kinds_tried.items())),
                                stats["runs"], stats["accepted"], stats["max_rss_kb"] / 1024,
                                len(failures)))
sys.exit(1 if failures else 0)
