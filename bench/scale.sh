#!/bin/bash
# bench/scale.sh - "make bench-scale": a hosting operator's year (gen-scale.py)
# loaded through tlsrpt-ingest's own backfill, then every Grafana panel's SQL
# (last 30 days; $domain = All and one domain), every alert function and
# --summary (--days 7, and --domain) timed: median of SCALE_RUNS runs after one
# warm-up, psql's \timing (server round trip included), --summary as the wall
# time of the process; then all of them again with 23 reports pending (20 of
# yesterday, 3 older with a new MTA-STS policy: drift), stored after the last
# refresh(), as between two cron runs. Then
# --purge-older-than 300 with deliveries running beside it (their median and
# p90 against the same deliveries without it).
#
# Environment: SCALE (default 1: 1,000 domains, ~1.17M reports; 0.1 for a
# tenth; 10 with SCALE_DAYS=100 for 10,000 domains), SCALE_DAYS (default 365:
# only the last days of the year), SCALE_RUNS (default 5), SCALE_KEEP=DIR keeps
# the generated mbox there and reuses it in the next run
# (the load takes long at SCALE 1), SCALE_SKIP_PURGE=1.
# The load runs with fsync off (tests/lib/pg.sh); the timings are reads.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
: "${top_builddir:=$top_srcdir}"
BIN=$top_builddir/src/tlsrpt-ingest
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
SCALE=${SCALE:-1}
DAYS=${SCALE_DAYS:-365}
RUNS=${SCALE_RUNS:-5}
PSQL=/usr/lib/postgresql/15/bin/psql
[ -x "$BIN" ] || { echo "bench-scale: build src/tlsrpt-ingest first" >&2; exit 1; }
[ -x "$PSQL" ] || { echo "bench-scale: needs $PSQL" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-scale: needs python3" >&2; exit 1; }

. "$top_srcdir/tests/lib/pg.sh"
PG_DURABLE=0
pg_start
W=$(mktemp -d /tmp/tlsrpt-scale.XXXXXX)
trap 'pg__cleanup; rm -rf "$W"' EXIT
psql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }
CONF=$W/empty.conf
: >"$CONF"
ING=("$BIN" -c "$CONF")
end=$(date -u -d yesterday +%F)
echo "machine: $(nproc) CPU(s), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM;" \
	"PostgreSQL $(psql -Atc 'SHOW server_version'), shared_buffers $(psql -Atc 'SHOW shared_buffers'),"\
	"work_mem $(psql -Atc 'SHOW work_mem'); SCALE $SCALE, $DAYS days ending $end"

"${ING[@]}" --init-db >/dev/null || exit 1
mbox=$W/year.mbox
[ -n "${SCALE_KEEP:-}" ] && mkdir -p "$SCALE_KEEP" && mbox=$SCALE_KEEP/year-$SCALE-$DAYS-$end.mbox
[ -s "$mbox" ] || python3 "$here/gen-scale.py" "$SCALE" "$end" "$mbox" "$DAYS" || exit 1
t0=$(date +%s.%N)
"${ING[@]}" "$mbox" >"$W/load.out" 2>&1 || { tail "$W/load.out"; exit 1; }
t1=$(date +%s.%N)
# a backfill stores everything "now": date received_at as the mails arrived
psql -c "CREATE TEMP TABLE late (message_id text PRIMARY KEY, delay integer)" \
	-c "\\copy late FROM '$mbox.received'" \
	-c "UPDATE tlsrpt.report r SET received_at = r.date_end + make_interval(secs => l.delay)
	    FROM late l WHERE l.message_id = r.message_id" || exit 1
psql -c "VACUUM ANALYZE" || exit 1
echo "load: $(psql -Atc "SELECT (SELECT count(*) FROM tlsrpt.report) || ' reports, ' ||
	(SELECT count(*) FROM tlsrpt.policy) || ' policies, ' || (SELECT count(*) FROM tlsrpt.failure) || ' failure rows, ' ||
	(SELECT count(DISTINCT policy_domain) FROM tlsrpt.policy) || ' policy domains, ' ||
	pg_size_pretty(pg_database_size(current_database()))") in" \
	"$(python3 -c "print('%.0f s' % ($t1 - $t0))") ($(grep -c '^From ' "$mbox") messages, backfill)"
has_refresh=0
if psql -Atc "SELECT to_regprocedure('tlsrpt.refresh()') IS NOT NULL" | grep -q t; then
	has_refresh=1
	t0=$(date +%s.%N)
	psql -Atc "SELECT tlsrpt.refresh()" >/dev/null || exit 1
	t1=$(date +%s.%N)
	echo "tlsrpt.refresh() after the load: $(python3 -c "print('%.1f s' % ($t1 - $t0))")"
	psql -c "VACUUM ANALYZE" || exit 1
fi
echo

# ---------------------------------------------------------------- the queries
psql -Atc "SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL ORDER BY 1" >"$W/domains"
one=customer00000.example
python3 "$here/queries.py" "$top_srcdir/contrib/grafana/tlsrpt-dashboard.json" "$W/domains" "$one" "$W/q" || exit 1
# time_sql FILE: median ms of RUNS runs after one warm-up, and the row count
time_sql() {
	{
		echo '\o /dev/null'
		tail -n +2 "$1"
		echo '\timing on'
		for _ in $(seq "$RUNS"); do tail -n +2 "$1"; done
	} | psql 2>&1 | python3 -c '
import re, statistics, sys
t = [float(m.group(1)) for m in re.finditer(r"^Time: ([0-9.]+) ms", sys.stdin.read(), re.M)]
print("%.1f" % statistics.median(t) if t else "error")'
}
time_all() {
	local f rows
	for f in "$W"/q/*.sql; do
		rows=$(tail -n +2 "$f" | psql -At 2>/dev/null | grep -c '')
		printf '%-62s %10s %6s\n' "$(head -n 1 "$f" | cut -c4-)" "$(time_sql "$f")" "$rows"
	done
}
printf '%-62s %10s %6s\n' "query (SCALE $SCALE, last 30 days)" "median ms" rows
time_all
py_wall() {
	python3 - "$RUNS" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
subprocess.run(argv, stdout=subprocess.DEVNULL)
t = []
for _ in range(runs):
    s = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL)
    t.append((time.perf_counter() - s) * 1000)
    if r.returncode:
        sys.exit("exit %d" % r.returncode)
print("%.1f" % statistics.median(t))
PY
}
time_summary() {
	printf '%-62s %10s\n' "tlsrpt-ingest --summary --days 7 (wall time)" "$(py_wall "${ING[@]}" --summary --days 7)"
	printf '%-62s %10s\n' "tlsrpt-ingest --summary --days 7 --domain $one" \
		"$(py_wall "${ING[@]}" --summary --days 7 --domain "$one")"
}
time_summary
printf '%-62s %10s\n' "beside them: tlsrpt-ingest --version" "$(py_wall "${ING[@]}" --version)"
echo

# ---------------------------------------------------------------- with reports pending
# Between two refresh() runs (cron), the reports delivered since the last one
# are pending: the days they fall on are computed from the tables when a view
# is read. The usual state of a live server: 20 reports of yesterday (with
# the mx-host list real senders give), and 3 of 10, 15 and 20 days ago whose
# new MTA-STS policy the other reporters have not applied since (drift: a
# policy changed, and some senders still use the old one), stored after the
# refresh, the same queries again; then refresh() takes them in.
if [ "$has_refresh" = 1 ]; then
	mkdir "$W/pending"
	python3 - "$W/pending" <<'PY' || exit 1
import datetime, json, sys
today = datetime.datetime.now(datetime.timezone.utc).date()
for k in range(23):
    y = (today - datetime.timedelta(days=1 if k < 20 else 5 * (k - 18))).isoformat()
    d = "customer%05d.example" % k
    json.dump({"organization-name": "Pending Reporter", "contact-info": "tls@pending.example",
               "report-id": "pending-%d-%s" % (k, y),
               "date-range": {"start-datetime": y + "T00:00:00Z", "end-datetime": y + "T23:59:59Z"},
               "policies": [{"policy": {"policy-type": "sts", "policy-domain": d,
                                        "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1." + d, "max_age: 604800"],
                                        "mx-host": ["mx1." + d]},
                             "summary": {"total-successful-session-count": 100, "total-failure-session-count": 2},
                             "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.9",
                                                  "receiving-mx-hostname": "mx1." + d, "failed-session-count": 2}]}]},
              open("%s/%d.json" % (sys.argv[1], k), "w"))
PY
	"${ING[@]}" "$W"/pending/*.json >/dev/null || exit 1
	printf '%-62s %10s %6s\n' "the same, 23 reports pending (20 of yesterday)" "median ms" rows
	time_all
	time_summary
	t0=$(date +%s.%N)
	n=$(psql -Atc "SELECT tlsrpt.refresh()")
	t1=$(date +%s.%N)
	echo "tlsrpt.refresh() of those $n: $(python3 -c "print('%.0f ms' % (($t1 - $t0) * 1000))")"
	echo
fi

# ---------------------------------------------------------------- purge beside deliveries
[ "${SCALE_SKIP_PURGE:-0}" = 1 ] && exit 0
mkdir "$W/mails"
python3 "$here/gen.py" mails 400 "$W/mails" || exit 1
# deliver FIRST LAST: one delivery after another, each one's wall time (ms),
# until LAST or until the file $W/stop exists
deliver() {
	python3 - "$1" "$2" "$W/mails" "${ING[@]}" <<'PY'
import os, subprocess, sys, time
a, b, d, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
for i in range(a, b + 1):
    if os.path.exists(d + "/../stop"):
        break
    s = time.perf_counter()
    r = subprocess.run(argv, stdin=open("%s/%d.eml" % (d, i), "rb"))
    print("%.3f" % ((time.perf_counter() - s) * 1000), flush=True)
    if r.returncode:
        sys.exit("exit %d" % r.returncode)
PY
}
stats() {
	python3 -c '
import statistics, sys
t = sorted(float(x) for x in open(sys.argv[1]))
print("median %.1f ms, p90 %.1f ms (%d deliveries)" % (statistics.median(t), t[int(0.9 * (len(t) - 1))], len(t)))' "$1"
}
deliver 1 150 >"$W/base.ms" || exit 1
if [ "$has_refresh" = 1 ]; then
	t0=$(date +%s.%N)
	n=$(psql -Atc "SELECT tlsrpt.refresh()")
	t1=$(date +%s.%N)
	echo "tlsrpt.refresh() after $n deliveries: $(python3 -c "print('%.0f ms, %.2f ms a report' % (($t1 - $t0) * 1000, ($t1 - $t0) * 1000 / max($n, 1)))")"
fi
deliver 151 400 >"$W/purge.ms" &
dpid=$!
sleep 0.2
t0=$(date +%s.%N)
"${ING[@]}" --purge-older-than 300 >"$W/purge.out" 2>&1
t1=$(date +%s.%N)
touch "$W/stop"
wait "$dpid"
echo "--purge-older-than 300: $(cat "$W/purge.out") in $(python3 -c "print('%.1f s' % ($t1 - $t0))")"
echo "   deliveries alone:        $(stats "$W/base.ms")"
echo "   deliveries beside purge: $(stats "$W/purge.ms")"
if [ "$has_refresh" = 1 ]; then
	t0=$(date +%s.%N)
	n=$(psql -Atc "SELECT tlsrpt.refresh()")
	t1=$(date +%s.%N)
	echo "tlsrpt.refresh() after the purge (the purged days, latest_report and the history again): $(python3 -c "print('%.1f s' % ($t1 - $t0))")"
fi
