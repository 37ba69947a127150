#!/bin/bash
# pgbouncer-t.sh - many MTAs, one database: Debian's pgbouncer in transaction
# pooling mode in front of a throwaway PostgreSQL, with fewer server
# connections than clients, and parallel deliveries through it. Counts must
# be exact, and nothing may leak from one client's transaction into another's.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
[ -x "$PGBOUNCER" ] || skip_all "no pgbouncer (apt-get install pgbouncer)"


pg_start
DIRECT=$(pg_conninfo)
ingest_noin --init-db
is "$rc" 0 "--init-db (directly)"

# ---------------------------------------------------------------- pgbouncer
D=$(mktemp -d /tmp/tlsrpt-pgb.XXXXXX) || bail "mktemp failed"
atexit 'rm -rf "$D"'
BPORT=6432
cat >"$D/pgbouncer.ini" <<EOF
[databases]
tlsrpt = host=$PGHOST port=$PGPORT dbname=postgres user=postgres

[pgbouncer]
listen_addr =
unix_socket_dir = $D
listen_port = $BPORT
auth_type = trust
auth_file = $D/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
server_reset_query =
logfile = $D/pgbouncer.log
pidfile = $D/pgbouncer.pid
admin_users = postgres
EOF
echo '"postgres" ""' >"$D/userlist.txt"
RUNAS=()
if [ "$(id -u)" = 0 ]; then # pgbouncer will not run as root
	chown -R postgres: "$D"
	RUNAS=(runuser -u postgres --)
fi
chmod 755 "$D"
"${RUNAS[@]}" "$PGBOUNCER" -d "$D/pgbouncer.ini" >"$D/start.log" 2>&1 || {
	diag "$(cat "$D/start.log" "$D/pgbouncer.log" 2>/dev/null)"
	bail "pgbouncer did not start"
}
atexit 'kill $(cat "$D/pgbouncer.pid" 2>/dev/null) 2>/dev/null'
BOUNCER="host=$D port=$BPORT dbname=tlsrpt user=postgres"
for _ in $(seq 50); do
	psql -X -qAt -d "$BOUNCER" -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done
is "$(psql -X -qAt -d "$BOUNCER" -c 'SELECT 1' 2>&1)" 1 "pgbouncer answers"

qb() {
	q "$1" -d "$BOUNCER"
}

# ---------------------------------------------------------------- parallel deliveries
# 60 report mails (ids par-1..60), each with 2 policies and 3 failure rows;
# 4 MTAs deliver all of them at once, each in its own order: every report
# arrives 4 times, 24 deliveries run at a time over 2 server connections.
mkdir "$W/mails"
for i in $(seq 60); do
	json_with_id "$DATA/google.json" "par-$i" >"$W/r.json"
	mkmail -m "par-$i@example.org" "$W/r.json" >"$W/mails/$i.eml"
done
: >"$W/statuses"
deliver() { # deliver FILE: one MTA delivery through pgbouncer, its exit status appended
	cat "$1" | timeout -k 5 120 "$BIN" -d "$BOUNCER" >/dev/null 2>>"$W/stderr"
	echo $? >>"$W/statuses"
}
export -f deliver
export BIN BOUNCER W
{
	seq 60
	seq 60 | sort -r
	seq 60 | sort -R
	seq 60 | sort -R
} | sed "s|.*|$W/mails/&.eml|" | xargs -P 24 -I{} bash -c 'deliver "$1"' _ {}
is "$(grep -c '' "$W/statuses")" 240 "240 deliveries ran"
is "$(grep -vc '^0$' "$W/statuses")" 0 "every delivery exited 0"
is "$(cat "$W/stderr")" "" "nothing on stderr"
is "$(qb "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'par-%'")" 60 "exactly 60 reports"
is "$(qb "SELECT count(DISTINCT report_id) FROM tlsrpt.report WHERE report_id LIKE 'par-%'")" 60 "each one once"
is "$(qb "SELECT count(*) FROM tlsrpt.policy")" 120 "exactly 120 policies (2 each, never doubled)"
nfail=$(jq '[.policies[]."failure-details" // [] | length] | add' "$DATA/google.json" 2>/dev/null ||
	python3 -c 'import json,sys; print(sum(len(p.get("failure-details") or []) for p in json.load(open(sys.argv[1]))["policies"]))' "$DATA/google.json")
is "$(qb "SELECT count(*) FROM tlsrpt.failure")" $((60 * nfail)) "exactly $((60 * nfail)) failure rows"
is "$(qb "SELECT count(*) FROM tlsrpt.policy p WHERE NOT EXISTS (SELECT 1 FROM tlsrpt.failure f WHERE f.policy = p.id)
          AND p.policy_type = 'sts'")" 0 "every sts policy has its failure rows"

# ---------------------------------------------------------------- backfills through pgbouncer, in parallel
for k in 1 2 3; do
	for i in $(seq 30); do
		json_with_id "$DATA/google.json" "mbox-$k-$i" >"$W/r.json"
		mkmail -F -m "mbox-$k-$i@example.org" "$W/r.json"
		echo
	done >"$W/b$k.mbox"
done
pids=()
for k in 1 2 3; do
	"${_timeout[@]}" "$BIN" -d "$BOUNCER" "$W/b1.mbox" "$W/b$k.mbox" >"$W/bout$k" 2>&1 &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do
	wait "$p" || st=$?
done
is "$st" 0 "three backfills at once through pgbouncer: exit 0"
is "$(qb "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'mbox-%'")" 90 "exactly 90 reports from the mboxes"
is "$(qb "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id LIKE 'mbox-%'")" 180 \
	"exactly 180 of their policies"

# ---------------------------------------------------------------- nothing leaked into the pooled sessions
# tlsrpt-ingest sets its timeouts with SET LOCAL only; a session SET would
# show up here, in whichever server connection this lands on.
for _ in 1 2 3 4; do
	qb "SHOW statement_timeout"
done | sort -u >"$W/timeouts"
is "$(cat "$W/timeouts")" "0" "statement_timeout in the pooled server connections: the server's default"
is "$(qb "SELECT count(*) FROM pg_prepared_statements")" 0 "no prepared statement left in a pooled connection"
is "$(psql -X -qAt -d "$DIRECT" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest' AND state <> 'idle'")" 0 \
	"no transaction left open"

done_testing
