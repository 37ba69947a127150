#!/bin/bash
# cgi-t.sh - the RFC 8460 section 5.4 HTTPS transport end to end: Debian's
# nginx and fcgiwrap on loopback, configured with contrib/nginx, run
# tlsrpt-ingest as a CGI program; curl POSTs reports to it and the rows are
# checked in a throwaway PostgreSQL.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/init.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FCGIWRAP=$(command -v fcgiwrap || echo /usr/sbin/fcgiwrap)
[ -x "$NGINX" ] || skip_all "no nginx (apt-get install nginx-light)"
[ -x "$FCGIWRAP" ] || skip_all "no fcgiwrap (apt-get install fcgiwrap)"
command -v curl >/dev/null 2>&1 || skip_all "no curl"
command -v python3 >/dev/null 2>&1 || skip_all "no python3 (to find a free port)"


pg_start
ingest_noin --init-db
is "$rc" 0 "--init-db"

# ---------------------------------------------------------------- nginx + fcgiwrap
# A short directory for the sockets (sun_path is 107 bytes).
D=$(mktemp -d /tmp/tlsrpt-cgi.XXXXXX) || bail "mktemp failed"
chmod 755 "$D"
atexit 'rm -rf "$D"'
mkdir "$D/tmp"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LIMIT=65536

# tlsrpt-ingest finds its database in the configuration file; here a wrapper
# line names the file (contrib/nginx/tlsrpt-ingest.conf describes both ways).
cat >"$D/tlsrpt-ingest.conf" <<EOF
database = $(pg_conninfo)
max_message_size = $LIMIT
EOF
cat >"$D/tlsrpt-cgi" <<EOF
#!/bin/sh
exec "$BIN" -c "$D/tlsrpt-ingest.conf"
EOF
chmod 755 "$D/tlsrpt-cgi"

# contrib's snippet, with this test's socket and program
sed -e "s|unix:/run/fcgiwrap.socket|unix:$D/fcgiwrap.sock|" \
	-e "s|/usr/local/bin/tlsrpt-ingest|$D/tlsrpt-cgi|" \
	"$top_srcdir/contrib/nginx/tlsrpt-ingest.conf" >"$D/tlsrpt-ingest.nginx"
cp "$top_srcdir/contrib/nginx/tlsrpt-ingest-zones.conf" "$D/tlsrpt-ingest-zones.nginx"
cp /etc/nginx/fastcgi_params "$D/fastcgi_params" 2>/dev/null ||
	printf 'fastcgi_param REQUEST_METHOD $request_method;\nfastcgi_param CONTENT_TYPE $content_type;\nfastcgi_param CONTENT_LENGTH $content_length;\nfastcgi_param GATEWAY_INTERFACE CGI/1.1;\nfastcgi_param REMOTE_ADDR $remote_addr;\nfastcgi_param QUERY_STRING $query_string;\n' >"$D/fastcgi_params"
user_line=
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$D/nginx.conf" <<EOF
$user_line
daemon off;
master_process off;
worker_processes 1;
error_log $D/error.log info;
pid $D/nginx.pid;
events { worker_connections 64; }
http {
    access_log $D/access.log;
    client_body_temp_path $D/tmp/body;
    fastcgi_temp_path $D/tmp/fastcgi;
    proxy_temp_path $D/tmp/proxy;
    scgi_temp_path $D/tmp/scgi;
    uwsgi_temp_path $D/tmp/uwsgi;
    include $D/tlsrpt-ingest-zones.nginx;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        include $D/tlsrpt-ingest.nginx;
    }
}
EOF

# one process (no -c): prefork children would outlive a kill of their parent
"$FCGIWRAP" -s "unix:$D/fcgiwrap.sock" >"$D/fcgiwrap.log" 2>&1 &
FCGI_PID=$!
atexit 'kill $FCGI_PID 2>/dev/null; wait $FCGI_PID 2>/dev/null'
"$NGINX" -p "$D" -c "$D/nginx.conf" >"$D/nginx.out" 2>&1 &
NGINX_PID=$!
atexit 'kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null'

URL=http://127.0.0.1:$PORT/tlsrpt
for _ in $(seq 100); do
	[ -S "$D/fcgiwrap.sock" ] && curl -s -o /dev/null "$URL" && break
	sleep 0.1
done
if ! curl -s -o /dev/null "$URL"; then
	diag "nginx did not come up:" "$(cat "$D/nginx.out" "$D/error.log" "$D/fcgiwrap.log" 2>/dev/null)"
	bail "nginx/fcgiwrap did not start"
fi

# post TYPE FILE [curl args]: sets $code, $W/hdr, $W/body
post() {
	local type=$1 file=$2
	shift 2
	code=$(curl -s -D "$W/hdr" -o "$W/body" -w '%{http_code}' -X POST -H "Content-Type: $type" \
		--data-binary "@$file" "$@" "$URL")
}
count() {
	q "SELECT count(*) FROM $1"
}

json_with_id "$DATA/google.json" cgi-gzip-1 | gzip -n >"$W/r1.json.gz"
json_with_id "$DATA/google.json" cgi-json-2 >"$W/r2.json"

# ---------------------------------------------------------------- the round trip
post application/tlsrpt+gzip "$W/r1.json.gz"
is "$code" 201 "gzip report: 201 Created"
is "$(q "SELECT source FROM tlsrpt.report WHERE report_id = 'cgi-gzip-1'")" https "stored with source https"
is "$(q "SELECT count(*) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'cgi-gzip-1'")" 2 \
	"its two policies"
post application/tlsrpt+gzip "$W/r1.json.gz"
is "$code" 200 "the same report again: 200"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'cgi-gzip-1'")" 1 "still one row"

post "application/tlsrpt+json; charset=utf-8" "$W/r2.json"
is "$code" 201 "json report (with a charset parameter): 201"
is "$(q "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'cgi-json-2'")" 1 "json report stored"

post "Application/TLSRPT+JSON" "$W/r2.json"
is "$code" 200 "media type compared without case: 200 for the duplicate"

post text/plain "$W/r2.json"
is "$code" 415 "wrong Content-Type: 415"
post application/json "$W/r2.json"
is "$code" 415 "application/json: 415"

code=$(curl -s -D "$W/hdr" -o "$W/body" -w '%{http_code}' "$URL")
is "$code" 405 "GET: 405"
like "$(tr -d '\r' <"$W/hdr")" $'(^|\n)[Aa]llow: POST' "405 names POST in Allow"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: text/plain' --data-binary x "$URL")
is "$code" 405 "PUT with a wrong type: 405 (the method is checked first)"

head -c $((LIMIT + 1000)) /dev/urandom >"$W/big"
post application/tlsrpt+gzip "$W/big"
is "$code" 413 "a body over max_message_size: 413"

before=$(count tlsrpt.rejected)
printf 'this is not gzip and not json\n' >"$W/garbage"
post application/tlsrpt+gzip "$W/garbage"
is "$code" 400 "garbage body: 400"
is "$(count tlsrpt.rejected)" $((before + 1)) "the garbage is kept in tlsrpt.rejected"
is "$(q "SELECT source || '|' || raw_size || '|' || (reason LIKE '%neither gzip nor JSON%') FROM tlsrpt.rejected ORDER BY id DESC LIMIT 1")" \
	"https|$(wc -c <"$W/garbage" | tr -d ' ')|true" "rejected row: source https, size, reason"
is "$(q "SELECT sender FROM tlsrpt.rejected ORDER BY id DESC LIMIT 1")" 127.0.0.1 "rejected row names the client"

printf '{"organization-name": "x", "policies": [' | gzip -n >"$W/badjson.gz"
post application/tlsrpt+gzip "$W/badjson.gz"
is "$code" 400 "gzip of broken JSON: 400"
is "$(count tlsrpt.rejected)" $((before + 2)) "kept in tlsrpt.rejected too"
post application/tlsrpt+gzip "$W/badjson.gz"
is "$code" 400 "the same broken body again: 400"
is "$(count tlsrpt.rejected)" $((before + 2)) "and no second rejected row"

# ---------------------------------------------------------------- database down
pg_stop
json_with_id "$DATA/google.json" cgi-later-3 | gzip -n >"$W/r3.json.gz"
post application/tlsrpt+gzip "$W/r3.json.gz"
is "$code" 503 "database down: 503"
like "$(tr -d '\r' <"$W/hdr")" $'(^|\n)[Rr]etry-[Aa]fter: [0-9]+' "503 carries Retry-After"
pg_restart || bail "cannot restart PostgreSQL"
post application/tlsrpt+gzip "$W/r3.json.gz"
is "$code" 201 "after the restart the retried report is stored: 201"
is "$(count tlsrpt.report)" 3 "three reports in all"

# ---------------------------------------------------------------- no arguments from a query string
# RFC 3875 4.4: a server may turn a query string without '=' into arguments.
out=$(GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST QUERY_STRING='-d+host%3d/x' \
	CONTENT_TYPE=application/tlsrpt+json "$BIN" -d host=/x </dev/null 2>/dev/null | tr -d '\r' | head -n 1)
is "$out" "Status: 400 Bad Request" "arguments made from a query string are refused"

# ---------------------------------------------------------------- a flood: contrib's limit_req
# 30 a minute per client with a burst of 30: of 60 junk POSTs at once, nginx
# answers the rest 429 without running tlsrpt-ingest, and adds no row for them
before=$(count tlsrpt.rejected)
n429=0
for i in $(seq 60); do
	printf 'flood %s, not a report\n' "$i" >"$W/flood"
	post application/tlsrpt+gzip "$W/flood"
	[ "$code" = 429 ] && n429=$((n429 + 1))
done
note "flood: $n429 of 60 answered 429"
ok "flood: nginx's limit_req answers 429 past the burst ($n429 of 60)" test "$n429" -ge 20
is "$(count tlsrpt.rejected)" $((before + 60 - n429)) "flood: a rejected row for each request that got through, none for a 429"

if grep -q 'emerg\|crit' "$D/error.log" 2>/dev/null; then
	diag "$(grep 'emerg\|crit' "$D/error.log")"
fi
done_testing
