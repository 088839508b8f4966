#!/bin/bash
# Packaging test: build the .deb and .rpm, lint them, and exercise the .deb on this
# machine the way an admin would: install with apt, check owners, modes and conffiles,
# run a minted grant through the installed setuid /usr/bin/jitsudo as an unprivileged
# user, reinstall and upgrade keeping a modified config, and purge.
#
# Run as root from anywhere in the tree:  bash packaging/test-deb.sh
# It installs what it needs (cargo-deb, cargo-generate-rpm, lintian, rpm, rpmlint), and
# leaves the machine as it found it: the package is purged and the test user removed
# even when a step fails. It refuses to run if jitsudo is installed already.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}
check() { # check DESCRIPTION COMMAND...: run COMMAND, fail with DESCRIPTION if it fails
	local what=$1
	shift
	"$@" || fail "$what"
	printf 'ok: %s\n' "$what"
}

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges the package"

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' jitsudo 2>/dev/null || true)" = "ii " ]; }
known() { dpkg-query -W jitsudo >/dev/null 2>&1; }
if known; then
	fail "a jitsudo package is already known to dpkg; this test installs and purges it (remove it first: apt-get purge jitsudo)"
fi
for path in /etc/jitsudo /var/lib/jitsudo /usr/bin/jitsudo; do
	[ ! -e "$path" ] || fail "$path exists but no package owns it; not touching it"
done

# ---- clean-up, whatever happens ---------------------------------------------------------
WORK=$(mktemp -d /tmp/jitsudo-pkgtest.XXXXXX)
TEST_USER=jitsudo-pt$$
SINK_PID=
cleanup() {
	local status=$?
	set +e
	[ -z "$SINK_PID" ] || kill "$SINK_PID" 2>/dev/null
	if known; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q jitsudo >"$WORK/cleanup.log" 2>&1 ||
			dpkg --purge jitsudo >>"$WORK/cleanup.log" 2>&1
	fi
	if id "$TEST_USER" >/dev/null 2>&1; then
		userdel "$TEST_USER"
		getent group "$TEST_USER" >/dev/null && groupdel "$TEST_USER"
	fi
	rm -rf "$WORK"
	if [ "$status" = 0 ]; then
		printf '\npackaging test passed\n'
	else
		printf '\npackaging test FAILED (status %s)\n' "$status" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools ------------------------------------------------------------------------------
say "tools"
export PATH="$HOME/.cargo/bin:$PATH"
apt_missing=()
for tool in lintian:lintian rpm:rpm rpmlint:rpmlint python3:python3 setpriv:util-linux; do
	command -v "${tool%%:*}" >/dev/null || apt_missing+=("${tool#*:}")
done
if [ ${#apt_missing[@]} -gt 0 ]; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_missing[@]}"
fi
cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
cargo generate-rpm --version >/dev/null 2>&1 || cargo install cargo-generate-rpm --locked

# ---- build ------------------------------------------------------------------------------
say "build"
cargo run -q -p xtask -- check
# The shipped build: /usr/bin/jitsudo as a static PIE (see build-release.sh).
packaging/build-release.sh -p jitsudo
cargo deb --locked --no-build -o "$WORK/"
DEB=$(ls "$WORK"/jitsudo_*.deb)
VERSION=$(dpkg-deb -f "$DEB" Version)
# Same binaries, newer version: to test a real upgrade.
cargo deb --locked --no-build --deb-version "$VERSION+pkgtest1" -o "$WORK/upgrade.deb"
cargo generate-rpm -o "$WORK/"
RPM=$(ls "$WORK"/jitsudo-*.rpm)

# ---- lint -------------------------------------------------------------------------------
say "lintian"
lintian --fail-on error,warning "$DEB" 2>&1 | tee "$WORK/lintian.txt" ||
	fail "lintian reported errors or warnings"
no_lintian_findings() { ! grep -qE '^[EW]: ' "$WORK/lintian.txt"; }
check "lintian: no errors or warnings" no_lintian_findings
lintian --fail-on none --show-overrides "$DEB" >"$WORK/lintian-overrides.txt" 2>&1
grep '^O: ' "$WORK/lintian-overrides.txt" >"$WORK/overridden.txt" || true
check "lintian: overridden are only the setuid and static-PIE findings on /usr/bin/jitsudo" \
	diff -u - "$WORK/overridden.txt" <<'EOF'
O: jitsudo: elevated-privileges 4755 0/0 [usr/bin/jitsudo]
O: jitsudo: shared-library-lacks-prerequisites [usr/bin/jitsudo]
EOF

say "rpmlint"
rpmlint -r packaging/jitsudo.rpmlintrc "$RPM" 2>&1 | tee "$WORK/rpmlint.txt" ||
	fail "rpmlint reported errors"
check "rpmlint: 0 errors, 0 warnings" grep -q ' 0 errors, 0 warnings' "$WORK/rpmlint.txt"

# ---- the .rpm has the .deb's modes ------------------------------------------------------
say "rpm -qlvp"
rpm -qlvp "$RPM" | tee "$WORK/rpm-files.txt"
rpm_mode() { awk -v p="$1" '$NF == p { print $1, $3, $4 }' "$WORK/rpm-files.txt"; }
check "rpm: /usr/bin/jitsudo is -rwsr-xr-x root root" test "$(rpm_mode /usr/bin/jitsudo)" = "-rwsr-xr-x root root"
check "rpm: /usr/bin/jitsudoctl is -rwxr-xr-x root root" test "$(rpm_mode /usr/bin/jitsudoctl)" = "-rwxr-xr-x root root"
check "rpm: jitsudo.toml is -rw-r--r-- root root" test "$(rpm_mode /etc/jitsudo/jitsudo.toml)" = "-rw-r--r-- root root"
rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" >"$WORK/rpm-flags.txt"
check "rpm: jitsudo.toml is %config(noreplace)" grep -qx '/etc/jitsudo/jitsudo.toml cn' "$WORK/rpm-flags.txt"
rpm -qp --scripts "$RPM" >"$WORK/rpm-scripts.txt"
check "rpm: %post creates /var/lib/jitsudo with mode 0700" \
	grep -q 'install -d -o root -g root -m 0700 /var/lib/jitsudo' "$WORK/rpm-scripts.txt"
# Every file in both packages has the same mode (the .deb compresses man pages and
# the changelog, and keeps zsh completions in Debian's directory).
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $NF); print $1, "/" $NF }' |
	sed -e 's/\.gz$//' -e 's#/zsh/vendor-completions/#/zsh/site-functions/#' | sort -k2 >"$WORK/deb-modes.txt"
awk '$1 !~ /^d/ { print $1, $NF }' "$WORK/rpm-files.txt" | sort -k2 >"$WORK/rpm-modes.txt"
join -1 2 -2 2 "$WORK/deb-modes.txt" "$WORK/rpm-modes.txt" >"$WORK/both.txt"
check "rpm and deb share at least the binaries, config, units, pages and completions" \
	test "$(wc -l <"$WORK/both.txt")" -ge 14
same_modes() { awk '$2 != $3 { print "mode differs:", $0; bad = 1 } END { exit bad }' "$WORK/both.txt"; }
check "every file in both packages has the same mode" same_modes

# ---- install ----------------------------------------------------------------------------
say "install"
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null; }
apt_install "$DEB"
check "package installed" installed
mode_of() { stat -c '%a %U:%G' "$1"; }
check "/usr/bin/jitsudo is 4755 root:root" test "$(mode_of /usr/bin/jitsudo)" = "4755 root:root"
check "/usr/bin/jitsudoctl is 755 root:root" test "$(mode_of /usr/bin/jitsudoctl)" = "755 root:root"
check "/var/lib/jitsudo is 700 root:root" test "$(mode_of /var/lib/jitsudo)" = "700 root:root"
check "/etc/jitsudo/jitsudo.toml is 644 root:root" test "$(mode_of /etc/jitsudo/jitsudo.toml)" = "644 root:root"
dpkg-query -W -f='${Conffiles}\n' jitsudo >"$WORK/conffiles.txt"
check "jitsudo.toml is a conffile" grep -qE '^ /etc/jitsudo/jitsudo.toml [0-9a-f]{32}$' "$WORK/conffiles.txt"
for f in /usr/share/man/man8/jitsudo.8.gz /usr/share/man/man5/jitsudo.toml.5.gz \
	/usr/share/man/man1/jitsudoctl.1.gz /usr/share/bash-completion/completions/jitsudo \
	/usr/share/zsh/vendor-completions/_jitsudo /usr/share/fish/vendor_completions.d/jitsudo.fish \
	/usr/lib/systemd/system/jitsudo-sync.service /usr/lib/systemd/system/jitsudo-sync.timer \
	/usr/share/doc/jitsudo/copyright /usr/share/doc/jitsudo/changelog.gz; do
	check "installed $f" test -f "$f"
done
check "bash completion parses" bash -n /usr/share/bash-completion/completions/jitsudo
if command -v zsh >/dev/null; then check "zsh completion parses" zsh -n /usr/share/zsh/vendor-completions/_jitsudo; fi
if command -v fish >/dev/null; then check "fish completion parses" fish -n /usr/share/fish/vendor_completions.d/jitsudo.fish; fi
check "sync timer enabled" test -L /etc/systemd/system/timers.target.wants/jitsudo-sync.timer
version_line=$(/usr/bin/jitsudo --version)
check "jitsudo --version names the version" test "${version_line#jitsudo "${VERSION%%[-+]*}"}" != "$version_line"

# ---- a minted grant through the installed binary ----------------------------------------
say "grant"
useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$TEST_USER"
as_user() { (cd / && setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups -- "$@"); }

SOCK=$WORK/syslog.sock
LOG=$WORK/syslog.txt
python3 - "$SOCK" "$LOG" <<'EOF' &
import socket, sys
sock_path, log_path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
with open(log_path, "ab", buffering=0) as log:
    while True:
        log.write(s.recv(65536) + b"\n")
EOF
SINK_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
check "syslog sink listening" test -S "$SOCK"

CONF=/etc/jitsudo/jitsudo.toml
HOST=pkgtest-host
jitsudoctl keygen --id pkgtest --out "$WORK/keys" >"$WORK/trusted_key.toml"
sed -i -e "s/^host = .*/host = \"$HOST\"/" \
	-e "s|^# syslog_socket = .*|syslog_socket = \"$SOCK\"|" "$CONF"
printf '\n' >>"$CONF"
cat "$WORK/trusted_key.toml" >>"$CONF"
check "config edited in place" grep -q "^syslog_socket = \"$SOCK\"" "$CONF"

jitsudoctl mint --key "$WORK/keys/pkgtest.key" --user "$TEST_USER" --host "$HOST" \
	--command '/usr/bin/id -u' --command '/bin/sh -c exit\ 7' --for 10m --reason "package test" \
	>"$WORK/grant.txt"
jitsudoctl verify --config "$CONF" - <"$WORK/grant.txt" >"$WORK/claims.json" 2>"$WORK/verify.txt"
check "jitsudoctl verify: signature valid" grep -q 'signature valid' "$WORK/verify.txt"
GRANT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jti"])' "$WORK/claims.json")

as_user /usr/bin/jitsudo --import - <"$WORK/grant.txt"
as_user /usr/bin/jitsudo -l >"$WORK/list.txt"
check "the grant is listed" grep -q "^${GRANT:0:12} .*/usr/bin/id -u" "$WORK/list.txt"
check "allowed command runs as root" test "$(as_user /usr/bin/jitsudo /usr/bin/id -u)" = 0
check "bare name found through secure_path" test "$(as_user /usr/bin/jitsudo id -u)" = 0
set +e
as_user /usr/bin/jitsudo /bin/sh -c 'exit 7'
status=$?
as_user /usr/bin/jitsudo /usr/bin/id 2>"$WORK/denied.txt"
denied=$?
set -e
check "exit status is the command's" test "$status" = 7
check "a command outside the grant is refused with status 1" test "$denied" = 1
check "the refusal says why" grep -q "no grant allows '/usr/bin/id' as root on $HOST" "$WORK/denied.txt"
sleep 0.2
# authpriv.notice is <85>, authpriv.alert <81>.
check "syslog: allowed run logged" \
	grep -q "^<85>.* jitsudo\[[0-9]*\]: $TEST_USER : TTY=[^;]* ; PWD=/ ; USER=root ; GRANT=$GRANT ; COMMAND=/usr/bin/id -u$" "$LOG"
check "syslog: refusal logged" \
	grep -q "^<81>.* jitsudo\[[0-9]*\]: $TEST_USER : command not allowed: no grant ; .* ; COMMAND=/usr/bin/id$" "$LOG"
check "grant cache is root-only" test "$(stat -c '%a %U' /var/lib/jitsudo/users/"$(id -u "$TEST_USER")".json)" = "600 root"

# ---- reinstall and upgrade keep the modified config and the state ------------------------
say "reinstall"
cp "$CONF" "$WORK/conf.before"
apt_install --reinstall "$DEB"
check "reinstall kept the modified config" cmp -s "$CONF" "$WORK/conf.before"
check "reinstall kept the cached grant" test "$(as_user /usr/bin/jitsudo /usr/bin/id -u)" = 0

say "upgrade"
apt_install "$WORK/upgrade.deb"
check "upgraded" test "$(dpkg-query -W -f='${Version}' jitsudo)" = "$VERSION+pkgtest1"
check "upgrade kept the modified config" cmp -s "$CONF" "$WORK/conf.before"
no_dpkg_leftovers() { ! compgen -G '/etc/jitsudo/*.dpkg-*' >/dev/null; }
check "no .dpkg-dist or .dpkg-old left" no_dpkg_leftovers
check "upgrade kept the cached grant" test "$(as_user /usr/bin/jitsudo /usr/bin/id -u)" = 0
check "still 4755 root:root after upgrade" test "$(mode_of /usr/bin/jitsudo)" = "4755 root:root"
check "still 700 after upgrade" test "$(mode_of /var/lib/jitsudo)" = "700 root:root"

# ---- purge ------------------------------------------------------------------------------
say "purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q jitsudo </dev/null
not_known() { ! known; }
check "package purged" not_known
check "config gone" test ! -e /etc/jitsudo
check "state gone" test ! -e /var/lib/jitsudo
check "binaries gone" test ! -e /usr/bin/jitsudo -a ! -e /usr/bin/jitsudoctl
check "timer link gone" test ! -L /etc/systemd/system/timers.target.wants/jitsudo-sync.timer
