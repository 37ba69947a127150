-- tlsrpt-ingest schema migration 13: daily_domain without a grouping of its
-- own (issue 14, the "All" panels at 1,000 and 10,000 domains).
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

-- refresh() writes it for the days it computes again (refresh_reporters() is
-- called after rollup_daily_domain is written; migration 11's definition
-- otherwise)
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
             tlsrpt.rollup_ledger, tlsrpt.rollup_end_domain, tlsrpt.rollup_daily_domain_total;
    UPDATE tlsrpt.rollup_state SET watermark = 0, rebuild = false;
END
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
-- the days with something pending: from the tables, grouped as before
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
      FROM tlsrpt.daily_domain_rows(ARRAY(SELECT day FROM tlsrpt.rollup_pending_day),
                                    (SELECT tlsrpt.authenticated_only())) AS y
      WHERE EXISTS (SELECT FROM tlsrpt.rollup_pending_day)) x
GROUP BY x.day, x.day_start, x.policy_domain, x.host_report;
