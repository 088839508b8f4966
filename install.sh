#!/bin/bash
# Build jitsudo from source and install what the jitsudo package installs (see "What
# install.sh installs" in README.md), plus the approval service /usr/sbin/jitsudod.
#
#   ./install.sh           install
#   ./install.sh --demo    install, then show the whole flow on this machine: jitsudod on
#                          127.0.0.1 with SQLite (/var/lib/jitsudod) and a demo policy,
#                          this host enrolled, a demo user whose request for whoami is
#                          approved automatically and runs as root, one that waits for an
#                          admin's approval, refusals, a break-glass grant minted offline,
#                          and the syslog lines they left. jitsudod keeps running
#                          afterwards; the script says how to stop it.
#
# Run as root on Debian 12 (or similar) with a Rust toolchain (rustup, cargo 1.85 or
# newer). Before building it installs what the build (and the demo) needs and is missing:
# Debian packages (gcc, libc6-dev, libpam0g-dev, file, and for the demo
# rsyslog when no syslog daemon listens) and the Rust target x86_64-unknown-linux-musl.
set -euo pipefail

demo=false
case "${1:-}" in
    --demo) demo=true ;;
    "") ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (it installs a setuid binary)" >&2
    exit 1
fi
cd "$(dirname "$0")"

# ---- prerequisites, all checked before the build (which takes minutes) ----------------
# Files a package owns are the package's: overwriting them would leave dpkg's record wrong.
for pkg in jitsudo jitsudod; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$'; then
        echo "install.sh: the $pkg package is installed; upgrade the package (packaging/README.md)" >&2
        echo "or remove it (apt-get purge $pkg) before installing from source" >&2
        exit 1
    fi
done
if ! command -v cargo >/dev/null; then
    echo "install.sh: cargo not found; install a Rust toolchain (1.85 or newer, e.g. with rustup) first" >&2
    echo "(Debian 12's own cargo is too old)" >&2
    exit 1
fi
# A syslog daemon listening on /dev/log (a socket file alone is not enough: one left by a
# daemon that has gone refuses connections).
syslog_listens() {
    command -v logger >/dev/null &&
        logger --socket-errors=on -u /dev/log -t jitsudo-install "install.sh demo" 2>/dev/null
}
missing=()
need_command() { # need_command COMMAND PACKAGE
    command -v "$1" >/dev/null || missing+=("$2")
}
need_package() { # need_package PACKAGE: a package that provides no command (headers, libraries)
    if command -v dpkg-query >/dev/null; then
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || missing+=("$1")
    fi
}
need_command cc gcc                 # cargo links with it; ring and SQLite have C parts
need_package libc6-dev
need_package libpam0g-dev           # pam_jitsudo.so and jitsudo-auth link libpam
need_command file file              # build-release.sh checks that it is a static PIE
need_command hostname hostname      # the host's id in the starter jitsudo.toml
need_command install coreutils
if $demo; then
    need_command logger bsdutils
    need_command runuser util-linux  # runs the demo user's commands
    need_command setsid util-linux   # starts jitsudod in its own session
    need_command useradd passwd      # the demo user
    need_command sed sed
    if ! syslog_listens; then
        need_command rsyslogd rsyslog # started by the demo: the audit lines need a reader
    fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if ! command -v apt-get >/dev/null; then
        echo "install.sh: missing: ${missing[*]} (Debian package names); install them first" >&2
        exit 1
    fi
    echo "==> installing build prerequisites: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
musl=x86_64-unknown-linux-musl
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ]; then
    if ! command -v rustup >/dev/null; then
        echo "install.sh: the Rust target $musl is needed and rustup is not installed;" >&2
        echo "install the target's standard library for this toolchain first" >&2
        exit 1
    fi
    echo "==> adding the Rust target $musl (rustup)"
    rustup target add "$musl"
fi

echo "==> building (release)"
packaging/build-release.sh -p jitsudo -p jitsudod

# ---- install --------------------------------------------------------------------------
# The jitsudo package's files (Cargo.toml, [package.metadata.deb] assets) and jitsudod
# with its man page and completions. Not the jitsudod package's system user, unit, default
# configuration or key directory: the demo runs jitsudod as root with its own.
echo "==> installing"
install -o root -g root -m 4755 target/release/jitsudo /usr/bin/jitsudo
install -o root -g root -m 0755 target/release/jitsudoctl /usr/bin/jitsudoctl
install -o root -g root -m 0755 target/release/jitsudod /usr/sbin/jitsudod
# Helpers run by the setuid jitsudo as root; never setuid themselves.
install -D -o root -g root -m 0755 target/release/jitsudo-auth /usr/libexec/jitsudo/jitsudo-auth
install -D -o root -g root -m 0755 target/release/jitsudo-nss /usr/libexec/jitsudo/jitsudo-nss
# The PAM module goes where this system's PAM modules are (Debian: the multiarch directory).
pam_dir=
for dir in /usr/lib/x86_64-linux-gnu/security /lib/x86_64-linux-gnu/security /usr/lib64/security \
    /lib64/security /usr/lib/security /lib/security; do
    if [ -e "$dir/pam_unix.so" ]; then pam_dir=$dir; break; fi
done
if [ -z "$pam_dir" ]; then
    echo "install.sh: no PAM module directory found (no pam_unix.so); is PAM installed?" >&2
    exit 1
fi
install -o root -g root -m 0644 target/release/libpam_jitsudo.so "$pam_dir/pam_jitsudo.so"
# The PAM service for authenticate = true, only if the admin has none: never replaced.
if [ ! -e /etc/pam.d/jitsudo ]; then
    if [ -e /etc/pam.d/common-auth ]; then pam_service=packaging/pam.d/jitsudo
    else pam_service=packaging/pam.d/jitsudo.redhat; fi
    install -o root -g root -m 0644 "$pam_service" /etc/pam.d/jitsudo
fi
# The network helper of --request and --sync, at the one path jitsudo runs it from.
install -D -o root -g root -m 0755 target/release/jitsudo-net /usr/libexec/jitsudo/jitsudo-net
install -d -o root -g root -m 0700 /var/lib/jitsudo
install -d -o root -g root -m 0755 /etc/jitsudo
# The sync timer's units, not enabled: `systemctl enable --now jitsudo-sync.timer` once
# the host is enrolled with a service.
for unit in jitsudo-sync.service jitsudo-sync.timer; do
    install -D -m 0644 "packaging/systemd/$unit" "/usr/lib/systemd/system/$unit"
done
for page in man/*.[1-8]; do
    section="${page##*.}"
    install -D -m 0644 "$page" "/usr/share/man/man$section/$(basename "$page")"
done
for cmd in jitsudo jitsudoctl jitsudod; do
    install -D -m 0644 "packaging/completions/$cmd.bash" "/usr/share/bash-completion/completions/$cmd"
    install -D -m 0644 "packaging/completions/_$cmd" "/usr/share/zsh/vendor-completions/_$cmd"
    install -D -m 0644 "packaging/completions/$cmd.fish" "/usr/share/fish/vendor_completions.d/$cmd.fish"
done
install -D -m 0644 packaging/copyright /usr/share/doc/jitsudo/copyright
install -D -m 0644 packaging/changelog /usr/share/doc/jitsudo/changelog
# Documentation, not configuration: /etc/pam.d/sshd is the admin's to change.
install -D -m 0644 packaging/pam.d/sshd-snippet /usr/share/doc/jitsudo/examples/pam.d/sshd-snippet
host_id="$(hostname -s 2>/dev/null || echo localhost)"
if [ ! -e /etc/jitsudo/jitsudo.toml ]; then
    install -o root -g root -m 0644 /dev/stdin /etc/jitsudo/jitsudo.toml <<CONF
# jitsudo host configuration; see jitsudo.toml(5).
host = "$host_id"

[log]
# syslog_socket = "/dev/log"
# facility = "authpriv"
# require = true

# Paste [[trusted_key]] blocks printed by \`jitsudoctl keygen\` here.
CONF
fi
echo "installed: /usr/bin/jitsudo (setuid root), /usr/bin/jitsudoctl, /usr/sbin/jitsudod,"
echo "  /usr/libexec/jitsudo/{jitsudo-auth,jitsudo-nss}, $pam_dir/pam_jitsudo.so, /etc/pam.d/jitsudo,"
echo "  /etc/jitsudo/jitsudo.toml, the jitsudo-sync timer (not enabled), man pages, completions"

$demo || exit 0

# ---- demo --------------------------------------------------------------------------
echo
echo "==> demo"
if ! syslog_listens; then
    echo "no syslog daemon listens on /dev/log; starting rsyslogd so the audit lines have somewhere to go"
    rm -f /dev/log
    rsyslogd
    for _ in $(seq 50); do syslog_listens && break; sleep 0.1; done
    if ! syslog_listens; then
        echo "install.sh: rsyslogd was started but nothing listens on /dev/log" >&2
        exit 1
    fi
fi
host_id="$(sed -n 's/^host *= *"\(.*\)".*/\1/p' /etc/jitsudo/jitsudo.toml | head -1)"
user=jitsudo-demo
listen=127.0.0.1:8443
url="http://$listen"
keys=/etc/jitsudo/keys
key_id="demo-$host_id"
pidfile=/run/jitsudod.pid
service_log=/var/log/jitsudod.log
admin_token=/etc/jitsudo/demo-admin.token

# The service's signing key. It lives on the service machine, which is this host for
# the demo; hosts hold only its public half, pinned in jitsudo.toml.
install -d -o root -g root -m 0700 "$keys"
if [ ! -e "$keys/$key_id.key" ] && [ -e "/root/jitsudo-demo-keys/$key_id.key" ]; then
    # An earlier demo's key, already pinned in jitsudo.toml: keep using it.
    cp -p "/root/jitsudo-demo-keys/$key_id.key" "/root/jitsudo-demo-keys/$key_id.pub" "$keys/"
fi
if [ ! -e "$keys/$key_id.key" ]; then
    jitsudoctl keygen --id "$key_id" --out "$keys" >"$keys/$key_id.block" 2>/dev/null
fi
if ! grep -q "id = \"$key_id\"" /etc/jitsudo/jitsudo.toml; then
    printf '\n%s\n' "$(cat "$keys/$key_id.block")" >> /etc/jitsudo/jitsudo.toml
fi
# The host asks this service (plain HTTP is accepted on loopback only).
if ! grep -q '^service *=' /etc/jitsudo/jitsudo.toml; then
    sed -i "0,/^host *=.*/s||&\nservice = \"$url\"|" /etc/jitsudo/jitsudo.toml
fi

# The demo policy: first matching rule wins, no match is a denial.
if [ ! -e /etc/jitsudo/policy.toml ]; then
    install -o root -g root -m 0644 /dev/stdin /etc/jitsudo/policy.toml <<POLICY
# jitsudod policy (demo); see jitsudod(8). First matching rule wins; no match = deny.
[[rule]]
name = "no-shells"
commands = ["/bin/sh *", "/bin/bash *", "/usr/bin/sh *", "/usr/bin/bash *"]
decision = "deny"

[[rule]]
name = "harmless"                 # granted at once, for 10 minutes at most
users = ["$user"]
commands = ["/usr/bin/whoami", "/usr/bin/id *"]
decision = "auto"
max_duration = "10m"
require_reason = true

[[rule]]
name = "look-at-root"             # needs one approval by an admin
users = ["$user"]
commands = ["/usr/bin/ls *"]
decision = "approve"
approvals = 1
approvers = ["admin"]
default_duration = "5m"
POLICY
fi
if [ ! -e /etc/jitsudo/jitsudod.toml ]; then
    install -o root -g root -m 0644 /dev/stdin /etc/jitsudo/jitsudod.toml <<CONF
# jitsudod configuration; see jitsudod(8).
listen = "$listen"                  # plain HTTP only on loopback; otherwise add [tls]
database = "sqlite:///var/lib/jitsudod/jitsudod.db"
policy = "/etc/jitsudo/policy.toml"
active_key = "$key_id"
issuer = "$host_id"

[[signing_key]]
file = "$keys/$key_id.key"
CONF
fi
install -d -o root -g root -m 0700 /var/lib/jitsudod
jitsudod check-policy /etc/jitsudo/policy.toml
if [ ! -s "$admin_token" ]; then
    # Bootstrap: the first admin is created in the database directly; everything else
    # goes over the API with its token.
    (umask 077; jitsudod add-admin admin --config /etc/jitsudo/jitsudod.toml 2>/dev/null >"$admin_token")
fi
export JITSUDO_SERVICE="$url"
JITSUDO_TOKEN="$(cat "$admin_token")"
export JITSUDO_TOKEN

if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "jitsudod already running (pid $(cat "$pidfile"))"
else
    echo "starting jitsudod on $url (log: $service_log)"
    : >>"$service_log"
    start_line=$(($(wc -l <"$service_log") + 1))
    NO_COLOR=1 setsid jitsudod serve --config /etc/jitsudo/jitsudod.toml </dev/null >>"$service_log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        tail -n "+$start_line" "$service_log" | grep -q '^listening on ' && break
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "install.sh: jitsudod did not start:" >&2
            tail -n "+$start_line" "$service_log" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

# Enroll this host: it gets an identity key, and the admin registers its public half.
enroll="$(jitsudo --enroll)"
echo "$enroll"
add_line="$(echo "$enroll" | sed -n 's/^ *\(jitsudoctl host add .*\)/\1/p')"
if ! out="$($add_line 2>&1)"; then
    case "$out" in
        *"already registered"*) echo "host $host_id is already registered" ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
else
    echo "$out"
fi

id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"

as_user() { runuser -u "$user" -- "$@"; }
show() { echo; echo "\$ $*"; }
cd /tmp
# Where syslog writes authpriv, and how much of it was there before the demo.
syslog_file=
for log in /var/log/auth.log /var/log/secure /var/log/syslog /var/log/messages; do
    if [ -r "$log" ]; then syslog_file=$log; break; fi
done
syslog_mark=$( [ -n "$syslog_file" ] && wc -l <"$syslog_file" || echo 0)

show "jitsudo --request --reason \"demo\" --run -- whoami   (as $user; the policy approves it at once)"
as_user jitsudo --request --reason "demo" --run -- whoami
show "jitsudo -l   (as $user)"
as_user jitsudo -l
show "jitsudo --request --reason \"demo\" -- /bin/sh -c id   (as $user; the policy denies shells)"
as_user jitsudo --request --reason "demo" -- /bin/sh -c id || echo "(exit status $?)"
show "jitsudo /usr/bin/id -un   (as $user; no grant covers it)"
as_user jitsudo /usr/bin/id -un || echo "(exit status $?)"

show "jitsudo --request --no-wait --reason \"demo\" -- ls -ld /root   (as $user; needs an admin)"
pending="$(as_user jitsudo --request --no-wait --reason "demo" -- ls -ld /root)"
echo "$pending"
request_id="$(echo "$pending" | sed -n 's/^request \([0-9a-f]*\) is pending.*/\1/p')"
show "jitsudoctl requests --pending   (admin)"
jitsudoctl requests --pending
show "jitsudoctl approve $request_id --comment \"ok for the demo\"   (admin)"
jitsudoctl approve "$request_id" --comment "ok for the demo"
show "jitsudo --sync   (root; a timer does this on real hosts)"
jitsudo --sync
show "jitsudo ls -ld /root   (as $user)"
as_user jitsudo ls -ld /root

# Break glass: a grant minted offline with the signing key, no service involved.
echo
echo "break-glass: minting a 10-minute grant for $user offline: /usr/bin/id -u"
jitsudoctl mint --key "$keys/$key_id.key" --user "$user" --host "$host_id" \
    --command "/usr/bin/id -u" --for 10m --reason "install.sh demo, offline" 2>/dev/null \
    >/tmp/jitsudo-demo-grant.txt
show "jitsudo --import /tmp/jitsudo-demo-grant.txt && jitsudo id -u   (as $user)"
as_user jitsudo --import /tmp/jitsudo-demo-grant.txt
as_user jitsudo id -u
rm -f /tmp/jitsudo-demo-grant.txt

sleep 0.3
for log in "$syslog_file" /var/log/auth.log /var/log/syslog /var/log/messages; do
    [ -n "$log" ] && [ -r "$log" ] || continue
    [ "$log" = "$syslog_file" ] && skip=$syslog_mark || skip=0
    if tail -n "+$((skip + 1))" "$log" | grep -q "jitsudo\["; then
        echo
        echo "syslog ($log), every invocation above:"
        tail -n "+$((skip + 1))" "$log" | grep "jitsudo\["
        break
    fi
done
echo
echo "decisions in the service log ($service_log):"
grep -F ': decision ' "$service_log" | tail -4 || true
cat <<EOF

jitsudod is still running (pid $(cat "$pidfile")) on $url, log $service_log.
Try more as $user:  runuser -u $user -- jitsudo --request --reason "why" --run -- id -un
Admin token:        $admin_token (JITSUDO_SERVICE=$url JITSUDO_TOKEN=\$(cat $admin_token) jitsudoctl requests)
Stop the service:   kill \$(cat $pidfile)
EOF
