#!/bin/bash
# db-t.sh - tlsrpt-ingest against a real, throwaway PostgreSQL 15: the schema,
# stored rows field by field, duplicates, concurrency, rejected mail, the
# server going away, and where the connection settings come from.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

[ -z "$DEFAULT_CONF_DB" ] || skip_all "$DEFAULT_CONF names a database: not writing test data into it"
pg_start

count() {
	q "SELECT count(*) FROM $1"
}
hex() {
	od -An -v -tx1 "$@" | tr -d ' \n'
}

# ---------------------------------------------------------------- schema
ingest_noin --init-db
expect_quiet "--init-db"
is "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'tlsrpt'")" 1 "schema tlsrpt exists"
nmig=$(ls "$top_srcdir"/src/sql/[0-9]*.sql 2>/dev/null | wc -l)
v1=$(q "SELECT max(version) FROM tlsrpt.schema_version")
is "$v1" "$nmig" "schema_version records version $nmig"
rows1=$(count tlsrpt.schema_version)
ingest_noin --init-db
expect_quiet "--init-db again"
is "$(q "SELECT max(version) FROM tlsrpt.schema_version")" "$v1" "version unchanged after a second --init-db"
is "$(count tlsrpt.schema_version)" "$rows1" "no extra schema_version rows after a second --init-db"
for t in report policy failure rejected; do
	is "$(q "SELECT to_regclass('tlsrpt.$t') IS NOT NULL")" t "table tlsrpt.$t exists"
done

ingest_noin -n
expect_quiet "-n with the server up"

# no schema: a fresh database without --init-db
q "CREATE DATABASE fresh" >/dev/null
ingest "$DATA/google.eml" -d "$(pg_conninfo fresh)"
expect_fail "delivery into a database without the schema" 75 4
is "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'tlsrpt'" -d fresh)" 0 \
	"delivery did not create the schema"

# an older schema (version 1 only, set up as --init-db of version 1 did) is
# refused when delivering, and --init-db upgrades it keeping the rows
q "CREATE DATABASE upgrade" >/dev/null
{
	echo "BEGIN;"
	echo "CREATE SCHEMA tlsrpt;"
	echo "CREATE TABLE tlsrpt.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());"
	cat "$top_srcdir/src/sql/001-base.sql"
	echo "INSERT INTO tlsrpt.schema_version (version) VALUES (1);"
	echo "INSERT INTO tlsrpt.report (organization_name, report_id, raw) VALUES ('Old Org', 'from-version-1', '{}');"
	echo "COMMIT;"
} >"$W/v1.sql"
psql -X -q -v ON_ERROR_STOP=1 -d upgrade -f "$W/v1.sql" >/dev/null 2>&1
ok_if "a database at schema version 1" $?
if [ "$nmig" -gt 1 ]; then
	ingest "$DATA/google.eml" -d "$(pg_conninfo upgrade)"
	expect_fail "delivery into a database at schema version 1" 75 4
	is "$(q "SELECT count(*) FROM tlsrpt.report" -d upgrade)" 1 "nothing stored in the old schema"
	# (a plain schema stays plain: no --partitioned under TLSRPT_TEST_PARTITIONED=1)
	TLSRPT_TEST_PARTITIONED=0 ingest_noin --init-db -d "$(pg_conninfo upgrade)"
	expect_quiet "--init-db upgrades version 1"
	is "$(q "SELECT max(version) FROM tlsrpt.schema_version" -d upgrade)" "$nmig" "upgraded to version $nmig"
	is "$(q "SELECT organization_name FROM tlsrpt.report WHERE report_id = 'from-version-1'" -d upgrade)" "Old Org" \
		"the upgrade kept the old rows"
	ingest "$DATA/google.eml" -d "$(pg_conninfo upgrade)"
	expect_ok "delivery after the upgrade"
	is "$(q "SELECT count(*) FROM tlsrpt.report" -d upgrade)" 2 "stored after the upgrade"
else
	skip "only one migration" 12
fi

# a schema newer than the program: --init-db refuses (78), -n complains, and a
# delivery either stores (the tables still fit) or waits (75), never bounces
q "CREATE DATABASE newer" >/dev/null
ingest_noin --init-db -d "$(pg_conninfo newer)"
q "INSERT INTO tlsrpt.schema_version (version) VALUES (999)" -d newer >/dev/null
ingest "$DATA/google.eml" -d "$(pg_conninfo newer)"
like "$rc" '^(0|75)$' "delivery into a schema newer than the program: exit 0 or 75"
ingest_noin -n -d "$(pg_conninfo newer)"
ok "-n on a schema newer than the program: fails" test "$rc" != 0
is "$(grep -c '' "$W/err")" 1 "-n on a schema newer than the program: one line on stderr"
ingest_noin --init-db -d "$(pg_conninfo newer)"
expect_fail "--init-db on a schema newer than the program" 78 "[45]"

# --init-db --grant: a role that may only write reports can deliver
q "CREATE ROLE tlsrpt_writer LOGIN" >/dev/null
q "CREATE DATABASE granted" >/dev/null
ingest_noin --init-db --grant tlsrpt_writer -d "$(pg_conninfo granted)"
expect_quiet "--init-db --grant tlsrpt_writer"
ingest "$DATA/google.eml" -d "host=$PGHOST port=$PGPORT user=tlsrpt_writer dbname=granted"
expect_ok "delivery as the granted role"
ingest "$DATA/google.eml" -d "host=$PGHOST port=$PGPORT user=tlsrpt_writer dbname=granted"
expect_ok "redelivery as the granted role"
ingest "$DATA/cron.eml" -d "host=$PGHOST port=$PGPORT user=tlsrpt_writer dbname=granted"
expect_ok "a rejected mail as the granted role"
is "$(q "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.rejected)" -d granted)" "1/1" \
	"the granted role stored one report and one rejected"
# a role without the grant cannot: that is for the administrator, so 75
q "CREATE ROLE tlsrpt_nobody LOGIN" >/dev/null
ingest "$DATA/google.eml" -d "host=$PGHOST port=$PGPORT user=tlsrpt_nobody dbname=granted"
expect_fail "delivery as a role without privileges" 75 4

# ---------------------------------------------------------------- a report mail
RID=2024-03-01T00:00:00Z_example.org
ingest "$DATA/google.eml"
expect_ok "deliver a Google-like report mail"
is "$(count tlsrpt.report)" 1 "one report row"
r="FROM tlsrpt.report WHERE report_id = '$RID'"
is "$(q "SELECT organization_name $r")" "Google Inc." "report organization_name"
is "$(q "SELECT contact_info $r")" "smtp-tls-reporting@google.com" "report contact_info"
is "$(q "SELECT report_id $r")" "$RID" "report report_id"
is "$(q "SELECT to_char(date_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') $r")" "2024-03-01 00:00:00" "report date_start (UTC)"
is "$(q "SELECT to_char(date_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') $r")" "2024-03-01 23:59:59" "report date_end (UTC)"
is "$(q "SELECT date_start = '2024-03-01T00:00:00Z'::timestamptz $r")" t "report date_start is that instant"
mid=$(q "SELECT message_id $r")
mid=${mid#<}
is "${mid%>}" "4c2a6b0e.5f1d.google-tlsrpt@google.com" "report message_id"
is "$(q "SELECT report_domain $r")" example.org "report report_domain"
is "$(q "SELECT submitter $r")" google.com "report submitter"
is "$(q "SELECT filename $r")" 'google.com!example.org!1709251200!1709337599!001.json.gz' "report filename"
is "$(q "SELECT source $r")" mail "report source = mail"
is "$(q "SELECT raw = '$(sed "s/'/''/g" "$DATA/google.json")'::jsonb $r")" t "report raw is the JSON report"

p="FROM tlsrpt.policy WHERE report = (SELECT id $r)"
is "$(q "SELECT count(*) $p")" 2 "two policy rows"
is "$(q "SELECT policy_type || '|' || policy_domain $p ORDER BY id")" \
	"sts|example.org
no-policy-found|mail.example.org" "policy_type and policy_domain, in order"
sts="$p AND policy_type = 'sts'"
is "$(q "SELECT array_to_json(policy_string) $sts")" \
	'["version: STSv1","mode: enforce","mx: mx1.example.org","mx: mx2.example.org","max_age: 604800"]' "policy_string array"
is "$(q "SELECT array_to_json(mx_host) $sts")" '["mx1.example.org","mx2.example.org"]' "mx_host array"
is "$(q "SELECT total_successful_session_count $sts")" 4213 "total_successful_session_count"
is "$(q "SELECT total_failure_session_count $sts")" 7 "total_failure_session_count"
npf="$p AND policy_type = 'no-policy-found'"
is "$(q "SELECT coalesce(cardinality(policy_string), 0) $npf")" 0 "no-policy-found: no policy_string"
is "$(q "SELECT coalesce(cardinality(mx_host), 0) $npf")" 0 "no-policy-found: no mx_host"
is "$(q "SELECT total_successful_session_count || '|' || total_failure_session_count $npf")" "12|0" "no-policy-found counts"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id $npf)")" 0 "no-policy-found: no failures"

f="FROM tlsrpt.failure WHERE policy = (SELECT id $sts)"
is "$(q "SELECT count(*) $f")" 2 "two failure rows"
f1="$f AND result_type = 'certificate-expired'"
f2="$f AND result_type = 'starttls-not-supported'"
is "$(q "SELECT count(*) $f1")" 1 "failure result_type certificate-expired"
is "$(q "SELECT host(sending_mta_ip) $f1")" 209.85.220.41 "failure sending_mta_ip (inet)"
is "$(q "SELECT receiving_mx_hostname $f1")" mx2.example.org "failure receiving_mx_hostname"
is "$(q "SELECT receiving_mx_helo $f1")" NULL "failure receiving_mx_helo absent"
is "$(q "SELECT receiving_ip $f1")" NULL "failure receiving_ip absent"
is "$(q "SELECT failed_session_count $f1")" 5 "failure failed_session_count"
is "$(q "SELECT additional_information $f1")" https://example.org/tls-help "failure additional_information"
is "$(q "SELECT failure_reason_code $f1")" X509_V_ERR_CERT_HAS_EXPIRED "failure failure_reason_code"
is "$(q "SELECT count(*) $f2")" 1 "failure result_type starttls-not-supported"
is "$(q "SELECT host(sending_mta_ip) || '|' || family(sending_mta_ip) $f2")" "2001:4860:4864:20::2d|6" "failure IPv6 sending_mta_ip (inet)"
is "$(q "SELECT receiving_mx_hostname || '|' || receiving_mx_helo || '|' || host(receiving_ip) $f2")" \
	"mx1.example.org|mx1.example.org|192.0.2.25" "failure receiving_mx_hostname, helo, receiving_ip"
is "$(q "SELECT failed_session_count || '|' || coalesce(additional_information, 'NULL') || '|' || coalesce(failure_reason_code, 'NULL') $f2")" \
	"2|NULL|NULL" "failure count, no additional_information or failure_reason_code"

before="$(count tlsrpt.report)/$(count tlsrpt.policy)/$(count tlsrpt.failure)/$(count tlsrpt.rejected)"
ingest "$DATA/google.eml"
expect_ok "redeliver the same mail"
is "$(count tlsrpt.report)/$(count tlsrpt.policy)/$(count tlsrpt.failure)/$(count tlsrpt.rejected)" "$before" \
	"redelivery adds no rows (report/policy/failure/rejected)"

ingest "$DATA/google.eml" -v
is "$rc" 0 "redelivery with -v: exit 0"
is "$(cat "$W/out")" "" "redelivery with -v: nothing on stdout"
like "$(cat "$W/err")" "." "redelivery with -v: says what it did on stderr"

# ---------------------------------------------------------------- files
FRID=133540000000000001+example.org
ingest_noin "$DATA/file-report.json"
expect_ok "store a .json file"
fr="FROM tlsrpt.report WHERE report_id = '$FRID'"
is "$(q "SELECT count(*) $fr")" 1 ".json file: stored"
is "$(q "SELECT source $fr")" file ".json file: source = file"
is "$(q "SELECT organization_name $fr")" "Example Mail Services" ".json file: organization_name"
is "$(q "SELECT to_char(date_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '|' || to_char(date_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') $fr")" \
	"2024-03-01 22:00:00|2024-03-02 22:00:00" ".json file: +02:00 dates stored as the right UTC instants"
is "$(q "SELECT policy_type || '|' || policy_domain || '|' || array_to_json(policy_string) FROM tlsrpt.policy WHERE report = (SELECT id $fr)")" \
	'tlsa|mx1.example.org|["3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"]' ".json file: the tlsa policy"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM tlsrpt.policy WHERE report = (SELECT id $fr))")" 1 ".json file: one failure"
like "$(q "SELECT filename $fr")" "file-report\.json$" ".json file: filename"

ingest_noin "$DATA/file-report.json.gz"
expect_ok "the same report as .json.gz"
is "$(q "SELECT count(*) $fr")" 1 ".json.gz of a stored report: still one row"

cat "$DATA/file-report.json.gz" >"$W/renamed.dat"
ingest_noin "$W/renamed.dat"
expect_ok "a .json.gz under another name (decided by content)"
is "$(q "SELECT count(*) $fr")" 1 "gzip by content: still one row"

ingest_noin "$DATA/google.json"
expect_ok "the mailed report again as a .json file"
is "$(q "SELECT count(*) $r")" 1 "same report by mail then file: one row"
is "$(q "SELECT source $r")" mail "same report by mail then file: the first one stays"

json_with_id "$DATA/google.json" stdin-dash-1 >"$W/dash.json"
ingest "$W/dash.json" -
expect_ok "a .json on stdin given as -"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'stdin-dash-1'")" 1 "- reads stdin"

# ---------------------------------------------------------------- concurrency
json_with_id "$DATA/google.json" concurrent-1 >"$W/conc.json"
mkmail -m concurrent-1@google.com "$W/conc.json" >"$W/conc.eml"
ingest_parallel 8 "$W/conc.eml" conc
is "$st" 00000000 "8 concurrent deliveries of one report all exit 0"
is "$(cat "$W"/conc.*.out)" "" "8 concurrent deliveries print nothing"
cr="FROM tlsrpt.report WHERE report_id = 'concurrent-1'"
is "$(q "SELECT count(*) $cr")" 1 "8 concurrent deliveries: one report row"
is "$(q "SELECT count(*) FROM tlsrpt.policy WHERE report IN (SELECT id $cr)")" 2 "8 concurrent deliveries: policies once"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM tlsrpt.policy WHERE report IN (SELECT id $cr))")" 2 \
	"8 concurrent deliveries: failures once"

# ---------------------------------------------------------------- rejected mail
nrej=$(count tlsrpt.rejected)
ingest "$DATA/cron.eml"
expect_ok "a non-report mail (cron output)"
is "$(count tlsrpt.rejected)" $((nrej + 1)) "non-report: one rejected row"
size=$(wc -c <"$DATA/cron.eml")
sha=$(sha256sum "$DATA/cron.eml" | cut -d' ' -f1)
rj="FROM tlsrpt.rejected WHERE id = (SELECT max(id) FROM tlsrpt.rejected)"
like "$(q "SELECT reason $rj")" "[^[:space:]]" "non-report: a reason"
is "$(q "SELECT encode(raw, 'hex') $rj")" "$(hex "$DATA/cron.eml")" "non-report: raw is the input, byte for byte"
is "$(q "SELECT raw_size || '|' || raw_truncated $rj")" "$size|false" "non-report: raw_size, not truncated"
is "$(q "SELECT digest $rj")" "$sha" "non-report: digest is the SHA-256 of the input"
is "$(q "SELECT source $rj")" mail "non-report: source = mail"
ingest "$DATA/cron.eml"
expect_ok "the non-report mail again"
is "$(count tlsrpt.rejected)" $((nrej + 1)) "non-report redelivered: no second row"

size=$(wc -c <"$DATA/cron-long.eml")
ingest "$DATA/cron-long.eml" -o max_rejected_raw=100
expect_ok "a non-report with -o max_rejected_raw=100"
is "$(count tlsrpt.rejected)" $((nrej + 2)) "max_rejected_raw: one more rejected row"
is "$(q "SELECT octet_length(raw) || '|' || raw_size || '|' || raw_truncated $rj")" "100|$size|true" \
	"max_rejected_raw=100: 100 bytes kept, raw_size is the whole, raw_truncated"
is "$(q "SELECT encode(raw, 'hex') $rj")" "$(head -c 100 "$DATA/cron-long.eml" | hex)" "max_rejected_raw=100: the first 100 bytes"

nrep=$(count tlsrpt.report)
nrej=$(count tlsrpt.rejected)
ingest "$DATA/corrupt-and-good.eml"
expect_ok "a corrupt gzip attachment next to a good one"
is "$(count tlsrpt.report)" $((nrep + 1)) "corrupt + good: one report"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'corrupt-good-1'")" 1 "corrupt + good: the good report"
is "$(count tlsrpt.rejected)" $((nrej + 1)) "corrupt + good: one rejected"
like "$(q "SELECT reason $rj")" "[^[:space:]]" "corrupt + good: the rejected row has a reason"
ingest "$DATA/corrupt-and-good.eml"
expect_ok "corrupt + good again"
is "$(count tlsrpt.report)/$(count tlsrpt.rejected)" "$((nrep + 1))/$((nrej + 1))" "corrupt + good redelivered: no new rows"

# ---------------------------------------------------------------- input shapes, settings
ingest "$DATA/mbox-from.eml"
expect_ok "a mail that starts with an mbox From_ line"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'mbox-from-line-1'")" 1 "From_ line mail: stored"
is "$(q "SELECT policy_type || '|' || total_successful_session_count FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'mbox-from-line-1')")" \
	"no-policy-found|9" "From_ line mail: its policy"

json_with_id "$DATA/google.json" crlf-1 >"$W/crlf.json"
mkmail -m crlf-1@google.com "$W/crlf.json" | sed 's/$/\r/' >"$W/crlf.eml"
ingest "$W/crlf.eml"
expect_ok "a mail with CRLF line ends"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'crlf-1'")" 1 "CRLF mail: stored"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'crlf-1'))")" \
	2 "CRLF mail: its failures"

json_with_id "$DATA/google.json" eml-file-1 >"$W/emlfile.json"
mkmail -m eml-file-1@google.com "$W/emlfile.json" >"$W/emlfile.eml"
json_with_id "$DATA/google.json" eml-file-2 >"$W/emlfile2.json"
gzip -n -c "$W/emlfile2.json" >"$W/emlfile2.json.gz"
ingest_noin "$W/emlfile.eml" "$W/emlfile2.json.gz"
expect_ok "a mail file and a .json.gz file in one run"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id IN ('eml-file-1', 'eml-file-2')")" 2 "mail file and .json.gz file: both stored"

json_with_id "$DATA/google.json" env-i-1 >"$W/envi.json"
mkmail -m env-i-1@google.com "$W/envi.json" >"$W/envi.eml"
ingest_env "$W/envi.eml" -d "host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
expect_ok "delivery with an empty environment and -d"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'env-i-1'")" 1 "env -i: stored"

q "CREATE DATABASE cfgdb" >/dev/null
printf '# test configuration\ndatabase = %s\n' "$(pg_conninfo cfgdb)" >"$W/tlsrpt.conf"
chmod 600 "$W/tlsrpt.conf"
ingest_noin -c "$W/tlsrpt.conf" --init-db
expect_quiet "--init-db with the database from the config file"
json_with_id "$DATA/google.json" config-db-1 >"$W/cfg.json"
mkmail -m config-db-1@google.com "$W/cfg.json" >"$W/cfg.eml"
ingest_env "$W/cfg.eml" -c "$W/tlsrpt.conf"
expect_ok "delivery with database = ... from the config file, empty environment"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'config-db-1'" -d cfgdb)" 1 "config file: stored in the configured database"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'config-db-1'")" 0 "config file: not in the environment's database"
ingest_noin -c "$W/tlsrpt.conf" -d "$(pg_conninfo postgres)" "$W/cfg.json"
expect_ok "-d overrides database = ... from the config file"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'config-db-1'")" 1 "-d wins over the config file"

# --dry-run stores nothing
json_with_id "$DATA/google.json" dry-run-1 >"$W/dry.json"
mkmail -m dry-run-1@google.com "$W/dry.json" >"$W/dry.eml"
before="$(count tlsrpt.report)/$(count tlsrpt.rejected)"
ingest "$W/dry.eml" --dry-run
is "$rc" 0 "--dry-run with a database: exit 0"
is "$(jget "$W/out" 1 .report_id)" dry-run-1 "--dry-run with a database: prints the report"
ingest "$DATA/cron-long.eml" --dry-run
is "$(count tlsrpt.report)/$(count tlsrpt.rejected)" "$before" "--dry-run stores nothing"

# ---------------------------------------------------------------- awkward data
# "" where an address belongs (Google, quirk A5) is no address: NULL in an inet column
sed 's/"sending-mta-ip":"209.85.220.41"/"sending-mta-ip":""/' "$DATA/google.json" | json_with_id /dev/stdin empty-ip-1 >"$W/emptyip.json"
ingest_noin "$W/emptyip.json"
expect_ok "a failure with sending-mta-ip \"\""
ei="FROM tlsrpt.failure WHERE policy IN (SELECT id FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'empty-ip-1'))"
is "$(q "SELECT count(*) $ei")" 2 "sending-mta-ip \"\": the report and both failures stored"
is "$(q "SELECT coalesce(host(sending_mta_ip), 'NULL') $ei AND result_type = 'certificate-expired'")" NULL \
	"sending-mta-ip \"\": stored as NULL"

# an address that is no address must not make the delivery fail for ever
sed 's/"sending-mta-ip":"209.85.220.41"/"sending-mta-ip":"not-an-ip"/' "$DATA/google.json" | json_with_id /dev/stdin bad-ip-1 >"$W/badip.json"
mkmail -m bad-ip-1@google.com "$W/badip.json" >"$W/badip.eml"
before=$(( $(count tlsrpt.report) + $(count tlsrpt.rejected) ))
ingest "$W/badip.eml"
expect_ok "a failure with sending-mta-ip \"not-an-ip\""
is "$(( $(count tlsrpt.report) + $(count tlsrpt.rejected) ))" $((before + 1)) "sending-mta-ip \"not-an-ip\": kept (as a report or rejected)"

# a count beyond bigint: bad data, not a temporary failure
sed 's/"total-successful-session-count":4213/"total-successful-session-count":99999999999999999999999/' "$DATA/google.json" |
	json_with_id /dev/stdin huge-count-1 >"$W/huge.json"
mkmail -m huge-count-1@google.com "$W/huge.json" >"$W/huge.eml"
before=$(( $(count tlsrpt.report) + $(count tlsrpt.rejected) ))
ingest "$W/huge.eml"
expect_ok "a session count beyond bigint"
is "$(( $(count tlsrpt.report) + $(count tlsrpt.rejected) ))" $((before + 1)) "count beyond bigint: kept (as a report or rejected)"

# Microsoft's dates without a time zone (quirk A1) are UTC
sed 's/"2024-03-01T00:00:00Z"/"2024-03-01T00:00:00"/; s/"2024-03-01T23:59:59Z"/"2024-03-01T23:59:59"/' "$DATA/google.json" |
	json_with_id /dev/stdin no-tz-1 >"$W/notz.json"
ingest_noin "$W/notz.json"
expect_ok "dates without a time zone"
is "$(q "SELECT to_char(date_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM tlsrpt.report WHERE report_id = 'no-tz-1'")" \
	"2024-03-01 00:00:00" "dates without a time zone: taken as UTC"

# no identity at all: told apart by content, so twice is still one row
printf '{"policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"anon.example"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}' >"$W/anon.json"
n0=$(count tlsrpt.report)
ingest_noin "$W/anon.json"
ingest_noin "$W/anon.json"
is "$rc" 0 "a report without organization, id or dates, twice: exit 0"
n1=$(count tlsrpt.report)
ok "a report without identity, twice: at most one row" test $((n1 - n0)) -le 1

# no report-id: one sender, one day, two policy domains -- two reports, each
# stored once however often it comes
for dom in a b; do
	printf '{"organization-name":"Tiny MTA","date-range":{"start-datetime":"2024-03-07T00:00:00Z","end-datetime":"2024-03-07T23:59:59Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"%s.tiny.example"},"summary":{"total-successful-session-count":5,"total-failure-session-count":0}}]}' "$dom" >"$W/tiny-$dom.json"
done
ingest_noin "$W/tiny-a.json" "$W/tiny-b.json"
expect_quiet "two reports without a report-id"
is "$(q "SELECT string_agg(p.policy_domain, ',' ORDER BY p.policy_domain) FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id WHERE r.organization_name = 'Tiny MTA'")" \
	"a.tiny.example,b.tiny.example" "no report-id: both reports of the day are stored"
ingest_noin "$W/tiny-b.json" "$W/tiny-a.json"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE organization_name = 'Tiny MTA'")" 2 "no report-id: redelivered, still two"

# a number jsonb cannot spell as sent, in a field nobody reads: still stored
printf '{"organization-name":"Odd Numbers","report-id":"odd-num-1","extra":1e-100000,"policies":[{"policy":{"policy-type":"sts","policy-domain":"odd.example"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}' >"$W/oddnum.json"
ingest_noin "$W/oddnum.json"
expect_quiet "a report with 1e-100000 in it"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'odd-num-1'")" 1 "1e-100000: the report is stored"

# refused by the database as data (an organization-name over the index's limit):
# kept in rejected, cut at max_rejected_raw, and not logged as a duplicate
long=$(head -c 4000 /dev/urandom | base64 -w0)
printf '{"organization-name":"%s","report-id":"too-long-1","policies":[]}' "$long" >"$W/toolong.json"
ingest_noin -v -o max_rejected_raw=100 "$W/toolong.json"
is "$rc" 0 "a report the database refuses: exit 0"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'too-long-1'")" 0 "refused report: not in tlsrpt.report"
is "$(q "SELECT octet_length(raw) || '|' || raw_truncated || '|' || (reason LIKE 'database refused%') FROM tlsrpt.rejected WHERE id = (SELECT max(id) FROM tlsrpt.rejected)")" \
	"100|true|true" "refused report: kept in rejected, cut at max_rejected_raw, with the reason"
like "$(cat "$W/err")" "rejected: source=" "refused report: logged as rejected, not as a duplicate"

# a stray GATEWAY_INTERFACE in an MTA's environment does not make a delivery a
# CGI request (that would answer HTTP and lose the mail): REQUEST_METHOD is needed too
json_with_id "$DATA/google.json" stray-cgi-1 >"$W/straycgi.json"
mkmail -m stray-cgi-1@google.com "$W/straycgi.json" >"$W/straycgi.eml"
GATEWAY_INTERFACE=CGI/1.1 ingest "$W/straycgi.eml"
expect_quiet "a delivery with GATEWAY_INTERFACE in its environment"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'stray-cgi-1'")" 1 "stray GATEWAY_INTERFACE: stored as a mail"

# a big report: thousands of failure rows in one transaction
{
	printf '{"organization-name":"Big Sender","date-range":{"start-datetime":"2024-03-06T00:00:00Z","end-datetime":"2024-03-06T23:59:59Z"},"contact-info":"tls@big.example","report-id":"big-1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.example.org","max_age: 86400"],"policy-domain":"example.org","mx-host":["mx.example.org"]},"summary":{"total-successful-session-count":1,"total-failure-session-count":3000},"failure-details":['
	for ((i = 0; i < 3000; i++)); do
		[ "$i" = 0 ] || printf ','
		printf '{"result-type":"validation-failure","sending-mta-ip":"10.%d.%d.%d","receiving-mx-hostname":"mx.example.org","failed-session-count":1}' \
			$((i / 65536)) $((i / 256 % 256)) $((i % 256))
	done
	printf ']}]}'
} >"$W/big.json"
gzip -n -c "$W/big.json" >"$W/big.json.gz"
mkmail -m big-1@big.example -s big.example "$W/big.json" >"$W/big.eml"
ingest "$W/big.eml"
expect_ok "a report with 3000 failure-details"
is "$(q "SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'big-1'))")" \
	3000 "3000 failure rows stored"

# 8 concurrent deliveries of one non-report mail: one rejected row
sed 's/logrotate:/logrotate (concurrent):/' "$DATA/cron.eml" >"$W/cron-conc.eml"
nrej=$(count tlsrpt.rejected)
ingest_parallel 8 "$W/cron-conc.eml" rconc
is "$st" 00000000 "8 concurrent deliveries of one non-report all exit 0"
is "$(count tlsrpt.rejected)" $((nrej + 1)) "8 concurrent deliveries of one non-report: one rejected row"

# ---------------------------------------------------------------- a locked table is temporary
# start_locker: another session holds ACCESS EXCLUSIVE on tlsrpt.report for 60 s
start_locker() {
	psql -X -q -c "BEGIN; LOCK TABLE tlsrpt.report IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
	locker=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'tlsrpt.report'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
stop_locker() {
	q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
	wait "$locker" 2>/dev/null
}
json_with_id "$DATA/google.json" locked-1 >"$W/locked.json"
mkmail -m locked-1@google.com "$W/locked.json" >"$W/locked.eml"
ok "tlsrpt.report locked by another session" start_locker
t0=$(date +%s)
ingest "$W/locked.eml" -o lock_timeout=1 -o statement_timeout=5
t1=$(date +%s)
expect_fail "delivery while tlsrpt.report is locked" 75 4
ok "locked table: gave up within 20 seconds" test $((t1 - t0)) -le 20
stop_locker
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'locked-1'")" 0 "locked table: nothing stored"

# the deadline ends a delivery that waits too long
ok "tlsrpt.report locked again" start_locker
t0=$(date +%s)
ingest "$W/locked.eml" -o deadline=2 -o lock_timeout=60 -o statement_timeout=60
t1=$(date +%s)
expect_fail "-o deadline=2 while tlsrpt.report is locked" 75 4
ok "deadline: gave up within 10 seconds" test $((t1 - t0)) -le 10

# the server ends our session while we wait: temporary
# (first end the session the deadline left behind, still queued for the lock)
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()" >/dev/null
for ((i = 0; i < 50; i++)); do
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")" = 0 ] && break
	sleep 0.1
done
cat "$W/locked.eml" | "${_timeout[@]}" "$BIN" -o lock_timeout=60 -o statement_timeout=60 >"$W/term.out" 2>"$W/term.err" &
victim=$!
waiting=
for ((i = 0; i < 100; i++)); do
	waiting=$(q "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1")
	[ -n "$waiting" ] && break
	sleep 0.1
done
ok "a delivery waits for the lock" test -n "$waiting"
q "SELECT pg_terminate_backend($waiting)" >/dev/null
wait "$victim"
rc=$?
stop_locker
is "$rc" 75 "session terminated by the server: exit 75"
is "$(cat "$W/term.out")" "" "session terminated: nothing on stdout"
is "$(grep -c '' "$W/term.err")" 1 "session terminated: one line on stderr"
like "$(head -n 1 "$W/term.err")" '^4\.[0-9]+\.[0-9]+ ' "session terminated: a 4.x.x status"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'locked-1'")" 0 "session terminated: nothing stored"

ingest "$W/locked.eml"
expect_ok "the same mail once the lock is gone"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'locked-1'")" 1 "stored once the lock is gone"

# ---------------------------------------------------------------- the server goes away
json_with_id "$DATA/google.json" server-down-1 >"$W/down.json"
mkmail -m server-down-1@google.com "$W/down.json" >"$W/down.eml"
ok "PostgreSQL stopped" pg_stop
ingest "$W/down.eml"
expect_fail "delivery while PostgreSQL is down" 75 4
ingest_noin -n
expect_fail "-n while PostgreSQL is down" 75 4
ok "PostgreSQL started again" pg_restart
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'server-down-1'")" 0 "nothing stored while down"
ingest "$W/down.eml"
expect_ok "the same mail after the restart"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'server-down-1'")" 1 "stored once after the restart"
ingest "$W/down.eml"
is "$rc" 0 "and again"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'server-down-1'")" 1 "still stored once"
ingest_noin -n
expect_quiet "-n after the restart"

# ---------------------------------------------------------------- usage
ingest "$DATA/google.eml" --no-such-option
expect_fail "bad option" 64 "[45]"

done_testing
