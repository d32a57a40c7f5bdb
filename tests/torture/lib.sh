# lib.sh -- shared by the torture scripts: the e2e helpers plus a small
# store (4 nights, 2 cameras, 6 clips of 4 frames, embedded) and a reference.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# A pid above the kernel's pid_max: a writer that is certainly gone.
DEAD=99999999

make_store() {
  "$NS_GEN" glove --out "$T/gen" --nights 4 --cameras 2 --clips 6 --frames 4 \
    --width 160 --height 120 --seed 1 >/dev/null || return 1
  for n in "$T/gen"/20*; do
    "$NS_BIN" ingest --store "$T/store" --night "$(basename "$n")" \
      --manifest "$T/gen/manifest.csv" --quiet "$n" >/dev/null || return 1
  done
  "$NS_BIN" embed --store "$T/store" --device cpu --quiet >/dev/null 2>&1 || return 1
  "$NS_BIN" reference build --store "$T/store" --nights 2026-11-01..2026-11-03 \
    --out "$T/ref.h5" >/dev/null
}
# Hashes of every file in the store, for "nothing changed by a byte".
store_hashes() { (cd "$1" && find . -type f ! -name lock | sort | xargs -r sha256sum); }
