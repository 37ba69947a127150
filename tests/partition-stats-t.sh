#!/bin/bash
# partition-stats-t.sh - the planner statistics of a partitioned schema
# (migration 12, tlsrpt.analyze_partitioned(); doc/scaling.md, "Statistics").
# Autovacuum never analyzes a partitioned parent, nor a partition nobody wrote
# to; so --init-db --partitioned analyzes them (the plain views then plan
# without JIT's seconds), refresh() (the cron line) analyzes a parent that
# moved by more than autovacuum's threshold (50 + 10 %) and every partition
# never analyzed, a backfill that stored reports does the same at its end,
# the purge always does, a delivery never does, nor a role that does not own
# the tables, and a plain schema is left to autovacuum. The row counts are
# those this test inserts.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

# this test says --partitioned itself
export TLSRPT_TEST_PARTITIONED=0
pg_start
q "CREATE DATABASE plain" >/dev/null
q "CREATE DATABASE part" >/dev/null
PLAIN=$(pg_conninfo plain)
PART=$(pg_conninfo part)

# the rows the last ANALYZE of tlsrpt.T counted, in DB ("-1": never analyzed)
rows() { q "SELECT reltuples::bigint FROM pg_class WHERE oid = 'tlsrpt.$1'::regclass" -d "$2"; }
# how many times tlsrpt.T was analyzed (by hand: autovacuum never does a parent)
analyzed() { q "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'tlsrpt.$1'::regclass" -d part; }
all_analyzed() { echo "$(analyzed report)/$(analyzed policy)/$(analyzed failure)"; }
# the partitions of report, policy and failure never analyzed
never() {
	q "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	   WHERE i.inhparent IN ('tlsrpt.report'::regclass, 'tlsrpt.policy'::regclass, 'tlsrpt.failure'::regclass)
	     AND c.reltuples < 0" -d part
}
# sql_reports N TAG: N reports of this month inserted by SQL (as another
# program would, so that nothing of tlsrpt-ingest's runs), one policy and
# one failure row each
sql_reports() {
	q "WITH r AS (
	     INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, raw, period_month)
	     SELECT 'SQL Org', '$2-' || g, date_trunc('day', now()), date_trunc('day', now()),
	            '{}', tlsrpt.period_month(date_trunc('day', now()))
	     FROM generate_series(1, $1) g RETURNING id, period_month),
	   p AS (
	     INSERT INTO tlsrpt.policy (report, period_month, policy_type, policy_domain,
	                                total_successful_session_count, total_failure_session_count)
	     SELECT id, period_month, 'sts', 'stats.example', 10, 1 FROM r RETURNING id, period_month)
	   INSERT INTO tlsrpt.failure (policy, period_month, result_type, failed_session_count)
	   SELECT id, period_month, 'certificate-expired', 1 FROM p" -d part
}
# sreport ID: a report file of yesterday, one policy, one failure row
sreport() {
	local day
	day=$(date -u -d yesterday +%F)
	printf '{"organization-name":"Stats Org","date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},"contact-info":"tls@stats.example","report-id":"%s","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.stats.example","max_age: 86400"],"policy-domain":"stats.example","mx-host":["mx.stats.example"]},"summary":{"total-successful-session-count":10,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.7","receiving-mx-hostname":"mx.stats.example","failed-session-count":1}]}]}\n' \
		"$day" "$day" "$1"
}

# ---------------------------------------------------------------- --init-db
ingest_noin -d "$PART" --init-db --partitioned
expect_quiet "--init-db --partitioned"
ingest_noin -d "$PLAIN" --init-db
expect_quiet "--init-db (plain)"
is "$(rows report part)/$(rows policy part)/$(rows failure part)" "0/0/0" \
	"--init-db --partitioned analyzed the three parents (empty: 0 rows)"
is "$(never)" 0 "and every partition (the months ahead are known to be empty)"
is "$(all_analyzed)" "1/1/1" "once each"

# ---------------------------------------------------------------- deliveries
for i in 1 2 3 4 5; do sreport "d-$i" >"$W/d-$i.json" && mkmail "$W/d-$i.json" >"$W/d-$i.eml"; done
for i in 1 2 3; do
	ingest "$W/d-$i.eml" -d "$PART"
	expect_ok "delivery $i"
done
is "$(rows report part)/$(all_analyzed)" "0/1/1/1" "three reports delivered: nothing analyzed"

# Without statistics, each partition was taken for ten pages, and the plain
# definitions of the views cost so much that JIT compiled them (seconds for a
# few rows): now they cost less than jit_above_cost.
jit=$(q "SELECT current_setting('jit_above_cost')::float8::bigint" -d part)
for v in top_sending_ip_plain top_receiving_ip_plain failure_detail; do
	cost=$(q "EXPLAIN (FORMAT JSON) SELECT * FROM tlsrpt.$v" -d part |
		python3 -c 'import json, sys; print(int(json.load(sys.stdin)[0]["Plan"]["Total Cost"]))')
	ok "tlsrpt.$v plans below jit_above_cost ($cost < $jit)" test "$cost" -lt "$jit"
done
is "$(q "SELECT tlsrpt.analyze_partitioned()" -d part)" 0 "nothing more to analyze"
ingest_noin -d "$PART" --init-db
expect_quiet "--init-db again"
is "$(all_analyzed)" "1/1/1" "--init-db again analyzes nothing more"

# new months (never analyzed), then deliveries: they leave them so
is "$(q "SELECT tlsrpt.partition_create((now() AT TIME ZONE 'UTC')::date, 6)" -d part)" 3 \
	"three more months ahead made (4 to 6 months from now)"
is "$(never)" 9 "their 9 partitions never analyzed"
for i in 4 5; do
	ingest "$W/d-$i.eml" -d "$PART"
	expect_ok "delivery $i"
done
is "$(all_analyzed)/$(never)" "1/1/1/9" "a delivery analyzes nothing"
is "$(q "SELECT tlsrpt.analyze_partitioned()" -d part)" 9 "analyze_partitioned(): the 9 new partitions alone"
is "$(all_analyzed)/$(never)" "1/1/1/0" "the parents left alone: 5 rows are not a change worth it"

# ---------------------------------------------------------------- refresh()
# 120 reports stored by SQL: 5 + 120 = 125 > 50 + 10 % of 0
sql_reports 120 bulk >/dev/null
is "$(q "SELECT tlsrpt.refresh()" -d part)" 125 "refresh() takes in the 125 reports"
is "$(all_analyzed)" "2/2/2" "refresh() analyzed the three parents"
is "$(rows report part)/$(rows policy part)/$(rows failure part)" "125/125/125" \
	"which count 125 reports, policies and failure rows"
q "SELECT tlsrpt.refresh()" -d part >/dev/null
is "$(all_analyzed)" "2/2/2" "refresh() again: nothing analyzed"
# 50 + 10 % of 125 = 62.5: 60 more is not enough, 70 is
sql_reports 60 more >/dev/null
q "SELECT tlsrpt.refresh()" -d part >/dev/null
is "$(all_analyzed)" "2/2/2" "60 more rows (under 50 + 10 %): not analyzed"
sql_reports 10 tip >/dev/null
q "SELECT tlsrpt.refresh()" -d part >/dev/null
is "$(all_analyzed)" "3/3/3" "70 more rows (over 50 + 10 %): analyzed"
is "$(rows report part)" 195 "195 reports"

# ---------------------------------------------------------------- a backfill
mkdir "$W/bf"
for i in $(seq 1 80); do sreport "bf-$i" >"$W/bf/bf-$i.json"; done
ingest_noin -d "$PART" "$W"/bf/*.json
expect_ok "a backfill of 80 reports"
is "$(all_analyzed)" "4/4/4" "at its end the parents are analyzed (80 > 50 + 10 % of 195)"
is "$(rows report part)/$(rows failure part)" "275/275" "275 reports and failure rows"
ingest_noin -d "$PART" "$W"/bf/*.json
expect_ok "the same backfill again"
is "$(all_analyzed)" "4/4/4" "nothing stored: nothing analyzed"

# ---------------------------------------------------------------- rights
# a role that does not own the tables (a writer's backfill, a dashboard)
# analyzes nothing, and says nothing (no WARNING from ANALYZE)
sql_reports 100 other >/dev/null
q "CREATE ROLE stats_other; GRANT USAGE ON SCHEMA tlsrpt TO stats_other" -d part >/dev/null
is "$(q "SET ROLE stats_other; SELECT tlsrpt.analyze_partitioned(true)" -d part 2>&1)" 0 \
	"another role: nothing analyzed, no warning"
is "$(all_analyzed)" "4/4/4" "the parents untouched"
is "$(q "SELECT tlsrpt.analyze_partitioned()" -d part)" 3 "the owner: the three parents (100 > 50 + 10 % of 275)"
is "$(rows report part)" 375 "375 reports"
is "$(q "SELECT tlsrpt.analyze_partitioned(true)" -d part)" 3 "force: the three parents again"
is "$(all_analyzed)" "6/6/6" "six times each now"

# ---------------------------------------------------------------- the purge
# it analyzes the parents every time, even with nothing purged
ingest_noin -d "$PART" --purge-older-than 3650
expect_quiet "--purge-older-than 3650 (nothing that old)"
is "$(cut -d' ' -f1-5 "$W/out")" "purged reports=0 policies=0 failures=0 rejected=0" "nothing purged"
is "$(all_analyzed)" "7/7/7" "the three parents analyzed once more"

# ---------------------------------------------------------------- ANALYZE fails
# refresh() still rolls up, with a warning: here a partition it must analyze
# (a new month) is locked by another transaction beyond lock_timeout
q "SELECT tlsrpt.refresh()" -d part >/dev/null
is "$(q "SELECT tlsrpt.partition_create((now() AT TIME ZONE 'UTC')::date, 7)" -d part)" 1 "one more month made"
is "$(never)" 3 "its 3 partitions never analyzed"
m7=$(q "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '7 months', 'YYYY_MM')" -d part)
psql -X -q -d part -c "BEGIN; LOCK TABLE tlsrpt.failure_$m7 IN SHARE UPDATE EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT" \
	>"$W/lock.out" 2>&1 &
locker=$!
for i in $(seq 50); do
	[ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'tlsrpt.failure_$m7'::regclass AND granted" -d part)" = 1 ] && break
	sleep 0.1
done
sql_reports 5 locked >/dev/null
out=$(q "SET lock_timeout = '200ms'; SELECT tlsrpt.refresh()" -d part)
like "$out" "WARNING: +tlsrpt.refresh\(\): the partitioned tables were not analyzed: .*lock" "refresh(): a warning says why"
is "$(echo "$out" | tail -n 1)" 5 "and the 5 new reports are rolled up all the same"
wait "$locker"
is "$(never)" 3 "the new partitions still never analyzed"
is "$(q "SELECT tlsrpt.refresh()" -d part)" 0 "the next refresh()"
is "$(never)" 0 "analyzes them"

# ---------------------------------------------------------------- a plain schema
ingest_noin -d "$PLAIN" "$W"/bf/*.json
expect_ok "the backfill into the plain schema"
is "$(q "SELECT tlsrpt.analyze_partitioned(true)" -d plain)" 0 "a plain schema: nothing, even with force"
is "$(q "SELECT tlsrpt.refresh()" -d plain)" 80 "refresh() on a plain schema rolls up as before"

done_testing
