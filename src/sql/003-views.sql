-- tlsrpt-ingest schema version 3: parsed policies, dashboard views, alert functions.
-- Everything here is derived from the tables of versions 1 and 2 at query time (views
-- and functions, no stored copies), so it is always in step with the raw rows.
-- Reference: doc/views.md.

-- Every view and alert below reads reports through this one: all of them, or,
-- after SET tlsrpt.authenticated_only = on (in a session, a role's or a
-- database's settings, or a Grafana query), only those with an aligned DKIM
-- pass (report.authenticated, migration 002 and doc/trust.md).
CREATE VIEW tlsrpt.scoped_report AS
SELECT * FROM tlsrpt.report
WHERE authenticated OR coalesce(current_setting('tlsrpt.authenticated_only', true), '') NOT IN ('on', 'true', '1');

-- ---------------------------------------------------------------- MTA-STS policies

-- The lines of an MTA-STS policy_string, in order: an element may also hold
-- several lines (CRLF or LF). key is lowercased, value trimmed; a line without
-- ':' has key NULL.
CREATE FUNCTION tlsrpt.sts_lines(policy_string text[])
RETURNS TABLE (n integer, key text, value text, line text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (row_number() OVER (ORDER BY e.i, l.j))::integer,
           CASE WHEN strpos(l.line, ':') > 0
                THEN lower(btrim(substr(l.line, 1, strpos(l.line, ':') - 1), E' \t')) END,
           CASE WHEN strpos(l.line, ':') > 0
                THEN btrim(substr(l.line, strpos(l.line, ':') + 1), E' \t') END,
           btrim(l.line, E' \t')
    FROM unnest(policy_string) WITH ORDINALITY AS e(elem, i)
    CROSS JOIN LATERAL regexp_split_to_table(e.elem, E'\r\n|\n|\r') WITH ORDINALITY AS l(line, j)
    WHERE btrim(l.line, E' \t') <> ''
$$;

-- The fields of an MTA-STS policy, by key (any order). mx: every mx line, in
-- order, lowercased (the lines may repeat); other: every line that is not
-- version, mode, max_age or mx, as sent. max_age is NULL when not a number.
CREATE FUNCTION tlsrpt.sts_parse(policy_string text[],
    OUT version text, OUT mode text, OUT max_age bigint, OUT mx text[], OUT other text[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (array_agg(s.value ORDER BY s.n) FILTER (WHERE s.key = 'version'))[1],
           (array_agg(s.value ORDER BY s.n) FILTER (WHERE s.key = 'mode'))[1],
           (array_agg(CASE WHEN s.value ~ '^[0-9]{1,18}$' THEN s.value::bigint END ORDER BY s.n)
                FILTER (WHERE s.key = 'max_age'))[1],
           coalesce(array_agg(lower(s.value) ORDER BY s.n) FILTER (WHERE s.key = 'mx'), '{}'),
           coalesce(array_agg(s.line ORDER BY s.n)
                FILTER (WHERE s.key IS NULL OR s.key NOT IN ('version', 'mode', 'max_age', 'mx')), '{}')
    FROM tlsrpt.sts_lines(policy_string) AS s
$$;

CREATE VIEW tlsrpt.sts_policy AS
SELECT p.id AS policy, p.report, r.organization_name, p.policy_domain,
       r.date_start, r.date_end,
       s.version, s.mode, s.max_age, s.mx, s.other, p.policy_string
FROM tlsrpt.policy p
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL tlsrpt.sts_parse(p.policy_string) AS s
WHERE lower(p.policy_type) = 'sts';

-- ---------------------------------------------------------------- TLSA policies

-- The TLSA records of a policy_string, one row each: an element is one record
-- ("3 1 1 ABCD...") or, as Microsoft sends, a JSON array of records. A record
-- that cannot be read keeps its text in record, with the fields NULL.
CREATE FUNCTION tlsrpt.tlsa_parse(policy_string text[])
RETURNS TABLE (n integer, usage smallint, selector smallint, matching_type smallint,
               data text, record text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    elem text;
    item text;
    items text[];
    m text[];
BEGIN
    n := 0;
    FOREACH elem IN ARRAY coalesce(policy_string, '{}'::text[]) LOOP
        items := ARRAY[elem];
        IF ltrim(elem) LIKE '[%' THEN
            BEGIN
                SELECT coalesce(array_agg(x.v ORDER BY x.o), '{}'::text[]) INTO items
                FROM jsonb_array_elements_text(elem::jsonb) WITH ORDINALITY AS x(v, o);
            EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
                items := ARRAY[elem];
            END;
        END IF;
        FOREACH item IN ARRAY items LOOP
            n := n + 1;
            record := item;
            m := regexp_match(item, '^\s*([0-9]{1,3})\s+([0-9]{1,3})\s+([0-9]{1,3})\s+([0-9A-Fa-f][0-9A-Fa-f\s]*)$');
            IF m IS NULL OR m[1]::integer > 255 OR m[2]::integer > 255 OR m[3]::integer > 255 THEN
                usage := NULL; selector := NULL; matching_type := NULL; data := NULL;
            ELSE
                usage := m[1]::smallint;
                selector := m[2]::smallint;
                matching_type := m[3]::smallint;
                data := upper(regexp_replace(m[4], '\s', '', 'g'));
            END IF;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;

CREATE VIEW tlsrpt.tlsa_record AS
SELECT p.id AS policy, p.report, r.organization_name, p.policy_domain,
       r.date_start, r.date_end,
       t.n, t.usage, t.selector, t.matching_type, t.data, t.record
FROM tlsrpt.policy p
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL tlsrpt.tlsa_parse(p.policy_string) AS t
WHERE lower(p.policy_type) = 'tlsa';

-- ---------------------------------------------------------------- dashboard views

-- A report's day is the UTC date its period starts (date_end, then received_at
-- when the dates are missing). Sessions are summed over the report's policies.
CREATE VIEW tlsrpt.daily_domain AS
SELECT d.day,
       d.day::timestamp AT TIME ZONE 'UTC' AS day_start,
       p.policy_domain,
       sum(coalesce(p.total_successful_session_count, 0))::bigint AS successful,
       sum(coalesce(p.total_failure_session_count, 0))::bigint AS failed,
       sum(coalesce(p.total_successful_session_count, 0)
           + coalesce(p.total_failure_session_count, 0))::bigint AS sessions,
       round(sum(coalesce(p.total_failure_session_count, 0))::numeric
             / nullif(sum(coalesce(p.total_successful_session_count, 0)
                          + coalesce(p.total_failure_session_count, 0)), 0), 4) AS failure_rate,
       count(DISTINCT r.organization_name) AS reporters,
       coalesce(array_agg(DISTINCT r.organization_name)
                FILTER (WHERE r.organization_name IS NOT NULL), '{}') AS reporter_names,
       count(DISTINCT r.id) AS reports
FROM tlsrpt.scoped_report r
JOIN tlsrpt.policy p ON p.report = r.id
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d
GROUP BY d.day, p.policy_domain;

-- Every failure row with its policy and report around it.
CREATE VIEW tlsrpt.failure_detail AS
SELECT f.id AS failure, p.id AS policy, r.id AS report,
       d.day, d.day::timestamp AT TIME ZONE 'UTC' AS day_start,
       r.organization_name, r.date_start, r.date_end, r.received_at,
       p.policy_type, p.policy_domain,
       f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_mx_helo,
       f.receiving_ip, coalesce(f.failed_session_count, 0) AS failed_sessions,
       f.additional_information, f.failure_reason_code
FROM tlsrpt.failure f
JOIN tlsrpt.policy p ON p.id = f.policy
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d;

-- Failed sessions by day x policy domain x result type x receiving MX x organization.
CREATE VIEW tlsrpt.failure_daily AS
SELECT day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name,
       sum(failed_sessions)::bigint AS failed_sessions,
       count(*) AS failure_rows
FROM tlsrpt.failure_detail
GROUP BY day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name;

-- Sending MTAs that failed, most failed sessions first (all time; filter
-- failure_detail by day for a period).
CREATE VIEW tlsrpt.top_sending_ip AS
SELECT sending_mta_ip,
       sum(failed_sessions)::bigint AS failed_sessions,
       array_agg(DISTINCT policy_domain) FILTER (WHERE policy_domain IS NOT NULL) AS policy_domains,
       array_agg(DISTINCT result_type) FILTER (WHERE result_type IS NOT NULL) AS result_types,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS organizations,
       min(coalesce(date_start, received_at)) AS first_seen,
       max(coalesce(date_end, received_at)) AS last_seen
FROM tlsrpt.failure_detail
WHERE sending_mta_ip IS NOT NULL
GROUP BY sending_mta_ip
ORDER BY failed_sessions DESC, sending_mta_ip;

-- Receiving addresses (our MX hosts) that failed, most failed sessions first.
CREATE VIEW tlsrpt.top_receiving_ip AS
SELECT receiving_ip,
       sum(failed_sessions)::bigint AS failed_sessions,
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

-- The latest report of each (organization, policy domain): who reports, and
-- who stopped (silent_for).
CREATE VIEW tlsrpt.latest_report AS
SELECT organization_name, policy_domain, report, report_id, contact_info,
       date_start, date_end, received_at, reports, first_seen,
       now() - coalesce(date_end, received_at) AS silent_for
FROM (SELECT r.organization_name, p.policy_domain, r.id AS report, r.report_id, r.contact_info,
             r.date_start, r.date_end, r.received_at,
             count(*) OVER w AS reports,
             min(coalesce(r.date_start, r.received_at)) OVER w AS first_seen,
             row_number() OVER (PARTITION BY r.organization_name, p.policy_domain
                                ORDER BY coalesce(r.date_end, r.received_at) DESC, r.id DESC) AS rn
      FROM (SELECT DISTINCT report, policy_domain FROM tlsrpt.policy) p
      JOIN tlsrpt.scoped_report r ON r.id = p.report
      WINDOW w AS (PARTITION BY r.organization_name, p.policy_domain)) x
WHERE rn = 1;

-- MTA-STS mode and max_age as reported, per day and domain.
CREATE VIEW tlsrpt.sts_policy_daily AS
SELECT (coalesce(date_start, date_end) AT TIME ZONE 'UTC')::date AS day,
       (coalesce(date_start, date_end) AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC' AS day_start,
       policy_domain, mode, max_age,
       count(DISTINCT report) AS reports,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS reporters
FROM tlsrpt.sts_policy
WHERE coalesce(date_start, date_end) IS NOT NULL
GROUP BY 1, 2, policy_domain, mode, max_age;

-- Each distinct MTA-STS policy (mode, max_age, mx set) of a domain, with when
-- it was first and last reported: a policy change shows up as a new row.
CREATE VIEW tlsrpt.sts_policy_history AS
SELECT policy_domain, mode, max_age, mx,
       min(date_start) AS first_seen, max(date_end) AS last_seen,
       count(DISTINCT report) AS reports,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS reporters
FROM (SELECT s.policy_domain, s.mode, s.max_age, s.date_start, s.date_end, s.report, s.organization_name,
             (SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(s.mx) AS x) AS mx
      FROM tlsrpt.sts_policy s) y
GROUP BY policy_domain, mode, max_age, mx;

-- ---------------------------------------------------------------- alerts
-- Each returns rows only when something needs attention. "Recent" means
-- received (received_at) within the window, so a report arriving late is
-- still seen; periods ("the last N days") are by date_end.

-- Domains whose failure rate over reports ending in the last days days is
-- above threshold (a fraction: 0.05 = 5 %), with at least min_sessions sessions.
CREATE FUNCTION tlsrpt.alert_failure_rate(threshold numeric DEFAULT 0.05, days integer DEFAULT 7,
                                          min_sessions bigint DEFAULT 1)
RETURNS TABLE (policy_domain text, successful bigint, failed bigint, failure_rate numeric, reporters bigint)
LANGUAGE sql STABLE
AS $$
    SELECT p.policy_domain,
           sum(coalesce(p.total_successful_session_count, 0))::bigint,
           sum(coalesce(p.total_failure_session_count, 0))::bigint,
           round(sum(coalesce(p.total_failure_session_count, 0))::numeric
                 / nullif(sum(coalesce(p.total_successful_session_count, 0)
                              + coalesce(p.total_failure_session_count, 0)), 0), 4),
           count(DISTINCT r.organization_name)
    FROM tlsrpt.scoped_report r
    JOIN tlsrpt.policy p ON p.report = r.id
    WHERE r.date_end > now() - make_interval(days => alert_failure_rate.days)
    GROUP BY p.policy_domain
    HAVING sum(coalesce(p.total_successful_session_count, 0) + coalesce(p.total_failure_session_count, 0))
               >= greatest(alert_failure_rate.min_sessions, 1)
       AND sum(coalesce(p.total_failure_session_count, 0))::numeric
           / nullif(sum(coalesce(p.total_successful_session_count, 0)
                        + coalesce(p.total_failure_session_count, 0)), 0)
           > alert_failure_rate.threshold
    ORDER BY 4 DESC, 1
$$;

-- Result types of a domain received within recent and never received for that
-- domain in the history before it.
CREATE FUNCTION tlsrpt.alert_new_result_type(recent interval DEFAULT '1 day',
                                             history interval DEFAULT '90 days')
RETURNS TABLE (policy_domain text, result_type text, failed_sessions bigint,
               receiving_mx_hostnames text[], organizations text[])
LANGUAGE sql STABLE
AS $$
    WITH f AS (
        SELECT policy_domain, result_type, failed_sessions, receiving_mx_hostname, organization_name,
               received_at > now() - alert_new_result_type.recent AS is_recent
        FROM tlsrpt.failure_detail
        WHERE received_at > now() - alert_new_result_type.recent - alert_new_result_type.history
    )
    SELECT n.policy_domain, n.result_type, sum(n.failed_sessions)::bigint,
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

-- Reporters (organization, policy domain) that sent reports about daily (at
-- least min_reports distinct days within lookback, on average no more than two
-- days apart) and whose latest report ended more than silence ago.
CREATE FUNCTION tlsrpt.alert_silent_reporter(silence interval DEFAULT '3 days',
                                             lookback interval DEFAULT '30 days',
                                             min_reports integer DEFAULT 3)
RETURNS TABLE (organization_name text, policy_domain text, last_date_end timestamptz,
               silent_for interval, reports bigint)
LANGUAGE sql STABLE
AS $$
    WITH d AS (
        SELECT r.organization_name, p.policy_domain, r.date_end,
               (r.date_start AT TIME ZONE 'UTC')::date AS day
        FROM tlsrpt.scoped_report r
        JOIN tlsrpt.policy p ON p.report = r.id
        WHERE r.date_end > now() - alert_silent_reporter.lookback
          AND r.date_start IS NOT NULL
    )
    SELECT d.organization_name, d.policy_domain, max(d.date_end), now() - max(d.date_end),
           count(DISTINCT d.day)
    FROM d
    GROUP BY d.organization_name, d.policy_domain
    HAVING count(DISTINCT d.day) >= greatest(alert_silent_reporter.min_reports, 2)
       AND (max(d.day) - min(d.day))::numeric / (count(DISTINCT d.day) - 1) <= 2
       AND max(d.date_end) < now() - alert_silent_reporter.silence
    ORDER BY 1, 2
$$;

-- The result types that mean our side is broken (default: an expired
-- certificate, a certificate for another name, no STARTTLS), received within
-- recent, per domain and receiving MX.
CREATE FUNCTION tlsrpt.alert_critical_failure(recent interval DEFAULT '1 day',
    result_types text[] DEFAULT ARRAY['certificate-expired', 'certificate-host-mismatch',
                                      'starttls-not-supported'])
RETURNS TABLE (policy_domain text, result_type text, receiving_mx_hostname text,
               failed_sessions bigint, organizations text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, result_type, receiving_mx_hostname, sum(failed_sessions)::bigint,
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM tlsrpt.failure_detail
    WHERE received_at > now() - alert_critical_failure.recent
      AND result_type = ANY (alert_critical_failure.result_types)
    GROUP BY policy_domain, result_type, receiving_mx_hostname
    ORDER BY 1, 2, 3
$$;

-- All of the above at once, for a monitoring check: severity CRITICAL for the
-- critical result types and failure rates above crit_rate, WARNING otherwise.
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
