# mail.sh - builds TLS-RPT report mails for the shell tests (and for
# tests/lib/mkfixtures.sh, which wrote the static ones in tests/data/integration).
#
#   mkmail [options] JSONFILE        writes a Google-like report mail to stdout:
#                                    multipart/report; report-type=tlsrpt, a text
#                                    part and the report as base64 of "gzip -n"
#     -m MESSAGE-ID   without <>; default derived from the report file name
#     -f FILENAME     attachment name; default google.com!example.org!...json.gz
#     -d DOMAIN       TLS-Report-Domain (default example.org)
#     -s SUBMITTER    TLS-Report-Submitter (default google.com)
#     -p              attach plain JSON (application/tlsrpt+json, no gzip)
#     -F              start with an mbox "From " line
#   json_with_id JSONFILE NEW_ID     the report with its "report-id" replaced

mkmail() {
	local OPTIND=1 opt msgid= fname= domain=example.org submitter=google.com plain= mbox=
	while getopts m:f:d:s:pF opt; do
		case $opt in
		m) msgid=$OPTARG ;;
		f) fname=$OPTARG ;;
		d) domain=$OPTARG ;;
		s) submitter=$OPTARG ;;
		p) plain=1 ;;
		F) mbox=1 ;;
		*) return 2 ;;
		esac
	done
	shift $((OPTIND - 1))
	local json=$1 base
	base=$(basename "$json" .json)
	: "${msgid:=$base.$domain@$submitter}"
	if [ -z "$fname" ]; then
		fname="$submitter!$domain!1709251200!1709337599!001.json"
		[ -n "$plain" ] || fname="$fname.gz"
	fi
	local boundary="000000000000tlsrpt${base//[^A-Za-z0-9]/}"

	[ -n "$mbox" ] && printf 'From noreply-smtp-tls-reporting@%s  Sat Mar  2 09:15:27 2024\n' "$submitter"
	cat <<MAIL
Return-Path: <noreply-smtp-tls-reporting@$submitter>
Received: from mail-sor-f41.$submitter (mail-sor-f41.$submitter [209.85.220.41])
	by mx1.$domain (Postfix) with SMTPS id 4TmX2b0Jq7z9sW
	for <tlsrpt@$domain>; Sat,  2 Mar 2024 09:15:27 +0000 (UTC)
MIME-Version: 1.0
From: noreply-smtp-tls-reporting@$submitter
Date: Sat, 02 Mar 2024 01:15:26 -0800
Message-ID: <$msgid>
Subject: Report Domain: $domain Submitter: $submitter
 Report-ID: <2024.03.01T00.00.00Z+$domain@$submitter>
TLS-Report-Domain: $domain
TLS-Report-Submitter: $submitter
To: tlsrpt@$domain
Content-Type: multipart/report; boundary="$boundary"; report-type=tlsrpt

--$boundary
Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes

This is an aggregate TLS report from $submitter

--$boundary
MAIL
	if [ -n "$plain" ]; then
		printf 'Content-Type: application/tlsrpt+json; name="%s"\n' "$fname"
		printf 'Content-Disposition: attachment; filename="%s"\n\n' "$fname"
		cat "$json"
		printf '\n'
	else
		printf 'Content-Type: application/tlsrpt+gzip; \n\tname="%s"\n' "$fname"
		printf 'Content-Disposition: attachment; \n\tfilename="%s"\n' "$fname"
		printf 'Content-Transfer-Encoding: base64\n\n'
		gzip -n -c <"$json" | base64 -w 76
	fi
	printf -- '--%s--\n' "$boundary"
}

json_with_id() {
	sed "s|\"report-id\": *\"[^\"]*\"|\"report-id\":\"$2\"|" "$1"
}
