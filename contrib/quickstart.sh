#!/bin/bash
# contrib/quickstart.sh - on a fresh Debian 12, as root: install the
# dependencies, build, start a throwaway PostgreSQL (socket in
# /tmp/tlsrpt-quickstart), ingest the bundled sample reports and show what was
# stored and the summary an administrator reads. Run it again at will: it
# starts over. It builds out of tree, in _build-quickstart, and leaves the
# source tree unconfigured, so that .ci/run (and "make distcheck") work after it.
# SKIP_APT=1: the dependencies are installed already (.ci/run sets it).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
QS=/tmp/tlsrpt-quickstart
PGBIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" = 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# the build dependencies of configure.ac (.ci/run installs these and the test tools)
	apt-get install -y -q --no-install-recommends \
		build-essential autoconf automake libtool pkg-config \
		libgmime-3.0-dev libjson-c-dev zlib1g-dev libpq-dev \
		libpsl-dev publicsuffix libopendkim-dev \
		postgresql-15 postgresql-client-15
elif [ "${SKIP_APT:-0}" != 1 ]; then
	echo "not root: assuming the dependencies are installed" >&2
fi
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)

if [ -f config.status ]; then
	echo "the source tree is configured in-tree (./configure was run here): run \"make distclean\" first" >&2
	exit 1
fi
[ -x configure ] || autoreconf -fi
B=$top/_build-quickstart
mkdir -p "$B"
[ -f "$B/Makefile" ] || (cd "$B" && ../configure --enable-werror)
make -C "$B" -j2
PROG=$B/src/tlsrpt-ingest

if [ -f "$QS/data/postmaster.pid" ]; then
	"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$QS/data" -m fast -w stop >/dev/null || true
fi
rm -rf "$QS"
mkdir -p "$QS"
[ "$(id -u)" = 0 ] && chown postgres: "$QS"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$QS/data" -A trust -U postgres -E UTF8 --locale=C >"$QS/initdb.log"
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$QS/data" -l "$QS/server.log" -w \
	-o "-c listen_addresses='' -k $QS -p 5432" start >/dev/null
DB="host=$QS port=5432 user=postgres dbname=postgres"

"$PROG" -d "$DB" --init-db
for f in "$top"/contrib/samples/*; do
	echo "--- cat $(basename "$f") | tlsrpt-ingest"
	cat "$f" | "$PROG" -v -d "$DB"
done

psql -X "$DB" <<'SQL'
\echo
\echo Reports stored:
SELECT r.organization_name, r.report_id, r.date_start::date AS day, p.policy_type,
       p.policy_domain, p.total_successful_session_count AS ok,
       p.total_failure_session_count AS failed
  FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id ORDER BY r.date_start, r.id;
\echo Failure details:
SELECT f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.failed_session_count
  FROM tlsrpt.failure f ORDER BY f.id;
\echo Kept as rejected:
SELECT reason, raw_size, subject FROM tlsrpt.rejected ORDER BY id;
SQL
# how many days back the oldest sample starts: --summary covers them all
days=$(psql -X -qAt "$DB" -c "SELECT greatest(1, ceil(extract(epoch FROM now() - min(date_start)) / 86400))::int FROM tlsrpt.report")
echo
echo "--- tlsrpt-ingest --summary --days $days"
"$PROG" -d "$DB" --summary --days "$days"
echo
echo "Run it again (it starts over): bash contrib/quickstart.sh"
echo "PostgreSQL keeps running: psql \"$DB\""
echo "Stop it with: ${RUNAS[*]} $PGBIN/pg_ctl -D $QS/data stop"
