-- A point lookup by primary key under :token ('none': no context).
\set id random(1, 1000000)
BEGIN;
SELECT tenant_guard.set_context(NULLIF(:token, 'none')) IS NULL WHERE :token <> 'none';
SELECT v FROM sc_items WHERE id = :id;
COMMIT;
