#!/usr/bin/env bash
# The kill suite of torture_kill_slow.sh run long (soak: by hand, `ctest -L
# soak`): $NS_KILL_RANDOM (200) random kills per command and every shim
# point of every command, nightly's included (the slow run takes every
# $NS_KILL_NIGHTLY_STRIDE-th of nightly's).
export NS_KILL_RANDOM=${NS_KILL_RANDOM:-200}
export NS_KILL_NIGHTLY_STRIDE=${NS_KILL_NIGHTLY_STRIDE:-1}
exec bash "$(dirname "$0")/torture_kill_slow.sh"
