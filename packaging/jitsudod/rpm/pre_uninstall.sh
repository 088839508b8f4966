# $1: 0 when the package is erased, 1 or more when it is upgraded.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable jitsudod.service >/dev/null 2>&1 || :
	if [ -d /run/systemd/system ]; then
		systemctl stop jitsudod.service >/dev/null 2>&1 || :
	fi
fi
