"""power_check.py OUT DATA KIND -- the detect power criteria on a generated night.

The shift test rejects (p < 0.01); the top novel condition is at least 90%
shifted frames and holds at least 80% of them; its attribution names luma.
KIND glove: shifted = black-glove frames (labels.csv); light: every frame.
"""
import csv, json, os, sys
out, data, kind = sys.argv[1:4]
s = json.load(open(f"{out}/summary.json"))
assert s["verdict"] == "shift" and s["p_value"] < 0.01, (s["verdict"], s["p_value"])
truth = {}
for r in csv.DictReader(open(f"{data}/labels.csv")):
    if r["night"] == "2026-11-06":
        truth[(os.path.basename(r["path"]), r["member"])] = r["glove"] == "black" if kind == "glove" else True
frames = list(csv.DictReader(open(f"{out}/frames.csv")))
assert frames, "frames.csv is empty"
cond = [f["condition"] for f in frames]
top = s["top_conditions"][0]
assert top["novel"], top
tid = str(top["id"])
def shifted(f):
    src = f["source"].lstrip("'")
    return truth.get((os.path.basename(src), f["member"].lstrip("'")), False)
inside = [f for f in frames if f["condition"] == tid]
n_shift = sum(shifted(f) for f in frames)
hit = sum(shifted(f) for f in inside)
purity, recall = hit / max(1, len(inside)), hit / max(1, n_shift)
named = [a["property"] for a in top["attribution"]]
print(f"{kind}: p={s['p_value']:.4g} top condition {len(inside)} frames, purity {purity:.2f}, recall {recall:.2f}; named: {named}")
assert purity >= 0.9 and recall >= 0.8, (purity, recall)
assert any("luma" in p for p in named), named
