-- tlsrpt-ingest schema version 5: dashboards and alerts that stay fast at a
-- million reports (doc/views.md, "Rollups"). The views of versions 3 and 4 keep their
-- names, columns and rows; they now read rollup tables, caught up from a
-- watermark by tlsrpt.refresh() (cron, after a backfill), never by the
-- deliveries: a delivery costs what it cost. What refresh() has not seen yet
-- (reports stored since, days a purge touched) each view computes from the
-- tables as before, so a view never lags: refresh() only keeps it fast.
-- Their version 4 definitions stay as <name>_plain, the reference the tests
-- compare the fast views with.

-- ---------------------------------------------------------------- the scope, once
-- tlsrpt.authenticated_only set? Read once per query (an InitPlan), not per row.
CREATE FUNCTION tlsrpt.authenticated_only() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('tlsrpt.authenticated_only', true), '') IN ('on', 'true', '1') $$;

CREATE OR REPLACE VIEW tlsrpt.scoped_report AS
SELECT * FROM tlsrpt.report
WHERE authenticated OR NOT (SELECT tlsrpt.authenticated_only());

-- ---------------------------------------------------------------- indexes
-- a report's day (doc/views.md) and its period's end, for the time windows
CREATE INDEX report_day_idx ON tlsrpt.report
    (((coalesce(date_start, date_end, received_at) AT TIME ZONE 'UTC')::date));
CREATE INDEX report_date_end_idx ON tlsrpt.report (date_end);
-- what --purge-older-than cuts on: each batch an index range, not a scan past
-- the rows the batches before it deleted
CREATE INDEX report_period_end_idx ON tlsrpt.report ((coalesce(date_end, received_at)));
-- --summary --domain compares lower(policy_domain)
CREATE INDEX policy_domain_lower_idx ON tlsrpt.policy (lower(policy_domain));
-- lower(policy_type) = 'sts' is most policies, not 0.5 %: statistics on it
CREATE STATISTICS policy_type_lower_stats ON (lower(policy_type)) FROM tlsrpt.policy;

-- ---------------------------------------------------------------- the plain definitions
ALTER VIEW tlsrpt.daily_domain RENAME TO daily_domain_plain;
ALTER VIEW tlsrpt.failure_daily RENAME TO failure_daily_plain;
ALTER VIEW tlsrpt.top_sending_ip RENAME TO top_sending_ip_plain;
ALTER VIEW tlsrpt.top_receiving_ip RENAME TO top_receiving_ip_plain;
ALTER VIEW tlsrpt.latest_report RENAME TO latest_report_plain;
ALTER VIEW tlsrpt.sts_policy_daily RENAME TO sts_policy_daily_plain;
ALTER VIEW tlsrpt.sts_policy_history RENAME TO sts_policy_history_plain;

-- ---------------------------------------------------------------- watermark
-- Reports with id > watermark are not rolled up yet. An id at or below it that
-- was not visible when refresh() ran (a transaction still in flight, or an id
-- an ON CONFLICT or a rollback used up) is kept in rollup_gap until it shows
-- up or until every transaction that could still write it is over: seen_xmax
-- is set by the refresh after the one that found the gap, and the gap goes once
-- the oldest running transaction is past it.
CREATE TABLE tlsrpt.rollup_state (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    watermark  bigint NOT NULL DEFAULT 0,
    -- reports were deleted: latest_report and sts_policy_history are rebuilt
    rebuild    boolean NOT NULL DEFAULT false,
    refreshed_at timestamptz
);
INSERT INTO tlsrpt.rollup_state DEFAULT VALUES;
CREATE TABLE tlsrpt.rollup_gap (
    id        bigint PRIMARY KEY,
    seen_xmax xid8
);
-- days whose rollups a DELETE made stale
CREATE TABLE tlsrpt.rollup_dirty_day (day date PRIMARY KEY);

-- Reports not rolled up yet, and the days whose rollup rows do not count.
-- (a function, so that the watermark is a constant when its query is planned:
-- "id > a parameter" would be estimated at a third of the table)
CREATE FUNCTION tlsrpt.rollup_pending_ids() RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT id FROM tlsrpt.report WHERE id > %s', (SELECT watermark FROM tlsrpt.rollup_state));
    RETURN QUERY SELECT g.id FROM tlsrpt.rollup_gap g JOIN tlsrpt.report r ON r.id = g.id;
END
$$;

CREATE VIEW tlsrpt.rollup_pending AS
SELECT r.* FROM tlsrpt.report r WHERE r.id = ANY (ARRAY(SELECT tlsrpt.rollup_pending_ids()));

CREATE VIEW tlsrpt.rollup_pending_day AS
SELECT (coalesce(date_start, date_end, received_at) AT TIME ZONE 'UTC')::date AS day FROM tlsrpt.rollup_pending
UNION
SELECT day FROM tlsrpt.rollup_dirty_day;

-- ---------------------------------------------------------------- rollup tables
-- Rows with auth_only are computed over the authenticated reports alone (the
-- scope of tlsrpt.authenticated_only = on), the others over every report.

-- daily_domain, per day
-- (report_domain's figures: sessions once per report and domain; has_sts: the
-- report lists the domain under an sts policy, so it is not a host report)
CREATE TABLE tlsrpt.rollup_daily_domain (
    auth_only      boolean NOT NULL,
    day            date NOT NULL,
    day_start      timestamptz NOT NULL,
    policy_domain  text,
    has_sts        boolean NOT NULL,
    successful     numeric NOT NULL,
    failed         numeric NOT NULL,
    sessions       numeric NOT NULL,
    reporter_names text[] NOT NULL,
    reports        bigint NOT NULL
);
CREATE INDEX rollup_daily_domain_day_idx ON tlsrpt.rollup_daily_domain (day);
CREATE INDEX rollup_daily_domain_start_idx ON tlsrpt.rollup_daily_domain (auth_only, day_start);

-- sts_policy_daily, per day
CREATE TABLE tlsrpt.rollup_sts_daily (
    auth_only     boolean NOT NULL,
    day           date NOT NULL,
    day_start     timestamptz NOT NULL,
    policy_domain text,
    mode          text,
    max_age       bigint,
    reports       bigint NOT NULL,
    reporters     text[]
);
CREATE INDEX rollup_sts_daily_day_idx ON tlsrpt.rollup_sts_daily (day);
CREATE INDEX rollup_sts_daily_start_idx ON tlsrpt.rollup_sts_daily (auth_only, day_start);

-- every failure row, with what the dashboards and alerts read of its policy
-- and report beside it (it goes with the failure row)
CREATE TABLE tlsrpt.failure_fact (
    failure               bigint PRIMARY KEY REFERENCES tlsrpt.failure (id) ON DELETE CASCADE,
    report                bigint NOT NULL,
    authenticated         boolean NOT NULL,
    day                   date NOT NULL,
    day_start             timestamptz NOT NULL,
    organization_name     text,
    date_start            timestamptz,
    date_end              timestamptz,
    received_at           timestamptz NOT NULL,
    policy_type           text,
    policy_domain         text,
    result_type           text,
    sending_mta_ip        inet,
    receiving_mx_hostname text,
    receiving_ip          inet,
    failed_sessions       bigint NOT NULL,
    counted_sessions      bigint NOT NULL
);
CREATE INDEX failure_fact_day_start_idx ON tlsrpt.failure_fact (day_start);
CREATE INDEX failure_fact_received_at_idx ON tlsrpt.failure_fact (received_at);
CREATE INDEX failure_fact_period_idx ON tlsrpt.failure_fact ((coalesce(date_end, received_at)));

-- the policy domains that are host reports' (is_host_report): computed again
-- by every refresh() (a new report can make an old domain one)
CREATE TABLE tlsrpt.rollup_host_domain (policy_domain text PRIMARY KEY);
-- every name an MX could be known by for a policy domain: mx-host entries
-- (wild: "*.parent" patterns match) and failures' receiving MX names
CREATE TABLE tlsrpt.rollup_mx_name (
    name          text NOT NULL,
    policy_domain text,
    wild          boolean NOT NULL,
    CONSTRAINT rollup_mx_name_key UNIQUE NULLS NOT DISTINCT (name, policy_domain, wild)
);

-- The MX names of some reports, and which of the given policy domains they
-- make host reports (is_host_report's rule, for a set at once).
CREATE FUNCTION tlsrpt.mx_names(reports bigint[])
RETURNS TABLE (name text, policy_domain text, wild boolean)
LANGUAGE sql STABLE
AS $$
    SELECT DISTINCT m, p.policy_domain, true
    FROM unnest(reports) AS u(id) JOIN tlsrpt.policy p ON p.report = u.id CROSS JOIN unnest(p.mx_host) AS m
    WHERE m IS NOT NULL
    UNION
    SELECT DISTINCT f.receiving_mx_hostname, p.policy_domain, false
    FROM unnest(reports) AS u(id) JOIN tlsrpt.policy p ON p.report = u.id JOIN tlsrpt.failure f ON f.policy = p.id
    WHERE f.receiving_mx_hostname IS NOT NULL
$$;

CREATE FUNCTION tlsrpt.host_domains(domains text[], names tlsrpt.rollup_mx_name[])
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
    SELECT d FROM unnest(domains) AS d JOIN unnest(names) AS n ON n.name = d
    WHERE n.policy_domain IS DISTINCT FROM d
    UNION
    SELECT d FROM unnest(domains) AS d
    JOIN unnest(names) AS n ON n.name = '*.' || substr(d, strpos(d, '.') + 1)
    WHERE n.wild AND strpos(d, '.') > 0 AND n.policy_domain IS DISTINCT FROM d
$$;

-- latest_report: per (organization, policy domain), the latest report
CREATE TABLE tlsrpt.rollup_latest (
    auth_only         boolean NOT NULL,
    organization_name text,
    policy_domain     text,
    reports           bigint NOT NULL,
    first_seen        timestamptz,
    latest_at         timestamptz,    -- coalesce(date_end, received_at) of the latest
    latest_report     bigint NOT NULL,
    max_date_end      timestamptz,    -- for alert_silent_reporter
    CONSTRAINT rollup_latest_key UNIQUE NULLS NOT DISTINCT (auth_only, organization_name, policy_domain)
);

-- sts_policy_history: per distinct (domain, mode, max_age, mx set)
CREATE TABLE tlsrpt.rollup_sts_history (
    auth_only     boolean NOT NULL,
    policy_domain text,
    mode          text,
    max_age       bigint,
    mx            text[] NOT NULL,
    first_seen    timestamptz,
    last_seen     timestamptz,
    reports       bigint NOT NULL,
    reporters     text[],
    CONSTRAINT rollup_sts_history_key UNIQUE NULLS NOT DISTINCT (auth_only, policy_domain, mode, max_age, mx)
);

-- ---------------------------------------------------------------- rows of a set of reports
-- The per-day rows of daily_domain and sts_policy_daily for the given days,
-- computed from the tables exactly as the plain views do.
CREATE FUNCTION tlsrpt.daily_domain_rows(days date[], auth boolean)
RETURNS TABLE (day date, policy_domain text, has_sts boolean, successful numeric, failed numeric,
               sessions numeric, reporter_names text[], reports bigint)
LANGUAGE sql STABLE
AS $$
    WITH rd AS (
        SELECT r.id, r.organization_name,
               (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day,
               p.policy_domain,
               max(coalesce(p.total_successful_session_count, 0)::numeric
                   + coalesce(p.total_failure_session_count, 0)) AS sessions,
               max(coalesce(p.total_failure_session_count, 0))::numeric AS failed,
               bool_or(coalesce(lower(p.policy_type), '') = 'sts') AS has_sts
        FROM tlsrpt.report r
        JOIN tlsrpt.policy p ON p.report = r.id
        WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date = ANY (days)
          AND (r.authenticated OR NOT auth) AND cardinality(days) > 0
        GROUP BY r.id, r.organization_name, 3, p.policy_domain
    )
    SELECT day, policy_domain, has_sts, sum(sessions - failed), sum(failed), sum(sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}'),
           count(*)
    FROM rd
    GROUP BY day, policy_domain, has_sts
$$;

-- The parsed MTA-STS policies of some reports: each distinct policy_string parsed once.
CREATE FUNCTION tlsrpt.sts_rows(reports bigint[], auth boolean)
RETURNS TABLE (report bigint, organization_name text, policy_domain text, date_start timestamptz,
               date_end timestamptz, mode text, max_age bigint, mx text[])
LANGUAGE sql STABLE
AS $$
    WITH p AS (
        SELECT p.report, r.organization_name, p.policy_domain, r.date_start, r.date_end, p.policy_string
        FROM unnest(reports) AS u(id)
        JOIN tlsrpt.policy p ON p.report = u.id
        JOIN tlsrpt.report r ON r.id = p.report
        WHERE lower(p.policy_type) = 'sts' AND (r.authenticated OR NOT auth)
    ), s AS (
        SELECT d.policy_string, x.mode, x.max_age,
               (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(x.mx) AS m) AS mx
        FROM (SELECT DISTINCT coalesce(policy_string, '{}') AS policy_string FROM p) d
        CROSS JOIN LATERAL tlsrpt.sts_parse(d.policy_string) AS x
    )
    -- (a NULL policy_string parses as an empty one; = so that the join hashes)
    SELECT p.report, p.organization_name, p.policy_domain, p.date_start, p.date_end, s.mode, s.max_age, s.mx
    FROM p JOIN s ON s.policy_string = coalesce(p.policy_string, '{}')
$$;

CREATE FUNCTION tlsrpt.sts_daily_rows(days date[], auth boolean)
RETURNS TABLE (day date, policy_domain text, mode text, max_age bigint, reports bigint, reporters text[])
LANGUAGE sql STABLE
AS $$
    SELECT (coalesce(s.date_start, s.date_end) AT TIME ZONE 'UTC')::date, s.policy_domain, s.mode, s.max_age,
           count(DISTINCT s.report),
           array_agg(DISTINCT s.organization_name) FILTER (WHERE s.organization_name IS NOT NULL)
    FROM tlsrpt.sts_rows(ARRAY(SELECT r.id FROM tlsrpt.report r
                               WHERE (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date
                                     = ANY (days)
                                 AND coalesce(r.date_start, r.date_end) IS NOT NULL
                                 AND cardinality(days) > 0), auth) AS s
    GROUP BY 1, 2, 3, 4
$$;

-- latest_report's figures of some reports, per (organization, policy domain)
CREATE FUNCTION tlsrpt.latest_rows(reports bigint[], auth boolean)
RETURNS TABLE (organization_name text, policy_domain text, reports bigint, first_seen timestamptz,
               latest_at timestamptz, latest_report bigint, max_date_end timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT r.organization_name, p.policy_domain, count(*), min(coalesce(r.date_start, r.received_at)),
           (array_agg(coalesce(r.date_end, r.received_at) ORDER BY coalesce(r.date_end, r.received_at) DESC, r.id DESC))[1],
           (array_agg(r.id ORDER BY coalesce(r.date_end, r.received_at) DESC, r.id DESC))[1],
           max(r.date_end)
    FROM (SELECT DISTINCT p.report, p.policy_domain
          FROM unnest(latest_rows.reports) AS u(id) JOIN tlsrpt.policy p ON p.report = u.id) p
    JOIN tlsrpt.report r ON r.id = p.report
    WHERE r.authenticated OR NOT auth
    GROUP BY 1, 2
$$;

CREATE FUNCTION tlsrpt.sts_history_rows(reports bigint[], auth boolean)
RETURNS TABLE (policy_domain text, mode text, max_age bigint, mx text[], first_seen timestamptz,
               last_seen timestamptz, reports bigint, reporters text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, mode, max_age, mx, min(date_start), max(date_end), count(DISTINCT report),
           array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL)
    FROM tlsrpt.sts_rows(reports, auth)
    GROUP BY 1, 2, 3, 4
$$;

-- ---------------------------------------------------------------- refresh
-- Rolls up what was stored (or deleted) since the last call; returns how many
-- reports it took in. Cheap when there is little to do: run it from cron (every
-- few minutes), after a backfill, after a purge. One at a time.
CREATE FUNCTION tlsrpt.refresh() RETURNS bigint
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

-- A DELETE (the purge) marks the days it touched; latest_report and
-- sts_policy_history are rebuilt by the next refresh (until then they are
-- computed from the tables). Deliveries never delete: nothing for them to run.
CREATE FUNCTION tlsrpt.rollup_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO tlsrpt.rollup_dirty_day
    SELECT DISTINCT (coalesce(date_start, date_end, received_at) AT TIME ZONE 'UTC')::date FROM old_reports
    ON CONFLICT DO NOTHING;
    UPDATE tlsrpt.rollup_state SET rebuild = true WHERE NOT rebuild;
    RETURN NULL;
END
$$;
CREATE TRIGGER rollup_deleted AFTER DELETE ON tlsrpt.report
    REFERENCING OLD TABLE AS old_reports FOR EACH STATEMENT EXECUTE FUNCTION tlsrpt.rollup_deleted();

-- Forgets every rollup: the next refresh() rolls everything up again. For
-- after an UPDATE of stored rows (tlsrpt-ingest only inserts and deletes; the
-- rollups do not see updates). Until then the views compute from the tables.
CREATE FUNCTION tlsrpt.rollup_reset() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.rollup_daily_domain, tlsrpt.rollup_sts_daily, tlsrpt.failure_fact,
             tlsrpt.rollup_latest, tlsrpt.rollup_sts_history, tlsrpt.rollup_gap, tlsrpt.rollup_dirty_day,
             tlsrpt.rollup_host_domain, tlsrpt.rollup_mx_name;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

-- TRUNCATE (tests, benchmarks): everything is rolled up again
CREATE FUNCTION tlsrpt.rollup_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tlsrpt.rollup_reset();
    RETURN NULL;
END
$$;
CREATE TRIGGER rollup_truncated AFTER TRUNCATE ON tlsrpt.report
    FOR EACH STATEMENT EXECUTE FUNCTION tlsrpt.rollup_truncated();

-- ---------------------------------------------------------------- the fast views
-- Each: the rollup rows, except for the days (or keys) with something pending,
-- plus those computed from the tables.


-- The host domains now: those of the last refresh(), and those the pending
-- reports make (a report only ever adds some); after a purge, until the next
-- refresh(), everything is read again.
CREATE FUNCTION tlsrpt.host_domain_now() RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain FROM tlsrpt.rollup_host_domain
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
    UNION ALL
    SELECT tlsrpt.host_domains(
               ARRAY(SELECT DISTINCT l.policy_domain FROM tlsrpt.rollup_latest l WHERE NOT l.auth_only
                     UNION SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id),
               ARRAY(SELECT n FROM tlsrpt.rollup_mx_name n
                     UNION SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                     FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.rollup_pending)) AS x))
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state) AND EXISTS (SELECT FROM tlsrpt.rollup_pending)
    UNION ALL
    SELECT tlsrpt.host_domains(
               ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy),
               ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                     FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.report)) AS x))
    WHERE (SELECT rebuild FROM tlsrpt.rollup_state)
$$;

-- arrays end to end (NULLs skipped), for the reporters of several rollup rows
CREATE AGGREGATE tlsrpt.array_concat(anycompatiblearray) (sfunc = array_cat, stype = anycompatiblearray);

CREATE VIEW tlsrpt.daily_domain AS
SELECT x.day, x.day_start, x.policy_domain,
       sum(x.successful) AS successful, sum(x.failed) AS failed, sum(x.sessions) AS sessions,
       round(sum(x.failed) / nullif(sum(x.sessions), 0), 4) AS failure_rate,
       (SELECT count(DISTINCT o) FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o) AS reporters,
       coalesce((SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(x.reporter_names)) AS o), '{}')
           AS reporter_names,
       sum(x.reports)::bigint AS reports,
       x.host_report
FROM (SELECT u.day, u.day_start, u.policy_domain, u.successful, u.failed, u.sessions, u.reporter_names, u.reports,
             coalesce(NOT u.has_sts AND u.policy_domain IN (SELECT tlsrpt.host_domain_now()), false) AS host_report
      FROM (SELECT d.day, d.day_start, d.policy_domain, d.has_sts, d.successful, d.failed, d.sessions,
                   d.reporter_names, d.reports
            FROM tlsrpt.rollup_daily_domain d
            WHERE d.auth_only = (SELECT tlsrpt.authenticated_only())
              AND d.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
            UNION ALL
            SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.policy_domain, y.has_sts, y.successful, y.failed,
                   y.sessions, y.reporter_names, y.reports
            FROM tlsrpt.daily_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                          (SELECT tlsrpt.authenticated_only())) AS y
            WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending_day)) u) x
GROUP BY x.day, x.day_start, x.policy_domain, x.host_report;

-- One row per failure row: what the dashboards and alerts read (in scope).
CREATE VIEW tlsrpt.failure_row AS
SELECT x.*,
       coalesce(coalesce(lower(x.policy_type), '') <> 'sts'
                AND x.policy_domain IN (SELECT tlsrpt.host_domain_now()), false) AS host_report
FROM (
    SELECT failure, report, authenticated, day, day_start, organization_name, date_start, date_end, received_at,
           policy_type, policy_domain, result_type, sending_mta_ip, receiving_mx_hostname, receiving_ip,
           failed_sessions, counted_sessions
    FROM tlsrpt.failure_fact
    UNION ALL
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
    FROM tlsrpt.rollup_pending r
    JOIN tlsrpt.policy p ON p.report = r.id
    JOIN tlsrpt.failure f ON f.policy = p.id
    CROSS JOIN LATERAL (SELECT (coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date AS day) d
) x
WHERE x.authenticated OR NOT (SELECT tlsrpt.authenticated_only());

CREATE VIEW tlsrpt.failure_daily AS
SELECT day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name,
       sum(counted_sessions) AS failed_sessions,
       count(*) AS failure_rows,
       bool_and(host_report) AS host_report
FROM tlsrpt.failure_row
GROUP BY day, day_start, policy_domain, result_type, receiving_mx_hostname, organization_name;

CREATE VIEW tlsrpt.top_sending_ip AS
SELECT sending_mta_ip,
       sum(counted_sessions) AS failed_sessions,
       array_agg(DISTINCT policy_domain) FILTER (WHERE policy_domain IS NOT NULL) AS policy_domains,
       array_agg(DISTINCT result_type) FILTER (WHERE result_type IS NOT NULL) AS result_types,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS organizations,
       min(coalesce(date_start, received_at)) AS first_seen,
       max(coalesce(date_end, received_at)) AS last_seen
FROM tlsrpt.failure_row
WHERE sending_mta_ip IS NOT NULL
GROUP BY sending_mta_ip
ORDER BY failed_sessions DESC, sending_mta_ip;

CREATE VIEW tlsrpt.top_receiving_ip AS
SELECT receiving_ip,
       sum(counted_sessions) AS failed_sessions,
       array_agg(DISTINCT receiving_mx_hostname) FILTER (WHERE receiving_mx_hostname IS NOT NULL) AS receiving_mx_hostnames,
       array_agg(DISTINCT policy_domain) FILTER (WHERE policy_domain IS NOT NULL) AS policy_domains,
       array_agg(DISTINCT result_type) FILTER (WHERE result_type IS NOT NULL) AS result_types,
       array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL) AS organizations,
       min(coalesce(date_start, received_at)) AS first_seen,
       max(coalesce(date_end, received_at)) AS last_seen
FROM tlsrpt.failure_row
WHERE receiving_ip IS NOT NULL
GROUP BY receiving_ip
ORDER BY failed_sessions DESC, receiving_ip;

CREATE VIEW tlsrpt.latest_report AS
SELECT c.organization_name, c.policy_domain, r.id AS report, r.report_id, r.contact_info,
       r.date_start, r.date_end, r.received_at, c.reports, c.first_seen,
       now() - coalesce(r.date_end, r.received_at) AS silent_for
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
SELECT * FROM tlsrpt.latest_report_plain WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

CREATE VIEW tlsrpt.sts_policy_daily AS
SELECT x.day, x.day_start, x.policy_domain, x.mode, x.max_age, x.reports, x.reporters
FROM (SELECT s.day, s.day_start, s.policy_domain, s.mode, s.max_age, s.reports, s.reporters
      FROM tlsrpt.rollup_sts_daily s
      WHERE s.auth_only = (SELECT tlsrpt.authenticated_only())
        AND s.day NOT IN (SELECT day FROM tlsrpt.rollup_pending_day)
      UNION ALL
      SELECT y.day, y.day::timestamp AT TIME ZONE 'UTC', y.policy_domain, y.mode, y.max_age, y.reports, y.reporters
      FROM tlsrpt.sts_daily_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                 (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending_day)) x;

CREATE VIEW tlsrpt.sts_policy_history AS
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
SELECT * FROM tlsrpt.sts_policy_history_plain WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

-- ---------------------------------------------------------------- alerts
-- Same parameters, columns and rows as in version 4; they read failure_row
-- (failure_fact) instead of joining every failure row to its report, and
-- "a result type not seen before" is one grouping, not an anti-join.

-- the version 4 definitions, for comparison
CREATE FUNCTION tlsrpt.alert_new_result_type_plain(recent interval DEFAULT '1 day',
                                             history interval DEFAULT '90 days')
RETURNS TABLE (policy_domain text, result_type text, failed_sessions numeric,
               receiving_mx_hostnames text[], organizations text[])
LANGUAGE sql STABLE
AS $$
    WITH f AS (
        SELECT policy_domain, result_type, counted_sessions, receiving_mx_hostname, organization_name,
               tlsrpt.is_recent(date_end, received_at, alert_new_result_type_plain.recent) AS is_recent
        FROM tlsrpt.failure_detail
        WHERE coalesce(date_end, received_at)
              > now() - alert_new_result_type_plain.recent - interval '1 day' - alert_new_result_type_plain.history
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

CREATE FUNCTION tlsrpt.alert_critical_failure_plain(recent interval DEFAULT '1 day',
    result_types text[] DEFAULT ARRAY['certificate-expired', 'certificate-host-mismatch',
                                      'starttls-not-supported'])
RETURNS TABLE (policy_domain text, result_type text, receiving_mx_hostname text,
               failed_sessions numeric, organizations text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, result_type, receiving_mx_hostname, sum(counted_sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM tlsrpt.failure_detail
    WHERE tlsrpt.is_recent(date_end, received_at, alert_critical_failure_plain.recent)
      AND lower(result_type) IN (SELECT lower(t) FROM unnest(alert_critical_failure_plain.result_types) AS t)
    GROUP BY policy_domain, result_type, receiving_mx_hostname
    ORDER BY 1, 2, 3
$$;

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
    GROUP BY policy_domain, result_type
    HAVING bool_and(tlsrpt.is_recent(date_end, received_at, alert_new_result_type.recent))
    ORDER BY 1, 2
$$;

CREATE OR REPLACE FUNCTION tlsrpt.alert_critical_failure(recent interval DEFAULT '1 day',
    result_types text[] DEFAULT ARRAY['certificate-expired', 'certificate-host-mismatch',
                                      'starttls-not-supported'])
RETURNS TABLE (policy_domain text, result_type text, receiving_mx_hostname text,
               failed_sessions numeric, organizations text[])
LANGUAGE sql STABLE
AS $$
    SELECT policy_domain, result_type, receiving_mx_hostname, sum(counted_sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}')
    FROM tlsrpt.failure_row
    WHERE received_at > now() - alert_critical_failure.recent
      AND tlsrpt.is_recent(date_end, received_at, alert_critical_failure.recent)
      AND lower(result_type) IN (SELECT lower(t) FROM unnest(alert_critical_failure.result_types) AS t)
    GROUP BY policy_domain, result_type, receiving_mx_hostname
    ORDER BY 1, 2, 3
$$;

-- the version 3 definition, for comparison
CREATE FUNCTION tlsrpt.alert_silent_reporter_plain(silence interval DEFAULT '3 days',
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
        WHERE r.date_end > now() - alert_silent_reporter_plain.lookback
          AND r.date_start IS NOT NULL
    )
    SELECT d.organization_name, d.policy_domain, max(d.date_end), now() - max(d.date_end),
           count(DISTINCT d.day)
    FROM d
    GROUP BY d.organization_name, d.policy_domain
    HAVING count(DISTINCT d.day) >= greatest(alert_silent_reporter_plain.min_reports, 2)
       AND (max(d.day) - min(d.day))::numeric / (count(DISTINCT d.day) - 1) <= 2
       AND max(d.date_end) < now() - alert_silent_reporter_plain.silence
    ORDER BY 1, 2
$$;
-- Only the (organization, policy domain) pairs whose latest date_end is older
-- than silence can be silent (rollup_latest.max_date_end; those of pending
-- reports too): their reports are read, not every report of the lookback.
-- Between a purge and the next refresh() the plain definition answers.
CREATE OR REPLACE FUNCTION tlsrpt.alert_silent_reporter(silence interval DEFAULT '3 days',
                                                        lookback interval DEFAULT '30 days',
                                                        min_reports integer DEFAULT 3)
RETURNS TABLE (organization_name text, policy_domain text, last_date_end timestamptz,
               silent_for interval, reports bigint)
LANGUAGE sql STABLE
AS $$
    WITH c AS (
        SELECT l.organization_name, l.policy_domain FROM tlsrpt.rollup_latest l
        WHERE l.auth_only = (SELECT tlsrpt.authenticated_only())
          AND l.max_date_end < now() - alert_silent_reporter.silence
        UNION
        SELECT r.organization_name, p.policy_domain
        FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id
    ), d AS (
        SELECT r.organization_name, p.policy_domain, r.date_end,
               (r.date_start AT TIME ZONE 'UTC')::date AS day
        FROM c
        JOIN tlsrpt.policy p ON p.policy_domain = c.policy_domain
                             OR (p.policy_domain IS NULL AND c.policy_domain IS NULL)
        JOIN tlsrpt.scoped_report r ON r.id = p.report
        WHERE r.organization_name IS NOT DISTINCT FROM c.organization_name
          AND r.date_end > now() - alert_silent_reporter.lookback
          AND r.date_start IS NOT NULL
    )
    SELECT d.organization_name, d.policy_domain, max(d.date_end), now() - max(d.date_end),
           count(DISTINCT d.day)
    FROM d
    WHERE NOT (SELECT rebuild FROM tlsrpt.rollup_state)
    GROUP BY d.organization_name, d.policy_domain
    HAVING count(DISTINCT d.day) >= greatest(alert_silent_reporter.min_reports, 2)
       AND (max(d.day) - min(d.day))::numeric / (count(DISTINCT d.day) - 1) <= 2
       AND max(d.date_end) < now() - alert_silent_reporter.silence
    UNION ALL
    SELECT * FROM tlsrpt.alert_silent_reporter_plain(alert_silent_reporter.silence, alert_silent_reporter.lookback,
                                                     alert_silent_reporter.min_reports)
    WHERE (SELECT rebuild FROM tlsrpt.rollup_state)
    ORDER BY 1, 2
$$;
