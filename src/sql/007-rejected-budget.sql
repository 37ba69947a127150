-- tlsrpt-ingest schema: bounded storage for what strangers send (issue 10 §5).
-- A rejected row keeps its raw bytes only while its source (source_key:
-- 'https:' || the client's address, 'mail:' || the sender's domain, 'file:'
-- || the sender's domain for a FILE run, which no budget limits) has stored
-- less than max_rejected_raw_per_source_day bytes of raw copies in the last
-- 24 hours, and all sources together less than max_rejected_raw_per_day;
-- past that the row keeps its metadata (reason, size, digest, source) and no
-- bytes: raw_withheld is true. raw_truncated (version 1) stays the one column
-- that says the bytes are not all there (cut at max_rejected_raw, or withheld).
ALTER TABLE tlsrpt.rejected
    ADD COLUMN source_key   text,
    ADD COLUMN raw_withheld boolean NOT NULL DEFAULT false,
    ADD COLUMN raw_stored   bigint GENERATED ALWAYS AS (octet_length(raw)) STORED;
-- What the budget reads, one index-only range each; rows without bytes are not in them.
CREATE INDEX rejected_source_day_idx ON tlsrpt.rejected (source_key, received_at) INCLUDE (raw_stored)
    WHERE raw_stored > 0;
CREATE INDEX rejected_raw_day_idx ON tlsrpt.rejected (received_at) INCLUDE (raw_stored)
    WHERE raw_stored > 0;
