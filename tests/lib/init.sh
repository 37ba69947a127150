# init.sh - the prologue of every shell test:
#   here=$(cd "$(dirname "$0")" && pwd)
#   . "$here/lib/init.sh"
# sets top_srcdir (unless given) and sources tap.sh (the TAP helpers), pg.sh
# (pg_start and the psql helper q), common.sh (BIN, DATA, W, ingest,
# expect_*) and mail.sh (mkmail). Nothing starts until the test asks.
_tlsrpt_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$_tlsrpt_lib/../..}"
. "$_tlsrpt_lib/tap.sh"
. "$_tlsrpt_lib/pg.sh"
. "$_tlsrpt_lib/common.sh"
. "$_tlsrpt_lib/mail.sh"
