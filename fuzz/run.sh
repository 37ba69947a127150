#!/bin/bash
# run.sh - builds the libFuzzer harnesses with clang, linked with a clang
# build of src/libtlsrpt.a, and runs each for a while:
#   fuzz/run.sh [SECONDS] [HARNESS...]     (default 60 s each; all harnesses)
# SECONDS = 0 builds and runs each harness once over its seeds and the inputs
# in fuzz/crashes/<harness>-* (a quick regression check).
# Harnesses: mime inflate report ingest header. Exits non-zero on any crash, leak,
# timeout, out-of-memory or sanitizer report, or when a harness does not build.
#
# Environment:
#   top_srcdir, top_builddir  the source tree and the configured build tree
#                  (the one holding autoconf.h); default: this script's tree,
#                  or its _build when autoconf.h is only there
#   CLANG          the compiler (default clang-14, else clang)
#   FUZZ_OUT       where binaries, working corpora and crashes go
#                  (default $top_builddir/fuzz/out)
#   FUZZ_JOBS      harnesses run at once (default 1)
#   FUZZ_BUILD_ONLY=1  the same as SECONDS = 0
#   FUZZ_ARGS      more libFuzzer options
#   FUZZ_CFLAGS    more compiler options for the harnesses and the library,
#                  e.g. -DFUZZ_IGNORE_... to look past a bug not fixed yet
#                  (see fuzz/crashes/README)
# A crash is kept as $FUZZ_OUT/crashes/<harness>-crash-<sha1>; reproduce with
#   $FUZZ_OUT/<harness>-fuzz FILE
# and minimize with  $FUZZ_OUT/<harness>-fuzz -minimize_crash=1 -runs=10000 FILE.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/.." && pwd)}"
if [ -z "${top_builddir:-}" ]; then
	top_builddir=$top_srcdir
	[ -f "$top_builddir/autoconf.h" ] || top_builddir=$top_srcdir/_build
fi
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" 2>/dev/null && pwd) || { echo "run.sh: no build tree (configure first)" >&2; exit 2; }
[ -f "$top_builddir/autoconf.h" ] || { echo "run.sh: no autoconf.h in $top_builddir (configure first)" >&2; exit 2; }

secs=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(mime inflate report ingest header)
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
	for c in clang-14 clang; do
		command -v "$c" >/dev/null 2>&1 && { CLANG=$c; break; }
	done
fi
[ -n "$CLANG" ] || { echo "run.sh: no clang" >&2; exit 2; }
out=${FUZZ_OUT:-$top_builddir/fuzz/out}
mkdir -p "$out/crashes" "$out/logs" || exit 2

# The harnesses link src/libtlsrpt.a, built by the project's own Makefile
# with clang and the fuzzer's instrumentation in a build tree of its own
# ($out/lib: configured once, then "make src/libtlsrpt.a" as the sources change).
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
lib=$out/lib
mkdir -p "$lib"
if [ ! -f "$lib/Makefile" ]; then
	echo "=== configuring the library with $CLANG in $lib"
	(cd "$lib" && "$top_srcdir/configure" CC="$CLANG" CFLAGS="-g -O1 $san -fsanitize=fuzzer-no-link ${FUZZ_CFLAGS:-}" \
		LDFLAGS="$san" >"$out/logs/configure.log" 2>&1) ||
		{ tail -n 30 "$out/logs/configure.log"; echo "=== library: CONFIGURE FAILED"; exit 1; }
fi
make -C "$lib" src/schema-sql.h src/libtlsrpt.a >"$out/logs/lib-build.log" 2>&1 ||
	{ tail -n 40 "$out/logs/lib-build.log"; echo "=== library: BUILD FAILED"; exit 1; }
# the dependencies' flags, as configure found them for the library
deps() {
	local v
	for v in GMIME JSONC ZLIB LIBPQ LIBPSL OPENDKIM; do
		sed -n "s/^${v}_$1 = //p" "$lib/Makefile"
	done | tr '\n' ' '
}
cflags=$(deps CFLAGS)
libs=$(deps LIBS)

echo "=== building with $CLANG into $out"
bash "$top_srcdir/fuzz/seed.sh" "$out/seeds" || exit 2
cat "$here/json.dict" "$here/mime.dict" >"$out/ingest.dict"
cat "$here/mime.dict" "$here/header.dict" >"$out/header.dict"
fail=0
for h in "${harnesses[@]}"; do
	[ -f "$here/$h-fuzz.c" ] || { echo "run.sh: no harness $h" >&2; exit 2; }
	# shellcheck disable=SC2086
	if ! "$CLANG" -std=c11 -g -O1 -fsanitize=fuzzer $san -Wall -Wextra \
		-I"$lib" -I"$lib/src" -I"$top_srcdir/src" -I"$here" $cflags ${FUZZ_CFLAGS:-} \
		-o "$out/$h-fuzz" "$here/$h-fuzz.c" "$lib/src/libtlsrpt.a" $libs >"$out/logs/$h-build.log" 2>&1; then
		cat "$out/logs/$h-build.log"
		echo "=== $h: BUILD FAILED"
		fail=1
	fi
done
[ "$fail" = 0 ] || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run_one HARNESS: runs it; its status is in the log
run_one() {
	local h=$1 dict=() corpus=$out/corpus/$h args
	mkdir -p "$corpus"
	: >"$out/logs/$h.start"
	case $h in
	mime) dict=(-dict="$here/mime.dict") ;;
	report) dict=(-dict="$here/json.dict") ;;
	ingest) dict=(-dict="$out/ingest.dict") ;;
	header) dict=(-dict="$out/header.dict") ;;
	esac
	# the minimized inputs of bugs found before run first, as regression tests
	cp "$here/crashes/$h-"* "$out/seeds/$h/" 2>/dev/null
	if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ] || [ "$secs" = 0 ]; then
		args=(-runs=0)
	else
		args=(-max_total_time="$secs")
	fi
	# shellcheck disable=SC2086
	"$out/$h-fuzz" "${args[@]}" -rss_limit_mb=512 -max_len=1048576 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$h-" "${dict[@]}" ${FUZZ_ARGS:-} \
		"$corpus" "$out/seeds/$h" >"$out/logs/$h.log" 2>&1
	echo $? >"$out/logs/$h.rc"
}

jobs=${FUZZ_JOBS:-1}
running=0
for h in "${harnesses[@]}"; do
	echo "=== $h: fuzzing for ${secs}s"
	run_one "$h" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

for h in "${harnesses[@]}"; do
	rc=$(cat "$out/logs/$h.rc" 2>/dev/null || echo 99)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$h.log" | tail -n 1)
	# with -ignore_crashes (fork mode) libFuzzer exits 0: count the artifacts
	new=$(find "$out/crashes" -name "$h-*" -newer "$out/logs/$h.start" 2>/dev/null | wc -l)
	if [ "$rc" = 0 ] && [ "$new" = 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz invariant broken' "$out/logs/$h.log"; then
		echo "=== $h: ok (${runs:-?} runs, corpus $(ls "$out/corpus/$h" | wc -l) files)"
	else
		echo "=== $h: FAILED (status $rc, ${runs:-?} runs, $new new artifact(s)); from $out/logs/$h.log:"
		grep -E -A40 'ERROR:|runtime error:|fuzz invariant broken|==[0-9]+==' "$out/logs/$h.log" | head -n 80
		find "$out/crashes" -name "$h-*" -newer "$out/logs/$h.start" | head -n 20 | sed 's/^/    artifact: /'
		fail=1
	fi
done
exit "$fail"
