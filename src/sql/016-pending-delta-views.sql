-- tlsrpt-ingest schema migration 16: migration 15's rule for the other
-- per-day rollups (issue 14: the views between two refresh() runs). A day
-- with new reports only is its rollup rows plus the new reports' own rows,
-- merged per key (sums, and the reporters or shared report ids put
-- together); a day a purge or a shadowed copy touched is computed from the
-- tables as before. With 3 reports of yesterday pending at a million reports
-- a year, each of these read all of yesterday's 3,000 reports per query:
-- alerts() 66 -> 180 ms, --summary 66 -> 210, the MTA-STS panel 29 -> 120.

-- each rows function of migrations 5, 8 and 11, for the reports with those ids
CREATE FUNCTION tlsrpt.end_domain_rows_of(ids bigint[], auth boolean)
RETURNS TABLE (day date, date_end timestamptz, policy_domain text, successful numeric, failed numeric,
               sessions numeric, reports bigint, reporter_names text[])
LANGUAGE sql STABLE
AS $$
    WITH rd AS (
        SELECT r.id, r.organization_name,
               (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               r.date_end, p.policy_domain, p.sessions, p.failed
        FROM tlsrpt.report r
        CROSS JOIN LATERAL (
            SELECT p.policy_domain,
                   max(coalesce(p.total_successful_session_count, 0)::numeric
                       + coalesce(p.total_failure_session_count, 0)) AS sessions,
                   max(coalesce(p.total_failure_session_count, 0))::numeric AS failed
            FROM tlsrpt.policy p WHERE p.report = r.id
            GROUP BY p.policy_domain) p
        WHERE r.id = ANY (ids)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND r.date_end IS NOT NULL
          AND cardinality(ids) > 0
    )
    SELECT day, date_end, policy_domain, sum(sessions - failed), sum(failed), sum(sessions), count(*),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM rd
    GROUP BY day, date_end, policy_domain
$$;

CREATE FUNCTION tlsrpt.sts_reporter_day_rows_of(ids bigint[], auth boolean)
RETURNS TABLE (day date, policy_domain text, organization_name text, mode text, max_age bigint, mx text[],
               reports bigint, sessions numeric, failed numeric)
LANGUAGE sql STABLE
AS $$
    WITH p AS (
        SELECT p.report, (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               r.organization_name, p.policy_domain, coalesce(p.policy_string, '{}') AS policy_string,
               coalesce(p.total_successful_session_count, 0)::numeric
                   + coalesce(p.total_failure_session_count, 0) AS sessions,
               coalesce(p.total_failure_session_count, 0)::numeric AS failed
        FROM tlsrpt.report r
        JOIN tlsrpt.policy p ON p.report = r.id
        WHERE r.id = ANY (ids)
          AND cardinality(ids) > 0 AND lower(p.policy_type) = 'sts' AND (r.authenticated OR NOT auth)
          AND NOT r.shadowed
    ), s AS (
        SELECT d.policy_string, x.mode, x.max_age,
               (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(x.mx) AS m) AS mx
        FROM (SELECT DISTINCT policy_string FROM p) d
        CROSS JOIN LATERAL tlsrpt.sts_parse(d.policy_string) AS x
    )
    SELECT p.day, p.policy_domain, p.organization_name, s.mode, s.max_age, s.mx,
           count(DISTINCT p.report), sum(p.sessions), sum(p.failed)
    FROM p JOIN s ON s.policy_string = p.policy_string
    GROUP BY 1, 2, 3, 4, 5, 6
$$;

CREATE FUNCTION tlsrpt.reporter_daily_rows_of(ids bigint[], auth boolean)
RETURNS TABLE (day date, organization_name text, policy_domain text, reports bigint, shared bigint[])
LANGUAGE sql STABLE
AS $$
    -- (each report's policies by its index, LATERAL: the planner estimates a
    -- day at the average day's reports, and a hash join of every policy for a
    -- refresh of a few reports on a few days took longer than the rest of it)
    WITH rp AS (
        SELECT r.id, r.organization_name,
               (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               p.policy_domain
        FROM tlsrpt.report r
        CROSS JOIN LATERAL (SELECT DISTINCT p.policy_domain FROM tlsrpt.policy p WHERE p.report = r.id) p
        WHERE r.id = ANY (ids)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND cardinality(ids) > 0
    ), c AS (
        SELECT rp.*, count(*) OVER (PARTITION BY rp.id) AS domains FROM rp
    )
    SELECT day, organization_name, policy_domain, count(*),
           coalesce(array_agg(id ORDER BY id) FILTER (WHERE domains > 1), '{}')
    FROM c
    GROUP BY day, organization_name, policy_domain
$$;

CREATE FUNCTION tlsrpt.sts_daily_rows_of(ids bigint[], auth boolean)
RETURNS TABLE (day date, policy_domain text, mode text, max_age bigint, reports bigint, reporters text[])
LANGUAGE sql STABLE
AS $$
    SELECT (coalesce(s.date_start, s.date_end) AT TIME ZONE 'UTC')::date, s.policy_domain, s.mode, s.max_age,
           count(DISTINCT s.report),
           array_agg(DISTINCT s.organization_name) FILTER (WHERE s.organization_name IS NOT NULL)
    FROM tlsrpt.sts_rows(ARRAY(SELECT r.id FROM tlsrpt.report r
                               WHERE r.id = ANY (ids)
                                 AND coalesce(r.date_start, r.date_end) IS NOT NULL), auth) AS s
    GROUP BY 1, 2, 3, 4
$$;

-- domain_totals_since (alert_failure_rate, --summary): its grouping per domain
-- puts the rollup rows and the new reports' rows together
CREATE OR REPLACE FUNCTION tlsrpt.domain_totals_since(since timestamptz)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, sessions numeric, reports bigint,
               reporter_names text[])
LANGUAGE sql STABLE
AS $$
    SELECT x.policy_domain, sum(x.successful), sum(x.failed), sum(x.sessions), sum(x.reports)::bigint,
           (SELECT coalesce(array_agg(DISTINCT o ORDER BY o), '{}') FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o)
    FROM (
        -- every day a purge or a shadowed copy did not touch, as rolled up
        SELECT e.policy_domain, e.successful, e.failed, e.sessions, e.reports, e.reporter_names
        FROM tlsrpt.rollup_end_domain e
        WHERE e.auth_only = (SELECT tlsrpt.authenticated_only())
          AND e.date_end > domain_totals_since.since
          AND e.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
        UNION ALL
        -- the reports stored since, on those days
        SELECT y.policy_domain, y.successful, y.failed, y.sessions, y.reports, y.reporter_names
        FROM tlsrpt.end_domain_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                       (SELECT tlsrpt.authenticated_only())) AS y
        WHERE y.date_end > domain_totals_since.since
          AND y.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
          AND EXISTS (SELECT FROM tlsrpt.rollup_pending)
        UNION ALL
        -- the days a purge or a shadowed copy touched, from the tables
        SELECT y.policy_domain, y.successful, y.failed, y.sessions, y.reports, y.reporter_names
        FROM tlsrpt.end_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                    (SELECT tlsrpt.authenticated_only())) AS y
        WHERE y.date_end > domain_totals_since.since
          AND EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
    ) x
    GROUP BY x.policy_domain
$$;

-- the other three: the rollup rows of the days with nothing pending; the days
-- a purge or a shadowed copy touched from the tables; and for a day with new
-- reports only, its rollup rows and the new reports' rows merged per key
CREATE OR REPLACE VIEW tlsrpt.sts_reporter_daily AS
SELECT x.day, x.day_start, x.policy_domain, x.organization_name, x.mode, x.max_age, x.mx, x.reports,
       x.sessions, x.failed
FROM (SELECT s.day, s.day_start, s.policy_domain, s.organization_name, s.mode, s.max_age, s.mx, s.reports,
             s.sessions, s.failed
      FROM tlsrpt.rollup_sts_reporter_day s
      WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
        AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
      UNION ALL
      SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.policy_domain, y.organization_name, y.mode, y.max_age,
             y.mx, y.reports, y.sessions, y.failed
      FROM tlsrpt.sts_reporter_day_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                        (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
      UNION ALL
      SELECT g.day, g.day::timestamp AT TIME ZONE 'UTC', g.policy_domain, g.organization_name, g.mode, g.max_age,
             g.mx, sum(g.reports)::bigint, sum(g.sessions), sum(g.failed)
      FROM (SELECT s.day, s.policy_domain, s.organization_name, s.mode, s.max_age, s.mx, s.reports, s.sessions,
                   s.failed
            FROM tlsrpt.rollup_sts_reporter_day s
            WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
              AND s.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_pending_day))
              AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            SELECT n.day, n.policy_domain, n.organization_name, n.mode, n.max_age, n.mx, n.reports, n.sessions,
                   n.failed
            FROM tlsrpt.sts_reporter_day_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                                 (SELECT tlsrpt.authenticated_only())) AS n
            WHERE n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
              AND EXISTS (SELECT FROM tlsrpt.rollup_pending)) g
      GROUP BY g.day, g.policy_domain, g.organization_name, g.mode, g.max_age, g.mx) x;

CREATE OR REPLACE VIEW tlsrpt.reporter_daily AS
SELECT x.day, x.day_start, x.organization_name, x.policy_domain, x.reports, x.shared
FROM (SELECT s.day, s.day_start, s.organization_name, s.policy_domain, s.reports, s.shared
      FROM tlsrpt.rollup_reporter_daily s
      WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
        AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
      UNION ALL
      SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.organization_name, y.policy_domain, y.reports, y.shared
      FROM tlsrpt.reporter_daily_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                      (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
      UNION ALL
      SELECT g.day, g.day::timestamp AT TIME ZONE 'UTC', g.organization_name, g.policy_domain, sum(g.reports)::bigint,
             (SELECT coalesce(array_agg(i ORDER BY i), '{}') FROM unnest(tlsrpt.array_concat(g.shared)) AS i)
      FROM (SELECT s.day, s.organization_name, s.policy_domain, s.reports, s.shared
            FROM tlsrpt.rollup_reporter_daily s
            WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
              AND s.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_pending_day))
              AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            SELECT n.day, n.organization_name, n.policy_domain, n.reports, n.shared
            FROM tlsrpt.reporter_daily_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                               (SELECT tlsrpt.authenticated_only())) AS n
            WHERE n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
              AND EXISTS (SELECT FROM tlsrpt.rollup_pending)) g
      GROUP BY g.day, g.organization_name, g.policy_domain) x;

CREATE OR REPLACE VIEW tlsrpt.sts_policy_daily AS
SELECT x.day, x.day_start, x.policy_domain, x.mode, x.max_age, x.reports, x.reporters
FROM (SELECT s.day, s.day_start, s.policy_domain, s.mode, s.max_age, s.reports, s.reporters
      FROM tlsrpt.rollup_sts_daily s
      WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
        AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
      UNION ALL
      SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.policy_domain, y.mode, y.max_age, y.reports, y.reporters
      FROM tlsrpt.sts_daily_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                 (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
      UNION ALL
      SELECT g.day, g.day::timestamp AT TIME ZONE 'UTC', g.policy_domain, g.mode, g.max_age, sum(g.reports)::bigint,
             (SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(g.reporters)) AS o)
      FROM (SELECT s.day, s.policy_domain, s.mode, s.max_age, s.reports, s.reporters
            FROM tlsrpt.rollup_sts_daily s
            WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
              AND s.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_pending_day))
              AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            SELECT n.day, n.policy_domain, n.mode, n.max_age, n.reports, n.reporters
            FROM tlsrpt.sts_daily_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                          (SELECT tlsrpt.authenticated_only())) AS n
            WHERE n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
              AND EXISTS (SELECT FROM tlsrpt.rollup_pending)) g
      GROUP BY g.day, g.policy_domain, g.mode, g.max_age) x;
