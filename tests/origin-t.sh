#!/bin/bash
# origin-t.sh - who sent a report: DKIM signatures made here with a key
# generated at test time (openssl, tests/dkim-sign) and verified by
# tlsrpt-ingest with libopendkim from a key file (dkim_key_file, not DNS);
# Authentication-Results headers, forged and genuine; dkim_policy = require;
# our_domains; then the same into a throwaway PostgreSQL (the columns of
# migration 003 and tlsrpt.rejected).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

SIGN=$top_builddir/tests/dkim-sign
case $SIGN in /*) ;; *) SIGN=$PWD/$SIGN ;; esac
ODATA=$top_srcdir/tests/data/origin
command -v openssl >/dev/null 2>&1 || skip_all "no openssl to make a key"
[ -x "$SIGN" ] || bail "no $SIGN (make check builds it)"

# ---------------------------------------------------------------- keys and mails
K=$W/keys
mkdir -p "$K"
# newkey NAME SELECTOR DOMAIN: a 2048-bit RSA key; its public half goes into the key file
newkey() {
	openssl genrsa -out "$K/$1.pem" 2048 2>/dev/null || bail "openssl genrsa failed"
	printf '%s._domainkey.%s v=DKIM1; k=rsa; p=%s\n' "$2" "$3" \
		"$(openssl rsa -in "$K/$1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)" >>"$K/keys.txt"
}
newkey mailru mail2024 corp.mail.ru
newkey evil s1 evil.example
# a key that is nowhere in the key file: its signatures have no key to check against
openssl genrsa -out "$K/lost.pem" 2048 2>/dev/null

# report ID: the report (for example.org, or foreign) with that report-id, in a Mail.ru-like mail
report() {
	local src=$ODATA/report.json
	[ "${2:-}" = foreign ] && src=$ODATA/foreign.json
	json_with_id "$src" "$1" >"$W/$1.json"
	mkmail -p -s mail.ru -d example.org -m "$1@mail.ru" "$W/$1.json"
}
# signed KEY SELECTOR DOMAIN [BODY-LENGTH] <mail
signed() {
	"$SIGN" "$K/$1.pem" "$2" "$3" ${4:+"$4"} || bail "signing failed"
}

V=(-o trust=dkim-verify -o "dkim_key_file=$K/keys.txt")
# dry ID-OR-FILE ARGS...: --dry-run of $W/ID.eml; $W/out has the JSON lines
dry() {
	local f=$1
	shift
	ingest "$W/$f.eml" --dry-run "$@"
	[ "$rc" = 0 ] || { diag "exit $rc"; _show_output; }
}
origin_of() {
	printf '%s/%s/%s/%s' "$(jget "$W/out" 1 .origin_method)" "$(jget "$W/out" 1 .dkim_result)" \
		"$(jget "$W/out" 1 .dkim_domain)" "$(jget "$W/out" 1 .dkim_aligned)"
}

report good | signed mailru mail2024 corp.mail.ru >"$W/good.eml"
report body | signed mailru mail2024 corp.mail.ru |
	sed 's/"total-successful-session-count": 120/"total-successful-session-count": 9120/' >"$W/body.eml"
report subject | signed mailru mail2024 corp.mail.ru |
	sed 's/^Subject: Report Domain:/Subject: Report  Domain (changed):/' >"$W/subject.eml"
report unrelated | signed evil s1 evil.example >"$W/unrelated.eml"
report lensig | signed mailru mail2024 corp.mail.ru all >"$W/lensig.eml"
{ report lenadd | signed mailru mail2024 corp.mail.ru all; printf 'P.S. appended after signing\n'; } >"$W/lenadd.eml"
report nokey | signed lost gone corp.mail.ru >"$W/nokey.eml"
report unsigned >"$W/unsigned.eml"
{ printf 'From tlsrpt-noreply@mail.ru  Sat Mar  2 09:15:27 2024\n'; cat "$W/good.eml"; } >"$W/mbox.eml"
{ report both | signed evil s1 evil.example | signed mailru mail2024 corp.mail.ru; } >"$W/both.eml"

is "$(grep -c '^DKIM-Signature:' "$W/good.eml")" 1 "the test signed its mail"
ok "the body really differs from the signed one" ! cmp -s <(sed 1,9d "$W/good.eml") <(sed 1,9d "$W/body.eml")

# ---------------------------------------------------------------- dkim-verify, dry run
dry good "${V[@]}"
is "$(origin_of)" "dkim-verify/pass/corp.mail.ru/true" \
	"good signature: pass by corp.mail.ru, aligned with mail.ru (From and TLS-Report-Submitter)"
dry body "${V[@]}"
is "$(origin_of)" "dkim-verify/fail/corp.mail.ru/true" "body changed after signing: fail"
dry subject "${V[@]}"
is "$(origin_of)" "dkim-verify/fail/corp.mail.ru/true" "a signed header changed after signing: fail"
dry unrelated "${V[@]}"
is "$(origin_of)" "dkim-verify/pass/evil.example/false" "signature by an unrelated domain: pass, not aligned"
dry lensig "${V[@]}"
is "$(origin_of)" "dkim-verify/policy/corp.mail.ru/true" "l= present: refused (policy), though it verifies"
ok "the l= signature really has l=" grep -q 'l=[0-9]' "$W/lensig.eml"
dry lenadd "${V[@]}"
is "$(origin_of)" "dkim-verify/policy/corp.mail.ru/true" "l= with text appended after signing: refused"
dry nokey "${V[@]}"
is "$(origin_of)" "dkim-verify/permerror/corp.mail.ru/true" "no key for the selector: permerror"
{ printf 'DKIM-Signature: v=1; a=rsa-sha256; d=corp.mail.ru; s=mail2024; bh=YWJj; b=YWJj;\n'; report malformed; } \
	>"$W/malformed.eml"
dry malformed "${V[@]}"
is "$(origin_of)" "dkim-verify/permerror/null/null" "a signature header that cannot be read: permerror"
dry unsigned "${V[@]}"
is "$(origin_of)" "dkim-verify/none/null/null" "no signature: none"
dry mbox "${V[@]}"
is "$(origin_of)" "dkim-verify/pass/corp.mail.ru/true" "mbox From line first: still a pass"
dry both "${V[@]}"
is "$(origin_of)" "dkim-verify/pass/corp.mail.ru/true" "two signatures: the aligned pass is the one recorded"
dry good
is "$(origin_of)" "null/null/null/null" "trust = none (the default): nothing recorded"

# require: what is not an aligned pass goes to rejected, exit 0
for c in body unrelated lensig unsigned; do
	dry $c "${V[@]}" -o dkim_policy=require
	is "$rc/$(grep -c '' "$W/out")/$(jget "$W/out" 1 .report_id)" "0/1/null" "require, $c: no report, one rejection"
	like "$(jget "$W/out" 1 .rejected)" '^not authenticated \(dkim_policy = require\): ' "require, $c: the reason"
done
like "$(dry lensig "${V[@]}" -o dkim_policy=require; jget "$W/out" 1 .rejected)" 'l= refused' "require, l=: the reason names l="
like "$(dry unrelated "${V[@]}" -o dkim_policy=require; jget "$W/out" 1 .rejected)" \
	'd=evil.example is not the organizational domain' "require, unrelated: the reason names the domain"
dry good "${V[@]}" -o dkim_policy=require
is "$(jget "$W/out" 1 .report_id)" good "require, good signature: the report is kept"

# a key that cannot be fetched now: with require, try again later (75)
ingest "$W/good.eml" -o trust=dkim-verify -o "dkim_key_file=$W/no-such-file" -o dkim_policy=require --dry-run
is "$rc" 75 "require, key file unreadable (a failed key lookup): deferred, 75"
ingest "$W/good.eml" -o trust=dkim-verify -o "dkim_key_file=$W/no-such-file" --dry-run
is "$rc/$(origin_of)" "0/dkim-verify/temperror/corp.mail.ru/true" "accept, key lookup failed: temperror recorded"

# ---------------------------------------------------------------- Authentication-Results
A=(-o trust=authentication-results -o authserv_id=mx.example.org)
{ printf 'Authentication-Results: mx.evil.example; dkim=pass header.d=mail.ru header.s=x\n'; report forged; } >"$W/forged.eml"
{ printf 'Authentication-Results: mx.example.org;\n\tdkim=pass (2048-bit key) header.d=corp.mail.ru header.s=mail2024\n'
  report genuine; } >"$W/genuine.eml"
{ printf 'Authentication-Results: mx.example.org; dkim=fail header.d=corp.mail.ru\n'
  printf 'Authentication-Results: mx.evil.example; dkim=pass header.d=corp.mail.ru\n'; report mixed; } >"$W/mixed.eml"
dry forged "${A[@]}"
is "$(origin_of)" "authentication-results/null/null/null" "forged Authentication-Results (foreign authserv-id): ignored"
dry genuine "${A[@]}"
is "$(origin_of)" "authentication-results/pass/corp.mail.ru/true" "genuine Authentication-Results (our authserv-id): trusted"
dry mixed "${A[@]}"
is "$(origin_of)" "authentication-results/fail/corp.mail.ru/true" "ours says fail, a forged one says pass: fail"
dry forged "${A[@]}" -o dkim_policy=require
like "$(jget "$W/out" 1 .rejected)" 'no Authentication-Results header from authserv-id mx.example.org' \
	"require, forged header: rejected, with the reason"

# ---------------------------------------------------------------- our_domains
report foreign foreign >"$W/foreign.eml"
dry foreign -o our_domains=example.org,example.net
is "$(grep -c '' "$W/out")/$(jget "$W/out" 1 .rejected)" "1/policy domain victim.example is not one of our_domains" \
	"a report for a foreign domain: kept in rejected"
dry good -o our_domains=example.org,example.net
is "$(jget "$W/out" 1 .report_id)" good "a report for our domain: kept"
ingest "$W/foreign.json" --dry-run -o our_domains=example.org
is "$rc/$(jget "$W/out" 1 .rejected)" "0/policy domain victim.example is not one of our_domains" \
	"a .json file for a foreign domain: kept in rejected too"

# ---------------------------------------------------------------- the settings
ingest "$W/good.eml" --dry-run -o trust=dns
expect_fail "trust = dns" 78 5
ingest "$W/good.eml" --dry-run -o dkim_policy=sometimes
expect_fail "dkim_policy = sometimes" 78 5

# ---------------------------------------------------------------- into PostgreSQL
pg_start
ingest_noin --init-db
expect_quiet "--init-db"
is "$(q "SELECT string_agg(column_name::text, ',' ORDER BY column_name) FROM information_schema.columns
	WHERE table_schema = 'tlsrpt' AND table_name = 'report'
	AND column_name IN ('dkim_result', 'dkim_domain', 'dkim_aligned', 'origin_method', 'authenticated')")" \
	"authenticated,dkim_aligned,dkim_domain,dkim_result,origin_method" "migration: the origin columns exist"

row() {
	q "SELECT concat_ws('/', origin_method, dkim_result, dkim_domain, dkim_aligned, authenticated)
	   FROM tlsrpt.report WHERE report_id = '$1'"
}
ingest "$W/good.eml" "${V[@]}"
expect_ok "deliver a well-signed report"
is "$(row good)" "dkim-verify/pass/corp.mail.ru/t/t" "stored: aligned pass, authenticated"
ingest "$W/unrelated.eml" "${V[@]}"
expect_ok "deliver a report signed by an unrelated domain (accept)"
is "$(row unrelated)" "dkim-verify/pass/evil.example/f/f" "stored: pass, not aligned, not authenticated"
ingest "$W/body.eml" "${V[@]}"
expect_ok "deliver a report changed after signing (accept)"
is "$(row body)" "dkim-verify/fail/corp.mail.ru/t/f" "stored: fail, not authenticated"
ingest "$W/genuine.eml" "${A[@]}"
expect_ok "deliver with a genuine Authentication-Results header"
is "$(row genuine)" "authentication-results/pass/corp.mail.ru/t/t" "stored: learned from Authentication-Results"
ingest "$W/unsigned.eml"
expect_ok "deliver with trust = none"
is "$(row unsigned)" "f" "stored with trust = none: every origin column NULL, not authenticated"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE authenticated")" 2 "two authenticated reports"

rejected() {
	q "SELECT count(*) FROM tlsrpt.rejected WHERE reason LIKE '$1'"
}
ingest "$W/lensig.eml" "${V[@]}" -o dkim_policy=require
expect_ok "require, l=: exit 0"
is "$(row lensig)" "" "require, l=: no report row"
is "$(rejected 'not authenticated (dkim_policy = require): %l= refused%')" 1 "require, l=: kept in tlsrpt.rejected"
is "$(q "SELECT raw = pg_read_binary_file('$W/lensig.eml') FROM tlsrpt.rejected WHERE reason LIKE '%l= refused%'")" t \
	"require, l=: the whole message is kept" || true
ingest "$W/forged.eml" "${A[@]}" -o dkim_policy=require
expect_ok "require, forged Authentication-Results: exit 0"
is "$(row forged)" "" "require, forged header: no report row"
is "$(rejected '%no Authentication-Results header from authserv-id mx.example.org%')" 1 \
	"require, forged header: kept in tlsrpt.rejected"
ingest "$W/unrelated.eml" "${V[@]}" -o dkim_policy=require
expect_ok "require, unrelated signer, already stored under accept: exit 0"
is "$(rejected '%d=evil.example is not the organizational domain%')" 1 "require, unrelated signer: kept in tlsrpt.rejected"
ingest "$W/foreign.eml" -o our_domains=example.org
expect_ok "our_domains, a report for a foreign domain: exit 0"
is "$(row foreign)" "" "our_domains: no report row for the foreign domain"
is "$(rejected 'policy domain victim.example is not one of our_domains')" 1 "our_domains: kept in tlsrpt.rejected"
is "$(q "SELECT convert_from(raw, 'UTF8')::jsonb->>'report-id' FROM tlsrpt.rejected WHERE reason LIKE 'policy domain victim%'")" foreign \
	"our_domains: the rejected row holds the report"

done_testing
