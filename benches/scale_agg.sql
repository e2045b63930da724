-- count and sum over the rows of the context's tenants.
BEGIN;
SELECT tenant_guard.set_context(:token) IS NULL;
SELECT count(*), sum(v) FROM sc_items;
COMMIT;
