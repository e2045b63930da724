-- Hand-rolled: one tenant's 2,000 rows.
\set t random(1, 1000)
BEGIN;
SELECT set_config('app.current_tenant_id', tenant, true) FROM bench_tenants WHERE n = :t;
SELECT count(*), sum(payload) FROM items_hr;
COMMIT;
