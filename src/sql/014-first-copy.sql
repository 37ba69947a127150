-- tlsrpt-ingest schema version 14: the first copy of each report is marked,
-- so that a delivery of a new report is one statement (issue 14, one
-- delivery's cost).
--
-- A delivery of a report that may be new (src/store.c, store_send_first_copy)
-- sends one statement: it takes the identity's advisory lock (migration 10)
-- inside it and inserts the report as its first copy (first_copy true, not
-- shadowed) ON CONFLICT DO NOTHING. The unique index below lets at most one
-- copy of an identity be the first: when any copy is stored already, that
-- statement stores nothing, and the delivery goes again in a new transaction
-- the way every report went before (the lock statement, then the report
-- statement, which decides by looking at the copies, report_claim() when
-- there are some). A copy stored that way is the first only when no copy was
-- there (first_copy false otherwise).
--
-- Why it is right: the statement that stores a first copy holds the identity's
-- lock from before its insert until COMMIT, as the usual way does; an insert
-- into a unique index waits for another transaction's entry of the same key,
-- and ON CONFLICT then sees that copy once it is committed, whatever the
-- statement's snapshot. So two first copies of one report cannot both be
-- stored, and a copy stored the usual way while a first copy is in flight
-- waits for the lock and sees it.
--
-- What it saves: the lock statement and the look-up of the copies, which a
-- new session plans from scratch (0.4-0.5 ms of the server's time; the
-- index costs one more entry per report).
--
-- Only reports with a complete identity (organization, report-id, both
-- dates) are marked: the others always go the usual way. A copy deleted by
-- hand while other copies of its report stay would leave them without a
-- first copy; --purge-older-than removes the copies of a report in the same
-- run (they share its period), though maybe in different batches.
-- Programs of earlier versions insert first_copy true (the default) for every
-- copy: a later copy of a report they store is refused by the index and kept
-- as rejected, to store with --reprocess. Stop the deliveries of an earlier
-- version (MTA hosts, the HTTPS endpoint) before this --init-db.

-- true for the existing rows without rewriting them (a constant default)
ALTER TABLE tlsrpt.report ADD COLUMN first_copy boolean NOT NULL DEFAULT true;

-- every copy but the first of each report stored so far
UPDATE tlsrpt.report r SET first_copy = false
FROM (SELECT id, row_number() OVER (PARTITION BY organization_name, report_id, date_start, date_end
                                    ORDER BY id) AS n
      FROM tlsrpt.report
      WHERE content_key IS NULL AND organization_name IS NOT NULL AND report_id IS NOT NULL
        AND date_start IS NOT NULL AND date_end IS NOT NULL) later
WHERE r.id = later.id AND later.n > 1;

-- a partitioned table's unique index includes the partition key, the month of
-- date_end (the same for every copy of a report)
DO $$
BEGIN
    IF tlsrpt.partitioned() THEN
        CREATE UNIQUE INDEX report_first_copy ON tlsrpt.report
            (organization_name, report_id, date_start, date_end, period_month) WHERE first_copy;
    ELSE
        CREATE UNIQUE INDEX report_first_copy ON tlsrpt.report
            (organization_name, report_id, date_start, date_end) WHERE first_copy;
    END IF;
END
$$;
