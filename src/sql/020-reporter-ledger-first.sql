-- tlsrpt-ingest schema version 20: the reporter ledger panel's first rows as
-- one function (issue 14 section 3: <= 250 ms at 10,000 domains, <= 5 ms for
-- one).
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
