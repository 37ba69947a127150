# pg.sh - a throwaway PostgreSQL 15 cluster for the shell tests.
#
# Source tests/lib/tap.sh first, then this file, then call pg_start.
#   pg_start    initdb + start a private cluster in a short directory under /tmp
#               (Unix socket only, fsync off; synchronous_commit stays on, since
#               pg_stop is immediate and an acknowledged COMMIT must survive it,
#               as a real server's does); exports PGHOST PGPORT PGUSER
#               PGDATABASE; stopped and removed when the script exits.
#               Without PostgreSQL binaries (or, as root, without a postgres
#               user) prints "1..0 # SKIP no PostgreSQL" and exits 0.
#   pg_stop     stop it at once (pg_ctl -m immediate); the data stays
#   pg_restart  start it again on the same data directory (PG_DURABLE is read
#               again: bench/run.sh switches durability this way)
#   pg_running  true while the server accepts connections
#   pg_conninfo a conninfo string naming the cluster: "host=... port=... user=postgres dbname=postgres"
#   q SQL [PSQL-ARGS...]
#               run SQL with psql: one row per line, fields separated by |,
#               NULL shown as NULL, errors on the same output
#
# Environment: PG_DURABLE=1 starts the server with PostgreSQL's default
# durability (fsync and full_page_writes on), as in production (bench/run.sh);
# PG_SERVER_OPTS adds server options (-c name=value ...). PGBIN overrides the binary directory; TLSRPT_PGTEST_ROOT, when
# set to a directory, is where the cluster directories are made (.ci/run uses
# it to clean up whatever a killed test left behind).

PG_PORT_DEFAULT=5432
PGTMP=
PG_RUNAS=()

pg__find_bin() {
	local d
	if [ -n "${PGBIN:-}" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ]; then
		return 0
	fi
	for d in /usr/lib/postgresql/15/bin /usr/pgsql-15/bin /usr/local/pgsql/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			PGBIN=$d
			return 0
		fi
	done
	return 1
}

pg__skip() {
	if declare -F skip_all >/dev/null; then
		skip_all "$1"
	fi
	echo "1..0 # SKIP $1"
	exit 0
}

pg__ctl() {
	"${PG_RUNAS[@]}" "$PGBIN/pg_ctl" "$@"
}

pg__server_start() {
	local durability="-c fsync=off -c full_page_writes=off"
	[ "${PG_DURABLE:-0}" = 1 ] && durability="-c fsync=on -c full_page_writes=on -c synchronous_commit=on"
	if ! pg__ctl -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
		-o "-c listen_addresses='' -k $PGTMP -p $PGPORT $durability -c max_connections=50 ${PG_SERVER_OPTS:-}" \
		start >"$PGTMP/pg_ctl.log" 2>&1; then
		echo "# pg_ctl start failed:" >&2
		sed 's/^/#   /' "$PGTMP/pg_ctl.log" "$PGTMP/server.log" >&2 2>/dev/null
		return 1
	fi
}

pg_start() {
	local root=${TLSRPT_PGTEST_ROOT:-/tmp}

	pg__find_bin || pg__skip "no PostgreSQL"
	# psql, pg_isready of the same version, not whatever wrapper comes first
	PATH=$PGBIN:$PATH
	export PATH
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || pg__skip "no PostgreSQL (running as root without a postgres user)"
		command -v runuser >/dev/null 2>&1 || pg__skip "no PostgreSQL (running as root without runuser)"
		PG_RUNAS=(runuser -u postgres --)
	fi
	[ -d "$root" ] || root=/tmp
	PGTMP=$(mktemp -d "$root/pg.XXXXXX") || bail "mktemp failed"
	if declare -F atexit >/dev/null; then
		atexit pg__cleanup
	else
		trap pg__cleanup EXIT
	fi
	[ "$(id -u)" = 0 ] && chown postgres: "$PGTMP"
	chmod 700 "$PGTMP"

	if ! "${PG_RUNAS[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -A trust -U postgres \
		-E UTF8 --locale=C --no-sync >"$PGTMP/initdb.log" 2>&1; then
		sed 's/^/#   /' "$PGTMP/initdb.log" >&2
		bail "initdb failed"
	fi
	PGPORT=$PG_PORT_DEFAULT
	pg__server_start || bail "cannot start PostgreSQL"
	export PGHOST=$PGTMP PGPORT PGUSER=postgres PGDATABASE=postgres
	unset PGSERVICE PGSERVICEFILE PGPASSFILE PGOPTIONS PGHOSTADDR PGCONNECT_TIMEOUT PGAPPNAME
}

pg_stop() {
	[ -n "$PGTMP" ] && [ -f "$PGTMP/data/postmaster.pid" ] || return 0
	pg__ctl -D "$PGTMP/data" -m immediate -w -t 60 stop >>"$PGTMP/pg_ctl.log" 2>&1
}

pg_restart() {
	[ -n "$PGTMP" ] || return 1
	pg_stop
	pg__server_start
}

pg_running() {
	[ -n "$PGTMP" ] && "$PGBIN/pg_isready" -q -h "$PGTMP" -p "$PGPORT" >/dev/null 2>&1
}

pg_conninfo() {
	echo "host=$PGTMP port=$PGPORT user=postgres dbname=${1:-postgres}"
}

pg_log() {
	[ -n "$PGTMP" ] && cat "$PGTMP/server.log" 2>/dev/null
}

pg__cleanup() {
	[ -n "$PGTMP" ] || return 0
	pg_stop || true
	rm -rf "$PGTMP"
	PGTMP=
}

q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -P null=NULL -F '|' -c "$1" "${@:2}" 2>&1
}
