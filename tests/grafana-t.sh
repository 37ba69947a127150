#!/bin/bash
# grafana-t.sh - every panel query of contrib/grafana/tlsrpt-dashboard.json,
# with Grafana's macros and the $domain variable expanded as Grafana's
# PostgreSQL data source would (time range: the last 30 days), run against the
# populated database of tests/data/views/populate.sh: no error, at least a row.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"
. "$top_srcdir/tests/data/views/populate.sh"

DASH=$top_srcdir/contrib/grafana/tlsrpt-dashboard.json
command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start
ok "populated database" views_populate

ok "the dashboard is valid JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$DASH"

# the $domain variable: its own query, every value quoted (Grafana's "All")
domains=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = [t for t in d["templating"]["list"] if t["name"] == "domain"][0]
print(v["query"])' "$DASH")" 2>&1)
like "$domains" "example\.org" "the domain variable's query lists example.org"

from=$(date -u -d "@$(($(date +%s) - 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# one file per panel target: "title<TAB>refId" on the first line, then the SQL
python3 - "$DASH" "$W/panels" "$from" "$to" "$domains" <<'PY' || bail "cannot expand the panel queries"
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

# time series panels return a "time" column of epoch seconds within the range
psql -X -qAt -v ON_ERROR_STOP=1 -f <(tail -n +2 "$W/panels/01.sql") >"$W/ts.out" 2>&1
first=$(head -n 1 "$W/ts.out" | cut -d'|' -f1)
ok "sessions over time: time is epoch seconds at a UTC midnight" test $((${first%.*} % 86400)) -eq 0
is "$(awk -F'|' '{ s += $2; f += $3 } END { print s "/" f }' "$W/ts.out")" "6667/625" \
	"sessions over time: successful/failed summed over the 30 days"

done_testing
