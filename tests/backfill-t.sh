#!/bin/bash
# backfill-t.sh - importing a mailbox's worth of old reports: an mbox file, a
# Maildir and a directory tree, each with a bad message in the middle; running
# again adds nothing; a server that goes away half-way stops the run with 75
# and a line saying how far it got, and the same command then finishes the job.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

BF=$top_srcdir/tests/data/backfill
case $BF in /*) ;; *) BF=$PWD/$BF ;; esac
[ -f "$BF/report.json" ] || bail "no fixtures at $BF"

pg_start
count() {
	q "SELECT count(*) FROM $1"
}
# the rows of one import: reports|policies|failures|rejected
# no process of ours is left running FILE runs (a lane's included), within 5 s
wait_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		pgrep -f "^$BIN_PROGRAM .*\.mbox" >/dev/null || return 0
		sleep 0.05
	done
	return 1
}
rows() {
	q "SELECT (SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE '$1%')
	    || '|' || (SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id LIKE '$1%')
	    || '|' || (SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy
	               JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id LIKE '$1%')
	    || '|' || (SELECT count(*) FROM tlsrpt.rejected)"
}
ingest_noin --init-db
is "$rc" 0 "--init-db"

# report PREFIX N [mkmail options]: a report mail with report-id PREFIX-N
report() {
	local prefix=$1 n=$2
	shift 2
	json_with_id "$BF/report.json" "$prefix-$n" >"$W/r.json"
	mkmail -m "$prefix-$n@backfill.example" "$@" "$W/r.json"
}
# an mbox of N reports with the bad mail at position BAD (0: none)
mkmbox() {
	local prefix=$1 n=$2 bad=$3 i
	for ((i = 1; i <= n; i++)); do
		if [ "$i" = "$bad" ]; then
			printf 'From noreply@broken.example  Thu Jun  1 09:00:00 2023\n'
			cat "$BF/bad.eml"
		else
			report "$prefix" "$i" -F
		fi
		echo
	done
}

# ---------------------------------------------------------------- mbox
mkmbox mbox 7 4 >"$W/reports.mbox"
is "$(grep -c '^From ' "$W/reports.mbox")" 7 "the mbox holds 7 messages"
ingest_noin "$W/reports.mbox"
is "$rc" 0 "mbox import: exit 0"
is "$(cat "$W/err")" "" "mbox import: nothing on stderr (not a terminal)"
like "$(cat "$W/out")" '^tlsrpt-ingest: 7 message\(s\) from 1 file\(s\): 6 report\(s\) stored, 0 already stored, 1 rejected' \
	"mbox import: the summary line"
is "$(grep -c '' "$W/out")" 1 "mbox import: only the summary on stdout"
is "$(rows mbox-)" "6|6|6|1" "mbox: 6 reports, their policies and failures, 1 rejected"
is "$(q "SELECT reason FROM tlsrpt.rejected")" "gzip data truncated" "the bad message is kept with its reason"
is "$(q "SELECT string_agg(report_id, ',' ORDER BY id) FROM tlsrpt.report")" \
	"mbox-1,mbox-2,mbox-3,mbox-5,mbox-6,mbox-7" "stored in mbox order, around the bad one"
is "$(q "SELECT count(DISTINCT message_id) FROM tlsrpt.report")" 6 "each report carries its own Message-ID"
is "$(q "SELECT DISTINCT source FROM tlsrpt.report")" file "source = file"

ingest_noin "$W/reports.mbox"
is "$rc" 0 "the mbox again: exit 0"
like "$(cat "$W/out")" ': 0 report\(s\) stored, 6 already stored, 1 rejected' "the mbox again: all already stored"
is "$(rows mbox-)" "6|6|6|1" "the mbox again: no new rows anywhere"

# a single message with a From_ line is one message, not an mbox
report single 1 -F >"$W/single.eml"
ingest_noin "$W/single.eml"
is "$rc" 0 "one message with a From_ line: exit 0"
is "$(cat "$W/out" "$W/err")" "" "one message file: quiet, as before"
is "$(rows single-)" "1|1|1|1" "one message file: stored"

# ---------------------------------------------------------------- Maildir
M=$W/Maildir
mkdir -p "$M/cur" "$M/new" "$M/tmp" "$M/.Reports/cur" "$M/.Reports/new" "$M/.Reports/tmp"
report mdir 1 >"$M/cur/1685600000.M1P1.host:2,S"
report mdir 2 >"$M/cur/1685600001.M2P1.host:2,S"
cp "$BF/bad.eml" "$M/cur/1685600002.M3P1.host:2,S"
report mdir 3 >"$M/cur/1685600003.M4P1.host:2,S"
report mdir 4 >"$M/new/1685600004.M5P1.host"
report mdir 5 >"$M/.Reports/new/1685600005.M6P1.host"
report mdir-tmp 1 >"$M/tmp/1685600006.M7P1.host"      # being delivered: not read
echo "3 V1685600000 N7" >"$M/dovecot-uidlist"           # not a message
printf 'junk\n' >"$M/cur/.hidden"                        # not a message
ingest_noin "$M"
is "$rc" 0 "Maildir import: exit 0"
like "$(cat "$W/out")" '^tlsrpt-ingest: 6 message\(s\) from 6 file\(s\): 5 report\(s\) stored, 0 already stored, 1 rejected' \
	"Maildir import: the summary line"
is "$(rows mdir-)" "5|5|5|1" "Maildir: cur, new and the Maildir++ folder (the bad attachment was kept once already)"
is "$(count "tlsrpt.report WHERE report_id LIKE 'mdir-tmp%'")" 0 "Maildir: tmp/ is not read"

# ---------------------------------------------------------------- a directory tree
T=$W/tree
mkdir -p "$T/2023/06" "$T/2023/07" "$T/json" "$T/.cache"
report tree 1 >"$T/2023/06/a.eml"
report tree 2 -p >"$T/2023/06/b.eml"
json_with_id "$BF/report.json" tree-3 >"$T/json/c.json"
json_with_id "$BF/report.json" tree-4 | gzip -n >"$T/json/d.json.gz"
json_with_id "$BF/report.json" tree-5 | gzip -n >"$T/json/report-without-suffix"
sed 's/broken-1/broken-2/g' "$BF/bad.eml" >"$T/2023/07/bad.eml"    # another bad one: its own row
mkmbox tree-mbox 3 0 >"$T/2023/07/archive.mbox"
report tree-hidden 1 >"$T/.cache/x.eml"
ln -s "$T/2023" "$T/loop"                          # a link to a directory is not followed
ingest_noin "$T"
is "$rc" 0 "directory import: exit 0"
like "$(cat "$W/out")" '^tlsrpt-ingest: 9 message\(s\) from 7 file\(s\): 8 report\(s\) stored, 0 already stored, 1 rejected' \
	"directory import: the summary line"
is "$(rows tree-)" "8|8|8|2" "directory: .eml, .json, .json.gz (by content), an mbox inside (another message with the same bad attachment: its own row)"
is "$(count "tlsrpt.report WHERE report_id = 'tree-hidden-1'")" 0 "directory: hidden directories are skipped"

# several arguments in one run, some already there
ingest_noin "$W/reports.mbox" "$M" "$W/no-such-file"
is "$rc" 66 "an unreadable argument among good ones: exit 66 at the end"
like "$(cat "$W/out")" ': 0 report\(s\) stored, 11 already stored, 2 rejected, 1 unreadable' \
	"the summary counts the unreadable one"
like "$(cat "$W/err")" '^5\.3\.0 .*could not be read' "one status line for it"

# --dry-run walks the same way
ingest_noin --dry-run "$W/reports.mbox"
is "$rc" 0 "--dry-run of an mbox: exit 0"
is "$(grep -c '"report_id"' "$W/out")" 6 "--dry-run of an mbox: six reports"
is "$(grep -c '"rejected"' "$W/out")" 1 "--dry-run of an mbox: one rejection"

# ---------------------------------------------------------------- cut at max_message_size inside an mbox
{
	report big 1 -F
	echo
	printf 'From noreply@big.example  Thu Jun  1 09:00:00 2023\nSubject: huge\n\n'
	head -c 300000 /dev/zero | tr '\0' 'x' | fold -w 76
	echo
	report big 3 -F
} >"$W/big.mbox"
ingest_noin -o max_message_size=100k "$W/big.mbox"
is "$rc" 0 "an mbox with one message over max_message_size: exit 0"
is "$(rows big-)" "2|2|2|3" "the others are stored, the big one rejected"
like "$(q "SELECT reason || '|' || raw_truncated FROM tlsrpt.rejected ORDER BY id DESC LIMIT 1")" \
	'over max_message_size.*\|true$' "its row names the limit and is marked truncated"

# ---------------------------------------------------------------- resumed backfill
# Message 25 of 40 stalls in a trigger; the server is stopped under it.
mkmbox resume 40 0 >"$W/resume.mbox"
q "CREATE FUNCTION public.stall() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN IF NEW.report_id = 'resume-25' THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END\$\$;
   CREATE TRIGGER stall BEFORE INSERT ON tlsrpt.report FOR EACH ROW EXECUTE FUNCTION public.stall()" >/dev/null
"${_timeout[@]}" "$BIN" -o statement_timeout=120 -o deadline=120 "$W/resume.mbox" >"$W/out" 2>"$W/err" &
pid=$!
for _ in $(seq 300); do
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" = 1 ] && break
	sleep 0.1
done
is "$(count "tlsrpt.report WHERE report_id LIKE 'resume-%'")" 24 "24 messages committed when the server goes away"
pg_stop
wait $pid
rc=$?
is "$rc" 75 "server gone half-way: exit 75"
is "$(grep -c '' "$W/err")" 1 "exactly one line on stderr"
# group commit (pipeline.c): messages 1-24 are committed, but a backfill
# counts a message as stored only after a durable COMMIT covering it, and
# all 40 were sent at once: the line names the first message not known to be
# durable (here at most 25), says how many before it are stored, and where the
# run stopped (the stalled message #25).
line=$(cat "$W/err")
at=$(sed -n 's/.*stopped at .*\/resume\.mbox#\([0-9]*\): .*/\1/p' <<<"$line")
before=$(sed -n 's/.* the \([0-9]*\) message(s) before it are stored.*/\1/p' <<<"$line")
ok "the line says where it stopped: file and message number ($line)" \
	test -n "$at" -a "${at:-99}" -le 25 -a "${before:-x}" = "$((${at:-0} - 1))"
like "$line" "resume\.mbox#25([^0-9]|$)" "the line names the stalled message"
is "$(cat "$W/out")" "" "no summary after a stop"
pg_restart || bail "cannot restart PostgreSQL"
stored=$(count "tlsrpt.report WHERE report_id LIKE 'resume-%'")
ok "every message it said was stored is there ($stored stored, $before said)" test "$stored" -ge "${before:-999}"
q "DROP TRIGGER stall ON tlsrpt.report" >/dev/null
ingest_noin "$W/resume.mbox"
is "$rc" 0 "the same command again: exit 0"
like "$(cat "$W/out")" ": $((40 - stored)) report\\(s\\) stored, $stored already stored, 0 rejected" "it finishes the job"
is "$(rows resume-)" "40|40|40|3" "all 40 reports, each once, with their policies and failures"
is "$(q "SELECT count(*) FROM (SELECT report_id FROM tlsrpt.report GROUP BY 1 HAVING count(*) > 1) d")" 0 \
	"no report stored twice"

# ---------------------------------------------------------------- several messages in flight
# FILE runs keep many messages in flight on one connection (store_batch_add);
# each message stays its own transaction.

# a message the database refuses as data in the middle: an organization-name
# past the btree limit (random text does not compress: 54000); its report is
# kept as rejected, the messages around it are stored
long=$(head -c 8000 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 3000)
{
	for i in $(seq 12); do
		if [ "$i" = 6 ]; then
			json_with_id "$BF/report.json" refused-6 |
				sed "s|\"organization-name\":\"[^\"]*\"|\"organization-name\":\"$long\"|" >"$W/r.json"
			mkmail -F -m "refused-6@backfill.example" "$W/r.json"
		else
			report refused "$i" -F
		fi
		echo
	done
} >"$W/refused.mbox"
ingest_noin "$W/refused.mbox"
is "$rc" 0 "refused by the database in the middle of a batch: exit 0"
like "$(cat "$W/out")" ': 11 report\(s\) stored, 0 already stored' "refused in a batch: the others are stored"
is "$(q "SELECT string_agg(report_id, ',' ORDER BY id) FROM tlsrpt.report WHERE report_id LIKE 'refused-%'")" \
	"refused-1,refused-2,refused-3,refused-4,refused-5,refused-7,refused-8,refused-9,refused-10,refused-11,refused-12" \
	"refused in a batch: every other report, once, in order"
like "$(q "SELECT reason FROM tlsrpt.rejected WHERE message_id = 'refused-6@backfill.example'")" \
	'^database refused the report: .*\[54000\]$' "refused in a batch: its report is kept as rejected, with the reason"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id = 'refused-6@backfill.example'")" 1 "refused in a batch: one row"
ingest_noin "$W/refused.mbox"
is "$rc" 0 "refused in a batch, again: exit 0"
like "$(cat "$W/out")" ': 0 report\(s\) stored, 11 already stored' "refused in a batch, again: all already there"
is "$(q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id = 'refused-6@backfill.example'")" 1 \
	"refused in a batch, again: still one rejected row"

# duplicates inside one batch, next to each other and apart
{
	for i in 1 2 1 3 3 2 4; do
		report dup "$i" -F
		echo
	done
} >"$W/dup.mbox"
ingest_noin "$W/dup.mbox"
is "$rc" 0 "duplicates inside one batch: exit 0"
like "$(cat "$W/out")" '^tlsrpt-ingest: 7 message\(s\) from 1 file\(s\): 4 report\(s\) stored, 3 already stored, 0 rejected' \
	"duplicates inside one batch: counted as such"
is "$(rows dup-)" "4|4|4|$(count tlsrpt.rejected)" "duplicates inside one batch: each report once"

# each message is its own transaction, with its own timeouts (SET LOCAL
# inside the pipeline); a statement over statement_timeout stops the run there
q "CREATE TABLE public.seen (report_id text, xid xid8, st text, lt text);
   CREATE FUNCTION public.see() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN INSERT INTO public.seen VALUES (NEW.report_id, pg_current_xact_id(),
       current_setting('statement_timeout'), current_setting('lock_timeout'));
     IF NEW.report_id = 'slow-6' THEN PERFORM pg_sleep(5); END IF; RETURN NEW; END\$\$;
   CREATE TRIGGER see BEFORE INSERT ON tlsrpt.report FOR EACH ROW EXECUTE FUNCTION public.see()" >/dev/null
mkmbox slow 10 0 >"$W/slow.mbox"
ingest_noin -o statement_timeout=1 -o lock_timeout=3 "$W/slow.mbox"
is "$rc" 75 "over statement_timeout in a batch: exit 75"
# (group commit: messages 1-5 are committed, not yet durably; the line names
# the first message not known to be stored, and the one that failed)
like "$(cat "$W/err")" "^4\.3\.0 tlsrpt-ingest: stopped at .*/slow\.mbox#[1-6]: .*statement timeout.*message\(s\) before it are stored" \
	"over statement_timeout in a batch: the line names the message"
like "$(cat "$W/err")" "slow\.mbox#6([^0-9]|$)" "over statement_timeout in a batch: the line names the message that failed"
is "$(q "SELECT string_agg(DISTINCT st || ' ' || lt, ',') FROM public.seen WHERE report_id IN ('slow-1','slow-2','slow-3','slow-4','slow-5')")" \
	"1s 3s" "the timeouts apply inside each message's transaction"
is "$(q "SELECT count(DISTINCT xid) FROM public.seen WHERE report_id IN ('slow-1','slow-2','slow-3','slow-4','slow-5')")" 5 \
	"each message its own transaction"
q "DROP TRIGGER see ON tlsrpt.report" >/dev/null
ingest_noin "$W/slow.mbox"
is "$rc" 0 "over statement_timeout, the same command again: exit 0"
is "$(rows slow-)" "10|10|10|$(count tlsrpt.rejected)" "over statement_timeout, again: all 10, each once"

# the server stopped under a batch that is moving (no stall): the line names
# the first message not stored, all before it are; the rerun finishes the job
mkmbox stop 200 0 >"$W/stop.mbox"
q "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END\$\$;
   CREATE TRIGGER slow BEFORE INSERT ON tlsrpt.report FOR EACH ROW EXECUTE FUNCTION public.slow()" >/dev/null
"${_timeout[@]}" "$BIN" "$W/stop.mbox" >"$W/out" 2>"$W/err" &
pid=$!
for _ in $(seq 300); do
	[ "$(count "tlsrpt.report WHERE report_id LIKE 'stop-%'")" -ge 40 ] && break
	sleep 0.05
done
pg_stop
wait $pid
rc=$?
is "$rc" 75 "server stopped under a moving batch: exit 75"
is "$(grep -c '' "$W/err")" 1 "server stopped under a moving batch: one line"
line=$(cat "$W/err")
at=$(sed -n 's/.*stopped at .*\/stop\.mbox#\([0-9]*\): .*/\1/p' <<<"$line")
before=$(sed -n 's/.* the \([0-9]*\) message(s) before it are stored.*/\1/p' <<<"$line")
ok "the line names the first message not stored: $line" test "${before:-x}" = "$((${at:-0} - 1))"
pg_restart || bail "cannot restart PostgreSQL"
stored=$(count "tlsrpt.report WHERE report_id LIKE 'stop-%'")
ok "every message before it is stored ($stored stored, $before before it)" test "$stored" -ge "${before:-999}"
is "$(count "tlsrpt.report WHERE report_id IN ($(seq -s, -f "'stop-%g'" 0 "${before:-1}"))")" "${before:-x}" \
	"exactly the ones before it, each of them"
q "DROP TRIGGER slow ON tlsrpt.report" >/dev/null
ingest_noin "$W/stop.mbox"
is "$rc" 0 "server stopped under a moving batch, the same command again: exit 0"
like "$(cat "$W/out")" ": $((200 - stored)) report\\(s\\) stored, $stored already stored, 0 rejected" "it finishes the job"
is "$(rows stop-)" "200|200|200|$(count tlsrpt.rejected)" "all 200, each once, with their policies and failures"

# big messages in flight (send buffers full both ways): a report with 3000
# failure rows, several times over
awk 'BEGIN {
	printf "{\"organization-name\":\"Big Co.\",\"date-range\":{\"start-datetime\":\"2023-06-01T00:00:00Z\",\"end-datetime\":\"2023-06-01T23:59:59Z\"},\"contact-info\":\"x@big.example\",\"report-id\":\"TEMPLATE\",\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\",\"policy-domain\":\"example.net\"},\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":3000},\"failure-details\":["
	for (i = 1; i <= 3000; i++)
		printf "%s{\"result-type\":\"starttls-not-supported\",\"sending-mta-ip\":\"198.51.100.%d\",\"receiving-mx-hostname\":\"mx%d.example.net\",\"failed-session-count\":1}", (i > 1 ? "," : ""), i % 250 + 1, i
	printf "]}]}\n"
}' >"$W/big.json"
for i in $(seq 8); do
	json_with_id "$W/big.json" "bigbatch-$i" >"$W/r.json"
	mkmail -F -m "bigbatch-$i@backfill.example" "$W/r.json"
	echo
done >"$W/bigbatch.mbox"
ingest_noin "$W/bigbatch.mbox"
is "$rc" 0 "big messages in flight: exit 0"
is "$(rows bigbatch-)" "8|8|24000|$(count tlsrpt.rejected)" "big messages in flight: all their rows"

# ---------------------------------------------------------------- lanes
# backfill_jobs (default 2): a run of at least 64 messages a lane is shared by
# that many processes, each with its own connection; message k is lane k % 2's.
# Which server session stored each report is recorded by a trigger.
q "CREATE TABLE public.lane (report_id text, pid integer);
   CREATE FUNCTION public.lane() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN INSERT INTO public.lane VALUES (NEW.report_id, pg_backend_pid()); RETURN NEW; END\$\$;
   CREATE TRIGGER lane BEFORE INSERT ON tlsrpt.report FOR EACH ROW EXECUTE FUNCTION public.lane()" >/dev/null
mkmbox lanes 200 0 >"$W/lanes.mbox"
ingest_noin "$W/lanes.mbox"
is "$rc" 0 "200 messages in two lanes: exit 0"
like "$(cat "$W/out")" '^tlsrpt-ingest: 200 message\(s\) from 1 file\(s\): 200 report\(s\) stored, 0 already stored, 0 rejected' \
	"two lanes: one summary line for the whole run"
is "$(grep -c '' "$W/out")" 1 "two lanes: only the summary on stdout"
is "$(rows lanes-)" "200|200|200|$(count tlsrpt.rejected)" "two lanes: all 200, each once"
is "$(q "SELECT count(DISTINCT pid) FROM public.lane WHERE report_id LIKE 'lanes-%'")" 2 "two lanes: two server sessions"
is "$(q "SELECT count(*) FROM (SELECT pid FROM public.lane WHERE report_id LIKE 'lanes-%'
	GROUP BY pid HAVING bool_and(substr(report_id, 7)::int % 2 = 1) OR bool_and(substr(report_id, 7)::int % 2 = 0)) x")" 2 \
	"two lanes: each stored every other message"
ingest_noin -o backfill_jobs=1 "$W/lanes.mbox"
like "$(cat "$W/out")" ': 0 report\(s\) stored, 200 already stored' "backfill_jobs=1, again: all already there"
mkmbox lanes1 200 0 >"$W/lanes1.mbox"
ingest_noin -o backfill_jobs=1 "$W/lanes1.mbox"
is "$(q "SELECT count(DISTINCT pid) FROM public.lane WHERE report_id LIKE 'lanes1-%'")" 1 "backfill_jobs=1: one server session"
mkmbox lanes3 60 0 >"$W/lanes3.mbox"
ingest_noin "$W/lanes3.mbox"
is "$(q "SELECT count(DISTINCT pid) FROM public.lane WHERE report_id LIKE 'lanes3-%'")" 1 \
	"60 messages (fewer than 64 a lane): one lane"

# the run's first process ends (a signal): the other lane ends with it, and
# one line is said
q "CREATE OR REPLACE FUNCTION public.lane() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END\$\$" >/dev/null
mkmbox lanesterm 200 0 >"$W/lanesterm.mbox"
"$BIN" "$W/lanesterm.mbox" >"$W/out" 2>"$W/err" &
pid=$!
for _ in $(seq 300); do
	[ "$(count "tlsrpt.report WHERE report_id LIKE 'lanesterm-%'")" -ge 10 ] && break
	sleep 0.05
done
is "$(pgrep -c -f "^$BIN_PROGRAM .*lanesterm\.mbox")" 2 "two lanes: two processes run it"
kill -TERM "$pid"
wait "$pid"
rc=$?
is "$rc" 75 "two lanes, SIGTERM: exit 75"
is "$(grep -c '' "$W/err")" 1 "two lanes, SIGTERM: one line on stderr"
ok "two lanes, SIGTERM: no process of the run left" wait_gone
q "DROP TRIGGER lane ON tlsrpt.report" >/dev/null
ingest_noin "$W/lanesterm.mbox"
is "$rc" 0 "two lanes, after SIGTERM, the same command again: exit 0"
is "$(rows lanesterm-)" "200|200|200|$(count tlsrpt.rejected)" "two lanes, after SIGTERM, again: all 200, each once"

done_testing
