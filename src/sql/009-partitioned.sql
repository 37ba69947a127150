-- tlsrpt-ingest schema: monthly partitions for the largest operators
-- (doc/scaling.md, "Big tables: monthly partitions"). `--init-db --partitioned`
-- on an empty database creates report, policy and failure partitioned by
-- period_month (src/schema.c edits migrations 1, 5 and 6 for it); a plain
-- schema has the column too, filled by every delivery from this version on,
-- and read by nothing else.

-- A report's month: the UTC month its period ends in; a report without an
-- end date is in the month '-infinity', always in the DEFAULT partition
-- (every copy of such a report with it: the identity holds there too).
-- A policy and its failure rows carry their report's.
CREATE FUNCTION tlsrpt.period_month(date_end timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(date_trunc('month', date_end AT TIME ZONE 'UTC')::date, '-infinity'::date)
$$;

ALTER TABLE tlsrpt.report ADD COLUMN IF NOT EXISTS period_month date;
ALTER TABLE tlsrpt.policy ADD COLUMN IF NOT EXISTS period_month date;
ALTER TABLE tlsrpt.failure ADD COLUMN IF NOT EXISTS period_month date;

CREATE FUNCTION tlsrpt.partitioned()
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT relkind = 'p' FROM pg_catalog.pg_class WHERE oid = 'tlsrpt.report'::regclass
$$;

-- The monthly partitions of report, policy and failure (report_YYYY_MM, ...)
-- from the month of first to ahead months after the current one, those not
-- there yet; a month whose rows are in the DEFAULT partition already (a
-- backfill of older reports) is left there, the purge deletes them by rows.
-- Returns the number of months made. Nothing on a plain schema.
-- Run by --init-db and by every --purge-older-than (the daily cron line);
-- before a backfill of older months: SELECT tlsrpt.partition_create('2024-01-01');
CREATE FUNCTION tlsrpt.partition_create(first date, ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date;
    made integer := 0;
    t text;
BEGIN
    IF NOT tlsrpt.partitioned() THEN
        RETURN 0;
    END IF;
    FOR m IN SELECT g::date FROM generate_series(date_trunc('month', first::timestamp),
                                                 date_trunc('month', (now() AT TIME ZONE 'UTC'))
                                                     + make_interval(months => ahead), '1 month') AS g LOOP
        CONTINUE WHEN to_regclass(format('tlsrpt.report_%s', to_char(m, 'YYYY_MM'))) IS NOT NULL;
        IF EXISTS (SELECT FROM tlsrpt.report_default
                   WHERE period_month >= m AND period_month < (m + interval '1 month')::date) THEN
            RAISE NOTICE 'month % stays in the default partition: it has rows there', to_char(m, 'YYYY-MM');
            CONTINUE;
        END IF;
        FOREACH t IN ARRAY ARRAY['report', 'policy', 'failure'] LOOP
            EXECUTE format('CREATE TABLE tlsrpt.%I PARTITION OF tlsrpt.%I FOR VALUES FROM (%L) TO (%L)',
                           t || '_' || to_char(m, 'YYYY_MM'), t, m, (m + interval '1 month')::date);
        END LOOP;
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- The monthly partitions whose whole month is before cutoff (each report in
-- them ended before it), oldest first. Empty on a plain schema.
CREATE FUNCTION tlsrpt.partition_expired(cutoff timestamptz)
RETURNS SETOF date
LANGUAGE sql STABLE
AS $$
    SELECT to_date(substr(c.relname, 8), 'YYYY_MM')
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'tlsrpt.report'::regclass AND c.relname ~ '^report_[0-9]{4}_[0-9]{2}$'
      AND (to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= cutoff
    ORDER BY 1
$$;

-- Drops one month (report, policy and failure partitions: DETACH, then DROP)
-- and returns how many rows went. The rollups are marked as a DELETE marks
-- them (rollup_deleted, migration 5: the days and the rebuild), and the
-- failure_fact rows of its failures go with it.
CREATE FUNCTION tlsrpt.partition_drop(month date, OUT reports bigint, OUT policies bigint, OUT failures bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sfx text := to_char(month, 'YYYY_MM');
BEGIN
    EXECUTE format('SELECT count(*) FROM tlsrpt.%I', 'report_' || sfx) INTO reports;
    EXECUTE format('SELECT count(*) FROM tlsrpt.%I', 'policy_' || sfx) INTO policies;
    EXECUTE format('SELECT count(*) FROM tlsrpt.%I', 'failure_' || sfx) INTO failures;
    EXECUTE format('INSERT INTO tlsrpt.rollup_dirty_day'
                   ' SELECT DISTINCT (coalesce(date_start, date_end, received_at) AT TIME ZONE ''UTC'')::date'
                   ' FROM tlsrpt.%I ON CONFLICT DO NOTHING', 'report_' || sfx);
    IF reports > 0 THEN
        UPDATE tlsrpt.rollup_state SET rebuild = true WHERE NOT rebuild;
    END IF;
    EXECUTE format('DELETE FROM tlsrpt.failure_fact WHERE failure IN (SELECT id FROM tlsrpt.%I)', 'failure_' || sfx);
    EXECUTE format('ALTER TABLE tlsrpt.failure DETACH PARTITION tlsrpt.%I', 'failure_' || sfx);
    EXECUTE format('DROP TABLE tlsrpt.%I', 'failure_' || sfx);
    EXECUTE format('ALTER TABLE tlsrpt.policy DETACH PARTITION tlsrpt.%I', 'policy_' || sfx);
    EXECUTE format('DROP TABLE tlsrpt.%I', 'policy_' || sfx);
    EXECUTE format('ALTER TABLE tlsrpt.report DETACH PARTITION tlsrpt.%I', 'report_' || sfx);
    EXECUTE format('DROP TABLE tlsrpt.%I', 'report_' || sfx);
END
$$;
