-- tlsrpt-ingest schema version 20: the reporter ledger panel and the
-- failures table as functions whose statements are planned once per session
-- (issue 14 section 3: <= 250 ms at 10,000 domains, <= 5 ms for one).
--
-- 1. The reporter ledger.
--
-- The panel filtered reporter_ledger by Grafana's IN list of the selected
-- domains. The view has three branches (rolled up, pending, after a purge),
-- and PostgreSQL planned the 10,000-name list of "All" in each: 90-200 ms of
-- planning at 10,000 domains, more than the query ran. Here, as
-- reports_per_day() does (migration 18), each way is a statement planned
-- once per session: every domain selected (every_domain()) needs no filter;
-- up to 100 domains are "= ANY" of the array, an index condition; more are a
-- hashed set.
-- The first n rows of the panel's order (silent first, loop-only last, the
-- latest first), for the selected domains: the rows of
--   SELECT * FROM tlsrpt.reporter_ledger WHERE policy_domain = ANY (domains)
--   ORDER BY silent DESC, loop_only, late_by DESC NULLS LAST, organization_name, policy_domain
--   LIMIT n
-- (tests/grafana-t.sh).
CREATE FUNCTION tlsrpt.reporter_ledger_first(domains text[], n integer DEFAULT 100)
RETURNS SETOF tlsrpt.reporter_ledger
LANGUAGE plpgsql STABLE
-- the session's plans (Grafana's connections are pooled), not compiled
SET plan_cache_mode = force_generic_plan SET jit = off
AS $fn$
BEGIN
    IF tlsrpt.every_domain(domains) THEN
        RETURN QUERY
        SELECT * FROM tlsrpt.reporter_ledger g WHERE g.policy_domain IS NOT NULL
        ORDER BY g.silent DESC, g.loop_only, g.late_by DESC NULLS LAST, g.organization_name, g.policy_domain
        LIMIT n;
    ELSIF cardinality(domains) <= 100 THEN
        RETURN QUERY
        SELECT * FROM tlsrpt.reporter_ledger g WHERE g.policy_domain = ANY (domains)
        ORDER BY g.silent DESC, g.loop_only, g.late_by DESC NULLS LAST, g.organization_name, g.policy_domain
        LIMIT n;
    ELSE
        RETURN QUERY
        SELECT * FROM tlsrpt.reporter_ledger g WHERE g.policy_domain IN (SELECT unnest(domains))
        ORDER BY g.silent DESC, g.loop_only, g.late_by DESC NULLS LAST, g.organization_name, g.policy_domain
        LIMIT n;
    END IF;
END
$fn$;

-- 2. "Failures by result type and MX": the n groups (result type, MX,
-- domain) with the most failed sessions, with their reporters and last day.
-- failure_daily has two branches (rolled up, pending days): the IN list of
-- "All" was planned in both and in the reporters' subquery, 60-70 ms at
-- 10,000 domains. The same three ways as reporter_ledger_first(); the rows
-- of the panel's SQL before (tests/grafana-t.sh).
-- every domain (no filter), or more than 100 of them (a hashed set)
CREATE FUNCTION tlsrpt.failures_top_of(since timestamptz, until timestamptz, domains text[], every boolean,
                                       n integer)
RETURNS TABLE (result_type text, receiving_mx_hostname text, policy_domain text, failed numeric, reporters text,
               last_day date)
LANGUAGE sql STABLE
AS $fn$
    SELECT t.result_type, t.receiving_mx_hostname, t.policy_domain, t.failed,
           (SELECT string_agg(DISTINCT f.organization_name, ', ') FROM tlsrpt.failure_daily f
            WHERE f.day_start BETWEEN since AND until AND f.policy_domain = t.policy_domain
              AND f.result_type IS NOT DISTINCT FROM t.result_type
              AND f.receiving_mx_hostname IS NOT DISTINCT FROM t.receiving_mx_hostname),
           t.last_day
    FROM (SELECT d.result_type, d.receiving_mx_hostname, d.policy_domain, sum(d.failed_sessions) AS failed,
                 max(d.day) AS last_day
          FROM tlsrpt.failure_daily d
          WHERE d.day_start BETWEEN since AND until
            AND (every OR d.policy_domain IN (SELECT unnest(domains)))
          GROUP BY 1, 2, 3
          ORDER BY 4 DESC, 1, 2, 3
          LIMIT n) t
    ORDER BY 4 DESC, 1, 2, 3
$fn$;
-- (up to 100 domains: "= ANY" of the array, an index condition; the
-- generic plan of the hashed set read every domain's rows)
CREATE FUNCTION tlsrpt.failures_top(since timestamptz, until timestamptz, domains text[],
                                    n integer DEFAULT 100)
RETURNS TABLE (result_type text, receiving_mx_hostname text, policy_domain text, failed numeric, reporters text,
               last_day date)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET jit = off
AS $fn$
BEGIN
    IF tlsrpt.every_domain(domains) THEN
        RETURN QUERY SELECT * FROM tlsrpt.failures_top_of(since, until, domains, true, n);
    ELSIF cardinality(domains) <= 100 THEN
        RETURN QUERY
        SELECT t.result_type, t.receiving_mx_hostname, t.policy_domain, t.failed,
               (SELECT string_agg(DISTINCT f.organization_name, ', ') FROM tlsrpt.failure_daily f
                WHERE f.day_start BETWEEN since AND until AND f.policy_domain = t.policy_domain
                  AND f.result_type IS NOT DISTINCT FROM t.result_type
                  AND f.receiving_mx_hostname IS NOT DISTINCT FROM t.receiving_mx_hostname),
               t.last_day
        FROM (SELECT d.result_type, d.receiving_mx_hostname, d.policy_domain, sum(d.failed_sessions) AS failed,
                     max(d.day) AS last_day
              FROM tlsrpt.failure_daily d
              WHERE d.day_start BETWEEN since AND until AND d.policy_domain = ANY (domains)
              GROUP BY 1, 2, 3
              ORDER BY 4 DESC, 1, 2, 3
              LIMIT n) t
        ORDER BY 4 DESC, 1, 2, 3;
    ELSE
        RETURN QUERY SELECT * FROM tlsrpt.failures_top_of(since, until, domains, false, n);
    END IF;
END
$fn$;
