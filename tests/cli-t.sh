#!/bin/bash
# cli-t.sh - the command line without a database: options, exit statuses, the
# one-line error contract, and --dry-run output.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || command -v jq >/dev/null 2>&1 ||
	skip_all "neither python3 nor jq to read JSON"

# Nothing here may reach a server: point libpq at an empty directory.
export PGHOST=$W/nosuchserver PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
unset PGSERVICE PGSERVICEFILE PGOPTIONS PGHOSTADDR
mkdir -p "$PGHOST"
NODB="host=$W/nosuchserver port=5432 user=postgres dbname=postgres connect_timeout=5"

# --help, --version
ingest_noin --help
is "$rc" 0 "--help: exit 0"
like "$(cat "$W/out")" "tlsrpt-ingest" "--help: usage on stdout"
is "$(cat "$W/err")" "" "--help: nothing on stderr"

version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/autoconf.h" 2>/dev/null)
ingest_noin --version
is "$rc" 0 "--version: exit 0"
like "$(cat "$W/out")" "${version:-[0-9]+\.[0-9]+}" "--version: prints the version ${version}"

# usage errors: 64
ingest "$DATA/google.eml" --no-such-option
expect_fail "unknown long option" 64 "[45]"
ingest "$DATA/google.eml" -Z
expect_fail "unknown short option" 64 "[45]"

ingest "$DATA/google.eml" -o max_rejected_raw
expect_fail "-o without =VALUE" 64 "[45]"
ingest "$DATA/google.eml" -o
expect_fail "-o without an argument" 64 "[45]"

# configuration errors
ingest_noin -c "$W/no-such-file.conf" "$DATA/google.json"
expect_fail "-c missing file with FILE args" 78 "[45]"
ingest "$DATA/google.eml" -c "$W/no-such-file.conf"
expect_fail "-c missing file when delivering from stdin" 75 4

printf 'no_such_key = 1\n' >"$W/badkey.conf"
ingest_noin -c "$W/badkey.conf" "$DATA/google.json"
expect_fail "unknown config key with FILE args" 78 "[45]"
ingest "$DATA/google.eml" -c "$W/badkey.conf"
expect_fail "unknown config key when delivering from stdin" 75 4

# database unreachable
ingest_noin --init-db -d "$NODB"
expect_fail "--init-db without a server" 78 "[45]"
ingest "$DATA/google.eml" -d "$NODB"
expect_fail "delivery without a server (-d)" 75 4
if [ -z "$DEFAULT_CONF_DB" ]; then
	ingest "$DATA/google.eml"
	expect_fail "delivery without a server (PGHOST)" 75 4
else
	skip "$DEFAULT_CONF names a database" 4
fi
ingest_noin -n -d "$NODB"
expect_fail "-n without a server" 75 4

# --dry-run touches no database (none is reachable here) and prints JSON
ingest "$DATA/google.eml" --dry-run
is "$rc" 0 "--dry-run of a report mail on stdin: exit 0"
is "$(cat "$W/err")" "" "--dry-run: nothing on stderr"
is "$(grep -c '' "$W/out")" 1 "--dry-run: one line for one report"
ok "--dry-run: the line is a JSON object" json_lines_ok "$W/out"
o=$W/out
is "$(jget "$o" 1 .organization_name)" "Google Inc." "dry-run organization_name"
is "$(jget "$o" 1 .report_id)" "2024-03-01T00:00:00Z_example.org" "dry-run report_id"
is "$(jget "$o" 1 .date_start)" "2024-03-01 00:00:00+00" "dry-run date_start"
is "$(jget "$o" 1 .date_end)" "2024-03-01 23:59:59+00" "dry-run date_end"
is "$(jget "$o" 1 '.policies | length')" 2 "dry-run two policies"
is "$(jget "$o" 1 .policies[0].policy_type)" sts "dry-run policy_type"
is "$(jget "$o" 1 .policies[0].policy_domain)" example.org "dry-run policy_domain"
is "$(jget "$o" 1 .policies[0].policy_string)" \
	'["version: STSv1","mode: enforce","mx: mx1.example.org","mx: mx2.example.org","max_age: 604800"]' \
	"dry-run policy_string"
is "$(jget "$o" 1 .policies[0].mx_host)" '["mx1.example.org","mx2.example.org"]' "dry-run mx_host"
is "$(jget "$o" 1 .policies[0].total_successful_session_count)" 4213 "dry-run successful count"
is "$(jget "$o" 1 .policies[0].total_failure_session_count)" 7 "dry-run failure count"
is "$(jget "$o" 1 '.policies[0].failures | length')" 2 "dry-run two failures"
is "$(jget "$o" 1 .policies[0].failures[0].result_type)" certificate-expired "dry-run failure result_type"
is "$(jget "$o" 1 .policies[0].failures[0].sending_mta_ip)" 209.85.220.41 "dry-run failure sending_mta_ip"
is "$(jget "$o" 1 .policies[0].failures[1].sending_mta_ip)" 2001:4860:4864:20::2d "dry-run failure IPv6 sending_mta_ip"
is "$(jget "$o" 1 .policies[1].policy_type)" no-policy-found "dry-run second policy_type"
is "$(jget "$o" 1 .policies[1].total_successful_session_count)" 12 "dry-run second policy count"

ingest_noin --dry-run -d "$NODB" "$DATA/google.eml" "$DATA/file-report.json" "$DATA/file-report.json.gz"
is "$rc" 0 "--dry-run of three files: exit 0"
is "$(grep -c '' "$W/out")" 3 "--dry-run of three files: three lines"
ok "--dry-run of three files: JSON objects" json_lines_ok "$W/out"
is "$(jget "$o" 2 .date_start)" "2024-03-01 22:00:00+00" "dry-run date_start with an offset, in UTC"
is "$(jget "$o" 2 .date_end)" "2024-03-02 22:00:00+00" "dry-run date_end with an offset, in UTC"
is "$(jget "$o" 3 .report_id)" "133540000000000001+example.org" "dry-run .json.gz report_id"
is "$(jget "$o" 3 .policies[0].policy_string)" \
	'["3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"]' "dry-run .json.gz policy_string"

ingest "$DATA/google.eml" --dry-run -
is "$rc" 0 "--dry-run - (stdin): exit 0"
is "$(jget "$o" 1 .report_id)" "2024-03-01T00:00:00Z_example.org" "--dry-run - reads stdin"

# Mail.ru's report lacks the closing MIME boundary: an ordinary quirk, -v says nothing about it
ingest "$top_srcdir/tests/data/mailru.eml" --dry-run -v
is "$rc:$(cat "$W/err")" "0:" "-v --dry-run of the Mail.ru report (no closing boundary): nothing on stderr"
is "$(jget "$o" 1 .organization_name)" "Mail.example" "... and its report is read"

ingest "$DATA/cron.eml" --dry-run
is "$rc" 0 "--dry-run of a non-report: exit 0"
is "$(grep -c '' "$W/out")" 1 "--dry-run of a non-report: one line"
ok "--dry-run of a non-report: JSON object" json_lines_ok "$W/out"
like "$(jget "$o" 1 .rejected)" "^.+$" "--dry-run of a non-report: a rejected reason"

ingest "$DATA/corrupt-and-good.eml" --dry-run
is "$rc" 0 "--dry-run corrupt + good attachment: exit 0"
is "$(grep -c '' "$W/out")" 2 "--dry-run corrupt + good attachment: two lines"
ok "--dry-run corrupt + good attachment: JSON objects" json_lines_ok "$W/out"
is "$(grep -c '"report_id"' "$W/out")" 1 "--dry-run corrupt + good attachment: one report"
is "$(grep -c '"rejected"' "$W/out")" 1 "--dry-run corrupt + good attachment: one rejected"

ingest "$DATA/mbox-from.eml" --dry-run
is "$rc" 0 "--dry-run mail with a From_ line: exit 0"
is "$(jget "$o" 1 .report_id)" "mbox-from-line-1" "--dry-run mail with a From_ line: the report"

# --reprocess and --metrics: their usage errors, before any connection
ingest_noin --reprocess "$DATA/google.eml"
expect_fail "--reprocess with a FILE" 64 5
like "$(cat "$W/err")" "--reprocess and --metrics go alone" "--reprocess with a FILE: the rule"
ingest_noin --reprocess --metrics
expect_fail "--reprocess with --metrics" 64 5
ingest_noin --reprocess --summary
expect_fail "--reprocess with --summary" 64 5
ingest_noin --since=2024-01-01
expect_fail "--since without --reprocess" 64 5
ingest_noin --metrics --reason=gzip
expect_fail "--reason with --metrics" 64 5
ingest_noin --reprocess --since=yesterday
expect_fail "--since with a word" 64 5
ingest_noin --reprocess --since=2024-13-01
expect_fail "--since with month 13" 64 5
ingest_noin --reprocess -d "$NODB"
expect_fail "--reprocess without a server" 75 4
ingest_noin --metrics -d "$NODB"
expect_fail "--metrics without a server" 75 4
is "$("$BIN" --help | grep -c -e '--reprocess' -e '--metrics' -e '--since=DATE' -e '--reason=TEXT')" 4 \
	"--help tells --reprocess, --since, --reason and --metrics"

done_testing
