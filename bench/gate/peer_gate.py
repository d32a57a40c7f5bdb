#!/usr/bin/python3
"""peer_gate.py DIR [REPEAT] -- the numpy peer of nightshift-bench-gate.

Reads the per-frame arrays gate_bench.c dumped and does the same work as
ns_gate_run: per-slice per-clip sums (the full rows, both heads, on the "all"
slice; frames and both heads' correct counts elsewhere), 10,000 clip
resamples per slice (multinomial counts times sums on "all", a gather of
the drawn rows elsewhere, as the C code does), the deltas, percentile
intervals, one-sided p-values and Holm.  Prints peer_seconds (median).
"""
import sys
import time

import numpy as np

BINS, K, B = 15, 5, 10000


def load(d, name, dt):
    return np.fromfile(f"{d}/{name}", dtype=dt)


def full_rows(clip, label, pred, conf, ptrue, n_clips):
    """Per clip: frames, correct, nll, 3 per bin, 3 per class (metrics.h)."""
    ok = (pred == label).astype(np.float64)
    b = np.minimum((conf * BINS).astype(np.int64), BINS - 1)
    q = 3 + 3 * BINS + 3 * K
    rows = np.zeros((n_clips, q))
    np.add.at(rows[:, 0], clip, 1.0)
    np.add.at(rows[:, 1], clip, ok)
    np.add.at(rows[:, 2], clip, -np.log(np.maximum(ptrue, 1e-15)))
    np.add.at(rows, (clip, 3 + 3 * b), 1.0)
    np.add.at(rows, (clip, 4 + 3 * b), conf)
    np.add.at(rows, (clip, 5 + 3 * b), ok)
    c0 = 3 + 3 * BINS
    np.add.at(rows, (clip, c0 + 3 * label), ok)
    np.add.at(rows, (clip, c0 + 3 * label + 1), 1.0)
    v = pred >= 0
    np.add.at(rows, (clip[v], c0 + 3 * pred[v] + 2), 1.0)
    return rows


def ece(s):
    bins = s[:, 3:3 + 3 * BINS].reshape(len(s), BINS, 3)
    return np.abs(bins[:, :, 1] - bins[:, :, 2]).sum(axis=1) / s[:, 0]


def decide(reps, margin):
    le = (reps <= -margin).sum()
    ge = (reps >= -margin).sum()
    p = min(1.0, 2 * min((1 + le) / (B + 1), (1 + ge) / (B + 1)))
    return p, np.percentile(reps, [2.5, 97.5])


def run(a, rng):
    label, clip = a["label"], a["clip"]
    n_clips = int(clip.max()) + 1
    okc = (a["pred_c"] == label).astype(np.float64)
    okp = (a["pred_p"] == label).astype(np.float64)
    results = []
    # the "all" slice: full rows of both heads, counts x rows as a GEMM
    rows = np.hstack([full_rows(clip, label, a["pred_c"], a["conf_c"], a["ptrue_c"], n_clips),
                      full_rows(clip, label, a["pred_p"], a["conf_p"], a["ptrue_p"], n_clips)])
    q1 = rows.shape[1] // 2
    sums = np.empty((B, rows.shape[1]))
    for b0 in range(0, B, 500):
        nb = min(500, B - b0)
        idx = rng.integers(0, n_clips, (nb, n_clips))
        flat = (idx + (np.arange(nb) * n_clips)[:, None]).ravel()
        counts = np.bincount(flat, minlength=nb * n_clips).reshape(nb, n_clips).astype(np.float64)
        sums[b0:b0 + nb] = counts @ rows
    acc = (sums[:, 1] - sums[:, q1 + 1]) / sums[:, 0]
    results.append(decide(acc, 0.01))
    results.append(decide(ece(sums[:, q1:]) - ece(sums[:, :q1]), 0.02))
    # every other slice: frames, both heads' correct, drawn rows gathered
    keys = [("cam", a["cam"]), ("night", a["night"]), ("cond", a["cond"]), ("class", label)]
    for _, key in keys:
        for v in np.unique(key):
            m = key == v
            cl = clip[m]
            uniq, local = np.unique(cl, return_inverse=True)
            st = np.zeros((len(uniq), 3))
            np.add.at(st, local, np.stack([np.ones(m.sum()), okc[m], okp[m]], axis=1))
            c = len(uniq)
            out = np.empty((B, 3))
            for b0 in range(0, B, 1000):
                nb = min(1000, B - b0)
                idx = rng.integers(0, c, (nb, c))
                out[b0:b0 + nb] = st[idx].sum(axis=1)
            results.append(decide((out[:, 1] - out[:, 2]) / out[:, 0], 0.02))
    p = np.array([r[0] for r in results])
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
    return len(results), results[0], adj


def main():
    d = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    a = {"label": load(d, "label.i32", np.int32).astype(np.int64),
         "cond": load(d, "cond.i32", np.int32), "cam": load(d, "cam.i32", np.int32),
         "night": load(d, "night.i32", np.int32),
         "clip": load(d, "clip.u32", np.uint32).astype(np.int64),
         "pred_c": load(d, "pred_c.i32", np.int32).astype(np.int64),
         "pred_p": load(d, "pred_p.i32", np.int32).astype(np.int64),
         "conf_c": load(d, "conf_c.f32", np.float32).astype(np.float64),
         "conf_p": load(d, "conf_p.f32", np.float32).astype(np.float64),
         "ptrue_c": load(d, "ptrue_c.f32", np.float32).astype(np.float64),
         "ptrue_p": load(d, "ptrue_p.f32", np.float32).astype(np.float64)}
    times, cpu = [], []
    for i in range(repeat):
        rng = np.random.default_rng(i)
        t0, c0 = time.perf_counter(), time.process_time()
        n, primary, _ = run(a, rng)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"peer run {i + 1}: {times[-1]:.3f} s wall, {cpu[-1]:.3f} s CPU ({n} checks)")
    print(f"peer primary ci95 [{primary[1][0]:.5f}, {primary[1][1]:.5f}]")
    print(f"peer_seconds {sorted(times)[(repeat - 1) // 2]:.3f}")
    print(f"peer_cpu_seconds {sorted(cpu)[(repeat - 1) // 2]:.3f}")


if __name__ == "__main__":
    main()
