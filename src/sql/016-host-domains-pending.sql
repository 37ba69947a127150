-- tlsrpt-ingest schema version 16: the host domains of the reports pending,
-- by index (issue 14 section 3: one domain <= 5 ms with reports pending).
--
-- host_domain_now() is read two or three times by every query of daily_domain
-- and failure_row. With reports pending it matched them against everything
-- known: their policy domains against a hash of every MX name (0.5 ms at 1,000
-- domains), and their MX names against an array of every known domain, hashed
-- twice (2.9 ms at 1,000 domains for three reports, growing with the domains).
-- A one-domain panel paid that three to six times. Now the few names of the
-- pending reports are looked up in indexes; the result is the same set
-- (tests/rollup-t.sh: each way a name makes a host domain, pending or known).
-- The domain index also serves latest_report and the ledger for one domain.
CREATE INDEX rollup_latest_domain_idx ON tlsrpt.rollup_latest (policy_domain);
CREATE INDEX rollup_latest_pattern_idx ON tlsrpt.rollup_latest (tlsrpt.host_pattern(policy_domain))
    WHERE NOT auth_only;

CREATE OR REPLACE FUNCTION tlsrpt.host_domain_now() RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 10
AS $$
DECLARE
    pending bigint[];
    domains text[];   -- the pending reports' policy domains
    known   text[];   -- those of them, and their patterns, that a known MX name names
    names   text[];   -- the pending reports' MX names
BEGIN
    IF (SELECT rebuild FROM tlsrpt.rollup_state) THEN
        -- after a purge, until the next refresh(): from the tables
        RETURN QUERY
        SELECT tlsrpt.host_domains(
                   ARRAY(SELECT DISTINCT policy_domain FROM tlsrpt.policy),
                   ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                         FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.report)) AS x));
        RETURN;
    END IF;
    RETURN QUERY SELECT policy_domain FROM tlsrpt.rollup_host_domain;
    pending := ARRAY(SELECT id FROM tlsrpt.rollup_pending);
    IF cardinality(pending) = 0 THEN
        RETURN;
    END IF;
    -- a pending report's policy domain named by a known MX name
    domains := ARRAY(SELECT DISTINCT p.policy_domain FROM tlsrpt.policy p
                     WHERE p.report = ANY (pending) AND p.policy_domain IS NOT NULL);
    known := ARRAY(SELECT c FROM unnest(domains || ARRAY(SELECT tlsrpt.host_pattern(d) FROM unnest(domains) AS d)) AS c
                   WHERE EXISTS (SELECT FROM tlsrpt.rollup_mx_name n WHERE n.name = c));
    RETURN QUERY
    SELECT d FROM unnest(domains) AS d
    WHERE d = ANY (known) OR tlsrpt.host_pattern(d) = ANY (known);
    -- any domain known or pending named by a pending report's MX names
    names := ARRAY(SELECT DISTINCT x.name FROM tlsrpt.mx_names(pending) AS x);
    IF cardinality(names) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT l.policy_domain FROM tlsrpt.rollup_latest l
    WHERE NOT l.auth_only AND l.policy_domain = ANY (names)
    UNION ALL
    SELECT l.policy_domain FROM tlsrpt.rollup_latest l
    WHERE NOT l.auth_only AND tlsrpt.host_pattern(l.policy_domain) = ANY (names)
    UNION ALL
    SELECT d FROM unnest(domains) AS d
    WHERE d = ANY (names) OR tlsrpt.host_pattern(d) = ANY (names);
END
$$;
