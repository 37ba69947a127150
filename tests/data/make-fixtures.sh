#!/bin/sh
# make-fixtures.sh - regenerates the generated fixtures (emails carrying
# gzip'd or raw JSON, .json.gz files, SHA256SUMS) from the JSON fixtures in
# this directory. Run it from anywhere:  sh tests/data/make-fixtures.sh
# gzip -n keeps the output free of the file name and mtime (so it does not
# change from run to run), except for the one fixture that needs both.
set -eu
cd "$(dirname "$0")"
umask 022

# base64 of the gzip'd file, 76 columns as MIME wants.
b64gz() { gzip -9 -n -c "$1" | base64 -w 76; }
b64() { base64 -w 76 "$1"; }
# LF -> CRLF on every line.
crlf() { sed 's/$/\r/'; }

# ---------------------------------------------------------------- raw files
gzip -9 -n -c google-sts.json > google-sts.json.gz
gzip -9 -n -c ms-tlsa.json > ms-tlsa.json.gz

# corrupt.json.gz: a valid member whose CRC-32 (first trailer byte) is flipped.
gzip -9 -n -c testing-xxxx.json > corrupt.json.gz
size=$(wc -c < corrupt.json.gz)
off=$((size - 8))
byte=$(od -An -tu1 -j "$off" -N1 corrupt.json.gz | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 255)))" |
	dd of=corrupt.json.gz bs=1 seek="$off" count=1 conv=notrunc 2>/dev/null

# fname-mtime.json.gz: gzip header with FNAME "rpt01.json.1" and an mtime.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp rfc-example.json "$tmp/rpt01.json.1"
touch -d @1013662812 "$tmp/rpt01.json.1"
(cd "$tmp" && gzip -9 -c rpt01.json.1) > fname-mtime.json.gz

# ---------------------------------------------------------------- emails
# Google: report-type unquoted after boundary; "; " then folded name=;
# both name= and filename=. LF, and a CRLF copy.
cat > google.eml <<EOF
Return-Path: <noreply-smtp-tls-reporting@google.example.net>
Authentication-Results-Original: mx.example.com; dkim=pass header.d=google.example.net
MIME-Version: 1.0
Date: Wed, 04 Sep 2024 04:08:52 -0700
TLS-Report-Domain: example.com
TLS-Report-Submitter: google.example.net
Message-ID: <66d84a44.050a0220.1f2e.0001tls@google.example.net>
Subject: Report Domain: example.com Submitter: google.example.net Report-ID: <2024.09.03T00.00.00Z+example.com@google.example.net>
From: noreply-smtp-tls-reporting@google.example.net
To: tlsrpt@example.com
Content-Type: multipart/report; boundary="000000000000a485b4062276f26e"; report-type=tlsrpt

--000000000000a485b4062276f26e
Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes

This is an aggregate TLS report from google.example.net

--000000000000a485b4062276f26e
Content-Type: application/tlsrpt+gzip; 
	name="google.example.net!example.com!1725321600!1725407999!001.json.gz"
Content-Disposition: attachment; 
	filename="google.example.net!example.com!1725321600!1725407999!001.json.gz"
Content-Transfer-Encoding: base64

$(b64gz google-minified.json)
--000000000000a485b4062276f26e--
EOF
crlf < google.eml > google-crlf.eml

# Microsoft: text/html QP first part; Content-Description holding the file
# name (folded); filename only in Content-Disposition (no name=); Subject
# folded, Report-ID without <@>. LF.
cat > microsoft.eml <<EOF
From: tlsrpt-noreply@microsoft.example.net
Date: Wed, 11 Jan 2023 01:07:16 +0000
Subject: Report Domain: example.com Submitter: microsoft.example.net Report-ID:
 133198585438131172+example.com
TLS-Report-Domain: example.com
TLS-Report-Submitter: microsoft.example.net
MIME-Version: 1.0
Message-ID: <133198585438131172+example.com@example.com>
Content-Type: multipart/report;
	boundary="_078e4900-4595-46ae-b003-a8055864441a_"; report-type=tlsrpt
To: tlsrpt@example.com

--_078e4900-4595-46ae-b003-a8055864441a_
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html>
<head>
<meta http-equiv=3D"Content-Type" content=3D"text/html; charset=3Dus-ascii"=
>
</head>
<body>
<div>This is an aggregate TLS report from microsoft.example.net</div>
</body>
</html>

--_078e4900-4595-46ae-b003-a8055864441a_
Content-Type: application/tlsrpt+gzip
Content-Description:
 microsoft.example.net!example.com!1673308800!1673395199!133198585438131172.json.gz
Content-Disposition: attachment;
	filename="microsoft.example.net!example.com!1673308800!1673395199!133198585438131172.json.gz"
Content-Transfer-Encoding: base64

$(b64gz ms-no-tz.json)

--_078e4900-4595-46ae-b003-a8055864441a_--
EOF

# Mail.ru: report-type quoted and first, boundary on the folded line; Subject
# folded token per line; no closing boundary (--b--); CRLF.
{
cat <<EOF
From: noreply-smtp-tls-reporting@corp.mail.example.org
Date: Thu, 26 Jan 2023 03:10:38 +0300
To: tlsrpt@example.com
Subject: Report
 Domain: example.com
 Submitter: mail.example.org
 Report-ID: <c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org>
Auto-Submitted: auto-generated
TLS-Report-Domain: example.com
TLS-Report-Submitter: mail.example.org
Message-Id: <c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type="tlsrpt";
 boundary="----=_NextPart_1674691838991563614"

This is a multipart message in MIME format.

------=_NextPart_1674691838991563614
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

This is an aggregate TLS report from mail.example.org

------=_NextPart_1674691838991563614
Content-Type: application/tlsrpt+gzip;
 name="mail.example.org!example.com!1674604800!1674691200!001.json.gz"
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
 filename="mail.example.org!example.com!1674604800!1674691200!001.json.gz"

$(b64gz mailru-next-midnight.json)

------=_NextPart_1674691838991563614

EOF
} | crlf > mailru.eml

# application/tlsrpt (no +json): raw JSON body, no Content-Transfer-Encoding.
cat > tlsrpt-raw.eml <<EOF
From: tlsrpt@sender.example.org
Date: Fri, 01 Apr 2016 16:54:30 -0800
Subject: Report Domain: example.com Submitter: sender.example.org Report-ID: <5065427c-23d3@sender.example.org>
TLS-Report-Domain: example.com
TLS-Report-Submitter: sender.example.org
Message-ID: <5065427c-23d3@sender.example.org>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type="tlsrpt";
	boundary="----=_Part_raw"

------=_Part_raw
Content-Type: text/plain; charset="us-ascii"

This is an aggregate TLS report from sender.example.org

------=_Part_raw
Content-Type: application/tlsrpt
Content-Disposition: attachment;
	filename="sender.example.org!example.com!1459468800!1459555199.json"

$(cat rfc-example.json)
------=_Part_raw--
EOF

# application/tlsrpt+json, 7bit.
cat > tlsrpt-json.eml <<EOF
From: tlsrpt@reporter.example.net
Date: Fri, 15 Feb 2019 00:10:00 +0000
Subject: Report Domain: xn--bcher-kva.example Submitter: reporter.example.net Report-ID: <2019-02-14@reporter.example.net>
TLS-Report-Domain: xn--bcher-kva.example
TLS-Report-Submitter: reporter.example.net
Message-ID: <json-2019-02-14@reporter.example.net>
To: tlsrpt@xn--bcher-kva.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="b1"

--b1
Content-Type: text/plain

This is an aggregate TLS report from reporter.example.net

--b1
Content-Type: application/tlsrpt+json
Content-Transfer-Encoding: 7bit
Content-Disposition: attachment;
	filename="reporter.example.net!xn--bcher-kva.example!1550102400!1550188799.json"

$(cat idn.json)
--b1--
EOF

# application/octet-stream, recognised only by the .json.gz file name.
cat > octet-stream.eml <<EOF
From: reports@sender.example.net
Date: Thu, 05 Sep 2024 00:10:00 +0000
Subject: TLS report for example.com
Message-ID: <octet-1@sender.example.net>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="oct"

--oct
Content-Type: text/plain; charset=us-ascii

Report attached.

--oct
Content-Type: application/octet-stream
Content-Disposition: attachment;
	filename="google.example.net!example.com!1725408000!1725494399!001.json.gz"
Content-Transfer-Encoding: base64

$(b64gz google-sts.json)
--oct--
EOF

# application/gzip with RFC 2231 parameters: name*=utf-8''... and
# filename*0*= / filename*1*= continuations. The name is "réport-2024.json.gz".
# The Subject holds RFC 2047 encoded words over a fold; decoded it reads
# "Réport Domain: example.com Submitter: microsoft.example.net".
cat > rfc2231.eml <<EOF
From: tlsrpt-noreply@microsoft.example.net
Date: Sat, 24 May 2025 01:00:00 +0000
Subject: =?utf-8?Q?R=C3=A9port_Domain:?= example.com
 =?utf-8?Q?Submitter:_microsoft.example.net?=
TLS-Report-Domain: example.com
TLS-Report-Submitter: microsoft.example.net
Message-ID: <rfc2231-1@microsoft.example.net>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="r2231"

--r2231
Content-Type: text/plain; charset=us-ascii

This is an aggregate TLS report.

--r2231
Content-Type: application/gzip;
 name*=utf-8''r%C3%A9port-2024.json.gz
Content-Disposition: attachment;
 filename*0*=utf-8''r%C3%A9port-;
 filename*1*=2024.json.gz
Content-Transfer-Encoding: base64

$(b64gz ms-tlsa.json)
--r2231--
EOF

# No useful type and no name: only the gzip magic tells.
cat > sniff.eml <<EOF
From: reports@sender.example.net
Date: Tue, 12 May 2026 00:10:00 +0000
Subject: daily report
Message-ID: <sniff-1@sender.example.net>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="sn"

--sn
Content-Type: text/plain; charset=us-ascii

See the attachment.

--sn
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

$(b64gz mx-host-shapes.json)
--sn--
EOF

# Not multipart: the whole body is the report.
cat > singlepart.eml <<EOF
From: tlsrpt@mx.example.net
Date: Fri, 01 Nov 2024 00:30:00 +0000
Subject: Report Domain: example.com Submitter: mx.example.net Report-ID: <1730332800_11732957880687192466>
TLS-Report-Domain: example.com
TLS-Report-Submitter: mx.example.net
Message-ID: <single-1@mx.example.net>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64

$(b64gz stalwart-contact-null.json)
EOF

# A report message forwarded as message/rfc822.
cat > forwarded.eml <<EOF
From: Postmaster <postmaster@example.com>
Date: Fri, 06 Sep 2024 09:00:00 +0000
Subject: Fwd: Report Domain: example.com Submitter: google.example.net
Message-ID: <fwd-1@example.com>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-outer"

--fwd-outer
Content-Type: text/plain; charset=us-ascii

Forwarding the report below.

--fwd-outer
Content-Type: message/rfc822
Content-Disposition: attachment

MIME-Version: 1.0
Date: Thu, 05 Sep 2024 04:08:52 -0700
TLS-Report-Domain: example.com
TLS-Report-Submitter: google.example.net
Message-ID: <inner-1tls@google.example.net>
Subject: Report Domain: example.com Submitter: google.example.net Report-ID: <2024.09.04T00.00.00Z+example.com@google.example.net>
From: noreply-smtp-tls-reporting@google.example.net
To: tlsrpt@example.com
Content-Type: multipart/report; boundary="fwd-inner"; report-type=tlsrpt

--fwd-inner
Content-Type: text/plain; charset="UTF-8"

This is an aggregate TLS report from google.example.net

--fwd-inner
Content-Type: application/tlsrpt+gzip; 
	name="google.example.net!example.com!1725408000!1725494399!001.json.gz"
Content-Disposition: attachment; 
	filename="google.example.net!example.com!1725408000!1725494399!001.json.gz"
Content-Transfer-Encoding: base64

$(b64gz google-sts.json)
--fwd-inner--

--fwd-outer--
EOF

# Two report attachments in one message; LF and CRLF.
cat > two-reports.eml <<EOF
From: noreply-smtp-tls-reporting@google.example.net
Date: Thu, 05 Sep 2024 04:08:52 -0700
Subject: Report Domain: example.com Submitter: google.example.net Report-ID: <two@google.example.net>
TLS-Report-Domain: example.com
TLS-Report-Submitter: google.example.net
Message-ID: <two-1@google.example.net>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/report; boundary="two"; report-type=tlsrpt

--two
Content-Type: text/plain

Two aggregate TLS reports.

--two
Content-Type: application/tlsrpt+gzip; name="first.json.gz"
Content-Disposition: attachment; filename="first.json.gz"
Content-Transfer-Encoding: base64

$(b64gz google-minified.json)
--two
Content-Type: application/tlsrpt+gzip; name="second.json.gz"
Content-Disposition: attachment; filename="second.json.gz"
Content-Transfer-Encoding: base64

$(b64gz google-sts.json)
--two--
EOF
crlf < two-reports.eml > two-reports-crlf.eml

# A leading mbox "From " line (procmail, local(8), pipe flags=F).
cat > mbox-from.eml <<EOF
From noreply-smtp-tls-reporting@google.example.net  Thu Feb 27 00:10:00 2020
Return-Path: <tlsrpt-feedback@socketlabs.example.net>
From: tlsrpt-feedback@socketlabs.example.net
Date: Fri, 28 Feb 2020 00:10:00 +0000
Subject: Report Domain: example.org Submitter: socketlabs.example.net Report-ID: <13B8FEDF21D3DBD6997654968E563122@socketlabs.example.net>
TLS-Report-Domain: example.org
TLS-Report-Submitter: socketlabs.example.net
Message-ID: <mbox-1@socketlabs.example.net>
To: tlsrpt@example.org
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="mb"

--mb
Content-Type: text/plain

TLS report.

--mb
Content-Type: application/tlsrpt+gzip
Content-Disposition: attachment; filename="socketlabs.example.net!example.org!1582761600!1582848000.json.gz"
Content-Transfer-Encoding: base64

$(b64gz socketlabs-misspelled.json)
--mb--
EOF

# RFC 8460 5.3.1 shape: invalid Date, Subject folded over 3 lines,
# gzip with FNAME and mtime.
cat > fname-mtime.eml <<EOF
From: tlsrpt@sender.example.org
Date: Fri, May 09 2017 16:54:30 -0800
To: mts-sts-tlsrpt@example.com
Subject: Report Domain: example.com
     Submitter: sender.example.org
     Report-ID: <735ff.e317+bf22029@sender.example.org>
TLS-Report-Domain: example.com
TLS-Report-Submitter: sender.example.org
MIME-Version: 1.0
Message-ID: <735ff.e317+bf22029@sender.example.org>
Content-Type: multipart/report; report-type="tlsrpt";
    boundary="----=_NextPart_000_024E_01CC9B0A.AFE54C00"
Content-Language: en-us

This is a multipart message in MIME format.

------=_NextPart_000_024E_01CC9B0A.AFE54C00
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

This is an aggregate TLS report from sender.example.org

------=_NextPart_000_024E_01CC9B0A.AFE54C00
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
    filename="sender.example.org!example.com!1013662812!1013749130.json.gz"

$(b64 fname-mtime.json.gz)
------=_NextPart_000_024E_01CC9B0A.AFE54C00--
EOF

# cron mail: not a report at all.
cat > cron.eml <<EOF
Return-Path: <root@host.example.com>
From: root@host.example.com (Cron Daemon)
To: root@host.example.com
Subject: Cron <root@host> test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit
X-Cron-Env: <SHELL=/bin/sh>
X-Cron-Env: <HOME=/root>
Message-Id: <20240913062501.5C7A21F4@host.example.com>
Date: Fri, 13 Sep 2024 08:25:01 +0200 (CEST)

/etc/cron.daily/logrotate:
error: skipping "/var/log/app.log" because parent directory has insecure permissions
run-parts: /etc/cron.daily/logrotate exited with return code 1
EOF

# DMARC aggregate report (XML, gzip'd): not TLS-RPT.
cat > dmarc.xml <<EOF
<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>example.net</org_name>
    <email>noreply-dmarc-support@example.net</email>
    <report_id>17246583212345678901</report_id>
    <date_range><begin>1724544000</begin><end>1724630399</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><p>none</p></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>2</count></row>
    <identifiers><header_from>example.com</header_from></identifiers>
  </record>
</feedback>
EOF
cat > dmarc.eml <<EOF
From: noreply-dmarc-support@example.net
To: dmarc@example.com
Subject: Report domain: example.com Submitter: example.net Report-ID: 17246583212345678901
Date: Mon, 26 Aug 2024 16:59:59 -0700
Message-ID: <17246583212345678901@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="dm"

--dm
Content-Type: text/plain

This is an aggregate report from example.net.

--dm
Content-Type: application/gzip;
	name="example.net!example.com!1724544000!1724630399.xml.gz"
Content-Disposition: attachment;
	filename="example.net!example.com!1724544000!1724630399.xml.gz"
Content-Transfer-Encoding: base64

$(b64gz dmarc.xml)
--dm--
EOF
rm -f dmarc.xml

# One good report and one corrupt gzip (bad CRC).
cat > good-and-corrupt.eml <<EOF
From: tlsrpt@mail.example.org
Date: Sun, 21 Sep 2025 00:10:00 +0000
Subject: Report Domain: example.com Submitter: mail.example.org Report-ID: <2025-09-20T00:00:00Z_idx1_example.com>
TLS-Report-Domain: example.com
TLS-Report-Submitter: mail.example.org
Message-ID: <gc-1@mail.example.org>
To: tlsrpt@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="gc"

--gc
Content-Type: text/plain

Two attachments, one damaged.

--gc
Content-Type: application/tlsrpt+gzip
Content-Disposition: attachment; filename="good.json.gz"
Content-Transfer-Encoding: base64

$(b64gz postfix-no-domain.json)
--gc
Content-Type: application/tlsrpt+gzip
Content-Disposition: attachment; filename="corrupt.json.gz"
Content-Transfer-Encoding: base64

$(b64 corrupt.json.gz)
--gc--
EOF

# Digests of every fixture (rejections carry the SHA-256 of what was refused).
sha256sum -- *.eml *.json *.gz | LC_ALL=C sort -k2 > SHA256SUMS
