-- tlsrpt-ingest schema version 15: panels and alerts at ten times the scale
-- (issue 14 section 3: 10,000 policy domains, every query <= 250 ms).

-- 1. sts_drift of some domains: many domains as a hashed set. "= ANY" of the
-- array compares each version with every element: with Grafana's "All" at
-- 10,000 domains, 8,670 versions x 10,000 names took 0.7 s for no row. A few
-- domains keep "= ANY", which reaches the per-domain window of
-- sts_policy_version (one domain: 6 ms at 10,000 domains, 37 through the hash,
-- which computes every domain's versions first).
CREATE OR REPLACE FUNCTION tlsrpt.sts_drift(since date, domains text[])
RETURNS TABLE (policy_domain text, organization_name text, version integer, mode text, max_age bigint,
               mx text[], reason text, replaced_at timestamptz, stale_after timestamptz,
               first_day date, last_day date, reports numeric, sessions numeric, failed numeric)
LANGUAGE plpgsql STABLE SET jit = off
AS $fn$
BEGIN
    IF domains IS NULL OR cardinality(domains) > 100 THEN
        RETURN QUERY
        SELECT d.* FROM tlsrpt.sts_drift(since) d
        WHERE domains IS NULL OR d.policy_domain IN (SELECT unnest(domains))
        ORDER BY 1, 2, 3;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.policy_domain, d.organization_name, v.version, v.mode, v.max_age, v.mx,
           CASE WHEN EXISTS (SELECT FROM tlsrpt.published_sts_policy p
                             WHERE p.policy_domain IS NULL OR p.policy_domain = v.policy_domain)
                THEN 'not published' ELSE 'replaced' END,
           v.replaced_at, v.stale_after, d.first_day, d.last_day, d.reports, d.sessions, d.failed
    FROM tlsrpt.sts_policy_version v
    CROSS JOIN LATERAL (
        SELECT x.organization_name, min(x.day) AS first_day, max(x.day) AS last_day,
               sum(x.reports) AS reports, sum(x.sessions) AS sessions, sum(x.failed) AS failed
        FROM tlsrpt.sts_reporter_daily x
        WHERE x.policy_domain = v.policy_domain
          AND x.day >= greatest((v.stale_after AT TIME ZONE 'UTC')::date, since)
          AND x.day_start >= v.stale_after
          AND x.mode IS NOT DISTINCT FROM v.mode AND x.max_age IS NOT DISTINCT FROM v.max_age AND x.mx = v.mx
        GROUP BY x.organization_name) d
    WHERE v.stale_after IS NOT NULL AND v.policy_domain = ANY (domains)
    ORDER BY 1, 2, 3;
END
$fn$;

-- 2. alert_new_result_type: a result type is new for a domain when every row
-- of it in the history window is recent. Before, every failure row of the
-- window (90 days: 580,000 at 10,000 domains) was joined with the recent
-- pairs and grouped; now the recent rows are read (one day's), and for each
-- of their pairs one index range of failure_fact says whether an older row
-- is there. failure_row is failure_fact's rows (in scope, not shadowed) and
-- the pending reports' rows: the older rows among the latter are read once,
-- with every row of failure_row that arrived since the oldest pending report
-- (a range of failure_fact's received_at index). The same rows as
-- alert_new_result_type_plain() (tests/rollup-t.sh).
CREATE INDEX failure_fact_type_idx ON tlsrpt.failure_fact
    (policy_domain, result_type, (coalesce(date_end, received_at)));

CREATE OR REPLACE FUNCTION tlsrpt.alert_new_result_type(recent interval DEFAULT '1 day',
                                                        history interval DEFAULT '90 days')
RETURNS TABLE (policy_domain text, result_type text, failed_sessions numeric,
               receiving_mx_hostnames text[], organizations text[])
LANGUAGE plpgsql STABLE SET jit = off  -- the estimate of the look-ups passes jit_above_cost: 0.9 s of compiling
AS $fn$
DECLARE
    -- the oldest pending report's arrival ('infinity': none)
    since timestamptz := (SELECT coalesce(min(p.received_at), 'infinity') FROM tlsrpt.rollup_pending p);
BEGIN
    -- planned with the values (EXECUTE): a generic plan of an SQL function
    -- read every older row of the window into a hash instead of looking up
    -- each pair (0.6 s at 10,000 domains instead of 0.15)
    RETURN QUERY EXECUTE $q$
    WITH n AS MATERIALIZED (
        SELECT f.policy_domain, f.result_type, f.counted_sessions, f.receiving_mx_hostname, f.organization_name
        FROM tlsrpt.failure_row f
        WHERE tlsrpt.is_recent(f.date_end, f.received_at, $1)
    ), pair AS (
        SELECT DISTINCT n.policy_domain, n.result_type FROM n
    ), old AS (
        -- an older row of the window among those that arrived since the oldest pending report
        SELECT o.policy_domain, o.result_type
        FROM tlsrpt.failure_row o
        WHERE o.received_at >= $3
          AND coalesce(o.date_end, o.received_at) > now() - $1 - interval '1 day' - $2
          AND NOT tlsrpt.is_recent(o.date_end, o.received_at, $1)
        UNION ALL
        -- or in failure_fact, as failure_row reads it
        SELECT p.policy_domain, p.result_type
        FROM pair p
        WHERE EXISTS (SELECT FROM tlsrpt.failure_fact o
                      WHERE o.policy_domain = p.policy_domain AND o.result_type = p.result_type
                        AND coalesce(o.date_end, o.received_at) > now() - $1 - interval '1 day' - $2
                        AND NOT tlsrpt.is_recent(o.date_end, o.received_at, $1)
                        AND (o.authenticated OR NOT (SELECT tlsrpt.authenticated_only()))
                        AND o.report NOT IN (SELECT id FROM tlsrpt.report WHERE shadowed))
        UNION ALL
        SELECT p.policy_domain, p.result_type
        FROM pair p
        WHERE (p.policy_domain IS NULL OR p.result_type IS NULL)
          AND EXISTS (SELECT FROM tlsrpt.failure_fact o
                      WHERE o.policy_domain IS NOT DISTINCT FROM p.policy_domain
                        AND o.result_type IS NOT DISTINCT FROM p.result_type
                        AND coalesce(o.date_end, o.received_at) > now() - $1 - interval '1 day' - $2
                        AND NOT tlsrpt.is_recent(o.date_end, o.received_at, $1)
                        AND (o.authenticated OR NOT (SELECT tlsrpt.authenticated_only()))
                        AND o.report NOT IN (SELECT id FROM tlsrpt.report WHERE shadowed))
    )
    SELECT n.policy_domain, n.result_type, sum(n.counted_sessions),
           coalesce(array_agg(DISTINCT n.receiving_mx_hostname) FILTER (WHERE n.receiving_mx_hostname IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT n.organization_name) FILTER (WHERE n.organization_name IS NOT NULL), '{}')
    FROM n
    WHERE ARRAY[n.policy_domain, n.result_type] NOT IN (SELECT ARRAY[o.policy_domain, o.result_type] FROM old o)
    GROUP BY n.policy_domain, n.result_type
    ORDER BY 1, 2
    $q$ USING recent, history, since;
END
$fn$;

-- 3. Emptying the rollups. TRUNCATE tlsrpt.report CASCADE (an
-- administrator starting over) failed on a plain schema: the statement
-- truncates failure_fact with the tables (it references failure), and the
-- trigger's rollup_reset() truncated it again ("being used by active
-- queries"). And rollup_reset() ran with its owner's rights (SECURITY
-- DEFINER), so that a reader (--grant-reader: EXECUTE on every function)
-- could empty the rollups. Now the list of rollup tables is in one function,
-- rollup_clear(), which like rollup_reset() runs with its caller's rights;
-- only the TRUNCATE trigger (which cannot be called otherwise) has its
-- owner's, and empties failure_fact only where it references nothing (a
-- partitioned schema). Part 4 adds a table to the list.

-- 4. Reports per day by reporter, every domain selected (Grafana's "All"): a
-- total per day and reporter. The panel summed the per-domain rows of the
-- range (885,000 at 10,000 domains, 0.55 s) into a point per day and
-- reporter. refresh() now writes those totals too (from rollup_reporter_daily:
-- the reports that list a single domain, plus the distinct shared ones), and
-- the panel reads them when every_domain() says that the selection holds every
-- domain there is.

-- a day's reports of a reporter in scope that list at least one policy domain
CREATE TABLE tlsrpt.rollup_reporter_daily_total (
    auth_only         boolean NOT NULL,
    day               date NOT NULL,
    day_start         timestamptz NOT NULL,
    organization_name text,
    reports           bigint NOT NULL
);
CREATE INDEX rollup_reporter_daily_total_day_idx ON tlsrpt.rollup_reporter_daily_total (day);
CREATE INDEX rollup_reporter_daily_total_start_idx ON tlsrpt.rollup_reporter_daily_total (auth_only, day_start);

-- part 3: the rollups but failure_fact emptied, and the watermark back to 0
CREATE FUNCTION tlsrpt.rollup_clear() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.rollup_daily_domain, tlsrpt.rollup_sts_daily,
             tlsrpt.rollup_latest, tlsrpt.rollup_sts_history, tlsrpt.rollup_gap, tlsrpt.rollup_dirty_day,
             tlsrpt.rollup_host_domain, tlsrpt.rollup_mx_name,
             tlsrpt.rollup_reporter, tlsrpt.rollup_sts_reporter_day, tlsrpt.rollup_reporter_daily,
             tlsrpt.rollup_ledger, tlsrpt.rollup_end_domain, tlsrpt.rollup_daily_domain_total,
             tlsrpt.rollup_failure_daily, tlsrpt.rollup_reporter_daily_total;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

CREATE OR REPLACE FUNCTION tlsrpt.rollup_reset() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.failure_fact;
    PERFORM tlsrpt.rollup_clear();
END
$$;

CREATE OR REPLACE FUNCTION tlsrpt.rollup_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- failure_fact goes with the statement where it references failure
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'tlsrpt.failure_fact'::regclass AND contype = 'f') THEN
        TRUNCATE tlsrpt.failure_fact;
    END IF;
    PERFORM tlsrpt.rollup_clear();
    RETURN NULL;
END
$$;

-- refresh_reporters() of migration 13, then the totals of the days it wrote
ALTER FUNCTION tlsrpt.refresh_reporters(bigint[], date[], boolean) RENAME TO refresh_reporters_13;
CREATE FUNCTION tlsrpt.reporter_daily_total_rows(days date[])
RETURNS TABLE (auth_only boolean, day date, day_start timestamptz, organization_name text, reports bigint)
LANGUAGE sql STABLE
AS $$
    SELECT s.auth_only, s.day, s.day_start, s.organization_name,
           (sum(s.reports - cardinality(s.shared))
            + (SELECT count(DISTINCT i) FROM unnest(tlsrpt.array_concat(s.shared)) AS i))::bigint
    FROM tlsrpt.rollup_reporter_daily s
    WHERE s.policy_domain IS NOT NULL AND (days IS NULL OR s.day = ANY (days))
    GROUP BY s.auth_only, s.day, s.day_start, s.organization_name
$$;
CREATE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM tlsrpt.refresh_reporters_13(new_ids, days, rebuild);
    DELETE FROM tlsrpt.rollup_reporter_daily_total WHERE day = ANY (days);
    INSERT INTO tlsrpt.rollup_reporter_daily_total SELECT * FROM tlsrpt.reporter_daily_total_rows(days);
END
$$;
-- the days already rolled up (an upgrade)
INSERT INTO tlsrpt.rollup_reporter_daily_total SELECT * FROM tlsrpt.reporter_daily_total_rows(NULL);

-- per day and reporter, the reports in scope that list a policy domain: the
-- sum of reporter_daily over every domain, counting a report once
CREATE VIEW tlsrpt.reporter_daily_total AS
SELECT t.day, t.day_start, t.organization_name, t.reports
FROM tlsrpt.rollup_reporter_daily_total t
WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
  AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
UNION ALL
-- the days with something pending: from reporter_daily's rows of those days
SELECT d.day, d.day_start, d.organization_name,
       (sum(d.reports - cardinality(d.shared))
        + (SELECT count(DISTINCT i) FROM unnest(tlsrpt.array_concat(d.shared)) AS i))::bigint
FROM tlsrpt.reporter_daily d
WHERE d.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_pending_day)) AND d.policy_domain IS NOT NULL
GROUP BY d.day, d.day_start, d.organization_name;

-- Whether a selection of policy domains holds every domain in scope (every
-- domain with a report, as the dashboard's variable lists them): then a sum
-- over those domains is the total. Only for more than min_domains (the few
-- domains of a small selection are read faster than this look-up); false
-- when in doubt (a domain of a purged report, until the next refresh()).
CREATE FUNCTION tlsrpt.every_domain(selected text[], min_domains integer DEFAULT 100)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT cardinality(selected) > min_domains
       AND NOT EXISTS (SELECT FROM tlsrpt.rollup_latest l
                       WHERE l.auth_only = (SELECT tlsrpt.authenticated_only()) AND l.policy_domain IS NOT NULL
                         AND l.policy_domain NOT IN (SELECT unnest(selected)))
       AND NOT EXISTS (SELECT FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id
                       WHERE p.policy_domain IS NOT NULL AND p.policy_domain NOT IN (SELECT unnest(selected)))
$$;
