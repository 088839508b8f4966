#!/bin/bash
# The long fuzz run recorded in docs/SECURITY.md: every target at once, each for SECONDS
# of wall time (default 3600), at nice 19 so the machine stays usable meanwhile. The
# corpus in fuzz/corpus/<target>/ grows and is kept for the next run. Prints one line
# per target; a crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
# (fuzz/run.sh is the short, sequential run CI does.)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-3600}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build --sanitizer none -O
bin=target/x86_64-unknown-linux-gnu/release
logs=$(mktemp -d)
targets=$(cargo fuzz list)
pids=()
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    nice -n 19 "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
        -print_final_stats=1 "corpus/$t" >"$logs/$t.log" 2>&1 &
    pids+=($!)
done
failed=0
i=0
for t in $targets; do
    status=0
    wait "${pids[$i]}" || status=$?
    i=$((i + 1))
    done_line=$(grep -E '^Done [0-9]+ runs' "$logs/$t.log" | tail -1 || true)
    corpus=$(find "corpus/$t" -type f | wc -l)
    if [ "$status" != 0 ] || [ -n "$(ls -A "artifacts/$t")" ]; then
        echo "$t: CRASH (exit $status); input in fuzz/artifacts/$t/, log $logs/$t.log"
        failed=1
    else
        echo "$t: ${done_line:-no summary (see $logs/$t.log)}; corpus $corpus inputs; no crash"
    fi
done
exit "$failed"
