#!/usr/bin/env bash
# Entrypoint of twistbench/mariadb:*-debian: MariaDB, which Debian ships as
# its MySQL, with the environment contract of the official mysql image
# (docker-library/mysql) so that testcontainers' mysql module and docker run
# recipes work unchanged:
#
#   MYSQL_ROOT_PASSWORD      root password, for root@localhost and root@'%'
#   MYSQL_ALLOW_EMPTY_PASSWORD=yes  allow root without a password
#   MYSQL_RANDOM_ROOT_PASSWORD=yes  generate one and print it
#   MYSQL_DATABASE           database created at first start
#   MYSQL_USER, MYSQL_PASSWORD  a user with every privilege on MYSQL_DATABASE
#   MARIADB_* spellings of the above are accepted too (official mariadb image)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh   run once, at first start
#
# Like the official image, the first start initialises the data directory
# and runs a temporary server without networking for the setup, then starts
# the real server on 0.0.0.0:3306. The real server logs MariaDB's own
# readiness lines ("ready for connections", "Version: '...-MariaDB...'
# port: 3306  Debian ..."), not MySQL's "MySQL Community Server": callers
# that wait on a log line must wait for SQL instead (package containers
# does). Arguments starting with "-" are passed to the server; "mysqld" and
# "mariadbd" both start it; any other command runs as is.
set -Eeuo pipefail

if [ "${1:0:1}" = "-" ]; then
	set -- mariadbd "$@"
fi
case $1 in
mysqld | mariadbd) shift ;;
*) exec "$@" ;;
esac

env_or() { # env_or NAME: $MARIADB_NAME, else $MYSQL_NAME, else empty
	local m="MARIADB_$1" y="MYSQL_$1"
	printf '%s' "${!m:-${!y:-}}"
}
sql_string() { # a quoted SQL string literal
	local s=${1//\\/\\\\}
	printf "'%s'" "${s//\'/\\\'}"
}
sql_ident() { # a quoted SQL identifier
	printf '`%s`' "${1//\`/\`\`}"
}

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld

# The image ships a data directory initialised at build time, marked
# pristine (root without a password, nothing else): a first start only
# applies the environment, which saves the seconds mariadb-install-db takes.
# An empty directory (a bind mount) is initialised here instead.
pristine=$datadir/.twistbench-pristine
if [ -f "$pristine" ] || [ ! -d "$datadir/mysql" ]; then
	root_pw=$(env_or ROOT_PASSWORD)
	allow_empty=$(env_or ALLOW_EMPTY_PASSWORD)
	random=$(env_or RANDOM_ROOT_PASSWORD)
	database=$(env_or DATABASE)
	user=$(env_or USER)
	password=$(env_or PASSWORD)
	if [ -z "$root_pw" ] && [ -z "$allow_empty" ] && [ -z "$random" ]; then
		echo >&2 "error: database is uninitialized and password option is not specified"
		echo >&2 "    You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
		exit 1
	fi
	if [ -n "$random" ] && [ -z "$root_pw" ]; then
		root_pw=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
		echo "GENERATED ROOT PASSWORD: $root_pw"
	fi
	if [ "$user" = root ]; then
		echo >&2 "error: MYSQL_USER=root: use MYSQL_ROOT_PASSWORD for the root user"
		exit 1
	fi

	if [ ! -f "$pristine" ]; then
		echo "Initializing database files"
		mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db --skip-name-resolve \
			--auth-root-authentication-method=normal --rpm >/dev/null
		echo "Database files initialized"
	fi

	mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" --skip-log-error &
	pid=$!
	for _ in $(seq 1 120); do # up to 60s for the temporary server
		if mariadb-admin --socket="$socket" --user=root ping >/dev/null 2>&1; then
			break
		fi
		kill -0 "$pid" 2>/dev/null || { echo >&2 "error: the temporary server died"; exit 1; }
		sleep 0.5
	done
	mariadb-admin --socket="$socket" --user=root ping >/dev/null ||
		{ echo >&2 "error: the temporary server did not answer in 60s"; exit 1; }

	{
		echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost'));"
		echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$root_pw");"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_pw");"
		if [ -n "$database" ]; then
			echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$database");"
		fi
		if [ -n "$user" ]; then
			echo "CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$password");"
			if [ -n "$database" ]; then
				echo "GRANT ALL ON $(sql_ident "$database").* TO $(sql_string "$user")@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket="$socket" --user=root --binary-mode

	client=(mariadb --socket="$socket" --user=root --password="$root_pw")
	[ -n "$database" ] && client+=(--database="$database")
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh) echo "$0: running $f"; . "$f" ;;
		*.sql) echo "$0: running $f"; "${client[@]}" <"$f" ;;
		*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${client[@]}" ;;
		*) [ -e "$f" ] && echo "$0: ignoring $f" ;;
		esac
	done

	kill -TERM "$pid"
	wait "$pid" || true
	rm -f "$pristine"
	echo "MariaDB init process done. Ready for start up."
fi

# Debian's 50-server.cnf binds to 127.0.0.1; a container serves its network.
exec mariadbd --user=mysql --datadir="$datadir" --socket="$socket" \
	--bind-address=0.0.0.0 --port=3306 --skip-name-resolve "$@"
