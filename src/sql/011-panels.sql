-- tlsrpt-ingest schema migration 11: every panel, alert and --summary fast at
-- a million reports, for all domains and for one (doc/views.md, "Rollups";
-- figures: bench/README). Nothing here runs on a delivery.

-- ---------------------------------------------------------------- the after-a-purge branches
-- latest_report and sts_policy_history answer from the tables between a purge
-- and the next refresh(). That branch was planned with every query of the
-- view: its estimate (every report sorted; sts_parse of every policy) made
-- the planner compile the whole query with JIT, which cost more than
-- running it. Behind a function call (plpgsql: planned only when it runs) it
-- costs nothing when it does not run, as migration 8 did for the ledger.
CREATE FUNCTION tlsrpt.latest_report_from_tables() RETURNS SETOF tlsrpt.latest_report_plain
LANGUAGE plpgsql STABLE ROWS 100
AS $$
BEGIN
    RETURN QUERY SELECT * FROM tlsrpt.latest_report_plain;
END
$$;

CREATE FUNCTION tlsrpt.sts_policy_history_from_tables() RETURNS SETOF tlsrpt.sts_policy_history_plain
LANGUAGE plpgsql STABLE ROWS 100
AS $$
BEGIN
    RETURN QUERY SELECT * FROM tlsrpt.sts_policy_history_plain;
END
$$;

CREATE OR REPLACE VIEW tlsrpt.latest_report AS
SELECT c.organization_name, c.policy_domain, r.id AS report, r.report_id, r.contact_info,
       r.date_start, r.date_end, r.received_at, c.reports, c.first_seen,
       now() - coalesce(r.date_end, r.received_at) AS silent_for,
       r.authenticated, r.sender
FROM (SELECT organization_name, policy_domain, sum(reports)::bigint AS reports, min(first_seen) AS first_seen,
             (array_agg(latest_report ORDER BY latest_at DESC, latest_report DESC))[1] AS latest_report
      FROM (SELECT organization_name, policy_domain, reports, first_seen, latest_at, latest_report, max_date_end
            FROM tlsrpt.rollup_latest WHERE auth_only = (SELECT tlsrpt.authenticated_only())
            UNION ALL
            SELECT * FROM tlsrpt.latest_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                             (SELECT tlsrpt.authenticated_only()))
            WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending)) u
      GROUP BY organization_name, policy_domain) c
JOIN tlsrpt.report r ON r.id = c.latest_report
WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
UNION ALL
SELECT * FROM tlsrpt.latest_report_from_tables() WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

CREATE OR REPLACE VIEW tlsrpt.sts_policy_history AS
SELECT policy_domain, mode, max_age, mx, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
       sum(reports)::bigint AS reports,
       (SELECT array_agg(DISTINCT o ORDER BY o) FROM unnest(tlsrpt.array_concat(u.reporters)) AS o) AS reporters
FROM (SELECT policy_domain, mode, max_age, mx, first_seen, last_seen, reports, reporters
      FROM tlsrpt.rollup_sts_history WHERE auth_only = (SELECT tlsrpt.authenticated_only())
      UNION ALL
      SELECT * FROM tlsrpt.sts_history_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                            (SELECT tlsrpt.authenticated_only()))
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending)) u
GROUP BY policy_domain, mode, max_age, mx
HAVING NOT (SELECT rebuild FROM tlsrpt.rollup_state)
UNION ALL
SELECT * FROM tlsrpt.sts_policy_history_from_tables() WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

-- ---------------------------------------------------------------- reports per day by reporter
-- reporter_daily: per day x organization x policy domain, the reports (one
-- copy of each, in scope) that list the domain. A report that lists more
-- than one policy domain is counted under each; its id is in shared, so that
-- a sum over several domains can count it once:
--   sum(reports - cardinality(shared)) + the distinct ids of the shared arrays
-- (the Grafana panel "Reports per day by reporter" does that).
CREATE VIEW tlsrpt.reporter_daily_plain AS
SELECT d.day, d.day::timestamp AT TIME ZONE 'UTC' AS day_start, r.organization_name, p.policy_domain,
       count(*) AS reports,
       coalesce(array_agg(r.id ORDER BY r.id) FILTER (WHERE p.domains > 1), '{}') AS shared
FROM (SELECT report, policy_domain, count(*) OVER (PARTITION BY report) AS domains
      FROM (SELECT DISTINCT report, policy_domain FROM tlsrpt.policy) x) p
JOIN tlsrpt.scoped_report r ON r.id = p.report
CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d
GROUP BY d.day, r.organization_name, p.policy_domain;

CREATE TABLE tlsrpt.rollup_reporter_daily (
    auth_only         boolean NOT NULL,
    day               date NOT NULL,
    day_start         timestamptz NOT NULL,
    organization_name text,
    policy_domain     text,
    reports           bigint NOT NULL,
    shared            bigint[] NOT NULL
);
CREATE INDEX rollup_reporter_daily_day_idx ON tlsrpt.rollup_reporter_daily (day);
CREATE INDEX rollup_reporter_daily_start_idx ON tlsrpt.rollup_reporter_daily (auth_only, day_start);
CREATE INDEX rollup_reporter_daily_domain_idx ON tlsrpt.rollup_reporter_daily (auth_only, policy_domain, day_start);

-- The rows of the given days, computed from the tables as the plain view does.
CREATE FUNCTION tlsrpt.reporter_daily_rows(days date[], auth boolean)
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
        WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date = ANY (days)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND cardinality(days) > 0
    ), c AS (
        SELECT rp.*, count(*) OVER (PARTITION BY rp.id) AS domains FROM rp
    )
    SELECT day, organization_name, policy_domain, count(*),
           coalesce(array_agg(id ORDER BY id) FILTER (WHERE domains > 1), '{}')
    FROM c
    GROUP BY day, organization_name, policy_domain
$$;

CREATE VIEW tlsrpt.reporter_daily AS
SELECT x.day, x.day_start, x.organization_name, x.policy_domain, x.reports, x.shared
FROM (SELECT s.day, s.day_start, s.organization_name, s.policy_domain, s.reports, s.shared
      FROM tlsrpt.rollup_reporter_daily s
      WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
        AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
      UNION ALL
      SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.organization_name, y.policy_domain, y.reports, y.shared
      FROM tlsrpt.reporter_daily_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                      (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending_day)) x;

-- the days already rolled up (an upgrade): computed once here
INSERT INTO tlsrpt.rollup_reporter_daily
SELECT a, x.day, x.day::timestamp AT TIME ZONE 'UTC', x.organization_name, x.policy_domain, x.reports, x.shared
FROM unnest(ARRAY[false, true]) AS a
CROSS JOIN LATERAL tlsrpt.reporter_daily_rows(ARRAY(SELECT DISTINCT day FROM tlsrpt.rollup_daily_domain), a) AS x;

-- ---------------------------------------------------------------- the ledger, per reporter
-- reporter_ledger was a function over every reporter (the Grafana panels
-- filter it by domain only afterwards: one domain cost as much as all of
-- them), merging rollup_latest and rollup_reporter and computing each
-- reporter's cadence at every query. rollup_ledger holds that merge and the
-- figures of reporter_stats() (they depend on the days alone), written by
-- refresh() for the reporters of the reports it takes in. The view reads it
-- for every reporter without pending reports and computes the others as
-- before; it is a plain view again, so that a filter on the domain reaches
-- the tables. (Reporters are matched on ARRAY[organization, domain]: NULLs
-- compare equal in an array, and arrays hash.)
CREATE TABLE tlsrpt.rollup_ledger (
    auth_only         boolean NOT NULL,
    organization_name text,
    policy_domain     text,
    reports           bigint NOT NULL,
    first_seen        timestamptz,
    latest_report     bigint NOT NULL,
    days              tlsrpt.reporter_day[] NOT NULL,
    active_days       integer,
    gaps              integer,
    cadence           numeric,
    longest_gap       integer,
    sessions_30d      numeric,
    failed_30d        numeric,
    busiest_day_30d   numeric,
    CONSTRAINT rollup_ledger_key UNIQUE NULLS NOT DISTINCT (auth_only, organization_name, policy_domain)
);
CREATE INDEX rollup_ledger_domain_idx ON tlsrpt.rollup_ledger (auth_only, policy_domain);

-- The ledger rows of the reporters keys names (ARRAY[organization, domain];
-- NULL: every reporter), from rollup_latest and rollup_reporter.
CREATE FUNCTION tlsrpt.ledger_rows(keys text[][])
RETURNS SETOF tlsrpt.rollup_ledger
LANGUAGE sql STABLE
AS $$
    SELECT l.auth_only, l.organization_name, l.policy_domain, l.reports, l.first_seen, l.latest_report,
           coalesce(rr.days, '{}'), s.active_days, s.gaps, s.cadence, s.longest_gap, s.sessions_30d, s.failed_30d,
           s.busiest_day_30d
    FROM tlsrpt.rollup_latest l
    LEFT JOIN tlsrpt.rollup_reporter rr
           ON rr.auth_only = l.auth_only
          AND ARRAY[rr.organization_name, rr.policy_domain] = ARRAY[l.organization_name, l.policy_domain]
    CROSS JOIN LATERAL tlsrpt.reporter_stats(coalesce(rr.days, '{}')) AS s
    WHERE l.latest_report IS NOT NULL
      AND (keys IS NULL
           OR ARRAY[l.organization_name, l.policy_domain]
              IN (SELECT ARRAY[keys[i][1], keys[i][2]] FROM generate_subscripts(keys, 1) AS i))
$$;

-- refresh(): migration 8's part, then the ledger rows of the reporters it touched
CREATE OR REPLACE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    a boolean;
    keys text[][];
BEGIN
    DELETE FROM tlsrpt.rollup_sts_reporter_day WHERE day = ANY (days);
    DELETE FROM tlsrpt.rollup_reporter_daily WHERE day = ANY (days);
    DELETE FROM tlsrpt.rollup_end_domain WHERE day = ANY (days);
    IF rebuild THEN
        TRUNCATE tlsrpt.rollup_reporter, tlsrpt.rollup_ledger;
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
        INSERT INTO tlsrpt.rollup_reporter_daily
        SELECT a, x.day, x.day::timestamp AT TIME ZONE 'UTC', x.organization_name, x.policy_domain, x.reports,
               x.shared
        FROM tlsrpt.reporter_daily_rows(days, a) AS x;
        INSERT INTO tlsrpt.rollup_end_domain
        SELECT a, x.* FROM tlsrpt.end_domain_rows(days, a) AS x;
    END LOOP;
    IF rebuild THEN
        INSERT INTO tlsrpt.rollup_ledger SELECT * FROM tlsrpt.ledger_rows(NULL);
    ELSE
        SELECT array_agg(DISTINCT ARRAY[r.organization_name, p.policy_domain]) INTO keys
        FROM unnest(new_ids) AS u(id) JOIN tlsrpt.report r ON r.id = u.id JOIN tlsrpt.policy p ON p.report = r.id;
    END IF;
    IF NOT rebuild AND keys IS NOT NULL THEN
        DELETE FROM tlsrpt.rollup_ledger g
        WHERE ARRAY[g.organization_name, g.policy_domain]
              IN (SELECT ARRAY[keys[i][1], keys[i][2]] FROM generate_subscripts(keys, 1) AS i);
        INSERT INTO tlsrpt.rollup_ledger SELECT * FROM tlsrpt.ledger_rows(keys);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tlsrpt.rollup_reset() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.rollup_daily_domain, tlsrpt.rollup_sts_daily, tlsrpt.failure_fact,
             tlsrpt.rollup_latest, tlsrpt.rollup_sts_history, tlsrpt.rollup_gap, tlsrpt.rollup_dirty_day,
             tlsrpt.rollup_host_domain, tlsrpt.rollup_mx_name,
             tlsrpt.rollup_reporter, tlsrpt.rollup_sts_reporter_day, tlsrpt.rollup_reporter_daily,
             tlsrpt.rollup_ledger, tlsrpt.rollup_end_domain;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

INSERT INTO tlsrpt.rollup_ledger SELECT * FROM tlsrpt.ledger_rows(NULL);

CREATE OR REPLACE VIEW tlsrpt.reporter_ledger AS
-- the reporters without pending reports: their row as refresh() wrote it
SELECT g.organization_name, g.policy_domain, g.first_seen, r.date_start AS last_start,
       coalesce(r.date_end, r.received_at) AS last_end, g.reports, g.active_days,
       g.gaps, g.cadence, g.longest_gap,
       coalesce(r.date_end, r.received_at) + make_interval(secs => (g.cadence * 86400)::double precision) AS next_due,
       greatest(now() - (coalesce(r.date_end, r.received_at)
                         + make_interval(secs => (g.cadence * 86400)::double precision)), interval '0') AS late_by,
       tlsrpt.reporter_silent_after(g.cadence, g.longest_gap, g.active_days) AS silent_after,
       coalesce(now() - coalesce(r.date_end, r.received_at)
                > tlsrpt.reporter_silent_after(g.cadence, g.longest_gap, g.active_days), false) AS silent,
       g.sessions_30d, g.failed_30d, g.busiest_day_30d,
       tlsrpt.reporter_loop_only(g.sessions_30d, g.failed_30d, g.busiest_day_30d) AS loop_only,
       g.days
FROM tlsrpt.rollup_ledger g
JOIN tlsrpt.report r ON r.id = g.latest_report
WHERE g.auth_only = (SELECT tlsrpt.authenticated_only())
  AND NOT (SELECT rebuild FROM tlsrpt.rollup_state)
  AND ARRAY[g.organization_name, g.policy_domain]
      NOT IN (SELECT ARRAY[pr.organization_name, p.policy_domain]
              FROM tlsrpt.rollup_pending pr JOIN tlsrpt.policy p ON p.report = pr.id)
UNION ALL
-- the reporters with pending reports: their rollup rows and the pending
-- reports' rows merged (migration 8's reporter_ledger_rows())
SELECT c.organization_name, c.policy_domain, c.first_seen, r.date_start,
       coalesce(r.date_end, r.received_at), c.reports, s.active_days,
       s.gaps, s.cadence, s.longest_gap,
       coalesce(r.date_end, r.received_at) + make_interval(secs => (s.cadence * 86400)::double precision),
       greatest(now() - (coalesce(r.date_end, r.received_at)
                         + make_interval(secs => (s.cadence * 86400)::double precision)), interval '0'),
       tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days),
       coalesce(now() - coalesce(r.date_end, r.received_at)
                > tlsrpt.reporter_silent_after(s.cadence, s.longest_gap, s.active_days), false),
       s.sessions_30d, s.failed_30d, s.busiest_day_30d,
       tlsrpt.reporter_loop_only(s.sessions_30d, s.failed_30d, s.busiest_day_30d),
       c.days
FROM (SELECT organization_name, policy_domain, sum(reports)::bigint AS reports, min(first_seen) AS first_seen,
             (array_agg(latest_report ORDER BY latest_at DESC, latest_report DESC)
                  FILTER (WHERE latest_report IS NOT NULL))[1] AS latest_report,
             CASE WHEN count(days) = 1 THEN min(days) ELSE tlsrpt.reporter_days_merge(tlsrpt.array_concat(days)) END
                 AS days
      FROM (SELECT organization_name, policy_domain, reports, first_seen, latest_at, latest_report,
                   NULL::tlsrpt.reporter_day[] AS days
            FROM tlsrpt.rollup_latest
            WHERE auth_only = (SELECT tlsrpt.authenticated_only())
              AND ARRAY[organization_name, policy_domain]
                  IN (SELECT ARRAY[pr.organization_name, p.policy_domain]
                      FROM tlsrpt.rollup_pending pr JOIN tlsrpt.policy p ON p.report = pr.id)
            UNION ALL
            SELECT organization_name, policy_domain, NULL, NULL, NULL, NULL, days
            FROM tlsrpt.rollup_reporter
            WHERE auth_only = (SELECT tlsrpt.authenticated_only())
              AND ARRAY[organization_name, policy_domain]
                  IN (SELECT ARRAY[pr.organization_name, p.policy_domain]
                      FROM tlsrpt.rollup_pending pr JOIN tlsrpt.policy p ON p.report = pr.id)
            UNION ALL
            SELECT organization_name, policy_domain, reports, first_seen, latest_at, latest_report, NULL
            FROM tlsrpt.latest_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending), (SELECT tlsrpt.authenticated_only()))
            UNION ALL
            SELECT organization_name, policy_domain, NULL, NULL, NULL, NULL, days
            FROM tlsrpt.reporter_rows(ARRAY(SELECT id FROM tlsrpt.rollup_pending),
                                      (SELECT tlsrpt.authenticated_only()))) u
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending)
      GROUP BY organization_name, policy_domain) c
JOIN tlsrpt.report r ON r.id = c.latest_report
CROSS JOIN LATERAL tlsrpt.reporter_stats(c.days) AS s
WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
UNION ALL
SELECT * FROM tlsrpt.reporter_ledger_from_tables() WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

-- ---------------------------------------------------------------- sessions since a moment
-- alert_failure_rate() and --summary count report_domain's rows whose period
-- ended after a moment (now() - N days): an index range of the reports and a
-- join to their policies, every query (21,000 reports a week at a million a
-- year). rollup_end_domain holds the same sums per report day (what refresh()
-- and a purge mark, as for the other per-day rollups) x date_end x policy
-- domain (reports end on a few moments a day: a domain's reports of a day
-- are one or two rows), so that "ended after since" is a range of it.
CREATE TABLE tlsrpt.rollup_end_domain (
    auth_only      boolean NOT NULL,
    day            date NOT NULL,
    date_end       timestamptz NOT NULL,
    policy_domain  text,
    successful     numeric NOT NULL,
    failed         numeric NOT NULL,
    sessions       numeric NOT NULL,
    reports        bigint NOT NULL,
    reporter_names text[] NOT NULL
);
CREATE INDEX rollup_end_domain_day_idx ON tlsrpt.rollup_end_domain (day);
CREATE INDEX rollup_end_domain_end_idx ON tlsrpt.rollup_end_domain (auth_only, date_end);

-- The rows of the given report days, from the tables (report_domain's
-- figures: sessions once per report and domain; reports without a date_end
-- are never "since" anything and are left out).
CREATE FUNCTION tlsrpt.end_domain_rows(days date[], auth boolean)
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
        WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date = ANY (days)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND r.date_end IS NOT NULL
          AND cardinality(days) > 0
    )
    SELECT day, date_end, policy_domain, sum(sessions - failed), sum(failed), sum(sessions), count(*),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM rd
    GROUP BY day, date_end, policy_domain
$$;

-- Per policy domain, report_domain's rows (in scope) whose date_end is after
-- since: successful, failed, sessions, reports (report x domain rows) and the
-- organizations (sorted, no NULL).
CREATE FUNCTION tlsrpt.domain_totals_since(since timestamptz)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, sessions numeric, reports bigint,
               reporter_names text[])
LANGUAGE sql STABLE
AS $$
    SELECT x.policy_domain, sum(x.successful), sum(x.failed), sum(x.sessions), sum(x.reports)::bigint,
           (SELECT coalesce(array_agg(DISTINCT o ORDER BY o), '{}') FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o)
    FROM (
        SELECT e.policy_domain, e.successful, e.failed, e.sessions, e.reports, e.reporter_names
        FROM tlsrpt.rollup_end_domain e
        WHERE e.auth_only = (SELECT tlsrpt.authenticated_only())
          AND e.date_end > domain_totals_since.since
          AND e.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
        UNION ALL
        -- the report days not rolled up (pending, or a purge touched them)
        SELECT y.policy_domain, y.successful, y.failed, y.sessions, y.reports, y.reporter_names
        FROM tlsrpt.end_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                    (SELECT tlsrpt.authenticated_only())) AS y
        WHERE y.date_end > domain_totals_since.since
          AND EXISTS (SELECT FROM tlsrpt.rollup_pending_day)
    ) x
    GROUP BY x.policy_domain
$$;

INSERT INTO tlsrpt.rollup_end_domain
SELECT a, x.*
FROM unnest(ARRAY[false, true]) AS a
CROSS JOIN LATERAL tlsrpt.end_domain_rows(ARRAY(SELECT DISTINCT day FROM tlsrpt.rollup_daily_domain), a) AS x;

-- ---------------------------------------------------------------- alerts
-- the version 4 definition, for comparison
CREATE FUNCTION tlsrpt.alert_failure_rate_plain(threshold numeric DEFAULT 0.05, days integer DEFAULT 7,
                                                min_sessions bigint DEFAULT 1)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, failure_rate numeric, reporters bigint)
LANGUAGE sql STABLE
AS $$
    SELECT d.policy_domain, sum(d.successful), sum(d.failed),
           round(sum(d.failed) / nullif(sum(d.sessions), 0), 4),
           count(DISTINCT d.organization_name)
    FROM tlsrpt.report_domain d
    WHERE d.date_end > now() - make_interval(days => alert_failure_rate_plain.days)
    GROUP BY d.policy_domain
    HAVING sum(d.sessions) >= greatest(alert_failure_rate_plain.min_sessions, 1)
       AND sum(d.failed) / nullif(sum(d.sessions), 0) > alert_failure_rate_plain.threshold
    ORDER BY 4 DESC, 1
$$;

CREATE OR REPLACE FUNCTION tlsrpt.alert_failure_rate(threshold numeric DEFAULT 0.05, days integer DEFAULT 7,
                                          min_sessions bigint DEFAULT 1)
RETURNS TABLE (policy_domain text, successful numeric, failed numeric, failure_rate numeric, reporters bigint)
LANGUAGE sql STABLE
AS $$
    SELECT d.policy_domain, d.successful, d.failed, round(d.failed / nullif(d.sessions, 0), 4),
           cardinality(d.reporter_names)::bigint
    FROM tlsrpt.domain_totals_since(now() - make_interval(days => alert_failure_rate.days)) AS d
    WHERE d.sessions >= greatest(alert_failure_rate.min_sessions, 1)
      AND d.failed / nullif(d.sessions, 0) > alert_failure_rate.threshold
    ORDER BY 4 DESC, 1
$$;

-- A new result type: every one of its rows in the window is recent, so it
-- has a row that arrived within recent. Only those (domain, result type)
-- pairs are grouped (migration 5 sorted every failure row of the window).
CREATE OR REPLACE FUNCTION tlsrpt.alert_new_result_type(recent interval DEFAULT '1 day',
                                                        history interval DEFAULT '90 days')
RETURNS TABLE (policy_domain text, result_type text, failed_sessions numeric,
               receiving_mx_hostnames text[], organizations text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, result_type, sum(counted_sessions),
           coalesce(array_agg(DISTINCT receiving_mx_hostname) FILTER (WHERE receiving_mx_hostname IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM tlsrpt.failure_row
    WHERE coalesce(date_end, received_at)
          > now() - alert_new_result_type.recent - interval '1 day' - alert_new_result_type.history
      AND ARRAY[policy_domain, result_type]
          IN (SELECT ARRAY[c.policy_domain, c.result_type] FROM tlsrpt.failure_row c
              WHERE c.received_at > now() - alert_new_result_type.recent)
    GROUP BY policy_domain, result_type
    HAVING bool_and(tlsrpt.is_recent(date_end, received_at, alert_new_result_type.recent))
    ORDER BY 1, 2
$$;

-- ---------------------------------------------------------------- one domain
-- Grafana's panels filter the per-day rollups and the failure rows by domain
-- and day: one domain is an index range, not every domain's rows of the window.
CREATE INDEX rollup_daily_domain_domain_idx ON tlsrpt.rollup_daily_domain (auth_only, policy_domain, day_start);
CREATE INDEX rollup_sts_daily_domain_idx ON tlsrpt.rollup_sts_daily (auth_only, policy_domain, day_start);
CREATE INDEX failure_fact_domain_idx ON tlsrpt.failure_fact (policy_domain, day_start);

-- sts_policy_version: migration 8 ran sts_policy_versions() with jit = off
-- because sts_policy_history's estimate (its after-a-purge branch) passed
-- jit_above_cost; that branch is a function call now, so the function can
-- be inlined again and a filter on the domain reaches rollup_sts_history
-- (every window is per domain).
ALTER FUNCTION tlsrpt.sts_policy_versions() RESET jit;

-- sts_drift of some domains only (NULL: every domain), for the Grafana panel
-- of policy versions: its versions are read for those domains alone.
CREATE FUNCTION tlsrpt.sts_drift(since date, domains text[])
RETURNS TABLE (policy_domain text, organization_name text, version integer, mode text, max_age bigint,
               mx text[], reason text, replaced_at timestamptz, stale_after timestamptz,
               first_day date, last_day date, reports numeric, sessions numeric, failed numeric)
LANGUAGE sql STABLE SET jit = off
AS $$
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
      AND (sts_drift.domains IS NULL OR v.policy_domain = ANY (sts_drift.domains))
    ORDER BY 1, 2, 3
$$;

-- refresh(): daily_domain's rows of some days read each report's policies by
-- its index, as reporter_daily_rows() and end_domain_rows() do (migration
-- 6's definition otherwise)
CREATE OR REPLACE FUNCTION tlsrpt.daily_domain_rows(days date[], auth boolean)
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
        WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date = ANY (days)
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND cardinality(days) > 0
    )
    SELECT day, policy_domain, has_sts, sum(sessions - failed), sum(failed), sum(sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}'),
           count(*)
    FROM rd
    GROUP BY day, policy_domain, has_sts
$$;

-- refresh() without JIT: its statements are planned for the average day
-- (thousands of reports) and a refresh after a few deliveries compiled each
-- of them (0.3-0.4 s apiece at a million reports) to run it in a millisecond.
ALTER FUNCTION tlsrpt.refresh() SET jit = off;
