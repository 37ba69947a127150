#!/bin/bash
# mta-t.sh - tlsrpt-ingest behind the real Postfix, procmail and maildrop
# (Debian's packages), end to end, on loopback only.
#
#   top_srcdir=... top_builddir=... bash tests/e2e/mta-t.sh
#
# Needs root (a private Postfix instance, runuser), the packages postfix,
# procmail, maildrop and postgresql-15; without them prints "1..0 # SKIP ...".
# Nothing outside a temporary directory is touched: the Postfix instance has
# its own config_directory and queue_directory, no SMTP listener, and
# default_transport = error, so no mail can leave the machine. The system's
# own Postfix instance (if any) is neither stopped nor reconfigured.
#
# What is set up (from contrib/, by sed substitution of the program's path,
# the connection string and the address only, so what is tested is what is
# documented):
#   - a throwaway PostgreSQL 15 (tests/lib/pg.sh) with database tlsrpt, schema
#     from --init-db --grant=tlsrpt_writer, and peer authentication mapping the
#     OS user nobody, and only nobody, to the role tlsrpt_writer. Every
#     delivery connects as tlsrpt_writer: a stored row proves that the
#     delivery ran as nobody (root is refused, which is checked);
#   - contrib/postfix/aliases.snippet   -> tls-reports@test.example  (local(8))
#   - contrib/postfix/master.cf.snippet + transport.snippet
#                                       -> tlsrpt@test.example      (pipe(8))
#   - contrib/procmail/procmailrc-tlsrpt  (procmail -m, as nobody)
#   - contrib/maildrop/mailfilter-tlsrpt  (maildrop FILE, as nobody)
#
# Environment: E2E_WAIT (seconds to wait for each delivery, default 30),
# E2E_KEEP=1 keeps the temporary directory (logs) for a look afterwards,
# TLSRPT_E2E_BIN=PATH tests that program (e.g. /usr/bin/tlsrpt-ingest from the
# Debian package, .ci/package) instead of a copy of the build's,
# TLSRPT_E2E_CONTRIB=DIR takes the recipes from DIR instead of contrib/ (e.g.
# the package's /usr/share/doc/tlsrpt-ingest/examples) and
# TLSRPT_E2E_CONTRIB_BIN the program's path written in them (default
# /usr/local/bin/tlsrpt-ingest, as in contrib/).
# shellcheck disable=SC2016,SC2317 # atexit strings are eval'd later; helpers run via ok/wait_for
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=$top_srcdir}"
case $top_srcdir in /*) ;; *) top_srcdir=$PWD/$top_srcdir ;; esac
case $top_builddir in /*) ;; *) top_builddir=$PWD/$top_builddir ;; esac
. "$top_srcdir/tests/lib/tap.sh"

WAIT=${E2E_WAIT:-30}
CONTRIB=${TLSRPT_E2E_CONTRIB:-$top_srcdir/contrib}
SRC_BIN=${TLSRPT_E2E_BIN:-$top_builddir/src/tlsrpt-ingest}
export LC_ALL=C
unset MAIL_CONFIG

# ---------------------------------------------------------------- prerequisites
[ "$(id -u)" = 0 ] || skip_all "needs root (a private Postfix instance, runuser)"
[ -x "$SRC_BIN" ] || bail "no program at $SRC_BIN (build it first)"
missing=
for c in postfix postconf postalias postmap postqueue sendmail procmail maildrop \
	runuser psql python3 gzip base64 timeout; do
	command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
done
[ -z "$missing" ] || skip_all "missing:$missing (apt-get install postfix procmail maildrop postgresql-15)"
postconf -d mail_version >/dev/null 2>&1 || skip_all "sendmail/postconf are not Postfix's"
for u in nobody postfix; do
	id "$u" >/dev/null 2>&1 || skip_all "no user $u"
done
getent group postdrop >/dev/null || skip_all "no group postdrop"
[ -d /usr/lib/postgresql/15/bin ] || [ -n "${PGBIN:-}" ] || skip_all "no PostgreSQL 15"

_timeout() { timeout -k 5 "$@"; }
as_nobody() { _timeout 120 runuser -u nobody -- "$@"; }
# wait_for SECONDS CMD...: until CMD succeeds; false on timeout
wait_for() {
	local limit=$(($1 * 4)) i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -ge "$limit" ] && return 1
		sleep 0.25
	done
}

E=$(mktemp -d /tmp/tlsrpt-e2e.XXXXXX) || bail "mktemp failed"
chmod 755 "$E"
if [ "${E2E_KEEP:-0}" = 1 ]; then
	atexit 'echo "# kept $E" >&2'
else
	atexit 'rm -rf "$E"'
fi
PF=$E/postfix
mkdir "$PF" && touch "$PF/main.cf"
postconf -c "$PF" -m 2>/dev/null | grep -qx hash || skip_all "Postfix without hash: tables"

. "$top_srcdir/tests/lib/pg.sh"

# ---------------------------------------------------------------- PostgreSQL
pg_start # skips the whole script without PostgreSQL; stopped at exit
plan 80
chmod 755 "$PGTMP" # the socket directory: nobody must reach the socket
runuser -u nobody -- test -x "$PGTMP" ||
	bail "nobody cannot reach $PGTMP (TLSRPT_PGTEST_ROOT must be traversable by others)"
ADMIN="host=$PGTMP port=$PGPORT user=postgres dbname=tlsrpt"
# What the recipes get instead of contrib's "dbname=tlsrpt user=tlsrpt_writer"
WRITER="host=$PGTMP port=$PGPORT dbname=tlsrpt user=tlsrpt_writer"
CONTRIB_CONN="dbname=tlsrpt user=tlsrpt_writer"
CONTRIB_BIN=${TLSRPT_E2E_CONTRIB_BIN:-/usr/local/bin/tlsrpt-ingest}

q() {
	_timeout 30 psql -X -qAt -v ON_ERROR_STOP=1 -d tlsrpt -c "$1" 2>&1
}
psql -X -qAt -d postgres -c "CREATE DATABASE tlsrpt" -c "CREATE ROLE tlsrpt_writer LOGIN" \
	-c "ALTER SYSTEM SET log_connections = on" >/dev/null 2>&1 || bail "cannot create database and role"

# the program, where nobody can run it (the build directory may be under /root)
if [ -n "${TLSRPT_E2E_BIN:-}" ]; then
	BIN=$TLSRPT_E2E_BIN
	as_nobody test -x "$BIN" || bail "nobody cannot run $BIN"
else
	mkdir -m 755 "$E/bin"
	install -m 755 "$SRC_BIN" "$E/bin/tlsrpt-ingest" || bail "cannot copy $SRC_BIN"
	BIN=$E/bin/tlsrpt-ingest
fi

out=$(_timeout 60 "$BIN" -d "$ADMIN" --init-db --grant=tlsrpt_writer 2>&1)
is "$?" 0 "--init-db --grant=tlsrpt_writer" || diag "$out"

# peer authentication: OS user nobody, and no other, may log in as tlsrpt_writer
hba=$PGTMP/data/pg_hba.conf
{ echo "local tlsrpt tlsrpt_writer peer map=tlsrpt"; echo "local all tlsrpt_writer reject"; cat "$hba"; } >"$hba.new"
mv "$hba.new" "$hba"
echo "tlsrpt nobody tlsrpt_writer" >>"$PGTMP/data/pg_ident.conf"
chown postgres: "$hba" "$PGTMP/data/pg_ident.conf"
q "SELECT pg_reload_conf()" >/dev/null
root_refused() {
	out=$(_timeout 60 "$BIN" -n -d "$WRITER" 2>&1)
	rc=$?
	[[ "$rc:$out" =~ ^75:4\.3\.0\ .*[Pp]eer\ authentication\ failed ]]
}
wait_for 15 root_refused
like "$rc:$out" "^75:4\.3\.0 .*[Pp]eer authentication failed" \
	"root cannot log in as tlsrpt_writer: a stored row proves the delivery ran as nobody"
out=$(as_nobody "$BIN" -n -d "$WRITER" 2>&1)
is "$?" 0 "nobody reaches the database as tlsrpt_writer (peer authentication)" || diag "$out"

# ---------------------------------------------------------------- messages
# mkreport ID RCPT [mbox]: a report mail whose report-id is ID (a base64 of
# "gzip -n" of report.json.in), with an mbox "From " line when a third
# argument is given
mkreport() {
	local id=$1 rcpt=$2 payload
	payload=$(sed "s/@REPORT_ID@/$id/g" "$here/report.json.in" | gzip -n -9 | base64 -w 76)
	[ -n "${3:-}" ] && printf 'From noreply-tlsrpt@reporter.test  Sat Mar  2 09:15:27 2024\n'
	while IFS= read -r line; do
		case $line in
		@PAYLOAD@) printf '%s\n' "$payload" ;;
		*) line=${line//@REPORT_ID@/$id}; printf '%s\n' "${line//@RCPT@/$rcpt}" ;;
		esac
	done <"$here/report.eml.in"
}
mkcron() {
	sed -e "s/@MSGID@/$1/g" -e "s/@RCPT@/$2/g" "$here/cron.eml.in"
}
stored() { # stored REPORT-ID: how many report rows carry it
	q "SELECT count(*) FROM tlsrpt.report WHERE report_id = '$1'"
}
rejected() { # rejected MSGID: how many rejected rows came from that cron mail
	q "SELECT count(*) FROM tlsrpt.rejected WHERE message_id LIKE '%$1%'"
}
is_stored() { [ "$(stored "$1")" = 1 ]; }
is_rejected() { [ "$(rejected "$1")" -ge 1 ] 2>/dev/null; }

# ---------------------------------------------------------------- Postfix
MAILLOG=$E/maillog
mkdir -p "$E/spool" "$E/data" "$E/mail"
chown postfix: "$E/data"
chown nobody: "$E/mail"

# master.cf: the usual services without any inet listener (no SMTP at all),
# no chroot, a postlog service for maillog_file; then contrib's pipe transport
cat >"$PF/master.cf" <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
# substitute SED-ARGS... < FILE: contrib's path and conninfo -> this test's
subst() {
	sed -e "s|$CONTRIB_BIN|$BIN|g" -e "s|$CONTRIB_CONN|$WRITER|g" "$@"
}
subst "$CONTRIB/postfix/master.cf.snippet" >>"$PF/master.cf"
subst -e 's|^tlsrpt@example\.com|tlsrpt@test.example|' "$CONTRIB/postfix/transport.snippet" >"$PF/transport"
{
	subst "$CONTRIB/postfix/aliases.snippet"
	echo "postmaster: root"
	echo "root: /dev/null"
	# bounces and other notices to the test's sender land here
	echo "e2e-sender: $E/mail/sender.mbox"
} >"$PF/aliases"

grep -q "argv=$BIN -d { $WRITER }" "$PF/master.cf"
ok_if "master.cf gets contrib/postfix/master.cf.snippet's transport (path and conninfo substituted)" $?
grep -q "^tls-reports: \"|$BIN -d '$WRITER'\"\$" "$PF/aliases"
ok_if "aliases gets contrib/postfix/aliases.snippet's entry (path and conninfo substituted)" $?
grep -q '^tlsrpt@test\.example[[:space:]]*tlsrpt:$' "$PF/transport"
ok_if "transport gets contrib/postfix/transport.snippet's entry (address substituted)" $?

postconf -c "$PF" -e \
	"compatibility_level = 3.6" \
	"queue_directory = $E/spool" \
	"data_directory = $E/data" \
	"mail_owner = postfix" \
	"setgid_group = postdrop" \
	"default_privs = nobody" \
	"myhostname = mx.test.example" \
	"mydomain = test.example" \
	"myorigin = test.example" \
	"mydestination = localhost test.example" \
	"inet_interfaces = loopback-only" \
	"inet_protocols = ipv4" \
	"mynetworks_style = host" \
	"alias_maps = hash:$PF/aliases" \
	"alias_database = hash:$PF/aliases" \
	"transport_maps = hash:$PF/transport" \
	"tlsrpt_destination_recipient_limit = 1" \
	"default_transport = error:no mail leaves this test" \
	"relay_transport = error:no mail leaves this test" \
	"maillog_file = $MAILLOG" \
	"maillog_file_prefixes = /var, /dev/stdout, $E" \
	"biff = no" \
	"delay_warning_time = 0" \
	"queue_run_delay = 300s" \
	"minimal_backoff_time = 300s" \
	"maximal_backoff_time = 600s" \
	>/dev/null 2>"$E/postconf.err" || bail "postconf -e failed: $(cat "$E/postconf.err")"
postalias -c "$PF" "$PF/aliases" && postmap -c "$PF" "$PF/transport" ||
	bail "postalias/postmap failed"

# doc/trust.md's header_checks rule, as Postfix reads it: every forged
# Authentication-Results naming our authserv-id is stripped, with comments,
# quotes or folding before the id; other hosts' headers are left alone
sed -n 's/^    \(\/^Authentication-Results:.*IGNORE\)$/\1/p' "$top_srcdir/doc/trust.md" >"$E/header_checks"
is "$(grep -c IGNORE "$E/header_checks")" 1 "trust.md: one header_checks rule"
hc() { printf '%b\n' "$1" | postmap -c "$PF" -h -q - "regexp:$E/header_checks" 2>&1; }
for h in 'Authentication-Results: mx.example.org; dkim=pass header.d=mail.ru' \
	'Authentication-Results: (comment) mx.example.org; dkim=pass' \
	'Authentication-Results: (nested (comment)) "MX.Example.Org" 1; dkim=pass' \
	'Authentication-Results:\n\tmx.example.org;\n\tdkim=pass header.d=mail.ru' \
	'Authentication-Results:(c)mx.example.org(d);dkim=pass'; do
	like "$(hc "$h")" 'IGNORE$' "header_checks strips: $(printf '%s' "$h" | tr '\t' ' ')"
done
for h in 'Authentication-Results: mx.example.org.evil.example; dkim=pass' \
	'Authentication-Results: other.example; dkim=pass' 'X-Note: mx.example.org'; do
	is "$(hc "$h")" "" "header_checks keeps: $h"
done

postfix_stop() {
	local pid i
	[ -f "$E/spool/pid/master.pid" ] || return 0
	pid=$(tr -dc 0-9 <"$E/spool/pid/master.pid")
	_timeout 60 postfix -c "$PF" stop >/dev/null 2>&1 ||
		_timeout 30 postfix -c "$PF" abort >/dev/null 2>&1 || true
	# wait (bounded) until master and its children are gone, then insist
	for ((i = 0; i < 40; i++)); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	return 0
}
atexit postfix_stop # run before pg.sh's cleanup (last in, first out)

# the system's own instance: its state before and after (it may not even be configured)
default_state() {
	_timeout 30 postfix status >/dev/null 2>&1
	echo "status=$?"
}
DEFAULT_BEFORE=$(default_state)

out=$(_timeout 60 postfix -c "$PF" check 2>&1)
is "$?:$out" "0:" "postfix check: the instance's configuration is clean" || diag "$out"
out=$(_timeout 60 postfix -c "$PF" start 2>&1)
ok_if "postfix -c DIR start (a private instance)" $? || { diag "$out"; bail "cannot start Postfix"; }
ok "Postfix master is running" wait_for 20 _timeout 10 postfix -c "$PF" status

# submit FILE RCPT: Postfix's sendmail, envelope sender e2e-sender
submit() {
	_timeout 60 sendmail -C "$PF" -oi -f e2e-sender@test.example "$2" <"$1"
}
# qid MESSAGE-ID: the queue ID cleanup(8) logged for it
qid() {
	sed -n "s/^.* postfix\/cleanup\[[0-9]*\]: \([0-9A-F]*\): message-id=<$1>.*/\1/p" "$MAILLOG" 2>/dev/null | tail -n 1
}
have_qid() { [ -n "$(qid "$1")" ]; }
# status_lines QID: the delivery lines of that queue file
status_lines() {
	grep -E " $1: to=<.*status=" "$MAILLOG" 2>/dev/null
}
logged() { # logged QID ERE
	status_lines "$1" | grep -Eq "$2"
}
# queue_json: one line per queued message, as postqueue -j prints it
queue_json() {
	_timeout 30 postqueue -c "$PF" -j 2>/dev/null
}
queue_empty() { [ -z "$(queue_json)" ]; }
no_bounce() { # no_bounce QID: nothing bounced, no notice to the sender
	! grep -Eq " $1: .*status=bounced| $1: sender non-delivery notification" "$MAILLOG" &&
		[ ! -e "$E/mail/sender.mbox" ]
}

# ---------------------------------------------------------------- path 1: aliases
mkreport e2e-alias-1 tls-reports@test.example >"$E/alias-1.eml"
submit "$E/alias-1.eml" tls-reports@test.example
ok_if "sendmail accepts a report for tls-reports@test.example" $?
ok "alias path: the report is stored in tlsrpt.report" wait_for "$WAIT" is_stored e2e-alias-1
Q=$(qid e2e-alias-1@reporter.test)
ok "alias path: local(8) logs status=sent, delivered to command" \
	wait_for 10 logged "$Q" "to=<tls-reports@test\.example>.* relay=local, .*dsn=2\.0\.0, status=sent \(delivered to command: $BIN"
is "$(q "SELECT p.policy_domain || ' ' || p.total_successful_session_count || ' ' || f.result_type || ' ' || f.receiving_ip
	FROM tlsrpt.report r JOIN tlsrpt.policy p ON p.report = r.id JOIN tlsrpt.failure f ON f.policy = p.id
	WHERE r.report_id = 'e2e-alias-1'")" "test.example 42 certificate-expired 198.51.100.7/32" \
	"alias path: policy and failure rows stored"
ok "alias path: nothing bounced" no_bounce "$Q"

# ---------------------------------------------------------------- path 2: pipe transport
mkreport e2e-pipe-1 tlsrpt@test.example >"$E/pipe-1.eml"
submit "$E/pipe-1.eml" tlsrpt@test.example
ok_if "sendmail accepts a report for tlsrpt@test.example" $?
ok "pipe path: the report is stored in tlsrpt.report" wait_for "$WAIT" is_stored e2e-pipe-1
Q=$(qid e2e-pipe-1@reporter.test)
ok "pipe path: pipe(8) logs relay=tlsrpt, status=sent (delivered via tlsrpt service)" \
	wait_for 10 logged "$Q" "to=<tlsrpt@test\.example>.* relay=tlsrpt, .*dsn=2\.0\.0, status=sent \(delivered via tlsrpt service"
ok "pipe path: nothing bounced" no_bounce "$Q"
is "$(q "SELECT message_id FROM tlsrpt.report WHERE report_id = 'e2e-pipe-1'")" "e2e-pipe-1@reporter.test" \
	"pipe path: the report row has the Message-ID"
ok "both deliveries authenticated in PostgreSQL as the OS user nobody" \
	grep -q 'connection authenticated: identity="nobody" method=peer' "$PGTMP/server.log"
ok "the queue is empty" wait_for 10 queue_empty

# ---------------------------------------------------------------- a mail that is no report
mkcron e2e-cron-alias tls-reports@test.example >"$E/cron-alias.eml"
mkcron e2e-cron-pipe tlsrpt@test.example >"$E/cron-pipe.eml"
submit "$E/cron-alias.eml" tls-reports@test.example && submit "$E/cron-pipe.eml" tlsrpt@test.example
ok_if "sendmail accepts two cron mails" $?
ok "alias path: the cron mail is kept in tlsrpt.rejected" wait_for "$WAIT" is_rejected e2e-cron-alias
ok "pipe path: the cron mail is kept in tlsrpt.rejected" wait_for "$WAIT" is_rejected e2e-cron-pipe
Q1=$(qid e2e-cron-alias@test.example)
Q2=$(qid e2e-cron-pipe@test.example)
ok "alias path: the cron mail is delivered (status=sent)" wait_for 10 logged "$Q1" "status=sent"
ok "pipe path: the cron mail is delivered (status=sent)" wait_for 10 logged "$Q2" "status=sent"
ok "no bounce for either cron mail" eval "no_bounce $Q1 && no_bounce $Q2"
like "$(q "SELECT sender FROM tlsrpt.rejected WHERE message_id LIKE '%e2e-cron-pipe%'")" \
	"root@test\.example" "the rejected row keeps the sender"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE message_id LIKE 'e2e-cron%'")" 0 "no report rows from the cron mails"
# what each path hands the program (the raw copy of a rejected mail shows it)
raw_of() {
	q "SELECT convert_from(raw, 'UTF8') FROM tlsrpt.rejected WHERE message_id LIKE '%$1%'"
}
like "$(raw_of e2e-cron-pipe | head -n 1)" "^Return-Path: <e2e-sender@test\.example>\$" \
	"pipe path: flags=R prepends Return-Path with the envelope sender (no From line: no F)"
like "$(raw_of e2e-cron-alias | head -n 1)" "^From e2e-sender@test\.example " \
	"alias path: local(8) prepends an mbox From line, which tlsrpt-ingest takes"

# ---------------------------------------------------------------- PostgreSQL down: deferred, then delivered once
pg_stop
ok "PostgreSQL is stopped" eval '! pg_running'
mkreport e2e-defer-alias tls-reports@test.example >"$E/defer-alias.eml"
mkreport e2e-defer-pipe tlsrpt@test.example >"$E/defer-pipe.eml"
submit "$E/defer-alias.eml" tls-reports@test.example && submit "$E/defer-pipe.eml" tlsrpt@test.example
ok_if "sendmail accepts two reports while the database is down" $?
wait_for 20 eval 'have_qid e2e-defer-alias@reporter.test && have_qid e2e-defer-pipe@reporter.test'
QA=$(qid e2e-defer-alias@reporter.test)
QP=$(qid e2e-defer-pipe@reporter.test)
ok "alias path: status=deferred, dsn=4.3.0, with tlsrpt-ingest's line" \
	wait_for "$WAIT" logged "$QA" "relay=local, .*dsn=4\.3\.0, status=deferred \(tlsrpt-ingest: database unavailable"
ok "pipe path: status=deferred, dsn=4.3.0, with tlsrpt-ingest's line" \
	wait_for "$WAIT" logged "$QP" "relay=tlsrpt, .*dsn=4\.3\.0, status=deferred \(tlsrpt-ingest: database unavailable"
status_lines "$QA" | sed 's/^/#   /' >&2
status_lines "$QP" | sed 's/^/#   /' >&2

# postqueue -j: both messages in the deferred queue, recipients with a 4.3.0 reason
queue_json >"$E/queue.json"
deferred_in_queue() {
	python3 - "$1" "$2" "$E/queue.json" <<'PY'
import json, sys
qid, rcpt, path = sys.argv[1], sys.argv[2], sys.argv[3]
for line in open(path):
    m = json.loads(line)
    if m.get("queue_id") != qid:
        continue
    rs = [r for r in m.get("recipients", []) if r.get("address") == rcpt]
    # Postfix takes the leading enhanced status code off the text (it
    # logs it as dsn=4.3.0): the reason is the rest of tlsrpt-ingest's line
    ok = (m.get("queue_name") == "deferred" and len(rs) == 1
          and rs[0].get("delay_reason", "").startswith("tlsrpt-ingest: database unavailable"))
    print("#", m.get("queue_name"), rs, file=sys.stderr)
    sys.exit(0 if ok else 1)
print("# not in the queue", file=sys.stderr)
sys.exit(1)
PY
}
ok "postqueue -j: the alias path's report is in the deferred queue, with tlsrpt-ingest's reason" \
	deferred_in_queue "$QA" tls-reports@test.example
ok "postqueue -j: the pipe path's report is in the deferred queue, with tlsrpt-ingest's reason" \
	deferred_in_queue "$QP" tlsrpt@test.example
is "$(grep -c '' "$E/queue.json")" 2 "postqueue -j: nothing else is queued"
ok "no bounce for the deferred reports" eval "no_bounce $QA && no_bounce $QP"

pg_restart
ok "PostgreSQL is running again" pg_running
_timeout 30 postqueue -c "$PF" -f
ok_if "postqueue -f" $?
ok "alias path: the deferred report is stored after postqueue -f" wait_for "$WAIT" is_stored e2e-defer-alias
ok "pipe path: the deferred report is stored after postqueue -f" wait_for "$WAIT" is_stored e2e-defer-pipe
ok "alias path: then status=sent" wait_for 10 logged "$QA" "relay=local, .*status=sent"
ok "pipe path: then status=sent" wait_for 10 logged "$QP" "relay=tlsrpt, .*status=sent"
ok "the queue is empty again" wait_for 20 queue_empty
_timeout 30 postqueue -c "$PF" -f # a second flush must not store anything twice
sleep 2
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id IN ('e2e-defer-alias', 'e2e-defer-pipe')")" 2 \
	"each deferred report is stored exactly once"
is "$(status_lines "$QA" | grep -c 'status=sent') $(status_lines "$QP" | grep -c 'status=sent')" "1 1" \
	"each deferred report was delivered exactly once"
ok "no bounce after the retry" eval "no_bounce $QA && no_bounce $QP"

# ---------------------------------------------------------------- procmail
subst "$CONTRIB/procmail/procmailrc-tlsrpt" >"$E/procmailrc-tlsrpt"
chmod 644 "$E/procmailrc-tlsrpt"
grep -q "^| $BIN -d '$WRITER'\$" "$E/procmailrc-tlsrpt"
ok_if "the procmail recipe is contrib/procmail/procmailrc-tlsrpt (path and conninfo substituted)" $?
mkdir -m 755 "$E/pm"
# as an MTA runs it: the message (with an mbox "From " line) on stdin, as the
# unprivileged user, procmail -m RCFILE
run_procmail() {
	mkreport "$1" tls-reports@test.example mbox >"$E/$1.eml"
	(cd "$E/pm" && as_nobody procmail -m "$E/procmailrc-tlsrpt" <"$E/$1.eml" >"$E/pm.out" 2>"$E/pm.err")
	rc=$?
}
run_procmail e2e-procmail-1
is "$rc" 0 "procmail: exit 0 after storing" || sed 's/^/#   /' "$E/pm.err" >&2
is "$(stored e2e-procmail-1)" 1 "procmail: the report is stored"
pg_stop
run_procmail e2e-procmail-2
is "$rc" 75 "procmail: exit 75 (EX_TEMPFAIL) while the database is down" || sed 's/^/#   /' "$E/pm.err" >&2
ok "procmail: tlsrpt-ingest's 4.3.0 line reaches procmail's stderr" grep -q '^4\.3\.0 tlsrpt-ingest: ' "$E/pm.err"
pg_restart
is "$(stored e2e-procmail-2)" 0 "procmail: nothing stored while the database was down"
run_procmail e2e-procmail-2
is "$rc" 0 "procmail: exit 0 on the retry" || sed 's/^/#   /' "$E/pm.err" >&2
is "$(stored e2e-procmail-2)" 1 "procmail: the retried report is stored once"

# ---------------------------------------------------------------- maildrop
subst "$CONTRIB/maildrop/mailfilter-tlsrpt" >"$E/mailfilter-tlsrpt"
# maildrop wants its filter file owned by the user it runs as, not writable by others
chown nobody: "$E/mailfilter-tlsrpt"
chmod 600 "$E/mailfilter-tlsrpt"
grep -q "^cc \"| $BIN -d '$WRITER'\"\$" "$E/mailfilter-tlsrpt"
ok_if "the maildrop filter is contrib/maildrop/mailfilter-tlsrpt (path and conninfo substituted)" $?
run_maildrop() {
	mkreport "$1" tls-reports@test.example >"$E/$1.eml"
	(cd "$E/pm" && as_nobody maildrop "$E/mailfilter-tlsrpt" <"$E/$1.eml" >"$E/md.out" 2>"$E/md.err")
	rc=$?
}
run_maildrop e2e-maildrop-1
is "$rc" 0 "maildrop: exit 0 after storing" || sed 's/^/#   /' "$E/md.err" >&2
is "$(stored e2e-maildrop-1)" 1 "maildrop: the report is stored"
pg_stop
run_maildrop e2e-maildrop-2
is "$rc" 75 "maildrop: exit 75 (EX_TEMPFAIL) while the database is down" || sed 's/^/#   /' "$E/md.err" >&2
ok "maildrop: tlsrpt-ingest's 4.3.0 line reaches maildrop's stderr" grep -q '^4\.3\.0 tlsrpt-ingest: ' "$E/md.err"
pg_restart
is "$(stored e2e-maildrop-2)" 0 "maildrop: nothing stored while the database was down"
run_maildrop e2e-maildrop-2
is "$rc" 0 "maildrop: exit 0 on the retry" || sed 's/^/#   /' "$E/md.err" >&2
is "$(stored e2e-maildrop-2)" 1 "maildrop: the retried report is stored once"

# ---------------------------------------------------------------- the bounce check can see a bounce
# (a positive control: mail to an unknown local user does bounce to e2e-sender,
# so "no bounce" above was not vacuous)
mkcron e2e-nosuch nosuch-user@test.example >"$E/nosuch.eml"
submit "$E/nosuch.eml" nosuch-user@test.example
ok "control: a mail to an unknown user bounces into the sender's mailbox" \
	wait_for "$WAIT" grep -q '^Subject: Undelivered Mail Returned to Sender' "$E/mail/sender.mbox"
is "$(grep -c '^Subject: Undelivered Mail' "$E/mail/sender.mbox" 2>/dev/null)" 1 \
	"control: that is the only bounce of the whole run"

# ---------------------------------------------------------------- the whole run
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'e2e-%'")" 8 \
	"8 reports stored in all, none twice"
is "$(q "SELECT count(*) FROM tlsrpt.rejected")" 2 "2 rejected mails in all"
is "$(default_state)" "$DEFAULT_BEFORE" "the system's own Postfix instance is as it was ($DEFAULT_BEFORE)"
ok "no delivery was bounced" eval '! grep -E "to=<(tls-reports|tlsrpt)@test\.example>.*status=bounced" "$MAILLOG"'
if [ "$_tap_failed" -gt 0 ]; then
	diag "Postfix log:"
	sed 's/^/    /' "$MAILLOG" >&2 2>/dev/null
fi
done_testing
