#!/bin/bash
# seed.sh - writes the seed corpora for the fuzz harnesses from the test
# fixtures:  fuzz/seed.sh OUTDIR   (makes OUTDIR/{mime,inflate,report,ingest})
# Deterministic: names are the SHA-1 of the content, gzip -n is used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
out=${1:?usage: seed.sh OUTDIR}
data=$top_srcdir/tests/data
mkdir -p "$out/mime" "$out/inflate" "$out/report" "$out/ingest" "$out/header"

# put DIR FILE: store FILE in DIR under its own hash
put() {
	local h
	[ -s "$2" ] || return 0
	h=$(sha1sum <"$2" | cut -c1-40)
	cp "$2" "$1/$h"
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsrpt-seed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for f in "$data"/*.eml "$data"/integration/*.eml; do
	[ -f "$f" ] || continue
	put "$out/mime" "$f"
	put "$out/ingest" "$f"
	put "$out/header" "$f"
done
for f in "$data"/*.json "$data"/integration/*.json; do
	[ -f "$f" ] || continue
	put "$out/report" "$f"
	put "$out/ingest" "$f"
	gzip -9 -n -c "$f" >"$tmp/z"
	put "$out/inflate" "$tmp/z"
done
for f in "$data"/*.gz "$data"/integration/*.gz; do
	[ -f "$f" ] || continue
	put "$out/inflate" "$f"
	put "$out/ingest" "$f"
	if gzip -dc "$f" >"$tmp/j" 2>/dev/null; then
		put "$out/report" "$tmp/j"
	fi
done

# a few shapes the fixtures lack
g=$data/integration/google.json
[ -f "$g" ] || g=$(ls "$data"/*.json | head -n 1)
# two gzip members, garbage after a member, a zlib stream, a truncated member
{ head -c 300 "$g" | gzip -n -c; tail -c +301 "$g" | gzip -n -c; } >"$tmp/two"
put "$out/inflate" "$tmp/two"
{ gzip -n -c "$g"; printf 'garbage after the stream\n'; } >"$tmp/garb"
put "$out/inflate" "$tmp/garb"
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(open(sys.argv[1], "rb").read()))' "$g" >"$tmp/zl"
	put "$out/inflate" "$tmp/zl"
fi
gzip -n -c "$g" | head -c 200 >"$tmp/trunc"
put "$out/inflate" "$tmp/trunc"
# a report with every oddity the model mends
printf '%s' '{"organization-name":"x\u0000y","date-range":{"start-datetime":"2024-02-29T23:59:60+01:00","end-datetime":"2024-03-01"},"report-id":7,"policies":{"policy":{"policy-type":"sts","mx-host":"mx: a.example","policy-string":"x"},"summary":{"total-successful-session-count":"12","total-failure-session-count":-1},"failure-details":{"result-type":"x","sending-mta-ip":"[::ffff:1.2.3.4]","receiving-ip":"999.1.1.1","failed-session-count":1e3,"additional-info-uri":"u","receiving-mx-host-name":"h"}}}' >"$tmp/odd"
put "$out/report" "$tmp/odd"
put "$out/ingest" "$tmp/odd"
# Authentication-Results shapes for header-fuzz: ours, a forged one behind a
# comment, quotes or folding, one after a line that ends the header section
j='{"organization-name":"o","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"report-id":"r","policies":[]}'
n=0
for ar in 'mx.ours.example; dkim=pass header.d=example.com' \
	'(comment) mx.ours.example; dkim=pass header.d=example.com' \
	'"mx.ours.example"; dkim=pass header.i=@example.com' \
	'mx.ours.example;\n\tdkim=pass (ok)\n header.d=example.com' \
	'other.example; dkim=pass header.d=example.com'; do
	n=$((n + 1))
	printf 'Authentication-Results: %b\nFrom: r@example.com\nTLS-Report-Submitter: example.com\nSubject: Report\nContent-Type: application/tlsrpt+json\n\n%s\n' "$ar" "$j" >"$tmp/ar$n"
	put "$out/header" "$tmp/ar$n"
done
printf 'From: r@example.com\nnot a header line\nAuthentication-Results: mx.ours.example; dkim=pass header.d=example.com\nContent-Type: application/tlsrpt+json\n\n%s\n' "$j" >"$tmp/arbody"
put "$out/header" "$tmp/arbody"
printf 'mx.ours.example; dkim=pass header.d=example.com' >"$tmp/arvalue"
put "$out/header" "$tmp/arvalue"
echo "seed corpora in $out: mime $(ls "$out/mime" | wc -l), inflate $(ls "$out/inflate" | wc -l)," \
	"report $(ls "$out/report" | wc -l), ingest $(ls "$out/ingest" | wc -l), header $(ls "$out/header" | wc -l)"
