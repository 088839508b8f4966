# $1: 0 when the package is erased, 1 or more when it is upgraded.
# State in /var/lib/jitsudo is kept when it holds files (RPM has no purge); a modified
# /etc/jitsudo/jitsudo.toml is saved as jitsudo.toml.rpmsave.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
