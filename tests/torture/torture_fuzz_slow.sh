#!/usr/bin/env bash
# torture_fuzz_slow.sh -- every libFuzzer target of tests/fuzz for a fixed
# budget (NS_FUZZ_SECONDS, default 15 s each), after replaying the regression
# inputs of tests/corpus/fuzz/.  Builds the clang fuzz tree under the build
# directory itself (ccache when present).  Main CI pass only (the targets
# carry their own ASan+UBSan); skipped (77) without clang's libFuzzer.
set -euo pipefail
: "${NS_SRC:?}" "${NS_BIN:?}" "${NS_GEN:?}"
build=$(dirname "$NS_BIN")
BUILD_DIR=$build FUZZ_BUILD=$build/fuzz NS_FUZZ_JOBS=2 \
  NS_FUZZ_SEED=${NS_FUZZ_SEED:-1} exec "$NS_SRC/tools/fuzz.sh" "${NS_FUZZ_SECONDS:-15}"
