-- tlsrpt-ingest schema version 22: alert_failure_rate() at ten times the
-- scale (issue 14 section 3: every alert <= 250 ms at 10,000 domains).
--
-- alert_failure_rate() grouped domain_totals_since(): per domain the sums
-- and the sorted set of its reporters' names, gathered from every day's row
-- (array_concat, then DISTINCT). The names took more than half of the time
-- (at a million reports, 7 days: 7,000 rows, 20 of the 35 ms) and were
-- thrown away for every domain under the threshold, nearly all of them.
-- Here the sums come first; the reporters are counted for the domains over
-- the threshold only, from the same rows read again for those domains (10,000
-- domains, 7 days: 98 -> 65 ms).
--
-- And host_report is false, not NULL, for a policy without a policy domain
-- in the plain views (found by the test of the above).

-- domain_totals_since()'s rows before they are grouped: per report day (in
-- scope) whose date_end is after since, and policy domain.
CREATE FUNCTION tlsrpt.domain_rows_since(since timestamptz)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, sessions numeric, reports bigint,
               reporter_names text[])
LANGUAGE sql STABLE
AS $$
    -- every day a purge or a shadowed copy did not touch, as rolled up
    SELECT e.policy_domain, e.successful, e.failed, e.sessions, e.reports, e.reporter_names
    FROM tlsrpt.rollup_end_domain e
    WHERE e.auth_only = (SELECT tlsrpt.authenticated_only())
      AND e.date_end > domain_rows_since.since
      AND e.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
    UNION ALL
    -- the reports stored since, on those days
    SELECT y.policy_domain, y.successful, y.failed, y.sessions, y.reports, y.reporter_names
    FROM tlsrpt.end_domain_rows_of(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                   (SELECT tlsrpt.authenticated_only())) AS y
    WHERE y.date_end > domain_rows_since.since
      AND y.day NOT IN (SELECT day FROM tlsrpt.rollup_dirty_day)
      AND EXISTS (SELECT FROM tlsrpt.rollup_pending)
    UNION ALL
    -- the days a purge or a shadowed copy touched, from the tables
    SELECT y.policy_domain, y.successful, y.failed, y.sessions, y.reports, y.reporter_names
    FROM tlsrpt.end_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_dirty_day),
                                (SELECT tlsrpt.authenticated_only())) AS y
    WHERE y.date_end > domain_rows_since.since
      AND EXISTS (SELECT FROM tlsrpt.rollup_dirty_day)
$$;

CREATE OR REPLACE FUNCTION tlsrpt.domain_totals_since(since timestamptz)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, sessions numeric, reports bigint,
               reporter_names text[])
LANGUAGE sql STABLE
AS $$
    SELECT x.policy_domain, sum(x.successful), sum(x.failed), sum(x.sessions), sum(x.reports)::bigint,
           (SELECT coalesce(array_agg(DISTINCT o ORDER BY o), '{}') FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o)
    FROM tlsrpt.domain_rows_since(since) x
    GROUP BY x.policy_domain
$$;

-- The same rows as before (tests/rollup-t.sh: alert_failure_rate_plain()).
-- The domain may be NULL (a policy without one): it is a group of its own,
-- and its reporters are counted as any other's.
CREATE OR REPLACE FUNCTION tlsrpt.alert_failure_rate(threshold numeric DEFAULT 0.05, days integer DEFAULT 7,
                                                     min_sessions bigint DEFAULT 1)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, failure_rate numeric, reporters bigint)
LANGUAGE sql STABLE
AS $$
    WITH x AS NOT MATERIALIZED ( -- read twice: 70,000 rows kept with their arrays cost more
        SELECT * FROM tlsrpt.domain_rows_since(now() - make_interval(days => alert_failure_rate.days))
    ), over AS (
        SELECT x.policy_domain, sum(x.successful) AS successful, sum(x.failed) AS failed,
               sum(x.sessions) AS sessions
        FROM x
        GROUP BY x.policy_domain
        HAVING sum(x.sessions) >= greatest(alert_failure_rate.min_sessions, 1)
           AND sum(x.failed) / nullif(sum(x.sessions), 0) > alert_failure_rate.threshold
    ), names AS (
        SELECT x.policy_domain, count(DISTINCT o) AS reporters
        FROM x CROSS JOIN LATERAL unnest(x.reporter_names) AS o
        WHERE x.policy_domain IN (SELECT v.policy_domain FROM over v)
           OR (x.policy_domain IS NULL AND EXISTS (SELECT FROM over v WHERE v.policy_domain IS NULL))
        GROUP BY x.policy_domain
    )
    SELECT v.policy_domain, v.successful, v.failed, round(v.failed / nullif(v.sessions, 0), 4),
           coalesce(n.reporters, 0)
    FROM over v
    LEFT JOIN names n ON n.policy_domain IS NOT DISTINCT FROM v.policy_domain
    ORDER BY 4 DESC, 1
$$;

-- host_report of a policy without a policy domain (or of a domain without a
-- dot) was NULL in policy_sessions and failure_detail (and so in report_domain
-- and the plain definitions over them) as soon as any MX host name was known:
-- "x IN (...)" of a NULL. A total "WHERE NOT host_report" over those views
-- left such policies out, while the rolled-up views (daily_domain,
-- failure_daily, failure_row) say false. It is false here too.
CREATE OR REPLACE VIEW tlsrpt.policy_sessions AS
SELECT p.id AS policy, r.id AS report,
       (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
       r.organization_name, r.date_start, r.date_end, r.received_at,
       p.policy_type, p.policy_domain,
       coalesce(p.total_successful_session_count, 0) AS successful,
       coalesce(p.total_failure_session_count, 0) AS failed,
       coalesce(p.total_successful_session_count, 0)::numeric
           + coalesce(p.total_failure_session_count, 0) AS sessions,
       coalesce(coalesce(lower(p.policy_type), '') <> 'sts'
                AND (p.policy_domain IN (SELECT name FROM tlsrpt.mx_host_name)
                     OR tlsrpt.host_pattern(p.policy_domain) IN (SELECT name FROM tlsrpt.mx_host_name)),
                false) AS host_report
FROM tlsrpt.scoped_report r
JOIN tlsrpt.policy p ON p.report = r.id;


CREATE OR REPLACE VIEW tlsrpt.failure_detail AS
SELECT f.id AS failure, p.id AS policy, r.id AS report,
       d.day, d.day::timestamp AT TIME ZONE 'UTC' AS day_start,
       r.organization_name, r.date_start, r.date_end, r.received_at,
       p.policy_type, p.policy_domain,
       f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_mx_helo,
       f.receiving_ip, coalesce(f.failed_session_count, 0) AS failed_sessions,
       f.additional_information, f.failure_reason_code,
       CASE WHEN EXISTS (
                SELECT 1 FROM tlsrpt.policy p2 JOIN tlsrpt.failure f2 ON f2.policy = p2.id
                WHERE p2.report = p.report AND p2.id <> p.id
                  AND p2.policy_domain IS NOT DISTINCT FROM p.policy_domain
                  AND f2.result_type IS NOT DISTINCT FROM f.result_type
                  AND f2.sending_mta_ip IS NOT DISTINCT FROM f.sending_mta_ip
                  AND f2.receiving_mx_hostname IS NOT DISTINCT FROM f.receiving_mx_hostname
                  AND f2.receiving_ip IS NOT DISTINCT FROM f.receiving_ip
                  AND (coalesce(f2.failed_session_count, 0) > coalesce(f.failed_session_count, 0)
                       OR (coalesce(f2.failed_session_count, 0) = coalesce(f.failed_session_count, 0)
                           AND f2.id < f.id)))
            THEN 0 ELSE coalesce(f.failed_session_count, 0) END AS counted_sessions,
       coalesce(coalesce(lower(p.policy_type), '') <> 'sts'
                AND (p.policy_domain IN (SELECT name FROM tlsrpt.mx_host_name)
                     OR tlsrpt.host_pattern(p.policy_domain) IN (SELECT name FROM tlsrpt.mx_host_name)),
                false) AS host_report
FROM tlsrpt.failure f
JOIN tlsrpt.policy p ON p.id = f.policy
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d;
