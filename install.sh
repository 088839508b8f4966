#!/bin/bash
# Build jitsudo from source and install it: /usr/bin/jitsudo (setuid root, 4755),
# /usr/bin/jitsudoctl, /var/lib/jitsudo (0700) and, if absent, /etc/jitsudo/jitsudo.toml.
#
#   ./install.sh           install
#   ./install.sh --demo    install, then show the whole flow on this machine: a local
#                          signing key, a short grant for a demo user, a run as root,
#                          a refusal, and the syslog lines they left
#
# Run as root on Debian 12 (or similar) with a Rust toolchain (cargo) installed.
set -euo pipefail

demo=false
case "${1:-}" in
    --demo) demo=true ;;
    "") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
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
packaging/build-release.sh -p jitsudo

echo "==> installing"
install -o root -g root -m 4755 target/release/jitsudo /usr/bin/jitsudo
install -o root -g root -m 0755 target/release/jitsudoctl /usr/bin/jitsudoctl
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
echo "installed: /usr/bin/jitsudo (setuid root), /usr/bin/jitsudoctl, /etc/jitsudo/jitsudo.toml"

$demo || exit 0

# ---- demo --------------------------------------------------------------------------
echo
echo "==> demo"
if [ ! -S /dev/log ]; then
    echo "no syslog daemon listens on /dev/log; installing and starting rsyslog so the audit lines have somewhere to go"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >/dev/null
    rsyslogd
    for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
fi

keys=/root/jitsudo-demo-keys
key_id="demo-$host_id"
if [ ! -e "$keys/$key_id.key" ]; then
    # A signing key on the host itself is for the demo only: in production the key
    # lives on the approval service (or offline), and hosts hold only its public half.
    block="$(jitsudoctl keygen --id "$key_id" --out "$keys" 2>/dev/null)"
    if ! grep -q "id = \"$key_id\"" /etc/jitsudo/jitsudo.toml; then
        printf '\n%s\n' "$block" >> /etc/jitsudo/jitsudo.toml
    fi
fi
host_id="$(sed -n 's/^host *= *"\(.*\)".*/\1/p' /etc/jitsudo/jitsudo.toml | head -1)"

user=jitsudo-demo
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"

as_user() { runuser -u "$user" -- "$@"; }
show() { echo "\$ $*"; }

echo "minting a 10-minute grant for $user on $host_id: /usr/bin/whoami and /usr/bin/id -u"
token="$(jitsudoctl mint --key "$keys/$key_id.key" --user "$user" --host "$host_id" \
    --command /usr/bin/whoami --command "/usr/bin/id -u" --for 10m --reason "install.sh demo" 2>/dev/null)"
cd /tmp
show "jitsudo --import -   (as $user)"
printf '%s\n' "$token" | as_user jitsudo --import -
show "jitsudo -l   (as $user)"
as_user jitsudo -l
show "jitsudo whoami   (as $user)"
as_user jitsudo whoami
show "jitsudo /usr/bin/id -un   (as $user; not in the grant)"
as_user jitsudo /usr/bin/id -un || echo "(exit status $?)"
sleep 0.3
for log in /var/log/auth.log /var/log/syslog /var/log/messages; do
    if [ -r "$log" ] && grep -q "jitsudo\[" "$log"; then
        echo "syslog ($log):"
        grep "jitsudo\[" "$log" | tail -4
        break
    fi
done
