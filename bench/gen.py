#!/usr/bin/env python3
"""gen.py - TLS-RPT report mails in realistic shapes, for bench/run.sh.

  gen.py mbox N FILE      an mbox of N report mails: 1-3 policies each,
                          0-20 failure rows per policy, gzip attachments
  gen.py mails N DIR      N single mails, DIR/1.eml ..., each a typical
                          one-policy report (Google-like, 0-2 failure rows)
  gen.py big ROWS FILE    one mail whose one policy has ROWS failure rows

Deterministic (fixed seed): the same arguments give the same bytes.
"""
import base64
import gzip
import json
import random
import sys

ORGS = [
    ("Google Inc.", "google.com", "smtp-tls-reporting@google.com"),
    ("Microsoft Corporation", "microsoft.com", "tlsrpt-noreply@microsoft.com"),
    ("Mail.Ru", "mail.ru", "tlsrpt@mail.ru"),
    ("Yahoo", "yahoo.com", "tlsrpt@yahoo.com"),
    ("comcast.net", "comcast.net", None),
]
RESULTS = ["certificate-expired", "certificate-host-mismatch", "starttls-not-supported",
           "validation-failure", "sts-policy-fetch-error", "certificate-not-trusted"]


def policy(rng, domain, nfail):
    kind = rng.choice(["sts", "sts", "tlsa", "no-policy-found"])
    p = {"policy-type": kind, "policy-domain": domain}
    if kind == "sts":
        p["policy-string"] = ["version: STSv1", "mode: enforce", "mx: mx1.%s" % domain,
                              "mx: mx2.%s" % domain, "max_age: 604800"]
        p["mx-host"] = ["mx1.%s" % domain, "mx2.%s" % domain]
    elif kind == "tlsa":
        p["policy-string"] = ["3 1 1 %064X" % rng.getrandbits(256)]
    failures = []
    for _ in range(nfail):
        failures.append({
            "result-type": rng.choice(RESULTS),
            "sending-mta-ip": "198.51.100.%d" % rng.randrange(1, 255),
            "receiving-mx-hostname": "mx%d.%s" % (rng.randrange(1, 3), domain),
            "receiving-ip": "192.0.2.%d" % rng.randrange(1, 255),
            "failed-session-count": rng.randrange(1, 50),
            "additional-information": "https://%s/tlsrpt/%d" % (domain, rng.randrange(10**6)),
        })
    out = {"policy": p,
           "summary": {"total-successful-session-count": rng.randrange(0, 100000),
                       "total-failure-session-count": sum(f["failed-session-count"] for f in failures)}}
    if failures:
        out["failure-details"] = failures
    return out


def report(rng, n, npol, nfail_fn):
    org, sub, contact = ORGS[n % len(ORGS)]
    day = n // len(ORGS)
    start = 1672531200 + 86400 * (day % 3650)
    domain = "example%d.org" % (n % 97)
    r = {
        "organization-name": org,
        "date-range": {"start-datetime": fmt(start), "end-datetime": fmt(start + 86399)},
        "contact-info": contact,
        "report-id": "%s_%d_%s" % (fmt(start), n, domain),
        "policies": [policy(rng, domain if i == 0 else "mail.%s" % domain, nfail_fn()) for i in range(npol)],
    }
    return r, org, sub, domain, start


def fmt(t):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def mail(r, org, sub, domain, start, n, from_line):
    body = gzip.compress(json.dumps(r).encode(), mtime=0)
    b64 = base64.encodebytes(body).decode()
    fname = "%s!%s!%d!%d.json.gz" % (sub, domain, start, start + 86399)
    out = []
    if from_line:
        out.append("From noreply-smtp-tls-reporting@%s  Mon Jan  1 09:00:00 2024\n" % sub)
    out.append(
        "Return-Path: <noreply-smtp-tls-reporting@%(sub)s>\n"
        "From: %(org)s <noreply-smtp-tls-reporting@%(sub)s>\n"
        "To: tls-reports@%(domain)s\n"
        "Subject: Report Domain: %(domain)s Submitter: %(sub)s Report-ID: <%(n)d>\n"
        "Date: Mon, 01 Jan 2024 09:00:00 +0000\n"
        "Message-ID: <bench-%(n)d@%(sub)s>\n"
        "MIME-Version: 1.0\n"
        "TLS-Report-Domain: %(domain)s\n"
        "TLS-Report-Submitter: %(sub)s\n"
        "Content-Type: multipart/report; report-type=tlsrpt; boundary=\"b%(n)d\"\n"
        "\n"
        "--b%(n)d\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "\n"
        "This is an aggregate TLS report from %(org)s\n"
        "\n"
        "--b%(n)d\n"
        "Content-Type: application/tlsrpt+gzip; name=\"%(fname)s\"\n"
        "Content-Disposition: attachment; filename=\"%(fname)s\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" % dict(sub=sub, org=org, domain=domain, n=n, fname=fname))
    out.append(b64)
    out.append("--b%d--\n" % n)
    return "".join(out)


def main():
    what, count, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(8460)
    if what == "mbox":
        with open(dest, "w") as f:
            for n in range(count):
                r = report(rng, n, rng.randint(1, 3), lambda: rng.randint(0, 20))
                f.write(mail(*r, n, True))
                f.write("\n")
    elif what == "mails":
        for n in range(count):
            r = report(rng, 1000000 + n, 1, lambda: rng.randint(0, 2))
            with open("%s/%d.eml" % (dest, n + 1), "w") as f:
                f.write(mail(*r, 1000000 + n, False))
    elif what == "big":
        r = report(rng, 2000000, 1, lambda: count)
        with open(dest, "w") as f:
            f.write(mail(*r, 2000000, False))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
