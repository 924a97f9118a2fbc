#!/usr/bin/env bash
# The whole test suite, as root on a fresh machine: installs what it needs,
# then runs every crate's tests, the fuzz targets for a while, and the
# benchmark binary once so it is known to work.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo test (release build with debug assertions)"
cargo test --workspace --profile test-release 2>&1

echo "== benchmark smoke run"
cargo run -q --profile test-release -p vswitch-bench -- graph --seconds 0.2 --json --quick >/dev/null

if [ "${VSWITCH_SKIP_FUZZ:-0}" != 1 ]; then
    echo "== fuzz targets, ${FUZZ_SECONDS:=15}s each"
    FUZZ_SECONDS=$FUZZ_SECONDS scripts/fuzz.sh
fi
echo "== all tests passed"
