#!/bin/bash
# backfill-t.sh - importing a mailbox's worth of old reports: an mbox file, a
# Maildir and a directory tree, each with a bad message in the middle; running
# again adds nothing; a server that goes away half-way stops the run with 75
# and a line saying how far it got, and the same command then finishes the job.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
. "$here/lib/tap.sh"
. "$here/lib/pg.sh"
. "$here/lib/common.sh"
. "$here/lib/mail.sh"

BF=$top_srcdir/tests/data/backfill
case $BF in /*) ;; *) BF=$PWD/$BF ;; esac
[ -f "$BF/report.json" ] || bail "no fixtures at $BF"

pg_start
q() {
	psql -X -qAt -v ON_ERROR_STOP=1 -P null=NULL -F '|' -c "$1" 2>&1
}
count() {
	q "SELECT count(*) FROM $1"
}
# the rows of one import: reports|policies|failures|rejected
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
is "$(rows tree-)" "8|8|8|1" "directory: .eml, .json, .json.gz (by content), an mbox inside (the same bad attachment: one row)"
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
is "$(rows big-)" "2|2|2|2" "the others are stored, the big one rejected"
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
like "$(cat "$W/err")" "^4\.3\.0 tlsrpt-ingest: stopped at .*/resume\.mbox#25: .*the 24 message\(s\) before it are stored" \
	"the line says where it stopped: file and message number"
is "$(cat "$W/out")" "" "no summary after a stop"
pg_restart || bail "cannot restart PostgreSQL"
q "DROP TRIGGER stall ON tlsrpt.report" >/dev/null
ingest_noin "$W/resume.mbox"
is "$rc" 0 "the same command again: exit 0"
like "$(cat "$W/out")" ': 16 report\(s\) stored, 24 already stored, 0 rejected' "it finishes the job"
is "$(rows resume-)" "40|40|40|2" "all 40 reports, each once, with their policies and failures"
is "$(q "SELECT count(*) FROM (SELECT report_id FROM tlsrpt.report GROUP BY 1 HAVING count(*) > 1) d")" 0 \
	"no report stored twice"

done_testing
