#!/bin/bash
# bench/run.sh - "make bench": tlsrpt-ingest against PostgreSQL's own floor,
# each figure measured side by side in the same run, on the same throwaway
# server (tests/lib/pg.sh: Unix socket, fsync=off, so
# the disk is out of the comparison on both sides). Prints four figures, each
# with its floor and the ratio. Not a pass/fail test.
#
# Environment: BENCH_RUNS (per-message runs, default 200), BENCH_MESSAGES
# (backfill size, default 10000), BENCH_ROWS (big report, default 20000).
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
: "${top_builddir:=$top_srcdir}"
BIN=$top_builddir/src/tlsrpt-ingest
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
RUNS=${BENCH_RUNS:-200}
MESSAGES=${BENCH_MESSAGES:-10000}
ROWS=${BENCH_ROWS:-20000}
[ -x "$BIN" ] || { echo "bench: build src/tlsrpt-ingest first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }

. "$top_srcdir/tests/lib/pg.sh"
pg_start
W=$(mktemp -d /tmp/tlsrpt-bench.XXXXXX)
trap 'pg__cleanup; rm -rf "$W"' EXIT
export BIN W
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
"$BIN" --init-db >/dev/null || exit 1
# every tlsrpt-ingest run below uses the defaults; no config file is read
export TLSRPT_BENCH_CONF=$W/empty.conf
: >"$TLSRPT_BENCH_CONF"
ING=("$BIN" -c "$TLSRPT_BENCH_CONF")

echo "machine: $(nproc) CPU(s), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1);" \
	"$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM;" \
	"PostgreSQL $(command psql -X -qAt -c 'SHOW server_version'), $(uname -sr)"
echo

# ---------------------------------------------------------------- helpers
# py_time: runs the commands given on stdin (one JSON array per line: argv,
# stdin file) alternately, RUNS times each, prints the median wall times (ms).
py_median() {
	python3 - "$@" <<'PY'
import json, os, statistics, subprocess, sys, time
runs = int(sys.argv[1]); cmds = json.loads(sys.argv[2])
times = [[] for _ in cmds]
for i in range(runs):
    for k, (argv, infile) in enumerate(cmds):
        inp = open(infile.replace("%d", str(i + 1)), "rb") if infile else subprocess.DEVNULL
        t = time.perf_counter()
        r = subprocess.run(argv, stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[k].append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit("%s exited %d" % (argv, r.returncode))
print(" ".join("%.3f" % statistics.median(t) for t in times))
PY
}
ratio() {
	python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"
}

# ---------------------------------------------------------------- 1. per message
mkdir "$W/mails"
python3 "$here/gen.py" mails "$RUNS" "$W/mails"
cmds=$(python3 -c 'import json, os, sys
b = [os.environ["BIN"], "-c", os.environ["TLSRPT_BENCH_CONF"]]
print(json.dumps([[b, os.environ["W"] + "/mails/%d.eml"], [["psql", "-X", "-c", "select 1"], None]]))')
read -r t_ing t_psql < <(py_median "$RUNS" "$cmds")
stored=$(command psql -X -qAt -c "SELECT count(*) FROM tlsrpt.report")
echo "1. per message (pipe mode, Unix socket, one-policy report, median of $RUNS; $stored stored):"
echo "   tlsrpt-ingest < mail      ${t_ing} ms"
echo "   floor: psql -X -c 'select 1'  ${t_psql} ms"
echo "   ratio $(ratio "$t_ing" "$t_psql")   (target <= 1.2)"
echo

# ---------------------------------------------------------------- 2. backfill vs \copy
python3 "$here/gen.py" mbox "$MESSAGES" "$W/backfill.mbox"
psql -c "TRUNCATE tlsrpt.report, tlsrpt.policy, tlsrpt.failure, tlsrpt.rejected RESTART IDENTITY CASCADE"
t0=$(date +%s.%N)
"${ING[@]}" "$W/backfill.mbox" >"$W/backfill.out" || { cat "$W/backfill.out"; exit 1; }
t1=$(date +%s.%N)
t_backfill=$(python3 -c "print('%.3f' % ($t1 - $t0))")
counts=$(command psql -X -qAt -c "SELECT (SELECT count(*) FROM tlsrpt.report) || ' reports, ' ||
	(SELECT count(*) FROM tlsrpt.policy) || ' policies, ' || (SELECT count(*) FROM tlsrpt.failure) || ' failure rows'")
# exactly the rows stored, loaded again with \copy into the same (emptied) tables
cols_of() {
	command psql -X -qAt -c "SELECT string_agg(quote_ident(attname), ',' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'tlsrpt.$1'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		AND attname <> '${2:-}'"
}
: >"$W/copy.sql"
for t in report policy failure; do
	c=$(cols_of $t)
	psql -c "\\copy (SELECT $c FROM tlsrpt.$t ORDER BY id) TO '$W/$t.copy'"
	echo "\\copy tlsrpt.$t ($c) FROM '$W/$t.copy'" >>"$W/copy.sql"
done
psql -c "TRUNCATE tlsrpt.report, tlsrpt.policy, tlsrpt.failure RESTART IDENTITY CASCADE"
t0=$(date +%s.%N)
psql -f "$W/copy.sql"
t1=$(date +%s.%N)
t_copy=$(python3 -c "print('%.3f' % ($t1 - $t0))")
# COPY leaves the identity sequences alone: move them past the copied ids
for t in report policy failure; do
	psql -c "SELECT setval(pg_get_serial_sequence('tlsrpt.$t', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM tlsrpt.$t), false)" >/dev/null
done
echo "2. backfill: an mbox of $MESSAGES generated reports ($counts):"
echo "   tlsrpt-ingest FILE.mbox   ${t_backfill} s  ($(python3 -c "print('%.0f' % ($MESSAGES / $t_backfill))") messages/s)"
echo "   floor: \\copy of the same rows into the same tables  ${t_copy} s"
echo "   ratio $(ratio "$t_backfill" "$t_copy")   (target <= 2)"
echo

# ---------------------------------------------------------------- 3. one big report
python3 "$here/gen.py" big "$ROWS" "$W/big.eml"
read -r t_big rss_big < <(python3 - "$W/big.eml" "${ING[@]}" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[2:], stdin=open(sys.argv[1], "rb"))
wall = time.perf_counter() - t
if r.returncode != 0:
    sys.exit("exit %d" % r.returncode)
print("%.3f %.1f" % (wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
)
big_rows=$(command psql -X -qAt -c "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy
	JOIN tlsrpt.report r ON r.id = p.report WHERE r.message_id LIKE '%bench-2000000@%'")
# floor: the same failure rows with \copy (new ids), rolled back
c=$(cols_of failure id)
command psql -X -qAt -c "\\copy (SELECT $c FROM tlsrpt.failure f WHERE policy = (SELECT max(policy) FROM tlsrpt.failure)) TO '$W/big.copy'"
t0=$(date +%s.%N)
psql -c "BEGIN" -c "\\copy tlsrpt.failure ($c) FROM '$W/big.copy'" -c "ROLLBACK"
t1=$(date +%s.%N)
t_bigcopy=$(python3 -c "print('%.3f' % ($t1 - $t0))")
echo "3. one report with $ROWS failure rows ($big_rows stored, mail of $(($(wc -c <"$W/big.eml") / 1024)) KiB):"
echo "   tlsrpt-ingest < mail      ${t_big} s, peak RSS ${rss_big} MiB   (targets <= 1 s, <= 64 MiB)"
echo "   floor: \\copy of its $big_rows failure rows  ${t_bigcopy} s"
echo "   ratio $(ratio "$t_big" "$t_bigcopy")"
echo

# ---------------------------------------------------------------- 4. start-up
printf '' >"$W/empty"
cmds=$(python3 -c 'import json, os
b = [os.environ["BIN"], "-c", os.environ["TLSRPT_BENCH_CONF"]]
print(json.dumps([[b + ["--version"], None], [b + ["--dry-run", os.environ["W"] + "/empty"], None],
                  [["psql", "--version"], None], [["/bin/true"], None]]))')
read -r t_ver t_init t_psqlv t_true < <(py_median "$RUNS" "$cmds")
echo "4. start-up (median of $RUNS):"
echo "   tlsrpt-ingest --version   ${t_ver} ms"
echo "   tlsrpt-ingest --dry-run of an empty file (config, GMime and json-c set up, one message)  ${t_init} ms"
echo "   so GMime/json-c initialisation and one empty message: $(python3 -c "print('%.3f' % ($t_init - $t_ver))") ms"
echo "   floor: psql --version     ${t_psqlv} ms;  /bin/true ${t_true} ms"
echo "   ratio --version / psql --version $(ratio "$t_ver" "$t_psqlv")"
