-- A full count under :token (empty: no context, as a superuser).
BEGIN;
SELECT tenant_guard.set_context(NULLIF(:token, 'none')) IS NULL WHERE :token <> 'none';
SELECT count(*) FROM sc_items;
COMMIT;
