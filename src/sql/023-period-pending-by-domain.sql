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
-- no pending report names has the rolled-up figures there.
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
        SELECT DISTINCT x.day, x.day::timestamp AT TIME ZONE 'UTC' AS day_start, p.policy_domain
        FROM tlsrpt.rollup_pending r
        CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) x
        JOIN tlsrpt.policy p ON p.report = r.id
        WHERE p.policy_domain IS NOT NULL AND x.day <> ALL (dirty)
          AND x.day::timestamp AT TIME ZONE 'UTC' BETWEEN since AND until
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
