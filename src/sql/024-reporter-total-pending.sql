-- tlsrpt-ingest schema version 24: reporter_daily_total with reports pending
-- (issue 14 section 3: the reports-per-day panel over every domain).
--
-- A day with a report pending was every reporter's rows of that day in
-- reporter_daily, grouped: at a million reports, with 23 reports pending on
-- 4 days, the reports-per-day panel over every domain took 57.7 ms (23.0
-- after). A report is counted once a day however many domains it names,
-- and the pending reports are not among the rolled-up ones
-- (a shadowed copy marks its day dirty): a (day, reporter) of a pending
-- report is its rolled-up total plus the pending reports' count. The
-- (day, reporter) pairs are left out of the rolled-up rows by NOT IN, a
-- hashed set built once a query (NOT EXISTS is an anti join the planner may
-- give the outer row's values, and compute the pending reports again for each
-- row of a correlated subquery). The same rows (tests/rollup-t.sh). The
-- per-domain views (failure_daily, reporter_daily, the sts views) keep
-- computing a pending day whole: the same treatment (migration 23's pairs)
-- tripled their planning for one domain (failure_daily: 2.5 -> 6.7 ms).
CREATE VIEW tlsrpt.rollup_pending_reporter_day AS
SELECT DISTINCT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day, r.organization_name
FROM tlsrpt.rollup_pending r;

CREATE OR REPLACE VIEW tlsrpt.reporter_daily_total AS
-- the rolled-up totals of every day and reporter with nothing pending
SELECT t.day, t.day_start, t.organization_name, t.reports
FROM tlsrpt.rollup_reporter_daily_total t
WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
  AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
  AND (t.organization_name IS NULL
       OR (t.day, t.organization_name) NOT IN (SELECT c.day, c.organization_name FROM tlsrpt.rollup_pending_reporter_day c
                                               WHERE c.organization_name IS NOT NULL))
  AND NOT (t.organization_name IS NULL
           AND t.day IN (SELECT c.day FROM tlsrpt.rollup_pending_reporter_day c WHERE c.organization_name IS NULL))
UNION ALL
-- a (day, reporter) with new reports: the rolled-up total and the new reports
SELECT g.day, g.day::timestamp AT TIME ZONE 'UTC', g.organization_name, sum(g.reports)::bigint
FROM (SELECT t.day, t.organization_name, t.reports
      FROM tlsrpt.rollup_reporter_daily_total t
      WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
        AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
        AND ((t.day, t.organization_name) IN (SELECT c.day, c.organization_name FROM tlsrpt.rollup_pending_reporter_day c)
             OR (t.organization_name IS NULL
                 AND t.day IN (SELECT c.day FROM tlsrpt.rollup_pending_reporter_day c WHERE c.organization_name IS NULL)))
      UNION ALL
      SELECT n.day, n.organization_name,
             sum(n.reports - cardinality(n.shared)) + (SELECT count(DISTINCT i) FROM unnest(tlsrpt.array_concat(n.shared)) AS i)
      FROM tlsrpt.reporter_daily_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                         (SELECT tlsrpt.authenticated_only())) AS n
      WHERE n.policy_domain IS NOT NULL
        AND n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
        AND EXISTS (SELECT FROM tlsrpt.rollup_pending)
      GROUP BY n.day, n.organization_name) g
GROUP BY g.day, g.organization_name
UNION ALL
-- a day a purge or a shadowed copy touched: reporter_daily's rows of it, from the tables
SELECT d.day, d.day_start, d.organization_name,
       (sum(d.reports - cardinality(d.shared))
        + (SELECT count(DISTINCT i) FROM unnest(tlsrpt.array_concat(d.shared)) AS i))::bigint
FROM tlsrpt.reporter_daily d
WHERE d.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day)) AND d.policy_domain IS NOT NULL
GROUP BY d.day, d.day_start, d.organization_name;
