#!/bin/bash
# Build the release binaries the way they are shipped.
#
# /usr/bin/jitsudo is linked as a static PIE: a setuid binary's cost is mostly its
# start-up, and with no shared libraries to map and relocate (and no LD_* handling for
# the loader to do) a run costs about a tenth less; see benches/RESULTS.md. User and group
# lookups read /etc/passwd and /etc/group directly and use NSS only for users not in
# them; that NSS fallback dlopens the glibc modules at run time, which is why packages
# are built on the release they are for.
#
#   packaging/build-release.sh            every binary of the workspace
#   packaging/build-release.sh -p jitsudo only jitsudo and jitsudoctl
set -euo pipefail
cd "$(dirname "$0")/.."
packages=("$@")
[ "${#packages[@]}" -gt 0 ] || packages=(--workspace)
cargo build --release --locked "${packages[@]}" --bins
cargo rustc --release --locked -p jitsudo --bin jitsudo -- -C target-feature=+crt-static
file target/release/jitsudo | grep -q "static-pie linked" || {
    echo "build-release.sh: target/release/jitsudo is not a static PIE" >&2
    exit 1
}
