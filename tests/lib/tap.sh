# tap.sh - a tiny TAP producer for bash test scripts.
#
# Source it, then:
#   plan N            announce N tests up front (optional: done_testing prints
#                     the plan at the end when none was given)
#   skip_all REASON   print "1..0 # SKIP REASON" and exit 0
#   ok NAME CMD...    run CMD (its stdout sent to stderr); ok when it exits 0;
#                     "ok NAME ! CMD..." is ok when CMD fails
#   ok_if NAME STATUS ok when STATUS (an exit status already computed) is 0
#   is GOT WANT NAME  string equality, shows both on failure
#   like GOT ERE NAME extended-regex match
#   pass NAME / fail NAME / skip REASON [COUNT]
#   diag MSG...       "# MSG" on stderr
#   note MSG...       "# MSG" on stdout
#   bail REASON       "Bail out! REASON" and exit 255
#   atexit CMD        run CMD (eval'd) when the script exits, last in first out
#   tap_from CMD...   the whole TAP stream comes from CMD (a C unit test that
#                     needs what the script set up): runs it, then exits with
#                     its status, atexit commands run
#   done_testing      print the plan if needed and exit: 0 only when every test
#                     passed and the count matches the plan
# Scripts must end with done_testing; ending otherwise is a failure.

_tap_n=0
_tap_failed=0
_tap_planned=
_tap_done=
_tap_atexit=()

plan() {
	_tap_planned=$1
	echo "1..$1"
}

skip_all() {
	echo "1..0 # SKIP ${*:-skipped}"
	_tap_done=1
	exit 0
}

diag() {
	local line
	printf '%s\n' "$*" | while IFS= read -r line; do
		printf '# %s\n' "$line"
	done >&2
}

note() {
	local line
	printf '%s\n' "$*" | while IFS= read -r line; do
		printf '# %s\n' "$line"
	done
}

pass() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}

_tap_notok() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
}

# where the failing test is: the first caller outside tests/lib
_tap_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		case ${BASH_SOURCE[i]} in
		*/lib/*.sh | lib/*.sh) ;;
		*)
			diag "  failed at ${BASH_SOURCE[i]##*/} line ${BASH_LINENO[i - 1]}"
			return 0
			;;
		esac
	done
}

fail() {
	_tap_notok "$1"
	_tap_where
}

ok() {
	local name=$1 neg= rc=0
	shift
	if [ "${1:-}" = "!" ]; then
		neg=1
		shift
	fi
	"$@" >&2 || rc=$?
	if { [ "$rc" = 0 ] && [ -z "$neg" ]; } || { [ "$rc" != 0 ] && [ -n "$neg" ]; }; then
		pass "$name"
	else
		_tap_notok "$name"
		_tap_where
	fi
}

ok_if() {
	if [ "$2" = 0 ]; then
		pass "$1"
	else
		_tap_notok "$1"
		_tap_where
	fi
}

is() {
	if [ "x$1" = "x$2" ]; then
		pass "$3"
	else
		_tap_notok "$3"
		_tap_where
		diag "       got: '$1'"
		diag "  expected: '$2'"
	fi
}

like() {
	if [[ $1 =~ $2 ]]; then
		pass "$3"
	else
		_tap_notok "$3"
		_tap_where
		diag "       got: '$1'"
		diag "  expected to match: /$2/"
	fi
}

skip() {
	local reason=$1 count=${2:-1} i
	for ((i = 0; i < count; i++)); do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP $reason"
	done
}

bail() {
	echo "Bail out! $*"
	_tap_done=1
	exit 255
}

atexit() {
	_tap_atexit+=("$1")
}

_tap_run_atexit() {
	local i
	for ((i = ${#_tap_atexit[@]} - 1; i >= 0; i--)); do
		eval "${_tap_atexit[i]}" || true
	done
	_tap_atexit=()
}

_tap_on_exit() {
	local rc=$?
	_tap_run_atexit
	if [ -z "$_tap_done" ]; then
		echo "# the script ended before done_testing (status $rc)" >&2
		[ "$rc" = 0 ] && rc=1
	fi
	exit "$rc"
}
trap _tap_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

tap_from() {
	local rc
	"$@"
	rc=$?
	_tap_done=1
	exit "$rc"
}

done_testing() {
	local rc=0
	_tap_done=1
	if [ -z "$_tap_planned" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_planned" != "$_tap_n" ]; then
		diag "planned $_tap_planned tests but ran $_tap_n"
		rc=1
	fi
	if [ "$_tap_failed" -gt 0 ]; then
		diag "failed $_tap_failed of $_tap_n tests"
		rc=1
	fi
	exit "$rc"
}
