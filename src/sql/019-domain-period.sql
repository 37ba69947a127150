-- tlsrpt-ingest schema version 19: a domain's sums over a period without
-- reading each of its days (issue 14 section 3: the panels of every domain
-- <= 250 ms at 10,000 domains).
--
-- The period table and the failure-rate panel's ranking sum daily_domain per
-- domain over the window: at 10,000 domains and 30 days, 290,000 rows read,
-- sorted and summed for every query (330-470 ms). refresh() now also keeps,
-- per domain and day, the running sums of that domain's days so far
-- (rollup_domain_running, beside rollup_daily_domain_total, from which it is
-- computed). A domain's window is then its last row in the window's end less
-- the sums before its first row in the window: two index look-ups per domain.
-- What daily_domain reads otherwise is merged in as the view does: the days
-- with something pending (their rolled-up rows out, the view's rows in) and
-- the host domains (from the view: their rows are split by policy type).
-- The same rows as the period table's SQL over daily_domain
-- (tests/rollup-t.sh, tests/grafana-t.sh).

CREATE TABLE tlsrpt.rollup_domain_running (
    auth_only      boolean NOT NULL,
    policy_domain  text NOT NULL,
    day            date NOT NULL,
    day_start      timestamptz NOT NULL,
    sessions       numeric NOT NULL,  -- the day's own, as rollup_daily_domain_total has them
    failed         numeric NOT NULL,
    -- the sums of the domain's rows up to this one, and before it: only
    -- differences are meaningful (a purge of the oldest days leaves the
    -- later rows as they are)
    run_sessions   numeric NOT NULL,
    run_failed     numeric NOT NULL,
    run_days       bigint NOT NULL
);
-- both look-ups of a window read the index alone
CREATE UNIQUE INDEX rollup_domain_running_key ON tlsrpt.rollup_domain_running (auth_only, policy_domain, day_start)
    INCLUDE (sessions, failed, run_sessions, run_failed, run_days);
CREATE INDEX rollup_domain_running_day_idx ON tlsrpt.rollup_domain_running (day);
-- A look-up reads the index alone where the visibility map says the page is
-- all-visible, and only a VACUUM sets that. refresh() adds a row per domain
-- and day; autovacuum's default waits for inserts of 20% of the table (73
-- days of them), and the latest rows, which every window reads, fetched
-- their heap pages until then (230 ms instead of 160 at 10,000 domains).
-- Vacuumed after every thousand rows written: it visits the new pages only.
ALTER TABLE tlsrpt.rollup_domain_running SET (
    autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

-- Bring rollup_domain_running in line with rollup_daily_domain_total on those
-- days (NULL: every day). A domain whose figures of a day changed has its
-- rows from that day on written again, on from the sums of its row before;
-- rows of a domain's oldest days that are gone (a purge) are deleted alone.
CREATE FUNCTION tlsrpt.refresh_domain_running(days date[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
DECLARE
    scopes boolean[];
    domains text[];
    firsts date[];
BEGIN
    WITH t AS (
        SELECT auth_only, policy_domain, day, sessions, failed FROM tlsrpt.rollup_daily_domain_total
        WHERE (days IS NULL OR day = ANY (days)) AND policy_domain IS NOT NULL
    ), r AS (
        SELECT auth_only, policy_domain, day, sessions, failed FROM tlsrpt.rollup_domain_running
        WHERE days IS NULL OR day = ANY (days)
    ), changed AS (
        SELECT coalesce(t.auth_only, r.auth_only) AS auth_only, coalesce(t.policy_domain, r.policy_domain) AS domain,
               coalesce(t.day, r.day) AS day, t.day IS NULL AS gone
        FROM t FULL JOIN r ON r.auth_only = t.auth_only AND r.policy_domain = t.policy_domain AND r.day = t.day
        WHERE t.day IS NULL OR r.day IS NULL OR t.sessions <> r.sessions OR t.failed <> r.failed
    ), oldest_gone AS (
        -- a gone row with no row of the domain left before it
        DELETE FROM tlsrpt.rollup_domain_running x USING changed c
        WHERE c.gone AND x.auth_only = c.auth_only AND x.policy_domain = c.domain AND x.day = c.day
          AND NOT EXISTS (SELECT FROM tlsrpt.rollup_daily_domain_total t
                          WHERE t.auth_only = c.auth_only AND t.policy_domain = c.domain
                            AND t.day_start < c.day::timestamp AT TIME ZONE 'UTC')
        RETURNING x.auth_only, x.policy_domain, x.day
    )
    SELECT array_agg(c.auth_only), array_agg(c.domain), array_agg(c.first)
    INTO scopes, domains, firsts
    FROM (SELECT c.auth_only, c.domain, min(c.day) AS first
          FROM changed c
          WHERE (c.auth_only, c.domain, c.day) NOT IN (SELECT * FROM oldest_gone)
          GROUP BY 1, 2) c;
    IF scopes IS NULL THEN
        RETURN;
    END IF;

    -- (the days from the first one changed, through their index: usually
    -- the last ones)
    DELETE FROM tlsrpt.rollup_domain_running x
    USING unnest(scopes, domains, firsts) AS c(auth_only, domain, first)
    WHERE x.auth_only = c.auth_only AND x.policy_domain = c.domain AND x.day >= c.first
      AND x.day >= (SELECT min(f) FROM unnest(firsts) AS f);
    INSERT INTO tlsrpt.rollup_domain_running
    SELECT t.auth_only, t.policy_domain, t.day, t.day_start, t.sessions, t.failed,
           coalesce(b.run_sessions, 0) + sum(t.sessions) OVER w,
           coalesce(b.run_failed, 0) + sum(t.failed) OVER w,
           coalesce(b.run_days, 0) + count(*) OVER w
    FROM unnest(scopes, domains, firsts) AS c(auth_only, domain, first)
    LEFT JOIN LATERAL (
        SELECT x.run_sessions, x.run_failed, x.run_days FROM tlsrpt.rollup_domain_running x
        WHERE x.auth_only = c.auth_only AND x.policy_domain = c.domain
          AND x.day_start < c.first::timestamp AT TIME ZONE 'UTC'
        ORDER BY x.day_start DESC LIMIT 1) b ON true
    JOIN tlsrpt.rollup_daily_domain_total t
      ON t.auth_only = c.auth_only AND t.policy_domain = c.domain
     AND t.day_start >= c.first::timestamp AT TIME ZONE 'UTC'
    WINDOW w AS (PARTITION BY t.auth_only, t.policy_domain ORDER BY t.day_start);
END
$$;

INSERT INTO tlsrpt.rollup_domain_running
SELECT t.auth_only, t.policy_domain, t.day, t.day_start, t.sessions, t.failed,
       sum(t.sessions) OVER w, sum(t.failed) OVER w, count(*) OVER w
FROM tlsrpt.rollup_daily_domain_total t
WHERE t.policy_domain IS NOT NULL
WINDOW w AS (PARTITION BY t.auth_only, t.policy_domain ORDER BY t.day_start)
ORDER BY 1, 2, 4;

-- refresh_reporters() of migration 15 (it writes rollup_daily_domain_total),
-- then the running sums of the days it wrote
ALTER FUNCTION tlsrpt.refresh_reporters(bigint[], date[], boolean) RENAME TO refresh_reporters_15;
CREATE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM tlsrpt.refresh_reporters_15(new_ids, days, rebuild);
    PERFORM tlsrpt.refresh_domain_running(days);
END
$$;

CREATE OR REPLACE FUNCTION tlsrpt.rollup_clear() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE tlsrpt.rollup_daily_domain, tlsrpt.rollup_sts_daily,
             tlsrpt.rollup_latest, tlsrpt.rollup_sts_history, tlsrpt.rollup_gap, tlsrpt.rollup_dirty_day,
             tlsrpt.rollup_host_domain, tlsrpt.rollup_mx_name,
             tlsrpt.rollup_reporter, tlsrpt.rollup_sts_reporter_day, tlsrpt.rollup_reporter_daily,
             tlsrpt.rollup_ledger, tlsrpt.rollup_end_domain, tlsrpt.rollup_daily_domain_total,
             tlsrpt.rollup_failure_daily, tlsrpt.rollup_reporter_daily_total, tlsrpt.rollup_domain_running;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
$$;

-- Two things a DELETE of reports could leave behind when it ran while a
-- refresh() was running:
-- - refresh() that started with rebuild set clears it when it commits; the
--   DELETE's "rebuild = true WHERE NOT rebuild" saw rebuild set, did not
--   wait, and its reports stayed in rollup_latest and rollup_sts_history
--   (sts_policy_history listed a deleted report's policy);
-- - on a partitioned schema, failure_fact has no foreign key to failure
--   (the purge deletes its rows itself): a DELETE by hand left the deleted
--   reports' rows there, and the failure panels counted them until
--   rollup_reset().
-- The trigger of migration 5 now takes refresh()'s lock first (refresh()
-- takes it, then rollup_state's row): a refresh() running commits before
-- the trigger marks the rollups, and one starting later waits for the DELETE
-- to commit. On a partitioned schema it then deletes the reports'
-- failure_fact rows, by day (failure_fact's index; a purge's own statement
-- has deleted them already).
CREATE OR REPLACE FUNCTION tlsrpt.rollup_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    no_foreign_key boolean := NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                                          WHERE conrelid = 'tlsrpt.failure_fact'::regclass AND contype = 'f');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tlsrpt.refresh'));
    INSERT INTO tlsrpt.rollup_dirty_day
    SELECT DISTINCT (coalesce(date_start, date_end, received_at) AT TIME ZONE 'UTC')::date FROM old_reports
    ON CONFLICT DO NOTHING;
    UPDATE tlsrpt.rollup_state SET rebuild = true WHERE NOT rebuild;
    IF no_foreign_key THEN
        DELETE FROM tlsrpt.failure_fact f
        WHERE f.day_start = ANY (ARRAY(
                  SELECT DISTINCT ((coalesce(o.date_start, o.date_end, o.received_at) AT TIME ZONE 'UTC')::date)::timestamp
                                  AT TIME ZONE 'UTC'
                  FROM old_reports o))
          AND f.report IN (SELECT o.id FROM old_reports o);
    END IF;
    RETURN NULL;
END
$$;

-- Per selected domain with a row of daily_domain in the period (day_start
-- between since and until): the sums of its rows, the days, and whether a
-- row is a host report. The rows of
--   SELECT policy_domain, sum(sessions), sum(failed), count(DISTINCT day), bool_or(host_report)
--   FROM tlsrpt.daily_domain
--   WHERE day_start BETWEEN since AND until AND policy_domain = ANY (domains) GROUP BY 1
-- which is what it runs for up to 100 domains (their days are read faster
-- than 200 look-ups are made).
CREATE FUNCTION tlsrpt.domain_period(since timestamptz, until timestamptz, domains text[])
RETURNS TABLE (policy_domain text, sessions numeric, failed numeric, days bigint, host_report boolean)
LANGUAGE plpgsql STABLE
-- the session's plans (Grafana's connections are pooled), not compiled (the
-- estimate of every domain's rows passes jit_above_cost; compiling took 50 ms)
SET plan_cache_mode = force_generic_plan SET jit = off
AS $fn$
DECLARE
    scope boolean := tlsrpt.authenticated_only();
    hosts text[];
    pending timestamptz[];
BEGIN
    IF cardinality(domains) <= 100 THEN
        RETURN QUERY
        SELECT v.policy_domain, sum(v.sessions), sum(v.failed), count(DISTINCT v.day), bool_or(v.host_report)
        FROM tlsrpt.daily_domain v
        WHERE v.day_start BETWEEN since AND until AND v.policy_domain = ANY (domains)
        GROUP BY v.policy_domain;
        RETURN;
    END IF;
    -- the host domains selected: daily_domain's rows (split by policy type)
    hosts := ARRAY(SELECT DISTINCT h FROM tlsrpt.host_domain_now() AS h WHERE h = ANY (domains));
    IF cardinality(hosts) > 0 THEN
        RETURN QUERY
        SELECT v.policy_domain, sum(v.sessions), sum(v.failed), count(DISTINCT v.day), bool_or(v.host_report)
        FROM tlsrpt.daily_domain v
        WHERE v.day_start BETWEEN since AND until AND v.policy_domain = ANY (hosts)
        GROUP BY v.policy_domain;
    END IF;
    -- the others: daily_domain reads rollup_daily_domain_total for each
    -- day but those with something pending
    pending := ARRAY(SELECT p.day::timestamp AT TIME ZONE 'UTC' FROM tlsrpt.rollup_pending_day p);
    pending := ARRAY(SELECT p FROM unnest(pending) AS p WHERE p BETWEEN since AND until);
    RETURN QUERY
    WITH picked AS (
        SELECT DISTINCT d AS domain FROM unnest(domains) AS d
        WHERE d IS NOT NULL AND d <> ALL (hosts)
    ), parts AS (
        -- the rolled-up sums: the last row up to until, less what came
        -- before the first from since
        SELECT p.domain, hi.run_sessions - lo.run_sessions + lo.sessions AS sessions,
               hi.run_failed - lo.run_failed + lo.failed AS failed, hi.run_days - lo.run_days + 1 AS days
        FROM picked p
        CROSS JOIN LATERAL (
            SELECT x.day_start, x.run_sessions, x.run_failed, x.run_days FROM tlsrpt.rollup_domain_running x
            WHERE x.auth_only = scope AND x.policy_domain = p.domain AND x.day_start <= until
            ORDER BY x.day_start DESC LIMIT 1) hi
        CROSS JOIN LATERAL (
            SELECT x.day_start, x.sessions, x.failed, x.run_sessions, x.run_failed, x.run_days
            FROM tlsrpt.rollup_domain_running x
            WHERE x.auth_only = scope AND x.policy_domain = p.domain AND x.day_start >= since
            ORDER BY x.day_start LIMIT 1) lo
        -- (no row in the window: the two rows cross, and would add nothing)
        WHERE lo.day_start <= hi.day_start
        UNION ALL
        -- the rolled-up rows of the days with something pending ...
        SELECT t.policy_domain, -t.sessions, -t.failed, -1
        FROM tlsrpt.rollup_domain_running t
        WHERE t.day = ANY (ARRAY(SELECT (p AT TIME ZONE 'UTC')::date FROM unnest(pending) AS p))
          AND t.auth_only = scope
        UNION ALL
        -- ... are not what daily_domain reads for them
        SELECT v.policy_domain, v.sessions, v.failed, 1
        FROM tlsrpt.daily_domain v
        WHERE v.day_start = ANY (pending) AND cardinality(pending) > 0
    )
    -- (the domain picked last: a generic plan sees an array of a few)
    SELECT r.domain, sum(r.sessions), sum(r.failed), sum(r.days)::bigint, false
    FROM parts r
    WHERE r.domain IN (SELECT domain FROM picked)
    GROUP BY r.domain
    HAVING sum(r.days) > 0;
END
$fn$;
