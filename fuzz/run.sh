#!/bin/bash
# Build every fuzz target and run each for a bounded time, one after the other
# (default 15 s, as CI does; the hour-long runs recorded in docs/SECURITY.md are
# fuzz/long-run.sh, all targets at once). cargo-fuzz needs
# nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails this script; turn
# it into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-15}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build --sanitizer none -O
for target in $(cargo fuzz list); do
    echo "fuzz: $target for ${seconds}s"
    cargo fuzz run --sanitizer none -O "$target" -- -max_total_time="$seconds" 2>&1 | grep -E "^Done|ERROR|panicked" || true
    if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz: $target found crashing inputs in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
