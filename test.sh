#!/bin/bash
# Run every test jitsudo has, as root: formatting and lints, unit tests, the
# end-to-end suites (real setuid binary, real users, real sshd/PAM, real service,
# SQLite and PostgreSQL), man page checks and the package build/install test.
# Installs what the tests need from Debian and crates.io first.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the end-to-end suites install a setuid binary and create users in private"
    echo "mount namespaces; run as root." >&2
    exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
apt_packages=(
    util-linux          # unshare, nsenter, setpriv, runuser
    g++                 # libfuzzer-sys (fuzz/run.sh) builds libFuzzer, which is C++
    python3
    python3-venv        # the venv the schema-driven API fuzz (schemathesis) runs from
    libpam0g-dev        # building pam_jitsudo
    pamtester
    openssh-server      # sshd for the PAM end-to-end test
    openssh-client
    postgresql          # the service's PostgreSQL test suite starts its own server
    mandoc              # man page lint
    lintian rpm rpmlint # package checks
    dpkg-dev
    chromium            # the approver web page is tested in a real headless browser
    chromium-driver
    openssl             # test certificates for the service's TLS tests
    libnss-extrausers   # a real NSS module for users not in /etc/passwd (tests/e2e/accounts.rs)
    file                # build-release.sh checks the static PIE
    rsyslog             # the syslog daemon install.sh --demo starts in its throwaway root
    iproute2            # loopback in the throwaway roots' network namespace
    sudo                # sudoreplay: jitsudo's session recordings must replay in it
    less vim man-db git tar findutils mawk systemd  # the shell escapes of tests/attacks/escapes.rs
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm for a real OpenID provider (npm's oidc-provider, installed under target/ by
# server/tests/oidc.rs); a node that brings its own npm (NodeSource's) conflicts with
# Debian's npm package, so only what is missing is installed.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# server/tests/openapi.rs: schemathesis, from PyPI, in a venv of its own under target/.
if ! target/schemathesis/bin/schemathesis --version >/dev/null 2>&1; then
    rm -rf target/schemathesis
    /usr/bin/python3 -m venv target/schemathesis
    target/schemathesis/bin/pip install -q --disable-pip-version-check schemathesis
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build --workspace (the PAM tests load the built module; the service tests run the built binaries)"
cargo build --workspace --locked

step "cargo test --workspace (unit and end-to-end, as root)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# The end-to-end suites (tests/e2e and tests/attacks) must really have run (as root,
# with tests executed): an empty or skipped run would otherwise look green.
passed_in() { # the passed count of the test binary built from $1 (e.g. tests/e2e/main.rs)
    awk -v target="Running $1 " 'index($0, target){f=1} f && /^test result:/{print $4; exit}' "$log"
}
e2e_passed="$(passed_in tests/e2e/main.rs)"
if [ -z "$e2e_passed" ] || [ "$e2e_passed" -lt 30 ]; then
    echo "test.sh: the end-to-end suite did not run (passed: ${e2e_passed:-none})" >&2
    exit 1
fi
attacks_passed="$(passed_in tests/attacks/main.rs)"
if [ -z "$attacks_passed" ] || [ "$attacks_passed" -lt 30 ]; then
    echo "test.sh: the attack suite did not run (passed: ${attacks_passed:-none})" >&2
    exit 1
fi

step "the end-to-end and attack suites again, against the shipped build (static musl, release)"
# With jitsudod too: the same build (same features) as test-deb.sh's and install.sh's,
# which then find it current instead of building again.
packaging/build-release.sh -p jitsudo -p jitsudod
JITSUDO_TEST_BIN="$PWD/target/release/jitsudo" cargo test --locked --test e2e --test attacks 2>&1 | tee "$log"
# One "test result:" line per suite; both must have run, and as many tests must pass.
musl_results="$(grep -c '^test result:' "$log" || true)"
musl_passed="$(awk '/^test result:/{n += $4} END{print n + 0}' "$log")"
if [ "$musl_results" != 2 ] || [ "$musl_passed" != "$((e2e_passed + attacks_passed))" ]; then
    echo "test.sh: the shipped build passed $musl_passed tests in $musl_results suite(s), the debug build $((e2e_passed + attacks_passed)) in 2" >&2
    exit 1
fi

step "fuzz targets: build and a short run of each"
fuzz/run.sh "${FUZZ_SECONDS:-15}"

# Both install in a throwaway root (packaging/throwaway-root.sh) and check that the host's
# dpkg database and jitsudo files are as they were; both use the release build above.
step "packages: build, lint; install, upgrade, purge in a throwaway root"
packaging/test-deb.sh

step "./install.sh --demo in a throwaway root, as on a fresh machine"
packaging/test-install.sh

step "all tests passed"
