#!/bin/bash
# views-t.sh - the views and alerts (src/sql/003-views.sql) on a populated
# database (tests/data/views/populate.sh): the parsed MTA-STS and TLSA
# policies, every view's rows and values, every alert function both firing and
# quiet, contrib/tlsrpt-check's exit statuses, and --purge-older-than.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

pg_start
CHECK=$top_srcdir/contrib/tlsrpt-check

# quiet_in SQL-CHANGE QUERY: the query's result after the change, rolled back
rolled_back() {
	psql -X -qAt -v ON_ERROR_STOP=1 -P null=NULL -F '|' 2>&1 <<SQL
BEGIN;
$1;
$2;
ROLLBACK;
SQL
}

ok "populated database" views_populate
D1=$(vday 1) D2=$(vday 2) D3=$(vday 3) D4=$(vday 4) D6=$(vday 6) D8=$(vday 8) D9=$(vday 9)
is "$(q "SELECT count(*) FROM tlsrpt.report")/$(q "SELECT count(*) FROM tlsrpt.rejected")" "19/2" \
	"19 reports and 2 rejected mails stored"
nmig=$(ls "$top_srcdir"/src/sql/[0-9]*.sql | wc -l)
is "$(q "SELECT max(version) FROM tlsrpt.schema_version")" "$nmig" "schema at the last migration ($nmig)"
for v in sts_policy tlsa_record daily_domain failure_detail failure_daily top_sending_ip top_receiving_ip \
	latest_report sts_policy_daily sts_policy_history; do
	is "$(q "SELECT to_regclass('tlsrpt.$v') IS NOT NULL")" t "view tlsrpt.$v exists"
done

# ---------------------------------------------------------------- MTA-STS, parsed
sp="FROM tlsrpt.sts_policy WHERE policy_domain = 'shapes.example'"
is "$(q "SELECT version || '|' || mode || '|' || max_age $sp")" "STSv1|enforce|1209600" \
	"sts: version, mode, max_age by key, in any order"
is "$(q "SELECT array_to_json(mx) $sp")" '["mx2.shapes.example","*.shapes.example","mx1.shapes.example"]' \
	"sts: every mx line (repeated, any order), lowercased, in order"
is "$(q "SELECT array_to_json(other) $sp")" '["extension: foo"]' "sts: unknown lines kept"
is "$(q "SELECT cardinality(policy_string) $sp")" 7 "sts: the raw policy_string is next to them"
is "$(q "SELECT organization_name || '|' || to_char(date_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') $sp")" \
	"Shape Tester|$D8" "sts: reporter and date"
cp="FROM tlsrpt.sts_policy WHERE policy_domain = 'crlf.example'"
is "$(q "SELECT version || '|' || mode || '|' || coalesce(max_age::text, 'NULL') || '|' || array_to_json(mx) $cp")" \
	'STSv1|none|NULL|["a.crlf.example"]' "sts: one element holding CRLF lines; max_age not a number -> NULL"
is "$(q "SELECT array_to_json(other) $cp")" '["no colon here"]' "sts: a line without a colon kept"
is "$(q "SELECT mode || '|' || max_age FROM tlsrpt.sts_parse(ARRAY['max_age: 60', 'MODE:testing', 'mx: A.example', 'mx:b.example'])")" \
	"testing|60" "sts_parse(): keys case-insensitive, no space after the colon"
is "$(q "SELECT array_to_json(mx) FROM tlsrpt.sts_parse(ARRAY['mx: A.example', 'mx:b.example'])")" \
	'["a.example","b.example"]' "sts_parse(): mx without a space"
is "$(q "SELECT coalesce(mode, 'NULL') || '|' || cardinality(mx) FROM tlsrpt.sts_parse(NULL)")" "NULL|0" \
	"sts_parse(NULL): one row of nothing"
is "$(q "SELECT quote_nullable(version) || '|' || quote_nullable(mode) || '|' || coalesce(max_age::text, 'NULL') FROM tlsrpt.sts_parse(ARRAY['version: STSv1', 'max_age: 99', 'max_age: 77', 'mode:', 'mode: later', 'version: STSv2'])")" \
	"'STSv1'|''|99" "sts_parse(): the first version, mode and max_age line count, an empty value too"
is "$(q "SELECT coalesce(max_age::text, 'NULL') FROM tlsrpt.sts_parse(ARRAY[E'max_age: abc\r\nmax_age: 5'])")" "NULL" \
	"sts_parse(): the first max_age line is not a number -> NULL, a later one is not taken"
is "$(q "SELECT version || '|' || mode || '|' || array_to_json(mx) || '|' || array_to_json(other)
	FROM tlsrpt.sts_parse(ARRAY[E'  Version :STSv1 \n\n\tMODE:  none\t\nfoo\n:bar\nmx:\n', E'\rmx: C\r\r', NULL, '   ', ''])")" \
	'STSv1|none|["","c"]|["foo",":bar"]' \
	"sts_parse(): blanks around keys and values, CR, LF and blank lines, NULL elements; an empty mx kept"
# sts_parse() (PL/pgSQL since migration 17) against its definition before,
# an aggregate over sts_lines(): every policy string stored, and odd ones
is "$(q "WITH c(ps) AS (SELECT DISTINCT policy_string FROM tlsrpt.policy
	UNION ALL VALUES (NULL::text[]), ('{}'), (ARRAY[NULL]::text[]), (ARRAY['', ' ', E'\t']),
	  (ARRAY['max_age: 1234567890123456789', 'max_age: 5']), (ARRAY['max_age: +5']), (ARRAY['max_age: 123456789012345678']),
	  (ARRAY[E'mx: a:b\n\rmx: c\r\nMAX_AGE : 7 \nMode:\tenforce ']), (ARRAY['MX: ÄB.Example', 'version', ':x', 'mode: a', 'mode: b']))
	SELECT count(*) || '/' || count(*) FILTER (WHERE (n.version, n.mode, n.max_age, n.mx, n.other)
	                                      IS DISTINCT FROM (o.version, o.mode, o.max_age, o.mx, o.other))
	FROM c CROSS JOIN LATERAL tlsrpt.sts_parse(c.ps) n
	CROSS JOIN LATERAL (
	    SELECT (array_agg(s.value ORDER BY s.n) FILTER (WHERE s.key = 'version'))[1] AS version,
	           (array_agg(s.value ORDER BY s.n) FILTER (WHERE s.key = 'mode'))[1] AS mode,
	           (array_agg(CASE WHEN s.value ~ '^[0-9]{1,18}\$' THEN s.value::bigint END ORDER BY s.n)
	                FILTER (WHERE s.key = 'max_age'))[1] AS max_age,
	           coalesce(array_agg(lower(s.value) ORDER BY s.n) FILTER (WHERE s.key = 'mx'), '{}') AS mx,
	           coalesce(array_agg(s.line ORDER BY s.n)
	                FILTER (WHERE s.key IS NULL OR s.key NOT IN ('version', 'mode', 'max_age', 'mx')), '{}') AS other
	    FROM tlsrpt.sts_lines(c.ps) AS s) o" | sed 's|^[1-9][0-9]\{1,\}/|n/|')" "n/0" \
	"sts_parse(): the same as its aggregate definition for every stored policy string and odd ones (10 or more)"
is "$(q "SELECT count(*) FROM tlsrpt.sts_policy WHERE policy_domain = 'example.net'")" 0 \
	"sts_policy: tlsa policies are not in it"

# ---------------------------------------------------------------- TLSA, parsed
tp="FROM tlsrpt.tlsa_record WHERE policy_domain = 'dane.example'"
is "$(q "SELECT n || ' ' || usage || ' ' || selector || ' ' || matching_type || ' ' || data $tp AND n = 1")" \
	"1 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6" "tlsa plain: first record"
is "$(q "SELECT n || ' ' || usage || ' ' || selector || ' ' || matching_type || ' ' || data $tp AND n = 2")" \
	"2 2 0 1 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" "tlsa plain: second record, data uppercased"
is "$(q "SELECT coalesce(usage::text, 'NULL') || '|' || coalesce(data, 'NULL') || '|' || record $tp AND n = 3")" \
	"NULL|NULL|garbage" "tlsa plain: an unreadable record kept, fields NULL"
mp="FROM tlsrpt.tlsa_record WHERE policy_domain = 'ms.example'"
is "$(q "SELECT count(*) $mp")" 2 "tlsa Microsoft shape: one element, two records"
is "$(q "SELECT string_agg(usage || ' ' || selector || ' ' || matching_type || ' ' || left(data, 8), ',' ORDER BY n) $mp")" \
	"3 1 1 6007EEE5,3 1 1 837C773D" "tlsa Microsoft shape: both records parsed, in order"
is "$(q "SELECT count(*) FROM tlsrpt.tlsa_record WHERE policy_domain = 'example.net'")" 10 \
	"tlsa: 5 Microsoft reports x 2 records for example.net"
is "$(q "SELECT count(*) || '|' || coalesce(min(data), 'NULL') || '|' || min(record) FROM tlsrpt.tlsa_parse(ARRAY['[\"3 1 1 ab\",'])")" \
	'1|NULL|["3 1 1 ab",' "tlsa_parse(): a broken JSON array is one unreadable record"
is "$(q "SELECT count(*) FROM tlsrpt.tlsa_parse(ARRAY['[]'])")/$(q "SELECT count(*) FROM tlsrpt.tlsa_parse(NULL)")" "0/0" \
	"tlsa_parse(): an empty JSON array and NULL give no rows"

# ---------------------------------------------------------------- authenticated only
# Nothing here was DKIM-checked: with tlsrpt.authenticated_only on, every view
# and alert sees no report, until one is marked as an aligned pass.
authq() {
	q "SET tlsrpt.authenticated_only = on" -c "$1"
}
all_reports=$(q "SELECT count(*) FROM tlsrpt.scoped_report")
is "$all_reports" "$(q "SELECT count(*) FROM tlsrpt.report")" "scoped_report: every report by default"
is "$(authq "SELECT count(*) FROM tlsrpt.scoped_report")" 0 "authenticated_only: no report is authenticated yet"
is "$(authq "SELECT count(*) FROM tlsrpt.daily_domain")" 0 "authenticated_only: daily_domain empty"
is "$(authq "SELECT count(*) FROM tlsrpt.failure_detail")" 0 "authenticated_only: failure_detail empty"
is "$(authq "SELECT count(*) FROM tlsrpt.alerts()")" 0 "authenticated_only: no alert"
q "UPDATE tlsrpt.report SET dkim_result = 'pass', dkim_aligned = true, dkim_domain = 'google.example',
   origin_method = 'dkim-verify' WHERE report_id = (SELECT min(report_id) FROM tlsrpt.report)" >/dev/null
is "$(authq "SELECT count(*) FROM tlsrpt.scoped_report")" 1 "authenticated_only: the one aligned pass is seen"
ok "authenticated_only: daily_domain has its row" test "$(authq "SELECT count(*) FROM tlsrpt.daily_domain")" -ge 1
is "$(q "SELECT count(*) FROM tlsrpt.scoped_report")" "$all_reports" "the setting is the session's alone"
q "UPDATE tlsrpt.report SET dkim_result = NULL, dkim_aligned = NULL, dkim_domain = NULL, origin_method = NULL" >/dev/null

# ---------------------------------------------------------------- daily_domain
dd="FROM tlsrpt.daily_domain WHERE policy_domain = 'example.org'"
is "$(q "SELECT successful || '|' || failed || '|' || sessions || '|' || failure_rate || '|' || reporters || '|' || reports $dd AND day = '$D1'")" \
	"400|600|1000|0.6000|1|1" "daily_domain: example.org yesterday"
is "$(q "SELECT successful || '|' || failed || '|' || failure_rate $dd AND day = '$D2'")" "1000|10|0.0099" \
	"daily_domain: example.org two days ago"
is "$(q "SELECT sessions || '|' || reporters || '|' || array_to_string(reporter_names, ',') $dd AND day = '$D6'")" \
	"1050|2|Google Inc.,Mail.ru" "daily_domain: two reporters on one day, summed"
is "$(q "SELECT day_start = '${D6}T00:00:00Z'::timestamptz $dd AND day = '$D6'")" t "daily_domain: day_start is the UTC midnight"
is "$(q "SELECT count(*) $dd")" 11 "daily_domain: 11 days of example.org"
is "$(q "SELECT successful || '|' || failed || '|' || failure_rate FROM tlsrpt.daily_domain WHERE policy_domain = 'example.net' AND day = '$D3'")" \
	"200|5|0.0244" "daily_domain: example.net, the day with failures"

# ---------------------------------------------------------------- failures
fd="FROM tlsrpt.failure_daily WHERE policy_domain = 'example.org'"
is "$(q "SELECT result_type || '|' || receiving_mx_hostname || '|' || organization_name || '|' || failed_sessions $fd AND day = '$D1' ORDER BY failed_sessions DESC")" \
	"certificate-expired|mx2.example.org|Google Inc.|300
starttls-not-supported|mx1.example.org|Google Inc.|200
validation-failure|mx2.example.org|Google Inc.|100" "failure_daily: yesterday by result type x MX x organization"
is "$(q "SELECT sum(failed_sessions) $fd AND result_type = 'validation-failure'")" 120 "failure_daily: validation-failure over three days"
is "$(q "SELECT count(*) $fd AND result_type = 'validation-failure'")" 3 "failure_daily: one row a day"
is "$(q "SELECT count(*) FROM tlsrpt.failure_detail")" 7 "failure_detail: every failure row"
is "$(q "SELECT host(sending_mta_ip) || '|' || failed_sessions || '|' || array_to_string(result_types, ',') || '|' || array_to_string(policy_domains, ',') FROM tlsrpt.top_sending_ip LIMIT 2")" \
	"209.85.220.41|420|certificate-expired,validation-failure|example.org
209.85.220.42|200|starttls-not-supported|example.org" "top_sending_ip: the two worst, in order"
is "$(q "SELECT count(*) FROM tlsrpt.top_sending_ip")" 4 "top_sending_ip: four addresses"
is "$(q "SELECT host(receiving_ip) || '|' || failed_sessions || '|' || array_to_string(receiving_mx_hostnames, ',') FROM tlsrpt.top_receiving_ip")" \
	"192.0.2.2|420|mx2.example.org
192.0.2.1|200|mx1.example.org
198.51.100.1|5|mx.example.net
203.0.113.99|1|mx9.example.org" "top_receiving_ip: every address, worst first"

# ---------------------------------------------------------------- latest_report
lr="FROM tlsrpt.latest_report"
is "$(q "SELECT report_id || '|' || reports || '|' || to_char(date_end AT TIME ZONE 'UTC', 'YYYY-MM-DD') $lr WHERE organization_name = 'Google Inc.' AND policy_domain = 'example.org'")" \
	"g-1|6|$D1" "latest_report: Google's latest for example.org"
is "$(q "SELECT report_id || '|' || reports || '|' || (silent_for > interval '5 days' AND silent_for < interval '6 days') $lr WHERE organization_name = 'Mail.ru'")" \
	"mr-6|5|true" "latest_report: Mail.ru stopped five days ago"
is "$(q "SELECT report_id || '|' || reports $lr WHERE organization_name = 'Microsoft Corporation'")" "ms-1|5" \
	"latest_report: Microsoft's latest for example.net"
is "$(q "SELECT count(*) $lr")" 9 "latest_report: one row per (organization, policy domain)"

# ---------------------------------------------------------------- MTA-STS over time
is "$(q "SELECT mode || '|' || max_age || '|' || array_to_string(reporters, ',') FROM tlsrpt.sts_policy_daily WHERE policy_domain = 'example.org' AND day = '$D4'")" \
	"testing|86400|Google Inc." "sts_policy_daily: testing four days ago"
is "$(q "SELECT mode || '|' || max_age || '|' || array_to_string(reporters, ',') FROM tlsrpt.sts_policy_daily WHERE policy_domain = 'example.org' AND day = '$D6' ORDER BY mode")" \
	"enforce|604800|Mail.ru
testing|86400|Google Inc." "sts_policy_daily: two reporters seeing two policies on one day"
sh="FROM tlsrpt.sts_policy_history WHERE policy_domain = 'example.org'"
is "$(q "SELECT mode || '|' || max_age || '|' || array_to_string(mx, ' ') || '|' || reports || '|' || to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '|' || to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD') $sh ORDER BY first_seen")" \
	"enforce|604800|mx1.example.org mx2.example.org|10|$(vday 400)|$D1
testing|86400|mx1.example.org|3|$D6|$D4" "sts_policy_history: the policy change shows up"

# ---------------------------------------------------------------- alerts: failure rate
is "$(q "SELECT * FROM tlsrpt.alert_failure_rate()")" "example.org|5500|620|0.1013|2" \
	"alert_failure_rate(): example.org over 7 days (defaults 0.05, 7 days)"
is "$(q "SELECT count(*) FROM tlsrpt.alert_failure_rate(0.2)")" 0 "alert_failure_rate(0.2): quiet"
is "$(q "SELECT policy_domain || '|' || failure_rate FROM tlsrpt.alert_failure_rate(0.001)")" \
	"example.org|0.1013
example.net|0.0050" "alert_failure_rate(0.001): example.net too, worst first"
is "$(q "SELECT successful || '|' || failed || '|' || failure_rate FROM tlsrpt.alert_failure_rate(days => 1)")" \
	"400|600|0.6000" "alert_failure_rate(days => 1): yesterday only"
is "$(q "SELECT count(*) FROM tlsrpt.alert_failure_rate(min_sessions => 100000)")" 0 \
	"alert_failure_rate(min_sessions => 100000): quiet"

# ---------------------------------------------------------------- alerts: new result type
is "$(q "SELECT policy_domain || '|' || result_type || '|' || failed_sessions || '|' || array_to_string(receiving_mx_hostnames, ',') FROM tlsrpt.alert_new_result_type()")" \
	"example.org|certificate-expired|300|mx2.example.org
example.org|starttls-not-supported|200|mx1.example.org" \
	"alert_new_result_type(): two new types yesterday, validation-failure is old"
is "$(rolled_back "DELETE FROM tlsrpt.report WHERE report_id = 'g-1'" "SELECT count(*) FROM tlsrpt.alert_new_result_type()")" 0 \
	"alert_new_result_type(): quiet without yesterday's report"
is "$(rolled_back "UPDATE tlsrpt.report SET received_at = now() - interval '2 days' WHERE report_id = 'g-3'; UPDATE tlsrpt.report SET received_at = now() WHERE report_id = 'g-2'" \
	"SELECT result_type FROM tlsrpt.alert_new_result_type() ORDER BY 1")" \
	"certificate-expired
starttls-not-supported" "alert_new_result_type(): a type seen before is not new, whatever its order"

# ---------------------------------------------------------------- alerts: silent reporter
is "$(q "SELECT organization_name || '|' || policy_domain || '|' || reports || '|' || to_char(last_date_end AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM tlsrpt.alert_silent_reporter()")" \
	"Mail.ru|example.org|5|$D6" "alert_silent_reporter(): Mail.ru, daily until six days ago (not Single Sender, not Google)"
is "$(q "SELECT count(*) FROM tlsrpt.alert_silent_reporter('7 days')")" 0 "alert_silent_reporter('7 days'): quiet"
is "$(rolled_back "DELETE FROM tlsrpt.report WHERE report_id IN ('mr-7', 'mr-9')" "SELECT count(*) FROM tlsrpt.alert_silent_reporter()")" 1 \
	"alert_silent_reporter(): every other day still counts as daily"
is "$(rolled_back "DELETE FROM tlsrpt.report WHERE report_id IN ('mr-7', 'mr-8', 'mr-9')" "SELECT count(*) FROM tlsrpt.alert_silent_reporter()")" 0 \
	"alert_silent_reporter(): two reports only (under min_reports): quiet"

# ---------------------------------------------------------------- alerts: certificate and STARTTLS
is "$(q "SELECT * FROM tlsrpt.alert_critical_failure()")" \
	"example.org|certificate-expired|mx2.example.org|300|{\"Google Inc.\"}
example.org|starttls-not-supported|mx1.example.org|200|{\"Google Inc.\"}" \
	"alert_critical_failure(): yesterday's expired certificate and missing STARTTLS"
is "$(rolled_back "DELETE FROM tlsrpt.report WHERE report_id = 'g-1'" "SELECT count(*) FROM tlsrpt.alert_critical_failure()")" 0 \
	"alert_critical_failure(): quiet without yesterday's report"
is "$(q "SELECT count(*) FROM tlsrpt.alert_critical_failure(result_types => ARRAY['certificate-host-mismatch'])")" 0 \
	"alert_critical_failure(certificate-host-mismatch only): quiet"
is "$(q "SELECT policy_domain || '|' || result_type FROM tlsrpt.alert_critical_failure('5 days', ARRAY['tlsa-invalid'])")" \
	"example.net|tlsa-invalid" "alert_critical_failure('5 days', tlsa-invalid): three days ago"

# ---------------------------------------------------------------- alerts(): all of them
is "$(q "SELECT severity || '|' || alert || '|' || message FROM tlsrpt.alerts()")" \
	"CRITICAL|certificate-expired|example.org: certificate-expired at mx2.example.org (300 sessions)
CRITICAL|starttls-not-supported|example.org: starttls-not-supported at mx1.example.org (200 sessions)
WARNING|failure-rate|example.org: 10.1% of 6120 sessions failed in 7 days
WARNING|new-result-type|example.org: new result type certificate-expired (300 sessions)
WARNING|new-result-type|example.org: new result type starttls-not-supported (200 sessions)
WARNING|silent-reporter|example.org: no report from Mail.ru for 5 days (usually every day)" "alerts(): every alert, critical first"
is "$(q "SELECT severity FROM tlsrpt.alerts(crit_rate => 0.1) WHERE alert = 'failure-rate'")" CRITICAL \
	"alerts(crit_rate => 0.1): the failure rate is critical"

# ---------------------------------------------------------------- contrib/tlsrpt-check
check() {
	out=$(sh "$CHECK" "$@" 2>&1)
	crc=$?
}
check -d "$(pg_conninfo)"
is "$crc" 2 "tlsrpt-check: CRITICAL exits 2"
like "$out" "^TLSRPT CRITICAL - 2 critical, 4 warning: example\.org: certificate-expired at mx2\.example\.org" \
	"tlsrpt-check: CRITICAL line"
is "$(printf '%s\n' "$out" | grep -c '')" 1 "tlsrpt-check: one line"
q "CREATE DATABASE okdb" >/dev/null
"$BIN" -d "$(pg_conninfo okdb)" --init-db >/dev/null
check -d "$(pg_conninfo okdb)"
is "$crc" 0 "tlsrpt-check: an empty database is OK (exit 0)"
like "$out" "^TLSRPT OK - " "tlsrpt-check: OK line"
q "CREATE DATABASE warndb" >/dev/null
"$BIN" -d "$(pg_conninfo warndb)" --init-db >/dev/null
"$BIN" -d "$(pg_conninfo warndb)" "$W"/views-reports/mr-*.json
q "UPDATE tlsrpt.report SET received_at = date_end + interval '1 second'" -d warndb >/dev/null
check -d "$(pg_conninfo warndb)"
is "$crc" 1 "tlsrpt-check: a silent reporter only is WARNING (exit 1)"
like "$out" "^TLSRPT WARNING - 1 warning: example\.org: no report from Mail\.ru for 5 days" "tlsrpt-check: WARNING line"
check -d "$(pg_conninfo warndb)" -s '10 days'
is "$crc" 0 "tlsrpt-check -s '10 days': OK"
check -d "$(pg_conninfo)" -r '1 second' -w 0.5
is "$crc" 1 "tlsrpt-check -r '1 second' -w 0.5: the silent reporter only: WARNING"
check -d "$(pg_conninfo)" -r '1 second' -w 0.01 -c 0.1 -s '30 days'
is "$crc" 2 "tlsrpt-check -c 0.1: the failure rate is CRITICAL"
like "$out" "^TLSRPT CRITICAL - 1 critical, 0 warning: example\.org: 10\.1% " "tlsrpt-check -c 0.1: the line says the rate"
q "CREATE DATABASE noschema" >/dev/null
check -d "$(pg_conninfo noschema)"
is "$crc" 3 "tlsrpt-check: no schema is UNKNOWN (exit 3)"
like "$out" "^TLSRPT UNKNOWN - .*tlsrpt" "tlsrpt-check: UNKNOWN line names the problem"
check -d "$(pg_conninfo nosuchdb)"
is "$crc" 3 "tlsrpt-check: no database is UNKNOWN (exit 3)"
check -w lots
is "$crc" 3 "tlsrpt-check: a bad -w is UNKNOWN (exit 3)"

# ---------------------------------------------------------------- --purge-older-than
ingest_noin --purge-older-than 0
is "$rc" 64 "--purge-older-than 0: bad usage"
ingest_noin --purge-older-than soon
is "$rc" 64 "--purge-older-than soon: bad usage"
ingest_noin --purge-older-than 30 --summary
is "$rc" 64 "--purge-older-than with --summary: bad usage"

before=$(q "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.policy) || '/' || (SELECT count(*) FROM tlsrpt.failure) || '/' || (SELECT count(*) FROM tlsrpt.rejected)")
is "$before" "19/22/7/2" "before the purge: reports/policies/failures/rejected"
ingest_noin --purge-older-than 365
expect_quiet "--purge-older-than 365"
like "$(cat "$W/out")" "^purged reports=1 policies=1 failures=1 rejected=1 \(older than 365 days: before " \
	"--purge-older-than 365: says what went"
is "$(q "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.policy) || '/' || (SELECT count(*) FROM tlsrpt.failure) || '/' || (SELECT count(*) FROM tlsrpt.rejected)")" \
	"18/21/6/1" "after the purge: the old report, its policy and failure, the old rejected mail gone"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'old-400'")" 0 "the report of 400 days ago is gone"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE 'views-not-a-report-2@%'")" 1 "the recent rejected mail stays"
is "$(q "SELECT reports FROM tlsrpt.sts_policy_history WHERE policy_domain = 'example.org' AND mode = 'enforce'")" 9 \
	"the views follow the purge"
ingest_noin --purge-older-than 365
is "$(cat "$W/out" | cut -d' ' -f1-5)" "purged reports=0 policies=0 failures=0 rejected=0" "--purge-older-than again: nothing left to purge"

# batches: more than one transaction's worth; a report without date_end goes by received_at
# (period_month: the partition key, migration 9, as a delivery fills it; TLSRPT_TEST_PARTITIONED=1 needs it)
q "INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, raw, period_month)
   SELECT 'Bulk', 'bulk-' || g, now() - interval '500 days', now() - interval '499 days', '{}',
          tlsrpt.period_month(now() - interval '499 days')
   FROM generate_series(1, 2345) g;
   INSERT INTO tlsrpt.policy (report, period_month, policy_type, policy_domain)
   SELECT id, period_month, 'sts', 'bulk.example' FROM tlsrpt.report WHERE organization_name = 'Bulk';
   INSERT INTO tlsrpt.report (organization_name, report_id, received_at, raw, period_month)
   VALUES ('Undated', 'undated-old', now() - interval '40 days', '{}', '-infinity'),
          ('Undated', 'undated-new', now() - interval '20 days', '{}', '-infinity')" >/dev/null
ingest_noin --purge-older-than 30
expect_quiet "--purge-older-than 30 with 2345 + 1 old reports"
like "$(cat "$W/out")" "^purged reports=2346 policies=2345 failures=0 rejected=0 " "--purge-older-than 30: all of them, in batches"
is "$(q "SELECT string_agg(report_id, ',') FROM tlsrpt.report WHERE organization_name IN ('Bulk', 'Undated')")" "undated-new" \
	"a report without dates goes by received_at"
is "$(q "SELECT count(*) FROM tlsrpt.report")" 19 "the recent reports stay"

# a batch waits for a refresh() that is running (the DELETE trigger takes its
# lock, migration 19), as long as lock_timeout: past it the purge stops with
# 75 (temporary) and deletes nothing more; the next run does the rest
q "INSERT INTO tlsrpt.report (organization_name, report_id, received_at, raw, period_month)
   VALUES ('Undated', 'undated-older', now() - interval '40 days', '{}', '-infinity')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 >"$W/refresh-lock.out" 2>&1 <<'SQL' &
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tlsrpt.refresh'));
SELECT pg_sleep(4);
COMMIT;
SQL
holder=$!
sleep 1
ingest_noin --purge-older-than 30 -o lock_timeout=1
is "$rc" 75 "--purge-older-than while refresh()'s lock is held past lock_timeout: 75"
like "$(cat "$W/err")" 'lock timeout|55P03' "and it says lock timeout"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'undated-older'")" 1 "the batch was rolled back"
wait $holder
ingest_noin --purge-older-than 30
like "$(cat "$W/out")" "^purged reports=1 " "the next run purges it"
is "$(q "SELECT count(*) FROM tlsrpt.report")" 19 "the recent reports stay"

done_testing
