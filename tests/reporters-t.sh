#!/bin/bash
# reporters-t.sh - schema migration 008 (src/sql/008-reporters.sql): the
# reporter ledger (cadence, how late, silent, loop-only), the silent-reporter
# alert by each reporter's cadence, the MTA-STS policy versions, the drift
# view and the stale-policy alert, published_sts_policy (--init-db), and
# --summary's advice and stale-policy line. Fixtures are written here, day K
# being K days ago (tests/data/views/populate.sh's helpers); every expected
# figure is computed below from the fixtures' day lists, in a few lines of
# Python, never read back from the views.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

pg_start
conn=$(pg_conninfo)
ok "--init-db" "$BIN" -d "$conn" --init-db

# ---------------------------------------------------------------- fixtures
# ledger.example: who reports how often (sessions per day as listed)
DAILY_DAYS="$(seq -s ' ' 5 20)"        # daily, silent since day 5; 100 sessions, 3 failed on day 7
WEEKLY_DAYS="6 13 20 27 34"            # weekly; 11 sessions a day, no failure
MAILED_DAYS="2 3 9 10 17 25 40"        # when we mailed it; sessions below, 1 failed on day 40
MAILED_SESSIONS="2 3 1 4 2 5 1"
TWICE_DAYS="1 8"                       # two reports: no cadence yet
LPOL=(enforce 604800 "mx1.ledger.example")
dir=$W/reports
mkdir -p "$dir"
for k in $DAILY_DAYS; do
	if [ "$k" = 7 ]; then
		vreport "Daily Sender" "daily-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" 97 3 \
			"$(vfail validation-failure 192.0.2.10 mx1.ledger.example 198.51.100.1 3)")"
	else
		vreport "Daily Sender" "daily-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" 100 0)"
	fi >"$dir/daily-$k.json"
done
for k in $WEEKLY_DAYS; do
	vreport "Weekly Sender" "weekly-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" 11 0)" >"$dir/weekly-$k.json"
done
set -- $MAILED_SESSIONS
for k in $MAILED_DAYS; do
	if [ "$k" = 40 ]; then
		vreport "Mailed Sender" "mailed-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" 0 1 \
			"$(vfail validation-failure 192.0.2.11 mx1.ledger.example 198.51.100.1 1)")"
	else
		vreport "Mailed Sender" "mailed-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" "$1" 0)"
	fi >"$dir/mailed-$k.json"
	shift
done
for k in $TWICE_DAYS; do
	vreport "Twice Sender" "twice-$k" "$k" "$(vsts ledger.example "${LPOL[@]}" 50 0)" >"$dir/twice-$k.json"
done

# drift.example: testing (max_age 86400, mx1) until day 12, enforce (604800,
# mx1 and mx2) from day 11 for Prompt Sender; Stale Sender keeps testing until
# day 2, with 5 certificate-host-mismatch failures a day on days 5..2
V1=(testing 86400 "mx1.drift.example")
V2=(enforce 604800 "mx1.drift.example mx2.drift.example")
for k in $(seq 20 -1 1); do
	if [ "$k" -ge 12 ]; then
		vreport "Prompt Sender" "prompt-$k" "$k" "$(vsts drift.example "${V1[@]}" 50 0)"
	elif [ "$k" = 1 ]; then
		vreport "Prompt Sender" "prompt-$k" "$k" "$(vsts drift.example "${V2[@]}" 48 2 \
			"$(vfail sts-policy-fetch-error 192.0.2.20 mx1.drift.example 198.51.100.2 2)")"
	else
		vreport "Prompt Sender" "prompt-$k" "$k" "$(vsts drift.example "${V2[@]}" 50 0)"
	fi >"$dir/prompt-$k.json"
done
STALE_FAIL_DAYS="5 4 3 2"
for k in $(seq 20 -1 2); do
	case " $STALE_FAIL_DAYS " in
	*" $k "*) vreport "Stale Sender" "stale-$k" "$k" "$(vsts drift.example "${V1[@]}" 20 5 \
		"$(vfail certificate-host-mismatch 192.0.2.21 mx2.drift.example 198.51.100.3 5)")" ;;
	*) vreport "Stale Sender" "stale-$k" "$k" "$(vsts drift.example "${V1[@]}" 20 0)" ;;
	esac >"$dir/stale-$k.json"
done

# pub.example: two policies from day 10 on, side by side: neither replaced
# the other, until the administrator names the published one
for k in $(seq 10 -1 1); do
	vreport "Right Sender" "right-$k" "$k" "$(vsts pub.example enforce 86400 mx.pub.example 30 0)" >"$dir/right-$k.json"
	if [ "$k" -le 2 ]; then
		vreport "Wrong Sender" "wrong-$k" "$k" "$(vsts pub.example testing 3600 mx.pub.example 23 7 \
			"$(vfail validation-failure 192.0.2.30 mx.pub.example 198.51.100.4 7)")"
	else
		vreport "Wrong Sender" "wrong-$k" "$k" "$(vsts pub.example testing 3600 mx.pub.example 30 0)"
	fi >"$dir/wrong-$k.json"
done

ok "reports stored" "$BIN" -d "$conn" "$dir"/*.json
q "UPDATE tlsrpt.report SET received_at = date_end + interval '1 second'" >/dev/null
is "$(q "SELECT count(*) FROM tlsrpt.report")" "$(ls "$dir" | wc -l)" "every report stored once"

# ---------------------------------------------------------------- the expected figures
# The rule (doc/views.md, "Reporters"): the latest 11 distinct days give up to
# 10 gaps; cadence = their median (NULL under 2 gaps), silent after
# max(3 days, 2 x cadence, longest gap) when there are at least 3 days;
# loop-only: no failed session and at most 10 sessions on any of its days in
# the 30 days up to its latest day.
expect_ledger() {
	python3 - "$@" <<'PY'
import statistics, sys
name, days, sessions, failed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
days = [int(d) for d in days.split()]
sessions = dict(zip(days, [int(s) for s in sessions.split()]))
failed = dict(zip(days, [int(s) for s in failed.split()]))
latest = sorted(days)[:11]                     # K days ago: smallest K is the latest
gaps = [b - a for a, b in zip(latest, latest[1:])]
cadence = statistics.median(gaps) if len(gaps) >= 2 else None
after = max(3, 2 * cadence, max(gaps)) if cadence is not None and len(days) >= 3 else None
window = [d for d in days if d - min(days) < 30]
loop = sum(failed[d] for d in window) == 0 and max(sessions[d] for d in window) <= 10
fmt = lambda x: "NULL" if x is None else ("%g" % x)
print("|".join([name, str(len(days)), str(len(gaps)), fmt(cadence), str(max(gaps)),
                fmt(after), "true" if loop else "false"]))
PY
}
rep() { printf "$1%.0s " $(seq $2); }
exp_daily=$(expect_ledger "Daily Sender" "$DAILY_DAYS" "$(rep 100 16)" "0 0 3 $(rep 0 13)")
exp_weekly=$(expect_ledger "Weekly Sender" "$WEEKLY_DAYS" "$(rep 11 5)" "$(rep 0 5)")
exp_mailed=$(expect_ledger "Mailed Sender" "$MAILED_DAYS" "$MAILED_SESSIONS" "0 0 0 0 0 0 1")
exp_twice=$(expect_ledger "Twice Sender" "$TWICE_DAYS" "50 50" "0 0")
is "$(printf '%s\n' "$exp_daily" "$exp_weekly" "$exp_mailed" "$exp_twice" | cut -d'|' -f1,4,6,7)" \
"Daily Sender|1|3|false
Weekly Sender|7|14|false
Mailed Sender|6.5|15|true
Twice Sender|NULL|NULL|false" "the expected cadences, thresholds and flags (by hand: what the fixtures are for)"

# the drift: Stale Sender's testing reports from day 10 on (day 11, when
# enforce appeared, + 86400 s), and their failures
D=$(python3 - "$STALE_FAIL_DAYS" <<'PY'
import sys
fail = {int(d): 5 for d in sys.argv[1].split()}
stale = [k for k in range(2, 21) if k <= 10]          # period starts >= day 11 + 1 day
recent = [k for k in stale if k <= 7]                  # alert_stale_policy(7): days >= today - 7
print("%d|%d|%d|%d|%d" % (len(stale), sum(20 + fail.get(k, 0) for k in stale), sum(fail.get(k, 0) for k in stale),
                          len(recent), sum(fail.get(k, 0) for k in recent)))
PY
)
IFS='|' read -r STALE_REPORTS STALE_SESSIONS STALE_FAILED RECENT_REPORTS RECENT_FAILED <<<"$D"

# ---------------------------------------------------------------- the checks, before and after refresh()
ledger_q="SELECT organization_name || '|' || active_days || '|' || gaps || '|' || coalesce(trim_scale(cadence)::text, 'NULL')
	|| '|' || longest_gap || '|' || coalesce(extract(epoch FROM silent_after)::bigint / 86400 || '', 'NULL')
	|| '|' || loop_only FROM tlsrpt.reporter_ledger WHERE policy_domain = 'ledger.example' ORDER BY 1"

checks() {
	local stage=$1
	is "$(q "$ledger_q")" "$exp_daily
$exp_mailed
$exp_twice
$exp_weekly" "$stage: reporter_ledger: days, gaps, cadence, longest gap, silent after, loop-only"
	is "$(q "SELECT organization_name || '|' || reports || '|' || to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD')
		|| '|' || to_char(last_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM tlsrpt.reporter_ledger
		WHERE organization_name IN ('Daily Sender', 'Weekly Sender') ORDER BY 1")" \
		"Daily Sender|16|$(vday 20)|$(vday 5) 23:59:59
Weekly Sender|5|$(vday 34)|$(vday 6) 23:59:59" "$stage: reporter_ledger: reports, first and last period"
	is "$(q "SELECT organization_name || '|' || silent || '|' || (late_by > interval '0')
		|| '|' || (next_due = last_end + cadence * interval '1 day')
		FROM tlsrpt.reporter_ledger WHERE policy_domain = 'ledger.example' AND cadence IS NOT NULL ORDER BY 1")" \
		"Daily Sender|true|true|true
Mailed Sender|false|false|true
Weekly Sender|false|false|true" "$stage: only the daily reporter is silent and late; next_due = last end + cadence"
	# late_by of the daily reporter: now - (day 5's end + 1 day), to the minute
	is "$(q "SELECT abs(extract(epoch FROM late_by) - (extract(epoch FROM now()) - $(date -u -d "$(vday 5) 23:59:59" +%s) - 86400)) < 60
		FROM tlsrpt.reporter_ledger WHERE organization_name = 'Daily Sender'")" t "$stage: late_by of the daily reporter"
	is "$(q "SELECT sessions_30d || '|' || failed_30d || '|' || busiest_day_30d FROM tlsrpt.reporter_ledger
		WHERE organization_name = 'Mailed Sender'")" \
		"$(python3 -c "s=[2,3,1,4,2,5]; print('%d|0|%d' % (sum(s), max(s)))")" \
		"$stage: Mailed Sender's 30 days: day 40's failure is outside them"
	is "$(q "SELECT organization_name || '|' || policy_domain FROM tlsrpt.alert_silent_reporter()")" \
		"Daily Sender|ledger.example" "$stage: alert_silent_reporter(): the daily reporter only (not weekly, not when mailed)"
	is "$(q "SELECT count(*) FROM tlsrpt.alert_silent_reporter(silence => '5 days')")" 0 \
		"$stage: alert_silent_reporter('5 days'): the floor is a parameter"
	is "$(q "SELECT message FROM tlsrpt.alerts() WHERE alert = 'silent-reporter'")" \
		"ledger.example: no report from Daily Sender for $(python3 -c "import time,calendar; print(int((time.time() - calendar.timegm(time.strptime('$(vday 5) 23:59:59', '%Y-%m-%d %H:%M:%S'))) // 86400))") days (usually every day)" \
		"$stage: alerts(): the silent reporter, with its cadence"

	is "$(q "SELECT version || '|' || mode || '|' || max_age || '|' || array_to_string(mx, ',') || '|'
		|| coalesce(to_char(replaced_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '') || '|'
		|| coalesce(to_char(stale_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '')
		FROM tlsrpt.sts_policy_version WHERE policy_domain = 'drift.example' ORDER BY version")" \
		"1|testing|86400|mx1.drift.example|$(vday 11) 00:00|$(vday 10) 00:00
2|enforce|604800|mx1.drift.example,mx2.drift.example||" "$stage: sts_policy_version: two versions of drift.example"
	is "$(q "SELECT count(*) FROM tlsrpt.sts_policy_version WHERE policy_domain = 'pub.example' AND replaced_at IS NOT NULL")" 0 \
		"$stage: sts_policy_version: two policies seen at once do not replace each other"
	is "$(q "SELECT policy_domain || '|' || organization_name || '|' || mode || '|' || reason || '|' || first_day || '|'
		|| last_day || '|' || reports || '|' || sessions || '|' || failed FROM tlsrpt.sts_policy_drift")" \
		"drift.example|Stale Sender|testing|replaced|$(vday 10)|$(vday 2)|$STALE_REPORTS|$STALE_SESSIONS|$STALE_FAILED" \
		"$stage: sts_policy_drift: Stale Sender, its stale reports and the failures under them"
	is "$(q "SELECT organization_name || '|' || reports || '|' || failed FROM tlsrpt.alert_stale_policy()")" \
		"Stale Sender|$RECENT_REPORTS|$RECENT_FAILED" "$stage: alert_stale_policy(): the last 7 days"
	is "$(q "SELECT message FROM tlsrpt.alerts() WHERE alert = 'stale-policy'")" \
		"drift.example: Stale Sender applied a replaced $(vday 11) policy (mode testing, max_age 86400) in $RECENT_REPORTS reports, $RECENT_FAILED failed sessions" \
		"$stage: alerts(): the stale policy"
}

checks "before refresh()"
is "$(q "SELECT tlsrpt.refresh()")" "$(ls "$dir" | wc -l)" "refresh() takes in every report"
checks "after refresh()"

# sts_drift(since, domains) (migration 11, the Grafana panel's): the rows of
# sts_drift(since) for those domains, and none of the others
drift_of() { q "SELECT count(*) FROM ($1 EXCEPT ALL $2) a"; }
for since in "'-infinity'" "'$(vday 9)'"; do
	is "$(drift_of "SELECT * FROM tlsrpt.sts_drift($since::date, ARRAY['drift.example', 'nowhere.example'])" \
		"SELECT * FROM tlsrpt.sts_drift($since::date) WHERE policy_domain IN ('drift.example', 'nowhere.example')")|$(
		drift_of "SELECT * FROM tlsrpt.sts_drift($since::date) WHERE policy_domain IN ('drift.example', 'nowhere.example')" \
		"SELECT * FROM tlsrpt.sts_drift($since::date, ARRAY['drift.example', 'nowhere.example'])")|$(
		q "SELECT count(*) > 0 FROM tlsrpt.sts_drift($since::date, ARRAY['drift.example'])")|$(
		q "SELECT count(*) FROM tlsrpt.sts_drift($since::date, ARRAY['other.example'])")" "0|0|t|0" \
		"sts_drift($since, domains): sts_drift's rows of those domains"
	# more than 100 domains (Grafana's "All" of a hosting operator) go through a hashed set
	many="ARRAY['drift.example', 'nowhere.example'] || ARRAY(SELECT 'pad' || g || '.example' FROM generate_series(1, 150) g)"
	is "$(drift_of "SELECT * FROM tlsrpt.sts_drift($since::date, $many)" \
		"SELECT * FROM tlsrpt.sts_drift($since::date) WHERE policy_domain IN ('drift.example', 'nowhere.example')")|$(
		drift_of "SELECT * FROM tlsrpt.sts_drift($since::date) WHERE policy_domain IN ('drift.example', 'nowhere.example')" \
		"SELECT * FROM tlsrpt.sts_drift($since::date, $many)")|$(
		q "SELECT count(*) > 0 FROM tlsrpt.sts_drift($since::date, $many)")" "0|0|t" \
		"sts_drift($since, 152 domains): the same rows"
done

# the Grafana panel of reports per day leaves the loop-only reporter out
# (its macros expanded as tests/grafana-t.sh does, last 30 days, ledger.example)
panel_sql() {
	python3 - "$top_srcdir/contrib/grafana/tlsrpt-dashboard.json" "$1" <<'PY'
import json, re, sys, time
d = json.load(open(sys.argv[1]))
sql = [p for p in d["panels"] if p["title"] == sys.argv[2]][0]["targets"][0]["rawSql"]
now = int(time.time())
t = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
sql = re.sub(r"\$__timeGroupAlias\(([^,()]+),\s*1d\)", r'floor(extract(epoch from \1)/86400)*86400 AS "time"', sql)
sql = re.sub(r"\$__time\(([^()]+)\)", r'\1 AS "time"', sql)
sql = re.sub(r"\$__timeFilter\(([^()]+)\)", lambda m: "%s BETWEEN '%s' AND '%s'" % (m.group(1), t(now - 30 * 86400), t(now)), sql)
sql = sql.replace("$__timeFrom()", "'%s'" % t(now - 30 * 86400)).replace("$__timeTo()", "'%s'" % t(now))
print(sql.replace("$domain", "'ledger.example'"))
PY
}
is "$(q "$(panel_sql "Reports per day by reporter")" | cut -d'|' -f2 | sort -u)" "Daily Sender
Twice Sender
Weekly Sender" "Grafana, reports per day by reporter: the loop-only reporter left out"
is "$(q "$(panel_sql "Reporter ledger (silent and late first: the first 100)")" | cut -d'|' -f1,7,8 | head -n 1)" "Daily Sender|t|f" \
	"Grafana, reporter ledger: the silent reporter first"

# a loop-only reporter that sends one more report, not rolled up yet: still
# loop-only with 10 sessions that day, not with 11
vreport "Mailed Sender" mailed-1 1 "$(vsts ledger.example "${LPOL[@]}" 10 0)" >"$W/mailed-1.json"
ok "one more report" "$BIN" -d "$conn" "$W/mailed-1.json"
is "$(q "SELECT loop_only || '|' || busiest_day_30d || '|' || active_days FROM tlsrpt.reporter_ledger WHERE organization_name = 'Mailed Sender'")" \
	"true|10|8" "pending: 10 sessions in a day is still loop-only"
q "UPDATE tlsrpt.policy SET total_successful_session_count = 11 WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'mailed-1')" >/dev/null
is "$(q "SELECT loop_only FROM tlsrpt.reporter_ledger WHERE organization_name = 'Mailed Sender'")" f \
	"pending: 11 sessions in a day is not"
q "SELECT tlsrpt.refresh()" >/dev/null
is "$(q "SELECT loop_only || '|' || active_days FROM tlsrpt.reporter_ledger WHERE organization_name = 'Mailed Sender'")" "false|8" \
	"after refresh(): the same"

# ---------------------------------------------------------------- published_sts_policy
printf 'version: STSv1\r\nmode: enforce\r\nmx: MX.pub.example\r\nmax_age: 86400\r\n' >"$W/mta-sts.txt"
ingest_noin -d "$conn" --init-db -o "published_sts_policy=$W/mta-sts.txt"
is "$rc" 0 "--init-db with published_sts_policy"
like "$(cat "$W/out")" "published MTA-STS policy: $W/mta-sts.txt" "--init-db says which policy it stored"
is "$(q "SELECT coalesce(policy_domain, '*') || '|' || mode || '|' || max_age || '|' || array_to_string(mx, ',') FROM tlsrpt.published_sts_policy")" \
	"*|enforce|86400|mx.pub.example" "the published policy, parsed"
# Wrong Sender's testing policy: replaced when the published one was first
# applied (day 10, 00:00), stale one max_age (3600 s) later: days 9..1
W_EXP=$(python3 -c "
days = range(1, 10); fail = {1: 7, 2: 7}
print('%d|%d' % (len(days), sum(fail.get(k, 0) for k in days)))")
is "$(q "SELECT organization_name || '|' || reason || '|' || first_day || '|' || reports || '|' || failed FROM tlsrpt.sts_policy_drift WHERE policy_domain = 'pub.example'")" \
	"Wrong Sender|not published|$(vday 9)|$W_EXP" "drift: the reporter applying another policy than the published one"
is "$(q "SELECT organization_name || '|' || reason FROM tlsrpt.sts_policy_drift WHERE policy_domain = 'drift.example'")" \
	"Stale Sender|not published" "drift: one published policy is every domain's"
# --summary: Wrong Sender's failures of days 1 and 2 (7 each) came under its
# testing policy, stale since day 9; Right Sender applied the published one
ingest_noin -d "$conn" --summary --domain pub.example
expect_quiet "--summary --domain pub.example, with a published policy"
like "$(tr -s ' \n' '  ' <"$W/out")" "validation-failure: 14 failed sessions MX: mx\.pub\.example \(14\) stale: 14 of them under a stale MTA-STS policy: mode testing, max_age 3600, not the published policy fix:" \
	"--summary: the failures under a policy other than the published one, counted and named"
ingest_noin -d "$conn" --init-db -o "published_sts_policy="
is "$rc" 0 "--init-db without published_sts_policy"
is "$(q "SELECT count(*) FROM tlsrpt.published_sts_policy")/$(q "SELECT count(*) FROM tlsrpt.sts_policy_drift WHERE policy_domain = 'pub.example'")" \
	"0/0" "--init-db without it: no published policy, no drift for pub.example"
ingest_noin -d "$conn" --init-db -o "published_sts_policy=$W/nowhere.txt"
expect_fail "published_sts_policy: a file that does not exist" 78 5
printf 'hello\n' >"$W/not-a-policy.txt"
ingest_noin -d "$conn" --init-db -o "published_sts_policy=$W/not-a-policy.txt"
expect_fail "published_sts_policy: not a policy" 78 5
head -c 70000 /dev/zero | tr '\0' 'x' >"$W/huge.txt"
ingest_noin -d "$conn" --init-db -o "published_sts_policy=$W/huge.txt"
expect_fail "published_sts_policy: a file too large" 78 5
is "$(q "SELECT count(*) FROM tlsrpt.published_sts_policy")" 0 "a refused policy file leaves the table as it was"

# ---------------------------------------------------------------- a report of two domains
# reporter_daily (migration 11) counts it under each domain with its id in
# shared; the reports-per-day panel over both domains counts it once
vreport "Two Domains" two-1 2 "$(vsts two-a.example enforce 86400 mx.two.example 30 3)" \
	"$(vsts two-b.example enforce 86400 mx.two.example 20 2)" >"$W/two-1.json"
ok "a report of two domains" "$BIN" -d "$conn" "$W/two-1.json"
two_panel() {
	q "$(panel_sql "Reports per day by reporter" | sed "s/'ledger.example'/'two-a.example', 'two-b.example'/g")" |
		grep '|Two Domains|' | cut -d'|' -f2,3
}
for stage in "before refresh()" "after refresh()"; do
	[ "$stage" = "after refresh()" ] && q "SELECT tlsrpt.refresh()" >/dev/null
	is "$(q "SELECT count(*) FROM ((SELECT * FROM tlsrpt.reporter_daily EXCEPT ALL SELECT * FROM tlsrpt.reporter_daily_plain)
	          UNION ALL (SELECT * FROM tlsrpt.reporter_daily_plain EXCEPT ALL SELECT * FROM tlsrpt.reporter_daily)) x")" 0 \
		"$stage: reporter_daily = reporter_daily_plain"
	is "$(q "SELECT string_agg(policy_domain || ':' || reports || ':' || cardinality(shared), ' ' ORDER BY policy_domain)
	         FROM tlsrpt.reporter_daily WHERE organization_name = 'Two Domains'")" "two-a.example:1:1 two-b.example:1:1" \
		"$stage: reporter_daily: the report under each domain, shared"
	is "$(two_panel)" "Two Domains|1" "$stage: Grafana, reports per day over both domains: counted once"
done

# ---------------------------------------------------------------- --summary
fits80() {
	awk 'length($0) > 80 { print NR ": " length($0) ": " $0; bad = 1 } END { exit bad }' "$W/out"
}
ingest_noin --summary --domain drift.example
expect_quiet "--summary --domain drift.example"
ok "--summary: every line fits in 80 columns" fits80
flat=$(tr -s ' \n' '  ' <"$W/out")
like "$flat" "certificate-host-mismatch: $RECENT_FAILED failed sessions MX: mx2\.drift\.example \($RECENT_FAILED\) stale: $RECENT_FAILED of them under a stale MTA-STS policy: mode testing, max_age 86400, replaced on $(vday 11) fix:" \
	"--summary: the failures under the stale policy, counted and named"
like "$flat" "fix: serve https://mta-sts\.drift\.example/\.well-known/mta-sts\.txt \(DNS, web server, HTTP 200\)" \
	"--summary: the advice names the real MTA-STS URL"
is "$(grep -A3 '^  sts-policy-fetch-error' "$W/out" | grep -c 'stale')" 0 \
	"--summary: no stale line for the failures under the current policy"

done_testing
