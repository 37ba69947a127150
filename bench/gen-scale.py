#!/usr/bin/env python3
"""gen-scale.py - a hosting operator's year of TLS-RPT reports, for bench/scale.sh.

  gen-scale.py SCALE END-DATE FILE.mbox [DAYS]

END-DATE (YYYY-MM-DD, UTC) is the last day reported; the year is the 365 days
up to it. DAYS (default 365) keeps only the last DAYS days of that year: at
SCALE 10, 100 days give the 30-day windows and the alerts' 90 days of 10,000
domains for the load of about 3.2M reports instead of 11.7M. At SCALE 1: 1,000 policy domains, 6 reporters, about 1.17M reports,
1.53M policies and 230k failure rows. SCALE multiplies the number of domains
(0.1: 100 domains, a tenth of everything). Also written, to FILE.received: one
line per message, "message-id<TAB>seconds after date_end it arrived", which
scale.sh applies to received_at after the load (a backfill stores them all
"now"), so that late reports exist. Deterministic: the same arguments give
the same bytes.

Shapes: Google-like (sts, or no-policy-found for the domains without MTA-STS,
every day), Microsoft-like (one report listing the domain under an sts and a
tlsa policy, the TLSA records as one element holding a JSON array), Yahoo-like
(sts, and tlsa for the DANE domains: sts+tlsa as well), Mail.ru-like,
comcast-like, and a small reporter without contact-info that reports on
every other day or so. About 5 % of the domains have trouble on
some days (failure rows, mostly from one MX); a few domains change their
MTA-STS policy (testing -> enforce, max_age) during the year; about 0.2 % of
the messages are sent twice (the backfill stores them once); reports arrive
up to three days late.
"""
import base64
import datetime
import gzip
import hashlib
import json
import random
import sys

REPORTERS = [
    # name, submitter domain, contact, share of the domains it reports on
    ("Google Inc.", "google.com", "smtp-tls-reporting@google.com", 1.0),
    ("Microsoft Corporation", "microsoft.com", "tlsrpt-noreply@microsoft.com", 0.8),
    ("Yahoo", "yahoo.com", "tlsrpt@yahoo.com", 0.5),
    ("Mail.Ru", "mail.ru", "tlsrpt@mail.ru", 0.3),
    ("comcast.net", "comcast.net", "tlsrpt@comcast.net", 0.3),
    ("Small Reporter", "small.example", None, 0.3),
]
RESULTS = ["certificate-expired", "certificate-host-mismatch", "starttls-not-supported",
           "validation-failure", "sts-policy-fetch-error", "certificate-not-trusted",
           "tlsa-invalid", "dnssec-invalid"]


def fmt(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Domain:
    def __init__(self, rng, i):
        self.name = "customer%05d.example" % i
        self.mx = ["mx%d.hosting.example" % (1 + i % 7), "mx%d.hosting.example" % (1 + (i + 3) % 7)]
        self.sts = rng.random() < 0.8
        self.dane = rng.random() < 0.3
        self.trouble = rng.random() < 0.05
        self.reporters = [k for k, r in enumerate(REPORTERS) if rng.random() < r[3]] or [0]
        # a policy change: testing until change_day, then enforce (and a longer max_age)
        self.change_day = rng.randrange(365) if rng.random() < 0.1 else None
        self.ips = ["203.0.113.%d" % (1 + (i * 7 + k) % 250) for k in range(2)]

    def sts_policy(self, day):
        testing = self.change_day is not None and day < self.change_day
        return ["version: STSv1", "mode: %s" % ("testing" if testing else "enforce")] + \
               ["mx: %s" % m for m in self.mx] + ["max_age: %d" % (86400 if testing else 604800)]


def failures(rng, dom, ptype, day):
    p = 0.6 if dom.trouble and (day // 20) % 2 == 0 else 0.08
    if rng.random() >= p:
        return []
    out = []
    for _ in range(rng.randint(1, 3)):
        rt = rng.choice(RESULTS[:6] if ptype == "sts" else RESULTS)
        mx = dom.mx[0] if rng.random() < 0.8 else dom.mx[1]
        out.append({
            "result-type": rt,
            "sending-mta-ip": "198.51.%d.%d" % (rng.randrange(100, 104), rng.randrange(1, 255)),
            "receiving-mx-hostname": mx,
            "receiving-ip": dom.ips[dom.mx.index(mx)],
            "failed-session-count": rng.randrange(1, 40),
        })
    return out


def policy(rng, dom, ptype, day, reporter):
    p = {"policy-type": ptype, "policy-domain": dom.name}
    if ptype == "sts":
        p["policy-string"] = dom.sts_policy(day)
        p["mx-host"] = list(dom.mx)
    elif ptype == "tlsa":
        recs = ["3 1 1 " + hashlib.sha256(("%s %d" % (dom.name, k)).encode()).hexdigest().upper()
                for k in range(2)]
        p["policy-string"] = [json.dumps(recs)] if reporter == 1 else recs
        p["mx-host"] = list(dom.mx)
    fl = failures(rng, dom, ptype, day) if ptype != "no-policy-found" else []
    out = {"policy": p,
           "summary": {"total-successful-session-count": rng.randrange(5, 3000),
                       "total-failure-session-count": sum(f["failed-session-count"] for f in fl)}}
    if fl:
        out["failure-details"] = fl
    return out


def mail(r, sub, org, domain, n, start):
    body = gzip.compress(json.dumps(r, separators=(",", ":")).encode(), compresslevel=1, mtime=0)
    fname = "%s!%s!%d!%d.json.gz" % (sub, domain, start, start + 86399)
    return ("From noreply@%(sub)s  Mon Jan  1 09:00:00 2024\n"
            "From: %(org)s <noreply@%(sub)s>\n"
            "To: tls-reports@%(domain)s\n"
            "Subject: Report Domain: %(domain)s Submitter: %(sub)s\n"
            "Message-ID: <scale-%(n)d@%(sub)s>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=tlsrpt; boundary=\"b\"\n"
            "\n"
            "--b\n"
            "Content-Type: application/tlsrpt+gzip; name=\"%(fname)s\"\n"
            "Content-Transfer-Encoding: base64\n"
            "\n%(b64)s--b--\n\n") % dict(sub=sub, org=org, domain=domain, n=n, fname=fname,
                                       b64=base64.encodebytes(body).decode())


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    days = int(sys.argv[4]) if len(sys.argv) == 5 else 365
    scale = float(sys.argv[1])
    end = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    first = int(end.timestamp()) - 364 * 86400
    rng = random.Random(8460)
    doms = [Domain(rng, i) for i in range(max(1, round(1000 * scale)))]
    n = 0
    with open(sys.argv[3], "w") as out, open(sys.argv[3] + ".received", "w") as rec:
        for day in range(365):
            start = first + 86400 * day
            if day < 365 - days:
                continue
            for k, (org, sub, contact, _) in enumerate(REPORTERS):
                for dom in doms:
                    if k not in dom.reporters:
                        continue
                    if k == 5 and rng.random() < 0.5:  # the small reporter skips days
                        continue
                    if k == 0:
                        types = ["sts"] if dom.sts else ["no-policy-found"]
                    elif k == 1 or (k == 2 and dom.dane):
                        types = (["sts"] if dom.sts else ["no-policy-found"]) + ["tlsa"]
                    else:
                        types = ["sts"] if dom.sts else ["no-policy-found"]
                    r = {"organization-name": org,
                         "date-range": {"start-datetime": fmt(start), "end-datetime": fmt(start + 86399)},
                         "contact-info": contact,
                         "report-id": "%s-%d-%s" % (sub, day, dom.name),
                         "policies": [policy(rng, dom, t, day, k) for t in types]}
                    if k == 5:
                        del r["contact-info"]
                    n += 1
                    m = mail(r, sub, org, dom.name, n, start)
                    late = rng.choice([1, 60, 3600, 3600 * 6, 3600 * 12]) if rng.random() < 0.97 \
                        else rng.randrange(86400, 3 * 86400)
                    out.write(m)
                    rec.write("scale-%d@%s\t%d\n" % (n, sub, late))
                    if rng.random() < 0.002:  # sent twice
                        out.write(m)


if __name__ == "__main__":
    main()
