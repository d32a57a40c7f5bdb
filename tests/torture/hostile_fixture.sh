# hostile_fixture.sh -- sourced by torture_hostile*.sh: one of every file
# nightshift reads, made by nightshift itself, for hostile.py to damage.
make_hostile_fixture() {
  make_store || return 1
  local B=$NS_BIN S=$T/store
  "$B" detect --store "$S" --night 2026-11-04 --reference "$T/ref.h5" --out "$T/det/2026-11-04" \
    --quiet >/dev/null || return 1
  "$B" select --store "$S" --detect "$T/det/2026-11-04" --budget 8 --out "$T/sel.csv" >/dev/null ||
    return 1
  # Labels for every frame of the first three nights, two classes.
  $PY - "$S/catalog.h5" "$T/labels.csv" <<'PYEOF' || return 1
import sys, h5py
c = h5py.File(sys.argv[1], "r")["clips"][...]
with open(sys.argv[2], "w") as o:
    o.write("clip,frame,label\n")
    for r in c:
        if r["night"].decode() <= "2026-11-03":
            for i in range(int(r["n_frames"])):
                o.write("%s,%d,%s\n" % (r["sha256"].decode(), i, "glove" if (i + r["row"]) % 2 else "hand"))
PYEOF
  "$B" labels import --store "$S" --set l1 --quiet "$T/labels.csv" >/dev/null &&
    "$B" dataset build --store "$S" --nights .. --out "$T/ds.h5" >/dev/null &&
    "$B" train --dataset "$T/ds.h5" --out "$T/head.h5" --quiet >/dev/null &&
    "$B" model default --out "$T/model.h5" >/dev/null &&
    "$B" registry add --store "$S" --head "$T/head.h5" >/dev/null &&
    "$B" nightly --print-config --store "$S" >"$T/nightly.yaml" || return 1
  printf 'margin.camera.cam01 = 0.05\n' >"$T/policy.txt"
}
