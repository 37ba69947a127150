-- tlsrpt-ingest schema version 10: storing a report calls no PL/pgSQL when no
-- copy of it is stored yet (issue 14, one delivery's cost).
--
-- A delivery is a fresh session, and the first PL/pgSQL call of a session
-- loads the language and compiles the function: about 2 ms of the server's
-- time, more than the rest of the report statement. The report statement
-- (src/store.c) is now preceded by a statement of its own that takes the
-- identity's advisory lock, so that the report statement, which starts after
-- it, sees every copy committed before; it then decides itself in the common
-- case: a report whose organization, id and dates are all known and of which
-- no copy is stored yet counts (shadowed = false), whoever sent it, which is
-- what report_claim() returns then. When a copy is stored already, or a part
-- of the identity is missing, it calls report_claim() as before, which takes
-- its lock again (a transaction may hold it twice) and decides.
--
-- The lock's bucket: one of 1024 per identity, the value report_claim()
-- (migration 6) computes inline for an identity without a content key, so that
-- a program of an earlier version storing a copy at the same time takes the
-- same lock.
CREATE FUNCTION tlsrpt.report_lock_key(org text, rid text, ds timestamptz, de timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN hashtext(concat_ws(chr(31), org, rid, extract(epoch FROM ds)::text, extract(epoch FROM de)::text)) & 1023;
