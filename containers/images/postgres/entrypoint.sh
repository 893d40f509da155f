#!/usr/bin/env bash
# Entrypoint of twistbench/postgres:*-debian, honouring the environment
# contract of the official postgres image (docker-library/postgres) so that
# testcontainers' postgres module and any docker run recipe work unchanged:
#
#   POSTGRES_PASSWORD        superuser password (required unless
#                            POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER            superuser name (default postgres)
#   POSTGRES_DB              database created at first start (default: the user)
#   POSTGRES_INITDB_ARGS     extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP (default scram-sha-256)
#   PGDATA                   data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh   run once, at first start
#
# Like the official image, the first start initialises the cluster, runs a
# temporary server listening on the Unix socket only (so nothing connects
# over TCP before the setup is done), stops it and then starts the real
# server: a fresh container therefore logs "database system is ready to
# accept connections" twice, the line testcontainers' BasicWaitStrategies
# counts. Arguments starting with "-" are passed to postgres
# ("postgres -c fsync=off", as the module runs it); any other command runs
# as is. SIGTERM stops the server fast (see the end).
set -Eeuo pipefail

if [ "${1:0:1}" = "-" ]; then
	set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
	exec "$@"
fi

export PGDATA=${PGDATA:-/var/lib/postgresql/data}

# Started as root: prepare the directories, then run this script again as
# postgres (setpriv execs, so postgres becomes PID 1 and gets the signals).
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# The image ships a cluster initialised at build time for the superuser
# "postgres" and marked pristine: a first start with that user (the module's
# and most recipes' default) and no POSTGRES_INITDB_ARGS skips initdb, which
# takes seconds, and only applies the environment. Any other first start
# runs initdb as the official image does.
user=${POSTGRES_USER:-postgres}
pristine=$PGDATA/.twistbench-pristine
if [ -f "$pristine" ] && { [ "$user" != postgres ] || [ -n "${POSTGRES_INITDB_ARGS:-}" ]; }; then
	# Remove the directory itself, not only its content: on overlay
	# storage (fuse-overlayfs) files recreated under a directory emptied
	# file by file can collide with the image's ("File exists"). A mount
	# point cannot go: rm empties it and fails, which is enough there.
	rm -rf "$PGDATA" 2>/dev/null || true
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
fi
if [ -f "$pristine" ] || [ ! -s "$PGDATA/PG_VERSION" ]; then
	db=${POSTGRES_DB:-$user}
	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		echo >&2 "error: database is uninitialized and superuser password is not specified."
		echo >&2 "       Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without one."
		exit 1
	fi
	if [ ! -f "$pristine" ]; then
		# C.UTF-8 is built into glibc: UTF8 encoding and byte-order
		# collation, which is what the official Alpine images (musl)
		# give as well. --no-sync: a first start need not survive a
		# host crash.
		# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
		initdb --username="$user" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
			--encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth" --no-sync \
			${POSTGRES_INITDB_ARGS:-}
		{
			echo
			echo "listen_addresses = '*'"
		} >>"$PGDATA/postgresql.conf"
	fi
	{
		echo
		echo "host all all all $auth"
	} >>"$PGDATA/pg_hba.conf"

	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	psql=(psql -v ON_ERROR_STOP=1 --username "$user" --no-password --no-psqlrc --dbname postgres)
	if [ -f "$pristine" ] && [ -n "${POSTGRES_PASSWORD:-}" ]; then
		"${psql[@]}" --set user="$user" --set pw="$POSTGRES_PASSWORD" <<-'EOSQL'
			SELECT format('ALTER USER %I WITH PASSWORD %L', :'user', :'pw') \gexec
		EOSQL
	fi
	if [ "$db" != postgres ]; then
		"${psql[@]}" --set db="$db" <<-'EOSQL'
			SELECT 'CREATE DATABASE ' || quote_ident(:'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
		EOSQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh) echo "$0: running $f"; . "$f" ;;
		*.sql) echo "$0: running $f"; "${psql[@]}" --dbname "$db" -f "$f" ;;
		*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$db" ;;
		*) [ -e "$f" ] && echo "$0: ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	rm -f "$pristine"
	echo
	echo "PostgreSQL init process complete; ready for start up."
	echo
fi

shift
# docker import cannot set STOPSIGNAL, and postgres takes SIGTERM (what
# docker stop sends) as "smart" shutdown, which waits for every client to
# disconnect. The official image sets STOPSIGNAL SIGINT, a fast shutdown:
# do the same by forwarding TERM as INT to a child server.
postgres "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' TERM INT
rc=0
while kill -0 "$pid" 2>/dev/null; do
	wait "$pid" && rc=0 || rc=$?
done
exit "$rc"
