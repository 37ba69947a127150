#!/bin/sh
# run-tests.sh - runs TAP producers and ends with one line "N passed, M failed"
# (", K skipped" is added when K > 0):
#   top_srcdir=... top_builddir=... sh tests/run-tests.sh PROG_OR_SCRIPT...
# "make check" runs it as automake's LOG_DRIVER, one producer at a time (see
# --driver below), so that "make check TESTS=tests/x-t.sh" runs one.
# A producer is a program (run directly) or a *.sh script (run with bash, or sh
# when bash is missing). Counted as failures: each "not ok", a "Bail out!", a
# non-zero exit status, a missing plan and a test count that differs from the
# plan. "ok ... # SKIP" and "not ok ... # TODO" count as skipped, a
# "1..0 # SKIP" plan as one skipped producer. Exits 1 when anything failed.
#
# Environment: TEST_TIMEOUT (seconds per producer, default 900; 0: none),
# TEST_VERBOSE=1 copies every producer's whole output.

LC_ALL=C
export LC_ALL
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir

timeout_s=${TEST_TIMEOUT:-900}
have_timeout=
if [ "$timeout_s" != 0 ] && command -v timeout >/dev/null 2>&1; then
	have_timeout=1
fi
shell_for_scripts=sh
command -v bash >/dev/null 2>&1 && shell_for_scripts=bash

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-tests.XXXXXX") || {
	echo "run-tests.sh: mktemp failed" >&2
	echo "0 passed, 1 failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE

# run_one NAME CMD...: runs one producer; sets pass fail skip and prints its
# line; its output stays in $tmp/out and $tmp/err.
run_one() {
	name=$1
	shift
	start=$(date +%s)
	if [ -n "$have_timeout" ]; then
		timeout -k 10 "$timeout_s" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	else
		"$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	fi
	rc=$?
	secs=$(( $(date +%s) - start ))

	# awk prints: pass fail skip tests planned bailed skipall, then the lines to show
	awk '
	BEGIN { pass = fail = skip = tests = bailed = skipall = 0; planned = -1 }
	/^Bail out!/ { bailed = 1; bad[++nbad] = $0; next }
	/^1\.\.[0-9]+/ {
		if (planned < 0) {
			p = $0; sub(/^1\.\./, "", p); sub(/[^0-9].*/, "", p); planned = p + 0
			if (planned == 0 && $0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) skipall = 1
		}
		next
	}
	/^not ok/ {
		tests++
		if ($0 ~ /#[ \t]*[Tt][Oo][Dd][Oo]/) { skip++ } else { fail++; bad[++nbad] = $0; want = 1 }
		next
	}
	/^ok/ {
		tests++
		if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) skip++; else pass++
		want = 0
		next
	}
	/^#/ { if (want) bad[++nbad] = "    " $0; next }
	{ want = 0 }
	END {
		print pass, fail, skip, tests, planned, bailed, skipall
		for (i = 1; i <= nbad; i++) print bad[i]
	}' "$tmp/out" >"$tmp/res"

	read -r pass fail skip tests planned bailed skipall <"$tmp/res"
	problems=
	if [ "$bailed" = 1 ]; then
		fail=$((fail + 1))
		problems="$problems, bailed out"
	fi
	if [ "$planned" -lt 0 ]; then
		fail=$((fail + 1))
		problems="$problems, no plan"
	elif [ "$skipall" = 1 ]; then
		skip=$((skip + 1))
	elif [ "$planned" != "$tests" ] && [ "$bailed" != 1 ]; then
		if [ "$planned" -gt "$tests" ]; then
			fail=$((fail + planned - tests))
		else
			fail=$((fail + 1))
		fi
		problems="$problems, planned $planned but ran $tests"
	fi
	if [ "$rc" != 0 ]; then
		fail=$((fail + 1))
		case $rc in
		124) problems="$problems, timed out after ${timeout_s}s" ;;
		*) problems="$problems, exit status $rc" ;;
		esac
	fi

	if [ "$fail" -gt 0 ]; then
		echo "$name .. FAILED ($pass passed, $fail failed$problems; ${secs}s)"
		tail -n +2 "$tmp/res"
		if [ -s "$tmp/err" ]; then
			echo "  --- stderr of $name (last 40 lines) ---"
			tail -n 40 "$tmp/err" | sed 's/^/  /'
		fi
		failed_producers="$failed_producers $name"
	elif [ "$skipall" = 1 ]; then
		reason=$(sed -n 's/^1\.\.0[ \t]*#[ \t]*[Ss][Kk][Ii][Pp][ \t]*//p' "$tmp/out" | head -n 1)
		echo "$name .. skipped: ${reason:-no reason given}"
	else
		extra=
		[ "$skip" -gt 0 ] && extra=", $skip skipped"
		echo "$name .. ok ($pass passed$extra; ${secs}s)"
	fi
	if [ "${TEST_VERBOSE:-0}" = 1 ]; then
		sed "s|^|  [$name] |" "$tmp/out" "$tmp/err"
	fi
	echo "$pass $fail $skip" >"$tmp/counts"

}

# summary_line PASS FAIL SKIP
summary_line() {
	if [ "$3" -gt 0 ]; then
		echo "$1 passed, $2 failed, $3 skipped"
	else
		echo "$1 passed, $2 failed"
	fi
}

# Automake's test driver (LOG_DRIVER): run-tests.sh --driver --test-name NAME
# --log-file LOG --trs-file TRS [other automake options] -- CMD...
# One :test-result: per TAP result (and one FAIL per harness failure), so that
# automake's counts are the TAP counts; the running totals of this "make
# check" (tests/.tally, restarted at --first NAME) end in the plain line.
if [ "${1:-}" = --driver ]; then
	shift
	test_name= log= trs= first=
	while [ $# -gt 0 ]; do
		case $1 in
		--test-name) test_name=$2; shift 2 ;;
		--log-file) log=$2; shift 2 ;;
		--trs-file) trs=$2; shift 2 ;;
		--first) first=$2; shift 2 ;;
		--) shift; break ;;
		*) shift 2 ;;
		esac
	done
	tally=${TLSRPT_TALLY:-$top_builddir/tests/.tally}
	mkdir -p "$(dirname "$tally")"
	[ "$test_name" = "$first" ] && : >"$tally"
	run_one "$test_name" "$@" | tee "$tmp/line"
	read -r pass fail skip <"$tmp/counts"
	{
		cat "$tmp/out"
		[ -s "$tmp/err" ] && { echo "--- stderr"; cat "$tmp/err"; }
		cat "$tmp/line"
	} >"$log"
	{
		i=0; while [ $i -lt "$pass" ]; do echo ":test-result: PASS"; i=$((i + 1)); done
		i=0; while [ $i -lt "$skip" ]; do echo ":test-result: SKIP"; i=$((i + 1)); done
		i=0; while [ $i -lt "$fail" ]; do echo ":test-result: FAIL"; i=$((i + 1)); done
		if [ "$fail" -gt 0 ]; then g=FAIL; elif [ "$pass" = 0 ] && [ "$skip" -gt 0 ]; then g=SKIP; else g=PASS; fi
		echo ":global-test-result: $g"
		echo ":recheck: $([ "$fail" -gt 0 ] && echo yes || echo no)"
		echo ":copy-in-global-log: $([ "$fail" -gt 0 ] && echo yes || echo no)"
	} >"$trs"
	echo "$pass $fail $skip" >>"$tally"
	summary_line $(awk '{ p += $1; f += $2; s += $3 } END { print p + 0, f + 0, s + 0 }' "$tally")
	exit 0
fi

total_pass=0
total_fail=0
total_skip=0
failed_producers=

for t in "$@"; do
	prog=$t
	if [ ! -e "$prog" ] && [ -e "$top_builddir/$t" ]; then
		prog=$top_builddir/$t
	fi
	name=${t#./}
	case $prog in
	*.sh) cmd="$shell_for_scripts" ;;
	*) cmd= ;;
	esac
	case $prog in
	*/*) ;;
	*) [ -z "$cmd" ] && prog=./$prog ;;
	esac

	if [ ! -e "$prog" ]; then
		echo "$name: not found"
		total_fail=$((total_fail + 1))
		failed_producers="$failed_producers $name"
		continue
	fi

	run_one "$name" $cmd "$prog"
	read -r pass fail skip <"$tmp/counts"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done

[ -n "$failed_producers" ] && echo "failed:$failed_producers"
summary_line "$total_pass" "$total_fail" "$total_skip"
[ "$total_fail" -eq 0 ]
