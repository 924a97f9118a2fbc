#!/usr/bin/env bash
# Runs every cargo-fuzz target in the repository for a short time.
#
#   FUZZ_SECONDS=20 scripts/fuzz.sh          # all fuzz dirs, all targets
#   FUZZ_SECONDS=60 scripts/fuzz.sh ipv4 tcp # only targets with these names
#
# Every directory matching */fuzz/Cargo.toml is a cargo-fuzz project. Each
# target runs for ${FUZZ_SECONDS:-20} seconds; the script exits non-zero if
# any target crashes (panic, failed assertion, overflow, timeout or OOM).
# Crash inputs are left in <fuzz dir>/artifacts/<target>/ by libFuzzer.
#
# Stable Rust: cargo-fuzz defaults to AddressSanitizer (-s address), which
# needs the nightly-only -Zsanitizer flag. `-s none` drops the sanitizer;
# the coverage instrumentation cargo-fuzz adds (-Cpasses=sancov-module,
# -Cllvm-args=-sanitizer-coverage-*) and -Cdebug-assertions (which also
# turns on overflow checks) are all stable flags, so the build works on
# stable. The crates fuzzed here forbid unsafe code, so ASan adds little.
# RUSTUP_TOOLCHAIN=stable pins the toolchain even if a directory override
# selects nightly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${FUZZ_SECONDS:-20}"
export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# True if $1 is among the target names given on the command line (or none
# were given).
wanted() {
    [ "$#" -eq 1 ] && return 0
    local t="$1"; shift
    for w in "$@"; do [ "$w" = "$t" ] && return 0; done
    return 1
}

failed=()
ran=0
while IFS= read -r manifest; do
    fuzz_dir="$(dirname "$manifest")"
    crate_dir="$(dirname "$fuzz_dir")"
    grep -q 'cargo-fuzz *= *true' "$manifest" || continue
    echo "== $fuzz_dir" >&2
    # Build once up front so a compile error is reported as such.
    (cd "$crate_dir" && cargo fuzz build -s none --fuzz-dir "$fuzz_dir")
    for target in $(cd "$crate_dir" && cargo fuzz list --fuzz-dir "$fuzz_dir"); do
        wanted "$target" "$@" || continue
        corpus="$fuzz_dir/corpus/$target"
        mkdir -p "$corpus"
        dirs=("$corpus")
        # Checked-in seeds (real packets) are read but never written.
        [ -d "$fuzz_dir/seeds/$target" ] && dirs+=("$fuzz_dir/seeds/$target")
        echo "== $target: ${secs}s" >&2
        if (cd "$crate_dir" && cargo fuzz run -s none --fuzz-dir "$fuzz_dir" "$target" \
                "${dirs[@]}" -- -max_total_time="$secs" -print_final_stats=1); then
            ran=$((ran + 1))
        else
            failed+=("$fuzz_dir:$target")
        fi
    done
done < <(find "$root" -path '*/target' -prune -o -path '*/fuzz/Cargo.toml' -print | sort)

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (see artifacts/ in each fuzz dir)" >&2
    exit 1
fi
if [ "$ran" -eq 0 ]; then
    echo "fuzz.sh: no fuzz targets found" >&2
    exit 1
fi
echo "fuzz.sh: $ran targets ran ${secs}s each, no crashes" >&2
