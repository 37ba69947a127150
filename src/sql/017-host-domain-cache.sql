-- tlsrpt-ingest schema migration 17: host_domain_now() in PL/pgSQL.
--
-- An SQL function called from a query is planned again for every query (its
-- plan lives as long as the query), and host_domain_now() is called up to
-- three times by a query of daily_domain or failure_row: with reports
-- pending, planning its branches cost more than running them (3-5 ms of a
-- one-domain panel's 7). PL/pgSQL keeps each statement's plan for the
-- session (Grafana's connections are pooled), and plans only the branch that
-- runs. The same rows as migration 15's definition.
CREATE OR REPLACE FUNCTION tlsrpt.host_domain_now() RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 10
AS $$
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
    IF EXISTS (SELECT FROM tlsrpt.rollup_pending) THEN
        -- a pending report's policy domain named by a known MX name (the
        -- names hashed once: a hosting operator's MX names repeat across its
        -- domains, so the planner expects a name to match hundreds of rows,
        -- and an EXISTS per domain scanned them all for a domain matching none)
        RETURN QUERY
        SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id
        WHERE p.policy_domain IN (SELECT n.name FROM tlsrpt.rollup_mx_name n)
           OR tlsrpt.host_pattern(p.policy_domain) IN (SELECT n.name FROM tlsrpt.rollup_mx_name n);
        -- any domain known or pending named by a pending report's MX names
        RETURN QUERY
        SELECT tlsrpt.host_domains(
                   ARRAY(SELECT l.policy_domain FROM tlsrpt.rollup_latest l WHERE NOT l.auth_only
                         UNION ALL SELECT p.policy_domain FROM tlsrpt.rollup_pending r JOIN tlsrpt.policy p ON p.report = r.id),
                   m.names)
        FROM (SELECT ARRAY(SELECT (x.name, x.policy_domain, x.wild)::tlsrpt.rollup_mx_name
                           FROM tlsrpt.mx_names(ARRAY(SELECT id FROM tlsrpt.rollup_pending)) AS x) AS names) m
        WHERE cardinality(m.names) > 0;
    END IF;
END
$$;
