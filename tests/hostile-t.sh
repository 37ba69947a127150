#!/bin/bash
# hostile-t.sh - what anyone on the internet may send to a report address,
# delivered on stdin to a real, throwaway PostgreSQL. Every input is made here,
# by the test. For each one: exit 0, nothing on stdout or stderr, no crash, and
# either the valid reports stored or a row in tlsrpt.rejected whose reason
# names what was wrong (the limit, for the limit cases).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start


ingest_noin --init-db
expect_quiet "--init-db"
[ "$rc" = 0 ] || bail "cannot create the schema"

# A small but complete report; REPORT_ID and ORG replaced per case.
base_json() { # base_json REPORT-ID [ORGANIZATION]
	cat <<JSON
{"organization-name":"${2:-Hostile Inc.}","date-range":{"start-datetime":"2024-03-01T00:00:00Z","end-datetime":"2024-03-01T23:59:59Z"},"contact-info":"tls@hostile.example","report-id":"$1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx1.example.org","max_age: 604800"],"policy-domain":"example.org","mx-host":["mx1.example.org"]},"summary":{"total-successful-session-count":100,"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx1.example.org","failed-session-count":2}]}]}
JSON
}

# mail_attach ID FILE [CONTENT-TYPE [FILENAME [ENCODING]]]: a report mail whose
# one attachment is FILE's bytes, base64 (default) or as they are ("raw").
mail_attach() {
	local id=$1 file=$2 ct=${3:-application/tlsrpt+gzip} fname=${4:-hostile.example!example.org!1709251200!1709337599!$1.json.gz} enc=${5:-base64}
	cat <<MAIL
From: tlsrpt@hostile.example
To: tlsrpt@example.org
Subject: Report Domain: example.org Submitter: hostile.example Report-ID: <$id>
Message-ID: <$id@hostile.example>
Date: Fri, 01 Mar 2024 12:00:00 +0000
TLS-Report-Domain: example.org
TLS-Report-Submitter: hostile.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="hostile-$id"

--hostile-$id
Content-Type: text/plain

A report made by tests/hostile-t.sh.

--hostile-$id
Content-Type: $ct
Content-Disposition: attachment; filename="$fname"
MAIL
	if [ "$enc" = base64 ]; then
		printf 'Content-Transfer-Encoding: base64\n\n'
		base64 -w 76 <"$file"
	else
		printf 'Content-Transfer-Encoding: 8bit\n\n'
		cat "$file"
		printf '\n'
	fi
	printf -- '--hostile-%s--\n' "$id"
}

# The outcome of one delivery of FILE on stdin: sets rc, new_reports,
# new_rejected, reasons (one per line). A delivery stopped by a signal is
# reported as a crash; a hang is ended by the timeout in common.sh.
last_report=0
last_rejected=0
deliver() { # deliver NAME FILE [ARGS...]
	local name=$1 file=$2
	shift 2
	last_report=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.report")
	last_rejected=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.rejected")
	ingest "$file" "$@"
	ok "$name: no crash (exit status $rc < 128)" test "$rc" -lt 128
	is "$rc" 0 "$name: exit status 0"
	[ "$rc" = 0 ] || _show_output
	is "$(head -c 2000 "$W/err")" "" "$name: nothing on stderr"
	is "$(head -c 2000 "$W/out")" "" "$name: nothing on stdout"
	new_reports=$(q "SELECT count(*) FROM tlsrpt.report WHERE id > $last_report")
	new_rejected=$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id > $last_rejected")
	reasons=$(q "SELECT reason FROM tlsrpt.rejected WHERE id > $last_rejected ORDER BY id")
}

# expect_stored NAME N: N new reports, nothing rejected
expect_stored() {
	is "$new_reports" "$2" "$1: $2 report(s) stored"
	is "$new_rejected" 0 "$1: nothing rejected"
	[ "$new_rejected" = 0 ] || diag "reasons: $reasons"
}

# expect_rejected NAME ERE: nothing stored, one rejected row whose reason matches
expect_rejected() {
	is "$new_reports" 0 "$1: no report stored"
	is "$new_rejected" 1 "$1: one row in tlsrpt.rejected"
	like "$reasons" "$2" "$1: the reason says why"
}

# expect_kept NAME: stored or rejected with a reason, whichever
expect_kept() {
	note "$1: $new_reports stored, $new_rejected rejected${reasons:+ ($reasons)}"
	ok "$1: stored or rejected" test $((new_reports + new_rejected)) -ge 1
	if [ "$new_rejected" -gt 0 ]; then
		ok "$1: every rejected row has a reason" test "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id > $last_rejected AND reason = ''")" = 0
	else
		pass "$1: (stored, no reason needed)"
	fi
}

# ---------------------------------------------------------------- gzip
base_json trunc-1 >"$W/trunc.json"
gzip -9 -n -c "$W/trunc.json" >"$W/full.gz"
head -c $(($(wc -c <"$W/full.gz") / 2)) "$W/full.gz" >"$W/trunc.gz"
mail_attach trunc-1 "$W/trunc.gz" >"$W/m.eml"
deliver "truncated gzip" "$W/m.eml"
expect_rejected "truncated gzip" 'truncated|corrupt'

base_json garbage-1 >"$W/g.json"
{ gzip -9 -n -c "$W/g.json"; printf 'GARBAGE AFTER THE STREAM \001\002\003\377'; } >"$W/g.gz"
mail_attach garbage-1 "$W/g.gz" >"$W/m.eml"
deliver "gzip with garbage after the stream" "$W/m.eml"
expect_stored "gzip with garbage after the stream" 1

base_json two-members-1 >"$W/two.json"
half=$(($(wc -c <"$W/two.json") / 2))
{ head -c "$half" "$W/two.json" | gzip -9 -n -c; tail -c +$((half + 1)) "$W/two.json" | gzip -9 -n -c; } >"$W/two.gz"
ok "two gzip members: gzip -dc gives the whole report" cmp -s "$W/two.json" <(gzip -dc "$W/two.gz")
mail_attach two-members-1 "$W/two.gz" >"$W/m.eml"
deliver "two concatenated gzip members" "$W/m.eml"
expect_stored "two concatenated gzip members" 1
is "$(q "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'two-members-1'")" 1 \
	"two concatenated gzip members: the failure row from the second half is there"
is "$(q "SELECT raw = '$(cat "$W/two.json")'::jsonb FROM tlsrpt.report WHERE report_id = 'two-members-1'")" t \
	"two concatenated gzip members: raw is the whole report"

# ---------------------------------------------------------------- MIME
base_json bad-b64-1 >"$W/b.json"
gzip -9 -n -c "$W/b.json" | base64 -w 60 | sed 's/^\(.\{10\}\)/\1!*%~/; 3s/$/====/' >"$W/b.b64"
{
	mail_attach bad-b64-1 /dev/null | sed '/^--hostile-bad-b64-1--$/d'
	cat "$W/b.b64"
	printf '@@@ not base64 at all @@@\n--hostile-bad-b64-1--\n'
} >"$W/m.eml"
deliver "bad base64 in the attachment" "$W/m.eml"
expect_kept "bad base64 in the attachment"

{
	cat <<'MAIL'
From: tlsrpt@hostile.example
To: tlsrpt@example.org
Subject: headers and nothing else
Message-ID: <no-body-1@hostile.example>
Date: Fri, 01 Mar 2024 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="never-seen"
MAIL
} >"$W/m.eml"
deliver "a message with no body" "$W/m.eml"
expect_rejected "a message with no body" '.'

python3 - "$W/m.eml" <<'PY'
import sys
out = [b"From: tlsrpt@hostile.example\nTo: tlsrpt@example.org\nSubject: 10000 attachments\n"
       b"Message-ID: <ten-thousand-1@hostile.example>\nMIME-Version: 1.0\n"
       b"Content-Type: multipart/mixed; boundary=\"b\"\n\n"]
for i in range(10000):
    out.append(b"--b\nContent-Type: application/tlsrpt+json\n"
               b"Content-Disposition: attachment; filename=\"r%d.json\"\n\n"
               b"{\"report-id\":\"many-%d\",\"policies\":[]}\n" % (i, i))
out.append(b"--b--\n")
open(sys.argv[1], "wb").write(b"".join(out))
PY
deliver "10,000 attachments" "$W/m.eml"
expect_rejected "10,000 attachments" 'max_report_parts'
is "$(q "SELECT sender || '|' || message_id || '|' || subject || '|' || raw_size || '|' || octet_length(raw)
	FROM tlsrpt.rejected WHERE id > $last_rejected")" \
	"tlsrpt@hostile.example|ten-thousand-1@hostile.example|10000 attachments|$(wc -c <"$W/m.eml")|1048576" \
	"10,000 attachments: the row keeps the sender, Message-ID, Subject and the message's first 1M"

# a part refused in a big mail: the row keeps the message (its first max_rejected_raw bytes), not the part
head -c 3000000 /dev/urandom >"$W/big-part"
mail_attach big-part-1 "$W/big-part" >"$W/m.eml"
deliver "a 3 MB part that is not gzip" "$W/m.eml"
expect_rejected "a 3 MB part that is not gzip" '.'
is "$(q "SELECT raw_size || '|' || octet_length(raw) || '|' || (substring(raw from 1 for 5) = 'From:'::bytea) || '|' || filename
	FROM tlsrpt.rejected WHERE id > $last_rejected")" \
	"$(wc -c <"$W/m.eml")|1048576|true|hostile.example!example.org!1709251200!1709337599!big-part-1.json.gz" \
	"a 3 MB part that is not gzip: the message's size and first 1M kept, the part named"

python3 - "$W/junk" <<'PY'
import random, sys
r = random.Random(8460)
data = bytes(r.getrandbits(8) for _ in range(200000))
open(sys.argv[1], "wb").write(b"\x00\xff" + data)  # starts neither like JSON nor gzip
PY
deliver "binary junk on stdin" "$W/junk"
expect_rejected "binary junk on stdin" '.'

: >"$W/empty"
deliver "an empty stdin" "$W/empty"
is "$new_reports" 0 "an empty stdin: no report stored"
# the empty input has one digest: kept once, a repeat finds it kept already
like "$(q "SELECT reason FROM tlsrpt.rejected WHERE raw_size = 0")" 'empty' "an empty stdin: kept as rejected, the reason says empty"

# MIME nested 5,000 deep (multipart in multipart ...): the parser must not blow the stack
python3 - "$W/m.eml" <<'PY'
import sys
n = 5000
out = [b"From: tlsrpt@hostile.example\nSubject: deep MIME\nMessage-ID: <deep-mime-1@hostile.example>\n"
       b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b0\"\n\n"]
for i in range(1, n):
    out.append(b"--b%d\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n" % (i - 1, i))
out.append(b"--b%d\nContent-Type: application/tlsrpt+json\n\n{\"report-id\":\"deep-mime-1\",\"policies\":[]}\n" % (n - 1))
for i in range(n - 1, -1, -1):
    out.append(b"--b%d--\n" % i)
open(sys.argv[1], "wb").write(b"".join(out))
PY
deliver "MIME nested 5,000 deep" "$W/m.eml"
expect_kept "MIME nested 5,000 deep"

# ---------------------------------------------------------------- JSON
printf '[%s]\n' "$(base_json array-1)" >"$W/a.json"
mail_attach array-1 "$W/a.json" application/tlsrpt+json array-1.json raw >"$W/m.eml"
deliver "a JSON array instead of an object" "$W/m.eml"
expect_rejected "a JSON array instead of an object" 'array|not an object'

base_json halfway-1 >"$W/h.json"
head -c $(($(wc -c <"$W/h.json") / 2)) "$W/h.json" >"$W/half.json"
gzip -9 -n -c "$W/half.json" >"$W/half.gz"
mail_attach halfway-1 "$W/half.gz" >"$W/m.eml"
deliver "JSON that stops halfway" "$W/m.eml"
expect_rejected "JSON that stops halfway" 'stops|end|invalid JSON'

python3 -c '
import sys
n = 10000
sys.stdout.write("{\"organization-name\":\"deep\",\"report-id\":\"deep-1\",\"policies\":" + "[" * n + "]" * n + "}")
' | gzip -9 -n -c >"$W/deep.gz"
mail_attach deep-1 "$W/deep.gz" >"$W/m.eml"
deliver "10,000-deep nesting" "$W/m.eml"
expect_rejected "10,000-deep nesting" 'max_json_depth'

# a megabyte of empty objects would cost json-c hundreds of megabytes
python3 -c '
import sys
sys.stdout.write("{\"organization-name\":\"wide\",\"report-id\":\"wide-1\",\"junk\":[" + ",".join(["{}"] * 300000) + "]}")
' | gzip -9 -n -c >"$W/wide.gz"
mail_attach wide-1 "$W/wide.gz" >"$W/m.eml"
deliver "300,000 empty objects" "$W/m.eml"
expect_rejected "300,000 empty objects" 'max_json_values'

base_json big-numbers-1 | sed 's/"total-successful-session-count":100/"total-successful-session-count":123456789012345678901234567890/; s/"failed-session-count":2/"failed-session-count":18446744073709551616/; s/"total-failure-session-count":2/"total-failure-session-count":9223372036854775808/' >"$W/n.json"
grep -q 123456789012345678901234567890 "$W/n.json" || bail "sed did not make the big numbers"
gzip -9 -n -c "$W/n.json" >"$W/n.gz"
mail_attach big-numbers-1 "$W/n.gz" >"$W/m.eml"
deliver "numbers beyond int64" "$W/m.eml"
expect_stored "numbers beyond int64" 1
is "$(q "SELECT coalesce(total_successful_session_count::text, 'NULL') || ' ' || coalesce(total_failure_session_count::text, 'NULL') FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'big-numbers-1')")" \
	"NULL NULL" "numbers beyond int64: the counts are left out (NULL), not wrapped or clamped"
is "$(q "SELECT coalesce(f.failed_session_count::text, 'NULL') FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'big-numbers-1'")" \
	NULL "numbers beyond int64: failed-session-count left out"
ok "numbers beyond int64: noted in report.notes" test "$(q "SELECT cardinality(notes) > 0 FROM tlsrpt.report WHERE report_id = 'big-numbers-1'")" = t

base_json negative-1 | sed 's/"total-successful-session-count":100/"total-successful-session-count":-100/; s/"failed-session-count":2/"failed-session-count":-2/' >"$W/neg.json"
gzip -9 -n -c "$W/neg.json" >"$W/neg.gz"
mail_attach negative-1 "$W/neg.gz" >"$W/m.eml"
deliver "negative counts" "$W/m.eml"
expect_stored "negative counts" 1
is "$(q "SELECT coalesce(total_successful_session_count::text, 'NULL') || ' ' || coalesce(total_failure_session_count::text, 'NULL') FROM tlsrpt.policy WHERE report = (SELECT id FROM tlsrpt.report WHERE report_id = 'negative-1')")" \
	"NULL 2" "negative counts: the negative one is left out, the good one kept"
is "$(q "SELECT coalesce(f.failed_session_count::text, 'NULL') FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'negative-1'")" \
	NULL "negative counts: failed-session-count left out"

base_json nul-escape-1 'Nul\u0000Escape' >"$W/ne.json"
gzip -9 -n -c "$W/ne.json" >"$W/ne.gz"
mail_attach nul-escape-1 "$W/ne.gz" >"$W/m.eml"
deliver 'NUL bytes as \u0000 in a string' "$W/m.eml"
expect_stored 'NUL bytes as \u0000 in a string' 1
is "$(q "SELECT organization_name FROM tlsrpt.report WHERE report_id = 'nul-escape-1'")" NulEscape '\u0000: dropped from the stored string'

base_json nul-raw-1 "NulRawORG" | sed 's/NulRawORG/Nul\x00Raw/' >"$W/nr.json"
ok "raw NUL: the fixture holds a NUL byte" test "$(tr -dc '\000' <"$W/nr.json" | wc -c)" = 1
gzip -9 -n -c "$W/nr.json" >"$W/nr.gz"
mail_attach nul-raw-1 "$W/nr.gz" >"$W/m.eml"
deliver "raw NUL bytes in a string" "$W/m.eml"
expect_stored "raw NUL bytes in a string" 1
is "$(q "SELECT organization_name FROM tlsrpt.report WHERE report_id = 'nul-raw-1'")" NulRaw "raw NUL: dropped from the stored string"

# a raw NUL in the message itself (an 8bit attachment, not base64)
base_json nul-8bit-1 "Nul8bitORG" | sed 's/Nul8bitORG/Nul\x008bit/' >"$W/n8.json"
mail_attach nul-8bit-1 "$W/n8.json" application/tlsrpt+json nul-8bit-1.json raw >"$W/m.eml"
deliver "raw NUL byte in the message itself" "$W/m.eml"
expect_kept "raw NUL byte in the message itself"

base_json bad-utf8-1 "BadUTF8ORG" | sed 's/BadUTF8ORG/Bad\xff\xfeUTF\xc3(8/' >"$W/u.json"
gzip -9 -n -c "$W/u.json" >"$W/u.gz"
mail_attach bad-utf8-1 "$W/u.gz" >"$W/m.eml"
deliver "invalid UTF-8 in a string" "$W/m.eml"
expect_stored "invalid UTF-8 in a string" 1
like "$(q "SELECT organization_name FROM tlsrpt.report WHERE report_id = 'bad-utf8-1'")" '^Bad.+UTF.+8$' \
	"invalid UTF-8: stored, mended"
is "$(q "SELECT position(U&'\\FFFD' IN organization_name) > 0 FROM tlsrpt.report WHERE report_id = 'bad-utf8-1'")" t \
	"invalid UTF-8: replaced by U+FFFD"

# letters at random: a string that does not compress past max_inflate_ratio
python3 -c '
import random, string, sys
r = random.Random(1)
sys.stdout.write("".join(r.choice(string.ascii_letters) for _ in range(1 << 20)))' >"$W/mb"
base_json big-string-1 BIGSTRING | python3 -c '
import sys
sys.stdout.write(sys.stdin.read().replace("BIGSTRING", open(sys.argv[1]).read()))' "$W/mb" | gzip -9 -n -c >"$W/bs.gz"
mail_attach big-string-1 "$W/bs.gz" >"$W/m.eml"
deliver "a 1 MB string" "$W/m.eml"
expect_rejected "a 1 MB string" 'max_string_length'

# a bad value whose 64th byte is inside a multi-byte character: the note
# quoting it must stay valid UTF-8, and the report must be stored
python3 -c 'import sys; sys.stdout.write("x" * 63 + "\u00e9")' >"$W/cut"
base_json notes-cut-1 | sed "s/\"start-datetime\":\"[^\"]*\"/\"start-datetime\":\"$(cat "$W/cut")\"/" | gzip -9 -n -c >"$W/nc.gz"
mail_attach notes-cut-1 "$W/nc.gz" >"$W/m.eml"
deliver "a bad value cut inside a UTF-8 character in a note" "$W/m.eml"
expect_stored "a bad value cut inside a UTF-8 character in a note" 1

# JSON null, gzip'd: not a report, and the rejection must still say why
printf 'null\n' | gzip -9 -n -c >"$W/null.gz"
mail_attach json-null-1 "$W/null.gz" >"$W/m.eml"
deliver "a gzip'd JSON null" "$W/m.eml"
expect_rejected "a gzip'd JSON null" '.'

# a JSON object whose only report member is a non-finite number (2e308): it
# is mended to null, and a null member is no member, so it is no report, as
# its mended JSON read again would not be (fuzz/crashes/report-nonfinite-only.json)
printf '{"organization-name":2e308}\n' | gzip -9 -n -c >"$W/nonfinite.gz"
mail_attach nonfinite-1 "$W/nonfinite.gz" >"$W/m.eml"
deliver "a JSON object of one non-finite number" "$W/m.eml"
expect_rejected "a JSON object of one non-finite number" 'not a TLS-RPT report'

# an empty report attachment (memcpy from a NULL buffer under UBSan)
mail_attach empty-part-1 /dev/null application/tlsrpt+json empty-part-1.json raw >"$W/m.eml"
deliver "an empty report attachment" "$W/m.eml"
is "$new_reports" 0 "an empty report attachment: no report stored"
# rejections are deduplicated by the SHA-256 of the refused bytes: the empty
# stdin above already holds the digest of nothing, so no new row may appear
like "$(q "SELECT reason FROM tlsrpt.rejected WHERE raw_size = 0")" 'empty' \
	"an empty report attachment: kept as rejected (one row for all empty inputs)"

# ---------------------------------------------------------------- other limits (lowered with -o)
python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r["report-id"] = "many-policies-1"
r["policies"] = r["policies"] * 51
print(json.dumps(r))' <"$W/trunc.json" | gzip -9 -n -c >"$W/mp.gz"
mail_attach many-policies-1 "$W/mp.gz" >"$W/m.eml"
deliver "51 policies, max_policies=50" "$W/m.eml" -o max_policies=50
expect_rejected "51 policies, max_policies=50" 'max_policies'

python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r["report-id"] = "many-failures-1"
r["policies"][0]["failure-details"] = [dict(r["policies"][0]["failure-details"][0], **{"sending-mta-ip": "192.0.2.%d" % (i % 250)}) for i in range(101)]
print(json.dumps(r))' <"$W/trunc.json" | gzip -9 -n -c >"$W/mf.gz"
mail_attach many-failures-1 "$W/mf.gz" >"$W/m.eml"
deliver "101 failure-details, max_failures_per_policy=100" "$W/m.eml" -o max_failures_per_policy=100
expect_rejected "101 failure-details, max_failures_per_policy=100" 'max_failures_per_policy'

{ base_json big-json-1 | sed 's/"contact-info":"[^"]*"/"contact-info":"'"$(head -c 60000 "$W/mb")"'"/'; } | gzip -9 -n -c >"$W/bj.gz"
mail_attach big-json-1 "$W/bj.gz" >"$W/m.eml"
deliver "a 60 kB report, max_json_size=32k" "$W/m.eml" -o max_json_size=32k
expect_rejected "a 60 kB report, max_json_size=32k" 'max_json_size'

head -c 300000 /dev/zero | tr '\0' 'y' | sed 's/^/{"report-id":"big-message-1","organization-name":"/; s/$/"}/' >"$W/bm.json"
mail_attach big-message-1 "$W/bm.json" application/tlsrpt+json big-message-1.json raw >"$W/m.eml"
deliver "a 300 kB message, max_message_size=100k" "$W/m.eml" -o max_message_size=100k
expect_rejected "a 300 kB message, max_message_size=100k" 'max_message_size'
is "$(q "SELECT raw_size > 300000 AND raw_truncated FROM tlsrpt.rejected WHERE id > $last_rejected")" t \
	"a 300 kB message: its size is recorded, its raw bytes cut"

head -c $((8 << 20)) /dev/zero | gzip -9 -n -c >"$W/ratio.gz"
mail_attach ratio-1 "$W/ratio.gz" >"$W/m.eml"
deliver "8 MiB of zeros, 1000:1 (max_inflate_ratio=200)" "$W/m.eml"
expect_rejected "8 MiB of zeros, 1000:1 (max_inflate_ratio=200)" 'max_inflate_ratio'

# ---------------------------------------------------------------- the gzip bomb
# ~2 MB of gzip that inflates to 2 GiB, made once per run.
bomb=$W/bomb.gz
head -c 2G /dev/zero | gzip -9 -n -c >"$bomb"
bomb_size=$(wc -c <"$bomb")
ok "gzip bomb: about 2 MB ($bomb_size bytes)" test "$bomb_size" -gt 1500000 -a "$bomb_size" -lt 3000000
mail_attach bomb-1 "$bomb" >"$W/bomb.eml"

sanitized=
if [ -n "${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-}" ] || { command -v ldd >/dev/null 2>&1 && ldd "$BIN" 2>/dev/null | grep -qE 'lib(a|ub)san'; }; then
	sanitized=1
fi

# run_measured: the delivery of the bomb under a RSS meter; sets rc, peak_kib, secs
run_measured() {
	local start end
	last_report=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.report")
	last_rejected=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.rejected")
	start=$(date +%s%N)
	if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
		"${_timeout[@]}" /usr/bin/time -v -o "$W/time" "$BIN" <"$W/bomb.eml" >"$W/out" 2>"$W/err"
		rc=$?
		peak_kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$W/time")
	else
		# getrusage(RUSAGE_CHILDREN) of a python parent
		python3 - "$BIN" "$W/bomb.eml" "$W/out" "$W/err" "$W/time" <<'PY'
import resource, subprocess, sys
with open(sys.argv[2], "rb") as i, open(sys.argv[3], "wb") as o, open(sys.argv[4], "wb") as e:
    rc = subprocess.call([sys.argv[1]], stdin=i, stdout=o, stderr=e, timeout=120)
open(sys.argv[5], "w").write("%d %d\n" % (rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
		read -r rc peak_kib <"$W/time"
	fi
	end=$(date +%s%N)
	secs=$(((end - start) / 1000000000))
}
run_measured
ok "gzip bomb: no crash (exit status $rc < 128)" test "$rc" -lt 128
is "$rc" 0 "gzip bomb: exit status 0"
is "$(head -c 2000 "$W/err")" "" "gzip bomb: nothing on stderr"
new_reports=$(q "SELECT count(*) FROM tlsrpt.report WHERE id > $last_report")
new_rejected=$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id > $last_rejected")
reasons=$(q "SELECT reason FROM tlsrpt.rejected WHERE id > $last_rejected ORDER BY id")
expect_rejected "gzip bomb" 'max_inflated_size|max_inflate_ratio'
note "gzip bomb: peak RSS ${peak_kib:-?} KiB, ${secs}s wall"
if [ -n "$sanitized" ]; then
	skip "gzip bomb: peak RSS not measured in a sanitized build (shadow memory)"
else
	ok "gzip bomb: peak RSS ${peak_kib:-?} KiB < 64 MiB" test "${peak_kib:-999999999}" -lt 65536
fi
# a hang guard only, not a timing test
ok "gzip bomb: refused in less than 5 s (${secs}s)" test "$secs" -lt 5

done_testing
