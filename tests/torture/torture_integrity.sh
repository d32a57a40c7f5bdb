#!/usr/bin/env bash
# Regression for issue 16 defects 5 and 6, and verify --repair: a damaged
# shard is skipped by embed (the rest embedded), refused by detect and
# reference build; verify catches every byte flip that changes a catalog clip
# row, naming shard and field; verify --repair quarantines bad shards and
# rebuilds the catalog and view from the good ones.
source "$(dirname "$0")/lib.sh"
make_store || { echo "fixture failed"; exit 1; }
S=$T/store
id=$("$NS_BIN" model info default | awk '/^id/{print $2}')
shards=($(cd "$S" && find shards -name '*.h5' | sort))
check "fixture: four shards" test "${#shards[@]}" -eq 4
fresh() { rm -rf "$T/s2"; cp -a "$S" "$T/s2"; }
# flip FILE OFFSET: xor one byte with 0x5a, size unchanged
flip() { $PY -c "import sys
f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0x5a]))" "$1" "$2"; }

# ---- defect 6: one damaged shard does not stop embed for later nights ------
fresh
rm -rf "$T/s2/embeddings"
sz=$(stat -c %s "$T/s2/${shards[1]}")
truncate -s $((sz / 2)) "$T/s2/${shards[1]}"
expect_rc 1 "embed with a truncated shard exits 1" \
  sh -c "'$NS_BIN' embed --store '$T/s2' --device cpu --quiet >'$T/out.txt' 2>'$T/err.txt'"
check "...says 1 shards skipped" grep -q "1 shards skipped" "$T/err.txt"
check "...warns naming the shard" grep -q "warning: skipped shard '${shards[1]}'" "$T/err.txt"
check "...and embeds the three others, later nights included" \
  test "$(ls "$T/s2/embeddings/$id"/*.h5 | wc -l)" -eq 3
check "...the newest night among them" test -e "$T/s2/embeddings/$id/000004.h5"
expect_rc 1 "a rerun skips it again" \
  sh -c "'$NS_BIN' embed --store '$T/s2' --device cpu --quiet >'$T/out.txt' 2>/dev/null"
check "...and embeds nothing twice" grep -q "0 shards embedded, 3 already present" "$T/out.txt"

# Same size, one pixel byte flipped: only the checksum sees it.
fresh
rm -rf "$T/s2/embeddings"
f=$T/s2/${shards[2]}
flip "$f" $(($(stat -c %s "$f") / 2))
expect_rc 1 "embed with a flipped pixel byte exits 1" \
  sh -c "'$NS_BIN' embed --store '$T/s2' --device cpu --quiet >/dev/null 2>'$T/err.txt'"
check "...the checksum names it" grep -q "skipped shard '${shards[2]}'.*checksum" "$T/err.txt"
check "...the others embedded" test "$(ls "$T/s2/embeddings/$id"/*.h5 | wc -l)" -eq 3

# Detect and reference build read the shard's columns: they check it too.
fresh
f=$T/s2/${shards[3]}
flip "$f" $(($(stat -c %s "$f") / 2))
expect_rc 1 "detect on a corrupt night fails" "$NS_BIN" detect --store "$T/s2" \
  --night 2026-11-04 --reference "$T/ref.h5" --out "$T/det" --quiet
check "...naming the checksum" sh -c "'$NS_BIN' detect --store '$T/s2' --night 2026-11-04 \
  --reference '$T/ref.h5' --out '$T/det' --quiet 2>&1 | grep -q 'checksum'"
expect_rc 1 "reference build over a corrupt night fails" "$NS_BIN" reference build \
  --store "$T/s2" --nights 2026-11-03..2026-11-04 --out "$T/ref2.h5"
check "detect on a good night still works" "$NS_BIN" detect --store "$T/s2" \
  --night 2026-11-02 --reference "$T/ref.h5" --out "$T/det" --quiet

# ---- defect 5: verify catches every catalog clip-row flip that changes it --
check "verify passes on the fixture" "$NS_BIN" verify --store "$S" --quiet
cp "$S/catalog.h5" "$T/catalog.orig"
# One Python run plans the flips: the first byte of every field of one row,
# then 30 random bytes of all rows; it keeps those after which a C reader sees
# different clip rows (strings up to their NUL), one "offset field" a line.
$PY - "$T/catalog.orig" "$T/flipped.h5" > "$T/flips.txt" <<'PY'
import sys, random, shutil, h5py
orig, tmp = sys.argv[1:3]
def rows(p):
    with h5py.File(p, "r") as f:
        d = f["clips"][:]
    return [tuple(v.split(b"\0")[0] if isinstance(v, bytes) else int(v) for v in r) for r in d]
with h5py.File(orig, "r") as f:
    d = f["clips"]
    base, dt, n = d.id.get_offset(), d.dtype, d.shape[0]
    assert base is not None, "catalog /clips is not contiguous"
names = sorted(dt.names, key=lambda k: dt.fields[k][1])
def field_at(o):
    o %= dt.itemsize
    return [k for k in names if dt.fields[k][1] <= o][-1]
plan = [(3 * dt.itemsize + dt.fields[k][1], k) for k in names]
rng = random.Random(16)
plan += [(o, field_at(o)) for o in (rng.randrange(n * dt.itemsize) for _ in range(30))]
want = rows(orig)
for o, k in plan:
    shutil.copyfile(orig, tmp)
    with open(tmp, "r+b") as f:
        f.seek(base + o); b = f.read(1); f.seek(base + o); f.write(bytes([b[0] ^ 0x5A]))
    if rows(tmp) != want:
        print(base + o, k)
PY
n_changed=0 n_caught=0 n_named=0 n_field=0
while read -r off field; do
  cp "$T/catalog.orig" "$S/catalog.h5"
  flip "$S/catalog.h5" "$off"
  n_changed=$((n_changed + 1))
  rc=0
  "$NS_BIN" verify --store "$S" --quiet 2>"$T/verr.txt" >/dev/null || rc=$?
  if [ "$rc" -eq 1 ]; then n_caught=$((n_caught + 1)); else
    echo "# flip at $off ($field) not caught (exit $rc)"; fi
  case $field in camera|night|n_damaged|n_failed|qc_flags)
    n_field=$((n_field + 1))
    if grep -q "field $field .*shard '$S/shards/" "$T/verr.txt"; then n_named=$((n_named + 1)); else
      echo "# flip at $off: no line names field $field and the shard"; fi ;;
  esac
done < "$T/flips.txt"
cp "$T/catalog.orig" "$S/catalog.h5"
echo "# catalog flips: $n_changed of 40 planned changed content, verify failed on $n_caught"
check "flips changed content (at least 15)" test "$n_changed" -ge 15
check "verify fails on every flip that changed a clip row" test "$n_caught" -eq "$n_changed"
check "each copied-field mismatch names the shard and the field" test "$n_named" -eq "$n_field"
check "verify passes again on the restored catalog" "$NS_BIN" verify --store "$S" --quiet

# ---- verify --repair ---------------------------------------------------------
fresh
R=$T/s2
truncate -s 5000 "$R/${shards[1]}"                              # night 2: truncated
flip "$R/${shards[2]}" $(($(stat -c %s "$R/${shards[2]}") / 2))  # night 3: one pixel byte
$PY - "$R/catalog.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:       # a catalog row that lies about a good shard
    c = f["clips"][:]; c[0]["camera"] = b"cam03ZZZZ"; c[0]["n_failed"] = 1515870720
    f["clips"][...] = c
PY
good=$(cd "$R" && sha256sum "${shards[0]}" "${shards[3]}")
expect_rc 1 "verify finds the damage" sh -c "'$NS_BIN' verify --store '$R' 2>'$T/v.txt'"
check "...advises verify --repair for each damaged shard"   test "$(grep -c "is damaged.*verify --repair.*ingest those clips' source files again" "$T/v.txt")" -eq 2
check "...and says the catalog is rebuilt from the good shards" grep -q "rebuilds it and the view" "$T/v.txt"
expect_rc 0 "verify --repair succeeds" sh -c "'$NS_BIN' verify --store '$R' --repair >'$T/r.txt' 2>&1"
cat "$T/r.txt" | sed 's/^/# /'
check "...reports two shards moved to quarantine" grep -q "2 shards moved to quarantine" "$T/r.txt"
check "...and verify passes after it" "$NS_BIN" verify --store "$R" --quiet
check "...the good shards unchanged byte for byte" sh -c "cd '$R' && test \"\$(sha256sum ${shards[0]} ${shards[3]})\" = '$good'"
check "...the bad ones in quarantine/ with a note each" \
  test "$(ls "$R/quarantine"/*.h5 | wc -l)" -eq 2 -a "$(ls "$R/quarantine"/*.h5.txt | wc -l)" -eq 2
check "...the notes say why and list the clips" sh -c \
  "grep -q '^why: .*bytes, catalog says' '$R'/quarantine/2026-11-02-*.txt && grep -q 'checksum' '$R'/quarantine/2026-11-03-*.txt && test \$(grep -c '^[0-9a-f]\{64\} ' '$R'/quarantine/2026-11-03-*.txt) -eq 12"
check "the catalog row is rebuilt from the shard's own row" $PY - "$R/catalog.h5" "$S/catalog.h5" <<'PY'
import sys, h5py
new, old = (h5py.File(p, "r") for p in sys.argv[1:3])
n, o = new["clips"][:], old["clips"][:]
keep = [r for r in o if r["night"] in (b"2026-11-01", b"2026-11-04")]
assert len(n) == len(keep) == 24, (len(n), len(keep))
for a, b in zip(n, keep):
    for k in ("sha256", "night", "camera", "n_frames", "n_damaged", "n_failed", "qc_flags"):
        assert a[k] == b[k], (k, a[k], b[k])
assert [int(x) for x in new["shards"]["id"]] == [1, 4]
PY
check "the view is rebuilt (h5py reads every frame)" $PY -c "import h5py,sys
v=h5py.File(sys.argv[1]+'/view.h5','r'); assert v['frames'].shape[0]==v['clips'].shape[0]*4==96, v['frames'].shape; v['frames'][:]" "$R"
expect_rc 0 "embed runs clean after the repair" "$NS_BIN" embed --store "$R" --device cpu --quiet
check "detect on a kept night works" "$NS_BIN" detect --store "$R" --night 2026-11-04 \
  --reference "$T/ref.h5" --out "$T/det2" --quiet
for n in 2026-11-02 2026-11-03; do
  "$NS_BIN" ingest --store "$R" --night $n --manifest "$T/gen/manifest.csv" --quiet "$T/gen/$n" >/dev/null
done
check "re-ingesting the quarantined nights restores every clip once" $PY -c "import h5py,sys
c=h5py.File(sys.argv[1]+'/catalog.h5','r')['clips'][:]; s=[r['sha256'] for r in c]
assert len(s)==48 and len(set(s))==48, len(s)" "$R"
check "verify passes" "$NS_BIN" verify --store "$R" --quiet
before=$(store_hashes "$S")
check "verify --repair on a sound store does nothing" sh -c "'$NS_BIN' verify --store '$S' --repair | grep -q 'nothing to repair'"
check "...and changes nothing" test "$before" = "$(store_hashes "$S")"

finish
