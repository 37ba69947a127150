#!/bin/bash
# numbers-t.sh - schema version 4 (src/sql/004-true-numbers.sql): each session
# counted once per report and policy domain (Microsoft's sts + tlsa), host
# reports marked, failure rows repeated under two policies counted once, keys
# normalized when stored, --summary on the same rules, alerts about the period
# and not the arrival, and the upgrade of a database at version 3. Every
# figure checked comes from tests/data/numbers/fixtures.py (computed there
# from the fixtures), or is worked out by hand in a comment.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
. "$here/lib/tap.sh"
. "$here/lib/pg.sh"
. "$here/lib/common.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start
CHECK=$top_srcdir/contrib/tlsrpt-check
NOW=$(date -u +%s)

# e PATH: a value of expected.json (python syntax after the root)
e() {
	python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); v = eval("e" + sys.argv[2]); print(v if not isinstance(v, bool) else ("true" if v else "false"))' \
		"$W/numbers/expected.json" "$1"
}
# ekeys PATH: the keys of that object of expected.json, one a line
ekeys() {
	python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); print("\n".join(sorted(eval("e" + sys.argv[2]))))' \
		"$W/numbers/expected.json" "$1"
}
vday() {
	date -u -d "@$((NOW - $1 * 86400))" +%F
}

python3 "$top_srcdir/tests/data/numbers/fixtures.py" "$W/numbers" "$NOW" || bail "fixtures.py failed"
ok "--init-db" "$BIN" -d "$(pg_conninfo)" --init-db
ok "the reports stored" "$BIN" -d "$(pg_conninfo)" "$W"/numbers/*.json
q "UPDATE tlsrpt.report SET received_at = date_end + interval '1 second'" >/dev/null
nmig=$(ls "$top_srcdir"/src/sql/[0-9]*.sql | wc -l)
is "$(q "SELECT max(version) FROM tlsrpt.schema_version")" "$nmig" "schema at the last migration ($nmig, version 4 included)"
D1=$(vday 1) D2=$(vday 2) D3=$(vday 3)

# ---------------------------------------------------------------- keys normalized when stored
g2="FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'g-2'"
is "$(q "SELECT p.policy_domain || '|' || array_to_string(p.mx_host, ',') $g2")" "dual.example|mx.dual.example" \
	"stored: policy_domain and mx_host trimmed, lowercased, trailing dot removed"
is "$(q "SELECT f.result_type || '|' || f.receiving_mx_hostname FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'g-2'")" \
	"certificate-expired|mx.dual.example" "stored: result_type and receiving_mx_hostname normalized"
is "$(q "SELECT r.raw->'policies'->0->'policy'->>'policy-domain' || '|' || (r.raw->'policies'->0->'failure-details'->0->>'result-type') $g2")" \
	" Dual.Example. | Certificate-Expired " "stored: raw keeps what was sent"
is "$(q "SELECT count(DISTINCT policy_domain) FROM tlsrpt.policy WHERE policy_domain LIKE '%dual%'")" 1 \
	"stored: one policy domain for dual.example, however spelled"

# ---------------------------------------------------------------- sessions counted once
for key in $(ekeys '["daily"]'); do
	d=${key%%|*} dom=${key#*|}
	want="$(e "[\"daily\"][\"$key\"][\"successful\"]")|$(e "[\"daily\"][\"$key\"][\"failed\"]")|$(e "[\"daily\"][\"$key\"][\"sessions\"]")|$(e "[\"daily\"][\"$key\"][\"reports\"]")|$(e "[\"host\"][\"$dom\"]")"
	is "$(q "SELECT successful || '|' || failed || '|' || sessions || '|' || reports || '|' || host_report FROM tlsrpt.daily_domain WHERE day = '$d' AND policy_domain = '$dom'")" \
		"$want" "daily_domain $dom on $d: successful|failed|sessions|reports|host_report"
done
is "$(q "SELECT sessions FROM tlsrpt.daily_domain WHERE day = '$D1' AND policy_domain = 'dual.example'")" 2 \
	"daily_domain: Microsoft's sts + tlsa report of 2 sessions counts 2 (by hand)"
is "$(q "SELECT successful || '|' || failed FROM tlsrpt.report_domain d JOIN tlsrpt.report r ON r.id = d.report WHERE r.report_id = 'ms-2'")" \
	"8|2" "report_domain: sts 10+0 and tlsa 8+2 disagree: 10 sessions, 2 of them failed (by hand)"
is "$(q "SELECT array_to_string(policy_types, ',') || '|' || policies FROM tlsrpt.report_domain d JOIN tlsrpt.report r ON r.id = d.report WHERE r.report_id = 'ms-1'")" \
	"sts,tlsa|2" "report_domain: the policy types it counts once"
for key in $(ekeys '["per_type"]'); do
	IFS='|' read -r d dom t <<<"$key"
	is "$(q "SELECT sessions FROM tlsrpt.daily_domain_policy_type WHERE day = '$d' AND policy_domain = '$dom' AND policy_type = '$t'")" \
		"$(e "[\"per_type\"][\"$key\"]")" "daily_domain_policy_type $dom $t on $d: the reporter's own figure"
done
for d in $(ekeys '["all_days"]'); do
	is "$(q "SELECT sum(successful) || '|' || sum(failed) FROM tlsrpt.daily_domain WHERE day = '$d' AND NOT host_report")" \
		"$(e "[\"all_days\"][\"$d\"][\"successful\"]")|$(e "[\"all_days\"][\"$d\"][\"failed\"]")" \
		"all domains on $d, host reports left out"
done
is "$(q "SELECT sum(sessions) FROM tlsrpt.daily_domain WHERE day = '$D1' AND NOT host_report AND policy_domain IN ('dual.example', 'mox.example', 'mail.mox.example')")" 22 \
	"yesterday, three domains: 2 (Microsoft) + 20 (mox.example), not 20 again for its MX host (by hand)"
is "$(q "SELECT string_agg(policy_domain, ',' ORDER BY policy_domain) FROM tlsrpt.daily_domain WHERE host_report")" \
	"mail.mox.example,mx1.pat.example" "host_report: the tlsa reports for an MX host (named, or by a *. pattern), nothing else (by hand)"
is "$(q "SELECT sessions || '|' || host_report FROM tlsrpt.daily_domain WHERE policy_domain = 'self.example'")" "8|false" \
	"a domain that is its own MX: not a host report; 4 (Google) + 4 (Microsoft's sts + tlsa, once) (by hand)"
# the host test is one hashed look-up per query, not a scan per policy
is "$(q "EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FILTER (WHERE host_report) FROM tlsrpt.policy_sessions" | grep -o "hashed SubPlan [0-9]*" | sort -u | wc -l)" 2 \
	"host_report: the MX names are hashed once per query (two hashed subplans)"
is "$(q "SELECT bool_or(host_report) FROM tlsrpt.policy_sessions WHERE policy_domain = 'dual.example'")" f \
	"host_report: Microsoft's tlsa policy for the recipient domain is not a host report"

# ---------------------------------------------------------------- failures counted once
for key in $(ekeys '["failures"]'); do
	IFS='|' read -r d dom rt mx <<<"$key"
	is "$(q "SELECT failed_sessions FROM tlsrpt.failure_daily WHERE day = '$d' AND policy_domain = '$dom' AND result_type = '$rt' AND receiving_mx_hostname = '$mx'")" \
		"$(e "[\"failures\"][\"$key\"]")" "failure_daily $dom $rt at $mx on $d"
done
is "$(q "SELECT sum(failed_sessions) || '|' || sum(counted_sessions) FROM tlsrpt.failure_detail WHERE day = '$D3'")" "2|1" \
	"failure_detail: the row repeated under sts and tlsa is listed twice, counted once (by hand)"
is "$(q "SELECT failed_sessions FROM tlsrpt.top_receiving_ip WHERE receiving_ip = '198.51.100.1'")" 6 \
	"top_receiving_ip: 2 + 1 + 3 failed sessions, the repeated row once (by hand)"

# ---------------------------------------------------------------- alert_failure_rate and --summary
dom=dual.example
is "$(q "SELECT successful || '|' || failed || '|' || failure_rate FROM tlsrpt.alert_failure_rate(0.001) WHERE policy_domain = '$dom'")" \
	"$(e "[\"domain\"][\"$dom\"][\"successful\"]")|$(e "[\"domain\"][\"$dom\"][\"failed\"]")|$(e "[\"domain\"][\"$dom\"][\"rate\"]")" \
	"alert_failure_rate: dual.example, sessions counted once"
ingest_noin --summary --days 30 --domain "$dom"
expect_quiet "--summary --domain $dom"
reporters=$(e "[\"domain\"][\"$dom\"][\"reporters\"]" | tr -d "[]'")
is "$(sed -n 5,6p "$W/out")" "  $(e "[\"domain\"][\"$dom\"][\"sessions\"]") sessions, $(e "[\"domain\"][\"$dom\"][\"failed\"]") failed ($(e "[\"domain\"][\"$dom\"][\"pct\"]") %); $(e "[\"domain\"][\"$dom\"][\"reports\"]") reports from 2 reporters
  reporters: $reporters" "--summary: dual.example, sessions counted once"
is "$(grep -E '^  [a-z-]+: [0-9]+ failed session' "$W/out")" "  certificate-expired: 3 failed sessions
  tlsa-invalid: 2 failed sessions
  validation-failure: 1 failed session" "--summary: result types, the repeated row once (by hand)"
ingest_noin --summary --days 30 --domain mox.example
is "$(sed -n 5p "$W/out")" "  20 sessions, 0 failed (0.0 %); 1 report from 1 reporter" "--summary: mox.example (by hand)"

# ---------------------------------------------------------------- alerts: the period, not the arrival
q "CREATE DATABASE backfill" >/dev/null
BF=$(pg_conninfo backfill)
"$BIN" -d "$BF" --init-db >/dev/null
# report DAYS-AGO ID: certificate-expired on every session (10 of 10)
report() {
	local d
	# days before the moment of the check, not before NOW: the alerts compare
	# with the server's now(), and a run across midnight shifted them a day
	d=$(NOW=$(date -u +%s) vday "$1")
	printf '{"organization-name":"Old Mail","report-id":"%s","date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"late.example"},"summary":{"total-successful-session-count":0,"total-failure-session-count":10},"failure-details":[{"result-type":"certificate-expired","receiving-mx-hostname":"mx.late.example","failed-session-count":10}]}]}\n' \
		"$2" "$d" "$d" >"$W/$2.json"
	"$BIN" -d "$BF" "$W/$2.json" >/dev/null
}
for k in 400 380 365 200 30 10; do
	report "$k" "old-$k"
done
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE received_at > now() - interval '1 minute'" -d backfill)" 6 \
	"backfill: six reports of 10 to 400 days ago, all received just now"
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure()" -d backfill)" 0 "backfill: no critical-failure alert"
is "$(q "SELECT count(*) FROM tlsrpt.alert_new_result_type()" -d backfill)" 0 "backfill: no new-result-type alert"
is "$(q "SELECT count(*) FROM tlsrpt.alerts()" -d backfill)" 0 "backfill: no alert at all"
out=$(sh "$CHECK" -d "$BF" 2>&1)
is "$?" 0 "backfill: tlsrpt-check says OK"
report 3 old-3
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure()" -d backfill)" 0 \
	"a report about three days ago arriving today: not recent"
is "$(q "SELECT alert FROM tlsrpt.alerts()" -d backfill)" failure-rate \
	"... but it is in the failure rate of the last 7 days (by period)"
report 1 yesterday
is "$(q "SELECT policy_domain || '|' || result_type || '|' || failed_sessions FROM tlsrpt.alert_critical_failure()" -d backfill)" \
	"late.example|certificate-expired|10" "a report about yesterday arriving today: critical-failure alert"
is "$(q "SELECT count(*) FROM tlsrpt.alert_new_result_type()" -d backfill)" 0 \
	"a report about yesterday: certificate-expired is not new (seen 3 days ago, by period)"
q "DELETE FROM tlsrpt.report WHERE report_id IN ('old-3', 'old-10', 'old-30')" -d backfill >/dev/null
is "$(q "SELECT result_type || '|' || failed_sessions FROM tlsrpt.alert_new_result_type()" -d backfill)" \
	"certificate-expired|10" "new-result-type: the history is by period too (only reports older than its 90 days left)"
q "UPDATE tlsrpt.report SET received_at = now() - interval '30 hours' WHERE report_id = 'yesterday'" -d backfill >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure()" -d backfill)" 0 \
	"arrival is a gate: a report received 30 hours ago is not recent"
q "DELETE FROM tlsrpt.report WHERE report_id = 'yesterday'" -d backfill >/dev/null
report 2 late-by-a-day
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure()" -d backfill)" 1 \
	"a report about the day before yesterday arriving today (a day late) is still recent"
is "$(q "BEGIN; UPDATE tlsrpt.report SET received_at = now(); SELECT count(*) FROM tlsrpt.alert_critical_failure('1 second'); ROLLBACK" -d backfill)" 0 \
	"recent '1 second', received at that instant: its period (ended over a day ago) is too old"
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure(result_types => ARRAY['Certificate-EXPIRED'])" -d backfill)" 1 \
	"critical result types compared case-insensitively"

# ---------------------------------------------------------------- upgrade from version 3
q "CREATE DATABASE v3" >/dev/null
{
	schema_at 3
	cat <<SQL
INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, received_at, raw)
VALUES ('Microsoft Corporation', 'v3-ms', '$D1 00:00:00+00', '$D1 23:59:59+00', '$D1 23:59:59+00', '{}'),
       ('Google Inc.', 'v3-g', '$D1 00:00:00+00', '$D1 23:59:59+00', '$D1 23:59:59+00', '{}');
INSERT INTO tlsrpt.policy (report, policy_type, policy_domain, mx_host, total_successful_session_count, total_failure_session_count)
SELECT id, t, 'Dual.Example.', NULL, 2, 0 FROM tlsrpt.report, unnest(ARRAY['sts', 'tlsa']) t WHERE report_id = 'v3-ms'
UNION ALL
SELECT id, 'sts', ' dual.example', ARRAY['MX1.Dual.Example.', ' '], 5, 1 FROM tlsrpt.report WHERE report_id = 'v3-g';
INSERT INTO tlsrpt.failure (policy, result_type, receiving_mx_hostname, failed_session_count)
SELECT p.id, 'Certificate-Expired ', 'MX1.DUAL.example.', 1
FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'v3-g';
COMMIT;
SQL
} >"$W/v3.sql"
psql -X -q -v ON_ERROR_STOP=1 -d v3 -f "$W/v3.sql" >/dev/null 2>&1
ok_if "a database at schema version 3 with rows" $?
is "$(q "SELECT sum(sessions) FROM tlsrpt.daily_domain" -d v3)" 10 "version 3 counted Microsoft's sessions twice (2 + 2 + 6)"
TLSRPT_TEST_PARTITIONED=0 ingest_noin --init-db -d "$(pg_conninfo v3)"
expect_quiet "--init-db upgrades version 3"
is "$(q "SELECT max(version) FROM tlsrpt.schema_version" -d v3)" "$nmig" "upgraded to the last migration (version 4 included)"
is "$(q "SELECT string_agg(DISTINCT policy_domain, ',') FROM tlsrpt.policy" -d v3)" dual.example \
	"upgrade: the stored policy domains normalized"
is "$(q "SELECT array_to_string(mx_host, ',') FROM tlsrpt.policy WHERE mx_host IS NOT NULL" -d v3)" mx1.dual.example \
	"upgrade: mx_host normalized, the blank element left out"
is "$(q "SELECT result_type || '|' || receiving_mx_hostname FROM tlsrpt.failure" -d v3)" "certificate-expired|mx1.dual.example" \
	"upgrade: the failure's keys normalized"
is "$(q "SELECT sessions || '|' || failed || '|' || reports FROM tlsrpt.daily_domain" -d v3)" "8|1|2" \
	"upgrade: one row for dual.example, 2 (Microsoft, once) + 6 (Google) sessions (by hand)"
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure('3 days')" -d v3)" 1 "upgrade: the alert functions work"
TLSRPT_TEST_PARTITIONED=0 ingest_noin --init-db -d "$(pg_conninfo v3)"
expect_quiet "--init-db again: nothing to do"

done_testing
