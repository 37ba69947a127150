#!/bin/bash
# grafana-t.sh - every panel query of contrib/grafana/tlsrpt-dashboard.json,
# with Grafana's macros and the $domain variable expanded as Grafana's
# PostgreSQL data source would (time range: the last 30 days), run against the
# populated database of tests/data/views/populate.sh: no error, at least a row;
# then the same queries as the role of --init-db --grant-reader=ROLE (the
# README's Grafana role), which may read and run the alerts but not write, nor
# read the raw bytes of rejected mail.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

DASH=$top_srcdir/contrib/grafana/tlsrpt-dashboard.json
command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start
ok "populated database" views_populate

ok "the dashboard is valid JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$DASH"

# the $domain variable: its own query, every value quoted (Grafana's "All")
VARQ=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print([t for t in d["templating"]["list"] if t["name"] == "domain"][0]["query"])' "$DASH")
domains=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "$VARQ" 2>&1)
like "$domains" "example\.org" "the domain variable's query lists example.org"

from=$(date -u -d "@$(($(date +%s) - 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# one file per panel target: "title<TAB>refId" on the first line, then the SQL
# (expand.py DASHBOARD OUTDIR FROM TO DOMAINS)
cat >"$W/expand.py" <<'PY'
import json, os, re, sys
dash, outdir, tfrom, tto, domains = sys.argv[1:6]
os.makedirs(outdir, exist_ok=True)
quoted = ",".join("'" + d.replace("'", "''") + "'" for d in domains.split("\n") if d)
units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

def seconds(spec):
    m = re.fullmatch(r"\s*'?(\d+)([smhdw])'?\s*", spec)
    if not m:
        raise SystemExit("unknown interval " + spec)
    return int(m.group(1)) * units[m.group(2)]

def expand(sql):
    def group(m, alias):
        col, interval = m.group(1).strip(), seconds(m.group(2))
        g = "floor(extract(epoch from %s)/%d)*%d" % (col, interval, interval)
        return g + (' AS "time"' if alias else "")
    sql = re.sub(r"\$__timeGroupAlias\(([^,()]+),([^)]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^,()]+),([^)]+)\)", lambda m: group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(([^()]+)\)",
                 lambda m: "%s BETWEEN '%s' AND '%s'" % (m.group(1).strip(), tfrom, tto), sql)
    sql = sql.replace("$__timeFrom()", "'%s'" % tfrom).replace("$__timeTo()", "'%s'" % tto)
    sql = re.sub(r"\$__time\(([^()]+)\)", lambda m: '%s AS "time"' % m.group(1).strip(), sql)
    sql = sql.replace("${domain}", quoted).replace("$domain", quoted)
    if "$" in re.sub(r"\$\$", "", sql):
        raise SystemExit("unexpanded macro or variable left in: " + sql)
    return sql

def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

n = 0
for p in panels(json.load(open(dash))["panels"]):
    for t in p.get("targets", []):
        n += 1
        with open(os.path.join(outdir, "%02d.sql" % n), "w") as f:
            f.write("%s [%s]\n%s\n" % (p["title"], t.get("refId", "?"), expand(t["rawSql"])))
print(n, file=sys.stderr)
PY
python3 "$W/expand.py" "$DASH" "$W/panels" "$from" "$to" "$domains" || bail "cannot expand the panel queries"

n=$(ls "$W/panels" | wc -l)
ok "the dashboard has at least 8 panel queries ($n)" test "$n" -ge 8
for f in "$W/panels"/*.sql; do
	title=$(head -n 1 "$f")
	tail -n +2 "$f" >"$W/q.sql"
	out=$(psql -X -qAt -v ON_ERROR_STOP=1 -f "$W/q.sql" 2>&1)
	rc=$?
	is "$rc" 0 "panel \"$title\": runs without error"
	[ "$rc" = 0 ] || diag "$out" "$(cat "$W/q.sql")"
	rows=$(printf '%s' "$out" | grep -c '')
	ok "panel \"$title\": returns rows ($rows)" test "$rows" -ge 1
done

# time series panels return a "time" column: the UTC midnight of each day
PGTZ=UTC psql -X -qAt -v ON_ERROR_STOP=1 -f <(tail -n +2 "$W/panels/01.sql") >"$W/ts.out" 2>&1
first=$(head -n 1 "$W/ts.out" | cut -d'|' -f1)
like "$first" "^[0-9]{4}-[0-9]{2}-[0-9]{2} 00:00:00\+00$" "sessions over time: time is a UTC midnight"
is "$(awk -F'|' '{ s += $2; f += $3 } END { print s "/" f }' "$W/ts.out")" "6667/625" \
	"sessions over time: successful/failed summed over the 30 days"

# ---------------------------------------------------------------- --grant-reader
# The dashboard's data source connects as a role made by --grant-reader: it runs
# every panel's query, and nothing that writes.
psql -X -qAt -v ON_ERROR_STOP=1 -c "CREATE ROLE grafana_reader LOGIN" >/dev/null 2>&1 ||
	bail "cannot create role grafana_reader"
# with no grant, a panel fails (so the checks below can fail)
out=$(psql -X -qAt -U grafana_reader -c "SELECT count(*) FROM tlsrpt.daily_domain" 2>&1)
like "$out" "permission denied" "before --grant-reader, grafana_reader cannot read tlsrpt.daily_domain"
psql -X -qAt -c "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.rejected)" >"$W/counts"
ingest_noin -d "$(pg_conninfo postgres)" --init-db --grant-reader=grafana_reader
is "$rc" 0 "--init-db --grant-reader=grafana_reader" || diag "$(cat "$W/err")"
like "$(cat "$W/out")" "role grafana_reader may now read schema tlsrpt" "it says what it granted"
ingest_noin -d "$(pg_conninfo postgres)" --init-db --grant-reader=grafana_reader
is "$rc" 0 "--grant-reader again: harmless" || diag "$(cat "$W/err")"
ingest_noin -d "$(pg_conninfo postgres)" --init-db --grant-reader=no_such_role
is "$rc" 78 "--grant-reader with a role that does not exist: exit 78" || diag "$(cat "$W/err")"

as_reader() { psql -X -qAt -v ON_ERROR_STOP=1 -U grafana_reader "$@" 2>&1; }
out=$(as_reader -c "$VARQ")
is "$?" 0 "as grafana_reader: the domain variable's query runs" || diag "$out"
for f in "$W/panels"/*.sql; do
	title=$(head -n 1 "$f")
	tail -n +2 "$f" >"$W/q.sql"
	out=$(as_reader -f "$W/q.sql")
	rc=$?
	# the same rows as the owner saw: the role reads everything the panel needs
	want=$(psql -X -qAt -v ON_ERROR_STOP=1 -f "$W/q.sql" 2>&1)
	is "$rc:$out" "0:$want" "as grafana_reader: panel \"$title\" runs, with the owner's rows"
done
out=$(as_reader -c "SELECT count(*) FROM tlsrpt.alerts()")
like "$out" "^[0-9]+$" "as grafana_reader: tlsrpt.alerts() runs"
for fn in "alert_failure_rate()" "alert_new_result_type()" "alert_silent_reporter()" "alert_critical_failure()" \
	"alert_stale_policy()"; do
	out=$(as_reader -c "SELECT count(*) FROM tlsrpt.$fn")
	like "$out" "^[0-9]+$" "as grafana_reader: tlsrpt.$fn runs"
done
out=$(as_reader -c "SELECT count(*) FROM tlsrpt.rejected WHERE reason IS NOT NULL AND raw_size > 0")
is "$out" 2 "as grafana_reader: the rejected mail's reason and size are readable"
out=$(as_reader -c "SELECT raw FROM tlsrpt.rejected LIMIT 1")
like "$out" "permission denied" "as grafana_reader: the raw bytes of rejected mail are not"
out=$(as_reader -c "SELECT * FROM tlsrpt.rejected LIMIT 1")
like "$out" "permission denied" "as grafana_reader: nor through SELECT *"

# no writes of any kind, on any table
for t in report policy failure rejected schema_version; do
	for stmt in "DELETE FROM tlsrpt.$t" "UPDATE tlsrpt.$t SET $(
		psql -X -qAt -c "SELECT attname FROM pg_attribute WHERE attrelid = 'tlsrpt.$t'::regclass AND attnum > 0 AND NOT attisdropped AND attidentity = '' ORDER BY attnum LIMIT 1"
	) = NULL" "TRUNCATE tlsrpt.$t" "INSERT INTO tlsrpt.$t DEFAULT VALUES"; do
		out=$(as_reader -c "$stmt")
		like "$out" "permission denied" "as grafana_reader: ${stmt%% SET*} refused"
	done
done
# nor through a function that writes: emptying the rollups needs the caller's own rights
psql -X -qAt -c "SELECT tlsrpt.refresh()" >/dev/null
for fn in "tlsrpt.rollup_reset()" "tlsrpt.rollup_clear()"; do
	out=$(as_reader -c "SELECT $fn")
	like "$out" "permission denied" "as grafana_reader: $fn refused"
done
is "$(psql -X -qAt -c "SELECT count(*) > 0 FROM tlsrpt.rollup_daily_domain")" t "the rollups are still there"
out=$(as_reader -c "CREATE VIEW tlsrpt.mine AS SELECT 1")
like "$out" "permission denied" "as grafana_reader: CREATE in schema tlsrpt refused"
out=$(as_reader -c "INSERT INTO tlsrpt.report (organization_name, report_id, date_start, date_end) VALUES ('x', 'y', now(), now())")
like "$out" "permission denied" "as grafana_reader: a report cannot be inserted"
is "$(psql -X -qAt -c "SELECT (SELECT count(*) FROM tlsrpt.report) || '/' || (SELECT count(*) FROM tlsrpt.rejected)")" \
	"$(cat "$W/counts")" "the reader changed no row"

# A view a later migration adds (made by the role that runs --init-db) is
# readable at once: default privileges.
psql -X -qAt -v ON_ERROR_STOP=1 -c "CREATE VIEW tlsrpt.later_view AS SELECT count(*) AS n FROM tlsrpt.report" \
	-c "CREATE FUNCTION tlsrpt.alert_later() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM tlsrpt.report'" \
	>/dev/null 2>&1 || bail "cannot create the later view"
out=$(as_reader -c "SELECT n FROM tlsrpt.later_view")
is "$out" "$(psql -X -qAt -c "SELECT count(*) FROM tlsrpt.report")" "as grafana_reader: a view added later is readable"
out=$(as_reader -c "SELECT tlsrpt.alert_later() >= 0")
is "$out" t "as grafana_reader: a function added later runs"

# ---------------------------------------------------------------- the session panels' values
# A second database with tests/data/numbers/fixtures.py's reports (Microsoft's
# sts + tlsa policies for the same sessions, a host report): the figures the
# panels show, against those fixtures.py computed from the reports.
NOW=$(date -u +%s)
python3 "$top_srcdir/tests/data/numbers/fixtures.py" "$W/numbers" "$NOW" || bail "fixtures.py failed"
psql -X -qAt -c "CREATE DATABASE numbers" >/dev/null
"$BIN" -d "$(pg_conninfo numbers)" --init-db >/dev/null
ok "numbers database populated" "$BIN" -d "$(pg_conninfo numbers)" "$W"/numbers/*.json
psql -X -qAt -d numbers -c "UPDATE tlsrpt.report SET received_at = date_end + interval '1 second'" >/dev/null
ndomains=$(psql -X -qAt -d numbers -c "$VARQ")
python3 "$W/expand.py" "$DASH" "$W/npanels" "$from" "$to" "$ndomains" 2>/dev/null || bail "cannot expand the panel queries"
python3 "$W/expand.py" "$DASH" "$W/dpanels" "$from" "$to" dual.example 2>/dev/null || bail "cannot expand the panel queries"
# panel TITLE DIR: the output of that panel's query on the numbers database
panel() {
	local f
	f=$(grep -l -x -F "$1 [A]" "$2"/*.sql | head -n 1)
	[ -n "$f" ] || { echo "no panel $1"; return; }
	tail -n +2 "$f" | PGTZ=UTC psql -X -qAt -v ON_ERROR_STOP=1 -d numbers 2>&1
}
# expect PYTHON-EXPR: evaluated with e = expected.json, day(epoch) -> "YYYY-MM-DD"
expect() {
	python3 -c '
import datetime, json, sys
e = json.load(open(sys.argv[1]))
day = lambda t: datetime.datetime.fromtimestamp(int(float(t)), datetime.timezone.utc).date().isoformat()
epoch = lambda d: int(datetime.datetime.fromisoformat(d).replace(tzinfo=datetime.timezone.utc).timestamp())
print(eval(sys.argv[2]))' "$W/numbers/expected.json" "$1"
}
is "$(panel "Sessions over time (successful vs failed)" "$W/npanels")" \
	"$(expect '"\n".join("%s 00:00:00+00|%d|%d" % (d, v["successful"], v["failed"]) for d, v in sorted(e["all_days"].items()))')" \
	"sessions over time: each session once per report and domain, host reports left out"
is "$(panel "Sessions over time (successful vs failed)" "$W/dpanels" | head -n 3 | tail -n 1 | cut -d'|' -f2-)" "2|0" \
	"sessions over time, domain dual.example: yesterday Microsoft's sts + tlsa report counts 2 sessions (by hand)"
is "$(panel "Sessions and failure rate in the period" "$W/npanels" | grep '^dual\.example|')" \
	"$(expect '"dual.example|%(sessions)d|%(failed)d|%(r)s|3|f" % dict(e["domain"]["dual.example"], r="%.2f" % (100.0 * e["domain"]["dual.example"]["failed"] / e["domain"]["dual.example"]["sessions"]))')" \
	"sessions and failure rate in the period: dual.example"
is "$(panel "Sessions and failure rate in the period" "$W/npanels" | grep '^mail\.mox\.example|' | cut -d'|' -f2,6)" "20|t" \
	"sessions and failure rate in the period: the host report is marked"
rates=$(panel "Failure rate per domain (the 10 with the most failed sessions)" "$W/npanels" | grep '|dual\.example|')
is "$(printf '%s\n' "$rates" | python3 -c '
import sys
print(",".join("%.6f" % float(l.split("|")[2]) for l in sys.stdin.read().splitlines()))')" \
	"$(expect '",".join("%.6f" % (100.0 * v["failed"] / v["sessions"]) for k, v in sorted(e["daily"].items()) if k.endswith("|dual.example"))')" \
	"failure rate per domain: dual.example, each day"
is "$(panel "Top failing receiving IPs" "$W/npanels" | cut -d'|' -f1,3)" "198.51.100.1|6" \
	"top failing receiving IPs: 2 + 1 + 3, the failure listed under both policies once (by hand)"
is "$(panel "Failures by result type and MX (the 100 with the most failed sessions)" "$W/npanels" | cut -d'|' -f1,2,4 | sort)" \
	"$(expect '"\n".join(sorted("%s|%s|%d" % (k.split("|")[2], k.split("|")[3], v) for k, v in e["failures"].items()))')" \
	"failures by result type and MX"

# ---------------------------------------------------------------- the panels that rank
# Twelve domains, domain K with K failed sessions of 100 (K = 0..11) on one day,
# domain 5 with 5 more on another day, and wide.example with 105 failure rows
# of more failed sessions each: the failure-rate panel draws the ten domains
# with the most failed sessions (wide.example, 3..11 and 5), each day's rate;
# the selection's order and the ones left out do not matter. The failures
# table shows the 100 groups with the most failed sessions, the sending IPs
# the 20.
python3 - "$W/many" "$NOW" <<'PY' || bail "cannot write the ranking reports"
import datetime, json, os, sys
out, now = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
def day(k):
    return (datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date() - datetime.timedelta(days=k)).isoformat()
def report(n, k, dom, ok, bad):
    r = {"organization-name": "Rank Test", "contact-info": "tlsrpt@rank.example", "report-id": "rank-%d" % n,
         "date-range": {"start-datetime": day(k) + "T00:00:00Z", "end-datetime": day(k) + "T23:59:59Z"},
         "policies": [{"policy": {"policy-type": "sts", "policy-domain": dom,
                                  "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.%s" % dom, "max_age: 86400"]},
                       "summary": {"total-successful-session-count": ok, "total-failure-session-count": bad},
                       "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
                                            "receiving-mx-hostname": "mx." + dom, "failed-session-count": bad}] if bad else []}]}
    json.dump(r, open(os.path.join(out, "rank-%d.json" % n), "w"))
for k in range(12):
    report(k, 2, "rank%02d.example" % k, 100 - k, k)
report(12, 3, "rank05.example", 95, 5)
# wide.example: 105 failure rows, MX 001..105 with 1001..1105 failed sessions,
# from 105 sending IPs (above every rank domain's) to 105 receiving IPs
r = {"organization-name": "Wide Test", "report-id": "wide-1",
     "date-range": {"start-datetime": day(2) + "T00:00:00Z", "end-datetime": day(2) + "T23:59:59Z"},
     "policies": [{"policy": {"policy-type": "sts", "policy-domain": "wide.example"},
                   "summary": {"total-successful-session-count": 0, "total-failure-session-count": sum(range(1001, 1106))},
                   "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "198.51.100.%d" % i,
                                        "receiving-mx-hostname": "mx%03d.wide.example" % i,
                                        "receiving-ip": "203.0.113.%d" % i,
                                        "failed-session-count": 1000 + i} for i in range(1, 106)]}]}
json.dump(r, open(os.path.join(out, "wide.json"), "w"))
# nine more domains with one MTA-STS policy, and changer.example with two
# (testing, then enforce): 22 domains for the policy panel's 20
def sts(n, k, dom, mode):
    r = {"organization-name": "Sts Test", "report-id": "sts-%d" % n,
         "date-range": {"start-datetime": day(k) + "T00:00:00Z", "end-datetime": day(k) + "T23:59:59Z"},
         "policies": [{"policy": {"policy-type": "sts", "policy-domain": dom,
                                  "policy-string": ["version: STSv1", "mode: " + mode, "mx: mx." + dom, "max_age: 86400"]},
                       "summary": {"total-successful-session-count": 10, "total-failure-session-count": 0}}]}
    json.dump(r, open(os.path.join(out, "sts-%d.json" % n), "w"))
for k in range(9):
    sts(k, 2, "flat%02d.example" % k, "enforce")
sts(9, 3, "changer.example", "testing")
sts(10, 2, "changer.example", "enforce")
# one report listing 100 more domains: more than 100 domains in all, so that
# "All" is every domain (tlsrpt.every_domain) and the reports-per-day panel
# reads the per-day totals
r = {"organization-name": "Pad Test", "report-id": "pad-1",
     "date-range": {"start-datetime": day(2) + "T00:00:00Z", "end-datetime": day(2) + "T23:59:59Z"},
     "policies": [{"policy": {"policy-type": "no-policy-found", "policy-domain": "pad%03d.example" % i},
                   "summary": {"total-successful-session-count": 20, "total-failure-session-count": 0}}
                  for i in range(100)]}
json.dump(r, open(os.path.join(out, "pad.json"), "w"))
PY
psql -X -qAt -c "CREATE DATABASE many" >/dev/null
"$BIN" -d "$(pg_conninfo many)" --init-db >/dev/null
ok "the ranking reports stored" "$BIN" -d "$(pg_conninfo many)" "$W"/many/*.json
mdomains=$(psql -X -qAt -d many -c "$VARQ")
is "$(printf '%s\n' "$mdomains" | grep -c '^rank')" 12 "the domain variable lists the twelve domains"
mpanel() { # TITLE: that panel's output on the database many
	local f
	f=$(grep -l -x -F "$1 [A]" "$W/mpanels"/*.sql | head -n 1)
	[ -n "$f" ] || { echo "no panel $1"; return; }
	tail -n +2 "$f" | psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1
}
python3 "$W/expand.py" "$DASH" "$W/mpanels" "$from" "$to" "$mdomains" 2>/dev/null || bail "cannot expand the panel queries"
mrows=$(f=$(grep -l -x -F "Failure rate per domain (the 10 with the most failed sessions) [A]" "$W/mpanels"/*.sql | head -n 1) &&
	tail -n +2 "$f" | psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1)
is "$(printf '%s\n' "$mrows" | cut -d'|' -f2 | sort -u | tr '\n' ' ')" \
	"rank03.example rank04.example rank05.example rank06.example rank07.example rank08.example rank09.example rank10.example rank11.example wide.example " \
	"failure rate per domain: the ten domains with the most failed sessions"
is "$(printf '%s\n' "$mrows" | grep '|rank05\.example|' | cut -d'|' -f3 | xargs printf '%.2f ')" "5.00 5.00 " \
	"failure rate per domain: rank05.example, 5 of 100 on each of its two days"
# ten domains or fewer selected: every one of them, without ranking first
# (the same rows as the ranked "All" for those domains); the same for the 20
# of the MTA-STS panel
python3 "$W/expand.py" "$DASH" "$W/fpanels" "$from" "$to" "$(printf '%s\n' rank05.example rank11.example wide.example changer.example none.example)" \
	2>/dev/null || bail "cannot expand the panel queries"
fpanel() { # TITLE [SED]: that panel's output on the database many, five domains selected
	local f
	f=$(grep -l -x -F "$1 [A]" "$W/fpanels"/*.sql | head -n 1)
	[ -n "$f" ] || { echo "no panel $1"; return; }
	tail -n +2 "$f" | sed "${2:-}" | psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1 | sort
}
# skip_same TITLE N: the panel skips its ranking for N domains or fewer, and
# then draws the rows the ranked query draws; every one of the five domains
# but none.example has reports, and sts policies
skip_same() {
	local rows
	rows=$(fpanel "$1")
	is "$(printf '%s\n' "$rows" | cut -d'|' -f2 | sed 's/: .*//' | sort -u | tr '\n' ' ')" \
		"changer.example rank05.example rank11.example wide.example " \
		"$1, five domains selected: the four with reports"
	is "$(grep -c "<= $2 THEN" "$(grep -l -x -F "$1 [A]" "$W/fpanels"/*.sql)")" 1 \
		"$1: the query skips its ranking for $2 domains or fewer"
	is "$rows" "$(fpanel "$1" "s/<= $2 THEN/<= 0 THEN/")" \
		"$1, five domains selected: the same rows as ranked first"
}
skip_same "Failure rate per domain (the 10 with the most failed sessions)" 10
skip_same "MTA-STS policy over time (max_age by domain: mode; the 20 domains with the most policies)" 20
mrows=$(mpanel "Failures by result type and MX (the 100 with the most failed sessions)")
is "$(printf '%s\n' "$mrows" | grep -c '')/$(printf '%s\n' "$mrows" | cut -d'|' -f2,4,5 | sed -n '1p;$p' | tr '\n' ' ')" \
	"100/mx105.wide.example|1105|Wide Test mx006.wide.example|1006|Wide Test " \
	"failures by result type and MX: the 100 groups with the most failed sessions, each with its reporters"
mrows=$(mpanel "Top failing sending IPs")
is "$(printf '%s\n' "$mrows" | grep -c '')/$(printf '%s\n' "$mrows" | sed -n '1p;$p' | tr '\n' ' ')" \
	"20/198.51.100.105|1105|certificate-expired|Wide Test|wide.example 198.51.100.86|1086|certificate-expired|Wide Test|wide.example " \
	"top failing sending IPs: the 20 with the most failed sessions"
mrows=$(mpanel "Top failing receiving IPs")
is "$(printf '%s\n' "$mrows" | grep -c '')/$(printf '%s\n' "$mrows" | sed -n '1p;$p' | tr '\n' ' ')" \
	"20/203.0.113.105|mx105.wide.example|1105|certificate-expired 203.0.113.86|mx086.wide.example|1086|certificate-expired " \
	"top failing receiving IPs: the 20 with the most failed sessions"
mrows=$(mpanel "MTA-STS policy over time (max_age by domain: mode; the 20 domains with the most policies)")
is "$(printf '%s\n' "$mrows" | cut -d'|' -f2 | sed 's/: .*//' | sort -u | tr '\n' ' ')" \
	"changer.example flat00.example flat01.example flat02.example flat03.example flat04.example flat05.example flat06.example flat07.example flat08.example rank00.example rank01.example rank02.example rank03.example rank04.example rank05.example rank06.example rank07.example rank08.example rank09.example " \
	"MTA-STS policy over time: the 20 domains with the most policies, ties by name"
is "$(printf '%s\n' "$mrows" | grep '|changer\.example: ' | cut -d'|' -f2,3 | sort | tr '\n' ' ')" \
	"changer.example: enforce|86400 changer.example: testing|86400 " \
	"MTA-STS policy over time: changer.example's two policies, a series each"
# reports per day by reporter, every domain selected: the totals per day
# (Rank Test 12 + 1, Wide Test 1, Pad Test 1: its 100 domains once; Sts Test
# is loop-only, at most 10 sessions a day, and left out)
is "$(psql -X -qAt -d many -c "SELECT tlsrpt.every_domain(ARRAY[$(printf "'%s'," $mdomains | sed 's/,$//')])")" t \
	"every_domain(): the variable's list is every domain"
mrows=$(mpanel "Reports per day by reporter")
is "$(printf '%s\n' "$mrows" | cut -d'|' -f2,3 | sort | tr '\n' ' ')" \
	"Pad Test|1 Rank Test|1 Rank Test|12 Wide Test|1 " \
	"reports per day by reporter, All: each report once, from the totals"
f=$(grep -l -x -F "Reports per day by reporter [A]" "$W/mpanels"/*.sql | head -n 1)
is "$(tail -n +2 "$f" | sed "s/'changer\.example',//g" | tee "$W/but-one.sql" | grep -c "'changer")|$(
	psql -X -qAt -v ON_ERROR_STOP=1 -d many -f "$W/but-one.sql" 2>&1 | cut -d'|' -f2,3 | sort | tr '\n' ' ')" \
	"0|Pad Test|1 Rank Test|1 Rank Test|12 Wide Test|1 " \
	"reports per day by reporter, every domain but changer.example: the same, from the per-domain rows"
# selections LEFT_OUT: the selections the comparisons below run, one a line,
# "name|quoted list": every domain, every domain but LEFT_OUT (more than 100,
# not all) and three
selections() {
	local all
	all=$(printf "'%s'," $mdomains)
	printf '%s\n' "all|${all%,}" \
		"all but $1|$(printf '%s' "$all" | sed "s/'${1//./\\.}',//; s/,$//")" \
		"three|'rank05.example','changer.example','wide.example'"
}
# rows_same STAGE LEFT_OUT ORDER TEXT FAST PLAIN: for each selection
# (selections LEFT_OUT), the queries FAST and PLAIN give the same rows, in
# order (ORDER "ordered") or as sets ("sorted"); both in one transaction
# (late_by and silent follow now()); @SEL@ in them is the selection's list
rows_same() {
	local stage=$1 left_out=$2 order=$3 text=$4 fast=$5 plain=$6 sel name out a b sels
	mapfile -t sels < <(selections "$left_out")
	for sel in "${sels[@]}"; do
		name=${sel%%|*} sel=${sel#*|}
		out=$(printf 'BEGIN;\n%s;\n\\echo ---\n%s;\nCOMMIT;\n' "${fast//@SEL@/"$sel"}" "${plain//@SEL@/"$sel"}" |
			psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1)
		a=$(printf '%s\n' "$out" | sed '/^---$/,$d') b=$(printf '%s\n' "$out" | sed '1,/^---$/d')
		if [ "$order" = sorted ]; then
			a=$(printf '%s\n' "$a" | sort) b=$(printf '%s\n' "$b" | sort)
		fi
		is "$a" "$b" "$text, $stage, $name"
	done
}
# functions_same STAGE: each function a panel calls against the SQL it stands
# for, for every domain, every domain but one (more than 100, not all) and
# three:
# - reports_per_day() (migration 18): the panel's SQL before it, both ways in
#   one query;
# - domain_period() (migration 19): the sums over daily_domain (every domain
#   and all but one: the running sums; three: the view);
# - reporter_ledger_first() and failures_top() (migration 20): the rows they
#   stand for in order, all of them (n = 1000: wide.example's 105 failure
#   groups fill the first 100), each way (no filter, a hashed set, "= ANY")
functions_same() { # STAGE
	rows_same "$1" changer.example sorted "reports_per_day(): the rows of the panel's SQL before it" \
		"SELECT * FROM tlsrpt.reports_per_day('$from', '$to', ARRAY[@SEL@])" "$(cat <<SQL
WITH e AS MATERIALIZED (SELECT tlsrpt.every_domain(ARRAY[@SEL@]) AS every)
SELECT * FROM (
  SELECT day_start AS "time", organization_name AS metric, reports AS value
  FROM tlsrpt.reporter_daily_total
  WHERE day_start BETWEEN '$from' AND '$to' AND (SELECT every FROM e)
  UNION ALL
  SELECT "time", metric, n + (SELECT count(DISTINCT i) FROM unnest(shared) AS i) AS value
  FROM (SELECT day_start AS "time", organization_name AS metric,
          sum(reports - cardinality(shared)) AS n, tlsrpt.array_concat(shared) AS shared
        FROM tlsrpt.reporter_daily
        WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN (@SEL@) AND NOT (SELECT every FROM e)
        GROUP BY 1, 2) d) x
WHERE coalesce(metric, '') NOT IN
      (SELECT organization_name FROM tlsrpt.reporter_ledger
       WHERE policy_domain IN (@SEL@) AND organization_name IS NOT NULL
       GROUP BY 1 HAVING bool_and(loop_only))
ORDER BY 1
SQL
)"
	rows_same "$1" changer.example sorted "domain_period(): the sums over daily_domain" \
		"SELECT * FROM tlsrpt.domain_period('$from', '$to', ARRAY[@SEL@])" "$(cat <<SQL
SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report)
FROM tlsrpt.daily_domain
WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN (@SEL@)
GROUP BY 1
SQL
)"
	rows_same "$1" wide.example ordered "reporter_ledger_first(): the rows of reporter_ledger, in order" \
		"SELECT * FROM tlsrpt.reporter_ledger_first(ARRAY[@SEL@], 1000)" "$(cat <<SQL
SELECT * FROM tlsrpt.reporter_ledger WHERE policy_domain IN (@SEL@)
ORDER BY silent DESC, loop_only, late_by DESC NULLS LAST, organization_name, policy_domain
LIMIT 1000
SQL
)"
	rows_same "$1" wide.example ordered "failures_top(): the rows of the panel's SQL before it (every group), in order" \
		"SELECT * FROM tlsrpt.failures_top('$from', '$to', ARRAY[@SEL@], 1000)" "$(cat <<SQL
SELECT t.result_type, t.receiving_mx_hostname, t.policy_domain, t.failed,
  (SELECT string_agg(DISTINCT f.organization_name, ', ') FROM tlsrpt.failure_daily f
   WHERE f.day_start BETWEEN '$from' AND '$to' AND f.policy_domain = t.policy_domain
     AND f.result_type IS NOT DISTINCT FROM t.result_type
     AND f.receiving_mx_hostname IS NOT DISTINCT FROM t.receiving_mx_hostname),
  t.last_day
FROM (SELECT result_type, receiving_mx_hostname, policy_domain, sum(failed_sessions) AS failed, max(day) AS last_day
      FROM tlsrpt.failure_daily
      WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN (@SEL@)
      GROUP BY 1, 2, 3
      ORDER BY 4 DESC, 1, 2, 3
      LIMIT 1000) t
ORDER BY 4 DESC, 1, 2, 3
SQL
)"
}
functions_same "reports pending"
# the period table and the failure-rate panel, All, against their SQL before
# migration 19
period_panels_same() { # STAGE
	is "$(mpanel "Sessions and failure rate in the period")" "$(psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1 <<SQL
SELECT policy_domain AS "policy domain",
  sum(sessions) AS sessions,
  sum(failed) AS failed,
  round(100.0 * sum(failed) / nullif(sum(sessions), 0), 2) AS "failure rate %",
  count(DISTINCT day) AS days,
  bool_or(host_report) AS "host report"
FROM tlsrpt.daily_domain
WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN ($(printf "'%s'," $mdomains | sed 's/,$//'))
GROUP BY 1
ORDER BY 4 DESC NULLS LAST, 1
SQL
)" "sessions and failure rate in the period, $1, All: the rows of its SQL before migration 19"
	is "$(mpanel "Failure rate per domain (the 10 with the most failed sessions)" | sort)" "$(psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1 <<SQL | sort
WITH top AS (
  SELECT policy_domain FROM tlsrpt.daily_domain
  WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN ($(printf "'%s'," $mdomains | sed 's/,$//'))
  GROUP BY 1
  ORDER BY sum(failed) DESC, sum(failed) / nullif(sum(sessions), 0) DESC NULLS LAST, 1
  LIMIT 10)
SELECT day_start AS "time", policy_domain AS metric, 100.0 * sum(failed) / nullif(sum(sessions), 0) AS value
FROM tlsrpt.daily_domain
WHERE day_start BETWEEN '$from' AND '$to' AND policy_domain IN (SELECT policy_domain FROM top)
GROUP BY 1, 2
SQL
)" "failure rate per domain, $1, All: the rows of its SQL before migration 19"
}
period_panels_same "reports pending"
psql -X -qAt -d many -c "SELECT tlsrpt.refresh()" >/dev/null
is "$(mpanel "Reports per day by reporter" | cut -d'|' -f2,3 | sort | tr '\n' ' ')" \
	"Pad Test|1 Rank Test|1 Rank Test|12 Wide Test|1 " \
	"reports per day by reporter, All, after refresh(): the same, from the rolled-up totals"
functions_same "after refresh()"
period_panels_same "after refresh()"
# 192.0.2.1 sent the rank domains' failures: 1 + ... + 11 + 5 = 71 sessions, below the 20 wide ones
is "$(psql -X -qAt -d many -c "SELECT count(*) FROM tlsrpt.failure_row WHERE sending_mta_ip = '192.0.2.1'")" 12 \
	"the rank domains' failures come from one IP, left out of the twenty"

# the reporter ledger for All: the first 100 rows of its order, each with its
# latest report's sender (the whole ledger joined with latest_report, cut,
# in the same transaction: "days late" follows now()); every report with a
# sender of its own, and a second reporter for two domains
python3 - "$W/share.json" "$NOW" <<'PY' || bail "cannot write the shared report"
import datetime, json, sys
d = (datetime.datetime.fromtimestamp(int(sys.argv[2]), datetime.timezone.utc).date() - datetime.timedelta(days=1)).isoformat()
json.dump({"organization-name": "Share Test", "report-id": "share-1",
           "date-range": {"start-datetime": d + "T00:00:00Z", "end-datetime": d + "T23:59:59Z"},
           "policies": [{"policy": {"policy-type": "sts", "policy-domain": dom},
                         "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}
                        for dom in ("wide.example", "rank05.example")]}, open(sys.argv[1], "w"))
PY
ok "a second reporter of wide.example and rank05.example" "$BIN" -d "$(pg_conninfo many)" "$W/share.json"
psql -X -qAt -d many -c "UPDATE tlsrpt.report SET submitter = 'r' || id || '@sender.example'" >/dev/null
f=$(grep -l -x -F "Reporter ledger (silent and late first: the first 100) [A]" "$W/mpanels"/*.sql | head -n 1)
out=$({ echo "BEGIN;"; tail -n +2 "$f"; echo ";"; echo '\echo ---'
	echo "SELECT organization_name, policy_domain, last_end, g.reports, round(cadence, 1),
	       round(extract(epoch FROM late_by) / 86400, 1), silent, loop_only, l.sender
	FROM tlsrpt.reporter_ledger g LEFT JOIN tlsrpt.latest_report l USING (organization_name, policy_domain)
	ORDER BY silent DESC, loop_only, late_by DESC NULLS LAST, 1, 2;"
	echo "COMMIT;"; } | psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1)
panel=$(printf '%s\n' "$out" | sed '/^---$/,$d') whole=$(printf '%s\n' "$out" | sed '1,/^---$/d')
is "$(printf '%s\n' "$panel" | grep -c '')|$(printf '%s\n' "$panel" | md5sum)" \
	"100|$(printf '%s\n' "$whole" | head -n 100 | md5sum)" \
	"reporter ledger, All: the first 100 rows of the whole ledger, with their senders"
ok "reporter ledger, All: the whole ledger has more than 100 rows" test "$(printf '%s\n' "$whole" | grep -c '')" -gt 100
is "$(printf '%s\n' "$whole" | grep -E '^(Share|Wide|Rank) Test[|](wide|rank05)[.]example[|]' | cut -d'|' -f1,2,9 |
	sed 's/|mail:r[0-9]*@sender.example$/|mail:r#@sender.example/' | sort | tr '\n' ' ')" \
	"Rank Test|rank05.example|mail:r#@sender.example Share Test|rank05.example|mail:r#@sender.example Share Test|wide.example|mail:r#@sender.example Wide Test|wide.example|mail:r#@sender.example " \
	"reporter ledger: two reporters of one domain, each with its own latest sender"
f=$(grep -l -x -F "Reporter ledger (silent and late first: the first 100) [A]" "$W/fpanels"/*.sql | head -n 1)
out=$({ echo "BEGIN;"; tail -n +2 "$f"; echo ";"; echo '\echo ---'
	echo "SELECT organization_name, policy_domain, last_end, g.reports, round(cadence, 1),
	       round(extract(epoch FROM late_by) / 86400, 1), silent, loop_only, l.sender
	FROM tlsrpt.reporter_ledger g LEFT JOIN tlsrpt.latest_report l USING (organization_name, policy_domain)
	WHERE policy_domain IN ('rank05.example', 'rank11.example', 'wide.example', 'changer.example', 'none.example')
	ORDER BY silent DESC, loop_only, late_by DESC NULLS LAST, 1, 2;"
	echo "COMMIT;"; } | psql -X -qAt -v ON_ERROR_STOP=1 -d many 2>&1)
is "$(printf '%s\n' "$out" | sed '/^---$/,$d')" "$(printf '%s\n' "$out" | sed '1,/^---$/d')" \
	"reporter ledger, five domains selected: every row, each with its own reporter's latest sender"

done_testing
