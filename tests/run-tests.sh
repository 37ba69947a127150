#!/bin/sh
# run-tests.sh - runs TAP producers and ends with one line "N passed, M failed"
# (", K skipped" is added when K > 0). Called by "make check" as
#   top_srcdir=... top_builddir=... sh tests/run-tests.sh PROG_OR_SCRIPT...
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

	start=$(date +%s)
	if [ -n "$have_timeout" ]; then
		timeout -k 10 "$timeout_s" $cmd "$prog" </dev/null >"$tmp/out" 2>"$tmp/err"
	else
		$cmd "$prog" </dev/null >"$tmp/out" 2>"$tmp/err"
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

	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done

[ -n "$failed_producers" ] && echo "failed:$failed_producers"
if [ "$total_skip" -gt 0 ]; then
	echo "$total_pass passed, $total_fail failed, $total_skip skipped"
else
	echo "$total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ]
