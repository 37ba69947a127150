#!/usr/bin/env python3
"""gen.py - TLS-RPT report mails in realistic shapes, for bench/run.sh.

  gen.py mbox N FILE      an mbox of N report mails: 1-3 policies each,
                          0-20 failure rows per policy, gzip attachments
  gen.py mails N DIR      N single mails, DIR/1.eml ..., each a typical
                          one-policy report (Google-like, 0-2 failure rows),
                          and DIR/1.sql ...: the same rows as one INSERT
                          statement (CTEs: report, policies, failures) into
                          the floor.* copies of the tables (bench/run.sh)
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


def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "ARRAY[%s]::text[]" % ",".join(lit(x) for x in v) if v else "'{}'::text[]"
    return "'" + str(v).replace("'", "''") + "'"


def floor_sql(r, org, sub, domain, start, n):
    """One statement storing what tlsrpt-ingest stores for this report."""
    fname = "%s!%s!%d!%d.json.gz" % (sub, domain, start, start + 86399)
    dr = r["date-range"]
    rep = ("WITH r AS (INSERT INTO floor.report (organization_name, contact_info, report_id, date_start,"
           " date_end, report_domain, submitter, message_id, filename, source, notes, raw)"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'mail', '{}', %s)"
           " ON CONFLICT DO NOTHING RETURNING id)" % (
               lit(org), lit(r.get("contact-info")), lit(r["report-id"]), lit(dr["start-datetime"]),
               lit(dr["end-datetime"]), lit(domain), lit(sub), lit("bench-%d@%s" % (n, sub)), lit(fname),
               lit(json.dumps(r))))
    parts = [rep]
    for i, pol in enumerate(r["policies"]):
        p = pol["policy"]
        parts.append("p%d AS (INSERT INTO floor.policy (report, policy_type, policy_domain, policy_string,"
                     " mx_host, total_successful_session_count, total_failure_session_count)"
                     " SELECT r.id, %s, %s, %s, %s, %d, %d FROM r RETURNING id)" % (
                         i, lit(p["policy-type"]), lit(p["policy-domain"]), lit(p.get("policy-string", [])),
                         lit(p.get("mx-host", [])), pol["summary"]["total-successful-session-count"],
                         pol["summary"]["total-failure-session-count"]))
        rows = ["(%s, %s::inet, %s, %s::inet, %d, %s)" % (
                    lit(f["result-type"]), lit(f["sending-mta-ip"]), lit(f["receiving-mx-hostname"]),
                    lit(f["receiving-ip"]), f["failed-session-count"], lit(f["additional-information"]))
                for f in pol.get("failure-details", [])]
        if rows:
            parts.append("f%d AS (INSERT INTO floor.failure (policy, result_type, sending_mta_ip,"
                         " receiving_mx_hostname, receiving_ip, failed_session_count, additional_information)"
                         " SELECT p%d.id, v.* FROM p%d, (VALUES %s) AS v)" % (i, i, i, ", ".join(rows)))
    return ",\n".join(parts) + "\nSELECT id FROM r;\n"


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
            with open("%s/%d.sql" % (dest, n + 1), "w") as f:
                f.write(floor_sql(*r, 1000000 + n))
    elif what == "big":
        r = report(rng, 2000000, 1, lambda: count)
        with open(dest, "w") as f:
            f.write(mail(*r, 2000000, False))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
