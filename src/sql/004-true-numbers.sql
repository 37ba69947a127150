-- tlsrpt-ingest schema version 4: true numbers (doc/views.md, "Counting").
-- * A session is counted once per report and policy domain, however many
--   policies (sts and tlsa, as Microsoft sends) the report lists it under.
-- * Host reports (RFC 8460 section 3: the policy domain is one of our MX hosts)
--   are marked, so all-domains totals leave them out.
-- * Duplicated failure rows of one report and domain are counted once.
-- * "Recent" in the alerts is measured on the report's period, arrival a gate.
-- * Sums are numeric: they cannot overflow.
-- Still plain views and SQL functions over the tables of versions 1 and 2.

-- ---------------------------------------------------------------- stored keys
-- From now on tlsrpt-ingest stores policy_domain, mx_host, receiving_mx_hostname
-- and result_type normalized (src/report.c); the rows stored before are
-- normalized the same way here, once. raw keeps what the reporter sent.

-- A host name as a grouping key: ASCII white space removed, ASCII lowercase,
-- trailing dots removed; NULL when nothing is left. Non-ASCII is kept as sent.
CREATE FUNCTION tlsrpt.normalize_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(rtrim(translate(regexp_replace(name, E'[ \\t\\n\\r\\f\\v]+', '', 'g'),
                                  'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), '.'), '')
$$;

-- A result type as a grouping key: ASCII white space trimmed, ASCII lowercase.
CREATE FUNCTION tlsrpt.normalize_result_type(result_type text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(translate(btrim(result_type, E' \t\n\r\f\v'),
                            'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), '')
$$;

UPDATE tlsrpt.policy SET policy_domain = tlsrpt.normalize_name(policy_domain)
WHERE policy_domain IS DISTINCT FROM tlsrpt.normalize_name(policy_domain);
UPDATE tlsrpt.policy
SET mx_host = ARRAY(SELECT x FROM (SELECT tlsrpt.normalize_name(m) AS x, o
                                   FROM unnest(mx_host) WITH ORDINALITY AS u(m, o)) y
                    WHERE x IS NOT NULL ORDER BY o)
WHERE mx_host IS NOT NULL
  AND EXISTS (SELECT 1 FROM unnest(mx_host) AS m WHERE m IS DISTINCT FROM tlsrpt.normalize_name(m));
UPDATE tlsrpt.failure SET receiving_mx_hostname = tlsrpt.normalize_name(receiving_mx_hostname)
WHERE receiving_mx_hostname IS DISTINCT FROM tlsrpt.normalize_name(receiving_mx_hostname);
UPDATE tlsrpt.failure SET result_type = tlsrpt.normalize_result_type(result_type)
WHERE result_type IS DISTINCT FROM tlsrpt.normalize_result_type(result_type);

-- the host-report test looks policy domains up among the MX names
CREATE INDEX policy_mx_host_idx ON tlsrpt.policy USING gin (mx_host);

-- ---------------------------------------------------------------- host reports

-- A policy is a host report (RFC 8460 section 3: its policy domain is an MX
-- host, as DANE senders and mox write them) when it is not an sts policy (an
-- MTA-STS policy belongs to a mail domain) and its policy domain is an MX host
-- of another policy domain: named in the mx-host of a policy of another domain
-- (also through a "*.parent" pattern) or as the receiving MX of a failure
-- reported for another domain. Any report counts, whenever and whoever sent it.
CREATE FUNCTION tlsrpt.is_host_report(policy_type text, policy_domain text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(lower(is_host_report.policy_type), '') <> 'sts'
       AND is_host_report.policy_domain IS NOT NULL
       AND (EXISTS (SELECT 1 FROM tlsrpt.policy o
                    WHERE o.mx_host && (ARRAY[is_host_report.policy_domain]
                                        || CASE WHEN strpos(is_host_report.policy_domain, '.') > 0
                                                THEN ARRAY['*.' || substr(is_host_report.policy_domain,
                                                                          strpos(is_host_report.policy_domain, '.') + 1)]
                                                ELSE '{}'::text[] END)
                      AND o.policy_domain IS DISTINCT FROM is_host_report.policy_domain)
            OR EXISTS (SELECT 1 FROM tlsrpt.failure f JOIN tlsrpt.policy o ON o.id = f.policy
                       WHERE f.receiving_mx_hostname = is_host_report.policy_domain
                         AND o.policy_domain IS DISTINCT FROM is_host_report.policy_domain))
$$;

-- ---------------------------------------------------------------- counting

-- Every policy with its report and the figures as the reporter gave them, per
-- policy type (Microsoft's sts and tlsa policies each with their own counts).
CREATE VIEW tlsrpt.policy_sessions AS
SELECT p.id AS policy, r.id AS report,
       (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
       r.organization_name, r.date_start, r.date_end, r.received_at,
       p.policy_type, p.policy_domain,
       coalesce(p.total_successful_session_count, 0) AS successful,
       coalesce(p.total_failure_session_count, 0) AS failed,
       coalesce(p.total_successful_session_count, 0)::numeric
           + coalesce(p.total_failure_session_count, 0) AS sessions,
       tlsrpt.is_host_report(p.policy_type, p.policy_domain) AS host_report
FROM tlsrpt.scoped_report r
JOIN tlsrpt.policy p ON p.report = r.id;

-- The sessions of a report for a policy domain, each counted once: the
-- policies of one report and domain (sts and tlsa) describe the same sessions.
-- sessions = the largest total of those policies, failed = the largest
-- failure count (a session that failed under any of them failed), successful
-- = sessions - failed. host_report: every policy of them is a host report.
CREATE VIEW tlsrpt.report_domain AS
SELECT report, day, organization_name, date_start, date_end, received_at, policy_domain,
       array_agg(DISTINCT policy_type ORDER BY policy_type) FILTER (WHERE policy_type IS NOT NULL) AS policy_types,
       count(*) AS policies,
       max(sessions) - max(failed) AS successful,
       max(failed)::numeric AS failed,
       max(sessions) AS sessions,
       bool_and(host_report) AS host_report
FROM tlsrpt.policy_sessions
GROUP BY report, day, organization_name, date_start, date_end, received_at, policy_domain;

-- One row per day x policy domain x host_report (a domain is normally only
-- one of the two), sessions counted once per report (report_domain).
DROP VIEW tlsrpt.daily_domain;
CREATE VIEW tlsrpt.daily_domain AS
SELECT d.day,
       d.day::timestamp AT TIME ZONE 'UTC' AS day_start,
       d.policy_domain,
       sum(d.successful) AS successful,
       sum(d.failed) AS failed,
       sum(d.sessions) AS sessions,
       round(sum(d.failed) / nullif(sum(d.sessions), 0), 4) AS failure_rate,
       count(DISTINCT d.organization_name) AS reporters,
       coalesce(array_agg(DISTINCT d.organization_name)
                FILTER (WHERE d.organization_name IS NOT NULL), '{}') AS reporter_names,
       count(*) AS reports,
       d.host_report
FROM tlsrpt.report_domain d
GROUP BY d.day, d.policy_domain, d.host_report;

-- The same per policy type, as the reporters gave them.
CREATE VIEW tlsrpt.daily_domain_policy_type AS
SELECT s.day,
       s.day::timestamp AT TIME ZONE 'UTC' AS day_start,
       s.policy_domain, s.policy_type,
       sum(s.successful) AS successful,
       sum(s.failed) AS failed,
       sum(s.sessions) AS sessions,
       round(sum(s.failed) / nullif(sum(s.sessions), 0), 4) AS failure_rate,
       count(DISTINCT s.organization_name) AS reporters,
       count(DISTINCT s.report) AS reports,
       bool_and(s.host_report) AS host_report
FROM tlsrpt.policy_sessions s
GROUP BY s.day, s.policy_domain, s.policy_type;

-- failure_detail gains counted_sessions: failed_sessions, or 0 for a row that
-- repeats, under another policy of the same report and domain, a row with the
-- same result type, sending IP, receiving MX and receiving IP (the one with
-- the most sessions, then the lowest id, counts); and host_report.
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
       tlsrpt.is_host_report(p.policy_type, p.policy_domain) AS host_report
FROM tlsrpt.failure f
JOIN tlsrpt.policy p ON p.id = f.policy
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d;

DROP VIEW tlsrpt.failure_daily;
CREATE VIEW tlsrpt.failure_daily AS
SELECT day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name,
       sum(counted_sessions) AS failed_sessions,
       count(*) AS failure_rows,
       bool_and(host_report) AS host_report
FROM tlsrpt.failure_detail
GROUP BY day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name;

DROP VIEW tlsrpt.top_sending_ip;
CREATE VIEW tlsrpt.top_sending_ip AS
SELECT sending_mta_ip,
       sum(counted_sessions) AS failed_sessions,
       array_agg(DISTINCT policy_domain) FILTER (WHERE policy_domain IS NOT NULL) AS policy_domains,
       array_agg(DISTINCT result_type) FILTER (WHERE result_type IS NOT NULL) AS result_types,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS organizations,
       min(coalesce(date_start, received_at)) AS first_seen,
       max(coalesce(date_end, received_at)) AS last_seen
FROM tlsrpt.failure_detail
WHERE sending_mta_ip IS NOT NULL
GROUP BY sending_mta_ip
ORDER BY failed_sessions DESC, sending_mta_ip;

DROP VIEW tlsrpt.top_receiving_ip;
CREATE VIEW tlsrpt.top_receiving_ip AS
SELECT receiving_ip,
       sum(counted_sessions) AS failed_sessions,
       array_agg(DISTINCT receiving_mx_hostname) FILTER (WHERE receiving_mx_hostname IS NOT NULL) AS receiving_mx_hostnames,
       array_agg(DISTINCT policy_domain) FILTER (WHERE policy_domain IS NOT NULL) AS policy_domains,
       array_agg(DISTINCT result_type) FILTER (WHERE result_type IS NOT NULL) AS result_types,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS organizations,
       min(coalesce(date_start, received_at)) AS first_seen,
       max(coalesce(date_end, received_at)) AS last_seen
FROM tlsrpt.failure_detail
WHERE receiving_ip IS NOT NULL
GROUP BY receiving_ip
ORDER BY failed_sessions DESC, receiving_ip;

-- ---------------------------------------------------------------- alerts

-- Recent, for the alerts: the report arrived within recent (the gate: each
-- report is news for that long) and its period ended less than recent + 1 day
-- ago (it is about the last day or so, even when it came a day late). A
-- backfill of old mail is never recent; yesterday's report arriving today is.
CREATE FUNCTION tlsrpt.is_recent(date_end timestamptz, received_at timestamptz, recent interval)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT received_at > now() - recent
       AND coalesce(date_end, received_at) > now() - recent - interval '1 day'
$$;

-- The return types change (numeric sums): drop and create again, with the
-- same parameters.
DROP FUNCTION tlsrpt.alerts(numeric, numeric, integer, interval, interval);
DROP FUNCTION tlsrpt.alert_failure_rate(numeric, integer, bigint);
DROP FUNCTION tlsrpt.alert_new_result_type(interval, interval);
DROP FUNCTION tlsrpt.alert_critical_failure(interval, text[]);

-- Domains whose failure rate over the reports ending in the last days days is
-- above threshold, with at least min_sessions sessions (counted once per
-- report and domain: report_domain).
CREATE FUNCTION tlsrpt.alert_failure_rate(threshold numeric DEFAULT 0.05, days integer DEFAULT 7,
                                          min_sessions bigint DEFAULT 1)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, failure_rate numeric, reporters bigint)
LANGUAGE sql STABLE
AS $$
    SELECT d.policy_domain, sum(d.successful), sum(d.failed),
           round(sum(d.failed) / nullif(sum(d.sessions), 0), 4),
           count(DISTINCT d.organization_name)
    FROM tlsrpt.report_domain d
    WHERE d.date_end > now() - make_interval(days => alert_failure_rate.days)
    GROUP BY d.policy_domain
    HAVING sum(d.sessions) >= greatest(alert_failure_rate.min_sessions, 1)
       AND sum(d.failed) / nullif(sum(d.sessions), 0) > alert_failure_rate.threshold
    ORDER BY 4 DESC, 1
$$;

-- Result types of a domain in recent reports (is_recent) and in none of the
-- reports whose period ended in the history before.
CREATE FUNCTION tlsrpt.alert_new_result_type(recent interval DEFAULT '1 day',
                                             history interval DEFAULT '90 days')
RETURNS TABLE (policy_domain text, result_type text, failed_sessions numeric,
               receiving_mx_hostnames text[], organizations text[])
LANGUAGE sql STABLE
AS $$
    WITH f AS (
        SELECT policy_domain, result_type, counted_sessions, receiving_mx_hostname, organization_name,
               tlsrpt.is_recent(date_end, received_at, alert_new_result_type.recent) AS is_recent
        FROM tlsrpt.failure_detail
        WHERE coalesce(date_end, received_at)
              > now() - alert_new_result_type.recent - interval '1 day' - alert_new_result_type.history
    )
    SELECT n.policy_domain, n.result_type, sum(n.counted_sessions),
           coalesce(array_agg(DISTINCT n.receiving_mx_hostname) FILTER (WHERE n.receiving_mx_hostname IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT n.organization_name) FILTER (WHERE n.organization_name IS NOT NULL), '{}')
    FROM f n
    WHERE n.is_recent
      AND NOT EXISTS (SELECT 1 FROM f o
                      WHERE NOT o.is_recent
                        AND o.policy_domain IS NOT DISTINCT FROM n.policy_domain
                        AND o.result_type IS NOT DISTINCT FROM n.result_type)
    GROUP BY n.policy_domain, n.result_type
    ORDER BY 1, 2
$$;

-- The result types that mean our side is broken, in recent reports
-- (is_recent), per domain and receiving MX; compared case-insensitively.
CREATE FUNCTION tlsrpt.alert_critical_failure(recent interval DEFAULT '1 day',
    result_types text[] DEFAULT ARRAY['certificate-expired', 'certificate-host-mismatch',
                                      'starttls-not-supported'])
RETURNS TABLE (policy_domain text, result_type text, receiving_mx_hostname text,
               failed_sessions numeric, organizations text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, result_type, receiving_mx_hostname, sum(counted_sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM tlsrpt.failure_detail
    WHERE tlsrpt.is_recent(date_end, received_at, alert_critical_failure.recent)
      AND lower(result_type) IN (SELECT lower(t) FROM unnest(alert_critical_failure.result_types) AS t)
    GROUP BY policy_domain, result_type, receiving_mx_hostname
    ORDER BY 1, 2, 3
$$;

CREATE FUNCTION tlsrpt.alerts(warn_rate numeric DEFAULT 0.05, crit_rate numeric DEFAULT 0.20,
                              days integer DEFAULT 7, recent interval DEFAULT '1 day',
                              silence interval DEFAULT '3 days')
RETURNS TABLE (severity text, alert text, policy_domain text, message text)
LANGUAGE sql STABLE
AS $$
    SELECT * FROM (
        SELECT 'CRITICAL'::text, c.result_type, c.policy_domain,
               format('%s: %s at %s (%s sessions)', coalesce(c.policy_domain, '?'), c.result_type,
                      coalesce(c.receiving_mx_hostname, '?'), c.failed_sessions)
        FROM tlsrpt.alert_critical_failure(alerts.recent) c
        UNION ALL
        SELECT CASE WHEN a.failure_rate > alerts.crit_rate THEN 'CRITICAL' ELSE 'WARNING' END,
               'failure-rate', a.policy_domain,
               format('%s: %s%% of %s sessions failed in %s days', coalesce(a.policy_domain, '?'),
                      round(a.failure_rate * 100, 1), a.successful + a.failed, alerts.days)
        FROM tlsrpt.alert_failure_rate(alerts.warn_rate, alerts.days) a
        UNION ALL
        SELECT 'WARNING', 'new-result-type', n.policy_domain,
               format('%s: new result type %s (%s sessions)', coalesce(n.policy_domain, '?'),
                      coalesce(n.result_type, '?'), n.failed_sessions)
        FROM tlsrpt.alert_new_result_type(alerts.recent) n
        UNION ALL
        SELECT 'WARNING', 'silent-reporter', s.policy_domain,
               format('%s: no report from %s for %s days', coalesce(s.policy_domain, '?'),
                      coalesce(s.organization_name, '?'), extract(day FROM s.silent_for))
        FROM tlsrpt.alert_silent_reporter(alerts.silence) s
    ) a (severity, alert, policy_domain, message)
    ORDER BY a.severity, a.policy_domain, a.alert, a.message
$$;
