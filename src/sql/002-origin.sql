-- tlsrpt-ingest schema: what is known about where each report came from
-- (the trust, authserv_id and dkim_policy settings; doc/trust.md).
-- NULL everywhere: nothing was checked (trust = none, or not a mail).
ALTER TABLE tlsrpt.report
    -- RFC 8601 result of the DKIM signature chosen: pass, fail, neutral, none,
    -- policy (refused here, e.g. l=), temperror, permerror
    ADD COLUMN dkim_result   text,
    -- its d= domain, lower case
    ADD COLUMN dkim_domain   text,
    -- dkim_domain has the organizational domain (Public Suffix List) of the
    -- From domain and of the TLS-Report-Submitter domain
    ADD COLUMN dkim_aligned  boolean,
    ADD COLUMN origin_method text
        CHECK (origin_method IN ('authentication-results', 'dkim-verify')),
    -- an aligned DKIM pass: the report really comes from its sender's domain.
    -- Views and summaries that want only authenticated reports filter on this.
    ADD COLUMN authenticated boolean NOT NULL
        GENERATED ALWAYS AS (coalesce(dkim_result = 'pass' AND dkim_aligned, false)) STORED;
CREATE INDEX report_authenticated_idx ON tlsrpt.report (date_start) WHERE authenticated;
