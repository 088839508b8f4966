#!/bin/bash
# Packaging test: build the .deb and .rpm of both packages (jitsudo, with the PAM
# module, and the approval service jitsudod), lint them, and exercise the .debs the way
# an admin would: install with apt, check owners, modes and conffiles, run a minted
# grant through the installed setuid /usr/bin/jitsudo as an unprivileged user, load the
# installed pam_jitsudo.so with pamtester, start the installed jitsudod as its system
# user and ask it for /healthz, reinstall and upgrade keeping a modified config, remove
# (state kept) and purge (state gone).
#
# Run as root from anywhere in the tree:  bash packaging/test-deb.sh
# It installs what it needs on the host (cargo-deb, cargo-generate-rpm, lintian, rpm,
# rpmlint, pamtester) and builds and lints there; everything from the installation on
# runs in a throwaway root (packaging/throwaway-root.sh: overlays over /etc, /usr, /var,
# ..., private PID and network namespaces), so the host's dpkg database, /etc/jitsudo and
# /usr/bin/jitsudo are never touched, and a source installation (./install.sh) or an
# installed package on the host does not get in the way: in the throwaway root they are
# removed first. throwaway-root.sh checks that the host is as it was afterwards.
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

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges the package (in a throwaway root)"

PACKAGES=(jitsudo jitsudod)
installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "${1:-jitsudo}" 2>/dev/null || true)" = "ii " ]; }
known() { # known [PACKAGE]: is it (or, without one, either package) known to dpkg?
	local pkg
	for pkg in "${@:-${PACKAGES[@]}}"; do
		dpkg-query -W "$pkg" >/dev/null 2>&1 && return 0
	done
	return 1
}

if [ "${1:-}" = --in-throwaway-root ]; then
	phase=install
	[ -n "${JITSUDO_THROWAWAY_UPPER:-}" ] || fail "--in-throwaway-root: not run by packaging/throwaway-root.sh"
	[ -d "${WORK:-}" ] || fail "--in-throwaway-root: WORK is not set to the build's directory"
else
	phase=build
	WORK=$(mktemp -d /tmp/jitsudo-pkgtest.XXXXXX)
	export WORK
fi

# ---- clean-up, whatever happens ---------------------------------------------------------
TEST_USER=jitsudo-pt$$
SINK_PID=
SERVICE_PID=
cleanup() {
	local status=$?
	set +e
	if [ "$phase" = install ]; then
		# The throwaway root's files and packages go with it; the processes are killed
		# with its PID namespace, but stopping them here keeps the order clear.
		[ -z "$SINK_PID" ] || kill "$SINK_PID" 2>/dev/null
		if [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null; then
			wait "$SERVICE_PID" 2>/dev/null
		fi
		exit "$status"
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

# On the host, up to the "install" section: tools, build, lint. The rest runs in the
# throwaway root, started at the end of this block.
if [ "$phase" = build ]; then
# ---- tools ------------------------------------------------------------------------------
say "tools"
export PATH="$HOME/.cargo/bin:$PATH"
apt_missing=()
for tool in lintian:lintian rpm:rpm rpmlint:rpmlint python3:python3 setpriv:util-linux \
	pamtester:pamtester nm:binutils file:file ip:iproute2 unshare:util-linux; do
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
# Also builds the PAM module and the PAM helper (the jitsudo package ships them).
packaging/build-release.sh -p jitsudo -p jitsudod
cargo deb --locked --no-build -o "$WORK/"
cargo deb --locked --no-build -p jitsudod -o "$WORK/"
DEB=$(ls "$WORK"/jitsudo_*.deb)
DEB_D=$(ls "$WORK"/jitsudod_*.deb)
VERSION=$(dpkg-deb -f "$DEB" Version)
# Same binaries, newer version: to test a real upgrade.
cargo deb --locked --no-build --deb-version "$VERSION+pkgtest1" -o "$WORK/upgrade.deb"
cargo generate-rpm -o "$WORK/"
cargo generate-rpm -p server -o "$WORK/"
RPM=$(ls "$WORK"/jitsudo-[0-9]*.rpm)
RPM_D=$(ls "$WORK"/jitsudod-[0-9]*.rpm)

# ---- lint -------------------------------------------------------------------------------
say "lintian"
lintian --fail-on error,warning "$DEB" "$DEB_D" 2>&1 | tee "$WORK/lintian.txt" ||
	fail "lintian reported errors or warnings"
no_lintian_findings() { ! grep -qE '^[EW]: ' "$WORK/lintian.txt"; }
check "lintian: no errors or warnings in either package" no_lintian_findings
lintian --fail-on none --show-overrides "$DEB" "$DEB_D" >"$WORK/lintian-overrides.txt" 2>&1
grep '^O: ' "$WORK/lintian-overrides.txt" >"$WORK/overridden.txt" || true
check "lintian: overridden are only the setuid and static-PIE findings on /usr/bin/jitsudo" \
	diff -u - "$WORK/overridden.txt" <<'EOF'
O: jitsudo: elevated-privileges 4755 0/0 [usr/bin/jitsudo]
O: jitsudo: shared-library-lacks-prerequisites [usr/bin/jitsudo]
EOF
check "jitsudo depends on libpam (the PAM module and helper need it)" \
	sh -c "dpkg-deb -f '$DEB' Depends | grep -q 'libpam0g'"
check "jitsudod depends on adduser (its post-install script creates the user)" \
	sh -c "dpkg-deb -f '$DEB_D' Depends | grep -q 'adduser'"

say "rpmlint"
rpmlint -r packaging/jitsudo.rpmlintrc "$RPM" 2>&1 | tee "$WORK/rpmlint.txt" ||
	fail "rpmlint reported errors"
check "rpmlint: 0 errors, 0 warnings" grep -q ' 0 errors, 0 warnings' "$WORK/rpmlint.txt"
rpmlint -r packaging/jitsudod/jitsudod.rpmlintrc "$RPM_D" 2>&1 | tee "$WORK/rpmlint-d.txt" ||
	fail "rpmlint reported errors in jitsudod"
check "rpmlint jitsudod: 0 errors, 0 warnings" grep -q ' 0 errors, 0 warnings' "$WORK/rpmlint-d.txt"

# ---- the .rpm has the .deb's modes ------------------------------------------------------
say "rpm -qlvp"
rpm -qlvp "$RPM" "$RPM_D" | tee "$WORK/rpm-files.txt"
rpm_mode() { awk -v p="$1" '$NF == p { print $1, $3, $4 }' "$WORK/rpm-files.txt"; }
check "rpm: /usr/bin/jitsudo is -rwsr-xr-x root root" test "$(rpm_mode /usr/bin/jitsudo)" = "-rwsr-xr-x root root"
check "rpm: /usr/bin/jitsudoctl is -rwxr-xr-x root root" test "$(rpm_mode /usr/bin/jitsudoctl)" = "-rwxr-xr-x root root"
check "rpm: jitsudo.toml is -rw-r--r-- root root" test "$(rpm_mode /etc/jitsudo/jitsudo.toml)" = "-rw-r--r-- root root"
check "rpm: the PAM helper is -rwxr-xr-x root root" test "$(rpm_mode /usr/libexec/jitsudo/jitsudo-auth)" = "-rwxr-xr-x root root"
check "rpm: the NSS helper is -rwxr-xr-x root root" test "$(rpm_mode /usr/libexec/jitsudo/jitsudo-nss)" = "-rwxr-xr-x root root"
check "rpm: the network helper is -rwxr-xr-x root root" test "$(rpm_mode /usr/libexec/jitsudo/jitsudo-net)" = "-rwxr-xr-x root root"
check "rpm: the PAM module is -rw-r--r-- root root in /usr/lib64/security" \
	test "$(rpm_mode /usr/lib64/security/pam_jitsudo.so)" = "-rw-r--r-- root root"
check "rpm: /usr/sbin/jitsudod is -rwxr-xr-x root root" test "$(rpm_mode /usr/sbin/jitsudod)" = "-rwxr-xr-x root root"
rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" "$RPM_D" >"$WORK/rpm-flags.txt"
check "rpm: jitsudo.toml is %config(noreplace)" grep -qx '/etc/jitsudo/jitsudo.toml cn' "$WORK/rpm-flags.txt"
check "rpm: /etc/pam.d/jitsudo is %config(noreplace)" grep -qx '/etc/pam.d/jitsudo cn' "$WORK/rpm-flags.txt"
check "rpm: jitsudod.toml is %config(noreplace)" grep -qx '/etc/jitsudo/jitsudod.toml cn' "$WORK/rpm-flags.txt"
check "rpm: policy.toml is %config(noreplace)" grep -qx '/etc/jitsudo/policy.toml cn' "$WORK/rpm-flags.txt"
rpm -qp --scripts "$RPM" >"$WORK/rpm-scripts.txt"
check "rpm: %post creates /var/lib/jitsudo with mode 0700" \
	grep -q 'install -d -o root -g root -m 0700 /var/lib/jitsudo' "$WORK/rpm-scripts.txt"
rpm -qp --scripts "$RPM_D" >"$WORK/rpm-scripts-d.txt"
check "rpm: jitsudod's %pre creates the system user" grep -q 'useradd -r -g jitsudod' "$WORK/rpm-scripts-d.txt"
# Every file in both formats has the same mode (the .deb compresses man pages and
# the changelog, and keeps zsh completions and the PAM module in Debian's directories).
for deb in "$DEB" "$DEB_D"; do dpkg-deb -c "$deb"; done |
	awk '$1 !~ /^d/ { sub(/^\.\//, "", $NF); print $1, "/" $NF }' |
	sed -e 's/\.gz$//' -e 's#/zsh/vendor-completions/#/zsh/site-functions/#' \
		-e 's#^\(.* \)/usr/lib/x86_64-linux-gnu/security/#\1/usr/lib64/security/#' |
	sort -k2 >"$WORK/deb-modes.txt"
awk '$1 !~ /^d/ { print $1, $NF }' "$WORK/rpm-files.txt" | sort -k2 >"$WORK/rpm-modes.txt"
join -1 2 -2 2 "$WORK/deb-modes.txt" "$WORK/rpm-modes.txt" >"$WORK/both.txt"
check "rpm and deb share at least the binaries, PAM module, config, units, pages and completions" \
	test "$(wc -l <"$WORK/both.txt")" -ge 28
same_modes() { awk '$2 != $3 { print "mode differs:", $0; bad = 1 } END { exit bad }' "$WORK/both.txt"; }
check "every file in both packages has the same mode" same_modes

	say "install, in a throwaway root"
	export DEB DEB_D VERSION
	packaging/throwaway-root.sh --without-jitsudo bash "$PWD/packaging/test-deb.sh" --in-throwaway-root
	exit 0
fi

# ---- a clean system: what install.sh or a package put on the host is not here -----------
# (throwaway-root.sh --without-jitsudo removed it from the throwaway root)
PAM_MODULE=/usr/lib/x86_64-linux-gnu/security/pam_jitsudo.so
for path in /etc/jitsudo /var/lib/jitsudo /usr/bin/jitsudo /var/lib/jitsudod /usr/sbin/jitsudod "$PAM_MODULE"; do
	check "$path is absent before the installation" test ! -e "$path"
done
# The jitsudod package's system user (kept on purge, as Debian keeps system users; one
# left on the host by an earlier installation is used).
SERVICE_USER=jitsudod

# ---- install ----------------------------------------------------------------------------
say "install"
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null; }
apt_install "$DEB" "$DEB_D"
check "jitsudo installed" installed jitsudo
check "jitsudod installed" installed jitsudod
mode_of() { stat -c '%a %U:%G' "$1"; }
check "/usr/bin/jitsudo is 4755 root:root" test "$(mode_of /usr/bin/jitsudo)" = "4755 root:root"
check "/usr/bin/jitsudoctl is 755 root:root" test "$(mode_of /usr/bin/jitsudoctl)" = "755 root:root"
check "/var/lib/jitsudo is 700 root:root" test "$(mode_of /var/lib/jitsudo)" = "700 root:root"
check "/etc/jitsudo/jitsudo.toml is 644 root:root" test "$(mode_of /etc/jitsudo/jitsudo.toml)" = "644 root:root"
dpkg-query -W -f='${Conffiles}\n' jitsudo >"$WORK/conffiles.txt"
check "jitsudo.toml is a conffile" grep -qE '^ /etc/jitsudo/jitsudo.toml [0-9a-f]{32}$' "$WORK/conffiles.txt"
check "/etc/pam.d/jitsudo is a conffile" grep -qE '^ /etc/pam.d/jitsudo [0-9a-f]{32}$' "$WORK/conffiles.txt"
check "the PAM helper is 755 root:root, not setuid" test "$(mode_of /usr/libexec/jitsudo/jitsudo-auth)" = "755 root:root"
check "the PAM helper is dynamically linked (it loads libpam)" sh -c "ldd /usr/libexec/jitsudo/jitsudo-auth | grep -q libpam"
check "/usr/bin/jitsudo is a static PIE (musl, no NSS of its own)" sh -c "file -L /usr/bin/jitsudo | grep -q 'static-pie linked'"
check "the NSS helper is 755 root:root, not setuid" test "$(mode_of /usr/libexec/jitsudo/jitsudo-nss)" = "755 root:root"
check "the NSS helper answers through glibc's NSS" sh -c "/usr/libexec/jitsudo/jitsudo-nss user uid 0 | grep -qx 'root:x:0:0::/root:/bin/bash'"
check "the network helper is 755 root:root, not setuid" test "$(mode_of /usr/libexec/jitsudo/jitsudo-net)" = "755 root:root"
check "/usr/bin/jitsudo has no TLS or HTTP code (that is jitsudo-net's)" sh -c "! strings /usr/bin/jitsudo | grep -qiE 'rustls|webpki|ureq|ring::'"
PAM_MODULE=/usr/lib/x86_64-linux-gnu/security/pam_jitsudo.so
check "the PAM module is 644 root:root in the multiarch security directory" \
	test "$(mode_of "$PAM_MODULE")" = "644 root:root"
nm -D --defined-only "$PAM_MODULE" >"$WORK/pam-symbols.txt"
for sym in pam_sm_acct_mgmt pam_sm_authenticate pam_sm_open_session pam_sm_close_session; do
	check "the PAM module exports $sym" grep -qE " T $sym\$" "$WORK/pam-symbols.txt"
done
check "the PAM module resolves all its libraries" sh -c "! ldd '$PAM_MODULE' | grep -q 'not found'"
for f in /usr/share/man/man8/jitsudo.8.gz /usr/share/man/man5/jitsudo.toml.5.gz \
	/usr/share/man/man1/jitsudoctl.1.gz /usr/share/bash-completion/completions/jitsudo \
	/usr/share/zsh/vendor-completions/_jitsudo /usr/share/fish/vendor_completions.d/jitsudo.fish \
	/usr/lib/systemd/system/jitsudo-sync.service /usr/lib/systemd/system/jitsudo-sync.timer \
	/usr/share/doc/jitsudo/copyright /usr/share/doc/jitsudo/changelog.gz \
	/usr/share/man/man8/pam_jitsudo.8.gz /usr/share/doc/jitsudo/examples/pam.d/sshd-snippet; do
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

# ---- the installed PAM module, loaded by libpam -------------------------------------------
say "PAM module"
# A test PAM service in a private mount namespace: a copy of /etc/pam.d with the service
# added is mounted over it for pamtester only; the machine's /etc/pam.d is not changed.
cp -a /etc/pam.d "$WORK/pam.d"
printf 'account required pam_jitsudo.so\n' >"$WORK/pam.d/jitsudo-pkgtest"
pam_check() { # pam_check USER: pamtester's account check through the test service
	unshare --mount --propagation private -- \
		sh -c 'mount --bind "$1" /etc/pam.d && exec pamtester jitsudo-pkgtest "$2" acct_mgmt' \
		sh "$WORK/pam.d" "$1"
}
set +e
pam_check "$TEST_USER" >"$WORK/pam-denied.txt" 2>&1
status=$?
set -e
check "without a login grant, the account is refused" test "$status" != 0
check "the refusal names the missing login grant" grep -q "no login grant for $HOST" "$WORK/pam-denied.txt"
jitsudoctl mint --key "$WORK/keys/pkgtest.key" --user "$TEST_USER" --host "$HOST" \
	--kind login --for 10m --reason "package test login" >"$WORK/login-grant.txt" 2>/dev/null
as_user /usr/bin/jitsudo --import - <"$WORK/login-grant.txt"
check "with a login grant, the account is allowed" pam_check "$TEST_USER"
sleep 0.2
check "syslog: login refusal logged" grep -q "$TEST_USER : login denied: no login grant" "$LOG"
check "syslog: login logged" grep -q "$TEST_USER : login allowed ; SERVICE=jitsudo-pkgtest" "$LOG"

# ---- the approval service ----------------------------------------------------------------
say "jitsudod"
check "system user $SERVICE_USER exists" id -u "$SERVICE_USER"
IFS=: read -r _ _ service_uid _ _ service_home service_shell < <(getent passwd "$SERVICE_USER")
check "$SERVICE_USER is a system user" test "$service_uid" -lt 1000
check "$SERVICE_USER's home is its state directory" test "$service_home" = /var/lib/jitsudod
check "$SERVICE_USER cannot log in" test "$service_shell" = /usr/sbin/nologin
check "/usr/sbin/jitsudod is 755 root:root" test "$(mode_of /usr/sbin/jitsudod)" = "755 root:root"
check "/var/lib/jitsudod is 700 jitsudod:jitsudod" test "$(mode_of /var/lib/jitsudod)" = "700 jitsudod:jitsudod"
check "/etc/jitsudo/keys is 750 root:jitsudod" test "$(mode_of /etc/jitsudo/keys)" = "750 root:jitsudod"
dpkg-query -W -f='${Conffiles}\n' jitsudod >"$WORK/conffiles-d.txt"
check "jitsudod.toml is a conffile" grep -qE '^ /etc/jitsudo/jitsudod.toml [0-9a-f]{32}$' "$WORK/conffiles-d.txt"
check "policy.toml is a conffile" grep -qE '^ /etc/jitsudo/policy.toml [0-9a-f]{32}$' "$WORK/conffiles-d.txt"
for f in /usr/share/man/man8/jitsudod.8.gz /usr/share/bash-completion/completions/jitsudod \
	/usr/share/zsh/vendor-completions/_jitsudod /usr/share/fish/vendor_completions.d/jitsudod.fish \
	/usr/share/doc/jitsudod/copyright /usr/share/doc/jitsudod/changelog.gz; do
	check "installed $f" test -f "$f"
done
UNIT=/usr/lib/systemd/system/jitsudod.service
check "installed $UNIT" test -f "$UNIT"
check "the unit is not enabled on installation (it needs a signing key first)" \
	test ! -e /etc/systemd/system/multi-user.target.wants/jitsudod.service
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify: the unit is valid" systemd-analyze verify --man=no "$UNIT"
	systemd-analyze security --offline=true "$UNIT" >"$WORK/unit-security.txt" 2>&1 || true
	tail -1 "$WORK/unit-security.txt"
else
	echo "note: no systemd-analyze here; checking only that every unit line is a section or key=value"
	check "the unit's lines are sections, comments or key=value" \
		awk '!/^(\[[A-Za-z]+\]|#.*|[A-Za-z]+=.*|)$/ { print "bad line: " $0; bad = 1 } END { exit bad }' "$UNIT"
fi
for setting in User=jitsudod StateDirectory=jitsudod ConfigurationDirectory=jitsudo \
	ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= PrivateTmp=yes \
	PrivateDevices=yes ProtectHome=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
	ProtectKernelLogs=yes ProtectControlGroups=yes MemoryDenyWriteExecute=yes LockPersonality=yes \
	RestrictNamespaces=yes SystemCallFilter=@system-service \
	'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'ExecReload=/bin/kill -HUP $MAINPID'; do
	check "the unit sets $setting" grep -qxF "$setting" "$UNIT"
done
jitsudod check-policy /etc/jitsudo/policy.toml >"$WORK/policy-check.txt"
check "the shipped policy is valid and has no rule (denies everything)" \
	grep -qx '/etc/jitsudo/policy.toml: 0 rule(s) OK' "$WORK/policy-check.txt"

# As jitsudod.toml and jitsudod(8) tell the admin: create the signing key, hand it to
# the service user, create the first admin, start the service.
jitsudoctl keygen --id approvals --out /etc/jitsudo/keys >/dev/null 2>&1
chown "$SERVICE_USER:$SERVICE_USER" /etc/jitsudo/keys/approvals.key
LISTEN=$(sed -n 's/^listen = "\(.*\)"$/\1/p' /etc/jitsudo/jitsudod.toml)
check "the service listens on loopback by default" test "${LISTEN%:*}" = 127.0.0.1
if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "${LISTEN##*:}" 2>/dev/null; then
	echo "note: port ${LISTEN##*:} is taken on this machine; the test uses another"
	LISTEN=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	sed -i "s/^listen = .*/listen = \"$LISTEN\"/" /etc/jitsudo/jitsudod.toml
fi
as_service() { (cd / && umask 077 && exec setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups -- "$@"); }
as_service jitsudod add-admin admin --config /etc/jitsudo/jitsudod.toml >"$WORK/admin-token.txt" 2>/dev/null
check "add-admin printed a token" grep -q . "$WORK/admin-token.txt"
check "the database belongs to the service user" \
	test "$(stat -c '%U %a' /var/lib/jitsudod/jitsudod.db)" = "$SERVICE_USER 600"
# Started by hand as the unit would start it (no systemd in the test container); the
# subshell execs, so $! is the service itself.
(cd / && umask 077 && exec setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups -- \
	/usr/sbin/jitsudod serve --config /etc/jitsudo/jitsudod.toml) >"$WORK/jitsudod.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$WORK/jitsudod.log" && break
	kill -0 "$SERVICE_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q 'listening on' "$WORK/jitsudod.log" || cat "$WORK/jitsudod.log" >&2
check "jitsudod started as $SERVICE_USER" grep -q 'listening on' "$WORK/jitsudod.log"
healthz() {
	python3 - "http://$LISTEN/healthz" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}
check "GET /healthz over loopback answers 200" healthz
kill -HUP "$SERVICE_PID"
for _ in $(seq 50); do grep -q 'policy reloaded' "$WORK/jitsudod.log" && break; sleep 0.1; done
check "SIGHUP reloads the policy" grep -q 'policy reloaded' "$WORK/jitsudod.log"
kill -TERM "$SERVICE_PID"
set +e
wait "$SERVICE_PID"
status=$?
set -e
SERVICE_PID=
check "SIGTERM stops it cleanly" test "$status" = 0

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
say "remove jitsudod"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q jitsudod </dev/null
check "jitsudod removed" test ! -e /usr/sbin/jitsudod
check "remove kept the database" test -f /var/lib/jitsudod/jitsudod.db
check "remove kept the signing key" test -f /etc/jitsudo/keys/approvals.key
check "remove kept the config" test -f /etc/jitsudo/jitsudod.toml

say "purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" </dev/null
not_known() { ! known; }
check "packages purged" not_known
check "config gone" test ! -e /etc/jitsudo
check "state gone" test ! -e /var/lib/jitsudo -a ! -e /var/lib/jitsudod
check "binaries gone" test ! -e /usr/bin/jitsudo -a ! -e /usr/bin/jitsudoctl -a ! -e /usr/sbin/jitsudod
check "PAM module gone" test ! -e "$PAM_MODULE"
check "timer link gone" test ! -L /etc/systemd/system/timers.target.wants/jitsudo-sync.timer
check "the system user $SERVICE_USER is kept, as Debian keeps system users" id -u "$SERVICE_USER"
