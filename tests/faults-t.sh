#!/bin/bash
# faults-t.sh - what a real PostgreSQL and a real MTA do to a delivery: the
# server down, killed while a big report is being stored, locks held too long,
# statement_timeout, SIGTERM from the MTA, and 16 deliveries at once. Each
# fault must end in 75 (the MTA keeps the mail) with nothing half-stored, and
# the redelivery must store everything exactly once. No mocks.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start

reports_with_id() {
	q "SELECT count(*) FROM tlsrpt.report WHERE report_id = '$1'"
}
failures_of() {
	q "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = '$1'"
}
policies_of() {
	q "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = '$1'"
}
# wait_for SQL WANT [TENTHS]: polls until SQL gives WANT (default 30 s)
wait_for() {
	local i n=${3:-300}
	for ((i = 0; i < n; i++)); do
		[ "$(q "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# A background session holding LOCK TABLE TABLE IN MODE until stop_locker.
locker=
start_locker() { # start_locker TABLE MODE
	psql -X -q -v ON_ERROR_STOP=1 -v application_name=locker \
		-c "BEGIN; LOCK TABLE $1 IN $2 MODE; SELECT pg_sleep(600); COMMIT;" >/dev/null 2>&1 &
	locker=$!
	wait_for "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.relation = '$1'::regclass AND l.granted AND a.query LIKE '%pg_sleep(600)%'" 1
}
stop_locker() {
	[ -n "$locker" ] || return 0
	q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()" >/dev/null
	wait "$locker" 2>/dev/null
	locker=
}
atexit 'stop_locker'
# the pid of a tlsrpt-ingest session waiting for a lock, or nothing
waiting_delivery() {
	q "SELECT pid FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest' AND wait_event_type = 'Lock' LIMIT 1"
}
sessions() {
	q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest'"
}

ingest_noin --init-db
expect_quiet "--init-db"
[ "$rc" = 0 ] || bail "cannot create the schema"

# ---------------------------------------------------------------- server down at connect
json_with_id "$DATA/google.json" faults-down-1 >"$W/down.json"
mkmail -m faults-down-1@google.com "$W/down.json" >"$W/down.eml"
ok "server stopped" pg_stop
ingest "$W/down.eml"
expect_fail "server down at connect" 75 4
ok "server started again" pg_restart
is "$(reports_with_id faults-down-1)" 0 "server down: nothing stored"
is "$(q "SELECT count(*) FROM tlsrpt.rejected")" 0 "server down: nothing rejected either"
ingest "$W/down.eml"
expect_ok "server down: the same mail once it is back"
is "$(reports_with_id faults-down-1)" 1 "server down: stored once it is back"

# ---------------------------------------------------------------- killed while storing a large report
# 4 policies x 5,000 failure rows. tlsrpt.failure is locked, so the delivery
# has inserted its report row and waits on the first policy; then the server
# is stopped with -m immediate.
python3 - "$W/big.json" <<'PY'
import json, sys
pols = []
for p in range(4):
    fails = [{"result-type": "certificate-expired",
              "sending-mta-ip": "10.%d.%d.%d" % (p, i // 250, i % 250),
              "receiving-mx-hostname": "mx%d.example.org" % p,
              "failed-session-count": i + 1,
              "failure-reason-code": "X509_V_ERR_%d" % i} for i in range(5000)]
    pols.append({"policy": {"policy-type": "sts", "policy-domain": "p%d.example.org" % p,
                            "policy-string": ["version: STSv1", "mode: enforce"],
                            "mx-host": ["mx%d.example.org" % p]},
                 "summary": {"total-successful-session-count": 1000,
                             "total-failure-session-count": sum(range(1, 5001))},
                 "failure-details": fails})
r = {"organization-name": "Big Sender", "contact-info": "tls@big.example",
     "report-id": "faults-big-1",
     "date-range": {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"},
     "policies": pols}
open(sys.argv[1], "w").write(json.dumps(r))
PY
mkmail -m faults-big-1@big.example -s big.example "$W/big.json" >"$W/big.eml"
ok "tlsrpt.failure locked" start_locker tlsrpt.failure "SHARE ROW EXCLUSIVE"
"${_timeout[@]}" "$BIN" <"$W/big.eml" >"$W/big.out" 2>"$W/big.err" &
victim=$!
ok "the delivery waits for the lock on tlsrpt.failure" wait_for \
	"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest' AND wait_event_type = 'Lock'" 1
is "$(q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE a.application_name = 'tlsrpt-ingest' AND l.relation = 'tlsrpt.report'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted")" 1 \
	"the delivery is in the middle: its transaction holds tlsrpt.report, waits for tlsrpt.failure"
ok "server stopped (-m immediate) in the middle of the delivery" pg_stop
wait "$victim"
rc=$?
wait "$locker" 2>/dev/null
locker=
is "$rc" 75 "killed server: exit status 75"
is "$(cat "$W/big.out")" "" "killed server: nothing on stdout"
is "$(grep -c '' "$W/big.err")" 1 "killed server: one line on stderr"
like "$(head -n 1 "$W/big.err")" '^4\.[0-9]+\.[0-9]+ ' "killed server: a 4.x.x status"
ok "server started again" pg_restart
is "$(reports_with_id faults-big-1)" 0 "killed server: no report row"
is "$(q "SELECT count(*) FROM tlsrpt.policy")" "$(q "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report")" \
	"killed server: no orphan policy rows"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE failure_reason_code ~ '^X509_V_ERR_[0-9]+$'")" 0 \
	"killed server: no failure rows"
ingest "$W/big.eml"
expect_ok "killed server: redelivery"
is "$(reports_with_id faults-big-1)" 1 "redelivery: the report stored once"
is "$(policies_of faults-big-1)" 4 "redelivery: 4 policies"
is "$(failures_of faults-big-1)" 20000 "redelivery: 20,000 failure rows"
is "$(q "SELECT sum(failed_session_count) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'faults-big-1'")" \
	$((4 * 5000 * 5001 / 2)) "redelivery: every failed-session-count is there"
ingest "$W/big.eml"
expect_ok "a second redelivery"
is "$(reports_with_id faults-big-1)" 1 "a second redelivery: still one report"
is "$(failures_of faults-big-1)" 20000 "a second redelivery: still 20,000 failure rows"

# ---------------------------------------------------------------- lock wait beyond our limit
json_with_id "$DATA/google.json" faults-lock-1 >"$W/lock.json"
mkmail -m faults-lock-1@google.com "$W/lock.json" >"$W/lock.eml"
ok "tlsrpt.report locked" start_locker tlsrpt.report "SHARE ROW EXCLUSIVE"
t0=$(date +%s)
ingest "$W/lock.eml" -o lock_timeout=1 -o statement_timeout=60
t1=$(date +%s)
expect_fail "lock_timeout=1 with the lock held" 75 4
like "$(cat "$W/err")" 'lock timeout|55P03' "lock_timeout: the status line says lock timeout"
ok "lock_timeout: gave up in less than 20 s (hang guard, $((t1 - t0)) s)" test $((t1 - t0)) -lt 20
is "$(reports_with_id faults-lock-1)" 0 "lock_timeout: nothing stored"

# ---------------------------------------------------------------- statement_timeout
ingest "$W/lock.eml" -o statement_timeout=1 -o lock_timeout=60
expect_fail "statement_timeout=1 with the lock held" 75 4
like "$(cat "$W/err")" 'statement timeout|57014' "statement_timeout: the status line says statement timeout"
is "$(reports_with_id faults-lock-1)" 0 "statement_timeout: nothing stored"
ok "no session of ours left behind" wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest'" 0 100

# The report's identity lock (migration 10) is asked for in the statement that
# sets the transaction's timeouts: lock_timeout must already hold for it.
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN; SELECT pg_advisory_xact_lock(8460, tlsrpt.report_lock_key('Google Inc.',
	'faults-lock-1', '2024-03-01T00:00:00Z', '2024-03-01T23:59:59Z')); SELECT pg_sleep(599); COMMIT;" >/dev/null 2>&1 &
advisory=$!
ok "the report's identity lock held" wait_for \
	"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 8460 AND granted" 1
t0=$(date +%s)
ingest "$W/lock.eml" -o lock_timeout=1 -o statement_timeout=60
t1=$(date +%s)
expect_fail "lock_timeout=1 with the identity lock held" 75 4
like "$(cat "$W/err")" 'lock timeout|55P03' "identity lock: the status line says lock timeout"
ok "identity lock: gave up in less than 20 s (hang guard, $((t1 - t0)) s)" test $((t1 - t0)) -lt 20
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(599)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$advisory" 2>/dev/null

# ---------------------------------------------------------------- SIGTERM while blocked
# lock_timeout=5: the server ends the orphaned session by itself once the wait
# runs out; the lock is still held then, so the INSERT never ran.
"${_timeout[@]}" "$BIN" -o lock_timeout=5 -o statement_timeout=60 <"$W/lock.eml" >"$W/term.out" 2>"$W/term.err" &
victim=$!
ok "the delivery waits for the lock" wait_for \
	"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest' AND wait_event_type = 'Lock'" 1
backend=$(waiting_delivery)
is "$(q "SELECT state FROM pg_stat_activity WHERE pid = ${backend:-0}")" active "SIGTERM: its backend is active, in a transaction"
kill -TERM "$victim"
wait "$victim"
rc=$?
is "$rc" 75 "SIGTERM: exit status 75"
is "$(cat "$W/term.out")" "" "SIGTERM: nothing on stdout"
is "$(grep -c '' "$W/term.err")" 1 "SIGTERM: one line on stderr"
like "$(head -n 1 "$W/term.err")" '^4\.[0-9]+\.[0-9]+ ' "SIGTERM: a 4.x.x status"
ok "SIGTERM: the orphaned backend ends (its transaction rolled back)" wait_for \
	"SELECT count(*) FROM pg_stat_activity WHERE pid = ${backend:-0}" 0 300
is "$(q "SELECT count(*) FROM pg_locks WHERE pid = ${backend:-0}")" 0 "SIGTERM: it holds no locks"
stop_locker
is "$(reports_with_id faults-lock-1)" 0 "SIGTERM: nothing stored once the lock is released"
ingest "$W/lock.eml"
expect_ok "the same mail once the lock is gone"
is "$(reports_with_id faults-lock-1)" 1 "stored once the lock is gone"

# SIGTERM while waiting, then the lock released at once. A delivery sends its
# COMMIT with its statements (one round trip, src/pipeline.c), so the server
# may run it after the client is gone: the rule is "a 75 may be followed by a
# commit" -- of the whole delivery, never part of it -- and the MTA's
# redelivery is then a duplicate: nothing lost, nothing twice.
json_with_id "$DATA/google.json" faults-term-2 >"$W/term2.json"
mkmail -m faults-term-2@google.com "$W/term2.json" >"$W/term2.eml"
ok "tlsrpt.failure locked" start_locker tlsrpt.failure "SHARE ROW EXCLUSIVE"
"${_timeout[@]}" "$BIN" -o lock_timeout=60 -o statement_timeout=60 <"$W/term2.eml" >"$W/term.out" 2>"$W/term.err" &
victim=$!
ok "the delivery waits for the lock on tlsrpt.failure" wait_for \
	"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tlsrpt-ingest' AND wait_event_type = 'Lock'" 1
backend=$(waiting_delivery)
kill -TERM "$victim"
wait "$victim"
is "$?" 75 "SIGTERM mid-delivery: exit status 75"
stop_locker
ok "SIGTERM mid-delivery: the orphaned backend ends once the lock is released" wait_for \
	"SELECT count(*) FROM pg_stat_activity WHERE pid = ${backend:-0}" 0 300
n=$(reports_with_id faults-term-2)
ok "SIGTERM mid-delivery: committed after the client is gone at most once ($n)" test "$n" -le 1
is "$(q "SELECT count(*) FROM tlsrpt.policy p LEFT JOIN tlsrpt.report r ON r.id = p.report WHERE r.id IS NULL")" 0 \
	"SIGTERM mid-delivery: no orphan policy rows"
is "$(failures_of faults-term-2)" \
	"$(($n * $(python3 -c 'import json, sys; print(sum(len(p.get("failure-details", [])) for p in json.load(open(sys.argv[1]))["policies"]))' "$W/term2.json")))" \
	"SIGTERM mid-delivery: all of it or nothing"
ingest "$W/term2.eml"
expect_ok "SIGTERM mid-delivery: the MTA's redelivery"
is "$(reports_with_id faults-term-2)" 1 "SIGTERM mid-delivery: stored once after the redelivery"

# ---------------------------------------------------------------- 16 at once
# 50 distinct reports, each delivered 4 times (distinct Message-IDs, so the
# duplicates are the MTA's, not one mail replayed), 200 deliveries in a
# shuffled order over 16 parallel workers.
mkdir "$W/par"
for ((i = 1; i <= 50; i++)); do
	json_with_id "$DATA/google.json" "faults-par-$i" >"$W/par/r$i.json"
	for c in 1 2 3 4; do
		mkmail -m "faults-par-$i.$c@google.com" "$W/par/r$i.json" >"$W/par/m$i.$c.eml"
	done
done
ls "$W/par"/*.eml | python3 -c '
import random, sys
l = sys.stdin.read().split()
random.Random(16).shuffle(l)
print("\n".join(l))' >"$W/par/list"
is "$(grep -c '' "$W/par/list")" 200 "200 messages to deliver"
cat >"$W/par/worker" <<'SH'
#!/bin/sh
# worker BIN FILE: one delivery; its status and output next to FILE
"$1" <"$2" >"$2.out" 2>&1
echo $? >"$2.rc"
SH
chmod +x "$W/par/worker"
before_reports=$(q "SELECT count(*) FROM tlsrpt.report")
xargs -P16 -n1 "${_timeout[@]}" "$W/par/worker" "$BIN" <"$W/par/list"
is "$(cat "$W/par"/*.rc | grep -c '')" 200 "16 at once: 200 deliveries ran"
is "$(cat "$W/par"/*.rc | grep -vc '^0$')" 0 "16 at once: every delivery exited 0"
bad=$(grep -l . "$W/par"/*.out | head -n 3)
[ -z "$bad" ] || diag "output of failed deliveries:" "$(head -n 3 $bad)"
is "$(cat "$W/par"/*.out | grep -c '')" 0 "16 at once: nothing on stdout or stderr"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'faults-par-%'")" 50 "16 at once: exactly 50 reports"
is "$(q "SELECT count(DISTINCT report_id) FROM tlsrpt.report WHERE report_id LIKE 'faults-par-%'")" 50 "16 at once: each report once"
is "$(q "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id LIKE 'faults-par-%'")" 100 \
	"16 at once: exactly 100 policies (2 per report)"
is "$(q "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id LIKE 'faults-par-%'")" 100 \
	"16 at once: exactly 100 failure rows (2 per report)"
is "$(q "SELECT count(*) FROM tlsrpt.rejected")" 0 "16 at once: nothing rejected"
is "$(pg_log | grep -c 'deadlock detected')" 0 "16 at once: no deadlock in the server log"
is "$(sessions)" 0 "16 at once: no session left behind"

done_testing
