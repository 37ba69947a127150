-- tlsrpt-ingest schema version 23: domain_period() with reports pending at
-- ten times the scale (issue 14 section 3: <= 250 ms at 10,000 domains).
--
-- For more than 100 domains, domain_period() (migration 19) takes the
-- rolled-up sums from rollup_domain_running, and for a day with something
-- pending it takes daily_domain's rows of that day instead, for every domain.
-- daily_domain computes such a day again from its rolled-up rows and the
-- pending reports' rows: at 10,000 domains, 23 reports pending on 4 days made
-- 40,000 rows computed, and 40,000 running rows taken back, for 23 domains
-- that changed (the period table: 751 ms, 154 with nothing pending). A day a
-- purge or a shadowed copy touched (rollup_dirty_day) is still taken whole;
-- on a day with new reports only, only the domains they name: a domain that
-- no pending report names has the rolled-up figures there. daily_domain
-- itself the same way (below).

-- (day, policy domain) of the reports pending (stored since the last
-- refresh()): where their rows in daily_domain change.
CREATE VIEW tlsrpt.rollup_pending_pair AS
SELECT DISTINCT x.day, x.day::timestamp AT TIME ZONE 'UTC' AS day_start, p.policy_domain
FROM tlsrpt.rollup_pending r
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) x
JOIN tlsrpt.policy p ON p.report = r.id;


CREATE OR REPLACE FUNCTION tlsrpt.domain_period(since timestamptz, until timestamptz, domains text[])
RETURNS TABLE (policy_domain text, sessions numeric, failed numeric, days bigint, host_report boolean)
LANGUAGE plpgsql STABLE
-- the session's plans (Grafana's connections are pooled), not compiled (the
-- estimate of every domain's rows passes jit_above_cost; compiling took 50 ms)
SET plan_cache_mode = force_generic_plan SET jit = off
AS $fn$
DECLARE
    scope boolean := tlsrpt.authenticated_only();
    hosts text[];
    dirty date[];
BEGIN
    IF cardinality(domains) <= 100 THEN
        RETURN QUERY
        SELECT v.policy_domain, sum(v.sessions), sum(v.failed), count(DISTINCT v.day), bool_or(v.host_report)
        FROM tlsrpt.daily_domain v
        WHERE v.day_start BETWEEN since AND until AND v.policy_domain = ANY (domains)
        GROUP BY v.policy_domain;
        RETURN;
    END IF;
    -- the host domains selected: daily_domain's rows (split by policy type)
    hosts := ARRAY(SELECT DISTINCT h FROM tlsrpt.host_domain_now() AS h WHERE h = ANY (domains));
    IF cardinality(hosts) > 0 THEN
        RETURN QUERY
        SELECT v.policy_domain, sum(v.sessions), sum(v.failed), count(DISTINCT v.day), bool_or(v.host_report)
        FROM tlsrpt.daily_domain v
        WHERE v.day_start BETWEEN since AND until AND v.policy_domain = ANY (hosts)
        GROUP BY v.policy_domain;
    END IF;
    -- the others: daily_domain reads rollup_daily_domain_total for each day
    -- and domain but a day a purge touched, and the domains the pending
    -- reports name on their days
    dirty := ARRAY(SELECT d.day FROM tlsrpt.rollup_dirty_day d
                   WHERE d.day::timestamp AT TIME ZONE 'UTC' BETWEEN since AND until);
    RETURN QUERY
    WITH picked AS (
        SELECT DISTINCT d AS domain FROM unnest(domains) AS d
        WHERE d IS NOT NULL AND d <> ALL (hosts)
    ), changed AS (
        -- (day, domain) of the pending reports, in the window, on a day no purge touched
        SELECT c.day, c.day_start, c.policy_domain
        FROM tlsrpt.rollup_pending_pair c
        WHERE c.policy_domain IS NOT NULL AND c.day <> ALL (dirty) AND c.day_start BETWEEN since AND until
    ), parts AS (
        -- the rolled-up sums: the last row up to until, less what came
        -- before the first from since
        SELECT p.domain, hi.run_sessions - lo.run_sessions + lo.sessions AS sessions,
               hi.run_failed - lo.run_failed + lo.failed AS failed, hi.run_days - lo.run_days + 1 AS days
        FROM picked p
        CROSS JOIN LATERAL (
            SELECT x.day_start, x.run_sessions, x.run_failed, x.run_days FROM tlsrpt.rollup_domain_running x
            WHERE x.auth_only = scope AND x.policy_domain = p.domain AND x.day_start <= until
            ORDER BY x.day_start DESC LIMIT 1) hi
        CROSS JOIN LATERAL (
            SELECT x.day_start, x.sessions, x.failed, x.run_sessions, x.run_failed, x.run_days
            FROM tlsrpt.rollup_domain_running x
            WHERE x.auth_only = scope AND x.policy_domain = p.domain AND x.day_start >= since
            ORDER BY x.day_start LIMIT 1) lo
        -- (no row in the window: the two rows cross, and would add nothing)
        WHERE lo.day_start <= hi.day_start
        UNION ALL
        -- the rolled-up rows of a day a purge touched ...
        SELECT t.policy_domain, -t.sessions, -t.failed, -1
        FROM tlsrpt.rollup_domain_running t
        WHERE t.day = ANY (dirty) AND t.auth_only = scope
        UNION ALL
        -- ... and of a domain a pending report names on its day ...
        SELECT t.policy_domain, -t.sessions, -t.failed, -1
        FROM changed c
        JOIN tlsrpt.rollup_domain_running t
          ON t.auth_only = scope AND t.policy_domain = c.policy_domain AND t.day_start = c.day_start
        UNION ALL
        -- ... are not what daily_domain reads for them
        SELECT v.policy_domain, v.sessions, v.failed, 1
        FROM tlsrpt.daily_domain v
        WHERE v.day_start = ANY (ARRAY(SELECT d::timestamp AT TIME ZONE 'UTC' FROM unnest(dirty) AS d))
          AND cardinality(dirty) > 0
        UNION ALL
        SELECT v.policy_domain, v.sessions, v.failed, 1
        FROM tlsrpt.daily_domain v
        WHERE v.day_start = ANY (ARRAY(SELECT DISTINCT c.day_start FROM changed c))
          AND v.policy_domain = ANY (ARRAY(SELECT DISTINCT c.policy_domain FROM changed c))
          AND (v.day_start, v.policy_domain) IN (SELECT c.day_start, c.policy_domain FROM changed c)
    )
    -- (the domain picked last: a generic plan sees an array of a few)
    SELECT r.domain, sum(r.sessions), sum(r.failed), sum(r.days)::bigint, false
    FROM parts r
    WHERE r.domain IN (SELECT domain FROM picked)
    GROUP BY r.domain
    HAVING sum(r.days) > 0;
END
$fn$;

-- daily_domain: a day with new reports only was computed again
-- for every domain (its rolled-up rows and the new reports' rows, grouped);
-- now only for the (day, policy domain) pairs the new reports name. A day a
-- purge or a shadowed copy touched is computed from the tables, whole, as
-- before. The rows are the same (tests/rollup-t.sh: daily_domain_plain).
CREATE OR REPLACE VIEW tlsrpt.daily_domain AS
-- the days rolled up, a domain that is no host domain: its one row
SELECT t.day, t.day_start, t.policy_domain, t.successful, t.failed, t.sessions,
       round(t.failed / nullif(t.sessions, 0), 4) AS failure_rate,
       cardinality(t.reporter_names)::bigint AS reporters, t.reporter_names, t.reports,
       false AS host_report
FROM tlsrpt.rollup_daily_domain_total t
WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
  AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
  AND NOT EXISTS (SELECT FROM tlsrpt.rollup_pending_pair c
                  WHERE c.day_start = t.day_start AND c.policy_domain = t.policy_domain)
  AND NOT (t.policy_domain IS NULL
           AND t.day IN (SELECT c.day FROM tlsrpt.rollup_pending_pair c WHERE c.policy_domain IS NULL))
  AND NOT coalesce(t.policy_domain IN (SELECT tlsrpt.host_domain_now()), false)
UNION ALL
-- the days rolled up, a host domain: its sts reports, and its host reports apart
SELECT d.day, d.day_start, d.policy_domain, d.successful, d.failed, d.sessions,
       round(d.failed / nullif(d.sessions, 0), 4),
       cardinality(d.reporter_names)::bigint, d.reporter_names, d.reports,
       NOT d.has_sts
FROM tlsrpt.rollup_daily_domain d
WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
  AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
  AND NOT EXISTS (SELECT FROM tlsrpt.rollup_pending_pair c
                  WHERE c.day_start = d.day_start AND c.policy_domain = d.policy_domain)
  AND d.policy_domain IN (SELECT tlsrpt.host_domain_now())  -- a join from the few host domains
UNION ALL
-- a day a purge touched, and a (day, domain) with something pending, grouped as before
SELECT x.day, x.day_start, x.policy_domain,
       sum(x.successful), sum(x.failed), sum(x.sessions),
       round(sum(x.failed) / nullif(sum(x.sessions), 0), 4),
       (SELECT count(DISTINCT o) FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o),
       coalesce((SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o), '{}'),
       sum(x.reports)::bigint,
       x.host_report
FROM (SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC' AS day_start, y.policy_domain, y.successful, y.failed,
             y.sessions, y.reporter_names, y.reports,
             coalesce(NOT y.has_sts AND y.policy_domain IN (SELECT tlsrpt.host_domain_now()), false) AS host_report
      FROM (-- a day a purge or a shadowed copy touched: from the tables
            SELECT * FROM tlsrpt.daily_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                                   (SELECT tlsrpt.authenticated_only()))
            WHERE EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            -- a (day, domain) with new reports: its rollup rows as they are ...
            SELECT d.day, d.policy_domain, d.has_sts, d.successful, d.failed, d.sessions, d.reporter_names, d.reports
            FROM tlsrpt.rollup_pending_pair c
            JOIN tlsrpt.rollup_daily_domain d ON d.day_start = c.day_start AND d.policy_domain = c.policy_domain
            WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
              AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            SELECT d.day, d.policy_domain, d.has_sts, d.successful, d.failed, d.sessions, d.reporter_names, d.reports
            FROM tlsrpt.rollup_daily_domain d
            WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
              AND d.policy_domain IS NULL
              AND d.day IN (SELECT c.day FROM tlsrpt.rollup_pending_pair c WHERE c.policy_domain IS NULL)
              AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            -- ... and the new reports' rows
            SELECT n.* FROM tlsrpt.daily_domain_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                                        (SELECT tlsrpt.authenticated_only())) AS n
            WHERE n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
              AND EXISTS (SELECT FROM tlsrpt.rollup_pending)) y) x
GROUP BY x.day, x.day_start, x.policy_domain, x.host_report;
