-- tlsrpt-ingest schema version 17: sts_parse() in PL/pgSQL (issue 14 section 3:
-- one domain <= 5 ms with reports pending).
--
-- The views read the pending reports' MTA-STS policies through sts_parse(),
-- an SQL function over sts_lines(), another: sts_parse() returns no set and
-- cannot be inlined, so each query planned its body again at its first call
-- (about 1 ms of a one-domain panel's 6-10, per view that parses), and each
-- call ran a set-returning function and five ordered aggregates (35 us). The same rules in one loop:
-- its statements are planned once per session, and a call takes 15 us (a
-- refresh() parses every new policy the same way). Same results: the first
-- version, mode and max_age line count (max_age NULL unless digits), every mx
-- line lowercased in order, other lines kept trimmed (tests/views-t.sh
-- compares the two over every stored policy string and odd ones).
CREATE OR REPLACE FUNCTION tlsrpt.sts_parse(policy_string text[],
    OUT version text, OUT mode text, OUT max_age bigint, OUT mx text[], OUT other text[])
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    elem    text;
    line    text;
    colon   integer;
    key     text;
    value   text;
    age_seen boolean := false;
BEGIN
    mx := '{}';
    other := '{}';
    FOREACH elem IN ARRAY coalesce(policy_string, '{}') LOOP
        CONTINUE WHEN elem IS NULL;
        FOREACH line IN ARRAY regexp_split_to_array(elem, E'\r\n|\n|\r') LOOP
            line := btrim(line, E' \t');
            CONTINUE WHEN line = '';
            colon := strpos(line, ':');
            key := CASE WHEN colon > 0 THEN lower(btrim(substr(line, 1, colon - 1), E' \t')) END;
            value := btrim(substr(line, colon + 1), E' \t');
            IF key = 'version' THEN
                version := coalesce(version, value);
            ELSIF key = 'mode' THEN
                mode := coalesce(mode, value);
            ELSIF key = 'max_age' THEN
                IF NOT age_seen THEN
                    age_seen := true;
                    max_age := CASE WHEN value ~ '^[0-9]{1,18}$' THEN value::bigint END;
                END IF;
            ELSIF key = 'mx' THEN
                mx := mx || lower(value);
            ELSE
                other := other || line;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
