#!/bin/bash
# partition-t.sh - --init-db --partitioned (doc/scaling.md, "Big tables:
# monthly partitions"): report, policy and failure partitioned by the month
# of the report's end (period_month, migration 9), a DEFAULT partition, the
# months ahead; reports spread over months (one without an end date, one
# before the first partition) land where they belong with their policies and
# failures; a redelivery adds nothing; --purge-older-than drops whole months
# (gone from pg_inherits and pg_class) and deletes by rows in the boundary
# month and the DEFAULT partition; and every view, alert and --summary gives
# the same rows as a plain schema loaded with the same reports, before and
# after refresh() and the purge. The months are computed here (python), not
# read from the program.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

# this test says --partitioned itself (make check-partitioned must not add it to the plain schema's)
export TLSRPT_TEST_PARTITIONED=0
pg_start
q "CREATE DATABASE plain" >/dev/null
q "CREATE DATABASE part" >/dev/null
PLAIN=$(pg_conninfo plain)
PART=$(pg_conninfo part)

# ---------------------------------------------------------------- the schema
ingest_noin -d "$PART" --init-db --partitioned
expect_quiet "--init-db --partitioned"
ingest_noin -d "$PLAIN" --init-db
expect_quiet "--init-db (plain)"
is "$(q "SELECT string_agg(relname || ':' || relkind::text, ' ' ORDER BY relname) FROM pg_class
	WHERE relnamespace = 'tlsrpt'::regnamespace AND relname IN ('report', 'policy', 'failure')" -d part)" \
	"failure:p policy:p report:p" "report, policy and failure are partitioned tables"
is "$(q "SELECT string_agg(relname || ':' || relkind::text, ' ' ORDER BY relname) FROM pg_class
	WHERE relnamespace = 'tlsrpt'::regnamespace AND relname IN ('report', 'policy', 'failure')" -d plain)" \
	"failure:r policy:r report:r" "without --partitioned they are plain tables"

# months relative to the current UTC month: "month K" is K months from now (K < 0: before)
month() {
	python3 -c 'import sys, datetime
t = datetime.datetime.now(datetime.timezone.utc); k = t.year * 12 + t.month - 1 + int(sys.argv[1])
print("%04d-%02d" % (k // 12, k % 12 + 1))' "$1"
}
# the partitions of TABLE in DB, as YYYY_MM (and "default")
parts() {
	q "SELECT string_agg(replace(c.relname, '$1_', ''), ' ' ORDER BY c.relname) FROM pg_inherits i
	   JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tlsrpt.$1'::regclass" -d "$2"
}
# the months K..L as YYYY_MM, then "default"
months() {
	local k out=
	for k in $(seq "$1" "$2"); do out="$out$(month "$k" | tr - _) "; done
	echo "${out}default"
}
ahead=$(months -1 3)
for t in report policy failure; do
	is "$(parts $t part)" "$ahead" "$t: the month before, this month and 3 ahead, and a default partition"
done

ingest_noin -d "$PLAIN" --init-db --partitioned
expect_fail "--init-db --partitioned on a plain schema" 78 "[45]"
like "$(cat "$W/err")" "not partitioned: --partitioned only creates a new schema" "it says why"
ingest_noin -d "$PART" --init-db
expect_quiet "--init-db on the partitioned schema (without --partitioned)"
ingest_noin -d "$PART" --init-db --partitioned
expect_quiet "--init-db --partitioned again"
is "$(parts report part)" "$ahead" "no partition made twice"
is "$(q "SELECT max(version) FROM tlsrpt.schema_version" -d part)" \
	"$(q "SELECT max(version) FROM tlsrpt.schema_version" -d plain)" "the same schema version as the plain schema"

# ---------------------------------------------------------------- reports over months
# preport ID END-DATE|- : a report ending at END-DATE (none: no date range), one policy, one failure row
preport() {
	local range=
	[ "$2" != - ] && range="\"date-range\":{\"start-datetime\":\"${2}T00:00:00Z\",\"end-datetime\":\"${2}T23:59:59Z\"},"
	printf '{"organization-name":"Month Org",%s"contact-info":"tls@month.example","report-id":"%s","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.month.example","max_age: 86400"],"policy-domain":"month.example","mx-host":["mx.month.example"]},"summary":{"total-successful-session-count":10,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.7","receiving-mx-hostname":"mx.month.example","failed-session-count":1}]}]}\n' \
		"$range" "$1"
}
R=$W/reports
views_write "$R"
preport p-m20 "$(month -20)-10" >"$R/p-m20.json"
preport p-m14 "$(month -14)-10" >"$R/p-m14.json"
preport p-m5 "$(month -5)-10" >"$R/p-m5.json"
preport p-m4a "$(month -4)-10" >"$R/p-m4a.json"
preport p-m4b "$(month -4)-20" >"$R/p-m4b.json"
preport p-m3 "$(month -3)-05" >"$R/p-m3.json"
preport p-m1 "$(month -1)-03" >"$R/p-m1.json"
preport p-nodate - >"$R/p-nodate.json"

# before a backfill of older months, their partitions (doc/scaling.md)
is "$(q "SELECT tlsrpt.partition_create('$(month -14)-01')" -d part)" 13 \
	"partition_create from month -14: the 13 months up to the month before"
is "$(q "SELECT tlsrpt.partition_create('$(month -14)-01')" -d plain)" 0 "partition_create: nothing on a plain schema"
# received: at the end of the report's day (populate.sh), the undated one at the same instant in both
received=$(date -u +%FT%TZ)
for db in plain part; do
	"$BIN_PROGRAM" -d "$(pg_conninfo $db)" "$R"/*.json >"$W/load.$db" 2>&1
	is "$?" 0 "the reports stored ($db)" || diag "$(cat "$W/load.$db")"
	q "UPDATE tlsrpt.report SET received_at = coalesce(date_end + interval '1 second', '$received')" -d $db >/dev/null
done
nfiles=$(ls "$R"/*.json | wc -l)
is "$(q "SELECT count(*) FROM tlsrpt.report" -d part)" "$nfiles" "one report a file ($nfiles)"
is "$(q "SELECT count(*) FROM tlsrpt.report" -d plain)" "$nfiles" "one report a file ($nfiles), plain"

where() {
	q "SELECT tableoid::regclass FROM tlsrpt.report WHERE report_id = '$1'" -d part
}
is "$(where p-m14)" "tlsrpt.report_$(month -14 | tr - _)" "a report of month -14 in its partition"
is "$(where p-m4b)" "tlsrpt.report_$(month -4 | tr - _)" "a report of month -4 in its partition"
is "$(where p-m1)" "tlsrpt.report_$(month -1 | tr - _)" "a report of the month before in its partition"
is "$(where p-nodate)" "tlsrpt.report_default" "a report without an end date in the default partition"
is "$(where p-m20)" "tlsrpt.report_default" "a report before the first partition in the default partition"
is "$(q "SELECT period_month FROM tlsrpt.report WHERE report_id = 'p-nodate'" -d part)" "-infinity" \
	"its month: -infinity"
is "$(q "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report
	WHERE p.tableoid::regclass::text <> replace(r.tableoid::regclass::text, 'report', 'policy')
	   OR p.period_month <> r.period_month" -d part)" 0 "every policy in its report's month"
is "$(q "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy
	WHERE f.tableoid::regclass::text <> replace(p.tableoid::regclass::text, 'policy', 'failure')
	   OR f.period_month <> p.period_month" -d part)" 0 "every failure row in its policy's month"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE period_month IS DISTINCT FROM tlsrpt.period_month(date_end)" -d plain)" 0 \
	"the plain schema fills period_month too"

# a month with rows in the default partition stays there
is "$(q "SELECT tlsrpt.partition_create('$(month -20)-01')" -d part 2>/dev/null | tail -n 1)" 5 \
	"partition_create from month -20: 5 months made (-19..-15), month -20 left in the default partition"
is "$(q "SELECT count(*) FROM pg_class WHERE relname = 'report_$(month -20 | tr - _)'" -d part)" 0 \
	"no partition for month -20"

# ---------------------------------------------------------------- redelivery
counts() {
	q "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.policy) || '/' ||
	          (SELECT count(*) FROM tlsrpt.failure)" -d "$1"
}
before=$(counts part)
is "$before" "$(counts plain)" "the same reports, policies and failures in both ($before)"
"$BIN_PROGRAM" -d "$PART" "$R"/*.json >/dev/null 2>&1
is "$?/$(counts part)" "0/$before" "every report again: nothing added"
"$BIN_PROGRAM" -d "$PART" "$R/p-nodate.json" "$R/p-m14.json" >/dev/null 2>&1
is "$?/$(counts part)" "0/$before" "the report without dates and one of month -14 again: nothing added"
"$BIN_PROGRAM" -d "$PLAIN" "$R"/*.json >/dev/null 2>&1
is "$(counts plain)" "$before" "nothing added to the plain schema either"

# ---------------------------------------------------------------- the same views
VIEWS=$(q "SELECT string_agg(viewname, ' ' ORDER BY viewname) FROM pg_views WHERE schemaname = 'tlsrpt'" -d plain)
FUNCS=("tlsrpt.alerts()" "tlsrpt.alert_silent_reporter()" "tlsrpt.alert_critical_failure('30 days')"
	"tlsrpt.alert_failure_rate(0.01, 30)" "tlsrpt.alert_new_result_type('30 days')")
# rows of a view or function, without what moves with now() (silent_for, late_by) and the partition key
rows_of() {
	q "SET max_parallel_workers_per_gather = 0; SELECT count(*) || ' ' || md5(coalesce(string_agg(j::text, E'\n' ORDER BY j::text), ''))
	   FROM (SELECT to_jsonb(v) - 'silent_for' - 'late_by' - 'period_month' AS j FROM $1 v) s" -d "$2"
}
same_views() {
	local v bad= n=0 rows=0 a b
	for v in $(for v in $VIEWS; do echo "tlsrpt.$v"; done) "${FUNCS[@]}"; do
		# the two databases at once
		rows_of "$v" plain >"$W/rows.plain" &
		rows_of "$v" part >"$W/rows.part"
		wait
		a=$(cat "$W/rows.plain") b=$(cat "$W/rows.part")
		if [ "$a" != "$b" ] || ! [[ $a =~ ^[0-9]+\  ]]; then
			[ -z "$bad" ] && diag "$v: $(diff <(q "SELECT j FROM (SELECT to_jsonb(v) - 'silent_for' - 'late_by' - 'period_month' AS j FROM $v v) s ORDER BY j::text" -d plain) \
				<(q "SELECT j FROM (SELECT to_jsonb(v) - 'silent_for' - 'late_by' - 'period_month' AS j FROM $v v) s ORDER BY j::text" -d part) | head -n 6)"
			bad="$bad $v"
		fi
		n=$((n + 1)) rows=$((rows + ${a%% *}))
	done
	is "$bad" "" "$1: the $n views and alerts give the same rows on both schemas"
	[ "$rows" -gt 100 ] || fail "$1: only $rows rows compared"
	"$BIN_PROGRAM" -d "$PLAIN" --summary --days 400 >"$W/sum.plain" 2>&1
	"$BIN_PROGRAM" -d "$PART" --summary --days 400 >"$W/sum.part" 2>&1
	is "$(diff "$W/sum.plain" "$W/sum.part")" "" "$1: --summary says the same"
}
[ "$(echo "$VIEWS" | wc -w)" -gt 20 ] || fail "the views listed: $VIEWS"
same_views "before refresh()"
for db in plain part; do q "SELECT tlsrpt.refresh()" -d $db >/dev/null; done
same_views "after refresh()"

# ---------------------------------------------------------------- purge
# the cut-off in the middle of month -4 (its 15th, this time of day): months
# -19..-5 go whole; p-m4a by rows, p-m4b stays; p-m20 (default) by rows;
# p-nodate (received now) stays; and the views' report of 400 days ago
days=$(python3 -c 'import datetime
t = datetime.datetime.now(datetime.timezone.utc); k = t.year * 12 + t.month - 1 - 4
c = t.replace(year=k // 12, month=k % 12 + 1, day=15)
print((t - c).days)')
old=$(q "SELECT count(*) FROM tlsrpt.report WHERE coalesce(date_end, received_at) < now() - interval '$days days'" -d plain)
# 5 by hand: p-m20, p-m14, p-m5, p-m4a, the views' old-400; each with 1 policy and 1 failure row
is "$old" 5 "5 reports ended before the cut-off"
ingest_noin -d "$PART" --purge-older-than "$days"
expect_quiet "--purge-older-than $days (partitioned)"
cp "$W/out" "$W/purge.part"
ingest_noin -d "$PLAIN" --purge-older-than "$days"
expect_quiet "--purge-older-than $days (plain)"
is "$(cut -d' ' -f1-5 "$W/purge.part")" "purged reports=5 policies=5 failures=5 rejected=0" \
	"partitioned: 5 reports, 5 policies, 5 failure rows purged"
is "$(cut -d' ' -f1-5 "$W/out")" "purged reports=5 policies=5 failures=5 rejected=0" "plain: the same"
for t in report policy failure; do
	is "$(parts $t part)" "$(months -4 3)" "$t: the months before month -4 dropped, the rest kept"
done
is "$(q "SELECT count(*) FROM pg_class WHERE relnamespace = 'tlsrpt'::regnamespace
	AND relname ~ '^(report|policy|failure)_[0-9]{4}_[0-9]{2}$'
	AND substr(relname, strpos(relname, '_') + 1) < '$(month -4 | tr - _)'" -d part)" 0 \
	"no table of a dropped month is left (detached and dropped)"
is "$(q "SELECT string_agg(report_id, ' ' ORDER BY report_id) FROM tlsrpt.report WHERE organization_name = 'Month Org'" -d part)" \
	"p-m1 p-m3 p-m4b p-nodate" "the reports after the cut-off stay, the one without dates too"
is "$(q "SELECT array_agg(id ORDER BY id) FROM tlsrpt.report" -d part)" \
	"$(q "SELECT array_agg(id ORDER BY id) FROM tlsrpt.report" -d plain)" "the same reports left as in the plain schema"
is "$(counts part)" "$(counts plain)" "the same policies and failure rows left"
is "$(q "SELECT count(*) FROM tlsrpt.failure_fact ff WHERE NOT EXISTS (SELECT FROM tlsrpt.failure f WHERE f.id = ff.failure)" -d part)" 0 \
	"no rolled-up failure row left of a purged one"
is "$(q "SELECT rebuild FROM tlsrpt.rollup_state" -d part)" t "the rollups are marked for a rebuild, as a plain purge marks them"
same_views "after the purge"
for db in plain part; do q "SELECT tlsrpt.refresh()" -d $db >/dev/null; done
same_views "after the purge and refresh()"
ingest_noin -d "$PART" --purge-older-than "$days"
is "$(cut -d' ' -f1-5 "$W/out")" "purged reports=0 policies=0 failures=0 rejected=0" "the purge again: nothing left"

# after the purge, deliveries go on into the kept months and the default partition
preport p-new "$(month 0)-01" >"$W/p-new.json"
ingest "$W/p-new.json" -d "$PART"
expect_ok "a delivery after the purge"
is "$(where p-new)" "tlsrpt.report_$(month 0 | tr - _)" "stored in this month's partition"

done_testing
