#!/bin/bash
# reprocess-t.sh - tlsrpt-ingest --reprocess against a real PostgreSQL: mail
# kept in tlsrpt.rejected (a report for a domain not in our_domains, a part
# over max_policies, a whole message refused by dkim_policy = require, one
# with a good and a broken part, a broken part, a truncated copy) runs again
# through the program with other settings: what now gives reports is stored
# and its row deleted, the rest keeps the new reason, truncated copies are
# listed; --reason and --since choose the rows; a second run changes nothing;
# the original mail delivered again afterwards adds nothing either. Every
# figure checked is computed here from the fixtures.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start
ingest_noin --init-db
is "$rc" 0 "--init-db"

# ---------------------------------------------------------------- fixtures
# report ID DOMAIN NPOLICIES: a report with NPOLICIES policies for DOMAIN, the
# policy i with i failed sessions of one failure row
report() {
	python3 - "$@" <<'PY'
import json, sys
rid, domain, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
pols = []
for i in range(1, n + 1):
    pols.append({"policy": {"policy-type": "sts", "policy-domain": domain,
                            "policy-string": ["version: STSv1", "mode: enforce", "mx: mx%d.%s" % (i, domain),
                                              "max_age: 86400"],
                            "mx-host": ["mx%d.%s" % (i, domain)]},
                 "summary": {"total-successful-session-count": 100 * i, "total-failure-session-count": i},
                 "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "198.51.100.%d" % i,
                                      "receiving-mx-hostname": "mx%d.%s" % (i, domain),
                                      "failed-session-count": i}]})
print(json.dumps({"organization-name": "Reprocess Mail Co.", "contact-info": "tlsrpt@reprocess.example",
                  "report-id": rid,
                  "date-range": {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"},
                  "policies": pols}))
PY
}
# two_parts GOODJSON ID: a report mail with that report (gzip) and a gzip part
# cut short, Message-ID <ID@two.example>
two_parts() {
	python3 - "$1" "$2" <<'PY'
import base64, gzip, hashlib, sys
good = gzip.compress(open(sys.argv[1], "rb").read(), mtime=0)
noise = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(40))
bad = gzip.compress(('{"organization-name":"%s"}' % noise).encode(), mtime=0)[:200]
def part(name, data):
    return ('--b2\nContent-Type: application/tlsrpt+gzip\nContent-Disposition: attachment; filename="%s"\n'
            'Content-Transfer-Encoding: base64\n\n%s\n' % (name, base64.encodebytes(data).decode()))
sys.stdout.write(('From: noreply@two.example\nMessage-ID: <%s@two.example>\n' % sys.argv[2])
                 + 'Subject: Report Domain: example.org Submitter: two.example\nTLS-Report-Domain: example.org\n'
                 'TLS-Report-Submitter: two.example\nMIME-Version: 1.0\n'
                 'Content-Type: multipart/report; report-type=tlsrpt; boundary="b2"\n\n'
                 + part("good.json.gz", good) + part("cut.json.gz", bad) + '--b2--\n')
PY
}
# policies and failure rows of a report file: "P|F"
counts() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("%d|%d" % (len(d["policies"]), sum(len(p.get("failure-details", [])) for p in d["policies"])))' "$1"
}

report rp-1 example.org 2 >"$W/rp-1.json"
report rp-2 example.org 3 >"$W/rp-2.json"
report rp-3 example.org 1 >"$W/rp-3.json"
report rp-4 example.org 2 >"$W/rp-4.json"
report rp-5 example.org 1 >"$W/rp-5.json"
mkmail -m rp-1@reprocess.example -f rp-1.json.gz "$W/rp-1.json" >"$W/rp-1.eml"
mkmail -m rp-2@reprocess.example -f rp-2.json.gz "$W/rp-2.json" >"$W/rp-2.eml"
mkmail -m rp-3@reprocess.example -s three.example "$W/rp-3.json" >"$W/rp-3.eml"
two_parts "$W/rp-4.json" rp-4 >"$W/rp-4.eml"
two_parts "$W/rp-5.json" rp-5 >"$W/rp-5.eml"
BAD=$top_srcdir/tests/data/backfill/bad.eml

# ---------------------------------------------------------------- what is kept as rejected
ingest "$W/rp-1.eml" -o our_domains=example.net
expect_ok "A: a report for a domain not in our_domains"
ingest "$W/rp-2.eml" -o max_policies=1
expect_ok "B: a report over max_policies"
ingest "$W/rp-3.eml" -o dkim_policy=require
expect_ok "C: a mail refused by dkim_policy = require"
ingest "$W/rp-4.eml" -o dkim_policy=require
expect_ok "D: a good and a broken part, refused by dkim_policy = require (the broken part a row of its own)"
ingest "$BAD"
expect_ok "E: a mail whose part is cut short"
mkmail -m rp-6@reprocess.example "$top_srcdir/tests/data/backfill/report.json" >"$W/rp-6.eml"
ingest "$W/rp-6.eml" -o max_rejected_raw=64 -o our_domains=nowhere.example
expect_ok "F: a rejected report kept truncated (max_rejected_raw = 64)"
ingest "$W/rp-5.eml" -o max_mime_parts=2
expect_ok "G: a good and a broken part, refused as a whole (max_mime_parts = 2)"
is "$(q "SELECT count(*) FROM tlsrpt.report")" 0 "nothing stored yet"
is "$(q "SELECT count(*) FROM tlsrpt.rejected")" 8 "eight rejected rows"
row() { q "SELECT id FROM tlsrpt.rejected WHERE message_id = '$1' AND filename IS NOT DISTINCT FROM ${2:-filename}"; }
A=$(row rp-1@reprocess.example) B=$(row rp-2@reprocess.example) C=$(row rp-3@reprocess.example)
Dw=$(row rp-4@two.example NULL) Dp=$(row rp-4@two.example "'cut.json.gz'") F=$(row rp-6@reprocess.example)
G=$(q "SELECT id FROM tlsrpt.rejected WHERE reason LIKE '%max_mime_parts%'")
E=$(q "SELECT id FROM tlsrpt.rejected WHERE reason = 'gzip data truncated' AND filename IS DISTINCT FROM 'cut.json.gz'")
is "$A $B $C $Dp $Dw $E $F $G" "1 2 3 4 5 6 7 8" "the rows in the order they came"
is "$(q "SELECT reason FROM tlsrpt.rejected WHERE id = $B")" "3 policies, over max_policies (1)" "B's reason"
is "$(q "SELECT raw_truncated FROM tlsrpt.rejected ORDER BY id" | tr '\n' ' ')" "f f f f f f t f " \
	"only F's copy is truncated"
snapshot() {
	q "SELECT md5(string_agg(concat_ws('|', id, reason, digest, md5(raw), sender, message_id), ',' ORDER BY id))
	   FROM tlsrpt.rejected"
}
timing=' [0-9.]+ s, [0-9]+ rows/s$'

# ---------------------------------------------------------------- --reason, --since
ingest_noin --reprocess --reason=POLICIES -o max_policies=2
is "$rc" 0 "--reason: exit 0"
like "$(cat "$W/out")" "^tlsrpt-ingest: 1 rejected row\(s\) reprocessed: 0 gave reports \(0 report\(s\) stored, 0 already stored\), 1 still rejected \(1 with a new reason\);$timing" \
	"--reason (case-insensitive): only B, which keeps a new reason"
is "$(q "SELECT reason FROM tlsrpt.rejected WHERE id = $B")" "3 policies, over max_policies (2)" "B's new reason"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id <> $B AND reason LIKE '%max_policies (2)%'")" 0 \
	"no other row touched"

tomorrow=$(date -u -d tomorrow +%F)
before=$(snapshot)
ingest_noin --reprocess --since="$tomorrow"
is "$rc" 0 "--since tomorrow: exit 0"
like "$(cat "$W/out")" '^tlsrpt-ingest: 0 rejected row\(s\) reprocessed' "--since tomorrow: no row"
is "$(snapshot)" "$before" "--since tomorrow: nothing changed"
ingest_noin --reprocess --since=2024-02-30
expect_fail "--since with a day that does not exist" 64 5

# ---------------------------------------------------------------- dkim_policy = require
# every mail row holds its whole mail: each is checked again (and fails)
ingest_noin --reprocess -o dkim_policy=require -o max_policies=2
is "$rc" 0 "require: exit 0"
like "$(cat "$W/out")" "^not reprocessable: rejected row $F \(received [0-9-]+ [0-9:]+, 64 of [0-9]+ bytes kept\): policy domain example.net is not one of our_domains" \
	"require: the truncated copy is listed"
like "$(tail -n 1 "$W/out")" "^tlsrpt-ingest: 7 rejected row\(s\) reprocessed: 0 gave reports \(0 report\(s\) stored, 0 already stored\), 7 still rejected \(2 with a new reason\); 1 truncated, not reprocessable \(listed above\);$timing" \
	"require: the summary"
# A's row (a report kept aside by our_domains) holds its whole mail, as every
# rejection taken out of a mail does: it is checked again like the others
for id in $A $C $Dw $G; do
	is "$(q "SELECT reason FROM tlsrpt.rejected WHERE id = $id")" \
		"not authenticated (dkim_policy = require): trust = none checks nothing" \
		"require: the whole mail $id is checked again and fails"
done
is "$(q "SELECT count(*) FROM tlsrpt.report")" 0 "require: nothing stored"

# ---------------------------------------------------------------- the settings fixed
ingest_noin --reprocess
is "$rc" 0 "reprocess: exit 0"
is "$(grep -c '' "$W/out")" 2 "reprocess: the truncated row and the summary"
like "$(tail -n 1 "$W/out")" "^tlsrpt-ingest: 7 rejected row\(s\) reprocessed: 5 gave reports \(5 report\(s\) stored, 1 already stored\), 2 still rejected \(0 with a new reason\), 1 piece\(s\) of them kept as rejected rows of their own; 1 truncated, not reprocessable \(listed above\);$timing" \
	"reprocess: A, B, C, D and G give reports; D's part and E stay; G's broken part becomes a row of its own"
# (D's part row holds D's whole mail, as ingest.c keeps a mail with its first
# rejected part: it gives rp-4, stored beside the row, which stays since its own
# part is still broken; D's whole-mail row then finds rp-4 already stored)
is "$(cat "$W/err")" "" "reprocess: nothing on stderr (not a terminal)"
for id in rp-1 rp-2 rp-3 rp-4 rp-5; do
	is "$(q "SELECT count(DISTINCT p.id) || '|' || count(f.id) FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id
	         LEFT JOIN tlsrpt.failure f ON f.policy = p.id WHERE r.report_id = '$id'")" "$(counts "$W/$id.json")" \
		"$id: its policies and failure rows"
done
is "$(q "SELECT sum(f.failed_session_count) FROM tlsrpt.failure f")" \
	"$(python3 -c 'import json, sys
print(sum(fd["failed-session-count"] for f in sys.argv[1:] for p in json.load(open(f))["policies"] for fd in p["failure-details"]))' \
		"$W"/rp-[12345].json)" "the failed sessions of the five reports"
is "$(q "SELECT report_id || '|' || message_id || '|' || coalesce(filename, 'NULL') || '|' || source
         FROM tlsrpt.report ORDER BY report_id" | tr '\n' ' ')" \
	"rp-1|rp-1@reprocess.example|rp-1.json.gz|mail rp-2|rp-2@reprocess.example|rp-2.json.gz|mail rp-3|rp-3@reprocess.example|three.example!example.org!1709251200!1709337599!001.json.gz|mail rp-4|rp-4@two.example|good.json.gz|mail rp-5|rp-5@two.example|good.json.gz|mail " \
	"each report keeps its mail's Message-ID, its part's name and source = mail"
is "$(q "SELECT submitter FROM tlsrpt.report WHERE report_id = 'rp-3'")" three.example \
	"a whole mail is read again: its TLS-Report-Submitter"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id IN ($A, $B, $C, $Dw, $G)")" 0 "their rejected rows are gone"
is "$(q "SELECT string_agg(id || ':' || reason, ' ' ORDER BY id) FROM tlsrpt.rejected WHERE id <= $G")" \
	"$Dp:gzip data truncated $E:gzip data truncated $F:policy domain example.net is not one of our_domains" \
	"D's part, E and F stay, with their reasons"
is "$(q "SELECT message_id || '|' || sender || '|' || filename || '|' || octet_length(raw) || '|' || reason
         FROM tlsrpt.rejected WHERE id > $G")" "rp-5@two.example|noreply@two.example|cut.json.gz|$(wc -c <"$W/rp-5.eml")|gzip data truncated" \
	"G's broken part: a row of its own, with G's Message-ID and sender, and G's whole mail as its copy"

# ---------------------------------------------------------------- idempotent
before=$(snapshot)
reports_before=$(q "SELECT md5(string_agg(id || report_id, ',' ORDER BY id)) FROM tlsrpt.report")
ingest_noin --reprocess
is "$rc" 0 "again: exit 0"
like "$(tail -n 1 "$W/out")" '^tlsrpt-ingest: 3 rejected row\(s\) reprocessed: 0 gave reports \(0 report\(s\) stored, 2 already stored\), 3 still rejected \(0 with a new reason\); 1 truncated' \
	"again: nothing more to do (D's part and G's part give their mail's good report again, already stored)"
is "$(snapshot)" "$before" "again: tlsrpt.rejected unchanged"
is "$(q "SELECT md5(string_agg(id || report_id, ',' ORDER BY id)) FROM tlsrpt.report")" "$reports_before" \
	"again: tlsrpt.report unchanged"

# the original mails delivered again: the same keys, nothing new
ingest "$W/rp-4.eml"
expect_ok "D delivered again"
ingest "$W/rp-5.eml"
expect_ok "G delivered again"
ingest "$W/rp-1.eml"
expect_ok "A delivered again"
is "$(snapshot)" "$before" "the mails again: tlsrpt.rejected unchanged (the broken parts have their keys)"
is "$(q "SELECT md5(string_agg(id || report_id, ',' ORDER BY id)) FROM tlsrpt.report")" "$reports_before" \
	"the mails again: no report stored twice"

# ---------------------------------------------------------------- an HTTPS POST
# kept aside by our_domains, then reprocessed: the report keeps the address it
# was posted from, so the same POST again is the same sender's and adds nothing
report rp-h example.org 1 >"$W/rp-h.json"
post() {
	GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+json \
		CONTENT_LENGTH=$(wc -c <"$W/rp-h.json") REMOTE_ADDR=192.0.2.7 ingest "$W/rp-h.json" "$@"
}
post -o our_domains=example.net
like "$(head -n 1 "$W/out")" '^Status: 400' "POST: kept aside by our_domains (400)"
ingest_noin --reprocess
is "$rc" 0 "POST reprocessed: exit 0"
is "$(q "SELECT source || '|' || host(client_addr) || '|' || sender FROM tlsrpt.report WHERE report_id = 'rp-h'")" \
	"https|192.0.2.7|https:192.0.2.7" "POST reprocessed: the address it was posted from"
post
like "$(head -n 1 "$W/out")" '^Status: 200' "the same POST again: already stored (200)"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'rp-h'")" 1 "the same POST again: no second copy"

# ---------------------------------------------------------------- failures
ingest_noin --reprocess -d "host=$W/nosuchserver connect_timeout=5"
expect_fail "no server" 75 4
q "CREATE ROLE writer LOGIN" >/dev/null
ingest_noin --init-db --grant=writer
is "$rc" 0 "--grant=writer: a role that may insert and select, not delete"
q "INSERT INTO tlsrpt.rejected (reason, raw, raw_size, digest)
   SELECT 'test', b, octet_length(b), 'x' FROM (SELECT convert_to(\$\$$(cat "$W/rp-3.json")\$\$, 'UTF8') b) s" >/dev/null
before=$(snapshot)
ingest_noin --reprocess -d "$(pg_conninfo) user=writer"
is "$rc" 78 "a role that may not delete: exit 78, the administrator's to fix (as for a FILE run)"
like "$(cat "$W/err")" '^5\.[0-9.]+ tlsrpt-ingest: stopped at rejected#[0-9]+: ' "a role that may not delete: where it stopped"
is "$(snapshot)" "$before" "a role that may not delete: nothing changed"

done_testing
