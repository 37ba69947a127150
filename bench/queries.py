#!/usr/bin/env python3
"""queries.py - the queries bench/scale.sh times, as psql scripts.

  queries.py DASHBOARD.json DOMAINS-FILE ONE-DOMAIN OUTDIR

Writes OUTDIR/NN.sql, one per query, the first line a "-- name" comment:
the query of each dashboard variable, then every panel target of the Grafana
dashboard with the macros expanded as Grafana's PostgreSQL data source does
(time range: the last 30 days), once with $domain = "All" (an IN list of
every domain in DOMAINS-FILE, one a line) and once with ONE-DOMAIN; then
latest_report and sts_policy_history as the panels of earlier dashboards read
them; then every alert function.
"""
import datetime
import json
import os
import re
import sys

dash, domfile, one, outdir = sys.argv[1:5]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
tfrom = (now - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
tto = now.strftime("%Y-%m-%dT%H:%M:%SZ")
units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def q(s):
    return "'" + s.replace("'", "''") + "'"


def expand(sql, domains):
    def group(m, alias):
        col, spec = m.group(1).strip(), re.fullmatch(r"\s*'?(\d+)([smhdw])'?\s*", m.group(2))
        iv = int(spec.group(1)) * units[spec.group(2)]
        return "floor(extract(epoch from %s)/%d)*%d" % (col, iv, iv) + (' AS "time"' if alias else "")
    sql = re.sub(r"\$__timeGroupAlias\(([^,()]+),([^)]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^,()]+),([^)]+)\)", lambda m: group(m, False), sql)
    sql = re.sub(r"\$__time\(([^()]+)\)", lambda m: '%s AS "time"' % m.group(1).strip(), sql)
    sql = re.sub(r"\$__timeFilter\(([^()]+)\)",
                 lambda m: "%s BETWEEN '%s' AND '%s'" % (m.group(1).strip(), tfrom, tto), sql)
    sql = sql.replace("$__timeFrom()", "'%s'" % tfrom).replace("$__timeTo()", "'%s'" % tto)
    sql = sql.replace("${domain}", domains).replace("$domain", domains)
    return sql


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


alldoms = ",".join(q(d) for d in open(domfile).read().split("\n") if d)
out = []
for v in json.load(open(dash))["templating"]["list"]:
    if v.get("type") == "query":
        out.append(("variable: %s (the dashboard's list)" % v["name"], expand(v["query"], alldoms)))
for p in panels(json.load(open(dash))["panels"]):
    for t in p.get("targets", []):
        raw = t["rawSql"]
        if "$domain" in raw or "${domain}" in raw:
            out.append(("panel: %s [All]" % p["title"], expand(raw, alldoms)))
            out.append(("panel: %s [one domain]" % p["title"], expand(raw, q(one))))
        else:
            out.append(("panel: %s" % p["title"], expand(raw, alldoms)))
# views no panel shows any more, that the dashboards of earlier versions did
# (and bench/README's figures of them)
views = [
    ("view: latest_report (reporters and their last report)",
     "SELECT organization_name, policy_domain, date_end, received_at, reports, "
     "round(extract(epoch FROM silent_for) / 86400, 1) FROM tlsrpt.latest_report "
     "WHERE policy_domain IN ($domain) ORDER BY silent_for DESC"),
    ("view: sts_policy_history",
     "SELECT policy_domain, mode, max_age, array_to_string(mx, ' '), first_seen, last_seen, reports "
     "FROM tlsrpt.sts_policy_history WHERE last_seen >= $__timeFrom() AND first_seen <= $__timeTo() "
     "AND policy_domain IN ($domain) ORDER BY 1, 5"),
]
for name, raw in views:
    out.append(("%s [All]" % name, expand(raw, alldoms)))
    out.append(("%s [one domain]" % name, expand(raw, q(one))))
for f in ["alert_failure_rate()", "alert_new_result_type()", "alert_silent_reporter()",
          "alert_critical_failure()", "alert_stale_policy()", "alerts()"]:
    out.append(("alert: %s" % f, "SELECT * FROM tlsrpt.%s" % f))
os.makedirs(outdir, exist_ok=True)
for i, (name, sql) in enumerate(out):
    with open(os.path.join(outdir, "%02d.sql" % (i + 1)), "w") as f:
        f.write("-- %s\n%s;\n" % (name, sql.strip().rstrip(";")))
