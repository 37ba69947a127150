-- tlsrpt-ingest schema migration 15: a day with new reports only is its
-- rollup rows plus the new reports' rows (issue 14: the views between two
-- refresh() runs).
--
-- A live server has reports pending nearly always (those delivered since the
-- last refresh(), from cron), and daily_domain computed each day they fall on
-- from the tables: every report of that day (3,000 at a million reports a
-- year), for every query (a panel over daily_domain went from 15 to 60 ms
-- with 3 reports of yesterday pending). The figures of a day are sums over its
-- reports (each session once per report and domain), so a day whose rollup
-- rows are right but for the reports stored since is those rows plus the new
-- reports' own rows, grouped. A day a purge or a shadowed copy touched
-- (rollup_dirty_day) is computed from the tables as before.

-- The host domains now, with reports pending: those of the last refresh(),
-- plus those a pending report makes, which involve its policy domains or its
-- MX names (a report only ever adds some): the pending domains against every
-- MX name, and the domains known against the pending MX names, instead of
-- every domain against every MX name for every query (6 ms at 1,000 domains,
-- three times in a query of daily_domain). Migration 5's definition otherwise.
CREATE OR REPLACE FUNCTION tlsrpt.host_domain_now() RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain FROM tlsrpt.rollup_host_domain
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
    UNION ALL
    -- a pending report's policy domain named by a known MX name (its index)
    SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
      AND (EXISTS (SELECT FROM tlsrpt.rollup_mx_name n WHERE n.name = p.policy_domain)
           OR EXISTS (SELECT FROM tlsrpt.rollup_mx_name n WHERE n.name = tlsrpt.host_pattern(p.policy_domain)))
    UNION ALL
    -- any domain known or pending named by a pending report's MX names
    SELECT tlsrpt.host_domains(
               ARRAY(SELECT l.policy_domain FROM tlsrpt.rollup_latest l WHERE NOT l.auth_only
                     UNION ALL SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id),
               m.names)
    FROM (SELECT ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                       FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.rollup_pending)) AS x) AS names) m
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state) AND cardinality(m.names) > 0
    UNION ALL
    SELECT tlsrpt.host_domains(
               ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy),
               ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                     FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.report)) AS x))
    WHERE (SELECT rebuild FROM tlsrpt.rollup_state)
$$;

-- daily_domain_rows() of the reports with those ids, whatever their day
CREATE FUNCTION tlsrpt.daily_domain_rows_of(ids bigint[], auth boolean)
RETURNS TABLE (day date, policy_domain text, has_sts boolean, successful numeric, failed numeric,
               sessions numeric, reporter_names text[], reports bigint)
LANGUAGE sql STABLE
AS $$
    WITH rd AS (
        SELECT r.id, r.organization_name,
               (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               p.policy_domain, p.sessions, p.failed, p.has_sts
        FROM tlsrpt.report r
        CROSS JOIN LATERAL (
            SELECT p.policy_domain,
                   max(coalesce(p.total_successful_session_count, 0)::numeric
                       + coalesce(p.total_failure_session_count, 0)) AS sessions,
                   max(coalesce(p.total_failure_session_count, 0))::numeric AS failed,
                   bool_or(coalesce(lower(p.policy_type), '') = 'sts') AS has_sts
            FROM tlsrpt.policy p WHERE p.report = r.id
            GROUP BY p.policy_domain) p
        WHERE r.id = ANY (ids)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND cardinality(ids) > 0
    )
    SELECT day, policy_domain, has_sts, sum(sessions - failed), sum(failed), sum(sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}'),
           count(*)
    FROM rd
    GROUP BY day, policy_domain, has_sts
$$;

CREATE OR REPLACE VIEW tlsrpt.daily_domain AS
-- the days rolled up, a domain that is no host domain: its one row
SELECT t.day, t.day_start, t.policy_domain, t.successful, t.failed, t.sessions,
       round(t.failed / nullif(t.sessions, 0), 4) AS failure_rate,
       cardinality(t.reporter_names)::bigint AS reporters, t.reporter_names, t.reports,
       false AS host_report
FROM tlsrpt.rollup_daily_domain_total t
WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
  AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
  AND NOT coalesce(t.policy_domain IN (SELECT tlsrpt.host_domain_now()), false)
UNION ALL
-- the days rolled up, a host domain: its sts reports, and its host reports apart
SELECT d.day, d.day_start, d.policy_domain, d.successful, d.failed, d.sessions,
       round(d.failed / nullif(d.sessions, 0), 4),
       cardinality(d.reporter_names)::bigint, d.reporter_names, d.reports,
       NOT d.has_sts
FROM tlsrpt.rollup_daily_domain d
WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
  AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
  AND d.policy_domain IN (SELECT tlsrpt.host_domain_now())  -- a join from the few host domains
UNION ALL
-- the days with something pending, grouped as before
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
            -- a day with new reports only: its rollup rows as they are ...
            SELECT d.day, d.policy_domain, d.has_sts, d.successful, d.failed, d.sessions, d.reporter_names, d.reports
            FROM tlsrpt.rollup_daily_domain d
            WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
              AND d.day = ANY (ARRAY(SELECT day FROM tlsrpt.rollup_pending_day))
              AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
            UNION ALL
            -- ... and the new reports' rows
            SELECT n.* FROM tlsrpt.daily_domain_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                                        (SELECT tlsrpt.authenticated_only())) AS n
            WHERE n.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
              AND EXISTS (SELECT FROM tlsrpt.rollup_pending)) y) x
GROUP BY x.day, x.day_start, x.policy_domain, x.host_report;
