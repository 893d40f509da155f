#!/usr/bin/env bash
# build.sh builds PostgreSQL and MariaDB (Debian's MySQL) container images
# from Debian packages, for hosts that have a Docker engine but no registry.
#
#   build.sh [--force] [--only postgres|mariadb] [--mirror URL] [--suite NAME]
#
# How: debootstrap a minimal Debian (--variant=minbase) once, copy it per
# image, apt-get install only the server package into the copy, drop what a
# server does not need (docs, man pages, apt lists and caches), add an
# entrypoint that honours the official images' environment contract, and
# `docker import` the tree as a one-layer image with ENTRYPOINT, CMD, ENV,
# EXPOSE and labels. No Dockerfile, no base image, no registry.
#
# The mirror and the suite are read from this machine's apt sources
# (deb822 files in /etc/apt/sources.list.d/*.sources, or the one-line format
# in /etc/apt/sources.list and sources.list.d/*.list): the first "deb" entry
# with a suite without a dash (bookworm, not bookworm-updates) names both,
# and every entry of the same suite family (bookworm-updates,
# bookworm-security) becomes an apt source of the build, so the images get
# the security updates the host gets. --mirror and --suite override (or
# TWISTBENCH_DEBIAN_MIRROR and TWISTBENCH_DEBIAN_SUITE).
#
# Images (the version tag is the packaged major version; the :debian tag is
# the stable name package containers falls back to):
#   twistbench/postgres:<major>-debian   and  twistbench/postgres:debian
#   twistbench/mariadb:<major.minor>-debian and twistbench/mariadb:debian
#
# Idempotent: an image whose :debian tag exists is skipped unless --force.
# Needs root, debootstrap (apt-get install -y debootstrap) and a Docker
# engine. Prints one "built IMAGE SIZE SECONDS" or "skipped IMAGE" line per
# image on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
force=0
only=""
mirror=${TWISTBENCH_DEBIAN_MIRROR:-}
suite=${TWISTBENCH_DEBIAN_SUITE:-}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1 ;;
	--only) only=${2:?--only needs postgres or mariadb}; shift ;;
	--mirror) mirror=${2:?--mirror needs a URL}; shift ;;
	--suite) suite=${2:?--suite needs a name}; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done
case $only in "" | postgres | mariadb) ;; *) die "--only $only: want postgres or mariadb" ;; esac

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
docker version >/dev/null 2>&1 || die "no Docker engine answers (docker version failed)"

# apt_entries prints "URI SUITE COMPONENTS..." for every enabled deb entry of
# the machine's apt sources, one suite a line.
apt_entries() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# deb [options] URI SUITE COMPONENTS...
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { $1 = ""; print substr($0, 2) }'
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: paragraphs of Field: value; emit one line per URI x suite.
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "" && suites != "") {
					nu = split(uris, u, " "); ns = split(suites, s, " ")
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j], comps
				}
				types = uris = suites = comps = ""; enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				line = $0; key = tolower(line); sub(/:.*/, "", key)
				val = line; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "components") comps = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { flush() }
		' "$f"
	done
}

entries=$(apt_entries)
if [ -z "$suite" ]; then
	suite=$(awk '$2 !~ /-/ { print $2; exit }' <<<"$entries")
	[ -n "$suite" ] || die "no Debian suite found in the apt sources; pass --suite NAME"
fi
if [ -z "$mirror" ]; then
	mirror=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$entries")
	[ -n "$mirror" ] || die "no mirror for suite $suite in the apt sources; pass --mirror URL"
fi
# The build's own sources: the base suite from the mirror, plus every entry
# of the same family (SUITE-updates, SUITE-security) the host uses.
sources=$(awk -v s="$suite" -v m="$mirror" '
	BEGIN { print "deb " m " " s " main" }
	$2 ~ ("^" s "-") { comps = ""; for (i = 3; i <= NF; i++) if ($i == "main") comps = "main"; if (comps != "") print "deb " $1 " " $2 " main" }
' <<<"$entries")
log "suite $suite from $mirror"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
todo=()
for name in postgres mariadb; do
	want "$name" || continue
	if [ $force = 0 ] && image_exists "twistbench/$name:debian"; then
		echo "skipped twistbench/$name:debian (exists; --force rebuilds)"
		continue
	fi
	todo+=("$name")
done
[ ${#todo[@]} -gt 0 ] || exit 0

work=$(mktemp -d /var/tmp/twistbench-images.XXXXXX)
mounted=()
cleanup() {
	local m
	for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

start_all=$(date +%s)
base=$work/base
log "debootstrap --variant=minbase $suite (once for all images)"
debootstrap --variant=minbase "$suite" "$base" "$mirror" >&2 ||
	die "debootstrap failed (see above); check the mirror $mirror"
printf '%s\n' "$sources" >"$base/etc/apt/sources.list"
rm -f "$base"/etc/apt/sources.list.d/*
# Snapshot and local mirrors often serve Release files past their
# Valid-Until date; the packages are still signed.
printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
	>"$base/etc/apt/apt.conf.d/90twistbench"
# No daemon may start inside the build.
printf '#!/bin/sh\nexit 101\n' >"$base/usr/sbin/policy-rc.d"
chmod 755 "$base/usr/sbin/policy-rc.d"
# Keep docs, man pages and translations out of every later install.
cat >"$base/etc/dpkg/dpkg.cfg.d/90twistbench-nodoc" <<-'EOF'
	path-exclude /usr/share/doc/*
	path-exclude /usr/share/man/*
	path-exclude /usr/share/info/*
	path-exclude /usr/share/locale/*
	path-exclude /usr/share/lintian/*
EOF

in_root() { # in_root ROOT CMD...: run CMD chrooted with /proc mounted
	local root=$1
	shift
	mount -t proc proc "$root/proc"
	mounted+=("$root/proc")
	local rc=0
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 chroot "$root" "$@" >&2 || rc=$?
	umount -l "$root/proc" || true
	return $rc
}

# shrink removes from ROOT what a database server in a container never uses.
shrink() {
	local root=$1
	in_root "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
		"$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/log/apt/* \
		"$root"/usr/sbin/policy-rc.d "$root"/tmp/* "$root"/root/.cache
	find "$root/var/log" -type f -exec truncate -s 0 {} +
}

# import ROOT TAG VERSIONTAG CHANGES...: docker import the tree.
import() {
	local root=$1 tag=$2 vtag=$3
	shift 3
	local changes=() c old
	for c in "$@"; do changes+=(--change "$c"); done
	old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
	tar --numeric-owner --xattrs -C "$root" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -c . |
		docker import "${changes[@]}" \
			--change "LABEL org.twistbench.image=offline-debian" \
			--change "LABEL org.twistbench.suite=$suite" \
			- "$vtag" >/dev/null
	docker tag "$vtag" "$tag"
	# A rebuild leaves the previous image untagged: remove it unless a
	# container still uses it.
	if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
		docker image rm "$old" >/dev/null 2>&1 || log "kept the previous $tag ($old): a container uses it"
	fi
}

size_of() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0fMB", $1 / 1e6 }'; }

build_postgres() {
	local root=$work/postgres t0
	t0=$(date +%s)
	cp -a "$base" "$root"
	# LLVM and Z3 serve only JIT compilation (llvmjit.so), which pays off
	# for long analytical queries, never for an inventory's; without the
	# files PostgreSQL runs with JIT unavailable. That is 130MB of 366MB.
	cat >"$root/etc/dpkg/dpkg.cfg.d/91twistbench-nojit" <<-'EOF'
		path-exclude /usr/lib/x86_64-linux-gnu/libLLVM-*
		path-exclude /usr/lib/x86_64-linux-gnu/libz3.so*
		path-exclude /usr/lib/postgresql/*/lib/llvmjit*
		path-exclude /usr/lib/postgresql/*/lib/bitcode/*
	EOF
	# postgresql-common would create and start a "main" cluster on install;
	# the entrypoint creates the cluster at first start instead, from the
	# environment, like the official image.
	mkdir -p "$root/etc/postgresql-common"
	echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
	in_root "$root" apt-get update -qq
	in_root "$root" apt-get install -y -qq postgresql
	local bindir major
	bindir=$(ls -d "$root"/usr/lib/postgresql/*/bin | sort -V | tail -1)
	major=$(basename "$(dirname "$bindir")")
	bindir=${bindir#"$root"}
	install -m 755 "$here/postgres/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
	mkdir -p "$root/docker-entrypoint-initdb.d" "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
	in_root "$root" chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
	chmod 700 "$root/var/lib/postgresql/data"
	# A pristine cluster for the superuser "postgres" without a password;
	# the entrypoint sets one from the environment at first start instead
	# of running initdb then (seconds saved on every container start).
	in_root "$root" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$bindir/initdb" -D /var/lib/postgresql/data --username=postgres --encoding=UTF8 \
		--locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-sync
	printf "\nlisten_addresses = '*'\n" >>"$root/var/lib/postgresql/data/postgresql.conf"
	in_root "$root" setpriv --reuid=postgres --regid=postgres --init-groups \
		touch /var/lib/postgresql/data/.twistbench-pristine
	shrink "$root"
	import "$root" twistbench/postgres:debian "twistbench/postgres:$major-debian" \
		'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		'CMD ["postgres"]' \
		"ENV PATH=$bindir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		'ENV PGDATA=/var/lib/postgresql/data' \
		'ENV LANG=C.UTF-8' \
		'EXPOSE 5432' \
		"LABEL org.twistbench.server=postgresql-$major"
	rm -rf "$root"
	echo "built twistbench/postgres:$major-debian (also :debian) $(size_of twistbench/postgres:debian) $(($(date +%s) - t0))s"
}

build_mariadb() {
	local root=$work/mariadb t0 version
	t0=$(date +%s)
	cp -a "$base" "$root"
	# Offline table tools (5MB each) that a server in a container never
	# runs; the client, admin, dump, check and upgrade tools stay.
	cat >"$root/etc/dpkg/dpkg.cfg.d/91twistbench-notools" <<-'EOF'
		path-exclude /usr/bin/aria_*
		path-exclude /usr/bin/myisam*
		path-exclude /usr/bin/mariadb-slap
		path-exclude /usr/bin/mariadb-binlog
		path-exclude /usr/bin/mariadb-import
		path-exclude /usr/bin/mariadb-show
		path-exclude /usr/bin/mariadb-plugin
		path-exclude /usr/bin/mariadb-conv
		path-exclude /usr/bin/resolve_stack_dump
		path-exclude /usr/bin/innochecksum
		path-exclude /usr/bin/innotop
		path-exclude /usr/bin/replace
		path-exclude /usr/bin/perror
	EOF
	in_root "$root" apt-get update -qq
	in_root "$root" apt-get install -y -qq mariadb-server
	version=$(chroot "$root" dpkg-query -W -f '${Version}' mariadb-server | sed -E 's/^[0-9]+://; s/^([0-9]+\.[0-9]+).*/\1/')
	install -m 755 "$here/mariadb/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
	# Replace the package's data directory by a pristine one (root without
	# a password, no test database, marked): the entrypoint applies the
	# environment to it at first start, without running install-db then.
	rm -rf "$root"/var/lib/mysql/*
	in_root "$root" mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
		--skip-name-resolve --auth-root-authentication-method=normal --rpm
	touch "$root/var/lib/mysql/.twistbench-pristine"
	rm -f "$root"/var/lib/mysql/*.err "$root"/var/lib/mysql/aria_log_control.lock
	mkdir -p "$root/docker-entrypoint-initdb.d" "$root/run/mysqld"
	in_root "$root" chown -R mysql:mysql /var/lib/mysql /run/mysqld
	shrink "$root"
	import "$root" twistbench/mariadb:debian "twistbench/mariadb:$version-debian" \
		'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		'CMD ["mariadbd"]' \
		'ENV LANG=C.UTF-8' \
		'EXPOSE 3306' \
		"LABEL org.twistbench.server=mariadb-$version"
	rm -rf "$root"
	echo "built twistbench/mariadb:$version-debian (also :debian) $(size_of twistbench/mariadb:debian) $(($(date +%s) - t0))s"
}

for name in "${todo[@]}"; do
	"build_$name"
done
log "done in $(($(date +%s) - start_all))s"
