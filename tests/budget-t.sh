#!/bin/bash
# budget-t.sh - bounded storage for what strangers send, against a real
# PostgreSQL: a flood of junk POSTs from one client, spam from one sender
# domain, many clients at once. Every junk input keeps its row in
# tlsrpt.rejected (reason, size, digest, source), but raw copies only within
# max_rejected_raw_per_source_day per source and max_rejected_raw_per_day in
# all; a real report is stored whatever the budget says; a FILE run is not
# limited. The figures are computed here, from the sizes sent.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

command -v python3 >/dev/null 2>&1 || skip_all "no python3"
pg_start

PER_SOURCE=1048576   # 1M
PER_DAY=3145728      # 3M
cat >"$W/budget.conf" <<EOF
database = $(pg_conninfo)
max_rejected_raw_per_source_day = 1M
max_rejected_raw_per_day = 3M
EOF
chmod 600 "$W/budget.conf"

ingest_noin --init-db -c "$W/budget.conf"
is "$rc" 0 "--init-db"

# post ADDR FILE [CONF]: one CGI request; sets rc and $W/status (the Status line)
post() {
	"${_timeout[@]}" env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+gzip \
		CONTENT_LENGTH="$(wc -c <"$2")" REMOTE_ADDR="$1" "$BIN" -c "${3:-$W/budget.conf}" <"$2" >"$W/out" 2>"$W/err"
	rc=$?
	sed -n 's/^Status: \([0-9]*\).*/\1/p' "$W/out" | tr -d '\r' >"$W/status"
}
# junk SIZE SEED...: for each SEED, $W/junk.SEED of SIZE bytes that are neither gzip nor JSON
junk() {
	python3 -c 'import random, sys
n = int(sys.argv[2])
for seed in sys.argv[3:]:
    r = random.Random(seed)
    open("%s/junk.%s" % (sys.argv[1], seed), "wb").write(b"junk" + r.getrandbits(8 * (n - 4)).to_bytes(n - 4, "little"))' "$W" "$@"
}
stored() { # stored SOURCE-KEY: bytes of raw copies kept for it
	q "SELECT coalesce(sum(octet_length(raw)), 0) FROM tlsrpt.rejected WHERE source_key = '$1'"
}

# ---------------------------------------------------------------- a flood of junk POSTs from one client
N=200
SIZE=65536
before=$(q "SELECT pg_total_relation_size('tlsrpt.rejected')")
fails=0
junk "$SIZE" $(seq -f 'flood-%g' "$N")
for i in $(seq "$N"); do
	post 192.0.2.1 "$W/junk.flood-$i"
	[ "$rc" = 0 ] && [ "$(cat "$W/status")" = 400 ] || fails=$((fails + 1))
done
is "$fails" 0 "flood: $N junk POSTs of $SIZE bytes, each answered 400 (kept)"
after=$(q "SELECT pg_total_relation_size('tlsrpt.rejected')")
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key = 'https:192.0.2.1'")" "$N" \
	"flood: one row per POST (nothing dropped)"
kept=$((PER_SOURCE / SIZE))
is "$(stored https:192.0.2.1)" "$((kept * SIZE))" "flood: raw copies of the first $kept only ($((kept * SIZE)) bytes <= 1M)"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key = 'https:192.0.2.1' AND raw_withheld
	AND raw_truncated AND octet_length(raw) = 0 AND raw_size = $SIZE AND length(digest) = 64 AND reason <> ''
	AND sender = '192.0.2.1' AND source = 'https'")" "$((N - kept))" \
	"flood: the other $((N - kept)) keep reason, size, digest and source, no bytes (raw_withheld, raw_truncated)"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key = 'https:192.0.2.1' AND NOT raw_withheld
	AND NOT raw_truncated AND octet_length(raw) = $SIZE")" "$kept" "flood: the $kept kept whole are marked so"
growth=$((after - before))
note "flood: tlsrpt.rejected grew by $growth bytes for $((N * SIZE)) bytes sent"
ok "flood: growth $growth bytes < 1M of raw copies + 2 kB a row" test "$growth" -lt $((PER_SOURCE + N * 2048))

# another client has its own budget; a real report from the flooder is stored
junk "$SIZE" other-1 other-2 other-3
for i in 1 2 3; do
	post 192.0.2.2 "$W/junk.other-$i"
done
is "$(stored https:192.0.2.2)" "$((3 * SIZE))" "another client: its own budget, all 3 raw copies kept"
json_with_id "$top_srcdir/tests/data/backfill/report.json" budget-real-1 | gzip -n >"$W/real.gz"
post 192.0.2.1 "$W/real.gz"
is "$(cat "$W/status")" 201 "a real report from the flooding client: stored (201)"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'budget-real-1'")" 1 "the real report is in tlsrpt.report"

# ---------------------------------------------------------------- spam to the published address, one sender domain
spam() { # spam I: a mail with no report in it, about 100 kB
	printf 'From: "Spammer %s" <s%s@Spam.Example>\nTo: tlsrpt@example.org\nSubject: offer %s\nMessage-ID: <spam-%s@spam.example>\n\n' "$1" "$1" "$1" "$1"
	python3 -c 'import random, string, sys; r = random.Random(sys.argv[1])
for _ in range(1300): print("".join(r.choice(string.ascii_letters) for _ in range(76)))' "spam-$1"
}
sizes=
for i in $(seq 20); do
	spam "$i" >"$W/spam.eml"
	sizes="$sizes $(wc -c <"$W/spam.eml")"
	ingest "$W/spam.eml" -c "$W/budget.conf"
	[ "$rc" = 0 ] || diag "spam $i: exit $rc: $(cat "$W/err")"
done
want=$(python3 -c 'import sys; t = 0
for s in map(int, sys.argv[2:]):
    if t + s <= int(sys.argv[1]): t += s
print(t)' "$PER_SOURCE" $sizes)
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key = 'mail:spam.example'")" 20 \
	"spam: 20 rows, keyed by the sender's domain in lower case"
is "$(stored mail:spam.example)" "$want" "spam: raw copies within the sender domain's budget ($want bytes)"

# ---------------------------------------------------------------- many clients: the budget of all sources together
total=$(q "SELECT coalesce(sum(octet_length(raw)), 0) FROM tlsrpt.rejected")
junk "$SIZE" $(seq -f 'many-%g' 40)
for i in $(seq 40); do
	post "198.51.100.$i" "$W/junk.many-$i"
done
want=$(python3 -c 'import sys; t, size, cap = map(int, sys.argv[1:])
for _ in range(40):
    if t + size <= cap: t += size
print(t)' "$total" "$SIZE" "$PER_DAY")
is "$(q "SELECT coalesce(sum(octet_length(raw)), 0) FROM tlsrpt.rejected")" "$want" \
	"40 clients: raw copies stop at max_rejected_raw_per_day in all ($want bytes <= 3M)"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key LIKE 'https:198.51.100.%'")" 40 \
	"40 clients: a row each"

# a FILE run is the administrator's own: no budget
junk "$SIZE" file-1
ingest_noin "$W/junk.file-1" -c "$W/budget.conf"
is "$(q "SELECT octet_length(raw) || '|' || raw_withheld || '|' || source_key FROM tlsrpt.rejected WHERE source = 'file'")" \
	"$SIZE|false|file:-" "a FILE run past every budget: the raw copy is kept"

# ---------------------------------------------------------------- parallel deliveries: a bounded overshoot
cat >"$W/par.conf" <<EOF
database = $(pg_conninfo)
max_rejected_raw_per_source_day = 256k
max_rejected_raw_per_day = 0
EOF
chmod 600 "$W/par.conf"
P=8
junk "$SIZE" $(seq -f 'par-%g' 24)
for round in 0 1 2; do
	for j in $(seq "$P"); do
		i=$((round * P + j))
		( env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST CONTENT_TYPE=application/tlsrpt+gzip \
			CONTENT_LENGTH="$SIZE" REMOTE_ADDR=203.0.113.9 "$BIN" -c "$W/par.conf" <"$W/junk.par-$i" >/dev/null 2>&1 ) &
	done
	wait
done
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE source_key = 'https:203.0.113.9'")" 24 "parallel: 24 rows"
got=$(stored https:203.0.113.9)
note "parallel: $got bytes of raw copies kept for a budget of 262144 ($P at a time)"
ok "parallel: at most the budget + one copy per delivery at the same time ($got <= 262144 + $P * $SIZE)" \
	test "$got" -le $((262144 + P * SIZE))
ok "parallel: at least the budget less one copy ($got >= 262144 - $SIZE)" test "$got" -ge $((262144 - SIZE))

# the budget's sums read an index, not the table
q "ANALYZE tlsrpt.rejected" >/dev/null
plan=$(q "EXPLAIN SELECT sum(raw_stored) FROM tlsrpt.rejected
	WHERE source_key = 'https:192.0.2.1' AND raw_stored > 0 AND received_at > now() - interval '1 day'")
like "$plan" 'Index (Only )?Scan using rejected_(source|raw)_day_idx' "the per-source sum reads one of migration 007's indexes"
ok "the per-source sum does not read the whole table" test -z "$(echo "$plan" | grep 'Seq Scan')"

done_testing
