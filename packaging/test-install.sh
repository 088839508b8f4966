#!/bin/bash
# The README's first command, `./install.sh --demo`, as on a machine where jitsudo was
# never installed, in a throwaway root (packaging/throwaway-root.sh --without-jitsudo:
# overlays over /etc, /usr, /var, /root, /tmp, ..., a private /dev and /run, its own PID
# namespace, and a network namespace with only loopback, so the demo's 127.0.0.1:8443
# never meets a demo running on the host). It checks that the demo worked (the
# auto-approved whoami ran as root, the refusals were refused, the admin's approval let
# the waiting command run, the syslog lines arrived), that everything install.sh
# promises is installed with the package's modes, that it changed neither
# /etc/pam.d/sshd nor enabled the timer, and that running it a second time works; then
# it stops what the demo started (jitsudod, rsyslogd). throwaway-root.sh checks that
# the host is as it was.
#
# Run as root from anywhere in the tree:  bash packaging/test-install.sh
# The throwaway root has no network, so what install.sh would install from Debian or
# rustup is installed on the host first (as test.sh installs the tests' dependencies).
# The release build is packaging/build-release.sh's, shared with test.sh and
# test-deb.sh: install.sh's build inside finds it current.
set -euo pipefail

cd "$(dirname "$0")/.."

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

[ "$(id -u)" = 0 ] || fail "run as root: install.sh installs a setuid binary (in a throwaway root)"

if [ "${1:-}" != --in-throwaway-root ]; then
	# What install.sh --demo installs when it is missing (and the throwaway root's ip).
	missing=()
	for tool in cc:gcc file:file hostname:hostname logger:bsdutils \
		runuser:util-linux setsid:util-linux unshare:util-linux useradd:passwd rsyslogd:rsyslog ip:iproute2; do
		command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
	done
	for pkg in libc6-dev libpam0g-dev; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	musl=x86_64-unknown-linux-musl
	[ -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ] || rustup target add "$musl"
	# Built here, where crates.io is reachable; a no-op when test.sh or test-deb.sh built it.
	packaging/build-release.sh -p jitsudo -p jitsudod
	set +e
	packaging/throwaway-root.sh --without-jitsudo bash "$PWD/packaging/test-install.sh" --in-throwaway-root
	status=$?
	set -e
	if [ "$status" = 0 ]; then
		printf '\ninstall test passed\n'
	else
		printf '\ninstall test FAILED (status %s)\n' "$status" >&2
	fi
	exit "$status"
fi

# ---- inside the throwaway root ----------------------------------------------------------
[ -n "${JITSUDO_THROWAWAY_UPPER:-}" ] || fail "--in-throwaway-root: not run by packaging/throwaway-root.sh"
UPPER=$JITSUDO_THROWAWAY_UPPER
LOG=$(mktemp /tmp/install-demo.XXXXXX)

stop_demo() { # what the demo left running: its jitsudod and the rsyslogd it started
	local pidfile pid
	for pidfile in /run/jitsudod.pid /run/rsyslogd.pid; do
		[ -s "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
}
trap stop_demo EXIT

check "no jitsudo in the throwaway root before install.sh" \
	test ! -e /usr/bin/jitsudo -a ! -e /etc/jitsudo -a ! -e /var/lib/jitsudod
check "nothing listens on /dev/log before the demo (its rsyslogd is the one that will)" test ! -e /dev/log

echo "== ./install.sh --demo"
set +e
./install.sh --demo >"$LOG" 2>&1
status=$?
set -e
cat "$LOG"
check "install.sh --demo exits 0" test "$status" = 0

# ---- what the demo showed ----------------------------------------------------------------
# The lines a command printed: from its "$ ..." line up to the next one.
output_of() { awk -v cmd="\$ $1" 'index($0, cmd) == 1 { f = 1; next } f && /^\$ / { exit } f' "$LOG"; }
output_of 'jitsudo --request --reason "demo" --run -- whoami' >"$LOG.whoami"
check "the auto-approved whoami ran as root" grep -qx root "$LOG.whoami"
output_of 'jitsudo --request --reason "demo" -- /bin/sh -c id' >"$LOG.shell"
check "the request for a shell was refused" grep -q '(exit status [1-9][0-9]*)' "$LOG.shell"
check "the refusal names the policy rule" grep -q 'no-shells' "$LOG.shell"
output_of 'jitsudo /usr/bin/id -un' >"$LOG.nogrant"
check "a command without a grant was refused" grep -q "no grant allows '/usr/bin/id -un'\|no grant allows '/usr/bin/id'" "$LOG.nogrant"
check "... with a non-zero status" grep -q '(exit status [1-9][0-9]*)' "$LOG.nogrant"
check "the command that needs an admin was left pending" grep -q '^request [0-9a-f]* is pending' "$LOG"
output_of 'jitsudo ls -ld /root' >"$LOG.approved"
check "after the admin's approval it ran as root" grep -q ' root root .* /root$' "$LOG.approved"
output_of 'jitsudo --import /tmp/jitsudo-demo-grant.txt && jitsudo id -u' >"$LOG.breakglass"
check "the break-glass grant ran id -u as root" grep -qx 0 "$LOG.breakglass"
check "the demo printed the syslog lines" grep -q '^syslog (/var/log/[a-z.]*), every invocation above:$' "$LOG"
SYSLOG=$(sed -n 's/^syslog (\(.*\)), every invocation above:$/\1/p' "$LOG")
check "syslog: the allowed whoami" grep -q "jitsudo\[[0-9]*\]: jitsudo-demo : .*USER=root ; GRANT=.* ; COMMAND=/usr/bin/whoami$" "$SYSLOG"
check "syslog: the refusal without a grant" grep -q "jitsudo\[[0-9]*\]: jitsudo-demo : command not allowed: .*COMMAND=/usr/bin/id -un$" "$SYSLOG"
check "the service logged its decisions" grep -q ': decision ' /var/log/jitsudod.log
check "jitsudod is still running, as the demo says" sh -c 'kill -0 "$(cat /run/jitsudod.pid)"'

# ---- what install.sh installed -------------------------------------------------------------
mode_of() { stat -c '%a %U:%G' "$1"; }
PAM_MODULE=/usr/lib/x86_64-linux-gnu/security/pam_jitsudo.so
check "/usr/bin/jitsudo is 4755 root:root" test "$(mode_of /usr/bin/jitsudo)" = "4755 root:root"
check "/usr/bin/jitsudo is a static PIE" sh -c "file -L /usr/bin/jitsudo | grep -q 'static-pie linked'"
check "/usr/bin/jitsudoctl is 755 root:root" test "$(mode_of /usr/bin/jitsudoctl)" = "755 root:root"
check "/usr/sbin/jitsudod is 755 root:root" test "$(mode_of /usr/sbin/jitsudod)" = "755 root:root"
check "the PAM helper is 755 root:root" test "$(mode_of /usr/libexec/jitsudo/jitsudo-auth)" = "755 root:root"
check "the NSS helper is 755 root:root" test "$(mode_of /usr/libexec/jitsudo/jitsudo-nss)" = "755 root:root"
check "the network helper is 755 root:root" test "$(mode_of /usr/libexec/jitsudo/jitsudo-net)" = "755 root:root"
check "the NSS helper answers through glibc's NSS" \
	sh -c "/usr/libexec/jitsudo/jitsudo-nss user uid 0 | grep -qx 'root:x:0:0::/root:/bin/bash'"
check "the PAM module is 644 root:root" test "$(mode_of "$PAM_MODULE")" = "644 root:root"
check "the PAM module exports pam_sm_acct_mgmt" sh -c "nm -D --defined-only '$PAM_MODULE' | grep -q ' T pam_sm_acct_mgmt$'"
check "/etc/pam.d/jitsudo is Debian's stack" cmp -s packaging/pam.d/jitsudo /etc/pam.d/jitsudo
check "/var/lib/jitsudo is 700 root:root" test "$(mode_of /var/lib/jitsudo)" = "700 root:root"
check "/etc/jitsudo/jitsudo.toml is 644 root:root" test "$(mode_of /etc/jitsudo/jitsudo.toml)" = "644 root:root"
for f in /usr/lib/systemd/system/jitsudo-sync.service /usr/lib/systemd/system/jitsudo-sync.timer \
	/usr/share/man/man8/jitsudo.8 /usr/share/man/man5/jitsudo.toml.5 /usr/share/man/man1/jitsudoctl.1 \
	/usr/share/man/man8/pam_jitsudo.8 /usr/share/man/man8/jitsudod.8 \
	/usr/share/bash-completion/completions/jitsudo /usr/share/bash-completion/completions/jitsudoctl \
	/usr/share/bash-completion/completions/jitsudod /usr/share/zsh/vendor-completions/_jitsudo \
	/usr/share/fish/vendor_completions.d/jitsudo.fish /usr/share/doc/jitsudo/copyright \
	/usr/share/doc/jitsudo/changelog /usr/share/doc/jitsudo/examples/pam.d/sshd-snippet; do
	check "installed $f, 644" test "$(mode_of "$f")" = "644 root:root"
done
# The upper layer holds exactly what changed in the throwaway root.
check "/etc/pam.d/sshd was not changed" test ! -e "$UPPER/etc/pam.d/sshd"
no_timer_links() { ! find /etc/systemd/system -name 'jitsudo*' | grep -q .; }
check "the sync timer was not enabled" no_timer_links

# ---- a second run, as after an upgrade of the tree ---------------------------------------
echo "== ./install.sh --demo, again"
set +e
./install.sh --demo >"$LOG" 2>&1
status=$?
set -e
cat "$LOG"
check "a second install.sh --demo exits 0" test "$status" = 0
check "it found jitsudod running" grep -q '^jitsudod already running' "$LOG"
check "it found the host registered" grep -q 'already registered' "$LOG"
output_of 'jitsudo --request --reason "demo" --run -- whoami' >"$LOG.whoami"
check "the auto-approved whoami ran as root again" grep -qx root "$LOG.whoami"

# ---- stop what the demo started ------------------------------------------------------------
demo_pids=()
demo_names=()
for pidfile in /run/jitsudod.pid /run/rsyslogd.pid; do
	check "$pidfile names a running process" sh -c 'kill -0 "$(cat "$1")"' sh "$pidfile"
	demo_pids+=("$(cat "$pidfile")")
	demo_names+=("$(basename "$pidfile" .pid)")
done
stop_demo
trap - EXIT
for i in "${!demo_pids[@]}"; do
	check "${demo_names[i]} (pid ${demo_pids[i]}) stopped" sh -c '! kill -0 "$1" 2>/dev/null' sh "${demo_pids[i]}"
done
