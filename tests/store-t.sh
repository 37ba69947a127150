#!/bin/bash
# store-t.sh - runs tests/store-t (store.c and pipeline.c, in C) against a
# throwaway PostgreSQL with schema tlsrpt.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

pg_start
"$BIN" --init-db >/dev/null 2>&1 || bail "--init-db failed"
# not exec: the cluster is stopped when this script exits
TLSRPT_STORE_TEST=1 tap_from "$top_builddir/tests/store-t"
