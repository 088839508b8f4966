# $1: 0 when the package is erased, 1 or more when it is upgraded.
# The database in /var/lib/jitsudod and the keys in /etc/jitsudo/keys are kept (RPM
# has no purge); modified config and policy files are saved as *.rpmsave.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart jitsudod.service >/dev/null 2>&1 || :
	fi
fi
