#!/usr/bin/python3
"""killstate.py -- the state checks of the kill suites (tests/torture/killlib.sh).

  killstate.py snap DIR OUT.json
      records every file under DIR (path -> SHA-256), leaving out the store's
      lock and temp names (*.tmp.<pid>, *.old.<pid>).
  killstate.py check DIR OLD.json NEW.json [--set ROOT]... [--mut ROOT]... [--final]
      after a kill: every file is its old version or its new one (absent
      counts as a version), so nothing committed earlier changed and nothing
      is there twice under another name; each --set ROOT (a directory or file
      replaced as a whole) is entirely old or entirely new; --mut ROOT is
      skipped (the store's catalog while ingest commits: verify judges it);
      under --fresh ROOT a file the old state lacked may hold anything (a
      shard, whose bytes carry its time of writing), and after the rerun
      their number must be the uninterrupted run's (nothing twice);
      --loose ROOT compares HDF5 files there by objects, shapes and
      attributes only; tars are compared by members and bytes, not times.
      --final (after the rerun): everything is the new version and no temp
      name is left.

Files differ between two uninterrupted runs only in their `created` time
attribute; HDF5 files whose bytes differ are compared with h5diff (every
dataset and attribute, ns_format included) and pass when `created` is all
that differs.
"""
import hashlib, json, os, re, subprocess, sys

LOOSE = []  # --loose roots
TMP = re.compile(r"\.(tmp|old)\.[0-9]+($|/)")


def is_lock(p):
    b = os.path.basename(p)
    return b == "lock" or b.endswith(".lock")


def walk(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.relpath(os.path.join(d, f), root)
            out[p] = os.path.join(d, f)
    return out


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run(args):
    try:
        r = subprocess.run(args, capture_output=True)
    except FileNotFoundError:
        return 2, ""
    return r.returncode, r.stdout.decode(errors="replace")


def h5same(a, b):
    """Two HDF5 files hold the same objects and data and attributes, but for
    the time of writing (`created`): h5diff in report mode, every difference
    it counts in the `created` attribute, and the same object list."""
    rc, out = run(["h5diff", "-r", a, b])
    if rc == 0:
        return True
    if rc != 1 or "not comparable" in out.lower():
        return False
    item = None
    for ln in out.splitlines():
        if ln.startswith(("attribute:", "dataset:", "group:")):
            item = ln
        m = re.match(r"^(\d+) differences? found", ln)
        if m and int(m.group(1)) > 0 and not (item or "").startswith("attribute: <created of "):
            return False
    ra, la = run(["h5dump", "-n", a])
    rb, lb = run(["h5dump", "-n", b])
    strip = lambda t: [x for x in t.splitlines() if not x.startswith("HDF5 ")]
    return ra == 0 and rb == 0 and strip(la) == strip(lb)


def h5attrs(path):
    """h5dump -A (every object, shape and attribute value, no data), less
    `created`: the --loose comparison, for files whose rows carry the time
    they were written (a label set's rows without a time of their own)."""
    rc, out = run(["h5dump", "-A", path])
    if rc != 0:
        return None
    keep, skip = [], None
    for ln in out.splitlines()[1:]:
        if skip is not None:
            if ln.startswith(skip + "}"):
                skip = None
            continue
        m = re.match(r'^(\s*)ATTRIBUTE "created" \{', ln)
        if m:
            skip = m.group(1)
            continue
        keep.append(ln)
    return keep


def tarsig(path):
    """A tar's members and their bytes, not their times."""
    import tarfile
    try:
        with tarfile.open(path) as t:
            return [(m.name, m.size, hashlib.sha256(t.extractfile(m).read()).hexdigest()
                     if m.isfile() else "") for m in t.getmembers()]
    except (tarfile.TarError, OSError, EOFError):
        return None


def stamp(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def snap(root, out):
    keep = {p: a for p, a in walk(root).items()
            if not TMP.search(p) and not is_lock(p)}
    files = {p: sha(a) for p, a in keep.items()}
    stamps = {p: stamp(a) for p, a in keep.items()}
    json.dump({"root": os.path.abspath(root), "files": files, "stamps": stamps},
              open(out, "w"), indent=0)


class Side:
    """One recorded state, its files kept beside the record (X.files/)."""

    def __init__(self, path):
        d = json.load(open(path))
        self.files = d["files"]
        self.stamps = d.get("stamps", {})
        self.keep = path[:-5] + ".files"

    def content_same(self, p, cur_abs):
        a = os.path.join(self.keep, p)
        if not os.path.exists(a):
            return False
        if p.endswith(".tar"):
            x = tarsig(a)
            return x is not None and x == tarsig(cur_abs)
        if any(p == r or p.startswith(r.rstrip("/") + "/") for r in LOOSE):
            x = h5attrs(a)
            return x is not None and x == h5attrs(cur_abs)
        return p.endswith(".h5") and h5same(a, cur_abs)


def same(p, cur_abs, cur_sha, side):
    want = side.files.get(p)
    if cur_abs is None:
        return want is None
    if want is None:
        return False
    if cur_sha == want:
        return True
    return side.content_same(p, cur_abs)


def check(root, old, new, sets, muts, fresh, final):
    cur = walk(root)
    problems = []
    tmps = [p for p in cur if TMP.search(p)]
    if final and tmps:
        problems.append("temp names left after a complete run: " + ", ".join(sorted(tmps)[:5]))
    cur = {p: a for p, a in cur.items() if not TMP.search(p) and not is_lock(p)}
    # A file with the size and modification time it had before (cp -a keeps
    # them; any write changes the time) is the old file: no need to hash it.
    shas = {p: (old.files[p] if old.stamps.get(p) == stamp(a) else sha(a)) for p, a in cur.items()}

    def under(p, r):
        return p == r or p.startswith(r.rstrip("/") + "/")

    paths = sorted(set(cur) | set(old.files) | set(new.files))
    for r in muts:
        paths = [p for p in paths if not under(p, r)]
    # Under a --fresh root, files the old state lacked are new results whose
    # bytes differ from run to run (times, ids): any content will do, and
    # after the rerun there are as many as the uninterrupted run made.
    for r in fresh:
        added = lambda files: [p for p in files if under(p, r) and p not in old.files]
        if final and len(added(cur)) != len(added(new.files)):
            problems.append(f"{r}: {len(added(cur))} new files, the uninterrupted run made "
                            f"{len(added(new.files))}: " + ", ".join(sorted(set(added(cur)) ^ set(added(new.files)))[:4]))
        paths = [p for p in paths if not (under(p, r) and p not in old.files)]
    groups = {r: [p for p in paths if under(p, r)] for r in sets}
    single = [p for p in paths if not any(under(p, r) for r in sets)]
    sides = [new] if final else [old, new]
    for p in single:
        if not any(same(p, cur.get(p), shas.get(p), s) for s in sides):
            what = "missing" if p not in cur else "neither the old nor the new version"
            problems.append(f"{p}: {what}")
    for r, ps in groups.items():
        if not any(all(same(p, cur.get(p), shas.get(p), s) for p in ps) for s in sides):
            bad = [p for p in ps if not any(same(p, cur.get(p), shas.get(p), s) for s in sides)]
            mixed = "" if bad else " (a mix of old and new files)"
            problems.append(f"{r}: neither the old nor the new complete set{mixed}"
                            + (": " + ", ".join(bad[:4]) if bad else ""))
    for m in problems:
        print("  " + m)
    return 1 if problems else 0


def main(a):
    if a[0] == "snap":
        snap(a[1], a[2])
        return 0
    root, oldp, newp = a[1], a[2], a[3]
    sets, muts, fresh, final, i = [], [], [], False, 4
    while i < len(a):
        if a[i] == "--set":
            sets.append(a[i + 1]); i += 2
        elif a[i] == "--loose":
            LOOSE.append(a[i + 1]); i += 2
        elif a[i] == "--fresh":
            fresh.append(a[i + 1]); i += 2
        elif a[i] == "--mut":
            muts.append(a[i + 1]); i += 2
        elif a[i] == "--final":
            final = True; i += 1
        else:
            raise SystemExit("killstate.py: unknown argument " + a[i])
    return check(root, Side(oldp), Side(newp), sets, muts, fresh, final)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
