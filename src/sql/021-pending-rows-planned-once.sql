-- tlsrpt-ingest schema version 21: the rows of the reports pending (stored
-- since the last refresh()) computed by statements planned once per session
-- (issue 14 section 3: <= 5 ms for one domain at a million reports).
--
-- Each view merges the rolled-up rows with those of the reports pending,
-- computed by a function of their ids (daily_domain_rows_of(ids, auth) and
-- the like). The views call them with ARRAY(SELECT id FROM
-- tlsrpt.rollup_pending), which PostgreSQL never inlines, and a function in
-- SQL that is not inlined is parsed and planned again at every query: about
-- 0.8 ms each, and a panel of one domain calls up to three (MTA-STS versions
-- and drift: 7 ms, of which 5 planning these). In PL/pgSQL the same statement
-- keeps its plan for the session (Grafana's connections are pooled): the
-- same body, RETURN QUERY, with the names resolved as in SQL (a column before
-- a parameter: #variable_conflict use_column). As for any statement of
-- PL/pgSQL, the first five calls of a session are planned with their ids,
-- and later ones reuse the generic plan when it costs no more ("id = ANY
-- (ids)" of a few ids is an index look-up). refresh() calls three of them
-- (latest_rows, sts_history_rows, reporter_rows) once per run, with every
-- new report's id: planned with those, as before.
--
-- Two functions name their argument like one of their result columns
-- (reports), which PL/pgSQL does not allow: their body goes into a PL/pgSQL
-- function of the ids (latest_rows_of, sts_history_rows_of), which they
-- call, and the views call it directly (the SQL function around it would be
-- planned at every query again).
DO $migrate$
DECLARE
    f record;
    head constant text := E'#variable_conflict use_column\n';
    path constant text := current_setting('search_path');
BEGIN
    FOR f IN
        SELECT p.proname, pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result,
               rtrim(p.prosrc, E' \t\n;') AS body, p.proargnames AS args_names,
               EXISTS (SELECT FROM unnest(p.proargnames, p.proargmodes) AS a (name, mode)
                       WHERE a.mode = 't' AND a.name = p.proargnames[1]) AS clash
        FROM pg_proc p
        WHERE p.oid IN ('tlsrpt.daily_domain_rows_of(bigint[], boolean)'::regprocedure,
                        'tlsrpt.end_domain_rows_of(bigint[], boolean)'::regprocedure,
                        'tlsrpt.reporter_daily_rows_of(bigint[], boolean)'::regprocedure,
                        'tlsrpt.sts_daily_rows_of(bigint[], boolean)'::regprocedure,
                        'tlsrpt.sts_reporter_day_rows_of(bigint[], boolean)'::regprocedure,
                        'tlsrpt.reporter_rows(bigint[], boolean)'::regprocedure,
                        'tlsrpt.latest_rows(bigint[], boolean)'::regprocedure,
                        'tlsrpt.sts_history_rows(bigint[], boolean)'::regprocedure)
        ORDER BY 1
    LOOP
        IF f.clash THEN
            -- the argument under its name (reports), in a block named as the
            -- function was (the body may say latest_rows.reports)
            EXECUTE format(
                'CREATE FUNCTION tlsrpt.%I(ids bigint[], auth boolean) RETURNS %s LANGUAGE plpgsql STABLE AS %L',
                f.proname || '_of', f.result,
                head || format(E'<<%I>>\nDECLARE\n    %I bigint[] := ids;\nBEGIN\n    RETURN QUERY',
                               f.proname, f.args_names[1])
                     || f.body || E';\nEND\n');
            EXECUTE format('CREATE OR REPLACE FUNCTION tlsrpt.%I(%s) RETURNS %s LANGUAGE sql STABLE AS %L',
                           f.proname, f.args, f.result,
                           format('SELECT * FROM tlsrpt.%I(%I, auth)', f.proname || '_of', f.args_names[1]));
        ELSE
            EXECUTE format('CREATE OR REPLACE FUNCTION tlsrpt.%I(%s) RETURNS %s LANGUAGE plpgsql STABLE AS %L',
                           f.proname, f.args, f.result,
                           head || E'BEGIN\n    RETURN QUERY' || f.body || E';\nEND\n');
        END IF;
    END LOOP;
    PERFORM set_config('search_path', 'pg_catalog', true); -- every name qualified in the definitions
    FOR f IN
        SELECT c.oid::regclass AS view, pg_get_viewdef(c.oid) AS def
        FROM pg_class c
        WHERE c.relnamespace = 'tlsrpt'::regnamespace AND c.relkind = 'v'
          AND pg_get_viewdef(c.oid) ~ 'tlsrpt\.(latest_rows|sts_history_rows)\('
        ORDER BY 1
    LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', f.view,
                       regexp_replace(f.def, 'tlsrpt\.(latest_rows|sts_history_rows)\(', 'tlsrpt.\1_of(', 'g'));
    END LOOP;
    PERFORM set_config('search_path', path, true);
END
$migrate$;
