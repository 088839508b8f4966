# $1: 1 on first install, 2 or more on upgrade.
# The database directory (the unit's StateDirectory= creates it too) and the signing
# key directory; see jitsudod(8). Existing directories are left as they are. (Not
# assets: cargo-generate-rpm cannot package an empty directory.)
if [ ! -e /var/lib/jitsudod ]; then
	install -d -o jitsudod -g jitsudod -m 0700 /var/lib/jitsudod
fi
if [ ! -e /etc/jitsudo/keys ]; then
	install -d -o root -g jitsudod -m 0750 /etc/jitsudo/keys
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
# As %systemd_post: the distribution's preset decides whether a new unit is enabled
# (it cannot start before its signing key exists anyway).
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload preset jitsudod.service >/dev/null 2>&1 || :
fi
