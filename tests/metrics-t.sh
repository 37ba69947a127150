#!/bin/bash
# metrics-t.sh - tlsrpt-ingest --metrics against a real PostgreSQL: the output
# passes "promtool check metrics" (Prometheus' own parser and linter), a
# hostile organization name (quote, backslash, newline) comes out escaped and
# reads back as sent, and every value matches what this test computes from
# its fixtures: reports of yesterday (the last complete day, UTC), of two and
# of ten days ago, two rejected inputs (one kept truncated). Nothing is
# written when the database cannot be read.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
command -v promtool >/dev/null 2>&1 || skip_all "no promtool (Debian: apt-get install prometheus)"
pg_start
ingest_noin --init-db
is "$rc" 0 "--init-db"

# ---------------------------------------------------------------- fixtures
# One report per file: organization, policy domain, days ago its (one-day)
# period was, successful sessions, and its failure rows (result type, MX, count).
mkdir "$W/r"
python3 - "$W/r" <<'PY'
import datetime, json, sys
HOSTILE = 'Evil "Org" \\ with\nnewline'
today = datetime.datetime.now(datetime.timezone.utc).date()
reports = [
    ("m1", "Good Org", "a.example", 1, 1000, [("certificate-expired", "mx1.a.example", 6),
                                             ("validation-failure", "mx2.a.example", 4)]),
    ("m2", HOSTILE, "b.example", 1, 90, [("sts-policy-fetch-error", None, 10)]),
    ("m3", "Good Org", "c.example", 10, 500, []),
    ("m4", "Other Org", "a.example", 2, 200, []),
    ("m5", "Good Org", "a.example", 2, 300, []),
]
for rid, org, dom, ago, ok, fails in reports:
    day = today - datetime.timedelta(days=ago)
    fd = []
    for rt, mx, n in fails:
        f = {"result-type": rt, "sending-mta-ip": "198.51.100.1", "failed-session-count": n}
        if mx:
            f["receiving-mx-hostname"] = mx
        fd.append(f)
    rep = {"organization-name": org, "contact-info": "tlsrpt@reporter.example", "report-id": rid,
           "date-range": {"start-datetime": "%sT00:00:00Z" % day, "end-datetime": "%sT23:59:59Z" % day},
           "policies": [{"policy": {"policy-type": "sts", "policy-domain": dom,
                                    "policy-string": ["version: STSv1", "mode: enforce", "mx: *.%s" % dom,
                                                      "max_age: 86400"]},
                         "summary": {"total-successful-session-count": ok,
                                     "total-failure-session-count": sum(n for _, _, n in fails)},
                         "failure-details": fd}]}
    json.dump(rep, open("%s/%s.json" % (sys.argv[1], rid), "w"))
PY
ingest_noin "$W"/r/m?.json
is "$rc" 0 "five reports stored"
printf '{"organization-name": "cut' >"$W/bad1.json"
ingest_noin "$W/bad1.json"
is "$rc" 0 "a broken report kept as rejected"
printf '{"organization-name": "another one cut short, and long enough to be truncated' >"$W/bad2.json"
ingest_noin -o max_rejected_raw=16 "$W/bad2.json"
is "$rc" 0 "a broken report kept truncated"

# ---------------------------------------------------------------- the output
ingest_noin --metrics
is "$rc" 0 "--metrics: exit 0"
is "$(cat "$W/err")" "" "--metrics: nothing on stderr"
cp "$W/out" "$W/metrics.prom"
promtool check metrics <"$W/metrics.prom" >"$W/promtool.out" 2>&1
is "$?|$(cat "$W/promtool.out")" "0|" "promtool check metrics: valid, and nothing to lint"
is "$(grep -c '^# TYPE tlsrpt_[a-z_]* gauge$' "$W/metrics.prom")" 8 "eight families, each a gauge"

# The expected figures, from the fixture files: the daily ones from the reports
# of yesterday; per reporter (organization, policy domain) its reports and the
# end of its latest period; the alerts (tlsrpt.alerts() defaults), by hand:
#   critical 1: certificate-expired at mx1.a.example, yesterday (a critical
#               result type, recent);
#   warning 4:  three result types new for their domain (a.example's two,
#               b.example's one: no history before), and b.example's failure
#               rate over 7 days, 10 of 100 = 10 % (over 5 %, not over 20 %;
#               a.example: 10 of 1510 = 0.7 %); no silent reporter (none
#               reports daily).
python3 - "$W/r" "$W/metrics.prom" >"$W/check.out" <<'PY'
import datetime, glob, json, re, sys
now = datetime.datetime.now(datetime.timezone.utc)
yesterday = now.date() - datetime.timedelta(days=1)
want = {}
def put(name, labels, value):
    want[(name, tuple(sorted(labels.items())))] = value
put("tlsrpt_last_complete_day_timestamp_seconds", {},
    datetime.datetime.combine(yesterday, datetime.time(), datetime.timezone.utc).timestamp())
latest, count = {}, {}
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    r = json.load(open(f))
    start = datetime.datetime.fromisoformat(r["date-range"]["start-datetime"].replace("Z", "+00:00"))
    end = datetime.datetime.fromisoformat(r["date-range"]["end-datetime"].replace("Z", "+00:00"))
    for p in r["policies"]:
        dom = p["policy"]["policy-domain"]
        key = (r["organization-name"], dom)
        count[key] = count.get(key, 0) + 1
        latest[key] = max(latest.get(key, end), end)
        if start.date() != yesterday:
            continue
        s = p["summary"]
        lab = {"policy_domain": dom, "host_report": "false"}
        k = ("tlsrpt_daily_sessions", tuple(sorted(lab.items())))
        want[k] = want.get(k, 0) + s["total-successful-session-count"] + s["total-failure-session-count"]
        k = ("tlsrpt_daily_failed_sessions", tuple(sorted(lab.items())))
        want[k] = want.get(k, 0) + s["total-failure-session-count"]
        for fd in p["failure-details"]:
            k = ("tlsrpt_daily_result_type_failed_sessions",
                 tuple(sorted(dict(lab, result_type=fd["result-type"]).items())))
            want[k] = want.get(k, 0) + fd["failed-session-count"]
for (org, dom), n in count.items():
    put("tlsrpt_reporter_reports", {"organization": org, "policy_domain": dom}, n)
    put("tlsrpt_reporter_last_report_age_seconds", {"organization": org, "policy_domain": dom},
        (now - latest[(org, dom)]).total_seconds())
put("tlsrpt_rejected_rows", {"truncated": "false"}, 1)
put("tlsrpt_rejected_rows", {"truncated": "true"}, 1)
put("tlsrpt_alerts", {"severity": "critical"}, 1)
put("tlsrpt_alerts", {"severity": "warning"}, 4)

# the samples, label values unescaped as the exposition format says
got = {}
lab_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in open(sys.argv[2], encoding="utf-8"):
    if line.startswith("#"):
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line.rstrip("\n"))
    if not m:
        print("unreadable line: %r" % line)
        continue
    labels = {k: re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n" else e.group(1), v)
              for k, v in lab_re.findall(m.group(2) or "")}
    got[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(3))
for fam in sorted({k[0] for k in want} | {k[0] for k in got}):
    w = {k: v for k, v in want.items() if k[0] == fam}
    g = {k: v for k, v in got.items() if k[0] == fam}
    slack = 300 if fam.endswith("_age_seconds") else 0
    bad = [k for k in set(w) | set(g) if k not in w or k not in g or abs(w[k] - g[k]) > slack]
    print("%s %s" % (fam, "ok" if not bad else "differs: " + "; ".join(
        "%s got %s want %s" % (dict(k[1]), g.get(k), w.get(k)) for k in sorted(bad))))
PY
while read -r fam verdict; do
	is "$verdict" ok "$fam: every sample as computed from the fixtures"
done <"$W/check.out"
is "$(cut -d' ' -f1 "$W/check.out" | tr '\n' ' ')" \
	"tlsrpt_alerts tlsrpt_daily_failed_sessions tlsrpt_daily_result_type_failed_sessions tlsrpt_daily_sessions tlsrpt_last_complete_day_timestamp_seconds tlsrpt_rejected_rows tlsrpt_reporter_last_report_age_seconds tlsrpt_reporter_reports " \
	"all eight families checked"
like "$(grep '^tlsrpt_reporter_reports{organization="Evil' "$W/metrics.prom")" \
	'^tlsrpt_reporter_reports\{organization="Evil \\"Org\\" \\\\ with\\nnewline",policy_domain="b\.example"\} 1$' \
	"the hostile organization name, escaped on one line"

# the same after tlsrpt.refresh(): the views read the rollups then
q "SELECT tlsrpt.refresh()" >/dev/null
ingest_noin --metrics
grep -v '_age_seconds' "$W/out" >"$W/after"
grep -v '_age_seconds' "$W/metrics.prom" >"$W/before"
is "$(diff "$W/before" "$W/after")" "" "after tlsrpt.refresh(): the same figures"

# a reader role (--grant-reader, as for Grafana) may read them all
q "CREATE ROLE prom LOGIN" >/dev/null
ingest_noin --init-db --grant-reader=prom
is "$rc" 0 "--grant-reader=prom"
ingest_noin --metrics -d "$(pg_conninfo) user=prom"
is "$rc" 0 "--metrics as a reader role: exit 0"
grep -v '_age_seconds' "$W/out" >"$W/reader"
is "$(diff "$W/before" "$W/reader")" "" "--metrics as a reader role: the same figures"

# contrib/cron.d-tlsrpt-ingest's line, run by sh into a textfile directory
line=$(sed -n 's/^[^#].* --metrics .*/&/p' "$top_srcdir/contrib/cron.d-tlsrpt-ingest")
cmd=$(printf '%s\n' "$line" | awk '{ $1 = $2 = $3 = $4 = $5 = $6 = ""; sub(/^ +/, ""); print }')
like "$cmd" '^d=/var/lib/prometheus/node-exporter; ' "the cron line writes to Debian's textfile directory"
mkdir "$W/textfile"
cmd=${cmd//\/var\/lib\/prometheus\/node-exporter/$W/textfile}
cmd=${cmd//-d dbname=tlsrpt/}
PATH=$(dirname "$BIN"):$PATH sh -c "$cmd" >"$W/cron.out" 2>&1
is "$?|$(cat "$W/cron.out")" "0|" "the cron line: quiet"
is "$(ls -A "$W/textfile")" "tlsrpt.prom" "the cron line: tlsrpt.prom, no temporary file left"
grep -v '_age_seconds' "$W/textfile/tlsrpt.prom" >"$W/cron.prom"
is "$(diff "$W/before" "$W/cron.prom")" "" "the cron line: the metrics"
is "$(stat -c %a "$W/textfile/tlsrpt.prom")" 644 "the cron line: readable by node_exporter"
cmd_down=${cmd//tlsrpt-ingest /tlsrpt-ingest -d \"host=$W/nosuchserver connect_timeout=5\" }
PATH=$(dirname "$BIN"):$PATH sh -c "$cmd_down" >"$W/cron.out" 2>&1
is "$(ls -A "$W/textfile")" "tlsrpt.prom" "the cron line, no server: the old file stays, no temporary file"
is "$(diff "$W/cron.prom" <(grep -v '_age_seconds' "$W/textfile/tlsrpt.prom"))" "" \
	"the cron line, no server: the old metrics unchanged"
like "$(cat "$W/cron.out")" '^4\.' "the cron line, no server: the error line, for cron to mail"

# ---------------------------------------------------------------- failures
ingest_noin --metrics -d "host=$W/nosuchserver connect_timeout=5"
expect_fail "no server" 75 4
q "DROP VIEW tlsrpt.latest_report CASCADE" >/dev/null
ingest_noin --metrics
is "$rc" 78 "a view missing: exit 78"
is "$(cat "$W/out")" "" "a view missing: nothing written, not even the families read before"

done_testing
