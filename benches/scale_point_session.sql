-- A point lookup by primary key under a session context set once per
-- connection from :token ('none': no context). Pass -D ctx=0: the client's
-- first transaction sets the context, the rest only look up.
\set id random(1, 1000000)
\if :ctx = 0
SELECT tenant_guard.set_context(NULLIF(:token, 'none'), false) IS NULL WHERE :token <> 'none';
\set ctx 1
\endif
BEGIN;
SELECT v FROM sc_items WHERE id = :id;
COMMIT;
