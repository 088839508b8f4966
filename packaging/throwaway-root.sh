#!/bin/bash
# Run a command as root in a throwaway copy of this machine, so that what it installs,
# upgrades, purges or starts never reaches the host:
#
#   packaging/throwaway-root.sh [--without-jitsudo] COMMAND [ARG...]
#
# --without-jitsudo: first remove jitsudo from the throwaway root as if it had never been
# installed: purge the jitsudo and jitsudod packages if dpkg knows them, delete every path
# ./install.sh installs (README.md, "What install.sh installs") and its demo's state and
# user. The host keeps its installation; the command sees a machine without one.
#
# The command runs in private mount, PID and network namespaces. /etc, /usr, /var,
# /root, /home, /tmp, /opt and /srv are overlays: the host's directory is the lower
# layer, and every write goes to an upper layer on a tmpfs that disappears with the
# namespace. /run is an empty tmpfs (no host pid files or sockets), /dev a private one
# with only the usual device nodes (a daemon's /dev/log stays inside), /proc shows only
# the namespace's processes, and the network has only loopback (a service on
# 127.0.0.1:8443 there does not collide with one on the host). Everything started
# inside is killed when the command returns. Other directories (e.g. this tree when it
# is not under one of the overlaid ones) are the host's and stay writable.
#
# Inside, JITSUDO_THROWAWAY_UPPER names the directory that holds the upper layers
# (<dir>/etc, <dir>/usr, ...): a test can look there for what was changed. An overlay is
# no upper layer for another: a command that mounts overlays of its own (the end-to-end
# suites do, from /tmp) needs a tmpfs for their upper directories.
#
# Before and after, the script records the host's state of everything jitsudo touches
# (dpkg's database, jitsudo's files and directories, the user and group databases,
# /dev/log, PAM and systemd links) and fails if anything differs.
#
# Why namespaces and not a debootstrap chroot: the test is about this machine (its
# packages, its PAM stack, its toolchain) with jitsudo's files removed, which overlays
# give in a second; a chroot takes minutes to build from the mirror, tests a different
# system than the user's, and still needs the same care for /dev, /proc and the network.
set -euo pipefail

die() {
	echo "throwaway-root.sh: $*" >&2
	exit 1
}

# What tests of jitsudo could change on the host; compared before and after.
host_state() {
	echo "## dpkg"
	dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n' 2>/dev/null | sort
	echo "## files"
	local path
	for path in /etc/jitsudo /var/lib/jitsudo /var/lib/jitsudod /usr/libexec/jitsudo /usr/share/doc/jitsudo \
		/usr/share/doc/jitsudod /etc/systemd/system /root/jitsudo-demo-keys; do
		[ -e "$path" ] || { echo "absent $path"; continue; }
		# State directories: names, modes and owners (their contents are the host's
		# own business while the user works); everything else also by size and time.
		case "$path" in
		/var/lib/*) find "$path" -printf '%p %M %u:%g\n' ;;
		*) find "$path" -printf '%p %M %u:%g %s %T@\n' ;;
		esac | sort
	done
	for path in /usr/bin/jitsudo /usr/bin/jitsudoctl /usr/sbin/jitsudod /etc/pam.d/jitsudo /etc/pam.d/sshd \
		/usr/lib/x86_64-linux-gnu/security/pam_jitsudo.so /usr/lib/systemd/system/jitsudo-sync.service \
		/usr/lib/systemd/system/jitsudo-sync.timer /usr/lib/systemd/system/jitsudod.service \
		/usr/share/man/man8/jitsudo.8 /usr/share/man/man8/jitsudo.8.gz /var/log/jitsudod.log /run/jitsudod.pid; do
		stat -c '%n %A %U:%G %s %Y' "$path" 2>/dev/null || echo "absent $path"
	done
	echo "## accounts"
	md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null
	echo "## /dev/log"
	stat -c '%n %F' /dev/log 2>/dev/null || echo "absent /dev/log"
}

if [ "${JITSUDO_THROWAWAY_ROOT:-}" != inside ]; then
	[ "$(id -u)" = 0 ] || die "run as root (it mounts overlays in a private namespace)"
	[ $# -gt 0 ] || die "usage: $0 [--without-jitsudo] COMMAND [ARG...]"
	command -v unshare >/dev/null || die "unshare is missing (apt-get install util-linux)"
	command -v ip >/dev/null || die "ip is missing (apt-get install iproute2)"
	before=$(mktemp /tmp/jitsudo-host-before.XXXXXX)
	after=$(mktemp /tmp/jitsudo-host-after.XXXXXX)
	trap 'rm -f "$before" "$after"' EXIT
	host_state >"$before"
	set +e
	JITSUDO_THROWAWAY_ROOT=inside JITSUDO_THROWAWAY_CWD="$PWD" \
		unshare --mount --propagation private --pid --fork --mount-proc --net -- "$0" "$@"
	status=$?
	set -e
	host_state >"$after"
	if ! diff -u "$before" "$after" >&2; then
		echo "throwaway-root.sh: the host changed while '$*' ran (diff above)" >&2
		exit 1
	fi
	echo "throwaway-root.sh: the host is as it was (dpkg database, jitsudo's files, accounts, /dev/log)"
	exit "$status"
fi

# ---- inside the namespaces (PID 1 of the new PID namespace) ----------------------------
unset JITSUDO_THROWAWAY_ROOT
[ "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] || die "not in the new namespaces"

# /run first: a fresh tmpfs, which also holds the upper layers, so nothing is written to
# any host file system and all of it goes when the namespace does. Not nosuid or nodev:
# the overlays' setuid binary and device nodes work as on the host.
mount -t tmpfs -o mode=0755 jitsudo-throwaway /run
mkdir -m 1777 /run/lock
upper=/run/.throwaway-root
mkdir -m 0700 "$upper" "$upper/.work"
for dir in /etc /usr /var /root /home /tmp /opt /srv; do
	[ -d "$dir" ] && [ ! -L "$dir" ] || continue
	name=${dir#/}
	mkdir "$upper/$name" "$upper/.work/$name"
	# The overlay's top directory takes the upper one's mode and owner: /tmp stays 1777
	# and /root 0700.
	chmod --reference="$dir" "$upper/$name"
	chown --reference="$dir" "$upper/$name"
	mount -t overlay "jitsudo-throwaway-$name" \
		-o "lowerdir=$dir,upperdir=$upper/$name,workdir=$upper/.work/$name" "$dir"
done

# A private /dev: the host's device nodes bound in, a devpts instance of its own, and an
# empty directory where a syslog daemon started inside puts its /dev/log.
dev=$upper/.dev
mkdir "$dev"
mount -t tmpfs -o mode=0755,nosuid jitsudo-throwaway-dev "$dev"
for node in null zero full random urandom tty; do
	: >"$dev/$node"
	mount --bind "/dev/$node" "$dev/$node"
done
mkdir "$dev/pts" "$dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev jitsudo-throwaway-shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
mount --rbind "$dev" /dev

ip link set lo up

if [ "${1:-}" = --without-jitsudo ]; then
	shift
	for pkg in jitsudo jitsudod; do
		if dpkg-query -W "$pkg" >/dev/null 2>&1; then
			dpkg --purge "$pkg" >"$upper/.purge-$pkg.log" 2>&1 ||
				{ cat "$upper/.purge-$pkg.log" >&2; die "could not purge $pkg in the throwaway root"; }
		fi
	done
	# install.sh's files (keep in step with install.sh), its demo's state and user.
	rm -rf /etc/jitsudo /var/lib/jitsudo /var/lib/jitsudod /usr/libexec/jitsudo /usr/share/doc/jitsudo \
		/usr/bin/jitsudo /usr/bin/jitsudoctl /usr/sbin/jitsudod /etc/pam.d/jitsudo \
		/usr/lib/x86_64-linux-gnu/security/pam_jitsudo.so /lib/x86_64-linux-gnu/security/pam_jitsudo.so \
		/usr/lib64/security/pam_jitsudo.so /usr/lib/systemd/system/jitsudo-sync.service \
		/usr/lib/systemd/system/jitsudo-sync.timer /usr/share/man/man*/jitsudo* /usr/share/man/man8/pam_jitsudo.8* \
		/usr/share/bash-completion/completions/jitsudo* /usr/share/zsh/vendor-completions/_jitsudo* \
		/usr/share/fish/vendor_completions.d/jitsudo* /var/log/jitsudod.log /root/jitsudo-demo-keys
	if id jitsudo-demo >/dev/null 2>&1; then userdel jitsudo-demo; fi
fi
[ $# -gt 0 ] || die "usage: throwaway-root.sh [--without-jitsudo] COMMAND [ARG...]"

# Back to where the caller was, through the overlays: a working directory inherited from
# before the mounts would write to the host's layer.
cd "$JITSUDO_THROWAWAY_CWD"
unset JITSUDO_THROWAWAY_CWD
export JITSUDO_THROWAWAY_UPPER=$upper
# Not exec'd: PID 1 of a namespace ignores signals it has no handler for, and when this
# shell exits the kernel kills whatever the command left running.
set +e
"$@"
status=$?
exit "$status"
