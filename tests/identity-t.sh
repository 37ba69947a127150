#!/bin/bash
# identity-t.sh - a forged report never hides a real one (issue 10 section 2):
# a report's identity includes its sender (migration 6, doc/trust.md "Report
# identity"). Forged copies of a genuine report, with its organization name,
# report id and period but no failures, are stored first: an unauthenticated
# HTTPS POST (the CGI, REMOTE_ADDR), then a mail signed and aligned by the
# attacker's own domain. The genuine mail, signed with a key made here
# (tests/dkim-sign, verified from a key file) and delivered with
# dkim_policy = require, must still be stored with its failures, and the views,
# rollups and alerts must count it once. The figures are the fixtures' own,
# written out by hand below.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

SIGN=$top_builddir/tests/dkim-sign
case $SIGN in /*) ;; *) SIGN=$PWD/$SIGN ;; esac
command -v openssl >/dev/null 2>&1 || skip_all "no openssl to make a key"
[ -x "$SIGN" ] || bail "no $SIGN (make check builds it)"

# ---------------------------------------------------------------- keys, reports, mails
K=$W/keys
mkdir -p "$K"
newkey() { # NAME SELECTOR DOMAIN
	openssl genrsa -out "$K/$1.pem" 2048 2>/dev/null || bail "openssl genrsa failed"
	printf '%s._domainkey.%s v=DKIM1; k=rsa; p=%s\n' "$2" "$3" \
		"$(openssl rsa -in "$K/$1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)" >>"$K/keys.txt"
}
newkey victim s2026 reports.victim-reporter.example
newkey evil s1 evil.example

# Yesterday, so that the alerts see it as recent.
DAY=$(date -u -d yesterday +%F)

# report ID SUCCESSFUL FAILURES: Victim Reporter's report for example.org of
# yesterday; FAILURES "yes" adds two failure rows (60 certificate-expired and
# 40 starttls-not-supported sessions), and the failure count 100.
report() {
	local failed=0 details=
	if [ "$3" = yes ]; then
		failed=100
		details=', "failure-details": [
        {"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10",
         "receiving-mx-hostname": "mx1.example.org", "failed-session-count": 60},
        {"result-type": "starttls-not-supported", "sending-mta-ip": "192.0.2.11",
         "receiving-mx-hostname": "mx1.example.org", "failed-session-count": 40}]'
	fi
	cat <<EOF
{"organization-name": "Victim Reporter",
 "date-range": {"start-datetime": "${DAY}T00:00:00Z", "end-datetime": "${DAY}T23:59:59Z"},
 "contact-info": "tlsrpt@victim-reporter.example",
 "report-id": "$1",
 "policies": [{
   "policy": {"policy-type": "sts", "policy-domain": "example.org",
              "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.org", "max_age: 86400"],
              "mx-host": ["mx1.example.org"]},
   "summary": {"total-successful-session-count": $2, "total-failure-session-count": $failed}$details}]}
EOF
}
# mail FILE.json SUBMITTER-DOMAIN [KEY SELECTOR D]: the report in a mail from
# SUBMITTER-DOMAIN, signed by D when a key is given
mail() {
	local json=$1 from=$2
	if [ -n "${3:-}" ]; then
		mkmail -p -s "$from" -d example.org -m "$(basename "$json" .json)@$from" "$json" |
			"$SIGN" "$K/$3.pem" "$4" "$5" || bail "signing failed"
	else
		mkmail -p -s "$from" -d example.org -m "$(basename "$json" .json)@$from" "$json"
	fi
}

# The real report ids are predictable (Google's is <date>T00:00:00Z_<domain>).
ID1="${DAY}T00:00:00Z_example.org"
ID2="${DAY}T00:00:01Z_example.org"
ID3="${DAY}T00:00:02Z_example.org"
report "$ID1" 900 yes >"$W/genuine1.json"
report "$ID1" 1000 no >"$W/forged1.json"
report "$ID2" 900 yes >"$W/genuine2.json"
report "$ID2" 1000 no >"$W/forged2.json"
report "$ID3" 900 yes >"$W/genuine3.json"
report "$ID3" 1000 no >"$W/forged3.json"
mail "$W/genuine1.json" victim-reporter.example victim s2026 reports.victim-reporter.example >"$W/genuine1.eml"
mail "$W/genuine2.json" victim-reporter.example victim s2026 reports.victim-reporter.example >"$W/genuine2.eml"
mail "$W/genuine3.json" victim-reporter.example victim s2026 reports.victim-reporter.example >"$W/genuine3.eml"
# the attacker signs with its own domain, aligned with its own From
mail "$W/forged3.json" evil.example evil s1 evil.example >"$W/forged3.eml"
# an unsigned copy of the genuine report (as trust = none would store it)
mail "$W/genuine1.json" victim-reporter.example >"$W/unsigned1.eml"

REQ=(-o trust=dkim-verify -o "dkim_key_file=$K/keys.txt" -o dkim_policy=require)

# post FILE.json ADDRESS: the CGI program as the web server runs it (RFC 3875:
# the request in the environment, the body on standard input)
post() {
	env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+json \
		CONTENT_LENGTH="$(stat -c %s "$1")" REMOTE_ADDR="$2" "$BIN" <"$1" >"$W/out" 2>"$W/err"
	rc=$?
	status=$(head -n 1 "$W/out" | tr -d '\r')
}

# advisory_wait GRANTED: waits (5 s at most) until one identity lock
# (classid 8460) is granted (true) or waited for (false); prints how many are
advisory_wait() {
	local n=0
	for _ in $(seq 1 100); do
		n=$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 8460 AND granted = $1")
		[ "$n" = 1 ] && break
		sleep 0.05
	done
	echo "$n"
}

pg_start
ingest_noin --init-db
expect_quiet "--init-db"

of() { # the copies of report id $1: sender/authenticated/shadowed, oldest first
	q "SELECT string_agg(concat_ws('/', sender, authenticated, shadowed), ' ' ORDER BY id)
	   FROM tlsrpt.report WHERE report_id = '$1'"
}
failed_rows() { # failure rows stored under report id $1, and their sessions
	q "SELECT count(f.*) || '/' || coalesce(sum(f.failed_session_count), 0)
	   FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id JOIN tlsrpt.failure f ON f.policy = p.id
	   WHERE r.report_id = '$1'"
}
dd() { # daily_domain of example.org yesterday: sessions/failed/reports (fast view, or $1)
	q "SELECT sessions || '/' || failed || '/' || reports FROM tlsrpt.${1:-daily_domain}
	   WHERE policy_domain = 'example.org' AND day = '$DAY'"
}
fd() { # failed sessions in failure_daily of example.org yesterday
	q "SELECT coalesce(sum(failed_sessions), 0) FROM tlsrpt.${1:-failure_daily}
	   WHERE policy_domain = 'example.org' AND day = '$DAY'"
}
# the fast views and alerts against their plain definitions (migration 5)
same_as_plain() {
	local v
	for v in daily_domain failure_daily latest_report top_sending_ip sts_policy_daily sts_policy_history \
		reporter_ledger sts_reporter_daily; do
		is "$(q "SELECT count(*) FROM ((SELECT * FROM tlsrpt.$v EXCEPT ALL SELECT * FROM tlsrpt.${v}_plain)
		         UNION ALL (SELECT * FROM tlsrpt.${v}_plain EXCEPT ALL SELECT * FROM tlsrpt.$v)) x")" \
			0 "$1: $v = ${v}_plain"
	done
	is "$(q "SELECT count(*) FROM ((SELECT * FROM tlsrpt.alert_critical_failure() EXCEPT ALL
	                                SELECT * FROM tlsrpt.alert_critical_failure_plain())
	         UNION ALL (SELECT * FROM tlsrpt.alert_critical_failure_plain() EXCEPT ALL
	                    SELECT * FROM tlsrpt.alert_critical_failure())) x")" 0 "$1: alert_critical_failure = _plain"
}

# ---------------------------------------------------------------- 1. a forged POST first
post "$W/forged1.json" 203.0.113.66
is "$rc/$status" "0/Status: 201 Created" "forged POST of the real report id: stored"
is "$(of "$ID1")" "https:203.0.113.66/f/f" "forged POST: sender https:<client address>, not authenticated"
is "$(q "SELECT client_addr FROM tlsrpt.report WHERE report_id = '$ID1'")" 203.0.113.66 \
	"forged POST: the client address is kept"
is "$(dd)" "1000/0/1" "forged POST alone: the views show its numbers (1000 sessions, none failed)"

ingest "$W/genuine1.eml" "${REQ[@]}"
expect_ok "the genuine signed mail after it (dkim_policy = require)"
is "$(of "$ID1")" "https:203.0.113.66/f/t dkim:reports.victim-reporter.example/t/f" \
	"genuine mail: stored beside it, authenticated; the forged copy is shadowed"
is "$(failed_rows "$ID1")" "2/100" "genuine mail: its two failure rows (60 + 40 sessions) are in the tables"
# genuine: 900 successful + 100 failed = 1000 sessions, counted once
is "$(dd)" "1000/100/1" "daily_domain: the genuine numbers, once"
is "$(dd daily_domain_plain)" "1000/100/1" "daily_domain_plain: the same"
is "$(fd)" 100 "failure_daily: 100 failed sessions"
is "$(q "SELECT concat_ws('/', reports, authenticated, sender) FROM tlsrpt.latest_report
	WHERE organization_name = 'Victim Reporter' AND policy_domain = 'example.org'")" \
	"1/t/dkim:reports.victim-reporter.example" "latest_report: one report, authenticated, by whom"
is "$(q "SELECT string_agg(concat_ws('/', sender, counted, copies), ' ' ORDER BY report) FROM tlsrpt.report_copy
	WHERE report_id = '$ID1'")" "https:203.0.113.66/f/2 dkim:reports.victim-reporter.example/t/2" \
	"report_copy: both copies, which one counts"
is "$(q "SELECT failed FROM tlsrpt.alert_failure_rate() WHERE policy_domain = 'example.org'")" 100 \
	"alert_failure_rate: 100 failed sessions of 1000 (10 %)"
is "$(q "SELECT string_agg(result_type || ':' || failed_sessions, ' ' ORDER BY result_type)
	FROM tlsrpt.alert_critical_failure() WHERE policy_domain = 'example.org'")" \
	"certificate-expired:60 starttls-not-supported:40" "alert_critical_failure: the genuine failures"
same_as_plain "before refresh()"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(dd)" "1000/100/1" "after refresh(): daily_domain the same"
is "$(fd)" 100 "after refresh(): failure_daily the same"
same_as_plain "after refresh()"
is "$(q "SELECT reports FROM tlsrpt.latest_report WHERE organization_name = 'Victim Reporter'")" 1 \
	"after refresh(): latest_report counts one report"
is "$(q "SELECT reports FROM tlsrpt.reporter_ledger WHERE organization_name = 'Victim Reporter'")" 1 \
	"after refresh(): reporter_ledger counts one report"
is "$(q "SELECT count(*) FROM tlsrpt.scoped_report WHERE report_id = '$ID1'")" 1 "scoped_report: one copy"
out=$(q "SET tlsrpt.authenticated_only = on; SELECT count(*) FROM tlsrpt.scoped_report WHERE report_id = '$ID1'")
is "$out" 1 "authenticated_only: the genuine copy"

# ---------------------------------------------------------------- 2. redelivery by the same sender
n=$(q "SELECT count(*) FROM tlsrpt.report")
ingest "$W/genuine1.eml" "${REQ[@]}"
expect_ok "the genuine mail again"
post "$W/forged1.json" 203.0.113.66
is "$rc/$status" "0/Status: 200 OK" "the forged POST again from the same address: already stored"
is "$(q "SELECT count(*) FROM tlsrpt.report")" "$n" "redeliveries by the same senders add nothing"
ingest_noin "$W/genuine1.json"
is "$rc" 0 "the genuine report as a .json file (backfill): exit 0"
is "$(q "SELECT count(*) FROM tlsrpt.report")" "$n" "a report file of a stored report adds nothing"

# ---------------------------------------------------------------- 3. the same report from other unauthenticated senders
post "$W/forged1.json" 198.51.100.9
is "$rc/$status" "0/Status: 201 Created" "the same report posted from another address: stored"
ingest "$W/unsigned1.eml"
expect_ok "an unsigned copy by mail (trust = none)"
is "$(of "$ID1")" "https:203.0.113.66/f/t dkim:reports.victim-reporter.example/t/f https:198.51.100.9/f/t mail:victim-reporter.example/f/t" \
	"each unauthenticated copy stored after an authenticated one is shadowed at once"
is "$(dd)" "1000/100/1" "daily_domain: still the genuine numbers, once"

# two unauthenticated senders and no authenticated copy: the first counts
report "${DAY}T00:00:09Z_example.org" 500 yes >"$W/plain.json"
post "$W/plain.json" 192.0.2.200
post "$W/plain.json" 2001:db8::7
is "$rc/$status" "0/Status: 201 Created" "an unauthenticated report posted from a second address (IPv6): stored"
is "$(of "${DAY}T00:00:09Z_example.org")" "https:192.0.2.200/f/f https:2001:db8::7/f/t" \
	"two unauthenticated copies: the first counts, the second is shadowed"
# 1000 + (500 + 100) sessions, 100 + 100 failed, 2 reports
is "$(dd)" "1600/200/2" "daily_domain: the second report counted once"
is "$(fd)" 200 "failure_daily: its failures once"
same_as_plain "two unauthenticated copies"

# no report-id and no dates (told apart by content): the same rules
printf '{"organization-name": "No Id Org", "policies": [{"policy": {"policy-type": "no-policy-found",
 "policy-domain": "example.net"}, "summary": {"total-successful-session-count": 5,
 "total-failure-session-count": 0}}]}\n' >"$W/noid.json"
post "$W/noid.json" 192.0.2.50
post "$W/noid.json" 192.0.2.51
post "$W/noid.json" 192.0.2.51
is "$rc/$status" "0/Status: 200 OK" "no report-id: the same address again is a duplicate"
is "$(q "SELECT string_agg(sender || '/' || shadowed, ' ' ORDER BY id) FROM tlsrpt.report
	WHERE organization_name = 'No Id Org'")" "https:192.0.2.50/false https:192.0.2.51/true" \
	"no report-id: a second address's copy is stored and shadowed"

# a REMOTE_ADDR that is not an address: stored, no client address (+ 10 sessions, + 1 report)
report "${DAY}T00:00:10Z_example.org" 10 no >"$W/noaddr.json"
post "$W/noaddr.json" "not-an-address"
is "$(q "SELECT concat_ws('/', coalesce(host(client_addr), 'NULL'), sender) FROM tlsrpt.report
	WHERE report_id = '${DAY}T00:00:10Z_example.org'")" "NULL/https:" "an unreadable REMOTE_ADDR: client_addr NULL"

# ---------------------------------------------------------------- 4. the forged copy rolled up before the genuine one came
post "$W/forged2.json" 203.0.113.66
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(dd)" "2610/200/4" "forged POST of a second report, rolled up: 1000 more sessions, none failed"
ingest "$W/genuine2.eml" "${REQ[@]}"
expect_ok "the genuine mail of the second report"
is "$(of "$ID2")" "https:203.0.113.66/f/t dkim:reports.victim-reporter.example/t/f" "the rolled-up forged copy is shadowed"
is "$(q "SELECT rebuild FROM tlsrpt.rollup_state")" t "the all-time rollups are marked for a rebuild"
is "$(dd)" "2610/300/4" "daily_domain at once: the genuine numbers instead (1000 sessions, 100 failed)"
is "$(fd)" 300 "failure_daily at once: its 100 failed sessions"
same_as_plain "a rolled-up copy shadowed"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(dd)" "2610/300/4" "after refresh(): the same"
is "$(q "SELECT rebuild FROM tlsrpt.rollup_state")" f "after refresh(): rebuilt"
is "$(q "SELECT reports FROM tlsrpt.latest_report WHERE organization_name = 'Victim Reporter'")" 4 \
	"after refresh(): latest_report counts 4 reports (one copy each)"
is "$(q "SELECT reports FROM tlsrpt.reporter_ledger WHERE organization_name = 'Victim Reporter'")" 4 \
	"after refresh(): reporter_ledger counts 4 reports (one copy each)"
same_as_plain "after the rebuild"

# ---------------------------------------------------------------- 5. a mail signed by the attacker's own domain
ingest "$W/forged3.eml" "${REQ[@]}"
expect_ok "a mail signed and aligned by evil.example, claiming the victim's organization"
is "$(of "$ID3")" "dkim:evil.example/t/f" "stored, authenticated as evil.example"
ingest "$W/genuine3.eml" "${REQ[@]}"
expect_ok "the genuine mail after it"
is "$(of "$ID3")" "dkim:evil.example/t/f dkim:reports.victim-reporter.example/t/f" \
	"the genuine one is stored too: two authenticated senders, neither shadows the other"
is "$(failed_rows "$ID3")" "2/100" "its failures are in the tables"
# both count: + 1000 (forged) + 1000 (genuine) sessions, + 100 failed, + 2 reports
is "$(dd)" "4610/400/6" "daily_domain: both authenticated reports count"
is "$(q "SELECT string_agg(DISTINCT dkim_domain, ' ') FROM tlsrpt.scoped_report
	WHERE organization_name = 'Victim Reporter' AND authenticated")" "evil.example reports.victim-reporter.example" \
	"scoped_report says who authenticated each"
same_as_plain "two authenticated senders"

# ---------------------------------------------------------------- 6. copies arriving at the same moment
report "${DAY}T00:00:20Z_example.org" 700 yes >"$W/race.json"
pids=()
for i in 1 2 3 4 5 6; do
	( env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+json \
		CONTENT_LENGTH="$(stat -c %s "$W/race.json")" REMOTE_ADDR="192.0.2.3$i" "$BIN" <"$W/race.json" \
		>"$W/race.$i.out" 2>&1 ) &
	pids+=($!)
done
wait "${pids[@]}"
is "$(cat "$W"/race.*.out | grep -c '^Status: 201')" 6 "six copies posted at once from six addresses: six answers 201"
is "$(q "SELECT count(*) || '/' || count(*) FILTER (WHERE NOT shadowed) FROM tlsrpt.report
	WHERE report_id = '${DAY}T00:00:20Z_example.org'")" "6/1" "six copies stored, exactly one counts"
# + 700 + 100 sessions, + 100 failed, + 1 report
is "$(dd)" "5410/500/7" "daily_domain: counted once"

# A copy whose identity's lock another transaction holds waits for it, then
# sees what that transaction stored (migration 10: the lock is a statement of
# its own, before the report statement): here another sender's copy, stored
# and committed while this one waited, so this one is shadowed. Without the
# lock, or with the report statement's view taken before it, both would count.
RID="${DAY}T00:00:30Z_example.org"
report "$RID" 300 no >"$W/held.json"
psql -X -q -v ON_ERROR_STOP=1 >"$W/held.out" 2>&1 <<SQL &
BEGIN;
SELECT pg_advisory_xact_lock(8460, tlsrpt.report_lock_key('Victim Reporter', '$RID', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z'));
INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, source, client_addr, raw, period_month)
VALUES ('Victim Reporter', '$RID', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z', 'https', '192.0.2.40', '{}',
        tlsrpt.period_month('${DAY}T23:59:59Z'));
SELECT pg_sleep(2);
COMMIT;
SQL
held=$!
advisory_wait true >/dev/null
post "$W/held.json" 192.0.2.41
wait "$held"
is "$rc/$status" "0/Status: 201 Created" "a copy posted while its identity's lock is held"
is "$(q "SELECT string_agg(sender || '/' || shadowed, ' ' ORDER BY id) FROM tlsrpt.report WHERE report_id = '$RID'")" \
	"https:192.0.2.40/false https:192.0.2.41/true" \
	"it waited for the lock and saw the copy committed meanwhile: it is shadowed"

# A copy delivered alone goes first as its report's first copy (migration 14):
# one statement that takes the identity's lock before it inserts. Here the
# lock's holder stores a copy the usual way only after that statement has
# started: the statement waits for the lock, then finds the copy, stores
# nothing, and the delivery goes again the usual way (shadowed). Without the
# lock in that statement it would store its copy first and the holder's
# insert would fail.
RID="${DAY}T00:00:40Z_example.org"
report "$RID" 300 no >"$W/late.json"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>"$W/late.out" <<SQL &
BEGIN;
SELECT pg_advisory_xact_lock(8460, tlsrpt.report_lock_key('Victim Reporter', '$RID', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z'));
SELECT pg_sleep(2);
INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, source, client_addr, raw, period_month)
VALUES ('Victim Reporter', '$RID', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z', 'https', '192.0.2.50', '{}',
        tlsrpt.period_month('${DAY}T23:59:59Z'));
COMMIT;
SQL
held=$!
advisory_wait true >/dev/null
( post "$W/late.json" 192.0.2.51; exit "$rc" ) &
poster=$!
is "$(advisory_wait false)" 1 "a first copy waits for its identity's lock"
wait "$poster"
rc=$?
wait "$held"
is "$?/$(cat "$W/late.out")" "0/" "the lock's holder stored its copy after the first copy's statement began"
is "$rc/$(head -n 1 "$W/out" | tr -d '\r')" "0/Status: 201 Created" "the copy posted meanwhile is stored"
is "$(q "SELECT string_agg(sender || '/' || shadowed || '/' || first_copy, ' ' ORDER BY id) FROM tlsrpt.report
	WHERE report_id = '$RID'")" "https:192.0.2.50/false/true https:192.0.2.51/true/false" \
	"it saw the holder's copy: it went the usual way, shadowed, not the first copy"
is "$(q "SELECT count(*) FILTER (WHERE first_copy) = count(DISTINCT (organization_name, report_id, date_start, date_end))
	        AND count(*) FILTER (WHERE first_copy) < count(*) AND count(*) FILTER (WHERE first_copy) > 5
	FROM tlsrpt.report WHERE content_key IS NULL AND organization_name IS NOT NULL AND date_start IS NOT NULL
	AND date_end IS NOT NULL")" t "one first copy of each report, however its copies came"

# ---------------------------------------------------------------- roles
# the delivery's role (--init-db --grant) shadows what it must; a reader
# (--grant-reader) cannot shadow anything through tlsrpt.report_claim()
q "CREATE ROLE id_writer LOGIN" >/dev/null
q "CREATE ROLE id_reader LOGIN" >/dev/null
q "CREATE DATABASE roles" >/dev/null
ingest_noin --init-db --grant id_writer --grant-reader id_reader -d "$(pg_conninfo roles)"
expect_quiet "--init-db --grant --grant-reader"
post_as() { # ROLE FILE.json ADDRESS
	env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+json \
		CONTENT_LENGTH="$(stat -c %s "$2")" REMOTE_ADDR="$3" "$BIN" -d "$(pg_conninfo roles) user=$1" \
		<"$2" >"$W/out" 2>"$W/err"
	rc=$?
	status=$(head -n 1 "$W/out" | tr -d '\r')
}
post_as id_writer "$W/forged1.json" 203.0.113.66
is "$rc/$status" "0/Status: 201 Created" "the writer role: forged POST stored"
ingest "$W/genuine1.eml" "${REQ[@]}" -d "$(pg_conninfo roles) user=id_writer"
expect_ok "the writer role: the genuine mail after it"
is "$(q "SELECT string_agg(sender || '/' || shadowed, ' ' ORDER BY id) FROM tlsrpt.report" -d roles)" \
	"https:203.0.113.66/true dkim:reports.victim-reporter.example/false" "the writer role: the forged copy is shadowed"
post_as id_writer "$W/forged2.json" 203.0.113.66
out=$(q "SELECT tlsrpt.report_claim('Victim Reporter', '$ID2', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z', '{}',
	'pass', true, 'reader.example', 'mail', NULL, 'reader.example')" -d "$(pg_conninfo roles) user=id_reader")
like "$out" "permission denied" "the reader role cannot shadow a report through report_claim()"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE shadowed" -d roles)" 1 "nothing more shadowed"

# ---------------------------------------------------------------- the migration
# (a partitioned schema's includes the partition key, a function of date_end: doc/scaling.md)
key=
[ "${TLSRPT_TEST_PARTITIONED:-0}" = 1 ] && key=", period_month"
is "$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'report_identity'
	AND conrelid = 'tlsrpt.report'::regclass")" \
	"UNIQUE NULLS NOT DISTINCT (organization_name, report_id, date_start, date_end, content_key, sender$key)" \
	"the identity constraint includes the sender"
# a database at version 5 with reports in it: --init-db gives them their sender
q "CREATE DATABASE v5" >/dev/null
{
	schema_at 5
	echo "INSERT INTO tlsrpt.report (organization_name, report_id, source, raw) VALUES ('Old', 'posted', 'https', '{}');"
	echo "INSERT INTO tlsrpt.report (organization_name, report_id, submitter, raw) VALUES ('Old', 'mailed', 'Old.Example', '{}');"
	echo "INSERT INTO tlsrpt.report (organization_name, report_id, submitter, raw, dkim_result, dkim_domain, dkim_aligned)
	      VALUES ('Old', 'signed', 'old.example', '{}', 'pass', 'old.example', true);"
	echo "CREATE ROLE id_old LOGIN; GRANT USAGE ON SCHEMA tlsrpt TO id_old;"
	echo "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tlsrpt TO id_old;"
	echo "COMMIT;"
} >"$W/v5.sql"
psql -X -q -v ON_ERROR_STOP=1 -d v5 -f "$W/v5.sql" >/dev/null 2>&1
ok_if "a database at schema version 5, with reports" $?
TLSRPT_TEST_PARTITIONED=0 ingest_noin --init-db -d "$(pg_conninfo v5)"
expect_quiet "--init-db upgrades it"
is "$(q "SELECT string_agg(report_id || '=' || sender || '/' || shadowed, ' ' ORDER BY id) FROM tlsrpt.report" -d v5)" \
	"posted=https:/false mailed=mail:old.example/false signed=dkim:old.example/false" "the old reports have their sender, none shadowed"
is "$(q "SELECT has_column_privilege('id_old', 'tlsrpt.report', 'shadowed', 'UPDATE')
	        AND has_column_privilege('id_old', 'tlsrpt.rollup_state', 'rebuild', 'UPDATE')
	        AND NOT has_column_privilege('id_old', 'tlsrpt.report', 'raw', 'UPDATE')" -d v5)" t \
	"a writer granted before the upgrade may now mark copies shadowed, and update nothing else"

# a database at version 13 with two copies of one report: --init-db marks the
# first (migration 14), and a third copy goes the usual way, shadowed
q "CREATE DATABASE v13" >/dev/null
{
	schema_at 13
	for who in 192.0.2.60 192.0.2.61; do
		echo "INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, source, client_addr, raw)
		      VALUES ('Victim Reporter', 'old-1', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z', 'https', '$who', '{}');"
	done
	echo "INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end, source, client_addr, raw)
	      VALUES ('Victim Reporter', 'old-2', '${DAY}T00:00:00Z', '${DAY}T23:59:59Z', 'https', '192.0.2.60', '{}');"
	echo "COMMIT;"
} >"$W/v13.sql"
psql -X -q -v ON_ERROR_STOP=1 -d v13 -f "$W/v13.sql" >/dev/null 2>&1
ok_if "a database at schema version 13, with two copies of one report" $?
TLSRPT_TEST_PARTITIONED=0 ingest_noin --init-db -d "$(pg_conninfo v13)"
expect_quiet "--init-db upgrades it to version 14"
is "$(q "SELECT string_agg(report_id || '=' || host(client_addr) || '/' || first_copy, ' ' ORDER BY id) FROM tlsrpt.report" -d v13)" \
	"old-1=192.0.2.60/true old-1=192.0.2.61/false old-2=192.0.2.60/true" "the first copy of each report is marked, the later one not"
report old-1 300 no >"$W/old1.json"
PGDATABASE=v13 post "$W/old1.json" 192.0.2.62
is "$rc/$status" "0/Status: 201 Created" "a third copy of the old report is stored"
is "$(q "SELECT string_agg(host(client_addr) || '/' || shadowed || '/' || first_copy, ' ' ORDER BY id) FROM tlsrpt.report
	WHERE report_id = 'old-1'" -d v13)" "192.0.2.60/false/true 192.0.2.61/false/false 192.0.2.62/true/false" \
	"it found the old copies: shadowed, not the first copy"

done_testing
