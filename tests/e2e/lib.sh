# lib.sh -- shared by the end-to-end scripts: paths, checks, the closing line.
# Environment from CTest: NS_BIN (nightshift), NS_GEN (nightshift-gen), NS_SRC, NS_TEST_TMP.
set -u
NS_BIN=${NS_BIN:?NS_BIN must name the nightshift binary}
NS_GEN=${NS_GEN:?NS_GEN must name the nightshift-gen binary}
NS_SRC=${NS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PY=/usr/bin/python3
base=${NS_TEST_TMP:-/tmp}
mkdir -p "$base"
T=$(mktemp -d "$base/$(basename "$0" .sh)-XXXXXX")
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
# check "description" command...   (passes when the command exits 0)
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# expect_rc WANT "description" command...
expect_rc() {
  local want=$1 d=$2; shift 2
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$d (exit $rc)"; else not_ok "$d (exit $rc, want $want)"; fi
}
# Clip ids and frame counts, sorted, of store $1 (order of commit may differ).
content() {
  $PY - "$1" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1] + "/catalog.h5", "r") as c:
    rows = sorted((r["sha256"].decode(), r["night"].decode(), r["camera"].decode(),
                   int(r["n_frames"])) for r in c["clips"][:])
for r in rows:
    print(*r)
PY
}
# SHA-256 of each shard the catalog of store $1 names (committed ones only:
# a killed writer's uncommitted shard is debris the next writer removes).
committed_hashes() {
  $PY - "$1" <<'PY' | (cd "$1" && xargs -r sha256sum)
import h5py, sys
with h5py.File(sys.argv[1] + "/catalog.h5", "r") as c:
    for r in c["shards"][:]:
        print(r["path"].decode())
PY
}
finish() {
  echo "$passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then rm -rf "$T"; exit 0; fi
  echo "scratch kept in $T"
  exit 1
}
# Hashes of every committed shard, for byte-identity checks.
shard_hashes() { (cd "$1" && find shards -name '*.h5' -type f | sort | xargs -r sha256sum); }
