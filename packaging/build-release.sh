#!/bin/bash
# Build the release binaries the way they are shipped.
#
# /usr/bin/jitsudo is a static PIE linked against musl: a setuid binary's cost is
# mostly its start-up. Dynamic linking costs the loader's work (mapping and relocating
# libraries, LD_* handling); glibc's start-up, even static, also probes the CPU caches
# with dozens of CPUID instructions, and in a virtual machine each one traps to the
# hypervisor: on the benchmark VM that was 0.6 ms of a 1.8 ms run. musl does neither
# (benches/RESULTS.md). musl has no NSS, so user and group lookups read /etc/passwd and
# /etc/group and, for accounts only NSS knows (LDAP, SSSD), run the glibc-built helper
# /usr/libexec/jitsudo/jitsudo-nss (core/src/system/nss.rs). Everything else (jitsudoctl,
# the helpers, the PAM module, jitsudod) is built normally against glibc, so packages
# are built on the release they are for.
#
#   packaging/build-release.sh                     every binary and library of the workspace
#   packaging/build-release.sh -p jitsudo          what the jitsudo package ships
#   packaging/build-release.sh -p jitsudo -p jitsudod   ... and the jitsudod package
#
# The jitsudo package also ships the PAM module (pam_jitsudo.so, a cdylib, which
# `--bins` does not build), the PAM helper jitsudo-auth, the network helper jitsudo-net
# and jitsudoctl (each its own crate), so with `-p jitsudo` (or no arguments) they are
# built too.
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
# What the build needs beyond Rust, checked before the glibc build's minutes of LTO (install.sh
# installs all of it).
musl=x86_64-unknown-linux-musl
for tool in file:file; do
    command -v "${tool%%:*}" >/dev/null || {
        echo "build-release.sh: ${tool%%:*} is missing (apt-get install ${tool#*:})" >&2
        exit 1
    }
done
[ -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ] || rustup target add "$musl"
cargo build --release --locked "${packages[@]}" --bins
if $jitsudo_package; then
    cargo build --release --locked -p pam_jitsudo -p jitsudo-auth -p jitsudo-net -p jitsudoctl
fi
# The setuid binary is pure Rust (no TLS: that is jitsudo-net's, built for glibc above),
# so the musl build needs no C compiler for musl, only Rust's own musl target.
# The size-optimized profile `setuid` (Cargo.toml).
cargo build --profile setuid --locked -p jitsudo --bin jitsudo --target "$musl"
install -m 0755 "target/$musl/setuid/jitsudo" target/release/jitsudo
file target/release/jitsudo | grep -q "static-pie linked" || {
    echo "build-release.sh: target/release/jitsudo is not a static PIE" >&2
    exit 1
}
