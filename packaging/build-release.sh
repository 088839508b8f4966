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
#   packaging/build-release.sh                     every binary and library of the workspace
#   packaging/build-release.sh -p jitsudo          what the jitsudo package ships
#   packaging/build-release.sh -p jitsudo -p jitsudod   ... and the jitsudod package
#
# The jitsudo package also ships the PAM module (pam_jitsudo.so, a cdylib, which
# `--bins` does not build) and the PAM helper jitsudo-auth (its own crate), so with
# `-p jitsudo` (or no arguments) both are built too.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=("$@")
[ "${#packages[@]}" -gt 0 ] || packages=(--workspace)
jitsudo_package=false
for ((i = 0; i < ${#packages[@]}; i++)); do
    case "${packages[i]}" in
    --workspace) jitsudo_package=true ;;
    -p | --package) [ "${packages[i + 1]:-}" != jitsudo ] || jitsudo_package=true ;;
    -pjitsudo | --package=jitsudo) jitsudo_package=true ;;
    esac
done
cargo build --release --locked "${packages[@]}" --bins
if $jitsudo_package; then
    cargo build --release --locked -p pam_jitsudo -p jitsudo-auth
fi
cargo rustc --release --locked -p jitsudo --bin jitsudo -- -C target-feature=+crt-static
file target/release/jitsudo | grep -q "static-pie linked" || {
    echo "build-release.sh: target/release/jitsudo is not a static PIE" >&2
    exit 1
}
