#!/usr/bin/env bash
# Usage: .ci/install-postgres.sh
#
# Makes PostgreSQL's server binaries (initdb, pg_ctl, postgres) available for the cluster
# integration tests, which start their own throw-away server on 127.0.0.1. Idempotent:
#   - binaries already present (on PATH or under /usr/lib/postgresql/*/bin): says so, does nothing;
#   - otherwise, as root with apt-get: installs Debian's `postgresql` package, with Debian's
#     automatic "main" cluster turned off first, so no server is started (and none listens
#     anywhere) by the installation;
#   - otherwise: says why it cannot install, exits 1 (the PostgreSQL tests then skip, saying so).
set -euo pipefail

find_initdb() {
	command -v initdb 2>/dev/null && return 0
	local f
	for f in /usr/lib/postgresql/*/bin/initdb; do
		[[ -x $f ]] && {
			echo "$f"
			return 0
		}
	done
	return 1
}

if found=$(find_initdb); then
	echo "install-postgres: PostgreSQL already installed ($found, $("$found" --version)); nothing to do."
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "install-postgres: PostgreSQL is not installed and this is not root: run 'sudo apt-get install postgresql' (or install it another way)." >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-postgres: PostgreSQL is not installed and apt-get is not available: install PostgreSQL's server binaries by hand." >&2
	exit 1
fi

# no automatic cluster: the tests run initdb themselves, into a temporary directory
mkdir -p /etc/postgresql-common
if ! grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
	echo "create_main_cluster = false" >>/etc/postgresql-common/createcluster.conf
	echo "install-postgres: set create_main_cluster = false in /etc/postgresql-common/createcluster.conf"
fi
echo "install-postgres: apt-get install postgresql ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
found=$(find_initdb) || {
	echo "install-postgres: installed the package but found no initdb" >&2
	exit 1
}
echo "install-postgres: installed $("$found" --version) ($found); no server was started."
