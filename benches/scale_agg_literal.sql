-- The same rows for a superuser, the tenants as a literal array.
BEGIN;
SELECT count(*), sum(v) FROM sc_items WHERE tenant_id = ANY (CAST(:tenants AS text[]));
COMMIT;
