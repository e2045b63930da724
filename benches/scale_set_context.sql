-- set_context alone, in a transaction (:token is a bypass or a tenant token).
BEGIN;
SELECT tenant_guard.set_context(:token) IS NULL;
COMMIT;
