-- tlsrpt-ingest schema version 6: a report's identity includes who sent it
-- (doc/trust.md, "Report identity"). A report is (organization_name,
-- report_id, date range) as the reporter wrote it, and those are easy to guess:
-- stored per sender, a forged copy stored first can no longer make the
-- genuine one a duplicate. The views count one copy of each report:
-- * every authenticated copy counts (an aligned DKIM pass, one per signing domain);
-- * an unauthenticated copy is "shadowed" (kept, not counted) when an
--   authenticated copy exists, or when an unauthenticated copy from another
--   sender was stored before it.
-- report.shadowed is decided when a copy is stored, under a lock per identity
-- (so that copies arriving at once see each other); an authenticated copy
-- arriving later shadows the unauthenticated ones already stored.

-- ---------------------------------------------------------------- the sender
-- Who sent a report, as a key:
--   dkim:<d= domain>        an aligned DKIM pass (report.authenticated)
--   https:<client address>  an unauthenticated HTTPS POST (REMOTE_ADDR)
--   mail:<submitter>        an unauthenticated mail (TLS-Report-Submitter, lower case;
--                           also a mail read from a file by the backfill)
--   file:                   a report file that is not a mail (the administrator's own)
CREATE FUNCTION tlsrpt.sender_key(authenticated boolean, dkim_domain text, source text, client_addr inet,
                                  submitter text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN authenticated THEN 'dkim:' || coalesce(lower(dkim_domain), '')
                WHEN source = 'https' THEN 'https:' || coalesce(host(client_addr), '')
                WHEN source = 'file' AND submitter IS NULL THEN 'file:'
                ELSE 'mail:' || coalesce(lower(btrim(submitter)), '') END
$$;

ALTER TABLE tlsrpt.report
    -- the address an HTTPS report was posted from (REMOTE_ADDR); NULL otherwise
    ADD COLUMN client_addr inet,
    -- not counted: another copy of the same report counts instead
    ADD COLUMN shadowed boolean NOT NULL DEFAULT false;
ALTER TABLE tlsrpt.report
    ADD COLUMN sender text NOT NULL GENERATED ALWAYS AS (
        tlsrpt.sender_key(coalesce(dkim_result = 'pass' AND dkim_aligned, false), dkim_domain, source,
                          client_addr, submitter)) STORED;

ALTER TABLE tlsrpt.report DROP CONSTRAINT report_identity;
ALTER TABLE tlsrpt.report ADD CONSTRAINT report_identity UNIQUE NULLS NOT DISTINCT
    (organization_name, report_id, date_start, date_end, content_key, sender);
-- the shadowed copies: few, read by every view as one hashed set
CREATE INDEX report_shadowed_idx ON tlsrpt.report (id) WHERE shadowed;

-- ---------------------------------------------------------------- storing a copy
-- Called by the report statement (src/store.c) for the copy it is storing,
-- with the copy's values, before the INSERT; returns its shadowed column, or
-- NULL for a copy not to store:
-- * the same sender has it already: NULL (a redelivery adds nothing);
-- * an unauthenticated report file (source file, not an aligned DKIM pass)
--   of a report stored already, from whoever: NULL (the administrator's
--   backfill of reports also received adds nothing);
-- * an authenticated copy: false; the unauthenticated copies stored so far
--   become shadowed (and the rollups that counted them are marked: their days
--   and tlsrpt.refresh()'s rebuild, as a purge does);
-- * an unauthenticated copy: true when any other copy is stored.
-- The advisory lock (one per identity, until COMMIT) makes copies of one
-- report that arrive at the same time take turns: each statement of a
-- VOLATILE function sees what was committed before it ran. The identities
-- share 1024 locks (a hash bucket each), so a transaction holds at most 1024
-- however many reports its message has (PostgreSQL's lock table is shared
-- and bounded); two unrelated reports in one bucket only wait for each
-- other's COMMIT.
CREATE FUNCTION tlsrpt.report_claim(org text, rid text, ds timestamptz, de timestamptz, doc jsonb,
                                    dkim_res text, dkim_ali boolean, dkim_dom text, src text, addr inet,
                                    sub text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ck text := CASE WHEN rid IS NULL THEN md5(doc::text) END;
    auth boolean := coalesce(dkim_res = 'pass' AND dkim_ali, false);
    me text := tlsrpt.sender_key(coalesce(dkim_res = 'pass' AND dkim_ali, false), dkim_dom, src, addr, sub);
    mine boolean;     -- the same sender's copy is stored
    others boolean;   -- another sender's copy is
    gone bigint[];    -- the unauthenticated copies that count so far
    days date[];      -- and their days
    wm bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(8460, hashtext(concat_ws(chr(31), org, rid, extract(epoch FROM ds)::text,
                                                           extract(epoch FROM de)::text, ck)) & 1023);
    -- the stored copies of this identity: the unique index's leading columns,
    -- = where it can, IS NULL where a part is missing
    IF org IS NOT NULL AND rid IS NOT NULL AND ds IS NOT NULL AND de IS NOT NULL THEN
        SELECT coalesce(bool_or(r.sender = me), false), count(*) > 0,
               array_agg(r.id) FILTER (WHERE NOT r.authenticated AND NOT r.shadowed),
               array_agg((coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE 'UTC')::date)
                   FILTER (WHERE NOT r.authenticated AND NOT r.shadowed)
        INTO mine, others, gone, days
        FROM tlsrpt.report r
        WHERE r.organization_name = org AND r.report_id = rid AND r.date_start = ds AND r.date_end = de
          AND r.content_key IS NULL;
    ELSE
        EXECUTE
            'SELECT coalesce(bool_or(r.sender = $6), false), count(*) > 0,'
            ' array_agg(r.id) FILTER (WHERE NOT r.authenticated AND NOT r.shadowed),'
            ' array_agg((coalesce(r.date_start, r.date_end, r.received_at) AT TIME ZONE ''UTC'')::date)'
            '     FILTER (WHERE NOT r.authenticated AND NOT r.shadowed)'
            ' FROM tlsrpt.report r WHERE '
            || CASE WHEN org IS NULL THEN 'r.organization_name IS NULL' ELSE 'r.organization_name = $1' END
            || CASE WHEN rid IS NULL THEN ' AND r.report_id IS NULL' ELSE ' AND r.report_id = $2' END
            || CASE WHEN ds IS NULL THEN ' AND r.date_start IS NULL' ELSE ' AND r.date_start = $3' END
            || CASE WHEN de IS NULL THEN ' AND r.date_end IS NULL' ELSE ' AND r.date_end = $4' END
            || CASE WHEN ck IS NULL THEN ' AND r.content_key IS NULL' ELSE ' AND r.content_key = $5' END
        INTO mine, others, gone, days
        USING org, rid, ds, de, ck, me;
    END IF;
    IF mine THEN
        RETURN NULL;
    END IF;
    IF NOT auth AND others AND src = 'file' THEN
        RETURN NULL;
    END IF;
    IF NOT auth THEN
        RETURN others;
    END IF;
    IF gone IS NOT NULL THEN
        UPDATE tlsrpt.report SET shadowed = true WHERE id = ANY (gone);
        -- a refresh() running now finishes first (it holds this row); one
        -- starting later waits for this transaction and sees them shadowed
        SELECT watermark INTO wm FROM tlsrpt.rollup_state FOR UPDATE;
        IF EXISTS (SELECT FROM unnest(gone) AS g WHERE g <= wm) THEN
            INSERT INTO tlsrpt.rollup_dirty_day SELECT DISTINCT d FROM unnest(days) AS d ON CONFLICT DO NOTHING;
            UPDATE tlsrpt.rollup_state SET rebuild = true WHERE NOT rebuild;
        END IF;
    END IF;
    RETURN false;
END
$$;

-- report_claim runs with the rights of who stores the report (not SECURITY
-- DEFINER: a reader must not shadow reports through it): the writers of
-- --init-db --grant also update report.shadowed and rollup_state.rebuild
-- (src/schema.c); those granted before this version are given them here.
DO $grant$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles
             WHERE NOT rolsuper AND rolname <> current_user AND rolname !~ '^pg_'
               AND has_table_privilege(oid, 'tlsrpt.report', 'INSERT') LOOP
        EXECUTE format('GRANT UPDATE (shadowed) ON tlsrpt.report TO %I', r);
        EXECUTE format('GRANT UPDATE (rebuild) ON tlsrpt.rollup_state TO %I', r);
    END LOOP;
END
$grant$;

-- ---------------------------------------------------------------- the views count one copy
-- every view and alert reads reports through scoped_report (migration 3), the
-- rollups through the functions below and failure_row
CREATE OR REPLACE VIEW tlsrpt.scoped_report AS
SELECT * FROM tlsrpt.report
WHERE NOT shadowed AND (authenticated OR NOT (SELECT tlsrpt.authenticated_only()));

CREATE OR REPLACE FUNCTION tlsrpt.daily_domain_rows(days date[], auth boolean)
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
          AND (r.authenticated OR NOT auth) AND NOT r.shadowed AND cardinality(days) > 0
        GROUP BY r.id, r.organization_name, 3, p.policy_domain
    )
    SELECT day, policy_domain, has_sts, sum(sessions - failed), sum(failed), sum(sessions),
           coalesce(array_agg(DISTINCT organization_name) FILTER (WHERE organization_name IS NOT NULL), '{}'),
           count(*)
    FROM rd
    GROUP BY day, policy_domain, has_sts
$$;

CREATE OR REPLACE FUNCTION tlsrpt.sts_rows(reports bigint[], auth boolean)
RETURNS TABLE (report bigint, organization_name text, policy_domain text, date_start timestamptz,
               date_end timestamptz, mode text, max_age bigint, mx text[])
LANGUAGE sql STABLE
AS $$
    WITH p AS (
        SELECT p.report, r.organization_name, p.policy_domain, r.date_start, r.date_end, p.policy_string
        FROM unnest(reports) AS u(id)
        JOIN tlsrpt.policy p ON p.report = u.id
        JOIN tlsrpt.report r ON r.id = p.report
        WHERE lower(p.policy_type) = 'sts' AND (r.authenticated OR NOT auth) AND NOT r.shadowed
    ), s AS (
        SELECT d.policy_string, x.mode, x.max_age,
               (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(x.mx) AS m) AS mx
        FROM (SELECT DISTINCT coalesce(policy_string, '{}') AS policy_string FROM p) d
        CROSS JOIN LATERAL tlsrpt.sts_parse(d.policy_string) AS x
    )
    SELECT p.report, p.organization_name, p.policy_domain, p.date_start, p.date_end, s.mode, s.max_age, s.mx
    FROM p JOIN s ON s.policy_string = coalesce(p.policy_string, '{}')
$$;

CREATE OR REPLACE FUNCTION tlsrpt.latest_rows(reports bigint[], auth boolean)
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
    WHERE (r.authenticated OR NOT auth) AND NOT r.shadowed
    GROUP BY 1, 2
$$;

-- failure_fact keeps the rows of a copy shadowed after it was rolled up: left
-- out here (a hashed look-up of the few shadowed ids)
CREATE OR REPLACE VIEW tlsrpt.failure_row AS
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
WHERE (x.authenticated OR NOT (SELECT tlsrpt.authenticated_only()))
  AND x.report NOT IN (SELECT id FROM tlsrpt.report WHERE shadowed);

-- ---------------------------------------------------------------- who sent it, in the views
-- latest_report: whether the latest report is authenticated, and its sender
CREATE OR REPLACE VIEW tlsrpt.latest_report_plain AS
SELECT organization_name, policy_domain, report, report_id, contact_info,
       date_start, date_end, received_at, reports, first_seen,
       now() - coalesce(date_end, received_at) AS silent_for,
       authenticated, sender
FROM (SELECT r.organization_name, p.policy_domain, r.id AS report, r.report_id, r.contact_info,
             r.date_start, r.date_end, r.received_at, r.authenticated, r.sender,
             count(*) OVER w AS reports,
             min(coalesce(r.date_start, r.received_at)) OVER w AS first_seen,
             row_number() OVER (PARTITION BY r.organization_name, p.policy_domain
                                ORDER BY coalesce(r.date_end, r.received_at) DESC, r.id DESC) AS rn
      FROM (SELECT DISTINCT report, policy_domain FROM tlsrpt.policy) p
      JOIN tlsrpt.scoped_report r ON r.id = p.report
      WINDOW w AS (PARTITION BY r.organization_name, p.policy_domain)) x
WHERE rn = 1;

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
SELECT * FROM tlsrpt.latest_report_plain WHERE (SELECT rebuild FROM tlsrpt.rollup_state);

-- Every report stored more than once (the same organization, report id and
-- period from several senders), each copy with its sender and whether it
-- counts. A forged copy shows up here. Reads every report: not for a panel.
CREATE VIEW tlsrpt.report_copy AS
SELECT organization_name, report_id, date_start, date_end, id AS report, sender, authenticated,
       dkim_domain, client_addr, source, received_at, NOT shadowed AS counted, copies
FROM (SELECT r.*, count(*) OVER (PARTITION BY organization_name, report_id, date_start, date_end, content_key)
                  AS copies
      FROM tlsrpt.report r) x
WHERE copies > 1;
