-- tlsrpt-ingest schema version 8: the reporters' view (doc/views.md, "Reporters").
-- * reporter_ledger: per (organization, policy domain) its first and last
--   period, its report count, its usual cadence (the median gap between the
--   days its periods start, over its last 10 gaps), when the next report is
--   due and how late it is, and whether it is loop-only.
-- * alert_silent_reporter: silent by each reporter's own cadence.
-- * sts_policy_version, sts_policy_drift, alert_stale_policy: the MTA-STS
--   policies of a domain over time, and the reporters still applying one
--   that was replaced longer ago than its max_age (or that is not the policy
--   the administrator publishes: published_sts_policy).
-- Fast like migration 5: two rollup tables caught up by refresh(), what is
-- pending computed at query time, the plain definitions beside them.

-- ---------------------------------------------------------------- the ledger's days
-- A reporter's day: the UTC date its report's period starts (migration 3's
-- day: date_start, then date_end, then received_at), with the reports of that
-- day and their sessions and failed sessions (counted once per report and
-- domain, as report_domain counts them).
CREATE TYPE tlsrpt.reporter_day AS (day date, reports bigint, sessions numeric, failed numeric);

-- A reporter's days kept: its latest 32 distinct days, latest first. The
-- cadence reads the latest 11 (10 gaps), loop-only the 30 days up to the
-- latest; 32 is enough for both (30 days hold at most 31 dates).
CREATE FUNCTION tlsrpt.reporter_days_merge(days tlsrpt.reporter_day[])
RETURNS tlsrpt.reporter_day[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(ROW(x.day, x.reports, x.sessions, x.failed)::tlsrpt.reporter_day ORDER BY x.day DESC),
                    '{}')
    FROM (SELECT (u).day, sum((u).reports)::bigint AS reports, sum((u).sessions) AS sessions,
                 sum((u).failed) AS failed
          FROM unnest(days) AS u
          WHERE (u).day IS NOT NULL
          GROUP BY 1
          ORDER BY 1 DESC
          LIMIT 32) x
$$;

-- The days of some reports, per (organization, policy domain).
CREATE FUNCTION tlsrpt.reporter_rows(reports bigint[], auth boolean)
RETURNS TABLE (organization_name text, policy_domain text, days tlsrpt.reporter_day[])
LANGUAGE sql STABLE
AS $$
    WITH rd AS (
        SELECT r.id, r.organization_name, p.policy_domain,
               (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               max(coalesce(p.total_successful_session_count, 0)::numeric
                   + coalesce(p.total_failure_session_count, 0)) AS sessions,
               max(coalesce(p.total_failure_session_count, 0))::numeric AS failed
        FROM unnest(reporter_rows.reports) AS u(id)
        JOIN tlsrpt.report r ON r.id = u.id
        JOIN tlsrpt.policy p ON p.report = r.id
        WHERE (r.authenticated OR NOT auth) AND NOT r.shadowed
        GROUP BY r.id, r.organization_name, p.policy_domain, 4
    ), d AS (
        SELECT organization_name, policy_domain, day, count(*) AS reports, sum(sessions) AS sessions,
               sum(failed) AS failed,
               row_number() OVER (PARTITION BY organization_name, policy_domain ORDER BY day DESC) AS n
        FROM rd
        GROUP BY organization_name, policy_domain, day
    )
    SELECT organization_name, policy_domain,
           array_agg(ROW(day, reports, sessions, failed)::tlsrpt.reporter_day ORDER BY day DESC)
    FROM d WHERE n <= 32
    GROUP BY organization_name, policy_domain
$$;

CREATE TABLE tlsrpt.rollup_reporter (
    auth_only         boolean NOT NULL,
    organization_name text,
    policy_domain     text,
    days              tlsrpt.reporter_day[] NOT NULL,
    CONSTRAINT rollup_reporter_key UNIQUE NULLS NOT DISTINCT (auth_only, organization_name, policy_domain)
);

-- What the ledger says of a reporter's days (latest first):
-- gaps: the gaps (in days) between its latest 11 days, at most 10;
-- cadence: their median (percentile_cont: the mean of the middle two for an
-- even count), NULL under 2 gaps; longest_gap: the longest of them;
-- sessions_30d, failed_30d, busiest_day_30d: over its days in the 30 days up
-- to its latest day (that day and the 29 before it).
CREATE FUNCTION tlsrpt.reporter_stats(days tlsrpt.reporter_day[])
RETURNS TABLE (active_days integer, gaps integer, cadence numeric, longest_gap integer,
               sessions_30d numeric, failed_30d numeric, busiest_day_30d numeric)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT cardinality(days),
           g.n, CASE WHEN g.n >= 2 THEN g.median END, g.longest,
           w.sessions, w.failed, w.busiest
    FROM (SELECT count(x.gap)::integer AS n,
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY x.gap)::numeric AS median,
                 max(x.gap) AS longest
          FROM (SELECT (days[i]).day - (days[i + 1]).day AS gap
                FROM generate_series(1, least(cardinality(days), 11) - 1) AS i) x) g,
         (SELECT sum((u).sessions) AS sessions, sum((u).failed) AS failed, max((u).sessions) AS busiest
          FROM unnest(days) AS u
          WHERE (u).day > (days[1]).day - 30) w
$$;

-- The silence rule (doc/views.md, "Reporters"): a reporter with a cadence
-- (at least min_days days, so 2 gaps) is silent once its latest period ended
-- longer ago than the longest of: floor, twice its cadence, and the longest
-- gap among its latest 10. NULL when it has no cadence.
CREATE FUNCTION tlsrpt.reporter_silent_after(cadence numeric, longest_gap integer, active_days integer,
                                             floor interval DEFAULT '3 days', min_days integer DEFAULT 3)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN cadence IS NOT NULL AND active_days >= greatest(min_days, 3)
                THEN greatest(floor, make_interval(secs => (2 * cadence * 86400)::double precision),
                              make_interval(days => longest_gap)) END
$$;

-- Loop-only (doc/views.md): in the 30 days up to its latest day, not one
-- failed session, and at most 10 sessions on any day: a reporter that only
-- writes because we mailed it (our own reports, a reply). A small domain
-- that gets a handful of mails a day looks the same: the flag is for leaving
-- such reporters out of a dashboard, not an alarm.
CREATE FUNCTION tlsrpt.reporter_loop_only(sessions_30d numeric, failed_30d numeric, busiest_day_30d numeric)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(failed_30d = 0 AND busiest_day_30d <= 10, false)
$$;

-- The plain definition: from report_domain (migration 4) and latest_report_plain.
CREATE VIEW tlsrpt.reporter_ledger_plain AS
WITH d AS (
    SELECT organization_name, policy_domain, day, count(*) AS reports, sum(sessions) AS sessions,
           sum(failed) AS failed,
           row_number() OVER (PARTITION BY organization_name, policy_domain ORDER BY day DESC) AS n
    FROM tlsrpt.report_domain
    GROUP BY organization_name, policy_domain, day
), a AS (
    SELECT organization_name, policy_domain,
           array_agg(ROW(day, reports, sessions, failed)::tlsrpt.reporter_day ORDER BY day DESC) AS days
    FROM d WHERE n <= 32
    GROUP BY organization_name, policy_domain
)
SELECT l.organization_name, l.policy_domain, l.first_seen, l.date_start AS last_start,
       coalesce(l.date_end, l.received_at) AS last_end, l.reports, s.active_days,
       s.gaps, s.cadence, s.longest_gap,
       coalesce(l.date_end, l.received_at) + make_interval(secs => (s.cadence * 86400)::double precision) AS next_due,
       greatest(now() - (coalesce(l.date_end, l.received_at)
                         + make_interval(secs => (s.cadence * 86400)::double precision)), interval '0') AS late_by,
       tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days) AS silent_after,
       coalesce(now() - coalesce(l.date_end, l.received_at)
                > tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days), false) AS silent,
       s.sessions_30d, s.failed_30d, s.busiest_day_30d,
       tlsrpt.reporter_loop_only(s.sessions_30d, s.failed_30d, s.busiest_day_30d) AS loop_only,
       a.days
FROM tlsrpt.latest_report_plain l
JOIN a ON a.organization_name IS NOT DISTINCT FROM l.organization_name
      AND a.policy_domain IS NOT DISTINCT FROM l.policy_domain
CROSS JOIN LATERAL tlsrpt.reporter_stats(a.days) AS s;

-- The plain definition behind a function call, for the fast view's after-a-purge
-- branch: planned only when it runs, so that its cost does not make every
-- query of the fast view pay for JIT compilation.
CREATE FUNCTION tlsrpt.reporter_ledger_from_tables() RETURNS SETOF tlsrpt.reporter_ledger_plain
LANGUAGE plpgsql STABLE ROWS 100
AS $$
BEGIN
    RETURN QUERY SELECT * FROM tlsrpt.reporter_ledger_plain;
END
$$;

-- ---------------------------------------------------------------- MTA-STS per reporter and day
-- The MTA-STS policies applied, per day x policy domain x organization x
-- policy (mode, max_age, mx set as in sts_policy_history), with the sessions
-- and failed sessions of those sts policies.
CREATE TABLE tlsrpt.rollup_sts_reporter_day (
    auth_only         boolean NOT NULL,
    day               date NOT NULL,
    day_start         timestamptz NOT NULL,
    policy_domain     text,
    organization_name text,
    mode              text,
    max_age           bigint,
    mx                text[] NOT NULL,
    reports           bigint NOT NULL,
    sessions          numeric NOT NULL,
    failed            numeric NOT NULL
);
CREATE INDEX rollup_sts_reporter_day_day_idx ON tlsrpt.rollup_sts_reporter_day (day);
CREATE INDEX rollup_sts_reporter_day_domain_idx ON tlsrpt.rollup_sts_reporter_day (auth_only, policy_domain, day);

CREATE FUNCTION tlsrpt.sts_reporter_day_rows(days date[], auth boolean)
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
        WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date = ANY (days)
          AND cardinality(days) > 0 AND lower(p.policy_type) = 'sts' AND (r.authenticated OR NOT auth)
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

CREATE VIEW tlsrpt.sts_reporter_daily_plain AS
SELECT d.day, d.day::timestamp AT TIME ZONE 'UTC' AS day_start, s.policy_domain, s.organization_name,
       s.mode, s.max_age,
       (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(s.mx) AS m) AS mx,
       count(DISTINCT s.report) AS reports,
       sum(coalesce(p.total_successful_session_count, 0)::numeric + coalesce(p.total_failure_session_count, 0))
           AS sessions,
       sum(coalesce(p.total_failure_session_count, 0))::numeric AS failed
FROM tlsrpt.sts_policy s
JOIN tlsrpt.policy p ON p.id = s.policy
JOIN tlsrpt.report r ON r.id = s.report
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d
GROUP BY d.day, s.policy_domain, s.organization_name, s.mode, s.max_age, 7;

-- ---------------------------------------------------------------- refresh
CREATE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    a boolean;
BEGIN
    DELETE FROM tlsrpt.rollup_sts_reporter_day WHERE day = ANY (days);
    IF rebuild THEN
        TRUNCATE tlsrpt.rollup_reporter;
    END IF;
    FOREACH a IN ARRAY ARRAY[false, true] LOOP
        INSERT INTO tlsrpt.rollup_sts_reporter_day
        SELECT a, x.day, x.day::timestamp AT TIME ZONE 'UTC', x.policy_domain, x.organization_name, x.mode,
               x.max_age, x.mx, x.reports, x.sessions, x.failed
        FROM tlsrpt.sts_reporter_day_rows(days, a) AS x;
        INSERT INTO tlsrpt.rollup_reporter AS l
        SELECT a, x.organization_name, x.policy_domain, x.days
        FROM tlsrpt.reporter_rows(new_ids, a) AS x
        ON CONFLICT ON CONSTRAINT rollup_reporter_key DO UPDATE SET
            days = tlsrpt.reporter_days_merge(l.days || excluded.days);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION tlsrpt.refresh() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    st tlsrpt.rollup_state;
    snap pg_snapshot := pg_current_snapshot();
    new_ids bigint[];
    days date[];
    top bigint;
    a boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tlsrpt.refresh'));
    SELECT * INTO st FROM tlsrpt.rollup_state FOR UPDATE;

    -- the reports to take in: above the watermark, and gaps that showed up
    SELECT coalesce(array_agg(id), '{}') INTO new_ids FROM tlsrpt.rollup_pending;
    SELECT max(x) INTO top FROM unnest(new_ids) AS x;
    DELETE FROM tlsrpt.rollup_gap g USING tlsrpt.report r WHERE r.id = g.id;
    -- gaps: old ones whose writers are over for sure go; the others are seen once more
    DELETE FROM tlsrpt.rollup_gap WHERE seen_xmax IS NOT NULL AND seen_xmax <= pg_snapshot_xmin(snap);
    UPDATE tlsrpt.rollup_gap SET seen_xmax = pg_snapshot_xmax(snap) WHERE seen_xmax IS NULL;
    IF top > st.watermark THEN
        INSERT INTO tlsrpt.rollup_gap (id)
        SELECT g FROM generate_series(st.watermark + 1, top) AS g
        WHERE NOT EXISTS (SELECT 1 FROM tlsrpt.report r WHERE r.id = g)
        ON CONFLICT DO NOTHING;
    END IF;

    -- days to compute again: those of the new reports and those a DELETE touched
    SELECT coalesce(array_agg(DISTINCT d), '{}') INTO days FROM (
        SELECT (coalesce(date_start, date_end, received_at) AT TIME ZONE 'UTC')::date AS d
        FROM tlsrpt.report WHERE id IN (SELECT unnest(new_ids))
        UNION ALL SELECT day FROM tlsrpt.rollup_dirty_day) x;
    DELETE FROM tlsrpt.rollup_dirty_day;

    DELETE FROM tlsrpt.rollup_daily_domain WHERE day = ANY (days);
    DELETE FROM tlsrpt.rollup_sts_daily WHERE day = ANY (days);
    FOREACH a IN ARRAY ARRAY[false, true] LOOP
        INSERT INTO tlsrpt.rollup_daily_domain
        SELECT a, x.day, x.day::timestamp AT TIME ZONE 'UTC', x.policy_domain, x.has_sts, x.successful, x.failed,
               x.sessions, x.reporter_names, x.reports
        FROM tlsrpt.daily_domain_rows(days, a) AS x;
        INSERT INTO tlsrpt.rollup_sts_daily
        SELECT a, x.day, x.day::timestamp AT TIME ZONE 'UTC', x.policy_domain, x.mode, x.max_age, x.reports, x.reporters
        FROM tlsrpt.sts_daily_rows(days, a) AS x;
    END LOOP;

    INSERT INTO tlsrpt.failure_fact
    SELECT f.id, r.id, r.authenticated, d.day, d.day::timestamp AT TIME ZONE 'UTC',
           r.organization_name, r.date_start, r.date_end, r.received_at, p.policy_type, p.policy_domain,
           f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_ip,
           coalesce(f.failed_session_count, 0),
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
            THEN 0 ELSE coalesce(f.failed_session_count, 0) END
    FROM tlsrpt.report r
    JOIN tlsrpt.policy p ON p.report = r.id
    JOIN tlsrpt.failure f ON f.policy = p.id
    CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d
    WHERE r.id IN (SELECT unnest(new_ids))
    ON CONFLICT DO NOTHING;

    IF st.rebuild THEN
        -- reports went: the all-time rollups are computed again from everything
        TRUNCATE tlsrpt.rollup_latest, tlsrpt.rollup_sts_history;
        SELECT coalesce(array_agg(id), '{}') INTO new_ids FROM tlsrpt.report;
    END IF;
    FOREACH a IN ARRAY ARRAY[false, true] LOOP
        INSERT INTO tlsrpt.rollup_latest AS l
        SELECT a, x.organization_name, x.policy_domain, x.reports, x.first_seen, x.latest_at, x.latest_report,
               x.max_date_end
        FROM tlsrpt.latest_rows(new_ids, a) AS x
        ON CONFLICT ON CONSTRAINT rollup_latest_key DO UPDATE SET
            reports = l.reports + excluded.reports,
            first_seen = least(l.first_seen, excluded.first_seen),
            latest_at = CASE WHEN (excluded.latest_at, excluded.latest_report) > (l.latest_at, l.latest_report)
                                  OR l.latest_at IS NULL THEN excluded.latest_at ELSE l.latest_at END,
            latest_report = CASE WHEN (excluded.latest_at, excluded.latest_report) > (l.latest_at, l.latest_report)
                                      OR l.latest_at IS NULL THEN excluded.latest_report ELSE l.latest_report END,
            max_date_end = greatest(l.max_date_end, excluded.max_date_end);
        INSERT INTO tlsrpt.rollup_sts_history AS h
        SELECT a, x.policy_domain, x.mode, x.max_age, x.mx, x.first_seen, x.last_seen, x.reports, x.reporters
        FROM tlsrpt.sts_history_rows(new_ids, a) AS x
        ON CONFLICT ON CONSTRAINT rollup_sts_history_key DO UPDATE SET
            first_seen = least(h.first_seen, excluded.first_seen),
            last_seen = greatest(h.last_seen, excluded.last_seen),
            reports = h.reports + excluded.reports,
            reporters = (SELECT array_agg(DISTINCT o ORDER BY o)
                         FROM unnest(h.reporters || excluded.reporters) AS o);
    END LOOP;

    -- migration 8: the reporter ledger and the MTA-STS policies per reporter and day
    PERFORM tlsrpt.refresh_reporters(new_ids, days, st.rebuild);

    -- host reports: every policy domain against every MX name, again
    IF st.rebuild THEN
        TRUNCATE tlsrpt.rollup_mx_name;
    END IF;
    INSERT INTO tlsrpt.rollup_mx_name SELECT * FROM tlsrpt.mx_names(new_ids) ON CONFLICT DO NOTHING;
    DELETE FROM tlsrpt.rollup_host_domain;
    INSERT INTO tlsrpt.rollup_host_domain
    SELECT tlsrpt.host_domains(ARRAY(SELECT DISTINCT l.policy_domain FROM tlsrpt.rollup_latest l WHERE NOT l.auth_only),
                               ARRAY(SELECT n FROM tlsrpt.rollup_mx_name n));

    UPDATE tlsrpt.rollup_state SET watermark = greatest(watermark, coalesce(top, 0)), rebuild = false,
           refreshed_at = now();
    RETURN cardinality(new_ids);
END
$$;
CREATE OR REPLACE FUNCTION tlsrpt.rollup_reset() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.rollup_daily_domain, tlsrpt.rollup_sts_daily, tlsrpt.failure_fact,
             tlsrpt.rollup_latest, tlsrpt.rollup_sts_history, tlsrpt.rollup_gap, tlsrpt.rollup_dirty_day,
             tlsrpt.rollup_host_domain, tlsrpt.rollup_mx_name,
             tlsrpt.rollup_reporter, tlsrpt.rollup_sts_reporter_day;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

-- ---------------------------------------------------------------- the fast views
-- reporter_ledger: rollup_latest and rollup_reporter, with the pending
-- reports' rows added (grouped by organization and domain, so that NULLs
-- match); after a purge, until the next refresh(), the plain definition.
-- (a function with jit off: at a million reports the planner's estimate of
-- these few thousand rows passes jit_above_cost, and compiling the query
-- would cost more than running it)
CREATE FUNCTION tlsrpt.reporter_ledger_rows() RETURNS SETOF tlsrpt.reporter_ledger_plain
LANGUAGE sql STABLE PARALLEL RESTRICTED SET jit = off
AS $$
    WITH u AS (
        SELECT organization_name, policy_domain, reports, first_seen, latest_at, latest_report,
               NULL::tlsrpt.reporter_day[] AS days
        FROM tlsrpt.rollup_latest WHERE auth_only = (SELECT tlsrpt.authenticated_only())
        UNION ALL
        SELECT organization_name, policy_domain, NULL, NULL, NULL, NULL, days
        FROM tlsrpt.rollup_reporter WHERE auth_only = (SELECT tlsrpt.authenticated_only())
        UNION ALL
        SELECT organization_name, policy_domain, reports, first_seen, latest_at, latest_report, NULL
        FROM tlsrpt.latest_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending), (SELECT tlsrpt.authenticated_only()))
        WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending)
        UNION ALL
        SELECT organization_name, policy_domain, NULL, NULL, NULL, NULL, days
        FROM tlsrpt.reporter_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending), (SELECT tlsrpt.authenticated_only()))
        WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending)
    ), c AS (
        SELECT organization_name, policy_domain, sum(reports)::bigint AS reports, min(first_seen) AS first_seen,
               (array_agg(latest_report ORDER BY latest_at DESC, latest_report DESC)
                    FILTER (WHERE latest_report IS NOT NULL))[1] AS latest_report,
               CASE WHEN count(days) = 1 THEN min(days) ELSE tlsrpt.reporter_days_merge(tlsrpt.array_concat(days)) END
                   AS days
        FROM u
        GROUP BY organization_name, policy_domain
    )
    SELECT c.organization_name, c.policy_domain, c.first_seen, r.date_start AS last_start,
           coalesce(r.date_end, r.received_at) AS last_end, c.reports, s.active_days,
           s.gaps, s.cadence, s.longest_gap,
           coalesce(r.date_end, r.received_at) + make_interval(secs => (s.cadence * 86400)::double precision) AS next_due,
           greatest(now() - (coalesce(r.date_end, r.received_at)
                             + make_interval(secs => (s.cadence * 86400)::double precision)), interval '0') AS late_by,
           tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days) AS silent_after,
           coalesce(now() - coalesce(r.date_end, r.received_at)
                    > tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days), false) AS silent,
           s.sessions_30d, s.failed_30d, s.busiest_day_30d,
           tlsrpt.reporter_loop_only(s.sessions_30d, s.failed_30d, s.busiest_day_30d) AS loop_only,
           c.days
    FROM c
    JOIN tlsrpt.report r ON r.id = c.latest_report
    CROSS JOIN LATERAL tlsrpt.reporter_stats(c.days) AS s
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
    UNION ALL
    SELECT * FROM tlsrpt.reporter_ledger_from_tables() WHERE (SELECT rebuild FROM tlsrpt.rollup_state)
$$;

CREATE VIEW tlsrpt.reporter_ledger AS SELECT * FROM tlsrpt.reporter_ledger_rows();

CREATE VIEW tlsrpt.sts_reporter_daily AS
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
      FROM tlsrpt.sts_reporter_day_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                        (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending_day)) x;

-- ---------------------------------------------------------------- alerts: silent reporter
-- Same parameters as before, read differently (doc/views.md, "Reporters"):
-- silence is the floor of the silence rule (reporter_silent_after), lookback
-- how long a silent reporter is alerted about (its latest period ended within
-- lookback; older ones are in the ledger only), min_reports the days a
-- reporter needs (at least 3: two gaps) to have a cadence.
DROP FUNCTION tlsrpt.alert_silent_reporter(interval, interval, integer);
DROP FUNCTION tlsrpt.alert_silent_reporter_plain(interval, interval, integer);

CREATE FUNCTION tlsrpt.alert_silent_reporter(silence interval DEFAULT '3 days',
                                             lookback interval DEFAULT '30 days',
                                             min_reports integer DEFAULT 3)
RETURNS TABLE (organization_name text, policy_domain text, last_date_end timestamptz,
               silent_for interval, reports bigint, cadence numeric, silent_after interval)
LANGUAGE sql STABLE SET jit = off
AS $$
    SELECT l.organization_name, l.policy_domain, l.last_end, now() - l.last_end, l.reports, l.cadence,
           tlsrpt.reporter_silent_after(l.cadence, l.longest_gap, l.active_days,
                                        alert_silent_reporter.silence, alert_silent_reporter.min_reports)
    FROM tlsrpt.reporter_ledger l
    WHERE l.last_end > now() - alert_silent_reporter.lookback
      AND now() - l.last_end > tlsrpt.reporter_silent_after(l.cadence, l.longest_gap, l.active_days,
                                   alert_silent_reporter.silence, alert_silent_reporter.min_reports)
    ORDER BY 1, 2
$$;

CREATE FUNCTION tlsrpt.alert_silent_reporter_plain(silence interval DEFAULT '3 days',
                                                   lookback interval DEFAULT '30 days',
                                                   min_reports integer DEFAULT 3)
RETURNS TABLE (organization_name text, policy_domain text, last_date_end timestamptz,
               silent_for interval, reports bigint, cadence numeric, silent_after interval)
LANGUAGE sql STABLE
AS $$
    SELECT l.organization_name, l.policy_domain, l.last_end, now() - l.last_end, l.reports, l.cadence,
           tlsrpt.reporter_silent_after(l.cadence, l.longest_gap, l.active_days,
                                        alert_silent_reporter_plain.silence, alert_silent_reporter_plain.min_reports)
    FROM tlsrpt.reporter_ledger_plain l
    WHERE l.last_end > now() - alert_silent_reporter_plain.lookback
      AND now() - l.last_end > tlsrpt.reporter_silent_after(l.cadence, l.longest_gap, l.active_days,
                                   alert_silent_reporter_plain.silence, alert_silent_reporter_plain.min_reports)
    ORDER BY 1, 2
$$;

-- ---------------------------------------------------------------- the published policy
-- What the administrator publishes (published_sts_policy in the config
-- file): tlsrpt-ingest --init-db writes it here, parsed, and empties the
-- table when the setting is not given. policy_domain NULL: every domain.
CREATE TABLE tlsrpt.published_sts_policy (
    policy_domain text,
    policy        text NOT NULL,
    mode          text,
    max_age       bigint,
    mx            text[] NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT published_sts_policy_key UNIQUE NULLS NOT DISTINCT (policy_domain)
);

-- Called by --init-db: the published policy is policy (the text of
-- mta-sts.txt), or none when policy is NULL.
CREATE FUNCTION tlsrpt.set_published_sts_policy(policy text) RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM tlsrpt.published_sts_policy
    WHERE set_published_sts_policy.policy IS NULL
       OR policy IS DISTINCT FROM set_published_sts_policy.policy;
    INSERT INTO tlsrpt.published_sts_policy (policy_domain, policy, mode, max_age, mx)
    SELECT NULL, set_published_sts_policy.policy, s.mode, s.max_age,
           (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(s.mx) AS m)
    FROM tlsrpt.sts_parse(ARRAY[set_published_sts_policy.policy]) AS s
    WHERE set_published_sts_policy.policy IS NOT NULL
    ON CONFLICT ON CONSTRAINT published_sts_policy_key DO NOTHING;
$$;

-- ---------------------------------------------------------------- policy versions and drift
-- Each MTA-STS policy (mode, max_age, mx set) a domain's reports applied, in
-- the order they first appeared (version 1 first), with when the next one
-- appeared (replaced_at: the first appearance of another policy later than
-- this one's; two that appeared at the same moment do not replace each other) and from when a reporter still applying it is
-- stale (stale_after = replaced_at + its max_age; a max_age that is not a
-- number counts as one day, one above 31557600 as 31557600, RFC 8461's
-- limit). With a published policy: that one is current (published = true,
-- never stale), and every other policy was replaced, at the latest, when the
-- published one was first applied by a reporter (or, if none ever did, when
-- --init-db loaded it).
CREATE FUNCTION tlsrpt.sts_policy_versions()
RETURNS TABLE (policy_domain text, version integer, mode text, max_age bigint, mx text[],
               first_seen timestamptz, last_seen timestamptz, reports bigint, reporters text[],
               published boolean, replaced_at timestamptz, stale_after timestamptz)
LANGUAGE sql STABLE SET jit = off
AS $$
    WITH h AS (
        SELECT h.policy_domain, h.mode, h.max_age, h.mx, h.first_seen, h.last_seen, h.reports, h.reporters,
               row_number() OVER w AS version,
               -- the first appearance of a policy after this one's (ties: neither replaced the other)
               min(h.first_seen) OVER (PARTITION BY h.policy_domain ORDER BY h.first_seen NULLS LAST
                                       RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING EXCLUDE GROUP) AS next_seen,
               coalesce(d.policy_domain, a.policy_domain) IS NOT NULL OR a.policy IS NOT NULL AS has_published,
               coalesce(d.mode, a.mode) AS pub_mode, coalesce(d.max_age, a.max_age) AS pub_max_age,
               coalesce(d.mx, a.mx) AS pub_mx, coalesce(d.loaded_at, a.loaded_at) AS pub_loaded_at
        FROM tlsrpt.sts_policy_history h
        LEFT JOIN tlsrpt.published_sts_policy d ON d.policy_domain = h.policy_domain
        LEFT JOIN tlsrpt.published_sts_policy a ON a.policy_domain IS NULL
        WHERE h.policy_domain IS NOT NULL
        WINDOW w AS (PARTITION BY h.policy_domain ORDER BY h.first_seen NULLS LAST, h.last_seen NULLS LAST,
                                                            h.mode, h.max_age, h.mx)
    ), p AS (
        SELECT h.*,
               h.has_published AND h.mode IS NOT DISTINCT FROM h.pub_mode
                   AND h.max_age IS NOT DISTINCT FROM h.pub_max_age AND h.mx = h.pub_mx AS published
        FROM h
    ), r AS (
        SELECT p.*,
               CASE WHEN p.published THEN NULL
                    WHEN p.has_published
                    THEN least(p.next_seen,
                               coalesce(min(p.first_seen) FILTER (WHERE p.published) OVER (PARTITION BY p.policy_domain),
                                        p.pub_loaded_at))
                    ELSE p.next_seen END AS replaced_at
        FROM p
    )
    SELECT policy_domain, version::integer AS version, mode, max_age, mx, first_seen, last_seen, reports, reporters,
           published, replaced_at,
           replaced_at + make_interval(secs => least(coalesce(max_age, 86400), 31557600)::double precision)
               AS stale_after
    FROM r
$$;

CREATE VIEW tlsrpt.sts_policy_version AS SELECT * FROM tlsrpt.sts_policy_versions();

-- The reports of a reporter that applied a policy after it was stale
-- (their period started after stale_after), per domain x organization x
-- policy, with the sessions and the failed sessions of that policy in them.
-- since: only the days from then on. reason: 'replaced' (a newer policy
-- appeared) or 'not published' (published_sts_policy names another).
CREATE FUNCTION tlsrpt.sts_drift(since date DEFAULT '-infinity')
RETURNS TABLE (policy_domain text, organization_name text, version integer, mode text, max_age bigint,
               mx text[], reason text, replaced_at timestamptz, stale_after timestamptz,
               first_day date, last_day date, reports numeric, sessions numeric, failed numeric)
LANGUAGE sql STABLE SET jit = off
AS $$
    -- per stale policy, its domain's days after stale_after (an index range
    -- each: LATERAL, not a join over every row of the per-day rollup)
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
          AND x.day >= greatest((v.stale_after AT TIME ZONE 'UTC')::date, sts_drift.since)
          AND x.day_start >= v.stale_after
          AND x.mode IS NOT DISTINCT FROM v.mode AND x.max_age IS NOT DISTINCT FROM v.max_age AND x.mx = v.mx
        GROUP BY x.organization_name) d
    WHERE v.stale_after IS NOT NULL
    ORDER BY 1, 2, 3
$$;

CREATE VIEW tlsrpt.sts_policy_drift AS SELECT * FROM tlsrpt.sts_drift();

-- Reporters that applied a stale policy (sts_policy_drift) in reports of
-- the last days days, with the failed sessions under it in those days.
CREATE FUNCTION tlsrpt.alert_stale_policy(days integer DEFAULT 7)
RETURNS TABLE (policy_domain text, organization_name text, mode text, max_age bigint, reason text,
               replaced_at timestamptz, last_day date, reports numeric, failed numeric)
LANGUAGE sql STABLE SET jit = off
AS $$
    SELECT policy_domain, organization_name, mode, max_age, reason, replaced_at, last_day, reports, failed
    FROM tlsrpt.sts_drift((now() AT TIME ZONE 'UTC')::date - alert_stale_policy.days)
    ORDER BY 1, 2, replaced_at
$$;

CREATE OR REPLACE FUNCTION tlsrpt.alerts(warn_rate numeric DEFAULT 0.05, crit_rate numeric DEFAULT 0.20,
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
               format('%s: no report from %s for %s days (usually every %s)', coalesce(s.policy_domain, '?'),
                      coalesce(s.organization_name, '?'), extract(day FROM s.silent_for),
                      CASE WHEN s.cadence = 1 THEN 'day' ELSE trim_scale(round(s.cadence, 1)) || ' days' END)
        FROM tlsrpt.alert_silent_reporter(alerts.silence) s
        UNION ALL
        SELECT 'WARNING', 'stale-policy', t.policy_domain,
               format('%s: %s applied a %s policy (mode %s, max_age %s) in %s reports, %s failed sessions',
                      t.policy_domain, coalesce(t.organization_name, '?'),
                      CASE WHEN t.reason = 'replaced'
                           THEN 'replaced ' || to_char(t.replaced_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                           ELSE 'not published' END,
                      coalesce(t.mode, '?'), coalesce(t.max_age::text, '?'), t.reports, t.failed)
        FROM tlsrpt.alert_stale_policy(alerts.days) t
    ) a (severity, alert, policy_domain, message)
    ORDER BY a.severity, a.policy_domain, a.alert, a.message
$$;
