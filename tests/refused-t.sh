#!/bin/bash
# refused-t.sh - what the database refuses, against a real PostgreSQL: a report
# the database will not take sinks only itself (the good reports of the same
# message are stored); the server's error text, cut and translated, is mended
# before it is stored as the reason; a message that fails as data ends in
# tlsrpt.rejected (exit 0), never in a 75 forever, and a backfill goes past it;
# a database that is not UTF8 is refused by --init-db and -n, and a delivery
# into one stores or rejects, and never defers for good.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"

# A translated server: the German messages of PostgreSQL, when the locale can be made here.
LOC=
if command -v localedef >/dev/null 2>&1 && [ -d /usr/share/i18n/locales ] &&
	ls /usr/share/locale/de/LC_MESSAGES/postgres*.mo >/dev/null 2>&1; then
	mkdir -p "$W/loc" && chmod 755 "$W/loc"
	localedef -i de_DE -f UTF-8 "$W/loc/de_DE.UTF-8" >/dev/null 2>&1 && LOC=$W/loc
fi
if [ -n "$LOC" ]; then
	export LOCPATH=$LOC
	PG_SERVER_OPTS="-c lc_messages=de_DE.UTF-8"
fi
pg_start
unset LOCPATH

ingest_noin --init-db
is "$rc" 0 "--init-db"

# report ORG ID: one report as JSON
report() {
	python3 - "$1" "$2" <<'PY'
import json, sys
print(json.dumps({"organization-name": sys.argv[1], "report-id": sys.argv[2],
    "date-range": {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"},
    "contact-info": "\u20ac" * 30 + "@refused.example",
    "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.org"},
                  "summary": {"total-successful-session-count": 5, "total-failure-session-count": 1},
                  "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 1}]}]},
    ensure_ascii=False))
PY
}
# mail ID JSON...: a report mail with one gzip attachment per JSON file
mail() {
	python3 - "$@" <<'PY'
import base64, gzip, sys
mid, files = sys.argv[1], sys.argv[2:]
out = ["From: tlsrpt@refused.example", "To: tlsrpt@example.org",
       "Subject: Report Domain: example.org Submitter: refused.example Report-ID: <%s>" % mid,
       "Message-ID: <%s-%s@refused.example>" % (mid, "\u20ac" * 30), "Date: Fri, 01 Mar 2024 12:00:00 +0000",
       "TLS-Report-Domain: example.org", "TLS-Report-Submitter: refused.example", "MIME-Version: 1.0",
       'Content-Type: multipart/report; report-type=tlsrpt; boundary="b-%s"' % mid, "",
       "--b-%s" % mid, "Content-Type: text/plain", "", "A report made by tests/refused-t.sh.", ""]
for i, f in enumerate(files):
    data = gzip.compress(open(f, "rb").read(), mtime=0)
    out += ["--b-%s" % mid, "Content-Type: application/tlsrpt+gzip",
            'Content-Disposition: attachment; filename="%s-%s-%d.json.gz"' % (mid, "\u20ac" * 30, i),
            "Content-Transfer-Encoding: base64", ""]
    b = base64.b64encode(data).decode()
    out += [b[j:j + 76] for j in range(0, len(b), 76)]
out += ["--b-%s--" % mid, ""]
sys.stdout.buffer.write("\n".join(out).encode())
PY
}

# A constraint of the administrator's: the server refuses such a report, and
# its error text (DETAIL: the failing row) quotes the name, three bytes a
# character: cut at any length, it is cut inside a character two times in three.
q "ALTER TABLE tlsrpt.report ADD CONSTRAINT refused_t_poison CHECK (organization_name NOT LIKE '%Poison%')" >/dev/null
euro=$(python3 -c 'print("\u20ac" * 300, end="")')
for k in 0 1 2; do
	pad=$(printf '%*s' "$k" '' | tr ' ' x)
	report "Good $k" "good-$k" >"$W/good$k.json"
	report "${pad}Poison $euro" "poison-$k" >"$W/poison$k.json"
	mail "mixed-$k" "$W/good$k.json" "$W/poison$k.json" >"$W/mixed$k.eml"
	mail "poison-only-$k" "$W/poison$k.json" >"$W/only$k.eml"
done

# ---------------------------------------------------------------- one report refused among good ones
for k in 0 1 2; do
	ingest "$W/mixed$k.eml"
	is "$rc" 0 "a good and a refused report ($k): exit 0"
	[ "$rc" = 0 ] || diag "$(cat "$W/err")"
	is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'good-$k'")" 1 \
		"a good and a refused report ($k): the good one is stored"
	is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE 'mixed-$k-%'")" 1 \
		"a good and a refused report ($k): the refused one is rejected, alone"
	like "$(q "SELECT reason FROM tlsrpt.rejected WHERE message_id LIKE 'mixed-$k-%'")" \
		'refused_t_poison' "a good and a refused report ($k): the reason names the constraint"
	is "$(q "SELECT convert_from(raw, 'UTF8') LIKE '%poison-$k%' FROM tlsrpt.rejected WHERE message_id LIKE 'mixed-$k-%'")" t \
		"a good and a refused report ($k): its raw copy is the refused report"
done
# the reasons are valid UTF-8 however the text was cut (the server checked them on the way in)
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE reason LIKE '%Poison%' AND octet_length(reason) <= 1024")" 3 \
	"the three reasons are stored, bounded"
if [ -n "$LOC" ]; then
	like "$(q "SELECT reason FROM tlsrpt.rejected WHERE message_id LIKE 'mixed-0-%'")" 'verletzt' \
		"a translated server: its text is kept (German)"
else
	skip "no de_DE locale could be made: the translated server is not tried"
fi

# ---------------------------------------------------------------- backfill: a refused message in the middle
mkdir -p "$W/bf"
report "Before" "before-1" >"$W/b.json"
mail before-1 "$W/b.json" >"$W/bf/1.eml"
cp "$W/only0.eml" "$W/bf/2.eml"
cp "$W/only1.eml" "$W/bf/3.eml"
cp "$W/only2.eml" "$W/bf/4.eml"
report "After" "after-1" >"$W/a.json"
mail after-1 "$W/a.json" >"$W/bf/5.eml"
ingest_noin "$W/bf"
is "$rc" 0 "backfill with refused messages in the middle: exit 0"
[ "$rc" = 0 ] || diag "$(cat "$W/err")"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id IN ('before-1', 'after-1')")" 2 \
	"backfill: the messages before and after are stored"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE 'poison-only-%'")" 3 \
	"backfill: the refused messages are rejected"
ingest_noin "$W/bf"
is "$rc" 0 "backfill again: exit 0"
like "$(cat "$W/out")" '0 report\(s\) stored, 2 already stored' "backfill again: nothing new"

# ---------------------------------------------------------------- delivery: refused, then its rejection refused too
# The administrator's constraint on rejected rows refuses any reason that is not
# ASCII: the rejection of a refused report must still be kept, in ASCII.
q "ALTER TABLE tlsrpt.rejected ADD CONSTRAINT refused_t_ascii CHECK (reason !~ '[^\x01-\x7f]' OR reason NOT LIKE '%Poison%') NOT VALID" >/dev/null
report "Poison again $euro" "poison-again" >"$W/pa.json"
mail poison-again "$W/pa.json" >"$W/pa.eml"
ingest "$W/pa.eml"
is "$rc" 0 "a report refused, and its rejection refused: exit 0"
[ "$rc" = 0 ] || diag "$(cat "$W/err")"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE 'poison-again-%'")" 1 \
	"a report refused, and its rejection refused: kept as rejected"
is "$(q "SELECT convert_from(raw, 'UTF8') LIKE '%poison-again%' FROM tlsrpt.rejected WHERE message_id LIKE 'poison-again-%'")" t \
	"a report refused, and its rejection refused: with its bytes"
q "ALTER TABLE tlsrpt.rejected DROP CONSTRAINT refused_t_ascii" >/dev/null

# ---------------------------------------------------------------- a database that is not UTF8
for enc in LATIN1 SQL_ASCII; do
	db=db_$(echo "$enc" | tr 'A-Z' 'a-z')
	q "CREATE DATABASE $db ENCODING '$enc' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
	start=$(date +%s)
	ingest_noin --init-db -o database="dbname=$db"
	is "$rc" 78 "--init-db into a $enc database: refused (78)"
	like "$(cat "$W/err")" "$enc.*UTF8|UTF8.*$enc" "--init-db into a $enc database: says why"
	ingest_noin -n -o database="dbname=$db"
	ok "-n on a $enc database: refused (exit $rc)" test "$rc" != 0
	like "$(cat "$W/out" "$W/err")" "$enc" "-n on a $enc database: says why"
	ok "$enc: refused at once" test $(($(date +%s) - start)) -lt 10
	is "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'tlsrpt'" -d "$db")" 0 "$enc: no schema made"
done
# a schema copied in by hand: deliveries store what the encoding can hold, reject the rest, exit 0
pg_dump -s -n tlsrpt postgres | psql -X -q -d db_latin1 >/dev/null 2>&1
q "ALTER TABLE tlsrpt.report DROP CONSTRAINT refused_t_poison" -d db_latin1 >/dev/null
report "Müller" "latin-1" | sed 's/€/e/g' >"$W/l1.json"
mail latin-1 "$W/l1.json" | sed 's/€/e/g' >"$W/l1.eml"
ingest "$W/l1.eml" -o database="dbname=db_latin1"
is "$rc" 0 "LATIN1 database, a name LATIN1 holds: exit 0"
is "$(PGCLIENTENCODING=UTF8 q "SELECT organization_name FROM tlsrpt.report WHERE report_id = 'latin-1'" -d db_latin1)" "Müller" \
	"LATIN1 database: the name is stored as it is (not as mojibake)"
report "Euro $euro" "latin-2" >"$W/l2.json"
mail latin-2 "$W/l2.json" >"$W/l2.eml"
ingest "$W/l2.eml" -o database="dbname=db_latin1"
is "$rc" 0 "LATIN1 database, a name LATIN1 cannot hold: exit 0 (not 75)"
[ "$rc" = 0 ] || diag "$(cat "$W/err")"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE 'latin-2-%'" -d db_latin1)" 1 \
	"LATIN1 database, a name LATIN1 cannot hold: kept as rejected"

done_testing
