#!/bin/bash
# rollup-t.sh - schema migration 005 (src/sql/005-rollups.sql): every fast
# view and alert gives the same rows as its plain definition (<name>_plain,
# the views of migrations 003 and 004), on the populated database of
# tests/data/views/populate.sh plus late reports, a duplicate, dual sts+tlsa
# policies and a report whose transaction is still open while refresh() runs:
# before any refresh, after it, with new reports on top, after a purge, with
# tlsrpt.authenticated_only on; and refresh() catches up from its watermark.
# Migration 8's reporter_ledger and sts_reporter_daily are compared the same way,
# and migration 11's reporter_daily, alert_failure_rate and domain_totals_since;
# migration 19's domain_period() against the period table's sums over
# daily_domain_plain (more than 100 domains: the running sums; a few: the
# view), and rollup_domain_running against rollup_daily_domain_total.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
. "$here/lib/tap.sh"
. "$here/lib/pg.sh"
. "$here/lib/common.sh"
. "$top_srcdir/tests/data/views/populate.sh"

pg_start
# name, fast query, plain query (the same columns; silent_for moves with now())
PAIRS=(
	"daily_domain|SELECT * FROM tlsrpt.daily_domain|SELECT * FROM tlsrpt.daily_domain_plain"
	"failure_daily|SELECT * FROM tlsrpt.failure_daily|SELECT * FROM tlsrpt.failure_daily_plain"
	"top_sending_ip|SELECT * FROM tlsrpt.top_sending_ip|SELECT * FROM tlsrpt.top_sending_ip_plain"
	"top_receiving_ip|SELECT * FROM tlsrpt.top_receiving_ip|SELECT * FROM tlsrpt.top_receiving_ip_plain"
	"latest_report|SELECT organization_name, policy_domain, report, report_id, contact_info, date_start, date_end, received_at, reports, first_seen FROM tlsrpt.latest_report|SELECT organization_name, policy_domain, report, report_id, contact_info, date_start, date_end, received_at, reports, first_seen FROM tlsrpt.latest_report_plain"
	"sts_policy_daily|SELECT * FROM tlsrpt.sts_policy_daily|SELECT * FROM tlsrpt.sts_policy_daily_plain"
	"sts_policy_history|SELECT * FROM tlsrpt.sts_policy_history|SELECT * FROM tlsrpt.sts_policy_history_plain"
	"failure_row|SELECT failure, report, day, day_start, organization_name, date_start, date_end, received_at, policy_type, policy_domain, result_type, sending_mta_ip, receiving_mx_hostname, receiving_ip, failed_sessions, counted_sessions, host_report FROM tlsrpt.failure_row|SELECT failure, report, day, day_start, organization_name, date_start, date_end, received_at, policy_type, policy_domain, result_type, sending_mta_ip, receiving_mx_hostname, receiving_ip, failed_sessions, counted_sessions, host_report FROM tlsrpt.failure_detail"
	"alert_new_result_type|SELECT * FROM tlsrpt.alert_new_result_type('1 day')|SELECT * FROM tlsrpt.alert_new_result_type_plain('1 day')"
	"alert_new_result_type (3 days)|SELECT * FROM tlsrpt.alert_new_result_type('3 days', '5 days')|SELECT * FROM tlsrpt.alert_new_result_type_plain('3 days', '5 days')"
	"alert_silent_reporter|SELECT * FROM tlsrpt.alert_silent_reporter()|SELECT * FROM tlsrpt.alert_silent_reporter_plain()"
	"alert_silent_reporter (1 day)|SELECT * FROM tlsrpt.alert_silent_reporter('1 day', '20 days', 2)|SELECT * FROM tlsrpt.alert_silent_reporter_plain('1 day', '20 days', 2)"
	"alert_critical_failure|SELECT * FROM tlsrpt.alert_critical_failure('3 days')|SELECT * FROM tlsrpt.alert_critical_failure_plain('3 days')"
	"reporter_ledger|SELECT * FROM tlsrpt.reporter_ledger|SELECT * FROM tlsrpt.reporter_ledger_plain"
	"sts_reporter_daily|SELECT * FROM tlsrpt.sts_reporter_daily|SELECT * FROM tlsrpt.sts_reporter_daily_plain"
	"reporter_daily|SELECT * FROM tlsrpt.reporter_daily|SELECT * FROM tlsrpt.reporter_daily_plain"
	"reporter_daily_total|SELECT * FROM tlsrpt.reporter_daily_total|SELECT d.day, d.day::timestamp AT TIME ZONE 'UTC', r.organization_name, count(DISTINCT r.id) FROM tlsrpt.scoped_report r JOIN tlsrpt.policy p ON p.report = r.id CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d WHERE p.policy_domain IS NOT NULL GROUP BY 1, 2, 3"
	"alert_failure_rate|SELECT * FROM tlsrpt.alert_failure_rate(0, 400)|SELECT * FROM tlsrpt.alert_failure_rate_plain(0, 400)"
	"alert_failure_rate (3 days)|SELECT * FROM tlsrpt.alert_failure_rate(0.01, 3)|SELECT * FROM tlsrpt.alert_failure_rate_plain(0.01, 3)"
	"domain_totals_since|SELECT * FROM tlsrpt.domain_totals_since(now() - interval '50 hours')|SELECT policy_domain, sum(successful), sum(failed), sum(sessions), count(*), coalesce(array_agg(DISTINCT organization_name ORDER BY organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}') FROM tlsrpt.report_domain WHERE date_end > now() - interval '50 hours' GROUP BY 1"
	"domain_totals_since (400 days)|SELECT * FROM tlsrpt.domain_totals_since(now() - interval '400 days 7 hours')|SELECT policy_domain, sum(successful), sum(failed), sum(sessions), count(*), coalesce(array_agg(DISTINCT organization_name ORDER BY organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}') FROM tlsrpt.report_domain WHERE date_end > now() - interval '400 days 7 hours' GROUP BY 1"
	"domain_period|SELECT * FROM tlsrpt.domain_period('-infinity', 'infinity', array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)))|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN '-infinity' AND 'infinity' AND policy_domain = ANY (array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))) GROUP BY 1"
	"domain_period (days 3 to 1 ago)|SELECT * FROM tlsrpt.domain_period(now() - interval '3 days', now() - interval '1 day', array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)))|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN now() - interval '3 days' AND now() - interval '1 day' AND policy_domain = ANY (array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))) GROUP BY 1"
	"domain_period (the last 2 days)|SELECT * FROM tlsrpt.domain_period(now() - interval '2 days', now(), array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)))|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN now() - interval '2 days' AND now() AND policy_domain = ANY (array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))) GROUP BY 1"
	"domain_period (a few domains)|SELECT * FROM tlsrpt.domain_period('-infinity', 'infinity', ARRAY['example.org', 'mx1.example.org', 'example.net'])|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN '-infinity' AND 'infinity' AND policy_domain = ANY (ARRAY['example.org', 'mx1.example.org', 'example.net']) GROUP BY 1"
	"domain_period (each domain twice, and NULL)|SELECT * FROM tlsrpt.domain_period('-infinity', 'infinity', array_cat(array_cat(array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)), array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))), ARRAY[NULL::text]))|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN '-infinity' AND 'infinity' AND policy_domain = ANY (array_cat(array_cat(array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)), array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))), ARRAY[NULL::text])) GROUP BY 1"
	"domain_period (until before since)|SELECT * FROM tlsrpt.domain_period(now(), now() - interval '3 days', array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)))|SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report) FROM tlsrpt.daily_domain_plain WHERE day_start BETWEEN now() AND now() - interval '3 days' AND policy_domain = ANY (array_cat(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy WHERE policy_domain IS NOT NULL), ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))) GROUP BY 1"
	"rollup_domain_running's days|SELECT auth_only, policy_domain, day, day_start, sessions, failed FROM tlsrpt.rollup_domain_running|SELECT auth_only, policy_domain, day, day_start, sessions, failed FROM tlsrpt.rollup_daily_domain_total WHERE policy_domain IS NOT NULL"
	"rollup_domain_running's sums|SELECT auth_only, policy_domain, day, run_sessions - sessions, run_failed - failed, run_days - 1 FROM tlsrpt.rollup_domain_running|SELECT auth_only, policy_domain, day, coalesce(lag(run_sessions) OVER w, run_sessions - sessions), coalesce(lag(run_failed) OVER w, run_failed - failed), coalesce(lag(run_days) OVER w, run_days - 1) FROM tlsrpt.rollup_domain_running WINDOW w AS (PARTITION BY auth_only, policy_domain ORDER BY day)"
)

# same STAGE [SET...]: every pair gives the same rows (as multisets), and rows
same() {
	local stage=$1 set=${2:-} p name fast plain out n
	for p in "${PAIRS[@]}"; do
		name=${p%%|*} p=${p#*|} fast=${p%%|*} plain=${p#*|}
		out=$(q "$set SELECT (SELECT count(*) FROM ($fast EXCEPT ALL $plain) a) || '/' ||
		                  (SELECT count(*) FROM ($plain EXCEPT ALL $fast) b) || ' of ' ||
		                  (SELECT count(*) FROM ($plain) c)")
		n=${out##* of }
		is "${out%% of *}" "0/0" "$stage: $name gives the rows of its plain definition ($n rows)"
		case $name in alert_new_result_type | "alert_failure_rate (3 days)" | domain_totals_since | rollup_domain_running* | "domain_period (until before since)") ;; *)
			[ "$set" ] || ok "$stage: $name has rows to compare" test "${n:-0}" -ge 1 ;;
		esac
	done
}

ok "populated database" views_populate
conn=$(pg_conninfo)
is "$(q "SELECT count(*) FROM tlsrpt.rollup_daily_domain")" 0 "nothing rolled up before refresh()"
same "before refresh()"
is "$(q "SELECT tlsrpt.refresh()")" 19 "refresh() takes in the 19 reports"
is "$(q "SELECT watermark = (SELECT max(id) FROM tlsrpt.report) FROM tlsrpt.rollup_state")" t \
	"the watermark is the last report"
ok "rollups filled" test "$(q "SELECT count(*) FROM tlsrpt.rollup_daily_domain")" -ge 1
same "after refresh()"
is "$(q "SELECT tlsrpt.refresh()")" 0 "a second refresh() has nothing to do"

# more reports on top: dual sts+tlsa for one domain (Microsoft), late reports
# for days already rolled up, and a duplicate (stored once)
mkdir -p "$W/more"
vreport "Microsoft Corporation" ms-dual-2 2 \
	"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 300 30 \
		"$(vfail certificate-host-mismatch 40.107.0.9 mx1.example.org 192.0.2.1 30)")" \
	"$(vtlsa example.org 300 30 "$(vfail certificate-host-mismatch 40.107.0.9 mx1.example.org 192.0.2.1 30)")" \
	>"$W/more/ms-dual.json"
vreport "Late Reporter" late-3 3 \
	"$(vsts example.org enforce 604800 "mx1.example.org mx3.example.org" 5 5 \
		"$(vfail sts-policy-fetch-error 198.51.100.7 mx3.example.org 192.0.2.3 5)")" >"$W/more/late.json"
# a host report (RFC 8460 section 3): the policy domain is example.org's MX
vreport "Dane Sender" dane-2 2 \
	"$(vtlsa mx1.example.org 40 2 "$(vfail tlsa-invalid 192.0.2.77 mx1.example.org 192.0.2.1 2)")" >"$W/more/dane.json"
# the same day, example.org under tlsa alone (sts and other reports of a domain
# on one day: one row of daily_domain), and an sts report for the host domain
# mx1.example.org (its sts sessions and its host report: two rows)
vreport "Plain Sender" plain-2 2 "$(vtlsa example.org 10 0)" >"$W/more/plain.json"
# Google's second report of day 2 for example.org: the same keys as rolled-up
# rows (reporter, domain, policy), merged with them while pending
vreport "Google Inc." g-2-bis 2 \
	"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 100 1 \
		"$(vfail validation-failure 209.85.220.41 mx2.example.org 192.0.2.2 1)")" >"$W/more/g2bis.json"
# (under sts and tlsa, one failure row under both: a failure_daily group of an
# sts and a host-report row, so not a host report)
vreport "Host Sts" hoststs-2 2 \
	"$(vsts mx1.example.org testing 86400 "mx1.example.org" 6 1 "$(vfail certificate-expired 192.0.2.5 mx1.example.org 192.0.2.1 1)")" \
	"$(vtlsa mx1.example.org 6 1 "$(vfail certificate-expired 192.0.2.5 mx1.example.org 192.0.2.1 1)")" >"$W/more/hoststs.json"
ok "more reports stored" "$BIN" -d "$conn" "$W/more/ms-dual.json" "$W/more/late.json" "$W/more/late.json" \
	"$W/more/dane.json" "$W/more/plain.json" "$W/more/hoststs.json" "$W/more/g2bis.json"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id IN ('ms-dual-2', 'late-3')")" 2 "the duplicate stored once"
q "UPDATE tlsrpt.report SET received_at = now() - interval '2 hours' WHERE report_id IN ('ms-dual-2', 'late-3', 'dane-2', 'plain-2', 'hoststs-2', 'g-2-bis')" >/dev/null
same "new reports, not rolled up yet"
is "$(q "SELECT reports FROM tlsrpt.reporter_daily WHERE organization_name = 'Google Inc.' AND policy_domain = 'example.org'
         AND day = (SELECT (date_start AT TIME ZONE 'UTC')::date FROM tlsrpt.report WHERE report_id = 'g-2-bis')")" 2 \
	"reporter_daily, pending: Google's two reports of day 2 in one row"
is "$(q "SELECT tlsrpt.refresh()")" 6 "refresh() takes in the 6 new reports"
is "$(q "SELECT policy_domain FROM tlsrpt.daily_domain WHERE host_report")" "mx1.example.org" \
	"daily_domain: the host report is marked"
is "$(q "SELECT string_agg(host_report || ':' || sessions || ':' || array_to_string(reporter_names, ','), ' ' ORDER BY host_report)
         FROM tlsrpt.daily_domain WHERE policy_domain = 'mx1.example.org'")" "false:7:Host Sts true:42:Dane Sender" \
	"daily_domain: the host domain's sts sessions and its host report, apart"
is "$(q "SELECT count(*) FROM tlsrpt.rollup_daily_domain WHERE NOT auth_only AND policy_domain = 'example.org'
         AND day = (SELECT (date_start AT TIME ZONE 'UTC')::date FROM tlsrpt.report WHERE report_id = 'plain-2')")" 2 \
	"rollup_daily_domain: example.org's sts and other reports of that day in two rows"
is "$(q "SELECT count(*) || ':' || bool_and(reporter_names @> ARRAY['Plain Sender', 'Microsoft Corporation']) FROM tlsrpt.daily_domain
         WHERE policy_domain = 'example.org' AND day = (SELECT (date_start AT TIME ZONE 'UTC')::date FROM tlsrpt.report WHERE report_id = 'plain-2')")" "1:true" \
	"daily_domain: in one row"
same "after the second refresh()"

# an upgrade to version 13 fills rollup_daily_domain_total from the rollups
# already there: its statement, as the migration has it, on these rollups
fill=$(sed -n '/^INSERT INTO tlsrpt.rollup_daily_domain_total$/,/;/p' "$top_srcdir/src/sql/013-panels-at-scale.sql")
like "$fill" "^INSERT INTO tlsrpt.rollup_daily_domain_total" "migration 13's filling statement found"
q "TRUNCATE tlsrpt.rollup_daily_domain_total" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.daily_domain WHERE policy_domain = 'example.org'")" 0 "without it, daily_domain lacks example.org's days rolled up"
q "$fill" >/dev/null
same "rollup_daily_domain_total as the upgrade fills it"
# and rollup_failure_daily (failure_daily_rows(NULL): every day)
q "TRUNCATE tlsrpt.rollup_failure_daily" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.failure_daily")" 0 "without it, failure_daily lacks the days rolled up"
q "INSERT INTO tlsrpt.rollup_failure_daily SELECT * FROM tlsrpt.failure_daily_rows(NULL)" >/dev/null
same "rollup_failure_daily as the upgrade fills it"
# and rollup_domain_running (migration 19), from rollup_daily_domain_total
fill=$(sed -n '/^INSERT INTO tlsrpt.rollup_domain_running$/,/;/p' "$top_srcdir/src/sql/019-domain-period.sql")
like "$fill" "^INSERT INTO tlsrpt.rollup_domain_running" "migration 19's filling statement found"
q "TRUNCATE tlsrpt.rollup_domain_running" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.domain_period('-infinity', 'infinity', array_cat(ARRAY['example.org'], ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g)))")" 0 \
	"without it, domain_period() lacks example.org"
q "$fill" >/dev/null
same "rollup_domain_running as the upgrade fills it"
is "$(q "SELECT string_agg(organization_name || ':' || result_type || ':' || failed_sessions || ':' || failure_rows || ':' || host_report, ' '
         ORDER BY organization_name) FROM tlsrpt.failure_daily WHERE policy_domain = 'mx1.example.org'")" \
	"Dane Sender:tlsa-invalid:2:1:true Host Sts:certificate-expired:1:2:false" \
	"failure_daily: the host report's group, and a group under sts and tlsa (counted once, not a host report)"

# a report whose transaction is open while refresh() runs: its id is below the
# watermark once a later report is rolled up
vreport "Slow Sender" slow-1 1 "$(vsts example.org enforce 604800 mx1.example.org 77 0)" >"$W/more/slow.json"
vreport "Quick Sender" quick-1 1 "$(vsts example.org enforce 604800 mx1.example.org 11 0)" >"$W/more/quick.json"
psql -X -q -v ON_ERROR_STOP=1 >"$W/slow.out" 2>&1 <<SQL &
BEGIN;
INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, raw, period_month)
VALUES ('Slow Sender', 'slow-1', '$(vday 1)T00:00:00Z', '$(vday 1)T23:59:59Z', '{}', tlsrpt.period_month('$(vday 1)T23:59:59Z'));
INSERT INTO tlsrpt.policy (report, period_month, policy_type, policy_domain, total_successful_session_count, total_failure_session_count)
SELECT max(id), tlsrpt.period_month('$(vday 1)T23:59:59Z'), 'sts', 'example.org', 77, 0 FROM tlsrpt.report WHERE report_id = 'slow-1';
SELECT pg_sleep(4);
COMMIT;
SQL
slow=$!
sleep 1
ok "a later report stored meanwhile" "$BIN" -d "$conn" "$W/more/quick.json"
is "$(q "SELECT tlsrpt.refresh()")" 1 "refresh() takes in the one it can see"
wait $slow
is "$?" 0 "the slow transaction committed"
is "$(q "SELECT count(*) FROM tlsrpt.rollup_gap g JOIN tlsrpt.report r ON r.id = g.id WHERE r.report_id = 'slow-1'")" 1 \
	"the open transaction's id was kept as a gap"
same "a report committed below the watermark"
is "$(q "SELECT tlsrpt.refresh()")" 1 "refresh() takes it in from the gap"
is "$(q "SELECT count(*) FROM tlsrpt.rollup_gap g JOIN tlsrpt.report r ON r.id = g.id")" 0 "no gap of a stored report left"
q "SELECT tlsrpt.refresh()" >/dev/null
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.rollup_gap")" 0 "ids no transaction can still write are forgotten two refreshes on"
same "after the gap was filled"

# deletes: the purge marks days; latest_report and the history are rebuilt
ok "purge" "$BIN" -d "$conn" --purge-older-than 300
is "$(q "SELECT count(*) FROM tlsrpt.rollup_dirty_day")" 1 "the purge marked the day it touched"
same "after a purge, before refresh()"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.rollup_dirty_day")/$(q "SELECT rebuild FROM tlsrpt.rollup_state")" "0/f" \
	"refresh() after the purge: nothing left dirty"
same "after a purge and refresh()"

# a day in the middle of a domain's days goes (example.net: Microsoft's
# reports of days 1 to 5, day 3's deleted): its running sums from that day on
# are written again
is "$(q "DELETE FROM tlsrpt.report WHERE report_id = 'ms-3' RETURNING 1")" 1 "Microsoft's report of day 3 deleted"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.rollup_domain_running WHERE NOT auth_only AND policy_domain = 'example.net'")" 4 \
	"rollup_domain_running: example.net's four days left"
same "after a day in the middle went"
# a DELETE by hand while refresh() runs, after another DELETE (rollup_state
# says rebuild already; another day than the first DELETE's, whose row of
# rollup_dirty_day refresh() holds): the trigger waits for refresh()'s lock,
# so that the next refresh() rebuilds without the report (the running one
# clears rebuild), and on a partitioned schema the report's failure_fact rows
# that refresh() was writing go too (no foreign key from failure_fact)
vreport "Gone Sender" gone-1 2 "$(vsts example.org enforce 604800 mx1.example.org 3 0)" >"$W/more/gone.json"
vreport "Racer" racer-1 4 "$(vsts example.org enforce 604800 mx1.example.org 5 4 \
	"$(vfail validation-failure 192.0.2.9 mx1.example.org 192.0.2.1 4)")" >"$W/more/racer.json"
ok "a report to delete stored" "$BIN" -d "$conn" "$W/more/gone.json"
q "SELECT tlsrpt.refresh()" >/dev/null
q "DELETE FROM tlsrpt.report WHERE report_id = 'gone-1'" >/dev/null
is "$(q "SELECT rebuild FROM tlsrpt.rollup_state")" t "a DELETE: rebuild"
ok "a report with a failure row stored" "$BIN" -d "$conn" "$W/more/racer.json"
psql -X -q -v ON_ERROR_STOP=1 >"$W/racer.out" 2>&1 <<'SQL' &
BEGIN;
SELECT tlsrpt.refresh();
SELECT pg_sleep(3);
COMMIT;
SQL
racer=$!
sleep 1
is "$(q "DELETE FROM tlsrpt.report WHERE report_id = 'racer-1' RETURNING 1")" 1 "the report deleted while refresh() runs"
wait $racer
is "$?" 0 "the refresh() committed"
is "$(q "SELECT count(*) FROM tlsrpt.failure_fact f WHERE NOT EXISTS (SELECT FROM tlsrpt.report r WHERE r.id = f.report)")" 0 \
	"no failure_fact row of a deleted report left"
q "SELECT tlsrpt.refresh()" >/dev/null
same "after a DELETE while refresh() ran"
# a domain whose only report in a window is pending, with reports rolled up
# on both sides of it: its first rolled-up row from the window's start is
# after its last one up to the window's end, and only the pending report
# counts
vreport "Gap Sender" gap-5 5 "$(vsts gap.example enforce 604800 mx.gap.example 50 5)" >"$W/more/gap5.json"
vreport "Gap Sender" gap-1 1 "$(vsts gap.example enforce 604800 mx.gap.example 10 1)" >"$W/more/gap1.json"
vreport "Gap Sender" gap-3 3 "$(vsts gap.example enforce 604800 mx.gap.example 30 3)" >"$W/more/gap3.json"
ok "gap.example's reports of days 5 and 1 stored" "$BIN" -d "$conn" "$W/more/gap5.json" "$W/more/gap1.json"
q "SELECT tlsrpt.refresh()" >/dev/null
ok "and of day 3, pending" "$BIN" -d "$conn" "$W/more/gap3.json"
gapsel="array_cat(ARRAY['gap.example'], ARRAY(SELECT concat('pad', g, '.invalid') FROM generate_series(1, 101) AS g))"
is "$(q "SELECT * FROM tlsrpt.domain_period('$(vday 3)T00:00:00Z', '$(vday 3)T12:00:00Z', $gapsel)")" \
	"gap.example|33|3|1|f" "domain_period(): a domain's one pending report between two rolled-up ones"
is "$(q "SELECT * FROM tlsrpt.domain_period('$(vday 4)T00:00:00Z', '$(vday 2)T00:00:00Z', $gapsel)")" \
	"gap.example|33|3|1|f" "domain_period(): the same, the window a day wider on each side"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT * FROM tlsrpt.domain_period('$(vday 3)T00:00:00Z', '$(vday 3)T12:00:00Z', $gapsel)")" \
	"gap.example|33|3|1|f" "domain_period(): and once it is rolled up"
same "after gap.example's reports"
# a day whose failed sessions change and sessions do not: written again too
# (in a transaction rolled back: no report does that alone)
is "$(psql -X -qAt -v ON_ERROR_STOP=1 2>&1 <<'SQL'
BEGIN;
UPDATE tlsrpt.rollup_daily_domain_total SET failed = failed + 1
WHERE NOT auth_only AND policy_domain = 'example.net'
  AND day = (SELECT min(day) FROM tlsrpt.rollup_daily_domain_total WHERE policy_domain = 'example.net');
DO $$ BEGIN PERFORM tlsrpt.refresh_domain_running(ARRAY(SELECT DISTINCT day FROM tlsrpt.rollup_daily_domain_total)); END $$;
SELECT count(*) FROM (
  SELECT auth_only, policy_domain, day, failed, run_failed - failed FROM tlsrpt.rollup_domain_running
  EXCEPT ALL
  SELECT t.auth_only, t.policy_domain, t.day, t.failed,
         coalesce(sum(t.failed) OVER (PARTITION BY t.auth_only, t.policy_domain ORDER BY t.day
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
         + (SELECT min(x.run_failed - x.failed) FROM tlsrpt.rollup_domain_running x
            WHERE x.auth_only = t.auth_only AND x.policy_domain = t.policy_domain)
  FROM tlsrpt.rollup_daily_domain_total t WHERE t.policy_domain IS NOT NULL) d;
ROLLBACK;
SQL
)" 0 "refresh_domain_running(): a day's failed sessions changed alone, its running sums follow"

# the authenticated scope: rollup rows of their own
q "UPDATE tlsrpt.report SET dkim_result = 'pass', dkim_aligned = true WHERE report_id IN ('g-1', 'ms-dual-2', 'mr-6')" >/dev/null
q "SELECT tlsrpt.rollup_reset()" >/dev/null
same "authenticated_only, before refresh()" "SET tlsrpt.authenticated_only = on;"
q "SELECT tlsrpt.refresh()" >/dev/null
same "authenticated_only, after refresh()" "SET tlsrpt.authenticated_only = on;"
is "$(q "SET tlsrpt.authenticated_only = on; SELECT sum(reports) FROM tlsrpt.daily_domain")" 3 \
	"authenticated_only: the three authenticated reports"
same "all reports again, after refresh()"

# a delivery needs no rollup rights: the writer role of --grant stores reports
q "CREATE ROLE tlsrpt_writer LOGIN" >/dev/null
ok "--grant" "$BIN" -d "$conn" --init-db --grant tlsrpt_writer
vreport "Writer Test" writer-1 1 "$(vsts example.org enforce 604800 mx1.example.org 1 0)" >"$W/more/writer.json"
ok "the writer role stores a report" "$BIN" -d "$(pg_conninfo) user=tlsrpt_writer" "$W/more/writer.json"
same "after a delivery by the writer role"

# a pending report whose MX names make a domain rolled up long ago a host
# domain (example.net, under tlsa): host_domain_now() sees it before refresh()
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.daily_domain WHERE policy_domain = 'example.net' AND host_report")" 0 \
	"example.net is no host domain yet"
vreport "MX Namer" namer-1 1 "$(vsts namer.example enforce 86400 "example.net" 5 0)" >"$W/more/namer.json"
ok "a report naming example.net as an MX" "$BIN" -d "$conn" "$W/more/namer.json"
ok "example.net's tlsa days are host reports now, before refresh()" \
	test "$(q "SELECT count(*) FROM tlsrpt.daily_domain WHERE policy_domain = 'example.net' AND host_report")" -ge 1
same "a pending report makes an old domain a host domain"
q "SELECT tlsrpt.refresh()" >/dev/null
same "and after refresh()"

# the same through a "*.parent" MX name, and the other way: a known MX name
# (exact or a pattern) naming a pending report's new domain
hostrows() {
	q "SELECT coalesce(string_agg(DISTINCT policy_domain, ' ' ORDER BY policy_domain), '-')
	   FROM tlsrpt.daily_domain WHERE host_report AND policy_domain LIKE '%$1'"
}
vreport "Wild Old" wild-1 1 "$(vtlsa mail.wild.example 7 0)" >"$W/more/wild1.json"
ok "a tlsa report of mail.wild.example" "$BIN" -d "$conn" "$W/more/wild1.json"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(hostrows .wild.example)" "-" "mail.wild.example is no host domain yet"
vreport "Wild Namer" wild-2 1 "$(vsts wild.example enforce 86400 "*.wild.example mx7.other.example" 4 0)" >"$W/more/wild2.json"
ok "a report naming *.wild.example and mx7.other.example as MX" "$BIN" -d "$conn" "$W/more/wild2.json"
is "$(hostrows .wild.example)" "mail.wild.example" "a pending *.wild.example makes mail.wild.example a host domain"
same "a pending MX pattern makes an old domain a host domain"
q "SELECT tlsrpt.refresh()" >/dev/null
same "and after refresh() (the pattern)"
vreport "Wild New" wild-3 1 "$(vtlsa relay.wild.example 2 0)" "$(vtlsa mx7.other.example 3 0)" "$(vtlsa mx8.other.example 1 0)" \
	>"$W/more/wild3.json"
ok "a report of three new domains" "$BIN" -d "$conn" "$W/more/wild3.json"
is "$(hostrows .example | tr ' ' '\n' | grep -E 'wild|other' | tr '\n' ' ')" "mail.wild.example mx7.other.example relay.wild.example " \
	"known MX names make two of a pending report's new domains host domains (exact and by pattern)"
same "known MX names and a pending report's new domains"
vreport "Pair" pair-1 1 "$(vsts pair.example enforce 86400 "mx.pair.example *.q.example" 5 0)" "$(vtlsa mx.pair.example 2 0)" \
	"$(vtlsa a.q.example 1 0)" >"$W/more/pair.json"
ok "a report naming its own host domains" "$BIN" -d "$conn" "$W/more/pair.json"
is "$(hostrows .pair.example)/$(hostrows .q.example)" "mx.pair.example/a.q.example" \
	"a pending report's MX names make its own other domains host domains (exact and by pattern)"
same "a pending report naming a pending domain"
q "SELECT tlsrpt.refresh()" >/dev/null
same "and after refresh() (the new domains)"

# every_domain(): a selection that holds every domain in scope (more than
# min_domains of them), pending reports' domains included
alldoms="ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.latest_report WHERE policy_domain IS NOT NULL)"
is "$(q "SELECT tlsrpt.every_domain($alldoms, 0)")/$(q "SELECT tlsrpt.every_domain($alldoms)")/$(
	q "SELECT tlsrpt.every_domain($alldoms || ARRAY['extra.example'], 0)")/$(
	q "SELECT tlsrpt.every_domain(ARRAY(SELECT unnest($alldoms) OFFSET 1), 0)")" "t/f/t/f" \
	"every_domain(): every domain (and one more) yes; 100 or fewer by default, or one left out, no"
vreport "New Domain" newdom-1 1 "$(vsts brand-new.example enforce 86400 mx1.brand-new.example 3 0)" >"$W/more/newdom.json"
ok "a report of a new domain" "$BIN" -d "$conn" "$W/more/newdom.json"
is "$(q "SELECT tlsrpt.every_domain(ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.rollup_latest WHERE policy_domain IS NOT NULL), 0)")" f \
	"every_domain(): a pending report's domain left out, no"
same "a report of a new domain, pending"

# a policy without a policy domain (a broken sender): its sessions are a
# group of their own in alert_failure_rate(), and its reporters are counted
# as any domain's (migration 22 counts them after the threshold); it is no
# host report in the plain views either (migration 22: false, not NULL)
y=$(date -u -d yesterday +%F)
for org in "No Domain A" "No Domain B"; do
	printf '{"organization-name":"%s","contact-info":"tls@nodomain.example","report-id":"nodomain-%s",
	  "date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},
	  "policies":[{"policy":{"policy-type":"no-policy-found"},
	    "summary":{"total-successful-session-count":10,"total-failure-session-count":5},
	    "failure-details":[{"result-type":"starttls-not-supported","sending-mta-ip":"192.0.2.7",
	      "receiving-mx-hostname":"mx.nodomain.example","failed-session-count":5}]}]}' \
		"$org" "${org##* }" "$y" "$y" >"$W/more/nodomain-${org##* }.json"
	ok "a report without a policy domain ($org)" "$BIN" -d "$conn" "$W/more/nodomain-${org##* }.json"
done
for stage in pending "after refresh()"; do
	[ "$stage" = pending ] || q "SELECT tlsrpt.refresh()" >/dev/null
	is "$(q "SELECT successful || '|' || failed || '|' || reporters FROM tlsrpt.alert_failure_rate(0.2) WHERE policy_domain IS NULL")" \
		"20|10|2" "$stage: alert_failure_rate(): the sessions without a policy domain, and their 2 reporters"
	same "a policy without a policy domain, $stage"
done

# reports without an organization name: one rolled up, one pending on the
# same day (reporter_daily_total, migration 24: the rolled-up total of that
# (day, reporter) plus the pending report)
noorg() {
	printf '{"contact-info":"tls@noorg.example","report-id":"noorg-%s",
	  "date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},
	  "policies":[{"policy":{"policy-type":"sts","policy-domain":"noorg.example","policy-string":["version: STSv1","mode: enforce","mx: mx.noorg.example","max_age: 86400"]},
	    "summary":{"total-successful-session-count":10,"total-failure-session-count":1},
	    "failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.8",
	      "receiving-mx-hostname":"mx.noorg.example","failed-session-count":1}]}]}' "$1" "$y" "$y" >"$W/more/noorg-$1.json"
	ok "a report without an organization name ($1)" "$BIN" -d "$conn" "$W/more/noorg-$1.json"
}
noorg 1
q "SELECT tlsrpt.refresh()" >/dev/null
noorg 2
is "$(q "SELECT reports FROM tlsrpt.reporter_daily_total WHERE organization_name IS NULL AND day = '$y'")" 2 \
	"pending: reporter_daily_total, no organization name: the rolled-up report and the pending one"
same "a report without an organization name, pending beside a rolled-up one"
q "SELECT tlsrpt.refresh()" >/dev/null
same "reports without an organization name, after refresh()"

# an administrator starting over: TRUNCATE ... CASCADE takes every report and
# rollup (failure_fact with the tables, the other rollups by the trigger)
out=$(q "SET client_min_messages = warning; TRUNCATE tlsrpt.report CASCADE")
is "$out" "" "TRUNCATE tlsrpt.report CASCADE: no error"
is "$(q "SELECT (SELECT count(*) FROM tlsrpt.failure_fact) + (SELECT count(*) FROM tlsrpt.rollup_daily_domain)
	+ (SELECT count(*) FROM tlsrpt.rollup_reporter_daily) || '/' || (SELECT watermark FROM tlsrpt.rollup_state)")" "0/0" \
	"TRUNCATE: the rollups are empty, the watermark back to 0"
ok "a report after it" "$BIN" -d "$conn" "$W/more/namer.json"
is "$(q "SELECT tlsrpt.refresh()")" 1 "refresh() takes it in"
is "$(q "SELECT policy_domain || '|' || sessions FROM tlsrpt.daily_domain")" "namer.example|5" \
	"after TRUNCATE, daily_domain has that report alone"

done_testing
