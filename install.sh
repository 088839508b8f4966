#!/bin/bash
# Build jitsudo from source and install it: /usr/bin/jitsudo (setuid root, 4755),
# /usr/bin/jitsudoctl, the approval service /usr/sbin/jitsudod, /var/lib/jitsudo (0700)
# and, if absent, /etc/jitsudo/jitsudo.toml.
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
# Run as root on Debian 12 (or similar) with a Rust toolchain (cargo) installed.
set -euo pipefail

demo=false
case "${1:-}" in
    --demo) demo=true ;;
    "") ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (it installs a setuid binary)" >&2
    exit 1
fi
if ! command -v cargo >/dev/null; then
    echo "install.sh: cargo not found; install a Rust toolchain (1.85 or newer) first" >&2
    exit 1
fi

cd "$(dirname "$0")"
echo "==> building (release)"
packaging/build-release.sh -p jitsudo -p jitsudod

echo "==> installing"
install -o root -g root -m 4755 target/release/jitsudo /usr/bin/jitsudo
install -o root -g root -m 0755 target/release/jitsudoctl /usr/bin/jitsudoctl
install -o root -g root -m 0755 target/release/jitsudod /usr/sbin/jitsudod
# The network helper of --request and --sync, at the one path jitsudo runs it from.
install -D -o root -g root -m 0755 target/release/jitsudo-net /usr/libexec/jitsudo/jitsudo-net
install -d -o root -g root -m 0700 /var/lib/jitsudo
install -d -o root -g root -m 0755 /etc/jitsudo
if [ -d man ]; then
    for page in man/*.[1-8]; do
        [ -e "$page" ] || continue
        section="${page##*.}"
        install -D -m 0644 "$page" "/usr/share/man/man$section/$(basename "$page")"
    done
fi
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
echo "installed: /usr/bin/jitsudo (setuid root), /usr/bin/jitsudoctl, /usr/sbin/jitsudod, /etc/jitsudo/jitsudo.toml"

$demo || exit 0

# ---- demo --------------------------------------------------------------------------
echo
echo "==> demo"
# A socket file alone is not enough: one left by a daemon that has gone refuses connections.
syslog_listens() { logger --socket-errors=on -u /dev/log -t jitsudo-install "install.sh demo" 2>/dev/null; }
if ! syslog_listens; then
    echo "no syslog daemon listens on /dev/log; installing and starting rsyslog so the audit lines have somewhere to go"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >/dev/null
    rm -f /dev/log
    rsyslogd
    for _ in $(seq 50); do syslog_listens && break; sleep 0.1; done
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
export JITSUDO_TOKEN="$(cat "$admin_token")"

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
