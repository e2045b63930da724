-- One request with a verified context: the token travels as a bind parameter.
BEGIN;
SELECT tenant_guard.set_context(:token);
SELECT 1;
COMMIT;
