-- tlsrpt-ingest schema migration 14: failure_daily without a grouping of its
-- own (issue 14, the failure panels for all domains).
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

-- refresh() writes it for the days it computes again (migration 13's
-- definition otherwise)
CREATE OR REPLACE FUNCTION tlsrpt.refresh_reporters(new_ids bigint[], days date[], rebuild boolean) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    a boolean;
    keys text[][];
BEGIN
    -- migration 13: the days' figures of each domain, sts and other reports
    -- together (rollup_daily_domain holds them apart; it is written first)
    DELETE FROM tlsrpt.rollup_daily_domain_total WHERE day = ANY (days);
    INSERT INTO tlsrpt.rollup_daily_domain_total
    SELECT d.auth_only, d.day, d.day_start, d.policy_domain, sum(d.successful), sum(d.failed), sum(d.sessions),
           coalesce((SELECT array_agg(DISTINCT o) FROM unnest(tlsrpt.array_concat(d.reporter_names)) AS o), '{}'),
           sum(d.reports)::bigint
    FROM tlsrpt.rollup_daily_domain d
    WHERE d.day = ANY (days)
    GROUP BY d.auth_only, d.day, d.day_start, d.policy_domain;

    -- migration 14: failure_daily's rows of those days (failure_fact has the
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
