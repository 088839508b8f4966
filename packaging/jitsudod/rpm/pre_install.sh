# $1: 1 on first install, 2 or more on upgrade.
# The service's own system user and group; kept when the package is erased.
getent group jitsudod >/dev/null || groupadd -r jitsudod
getent passwd jitsudod >/dev/null ||
	useradd -r -g jitsudod -d /var/lib/jitsudod -M -s /sbin/nologin \
		-c "jitsudo approval service" jitsudod
:
