-- The hand-rolled baseline: an unauthenticated setting, as most applications do.
BEGIN;
SELECT set_config('app.current_tenant_id', :tenant, true);
SELECT 1;
COMMIT;
