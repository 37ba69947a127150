#!/bin/bash
# bench/run.sh - "make bench": tlsrpt-ingest against PostgreSQL's own floor,
# each figure measured side by side in the same run, on the same throwaway
# server (tests/lib/pg.sh, Unix socket). The server runs with PostgreSQL's
# default durability (fsync, synchronous_commit and full_page_writes on), as
# in production; BENCH_MODES="durable fsync-off" adds a column with fsync and
# full_page_writes off (the disk out of the comparison). Prints the figures,
# each with its floor, and the ratios P1, P2, P3. Not a pass/fail test.
#
# Environment: BENCH_RUNS (per-message runs, default 200), BENCH_MESSAGES
# (backfill size, default 10000), BENCH_ROWS (big report, default 20000),
# BENCH_BIG_RUNS (its deliveries, default 5),
# BENCH_MODES (default "durable").
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/..}"
: "${top_builddir:=$top_srcdir}"
BIN=$top_builddir/src/tlsrpt-ingest
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
RUNS=${BENCH_RUNS:-200}
MESSAGES=${BENCH_MESSAGES:-10000}
ROWS=${BENCH_ROWS:-20000}
BIG_RUNS=${BENCH_BIG_RUNS:-5}
MODES=${BENCH_MODES:-durable}
PSQL=/usr/lib/postgresql/15/bin/psql
[ -x "$BIN" ] || { echo "bench: build src/tlsrpt-ingest first" >&2; exit 1; }
[ -x "$PSQL" ] || { echo "bench: needs $PSQL (PostgreSQL 15's own psql)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }

. "$top_srcdir/tests/lib/pg.sh"
case ${MODES%% *} in fsync-off) PG_DURABLE=0 ;; *) PG_DURABLE=1 ;; esac
export PG_DURABLE PSQL
pg_start
W=$(mktemp -d /tmp/tlsrpt-bench.XXXXXX)
trap 'pg__cleanup; rm -rf "$W"' EXIT
export BIN W
psql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }
# (the rollups go with tlsrpt.report: its rollup_truncated trigger)
truncate_tables() {
	psql -c "SET client_min_messages = warning" -c "TRUNCATE $* RESTART IDENTITY CASCADE" >/dev/null
}
"$BIN" --init-db >/dev/null || exit 1
# the per-message floor's tables: like ours, indexes, constraints and foreign keys included
psql <<'SQL' || exit 1
CREATE SCHEMA floor;
CREATE TABLE floor.report (LIKE tlsrpt.report INCLUDING ALL);
CREATE TABLE floor.policy (LIKE tlsrpt.policy INCLUDING ALL,
    FOREIGN KEY (report) REFERENCES floor.report (id) ON DELETE CASCADE);
CREATE TABLE floor.failure (LIKE tlsrpt.failure INCLUDING ALL,
    FOREIGN KEY (policy) REFERENCES floor.policy (id) ON DELETE CASCADE);
SQL
# every tlsrpt-ingest run below uses the defaults; no config file is read
export TLSRPT_BENCH_CONF=$W/empty.conf
: >"$TLSRPT_BENCH_CONF"
ING=("$BIN" -c "$TLSRPT_BENCH_CONF")

echo "machine: $(nproc) CPU(s), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1);" \
	"$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM;" \
	"PostgreSQL $("$PSQL" -X -qAt -c 'SHOW server_version'), $(uname -sr)"
echo

# ---------------------------------------------------------------- helpers
# py_median: runs the commands given on stdin (one JSON array per line: argv,
# stdin file) alternately, RUNS times each, prints the median wall times (ms).
py_median() {
	python3 - "$@" <<'PY'
import json, os, statistics, subprocess, sys, time
runs = int(sys.argv[1]); cmds = json.loads(sys.argv[2])
times = [[] for _ in cmds]
for i in range(runs):
    for k, (argv, infile) in enumerate(cmds):
        inp = open(infile.replace("%d", str(i + 1)), "rb") if infile else subprocess.DEVNULL
        argv = [a.replace("%d", str(i + 1)) for a in argv]
        t = time.perf_counter()
        r = subprocess.run(argv, stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[k].append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit("%s exited %d" % (argv, r.returncode))
print(" ".join("%.3f" % statistics.median(t) for t in times))
PY
}
cols_of() {
	"$PSQL" -X -qAt -c "SELECT string_agg(quote_ident(attname), ',' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'tlsrpt.$1'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
		AND attname <> '${2:-}'"
}
# the server at rest before a figure: dirty buffers written (CHECKPOINT), and
# after bulk loads the planner statistics and visibility map done (VACUUM
# ANALYZE), so that autovacuum or a checkpoint the previous figure caused does
# not run during the next one
at_rest() {
	[ "${1:-}" = vacuum ] && psql -c "VACUUM ANALYZE tlsrpt.report, tlsrpt.policy, tlsrpt.failure, tlsrpt.rejected"
	psql -c "CHECKPOINT"
}
ratio() {
	python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"
}

# ---------------------------------------------------------------- the figures
# Generated once; every mode runs the same inputs.
mkdir "$W/mails"
python3 "$here/gen.py" mails "$RUNS" "$W/mails"
python3 "$here/gen.py" mbox "$MESSAGES" "$W/backfill.mbox"
python3 "$here/gen.py" big "$ROWS" "$W/big.eml"
printf '' >"$W/empty"
declare -A FIG

run_mode() {
	local m=$1 cmds t0 t1 c
	echo "== $m: fsync $(psql -Atc 'SHOW fsync'), synchronous_commit $(psql -Atc 'SHOW synchronous_commit'), full_page_writes $(psql -Atc 'SHOW full_page_writes')"
	truncate_tables tlsrpt.report, tlsrpt.policy, tlsrpt.failure, tlsrpt.rejected, floor.report, floor.policy, floor.failure

	# ---- 1. per message: each run a new report, a fresh process each
	cmds=$(python3 -c 'import json, os
b = [os.environ["BIN"], "-c", os.environ["TLSRPT_BENCH_CONF"]]
w = os.environ["W"]
print(json.dumps([[b, w + "/mails/%d.eml"],
                  [[os.environ["PSQL"], "-X", "-q", "-f", w + "/mails/%d.sql"], None],
                  [[os.environ["PSQL"], "-X", "-c", "select 1"], None]]))')
	read -r t_ing t_floor t_psql < <(py_median "$RUNS" "$cmds") || exit 1
	FIG[$m,ing]=$t_ing FIG[$m,floor]=$t_floor FIG[$m,sel1]=$t_psql
	FIG[$m,P1]=$(ratio "$t_ing" "$t_floor")
	echo "1. per message (pipe mode, Unix socket, one-policy report, median of $RUNS;" \
		"$(psql -Atc 'SELECT count(*) FROM tlsrpt.report') stored, $(psql -Atc 'SELECT count(*) FROM floor.report') by the floor):"
	echo "   tlsrpt-ingest < mail      ${t_ing} ms"
	echo "   floor: psql -X -f one INSERT (CTEs: report, policy, failures) of the same rows  ${t_floor} ms"
	echo "   beside it: psql -X -c 'select 1'  ${t_psql} ms"
	echo "   P1 = ${FIG[$m,P1]}   (target <= 1.2)"
	echo

	# ---- 2. backfill vs \copy
	truncate_tables tlsrpt.report, tlsrpt.policy, tlsrpt.failure, tlsrpt.rejected
	at_rest
	t0=$(date +%s.%N)
	"${ING[@]}" "$W/backfill.mbox" >"$W/backfill.out" || { cat "$W/backfill.out"; exit 1; }
	t1=$(date +%s.%N)
	t_backfill=$(python3 -c "print('%.3f' % ($t1 - $t0))")
	counts=$(psql -Atc "SELECT (SELECT count(*) FROM tlsrpt.report) || ' reports, ' ||
		(SELECT count(*) FROM tlsrpt.policy) || ' policies, ' || (SELECT count(*) FROM tlsrpt.failure) || ' failure rows'")
	# exactly the rows stored, loaded again with \copy into the same (emptied) tables
	: >"$W/copy.sql"
	for t in report policy failure; do
		c=$(cols_of $t)
		psql -c "\\copy (SELECT $c FROM tlsrpt.$t ORDER BY id) TO '$W/$t.copy'"
		echo "\\copy tlsrpt.$t ($c) FROM '$W/$t.copy'" >>"$W/copy.sql"
	done
	truncate_tables tlsrpt.report, tlsrpt.policy, tlsrpt.failure
	at_rest
	t0=$(date +%s.%N)
	psql -f "$W/copy.sql"
	t1=$(date +%s.%N)
	t_copy=$(python3 -c "print('%.3f' % ($t1 - $t0))")
	# COPY leaves the identity sequences alone: move them past the copied ids
	for t in report policy failure; do
		psql -c "SELECT setval(pg_get_serial_sequence('tlsrpt.$t', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM tlsrpt.$t), false)" >/dev/null
	done
	# beside it: the same backfill by one process (backfill_jobs = 1), into the emptied tables
	truncate_tables tlsrpt.report, tlsrpt.policy, tlsrpt.failure, tlsrpt.rejected
	at_rest
	t0=$(date +%s.%N)
	"${ING[@]}" -o backfill_jobs=1 "$W/backfill.mbox" >"$W/backfill1.out" || { cat "$W/backfill1.out"; exit 1; }
	t1=$(date +%s.%N)
	t_backfill1=$(python3 -c "print('%.3f' % ($t1 - $t0))")
	FIG[$m,backfill]=$t_backfill FIG[$m,copy]=$t_copy FIG[$m,P2]=$(ratio "$t_backfill" "$t_copy")
	FIG[$m,backfill1]=$t_backfill1 FIG[$m,P2one]=$(ratio "$t_backfill1" "$t_copy")
	echo "2. backfill: an mbox of $MESSAGES generated reports ($counts):"
	echo "   tlsrpt-ingest FILE.mbox   ${t_backfill} s  ($(python3 -c "print('%.0f' % ($MESSAGES / $t_backfill))") messages/s; backfill_jobs = 2, the default)"
	echo "   floor: \\copy of the same rows into the same tables  ${t_copy} s"
	echo "   P2 = ${FIG[$m,P2]}   (target <= 2)"
	echo "   beside it: one process (-o backfill_jobs=1)  ${t_backfill1} s, ${FIG[$m,P2one]} x \\copy"
	echo

	# ---- 3. one big report: the median of BIG_RUNS deliveries (the report
	# deleted between them), the largest peak RSS
	at_rest vacuum
	walls=()
	rss_big=0
	for ((k = 1; k <= BIG_RUNS; k++)); do
		if [ "$k" -gt 1 ]; then
			psql -c "DELETE FROM tlsrpt.report WHERE message_id LIKE '%bench-2000000@%'"
			at_rest vacuum
		fi
		read -r t_one rss_one < <(python3 - "$W/big.eml" "${ING[@]}" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[2:], stdin=open(sys.argv[1], "rb"))
wall = time.perf_counter() - t
if r.returncode != 0:
    sys.exit("exit %d" % r.returncode)
print("%.3f %.1f" % (wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
)
		walls+=("$t_one")
		rss_big=$(python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$rss_big" "$rss_one")
	done
	t_big=$(python3 -c "import statistics, sys; print('%.3f' % statistics.median(map(float, sys.argv[1:])))" "${walls[@]}")
	big_rows=$(psql -Atc "SELECT count(*) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy
		JOIN tlsrpt.report r ON r.id = p.report WHERE r.message_id LIKE '%bench-2000000@%'")
	# beside it: the same failure rows with \copy (new ids), rolled back
	c=$(cols_of failure id)
	psql -c "\\copy (SELECT $c FROM tlsrpt.failure f WHERE policy = (SELECT max(policy) FROM tlsrpt.failure)) TO '$W/big.copy'"
	t0=$(date +%s.%N)
	psql -c "BEGIN" -c "\\copy tlsrpt.failure ($c) FROM '$W/big.copy'" -c "ROLLBACK"
	t1=$(date +%s.%N)
	t_bigcopy=$(python3 -c "print('%.3f' % ($t1 - $t0))")
	FIG[$m,big]=$t_big FIG[$m,rss]=$rss_big FIG[$m,bigcopy]=$t_bigcopy
	FIG[$m,P3]="${t_big} s, ${rss_big} MiB"
	echo "3. one report with $ROWS failure rows ($big_rows stored, mail of $(($(wc -c <"$W/big.eml") / 1024)) KiB; median of $BIG_RUNS: ${walls[*]} s):"
	echo "   P3 = tlsrpt-ingest < mail  ${t_big} s, peak RSS ${rss_big} MiB   (targets <= 1 s, <= 64 MiB)"
	echo "   beside it: \\copy of its $big_rows failure rows  ${t_bigcopy} s"
	echo

	# ---- 4. start-up (no server involved; once is enough)
	if [ -z "${FIG[startup]:-}" ]; then
		cmds=$(python3 -c 'import json, os
b = [os.environ["BIN"], "-c", os.environ["TLSRPT_BENCH_CONF"]]
print(json.dumps([[b + ["--version"], None], [b + ["--dry-run", os.environ["W"] + "/empty"], None],
                  [[os.environ["PSQL"], "--version"], None], [["/bin/true"], None]]))')
		read -r t_ver t_init t_psqlv t_true < <(py_median "$RUNS" "$cmds")
		FIG[startup]=1
		echo "4. start-up (median of $RUNS):"
		echo "   tlsrpt-ingest --version   ${t_ver} ms"
		echo "   tlsrpt-ingest --dry-run of an empty file (config, GMime and json-c set up, one message)  ${t_init} ms"
		echo "   so GMime/json-c initialisation and one empty message: $(python3 -c "print('%.3f' % ($t_init - $t_ver))") ms"
		echo "   floor: psql --version     ${t_psqlv} ms;  /bin/true ${t_true} ms"
		echo "   ratio --version / psql --version $(ratio "$t_ver" "$t_psqlv")"
		echo
	fi
}

first=1
for m in $MODES; do
	case $m in
	durable) PG_DURABLE=1 ;;
	fsync-off) PG_DURABLE=0 ;;
	*) echo "bench: unknown mode $m (durable, fsync-off)" >&2; exit 1 ;;
	esac
	[ $first = 1 ] || pg_restart || exit 1
	first=0
	run_mode "$m"
done

# ---------------------------------------------------------------- side by side
printf '%-44s' "summary"; for m in $MODES; do printf ' %18s' "$m"; done; echo
row() {
	printf '%-44s' "$1"; shift
	for m in $MODES; do printf ' %18s' "${FIG[$m,$1]}$2"; done; echo
}
row "delivery (ms)" ing ""
row "floor: one INSERT by psql (ms)" floor ""
row "psql select 1 (ms)" sel1 ""
row "P1 delivery / floor (target <= 1.2)" P1 ""
row "backfill of $MESSAGES (s)" backfill ""
row "\\copy of the same rows (s)" copy ""
row "P2 backfill / \\copy (target <= 2)" P2 ""
row "  one process: backfill_jobs=1 (s)" backfill1 ""
row "  one process / \\copy" P2one ""
row "P3 $ROWS-row report (s)" big ""
row "P3 peak RSS (MiB; <= 1 s, <= 64 MiB)" rss ""
