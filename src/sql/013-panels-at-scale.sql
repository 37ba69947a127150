-- tlsrpt-ingest schema migration 13: the panels and alerts for all domains,
-- and the views between two refresh() runs (issue 14).
--
-- 1. daily_domain without a grouping of its own.
--
-- rollup_daily_domain keeps a domain's day in two rows, the reports that list
-- it under an sts policy and the others, because a host report (a policy
-- domain that is one of our MX hosts, without sts) is told apart only when
-- the view is read (host_domain_now()). The view grouped every row by day,
-- domain and host_report to put the two together again, and a panel then
-- grouped the result once more: at 10,000 domains, 290,000 rows through two
-- hash aggregates for 30 days (0.6 s). refresh() now also writes the two
-- together (rollup_daily_domain_total, one row per day and domain); the view
-- reads that for every domain that is no host domain, the two rows apart for
-- the host domains, and groups only the days with something pending, as
-- before. The same rows as before (tests/rollup-t.sh compares it with
-- daily_domain_plain).

CREATE TABLE tlsrpt.rollup_daily_domain_total (
    auth_only      boolean NOT NULL,
    day            date NOT NULL,
    day_start      timestamptz NOT NULL,
    policy_domain  text,
    successful     numeric NOT NULL,
    failed         numeric NOT NULL,
    sessions       numeric NOT NULL,
    reporter_names text[] NOT NULL,
    reports        bigint NOT NULL
);
CREATE INDEX rollup_daily_domain_total_day_idx ON tlsrpt.rollup_daily_domain_total (day);
CREATE INDEX rollup_daily_domain_total_start_idx ON tlsrpt.rollup_daily_domain_total (auth_only, day_start);
CREATE INDEX rollup_daily_domain_total_domain_idx
    ON tlsrpt.rollup_daily_domain_total (auth_only, policy_domain, day_start);

INSERT INTO tlsrpt.rollup_daily_domain_total
SELECT d.auth_only, d.day, d.day_start, d.policy_domain, sum(d.successful), sum(d.failed), sum(d.sessions),
       coalesce((SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(d.reporter_names)) AS o), '{}'),
       sum(d.reports)::bigint
FROM tlsrpt.rollup_daily_domain d
GROUP BY d.auth_only, d.day, d.day_start, d.policy_domain
ORDER BY d.day;  -- a day's rows together, as refresh() writes them: a window reads its own pages only


-- 2. failure_daily without a grouping of its own (the failure panels).
--
-- failure_daily grouped failure_fact (one row per failure row) by day, domain,
-- result type, MX and reporter at every query, and its panels grouped that
-- again: at 10,000 domains 175,000 failure rows in 30 days, both grouped.
-- refresh() now writes those groups (rollup_failure_daily, per scope as the
-- other daily rollups) for the days it computes again; the view reads them
-- for the days with nothing pending, and groups failure_row for the others
-- (their day_start through failure_fact's index). A group is a host report
-- when all its rows are (none under an sts policy) and its domain is one of
-- the host domains now, as failure_row decides each row. The same rows as
-- before (tests/rollup-t.sh compares it with failure_daily_plain).

CREATE TABLE tlsrpt.rollup_failure_daily (
    auth_only             boolean NOT NULL,
    day                   date NOT NULL,
    day_start             timestamptz NOT NULL,
    policy_domain         text,
    result_type           text,
    receiving_mx_hostname text,
    organization_name     text,
    failed_sessions       numeric NOT NULL,
    failure_rows          bigint NOT NULL,
    no_sts                boolean NOT NULL  -- none of its rows under an sts policy
);
CREATE INDEX rollup_failure_daily_day_idx ON tlsrpt.rollup_failure_daily (day);
CREATE INDEX rollup_failure_daily_start_idx ON tlsrpt.rollup_failure_daily (auth_only, day_start);
CREATE INDEX rollup_failure_daily_domain_idx
    ON tlsrpt.rollup_failure_daily (auth_only, policy_domain, day_start);

-- failure_fact's groups of those days (NULL: every day), in both scopes; the
-- rows of a copy shadowed after it was rolled up left out, as failure_row does
CREATE FUNCTION tlsrpt.failure_daily_rows(days date[])
RETURNS SETOF tlsrpt.rollup_failure_daily
LANGUAGE sql STABLE
AS $$
    SELECT a.auth_only, f.day, f.day_start, f.policy_domain, f.result_type, f.receiving_mx_hostname,
           f.organization_name, sum(f.counted_sessions), count(*),
           bool_and(coalesce(lower(f.policy_type), '') <> 'sts')
    FROM (VALUES (false), (true)) AS a(auth_only)
    JOIN tlsrpt.failure_fact f ON f.authenticated OR NOT a.auth_only
    WHERE (days IS NULL OR f.day = ANY (days))
      AND f.report NOT IN (SELECT id FROM tlsrpt.report WHERE shadowed)
    GROUP BY a.auth_only, f.day, f.day_start, f.policy_domain, f.result_type, f.receiving_mx_hostname,
             f.organization_name
    ORDER BY f.day
$$;

INSERT INTO tlsrpt.rollup_failure_daily SELECT * FROM tlsrpt.failure_daily_rows(NULL);

-- refresh() writes both for the days it computes again (refresh_reporters()
-- is called after rollup_daily_domain is written, and failure_fact has the
-- new reports' rows then; migration 11's definition otherwise)
CREATE OR REPLACE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    a boolean;
    keys text[][];
BEGIN
    -- the days' figures of each domain, sts and other reports
    -- together (rollup_daily_domain holds them apart; it is written first)
    DELETE FROM tlsrpt.rollup_daily_domain_total WHERE day = ANY (days);
    INSERT INTO tlsrpt.rollup_daily_domain_total
    SELECT d.auth_only, d.day, d.day_start, d.policy_domain, sum(d.successful), sum(d.failed), sum(d.sessions),
           coalesce((SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(d.reporter_names)) AS o), '{}'),
           sum(d.reports)::bigint
    FROM tlsrpt.rollup_daily_domain d
    WHERE d.day = ANY (days)
    GROUP BY d.auth_only, d.day, d.day_start, d.policy_domain;

    -- failure_daily's rows of those days (failure_fact has the
    -- new reports' rows already)
    DELETE FROM tlsrpt.rollup_failure_daily WHERE day = ANY (days);
    INSERT INTO tlsrpt.rollup_failure_daily SELECT * FROM tlsrpt.failure_daily_rows(days);

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
             tlsrpt.rollup_ledger, tlsrpt.rollup_end_domain, tlsrpt.rollup_daily_domain_total,
             tlsrpt.rollup_failure_daily;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

-- 3. host_domain_now(): with reports pending, only what they add; in
-- PL/pgSQL.
--
-- An SQL function called from a query is planned again for every query (its
-- plan lives as long as the query), and host_domain_now() is called up to
-- three times by a query of daily_domain or failure_row: with reports
-- pending, planning its branches cost more than running them (3-5 ms of a
-- one-domain panel's 7). PL/pgSQL keeps each statement's plan for the
-- session (Grafana's connections are pooled), and plans only the branch that
-- runs. A report only ever adds host domains: its policy domains against
-- every MX name, and every domain against its MX names.
CREATE OR REPLACE FUNCTION tlsrpt.host_domain_now() RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 10
AS $$
BEGIN
    IF (SELECT rebuild FROM tlsrpt.rollup_state) THEN
        -- after a purge, until the next refresh(): from the tables
        RETURN QUERY
        SELECT tlsrpt.host_domains(
                   ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy),
                   ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                         FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.report)) AS x));
        RETURN;
    END IF;
    RETURN QUERY SELECT policy_domain FROM tlsrpt.rollup_host_domain;
    IF EXISTS (SELECT FROM tlsrpt.rollup_pending) THEN
        -- a pending report's policy domain named by a known MX name (the
        -- names hashed once: a hosting operator's MX names repeat across its
        -- domains, so the planner expects a name to match hundreds of rows,
        -- and an EXISTS per domain scanned them all for a domain matching none)
        RETURN QUERY
        SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id
        WHERE p.policy_domain IN (SELECT n.name FROM tlsrpt.rollup_mx_name n)
           OR tlsrpt.host_pattern(p.policy_domain) IN (SELECT n.name FROM tlsrpt.rollup_mx_name n);
        -- any domain known or pending named by a pending report's MX names
        RETURN QUERY
        SELECT tlsrpt.host_domains(
                   ARRAY(SELECT l.policy_domain FROM tlsrpt.rollup_latest l WHERE NOT l.auth_only
                         UNION ALL SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id),
                   m.names)
        FROM (SELECT ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                           FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.rollup_pending)) AS x) AS names) m
        WHERE cardinality(m.names) > 0;
    END IF;
END
$$;

-- 4. Between two refresh() runs, a day with new reports only is its rollup
-- rows plus the new reports' rows.
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

-- A row's reporter_names are distinct and sorted already (array_agg(DISTINCT)
-- of daily_domain_rows(), or of both rows above): its own reporters.
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

CREATE OR REPLACE VIEW tlsrpt.failure_daily AS
-- the days rolled up: their groups as refresh() wrote them
SELECT t.day, t.day_start, t.policy_domain, t.result_type, t.receiving_mx_hostname, t.organization_name,
       t.failed_sessions, t.failure_rows,
       t.no_sts AND coalesce(t.policy_domain IN (SELECT tlsrpt.host_domain_now()), false) AS host_report
FROM tlsrpt.rollup_failure_daily t
WHERE t.auth_only = (SELECT tlsrpt.authenticated_only())
  AND t.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
UNION ALL
-- the days with something pending: failure_row's rows of those days, grouped
SELECT x.day, x.day_start, x.policy_domain, x.result_type, x.receiving_mx_hostname, x.organization_name,
       sum(x.counted_sessions), count(*), bool_and(x.host_report)
FROM tlsrpt.failure_row x
WHERE x.day_start = ANY (ARRAY(SELECT p.day::timestamp AT TIME ZONE 'UTC' FROM tlsrpt.rollup_pending_day p))
GROUP BY x.day, x.day_start, x.policy_domain, x.result_type, x.receiving_mx_hostname, x.organization_name;

-- 5. The rule of 4. for the other per-day rollups. A day
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
