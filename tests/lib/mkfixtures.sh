#!/bin/bash
# mkfixtures.sh - (re)writes the generated fixtures in tests/data/integration
# from the hand-written *.json there. Run from anywhere; the output is
# deterministic (gzip -n), so a rerun changes nothing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mail.sh"
cd "$here/../data/integration"

# a Google-like report mail: multipart/report, base64 of gzip -n
mkmail -m '4c2a6b0e.5f1d.google-tlsrpt@google.com' google.json >google.eml

# the same file report as .json.gz
gzip -n -c file-report.json >file-report.json.gz

# an mbox "From " line first, plain application/tlsrpt+json attachment
mkmail -F -p -s mbox.example -m 'mbox-1@mbox.example' -f 'mbox.example!example.org!1709596800!1709683199.json' mbox.json >mbox-from.eml

# one corrupt gzip attachment (good header, garbage deflate data) and one good one
{
	cat <<'MAIL'
From: tls@corrupt.example
To: tlsrpt@example.org
Subject: Report Domain: example.org Submitter: corrupt.example Report-ID: <corrupt-good-1@corrupt.example>
Message-ID: <corrupt-and-good-1@corrupt.example>
Date: Tue, 05 Mar 2024 06:00:00 +0000
TLS-Report-Domain: example.org
TLS-Report-Submitter: corrupt.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="b-corrupt-and-good"

--b-corrupt-and-good
Content-Type: text/plain

Two reports, the first one damaged.

--b-corrupt-and-good
Content-Type: application/tlsrpt+gzip
Content-Disposition: attachment; filename="corrupt.example!example.org!1709510400!1709596799!broken.json.gz"
Content-Transfer-Encoding: base64

MAIL
	{ printf '\037\213\010\000\000\000\000\000\000\003'; printf 'this is not a deflate stream at all, just some bytes %.0s' 1 2 3; } | base64 -w 76
	cat <<'MAIL'

--b-corrupt-and-good
Content-Type: application/tlsrpt+gzip
Content-Disposition: attachment; filename="corrupt.example!example.org!1709510400!1709596799!good.json.gz"
Content-Transfer-Encoding: base64

MAIL
	gzip -n -c corrupt-part.json | base64 -w 76
	cat <<'MAIL'

--b-corrupt-and-good--
MAIL
} >corrupt-and-good.eml

# mail that is not a report at all
cat >cron.eml <<'MAIL'
Return-Path: <root@host1.example.org>
From: root@host1.example.org (Cron Daemon)
To: tlsrpt@example.org
Subject: Cron <root@host1> test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit
Message-ID: <20240302063501.9F1A2C1234@host1.example.org>
Date: Sat,  2 Mar 2024 06:35:01 +0000 (UTC)

/etc/cron.daily/logrotate:
error: skipping "/var/log/app.log" because parent directory has insecure permissions
MAIL

# another one, for the truncation test
cat >cron-long.eml <<'MAIL'
From: root@host2.example.org (Cron Daemon)
To: tlsrpt@example.org
Subject: Cron <root@host2> /usr/local/bin/backup --all
Message-ID: <20240302070001.1B2C3D4E5F@host2.example.org>
Date: Sat,  2 Mar 2024 07:00:01 +0000 (UTC)

backup: 1287 files, 3.2 GiB, 14m02s
backup: warning: /srv/data/tmp changed while being read
backup: warning: /srv/data/cache changed while being read
backup: done.
MAIL
