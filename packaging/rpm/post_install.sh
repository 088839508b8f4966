# $1: 1 on first install, 2 or more on upgrade.
# Grant caches, use counters, clock mark: root only. jitsudo creates the directory itself
# when missing; creating it here gives it the right owner and mode from the start. (Not
# an asset: cargo-generate-rpm cannot package an empty directory.)
if [ ! -e /var/lib/jitsudo ]; then
	install -d -o root -g root -m 0700 /var/lib/jitsudo
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
	# Enable the sync timer on systemd systems (this works offline too); start it only
	# if systemd is running. Its service runs only from the timer.
	systemctl enable jitsudo-sync.timer >/dev/null 2>&1 || :
	if [ -d /run/systemd/system ]; then
		systemctl start jitsudo-sync.timer >/dev/null 2>&1 || :
	fi
fi
