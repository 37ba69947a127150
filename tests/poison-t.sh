#!/bin/bash
# poison-t.sh - messages within max_message_size that cost too much to parse:
# every dimension of work on one message is bounded before it is spent
# (mimescan.c for the MIME shape, ingest.c for what all parts add up to,
# max_parse_time for the CPU), and such a message ends in tlsrpt.rejected
# with a reason naming the limit and exit status 0; a redelivery adds nothing.
# Every input is made here, by python3.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
. "$here/lib/tap.sh"
. "$here/lib/pg.sh"
. "$here/lib/common.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start

ingest_noin --init-db
expect_quiet "--init-db"
[ "$rc" = 0 ] || bail "cannot create the schema"

sanitized=
if [ -n "${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-}" ] || { command -v ldd >/dev/null 2>&1 && ldd "$BIN" 2>/dev/null | grep -qE 'lib(a|ub)san'; }; then
	sanitized=1
fi

# gen KIND OUT [KEY=VALUE...]: a hostile message (see the python below)
gen() {
	local kind=$1 out=$2
	shift 2
	env "$@" python3 - "$kind" "$out" <<'PY'
import base64, gzip, json, os, sys
kind, out = sys.argv[1], sys.argv[2]
N = int(os.environ.get("N", "1"))
HDR = ("From: tlsrpt@hostile.example\nTo: tlsrpt@example.org\nSubject: poison %s\n"
       "Message-ID: <poison-%s@hostile.example>\nTLS-Report-Domain: example.org\n"
       "TLS-Report-Submitter: hostile.example\nMIME-Version: 1.0\n") % (kind, kind)
def report(rid, nfail=1, pad=0):
    r = {"organization-name": "Poison Inc.", "report-id": rid,
         "date-range": {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"},
         "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.org"},
                       "summary": {"total-successful-session-count": 1, "total-failure-session-count": nfail},
                       "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 1}
                                           for _ in range(nfail)]}]}
    if pad:
        r["padding"] = ["a" * 60000] * pad
    return json.dumps(r).encode()
def part(data, ct="application/tlsrpt+gzip"):
    return "--b\nContent-Type: %s\nContent-Transfer-Encoding: base64\n\n%s" % (ct, base64.encodebytes(data).decode())
with open(out, "w") as f:
    if kind == "params":      # N parameters on the report part's Content-Type
        f.write(HDR + 'Content-Type: multipart/report; boundary="b"\n\n--b\n'
                "Content-Type: application/tlsrpt+gzip;\n" + "".join(" p%d=v;\n" % i for i in range(N)) +
                " name=params.json.gz\nContent-Transfer-Encoding: base64\n\n" +
                base64.encodebytes(gzip.compress(report("params"))).decode() + "--b--\n")
    elif kind == "parts":     # N empty parts, then one report
        f.write(HDR + 'Content-Type: multipart/mixed; boundary="b"\n\n' + "--b\n\n" * N +
                part(gzip.compress(report("parts"))) + "--b--\n")
    elif kind == "depth":     # N nested multiparts around one report
        f.write(HDR + "".join('Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(N)) +
                "Content-Type: application/tlsrpt+json\n\n" + report("depth").decode() + "\n")
    elif kind == "header":    # a header field of N bytes
        f.write(HDR + "X-Junk: " + ("x" * 70 + "\n ") * (N // 72) + "x\n" +
                "Content-Type: application/tlsrpt+json\n\n" + report("header").decode() + "\n")
    elif kind == "inflate":   # N parts, each a report inflating to about 600 kB
        f.write(HDR + 'Content-Type: multipart/report; boundary="b"\n\n')
        for i in range(N):
            f.write(part(gzip.compress(report("inflate-%d" % i, pad=10))))
        f.write("--b--\n")
    elif kind == "rows":      # N reports of 1 policy + ROWS failure rows each
        f.write(HDR + 'Content-Type: multipart/report; boundary="b"\n\n')
        for i in range(N):
            f.write(part(gzip.compress(report("%s-%d" % (os.environ.get("ID", "rows"), i), int(os.environ["ROWS"])))))
        f.write("--b--\n")
    elif kind == "cpu":       # N parts, each 16 MiB of zeros in 16 kB of gzip: CPU, not memory
        z = gzip.compress(bytes(16 << 20), 9)
        f.write(HDR + 'Content-Type: multipart/report; boundary="b"\n\n')
        for i in range(N):
            f.write(part(z))
        f.write("--b--\n")
PY
}

# deliver NAME FILE [ARGS...]: one delivery on stdin, measured; sets rc,
# new_reports, new_rejected, reasons, peak_kib, secs
deliver() {
	local name=$1 file=$2 start end
	shift 2
	last_report=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.report")
	last_rejected=$(q "SELECT coalesce(max(id), 0) FROM tlsrpt.rejected")
	start=$(date +%s%N)
	peak_kib=
	if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
		"${_timeout[@]}" /usr/bin/time -v -o "$W/time" "$BIN" "$@" <"$file" >"$W/out" 2>"$W/err"
		rc=$?
		peak_kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$W/time")
	else
		"${_timeout[@]}" "$BIN" "$@" <"$file" >"$W/out" 2>"$W/err"
		rc=$?
	fi
	end=$(date +%s%N)
	secs=$(((end - start) / 1000000000))
	ok "$name: no crash (exit status $rc < 128)" test "$rc" -lt 128
	is "$rc" 0 "$name: exit status 0"
	is "$(head -c 2000 "$W/err")" "" "$name: nothing on stderr"
	new_reports=$(q "SELECT count(*) FROM tlsrpt.report WHERE id > $last_report")
	new_rejected=$(q "SELECT count(*) FROM tlsrpt.rejected WHERE id > $last_rejected")
	reasons=$(q "SELECT reason FROM tlsrpt.rejected WHERE id > $last_rejected ORDER BY id")
	note "$name: $new_reports stored, $new_rejected rejected, ${secs}s, peak RSS ${peak_kib:-?} KiB"
}

# redeliver NAME FILE [ARGS...]: the same again adds nothing
redeliver() {
	local name=$1
	deliver "$@"
	is "$new_reports/$new_rejected" 0/0 "$name: a redelivery adds nothing"
}

# bounded NAME MAX_KIB MAX_SECS: peak RSS and a hang guard (not a benchmark)
bounded() {
	if [ -n "$sanitized" ] || [ -z "$peak_kib" ]; then
		skip "$1: peak RSS not measured (sanitized build or no /usr/bin/time)"
	else
		ok "$1: peak RSS ${peak_kib} KiB < $2 KiB" test "$peak_kib" -lt "$2"
	fi
	ok "$1: done in less than $3 s (${secs}s)" test "$secs" -lt "$3"
}

# ---- the MIME shape, before GMime sees it
# 20,000 parameters: GMime took 2 s (a few MB took a minute: quadratic)
gen params "$W/params.eml" N=20000
deliver "20,000 Content-Type parameters" "$W/params.eml"
is "$new_reports/$new_rejected" 0/1 "parameters: the message is kept in rejected, nothing stored"
like "$reasons" 'max_header_params \(64\)' "parameters: the reason names max_header_params"
bounded "parameters" 65536 10
redeliver "parameters" "$W/params.eml"

gen params "$W/params-ok.eml" N=60
deliver "60 parameters (within the limit)" "$W/params-ok.eml"
is "$new_reports/$new_rejected" 1/0 "60 parameters: the report is stored"

# a million empty parts: 5 MB of mail took minutes and GBs in GMime's tree
gen parts "$W/parts.eml" N=1000000
deliver "a million empty MIME parts" "$W/parts.eml"
is "$new_reports/$new_rejected" 0/1 "parts: kept in rejected"
like "$reasons" 'max_mime_parts \(1000\)' "parts: the reason names max_mime_parts"
bounded "parts" 131072 20
redeliver "parts" "$W/parts.eml"

gen parts "$W/parts-ok.eml" N=500
deliver "500 empty parts and a report" "$W/parts-ok.eml"
is "$new_reports/$new_rejected" 1/0 "500 parts: the report is stored"

gen depth "$W/depth.eml" N=100
deliver "100 nested multiparts" "$W/depth.eml"
is "$new_reports/$new_rejected" 0/1 "depth: kept in rejected"
like "$reasons" 'max_mime_depth \(16\)' "depth: the reason names max_mime_depth"
redeliver "depth" "$W/depth.eml"

gen depth "$W/depth-ok.eml" N=10
deliver "10 nested multiparts" "$W/depth-ok.eml"
is "$new_reports/$new_rejected" 1/0 "10 nested multiparts: the report is stored"

gen header "$W/header.eml" N=1000000
deliver "a 1 MB header field" "$W/header.eml"
is "$new_reports/$new_rejected" 0/1 "header: kept in rejected"
like "$reasons" 'max_header_size \(262144 bytes\)' "header: the reason names max_header_size"
redeliver "header" "$W/header.eml"

# ---- what all parts of one message add up to
# 3 reports of about 600 kB each inflated; the message may inflate to 1.5 MB:
# 2 stored, the third kept in rejected
gen inflate "$W/inflate.eml" N=3
inflated=$(python3 -c '
import base64, email, gzip, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
print(" ".join(str(len(gzip.decompress(p.get_payload(decode=True)))) for p in m.walk() if p.get_content_type().endswith("gzip")))' "$W/inflate.eml")
set -- $inflated
ok "inflate: each part inflates to 500-700 kB ($inflated)" test "$1" -gt 500000 -a "$1" -lt 700000 -a "$3" -lt 700000
deliver "3 parts, max_message_inflated 1.5 MB" "$W/inflate.eml" -o max_message_inflated=1500k
is "$new_reports/$new_rejected" 2/1 "inflate: two reports stored, the third kept in rejected"
like "$reasons" 'max_message_inflated \(1536000 bytes\)' "inflate: the reason names max_message_inflated"
is "$(q "SELECT string_agg(report_id, ',' ORDER BY report_id) FROM tlsrpt.report WHERE id > $last_report")" \
	"inflate-0,inflate-1" "inflate: the first two are the ones stored"
redeliver "inflate" "$W/inflate.eml" -o max_message_inflated=1500k

# rows: 1 policy + 3 failures = 4 rows a report; 10 rows a message: 2 stored
gen rows "$W/rows.eml" N=3 ROWS=3
deliver "3 reports of 4 rows, max_message_rows 10" "$W/rows.eml" -o max_message_rows=10
is "$new_reports/$new_rejected" 2/1 "rows: two stored, the third kept in rejected"
like "$reasons" 'max_message_rows \(10\)' "rows: the reason names max_message_rows"
is "$(q "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy WHERE p.report > $last_report")" 6 \
	"rows: 6 failure rows stored"
redeliver "rows" "$W/rows.eml" -o max_message_rows=10

# JSON values: count them as report.c does (an object 8, each '[' and ',' 1, plus 1)
gen rows "$W/values.eml" N=3 ROWS=2 ID=values
per=$(python3 -c '
import json
r = {"organization-name": "Poison Inc.", "report-id": "values-0", "date-range": {"start-datetime": "2024-03-01T00:00:00Z", "end-datetime": "2024-03-01T23:59:59Z"}, "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.org"}, "summary": {"total-successful-session-count": 1, "total-failure-session-count": 2}, "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 1}] * 2}]}
s = json.dumps(r)
print(1 + 8 * s.count("{") + s.count("[") + s.count(","))')
deliver "3 reports, max_message_json_values for 2.5" "$W/values.eml" -o max_message_json_values=$((per * 5 / 2))
is "$new_reports/$new_rejected" 2/1 "values: two stored ($per values each), the third kept in rejected"
like "$reasons" 'max_message_json_values' "values: the reason names max_message_json_values"

# ---- CPU: 100 parts of 16 MiB of zeros each (1.6 GB to inflate, a few s of
# CPU), every other limit raised out of the way; max_parse_time = 1 s
gen cpu "$W/cpu.eml" N=100
deliver "1.6 GB to inflate, max_parse_time 1 s" "$W/cpu.eml" -o max_message_inflated=16G \
	-o max_inflate_ratio=100000 -o max_parse_time=1
ok "cpu: parts kept in rejected" test "$new_rejected" -ge 1
like "$reasons" 'max_parse_time \(1 s\)' "cpu: a reason names max_parse_time"
bounded "cpu" 131072 30
redeliver "cpu" "$W/cpu.eml" -o max_message_inflated=16G -o max_inflate_ratio=100000 -o max_parse_time=1

# ---- counts beyond what a reporter can send (10^12) are left out, the report stored
now_day=$(date -u +%Y-%m-%d)
for c in 9223372036854775806 1000000000001 1000000000000; do
	cat >"$W/count-$c.json" <<JSON
{"organization-name":"Count Inc.","report-id":"count-$c","date-range":{"start-datetime":"${now_day}T00:00:00Z","end-datetime":"${now_day}T23:59:59Z"},
 "policies":[{"policy":{"policy-type":"sts","policy-domain":"count.example"},
  "summary":{"total-successful-session-count":$c,"total-failure-session-count":"$c"},
  "failure-details":[{"result-type":"certificate-expired","failed-session-count":$c.0}]}]}
JSON
	deliver "count $c" "$W/count-$c.json"
	is "$new_reports/$new_rejected" 1/0 "count $c: the report is stored"
done
is "$(q "SELECT r.report_id || ':' || coalesce(p.total_successful_session_count::text, 'NULL') || ':' ||
	coalesce(p.total_failure_session_count::text, 'NULL') || ':' || coalesce(f.failed_session_count::text, 'NULL')
	FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id JOIN tlsrpt.failure f ON f.policy = p.id
	WHERE r.organization_name = 'Count Inc.' ORDER BY r.report_id")" \
"count-1000000000000:1000000000000:1000000000000:1000000000000
count-1000000000001:NULL:NULL:NULL
count-9223372036854775806:NULL:NULL:NULL" "counts over 10^12 are NULL, 10^12 itself is kept"
like "$(q "SELECT array_to_string(notes, ' / ') FROM tlsrpt.report WHERE report_id = 'count-9223372036854775806'")" \
	'total-successful-session-count: 9223372036854775806 is negative or over 10\^12' "the note says which count was left out"
is "$(q "SELECT count(*) FROM tlsrpt.alerts()" >/dev/null; echo $?)" 0 "alerts() still works"
ingest_noin --summary --domain=count.example
expect_quiet "--summary over the bounded counts"
like "$(cat "$W/out")" '2000000000000 sessions, 1000000000000 failed \(50.0 %\)' "--summary: the true sums (10^12 + 10^12 sessions)"

# ---- log values: a '"' or a control character in a value forges no field
cat >"$W/forge.json" <<'JSON'
{"organization-name":"Forge\" report-id=\"forged\" new=\"9","report-id":"forge-1\u001b[2J\nstored: x","date-range":{"start-datetime":"2024-03-02T00:00:00Z","end-datetime":"2024-03-02T23:59:59Z"},"policies":[{"policy":{"policy-type":"sts","policy-domain":"example.org domain=evil"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}
JSON
ingest "$W/forge.json" -v
is "$rc" 0 "forged log values: exit status 0"
line=$(grep 'stored: source=' "$W/err")
is "$(grep -c . "$W/err")" 1 "forged log values: one log line"
like "$line" 'org="Forge\\" report-id=\\"forged\\" new=\\"9" report-id="forge-1\\x1b\[2J\\x0astored: x" domain=example.orgdomain\\x3devil reports=1 ' \
	"forged log values: quotes escaped, control characters as \\xNN"
# read the line as a log parser would: key=value, a value "quoted" with \ escapes
fields=$(printf '%s\n' "$line" | python3 -c '
import re, sys
line = sys.stdin.read().rstrip("\n")
print(" ".join(k for k, v in re.findall(r""" ([a-z][a-z-]*)=("(?:[^"\\]|\\.)*"|\S+)""", line)))')
is "$fields" "source message-id org report-id domain reports new duplicate policies failures time" \
	"forged log values: the fields of the line are ours only"

# ---- the configuration file: a FIFO is refused at once, so is a file anyone may write
mkfifo "$W/fifo.conf"
start=$(date +%s)
ingest_noin -c "$W/fifo.conf" -n
expect_fail "a FIFO as the configuration file" 78 5
like "$(cat "$W/err")" 'not a regular file' "FIFO: refused as not a regular file"
ok "FIFO: refused at once" test $(($(date +%s) - start)) -lt 10
printf 'deadline = 30\n' >"$W/ww.conf"
chmod 0666 "$W/ww.conf"
ingest_noin -c "$W/ww.conf" -n
expect_fail "a world-writable configuration file" 78 5
like "$(cat "$W/err")" 'writable by anyone' "world-writable: the reason says so"
chmod 0644 "$W/ww.conf"
ingest_noin -c "$W/ww.conf" --dry-run -o max_parse_time=5
is "$rc" 0 "the same file, not world-writable: accepted"

# ---- a password on the command line warns
printf '{}' >"$W/empty.json"
ingest "$W/empty.json" --dry-run -v -d 'dbname=x password=secret'
like "$(cat "$W/err")" 'warning: a password given with -d is visible' "-d with password=: a warning"
ingest "$W/empty.json" --dry-run -v -o 'database=postgresql://u:secret@localhost/x'
like "$(cat "$W/err")" 'warning: a password given with -o database= is visible' "-o database=URI with user:pass@: a warning"
ingest "$W/empty.json" --dry-run -v -d 'dbname=x user=u'
is "$(grep -c password "$W/err")" 0 "-d without a password: no warning"

done_testing
