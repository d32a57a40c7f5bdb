#!/usr/bin/env bash
# A real full disk (issue 16): the store on a small tmpfs, filled mid-ingest
# and mid-embed.  Each run must exit 1 with one line naming the file, leave
# the store intact (verify passes, earlier shards byte-identical), tell the
# truth in the summary, and succeed on the rerun once space is freed.
# Needs root (or CAP_SYS_ADMIN) to mount; skips with 77 otherwise.
source "$(dirname "$0")/lib.sh"
M=$T/mnt
mkdir -p "$M"
if ! mount -t tmpfs -o size=16m tmpfs "$M" 2>"$T/mount.err"; then
  echo "SKIP: cannot mount a tmpfs: $(head -c 200 "$T/mount.err")"
  rm -rf "$T"
  exit 77
fi
trap 'umount "$M" 2>/dev/null' EXIT
S=$M/store
"$NS_GEN" glove --out "$T/gen" --nights 3 --cameras 2 --clips 6 --frames 5 \
  --width 160 --height 120 --seed 1 >/dev/null || { echo "generator failed"; exit 1; }
ing() { # NIGHT
  "$NS_BIN" ingest --store "$S" --night "$1" --manifest "$T/gen/manifest.csv" --shard-frames 20 --size 112 \
    --summary "$T/sum.json" --quiet "$T/gen/$1" >/dev/null
}
clips() { $PY -c "import h5py,sys;print(len(h5py.File(sys.argv[1],'r')['clips']))" "$S/catalog.h5"; }
one_line_naming_file() { # ERRFILE
  [ "$(wc -l <"$1")" -eq 1 ] && grep -qE "^nightshift [a-z]+: .*'[^']+'" "$1" &&
    ! grep -q HDF5-DIAG "$1"
}
expect_rc 0 "night 1 fits" ing 2026-11-01
before=$(shard_hashes "$S")
n0=$(clips)
# Fill the disk to a few kB short of the next shard, at several levels, so the
# ENOSPC lands in the shard's data, its close, the catalog and the view.
avail=$(df -k --output=avail "$M" | tail -1)
for left in 40 300 700 1400; do
  fill=$((avail - left))
  [ "$fill" -gt 0 ] || continue
  rm -f "$M/fill"
  head -c $((fill * 1024)) /dev/zero >"$M/fill" 2>/dev/null
  rc=0
  ing 2026-11-02 2>"$T/err.txt" || rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "ingest with ${left} kB left fits (exit 0)"
    continue
  fi
  check "ingest with ${left} kB left: exit 1 (got $rc)" test "$rc" -eq 1
  check "  one line naming the file: $(head -c 160 "$T/err.txt")" one_line_naming_file "$T/err.txt"
  check "  verify passes" "$NS_BIN" verify --store "$S" --quiet
  check "  earlier shards byte-identical" test -z "$(comm -23 <(sort <<<"$before") <(shard_hashes "$S" | sort))"
  got=$($PY -c "import json,sys;print(json.load(open(sys.argv[1]))['clips']['ingested'])" "$T/sum.json")
  check "  the summary's $got clips are the catalog's $(($(clips) - n0)) new ones" \
    test "$got" -eq "$(($(clips) - n0))"
  n0=$(clips)
  before=$(shard_hashes "$S")
done
rm -f "$M/fill"
expect_rc 0 "ingest succeeds once space is freed" ing 2026-11-02
check "night 2 is complete (24 clips in all)" test "$(clips)" -eq 24
check "verify passes" "$NS_BIN" verify --store "$S" --quiet

# Mid-embed: embeddings are small (512 floats a frame); leave room for some.
emb() { "$NS_BIN" embed --store "$S" --device cpu --quiet >/dev/null; }
avail=$(df -k --output=avail "$M" | tail -1)
for left in 8 60; do
  rm -f "$M/fill"
  head -c $(((avail - left) * 1024)) /dev/zero >"$M/fill" 2>/dev/null
  before=$(store_hashes "$S")
  rc=0
  emb 2>"$T/err.txt" || rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "embed with ${left} kB left fits (exit 0)"
    continue
  fi
  check "embed with ${left} kB left: exit 1 (got $rc)" test "$rc" -eq 1
  check "  one line naming the file: $(head -c 160 "$T/err.txt")" one_line_naming_file "$T/err.txt"
  check "  nothing committed earlier changed" \
    test -z "$(comm -23 <(sort <<<"$before") <(store_hashes "$S" | sort))"
  check "  no temp file left" test -z "$(find "$S" -name '*.tmp.*')"
  check "  verify passes" "$NS_BIN" verify --store "$S" --quiet
done
rm -f "$M/fill"
expect_rc 0 "embed succeeds once space is freed" emb
umount "$M" && trap - EXIT
finish
