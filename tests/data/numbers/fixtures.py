#!/usr/bin/env python3
"""fixtures.py OUTDIR NOW: the reports of numbers-t.sh and grafana-t.sh's
second database, one JSON file each in OUTDIR, and OUTDIR/expected.json: the
figures the views must show, computed here from the fixtures by the rules of
doc/views.md ("Counting"), not read from any view.

Day K is the UTC date K days before NOW (epoch seconds). Every report is
received at its date_end + 1 s (the test sets received_at so).

  Microsoft Corporation -> dual.example, days 1..3, an sts and a tlsa policy
      each (the same sessions twice): day 1 2+0 under both; day 2 sts 10+0,
      tlsa 8+2 (they disagree); day 3 5+1 under both, with the same failure row
      under both policies.
  Google Inc. -> " Dual.Example. " day 2, mx-host "MX.Dual.Example.", a
      failure " Certificate-Expired " at "MX.Dual.Example." (normalized when
      stored).
  Mox -> mox.example day 1 (sts, mx-host mail.mox.example), and a host report
      for mail.mox.example (tlsa) the same day, the same 20 sessions.
"""
import datetime
import json
import os
import sys

outdir, now = sys.argv[1], int(sys.argv[2])


def day(k):
    return (datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date()
            - datetime.timedelta(days=k)).isoformat()


def fail(rt, sip, mx, rip, n):
    return {"result-type": rt, "sending-mta-ip": sip, "receiving-mx-hostname": mx,
            "receiving-ip": rip, "failed-session-count": n}


def sts(domain, ok, failed, mx=None, failures=()):
    p = {"policy": {"policy-type": "sts", "policy-domain": domain,
                    "policy-string": ["version: STSv1", "mode: enforce", "mx: *." + domain.strip(" .").lower(),
                                      "max_age: 86400"]},
         "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed}}
    if mx is not None:
        p["policy"]["mx-host"] = mx
    if failures:
        p["failure-details"] = list(failures)
    return p


def tlsa(domain, ok, failed, failures=()):
    p = {"policy": {"policy-type": "tlsa", "policy-domain": domain,
                    "policy-string": ['["3 1 1 AAAA0000AAAA0000","2 0 1 BBBB1111BBBB1111"]']},
         "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed}}
    if failures:
        p["failure-details"] = list(failures)
    return p


ms3 = fail("validation-failure", "40.107.0.2", "mx.dual.example", "198.51.100.1", 1)
reports = [
    ("Microsoft Corporation", "ms-1", 1, [sts("dual.example", 2, 0), tlsa("dual.example", 2, 0)]),
    ("Microsoft Corporation", "ms-2", 2, [sts("dual.example", 10, 0), tlsa("dual.example", 8, 2, [
        fail("tlsa-invalid", "40.107.0.1", "mx.dual.example", "198.51.100.1", 2)])]),
    ("Microsoft Corporation", "ms-3", 3, [sts("dual.example", 5, 1, failures=[ms3]),
                                          tlsa("dual.example", 5, 1, [dict(ms3)])]),
    ("Google Inc.", "g-2", 2, [sts(" Dual.Example. ", 100, 3, ["MX.Dual.Example."], [
        fail(" Certificate-Expired ", "209.85.220.41", "MX.Dual.Example.", "198.51.100.1", 3)])]),
    ("Mox", "mox-d1", 1, [sts("mox.example", 20, 0, ["mail.mox.example"])]),
    ("Mox", "mox-h1", 1, [tlsa("mail.mox.example", 20, 0)]),
]

os.makedirs(outdir, exist_ok=True)
for org, rid, k, pols in reports:
    with open(os.path.join(outdir, rid + ".json"), "w") as f:
        json.dump({"organization-name": org, "report-id": rid, "contact-info": "tls@reporter.example",
                   "date-range": {"start-datetime": day(k) + "T00:00:00Z",
                                  "end-datetime": day(k) + "T23:59:59Z"},
                   "policies": pols}, f)


# ---- the rules, independently of the SQL
def name(s):
    s = "".join(c for c in s if c not in " \t\n\r\f\v")
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s).rstrip(".") or None


mx_of = {}  # MX name -> the policy domains naming it
for _, _, _, pols in reports:
    for p in pols:
        d = name(p["policy"]["policy-domain"])
        for m in p["policy"].get("mx-host", []):
            mx_of.setdefault(name(m), set()).add(d)
        for fd in p.get("failure-details", []):
            mx_of.setdefault(name(fd["receiving-mx-hostname"]), set()).add(d)


def host(p):
    d = name(p["policy"]["policy-domain"])
    return p["policy"]["policy-type"] != "sts" and bool(mx_of.get(d, set()) - {d})


rd = []  # one entry per report x policy domain
for org, rid, k, pols in reports:
    by = {}
    for p in pols:
        by.setdefault(name(p["policy"]["policy-domain"]), []).append(p)
    for d, ps in by.items():
        s = [p["summary"] for p in ps]
        sessions = max(x["total-successful-session-count"] + x["total-failure-session-count"] for x in s)
        failed = max(x["total-failure-session-count"] for x in s)
        rd.append({"org": org, "report": rid, "k": k, "domain": d, "sessions": sessions, "failed": failed,
                   "successful": sessions - failed, "host": all(host(p) for p in ps),
                   "types": sorted({p["policy"]["policy-type"] for p in ps})})

exp = {"daily": {}, "per_type": {}, "domain": {}, "all_days": {}, "failures": {}, "host": {}}
for x in rd:
    key = "%s|%s" % (day(x["k"]), x["domain"])
    e = exp["daily"].setdefault(key, {"successful": 0, "failed": 0, "sessions": 0, "reports": 0})
    for f in ("successful", "failed", "sessions"):
        e[f] += x[f]
    e["reports"] += 1
    exp["host"][x["domain"]] = x["host"]
    d = exp["domain"].setdefault(x["domain"], {"successful": 0, "failed": 0, "sessions": 0, "reports": 0,
                                               "reporters": set()})
    for f in ("successful", "failed", "sessions"):
        d[f] += x[f]
    d["reports"] += 1
    d["reporters"].add(x["org"])
    if not x["host"]:
        a = exp["all_days"].setdefault(day(x["k"]), {"successful": 0, "failed": 0})
        a["successful"] += x["successful"]
        a["failed"] += x["failed"]
for d in exp["domain"].values():
    d["reporters"] = sorted(d["reporters"])
    d["rate"] = "%.4f" % (d["failed"] / d["sessions"])
    d["pct"] = "%.1f" % (100.0 * d["failed"] / d["sessions"])
for org, rid, k, pols in reports:
    for p in pols:
        key = "%s|%s|%s" % (day(k), name(p["policy"]["policy-domain"]), p["policy"]["policy-type"])
        s = p["summary"]
        exp["per_type"][key] = (exp["per_type"].get(key, 0)
                                + s["total-successful-session-count"] + s["total-failure-session-count"])
# failure rows: one per report x domain x (type, IPs, MX), the largest count
seen = {}
for org, rid, k, pols in reports:
    for p in pols:
        d = name(p["policy"]["policy-domain"])
        for fd in p.get("failure-details", []):
            rt = fd["result-type"].strip().lower()
            key = (rid, d, rt, fd["sending-mta-ip"], name(fd["receiving-mx-hostname"]), fd["receiving-ip"])
            seen[key] = max(seen.get(key, 0), fd["failed-session-count"])
for (rid, d, rt, sip, mx, rip), n in seen.items():
    k = [r[2] for r in reports if r[1] == rid][0]
    key = "%s|%s|%s|%s" % (day(k), d, rt, mx)
    exp["failures"][key] = exp["failures"].get(key, 0) + n

with open(os.path.join(outdir, "expected.json"), "w") as f:
    json.dump(exp, f, indent=1, sort_keys=True)
