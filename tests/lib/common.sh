# common.sh - the program and its helpers, for every shell test (init.sh sources it).
#
#   BIN, DATA (tests/data/integration), W (a scratch directory, removed at exit)
#   BIN_PROGRAM           the program (BIN is a wrapper when TLSRPT_TEST_PARTITIONED=1)
#   ingest FILE ARGS...   cat FILE | tlsrpt-ingest ARGS...  (stdin is a pipe);
#                         sets $rc, $W/out, $W/err
#   ingest_noin ARGS...   tlsrpt-ingest ARGS... </dev/null
#   ingest_env FILE ARGS... like ingest but under "env -i" (empty environment)
#   ingest_parallel N FILE TAG
#                         N deliveries of FILE at once; sets $st to their exit
#                         statuses in a row; the output of each in $W/TAG.I.out
#   expect_ok NAME        exit 0, nothing on stdout or stderr
#   expect_quiet NAME     exit 0, nothing on stderr (stdout may say what was done:
#                         --init-db, -n)
#   expect_fail NAME STATUS CLASS
#                         exit STATUS, nothing on stdout, exactly one stderr
#                         line starting with an enhanced status code CLASS.x.y
#   jget FILE LINENO PATH a value from line LINENO of FILE (JSON), jq path syntax
#                         (.a.b[0].c, optionally "| length"); strings raw

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
BIN=$top_builddir/src/tlsrpt-ingest
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
DATA=$top_srcdir/tests/data/integration
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
TEST_CMD_TIMEOUT=${TEST_CMD_TIMEOUT:-120}

[ -x "$BIN" ] || bail "no program at $BIN (build it first)"
[ -d "$DATA" ] || bail "no fixtures at $DATA"

# The program reads its default config file when not given -c. If that file
# names a database, tests that rely on the environment would write into it:
# DEFAULT_CONF_DB is then set and those tests stay away.
DEFAULT_CONF=$("$BIN" --help 2>/dev/null | sed -n 's/.*(default \(\/[^)]*\.conf\)).*/\1/p' | head -n 1)
DEFAULT_CONF_DB=
if [ -n "$DEFAULT_CONF" ] && [ -r "$DEFAULT_CONF" ] &&
	grep -Eq '^[[:space:]]*database[[:space:]]*=' "$DEFAULT_CONF"; then
	DEFAULT_CONF_DB=1
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/tlsrpt-t.XXXXXX") || bail "mktemp failed"
chmod 755 "$W"
atexit 'rm -rf "$W"'

# TLSRPT_TEST_PARTITIONED=1 (make check-partitioned): every --init-db a test
# runs makes the partitioned schema (--init-db --partitioned), so that every
# test runs on it too. BIN is then a wrapper that adds --partitioned to an
# --init-db while TLSRPT_TEST_PARTITIONED is 1 (a test upgrading a plain
# schema of an older version sets it to 0 for that run); BIN_PROGRAM is the
# program itself.
BIN_PROGRAM=$BIN
if [ "${TLSRPT_TEST_PARTITIONED:-0}" = 1 ]; then
	cat >"$W/tlsrpt-ingest" <<EOF_WRAPPER
#!/bin/sh
if [ "\${TLSRPT_TEST_PARTITIONED:-0}" = 1 ]; then
	for a; do
		case \$a in --init-db) exec "$BIN_PROGRAM" --partitioned "\$@" ;; esac
	done
fi
exec "$BIN_PROGRAM" "\$@"
EOF_WRAPPER
	chmod 755 "$W/tlsrpt-ingest"
	BIN=$W/tlsrpt-ingest
fi

_timeout=()
command -v timeout >/dev/null 2>&1 && _timeout=(timeout -k 5 "$TEST_CMD_TIMEOUT")

# schema_at N: the SQL of schema tlsrpt at version N (migrations 1..N, as a
# program of that version left it, each recorded in schema_version), inside
# a transaction left open for the rows a test adds before its COMMIT
schema_at() {
	local v
	echo "BEGIN; CREATE SCHEMA tlsrpt;"
	echo "CREATE TABLE tlsrpt.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());"
	for v in $(seq 1 "$1"); do
		cat "$top_srcdir"/src/sql/"$(printf %03d "$v")"-*.sql
		echo "INSERT INTO tlsrpt.schema_version (version) VALUES ($v);"
	done
}

ingest() {
	local in=$1
	shift
	cat "$in" | "${_timeout[@]}" "$BIN" "$@" >"$W/out" 2>"$W/err"
	rc=${PIPESTATUS[1]}
}

ingest_noin() {
	"${_timeout[@]}" "$BIN" "$@" </dev/null >"$W/out" 2>"$W/err"
	rc=$?
}

ingest_env() {
	local in=$1
	shift
	cat "$in" | "${_timeout[@]}" env -i "$BIN" "$@" >"$W/out" 2>"$W/err"
	rc=${PIPESTATUS[1]}
}

ingest_parallel() {
	local n=$1 in=$2 tag=$3 i pids=()
	for i in $(seq "$n"); do
		( cat "$in" | "${_timeout[@]}" "$BIN" >"$W/$tag.$i.out" 2>&1; echo "${PIPESTATUS[1]}" >"$W/$tag.$i.rc" ) &
		pids+=($!)
	done
	wait "${pids[@]}"
	st=
	for i in $(seq "$n"); do
		st="$st$(cat "$W/$tag.$i.rc")"
		[ -s "$W/$tag.$i.out" ] && diag "delivery $i said: $(cat "$W/$tag.$i.out")"
	done
	return 0
}

_show_output() {
	[ -s "$W/out" ] && diag "stdout:" "$(head -c 2000 "$W/out")"
	[ -s "$W/err" ] && diag "stderr:" "$(head -c 2000 "$W/err")"
	return 0
}

expect_ok() {
	is "$rc" 0 "$1: exit status 0" || true
	[ "$rc" = 0 ] || _show_output
	is "$(cat "$W/out" "$W/err")" "" "$1: nothing on stdout or stderr"
}

expect_quiet() {
	is "$rc" 0 "$1: exit status 0"
	[ "$rc" = 0 ] || _show_output
	is "$(cat "$W/err")" "" "$1: nothing on stderr"
}

expect_fail() {
	local name=$1 want=$2 class=$3 lines
	is "$rc" "$want" "$name: exit status $want"
	[ "$rc" = "$want" ] || _show_output
	is "$(cat "$W/out")" "" "$name: nothing on stdout"
	lines=$(grep -c '' "$W/err")
	is "$lines" 1 "$name: exactly one line on stderr"
	like "$(head -n 1 "$W/err")" "^${class//./\\.}\.[0-9]{1,3}\.[0-9]{1,3} " \
		"$name: stderr starts with an enhanced status code $class.x.x"
}

# jq path -> python, for machines without jq
_jq_py() {
	python3 - "$@" <<'PY'
import json, re, sys
path, lineno, fname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(fname, encoding="utf-8") as f:
    lines = f.read().splitlines()
d = json.loads(lines[lineno - 1])
want_len = False
m = re.match(r"^(.*?)\s*\|\s*length\s*$", path)
if m:
    path, want_len = m.group(1), True
for tok in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
    if d is None:
        break
    if tok[0]:
        d = d.get(tok[0]) if isinstance(d, dict) else None
    else:
        i = int(tok[1])
        d = d[i] if isinstance(d, list) and i < len(d) else None
if want_len:
    d = 0 if d is None else len(d)
print(d if isinstance(d, str) else json.dumps(d, separators=(",", ":")))
PY
}

jget() {
	local file=$1 n=$2 path=$3
	if command -v jq >/dev/null 2>&1; then
		sed -n "${n}p" "$file" | jq -r -c "$path" 2>&1
	else
		_jq_py "$path" "$n" "$file" 2>&1
	fi
}

# every line of FILE is one JSON object
json_lines_ok() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    if not isinstance(json.loads(line), dict):
        sys.exit("not an object: " + line)
    n += 1
sys.exit(0 if n else "no lines")' "$1"
	else
		[ -s "$1" ] && while IFS= read -r l; do
			printf '%s' "$l" | jq -e 'type == "object"' >/dev/null || return 1
		done <"$1"
	fi
}
