#!/bin/bash
# summary-t.sh - tlsrpt-ingest --summary [--days N] [--domain D] on the
# populated database of tests/data/views/populate.sh: the numbers, the result
# types with their MX hosts and advice, 80 columns, the options and failures.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

pg_start
ok "populated database" views_populate

# lines of $W/out from the line equal to $1 up to the next empty line
block() {
	awk -v h="$1" '$0 == h { on = 1 } on && $0 == "" { exit } on' "$W/out"
}
fits80() {
	awk 'length($0) > 80 { print NR ": " length($0) ": " $0; bad = 1 } END { exit bad }' "$W/out"
}

# ---------------------------------------------------------------- the last 7 days
ingest_noin --summary
expect_quiet "--summary"
like "$(head -n 1 "$W/out")" "^TLS-RPT summary, last 7 days: reports ending after [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC$" \
	"--summary: the heading names the period"
ok "--summary: every line fits in 80 columns" fits80
is "$(grep -v '^ ' "$W/out" | grep -v '^$' | tail -n +2)" "example.org
example.net" "--summary: the domains of the last 7 days, most failures first"
is "$(block example.org)" "example.org
  6120 sessions, 620 failed (10.1 %); 8 reports from 2 reporters
  reporters: Google Inc., Mail.ru
  certificate-expired: 300 failed sessions
    MX: mx2.example.org (300)
    fix: renew the certificate on that MX and reload the MTA
  starttls-not-supported: 200 failed sessions
    MX: mx1.example.org (200)
    fix: enable STARTTLS on that MX (certificate and key loaded, port 25)
  validation-failure: 120 failed sessions
    MX: mx2.example.org (120)
    fix: check the certificate chain and the policy against that MX; see
         failure_reason_code" "--summary: example.org, sessions, rate, result types, MX, advice"
is "$(block example.net | head -n 5)" "example.net
  1005 sessions, 5 failed (0.5 %); 5 reports from 1 reporter
  reporters: Microsoft Corporation
  tlsa-invalid: 5 failed sessions
    MX: mx.example.net (5)" "--summary: example.net"
like "$(block example.net | tail -n 2 | tr -s ' \n' '  ')" "fix: fix the TLSA record" "--summary: advice for tlsa-invalid"

# ---------------------------------------------------------------- --days, --domain
ingest_noin --summary --days 1
expect_quiet "--summary --days 1"
like "$(head -n 1 "$W/out")" "last 1 day: " "--days 1: the heading says so"
is "$(block example.org | sed -n 2p)" "  1000 sessions, 600 failed (60.0 %); 1 report from 1 reporter" "--days 1: yesterday only"
is "$(block example.org | grep -c 'failed session')" 3 "--days 1: three result types"
is "$(block example.org | sed -n 's/^  validation-failure: //p')" "100 failed sessions" "--days 1: validation-failure of yesterday"
is "$(block example.net | sed -n 2,4p)" "  200 sessions, 0 failed (0.0 %); 1 report from 1 reporter
  reporters: Microsoft Corporation
  no failures" "--days 1: example.net, no failures"

ingest_noin --summary --days 30 --domain Example.NET
expect_quiet "--summary --days 30 --domain Example.NET"
is "$(sed -n 2p "$W/out")" "policy domain: Example.NET" "--domain: the heading names it"
is "$(grep -v '^ ' "$W/out" | grep -v '^$' | tail -n +3)" "example.net" "--domain: that domain only, case-insensitively"
is "$(block example.net | sed -n 2p)" "  1005 sessions, 5 failed (0.5 %); 5 reports from 1 reporter" "--domain: its numbers"

ingest_noin --summary --days 30
is "$(block example.org | sed -n 2,3p)" "  6277 sessions, 620 failed (9.9 %); 12 reports from 3 reporters
  reporters: Google Inc., Mail.ru, Single Sender" "--days 30: example.org over 30 days"
is "$(grep -c "^[a-z]" "$W/out")" 6 "--days 30: six policy domains"

# --authenticated: no report was DKIM-checked, then one example.net report is
ingest_noin --summary --days 30 --authenticated
expect_quiet "--summary --authenticated"
like "$(cat "$W/out")" "only reports with an aligned DKIM pass" "--authenticated: the heading says so"
is "$(tail -n 1 "$W/out")" "no reports in that period" "--authenticated: nothing authenticated yet"
psql -X -qAt -c "UPDATE tlsrpt.report SET dkim_result = 'pass', dkim_aligned = true
  WHERE id = (SELECT min(r.id) FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id
              WHERE p.policy_domain = 'example.net' AND r.date_end > now() - interval '30 days')" >/dev/null
ingest_noin --summary --days 30 --authenticated
is "$(grep -v '^ ' "$W/out" | grep -v '^$' | tail -n +3)" "example.net" "--authenticated: only the authenticated report's domain"
like "$(block example.net | sed -n 2p)" "; 1 report from 1 reporter$" "--authenticated: one report"
psql -X -qAt -c "UPDATE tlsrpt.report SET dkim_result = NULL, dkim_aligned = NULL" >/dev/null
ingest_noin --authenticated
is "$rc" 64 "--authenticated without --summary: usage error"

ingest_noin --summary --domain nowhere.example
expect_quiet "--summary --domain nowhere.example"
is "$(tail -n 1 "$W/out")" "no reports in that period" "--domain without reports: says so"

# ---------------------------------------------------------------- long lists wrap in 80 columns
{
	printf '{"organization-name":"Wrap Tester","date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},"report-id":"wrap-1","policies":[' "$(vday 1)" "$(vday 1)"
	printf '%s' "$(vsts wrap.example enforce 86400 mx.wrap.example 10 66 \
		"$(vfail certificate-not-trusted 192.0.2.9 a-very-long-receiving-mx-host-name-number-one.wrap.example 192.0.2.31 3)" \
		"$(vfail certificate-not-trusted 192.0.2.9 a-very-long-receiving-mx-host-name-number-two.wrap.example 192.0.2.32 3)" \
		"$(vfail certificate-not-trusted 192.0.2.9 a-very-long-receiving-mx-host-name-number-three.wrap.example 192.0.2.33 3)" \
		"$(vfail certificate-not-trusted 192.0.2.9 a-very-long-receiving-mx-host-name-number-four.wrap.example 192.0.2.34 3)" \
		"$(vfail sts-policy-fetch-error 192.0.2.9 mx.wrap.example 192.0.2.30 20)" \
		"$(vfail sts-policy-invalid 192.0.2.9 mx.wrap.example 192.0.2.30 10)" \
		"$(vfail sts-webpki-invalid 192.0.2.9 mx.wrap.example 192.0.2.30 9)" \
		"$(vfail dnssec-invalid 192.0.2.9 mx.wrap.example 192.0.2.30 8)" \
		"$(vfail dane-required 192.0.2.9 mx.wrap.example 192.0.2.30 4)" \
		"$(vfail some-new-type 192.0.2.9 mx.wrap.example 192.0.2.30 2)")"
	printf ']}\n'
} >"$W/wrap.json"
ingest_noin -d "$(pg_conninfo)" "$W/wrap.json"
is "$rc" 0 "a report with seven result types and long MX names stored"
ingest_noin --summary --domain wrap.example
expect_quiet "--summary --domain wrap.example"
ok "long MX lists: every line fits in 80 columns" fits80
is "$(grep -c 'failed session' "$W/out")" 6 "the top five result types, then the rest in one line"
is "$(grep '^  [a-z-]*: [0-9]* failed session' "$W/out" | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')" \
	"sts-policy-fetch-error certificate-not-trusted sts-policy-invalid sts-webpki-invalid dnssec-invalid " \
	"result types by failed sessions"
is "$(grep '^  and ' "$W/out")" "  and 2 more result types (6 failed sessions)" "the rest, counted"
mx=$(awk '/^  certificate-not-trusted:/ { on = 1; next } on && /^    fix:/ { exit } on' "$W/out" | tr -s ' \n' '  ')
for n in one two three four; do
	like "$mx" "a-very-long-receiving-mx-host-name-number-$n\.wrap\.example \(3\)" "long MX list: host $n is there"
done
like "$(grep -A2 '^  certificate-not-trusted:' "$W/out" | tail -n 1)" "^        a-very-long" "long MX list: continued, indented"

# ---------------------------------------------------------------- usage and failures
ingest_noin --summary --days 0
expect_fail "--days 0" 64 5
ingest_noin --summary --days many
expect_fail "--days many" 64 5
ingest_noin --days 3
expect_fail "--days without --summary" 64 5
ingest_noin --summary "$W/wrap.json"
expect_fail "--summary with a file" 64 5
q "CREATE DATABASE fresh" >/dev/null
ingest_noin --summary -d "$(pg_conninfo fresh)"
expect_fail "--summary without the schema" 78 5
like "$(cat "$W/err")" "--init-db" "--summary without the schema: says to run --init-db"
ok "PostgreSQL stopped" pg_stop
ingest_noin --summary
expect_fail "--summary while PostgreSQL is down" 75 4
ingest_noin --purge-older-than 30
expect_fail "--purge-older-than while PostgreSQL is down" 75 4

done_testing
