-- tlsrpt-ingest schema version 18: the panel "Reports per day by reporter" as
-- one function (issue 14 section 3: <= 250 ms at 10,000 domains, <= 5 ms for
-- one).
--
-- The panel's SQL named the selected domains twice (the per-domain rows and
-- the loop-only reporters) and held both ways (every domain: the per-day
-- totals; some: reporter_daily). PostgreSQL planned both ways for every
-- query, and planned each 10,000-name IN list of Grafana's "All" in about 60
-- ms: 300 ms at 10,000 domains, of which 135 planning; 4-6 ms of planning for
-- one domain. Here each way is a statement of its own, planned once per
-- session (Grafana's connections are pooled), and only the way taken runs.
-- Every domain selected (every_domain()): the totals, and a reporter is
-- loop-only for every domain it reports on. Otherwise the domains are one
-- array, "= ANY" of which is an index condition: up to 100 of them through
-- the session's plan; more planned with their values (a generic plan read
-- every day's index entries of 5,000 domains: 1.1 s instead of 0.65).
-- The same rows as the panel's SQL before (tests/grafana-t.sh).

-- reports_per_day() of some domains: a report that lists several of them
-- once (its id is in shared)
CREATE FUNCTION tlsrpt.reports_per_day_of(since timestamptz, until timestamptz, domains text[])
RETURNS TABLE ("time" timestamptz, metric text, value numeric)
LANGUAGE sql STABLE
AS $fn$
    SELECT x.day_start, x.organization_name, x.n + (SELECT count(DISTINCT i) FROM unnest(x.shared) AS i)
    FROM (SELECT d.day_start, d.organization_name, sum(d.reports - cardinality(d.shared)) AS n,
                 tlsrpt.array_concat(d.shared) AS shared
          FROM tlsrpt.reporter_daily d
          WHERE d.day_start BETWEEN since AND until AND d.policy_domain = ANY (domains)
          GROUP BY 1, 2) x
    WHERE coalesce(x.organization_name, '') NOT IN
          (SELECT g.organization_name FROM tlsrpt.reporter_ledger g
           WHERE g.policy_domain = ANY (domains) AND g.organization_name IS NOT NULL
           GROUP BY 1 HAVING bool_and(g.loop_only))
    ORDER BY 1
$fn$;

CREATE FUNCTION tlsrpt.reports_per_day(since timestamptz, until timestamptz, domains text[])
RETURNS TABLE ("time" timestamptz, metric text, value numeric)
LANGUAGE plpgsql STABLE
-- the session's plans: left to choose, PostgreSQL planned each call again
-- (the generic plan's estimate is the higher); EXECUTE plans with the values
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    IF tlsrpt.every_domain(domains) THEN
        RETURN QUERY
        SELECT t.day_start, t.organization_name, t.reports::numeric
        FROM tlsrpt.reporter_daily_total t
        WHERE t.day_start BETWEEN since AND until
          AND coalesce(t.organization_name, '') NOT IN
              (SELECT g.organization_name FROM tlsrpt.reporter_ledger g
               WHERE g.policy_domain IS NOT NULL AND g.organization_name IS NOT NULL
               GROUP BY 1 HAVING bool_and(g.loop_only))
        ORDER BY 1;
    ELSIF cardinality(domains) <= 100 THEN
        RETURN QUERY SELECT * FROM tlsrpt.reports_per_day_of(since, until, domains);
    ELSE
        RETURN QUERY EXECUTE 'SELECT * FROM tlsrpt.reports_per_day_of($1, $2, $3)' USING since, until, domains;
    END IF;
END
$fn$;
