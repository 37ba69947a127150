# populate.sh - the populated database that views-t.sh, summary-t.sh and
# grafana-t.sh read. Source after tests/lib/tap.sh, pg.sh and common.sh, call
# pg_start, then views_populate [PSQL-ARGS]. Report dates are relative to now
# (UTC days: day K is K days ago); every report is stored by the real binary,
# then received_at is set to date_end + 1 s, as if each report arrived at the
# end of its day. doc/views.md and the tests' comments give the numbers.
#
#   Google Inc.     -> example.org  days 1..6  (sts: testing 86400 days 4..6,
#                                   enforce 604800 days 1..3; failures days 1..3)
#   Mail.ru         -> example.org  days 6..10 (daily, then silent)
#   Single Sender   -> example.org  day 9      (once)
#   Microsoft Corp. -> example.net  days 1..5  (tlsa, Microsoft's shape; day 3 fails)
#   Shape Tester    -> shapes.json  day 8      (policy_string shapes)
#   Old Org         -> example.org  day 400    (for --purge-older-than)
#   a rejected non-report mail received 400 days ago, and one received now

VIEWS_DATA=$top_srcdir/tests/data/views
case $VIEWS_DATA in /*) ;; *) VIEWS_DATA=$PWD/$VIEWS_DATA ;; esac
VIEWS_NOW=$(date -u +%s)

# vday K: the UTC date K days ago
vday() {
	date -u -d "@$((VIEWS_NOW - $1 * 86400))" +%F
}

# vfail TYPE SENDING-IP MX RECEIVING-IP COUNT
vfail() {
	printf '{"result-type":"%s","sending-mta-ip":"%s","receiving-mx-hostname":"%s","receiving-ip":"%s","failed-session-count":%s}' "$@"
}

# vsts DOMAIN MODE MAX_AGE "MX..." SUCCESSFUL FAILED [FAILURE-JSON...]
vsts() {
	local domain=$1 mode=$2 max_age=$3 mxs=$4 ok=$5 failed=$6 strings mx hosts= sep=
	shift 6
	strings="\"version: STSv1\",\"mode: $mode\""
	for mx in $mxs; do
		strings="$strings,\"mx: $mx\""
		hosts="$hosts$sep\"$mx\""
		sep=,
	done
	strings="$strings,\"max_age: $max_age\""
	printf '{"policy":{"policy-type":"sts","policy-string":[%s],"policy-domain":"%s","mx-host":[%s]},' \
		"$strings" "$domain" "$hosts"
	_vsummary "$ok" "$failed" "$@"
}

# vtlsa DOMAIN SUCCESSFUL FAILED [FAILURE-JSON...]: Microsoft's shape, one
# element holding a JSON array of records
vtlsa() {
	local domain=$1 ok=$2 failed=$3
	shift 3
	printf '{"policy":{"policy-type":"tlsa","policy-string":["[\\"3 1 1 AAAA0000AAAA0000\\",\\"2 0 1 BBBB1111BBBB1111\\"]"],"policy-domain":"%s"},' "$domain"
	_vsummary "$ok" "$failed" "$@"
}

_vsummary() {
	local ok=$1 failed=$2 sep=
	shift 2
	printf '"summary":{"total-successful-session-count":%s,"total-failure-session-count":%s}' "$ok" "$failed"
	if [ $# -gt 0 ]; then
		printf ',"failure-details":['
		for f in "$@"; do
			printf '%s%s' "$sep" "$f"
			sep=,
		done
		printf ']'
	fi
	printf '}'
}

# vreport ORG REPORT-ID K POLICY-JSON...: a report for day K on stdout
vreport() {
	local org=$1 id=$2 day sep=
	day=$(vday "$3")
	shift 3
	printf '{"organization-name":"%s","date-range":{"start-datetime":"%sT00:00:00Z","end-datetime":"%sT23:59:59Z"},"contact-info":"tls-reports@reporter.example","report-id":"%s","policies":[' \
		"$org" "$day" "$day" "$id"
	for p in "$@"; do
		printf '%s%s' "$sep" "$p"
		sep=,
	done
	printf ']}\n'
}

# views_write DIR: the report files of the populated database
views_write() {
	local dir=$1 k
	mkdir -p "$dir"
	for k in 6 5 4; do
		vreport "Google Inc." "g-$k" "$k" \
			"$(vsts example.org testing 86400 mx1.example.org 1000 0)" >"$dir/g-$k.json"
	done
	for k in 3 2; do
		vreport "Google Inc." "g-$k" "$k" \
			"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 1000 10 \
				"$(vfail validation-failure 209.85.220.41 mx2.example.org 192.0.2.2 10)")" >"$dir/g-$k.json"
	done
	vreport "Google Inc." g-1 1 \
		"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 400 600 \
			"$(vfail certificate-expired 209.85.220.41 mx2.example.org 192.0.2.2 300)" \
			"$(vfail starttls-not-supported 209.85.220.42 mx1.example.org 192.0.2.1 200)" \
			"$(vfail validation-failure 209.85.220.41 mx2.example.org 192.0.2.2 100)")" >"$dir/g-1.json"
	for k in 6 7 8 9 10; do
		vreport "Mail.ru" "mr-$k" "$k" \
			"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 50 0)" >"$dir/mr-$k.json"
	done
	vreport "Single Sender" single-9 9 \
		"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 7 0)" >"$dir/single-9.json"
	for k in 1 2 4 5; do
		vreport "Microsoft Corporation" "ms-$k" "$k" "$(vtlsa example.net 200 0)" >"$dir/ms-$k.json"
	done
	vreport "Microsoft Corporation" ms-3 3 \
		"$(vtlsa example.net 200 5 "$(vfail tlsa-invalid 40.107.0.1 mx.example.net 198.51.100.1 5)")" >"$dir/ms-3.json"
	vreport "Old Org" old-400 400 \
		"$(vsts example.org enforce 604800 "mx1.example.org mx2.example.org" 1 1 \
			"$(vfail certificate-expired 203.0.113.9 mx9.example.org 203.0.113.99 1)")" >"$dir/old-400.json"
	sed "s/@DAY8@/$(vday 8)/g" "$VIEWS_DATA/shapes.json" >"$dir/shapes.json"
}

# views_populate [DBNAME]: --init-db, store every report and the two rejected
# mails, then date received_at as described above
views_populate() {
	local db=${1:-postgres} dir=$W/views-reports conn
	conn=$(pg_conninfo "$db")
	"$BIN" -d "$conn" --init-db >/dev/null || return 1
	rm -rf "$dir"
	views_write "$dir" || return 1
	"$BIN" -d "$conn" "$dir"/*.json || return 1
	"$BIN" -d "$conn" <"$VIEWS_DATA/not-a-report.eml" || return 1
	sed 's/views-not-a-report@/views-not-a-report-2@/; s/logrotate/logrotate (again)/' \
		"$VIEWS_DATA/not-a-report.eml" | "$BIN" -d "$conn" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "
		UPDATE tlsrpt.report SET received_at = date_end + interval '1 second';
		UPDATE tlsrpt.rejected SET received_at = now() - interval '400 days'
		 WHERE message_id LIKE 'views-not-a-report@%'" >/dev/null
}
