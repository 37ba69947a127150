-- tlsrpt-ingest schema: planner statistics for a partitioned schema
-- (doc/scaling.md, "Statistics"). Autovacuum analyzes a partition once enough
-- of it changed, but never a partitioned table itself (report, policy and
-- failure of --init-db --partitioned), and never a partition nobody wrote to
-- (the months ahead): the planner then takes such a partition for ten pages,
-- and uses no statistics for the parents, so the views' plans go wrong (their
-- inflated costs switch JIT on: seconds instead of milliseconds). These
-- statistics are now kept by what an administrator runs anyway: refresh()
-- (the cron line), --init-db, the end of a backfill that stored reports, and
-- the purge (which analyzes the parents every time). Nothing on a plain schema,
-- nothing for a delivery.

-- ANALYZE what needs it, and returns how many tables it analyzed:
--  * a parent never analyzed (reltuples < 0), or whose row count moved by
--    more than autovacuum would let a plain table's move before analyzing it
--    (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x rows,
--    50 + 10 % by default; the rows now are the partitions' live rows), or
--    every parent with force: ANALYZE of the parent, which samples the whole
--    table and analyzes each partition too;
--  * otherwise each partition never analyzed (a new month, empty): ANALYZE of
--    that partition alone (cheap: it is new).
-- Only the tables the caller may analyze (their owner's role, or the
-- database's): another role's call (a writer's backfill) does nothing.
-- 0 at once on a plain schema.
CREATE FUNCTION tlsrpt.analyze_partitioned(force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    leaf regclass;
    made integer := 0;
    parent_rows float8;
    rows_now float8;
    threshold float8 := coalesce(current_setting('autovacuum_analyze_threshold', true)::float8, 50);
    scale float8 := coalesce(current_setting('autovacuum_analyze_scale_factor', true)::float8, 0.1);
BEGIN
    IF NOT tlsrpt.partitioned() THEN
        RETURN 0;
    END IF;
    -- (in the order partition_drop locks them: a purge and a refresh at once wait, not deadlock)
    FOREACH t IN ARRAY ARRAY['tlsrpt.failure', 'tlsrpt.policy', 'tlsrpt.report']::regclass[] LOOP
        SELECT c.reltuples INTO parent_rows FROM pg_class c
        WHERE c.oid = t AND c.relkind = 'p'
          AND (pg_has_role(c.relowner, 'USAGE')
               OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE'));
        CONTINUE WHEN NOT FOUND;
        -- a partition's rows: what it counted when last analyzed or vacuumed,
        -- or the live rows the statistics collector counts since (more recent,
        -- but 0 after a crash: the larger of the two)
        SELECT coalesce(sum(greatest(c.reltuples, pg_stat_get_live_tuples(c.oid))), 0) INTO rows_now
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = t;
        IF force OR parent_rows < 0 OR abs(rows_now - parent_rows) > threshold + scale * parent_rows THEN
            EXECUTE format('ANALYZE %s', t);
            made := made + 1;
            CONTINUE;
        END IF;
        FOR leaf IN SELECT c.oid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = t AND c.reltuples < 0 ORDER BY c.oid LOOP
            EXECUTE format('ANALYZE %s', leaf);
            made := made + 1;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;

-- refresh() (the cron line) brings the statistics up to date first, so that
-- its own queries and the dashboards plan with them: the rollups' refresh is
-- refresh_rollups() now, called by refresh() under the same lock, so that two
-- refreshes at once do not both analyze. Should ANALYZE fail, refresh() still
-- rolls up (a warning says why; a cancel or statement_timeout stops both).
ALTER FUNCTION tlsrpt.refresh() RENAME TO refresh_rollups;
CREATE FUNCTION tlsrpt.refresh() RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tlsrpt.refresh'));
    BEGIN
        PERFORM tlsrpt.analyze_partitioned();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'tlsrpt.refresh(): the partitioned tables were not analyzed: %', SQLERRM;
    END;
    RETURN tlsrpt.refresh_rollups();
END
$$;
